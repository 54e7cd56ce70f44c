"""Self-contained HTML report pages: image grids, input/output rows, tables, key-value lists.

Used by training runs (sample strips per epoch, loss curves), ``translate --compare`` (inputs
beside outputs), ``evaluate --report`` (scores) and ``demo`` (all of it). A page is one
``index.html`` with inline CSS, no scripts and no external assets; images are referenced by
paths relative to the page, so the folder can be moved, zipped or served as it is. All text is
HTML-escaped. The page is written atomically.

Example:
    >>> report = Report("Run summer2winter")
    >>> section = report.section("Samples", intro="One strip per epoch.")
    >>> _ = section.key_values({"epochs": 3, "image size": "64 px"})
    >>> html = report.render(".", check_images=False)
    >>> "<h2>Samples</h2>" in html
    True
"""

from __future__ import annotations

import html
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from transfigure.fileio import atomic_write

__all__ = ["Figure", "Report", "Section", "write_run_report"]

_CSS = """
:root { color-scheme: light; --fg: #1d232b; --muted: #5b6673; --line: #d9dee5;
  --bg: #ffffff; --panel: #f5f7fa; --accent: #2f6fdf; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--fg); background: var(--bg); }
header { padding: 24px 32px 12px; border-bottom: 1px solid var(--line); background: var(--panel); }
header h1 { margin: 0 0 4px; font-size: 24px; }
header p { margin: 0; color: var(--muted); }
main { padding: 8px 32px 32px; max-width: 1400px; }
section { margin-top: 28px; }
h2 { font-size: 19px; margin: 0 0 6px; border-bottom: 2px solid var(--accent);
  display: table; padding-bottom: 2px; }
p.intro { margin: 4px 0 12px; color: var(--muted); max-width: 75ch; }
.grid { display: flex; flex-wrap: wrap; gap: 12px; margin: 8px 0 16px; }
figure { margin: 0; display: inline-flex; flex-direction: column; align-items: center;
  gap: 4px; }
figure img { display: block; max-width: 100%; height: auto; background: var(--panel);
  border: 1px solid var(--line); border-radius: 3px; }
figure.wide { display: flex; width: fit-content; max-width: 100%; margin: 8px 0 16px; }
figure.wide img { max-width: min(100%, 1100px); }
figure a { display: block; max-width: 100%; }
img.pixelated { image-rendering: pixelated; }
figcaption { font-size: 13px; color: var(--muted); text-align: center; max-width: 100%;
  overflow-wrap: anywhere; }
table { border-collapse: collapse; margin: 8px 0 16px; }
th, td { border: 1px solid var(--line); padding: 5px 10px; text-align: left;
  vertical-align: middle; }
th { background: var(--panel); font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.rows td { text-align: center; padding: 6px; }
table.rows td figure { display: flex; }
dl.kv { display: grid; grid-template-columns: max-content auto; gap: 4px 16px; margin: 8px 0 16px; }
dl.kv dt { font-weight: 600; }
dl.kv dd { margin: 0; overflow-wrap: anywhere; }
footer { padding: 16px 32px; color: var(--muted); font-size: 12px;
  border-top: 1px solid var(--line); }
"""


@dataclass
class Figure:
    """One image on the page.

    Attributes:
        path: the image file (absolute, or relative to the working directory).
        caption: text shown under it (escaped).
    """

    path: Path
    caption: str = ""

    @classmethod
    def of(cls, item: Any) -> Figure:
        if isinstance(item, Figure):
            return item
        if isinstance(item, tuple):
            path, caption = item
            return cls(Path(path), str(caption))
        return cls(Path(item))


@dataclass
class _Block:
    kind: str  # text | kv | table | grid | rows | image
    data: Any
    options: dict[str, Any] = field(default_factory=dict)


