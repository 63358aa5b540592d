"""``neuroemu traces`` and ``neuroemu plot``: summaries and figures of run and sweep files."""

from __future__ import annotations

import argparse
from typing import Any


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("traces", help="summarise an HDF5 run file")
    p.add_argument("run", metavar="RUN.h5")
    p.set_defaults(func=traces)

    p = sub.add_parser("plot", help="draw a figure of a run file or a sweep file")
    p.add_argument("run", metavar="RUN.h5")
    p.add_argument(
        "--kind",
        choices=("learning-curve", "conductance-histogram", "power", "settle", "drift", "sweep"),
        help="the figure of a run file; a sweep file has one (error against its axes)",
    )
    p.add_argument("--metric", default="error", help="for a sweep: the figure to plot")
    p.add_argument("-o", "--output", required=True, metavar="FIG.png")
    p.set_defaults(func=plot)


def traces(args: argparse.Namespace) -> int:
    from ..analysis import summary_lines
    from ..io.runs import open_run

    for key, value in summary_lines(open_run(args.run)):
        print(f"{key:<12}{value}")
    return 0


def plot(args: argparse.Namespace) -> int:
    from ..analysis import plot, plot_sweep
    from ..errors import InputError
    from ..io.runs import open_run
    from ..io.sweepfile import is_sweep_file

    if is_sweep_file(args.run):
        if args.kind not in (None, "sweep"):
            raise InputError(f"--kind {args.kind}: a sweep file has only the sweep figure")
        plot_sweep(args.run, args.output, args.metric)
    else:
        if args.kind in (None, "sweep"):
            raise InputError("--kind: name the figure of a run file (learning-curve, ...)")
        plot(open_run(args.run), args.kind, args.output)
    print(f"wrote {args.output}")
    return 0
