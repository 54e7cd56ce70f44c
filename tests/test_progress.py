"""The rich renderer draws bars and logs on its console; the null renderer draws nothing."""

from __future__ import annotations

import io

from rich.console import Console

from transfigure.progress import Event, NullRenderer, RichRenderer, make_renderer


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
    assert isinstance(make_renderer(_console(buffer)), RichRenderer)
    assert buffer.getvalue() == ""
