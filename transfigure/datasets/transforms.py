"""Albumentations pipelines: uint8 RGB arrays in, normalised (C, H, W) tensors out.

The training pipeline follows the reference CycleGAN implementation's ``--preprocess`` modes
(pytorch-CycleGAN-and-pix2pix, ``data/base_dataset.py``):

* ``resize_and_crop``: resize to ``load_size`` × ``load_size``, then a random
  ``crop_size`` crop;
* ``crop``: a random ``crop_size`` crop of the image as it is;
* ``scale_width``: scale to width ``load_size`` keeping the aspect ratio (height at least
  ``crop_size``);
* ``scale_width_and_crop``: ``scale_width`` then a random ``crop_size`` crop;
* ``none``: keep the size, only round height and width to a multiple of 4;

then an optional random horizontal flip, and normalisation to [-1, 1].

Every resize is PIL's bicubic, as in the reference: it widens its kernel when shrinking (an
antialiased resize), so photos shrunk to ``load_size`` keep the reference's fine detail.
OpenCV's area interpolation, used before, lost about 3.5 % of it, and generators trained on
the softer images drew softer translations (see ``benchmarks/cyclegan_reference.py``).

Departures from the reference, each so that a batch always reaches the networks in a usable
shape: ``crop`` pads (reflecting) an image smaller than ``crop_size`` instead of failing;
``scale_width`` alone also rounds the height to a multiple of 4.

A pipeline is a :class:`Pipeline`: call it on an (H, W, 3) uint8 array to get a float32 tensor.
Its randomness is its own (albumentations keeps a private generator); datasets reseed it per
item through :meth:`Pipeline.set_random_seed` so augmentations are reproducible.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

# albumentations asks PyPI for a newer version on import (up to 2 s offline, and a warning on
# stderr when there is one); a toolkit that runs offline should not phone home.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import albumentations as A  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402
from albumentations.pytorch import ToTensorV2  # noqa: E402
from PIL import Image  # noqa: E402
from torch import Tensor  # noqa: E402

__all__ = [
    "PREPROCESS_MODES",
    "Pipeline",
    "Resize",
    "RoundToMultiple",
    "ScaleWidth",
    "ShortSide",
    "array_to_tensor",
    "denormalize",
    "eval_transform",
    "train_transform",
]

PREPROCESS_MODES: tuple[str, ...] = (
    "resize_and_crop",
    "crop",
    "scale_width",
    "scale_width_and_crop",
    "none",
)


def _resize(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """PIL's bicubic resize of an (H, W[, C]) uint8 array (antialiased when shrinking)."""
    h, w = img.shape[:2]
    if (h, w) == (height, width):
        return img
    single = img.ndim == 3 and img.shape[2] == 1
    if img.dtype != np.uint8 or (img.ndim == 3 and img.shape[2] not in (1, 3, 4)):
        raise ValueError(
            f"can only resize uint8 grey, RGB or RGBA arrays, got {img.dtype} {img.shape}"
        )
    pil = Image.fromarray(np.ascontiguousarray(img[..., 0] if single else img))
    out = np.asarray(pil.resize((width, height), Image.Resampling.BICUBIC))
    return out[..., None] if single else out


class Resize(A.ImageOnlyTransform):
    """Resize to exactly ``height`` × ``width`` with PIL's bicubic (the reference's resize)."""

    def __init__(self, height: int, width: int, p: float = 1.0) -> None:
        super().__init__(p=p)
        if height < 1 or width < 1:
            raise ValueError(f"height and width must be positive, got {height}, {width}")
        self.height, self.width = int(height), int(width)

    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:
        return _resize(img, self.height, self.width)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("height", "width")


class ShortSide(A.ImageOnlyTransform):
    """Resize so that the shorter side is ``size``, keeping the aspect ratio."""

    def __init__(self, size: int, p: float = 1.0) -> None:
        super().__init__(p=p)
        if size < 1:
            raise ValueError(f"size must be positive, got {size}")
        self.size = int(size)

    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:
        h, w = img.shape[:2]
        scale = self.size / min(h, w)
        return _resize(img, max(1, round(h * scale)), max(1, round(w * scale)))

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("size",)


