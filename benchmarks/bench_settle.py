"""Throughput of ``settle`` on crossbar_784x500, against this machine's own matmul rate.

Everything is measured in one process, one after the other, so the ratios hold even on a
shared, noisy machine: the matmul rate (float64 and float32) at the shape of the chip's
input product and on a large square product, then ``settle`` for a batch of 256 with ideal
and with Shockley diodes in both dtypes.

FLOP counts: *performed* counts the multiply-adds of the products ``settle`` actually runs
(the input product through the half-size transfer matrix, the neighbour products of every
sweep and the residual pass). *Circuit* counts one multiply-add per
device of the input crossbar (1568 x 500) plus two per device of the other crossbars per
sweep: the work of the circuit as drawn, which the transfer matrix halves.

Run: ``python benchmarks/bench_settle.py [--batch 256] [--repeats 20]``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from neuroemu import Chip
from neuroemu.spec.loader import chip_from_dict, read_yaml

ROOT = Path(__file__).resolve().parents[1]
CHIP = ROOT / "chips" / "crossbar_784x500.yaml"


def best_time(fn, repeats: int) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def matmul_rate(m: int, k: int, n: int, dtype, repeats: int) -> float:
    rng = np.random.default_rng(0)
    a = rng.uniform(size=(m, k)).astype(dtype)
    b = rng.uniform(size=(k, n)).astype(dtype)
    return 2.0 * m * k * n / best_time(lambda: a @ b, repeats)


def chip_variant(diode: str) -> Chip:
    data, _ = read_yaml(CHIP)
    data["layers"][0]["diode"] = diode
    return Chip(chip_from_dict(data, f"{CHIP.name} ({diode})", CHIP.parent))


def flops(chip: Chip, batch: int, sweeps: int) -> tuple[float, float]:
    """(performed, circuit) floating-point operations of one ``settle`` call."""
    sizes = chip.layer_sizes
    inner = sum(sizes[k] * sizes[k + 1] for k in range(len(sizes) - 1))
    performed = chip.n_inputs * sizes[0] + 2 * (sweeps + 1) * inner
    circuit = chip.n_sources * sizes[0] + 2 * sweeps * inner
    return 2.0 * batch * performed, 2.0 * batch * circuit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    x = np.random.default_rng(1).uniform(size=(args.batch, 784))
    results: dict[str, dict] = {}
    for dtype in (np.float64, np.float32):
        name = np.dtype(dtype).name
        rate_shape = matmul_rate(args.batch, 784, 500, dtype, args.repeats)
        rate_square = matmul_rate(2000, 2000, 2000, dtype, 5)
        for diode in ("ideal_diode", "shockley_1n4148"):
            chip = chip_variant(diode)
            eq = chip.settle(x, dtype=dtype)
            seconds = best_time(
                lambda chip=chip, dtype=dtype: chip.settle(x, dtype=dtype), args.repeats
            )
            performed, circuit = flops(chip, args.batch, eq.sweeps)
            results[f"{diode}/{name}"] = {
                "samples_per_s": args.batch / seconds,
                "ms_per_batch": 1e3 * seconds,
                "sweeps": eq.sweeps,
                "performed_gflops": performed / seconds / 1e9,
                "circuit_gflops": circuit / seconds / 1e9,
                "matmul_gflops_same_shape": rate_shape / 1e9,
                "matmul_gflops_square_2000": rate_square / 1e9,
                "performed_fraction_of_matmul": performed / seconds / rate_shape,
                "circuit_fraction_of_matmul": circuit / seconds / rate_shape,
            }
    header = (
        f"{'case':<26}{'samples/s':>11}{'ms/batch':>10}{'sweeps':>7}{'GFLOP/s':>9}"
        f"{'matmul':>8}{'perf.frac':>10}{'circ.frac':>10}"
    )
    print(f"settle on {CHIP.name}, batch {args.batch}, median of {args.repeats}")
    print(header)
    for case, r in results.items():
        print(
            f"{case:<26}{r['samples_per_s']:>11,.0f}{r['ms_per_batch']:>10.2f}{r['sweeps']:>7}"
            f"{r['performed_gflops']:>9.1f}{r['matmul_gflops_same_shape']:>8.1f}"
            f"{r['performed_fraction_of_matmul']:>10.2f}{r['circuit_fraction_of_matmul']:>10.2f}"
        )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
