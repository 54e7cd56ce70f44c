"""One training loop for DCGAN, WGAN-GP and CGAN; what differs is the :class:`TrainConfig`.

The step itself (D, then G every ``n_critic`` steps, EMA, mixed precision, DDP) is
:class:`transfigure.gan.trainer.GANTrainer`; this module runs it over epochs, writes the run
folder and resumes it exactly where it stopped.

The run folder (written by rank 0 only)::

    config.json              the TrainConfig, the data and its class names
    checkpoints/latest.pt    full training state (weights, optimisers, counters, random states)
    samples/epoch_XXX.png    the fixed-latent grid (one row per label for a conditional GAN)
    metrics.jsonl            D/G losses (+ Wasserstein estimate, gradient penalty) per log window
    generator.safetensors    the EMA generator, exported every epoch (``transfigure sample``)
    discriminator.safetensors / critic.safetensors
    losses.png, progress.gif
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader

import transfigure
from transfigure import runtime
from transfigure.checkpoint import (
    ModelFileError,
    load_training_state,
    save_model,
    save_training_state,
)
from transfigure.fileio import append_jsonl, atomic_write, write_json
from transfigure.gan.config import TrainConfig
from transfigure.gan.data import GANData
from transfigure.gan.report import plot_losses, progress_gif
from transfigure.gan.sampling import generate, latents, to_unit_range
from transfigure.gan.trainer import (
    EMA,
    GANTrainer,
    NonFiniteLossError,
    TrainingError,
    epoch_batches,
    recalibrate_batch_norm,
)
from transfigure.images import save_grid
from transfigure.progress import Event
from transfigure.report import write_run_report

__all__ = [
    "CHECKPOINT",
    "CONFIG_FILE",
    "EMA",
    "GANTrainer",
    "NonFiniteLossError",
    "RunInfo",
    "TrainResult",
    "TrainingError",
    "epoch_batches",
    "read_run",
    "recalibrate_batch_norm",
    "train",
]

CONFIG_FILE = "config.json"
CHECKPOINT = "checkpoints/latest.pt"
METRICS = "metrics.jsonl"
GENERATOR_FILE = "generator.safetensors"


@dataclass
class TrainResult:
    """What a finished (or stopped) run left behind.

    Attributes:
        run_dir: the run folder.
        generator: the exported EMA generator model file.
        discriminator: the exported discriminator / critic model file.
        epochs: epochs completed.
        steps: discriminator steps completed.
        samples: the per-epoch sample grids, in order.
    """

    run_dir: Path
    generator: Path
    discriminator: Path
    epochs: int
    steps: int
    samples: list[Path] = field(default_factory=list)


@dataclass
class RunInfo:
    """The contents of a run's ``config.json``."""

    config: TrainConfig
    data: str
    classes: tuple[str, ...]
    preset: str
    limit: int | None = None


class _Window:
    """Averages step numbers between two metrics lines."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def add(self, stats: dict[str, float]) -> None:
        for k, v in stats.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
            self.counts[k] = self.counts.get(k, 0) + 1

    def means(self) -> dict[str, float]:
        return {k: self.sums[k] / self.counts[k] for k in self.sums}

    def __bool__(self) -> bool:
        return bool(self.counts)


def read_run(run_dir: str | Path) -> RunInfo:
    """Read a run folder's ``config.json``.

    Raises:
        TrainingError: no run there, or an unreadable config.
    """
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise TrainingError(f"{run_dir}: not a GAN run folder (no {CONFIG_FILE})")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return RunInfo(
            config=TrainConfig.from_dict(raw["config"]),
            data=str(raw["data"]),
            classes=tuple(raw.get("classes", ())),
            preset=str(raw.get("preset", "")),
            limit=raw.get("limit"),
        )
    except (ValueError, KeyError, TypeError) as e:
        raise TrainingError(f"{path}: unreadable run config: {e}") from e


def _truncate_metrics(path: Path, last_step: int) -> None:
    """Drop metrics lines written after the checkpoint being resumed (they will be redone)."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if json.loads(line).get("step", 0) <= last_step:
                kept.append(line)
        except (json.JSONDecodeError, AttributeError):
            continue
    with atomic_write(path, "w") as f:
        f.write("".join(k + "\n" for k in kept))


