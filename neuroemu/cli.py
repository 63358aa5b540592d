"""The ``neuroemu`` command line: thin, over the same API a notebook calls.

Heavy modules (numpy, numba, h5py, pydantic) are imported inside the commands, so that
``neuroemu --help`` answers at once. Errors the user can cause are printed as one line,
``neuroemu: error: ...``, with exit status 2 and no traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports it
EXIT_TERMINATED = 143  # 128 + SIGTERM
#: The run file's metric for each training loss (units in neuroemu.io.hdf5).
LOSS_METRIC = {
    "mse": "train_loss_V2",
    "cross-entropy": "train_cross_entropy",
    "hinge": "train_hinge_V2",
}


def _int_at_least(minimum: int) -> Any:
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


def _durations(text: str) -> list[float]:
    """``1s,1h,1d,1y`` -> seconds after programming."""
    from .units import parse_duration

    try:
        return [parse_duration(part.strip()) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


_positive_int = _int_at_least(1)
_non_negative_int = _int_at_least(0)


def _stderr_console() -> Any:
    from rich.console import Console

    # soft_wrap: a logged line stays one line whatever the width (logs are read per line)
    return Console(stderr=True, soft_wrap=True)


def _progress(console: Any, disable: bool = False) -> Any:
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
        disable=disable,
        transient=False,
    )


# --------------------------------------------------------------------------- simulate
def _load_matching_dataset(name: str | None, chip: Any) -> Any:
    from .engine.inference import check_labels
    from .io.datasets import load_dataset

    data = load_dataset(name)
    if data.n_features != chip.n_inputs:
        raise_input(
            f"--dataset {data.name}: samples have {data.n_features} values but chip "
            f"{chip.name} takes {chip.n_inputs} inputs"
        )
    check_labels(chip, data.y_train, f"--dataset {data.name}: labels")
    check_labels(chip, data.y_test, f"--dataset {data.name}: labels")
    return data


def _report_lines(chip: Any, report: Any, data_name: str, dtype: str) -> list[tuple[str, str]]:
    from .units import format_quantity as q

    sizes = "-".join(str(s) for s in [chip.n_inputs, *chip.layer_sizes])
    if chip.family == "leaky":
        return _leaky_report_lines(chip, report, data_name, dtype, sizes)
    return [
        ("chip", f"{chip.name} ({sizes}, {chip.n_devices:,} devices, seed {chip.seed})"),
        ("data set", f"{data_name}, test part, {report.samples:,} samples"),
        ("accuracy", f"{100 * report.accuracy:.2f} % (error {100 * report.error:.2f} %)"),
        (
            "sweeps",
            f"mean {report.mean_sweeps:.2f}, max {report.max_sweeps} per sample "
            f"(tolerance {report.tol:.0e} of V_scale)",
        ),
        (
            "residual",
            f"largest KCL residual {q(report.max_residual, 'A')} "
            f"(relative {report.max_relative_residual:.1e})"
            + ("" if report.converged else "  NOT CONVERGED: raise solver.max_sweeps"),
        ),
        ("power", f"mean {q(report.mean_power, 'W')} static, per sample"),
        (
            "energy",
            f"{q(report.energy_per_inference, 'J')} per inference "
            f"(settling {q(report.settle_time, 's')}, RC estimate)",
        ),
        (
            "speed",
            f"{report.wall_time:.2f} s, {report.samples_per_second:,.0f} samples/s ({dtype})",
        ),
    ]


def _leaky_report_lines(
    chip: Any, report: Any, data_name: str, dtype: str, sizes: str
) -> list[tuple[str, str]]:
    from .units import format_quantity as q

    d = chip.spec.dynamics
    return [
        (
            "chip",
            f"{chip.name} ({sizes} leaky, {chip.spec.synapses}, {chip.n_devices:,} devices, "
            f"seed {chip.seed})",
        ),
        ("data set", f"{data_name}, test part, {report.samples:,} samples"),
        ("accuracy", f"{100 * report.accuracy:.2f} % (error {100 * report.error:.2f} %)"),
        (
            "dynamics",
            f"{d.free_steps} {d.method} steps of {q(d.dt, 's')} "
            f"({q(report.settle_time, 's')} per inference)",
        ),
        (
            "steady",
            f"largest |dv/dt| {q(report.max_residual, 'V/s')} "
            f"(last step moved v by {report.max_relative_residual:.1e} of v_r)"
            + ("" if report.converged else "  NOT STEADY: more free_steps or a larger dt"),
        ),
        ("power", f"mean {q(report.mean_power, 'W')} read power of the arrays, per sample"),
        ("energy", f"{q(report.energy_per_inference, 'J')} per inference (read power x time)"),
        (
            "speed",
            f"{report.wall_time:.2f} s, {report.samples_per_second:,.0f} samples/s ({dtype})",
        ),
    ]


def cmd_simulate(args: argparse.Namespace) -> int:
    import numpy as np

    from .chip.base import Chip
    from .engine.inference import evaluate
    from .interrupts import deferred_interrupts
    from .io.hdf5 import RunWriter, check_output_path, now

    started = now()
    if args.resume is not None and args.out is not None:
        raise_input("--resume continues the run file it names: give it without --out")
    if args.out is not None:
        check_output_path(args.out, args.force)
    chip = Chip.from_yaml(args.chip, seed=args.seed)
    training = chip.spec.training
    epochs = args.epochs if args.epochs is not None else (training.epochs if training else 0)
    if (epochs > 0 or args.resume is not None) and training is None:
        raise_input(f"chip {chip.name}: has no training: section, so it cannot train")
    dataset = args.dataset if args.dataset is not None else (training and training.dataset)
    data = _load_matching_dataset(dataset or None, chip)
    if args.limit is not None:
        data = data.subset(args.limit, args.limit)
    if training is not None and training.trace_samples:
        if max(training.trace_samples) >= len(data.x_test):
            raise_input(
                f"training.trace_samples: index {max(training.trace_samples)} is beyond the "
                f"{len(data.x_test)} test samples of {data.name}"
            )
    writer = None
    if args.resume is not None:
        writer, done = RunWriter.resume(args.resume, chip)
    elif args.out is not None:
        writer = RunWriter.create(
            args.out,
            chip,
            dataset=data.name,
            dataset_source=data.source,
            started=started,
            force=args.force,
            atomic=training is None or epochs == 0,
        )
        done = -1
    else:
        done = -1
    console = _stderr_console()
    dtype = np.float32 if args.dtype == "float32" else np.float64
    history: list[dict[str, Any]] = []
    complete = False
    try:
        with _progress(console, disable=args.quiet) as progress:

            def run_test(label: str) -> Any:
                task = progress.add_task(label, total=len(data.x_test), status="")
                report = evaluate(
                    chip,
                    data.x_test,
                    data.y_test,
                    batch_size=args.batch_size,
                    dtype=dtype,
                    progress=lambda n: progress.advance(task, n),
                )
                if epochs > 0:
                    progress.remove_task(task)
                return report

            def record(epoch: int, figures: dict[str, Any], report: Any, snapshot: bool) -> None:
                """Write an evaluated epoch and its traces: settle the traced samples first,
                then write both with Ctrl-C and SIGTERM held, so the epoch lands whole."""
                if writer is None:
                    return
                traces = None
                if training is not None and training.trace_samples:
                    from .learning.train import trace_phases

                    samples = training.trace_samples
                    x, y = data.x_test[samples], data.y_test[samples]
                    traces = trace_phases(chip, x, y, training, epoch)
                with deferred_interrupts():
                    writer.append(
                        epoch, figures, chip, report.prediction, data.y_test, snapshot=snapshot
                    )
                    if traces is not None:
                        writer.append_traces(epoch, samples, traces, chip)

            if done < 0:
                report = run_test(f"inference {chip.name}")
                figures = report.figures()
                history.append({"epoch": 0, **figures})
                record(0, figures, report, snapshot=True)
                if epochs > 0:
                    console.print(f"epoch 0/{epochs}: test error {100 * report.error:.2f} %")
                done = 0
            for epoch in range(done + 1, epochs + 1):
                assert training is not None
                from .learning.train import train_epoch

                task = progress.add_task(
                    f"epoch {epoch}/{epochs}", total=len(data.x_train), status=""
                )

                def advance(n: int, running: float, task: Any = task) -> None:
                    progress.update(task, advance=n, status=f"train error {100 * running:.1f} %")

                trained = train_epoch(
                    chip, data.x_train, data.y_train, training, epoch, dtype=dtype, progress=advance
                )
                report = run_test(f"test after epoch {epoch}")
                figures = {
                    **report.figures(),
                    "train_error": trained.train_error,
                    LOSS_METRIC[training.loss]: trained.train_loss,
                    "train_mean_sweeps": trained.mean_sweeps,
                    "train_wall_time_s": trained.wall_time,
                }
                history.append({"epoch": epoch, **figures})
                snapshot = epoch % training.snapshot_every == 0 or epoch == epochs
                record(epoch, figures, report, snapshot)
                console.print(
                    f"epoch {epoch}/{epochs}: train error {100 * trained.train_error:.2f} %, "
                    f"test error {100 * report.error:.2f} %, "
                    f"{trained.wall_time:.1f} s training"
                )
            aging = []
            if args.infer_at:
                from .engine.aging import infer_at

                task = progress.add_task(
                    "after programming", total=len(args.infer_at) * len(data.x_test), status=""
                )
                aged = infer_at(
                    chip,
                    args.infer_at,
                    data.x_test,
                    data.y_test,
                    batch_size=args.batch_size,
                    dtype=dtype,
                    progress=lambda n: progress.advance(task, n),
                )
                aging = [
                    {"time_s": t, **r.figures()} for t, r in zip(args.infer_at, aged, strict=True)
                ]
                if writer is not None:
                    writer.append_aging(aging)
        complete = True
    finally:
        path = writer.close(complete) if writer is not None else None
    if not history:
        # A resumed run that had already finished every epoch: report its last state.
        report = evaluate(chip, data.x_test, data.y_test, batch_size=args.batch_size, dtype=dtype)
        history.append({"epoch": done, **report.figures()})
    summary: dict[str, Any] = {
        "chip": chip.name,
        "chip_file": str(args.chip),
        "seed": chip.seed,
        "dataset": data.name,
        "dataset_part": "test",
        "dtype": args.dtype,
        "epochs": epochs,
        **report.figures(),
    }
    if epochs > 0:
        summary["history"] = history
    if aging:
        summary["infer_at"] = aging
    if path is not None:
        summary["out"] = str(path)
    if args.json:
        print(json.dumps(summary))
    else:
        for key, value in _report_lines(chip, report, data.name, args.dtype):
            print(f"{key:<10}{value}")
        for entry in aging:
            print(
                f"{'after':<10}{_duration_text(entry['time_s'])}: test error "
                f"{100 * entry['error']:.2f} % (programming noise, drift, read noise)"
            )
        if path is not None:
            print(f"{'run file':<10}{path}")
    return 0


def _duration_text(seconds: float) -> str:
    from .units import DURATIONS

    for unit in ("y", "d", "h", "min", "s"):
        if seconds >= DURATIONS[unit]:
            return f"{seconds / DURATIONS[unit]:g} {unit}"
    return f"{seconds:g} s"


def raise_input(message: str) -> None:
    from .errors import InputError

    raise InputError(message)


# --------------------------------------------------------------------------- spice
def _sample_row(args: argparse.Namespace, chip: Any, index: int) -> Any:
    from .io.datasets import load_dataset

    data = load_dataset(args.dataset)
    if data.n_features != chip.n_inputs:
        raise_input(
            f"--dataset {data.name}: samples have {data.n_features} values but chip "
            f"{chip.name} takes {chip.n_inputs} inputs"
        )
    if index >= len(data.x_test):
        raise_input(f"--sample {index}: data set {data.name} has {len(data.x_test)} test samples")
    return data.x_test[index]


def cmd_export_spice(args: argparse.Namespace) -> int:
    from .chip.base import Chip
    from .errors import RunFileError

    chip = Chip.from_yaml(args.chip, seed=args.seed)
    out = Path(args.out)
    if out.exists() and not args.force:
        raise RunFileError(f"{out}: already exists (pass --force to overwrite it)")
    if not out.parent.is_dir():
        raise RunFileError(f"{out}: folder {out.parent} does not exist")
    text = chip.to_spice(_sample_row(args, chip, args.sample))
    partial = out.with_name(f".{out.name}.partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(out)
    lines = text.count("\n")
    print(f"wrote {out}: {lines:,} lines, chip {chip.name}, test sample {args.sample}")
    return 0


def cmd_check_spice(args: argparse.Namespace) -> int:
    import numpy as np

    from .chip.base import Chip
    from .errors import SpiceError
    from .io.datasets import load_dataset
    from .io.spice import check_spice, ngspice_available

    if not ngspice_available():
        raise SpiceError("ngspice not found on PATH (install Debian's package ngspice)")
    chip = Chip.from_yaml(args.chip, seed=args.seed)
    data = load_dataset(args.dataset)
    if data.n_features != chip.n_inputs:
        raise_input(
            f"--dataset {data.name}: samples have {data.n_features} values but chip "
            f"{chip.name} takes {chip.n_inputs} inputs"
        )
    x = data.x_test[: args.samples]
    console = _stderr_console()
    with _progress(console, disable=args.json) as progress:
        task = progress.add_task(f"ngspice {chip.name}", total=len(x), status="")
        results = check_spice(chip, x, progress=lambda: progress.advance(task))
    worst = max(r["max_abs_diff_V"] for r in results)
    mean_ngspice = float(np.mean([r["ngspice_s"] for r in results]))
    mean_engine = float(np.mean([r["engine_s"] for r in results]))
    summary = {
        "chip": chip.name,
        "samples": len(results),
        "max_abs_diff_V": worst,
        "mean_ngspice_s": mean_ngspice,
        "mean_engine_s": mean_engine,
        "per_sample": results,
    }
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"{'sample':>6}  {'max |dV| (V)':>13}  {'engine (s)':>10}  {'ngspice (s)':>11}")
        for i, r in enumerate(results):
            print(
                f"{i:>6}  {r['max_abs_diff_V']:>13.3e}  {r['engine_s']:>10.5f}  "
                f"{r['ngspice_s']:>11.3f}"
            )
        ratio = mean_ngspice / max(mean_engine, 1e-12)
        print(
            f"largest difference {worst:.3e} V over {len(results)} samples; "
            f"engine {ratio:,.0f}x faster than ngspice per sample"
        )
    return 0


# --------------------------------------------------------------------------- library
def cmd_validate(args: argparse.Namespace) -> int:
    from .spec.loader import iter_validate

    failed = 0
    for path, error in iter_validate([Path(p) for p in args.files]):
        if error is None:
            print(f"ok      {path}")
        else:
            failed += 1
            print(f"error   {error}", file=sys.stderr)
    return EXIT_USAGE if failed else 0


def cmd_library(args: argparse.Namespace) -> int:
    from .spec.loader import find_card, list_library, load_card, load_chip

    kind = args.command  # "chips" or "devices"
    if args.action == "list":
        for path in list_library(kind):
            try:
                item = load_chip(path).spec if kind == "chips" else load_card(path)
                print(f"{path.stem:<28}{item.description}")
            except Exception as exc:
                print(f"{path.stem:<28}INVALID: {exc}")
        return 0
    if args.name is None:
        raise_input(f"{kind} show: name a {kind[:-1]} (see `neuroemu {kind} list`)")
    if kind == "chips":
        loaded = load_chip(args.name)
        from .chip.base import build_chip

        chip = build_chip(loaded.spec, source=loaded)
        print(loaded.text.rstrip())
        print(f"# built: {chip!r}")
        for crossbar in chip.crossbars:
            print(
                f"#   crossbar {crossbar.name}: {crossbar.shape[0]} x {crossbar.shape[1]}, "
                f"device {crossbar.device.name}"
            )
    else:
        path = find_card(args.name)
        load_card(path)
        print(path.read_text(encoding="utf-8").rstrip())
    return 0


# --------------------------------------------------------------------------- sweeps
def cmd_sweep(args: argparse.Namespace) -> int:
    from .spec.sweep import load_sweep
    from .sweep.run import connect, default_output, run_sweep

    sweep = load_sweep(args.sweep)  # every point's spec is checked before anything runs
    out = Path(args.out) if args.out else default_output(sweep)
    client, cluster = connect(args.scheduler, args.workers)
    console = _stderr_console()
    try:
        with _progress(console) as progress:
            total = len(sweep.points())
            task = progress.add_task(f"sweep {sweep.spec.name}", total=total, status="")

            def advance(done: int, failed: int, total: int) -> None:
                progress.update(task, completed=done + failed, status=f"{failed} failed")

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


# --------------------------------------------------------------------------- analysis
def cmd_traces(args: argparse.Namespace) -> int:
    from .analysis import summary_lines
    from .io.runs import open_run

    for key, value in summary_lines(open_run(args.run)):
        print(f"{key:<12}{value}")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from .analysis import plot, plot_sweep
    from .io.runs import open_run
    from .io.sweepfile import is_sweep_file

    if is_sweep_file(args.run):
        if args.kind not in (None, "sweep"):
            raise_input(f"--kind {args.kind}: a sweep file has only the sweep figure")
        plot_sweep(args.run, args.output, args.metric)
    else:
        if args.kind in (None, "sweep"):
            raise_input("--kind: name the figure of a run file (learning-curve, ...)")
        plot(open_run(args.run), args.kind, args.output)
    print(f"wrote {args.output}")
    return 0


# --------------------------------------------------------------------------- parser
class _Parser(argparse.ArgumentParser):
    """argparse with the same one-line errors as the commands (``--help`` shows usage)."""

    def error(self, message: str) -> Any:
        command = self.prog.removeprefix("neuroemu").strip()
        where = f"{command}: " if command else ""
        self.exit(EXIT_USAGE, f"neuroemu: error: {where}{message}\n")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = _Parser(
        prog="neuroemu",
        description="Emulate analog neuromorphic chips: crossbars of resistive devices "
        "settling to their exact DC equilibrium.",
    )
    parser.add_argument("--version", action="version", version=f"neuroemu {__version__}")
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=_Parser
    )

    def dataset_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--dataset",
            default=None,
            metavar="NAME|PATH",
            help="mnist5k (embedded, default), fashion-mnist (Debian's dataset-fashion-mnist) "
            "or a folder with the four MNIST-format IDX files",
        )

    p = sub.add_parser(
        "simulate",
        help="run a chip over a data set and report accuracy, sweeps, residual, power and energy",
    )
    p.add_argument("chip", metavar="CHIP", help="chip spec YAML (or a library chip name)")
    dataset_arg(p)
    p.add_argument("--limit", type=_positive_int, help="use only the first N samples of each part")
    p.add_argument("--seed", type=_non_negative_int, help="override the chip's seed")
    p.add_argument("--out", metavar="RUN.h5", help="write an HDF5 run file")
    p.add_argument("--force", action="store_true", help="overwrite an existing run file")
    p.add_argument(
        "--epochs", type=_non_negative_int, help="train this many epochs (default: the spec's)"
    )
    p.add_argument("--resume", metavar="RUN.h5", help="continue an interrupted training run")
    p.add_argument(
        "--infer-at",
        type=_durations,
        metavar="TIMES",
        help="after training, evaluate at these times after programming, with programming "
        "noise, drift and read noise (e.g. 1s,1h,1d,1y)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.add_argument("--batch-size", type=_positive_int, default=256, help="samples settled at once")
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("export-spice", help="write an ngspice netlist of a chip with one input")
    p.add_argument("chip", metavar="CHIP")
    dataset_arg(p)
    p.add_argument("--sample", type=_non_negative_int, default=0, help="test sample index")
    p.add_argument("--out", required=True, metavar="NET.cir")
    p.add_argument("--seed", type=_non_negative_int)
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(func=cmd_export_spice)

    p = sub.add_parser("check-spice", help="compare settle with ngspice .op on test samples")
    p.add_argument("chip", metavar="CHIP")
    dataset_arg(p)
    p.add_argument("--samples", type=_positive_int, default=3)
    p.add_argument("--seed", type=_non_negative_int)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_check_spice)

    p = sub.add_parser("sweep", help="run a non-ideality sweep on Dask")
    p.add_argument("sweep", metavar="SWEEP.yaml")
    p.add_argument("--scheduler", metavar="ADDRESS", help="an existing Dask scheduler")
    p.add_argument(
        "--workers", type=_positive_int, default=2, help="local worker processes (default 2)"
    )
    p.add_argument("--out", metavar="SWEEP.h5", help="results file (default: NAME.h5)")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("traces", help="summarise an HDF5 run file")
    p.add_argument("run", metavar="RUN.h5")
    p.set_defaults(func=cmd_traces)

    p = sub.add_parser("plot", help="draw a figure of a run file or a sweep file")
    p.add_argument("run", metavar="RUN.h5")
    p.add_argument(
        "--kind",
        choices=("learning-curve", "conductance-histogram", "power", "settle", "drift", "sweep"),
        help="the figure of a run file; a sweep file has one (error against its axes)",
    )
    p.add_argument("--metric", default="error", help="for a sweep: the figure to plot")
    p.add_argument("-o", "--output", required=True, metavar="FIG.png")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("validate", help="check device cards and chip specs")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.set_defaults(func=cmd_validate)

    for kind in ("chips", "devices"):
        p = sub.add_parser(kind, help=f"list or show the {kind} of the library")
        p.add_argument("action", choices=("list", "show"))
        p.add_argument("name", nargs="?", metavar="NAME")
        p.set_defaults(func=cmd_library)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from .errors import NeuroemuError
    from .interrupts import Terminated, sigterm_interrupts

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


if __name__ == "__main__":
    sys.exit(main())
