"""The training engine: every trainer's epochs and steps run here.

:func:`train` takes a :class:`~transfigure.training.step.Step` class and its config and owns
everything that is not model-specific:

1. the run folder (:mod:`.run`): config, metrics, checkpoints, exported models, plots, report;
2. the epoch/step loop over a data order that is a pure function of ``(seed, epoch)``, so that
   a resumed run skips exactly the batches already done;
3. the guards: losses are checked every step and weights before anything is written, so a
   non-finite value never reaches the disk; a run that goes non-finite stops with a message
   naming the step, the value and the newest finite checkpoint;
4. checkpoints every ``checkpoint_every`` steps and at epoch ends (with every rank's random
   state), a clean stop at a step boundary on the first Ctrl-C (a second one aborts), and
   ``max_steps``;
5. precision (autocast through the step; a gradient scaler for fp16), DistributedDataParallel
   set-up under ``torchrun`` (rank 0 writes), and EMA of the networks a step names.

On the CPU with one process, a run stopped at any point (even by ``kill -9``) and resumed from
its last checkpoint ends with weights bit-identical to an uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import shutil
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, DistributedSampler

from transfigure import runtime
from transfigure.checkpoint import ModelFileError, load_training_state, save_training_state
from transfigure.events import Callback, Event
from transfigure.training.ema import EMA
from transfigure.training.monitor import Finding, Monitor
from transfigure.training.options import config_from_dict, config_to_dict, resumable_fields
from transfigure.training.run import RunFolder, read_run_config
from transfigure.training.step import Step

__all__ = [
    "NonFiniteError",
    "export_models",
    "TrainResult",
    "TrainingError",
    "epoch_batches",
    "load_config",
    "train",
]

_FORMAT = "transfigure.training/1"


class TrainingError(Exception):
    """A training run cannot start or continue; the message says why and what to do."""


class NonFiniteError(TrainingError):
    """A loss or a weight became NaN or infinite; the files on disk are the last finite ones."""


@dataclass
class TrainResult:
    """What a finished (or stopped) run left behind.

    Attributes:
        run_dir: the run folder.
        models: the exported model files.
        checkpoint: ``checkpoints/latest.pt`` (``None`` if none was written).
        epochs: epochs completed.
        steps: steps completed (in all calls).
        samples: the per-epoch sample images, in order.
        stopped: why the run ended early (``"max_steps"``), or ``None``.
    """

    run_dir: Path
    models: list[Path] = field(default_factory=list)
    checkpoint: Path | None = None
    epochs: int = 0
    steps: int = 0
    samples: list[Path] = field(default_factory=list)
    stopped: str | None = None


def epoch_batches(
    n: int,
    *,
    epoch: int,
    batch_size: int,
    seed: int,
    rank: int = 0,
    world_size: int = 1,
    shuffle: bool = True,
    drop_last: bool = False,
) -> list[list[int]]:
    """This process's batches of dataset indices for ``epoch``.

    The order depends only on ``(seed, epoch)`` (``DistributedSampler``'s shuffle, split across
    ranks), so resuming mid-epoch just skips the batches done.
    """
    sampler = DistributedSampler(
        range(n),
        num_replicas=world_size,
        rank=rank,
        shuffle=shuffle,
        seed=seed,
        drop_last=world_size > 1,
    )
    sampler.set_epoch(epoch)
    indices = list(sampler)
    stop = len(indices) - batch_size + 1 if drop_last else len(indices)
    return [indices[i : i + batch_size] for i in range(0, max(stop, 0), batch_size)]


def load_config(config_cls: type, run_dir: str | Path, trainer: str) -> Any:
    """The config stored in a run folder, for ``--resume``.

    Raises:
        TrainingError: no run there, a run of another trainer, or an unreadable config.
    """
    try:
        record = read_run_config(run_dir)
    except (FileNotFoundError, ValueError) as e:
        raise TrainingError(str(e)) from e
    if record["trainer"] != trainer:
        raise TrainingError(
            f"{run_dir} is a {record['trainer']} run: resume it with "
            f"'transfigure train {record['trainer']} --resume {run_dir}'"
        )
    try:
        return config_from_dict(config_cls, record["config"])
    except (TypeError, ValueError) as e:
        raise TrainingError(f"{run_dir}: the run's config does not load: {e}") from e


class _StopRequest:
    """Turns the first Ctrl-C into a request to stop at the next step boundary (so the
    checkpoint written on the way out is consistent); a second Ctrl-C interrupts at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> _StopRequest:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch


