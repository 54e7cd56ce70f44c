"""The contract between a trainer and the engine.

A trainer is a :class:`Step`: it owns its networks and optimisers, performs one update from a
batch and returns its losses, gives and takes the rest of its state, draws sample images and
exports its model files. Everything else — the run folder, the epoch/step loop, resume, the
non-finite guard, Ctrl-C, precision, distribution, EMA, metrics and reports — is the engine's
(:func:`transfigure.training.loop.train`).
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Dataset

from transfigure import runtime

__all__ = ["Step", "set_requires_grad"]

# newer PyTorch renames DDP's broadcast_buffers (and warns about the old name)
_NO_BUFFER_SYNC = (
    {"forward_sync_buffers": False}
    if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
    else {"broadcast_buffers": False}
)


def set_requires_grad(nets: Sequence[nn.Module], flag: bool) -> None:
    """Freeze (``False``) or unfreeze the parameters of ``nets``."""
    for net in nets:
        net.requires_grad_(flag)


class Step:
    """Base class of every trainer's model-specific part.

    Subclasses set the class attributes, build their networks and optimisers in ``__init__``
    (after calling ``super().__init__``) and implement the methods marked *required*.

    Class attributes:
        trainer: the trainer's name (``"cyclegan"``, ``"dcgan"``...), written to ``config.json``.
        title: a human title for reports.
        panels: the metric panels of ``losses.png`` (see :func:`transfigure.plots.plot_metrics`).
        shown: loss names shown beside the progress bar.
        averaged: names of the networks (keys of :meth:`networks`) that the engine keeps an
            exponential moving average of when ``ema_decay > 0``.
        drop_last: drop an epoch's incomplete last batch.
        discriminator_losses: the discriminator loss names (``d_skip_below`` and the failure
            detectors read them); empty when the trainer has no discriminator.
        generator_losses: the generator's adversarial loss names (read by the detectors).

    Args:
        config: the trainer's config (a :class:`~transfigure.training.options.TrainOptions`).
        device: where to train.
        precision: ``fp32``, ``bf16`` or ``fp16`` (resolved; not ``auto``).
    """

    trainer: ClassVar[str] = ""
    title: ClassVar[str] = ""
    panels: ClassVar[Sequence[Any]] = ()
    shown: ClassVar[tuple[str, ...]] = ()
    averaged: ClassVar[tuple[str, ...]] = ()
    drop_last: ClassVar[bool] = False
    discriminator_losses: ClassVar[tuple[str, ...]] = ()
    generator_losses: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: Any, *, device: torch.device | str, precision: str) -> None:
        self.config = config
        self.device = torch.device(device)
        runtime.precision_dtype(precision)  # validates the name
        self.precision = precision
        # fp16 gradients underflow without loss scaling; bf16 has fp32's range and needs none
        self.scaler = torch.amp.GradScaler(
            self.device.type, enabled=precision == "fp16" and self.device.type == "cuda"
        )
        self.skip_d = False  # set by the engine from d_skip_below before each step

    # -- helpers for subclasses ----------------------------------------------------------------
    def autocast(self) -> contextlib.AbstractContextManager:
        """The run's autocast context (a no-op in fp32)."""
        return runtime.autocast(self.device, self.precision)

    def distribute(self, net: nn.Module, *, sync_buffers: bool = True) -> nn.Module:
        """``net`` wrapped in DistributedDataParallel under ``torchrun``, else ``net`` itself.

        Call the wrapper for updates whose gradients are synchronised, and the bare network
        where no gradient of it is wanted (a frozen discriminator in the generator's update).
        """
        if not runtime.is_distributed():
            return net
        ids = [self.device.index] if self.device.type == "cuda" else None
        extra = {} if sync_buffers else _NO_BUFFER_SYNC
        return DistributedDataParallel(net, device_ids=ids, **extra)

    def optimizer_step(self, loss: Tensor, optimizer: torch.optim.Optimizer) -> None:
        """``backward`` and ``step`` through the run's gradient scaler (fp16 on CUDA only)."""
        optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(optimizer)

    # -- required ------------------------------------------------------------------------------
    def networks(self) -> dict[str, nn.Module]:
        """The bare (unwrapped) networks, by name; the engine saves, checks and averages them."""
        raise NotImplementedError

    def dataset(self) -> Dataset:
        """The training data: a map-style dataset whose items the default collate can batch.
        If it has ``set_epoch(epoch)``, the engine calls it before each epoch."""
        raise NotImplementedError

    def train_step(self, batch: Any) -> dict[str, Tensor]:
        """One update from ``batch`` (already on the device); returns this step's losses as
        detached scalar tensors (the engine checks, averages and logs them)."""
        raise NotImplementedError

    @property
    def total_epochs(self) -> int:
        return int(self.config.total_epochs)

    # -- optional ------------------------------------------------------------------------------
    def describe_data(self) -> str:
        """One line about the data, for the start of the run."""
        return ""

    def state_dict(self) -> dict[str, Any]:
        """The state beyond the networks' weights: optimisers, schedules, pools, generators."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output; then apply the config's optimiser settings
        (a resumed run may change learning rates and betas)."""

    def start_epoch(self, epoch: int) -> dict[str, float]:
        """Called before each epoch (0-based); returns numbers to log with it (``lr``)."""
        return {}

    def end_epoch(self, epoch: int, means: Mapping[str, float]) -> None:
        """Called after each epoch with its mean losses (plateau schedules read them)."""

    def sample(self, nets: Mapping[str, nn.Module]) -> tuple[Tensor, int] | None:
        """Sample images ``(N, 3, H, W)`` in [0, 1] and the grid's columns, drawn with ``nets``
        (the EMA networks where averaged), or ``None``."""
        return None

    def export(
        self, run_dir: Path, nets: Mapping[str, nn.Module], info: dict[str, Any]
    ) -> list[Path]:
        """Write the model files that ``translate``/``sample`` use; ``info`` (epoch, step...)
        goes into their metadata. Returns the paths written."""
        return []

    def diversity(self) -> tuple[float, float] | None:
        """The spread of the generator's outputs for varied inputs and the data's own (mean
        pairwise distances), for the mode-collapse detector; ``None``: not measured."""
        return None

    def final_checks(self, nets: Mapping[str, nn.Module]) -> list[tuple[str, str, dict]]:
        """Checks at the end of a run, as ``(kind, message, figures)``; a kind ending in
        ``_ok`` is a passed check, any other a warning."""
        return []

    def overpowering_advice(self) -> str:
        """What helps against an overpowering discriminator, in this trainer's options."""
        return ""

    def slow_run_advice(self) -> str:
        """What to change for a quicker first run (shown when a run would take hours)."""
        return ""
