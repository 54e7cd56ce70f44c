"""Image features cached on disk, keyed by file content, file size and feature extractor.

Scoring the same folders again (another run's translations against the same real images, the
probe's training domains) then costs a hash of each file instead of a network pass. One
``.npy`` file per image and extractor under ``CACHE/features/EXTRACTOR_KEY/``, where ``CACHE``
is ``$TRANSFIGURE_CACHE`` (default ``~/.cache/transfigure``); the extractor key names the
network, its weights, its layers, the image size and the precision, so features computed
differently never mix. Entries are written atomically, so several processes may share a cache.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from transfigure.fileio import atomic_path

__all__ = ["FeatureCache", "extractor_key", "file_key"]

_CHUNK = 1 << 20


def file_key(path: str | os.PathLike[str]) -> str:
    """``SHA256-SIZE`` of a file's bytes: the same image under any name or date shares it.

    Raises:
        OSError: the file cannot be read.
    """
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return f"{digest.hexdigest()}-{size}"


def extractor_key(extractor: nn.Module, *, size: int, precision: str) -> str:
    """A folder name for features of ``extractor`` at ``size`` px in ``precision``.

    Readable (network name, size, precision) plus a hash of everything that changes the
    features: the class, the weight source, the layers and the parameters' values.
    """
    digest = hashlib.sha256()
    digest.update(type(extractor).__qualname__.encode())
    digest.update(repr(getattr(extractor, "source", "")).encode())
    digest.update(repr(getattr(extractor, "layers", "")).encode())
    for name, tensor in extractor.state_dict().items():
        digest.update(name.encode())
        # A sample of the weights: enough to tell different weight files apart, cheap to hash.
        flat = tensor.detach().flatten()
        digest.update(flat[:: max(1, flat.numel() // 256)].float().cpu().numpy().tobytes())
    name = re.sub(r"[^a-z0-9]+", "-", type(extractor).__name__.lower()).strip("-")
    return f"{name}-{size}px-{precision}-{digest.hexdigest()[:16]}"


class FeatureCache:
    """Per-image feature vectors on disk for one extractor.

    Args:
        root: the cache folder (default: ``features/`` in transfigure's cache folder).
        key: the extractor's :func:`extractor_key`.
    """

    def __init__(self, key: str, root: str | os.PathLike[str] | None = None) -> None:
        if root is None:
            from transfigure.download import cache_dir

            root = cache_dir() / "features"
        self.folder = Path(root) / key

    def _path(self, file_key: str) -> Path:
        return self.folder / file_key[:2] / f"{file_key}.npy"

    def get(self, file_key: str) -> Tensor | None:
        """The ``(D,)`` float64 features stored for ``file_key``, or ``None``."""
        path = self._path(file_key)
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError):  # missing, or unreadable: computed again
            return None
        return torch.from_numpy(np.asarray(array, dtype=np.float64))

    def put(self, file_key: str, features: Tensor) -> None:
        """Store ``(D,)`` features for ``file_key`` (atomically)."""
        with atomic_path(self._path(file_key)) as tmp:
            np.save(tmp, features.detach().double().cpu().numpy(), allow_pickle=False)
