"""One-line error messages."""

from __future__ import annotations

import pytest

from neuroemu.errors import (
    MAX_MESSAGE,
    NeuroemuWarning,
    SpecError,
    brief,
    capped,
    format_warning,
    one_line,
)


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


def test_a_long_message_keeps_its_beginning_and_its_end():
    text = "chips/x.yaml: training.trace_samples: " + "1, " * 1000 + "the reason"
    short = capped(text)
    assert len(short) == MAX_MESSAGE
    assert short.startswith("chips/x.yaml: training.trace_samples: 1, 1,")
    assert short.endswith("1, 1, the reason")
    cut = int(short.split("[... ")[1].split(" characters cut")[0])
    kept = short.replace(f" [... {cut} characters cut ...] ", "")
    assert len(kept) + cut == len(text)
    assert capped("short") == "short"
    assert len(str(SpecError(text))) == MAX_MESSAGE


def test_an_echoed_value_is_short():
    assert brief("x" * 1000) == "'" + "x" * 56 + "..."
    assert brief([1, 2]) == "[1, 2]"


def test_a_neuroemu_warning_is_one_line_on_a_command_line():
    line = format_warning(NeuroemuWarning("a\nb"), NeuroemuWarning, "f.py", 3)
    assert line == "neuroemu: warning: a b\n"
    assert "UserWarning" in format_warning(UserWarning("c"), UserWarning, "f.py", 3)
