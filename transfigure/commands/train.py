"""``transfigure train``: a group with one subcommand per trainable model."""

from __future__ import annotations

import click

from transfigure.cli import LazyGroup

# Each subcommand lives beside this file; see transfigure/commands/train_*.py.
TRAINERS: dict[str, str] = {
    "dcgan": "transfigure.commands.train_gan:dcgan",
    "wgan-gp": "transfigure.commands.train_gan:wgan_gp",
    "cgan": "transfigure.commands.train_gan:cgan",
    "cyclegan": "transfigure.commands.train_cyclegan:cyclegan",
}


@click.group(cls=LazyGroup, lazy=TRAINERS)
def train() -> None:
    """Train a model; each writes a run folder (config, checkpoints, samples, metrics).

    \b
    transfigure train dcgan|wgan-gp|cgan DATA [options]
    transfigure train cyclegan DATA_ROOT [options]
    Resume an interrupted run with --resume RUN_DIR.
    """
