"""transfigure: image-to-image translation with GANs, CycleGAN and neural style transfer."""

__version__ = "0.1.0"

__all__ = ["__version__"]
