"""The cost of the non-ideality stack for one training epoch of the XS chip.

Three runs train the XS chip (784-100-10, ideal diodes, centred EP, mini-batches of 8) for
one epoch on the 4,000 training images of the embedded MNIST subset, in this process,
interleaved so that drifts in machine load touch all three alike:

- ``ideal``: ideal devices (0-100 uS, continuous), no periphery;
- ``stack``: the input crossbar programmed by pulses (soft bounds, up/down asymmetry
  0.4 % / 0.6 % of the range, 10 % cycle-to-cycle noise, stochastic rounding), with 10 %
  device-to-device spread of the step and 10 % of the range (each device clipped to, and
  saturating at, its own bounds), 5 % of its devices stuck (2 % at g_min, 3 % at g_max);
  the output crossbar quantised to 256 levels with stochastic rounding and 10 % range
  spread; an 8-bit input DAC and an 8-bit output ADC;
- ``stack + reads``: the same, with 1 % relative read noise on every device: every
  mini-batch step reads the arrays anew (its free, +beta and -beta phases share that read),
  as training does for any card with ``read_noise``
  (:func:`neuroemu.models.nonideal.reading`).

What the stack does not include: programming noise and drift, which act when a trained
chip is programmed for inference at a time after programming (``--infer-at``), not in
training.

Reported: the median wall time of each over ``--repeats`` runs and the ratios to ideal.

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
KINDS = ("ideal", "stack", "stack + reads")


def chip(kind: str) -> neuroemu.Chip:
    data = yaml.safe_load((ROOT / "chips" / "xs_784x100.yaml").read_text())
    data["training"].pop("trace_samples", None)
    if kind != "ideal":
        pulses = {"up": 0.004, "down": 0.006, "soft_bounds": True, "cycle_noise": 0.1}
        card = {"g_min": "0 uS", "g_max": "100 uS", "pulses": pulses, "rounding": "stochastic"}
        card.update(step_spread=0.1, range_spread=0.1)
        data["layers"][0]["device"] = {**card, "stuck_at_min": 0.02, "stuck_at_max": 0.03}
        data["layers"][1]["device"] = {
            "g_min": "0 uS",
            "g_max": "100 uS",
            "n_levels": 256,
            "rounding": "stochastic",
            "range_spread": 0.1,
        }
        data["inputs"]["dac_bits"] = 8
        data["layers"][1].update(adc_bits=8, adc_range="1 V")
    if kind == "stack + reads":
        for layer in data["layers"]:
            layer["device"]["read_noise"] = {"relative": 0.01}
    return neuroemu.Chip.from_dict(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    data = neuroemu.load_dataset()
    for kind in KINDS:  # load every kernel before the clock starts
        c = chip(kind)
        assert c.spec.training is not None
        train_epoch(c, data.x_train[:16], data.y_train[:16], c.spec.training, 1)
    times: dict[str, list[float]] = {kind: [] for kind in KINDS}
    errors: dict[str, float] = {}
    for _ in range(args.repeats):
        for kind in KINDS:  # interleaved against drifts in machine load
            c = chip(kind)
            training = c.spec.training
            assert training is not None
            start = time.perf_counter()
            report = train_epoch(c, data.x_train, data.y_train, training, 1)
            times[kind].append(time.perf_counter() - start)
            errors[kind] = report.train_error
    median = {kind: float(np.median(times[kind])) for kind in KINDS}
    ideal = median["ideal"]
    summary = {
        "ideal_epoch_s": ideal,
        "stack_epoch_s": median["stack"],
        "stack_reads_epoch_s": median["stack + reads"],
        "ratio_stack": median["stack"] / ideal,
        "ratio_stack_reads": median["stack + reads"] / ideal,
        "train_error": errors,
        "epoch_s_all": times,
    }
    print(
        f"XS epoch: ideal {ideal:.2f} s, non-ideal stack {median['stack']:.2f} s "
        f"({median['stack'] / ideal:.2f}x), stack with read noise on every read "
        f"{median['stack + reads']:.2f} s ({median['stack + reads'] / ideal:.2f}x)"
    )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
