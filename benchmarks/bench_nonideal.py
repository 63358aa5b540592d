"""The cost of the non-ideality stack for one training epoch of the XS chip.

Both runs train the XS chip for one epoch on the embedded MNIST subset in this process:
ideal devices, then the input crossbar programmed by pulses (soft bounds, up/down asymmetry
0.4 % / 0.6 % of the range, 10 % cycle-to-cycle noise, 10 % device-to-device step spread,
stochastic rounding) with 5 % of its devices stuck (2 % at g_min, 3 % at g_max), the output
crossbar quantised to 256 levels with stochastic rounding, an 8-bit input DAC and an 8-bit
output ADC. Reported: both wall times and their ratio.
(Programming noise, drift and read noise act after training, in ``--infer-at``.)

Run: ``python benchmarks/bench_nonideal.py [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import yaml

import neuroemu
from neuroemu.learning.train import train_epoch

ROOT = Path(__file__).resolve().parents[1]


def chip(nonideal: bool) -> neuroemu.Chip:
    data = yaml.safe_load((ROOT / "chips" / "xs_784x100.yaml").read_text())
    data["training"].pop("trace_samples", None)
    if nonideal:
        pulses = {"up": 0.004, "down": 0.006, "soft_bounds": True, "cycle_noise": 0.1}
        card = {"g_min": "0 uS", "g_max": "100 uS", "pulses": pulses, "rounding": "stochastic"}
        card["step_spread"] = 0.1
        data["layers"][0]["device"] = {**card, "stuck_at_min": 0.02, "stuck_at_max": 0.03}
        data["layers"][1]["device"] = {
            "g_min": "0 uS",
            "g_max": "100 uS",
            "n_levels": 256,
            "rounding": "stochastic",
        }
        data["inputs"]["dac_bits"] = 8
        data["layers"][1].update(adc_bits=8, adc_range="1 V")
    return neuroemu.Chip.from_dict(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    data = neuroemu.load_dataset()
    times: dict[bool, list[float]] = {False: [], True: []}
    errors: dict[bool, float] = {}
    for _ in range(args.repeats):
        for nonideal in (False, True):  # interleaved against drifts in machine load
            c = chip(nonideal)
            training = c.spec.training
            assert training is not None
            start = time.perf_counter()
            report = train_epoch(c, data.x_train, data.y_train, training, 1)
            times[nonideal].append(time.perf_counter() - start)
            errors[nonideal] = report.train_error
    ideal, stack = float(np.median(times[False])), float(np.median(times[True]))
    summary = {
        "ideal_epoch_s": ideal,
        "nonideal_epoch_s": stack,
        "ratio": stack / ideal,
        "ideal_train_error": errors[False],
        "nonideal_train_error": errors[True],
    }
    print(f"XS epoch, ideal {ideal:.2f} s, non-ideal stack {stack:.2f} s: {stack / ideal:.2f}x")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
