"""The views of a GAN run that its loss alone cannot give: loss curves and an animation of the
fixed-latent sample grid over the epochs.

Both are written atomically and are pure functions of files already in the run folder, so they
can be regenerated at any time.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from transfigure.fileio import atomic_path

__all__ = ["plot_losses", "progress_gif", "read_metrics"]


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The lines of a ``metrics.jsonl`` file (missing file → empty list; bad lines skipped)."""
    path = Path(path)
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a crash mid-write must not stop the plot
        if isinstance(row, dict):
            rows.append(row)
    return rows


def _series(rows: list[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for row in rows:
        value = row.get(key)
        if isinstance(value, (int, float)) and math.isfinite(value) and "step" in row:
            xs.append(row["step"])
            ys.append(float(value))
    return xs, ys


def plot_losses(metrics_path: str | Path, out_path: str | Path) -> Path | None:
    """Plot D and G losses (and, for WGAN-GP, the Wasserstein estimate and the penalty).

    Args:
        metrics_path: a run's ``metrics.jsonl``.
        out_path: the PNG to write.

    Returns:
        ``out_path``, or ``None`` if there was nothing to plot yet.
    """
    # The object-oriented API with an Agg canvas: no pyplot, no global backend switch.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = read_metrics(metrics_path)
    if not rows:
        return None
    critic = any("wasserstein" in r for r in rows)
    fig = Figure(figsize=(8, 6 if critic else 3.5), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(2 if critic else 1, 1, sharex=True, squeeze=False)[:, 0]
    ax = axes[0]
    for key, label in (("loss_d", "D loss"), ("loss_g", "G loss")):
        xs, ys = _series(rows, key)
        if xs:
            ax.plot(xs, ys, label=label, linewidth=1.2)
    ax.set_ylabel("loss")
    ax.legend(loc="best")
    ax.grid(alpha=0.3)
    if critic:
        ax2 = axes[1]
        for key, label in (("wasserstein", "Wasserstein estimate"), ("gp", "gradient penalty")):
            xs, ys = _series(rows, key)
            if xs:
                ax2.plot(xs, ys, label=label, linewidth=1.2)
        ax2.set_ylabel("critic")
        ax2.legend(loc="best")
        ax2.grid(alpha=0.3)
    axes[-1].set_xlabel("step")
    for row in rows:  # mark epoch ends
        if row.get("end_of_epoch"):
            for a in axes:
                a.axvline(row["step"], color="0.85", linewidth=0.6, zorder=0)
    fig.tight_layout()
    out_path = Path(out_path)
    with atomic_path(out_path) as tmp:
        fig.savefig(tmp, format="png")
    return out_path


def progress_gif(
    frames: Sequence[str | Path],
    out_path: str | Path,
    *,
    duration_ms: int = 400,
    max_frames: int = 100,
) -> Path | None:
    """Animate the per-epoch sample grids into a looping GIF.

    Args:
        frames: the grid images in order (``samples/epoch_001.png`` …).
        out_path: the GIF to write.
        duration_ms: time per frame; the last frame is held three times as long.
        max_frames: frames kept (evenly spaced, always including the last) for long runs.

    Returns:
        ``out_path``, or ``None`` when there are no frames.
    """
    paths = [Path(p) for p in frames]
    if not paths:
        return None
    if len(paths) > max_frames:
        step = (len(paths) - 1) / (max_frames - 1)
        paths = [paths[round(i * step)] for i in range(max_frames)]
    images = []
    for p in paths:
        with Image.open(p) as im:
            images.append(im.convert("RGB"))
    durations = [duration_ms] * len(images)
    durations[-1] = duration_ms * 3
    out_path = Path(out_path)
    with atomic_path(out_path) as tmp:
        images[0].save(
            tmp, format="GIF", save_all=True, append_images=images[1:], duration=durations, loop=0
        )
    return out_path