class RoundToMultiple(A.ImageOnlyTransform):
    """Resize so that height and width are multiples of ``base`` (nearest multiple, >= base).

    The reference's ``__make_power_2``: networks that downsample twice need sizes divisible
    by 4. An image already of such a size is returned unchanged.
    """

    def __init__(self, base: int = 4, p: float = 1.0) -> None:
        super().__init__(p=p)
        if base < 1:
            raise ValueError(f"base must be >= 1, got {base}")
        self.base = int(base)

    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:
        h, w = img.shape[:2]
        b = self.base
        return _resize(img, max(b, round(h / b) * b), max(b, round(w / b) * b))

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("base",)


class ScaleWidth(A.ImageOnlyTransform):
    """Scale to ``width`` keeping the aspect ratio, with the height at least ``min_height``.

    The reference's ``__scale_width``: an image already ``width`` wide and at least
    ``min_height`` high is left alone.
    """

    def __init__(self, width: int, min_height: int = 0, p: float = 1.0) -> None:
        super().__init__(p=p)
        if width < 1:
            raise ValueError(f"width must be >= 1, got {width}")
        self.width = int(width)
        self.min_height = int(min_height)

    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:
        h, w = img.shape[:2]
        if w == self.width and h >= self.min_height:
            return img
        height = max(int(round(self.width * h / w)), self.min_height, 1)
        return _resize(img, height, self.width)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("width", "min_height")


class Pipeline:
    """An albumentations pipeline as a plain callable: (H, W, C) uint8 → (C', H', W') tensor.

    Attributes:
        compose: the underlying ``albumentations.Compose``.
        grayscale: whether the output has one channel (else three).
    """

    def __init__(self, transforms: Sequence[Any], *, grayscale: bool = False) -> None:
        self.grayscale = grayscale
        self.compose = A.Compose(list(transforms))

    def __call__(self, image: np.ndarray) -> Tensor:
        """Apply the pipeline.

        Args:
            image: uint8 array (H, W, 3) RGB, or (H, W) / (H, W, 1) gray (repeated to RGB).

        Returns:
            float32 tensor (3, H', W') — or (1, H', W') for a grayscale pipeline — in [-1, 1].
        """
        return self.compose(image=_as_rgb(image))["image"]

    def set_random_seed(self, seed: int | None) -> None:
        """Reseed the pipeline's own generator (``None``: fresh entropy)."""
        self.compose.set_random_seed(seed)

    def __repr__(self) -> str:
        steps = ", ".join(type(t).__name__ for t in self.compose.transforms)
        return f"Pipeline([{steps}], grayscale={self.grayscale})"


