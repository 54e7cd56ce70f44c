"""The run folder: what a training run writes, and reading it back.

::

    config.json              trainer, config, data description, runtime, resume history
    metrics.jsonl            one line per log window (and per epoch end, per resume)
    checkpoints/latest.pt    the full training state (every rank's random state), atomic
    checkpoints/epoch_XXX.pt kept copies (``keep_every``)
    samples/epoch_XXX.png    fixed-input samples after each epoch
    *.safetensors            exported models (written with every checkpoint)
    losses.png, progress.gif, index.html

Only rank 0 writes. Every file is written atomically (temp, fsync, rename), so a crash or
``kill -9`` leaves the previous version whole.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import transfigure
from transfigure.fileio import append_jsonl, atomic_path, write_json

__all__ = ["CHECKPOINT", "CONFIG_FILE", "METRICS", "RunFolder", "read_run_config"]

CONFIG_FILE = "config.json"
CHECKPOINT = "checkpoints/latest.pt"
METRICS = "metrics.jsonl"


class RunFolder:
    """Paths and small writes of one run folder."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @property
    def config_file(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def metrics(self) -> Path:
        return self.path / METRICS

    @property
    def latest(self) -> Path:
        return self.path / CHECKPOINT

    def kept(self, epoch: int) -> Path:
        return self.path / "checkpoints" / f"epoch_{epoch:03d}.pt"

    def sample(self, epoch: int) -> Path:
        return self.path / "samples" / f"epoch_{epoch:03d}.png"

    def samples(self) -> list[Path]:
        return sorted((self.path / "samples").glob("epoch_*.png"))

    def exists(self) -> bool:
        return self.config_file.exists() or self.latest.exists()

    def write_config(self, record: dict[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        write_json(self.config_file, {**record, "transfigure_version": transfigure.__version__})

    def log(self, row: dict[str, Any]) -> None:
        append_jsonl(self.metrics, row)

    def truncate_metrics(self, global_step: int) -> None:
        """Drop the lines logged after the checkpoint being resumed (they will be redone)."""
        if not self.metrics.is_file():
            return
        kept = []
        for line in self.metrics.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a crash
            if isinstance(row, dict) and row.get("step", 0) <= global_step:
                kept.append(line)
        with atomic_path(self.metrics) as tmp:
            tmp.write_text("".join(k + "\n" for k in kept), encoding="utf-8")


def read_run_config(run_dir: str | Path) -> dict[str, Any]:
    """The ``config.json`` of a run folder.

    Raises:
        FileNotFoundError: no run there.
        ValueError: an unreadable file.
    """
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir}: not a run folder (no {CONFIG_FILE})")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise ValueError(f"{path}: unreadable run config: {e}") from e
    if not isinstance(record, dict) or "trainer" not in record or "config" not in record:
        raise ValueError(f"{path}: not a run config of this version (no trainer/config)")
    return record
