"""The memory this machine has for new arrays, and a check of an estimate against it.

A chip's device arrays, the engine's copies of them and the arrays of a batch are allocated
when the chip is built and settled; one that cannot fit is refused before anything is
allocated, with both figures, instead of failing with a ``MemoryError`` half way.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import InputError

_BYTE_PREFIXES = ("", "k", "M", "G", "T", "P", "E")


def available_memory() -> int | None:
    """Bytes this machine can give new arrays now: ``MemAvailable`` of ``/proc/meminfo``
    (Linux), else the free physical pages (``os.sysconf``); ``None`` when neither is known."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, OSError, ValueError):
        return None


def format_bytes(count: float) -> str:
    """A size in bytes with a decimal prefix: ``1.5e9 -> '1.5 GB'``."""
    value = float(count)
    for prefix in _BYTE_PREFIXES:
        if abs(value) < 1000 or prefix == _BYTE_PREFIXES[-1]:
            return f"{value:.3g} {prefix}B"
        value /= 1000
    raise AssertionError("unreachable")


def check_memory(needed: int, what: str, available: int | None = None) -> None:
    """Refuse, with an :class:`~neuroemu.errors.InputError` naming ``what`` and both
    figures, work that needs ``needed`` bytes when the machine has fewer available
    (``available``, by default :func:`available_memory`; nothing is checked when that is
    unknown)."""
    if available is None:
        available = available_memory()
    if available is None or needed <= available:
        return
    raise InputError(
        f"{what} needs about {format_bytes(needed)} of memory, but this machine has "
        f"{format_bytes(available)} available"
    )
