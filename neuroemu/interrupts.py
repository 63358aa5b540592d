"""Stopping a run cleanly: Ctrl-C (SIGINT) and SIGTERM.

A batch scheduler or ``kill`` stops a process with SIGTERM, which by default ends Python at
once, with no ``finally`` block run. The command line turns SIGTERM into
:class:`Terminated`, a kind of :class:`KeyboardInterrupt`, so that a terminated run closes its
file as an interrupted one does.

A run file is consistent only between appends: an epoch's metrics, its state for
``--resume`` and its snapshot are written one after another. :func:`deferred_interrupts`
holds both signals while such a group of writes runs and delivers them after it.
"""

from __future__ import annotations

import functools
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Terminated(KeyboardInterrupt):
    """The process received SIGTERM."""


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated(f"signal {signum}")


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Within the block SIGTERM raises :class:`Terminated` (main thread only; elsewhere the
    signal keeps its handler)."""
    if not _main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


@contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Hold SIGINT and SIGTERM while the block runs, then deliver the first one that came to
    the handler in place before the block. Outside the main thread, do nothing (only it
    receives signals)."""
    if not _main_thread():
        yield
        return
    pending: list[int] = []

    def hold(signum: int, frame: Any) -> None:
        pending.append(signum)

    previous = {s: signal.signal(s, hold) for s in SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():  # None: a handler not set from Python
            signal.signal(s, signal.SIG_DFL if handler is None else handler)
        if pending:
            signal.raise_signal(pending[0])


def uninterrupted(function: Any) -> Any:
    """``function`` run within :func:`deferred_interrupts`."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with deferred_interrupts():
            return function(*args, **kwargs)

    return wrapper
