"""The ``translate --compare`` page: every input beside its translation.

A thin use of the shared :class:`transfigure.report.Report`: one self-contained ``index.html``
(inline CSS, no scripts, no external assets) with images referenced by paths relative to the
page, every name HTML-escaped and every path URL-quoted. Inputs that failed are listed with the
reason in a table (a corrupt file cannot be shown as an image).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from transfigure.report import Figure, Report

if TYPE_CHECKING:
    from transfigure.batch import Entry

__all__ = ["write_compare_page"]

#: Display width of each image on the page, in CSS pixels.
WIDTH = 384


def write_compare_page(
    path: str | os.PathLike[str],
    entries: Sequence[Entry],
    *,
    title: str = "transfigure translate",
    subtitle: str | None = None,
) -> Path:
    """Write an HTML page with one row per translated image: input, output.

    Args:
        path: the page (e.g. ``OUTDIR/index.html``), written atomically.
        entries: :class:`transfigure.batch.Entry` rows in display order; outputs
            left from an earlier run (``"skipped"``) are shown too, failures in a table.
        title: page heading.
        subtitle: a line under the heading (the model, settings).

    Returns:
        ``path``.
    """
    path = Path(path)
    shown = [e for e in entries if e.status != "failed" and e.output is not None]
    failed = [e for e in entries if e.status == "failed"]
    report = Report(title, subtitle=subtitle)
    counts = f"{len(shown)} image(s)"
    if failed:
        counts += f", {len(failed)} failed"
    pairs = []
    for entry in shown:
        assert entry.output is not None
        note = " (from an earlier run)" if entry.status == "skipped" else ""
        pairs.append(
            (Figure(entry.source, str(entry.source)), Figure(entry.output, f"{entry.output}{note}"))
        )
    report.section("Translations", intro=counts).image_pairs(pairs, width=WIDTH)
    if failed:
        report.section("Failed").table(
            ["input", "reason"], [(str(e.source), e.error or "failed") for e in failed]
        )
    # Inputs may vanish or be unreadable by the time the page is written: never fail on that.
    return report.write(path, check_images=False)
