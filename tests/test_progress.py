"""Renderers: rich bars on a terminal, plain log lines elsewhere, nothing when quiet."""

from __future__ import annotations

import io

from rich.console import Console

from transfigure.progress import Event, LogRenderer, NullRenderer, RichRenderer, make_renderer


def _console(buffer: io.StringIO) -> Console:
    return Console(file=buffer, force_terminal=False, width=120, color_system=None)


def test_rich_renderer_shows_task_counts_rate_and_metrics():
    buffer = io.StringIO()
    with RichRenderer(_console(buffer)) as renderer:
        renderer(Event("translate", completed=0, total=4, unit="img"))
        renderer(Event("translate", completed=4, total=4, unit="img", metrics={"loss": 0.25}))
        renderer(Event("translate", completed=4, total=4, unit="img", done=True))
    text = buffer.getvalue()
    assert "translate" in text
    assert "4/4" in text
    assert "img/s" in text
    assert "loss 0.2500" in text


def test_rich_renderer_logs_messages_and_bytes():
    buffer = io.StringIO()
    renderer = RichRenderer(_console(buffer))
    renderer(Event("fetch", message="downloading horse2zebra"))
    renderer(Event("x.zip", completed=1500, total=3000, unit="B", done=True))
    renderer.close()
    text = buffer.getvalue()
    assert "downloading horse2zebra" in text
    assert "3.0 kB" in text  # byte tasks show sizes, not counts


def test_null_renderer_and_quiet_factory():
    renderer = make_renderer(quiet=True)
    assert isinstance(renderer, NullRenderer)
    renderer(Event("x", completed=1, total=2, message="hidden"))
    renderer.log("hidden")
    renderer.close()
    buffer = io.StringIO()
    assert isinstance(make_renderer(_console(buffer)), LogRenderer)  # not a terminal: plain lines
    terminal = Console(file=buffer, force_terminal=True, width=120)
    assert isinstance(make_renderer(terminal), RichRenderer)
    assert buffer.getvalue() == ""


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _log_renderer(buffer: io.StringIO, clock: _Clock) -> LogRenderer:
    return LogRenderer(_console(buffer), interval=10.0, clock=clock)


def test_log_renderer_prints_every_tenth_and_the_end_with_rate_and_eta():
    buffer, clock = io.StringIO(), _Clock()
    renderer = _log_renderer(buffer, clock)
    renderer(Event("translate", completed=0, total=40, unit="img"))
    for i in range(1, 41):
        clock.now += 0.5  # 2 img/s: 20 s in all, so the 10 s interval alone would print twice
        renderer(Event("translate", completed=i, total=40, unit="img", metrics={"loss": 0.25}))
    renderer(Event("translate", completed=40, total=40, unit="img", done=True))
    lines = buffer.getvalue().splitlines()
    assert len(lines) == 10  # 10 %, 20 %, ... 100 %; the end event repeats 100 %: not again
    assert lines[0] == (
        "translate: 4/40 img (10%)  2.0 img/s  elapsed 0:00:02  eta 0:00:18  loss 0.2500"
    )
    assert lines[-1] == "translate: 40/40 img (100%)  2.0 img/s  elapsed 0:00:20  loss 0.2500"
    assert all("\x1b" not in line and len(line) < 120 for line in lines)


def test_log_renderer_prints_on_the_interval_without_a_total():
    buffer, clock = io.StringIO(), _Clock()
    renderer = _log_renderer(buffer, clock)
    renderer(Event("model.pth", completed=0, unit="B"))  # as download() starts
    for i in range(1, 30):
        clock.now += 1.0
        renderer(Event("model.pth", completed=i * 100_000, unit="B"))
    clock.now += 1.0
    renderer(Event("model.pth", completed=3_000_000, total=3_000_000, unit="B", done=True))
    lines = buffer.getvalue().splitlines()
    assert lines == [
        "model.pth: 1.0 MB  100.0 kB/s  elapsed 0:00:10",
        "model.pth: 2.0 MB  100.0 kB/s  elapsed 0:00:20",
        "model.pth: 3.0 MB of 3.0 MB (100%)  100.0 kB/s  elapsed 0:00:30",
    ]


def test_log_renderer_shows_slow_nested_tasks_under_their_parent():
    buffer, clock = io.StringIO(), _Clock()
    renderer = _log_renderer(buffer, clock)
    renderer(Event("translate", completed=0, total=3, unit="img"))
    # Image 1: small, four quick tiles: nothing printed for them.
    for i in range(1, 5):
        clock.now += 0.1
        renderer(Event("tiles", completed=i, total=4, unit="tile", done=i == 4))
    renderer(Event("translate", completed=1, total=3, unit="img"))
    # Image 2: large, 30 tiles of 1 s: progress within the image every 10 s, and its end.
    renderer(Event("tiles", completed=0, total=30, unit="tile"))
    for i in range(1, 31):
        clock.now += 1.0
        renderer(Event("tiles", completed=i, total=30, unit="tile", done=i == 30))
    renderer(Event("translate", completed=2, total=3, unit="img"))
    lines = buffer.getvalue().splitlines()
    assert lines[0].startswith("translate: 1/3 img (33%)")
    assert lines[1:5] == [
        "translate > tiles: 10/30 tile (33%)  1.0 tile/s  elapsed 0:00:10  eta 0:00:20",
        "translate > tiles: 20/30 tile (67%)  1.0 tile/s  elapsed 0:00:20  eta 0:00:10",
        "translate > tiles: 30/30 tile (100%)  1.0 tile/s  elapsed 0:00:30",
        # The parent's rate counts from its own start: 2 images in 30.4 s.
        "translate: 2/3 img (67%)  15.20 s/img  elapsed 0:00:30  eta 0:00:15",
    ]
    assert len(lines) == 5


def test_rich_renderer_clears_a_finished_nested_task_and_restarts_it():
    buffer = io.StringIO()
    renderer = RichRenderer(Console(file=buffer, force_terminal=True, width=120))
    renderer(Event("translate", completed=0, total=2, unit="img"))
    renderer(Event("tiles", completed=4, total=4, unit="tile", done=True))
    tasks = {t.description: t for t in renderer._progress.tasks}
    assert "  tiles" in tasks and not tasks["  tiles"].visible  # indented, cleared when done
    renderer(Event("tiles", completed=1, total=9, unit="tile"))  # the next image
    tiles = tasks["  tiles"]
    assert tiles.visible and tiles.total == 9 and tiles.completed == 1 and not tiles.finished
    renderer(Event("translate", completed=2, total=2, unit="img", done=True))
    assert tasks["translate"].visible and tasks["translate"].finished
    renderer.close()
