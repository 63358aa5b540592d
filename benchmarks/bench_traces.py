"""What recording per-sweep traces costs a training run, measured in one process.

Trains the XS chip for one epoch on the embedded MNIST subset writing a run file, twice:
without traces, and with the free and nudged phases of ``--samples`` test samples recorded
sweep by sweep (and their update) after the epoch, as ``trace_samples`` in a chip spec does.
Reports both wall times and the overhead as a fraction of the untraced time.

Run: ``python benchmarks/bench_traces.py [--samples 3] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

import neuroemu
from neuroemu.run.evaluate import evaluate
from neuroemu.io.hdf5 import RunWriter, now
from neuroemu.learning.train import trace_phases, train_epoch

ROOT = Path(__file__).resolve().parents[1]


def one_epoch(samples: list[int], folder: Path, tag: str) -> tuple[float, float]:
    """Wall time of one epoch with its run file, and the part spent on traces (s)."""
    chip = neuroemu.Chip.from_yaml(ROOT / "chips" / "xs_784x100.yaml")
    training = chip.spec.training
    assert training is not None
    data = neuroemu.load_dataset("mnist5k")
    writer = RunWriter.create(
        folder / f"{tag}.h5",
        chip,
        dataset=data.name,
        dataset_source=data.source,
        started=now(),
        force=True,
    )
    start = time.perf_counter()
    train_epoch(chip, data.x_train, data.y_train, training, 1)
    report = evaluate(chip, data.x_test, data.y_test)
    writer.append(1, report.figures(), chip, report.prediction, data.y_test)
    tracing = time.perf_counter()
    if samples:
        x, y = data.x_test[samples], data.y_test[samples]
        writer.append_traces(1, samples, trace_phases(chip, x, y, training, 1), chip)
    end = time.perf_counter()
    writer.close()
    return end - start, end - tracing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    samples = list(range(args.samples))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        one_epoch(samples, folder, "warm")  # compile and load the data set once
        plain, traced, tracing = [], [], []
        for _ in range(args.repeats):  # interleaved, so drifts in machine load hit both
            plain.append(one_epoch([], folder, "plain")[0])
            total, part = one_epoch(samples, folder, "traced")
            traced.append(total)
            tracing.append(part)
    plain_s, traced_s = float(np.median(plain)), float(np.median(traced))
    tracing_s = float(np.median(tracing))
    summary = {
        "plain_epoch_s": plain_s,
        "traced_epoch_s": traced_s,
        "tracing_s": tracing_s,
        "traced_samples": args.samples,
        "overhead_fraction": tracing_s / plain_s,
        "ab_difference_fraction": (traced_s - plain_s) / plain_s,
    }
    print(
        f"XS epoch on mnist5k with run file: {plain_s:.2f} s; recording {args.samples} traced "
        f"samples takes {1e3 * tracing_s:.0f} ms = {100 * summary['overhead_fraction']:.2f} % "
        f"of it (whole epochs A/B: {100 * summary['ab_difference_fraction']:+.1f} %, "
        "machine noise included)"
    )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
