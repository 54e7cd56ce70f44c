"""The GAN core: DCGAN, WGAN-GP and conditional GAN — one step on the training engine,
three configurations (:mod:`transfigure.gan.step`).

Importing this package registers the model kinds ``gan-generator``, ``gan-discriminator`` and
``gan-critic`` with :mod:`transfigure.checkpoint`, so their model files load from the file alone.
"""

from transfigure.checkpoint import register_model
from transfigure.gan.networks import (
    Discriminator,
    DiscriminatorConfig,
    Generator,
    GeneratorConfig,
    init_dcgan_weights,
)

register_model("gan-generator", GeneratorConfig, Generator)
register_model("gan-discriminator", DiscriminatorConfig, Discriminator)
register_model("gan-critic", DiscriminatorConfig, Discriminator)

from transfigure.gan.config import PRESETS, TrainConfig, preset  # noqa: E402
from transfigure.gan.data import DataError, GANData, resolve_dataset  # noqa: E402
from transfigure.gan.losses import LOSSES, get_loss, gradient_penalty  # noqa: E402

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
