"""Throughput of ``settle`` on crossbar_784x500, against this machine's own matmul rate.

Everything is measured in one process, one case after the other, so the ratios hold even
on a shared machine. For each dtype (float64, float32) and each of two thread settings,
*all* (BLAS and Numba as configured: every core) and *one* (BLAS and Numba held to one
thread), it times the matmul at the shape of the chip's input product,
``(batch, 784) @ (784, 500)``, then ``settle`` for a batch of 256 with ideal and with
Shockley diodes; each fraction compares ``settle`` with the matmul under the same thread
setting (under *all*, ``settle`` runs the batch's two chunks of 128 samples on two threads,
each with one BLAS thread). On a machine shared with other work, two BLAS threads on two
cores can be many times slower than one, and a second thread finds no free core: the load
average is printed with the figures, and the *one* rows are the steadier.

FLOP counts, each ``2 * batch *`` the multiply-adds of one ``settle`` call:

- *performed*: the matrix products ``settle`` runs, as it runs them: the input product
  through the transfer matrix (784 x 500: the +/- halves of the input crossbar folded into
  one), two products per inner crossbar per sweep (one for each of its layers), and the
  products of the final residual pass (only the layers solved first in a sweep need fresh
  neighbour currents: here one 500 x 10 product). The per-node work (clips, Newton steps,
  residuals, power) is not counted: a few operations per node against the hundreds of
  multiply-adds per node of the products.
- *circuit*: one multiply-add per device of the input crossbar (1568 x 500) and two per
  device of the other crossbars per sweep: the work of the circuit as drawn, which the
  transfer matrix halves. Larger than what is done, so not the figure to judge by.

The goal (issue 3): *performed* at least half of the matmul rate, ideal diodes, float64.

Run: ``python benchmarks/bench_settle.py [--batch 256] [--repeats 20]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
from pathlib import Path

import numba
import numpy as np
from threadpoolctl import threadpool_limits

from neuroemu import Chip
from neuroemu.spec.loader import chip_from_dict, read_yaml

ROOT = Path(__file__).resolve().parents[1]
CHIP = ROOT / "chips" / "crossbar_784x500.yaml"


def median_time(fn, repeats: int) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def matmul_rate(m: int, k: int, n: int, dtype, repeats: int) -> float:
    """FLOP/s of ``(m, k) @ (k, n)``."""
    rng = np.random.default_rng(0)
    a = rng.uniform(size=(m, k)).astype(dtype)
    b = rng.uniform(size=(k, n)).astype(dtype)
    return 2.0 * m * k * n / median_time(lambda: a @ b, repeats)


@contextlib.contextmanager
def threads(setting: str):
    """``all``: BLAS and Numba as configured; ``one``: both held to one thread."""
    if setting == "all":
        yield
        return
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        with threadpool_limits(1, user_api="blas"):
            yield
    finally:
        numba.set_num_threads(before)


def chip_variant(diode: str) -> Chip:
    data, _ = read_yaml(CHIP)
    data["layers"][0]["diode"] = diode
    return Chip(chip_from_dict(data, f"{CHIP.name} ({diode})", CHIP.parent))


def flops(chip: Chip, batch: int, sweeps: int) -> tuple[float, float]:
    """(performed, circuit) floating-point operations of one ``settle`` call."""
    sizes = chip.layer_sizes
    inner = sum(sizes[k] * sizes[k + 1] for k in range(len(sizes) - 1))
    # The residual pass recomputes the neighbour currents of the layers solved first.
    residual = 0
    if len(sizes) > 1:
        for k in range(0, len(sizes), 2):
            residual += sizes[k - 1] * sizes[k] if k > 0 else 0
            residual += sizes[k] * sizes[k + 1] if k + 1 < len(sizes) else 0
    performed = chip.n_inputs * sizes[0] + 2 * sweeps * inner + residual
    circuit = chip.n_sources * sizes[0] + 2 * sweeps * inner
    return 2.0 * batch * performed, 2.0 * batch * circuit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    x = np.random.default_rng(1).uniform(size=(args.batch, 784))
    chips = {diode: chip_variant(diode) for diode in ("ideal_diode", "shockley_1n4148")}
    load_before = os.getloadavg()
    results: dict[str, dict] = {}
    for dtype in (np.float64, np.float32):
        for setting in ("all", "one"):
            with threads(setting):
                rate = matmul_rate(args.batch, 784, 500, dtype, args.repeats)
                for diode, chip in chips.items():
                    eq = chip.settle(x, dtype=dtype)
                    seconds = median_time(
                        lambda chip=chip, dtype=dtype: chip.settle(x, dtype=dtype), args.repeats
                    )
                    performed, circuit = flops(chip, args.batch, eq.sweeps)
                    results[f"{diode}/{np.dtype(dtype).name}/{setting}"] = {
                        "samples_per_s": args.batch / seconds,
                        "ms_per_batch": 1e3 * seconds,
                        "sweeps": eq.sweeps,
                        "performed_gflops": performed / seconds / 1e9,
                        "circuit_gflops": circuit / seconds / 1e9,
                        "matmul_gflops": rate / 1e9,
                        "performed_fraction_of_matmul": performed / seconds / rate,
                        "circuit_fraction_of_matmul": circuit / seconds / rate,
                    }
    load_after = os.getloadavg()
    print(
        f"settle on {CHIP.name}, batch {args.batch}, median of {args.repeats}; "
        f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after "
        f"({os.cpu_count()} cores); threads: all = as configured, one = one BLAS and Numba "
        "thread"
    )
    print(
        f"{'case':<30}{'samples/s':>11}{'ms/batch':>10}{'sweeps':>7}{'GFLOP/s':>9}"
        f"{'matmul':>8}{'perf.frac':>10}{'circ.frac':>10}"
    )
    for case, r in results.items():
        print(
            f"{case:<30}{r['samples_per_s']:>11,.0f}{r['ms_per_batch']:>10.2f}{r['sweeps']:>7}"
            f"{r['performed_gflops']:>9.1f}{r['matmul_gflops']:>8.1f}"
            f"{r['performed_fraction_of_matmul']:>10.2f}{r['circuit_fraction_of_matmul']:>10.2f}"
        )
    print(json.dumps({"load_average": [load_before[0], load_after[0]], **results}))


if __name__ == "__main__":
    main()
