"""Writing files atomically and durably.

A file is written under a hidden temporary name beside its target, ``.NAME.partial-PID``,
flushed to disk (``fsync``), renamed over the target (``os.replace``, atomic) and the rename
flushed too (``fsync`` of the folder). Until the rename the target is untouched; after it the
target holds the whole new file, even if the machine loses power. On any error or interrupt
before the rename, the temporary file is removed and the target keeps what it held.

- :func:`atomic_path`: a context manager yielding the temporary path to write (for libraries
  that open files by name, such as h5py and h5netcdf), committed when the block ends and
  abandoned when it raises;
- :class:`AtomicFile`: the same, opened, committed and abandoned by hand, for a file written
  over a long time whose fate is decided at the end;
- :func:`write_text_atomic`: a text file in one call;
- :func:`fsync_path`: flush one file, or a folder after a rename in it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_CLAIMED: set[Path] = set()
_CLAIMING = threading.Lock()


def partial_prefix(path: str | os.PathLike[str]) -> str:
    """The start of the name of every temporary file written for ``path``
    (``.NAME.partial-``): ``path.parent.glob(partial_prefix(path) + "*")`` finds those a
    killed process left behind."""
    return f".{Path(path).name}.partial-"


def _claim(target: Path) -> Path:
    """A temporary name for ``target`` that no other writer in this process holds:
    ``.NAME.partial-PID``, or ``.NAME.partial-PID-N`` while that one is in use."""
    base = target.with_name(f"{partial_prefix(target)}{os.getpid()}")
    with _CLAIMING:
        partial, n = base, 1
        while partial in _CLAIMED:
            partial = base.with_name(f"{base.name}-{n}")
            n += 1
        _CLAIMED.add(partial)
    return partial


def fsync_path(path: str | os.PathLike[str]) -> None:
    """Flush a file (or a folder, for a rename in it) to disk, where the system allows."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # folders cannot be opened on some systems
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class AtomicFile:
    """A file being written under a temporary name beside ``target``.

    Write to :attr:`partial`, then call :meth:`commit` to put it in place of ``target`` or
    :meth:`abandon` to delete it; either ends the write (a second call does nothing). Used as
    a context manager, it commits when the block ends and abandons when the block raises.
    """

    def __init__(self, target: str | os.PathLike[str]) -> None:
        self.target = Path(target)
        self.partial = _claim(self.target)
        self.state = "open"  # then "committed" or "abandoned"

    def commit(self) -> Path:
        """Flush the temporary file to disk and rename it over the target (the target then
        holds the new file, durably); on failure, abandon it and raise. Returns the target."""
        if self.state != "open":
            return self.target
        try:
            fsync_path(self.partial)
            os.replace(self.partial, self.target)
        except BaseException:
            self.abandon()
            raise
        self._end("committed")
        fsync_path(self.target.parent)  # the rename itself
        return self.target

    def abandon(self) -> None:
        """Delete the temporary file, leaving the target as it was."""
        if self.state != "open":
            return
        try:
            self.partial.unlink(missing_ok=True)
        finally:
            self._end("abandoned")

    def _end(self, state: str) -> None:
        self.state = state
        with _CLAIMING:
            _CLAIMED.discard(self.partial)

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(self, kind: object, exc: object, tb: object) -> None:
        if kind is None:
            self.commit()
        else:
            self.abandon()


@contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield the temporary path to write ``target`` under; when the block ends, put the file
    written there in place of ``target`` (:meth:`AtomicFile.commit`); when it raises (an
    interrupt included), delete it and leave ``target`` untouched."""
    with AtomicFile(target) as pending:
        yield pending.partial


def write_text_atomic(target: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``target`` atomically and durably."""
    with atomic_path(target) as partial, open(partial, "w", encoding=encoding) as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
