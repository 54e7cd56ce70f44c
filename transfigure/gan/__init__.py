"""The GAN core: DCGAN, WGAN-GP and conditional GAN — one step on the training engine,
three configurations (:mod:`transfigure.gan.step`).

Its model kinds (``gan-generator``, ``gan-discriminator``, ``gan-critic``) are listed in
:mod:`transfigure.registry`, so their model files load from the file alone.
"""

from transfigure.gan.config import PRESETS, TrainConfig, preset
from transfigure.gan.data import DataError, GANData, resolve_dataset
from transfigure.gan.losses import LOSSES, get_loss, gradient_penalty
from transfigure.gan.networks import (
    Discriminator,
    DiscriminatorConfig,
    Generator,
    GeneratorConfig,
    init_dcgan_weights,
)

__all__ = [
    "LOSSES",
    "PRESETS",
    "DataError",
    "Discriminator",
    "DiscriminatorConfig",
    "GANData",
    "Generator",
    "GeneratorConfig",
    "TrainConfig",
    "get_loss",
    "gradient_penalty",
    "init_dcgan_weights",
    "preset",
    "resolve_dataset",
]
