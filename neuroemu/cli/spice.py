"""``neuroemu export-spice`` and ``neuroemu check-spice``: a chip's ngspice netlist, and
the cross-check of ``settle`` against ngspice."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import numpy as np

    from ..chip import BaseChip

from .arguments import (
    dataset_argument,
    non_negative_int,
    positive_float,
    positive_int,
    progress_bars,
    stderr_console,
)


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("export-spice", help="write an ngspice netlist of a chip with one input")
    p.add_argument("chip", metavar="CHIP")
    dataset_argument(p)
    p.add_argument("--sample", type=non_negative_int, default=0, help="test sample index")
    p.add_argument("--out", required=True, metavar="NET.cir")
    p.add_argument("--seed", type=non_negative_int)
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(func=export)

    p = sub.add_parser("check-spice", help="compare settle with ngspice .op on test samples")
    p.add_argument("chip", metavar="CHIP")
    dataset_argument(p)
    p.add_argument("--samples", type=positive_int, default=3)
    p.add_argument("--seed", type=non_negative_int)
    p.add_argument(
        "--timeout",
        type=positive_float,
        default=DEFAULT_TIMEOUT_S,
        metavar="SECONDS",
        help=f"the longest one ngspice run may take (default {DEFAULT_TIMEOUT_S:g} s)",
    )
    p.add_argument(
        "--tolerance",
        type=positive_float,
        default=DEFAULT_TOLERANCE_V,
        metavar="VOLTS",
        help="the largest voltage difference (and complementarity violation, ideal diodes) "
        f"that passes (default {DEFAULT_TOLERANCE_V:g} V)",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=check)


#: The seed of the random inputs used when the data set does not fit the chip.
RANDOM_INPUTS_SEED = 0

#: How long one ngspice ``.op`` may take by default (s): the 784-100 Shockley chip takes
#: about 8 s on a 2-core machine, the active set of a 784-500-10 ideal-diode chip (784,000
#: crossbar devices) about 1.5 min.
DEFAULT_TIMEOUT_S = 300.0

#: The voltage difference (V) at which ``settle`` and ngspice agree by default
#: (:data:`neuroemu.io.spice.TOLERANCE_V`; kept here so ``--help`` imports nothing heavy).
DEFAULT_TOLERANCE_V = 1e-6


class Inputs(NamedTuple):
    """The inputs a netlist is driven with: ``x`` (samples, n_inputs), values in [0, 1],
    and where they came from, in words."""

    x: np.ndarray
    source: str


def _inputs(args: argparse.Namespace, chip: BaseChip, count: int) -> Inputs:
    """The first ``count`` test samples of ``--dataset``, checked to fit the chip's inputs.

    Without ``--dataset``, a chip the default data set does not fit is driven with random
    inputs in [0, 1] drawn from a fixed seed (:data:`RANDOM_INPUTS_SEED`): the same inputs
    on every run, the first ``k`` the same whatever ``count``."""
    import numpy as np

    from ..errors import InputError
    from ..io.datasets import load_dataset

    data = load_dataset(args.dataset)
    if data.n_features == chip.n_inputs:
        return Inputs(data.x_test[:count], f"{data.name}, test part")
    if args.dataset is None:
        rng = np.random.default_rng(RANDOM_INPUTS_SEED)
        return Inputs(
            rng.random((count, chip.n_inputs)),
            f"random in [0, 1] (seed {RANDOM_INPUTS_SEED}): {data.name} has "
            f"{data.n_features} values per sample, chip {chip.name} takes {chip.n_inputs} inputs",
        )
    raise InputError(
        f"--dataset {args.dataset}: samples have {data.n_features} values but chip "
        f"{chip.name} takes {chip.n_inputs} inputs"
    )


def export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..chip import Chip
    from ..errors import InputError, RunFileError
    from ..files import write_text_atomic

    chip = Chip.from_yaml(args.chip, seed=args.seed)
    out = Path(args.out)
    if out.exists() and not args.force:
        raise RunFileError(f"{out}: already exists (pass --force to overwrite it)")
    if not out.parent.is_dir():
        raise RunFileError(f"{out}: folder {out.parent} does not exist")
    inputs = _inputs(args, chip, args.sample + 1)
    if args.sample >= len(inputs.x):
        raise InputError(
            f"--sample {args.sample}: the inputs ({inputs.source}) have {len(inputs.x)} "
            "test samples"
        )
    text = chip.to_spice(inputs.x[args.sample])
    write_text_atomic(out, text)
    lines = text.count("\n")
    clamps = text.count("\nVclamp_")
    active = (
        f"; ideal diodes as the active set of its operating point ({clamps:,} clamped nodes)"
        if "\n* Ideal diodes have no SPICE model" in text
        else ""
    )
    print(
        f"wrote {out}: {lines:,} lines, chip {chip.name}, sample {args.sample} "
        f"(inputs: {inputs.source}){active}"
    )
    return 0


def check(args: argparse.Namespace) -> int:
    import numpy as np

    from ..chip import Chip
    from ..errors import SpiceError
    from ..io.spice import SpiceMismatch, SpiceTimeout, check_spice, ngspice_available

    if not ngspice_available():
        raise SpiceError("ngspice not found on PATH (install Debian's package ngspice)")
    chip = Chip.from_yaml(args.chip, seed=args.seed)
    inputs = _inputs(args, chip, args.samples)
    x = inputs.x
    console = stderr_console()
    with progress_bars(console, disable=args.json) as bars:
        task = bars.add_task(f"ngspice {chip.name}", total=len(x), status="")
        try:
            results = check_spice(
                chip,
                x,
                progress=lambda: bars.advance(task),
                timeout=args.timeout,
                tolerance=args.tolerance,
            )
        except SpiceTimeout as exc:
            hint = f"--timeout {args.timeout:g}: pass a longer one"
            if getattr(chip, "has_wires", False):
                nodes = sum(2 * g.size for g in chip.conductances)
                hint += (
                    f"; the chip's wires add {nodes:,} nodes, and ngspice's sparse solver "
                    "slows down about as their square (docs/physics.md, wires)"
                )
            raise SpiceError(f"{exc} ({hint})") from None
        except SpiceMismatch as exc:
            raise SpiceError(f"chip {chip.name}: {exc}") from None
    worst = max(r["max_abs_diff_V"] for r in results)
    mean_ngspice = float(np.mean([r["ngspice_s"] for r in results]))
    mean_engine = float(np.mean([r["engine_s"] for r in results]))
    ideal = "clamped_nodes" in results[0]
    summary: dict[str, Any] = {
        "chip": chip.name,
        "inputs": inputs.source,
        "samples": len(results),
        "tolerance_V": args.tolerance,
        "max_abs_diff_V": worst,
        "mean_ngspice_s": mean_ngspice,
        "mean_engine_s": mean_engine,
    }
    if ideal:
        summary["clamped_nodes"] = [r["clamped_nodes"] for r in results]
        summary["worst_complementarity_margin_V"] = min(
            r["complementarity_margin_V"] for r in results
        )
    summary["per_sample"] = results
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"inputs: {inputs.source}")
    header = f"{'sample':>6}  {'max |dV| (V)':>13}  {'engine (s)':>10}  {'ngspice (s)':>11}"
    print(header + (f"  {'clamped':>7}  {'margin (V)':>10}" if ideal else ""))
    for i, r in enumerate(results):
        line = (
            f"{i:>6}  {r['max_abs_diff_V']:>13.3e}  {r['engine_s']:>10.5f}  {r['ngspice_s']:>11.3f}"
        )
        if ideal:
            line += f"  {r['clamped_nodes']:>7}  {r['complementarity_margin_V']:>10.3e}"
        print(line)
    ratio = mean_ngspice / max(mean_engine, 1e-12)
    print(
        f"largest difference {worst:.3e} V over {len(results)} samples (tolerance "
        f"{args.tolerance:g} V); engine {ratio:,.0f}x faster than ngspice per sample"
    )
    if ideal:
        print(
            "ideal diodes checked as the active set of each operating point: every clamp's "
            "current flows the way its diode conducts and every free node lies within its "
            f"bounds; worst margin {summary['worst_complementarity_margin_V']:.3e} V"
        )
    return 0
