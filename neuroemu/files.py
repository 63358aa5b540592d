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


# --------------------------------------------------------------------------- locks
class LockHeld(Exception):
    """Another process holds the lock (its owner line is the message)."""


class Lock:
    """An exclusive lock on ``PATH`` held by a file ``PATH.lock`` beside it.

    The lock file is created with ``O_CREAT | O_EXCL``, which is atomic on local file systems
    and on NFS (version 3 and later), unlike ``flock``. It holds one line naming its owner:
    host, process id and when it was taken. A lock whose owner is a process of this host
    that no longer runs (killed, say) is stale and is taken over; a lock held by another
    host is never broken here (its owner line says whose it is, for a person to judge).
    :meth:`release` removes the file.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.file = self.path.with_name(f"{self.path.name}.lock")
        self.held = False

    def acquire(self) -> Lock:
        """Take the lock, or raise :class:`LockHeld` naming its owner."""
        import platform
        from datetime import UTC, datetime

        owner = f"{platform.node()} {os.getpid()} {datetime.now(UTC).isoformat(timespec='seconds')}"
        for _ in range(3):
            try:
                fd = os.open(self.file, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if not self._break_stale():
                    raise LockHeld(self._owner() or "an unknown owner") from None
                continue
            with os.fdopen(fd, "w") as f:
                f.write(owner + "\n")
                f.flush()
                os.fsync(f.fileno())
            self.held = True
            return self
        raise LockHeld(self._owner() or "an unknown owner")

    def release(self) -> None:
        if self.held:
            self.held = False
            self.file.unlink(missing_ok=True)

    def _owner(self) -> str:
        try:
            return self.file.read_text(encoding="utf-8").strip()
        except OSError:
            return ""

    def _break_stale(self) -> bool:
        """Remove the lock file if its owner is a process of this host that has ended."""
        import platform

        parts = self._owner().split()
        if len(parts) < 2 or parts[0] != platform.node():
            return False
        try:
            pid = int(parts[1])
        except ValueError:
            return False
        if pid == os.getpid() or _running(pid):  # held: by this process, or a live one
            return False
        # Rename first, so that of two processes breaking the same stale lock only one does.
        stale = self.file.with_name(f"{self.file.name}.stale-{os.getpid()}")
        try:
            os.rename(self.file, stale)
        except OSError:
            return True  # someone else broke it: try again
        stale.unlink(missing_ok=True)
        return True

    def __enter__(self) -> Lock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _running(pid: int) -> bool:
    """Whether process ``pid`` of this host still runs (a zombie counts as ended)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


# --------------------------------------------------------------------------- sealed files
#: Bytes at the start of a sealed file that hold its seal (an HDF5 user block, which HDF5
#: neither reads nor writes).
SEAL_SIZE = 512
_SEAL_TAG = b"neuroemu-sha256 "


def sealed_image(image: bytes) -> bytes:
    """``image`` (an HDF5 file's bytes) with a seal in front: :data:`SEAL_SIZE` bytes that
    hold the SHA-256 of the image. HDF5 reads the result as the same file (it finds its
    superblock past the first 512 bytes and takes them for a user block)."""
    import hashlib

    return _seal(hashlib.sha256(image).hexdigest()) + image


def _seal(digest: str) -> bytes:
    return (_SEAL_TAG + digest.encode()).ljust(SEAL_SIZE, b"\0")


def seal(path: str | os.PathLike[str]) -> None:
    """Seal the file ``path`` in place: write the SHA-256 of everything after its first
    :data:`SEAL_SIZE` bytes into those bytes (an HDF5 file with a user block of that size,
    as :func:`sealed_image` makes them)."""
    digest = _digest(path)
    with open(path, "r+b") as f:
        f.write(_seal(digest))
        f.flush()
        os.fsync(f.fileno())


def sealed(path: str | os.PathLike[str]) -> bool | None:
    """Whether ``path`` is whole: ``True`` if its seal matches its content, ``False`` if it
    does not (the file was changed, cut short or damaged since it was sealed), ``None`` if
    it carries no seal."""
    with open(path, "rb") as f:
        head = f.read(SEAL_SIZE)
    if not head.startswith(_SEAL_TAG):
        return None
    kept = head[len(_SEAL_TAG) : len(_SEAL_TAG) + 64]
    padding = head[len(_SEAL_TAG) + 64 :]
    if len(head) < SEAL_SIZE or padding.strip(b"\0"):
        return False  # the seal itself was changed
    return kept.decode("ascii", "replace") == _digest(path)


def _digest(path: str | os.PathLike[str]) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        f.seek(SEAL_SIZE)
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
