"""The same random 784-100-10 Shockley network solved by ``settle`` and by ngspice ``.op``.

Measured in one run: ngspice's wall time per sample (the whole batch process: parsing the
netlist and solving), the time to write the netlist, ``settle``'s time for the same single
sample (float64) and per sample in a batch of 256, the speed ratios, and the largest
voltage difference over all free nodes. Both paths are warmed up before anything is timed
(a batch call and a single-row call: a single row runs the serial kernels, which a batch
call does not load), and the single-sample ratio is of the medians over the samples, so one
slow call does not stand for all.

Run: ``python benchmarks/bench_spice.py [--samples 3]``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import neuroemu
from neuroemu.io.spice import spice_voltages

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=3)
    args = parser.parse_args()
    chip = neuroemu.Chip.from_yaml(ROOT / "chips" / "kendall_784x100_shockley.yaml")
    data = neuroemu.load_dataset("mnist5k")
    x = data.x_test[: args.samples]
    batch = data.x_test[:256]
    chip.settle(batch)  # compile (or load) the kernels and build the circuit before timing
    chip.settle(x[:1])  # and the single-row path
    rows = []
    for row in x:
        start = time.perf_counter()
        chip.settle(row[None, :])
        engine = time.perf_counter() - start
        start = time.perf_counter()
        chip.to_spice(row)
        writing = time.perf_counter() - start
        start = time.perf_counter()
        reference = spice_voltages(chip, row)
        spice = time.perf_counter() - start
        eq = chip.settle(row[None, :])
        diff = max(
            float(np.abs(v[0] - r).max()) for v, r in zip(eq.voltages, reference, strict=True)
        )
        rows.append(
            {"engine_s": engine, "netlist_s": writing, "ngspice_s": spice, "max_abs_diff_V": diff}
        )
    start = time.perf_counter()
    chip.settle(batch)
    batch_per_sample = (time.perf_counter() - start) / len(batch)
    ngspice = float(np.median([r["ngspice_s"] for r in rows]))
    engine = float(np.median([r["engine_s"] for r in rows]))
    summary = {
        "chip": chip.name,
        "samples": len(rows),
        "ngspice_s_per_sample": ngspice,
        "netlist_s_per_sample": float(np.median([r["netlist_s"] for r in rows])),
        "engine_s_per_sample": engine,
        "engine_batch256_s_per_sample": batch_per_sample,
        "ratio_single": ngspice / engine,
        "ratio_batch256": ngspice / batch_per_sample,
        "max_abs_diff_V": max(r["max_abs_diff_V"] for r in rows),
    }
    print(f"{chip.name}: ngspice .op vs settle, {len(rows)} samples")
    print(
        f"{'sample':>6}{'ngspice (s)':>13}{'netlist (s)':>13}{'settle (s)':>12}{'max |dV| (V)':>14}"
    )
    for i, r in enumerate(rows):
        print(
            f"{i:>6}{r['ngspice_s']:>13.3f}{r['netlist_s']:>13.3f}{r['engine_s']:>12.5f}"
            f"{r['max_abs_diff_V']:>14.2e}"
        )
    print(
        f"settle is {summary['ratio_single']:,.0f}x faster per single sample (medians) and "
        f"{summary['ratio_batch256']:,.0f}x per sample in a batch of 256; "
        f"largest difference {summary['max_abs_diff_V']:.2e} V"
    )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
