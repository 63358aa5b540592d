"""``neuroemu simulate``: :func:`neuroemu.simulate` with progress bars and a report."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..chip import BaseChip, Chip, LeakyChip
    from ..io.runs import Run

from .arguments import (
    dataset_argument,
    durations,
    non_negative_int,
    positive_int,
    progress_bars,
    stderr_console,
)


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "simulate",
        help="run a chip over a data set and report accuracy, sweeps, residual, power and energy",
    )
    p.add_argument("chip", metavar="CHIP", help="chip spec YAML (or a library chip name)")
    dataset_argument(p)
    p.add_argument("--limit", type=positive_int, help="use only the first N samples of each part")
    p.add_argument("--seed", type=non_negative_int, help="override the chip's seed")
    p.add_argument("--out", metavar="RUN.h5", help="write an HDF5 run file")
    p.add_argument("--force", action="store_true", help="overwrite an existing run file")
    p.add_argument(
        "--epochs", type=non_negative_int, help="train this many epochs (default: the spec's)"
    )
    p.add_argument("--resume", metavar="RUN.h5", help="continue an interrupted training run")
    p.add_argument(
        "--infer-at",
        type=durations,
        metavar="TIMES",
        help="after training, evaluate at these times after programming, with the "
        "programming noise, drift and read noise the chip's device cards have "
        "(e.g. 1s,1h,1d,1y)",
    )
    p.add_argument(
        "--test-every",
        type=non_negative_int,
        default=1,
        metavar="K",
        help="evaluate on the test part at epoch 0, every K-th epoch and the last "
        "(default 1; 0: the last only)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.add_argument("--batch-size", type=positive_int, default=256, help="samples settled at once")
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    p.add_argument(
        "--quiet",
        action="store_true",
        help="no progress bars (drawn only when stderr is a terminal); the per-epoch lines stay",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..run.simulate import simulate

    console = stderr_console()
    with progress_bars(console, disable=args.quiet) as bars:
        result = simulate(
            args.chip,
            dataset=args.dataset,
            epochs=args.epochs,
            limit=args.limit,
            seed=args.seed,
            out=args.out,
            force=args.force,
            resume=args.resume,
            infer_at=args.infer_at,
            batch_size=args.batch_size,
            dtype=args.dtype,
            progress=Bars(bars, console),
            test_every=args.test_every,
        )
    if args.json:
        print(result.to_json())
    else:
        for key, value in report_lines(result):
            print(f"{key:<10}{value}")
        if result.infer_at:
            from ..units import format_duration

            effects = after_programming(result.chip)
            for entry in result.infer_at:
                print(
                    f"{'after':<10}{format_duration(entry['time_s'], digits=6)}: test error "
                    f"{100 * entry['error']:.2f} % ({effects})"
                )
        if result.path is not None:
            print(f"{'run file':<10}{result.path}")
    return 0


class Bars:
    """A listener of a run (:class:`~neuroemu.run.progress.Event`): a progress bar per task
    and a line per evaluated epoch, on stderr. Test passes of a training run leave no bar
    behind; each epoch's training bar stays."""

    def __init__(self, bars: Any, console: Any):
        self.bars = bars
        self.console = console
        self.task: Any = None

    def __call__(self, event: Any) -> None:
        if event.kind == "start":
            self.task = self.bars.add_task(event.description, total=event.total, status="")
        elif event.kind == "advance" and self.task is not None:
            self.bars.update(self.task, advance=event.advance, status=event.status)
        elif event.kind == "end":
            if event.task != "train" and event.epochs > 0:
                self.bars.remove_task(self.task)
            self.task = None
        elif event.kind == "epoch" and event.epochs > 0:
            self.console.print(epoch_line(event.figures, event.epochs))


def after_programming(chip: BaseChip) -> str:
    """What acts on a chip evaluated at a time after programming, by its device cards:
    ``programming noise, drift, read noise`` or the part of it its cards have;
    ``no non-idealities: the chip as trained`` for ideal devices."""
    cards = [card for _, card in chip.device_arrays()]
    effects = []
    if any(_programming_noise(card) for card in cards):
        effects.append("programming noise")
    if any(card.drift is not None and (card.drift.nu_mean or card.drift.nu_std) for card in cards):
        effects.append("drift")
    if any(
        card.read_noise is not None and (card.read_noise.relative or card.read_noise.absolute)
        for card in cards
    ):
        effects.append("read noise")
    return ", ".join(effects) if effects else "no non-idealities: the chip as trained"


def _programming_noise(card: Any) -> bool:
    noise = card.programming_noise
    return noise is not None and bool(noise.sigma or any(noise.coefficients))


