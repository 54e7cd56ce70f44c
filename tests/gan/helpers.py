"""Tiny configurations shared by the GAN tests."""

from __future__ import annotations

from transfigure.gan.config import TrainConfig, preset
from transfigure.gan.data import GANData, resolve_dataset
from transfigure.gan.step import GANStep
from transfigure.registry import TRAINERS, load


def tiny(name: str = "dcgan", **overrides) -> TrainConfig:
    """A preset shrunk to 16-pixel shapes and width-4 networks."""
    values = {
        "data": "shapes:32",
        "image_size": 16,
        "epochs": 2,
        "batch_size": 8,
        "log_every": 3,
        "sample_columns": 4,
        "g_width": 4,
        "d_width": 4,
        "latent_dim": 8,
    }
    values.update(overrides)
    return preset(name, **values)


def step_class(name: str) -> type[GANStep]:
    return load(TRAINERS[name].step)


def make_step(name: str = "dcgan", precision: str = "fp32", **overrides) -> GANStep:
    return step_class(name)(tiny(name, **overrides), device="cpu", precision=precision)


def shapes(n: int = 32, size: int = 16, channels: int = 3) -> GANData:
    return resolve_dataset(f"shapes:{n}", image_size=size, channels=channels, labelled=True)
