"""The PCM goal of on-chip learning over seeds: chips/crossbar_784x500_pcm.yaml (its own
training settings: pairs with accumulators, refreshed at 10 % by program and verify) and the
same network on ideal devices with the card's range (0-25 uS, trained directly), each for
30 epochs on all of Fashion-MNIST, one row per seed; the PCM chip is then programmed and
read after 1 s, 1 h, 1 day and 1 year of drift.

Prints a Markdown table (test error after the last epoch, the drift errors, pulses per
device, refreshes per pair and programming energy in the last epoch, wall time) and, once
every seed of both chips is in, the seed mean +- sample standard deviation and the gap.

Run: ``python benchmarks/pcm_goal.py [--seeds 0 1 2] [--devices pcm ideal] [--epochs 30]``;
about 32 minutes a PCM run and 10 an ideal one, one thread each, two processes sharing
2 cores. Seeds may run in separate processes (one thread each) and be joined by reading
their tables.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import yaml
from pairs import last_epoch  # benchmarks/pairs.py, beside this script

import neuroemu

ROOT = Path(__file__).resolve().parents[1]

#: An ideal card with the PCM card's range.
IDEAL = {"g_min": "0 uS", "g_max": "25 uS"}

#: Drift times of the PCM rows.
INFER_AT = ["1s", "1h", "1d", "1y"]


def chip_for(devices: str, seed: int) -> dict:
    """crossbar_784x500_pcm as shipped (``pcm``), or its network on ideal devices trained
    directly (``ideal``), built from ``seed``."""
    chip = yaml.safe_load((ROOT / "chips" / "crossbar_784x500_pcm.yaml").read_text())
    chip["seed"] = seed
    if devices == "ideal":
        for layer in chip["layers"]:
            layer["device"] = dict(IDEAL)
        training = chip["training"]
        training["scheme"] = "direct"
        for key in ("refresh_at", "refresh_write"):
            training.pop(key, None)
    return chip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--devices", nargs="+", choices=["pcm", "ideal"], default=["pcm", "ideal"])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--dataset", default="fashion-mnist")
    args = parser.parse_args()
    print("| devices | seed | test error | drift 1 s / 1 h / 1 d / 1 y | pulses per device | "
          "refreshes per pair | programming energy | wall |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    errors: dict[str, list[float]] = {devices: [] for devices in args.devices}
    for seed in args.seeds:
        for devices in args.devices:
            start = time.perf_counter()
            chip = neuroemu.Chip.from_dict(chip_for(devices, seed))
            run = neuroemu.simulate(
                chip,
                dataset=args.dataset,
                epochs=args.epochs,
                infer_at=INFER_AT if devices == "pcm" else None,
            )
            last = run.history[-1]
            errors[devices].append(100 * last["error"])
            error, *counts = last_epoch(last).split(" | ")
            drift = " / ".join(f"{100 * point['error']:.2f}" for point in run.infer_at) or "-"
            print(
                f"| {devices} | {seed} | {error} | {drift} | {' | '.join(counts)} | "
                f"{time.perf_counter() - start:.0f} s |",
                flush=True,
            )
    for devices, values in errors.items():
        if len(values) > 1:
            print(f"{devices}: {statistics.mean(values):.2f} +- {statistics.stdev(values):.2f} % "
                  f"over seeds {args.seeds}")  # fmt: skip
    if all(len(values) > 1 for values in errors.values()) and len(errors) == 2:
        gap = statistics.mean(errors["pcm"]) - statistics.mean(errors["ideal"])
        print(f"gap: {gap:.2f} points")
    return 0


if __name__ == "__main__":
    sys.exit(main())
