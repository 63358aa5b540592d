"""One-line error messages."""

from __future__ import annotations

import pytest

from neuroemu.errors import SpecError, one_line


def test_a_message_on_several_lines_becomes_one():
    assert one_line(ValueError("first line\n  second\tline \n")) == "first line second line"
    assert one_line(SpecError("chip.yaml: layers[0]:\n\nbad")) == "chip.yaml: layers[0]: bad"


@pytest.mark.parametrize("exc", [ValueError(), RuntimeError(""), RuntimeError(" \n ")])
def test_an_empty_message_gives_the_type_name(exc):
    assert one_line(exc) == type(exc).__name__


def test_an_os_error_gives_its_reason_without_the_path(tmp_path):
    missing = tmp_path / "absent" / "file.idx"
    with pytest.raises(FileNotFoundError) as info:
        missing.read_bytes()
    assert str(missing) in str(info.value)
    assert one_line(info.value) == " ".join(info.value.strerror.split())
    assert "file.idx" not in one_line(info.value)
    assert one_line(OSError("cannot map the file")) == "cannot map the file"
    assert one_line(OSError()) == "OSError"
