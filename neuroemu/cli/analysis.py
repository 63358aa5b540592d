"""``neuroemu traces`` and ``neuroemu plot``: summaries and figures of run and sweep files."""

from __future__ import annotations

import argparse
from typing import Any

#: The figure ``neuroemu plot`` draws of a run file without ``--kind``.
DEFAULT_KIND = "learning-curve"


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("traces", help="summarise an HDF5 run file or a sweep file")
    p.add_argument("run", metavar="RUN.h5|SWEEP.h5")
    p.set_defaults(func=traces)

    p = sub.add_parser("plot", help="draw a figure of a run file or a sweep file")
    p.add_argument("run", metavar="RUN.h5|SWEEP.h5")
    p.add_argument(
        "--kind",
        choices=("learning-curve", "conductance-histogram", "power", "settle", "drift", "sweep"),
        help=f"the figure of a run file (default {DEFAULT_KIND}); a sweep file has one "
        "(its metric against its axes)",
    )
    p.add_argument(
        "--metric", help="for a sweep file: the figure to plot (default error, the test error)"
    )
    p.add_argument("-o", "--output", required=True, metavar="FIG.png")
    p.add_argument("--force", action="store_true", help="overwrite an existing figure file")
    p.set_defaults(func=plot)


def traces(args: argparse.Namespace) -> int:
    from ..analysis import summary_lines, sweep_summary_lines
    from ..io.runs import open_run
    from ..io.sweepfile import is_sweep_file

    if is_sweep_file(args.run):
        lines = sweep_summary_lines(args.run)
    else:
        lines = summary_lines(open_run(args.run))
    for key, value in lines:
        print(f"{key:<12}{value}")
    return 0


def plot(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..analysis import PLOT_KINDS, plot, plot_sweep
    from ..errors import InputError, RunFileError
    from ..io.runs import open_run
    from ..io.sweepfile import is_sweep_file

    out = Path(args.output)
    if out.is_dir():
        raise RunFileError(f"-o {out}: a folder; name the figure file (e.g. {out / 'fig.png'})")
    if out.exists() and not args.force:
        raise RunFileError(f"{out}: already exists (pass --force to overwrite it)")
    if is_sweep_file(args.run):
        if args.kind not in (None, "sweep"):
            raise InputError(f"--kind {args.kind}: a sweep file has only the sweep figure")
        plot_sweep(args.run, str(out), args.metric or "error")
    else:
        if args.kind == "sweep":
            raise InputError(
                f"--kind sweep: {args.run} is a run file, not a sweep file "
                f"(its figures: {', '.join(PLOT_KINDS)})"
            )
        if args.metric is not None:
            raise InputError(
                f"--metric {args.metric}: only for a sweep file; a run file's figure is "
                "chosen by --kind"
            )
        plot(open_run(args.run), args.kind or DEFAULT_KIND, str(out))
    print(f"wrote {out}")
    return 0
