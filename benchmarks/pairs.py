"""Training by pairs (docs/learning.md, "Pairs"): the XS chip (chips/xs_784x100.yaml, its
own training settings, seed 0) with a differential readout (20 output nodes), so that every
device has a pair circuit, trained directly on ideal devices and as pairs on ideal devices
and on the pulsed PCM card, refreshed at several levels.

Prints a Markdown table: devices, scheme, refresh level, nudge, test error after the last
epoch, pulses per device, refreshes per pair and the programming energy (SET pulses and
RESETs at the card's ``pulse_energy`` and ``reset_energy``) in the last epoch, and the wall
time.

Run: ``python benchmarks/pairs.py [--epochs 5] [--dataset mnist5k]``; about 2 minutes on
2 cores with the defaults.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import yaml

import neuroemu
from neuroemu.units import format_quantity

ROOT = Path(__file__).resolve().parents[1]

#: (device card, scheme, refresh_at, nudge): the rows of the table.
CASES = [
    ("ideal_resistor", "direct", None, None),
    ("ideal_resistor", "pairs", 0.9, None),
    ("pcm_pulsed", "pairs", 0.9, None),
    ("pcm_pulsed", "pairs-carry", 0.9, None),
    ("pcm_pulsed", "pairs", 1.0, None),
    ("pcm_pulsed", "pairs", 0.5, "current"),
    ("pcm_pulsed", "pairs", 0.35, "current"),
    ("pcm_pulsed", "pairs", 0.2, "current"),
]


def chip_with(device: str, scheme: str, refresh_at: float | None, nudge: str | None) -> dict:
    """The XS chip with a differential readout, ``device`` in both layers, and ``scheme``."""
    chip = yaml.safe_load((ROOT / "chips" / "xs_784x100.yaml").read_text())
    chip["name"] = f"xs_784x100_pairs_{device}"
    output = chip["layers"][-1]
    output["size"] = 2 * output["size"]
    output["readout"] = "differential"
    for layer in chip["layers"]:
        layer["device"] = device
    training = chip["training"]
    training["scheme"] = scheme
    training.pop("trace_samples", None)
    if refresh_at is not None:
        training["refresh_at"] = refresh_at
    if nudge is not None:
        training["nudge"] = nudge
    return chip


def last_epoch(last: dict) -> str:
    """Table cells of an epoch: test error, pulses per device, refreshes per pair and
    programming energy (``-`` for what the scheme does not count)."""
    pulses = last.get("update_pulses_per_device")
    refreshes = last.get("update_refreshes_per_pair")
    energy = last.get("update_programming_energy_J")
    return (
        f"{100 * last['error']:.2f} % | {'-' if pulses is None else f'{pulses:.3g}'} | "
        f"{'-' if refreshes is None else f'{refreshes:.3g}'} | "
        f"{'-' if energy is None else format_quantity(energy, 'J')}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--dataset", default="mnist5k")
    args = parser.parse_args()
    print("| devices | scheme | refresh_at | nudge | test error | pulses per device | "
          "refreshes per pair | programming energy | wall |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for device, scheme, refresh_at, nudge in CASES:
        start = time.perf_counter()
        chip = neuroemu.Chip.from_dict(chip_with(device, scheme, refresh_at, nudge))
        run = neuroemu.simulate(chip, dataset=args.dataset, epochs=args.epochs)
        print(
            f"| {device} | {scheme} | {refresh_at if refresh_at is not None else '-'} | "
            f"{nudge or 'conductance'} | {last_epoch(run.history[-1])} | "
            f"{time.perf_counter() - start:.0f} s |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
