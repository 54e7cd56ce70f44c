"""The events library code emits while it works; rendering them is the CLI's business.

Library loops (training, translation, stylization, downloads) never draw. They take a
``callback`` and call it with :class:`Event` objects. This module imports nothing from the UI
side (``rich`` lives in :mod:`transfigure.progress`, used by the command line only).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Callback", "Event"]


@dataclass
class Event:
    """One step of progress in a long-running library call.

    Attributes:
        task: label of the bar this event advances ("epoch 3/10", "translate", "scale 2/3").
        completed: units done so far in this task.
        total: units in the task, or ``None`` when unknown.
        unit: what a unit is ("it", "img", "B").
        metrics: numbers to show beside the bar (losses, learning rate).
        message: a line to log above the bars.
        done: the task is finished; its bar is completed and frozen.
        level: ``"info"`` or ``"warning"`` (a warning is shown as such).
    """

    task: str
    completed: int = 0
    total: int | None = None
    unit: str = "it"
    metrics: dict[str, float] = field(default_factory=dict)
    message: str | None = None
    done: bool = False
    level: str = "info"


Callback = Callable[[Event], None]
