"""How PCM pairs are refreshed (docs/learning.md, "Pairs"): chips/crossbar_784x500_pcm.yaml
(its own training settings, seed 0) on a part of Fashion-MNIST, refreshed at several levels,
the difference written back open loop (SET pulses through the card's model) or by program
and verify; beside it the same network on ideal devices with the card's range (0-25 uS),
trained directly and as pairs.

Prints a Markdown table: devices, refresh level, how a refresh writes, test error after the
last epoch, pulses per device, refreshes per pair and the programming energy in the last
epoch, and the wall time.

Run: ``python benchmarks/pcm_refresh.py [--epochs 5] [--limit 10000]``; about 8 minutes on
2 cores with the defaults.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import yaml
from pairs import last_epoch  # benchmarks/pairs.py, beside this script

import neuroemu

ROOT = Path(__file__).resolve().parents[1]

#: An ideal card with the PCM card's range.
IDEAL = {"g_min": "0 uS", "g_max": "25 uS"}

#: (devices, scheme, refresh_at, refresh_write): the rows of the table.
CASES = [
    ("ideal", "direct", None, None),
    ("ideal", "pairs", 0.1, "pulses"),
    ("pcm_pulsed", "pairs", 0.3, "pulses"),
    ("pcm_pulsed", "pairs", 0.1, "pulses"),
    ("pcm_pulsed", "pairs", 0.3, "verified"),
    ("pcm_pulsed", "pairs", 0.15, "verified"),
    ("pcm_pulsed", "pairs", 0.1, "verified"),
    ("pcm_pulsed", "pairs", 0.05, "verified"),
]


def chip_with(device: str, scheme: str, refresh_at: float | None, write: str | None) -> dict:
    """crossbar_784x500_pcm with ``device`` in both layers, ``scheme`` and its refresh."""
    chip = yaml.safe_load((ROOT / "chips" / "crossbar_784x500_pcm.yaml").read_text())
    for layer in chip["layers"]:
        layer["device"] = dict(IDEAL) if device == "ideal" else device
    training = chip["training"]
    training["scheme"] = scheme
    training.pop("trace_samples", None)
    if refresh_at is not None:
        training["refresh_at"] = refresh_at
        training["refresh_write"] = write
    return chip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--limit", type=int, default=10000, help="training samples")
    parser.add_argument("--dataset", default="fashion-mnist")
    args = parser.parse_args()
    print("| devices | scheme | refresh_at | refresh written | test error | pulses per device | "
          "refreshes per pair | programming energy | wall |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for device, scheme, refresh_at, write in CASES:
        start = time.perf_counter()
        chip = neuroemu.Chip.from_dict(chip_with(device, scheme, refresh_at, write))
        run = neuroemu.simulate(chip, dataset=args.dataset, epochs=args.epochs, limit=args.limit)
        print(
            f"| {device} | {scheme} | {refresh_at if refresh_at is not None else '-'} | "
            f"{write or '-'} | {last_epoch(run.history[-1])} | "
            f"{time.perf_counter() - start:.0f} s |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
