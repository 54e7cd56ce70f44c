"""Rendering of library events on stderr: live bars on a terminal, plain log lines elsewhere.

Library loops (training, translation, stylization, downloads) never draw. They take a
``callback`` and call it with :class:`Event` objects; the CLI passes a renderer from here:

- :class:`RichRenderer` on a terminal: one live bar per task, with rate, ETA and metrics.
- :class:`LogRenderer` when stderr is not a terminal (CI, ``nohup``, a pipe, a log file):
  a plain line per task every ``interval`` seconds, every 10 % and at the end.
- :class:`NullRenderer` for ``--quiet`` and tests.

A task that starts while another is running is *nested* in it (the tiles of one image inside
``translate``): it is shown under its parent and cleared when it ends, and it may start over
(the next image) under the same name.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
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
    "LogRenderer",
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


def _clock(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


@dataclass
class _Run:
    """One run of a task: from its first event (or its restart) to its end."""

    name: str
    parent: str | None
    started: float
    start_completed: int
    completed: int = 0
    total: int | None = None
    unit: str = "it"
    metrics: dict[str, float] | None = None
    done: bool = False
    last_line: float = 0.0
    last_step: int = 0
    printed: tuple[int, int | None] | None = None  # (completed, total) of the last line

    @property
    def finished(self) -> bool:
        return self.done or (self.total is not None and self.completed >= self.total > 0)


class _Tasks:
    """Which tasks run, which one each nested task belongs to, and when a task starts over."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.runs: dict[str, _Run] = {}

    def update(self, event: Event) -> tuple[_Run, bool]:
        """Record ``event``; returns its task's run and whether the run is new (or restarted)."""
        run = self.runs.get(event.task)
        fresh = run is None or run.done or event.completed < run.completed
        if run is None or fresh:
            running = [r for r in self.runs.values() if not r.finished and r.name != event.task]
            now = self.clock()
            run = _Run(
                event.task,
                parent=running[-1].name if running else None,
                started=now,
                start_completed=event.completed,
                last_line=now,
            )
            self.runs.pop(event.task, None)
            self.runs[event.task] = run  # last in order: the newest running task
        run.completed, run.total, run.unit, run.done = (
            event.completed,
            event.total,
            event.unit,
            event.done,
        )
        if event.metrics:
            run.metrics = event.metrics  # keep the last ones shown
        return run, fresh


def _log_message(renderer: Renderer, event: Event) -> bool:
    """Log ``event``'s message, if any; True when the event carries nothing else."""
    if event.message:
        if event.level == "warning":
            renderer.log(f"[yellow]warning:[/yellow] {escape(event.message)}")
        else:
            renderer.log(event.message)
    return bool(event.message and event.total is None and event.completed == 0 and not event.done)


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
        self._runs = _Tasks(time.monotonic)
        self._started = False

    def _ensure_started(self) -> None:
        if not self._started:
            self._progress.start()
            self._started = True

    def __call__(self, event: Event) -> None:
        if _log_message(self, event):
            return  # a pure log event
        self._ensure_started()
        run, fresh = self._runs.update(event)
        # A nested task is drawn indented under its parent, and cleared when it ends.
        description = f"  {event.task}" if run.parent is not None else event.task
        task_id = self._tasks.get(event.task)
        if task_id is None:
            task_id = self._progress.add_task(
                description, total=event.total, unit=event.unit, metrics=event.metrics
            )
            self._tasks[event.task] = task_id
        elif fresh:  # the task starts over (the next image's tiles): new rate, new ETA
            self._progress.reset(task_id, total=event.total, description=description, visible=True)
        fields = {"metrics": event.metrics} if event.metrics else {}  # keep the last ones shown
        self._progress.update(
            task_id, completed=event.completed, total=event.total, unit=event.unit, **fields
        )
        if event.done:
            total = event.total if event.total is not None else event.completed
            self._progress.update(task_id, completed=total, total=total)
            self._progress.stop_task(task_id)
            if run.parent is not None:
                self._progress.update(task_id, visible=False)

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


