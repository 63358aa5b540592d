"""What every command shares: the parser class, argument types, the console on stderr."""

from __future__ import annotations

import argparse
from typing import Any

EXIT_USAGE = 2


class Parser(argparse.ArgumentParser):
    """argparse with the same one-line errors as the commands (``--help`` shows usage)."""

    def error(self, message: str) -> Any:
        command = self.prog.removeprefix("neuroemu").strip()
        where = f"{command}: " if command else ""
        self.exit(EXIT_USAGE, f"neuroemu: error: {where}{message}\n")


def int_at_least(minimum: int) -> Any:
    """An argparse type: a whole number of at least ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    return parse


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)


def positive_float(text: str) -> float:
    """An argparse type: a finite number > 0."""
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def durations(text: str) -> list[float]:
    """``1s,1h,1d,1y`` -> seconds after programming (at least one)."""
    from ..units import parse_duration

    try:
        times = [parse_duration(part.strip()) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not times:
        raise argparse.ArgumentTypeError(f"no times in {text!r} (e.g. 1s,1h,1d,1y)")
    return times


def dataset_name(text: str) -> str:
    """An argparse type: a data set's name or folder, not empty."""
    if not text.strip():
        raise argparse.ArgumentTypeError(
            f"{text!r} is empty: give mnist5k, fashion-mnist or a folder of IDX files"
        )
    return text


def dataset_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dataset",
        type=dataset_name,
        default=None,
        metavar="NAME|PATH",
        help="mnist5k (embedded, default), fashion-mnist (Debian's dataset-fashion-mnist) "
        "or a folder with the four MNIST-format IDX files",
    )


def stderr_console() -> Any:
    from rich.console import Console

    # soft_wrap: a logged line stays one line whatever the width (logs are read per line)
    return Console(stderr=True, soft_wrap=True)


def live_display(console: Any) -> bool:
    """Whether ``console`` writes to a terminal, where live progress bars can redraw
    themselves. Into a file or a pipe (a CI log) they would be printed once, when they
    stop, after every line printed while they ran."""
    isatty = getattr(console.file, "isatty", None)
    try:
        return bool(isatty()) if isatty is not None else False
    except ValueError:  # a closed file
        return False


def progress_bars(console: Any, disable: bool = False) -> Any:
    """rich's live progress bars on ``console``; none (a progress object that draws
    nothing) with ``disable`` or when the console is not a terminal (:func:`live_display`)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=disable or not live_display(console),
        transient=False,
    )
