"""Training data for the GAN core: what a ``DATA`` argument names, as a labelled dataset.

``DATA`` is resolved in this order:

1. an existing folder: images (any size; resized and centre-cropped to a square), walked
   recursively; for a conditional GAN its sub-folders are the classes;
2. ``shapes`` or ``shapes:N``: the synthetic labelled shapes of
   :mod:`transfigure.datasets.synthetic` (N images, 4000 by default), generated from the seed;
3. ``mnist``, ``fashion-mnist`` or ``cifar10``: torchvision's datasets, read from (or
   downloaded into) ``<cache>/torchvision``; without internet a clear :class:`DataError`.

Every dataset yields ``(image, label)``: a float tensor ``(C, S, S)`` in [-1, 1] and an int64
label (-1 for unlabelled data).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset, Subset

__all__ = [
    "DEFAULT_SHAPES",
    "TORCHVISION_DATASETS",
    "DataError",
    "DataNotFoundError",
    "GANData",
    "ImageTensorDataset",
    "resolve_dataset",
    "to_uint8_images",
]

DEFAULT_SHAPES = 4000

# name → (torchvision class name, its channels); aliases map to the canonical name
TORCHVISION_DATASETS: dict[str, tuple[str, int]] = {
    "mnist": ("MNIST", 1),
    "fashion-mnist": ("FashionMNIST", 1),
    "cifar10": ("CIFAR10", 3),
}
_ALIASES = {
    "fashion_mnist": "fashion-mnist",
    "fashionmnist": "fashion-mnist",
    "cifar-10": "cifar10",
    "cifar_10": "cifar10",
}


class DataError(ValueError):
    """The training data cannot be used; the message says what was wrong and what to do."""


class DataNotFoundError(DataError, FileNotFoundError):
    """``DATA`` names neither an existing folder nor a known dataset (a usage error)."""


@dataclass
class GANData:
    """A resolved dataset.

    Attributes:
        dataset: items ``(image (C, S, S) float in [-1, 1], label int64)``; label -1 if none.
        classes: class names, index = label; empty for unlabelled data.
        spec: the ``DATA`` string it came from.
        description: one line for logs ("shapes: 4000 images, 4 classes, 32×32×3").
        limit: the ``limit`` it was resolved with (recorded so a resumed run sees the same
            subset).
    """

    dataset: Dataset
    classes: tuple[str, ...]
    spec: str
    description: str
    limit: int | None = None

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]


class ImageTensorDataset(Dataset):
    """In-memory images: uint8 ``(N, C, S, S)`` stored, float in [-1, 1] served.

    Args:
        images: uint8 tensor ``(N, C, S, S)``.
        labels: int64 tensor ``(N,)`` (or ``None`` for unlabelled: every label is -1).
    """

    def __init__(self, images: Tensor, labels: Tensor | None = None) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(
                f"images must be uint8 (N, C, S, S), got {images.dtype} {tuple(images.shape)}"
            )
        if labels is None:
            labels = torch.full((images.shape[0],), -1, dtype=torch.int64)
        if labels.shape != (images.shape[0],):
            raise ValueError("labels must have one entry per image")
        self.images = images
        self.labels = labels.to(torch.int64)

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.images[index].float().div(127.5).sub(1.0), self.labels[index]


class _Unlabelled(Dataset):
    """Wraps a dataset of image tensors as ``(image, -1)`` pairs."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.dataset[index], torch.tensor(-1, dtype=torch.int64)


