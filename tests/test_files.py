"""Atomic, durable file writes: the target holds the old file or the whole new one, and no
temporary file stays behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from neuroemu.files import AtomicFile, atomic_path, fsync_path, write_text_atomic


def leftovers(target: Path) -> list[Path]:
    return sorted(target.parent.glob(f".{target.name}.partial-*"))


def test_write_text_replaces_the_target(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old\n")
    write_text_atomic(target, "new\nlines é\n")
    assert target.read_text(encoding="utf-8") == "new\nlines é\n"
    assert leftovers(target) == []
    write_text_atomic(tmp_path / "fresh.txt", "x")
    assert (tmp_path / "fresh.txt").read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fresh.txt", "out.txt"]


def test_write_text_that_fails_leaves_the_old_file(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old\n")
    with pytest.raises(UnicodeEncodeError):
        write_text_atomic(target, "new é", encoding="ascii")
    assert target.read_text() == "old\n"
    assert leftovers(target) == []


def test_atomic_path_writes_under_a_hidden_name_then_renames(tmp_path):
    target = tmp_path / "run.h5"
    target.write_bytes(b"old")
    with atomic_path(target) as partial:
        assert partial.parent == tmp_path and partial.name.startswith(".run.h5.partial-")
        partial.write_bytes(b"new")
        assert target.read_bytes() == b"old"  # untouched until the block ends
    assert target.read_bytes() == b"new"
    assert leftovers(target) == []


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_atomic_path_that_raises_leaves_the_old_file(tmp_path, error):
    target = tmp_path / "run.h5"
    target.write_bytes(b"old")
    with pytest.raises(type(error)):
        with atomic_path(target) as partial:
            partial.write_bytes(b"half")
            raise error
    assert target.read_bytes() == b"old"
    assert leftovers(target) == []
    with pytest.raises(ValueError):
        with atomic_path(tmp_path / "new.h5") as partial:
            partial.write_bytes(b"half")
            raise ValueError
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.h5"]


def test_a_rename_that_fails_removes_the_temporary_file(tmp_path):
    target = tmp_path / "taken"
    (target / "inside").mkdir(parents=True)  # a folder that is not empty: cannot be replaced
    with pytest.raises(OSError):
        write_text_atomic(target, "text")
    assert target.is_dir() and leftovers(target) == []


def test_atomic_file_commits_or_abandons(tmp_path):
    target = tmp_path / "run.h5"
    target.write_bytes(b"old")
    kept = AtomicFile(target)
    dropped = AtomicFile(target)
    assert kept.partial != dropped.partial  # two writers of one target in one process
    kept.partial.write_bytes(b"kept")
    dropped.partial.write_bytes(b"dropped")
    dropped.abandon()
    assert target.read_bytes() == b"old" and leftovers(target) == [kept.partial]
    assert kept.commit() == target
    assert target.read_bytes() == b"kept" and leftovers(target) == []
    assert (kept.state, dropped.state) == ("committed", "abandoned")
    kept.abandon()  # a write once ended stays as it ended
    dropped.commit()
    assert target.read_bytes() == b"kept"
    again = AtomicFile(target)
    assert again.partial.name == f".run.h5.partial-{os.getpid()}"
    again.abandon()
    assert target.read_bytes() == b"kept" and leftovers(target) == []


def test_fsync_path_takes_files_folders_and_missing_paths(tmp_path):
    (tmp_path / "f").write_text("x")
    fsync_path(tmp_path / "f")
    fsync_path(tmp_path)
    fsync_path(tmp_path / "missing")
