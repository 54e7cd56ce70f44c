"""Tiny configurations shared by the GAN tests."""

from __future__ import annotations

from transfigure.gan.config import TrainConfig, preset
from transfigure.gan.data import GANData, resolve_dataset


def tiny(name: str = "dcgan", **overrides) -> TrainConfig:
    """A preset shrunk to 16-pixel images and width-4 networks."""
    values = {
        "epochs": 2,
        "batch_size": 8,
        "log_every": 3,
        "sample_columns": 4,
        "generator": {"width": 4, "latent_dim": 8},
        "discriminator": {"width": 4},
    }
    for key, value in overrides.items():
        if key in ("generator", "discriminator"):
            values[key] = {**values[key], **value}
        else:
            values[key] = value
    return preset(name, **values)


def shapes(n: int = 32, size: int = 16, channels: int = 3) -> GANData:
    return resolve_dataset(f"shapes:{n}", image_size=size, channels=channels, labelled=True)
