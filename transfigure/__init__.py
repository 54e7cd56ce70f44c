"""transfigure: image-to-image translation with GANs, CycleGAN and neural style transfer."""

import os

# albumentations asks PyPI for a newer release at import time: slow offline, noisy online.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

__version__ = "0.1.0"

__all__ = ["__version__"]
