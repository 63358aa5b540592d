"""Exceptions that the command line turns into one-line messages.

Every error a user can cause (bad YAML, impossible physics, a missing data set, an input of
the wrong shape) is a :class:`NeuroemuError`. Its message is complete on one line: it names
the file, key or argument at fault and the reason, and it is short: a message longer than
:data:`MAX_MESSAGE` characters (one that echoes a large input back) keeps its beginning and
its end (:func:`capped`). Anything else that escapes is a bug.
"""

from __future__ import annotations

import warnings
from typing import Any

#: The longest message an error carries, in characters.
MAX_MESSAGE = 400
#: The longest echo of a user's value inside a message (:func:`brief`), in characters.
MAX_ECHO = 60
#: Characters of the end a capped message keeps.
_TAIL = 100
#: Python's own format of a warning.
_python_format = warnings.formatwarning


def capped(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` itself when it has at most ``limit`` characters, else its beginning and its
    end (where a message names its file and key, and says what to do) joined by a note of
    how much was left out, ``limit`` characters in all."""
    if len(text) <= limit:
        return text
    tail = min(_TAIL, limit // 4)
    cut = len(text) - limit
    for _ in range(3):  # the note's length depends on the number it holds
        note = f" [... {cut} characters cut ...] "
        head = limit - tail - len(note)
        cut = len(text) - head - tail
    return text[:head] + note + text[len(text) - tail :]


def brief(value: Any, limit: int = MAX_ECHO) -> str:
    """``repr(value)`` for a message, at most ``limit`` characters: a long one keeps its
    beginning and ends with ``...``."""
    try:
        text = repr(value)
    except Exception:  # a value whose repr fails is shown by its type
        text = f"<{type(value).__name__}>"
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class NeuroemuError(Exception):
    """Base of every error caused by the user's input rather than by a bug. Its message is
    :func:`capped` to :data:`MAX_MESSAGE` characters."""

    def __init__(self, *args: Any) -> None:
        if len(args) == 1 and isinstance(args[0], str):
            args = (capped(args[0]),)
        super().__init__(*args)


class SpecError(NeuroemuError, ValueError):
    """A device card, chip spec or other YAML file is malformed or physically impossible."""


class InputError(NeuroemuError, ValueError):
    """An array passed to the engine has the wrong shape, dtype or values."""


class DatasetError(NeuroemuError):
    """A data set cannot be found or read."""


class SpiceError(NeuroemuError):
    """ngspice is missing, failed, or produced output that cannot be read."""


class RunFileError(NeuroemuError):
    """A run file cannot be written or read."""


class NeuroemuWarning(UserWarning):
    """A setting that works but looks wrong (a learning rate whose first update crosses a
    device's whole range); its message is one line, like an error's."""


def format_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    line: str | None = None,
) -> str:
    """``warnings.formatwarning`` for a command line: a :class:`NeuroemuWarning` as one line
    ``neuroemu: warning: <message>`` (no source file or line), any other as Python shows
    it. Installed by ``warnings.formatwarning = format_warning``."""
    if issubclass(category, NeuroemuWarning):
        return f"neuroemu: warning: {capped(' '.join(str(message).split()))}\n"
    return _python_format(message, category, filename, lineno, line)


def one_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line (runs of whitespace, newlines included, become one
    space) and :func:`capped`, or its type name when it has none. For an ``OSError`` with a reason
    (``strerror``), the reason alone, without the file name the message repeats."""
    text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return capped(" ".join(text.split())) or type(exc).__name__
