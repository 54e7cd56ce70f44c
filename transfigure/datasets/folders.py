"""Image-folder datasets: one domain, two unpaired domains, labelled class folders.

Items are ready for ``torch.utils.data.default_collate``: float tensors, ints and ``str`` paths.

Files are listed with :func:`transfigure.images.list_images` and decoded with
:func:`transfigure.images.load_array`. A file that cannot be decoded (truncated, not an image,
…) is reported once, as a warning on the ``transfigure.datasets`` logger naming the file and the
reason, and skipped: the item at that index becomes the next readable file. Only when every file
is unreadable is it an error.

Randomness is reproducible. Each item's augmentations (and, for :class:`UnpairedDataset`, its
B partner) come from a generator seeded by ``(seed, epoch, index)``; call :meth:`set_epoch` at
the start of every epoch — like ``DistributedSampler.set_epoch`` — so epochs differ, and a
resumed run repeats exactly what an uninterrupted one would have seen, whatever the number of
DataLoader workers. With ``seed=None`` each item is seeded from torch's global generator
instead (different in every DataLoader worker, and following ``torch.manual_seed``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from transfigure.datasets.transforms import array_to_tensor
from transfigure.images import ImageError, list_images, load_array

__all__ = [
    "ImageFolderDataset",
    "LabelledFolderDataset",
    "UnpairedDataset",
    "logger",
]

logger = logging.getLogger("transfigure.datasets")

PathLike = str | os.PathLike[str]
Transform = Callable[[np.ndarray], Any]

# Streams drawn from one item's generator, so adding one never shifts the others.
_STREAM_A, _STREAM_B, _STREAM_PAIR = 0, 1, 2


def _describe(source: PathLike | Iterable[PathLike]) -> str:
    if isinstance(source, str | os.PathLike):
        return str(source)
    items = [str(p) for p in source]
    return items[0] if len(items) == 1 else f"{len(items)} given paths"


def _find_images(source: PathLike | Iterable[PathLike], recursive: bool) -> list[Path]:
    """List the images of a folder (or of several files and folders); never empty."""
    if isinstance(source, str | os.PathLike):
        root = Path(source)
        if not root.exists():
            raise FileNotFoundError(f"{root}: no such folder")
        if not root.is_dir():
            raise NotADirectoryError(f"{root}: not a folder (give a folder or a list of files)")
        inputs: list[PathLike] = [root]
    else:
        inputs = list(source)
        missing = [str(p) for p in inputs if not Path(p).exists()]
        if missing:
            raise FileNotFoundError(f"no such file or folder: {', '.join(missing)}")
    try:
        paths = list_images(inputs, recursive=recursive)
    except ImageError as e:  # an unreadable folder
        raise OSError(str(e)) from e
    if not paths:
        where = "folder" if isinstance(source, str | os.PathLike) else "inputs"
        hint = "" if recursive else " (sub-folders not searched: recursive=False)"
        raise ValueError(f"no images found in {where} {_describe(source)}{hint}")
    return paths


def _transform_seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**32))


def _apply(transform: Transform | None, image: np.ndarray, seed: int) -> Any:
    if transform is None:
        return array_to_tensor(image)
    reseed = getattr(transform, "set_random_seed", None)
    if reseed is not None:
        reseed(seed)
    if _is_albumentations(transform):
        return transform(image=image)["image"]
    return transform(image)


def _is_albumentations(transform: Any) -> bool:
    # A bare albumentations Compose/transform takes keyword targets and returns a dict.
    # (Imported here, after transforms.py has switched off albumentations' update check.)
    from albumentations.core.composition import BaseCompose
    from albumentations.core.transforms_interface import BasicTransform

    return isinstance(transform, BaseCompose | BasicTransform)


class _ImageList:
    """Paths of one domain, with the skip-and-report-once policy for unreadable files."""

    def __init__(self, paths: list[Path], name: str) -> None:
        self.paths = paths
        self.name = name
        self.bad: set[int] = set()

    def __len__(self) -> int:
        return len(self.paths)

    def load(self, index: int) -> tuple[np.ndarray, int]:
        """The image at ``index``, or the next readable one after it (wrapping around).

        Returns:
            the (H, W, 3) uint8 image and the index of the file it came from.
        """
        n = len(self.paths)
        for step in range(n):
            i = (index + step) % n
            if i in self.bad:
                continue
            try:
                return load_array(self.paths[i]), i
            except ImageError as e:
                self.bad.add(i)
                logger.warning("skipping unreadable image %s: %s", e.path, e.reason)
        raise RuntimeError(
            f"every image in {self.name} is unreadable ({n} files; see the warnings)"
        )


class _SeededDataset(Dataset):
    """Per-item generators from (seed, epoch, index)."""

    seed: int | None
    epoch: int

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch that, with the seed and the index, determines each item's randomness."""
        self.epoch = int(epoch)

    def _item_streams(self, index: int, n: int) -> list[np.random.Generator]:
        """``n`` independent generators for item ``index`` in the current epoch."""
        if self.seed is None:
            root = np.random.SeedSequence(int(torch.randint(0, 2**62, ()).item()))
        else:
            root = np.random.SeedSequence([self.seed, self.epoch, index])
        return [np.random.default_rng(child) for child in root.spawn(n)]


