"""The ``neuroemu`` command line: thin commands over the same API a notebook calls.

Each command lives in a module of its own and imports the heavy modules (numpy, numba,
h5py, pydantic) inside the function that runs it, so that ``neuroemu --help`` answers at
once. Errors the user can cause are printed as one line, ``neuroemu: error: ...``, with
exit status 2 and no traceback.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from . import analysis, library, simulate, spice, sweep
from .arguments import Parser

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports it
EXIT_TERMINATED = 143  # 128 + SIGTERM


class _Version(argparse.Action):
    """``--version``: the installed version, looked up only when asked for."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option: Any = None) -> None:
        from ..version import __version__

        print(f"neuroemu {__version__}")
        parser.exit(0)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="neuroemu",
        description="Emulate analog neuromorphic chips: crossbars of resistive devices "
        "settling to their exact DC equilibrium.",
    )
    parser.add_argument("--version", action=_Version, nargs=0, help="show the version and exit")
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=Parser
    )
    simulate.add_parser(sub)
    spice.add_parsers(sub)
    sweep.add_parser(sub)
    analysis.add_parsers(sub)
    library.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from ..errors import NeuroemuError, format_warning
    from ..interrupts import Terminated, sigterm_interrupts

    shown = warnings.formatwarning
    warnings.formatwarning = format_warning  # a NeuroemuWarning is one line
    try:
        with sigterm_interrupts():
            return int(args.func(args))
    except NeuroemuError as exc:
        print(f"neuroemu: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Terminated:
        print("neuroemu: terminated", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print("neuroemu: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return 0
    finally:
        warnings.formatwarning = shown


if __name__ == "__main__":
    sys.exit(main())
