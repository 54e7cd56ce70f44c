"""An aligned edges → scenes dataset made offline, for checking paired translation (pix2pix).

The pix2pix reference's ``edges2shoes`` / ``edges2handbags`` pair photos with their edge maps
(black edges on white). :func:`edges2scenes` does the same for the procedural landscapes of
:func:`transfigure.datasets.synthetic.seasons`: Canny edges (kornia) of each scene, so a model
must put back sky, sun, hills and trees — colours the edge map does not carry — and its L1 error
to the held-out scene can be compared with the input's.

:func:`write_edges2scenes` writes the reference's aligned layout: ``root/train/`` and
``root/test/`` of ``edges|scene`` images side by side (A = edges, B = scene).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from transfigure.datasets.synthetic import seasons

__all__ = ["canny_edges", "edges2scenes", "write_edges2scenes"]


def canny_edges(
    images: np.ndarray, *, low: float = 0.1, high: float = 0.25, sigma: float = 1.0
) -> np.ndarray:
    """Edge maps of RGB images: black edges on white, like the reference's edge datasets.

    Args:
        images: uint8 (N, H, W, 3) RGB.
        low: Canny's weak threshold on the gradient magnitude of the [0, 1] grey image.
        high: its strong threshold.
        sigma: blur before the gradients, in pixels.

    Returns:
        uint8 (N, H, W, 3): 0 on edges, 255 elsewhere.
    """
    import kornia

    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"expected uint8 (N, H, W, 3) images, got {images.dtype} {images.shape}")
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0  # (N, 3, H, W)
    _magnitude, edges = kornia.filters.canny(x, low, high, sigma=(sigma, sigma))
    drawn = (1.0 - edges).clamp(0, 1).mul(255).round().to(torch.uint8)  # (N, 1, H, W)
    return drawn.permute(0, 2, 3, 1).repeat(1, 1, 1, 3).numpy()


def edges2scenes(
    n: int, *, size: int = 64, seed: int = 0, season: str = "summer"
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` aligned (edge map, scene) pairs.

    Returns:
        ``(edges, scenes)``, both uint8 (n, size, size, 3).
    """
    scenes = seasons(n, season=season, size=size, seed=seed)
    return canny_edges(scenes), scenes


def write_edges2scenes(
    root: str | Path,
    n_train: int,
    n_test: int,
    *,
    size: int = 64,
    seed: int = 0,
    season: str = "summer",
) -> Path:
    """Write ``root/train`` and ``root/test`` of ``edges|scene`` pairs (PNG, ``00000.png`` …).

    The splits use independent scenes drawn from the one seed. Returns ``root``.
    """
    root = Path(root)
    seed_train, seed_test = np.random.SeedSequence(seed).generate_state(2)
    for split, n, s in (("train", n_train, seed_train), ("test", n_test, seed_test)):
        if n < 1:
            continue
        edges, scenes = edges2scenes(n, size=size, seed=int(s), season=season)
        folder = root / split
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            pair = np.concatenate([edges[i], scenes[i]], axis=1)  # (size, 2·size, 3)
            Image.fromarray(pair).save(folder / f"{i:05d}.png")
    return root