class _Run:
    """The run folder side of training: files, events and the epoch loop (rank 0 writes)."""

    def __init__(
        self,
        trainer: GANTrainer,
        data: GANData,
        run_dir: Path,
        *,
        preset: str,
        callback: Callable[[Event], None] | None,
    ) -> None:
        self.trainer = trainer
        self.config = trainer.config
        self.data = data
        self.run_dir = run_dir
        self.preset = preset
        self.main = runtime.is_main_process()
        self.callback = callback if self.main else None
        self.rank = runtime.get_rank()
        self.world = runtime.get_world_size()
        self.window = _Window()
        cfg = self.config
        # the fixed latent batch: every epoch's grid shows the same z (per label for a CGAN)
        k = cfg.generator.n_classes
        cols = cfg.sample_columns
        if k:
            self.fixed_z = latents(cols, cfg.generator.latent_dim, seed=cfg.seed).repeat(k, 1)
            self.fixed_labels: Tensor | None = torch.arange(k).repeat_interleave(cols)
        else:
            self.fixed_z = latents(cols * cols, cfg.generator.latent_dim, seed=cfg.seed)
            self.fixed_labels = None

    # -- files ---------------------------------------------------------------------------------
    @property
    def disc_file(self) -> Path:
        name = "critic" if self.config.is_critic else "discriminator"
        return self.run_dir / f"{name}.safetensors"

    def write_config(self) -> None:
        if self.main:
            write_json(
                self.run_dir / CONFIG_FILE,
                {
                    "preset": self.preset,
                    "data": self.data.spec,
                    "limit": self.data.limit,
                    "classes": list(self.data.classes),
                    "images": len(self.data),
                    "config": self.config.to_dict(),
                    "transfigure_version": transfigure.__version__,
                },
            )

    def emit(self, **kwargs: Any) -> None:
        if self.callback is not None:
            self.callback(Event(**kwargs))

    def log_metrics(self, *, end_of_epoch: bool) -> None:
        if not self.window:
            return
        t = self.trainer
        row: dict[str, Any] = {
            "epoch": t.epoch + (0 if end_of_epoch else 1),
            "step": t.global_step,
            "g_steps": t.g_steps,
        }
        row.update(self.window.means())
        if self.config.is_critic:
            row["wasserstein"] = row["d_real"] - row["d_fake"]
        row["end_of_epoch"] = end_of_epoch
        if self.main:
            append_jsonl(self.run_dir / METRICS, row)
        self.window = _Window()

    def save_checkpoint(self) -> None:
        state = self.trainer.state_dict()
        rng = runtime.get_rng_state()
        if runtime.is_distributed():
            import torch.distributed as dist

            gathered: list[Any] = [None] * self.world
            dist.all_gather_object(gathered, rng)
            state["rng"] = gathered
        else:
            state["rng"] = [rng]
        state["world_size"] = self.world
        if self.main:
            path = save_training_state(self.run_dir / CHECKPOINT, state)
            keep = self.config.keep_every
            if keep and self.trainer.step_in_epoch == 0 and self.trainer.epoch % keep == 0:
                save_training_state(path.with_name(f"epoch_{self.trainer.epoch:03d}.pt"), state)
        runtime.barrier()

    def load_checkpoint(self) -> None:
        path = self.run_dir / CHECKPOINT
        try:
            state = load_training_state(path, map_location=self.trainer.device)
        except ModelFileError as e:
            raise TrainingError(f"cannot resume: {e}") from e
        try:
            self.trainer.load_state_dict(state)
        except (RuntimeError, KeyError, ValueError) as e:
            raise TrainingError(f"{path}: does not fit this run's config: {e}") from e
        rngs = state.get("rng") or []
        if len(rngs) == self.world:
            runtime.set_rng_state(_to_cpu(rngs[self.rank]))
        else:  # a different number of processes: exactness is impossible; stay reproducible
            runtime.seed_everything(self.config.seed + 1000 * self.trainer.global_step + self.rank)
        if self.main:
            _truncate_metrics(self.run_dir / METRICS, self.trainer.global_step)

    def end_of_epoch(self) -> Path | None:
        """Sample grid, model files, checkpoint and plots (rank 0), in that order, so that a
        checkpoint always comes after the files of its epoch."""
        t, cfg = self.trainer, self.config
        grid_path = None
        if self.main:
            g = t.sampling_generator(seed=cfg.seed)
            images = generate(g, self.fixed_z, self.fixed_labels)
            grid_path = save_grid(
                to_unit_range(images),
                self.run_dir / "samples" / f"epoch_{t.epoch:03d}.png",
                nrow=cfg.sample_columns,
            )
            extra = {
                "classes": list(self.data.classes),
                "epoch": t.epoch,
                "step": t.global_step,
                "ema": t.ema is not None,
                "preset": self.preset,
                "data": self.data.spec,
            }
            save_model(
                g,
                self.run_dir / GENERATOR_FILE,
                kind="gan-generator",
                config=cfg.generator,
                extra=extra,
            )
            kind = "gan-critic" if cfg.is_critic else "gan-discriminator"
            save_model(
                t.discriminator, self.disc_file, kind=kind, config=cfg.discriminator, extra=extra
            )
        self.save_checkpoint()
        if self.main:
            plot_losses(self.run_dir / METRICS, self.run_dir / "losses.png")
            progress_gif(self.sample_paths(), self.run_dir / "progress.gif")
            write_run_report(
                self.run_dir, title=f"{self.preset.upper() or 'GAN'} run {self.run_dir.name}"
            )
        return grid_path

    def sample_paths(self) -> list[Path]:
        return [
            self.run_dir / "samples" / f"epoch_{e:03d}.png"
            for e in range(1, self.trainer.epoch + 1)
            if (self.run_dir / "samples" / f"epoch_{e:03d}.png").is_file()
        ]

    # -- the loop ------------------------------------------------------------------------------
    def fit(self) -> None:
        t, cfg = self.trainer, self.config
        n = len(self.data)
        device = t.device
        while t.epoch < cfg.epochs:
            batches = epoch_batches(
                n,
                epoch=t.epoch,
                batch_size=cfg.batch_size,
                seed=cfg.seed,
                rank=self.rank,
                world_size=self.world,
            )
            total = len(batches)
            if total == 0:
                raise TrainingError(
                    f"the dataset has {n} images: fewer than one batch of {cfg.batch_size} per "
                    f"process; lower --batch-size"
                )
            task = f"epoch {t.epoch + 1}/{cfg.epochs}"
            loader = DataLoader(
                self.data.dataset,
                batch_sampler=batches[t.step_in_epoch :],
                num_workers=cfg.num_workers,
                pin_memory=device.type == "cuda",
                # its own generator: creating the iterator must not consume global randomness
                generator=torch.Generator().manual_seed(cfg.seed + t.epoch),
            )
            epoch_stats = _Window()
            for real, labels in loader:
                real = real.to(device, non_blocking=True)
                labels = labels.to(device, non_blocking=True)
                stats = t.train_step(real, labels)
                bad = [k for k, v in stats.items() if not math.isfinite(v)]
                if bad:
                    raise NonFiniteLossError(
                        f"non-finite {', '.join(f'{k}={stats[k]}' for k in bad)} at epoch "
                        f"{t.epoch + 1}, step {t.global_step}: training stopped. The last good "
                        f"checkpoint is kept in {self.run_dir / CHECKPOINT}; lower the learning "
                        "rates, use --precision fp32, or add a gradient penalty, then --resume"
                    )
                t.step_in_epoch += 1
                self.window.add(stats)
                epoch_stats.add(stats)
                shown = {"D": stats["loss_d"]}
                if "loss_g" in stats:
                    shown["G"] = stats["loss_g"]
                self.emit(
                    task=task, completed=t.step_in_epoch, total=total, unit="step", metrics=shown
                )
                if t.global_step % cfg.log_every == 0 and t.step_in_epoch < total:
                    self.log_metrics(end_of_epoch=False)
                if (
                    cfg.checkpoint_every
                    and t.global_step % cfg.checkpoint_every == 0
                    and t.step_in_epoch < total
                ):
                    self.log_metrics(end_of_epoch=False)
                    self.save_checkpoint()
            t.epoch += 1
            t.step_in_epoch = 0
            means = epoch_stats.means()
            self.log_metrics(end_of_epoch=True)
            grid = self.end_of_epoch()
            summary = "  ".join(
                f"{k} {v:.4f}" for k, v in means.items() if k in ("loss_d", "loss_g", "gp")
            )
            self.emit(
                task=task,
                completed=total,
                total=total,
                unit="step",
                done=True,
                message=f"epoch {t.epoch}/{cfg.epochs}: {summary}" + (f" → {grid}" if grid else ""),
            )


