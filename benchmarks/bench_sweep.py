"""A sweep of 8 points on 2 worker processes against 1, measured in one run.

Each point trains the XS chip for two epochs on the 4,000 training images of the embedded
MNIST subset (learning rate axis x 2 seeds) and evaluates it on the 1,000 test images.
The local cluster is started, and every worker has run a tiny point (8 samples, which
loads the Numba kernels from their cache, about 1 s a process), before the clock starts,
so the figure is the speed-up of running points, not of starting workers. Each point's
own wall time is printed too: the speed-up cannot exceed the workers' share of the cores,
so on a machine that others are using it falls short of 2x.

Run: ``python benchmarks/bench_sweep.py``.
"""

from __future__ import annotations

import json
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

from neuroemu.io.sweepfile import open_sweep
from neuroemu.spec.sweep import load_sweep
from neuroemu.sweep.run import connect, run_point, run_sweep

ROOT = Path(__file__).resolve().parents[1]

SPEC = f"""\
name: bench
chip: {ROOT / "chips" / "xs_784x100.yaml"}
mode: train
epochs: 2
axes:
  - path: training.learning_rate
    values: [0.05, 0.1, 0.2, 0.4]
seeds: [0, 1]
"""


def timed(workers: int, folder: Path) -> tuple[float, float]:
    """Wall time (s) of the sweep on ``workers`` processes, and the median point's own."""
    path = folder / f"sweep{workers}.yaml"
    path.write_text(textwrap.dedent(SPEC))
    sweep = load_sweep(path)
    out = folder / f"out{workers}.h5"
    client, cluster = connect(None, workers)
    try:
        spec = sweep.point_spec((0, 0)).model_dump(mode="json")
        client.run(run_point, spec, 0, "train", 1, None, 8)  # on every worker: warm
        start = time.perf_counter()
        counts = run_sweep(sweep, out, client)
        elapsed = time.perf_counter() - start
    finally:
        client.close()
        cluster.close()
    assert counts["run"] == 8 and counts["failed"] == 0, counts
    return elapsed, float(np.median(open_sweep(out)["wall_time_s"].values))


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        one, point_one = timed(1, Path(tmp))
        two, point_two = timed(2, Path(tmp))
    summary = {
        "points": 8,
        "one_worker_s": one,
        "two_workers_s": two,
        "speedup": one / two,
        "median_point_s": {"one_worker": point_one, "two_workers": point_two},
    }
    print(
        f"8-point sweep: 1 worker {one:.1f} s, 2 workers {two:.1f} s: {one / two:.2f}x "
        f"(a point: {point_one:.1f} s alone, {point_two:.1f} s beside another)"
    )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
