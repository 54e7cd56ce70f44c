"""Plumbing that every translator step on these networks shares (pix2pix, CUT).

:class:`TranslationStep` holds the memory format, the Adam betas (re-applied after a resume,
which may change them) and the epoch learning-rate schedule of
:mod:`~transfigure.cyclegan.schedule`; :func:`unpaired_dataset` builds the two-domain data of
a :class:`~transfigure.cyclegan.translation_options.TranslationOptions` config.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from transfigure.cyclegan.schedule import LRSchedule
from transfigure.cyclegan.translation_options import TranslationOptions
from transfigure.datasets.folders import UnpairedDataset
from transfigure.datasets.transforms import train_transform
from transfigure.images import list_images
from transfigure.training.step import Step

__all__ = ["TranslationStep", "unpaired_dataset"]


class TranslationStep(Step):
    """A :class:`Step` with the shared settings of :class:`TranslationOptions` applied.

    Subclasses create their optimisers, list them in :meth:`optimizers` and call
    :meth:`apply_betas`; :meth:`start_epoch` sets every optimiser's learning rate.
    """

    def __init__(
        self, config: TranslationOptions, *, device: torch.device | str, precision: str
    ) -> None:
        super().__init__(config, device=device, precision=precision)
        self.shuffle = not config.serial_batches
        channels_last = config.channels_last and self.device.type == "cuda"
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.schedule = LRSchedule(
            config.lr_policy,
            n_epochs=int(config.n_epochs or 0),
            n_epochs_decay=int(config.n_epochs_decay or 0),
            step_size=config.lr_decay_iters,
        )
        self.lr = config.lr

    def optimizers(self) -> Sequence[torch.optim.Optimizer]:
        """The step's optimisers (they share the learning rate and betas)."""
        raise NotImplementedError

    def apply_betas(self) -> None:
        """Give every optimiser the config's betas (a resumed run may change them)."""
        for opt in self.optimizers():
            for group in opt.param_groups:
                group["betas"] = (self.config.beta1, self.config.beta2)

    def start_epoch(self, epoch: int) -> dict[str, float]:
        # the totals are read again: a resumed run may extend them
        self.schedule.n_epochs = int(self.config.n_epochs or 0)
        self.schedule.n_epochs_decay = int(self.config.n_epochs_decay or 0)
        self.lr = self.config.lr * self.schedule.factor(epoch)
        for opt in self.optimizers():
            for group in opt.param_groups:
                group["lr"] = self.lr
        return {"lr": self.lr}

    def optimizer_states(self) -> dict[str, Any]:
        """The optimisers' and the schedule's state, for :meth:`state_dict`."""
        state: dict[str, Any] = {
            f"opt_{i}": o.state_dict() for i, o in enumerate(self.optimizers())
        }
        state["schedule"] = self.schedule.state_dict()
        return state

    def load_optimizer_states(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`optimizer_states`, then apply the config's betas."""
        for i, opt in enumerate(self.optimizers()):
            opt.load_state_dict(state[f"opt_{i}"])
        self.apply_betas()
        self.schedule.load_state_dict(state["schedule"])


def unpaired_dataset(cfg: Any) -> UnpairedDataset:
    """Domains A and B of ``cfg`` (``domain_dirs()``, the pipeline fields) as CycleGAN reads them.

    Raises:
        FileNotFoundError: a domain folder is missing (named).
        ValueError: a domain holds no images.
    """
    dir_a, dir_b = cfg.domain_dirs()
    for name, folder in (("domain A", dir_a), ("domain B", dir_b)):
        if not folder.is_dir():
            raise FileNotFoundError(f"{name} folder not found: {folder}")
    sources: list[Any] = [dir_a, dir_b]
    if cfg.max_dataset_size is not None:
        sources = [list_images([d], recursive=True)[: cfg.max_dataset_size] for d in sources]
        for name, paths, folder in zip(("A", "B"), sources, (dir_a, dir_b), strict=True):
            if not paths:
                raise ValueError(f"no images found in domain {name} folder {folder}")

    def pipeline(nc: int) -> Any:
        return train_transform(
            load_size=cfg.load_size,
            crop_size=cfg.crop_size,
            preprocess=cfg.preprocess,
            flip=cfg.flip,
            grayscale=nc == 1,
        )

    return UnpairedDataset(
        sources[0],
        sources[1],
        pipeline(cfg.input_nc),
        pipeline(cfg.output_nc),
        serial=cfg.serial_batches,
        seed=cfg.seed,
    )
