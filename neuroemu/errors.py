"""Exceptions that the command line turns into one-line messages.

Every error a user can cause (bad YAML, impossible physics, a missing data set, an input of
the wrong shape) is a :class:`NeuroemuError`. Its message is complete on one line: it names
the file, key or argument at fault and the reason. Anything else that escapes is a bug.
"""

from __future__ import annotations


class NeuroemuError(Exception):
    """Base of every error caused by the user's input rather than by a bug."""


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


def one_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line (runs of whitespace, newlines included, become one
    space), or its type name when it has none. For an ``OSError`` with a reason
    (``strerror``), the reason alone, without the file name the message repeats."""
    text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return " ".join(text.split()) or type(exc).__name__
