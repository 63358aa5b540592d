"""On-chip EP on each shipped device card, with and without the training schemes for real
devices: the XS chip (chips/xs_784x100.yaml, its own training settings, seed 0) with the
card in both layers, trained on each of

- ``direct``: the card as shipped;
- ``nearest`` and ``stochastic``: a card with levels or pulses, its ``rounding`` set so;
- ``mixed-precision`` and ``nearest-carry``: that ``training.scheme`` (per-device
  accumulators, docs/learning.md), for a card with levels or pulses.

Prints a Markdown table: card, scheme, test error after the last epoch, best epoch,
programming pulses per device per epoch and the chip's programming energy per epoch (means
over epochs; the energy from the card's ``pulse_energy``), the fraction of the changes
asked that rounded to no pulse, whether an epoch warned, and the wall time.

Run: ``python benchmarks/device_schemes.py [--epochs 5] [--dataset mnist5k] [--limit N]
[--cards NAME ...]``; about 5 minutes on 2 cores with the defaults.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import yaml

import neuroemu
from neuroemu.errors import NeuroemuWarning
from neuroemu.units import format_quantity

ROOT = Path(__file__).resolve().parents[1]
CARDS = ["ideal_resistor", "rram_hfo2", "ecram", "pcm"]


def card(name: str) -> dict:
    """The shipped card ``name`` as a mapping (quantities as written, with units)."""
    return yaml.safe_load((ROOT / "devices" / f"{name}.yaml").read_text())


def schemes(data: dict) -> list[str]:
    """The schemes a card can be trained with: a continuous card only takes changes whole."""
    quantised = "n_levels" in data or "pulses" in data
    if not quantised:
        return ["direct"]
    return ["direct", "nearest", "stochastic", "mixed-precision", "nearest-carry"]


def chip_with(name: str, scheme: str) -> dict:
    """The XS chip with card ``name`` in both layers, set up for ``scheme``."""
    chip = yaml.safe_load((ROOT / "chips" / "xs_784x100.yaml").read_text())
    device = card(name)
    if scheme == "nearest":
        device["rounding"] = "deterministic"
    elif scheme == "stochastic":
        device["rounding"] = "stochastic"
    elif scheme in ("mixed-precision", "nearest-carry"):
        chip["training"]["scheme"] = scheme
    for layer in chip["layers"]:
        layer["device"] = copy.deepcopy(device)
    return chip


def train(name: str, scheme: str, args: argparse.Namespace) -> dict:
    chip = neuroemu.Chip.from_dict(chip_with(name, scheme))
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", NeuroemuWarning)
        run = neuroemu.simulate(chip, dataset=args.dataset, epochs=args.epochs, limit=args.limit)
    trained = [entry for entry in run.history if entry["epoch"] > 0]

    def mean(key: str) -> float:
        return float(np.mean([entry.get(key, np.nan) for entry in trained]))

    return {
        "card": name,
        "scheme": scheme,
        "error": run.error,
        "best": min(entry["error"] for entry in trained),
        "pulses": mean("update_pulses_per_device"),
        "energy": mean("update_programming_energy_J"),
        "unmoved": mean("update_unmoved_fraction"),
        "warned": any(issubclass(w.category, NeuroemuWarning) for w in caught),
        "wall": time.perf_counter() - start,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--dataset", default="mnist5k")
    parser.add_argument("--limit", type=int, help="training samples per epoch")
    parser.add_argument("--cards", nargs="+", default=CARDS, metavar="NAME")
    args = parser.parse_args()
    print(
        f"XS chip, {args.epochs} epochs on {args.dataset}"
        + (f", --limit {args.limit}" if args.limit else "")
    )
    print()
    print("| card | scheme | test error | best epoch | pulses per device per epoch "
          "| programming energy per epoch | unmoved | warned | wall |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.cards:
        for scheme in schemes(card(name)):
            row = train(name, scheme, args)
            pulses = "-" if np.isnan(row["pulses"]) else f"{row['pulses']:.3g}"
            energy = "-" if np.isnan(row["energy"]) else format_quantity(row["energy"], "J")
            print(
                f"| {name} | {scheme} | {100 * row['error']:.2f} % | {100 * row['best']:.2f} % "
                f"| {pulses} | {energy} | {row['unmoved']:.4f} "
                f"| {'yes' if row['warned'] else 'no'} | {row['wall']:.0f} s |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
