"""What recording per-sweep traces costs a training run, measured in one process.

Trains the XS chip for one epoch on the embedded MNIST subset writing a run file
(``neuroemu.simulate``), twice: without traces, and with the free and nudged phases of
``--samples`` test samples recorded sweep by sweep (and their update) after each evaluated
epoch, as ``trace_samples`` in a chip spec does. Reports both wall times and the cost of
the traces (the time from an epoch's test pass to its record in the file, traced less
untraced) as a fraction of the untraced time.

Run: ``python benchmarks/bench_traces.py [--samples 3] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

import neuroemu
from neuroemu.run import Event

ROOT = Path(__file__).resolve().parents[1]


def one_epoch(samples: list[int], folder: Path, tag: str) -> tuple[float, float]:
    """Wall time of one epoch with its run file (``neuroemu.simulate``), and the time from
    the epoch's test pass to its record in the file: settling the traced samples and the
    writes (s)."""
    data = yaml.safe_load((ROOT / "chips" / "xs_784x100.yaml").read_text())
    data["training"]["trace_samples"] = samples
    chip = neuroemu.Chip.from_dict(data)
    moments: list[tuple[str, float]] = []

    def clock(event: Event) -> None:
        moments.append((event.kind, time.perf_counter()))

    start = time.perf_counter()
    neuroemu.simulate(chip, epochs=1, out=folder / f"{tag}.h5", force=True, progress=clock)
    end = time.perf_counter()
    ends = [t for kind, t in moments if kind == "end"]
    recorded = [t for kind, t in moments if kind == "epoch"]
    return end - start, recorded[-1] - ends[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    samples = list(range(args.samples))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        one_epoch(samples, folder, "warm")  # compile and load the data set once
        plain, traced, writing, tracing = [], [], [], []
        for _ in range(args.repeats):  # interleaved, so drifts in machine load hit both
            total, part = one_epoch([], folder, "plain")
            plain.append(total)
            writing.append(part)
            total, part = one_epoch(samples, folder, "traced")
            traced.append(total)
            tracing.append(part)
    plain_s, traced_s = float(np.median(plain)), float(np.median(traced))
    tracing_s = float(np.median(tracing)) - float(np.median(writing))
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
