"""Aligned pairs for paired translation (pix2pix): A|B images side by side, or two folders.

The pix2pix reference (``data/aligned_dataset.py``) reads one folder of images holding the A
and B halves side by side, split down the middle. :class:`AlignedDataset` reads that layout and
also two folders whose files pair up by name (``label/0001.png`` with ``photo/0001.jpg``: the
relative path without its extension is the name).

Both images of a pair go through *one* albumentations call (``additional_targets``), so they are
resized, cropped and flipped identically. Problems are named on the ``transfigure.datasets``
logger and the pair is skipped: a file without a partner (when the dataset is built), and, when
first read, an unreadable file, a side-by-side image whose width is odd or too small to split,
and a pair whose two images differ in size. As in :mod:`transfigure.datasets.folders`, the item
at a skipped index becomes the next usable pair, and only a dataset with no usable pair at all
is an error.

Randomness follows the other datasets: each item's augmentation is seeded by
``(seed, epoch, index)``; call :meth:`AlignedDataset.set_epoch` at the start of every epoch.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from transfigure.datasets.folders import (
    PathLike,
    _check_index,
    _describe,
    _find_images,
    _SeededDataset,
    _transform_seed,
    logger,
)
from transfigure.datasets.transforms import Pipeline, _as_rgb, array_to_tensor
from transfigure.images import ImageError, load_array

__all__ = ["DIRECTIONS", "AlignedDataset", "split_pair"]

#: The reference's ``--direction`` values: which half is the input.
DIRECTIONS = ("AtoB", "BtoA")


def split_pair(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split a side-by-side (H, 2W, C) image into its left (A) and right (B) halves.

    Raises:
        ValueError: the width is odd or smaller than 2 (no middle to split at).
    """
    width = image.shape[1]
    if width < 2 or width % 2:
        raise ValueError(f"width {width} cannot be split into two equal halves")
    half = width // 2
    return image[:, :half], image[:, half:]


class _JointTransform:
    """A :class:`Pipeline` applied to A and B in one albumentations call (same random draws)."""

    def __init__(self, pipeline: Pipeline) -> None:
        import albumentations as A

        self.compose = A.Compose(
            list(pipeline.compose.transforms), additional_targets={"image_b": "image"}
        )

    def __call__(self, a: np.ndarray, b: np.ndarray, seed: int) -> tuple[Any, Any]:
        self.compose.set_random_seed(seed)
        out = self.compose(image=_as_rgb(a), image_b=_as_rgb(b))
        return out["image"], out["image_b"]


def _pair_key(path: Path, root: Path) -> str:
    return str(path.relative_to(root).with_suffix(""))


def _pair_by_name(
    dir_a: PathLike, dir_b: PathLike, recursive: bool
) -> list[tuple[Path, Path | None]]:
    root_a, root_b = Path(dir_a), Path(dir_b)
    files_a = _find_images(root_a, recursive)
    files_b = _find_images(root_b, recursive)
    by_name_b: dict[str, Path] = {}
    for path in files_b:
        key = _pair_key(path, root_b)
        if key in by_name_b:
            logger.warning(
                "skipping %s: %s has the same name; which one pairs is ambiguous",
                path,
                by_name_b[key],
            )
            continue
        by_name_b[key] = path
    pairs: list[tuple[Path, Path | None]] = []
    used: set[str] = set()
    for path in files_a:
        key = _pair_key(path, root_a)
        partner = by_name_b.get(key)
        if partner is None:
            logger.warning("skipping %s: no partner named %s.* in %s", path, key, root_b)
        elif key in used:
            logger.warning("skipping %s: another file in %s has the same name", path, root_a)
        else:
            used.add(key)
            pairs.append((path, partner))
    for key, path in by_name_b.items():
        if key not in used:
            logger.warning("skipping %s: no partner named %s.* in %s", path, key, root_a)
    if not pairs:
        raise ValueError(f"no pairs: no file name in {root_a} matches one in {root_b}")
    return pairs


