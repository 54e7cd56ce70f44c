"""Views of a training run from its files: metric curves and an animation of the samples.

Pure functions of files already in the run folder (``metrics.jsonl``, ``samples/*.png``), written
atomically, so they can be regenerated at any time. Every trainer uses them with its own panels.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from transfigure.fileio import atomic_path

__all__ = ["Panel", "plot_metrics", "progress_gif", "read_metrics"]

# A panel: its y-axis label and the (metric key, legend label) pairs drawn in it.
Panel = tuple[str, Sequence[tuple[str, str]]]


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


def plot_metrics(
    metrics_path: str | Path, out_path: str | Path, panels: Sequence[Panel]
) -> Path | None:
    """Plot metric curves against the step, one panel (stacked vertically) per group.

    Panels with no data are left out; rows flagged ``end_of_epoch`` get a faint vertical line.

    Args:
        metrics_path: a run's ``metrics.jsonl``.
        out_path: the PNG to write.
        panels: ``(y label, [(key, legend label), ...])`` per panel.

    Returns:
        ``out_path``, or ``None`` if there was nothing to plot yet.
    """
    # The object-oriented API with an Agg canvas: no pyplot, no global backend switch.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = read_metrics(metrics_path)
    drawn = [
        (ylabel, [(label, *_series(rows, key)) for key, label in curves])
        for ylabel, curves in panels
    ]
    drawn = [(ylabel, [c for c in curves if c[1]]) for ylabel, curves in drawn]
    drawn = [(ylabel, curves) for ylabel, curves in drawn if curves]
    if not drawn:
        return None
    fig = Figure(figsize=(8, 1.0 + 2.5 * len(drawn)), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(drawn), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (ylabel, curves) in zip(axes, drawn, strict=True):
        for label, xs, ys in curves:
            ax.plot(xs, ys, label=label, linewidth=1.2)
        ax.set_ylabel(ylabel)
        ax.legend(loc="best")
        ax.grid(alpha=0.3)
        for row in rows:  # mark epoch ends
            if row.get("end_of_epoch") and "step" in row:
                ax.axvline(row["step"], color="0.85", linewidth=0.6, zorder=0)
    axes[-1].set_xlabel("step")
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