def _check_index(index: int, length: int) -> int:
    if not -length <= index < length:
        raise IndexError(f"index {index} out of range for a dataset of {length} items")
    return index % length


class ImageFolderDataset(_SeededDataset):
    """The images of one folder (or of a list of files and folders).

    Args:
        root_or_paths: a folder, or several files and folders.
        transform: called on each (H, W, 3) uint8 RGB array; a :class:`Pipeline` (or any
            callable, or a bare albumentations transform). ``None``: the image as a (3, H, W)
            float tensor in [-1, 1], size unchanged.
        recursive: include sub-folders.
        seed: seed of the per-item augmentation randomness (see the module docstring);
            ``None`` follows torch's global generator.

    Items: whatever ``transform`` returns — with the pipelines of
    :mod:`~transfigure.datasets.transforms`, a (C, H, W) float32 tensor in [-1, 1].

    Raises:
        FileNotFoundError: the folder does not exist.
        ValueError: it holds no image files.
    """

    def __init__(
        self,
        root_or_paths: PathLike | Iterable[PathLike],
        transform: Transform | None = None,
        *,
        recursive: bool = True,
        seed: int | None = None,
    ) -> None:
        self.images = _ImageList(_find_images(root_or_paths, recursive), _describe(root_or_paths))
        self.transform = transform
        self.seed = seed
        self.epoch = 0

    @property
    def paths(self) -> list[Path]:
        """The image files, in order."""
        return self.images.paths

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> Any:
        index = _check_index(index, len(self))
        image, _ = self.images.load(index)
        (rng,) = self._item_streams(index, 1)
        return _apply(self.transform, image, _transform_seed(rng))


