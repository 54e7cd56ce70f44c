"""The training engine with a toy step defined here: resume, guards, Ctrl-C, checkpoints.

The toy step writes none of this machinery itself, so every property below is the engine's.
"""

from __future__ import annotations

import json
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor, nn
from torch.utils.data import TensorDataset

from transfigure.checkpoint import load_training_state
from transfigure.training import (
    EMA,
    NonFiniteError,
    Step,
    TrainingError,
    TrainOptions,
    epoch_batches,
    option,
    train,
)


@dataclass
class ToyConfig(TrainOptions):
    lr: float = option(0.05, "learning rate", resumable=True)
    epochs: int = option(3, "epochs", resumable=True)
    n: int = option(10, "dataset size")
    width: int = option(4, "hidden width")
    batch_size: int = option(2, "batch size")
    checkpoint_every: int = option(0, "steps between checkpoints", resumable=True)
    log_every: int = option(2, "steps per metrics line", resumable=True)
    # test hooks: what goes wrong, at which step of the run
    nan_loss_at: int = option(0, "make the loss NaN at this step", resumable=True)
    nan_weights_at: int = option(0, "make a weight NaN after this step's update", resumable=True)
    crash_at: int = option(0, "raise at this step", resumable=True)
    sigint_at: int = option(0, "send SIGINT to the process during this step", resumable=True)

    @property
    def total_epochs(self) -> int:
        return self.epochs


class ToyStep(Step):
    """A tiny regression with dropout and noise: optimiser state and global randomness."""

    trainer = "toy"
    title = "Toy"
    shown = ("loss",)
    averaged = ("net",)

    def __init__(self, config: ToyConfig, *, device: Any, precision: str) -> None:
        super().__init__(config, device=device, precision=precision)
        self.net = nn.Sequential(
            nn.Linear(3, config.width), nn.Dropout(0.2), nn.Tanh(), nn.Linear(config.width, 1)
        )
        self.opt = torch.optim.SGD(self.net.parameters(), lr=config.lr, momentum=0.9)
        self.steps = 0
        g = torch.Generator().manual_seed(123)
        x = torch.randn(config.n, 3, generator=g)
        self.data = TensorDataset(x, x.sum(1, keepdim=True))
        self.epochs_started: list[int] = []

    def networks(self) -> dict[str, nn.Module]:
        return {"net": self.net}

    def dataset(self) -> TensorDataset:
        return self.data

    def start_epoch(self, epoch: int) -> dict[str, float]:
        self.epochs_started.append(epoch)
        return {"lr": self.opt.param_groups[0]["lr"]}

    def train_step(self, batch: Any) -> dict[str, Tensor]:
        cfg = self.config
        self.steps += 1
        x, y = batch
        x = x + 0.01 * torch.randn_like(x)  # global randomness, restored on resume
        loss = nn.functional.mse_loss(self.net(x), y)
        if self.steps == cfg.crash_at:
            raise RuntimeError("simulated crash")
        if self.steps == cfg.sigint_at:
            os.kill(os.getpid(), signal.SIGINT)
        if self.steps == cfg.nan_loss_at:
            loss = loss * float("nan")
        self.optimizer_step(loss, self.opt)
        if self.steps == cfg.nan_weights_at:
            with torch.no_grad():
                self.net[0].weight[0, 0] = float("inf")
        return {"loss": loss.detach()}

    def state_dict(self) -> dict[str, Any]:
        return {"opt": self.opt.state_dict(), "steps": self.steps}

    def load_state_dict(self, state: Any) -> None:
        self.opt.load_state_dict(state["opt"])
        self.steps = int(state["steps"])
        for group in self.opt.param_groups:
            group["lr"] = self.config.lr

    def sample(self, nets: Any) -> tuple[Tensor, int]:
        return torch.rand(2, 3, 4, 4, generator=torch.Generator().manual_seed(0)), 2

    def export(self, run_dir: Path, nets: Any, info: dict[str, Any]) -> list[Path]:
        path = run_dir / "toy.pt"
        torch.save(
            {k: v.clone() for k, v in nets["net"].state_dict().items()}
            | {"info_step": info["step"]},
            path,
        )
        return [path]


def _weights(run: Path) -> dict[str, Tensor]:
    return load_training_state(run / "checkpoints" / "latest.pt")["networks"]["net"]


def _metrics(run: Path, *, events: bool = False) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if events or "event" not in r]