def to_uint8_images(
    images: np.ndarray | Tensor, *, size: int, channels: int, chunk: int = 2048
) -> Tensor:
    """Resize and convert a batch of uint8 images to ``(N, channels, size, size)`` uint8.

    Args:
        images: uint8 ``(N, H, W)``, ``(N, H, W, C)`` (numpy layout) with C in {1, 3}.
        size: output side; antialiased bilinear resizing, done in chunks to bound memory.
        channels: 1 (ITU-R 601 luma from RGB) or 3 (gray repeated).
    """
    t = torch.as_tensor(np.asarray(images))
    if t.dtype != torch.uint8:
        raise ValueError(f"expected uint8 images, got {t.dtype}")
    if t.ndim == 3:
        t = t[..., None]
    if t.ndim != 4 or t.shape[-1] not in (1, 3):
        raise ValueError(f"expected (N, H, W[, C]) images with C in (1, 3), got {tuple(t.shape)}")
    t = t.permute(0, 3, 1, 2)  # (N, H, W, C) → (N, C, H, W)
    out = []
    for start in range(0, t.shape[0], chunk):
        x = t[start : start + chunk].float()
        if x.shape[1] == 3 and channels == 1:
            w = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
            x = (x * w).sum(1, keepdim=True)
        elif x.shape[1] == 1 and channels == 3:
            x = x.expand(-1, 3, -1, -1)
        if x.shape[-2:] != (size, size):
            x = F.interpolate(
                x, size=(size, size), mode="bilinear", antialias=True, align_corners=False
            )
        out.append(x.round().clamp(0, 255).to(torch.uint8))
    if not out:
        return torch.empty((0, channels, size, size), dtype=torch.uint8)
    return torch.cat(out)


def _subset(dataset: Dataset, limit: int | None, seed: int) -> Dataset:
    n = len(dataset)  # type: ignore[arg-type]
    if limit is None or limit >= n:
        return dataset
    if limit < 1:
        raise DataError(f"limit must be positive, got {limit}")
    # a seeded random subset, so a limit does not keep only the first class folder
    keep = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:limit]
    return Subset(dataset, sorted(keep.tolist()))


def _shapes(spec: str, *, image_size: int, channels: int, seed: int) -> GANData:
    from transfigure.datasets.synthetic import SHAPE_CLASSES, shapes

    _, _, count = spec.partition(":")
    try:
        n = int(count) if count else DEFAULT_SHAPES
    except ValueError:
        raise DataError(f"{spec!r}: expected shapes or shapes:N with N a number") from None
    if n < 1:
        raise DataError(f"{spec!r}: the number of shapes must be positive")
    images, labels = shapes(n, size=image_size, seed=seed, channels=channels)
    dataset = ImageTensorDataset(
        to_uint8_images(images, size=image_size, channels=channels), torch.from_numpy(labels)
    )
    return GANData(
        dataset,
        tuple(SHAPE_CLASSES),
        spec,
        f"synthetic shapes: {n} images, {len(SHAPE_CLASSES)} classes, "
        f"{image_size}×{image_size}×{channels}",
    )


def torchvision_root() -> Path:
    """Where torchvision datasets are looked for and downloaded: ``<cache>/torchvision``."""
    from transfigure.download import cache_dir

    return cache_dir() / "torchvision"


def _torchvision(
    name: str, *, image_size: int, channels: int, download: bool, root: Path | None
) -> GANData:
    import torchvision.datasets as tvd

    cls_name, _ = TORCHVISION_DATASETS[name]
    cls = getattr(tvd, cls_name)
    root = Path(root) if root is not None else torchvision_root()
    try:
        ds = cls(str(root), train=True, download=False)
    except RuntimeError:
        if not download:
            raise DataError(
                f"{name}: not found under {root}; run with downloads allowed, or place "
                f"torchvision's {cls_name} files there"
            ) from None
        try:
            root.mkdir(parents=True, exist_ok=True)
            ds = cls(str(root), train=True, download=True)
        except Exception as e:  # URLError, HTTPError, socket errors, checksum failures
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise DataError(
                f"{name}: could not download it into {root} ({reason}). This machine may be "
                f"offline: download torchvision's {cls_name} elsewhere and copy it to {root}, "
                "or train on an image folder or on the synthetic 'shapes' instead"
            ) from e
    data = ds.data
    images = data.numpy() if isinstance(data, Tensor) else np.asarray(data)
    labels = torch.as_tensor(np.asarray(ds.targets), dtype=torch.int64)
    dataset = ImageTensorDataset(
        to_uint8_images(images, size=image_size, channels=channels), labels
    )
    classes = tuple(str(c) for c in ds.classes)
    return GANData(
        dataset,
        classes,
        name,
        f"{name}: {len(labels)} images, {len(classes)} classes, "
        f"{image_size}×{image_size}×{channels}",
    )


