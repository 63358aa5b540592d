"""Tiki-Taka (docs/learning.md, "Tiki-Taka"): the XS chip (chips/xs_784x100.yaml, seed 0)
on a soft-bound pulsed device, whose steps shrink toward either bound so that random up
and down pulses pull every device to the middle of its range (its symmetry point), with
and without a device-to-device imbalance of its up and down steps, trained directly and
by Tiki-Taka; ideal devices for reference.

The soft-bound card (inline, not shipped): 0-25 uS, pulses of 0.5 % of the range up and
down with soft bounds, stochastic rounding, 1 pJ a pulse. Tiki-Taka's fast array takes
EP's changes at 125 times the direct rates (it swings over its range, where its soft
bounds pull it back to its symmetry point), without momentum, and transfers 3 % of each
fast device's distance from its symmetry point after every update.

Prints a Markdown table: devices, imbalance, scheme, rates, momentum, test error after
each epoch, pulses per device and programming energy in the last epoch, and the wall time.

Run: ``python benchmarks/tiki_taka.py [--epochs 5] [--dataset mnist5k]``; about a minute
on 2 cores with the defaults.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
import warnings
from pathlib import Path

import yaml

import neuroemu
from neuroemu.errors import NeuroemuWarning
from neuroemu.units import format_quantity

ROOT = Path(__file__).resolve().parents[1]

SOFT = {
    "g_min": "0 uS",
    "g_max": "25 uS",
    "rounding": "stochastic",
    "pulses": {"up": 0.005, "down": 0.005, "soft_bounds": True},
    "pulse_energy": "1 pJ",
}
DIRECT_RATES = [0.08, 0.32]  # chips/xs_784x100.yaml's
FAST_RATES = [10.0, 40.0]

#: (card, up_down_spread, scheme, rates, momentum): the rows of the table.
CASES = [
    ("ideal_resistor", 0.0, "direct", DIRECT_RATES, 0.9),
    ("soft", 0.0, "direct", DIRECT_RATES, 0.9),
    ("soft", 0.0, "direct", DIRECT_RATES, 0.0),
    ("soft", 0.0, "tiki-taka", FAST_RATES, 0.0),
    ("soft", 0.5, "direct", DIRECT_RATES, 0.9),
    ("soft", 0.5, "direct", DIRECT_RATES, 0.0),
    ("soft", 0.5, "tiki-taka", FAST_RATES, 0.0),
]


def chip_with(card: str, imbalance: float, scheme: str, rates: list, momentum: float) -> dict:
    chip = yaml.safe_load((ROOT / "chips" / "xs_784x100.yaml").read_text())
    chip["name"] = f"xs_784x100_{card}"
    device = card if card != "soft" else {**copy.deepcopy(SOFT), "up_down_spread": imbalance}
    for layer in chip["layers"]:
        layer["device"] = copy.deepcopy(device)
    training = chip["training"]
    training.pop("trace_samples", None)
    training.update(scheme=scheme, learning_rate=rates, momentum=momentum)
    if scheme == "tiki-taka":
        training["transfer_rate"] = 0.03
    return chip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--dataset", default="mnist5k")
    args = parser.parse_args()
    print("| devices | up_down_spread | scheme | rates | momentum | test error by epoch | "
          "pulses per device | programming energy | wall |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for card, imbalance, scheme, rates, momentum in CASES:
        start = time.perf_counter()
        chip = neuroemu.Chip.from_dict(chip_with(card, imbalance, scheme, rates, momentum))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NeuroemuWarning)
            run = neuroemu.simulate(chip, dataset=args.dataset, epochs=args.epochs)
        errors = ", ".join(f"{100 * entry['error']:.1f}" for entry in run.history[1:])
        last = run.history[-1]
        pulses = last.get("update_pulses_per_device")
        energy = last.get("update_programming_energy_J")
        print(
            f"| {card} | {imbalance if card == 'soft' else '-'} | {scheme} | {rates} | "
            f"{momentum} | {errors} % | {'-' if pulses is None else f'{pulses:.3g}'} | "
            f"{'-' if energy is None else format_quantity(energy, 'J')} | "
            f"{time.perf_counter() - start:.0f} s |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