def epoch_line(figures: dict[str, Any], epochs: int) -> str:
    """The line an evaluated epoch prints."""
    epoch, error = figures["epoch"], 100 * figures["error"]
    if epoch == 0:
        return f"epoch 0/{epochs}: test error {error:.2f} %"
    return (
        f"epoch {epoch}/{epochs}: train error {100 * figures['train_error']:.2f} %, "
        f"test error {error:.2f} %, {figures['train_wall_time_s']:.1f} s training"
    )


def report_lines(run: Run) -> list[tuple[str, str]]:
    """The report of a run's last test pass, by its chip's family."""
    chip = run.chip
    return REPORTS[chip.family](chip, run.figures, run.meta["dataset"], run.meta["dtype"])


def _q(figures: dict[str, Any], name: str) -> str:
    """A figure with its unit, in a readable prefix."""
    from ..metrics import metric
    from ..units import format_quantity

    return format_quantity(figures[name], metric(name).unit)


def _sizes(chip: BaseChip) -> str:
    return "-".join(str(s) for s in [chip.n_inputs, *chip.layer_sizes])


def _common(chip: BaseChip, f: dict[str, Any], dataset: str, what: str) -> list[tuple[str, str]]:
    return [
        (
            "chip",
            f"{chip.name} ({_sizes(chip)}{what}, {chip.n_devices:,} devices, seed {chip.seed})",
        ),
        ("data set", f"{dataset}, test part, {f['samples']:,} samples"),
        ("accuracy", f"{100 * f['accuracy']:.2f} % (error {100 * f['error']:.2f} %)"),
    ]


def _speed(f: dict[str, Any], dtype: str) -> tuple[str, str]:
    return ("speed", f"{f['wall_time_s']:.2f} s, {f['samples_per_s']:,.0f} samples/s ({dtype})")


def _resistive_lines(
    chip: Chip, f: dict[str, Any], dataset: str, dtype: str
) -> list[tuple[str, str]]:
    return [
        *_common(chip, f, dataset, ""),
        (
            "sweeps",
            f"mean {f['mean_sweeps']:.2f}, max {f['max_sweeps']} per sample "
            f"(tolerance {f['tol']:.0e} of V_scale)",
        ),
        (
            "residual",
            f"largest KCL residual {_q(f, 'max_residual_A')} "
            f"(relative {f['max_relative_residual']:.1e})"
            + ("" if f["converged"] else "  NOT CONVERGED: raise solver.max_sweeps"),
        ),
        ("power", f"mean {_q(f, 'mean_power_W')} static, per sample"),
        (
            "energy",
            f"{_q(f, 'energy_per_inference_J')} per inference "
            f"(settling {_q(f, 'settle_time_s')}, RC estimate)",
        ),
        _speed(f, dtype),
    ]


def _leaky_lines(
    chip: LeakyChip, f: dict[str, Any], dataset: str, dtype: str
) -> list[tuple[str, str]]:
    from ..units import format_quantity

    d = chip.spec.dynamics
    return [
        *_common(chip, f, dataset, f" leaky, {chip.spec.synapses}"),
        (
            "dynamics",
            f"{d.free_steps} {d.method} steps of {format_quantity(d.dt, 's')} "
            f"({_q(f, 'settle_time_s')} per inference)",
        ),
        ("steady", _steady(f, d.free_steps)),
        ("power", f"mean {_q(f, 'mean_power_W')} read power of the arrays, per sample"),
        ("energy", f"{_q(f, 'energy_per_inference_J')} per inference (read power x time)"),
        _speed(f, dtype),
    ]


def _steady(f: dict[str, Any], steps: int) -> str:
    """Whether every sample's free phase ended steady: the last step moved no ``v`` by
    ``tol`` of ``v_r`` or more (docs/leaky.md, "How long the free phase runs")."""
    moved = (
        f"the last of {steps} steps moved v by up to {f['max_relative_residual']:.1e} of v_r "
        f"(steady: below {f['tol']:.0e}), |dv/dt| up to {_q(f, 'max_residual_V_per_s')}"
    )
    if f["converged"]:
        return f"yes: {moved}"
    return (
        f"no: {moved}; the free phase ended before the slowest samples settled "
        "(dynamics.free_steps; docs/leaky.md)"
    )


#: The report of each family of chips.
REPORTS: dict[str, Callable[[Any, dict[str, Any], str, str], list[tuple[str, str]]]] = {
    "resistive": _resistive_lines,
    "leaky": _leaky_lines,
}
