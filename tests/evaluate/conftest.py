"""Shared fixtures: small synthetic summer/winter folders, noisy copies, one VGG19 extractor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from transfigure.datasets.synthetic import write_seasons

SIZE = 32  # image side for tests: VGG19's relu5_4 is then 2 x 2, enough to pool
NOISE_LEVELS = (0.05, 0.15, 0.35)  # std of Gaussian noise added to images in [0, 1]


@pytest.fixture(scope="package", autouse=True)
def _one_thread():
    """Package and module fixtures run before the function-scoped autouse fixture that limits
    torch to one thread; on a shared machine two threads can be many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="package")
def seasons_root(tmp_path_factory) -> Path:
    """trainA/trainB: 24 summer / 24 winter scenes; testA/testB: 12 of each (same scenes)."""
    return write_seasons(tmp_path_factory.mktemp("seasons"), 24, 12, size=SIZE, seed=3)


@pytest.fixture(scope="package")
def noisy_dirs(seasons_root, tmp_path_factory) -> dict[float, Path]:
    """Copies of trainA with Gaussian noise of each level in NOISE_LEVELS (seeded)."""
    rng = np.random.default_rng(0)
    out = {}
    sources = sorted((seasons_root / "trainA").glob("*.png"))
    for level in NOISE_LEVELS:
        folder = tmp_path_factory.mktemp(f"noise{level}")
        for source in sources:
            image = np.asarray(Image.open(source), dtype=np.float64) / 255.0
            noisy = np.clip(image + rng.normal(0.0, level, image.shape), 0.0, 1.0)
            Image.fromarray((noisy * 255).round().astype(np.uint8)).save(folder / source.name)
        out[level] = folder
    return out


@pytest.fixture(scope="package")
def vgg_extractor():
    """The bundled VGG19, pooled relu5_4 (decoding the weights takes a second or two)."""
    from transfigure.evaluate import PooledVGG19

    return PooledVGG19()
