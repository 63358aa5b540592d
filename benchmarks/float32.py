"""Training in float32 against float64: the XS chip (chips/xs_784x100.yaml, its own
training settings) on all of Fashion-MNIST, the same seeds in both, the settles' arrays and
products in ``--dtype``'s precision (conductances and their updates stay float64; in
float32 the stopping tolerance is raised to 16 eps of float32, docs/physics.md).

Prints a Markdown table: dtype, seed, test error after the last epoch, its best, and the
training time of an epoch (median), then each dtype's seed mean +- sample standard
deviation and the difference of the means.

Run: ``python benchmarks/float32.py [--epochs 10] [--seeds 0 1 2] [--dtypes float64
float32]``; some 2 minutes a run on one core. Runs may be split over processes (one
thread each) by ``--seeds`` and ``--dtypes``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import neuroemu

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chip", type=Path, default=ROOT / "chips" / "xs_784x100.yaml")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--dtypes", nargs="+", default=["float64", "float32"])
    parser.add_argument("--dataset", default="fashion-mnist")
    args = parser.parse_args()
    print("| dtype | seed | test error | best | epoch (median) | wall |")
    print("|---|---|---|---|---|---|")
    errors: dict[str, list[float]] = {dtype: [] for dtype in args.dtypes}
    for seed in args.seeds:
        for dtype in args.dtypes:
            start = time.perf_counter()
            run = neuroemu.simulate(
                args.chip, dataset=args.dataset, epochs=args.epochs, seed=seed, dtype=dtype
            )
            trained = [h for h in run.history if h.get("train_wall_time_s") is not None]
            epoch = statistics.median(h["train_wall_time_s"] for h in trained)
            best = min(100 * h["error"] for h in run.history)
            errors[dtype].append(100 * run.error)
            print(
                f"| {dtype} | {seed} | {100 * run.error:.2f} % | {best:.2f} % | {epoch:.1f} s | "
                f"{time.perf_counter() - start:.0f} s |",
                flush=True,
            )
    for dtype, values in errors.items():
        if len(values) > 1:
            mean, spread = statistics.mean(values), statistics.stdev(values)
            print(f"{dtype}: {mean:.2f} +- {spread:.2f} % over seeds {args.seeds}")
    if len(errors) == 2 and all(len(v) > 1 for v in errors.values()):
        a, b = (statistics.mean(v) for v in errors.values())
        print(f"difference of the means: {b - a:+.2f} points")
    return 0


if __name__ == "__main__":
    sys.exit(main())