def _folder(path: Path, spec: str, *, image_size: int, channels: int, labelled: bool) -> GANData:
    from transfigure.datasets.folders import ImageFolderDataset, LabelledFolderDataset
    from transfigure.datasets.transforms import eval_transform

    transform = eval_transform(size=image_size, grayscale=channels == 1, keep_aspect=True)
    if labelled:
        subdirs = [p for p in sorted(path.iterdir()) if p.is_dir() and not p.name.startswith(".")]
        if len(subdirs) < 2:
            raise DataError(
                f"{path}: a conditional GAN needs one sub-folder of images per class "
                f"(found {len(subdirs)} sub-folder(s))"
            )
        try:
            ds = LabelledFolderDataset(path, transform)
        except (ValueError, FileNotFoundError, OSError) as e:
            raise DataError(f"{path}: {e}") from e
        classes = tuple(ds.classes)
        if len(ds) == 0:
            raise DataError(f"{path}: no images found in its class sub-folders")
        return GANData(
            ds,
            classes,
            spec,
            f"{path}: {len(ds)} images, {len(classes)} classes, "
            f"{image_size}×{image_size}×{channels}",
        )
    try:
        ds = ImageFolderDataset(path, transform, recursive=True)
    except (ValueError, FileNotFoundError, OSError) as e:
        raise DataError(f"{path}: {e}") from e
    if len(ds) == 0:
        raise DataError(f"{path}: no images found (looked for {', '.join(_extensions())})")
    return GANData(
        _Unlabelled(ds), (), spec, f"{path}: {len(ds)} images, {image_size}×{image_size}×{channels}"
    )


def _extensions() -> list[str]:
    from transfigure.images import IMAGE_EXTENSIONS

    return sorted(IMAGE_EXTENSIONS)


def resolve_dataset(
    spec: str | os.PathLike[str],
    *,
    image_size: int,
    channels: int,
    labelled: bool = False,
    seed: int = 0,
    limit: int | None = None,
    download: bool = True,
    root: Path | None = None,
) -> GANData:
    """Turn a ``DATA`` argument into a dataset of ``(image, label)`` pairs.

    Args:
        spec: a folder, ``shapes[:N]``, ``mnist``, ``fashion-mnist`` or ``cifar10``.
        image_size: side of the square images served.
        channels: 1 or 3.
        labelled: the caller needs class labels (conditional GAN): folders must have class
            sub-folders; every named dataset is labelled.
        seed: seed of the synthetic data and of a ``limit`` subset.
        limit: keep at most this many images (a seeded random subset).
        download: allow torchvision to download a named dataset.
        root: where torchvision datasets live (default ``<cache>/torchvision``).

    Raises:
        DataError: the folder is missing, empty or has no class sub-folders when labels are
            needed; an unknown name; a dataset that cannot be downloaded.
    """
    if channels not in (1, 3):
        raise DataError(f"channels must be 1 or 3, got {channels}")
    text = os.fspath(spec)
    path = Path(text).expanduser()
    name = _ALIASES.get(text.lower(), text.lower())
    if path.exists():
        if not path.is_dir():
            raise DataError(f"{path}: is a file; DATA must be a folder of images or a dataset name")
        data = _folder(path, text, image_size=image_size, channels=channels, labelled=labelled)
    elif name == "shapes" or name.startswith("shapes:"):
        data = _shapes(name, image_size=image_size, channels=channels, seed=seed)
    elif name in TORCHVISION_DATASETS:
        data = _torchvision(
            name, image_size=image_size, channels=channels, download=download, root=root
        )
    else:
        raise DataNotFoundError(
            f"{text}: no such folder, and not a known dataset name (shapes, shapes:N, "
            f"{', '.join(TORCHVISION_DATASETS)})"
        )
    if limit is not None:
        data.limit = limit
        n_before = len(data)
        data.dataset = _subset(data.dataset, limit, seed)
        if len(data) < n_before:
            data.description += f" (limited to {len(data)})"
    return data
