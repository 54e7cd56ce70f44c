"""CycleGAN: unpaired image-to-image translation (Zhu et al., 2017).

Networks (reference parameter layout) and their configs; importing this package registers the
model kinds ``cyclegan-generator`` and ``cyclegan-discriminator`` with
:mod:`transfigure.checkpoint`. Training is :class:`transfigure.cyclegan.step.CycleGANStep`, a
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
