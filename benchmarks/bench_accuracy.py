"""Train chips on chip with EP and report test error per epoch and wall time.

Each case runs ``neuroemu simulate CHIP --dataset D --epochs E --json`` (the command a user
runs) and prints the test error after every epoch, the best and last, and the wall time.

Run: ``python benchmarks/bench_accuracy.py [--dataset fashion-mnist] [--epochs 20]
[--chips crossbar_784x500 xs_784x100]``. Long: about 30 s per 60,000-image epoch of
crossbar_784x500 on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--chips", nargs="+", default=["crossbar_784x500", "xs_784x100"])
    args = parser.parse_args()
    results = {}
    for chip in args.chips:
        start = time.perf_counter()
        command = [sys.executable, "-m", "neuroemu.cli", "simulate", chip, "--quiet", "--json"]
        command += ["--dataset", args.dataset, "--epochs", str(args.epochs)]
        proc = subprocess.run(command, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            print(f"{chip}: failed: {proc.stderr.strip()}")
            continue
        summary = json.loads(proc.stdout.strip().splitlines()[-1])
        errors = [h["error"] for h in summary["history"]]
        results[chip] = {
            "dataset": args.dataset,
            "epochs": args.epochs,
            "test_error_per_epoch": errors,
            "best_test_error": min(errors),
            "last_test_error": errors[-1],
            "wall_time_s": wall,
        }
        curve = " ".join(f"{100 * e:.1f}" for e in errors)
        print(f"{chip} on {args.dataset}, {args.epochs} epochs, {wall:.0f} s")
        print(f"  test error % per epoch (0 = untrained): {curve}")
        print(f"  best {100 * min(errors):.2f} %, last {100 * errors[-1]:.2f} %", flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
