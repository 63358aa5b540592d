"""Why the stuck-devices sweep (``examples/sweeps/stuck_devices.yaml``) shows the test error
falling as more input devices stick at ``g_min`` (docs/sweeps.md, "Stuck devices").

Runs four sweeps of the XS chip with ``neuroemu sweep`` (the command a user runs), 5 seeds
per point, and prints the test error (mean and standard deviation over the seeds) and the
training error of each point:

- ``epochs``: the fraction stuck at ``g_min`` (0, 5, 20, 50 %) against 2 (the example's),
  5 (the chip's own) and 20 training epochs;
- ``rates``: no stuck devices, the input crossbar's learning rate 1, 1.25 and 2 times the
  chip's (0.08, 0.1, 0.16; what 20 % and 50 % stuck devices make of it, see the docs);
- ``compensated``: 20 % and 50 % stuck, each at input rates 0.064 (0.08 / 1.25) and 0.04
  (0.08 / 2);
- ``at_max``: the fraction stuck at ``g_max`` instead (0, 1, 5, 20 %).

Run: ``python benchmarks/stuck_devices.py [--workers 2] [--out FOLDER] [--only NAME ...]``;
about 15 minutes on 2 busy cores, most of it the 20-epoch points. A sweep file already in
``--out`` is resumed, not run again.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from neuroemu.io.sweepfile import open_sweep

SWEEPS = {
    "epochs": """\
        mode: train
        axes:
          - path: layers[0].device.stuck_at_min
            values: [0.0, 0.05, 0.2, 0.5]
          - path: training.epochs
            values: [2, 5, 20]
    """,
    "rates": """\
        mode: train
        epochs: 2
        axes:
          - path: training.learning_rate
            values: [[0.08, 0.32], [0.1, 0.32], [0.16, 0.32]]
    """,
    "compensated": """\
        mode: train
        epochs: 2
        axes:
          - path: layers[0].device.stuck_at_min
            values: [0.2, 0.5]
          - path: training.learning_rate
            values: [[0.064, 0.32], [0.04, 0.32]]
    """,
    "at_max": """\
        mode: train
        epochs: 2
        axes:
          - path: layers[0].device.stuck_at_max
            values: [0.0, 0.01, 0.05, 0.2]
    """,
}


def run(name: str, folder: Path, workers: int) -> Path:
    spec = folder / f"stuck_{name}.yaml"
    body = f"name: stuck_{name}\nchip: xs_784x100\n" + textwrap.dedent(SWEEPS[name])
    spec.write_text(body + "seeds: [0, 1, 2, 3, 4]\n")
    out = folder / f"stuck_{name}.h5"
    command = [sys.executable, "-m", "neuroemu.cli", "sweep", str(spec)]
    subprocess.run([*command, "--workers", str(workers), "--out", str(out)], check=True)
    return out


def table(path: Path) -> None:
    ds = open_sweep(path)
    axes = [d for d in ds["error"].dims if d != "seed"]
    print(f"\n{path.stem}: test error over seeds {ds['seed'].values.tolist()}")
    for index in np.ndindex(*[ds.sizes[d] for d in axes]):
        where = {d: i for d, i in zip(axes, index, strict=True)}
        error = 100 * ds["error"].isel(where).values
        train = 100 * ds["train_error"].isel(where).values
        at = ", ".join(f"{d.rpartition('.')[2]} {ds[d].values[i]}" for d, i in where.items())
        print(
            f"  {at:<44} {error.mean():6.2f} % +/- {error.std(ddof=1):.2f} "
            f"({' '.join(f'{e:.1f}' for e in error)}); train {train.mean():.2f} %"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="stuck_devices_runs", help="folder of the sweep files")
    parser.add_argument("--only", nargs="+", choices=list(SWEEPS), default=list(SWEEPS))
    args = parser.parse_args()
    folder = Path(args.out)
    folder.mkdir(exist_ok=True)
    for name in args.only:
        table(run(name, folder, args.workers))


if __name__ == "__main__":
    main()
