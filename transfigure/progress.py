"""Rendering of library events: a rich progress display on stderr, or nothing.

Library loops (training, translation, stylization, downloads) never draw. They take a
``callback`` and call it with :class:`Event` objects; the CLI passes a renderer from here.
"""

from __future__ import annotations

from typing import Protocol

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from transfigure.events import Callback, Event

__all__ = [
    "Callback",
    "Event",
    "NullRenderer",
    "Renderer",
    "RichRenderer",
    "make_console",
    "make_renderer",
]


class Renderer(Protocol):
    """What the CLI hands to library code as ``callback``."""

    def __call__(self, event: Event) -> None: ...

    def log(self, message: str) -> None: ...

    def close(self) -> None: ...


def make_console(quiet: bool = False) -> Console:
    """The one console of the program: stderr, so stdout carries only results."""
    return Console(stderr=True, quiet=quiet, highlight=False)


class NullRenderer:
    """Draws nothing: for ``--quiet`` and tests. Messages are dropped too."""

    def __call__(self, event: Event) -> None:
        pass

    def log(self, message: str) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> NullRenderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _RateColumn(ProgressColumn):
    """Units per second in the task's own unit ("3.2 img/s"); bytes use the transfer column."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        unit = task.fields.get("unit", "it")
        if unit == "B" and speed is not None:
            return Text(f"{_human_bytes(speed)}/s", style="progress.data.speed")
        if speed is None:
            return Text(f"? {unit}/s", style="progress.data.speed")
        if speed < 1:
            return Text(f"{1 / speed:.2f} s/{unit}", style="progress.data.speed")
        return Text(f"{speed:.1f} {unit}/s", style="progress.data.speed")


class _MetricsColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        metrics = task.fields.get("metrics") or {}
        parts = [f"{k} {_fmt(v)}" for k, v in metrics.items()]
        # One line, cut short on narrow consoles, rather than one metric per wrapped line.
        return Text("  ".join(parts), style="dim", no_wrap=True, overflow="ellipsis")


def _human_bytes(n: float) -> str:
    for prefix in ("", "k", "M", "G"):
        if abs(n) < 1000:
            return f"{n:.1f} {prefix}B"
        n /= 1000
    return f"{n:.1f} TB"


def _fmt(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    magnitude = abs(value)
    if magnitude != 0 and (magnitude < 1e-3 or magnitude >= 1e4):
        return f"{value:.2e}"
    return f"{value:.4f}"


class RichRenderer:
    """One rich ``Progress`` on the console: a bar per task, with rate and ETA.

    Byte-counting tasks (``unit == "B"``) show sizes and transfer speed instead of counts.
    """

    def __init__(self, console: Console | None = None, *, transient: bool = False) -> None:
        self.console = console or make_console()
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            _CountColumn(),
            _RateColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            _MetricsColumn(),
            console=self.console,
            transient=transient,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._tasks: dict[str, TaskID] = {}
        self._started = False

    def _ensure_started(self) -> None:
        if not self._started:
            self._progress.start()
            self._started = True

    def __call__(self, event: Event) -> None:
        if event.message:
            if event.level == "warning":
                self.log(f"[yellow]warning:[/yellow] {escape(event.message)}")
            else:
                self.log(event.message)
        if event.total is None and event.completed == 0 and not event.done and event.message:
            return  # a pure log event
        self._ensure_started()
        task_id = self._tasks.get(event.task)
        if task_id is None:
            task_id = self._progress.add_task(
                event.task, total=event.total, unit=event.unit, metrics=event.metrics
            )
            self._tasks[event.task] = task_id
        fields = {"metrics": event.metrics} if event.metrics else {}  # keep the last ones shown
        self._progress.update(
            task_id, completed=event.completed, total=event.total, unit=event.unit, **fields
        )
        if event.done:
            total = event.total if event.total is not None else event.completed
            self._progress.update(task_id, completed=total, total=total)
            self._progress.stop_task(task_id)

    def log(self, message: str) -> None:
        # Printing through the live Progress keeps the bars below the logged lines.
        target = self._progress.console if self._started else self.console
        target.print(message)

    def close(self) -> None:
        if self._started:
            self._progress.stop()
            self._started = False

    def __enter__(self) -> RichRenderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _CountColumn(ProgressColumn):
    """``12/40`` for counts, ``1.2/3.4 MB`` for bytes."""

    def __init__(self) -> None:
        super().__init__()
        self._count = MofNCompleteColumn()
        self._bytes = DownloadColumn()

    def render(self, task: Task) -> Text:
        if task.fields.get("unit") == "B":
            return self._bytes.render(task)
        if task.total is None:
            return Text(f"{int(task.completed)}", style="progress.download")
        return self._count.render(task)


def make_renderer(
    console: Console | None = None, quiet: bool = False
) -> RichRenderer | NullRenderer:
    """A :class:`RichRenderer` on ``console``, or a :class:`NullRenderer` when ``quiet``."""
    if quiet:
        return NullRenderer()
    return RichRenderer(console or make_console())
