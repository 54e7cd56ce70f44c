"""CycleGAN: unpaired image-to-image translation (Zhu et al., 2017).

Networks (reference parameter layout) and their configs; their model kinds
(``cyclegan-generator``, ``cyclegan-discriminator``) are listed in :mod:`transfigure.registry`.
Training is :class:`transfigure.cyclegan.step.CycleGANStep`, a
step on the training engine.
"""

from transfigure.cyclegan.networks import (
    DiscriminatorConfig,
    GeneratorConfig,
    NLayerDiscriminator,
    PixelDiscriminator,
    ResnetGenerator,
    UnetGenerator,
    build_discriminator,
    build_generator,
    init_weights,
)

__all__ = [
    "DiscriminatorConfig",
    "GeneratorConfig",
    "NLayerDiscriminator",
    "PixelDiscriminator",
    "ResnetGenerator",
    "UnetGenerator",
    "build_discriminator",
    "build_generator",
    "init_weights",
]