class LogRenderer:
    """Plain progress lines for a console that is not a terminal (CI, ``nohup``, a pipe).

    Live bars cannot be redrawn in a log file. Each task prints one line every ``interval``
    seconds, at every ``step`` of its total (10 %), and when it ends::

        translate: 12/40 img (30%)  1.25 img/s  elapsed 0:00:09  eta 0:00:22
        translate > tiles: 96/144 tiles (67%)  4.1 tiles/s  elapsed 0:00:23  eta 0:00:11
        epoch 1/10: 500/1000 it (50%)  2.3 it/s  elapsed 0:03:37  eta 0:03:37  loss_g 1.2

    A nested task (one that starts while another runs) is named after its parent; it prints on
    the interval only, and its end only if it printed before, so that many short nested tasks
    (small images' tiles) add no lines.
    """

    def __init__(
        self,
        console: Console | None = None,
        *,
        interval: float = 10.0,
        step: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.console = console or make_console()
        self.interval = interval
        self.step = step
        self.clock = clock
        self._runs = _Tasks(clock)

    def __call__(self, event: Event) -> None:
        if _log_message(self, event):
            return  # a pure log event
        run, _fresh = self._runs.update(event)
        now = self.clock()
        nested = run.parent is not None
        if run.printed == (run.completed, run.total):
            return  # on screen already (the end event repeats the last count)
        if event.done:
            if not nested or run.printed is not None:
                self._line(run, now)
            return
        due = now - run.last_line >= self.interval
        if not nested and run.total:
            step = int(run.completed / run.total / self.step + 1e-9)
            if step > run.last_step:
                run.last_step = step
                due = True
        if due:
            self._line(run, now)

    def _line(self, run: _Run, now: float) -> None:
        run.last_line, run.printed = now, (run.completed, run.total)
        label = f"{run.parent} > {run.name}" if run.parent is not None else run.name
        elapsed = now - run.started
        in_bytes = run.unit == "B"
        if in_bytes:
            count = _human_bytes(run.completed)
            if run.total is not None:
                count = f"{count} of {_human_bytes(run.total)}"
        else:
            count = f"{run.completed}/{run.total if run.total is not None else '?'} {run.unit}"
        parts = [f"{label}: {count}"]
        if run.total:
            parts[0] += f" ({100 * run.completed / run.total:.0f}%)"
        rate = (run.completed - run.start_completed) / elapsed if elapsed > 0 else 0.0
        if rate > 0:
            if in_bytes:
                parts.append(f"{_human_bytes(rate)}/s")
            elif rate < 1:
                parts.append(f"{1 / rate:.2f} s/{run.unit}")
            else:
                parts.append(f"{rate:.1f} {run.unit}/s")
        parts.append(f"elapsed {_clock(elapsed)}")
        if rate > 0 and run.total is not None and not run.done and run.completed < run.total:
            parts.append(f"eta {_clock((run.total - run.completed) / rate)}")
        if run.metrics:
            parts.append("  ".join(f"{k} {_fmt(v)}" for k, v in run.metrics.items()))
        # Plain text on one line: a log keeps what a terminal would have redrawn.
        self.console.print("  ".join(parts), markup=False, highlight=False, soft_wrap=True)

    def log(self, message: str) -> None:
        self.console.print(message, soft_wrap=True)

    def close(self) -> None:
        pass

    def __enter__(self) -> LogRenderer:
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
) -> RichRenderer | LogRenderer | NullRenderer:
    """The renderer for ``console``: nothing when ``quiet``, bars on a terminal, else log lines."""
    if quiet:
        return NullRenderer()
    console = console or make_console()
    if console.is_terminal or console.is_jupyter:
        return RichRenderer(console)
    return LogRenderer(console)
