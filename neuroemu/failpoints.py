"""Failpoints: named moments of the program where a test can have the process killed.

A fault campaign must kill a run at moments chosen by what the program is doing (after the
third mini-batch, between writing an epoch's part file and committing the run file), not
by wall time, which depends on how busy the machine is. Code marks such moments with
:func:`reach`; when the environment variable ``NEUROEMU_FAILPOINT`` names one as
``NAME`` or ``NAME:N``, the process sends itself SIGKILL the first (or the ``N``-th) time it
reaches it. Without the variable, :func:`reach` costs a dictionary lookup.
"""

from __future__ import annotations

import os
import signal

VARIABLE = "NEUROEMU_FAILPOINT"
_reached: dict[str, int] = {}


def reach(name: str) -> None:
    """Mark the moment ``name``; die here if ``NEUROEMU_FAILPOINT`` says so."""
    wanted = os.environ.get(VARIABLE)
    if not wanted:
        return
    point, _, count = wanted.partition(":")
    if point != name:
        return
    _reached[name] = _reached.get(name, 0) + 1
    if _reached[name] >= int(count or 1):
        os.kill(os.getpid(), signal.SIGKILL)