def _same(a: dict[str, Tensor], b: dict[str, Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)


def test_a_run_writes_the_run_folder_and_lowers_the_loss(tmp_path):
    events = []
    result = train(ToyStep, ToyConfig(epochs=6), tmp_path / "run", callback=events.append)
    run = tmp_path / "run"
    assert (result.epochs, result.steps) == (6, 30)
    for name in ("config.json", "metrics.jsonl", "checkpoints/latest.pt", "toy.pt", "index.html"):
        assert (run / name).is_file(), name
    assert [p.name for p in result.samples] == [f"epoch_{e:03d}.png" for e in range(1, 7)]
    record = json.loads((run / "config.json").read_text())
    assert record["trainer"] == "toy" and record["config"]["epochs"] == 6
    rows = _metrics(run)
    assert rows[-1]["step"] == 30 and rows[-1]["end_of_epoch"] is True
    assert rows[-1]["loss"] < 0.5 * rows[0]["loss"]
    assert any(e.done and e.message and e.message.startswith("epoch 6/6") for e in events)


def test_resume_after_a_crash_is_bit_identical(tmp_path):
    """A crash (or kill -9) between checkpoints loses only the steps since the last one."""
    whole = tmp_path / "whole"
    train(ToyStep, ToyConfig(checkpoint_every=3), whole)
    crashed = tmp_path / "crashed"
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(ToyStep, ToyConfig(checkpoint_every=3, crash_at=8), crashed)
    state = load_training_state(crashed / "checkpoints" / "latest.pt")
    assert state["global_step"] == 6 and state["step_in_epoch"] == 1  # the last interval
    train(ToyStep, ToyConfig(checkpoint_every=3), crashed, resume=True)
    _same(_weights(whole), _weights(crashed))
    assert _metrics(whole) == _metrics(crashed)


def test_max_steps_then_resume_is_bit_identical_including_ema(tmp_path):
    cfg = ToyConfig(ema_decay=0.9)
    train(ToyStep, cfg, tmp_path / "whole")
    result = train(ToyStep, cfg, tmp_path / "parts", max_steps=7)
    assert result.stopped == "max_steps" and result.steps == 7
    train(ToyStep, cfg, tmp_path / "parts", resume=True)
    a = load_training_state(tmp_path / "whole" / "checkpoints" / "latest.pt")
    b = load_training_state(tmp_path / "parts" / "checkpoints" / "latest.pt")
    _same(a["networks"]["net"], b["networks"]["net"])
    _same(a["ema"]["net"]["model"], b["ema"]["net"]["model"])


def test_first_ctrl_c_stops_at_a_step_boundary_with_a_checkpoint(tmp_path):
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train(ToyStep, ToyConfig(sigint_at=4), run)
    state = load_training_state(run / "checkpoints" / "latest.pt")
    assert state["global_step"] == 4  # the step in flight finished, then the run stopped
    assert (run / "toy.pt").is_file()  # the models are exported with the checkpoint
    train(ToyStep, ToyConfig(), run, resume=True)
    train(ToyStep, ToyConfig(), tmp_path / "whole")
    _same(_weights(tmp_path / "whole"), _weights(run))


def test_non_finite_loss_stops_before_writing(tmp_path):
    run = tmp_path / "run"
    with pytest.raises(NonFiniteError) as info:
        train(ToyStep, ToyConfig(checkpoint_every=3, nan_loss_at=5), run)
    message = str(info.value)
    assert "step 5" in message and "loss=nan" in message
    assert str(run / "checkpoints" / "latest.pt") in message and "(step 3)" in message
    state = load_training_state(run / "checkpoints" / "latest.pt")
    assert state["global_step"] == 3
    assert all(torch.isfinite(t).all() for t in state["networks"]["net"].values())
    exported = torch.load(run / "toy.pt", weights_only=True)
    assert exported["info_step"] == 3


def test_non_finite_weights_after_the_update_never_reach_disk(tmp_path):
    """The loss of the step is finite; only the update broke the weights."""
    run = tmp_path / "run"
    with pytest.raises(NonFiniteError) as info:
        train(ToyStep, ToyConfig(checkpoint_every=3, nan_weights_at=6), run)
    assert "net.0.weight" in str(info.value) and "after step 6" in str(info.value)
    state = load_training_state(run / "checkpoints" / "latest.pt")
    assert state["global_step"] == 5  # the end of epoch 1 (5 steps), before the bad update
    assert all(torch.isfinite(t).all() for t in state["networks"]["net"].values())
    assert torch.load(run / "toy.pt", weights_only=True)["info_step"] == 5


def test_non_finite_first_step_says_no_checkpoint_exists(tmp_path):
    with pytest.raises(NonFiniteError, match="No checkpoint was written"):
        train(ToyStep, ToyConfig(nan_loss_at=1), tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoints" / "latest.pt").exists()


def test_resume_accepts_new_learning_rate_and_records_it(tmp_path):
    run = tmp_path / "run"
    train(ToyStep, ToyConfig(), run, max_steps=4)
    train(ToyStep, ToyConfig(lr=0.01), run, resume=True)
    record = json.loads((run / "config.json").read_text())
    assert record["config"]["lr"] == 0.01
    assert record["history"] == [{"step": 4, "changed": {"lr": [0.05, 0.01]}}]
    events = [r for r in _metrics(run, events=True) if r.get("event") == "resume"]
    assert events == [{"step": 4, "epoch": 1, "event": "resume", "changed": {"lr": [0.05, 0.01]}}]


def test_resume_refuses_structural_changes(tmp_path):
    run = tmp_path / "run"
    train(ToyStep, ToyConfig(), run, max_steps=2)
    with pytest.raises(TrainingError, match="--width cannot change"):
        train(ToyStep, ToyConfig(width=8), run, resume=True)


def test_existing_run_needs_resume_and_resume_needs_a_checkpoint(tmp_path):
    train(ToyStep, ToyConfig(epochs=1), tmp_path / "run")
    with pytest.raises(TrainingError, match="already holds a run"):
        train(ToyStep, ToyConfig(epochs=1), tmp_path / "run")
    with pytest.raises(TrainingError, match="nothing to resume"):
        train(ToyStep, ToyConfig(), tmp_path / "other", resume=True)


def test_dataset_smaller_than_a_batch_trains_with_a_warning(tmp_path):
    events = []
    result = train(
        ToyStep, ToyConfig(n=3, batch_size=8, epochs=2), tmp_path / "run", callback=events.append
    )
    assert result.steps == 2  # one batch of 3 per epoch
    warnings = [e.message for e in events if e.level == "warning"]
    assert any("fewer than one batch of 8" in m and "batches of 3" in m for m in warnings)


def test_extending_a_finished_run(tmp_path):
    run = tmp_path / "run"
    train(ToyStep, ToyConfig(epochs=2), run)
    result = train(ToyStep, ToyConfig(epochs=3), run, resume=True)
    assert (result.epochs, result.steps) == (3, 15)
    train(ToyStep, ToyConfig(epochs=3), tmp_path / "whole")
    _same(_weights(tmp_path / "whole"), _weights(run))


def test_a_slow_run_is_announced_with_advice(tmp_path, monkeypatch):
    import transfigure.training.loop as loop

    class Slow(ToyStep):
        def slow_run_advice(self) -> str:
            return "use fewer pixels"

    clock = iter(float(i) * 400 for i in range(10_000))
    monkeypatch.setattr(loop.time, "perf_counter", lambda: next(clock))
    events = []
    train(Slow, ToyConfig(epochs=4), tmp_path / "run", callback=events.append)
    warnings = [e.message for e in events if e.level == "warning"]
    assert any("hours" in m and "use fewer pixels" in m for m in warnings), warnings
    # a CPU that computes bf16 natively is told about --precision bf16 as well
    monkeypatch.setattr(loop.runtime, "cpu_flags", lambda: frozenset({"avx512_bf16"}))
    clock = iter(float(i) * 400 for i in range(10_000))
    events.clear()
    train(Slow, ToyConfig(epochs=4), tmp_path / "run2", callback=events.append)
    warnings = [e.message for e in events if e.level == "warning" and "hours" in e.message]
    assert warnings and "use fewer pixels, or --precision bf16" in warnings[0], warnings
    monkeypatch.setattr(loop.runtime, "cpu_flags", lambda: frozenset())
    clock = iter(float(i) * 400 for i in range(10_000))
    events.clear()
    train(Slow, ToyConfig(epochs=4), tmp_path / "run3", callback=events.append)
    assert not any("bf16" in (e.message or "") for e in events)


def test_epoch_batches_are_a_function_of_seed_and_epoch():
    a = epoch_batches(10, epoch=0, batch_size=3, seed=1)
    assert a == epoch_batches(10, epoch=0, batch_size=3, seed=1)
    assert a != epoch_batches(10, epoch=1, batch_size=3, seed=1)
    assert [len(b) for b in a] == [3, 3, 3, 1]
    assert [len(b) for b in epoch_batches(10, epoch=0, batch_size=3, seed=1, drop_last=True)] == [
        3,
        3,
        3,
    ]
    r0 = epoch_batches(10, epoch=0, batch_size=2, seed=1, rank=0, world_size=2)
    r1 = epoch_batches(10, epoch=0, batch_size=2, seed=1, rank=1, world_size=2)
    assert not set(sum(r0, [])) & set(sum(r1, []))


def test_ema_warms_up_then_uses_its_decay():
    net = nn.Linear(2, 2)
    ema = EMA(net, 0.999)
    assert ema.current_decay == pytest.approx(0.1)
    for _ in range(100):
        ema.update(net)
    assert ema.current_decay == pytest.approx(101 / 110)
    # after 100 updates to a new weight, the average has (almost) moved there
    with torch.no_grad():
        net.weight.fill_(1.0)
    for _ in range(100):
        ema.update(net)
    assert float(ema.model.weight.min()) > 0.99
