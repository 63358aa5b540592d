"""``neuroemu sweep``: a non-ideality sweep on Dask."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .arguments import live_display, positive_int, progress_bars, stderr_console


def add_parser(sub: Any) -> None:
    p = sub.add_parser("sweep", help="run a non-ideality sweep on Dask")
    p.add_argument("sweep", metavar="SWEEP.yaml")
    p.add_argument("--scheduler", metavar="ADDRESS", help="an existing Dask scheduler")
    p.add_argument(
        "--workers", type=positive_int, default=2, help="local worker processes (default 2)"
    )
    p.add_argument("--out", metavar="SWEEP.h5", help="results file (default: NAME.h5)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..spec.sweep import load_sweep
    from ..sweep.run import connect, default_output, run_sweep

    sweep = load_sweep(args.sweep)  # every point's spec is checked before anything runs
    out = Path(args.out) if args.out else default_output(sweep)
    _check_output(out, sweep)  # before a cluster starts
    client, cluster = connect(args.scheduler, args.workers)
    console = stderr_console()
    try:
        with progress_bars(console) as bars:
            total = len(sweep.points())
            task = bars.add_task(f"sweep {sweep.spec.name}", total=total, status="")

            live = live_display(console)

            def advance(done: int, failed: int, total: int) -> None:
                bars.update(task, completed=done + failed, status=f"{failed} failed")
                if not live:  # a log: one line per recorded point instead of a bar
                    console.print(
                        f"sweep {sweep.spec.name}: {done} of {total} points done, {failed} failed"
                    )

            counts = run_sweep(sweep, out, client, progress=advance)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    print(
        f"sweep {sweep.spec.name}: {counts['total']} points, {counts['run']} run, "
        f"{counts['skipped']} already done, {counts['failed']} failed -> {out}"
    )
    return 1 if counts["failed"] else 0


def _check_output(out: Path, sweep: Any) -> None:
    """Refuse an output the sweep could not write, without changing it: a missing folder,
    a file that is not this sweep's (another sweep's, not a sweep file) or one that another
    sweep is writing."""
    from ..errors import RunFileError
    from ..io.sweepfile import is_sweep_file, open_for_sweep

    if not out.parent.is_dir():
        raise RunFileError(f"{out}: folder {out.parent} does not exist")
    if out.is_dir():
        raise RunFileError(f"{out}: a folder; name the sweep file (e.g. {out / 'sweep.h5'})")
    if out.exists():
        if not is_sweep_file(out):
            raise RunFileError(f"{out}: exists and is not a sweep file (pass another --out)")
        with open_for_sweep(out, sweep):  # checks the file and its lock; writes nothing
            pass
