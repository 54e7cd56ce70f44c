"""The one place where trainers and model kinds are registered.

Each entry names its classes by import path, so that listing trainers (``transfigure train
--help``) imports nothing heavy, and nothing is registered as a side effect of importing a
module. Adding a trainer means a step, a config dataclass and one entry in :data:`TRAINERS`;
adding a kind of model file, one entry in :data:`MODEL_KINDS`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MODEL_KINDS", "TRAINERS", "Trainer", "load"]


@dataclass(frozen=True)
class Trainer:
    """A trainer as the command line sees it.

    Attributes:
        name: the ``transfigure train NAME`` subcommand.
        step: ``"module:Class"`` of its :class:`~transfigure.training.step.Step`.
        config: ``"module:Class"`` of its config dataclass.
        summary: one line for ``transfigure train --help``.
        help: the command's help text (paragraphs; ``\\b`` keeps a block unwrapped).
        data: ``"single"`` (one DATA argument: the config's ``data`` field) or ``"domains"``
            (DATA_ROOT, or ``--domain-a``/``--domain-b``: the fields ``data_root``,
            ``domain_a``, ``domain_b``).
        preset: field values that differ from the config's defaults.
    """

    name: str
    step: str
    config: str
    summary: str
    help: str
    data: str = "single"
    preset: dict[str, Any] = field(default_factory=dict)


# kind stored in a model file → (its architecture config class, the function that builds it)
MODEL_KINDS: dict[str, tuple[str, str]] = {
    "gan-generator": (
        "transfigure.gan.networks:GeneratorConfig",
        "transfigure.gan.networks:Generator",
    ),
    "gan-discriminator": (
        "transfigure.gan.networks:DiscriminatorConfig",
        "transfigure.gan.networks:Discriminator",
    ),
    "gan-critic": (
        "transfigure.gan.networks:DiscriminatorConfig",
        "transfigure.gan.networks:Discriminator",
    ),
    "cyclegan-generator": (
        "transfigure.cyclegan.networks:GeneratorConfig",
        "transfigure.cyclegan.networks:build_generator",
    ),
    "cyclegan-discriminator": (
        "transfigure.cyclegan.networks:DiscriminatorConfig",
        "transfigure.cyclegan.networks:build_discriminator",
    ),
}


def load(target: str) -> Any:
    """Import ``"module:attribute"``."""
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


_GAN_DATA = """\b
DATA is a folder of images (class sub-folders for cgan), "shapes" / "shapes:N" (synthetic
labelled shapes), or mnist, fashion-mnist, cifar10 (downloaded by torchvision when online).
The run folder gets generator.safetensors (for 'transfigure sample')."""

_DOMAINS = """\b
DATA_ROOT holds trainA/ and trainB/ (testA/, testB/ give the sample strips), as the reference
datasets do; or give two folders with --domain-a and --domain-b."""

_PAIRS = """\b
DATA_ROOT holds train/ of A|B images side by side (val/ or test/ give the sample strips), as the
reference's pix2pix datasets do; or give two folders whose files pair up by name with
--domain-a and --domain-b."""

TRAINERS: dict[str, Trainer] = {
    "dcgan": Trainer(
        "dcgan",
        "transfigure.gan.step:DCGANStep",
        "transfigure.gan.config:TrainConfig",
        "Train a DCGAN on images, shapes or mnist-like data.",
        "Train a DCGAN (Radford et al. 2015): BCE loss, Adam(2e-4, β1 0.5).\n\n" + _GAN_DATA,
        preset={},
    ),
    "wgan-gp": Trainer(
        "wgan-gp",
        "transfigure.gan.step:WGANGPStep",
        "transfigure.gan.config:TrainConfig",
        "Train a WGAN-GP (Wasserstein loss, gradient penalty).",
        "Train a WGAN-GP (Gulrajani et al. 2017): Wasserstein loss, gradient penalty 10, 5 critic "
        "steps per generator step, Adam(1e-4, β 0/0.9), layer-norm critic.\n\n" + _GAN_DATA,
        preset={
            "loss": "wasserstein",
            "n_critic": 5,
            "gp_weight": 10.0,
            "lr_g": 1e-4,
            "lr_d": 1e-4,
            "beta1": 0.0,
            "beta2": 0.9,
            "d_norm": "layer",
        },
    ),
    "cgan": Trainer(
        "cgan",
        "transfigure.gan.step:CGANStep",
        "transfigure.gan.config:TrainConfig",
        "Train a conditional GAN on labelled data.",
        "Train a conditional DCGAN (Mirza & Osindero 2014) on labelled data: class sub-folders, "
        "shapes, mnist, fashion-mnist or cifar10. The discriminator also sees real images under "
        "wrong labels as fakes (Reed et al. 2016); the generator upsamples by nearest neighbour "
        "and convolution.\n\n" + _GAN_DATA,
        # Departures from Mirza & Osindero: the matching-aware discriminator and nearest
        # upsampling in G (measured in gan/config.py)
        preset={"conditional": True, "mismatch": True, "upsample": "nearest"},
    ),
    "cyclegan": Trainer(
        "cyclegan",
        "transfigure.cyclegan.step:CycleGANStep",
        "transfigure.cyclegan.config:TrainConfig",
        "Train a CycleGAN between two unpaired image domains.",
        "Train a CycleGAN (Zhu et al. 2017) between two unpaired image domains, with the "
        "reference's defaults.\n\n" + _DOMAINS + "\n\nThe run folder gets "
        "generator_a2b.safetensors and generator_b2a.safetensors (for 'transfigure translate').",
        data="domains",
    ),
    "pix2pix": Trainer(
        "pix2pix",
        "transfigure.pix2pix.step:Pix2PixStep",
        "transfigure.pix2pix.config:TrainConfig",
        "Train pix2pix on aligned image pairs.",
        "Train pix2pix (Isola et al. 2017) on aligned pairs, with the reference's defaults: "
        "U-Net 256 with dropout, 70x70 PatchGAN on (input, output) pairs, batch norm, vanilla "
        "GAN loss + 100 x L1.\n\n" + _PAIRS + "\n\nThe run folder gets "
        "generator_a2b.safetensors (generator_b2a with --direction BtoA) for 'transfigure "
        "translate'; dropout stays on when translating, as in the reference, unless "
        "--no-dropout-at-test.",
        data="domains",
    ),
    "cut": Trainer(
        "cut",
        "transfigure.cut.step:CUTStep",
        "transfigure.cut.config:TrainConfig",
        "Train CUT or FastCUT (contrastive unpaired translation).",
        "Train CUT or FastCUT (Park et al. 2020) from domain A to domain B: one generator, a "
        "PatchGAN and the PatchNCE loss, with the reference's defaults. --mode fastcut: "
        "lambda-nce 10, no identity term, flip-equivariance, 150 + 50 epochs.\n\n"
        + _DOMAINS
        + "\n\nThe run folder gets generator_a2b.safetensors (for 'transfigure translate').",
        data="domains",
    ),
}