def _to_cpu(obj: Any) -> Any:
    if isinstance(obj, Tensor):
        return obj.cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def _first_non_finite(nets: Mapping[str, nn.Module]) -> str | None:
    """The name of the first parameter or buffer holding NaN/inf, or ``None``."""
    for name, net in nets.items():
        for tname, t in itertools.chain(net.named_parameters(), net.named_buffers()):
            if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                return f"{name}.{tname}"
    return None


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} hours"


def _resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` trains in fp32 on the CPU (bf16 training is not validated there) and with bf16
    autocast on GPUs that support it."""
    if precision != "auto":
        runtime.precision_dtype(precision)  # validates
        return precision
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return "bf16"
    return "fp32"


class _Window:
    """Sums of the logged numbers since the last metrics line (each counted over the steps
    that reported it: a generator loss only on generator steps)."""

    def __init__(self, state: Mapping[str, Any] | None = None) -> None:
        self.sums: dict[str, float] = dict((state or {}).get("sums", {}))
        self.counts: dict[str, int] = dict((state or {}).get("counts", {}))

    def add(self, values: Mapping[str, float]) -> None:
        for k, v in values.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
            self.counts[k] = self.counts.get(k, 0) + 1

    def means(self) -> dict[str, float]:
        return {k: v / self.counts[k] for k, v in self.sums.items()}

    def state(self) -> dict[str, Any]:
        return {"sums": dict(self.sums), "counts": dict(self.counts)}


class _Engine:
    def __init__(
        self,
        step: Step,
        run: RunFolder,
        *,
        callback: Callback | None,
        dist: runtime.DistInfo,
    ) -> None:
        self.step = step
        self.config = step.config
        self.run = run
        self.dist = dist
        self.main = dist.rank == 0
        self.callback = callback if self.main else None
        self.epoch = 0
        self.step_in_epoch = 0
        self.global_step = 0
        self.window = _Window()
        self.epoch_window = _Window()
        self.emas: dict[str, EMA] = {}
        if self.config.ema_decay > 0:
            nets = step.networks()
            self.emas = {n: EMA(nets[n], self.config.ema_decay) for n in step.averaged}
        self.last_good: tuple[Path, int] | None = None
        self.result = TrainResult(run.path)
        self.last_d_loss: float | None = None
        self.monitor = Monitor(
            step.discriminator_losses,
            step.generator_losses,
            watch_every=self.config.watch_every,
            advice=step.overpowering_advice(),
        )

    def report(self, finding: Finding) -> None:
        """Show a detector's finding and keep it in ``diagnostics.jsonl`` (the run page)."""
        ok = finding.kind.endswith("_ok")
        self.emit(task="train", level="info" if ok else "warning", message=finding.message)
        if self.main:
            from transfigure.fileio import append_jsonl

            append_jsonl(self.run.path / "diagnostics.jsonl", finding.to_dict())

    # -- events ------------------------------------------------------------------------------
    def emit(self, **kwargs: Any) -> None:
        if self.callback is not None:
            self.callback(Event(**kwargs))

    # -- state -------------------------------------------------------------------------------
    def sampling_nets(self) -> dict[str, nn.Module]:
        nets = dict(self.step.networks())
        nets.update({n: ema.model for n, ema in self.emas.items()})
        return nets

    def state_dict(self) -> dict[str, Any]:
        return {
            "format": _FORMAT,
            "trainer": self.step.trainer,
            "config": config_to_dict(self.config),
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "global_step": self.global_step,
            "networks": {n: net.state_dict() for n, net in self.step.networks().items()},
            "ema": {n: ema.state_dict() for n, ema in self.emas.items()},
            "step": self.step.state_dict(),
            "scaler": self.step.scaler.state_dict() if self.step.scaler.is_enabled() else {},
            "window": self.window.state(),
            "epoch_window": self.epoch_window.state(),
            "last_d_loss": self.last_d_loss,
            "monitor": self.monitor.state_dict(),
            "world_size": self.dist.world_size,
        }

    def load(self, path: Path | None = None) -> None:
        path = path or self.run.latest
        try:
            state = load_training_state(path, map_location="cpu")
        except ModelFileError as e:
            raise TrainingError(f"cannot resume: {e}") from e
        if state.get("format") != _FORMAT or state.get("trainer") != self.step.trainer:
            raise TrainingError(
                f"{path}: not a {self.step.trainer} checkpoint of this version "
                f"(format {state.get('format')!r}, trainer {state.get('trainer')!r})"
            )
        try:
            for name, net in self.step.networks().items():
                net.load_state_dict(state["networks"][name])
            for name, ema in self.emas.items():
                ema.load_state_dict(state["ema"][name])
            if state.get("scaler") and self.step.scaler.is_enabled():
                self.step.scaler.load_state_dict(state["scaler"])
            self.step.load_state_dict(state["step"])
        except (RuntimeError, KeyError, ValueError) as e:
            raise TrainingError(f"{path}: does not fit this run's config: {e}") from e
        self.epoch = int(state["epoch"])
        self.step_in_epoch = int(state["step_in_epoch"])
        self.global_step = int(state["global_step"])
        self.window = _Window(state["window"])
        self.epoch_window = _Window(state["epoch_window"])
        self.last_d_loss = state.get("last_d_loss")
        self.monitor.load_state_dict(state["monitor"])
        self.last_good = (path, self.global_step)
        rngs = state["rng"]
        if len(rngs) == self.dist.world_size:
            runtime.set_rng_state(rngs[self.dist.rank])
        else:  # another number of processes: exactness is impossible; stay reproducible
            self.emit(
                task="resume",
                level="warning",
                message=f"the run was saved by {len(rngs)} process(es) and resumes with "
                f"{self.dist.world_size}: it continues reproducibly but not bit-identically",
            )
            runtime.seed_everything(self.config.seed + 1000 * self.global_step + self.dist.rank)

    def save(self, *, keep: bool = False) -> None:
        """Export the models and write the checkpoint, after checking every weight is finite."""
        bad = _first_non_finite(
            {**self.step.networks(), **{f"ema.{n}": e.model for n, e in self.emas.items()}}
        )
        if bad is not None:
            raise NonFiniteError(
                f"{bad} holds NaN or infinite values after step {self.global_step} "
                f"(epoch {self.epoch + 1}): training stopped before writing it. " + self._advice()
            )
        state = self.state_dict()
        rng = runtime.get_rng_state()
        if self.dist.distributed:
            import torch.distributed as tdist

            gathered: list[Any] = [None] * self.dist.world_size
            tdist.all_gather_object(gathered, _to_cpu(rng))
            state["rng"] = gathered
        else:
            state["rng"] = [rng]
        if self.main:
            info = {"epoch": self.epoch, "step": self.global_step, "trainer": self.step.trainer}
            if self.emas:
                info["ema"] = sorted(self.emas)
            self.result.models = self.step.export(self.run.path, self.sampling_nets(), info)
            save_training_state(self.run.latest, state)
            if keep:
                shutil.copyfile(self.run.latest, self.run.kept(self.epoch))
            self.result.checkpoint = self.run.latest
        runtime.barrier()
        self.last_good = (self.run.latest, self.global_step)

    def _advice(self) -> str:
        if self.last_good is None:
            where = "No checkpoint was written before it: start again"
        else:
            path, step = self.last_good
            where = (
                f"The newest finite checkpoint is {path} (step {step}): continue it with "
                f"--resume {self.run.path}"
            )
        return (
            f"{where} with lower learning rates (a resumed run accepts new learning rates), "
            "--precision fp32, or a gradient penalty."
        )

    # -- metrics -----------------------------------------------------------------------------
    def flush(self, extra: Mapping[str, float], *, end_of_epoch: bool) -> dict[str, float]:
        means = self.window.means()
        if not means and not end_of_epoch:
            return {}
        if means:
            row: dict[str, Any] = {
                "epoch": self.epoch + 1,
                "iter": self.step_in_epoch,
                "step": self.global_step,
                **means,
                **extra,
            }
            if end_of_epoch:
                row["end_of_epoch"] = True
            if self.main:
                self.run.log(row)
        self.window = _Window()
        return means

    # -- files after an epoch or a stop --------------------------------------------------------
    def write_views(self) -> None:
        if not self.main:
            return
        from transfigure.plots import plot_metrics, progress_gif
        from transfigure.report import write_run_report

        if self.step.panels:
            plot_metrics(self.run.metrics, self.run.path / "losses.png", self.step.panels)
        samples = self.run.samples()
        if samples:
            progress_gif(samples, self.run.path / "progress.gif")
        write_run_report(self.run.path, title=f"{self.step.title} run {self.run.path.name}")

    def save_sample(self) -> None:
        if not self.main:
            return
        from transfigure.images import save_grid

        drawn = self.step.sample(self.sampling_nets())
        if drawn is not None:
            images, nrow = drawn
            self.result.samples.append(save_grid(images, self.run.sample(self.epoch), nrow=nrow))

    # -- the loop ----------------------------------------------------------------------------
    def fit(self, *, max_steps: int | None) -> TrainResult:
        step, cfg = self.step, self.config
        dataset = step.dataset()
        n = len(dataset)  # type: ignore[arg-type]
        if n == 0:
            raise TrainingError("the dataset is empty")
        batch_size = cfg.batch_size
        per_rank = n // self.dist.world_size
        if per_rank < batch_size:
            batch_size = max(1, per_rank)
            self.emit(
                task="train",
                level="warning",
                message=f"the dataset has {n} images: fewer than one batch of {cfg.batch_size} "
                f"per process; training with batches of {batch_size} (lower --batch-size to "
                "silence this)",
            )
        total_epochs = step.total_epochs
        if self.epoch >= total_epochs:
            self.emit(
                task="train",
                message=f"the run has already trained {self.epoch} epoch(s); nothing to do "
                "(resume with more epochs to extend it)",
            )
        steps_this_call = 0
        t_start: float | None = None
        estimated = False
        with _StopRequest() as stop:
            while self.epoch < total_epochs:
                epoch_info = step.start_epoch(self.epoch)
                if hasattr(dataset, "set_epoch"):
                    dataset.set_epoch(self.epoch)
                batches = epoch_batches(
                    n,
                    epoch=self.epoch,
                    batch_size=batch_size,
                    seed=cfg.seed,
                    rank=self.dist.rank,
                    world_size=self.dist.world_size,
                    shuffle=getattr(step, "shuffle", True),
                    drop_last=step.drop_last,
                )
                total = len(batches)
                task = f"epoch {self.epoch + 1}/{total_epochs}"
                loader = DataLoader(
                    dataset,
                    batch_sampler=batches[self.step_in_epoch :],
                    num_workers=cfg.workers,
                    pin_memory=step.device.type == "cuda",
                    # its own generator: making the iterator must not consume global randomness
                    generator=torch.Generator().manual_seed(cfg.seed + self.epoch),
                )
                t_epoch = time.perf_counter()
                for batch in loader:
                    batch = _to_device(batch, step.device)
                    step.skip_d = (
                        cfg.d_skip_below > 0
                        and self.last_d_loss is not None
                        and self.last_d_loss < cfg.d_skip_below
                    )
                    losses = step.train_step(batch)
                    # one synchronisation per step: every rank sees the same numbers and the
                    # same stop request
                    names = list(losses)
                    packed = torch.stack(
                        [losses[k].detach().float().reshape(()) for k in names]
                        + [torch.tensor(float(stop.requested), device=step.device)]
                    )
                    values = runtime.all_reduce_mean(packed).tolist()
                    stop_now = values.pop() > 0
                    current = dict(zip(names, values, strict=True))
                    bad = {k: v for k, v in current.items() if not math.isfinite(v)}
                    if bad:
                        listed = ", ".join(f"{k}={v}" for k, v in bad.items())
                        raise NonFiniteError(
                            f"non-finite loss {listed} at step {self.global_step + 1} (epoch "
                            f"{self.epoch + 1}): training stopped; nothing was written after "
                            "it. " + self._advice()
                        )
                    for name, ema in self.emas.items():
                        ema.update(step.networks()[name])
                    if step.discriminator_losses:
                        self.last_d_loss = sum(
                            current.get(k, 0.0) for k in step.discriminator_losses
                        ) / len(step.discriminator_losses)
                    self.step_in_epoch += 1
                    self.global_step += 1
                    steps_this_call += 1
                    self.window.add(current)
                    self.epoch_window.add(current)
                    for finding in self.monitor.observe(self.global_step, current):
                        self.report(finding)
                    if cfg.watch_every and self.global_step % cfg.watch_every == 0 and self.main:
                        spread = step.diversity()
                        if spread is not None:
                            found = self.monitor.diversity(self.global_step, *spread)
                            if found is not None:
                                self.report(found)
                    self.emit(
                        task=task,
                        completed=self.step_in_epoch,
                        total=total,
                        unit="step",
                        metrics={k: current[k] for k in step.shown if k in current},
                    )
                    # how long will this take? said once, from the steps after the first
                    if steps_this_call == 1:
                        t_start = time.perf_counter()
                    elif not estimated and t_start is not None:
                        elapsed = time.perf_counter() - t_start
                        if steps_this_call >= 6 or elapsed > 30:
                            estimated = True
                            self._estimate(
                                elapsed / (steps_this_call - 1), total, max_steps, steps_this_call
                            )
                    if self.global_step % cfg.log_every == 0 and self.step_in_epoch < total:
                        self.flush(epoch_info, end_of_epoch=False)
                    out_of_steps = max_steps is not None and steps_this_call >= max_steps
                    if (stop_now or out_of_steps) and self.step_in_epoch < total:
                        self.save()
                        self.write_views()
                        why = (
                            "interrupted" if stop_now else f"stopped after {steps_this_call} steps"
                        )
                        self.emit(
                            task=task,
                            message=f"{why} at epoch {self.epoch + 1}, step {self.step_in_epoch} "
                            f"of {total}; continue with --resume {self.run.path}",
                        )
                        if stop_now:
                            raise KeyboardInterrupt
                        return self._finish("max_steps")
                    if (
                        cfg.checkpoint_every
                        and self.global_step % cfg.checkpoint_every == 0
                        and self.step_in_epoch < total
                    ):
                        self.save()

                # -- end of the epoch: metrics, schedule, samples, models, checkpoint --------
                self.flush(epoch_info, end_of_epoch=True)
                means = self.epoch_window.means()
                step.end_epoch(self.epoch, means)
                self.epoch += 1
                self.step_in_epoch = 0
                self.epoch_window = _Window()
                self.save_sample()
                keep = bool(cfg.keep_every) and self.epoch % cfg.keep_every == 0
                self.save(keep=keep)
                self.write_views()
                summary = "  ".join(f"{k} {v:.4f}" for k, v in means.items())
                self.emit(
                    task=task,
                    completed=total,
                    total=total,
                    unit="step",
                    done=True,
                    message=f"{task}: {summary}  ({time.perf_counter() - t_epoch:.1f} s)",
                )
                if stop_now:
                    raise KeyboardInterrupt
                if max_steps is not None and steps_this_call >= max_steps:
                    return self._finish("max_steps" if self.epoch < total_epochs else None)
        if self.main and steps_this_call:
            checks = step.final_checks(self.sampling_nets())
            for kind, message, figures in checks:
                self.report(Finding(kind, self.global_step, message, figures))
            if checks:
                self.write_views()
        return self._finish(None)

    def _estimate(self, per_step: float, total: int, max_steps: int | None, done: int) -> None:
        left = (self.step.total_epochs - self.epoch) * total - self.step_in_epoch
        if max_steps is not None:
            left = min(left, max_steps - done)
        seconds = per_step * left
        message = (
            f"about {per_step:.2f} s per step on {self.step.device.type}: the {left} remaining "
            f"steps will take about {_duration(seconds)}"
        )
        if seconds > 3600:
            advices = (self.step.slow_run_advice(), self._bf16_advice())
            advice = ", or ".join(a for a in advices if a)
            self.emit(
                task="train",
                level="warning",
                message=message + (f". For a quicker first run: {advice}" if advice else ""),
            )
        else:
            self.emit(task="train", message=message)

    def _bf16_advice(self) -> str:
        """``--precision bf16`` where an fp32 run is on a CPU that computes bf16 natively."""
        step = self.step
        if step.device.type != "cpu" or step.precision != "fp32":
            return ""
        if runtime.resolve_precision("auto", step.device, training=False) != "bf16":
            return ""
        # benchmarks/bf16_training.py: the same error to the known answer at equal steps
        return (
            "--precision bf16 (this CPU computes bf16 natively: steps 2-3× faster, and results "
            "at equal steps matched fp32's where measured)"
        )

    def _finish(self, stopped: str | None) -> TrainResult:
        self.result.epochs = self.epoch
        self.result.steps = self.global_step
        self.result.stopped = stopped
        self.result.samples = self.run.samples()
        if self.result.checkpoint is None and self.run.latest.is_file():
            self.result.checkpoint = self.run.latest
        if not self.result.models:
            self.result.models = sorted(self.run.path.glob("*.safetensors"))
        return self.result


def train(
    step_cls: type[Step],
    config: Any,
    run_dir: str | Path,
    *,
    device: torch.device | str = "cpu",
    precision: str = "fp32",
    resume: bool = False,
    callback: Callable[[Event], None] | None = None,
    max_steps: int | None = None,
) -> TrainResult:
    """Train ``step_cls(config)`` and write the run folder ``run_dir``.

    Under ``torchrun`` every process trains on its shard of each epoch with
    DistributedDataParallel (gloo on the CPU, NCCL on CUDA); only rank 0 writes files.

    Args:
        step_cls: the trainer.
        config: its config. For ``resume``, the run's own (:func:`load_config`) with any
            changes to resumable fields (learning rates, lengths, logging); a change to any
            other field is refused.
        run_dir: the run folder (created for a new run).
        device: where to train.
        precision: ``fp32``, ``bf16``, ``fp16`` or ``auto`` (fp32 on the CPU, bf16 on GPUs
            that support it).
        resume: continue the run in ``run_dir`` from its latest checkpoint.
        callback: receives progress :class:`~transfigure.events.Event` s (rank 0 only).
        max_steps: stop after this many steps in this call, with a checkpoint (resumable).

    Returns:
        A :class:`TrainResult`.

    Raises:
        TrainingError: a run already exists (without ``resume``), nothing to resume, a changed
            structural setting, an empty dataset, or a checkpoint that does not fit.
        NonFiniteError: a loss or a weight became NaN/inf; the files on disk are the last
            finite ones.
        KeyboardInterrupt: after Ctrl-C, once the checkpoint of the last step is written.
    """
    run = RunFolder(run_dir)
    device = torch.device(device)
    config.validate()
    history: list[dict[str, Any]] = []
    changed: dict[str, list[Any]] = {}
    if resume:
        if not run.latest.is_file():
            raise TrainingError(f"{run.path}: nothing to resume (no {run.latest.name})")
        stored = load_config(type(config), run.path, step_cls.trainer)
        resumable = resumable_fields(type(config))
        for f in dataclasses.fields(config):
            old, new = getattr(stored, f.name), getattr(config, f.name)
            if old != new:
                if f.name not in resumable:
                    raise TrainingError(
                        f"--{f.name.replace('_', '-')} cannot change when resuming "
                        f"({old!r} in the run, {new!r} asked); it shapes the model or the data. "
                        f"Settings that may change: {', '.join(sorted(resumable))}"
                    )
                changed[f.name] = [old, new]
        history = list(read_run_config(run.path).get("history", []))
    elif run.exists():
        raise TrainingError(
            f"{run.path} already holds a run; continue it with --resume {run.path} or choose "
            "another output folder"
        )

    if device.type == "cpu":
        runtime.keep_freed_memory()  # activations are freed and reallocated every step
    dist = runtime.init_distributed(device)
    if dist.distributed and device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
    precision = _resolve_precision(precision, device)
    # identical initial weights on every rank (DDP also broadcasts rank 0's), then per-rank noise
    runtime.seed_everything(config.seed)
    step = step_cls(config, device=device, precision=precision)
    runtime.seed_everything(config.seed + dist.rank)
    engine = _Engine(step, run, callback=callback, dist=dist)
    if resume:
        engine.load()
        if changed:
            history.append({"step": engine.global_step, "changed": changed})
    if dist.rank == 0:
        record = {
            "trainer": step.trainer,
            "config": config_to_dict(config),
            "data": step.describe_data(),
            "runtime": {
                "device": str(device),
                "precision": precision,
                "world_size": dist.world_size,
            },
            "history": history,
        }
        run.write_config(record)
        if resume:
            run.truncate_metrics(engine.global_step)
            if changed:
                run.log(
                    {
                        "step": engine.global_step,
                        "epoch": engine.epoch + 1,
                        "event": "resume",
                        "changed": changed,
                    }
                )
    runtime.barrier()
    where = (
        f"resuming at epoch {engine.epoch + 1}, step {engine.step_in_epoch} of the epoch "
        f"(step {engine.global_step})"
        if resume
        else "new run"
    )
    changes = (
        "; changed " + ", ".join(f"{k} {a} → {b}" for k, (a, b) in changed.items())
        if changed
        else ""
    )
    engine.emit(
        task="train",
        message=f"{step.title}: {step.describe_data()}; {where}{changes}; {precision} on "
        f"{device}; run folder {run.path}",
    )
    result = engine.fit(max_steps=max_steps)
    runtime.barrier()  # every rank leaves together: rank 0 may still be writing its last files
    return result


def export_models(
    step_cls: type[Step],
    config_cls: type,
    run_dir: str | Path,
    *,
    checkpoint: str | Path | None = None,
    output: str | Path | None = None,
    device: torch.device | str = "cpu",
) -> list[Path]:
    """Write the model files of a run from one of its checkpoints.

    Training already exports with every checkpoint; this rebuilds them from any checkpoint
    (``checkpoints/epoch_XXX.pt``, or one copied from elsewhere), e.g. into another folder.

    Args:
        step_cls: the run's trainer (see ``config.json``'s ``trainer``).
        config_cls: its config class.
        run_dir: the run folder.
        checkpoint: the checkpoint to export [default: ``checkpoints/latest.pt``].
        output: the folder to write into [default: ``run_dir``].
        device: where to rebuild the networks.

    Raises:
        TrainingError: no run or no checkpoint there, or one that does not fit.
        NonFiniteError: the checkpoint holds NaN or infinite weights.
    """
    run = RunFolder(run_dir)
    config = load_config(config_cls, run.path, step_cls.trainer)
    path = Path(checkpoint) if checkpoint is not None else run.latest
    if not path.is_file():
        raise TrainingError(f"{path}: no such checkpoint")
    rng = runtime.get_rng_state()  # building the step must not change the caller's randomness
    try:
        runtime.seed_everything(config.seed)
        step = step_cls(config, device=torch.device(device), precision="fp32")
        engine = _Engine(step, run, callback=None, dist=runtime.DistInfo())
        engine.load(path)
    finally:
        runtime.set_rng_state(rng)
    nets = engine.sampling_nets()
    bad = _first_non_finite(nets)
    if bad is not None:
        raise NonFiniteError(f"{path}: {bad} holds NaN or infinite values; nothing was written")
    out = Path(output) if output is not None else run.path
    out.mkdir(parents=True, exist_ok=True)
    info: dict[str, Any] = {
        "epoch": engine.epoch,
        "step": engine.global_step,
        "trainer": step.trainer,
        "checkpoint": str(path),
    }
    if engine.emas:
        info["ema"] = sorted(engine.emas)
    return step.export(out, nets, info)