class AlignedDataset(_SeededDataset):
    """Paired images (A, B) for pix2pix.

    Args:
        root_or_paths: a folder (or several files and folders) of side-by-side A|B images —
            the reference's ``DATA_ROOT/train`` — split down the middle. Leave it ``None`` and
            give ``dir_a`` and ``dir_b`` instead for two folders paired by file name.
        dir_a: folder of A images (with ``dir_b``).
        dir_b: folder of B images, the same relative names (any image extension).
        transform: a :class:`~transfigure.datasets.transforms.Pipeline` applied to both images
            with the same random crop and flip; ``None``: both as (3, H, W) tensors in [-1, 1].
        direction: ``AtoB`` (A is the input) or ``BtoA`` (the halves swap roles).
        seed: seed of the augmentation randomness (``None``: torch's global generator).
        recursive: include sub-folders.

    Items: ``{"A": input, "B": target, "A_path": str, "B_path": str}`` — with ``BtoA``, ``"A"``
    is the image from the B side, as in the reference. Side-by-side pairs give the same path for
    both.

    Raises:
        FileNotFoundError: a folder does not exist.
        ValueError: no images, no pair, or a bad argument combination.
    """

    def __init__(
        self,
        root_or_paths: PathLike | Iterable[PathLike] | None = None,
        *,
        dir_a: PathLike | None = None,
        dir_b: PathLike | None = None,
        transform: Pipeline | None = None,
        direction: str = "AtoB",
        seed: int | None = 0,
        recursive: bool = True,
    ) -> None:
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
        if (root_or_paths is None) == (dir_a is None and dir_b is None):
            raise ValueError("give either a folder of A|B images or both dir_a and dir_b")
        if root_or_paths is None and (dir_a is None or dir_b is None):
            raise ValueError("dir_a and dir_b go together")
        self.side_by_side = root_or_paths is not None
        if root_or_paths is not None:
            self.pairs: list[tuple[Path, Path | None]] = [
                (p, None) for p in _find_images(root_or_paths, recursive)
            ]
            self.name = _describe(root_or_paths)
        else:
            assert dir_a is not None and dir_b is not None
            self.pairs = _pair_by_name(dir_a, dir_b, recursive)
            self.name = f"{dir_a} and {dir_b}"
        self.transform = transform
        self._joint = None if transform is None else _JointTransform(transform)
        self.direction = direction
        self.seed = seed
        self.epoch = 0
        self.bad: set[int] = set()

    def __len__(self) -> int:
        return len(self.pairs)

    def _read(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The A and B images of pair ``index``; raises ValueError / ImageError if unusable."""
        path_a, path_b = self.pairs[index]
        if path_b is None:
            return split_pair(load_array(path_a))
        a, b = load_array(path_a), load_array(path_b)
        if a.shape[:2] != b.shape[:2]:
            raise ValueError(
                f"its partner {path_b} is {b.shape[1]}×{b.shape[0]}, it is "
                f"{a.shape[1]}×{a.shape[0]}; pairs must have the same size"
            )
        return a, b

    def _load(self, index: int) -> tuple[np.ndarray, np.ndarray, int]:
        n = len(self.pairs)
        for step in range(n):
            i = (index + step) % n
            if i in self.bad:
                continue
            try:
                a, b = self._read(i)
            except ImageError as e:
                self.bad.add(i)
                logger.warning("skipping unreadable image %s: %s", e.path, e.reason)
                continue
            except ValueError as e:
                self.bad.add(i)
                logger.warning("skipping %s: %s", self.pairs[i][0], e)
                continue
            return a, b, i
        raise RuntimeError(f"no usable pair in {self.name} ({n} files; see the warnings)")

    def __getitem__(self, index: int) -> dict[str, Any]:
        index = _check_index(index, len(self))
        a, b, used = self._load(index)
        (rng,) = self._item_streams(index, 1)
        if self._joint is None:
            out_a, out_b = array_to_tensor(a), array_to_tensor(b)
        else:
            out_a, out_b = self._joint(a, b, _transform_seed(rng))
        path_a, path_b = self.pairs[used]
        path_a_s, path_b_s = str(path_a), str(path_b if path_b is not None else path_a)
        if self.direction == "BtoA":
            out_a, out_b, path_a_s, path_b_s = out_b, out_a, path_b_s, path_a_s
        return {"A": out_a, "B": out_b, "A_path": path_a_s, "B_path": path_b_s}
