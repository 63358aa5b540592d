"""A sweep of 8 points on 2 worker processes against 1, measured in one run.

Each point trains the XS chip for two epochs on the 4,000 training images of the embedded
MNIST subset (learning rate axis x 2 seeds) and evaluates it on the 1,000 test images.
The local cluster is started before the clock starts, so the figure is the speed-up of
running points, not of starting workers.

Run: ``python benchmarks/bench_sweep.py``.
"""

from __future__ import annotations

import json
import tempfile
import textwrap
import time
from pathlib import Path

from neuroemu.spec.sweep import load_sweep
from neuroemu.sweep.run import connect, run_sweep

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


def timed(workers: int, folder: Path) -> float:
    path = folder / f"sweep{workers}.yaml"
    path.write_text(textwrap.dedent(SPEC))
    sweep = load_sweep(path)
    client, cluster = connect(None, workers)
    try:
        client.run(lambda: __import__("neuroemu.sweep.run"))  # warm the workers' imports
        start = time.perf_counter()
        counts = run_sweep(sweep, folder / f"out{workers}.h5", client)
        elapsed = time.perf_counter() - start
    finally:
        client.close()
        cluster.close()
    assert counts["run"] == 8 and counts["failed"] == 0, counts
    return elapsed


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        one = timed(1, Path(tmp))
        two = timed(2, Path(tmp))
    summary = {"points": 8, "one_worker_s": one, "two_workers_s": two, "speedup": one / two}
    print(f"8-point sweep: 1 worker {one:.1f} s, 2 workers {two:.1f} s: {one / two:.2f}x")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