def _to_cpu(obj: Any) -> Any:
    if isinstance(obj, Tensor):
        return obj.cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def train(
    config: TrainConfig,
    data: GANData,
    run_dir: str | Path,
    *,
    device: torch.device | str = "cpu",
    resume: bool = False,
    preset: str = "",
    callback: Callable[[Event], None] | None = None,
) -> TrainResult:
    """Train a DCGAN / WGAN-GP / CGAN and write its run folder.

    Under ``torchrun`` each process trains on its shard of every epoch with
    DistributedDataParallel (gloo on CPU, NCCL on CUDA); only rank 0 writes files.

    Args:
        config: the configuration; its networks are fitted to the data here.
        data: the training data (:func:`transfigure.gan.data.resolve_dataset`).
        run_dir: the run folder (created).
        device: where to train.
        resume: continue the run in ``run_dir`` from ``checkpoints/latest.pt``, exactly where it
            stopped (bit-identical on the CPU with the same number of processes). ``config``
            should be the run's own (:func:`read_run`); only ``epochs`` may grow.
        preset: the preset name, recorded in ``config.json`` and the model files.
        callback: receives progress :class:`~transfigure.progress.Event` s (rank 0 only).

    Returns:
        A :class:`TrainResult`.

    Raises:
        TrainingError: a run already exists in ``run_dir`` (without ``resume``), nothing to
            resume, a dataset smaller than one batch, or a checkpoint that does not fit.
        NonFiniteLossError: a loss became NaN/inf; the last good checkpoint stays on disk.
    """
    run_dir = Path(run_dir)
    device = torch.device(device)
    image = data.dataset[0][0] if len(data) else None
    if image is None:
        raise TrainingError(f"{data.spec}: the dataset is empty")
    config = config.for_data(
        image_size=int(image.shape[-1]), channels=int(image.shape[0]), n_classes=len(data.classes)
    )
    if not resume and (run_dir / CHECKPOINT).exists():
        raise TrainingError(
            f"{run_dir} already holds a run; continue it with --resume {run_dir} or choose "
            "another output folder"
        )
    if resume and not (run_dir / CHECKPOINT).exists():
        raise TrainingError(f"{run_dir}: nothing to resume (no {CHECKPOINT})")

    runtime.init_distributed(device)
    rank = runtime.get_rank()
    # identical initial weights on every rank (DDP also broadcasts rank 0's), then per-rank noise
    runtime.seed_everything(config.seed)
    trainer = GANTrainer(config, device=device)
    runtime.seed_everything(config.seed + rank)
    run = _Run(trainer, data, run_dir, preset=preset, callback=callback)
    if runtime.is_main_process():
        run_dir.mkdir(parents=True, exist_ok=True)
    runtime.barrier()
    if resume:
        run.load_checkpoint()
    run.write_config()
    run.emit(task="train", message=f"{preset or 'gan'}: {data.description}; run folder {run_dir}")
    if trainer.epoch >= config.epochs:
        run.emit(
            task="train",
            message=f"the run has already trained {trainer.epoch} epoch(s); nothing to do "
            "(resume with a larger --epochs to extend it)",
        )
    run.fit()
    return TrainResult(
        run_dir=run_dir,
        generator=run_dir / GENERATOR_FILE,
        discriminator=run.disc_file,
        epochs=trainer.epoch,
        steps=trainer.global_step,
        samples=run.sample_paths(),
    )
