"""What a run reports as it goes, to whoever listens.

``neuroemu.simulate(..., progress=listener)`` calls ``listener(event)`` with an
:class:`Event` at every step of its work: the command line draws progress bars and prints a
line per epoch from them; a notebook may print or plot; a Dask worker passes no listener
and pays nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

#: The tasks of a run: a pass over the test part, an epoch of training, the test passes at
#: times after programming.
Task = Literal["test", "train", "aging"]


@dataclass(frozen=True)
class Event:
    """One thing a run reports.

    ``kind``:

    - ``start``: a task begins (``description``, ``total`` samples);
    - ``advance``: it has gone ``advance`` samples further (``status``: the running train
      error during training);
    - ``end``: it is done;
    - ``epoch``: an epoch has been evaluated (``epoch`` of ``epochs``; 0 is the chip as
      first programmed), its ``figures`` named as in :mod:`neuroemu.metrics`.
    """

    kind: Literal["start", "advance", "end", "epoch"]
    task: Task = "test"
    description: str = ""
    total: int = 0
    advance: int = 0
    status: str = ""
    epoch: int = 0
    epochs: int = 0
    figures: dict[str, Any] = field(default_factory=dict)


Listener = Callable[[Event], None]


def quiet(event: Event) -> None:
    """A listener that ignores everything."""
