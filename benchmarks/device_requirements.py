"""What a device must offer for on-chip EP to learn: the device-requirements sweeps.

Each sweep in ``benchmarks/device_requirements/`` moves one property of the devices of the
XS chip (both layers), with and without the schemes for real devices, 3 seeds a point, 5
epochs on the first 10,000 Fashion-MNIST images:

- ``ideal``: ideal devices, the reference;
- ``levels``: programmable levels (0-100 uS), rounded to the nearest or stochastically;
- ``asymmetry`` (the card's, which the programming circuit plans for),
  ``up_down_spread`` (each device's own, which it does not), ``cycle_noise``,
  ``read_noise``, ``step_spread``: one property of a symmetric pulsed device of 1000
  steps (``chips/xs_784x100_pulsed.yaml`` there);
- ``soft_bounds``: the pulse size of a symmetric device with soft bounds, whose devices
  drift to mid-range under random pulses (``chips/xs_784x100_soft.yaml``), and
  ``soft_bounds_tiki_taka``: the same devices trained by Tiki-Taka
  (``chips/xs_784x100_soft_tiki_taka.yaml``);
- ``asymmetry_pairs``, ``cycle_noise_pairs``, ``step_spread_pairs``,
  ``read_noise_pairs``, ``levels_pairs``: five of the properties above with the devices
  trained as refreshed pairs, which only pulse up (``chips/xs_784x100_pulsed_pairs.yaml``
  and, for levels, ``chips/xs_784x100_levels_pairs.yaml``: a differential readout of 20
  output nodes), rounded by the card (``pairs``) or with each pair's accumulator
  (``pairs-carry``).

This script runs every sweep with ``neuroemu sweep`` (2 workers; a sweep already in
``--out`` is resumed, its finished points kept) and prints, per sweep and scheme, the test
error of each value (seed mean and standard deviation) and its distance from the ideal
devices, then the requirements table: for each property and scheme, the worst value tried
whose seed-mean error stays within ``--within`` points (default 1) of the ideal devices.

Run: ``python benchmarks/device_requirements.py [--out FOLDER] [--only NAME ...]
[--report]``; about 50 minutes on 2 cores for all 450 points (``--report`` prints the
tables of the sweeps already in ``--out`` without running anything).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np

from neuroemu.io.sweepfile import open_sweep

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "benchmarks" / "device_requirements"
SWEEPS = [
    "ideal",
    "levels",
    "asymmetry",
    "up_down_spread",
    "cycle_noise",
    "read_noise",
    "step_spread",
    "soft_bounds",
    "soft_bounds_tiki_taka",
    "asymmetry_pairs",
    "cycle_noise_pairs",
    "step_spread_pairs",
    "levels_pairs",
    "read_noise_pairs",
]
#: Per sweep: what its first axis measures, and whether a larger value is the better device.
PROPERTY = {
    "levels": ("levels (n_levels)", True),
    "asymmetry": ("down/up pulse - 1 (the card's, planned for)", False),
    "up_down_spread": ("device-to-device up/down imbalance", False),
    "cycle_noise": ("cycle-to-cycle noise (of a pulse)", False),
    "read_noise": ("read noise (of G)", False),
    "step_spread": ("device-to-device step spread", False),
    "soft_bounds": ("first step of a soft-bound device (of the range)", False),
    "soft_bounds_tiki_taka": ("first step of a soft-bound device (of the range)", False),
    "asymmetry_pairs": ("down/up pulse - 1 (the card's, planned for)", False),
    "cycle_noise_pairs": ("cycle-to-cycle noise (of a pulse)", False),
    "step_spread_pairs": ("device-to-device step spread", False),
    "levels_pairs": ("levels (n_levels)", True),
    "read_noise_pairs": ("read noise (of G)", False),
}


def run(name: str, out: Path) -> None:
    command = [sys.executable, "-m", "neuroemu.cli", "sweep", str(SPECS / f"{name}.yaml")]
    command += ["--workers", "2", "--out", str(out / f"{name}.h5")]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        said = (done.stderr.strip().splitlines() or ["(nothing)"])[-1]
        raise SystemExit(f"sweep {name}: exit {done.returncode}: {said}")


def value_text(name: str, value: object) -> str:
    """An axis value as the table shows it."""
    name = name.removesuffix("_pairs")
    if name == "asymmetry":
        return f"{float(value) / 0.001 - 1:.0%}"
    if name == "read_noise":  # a card mapping, {relative: r}
        text = str(value)
        return f"{float(text.split(':')[1].strip(' }')):.0%}"
    if name in ("cycle_noise", "step_spread", "up_down_spread"):
        return f"{float(value):.0%}"
    if name.startswith("soft_bounds"):
        return f"{float(value):.2%}"
    return str(value)


def scheme_text(labels: dict[str, str], name: str = "") -> str:
    """The scheme of a point of sweep ``name`` from its non-property axes (a sweep of a
    chip trained by Tiki-Taka has no scheme axis)."""
    default = "direct"
    if name.endswith("tiki_taka"):
        default = "tiki-taka"
    elif name.endswith("_pairs"):
        default = "pairs"
    scheme = labels.get("training.scheme", default)
    rounding = labels.get("layers[0].device.rounding", "stochastic")
    card = "nearest" if rounding == "deterministic" else "stochastic"
    if scheme == "direct":
        return card
    name = {"mixed-precision": "mixed precision"}.get(scheme, scheme)
    return f"{name} ({card} card)" if "layers[0].device.rounding" in labels else name


def report(out: Path, names: list[str], within: float) -> None:
    ideal = open_sweep(out / "ideal.h5")["error"].values.ravel()
    reference = float(np.nanmean(ideal))
    print(f"Ideal devices: {100 * reference:.2f} +- {100 * np.nanstd(ideal):.2f} % "
          f"({np.isfinite(ideal).sum()} seeds)\n")  # fmt: skip
    rows = []
    for name in names:
        if name == "ideal" or not (out / f"{name}.h5").exists():
            continue
        ds = open_sweep(out / f"{name}.h5")
        error = ds["error"]
        first, others = error.dims[0], [d for d in error.dims[1:] if d != "seed"]
        what, larger_better = PROPERTY[name]
        print(f"### {name}: {what}\n")
        print("| scheme | " + " | ".join(value_text(name, v) for v in ds[first].values) + " |")
        print("|---|" + "---|" * ds.sizes[first])
        variants = error.stack(variant=others) if others else error.expand_dims(variant=[0])
        for k in range(variants.sizes["variant"]):
            one = variants.isel(variant=k)
            labels = {d: str(one[d].values) for d in others}
            means = one.mean("seed").values
            spreads = one.std("seed").values
            done = np.isfinite(one.values).sum(axis=-1)
            seeds = one.sizes["seed"]
            cells = [
                "-"
                if n == 0
                else f"{100 * m:.2f} +- {100 * s:.2f}"
                + ("" if n == seeds else f" ({n} of {seeds} seeds)")
                for m, s, n in zip(means, spreads, done, strict=True)
            ]
            print(f"| {scheme_text(labels, name)} | " + " | ".join(cells) + " |")
            values = list(ds[first].values)
            least = threshold(values, means, reference + within / 100, larger_better)
            shown = "none tried" if least is None else value_text(name, least)
            worst = min(values, key=_number) if larger_better else max(values, key=_number)
            if least is not None and least == worst:
                shown += " (the worst tried)"
            rows.append((what, scheme_text(labels, name), shown))
        print()
    print(f"### Within {within:g} point of ideal devices (seed mean)\n")
    print("| property | scheme | the least device tried that stays within |")
    print("|---|---|---|")
    for what, scheme, least in rows:
        print(f"| {what} | {scheme} | {least} |")


def _number(value: object) -> float:
    text = str(value)
    return float(text.split(":")[1].strip(" }")) if ":" in text else float(text)


def threshold(values: list, means: np.ndarray, limit: float, larger_better: bool) -> object:
    """The worst value from which every better value tried has a seed-mean error of at most
    ``limit`` (``None`` if even the best fails): walking from the best value to the worst,
    the last before the first that fails."""
    order = sorted(range(len(values)), key=lambda i: _number(values[i]), reverse=larger_better)
    least = None
    for i in order:
        if not means[i] <= limit:
            break
        least = values[i]
    return least


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("device_requirements"))
    parser.add_argument("--only", nargs="+", choices=SWEEPS, metavar="NAME")
    parser.add_argument("--within", type=float, default=1.0, help="points of test error")
    parser.add_argument("--report", action="store_true", help="only print the tables")
    args = parser.parse_args()
    names = args.only or SWEEPS
    if "ideal" not in names:
        names = ["ideal", *names]
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.report:
        for name in names:
            print(f"sweep {name} ...", file=sys.stderr, flush=True)
            run(name, args.out.resolve())
    report(args.out, names, args.within)
    return 0


if __name__ == "__main__":
    sys.exit(main())