class UnpairedDataset(_SeededDataset):
    """Two unaligned domains, A and B, as CycleGAN trains on them.

    ``len`` is the larger of the two domains. Item ``i`` takes A's image ``i mod len(A)`` and,
    unless ``serial``, a B image drawn at random — from a generator seeded by
    ``(seed, epoch, i)``, so the pairing is reproducible and changes with :meth:`set_epoch`.
    With ``serial=True`` it takes B's image ``i mod len(B)``.

    Args:
        dir_a: domain A: a folder, or several files and folders.
        dir_b: domain B, likewise.
        transform_a: transform for A images (see :class:`ImageFolderDataset`).
        transform_b: transform for B images; ``None`` means the same as ``transform_a``.
        serial: pair A and B in order instead of drawing B at random.
        seed: seed of the pairing and augmentation randomness (``None``: torch's generator).
        recursive: include sub-folders.

    Items: ``{"A": tensor, "B": tensor, "A_path": str, "B_path": str}``.
    """

    def __init__(
        self,
        dir_a: PathLike | Iterable[PathLike],
        dir_b: PathLike | Iterable[PathLike],
        transform_a: Transform | None = None,
        transform_b: Transform | None = None,
        *,
        serial: bool = False,
        seed: int | None = 0,
        recursive: bool = True,
    ) -> None:
        self.a = _ImageList(_find_images(dir_a, recursive), f"domain A ({_describe(dir_a)})")
        self.b = _ImageList(_find_images(dir_b, recursive), f"domain B ({_describe(dir_b)})")
        self.transform_a = transform_a
        self.transform_b = transform_a if transform_b is None else transform_b
        self.serial = serial
        self.seed = seed
        self.epoch = 0

    @property
    def paths_a(self) -> list[Path]:
        return self.a.paths

    @property
    def paths_b(self) -> list[Path]:
        return self.b.paths

    def __len__(self) -> int:
        return max(len(self.a), len(self.b))

    def b_index(self, index: int) -> int:
        """Index into B of the partner of item ``index`` in the current epoch."""
        index = _check_index(index, len(self))
        return self._pair(index, self._item_streams(index, 3)[_STREAM_PAIR])

    def _pair(self, index: int, rng: np.random.Generator) -> int:
        if self.serial:
            return index % len(self.b)
        return int(rng.integers(len(self.b)))

    def __getitem__(self, index: int) -> dict[str, Any]:
        index = _check_index(index, len(self))
        streams = self._item_streams(index, 3)
        image_a, i_a = self.a.load(index % len(self.a))
        image_b, i_b = self.b.load(self._pair(index, streams[_STREAM_PAIR]))
        return {
            "A": _apply(self.transform_a, image_a, _transform_seed(streams[_STREAM_A])),
            "B": _apply(self.transform_b, image_b, _transform_seed(streams[_STREAM_B])),
            "A_path": str(self.a.paths[i_a]),
            "B_path": str(self.b.paths[i_b]),
        }


class LabelledFolderDataset(_SeededDataset):
    """Images in class sub-folders: ``root/<class>/…``, labels in sorted folder-name order.

    Args:
        root: folder whose (non-hidden) sub-folders are the classes; images inside each class
            folder are found recursively.
        transform: as for :class:`ImageFolderDataset`.
        seed: as for :class:`ImageFolderDataset`.

    Attributes:
        classes: the class names, sorted.
        class_to_idx: name → label.
        targets: the label of every file, in order.

    Items: ``(image, label)`` with ``label`` an int.

    Raises:
        FileNotFoundError: ``root`` does not exist.
        ValueError: no class sub-folders, or a class folder without images.
    """

    def __init__(
        self,
        root: PathLike,
        transform: Transform | None = None,
        *,
        seed: int | None = None,
    ) -> None:
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"{root}: no such folder")
        class_dirs = sorted(
            (p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
            key=lambda p: p.name,
        )
        if not class_dirs:
            raise ValueError(f"no class sub-folders in {root} (expected {root}/<class>/images)")
        self.root = root
        self.classes: list[str] = [p.name for p in class_dirs]
        self.class_to_idx: dict[str, int] = {c: i for i, c in enumerate(self.classes)}
        paths: list[Path] = []
        self.targets: list[int] = []
        for label, folder in enumerate(class_dirs):
            found = list_images(folder, recursive=True)
            if not found:
                raise ValueError(f"class folder {folder} holds no images")
            paths.extend(found)
            self.targets.extend([label] * len(found))
        self.images = _ImageList(paths, str(root))
        self.transform = transform
        self.seed = seed
        self.epoch = 0

    @property
    def paths(self) -> list[Path]:
        return self.images.paths

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        index = _check_index(index, len(self))
        # A bad file is replaced by the next readable one: the label is that file's.
        image, used = self.images.load(index)
        (rng,) = self._item_streams(index, 1)
        return _apply(self.transform, image, _transform_seed(rng)), self.targets[used]