def _as_rgb(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise TypeError(f"expected a numpy array (H, W, 3) uint8, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got dtype {image.dtype}")
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[2] not in (1, 3):
        raise ValueError(f"expected an (H, W, 3), (H, W, 1) or (H, W) image, got {image.shape}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"empty image of shape {image.shape}")
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    return image


def _finish(grayscale: bool) -> list[Any]:
    """Colour conversion, normalisation to [-1, 1] and conversion to a (C, H, W) tensor."""
    steps: list[Any] = []
    if grayscale:
        # ITU-R 601 luma, as PIL's convert("L") that the reference uses
        steps.append(A.ToGray(num_output_channels=1, method="weighted_average", p=1.0))
    steps.append(A.Normalize(mean=0.5, std=0.5, max_pixel_value=255.0))
    steps.append(ToTensorV2())
    return steps


def train_transform(
    *,
    load_size: int = 286,
    crop_size: int = 256,
    preprocess: str = "resize_and_crop",
    flip: bool = True,
    grayscale: bool = False,
) -> Pipeline:
    """The training pipeline, with the reference CycleGAN's preprocessing modes.

    Args:
        load_size: size images are first resized to (``resize_*``: a square; ``scale_width*``:
            the width).
        crop_size: size of the random square crop (``*crop`` modes; also the minimum height
            in ``scale_width``).
        preprocess: one of :data:`PREPROCESS_MODES` (see the module docstring).
        flip: random horizontal flip with probability 0.5.
        grayscale: one output channel (ITU-R 601 luma) instead of three.

    Returns:
        A :class:`Pipeline`: uint8 (H, W, 3) → float32 (C, H', W') in [-1, 1], C = 1 or 3;
        H' = W' = crop_size in the crop modes, a multiple of 4 in ``none`` and ``scale_width``.

    Raises:
        ValueError: unknown ``preprocess``, non-positive sizes, or ``load_size < crop_size``
            in a mode that resizes then crops.
    """
    if preprocess not in PREPROCESS_MODES:
        raise ValueError(
            f"preprocess must be one of {', '.join(PREPROCESS_MODES)}; got {preprocess!r}"
        )
    if load_size < 1 or crop_size < 1:
        raise ValueError(f"load_size and crop_size must be positive, got {load_size}, {crop_size}")
    if preprocess in ("resize_and_crop", "scale_width_and_crop") and load_size < crop_size:
        raise ValueError(
            f"load_size ({load_size}) must be at least crop_size ({crop_size}) "
            f"for preprocess={preprocess!r}"
        )

    steps: list[Any] = []
    if preprocess == "resize_and_crop":
        steps.append(Resize(load_size, load_size))
    elif preprocess.startswith("scale_width"):
        steps.append(ScaleWidth(load_size, min_height=crop_size))
    if preprocess.endswith("crop"):
        steps.append(
            A.RandomCrop(
                crop_size, crop_size, pad_if_needed=True, border_mode=cv2.BORDER_REFLECT_101
            )
        )
    if preprocess in ("none", "scale_width"):
        steps.append(RoundToMultiple(4))
    if flip:
        steps.append(A.HorizontalFlip(p=0.5))
    return Pipeline(steps + _finish(grayscale), grayscale=grayscale)


def eval_transform(
    *,
    size: int | tuple[int, int] | None = None,
    grayscale: bool = False,
    keep_aspect: bool = False,
) -> Pipeline:
    """The deterministic evaluation pipeline: resize (or keep the size), normalise.

    Args:
        size: ``None`` keeps the image's size, rounded to a multiple of 4; an int resizes to a
            square of that size; ``(height, width)`` resizes to exactly that. An explicit size
            is honoured as given (not rounded).
        grayscale: one output channel instead of three.
        keep_aspect: with an int ``size``, scale the shorter side to ``size`` and take the
            centre square instead of stretching (the usual GAN preprocessing).

    Returns:
        A :class:`Pipeline`: uint8 (H, W, 3) → float32 (C, H', W') in [-1, 1].
    """
    steps: list[Any] = []
    if size is None:
        steps.append(RoundToMultiple(4))
    else:
        if isinstance(size, int):
            height = width = size
        else:
            height, width = size
        if height < 1 or width < 1:
            raise ValueError(f"size must be positive, got {size!r}")
        if keep_aspect:
            if height != width:
                raise ValueError("keep_aspect needs a square size")
            steps.append(ShortSide(height))
            steps.append(A.CenterCrop(height, width))
        else:
            steps.append(Resize(height, width))
    return Pipeline(steps + _finish(grayscale), grayscale=grayscale)


def array_to_tensor(image: np.ndarray) -> Tensor:
    """An (H, W, 3) uint8 array as a (3, H, W) float32 tensor in [-1, 1], size unchanged.

    Bit-identical to the normalisation step of every pipeline here.
    """
    return _plain_pipeline()(image)


_PLAIN: Pipeline | None = None


def _plain_pipeline() -> Pipeline:
    global _PLAIN
    if _PLAIN is None:
        _PLAIN = Pipeline(_finish(False))
    return _PLAIN


def denormalize(t: Tensor) -> Tensor:
    """Map a tensor from [-1, 1] back to [0, 1] (clamped); any shape, dtype and device kept."""
    return ((t + 1) * 0.5).clamp(0.0, 1.0)