class Section:
    """A titled part of a report; its methods add blocks and return the section (chainable)."""

    def __init__(self, title: str, intro: str | None = None) -> None:
        self.title = title
        self.intro = intro
        self.blocks: list[_Block] = []

    def text(self, text: str) -> Section:
        """A paragraph of plain text."""
        self.blocks.append(_Block("text", str(text)))
        return self

    def key_values(self, items: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> Section:
        """A two-column list of names and values (floats: 4 significant digits below 10⁴)."""
        pairs = list(items.items()) if isinstance(items, Mapping) else list(items)
        self.blocks.append(_Block("kv", [(str(k), v) for k, v in pairs]))
        return self

    def table(
        self, header: Sequence[str], rows: Iterable[Sequence[Any]], *, caption: str | None = None
    ) -> Section:
        """A table; numbers are right-aligned, floats: 4 significant digits below 10⁴."""
        rows = [list(r) for r in rows]
        for row in rows:
            if len(row) != len(header):
                raise ValueError(f"table row has {len(row)} cells, header has {len(header)}")
        self.blocks.append(_Block("table", (list(header), rows), {"caption": caption}))
        return self

    def images(self, figures: Iterable[Any], *, width: int | None = 160) -> Section:
        """A wrapping grid of images, each with an optional caption.

        Args:
            figures: paths, ``(path, caption)`` tuples or :class:`Figure` objects.
            width: display width in CSS pixels (``None``: natural size). Images enlarged 2x or
                more are scaled without smoothing, so small samples stay crisp.
        """
        self.blocks.append(_Block("grid", [Figure.of(f) for f in figures], {"width": width}))
        return self

    def image_rows(
        self,
        rows: Iterable[Sequence[Any]],
        *,
        labels: Sequence[str] = ("input", "output"),
        width: int | None = 160,
    ) -> Section:
        """A table of images, one row per example: e.g. input beside its translation.

        Args:
            rows: each row a sequence of ``len(labels)`` images (paths, tuples or Figures).
            labels: column headings.
            width: display width of each image in CSS pixels.
        """
        table = [[Figure.of(f) for f in row] for row in rows]
        for row in table:
            if len(row) != len(labels):
                raise ValueError(f"image row has {len(row)} images, expected {len(labels)}")
        self.blocks.append(_Block("rows", table, {"labels": list(labels), "width": width}))
        return self

    def image_pairs(
        self,
        pairs: Iterable[tuple[Any, Any]],
        *,
        labels: tuple[str, str] = ("input", "output"),
        width: int | None = 160,
    ) -> Section:
        """Input / output pairs: :meth:`image_rows` with two columns."""
        return self.image_rows(pairs, labels=labels, width=width)

    def image(self, path: Any, *, caption: str = "", width: int | None = None) -> Section:
        """One large figure (a loss curve, a strip of samples)."""
        figure = Figure.of(path)
        if caption:
            figure = Figure(figure.path, caption)
        self.blocks.append(_Block("image", figure, {"width": width}))
        return self


class Report:
    """An HTML page made of titled sections.

    Args:
        title: the page title and heading.
        subtitle: a line under the heading.
    """

    def __init__(self, title: str, *, subtitle: str | None = None) -> None:
        self.title = title
        self.subtitle = subtitle
        self.sections: list[Section] = []

    def section(self, title: str, *, intro: str | None = None) -> Section:
        """Add a section at the end of the page and return it."""
        section = Section(title, intro)
        self.sections.append(section)
        return section

    def images(self) -> list[Path]:
        """Every image file the page shows, in page order."""
        out: list[Path] = []
        for section in self.sections:
            for block in section.blocks:
                if block.kind == "grid":
                    out.extend(f.path for f in block.data)
                elif block.kind == "rows":
                    out.extend(f.path for row in block.data for f in row)
                elif block.kind == "image":
                    out.append(block.data.path)
        return out

    def render(self, base_dir: str | os.PathLike[str], *, check_images: bool = True) -> str:
        """The page as HTML, with image paths relative to ``base_dir`` (the page's folder).

        Raises:
            FileNotFoundError: an image does not exist (when ``check_images``).
        """
        renderer = _Renderer(Path(base_dir), check_images)
        from transfigure import __version__

        parts = [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{_e(self.title)}</title>",
            f"<style>{_CSS}</style>",
            "</head>",
            "<body>",
            "<header>",
            f"<h1>{_e(self.title)}</h1>",
        ]
        if self.subtitle:
            parts.append(f"<p>{_e(self.subtitle)}</p>")
        parts += ["</header>", "<main>"]
        for section in self.sections:
            parts.append(renderer.section(section))
        parts += [
            "</main>",
            f"<footer>Written by transfigure {_e(__version__)}.</footer>",
            "</body>",
            "</html>",
        ]
        return "\n".join(parts) + "\n"

    def write(self, path: str | os.PathLike[str], *, check_images: bool = True) -> Path:
        """Write the page atomically to ``path`` (usually ``<folder>/index.html``)."""
        path = Path(path)
        text = self.render(path.parent, check_images=check_images)
        with atomic_write(path, "w") as handle:
            handle.write(text)
        return path


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "—" if value is None else str(value)
    if isinstance(value, float):
        # Large values in full (FID-like scores), small ones to 4 significant digits.
        return f"{value:,.1f}" if abs(value) >= 1e4 else f"{value:.4g}"
    return str(value)


class _Renderer:
    def __init__(self, base_dir: Path, check_images: bool) -> None:
        self.base_dir = base_dir
        self.check_images = check_images

    def section(self, section: Section) -> str:
        parts = ["<section>", f"<h2>{_e(section.title)}</h2>"]
        if section.intro:
            parts.append(f'<p class="intro">{_e(section.intro)}</p>')
        for block in section.blocks:
            parts.append(getattr(self, f"_{block.kind}")(block))
        parts.append("</section>")
        return "\n".join(parts)

    # -- blocks -------------------------------------------------------------------------------

    def _text(self, block: _Block) -> str:
        return f"<p>{_e(block.data)}</p>"

    def _kv(self, block: _Block) -> str:
        rows = "".join(f"<dt>{_e(k)}</dt><dd>{_e(_fmt(v))}</dd>" for k, v in block.data)
        return f'<dl class="kv">{rows}</dl>'

    def _table(self, block: _Block) -> str:
        header, rows = block.data
        parts = ["<table>"]
        if block.options.get("caption"):
            parts.append(f"<caption>{_e(block.options['caption'])}</caption>")
        parts.append("<tr>" + "".join(f"<th>{_e(h)}</th>" for h in header) + "</tr>")
        for row in rows:
            cells = []
            for value in row:
                numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
                cls = ' class="num"' if numeric else ""
                cells.append(f"<td{cls}>{_e(_fmt(value))}</td>")
            parts.append("<tr>" + "".join(cells) + "</tr>")
        parts.append("</table>")
        return "\n".join(parts)

    def _grid(self, block: _Block) -> str:
        width = block.options.get("width")
        figures = "\n".join(self.figure(f, width) for f in block.data)
        return f'<div class="grid">\n{figures}\n</div>'

    def _rows(self, block: _Block) -> str:
        width = block.options.get("width")
        labels = block.options["labels"]
        parts = ['<table class="rows">', "<tr>" + "".join(f"<th>{_e(x)}</th>" for x in labels)]
        for row in block.data:
            cells = "".join(f"<td>{self.figure(f, width)}</td>" for f in row)
            parts.append(f"<tr>{cells}</tr>")
        parts.append("</table>")
        return "\n".join(parts)

    def _image(self, block: _Block) -> str:
        return self.figure(block.data, block.options.get("width"), wide=True)

    # -- images -------------------------------------------------------------------------------

    def src(self, path: Path) -> str:
        """The path of an image relative to the page, URL-quoted."""
        target = Path(os.path.abspath(path))
        rel = os.path.relpath(target, os.path.abspath(self.base_dir))
        return quote(Path(rel).as_posix())

    def figure(self, figure: Figure, width: int | None, *, wide: bool = False) -> str:
        size = _image_size(figure.path, self.check_images)
        attrs = [f'src="{_e(self.src(figure.path))}"', f'alt="{_e(figure.caption)}"']
        classes = []
        shown_w = width
        if size is not None:
            w, h = size
            shown_w = width if width is not None else w
            attrs.append(f'width="{shown_w}" height="{max(1, round(h * shown_w / w))}"')
            if shown_w >= 2 * w:  # much enlarged: crisp pixels rather than a blur
                classes.append("pixelated")
        elif width is not None:
            attrs.append(f'width="{width}"')
        if classes:
            attrs.append(f'class="{" ".join(classes)}"')
        caption = f"<figcaption>{_e(figure.caption)}</figcaption>" if figure.caption else ""
        cls = ' class="wide"' if wide else ""
        # As wide as its image, so that a long caption wraps instead of widening the figure.
        style = f' style="max-width: {shown_w}px"' if shown_w and not wide else ""
        # a click opens the image itself, at full size
        img = f'<a href="{_e(self.src(figure.path))}"><img {" ".join(attrs)} loading="eager"></a>'
        return f"<figure{cls}{style}>{img}{caption}</figure>"


def _image_size(path: Path, check: bool) -> tuple[int, int] | None:
    """(width, height) from the file header; ``None`` if unreadable and not checking."""
    try:
        from PIL import Image

        with Image.open(path) as img:
            return img.size
    except FileNotFoundError:
        if check:
            raise FileNotFoundError(f"{path}: image for the report does not exist") from None
        return None
    except Exception as exc:  # noqa: BLE001 - any decoder error means "not an image"
        if check:
            raise ValueError(f"{path}: not a readable image ({exc})") from exc
        return None


def write_run_report(run_dir: str | os.PathLike[str], *, title: str | None = None) -> Path:
    """Write ``RUN_DIR/index.html`` from what a training run folder holds.

    Works for every trainer, since they share the run-folder layout: ``config.json`` (shown as
    settings), ``metrics.jsonl`` (the last logged values), ``losses.png``, ``progress.gif``,
    ``samples/*.png`` (newest epoch first) and the exported ``*.safetensors`` model files.
    Missing pieces are simply left out, so the page can be rewritten after every epoch.

    Returns:
        The path of the page.
    """
    import json

    from transfigure.plots import read_metrics

    run = Path(run_dir)
    report = Report(title or f"Training run {run.name}", subtitle=str(run))

    findings = read_metrics(run / "diagnostics.jsonl")  # the failure detectors' findings
    if findings:
        section = report.section(
            "Diagnostics",
            intro="What the training watched for (overpowering discriminator, mode collapse, "
            "stalled or oscillating losses, memorisation) and found.",
        )
        section.table(
            ["step", "finding", "what it means and what helps"],
            [[f.get("step", ""), f.get("kind", ""), f.get("message", "")] for f in findings],
        )

    records = [r for r in read_metrics(run / "metrics.jsonl") if "event" not in r]
    last = records[-1] if records else {}
    n_records = len(records)
    if last:
        numbers = {k: v for k, v in last.items() if isinstance(v, (int, float))}
        report.section(
            "Latest metrics", intro=f"The last of {n_records} lines of metrics.jsonl."
        ).key_values(numbers)

    curves = [p for p in (run / "losses.png", run / "progress.gif") if p.is_file()]
    if curves:
        section = report.section("Curves and progress")
        for path in curves:
            caption = "loss curves" if path.suffix == ".png" else "fixed samples over epochs"
            section.image(path, caption=caption)

    samples = sorted((run / "samples").glob("*.png"), reverse=True)
    if samples:
        section = report.section("Samples", intro="Newest first; the same inputs every epoch.")
        for path in samples:
            section.image(path, caption=path.stem.replace("_", " "))

    models = sorted(run.glob("*.safetensors"))
    if models:
        report.section("Model files").table(
            ["file", "size (MB)"], [[p.name, round(p.stat().st_size / 1e6, 2)] for p in models]
        )

    config_path = run / "config.json"
    if config_path.is_file():
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            config = None
        if isinstance(config, dict):
            report.section("Settings", intro="config.json").key_values(_flatten(config))

    return report.write(run / "index.html")


def _flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested settings as dotted names: ``{"train": {"lr": 1}}`` → ``{"train.lr": 1}``."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{name}."))
        elif isinstance(value, list):
            flat[name] = ", ".join(map(str, value))
        else:
            flat[name] = value
    return flat
