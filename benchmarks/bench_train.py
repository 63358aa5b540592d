"""One EP training epoch of a chip (crossbar_784x500 unless ``--chip``), against a
straightforward numpy baseline.

The baseline implements the same algorithm as the primer states it, with nothing shared
with neuroemu but the chip's arrays: layered block coordinate descent with
``V_j = clip(sum_n g_jn V_n / sum_n g_jn, lo, hi)`` and the same stopping rule, the centred
EP estimate (toward the targets of the squared error or, with ``loss: hinge``, of the
squared hinge) from each device's squared voltage drops formed explicitly as a
(batch, rows, columns) array, and clipped SGD updates (with the chip's momentum). It is
first checked to give the same conductances as neuroemu after a few mini-batches, then
both are timed in this process.

Reported: neuroemu's wall time for one epoch over the whole training part (60,000 images
of Fashion-MNIST when Debian's dataset-fashion-mnist is installed, else the embedded MNIST
subset), samples/s, the speed ratio against the baseline on the same mini-batches, and the
fraction of this machine's matmul rate (measured here) that the epoch sustains.

Run: ``python benchmarks/bench_train.py [--dataset fashion-mnist] [--baseline-samples 400]
[--chip chips/xs_784x100.yaml] [--batch-size 4] [--limit N]``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import neuroemu
from neuroemu.learning.train import train_epoch

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- baseline
def baseline_settle(W, B, sources, v_b, v_scale, bounds, beta, target, init, tol, max_sweeps):
    """Block coordinate descent in plain numpy, written from the equations."""
    n = len(W)
    v = [a.copy() for a in init]
    g_node = []
    for k in range(n):
        g = W[k].sum(axis=0) + B[k].sum(axis=0)
        if k + 1 < n:
            g = g + W[k + 1].sum(axis=1)
        if k == n - 1:
            g = g + beta
        g_node.append(g)
    order = list(range(0, n, 2)) + list(range(1, n, 2))
    for _ in range(max_sweeps):
        change = np.zeros(len(sources))
        for k in order:
            below = sources if k == 0 else v[k - 1]
            current = below @ W[k] + B[k][0] * v_b - B[k][1] * v_b
            if k + 1 < n:
                current = current + v[k + 1] @ W[k + 1].T
            if k == n - 1:
                current = current + beta * target
            new = np.clip(current / g_node[k], bounds[k][0], bounds[k][1])
            change = np.maximum(change, np.abs(new - v[k]).max(axis=1))
            v[k] = new
        if change.max() <= tol * v_scale:
            break
    return v


def baseline_step(chip, t, W, B, x, y, rate_scale, velocity):
    """One centred EP step on a mini-batch, in plain numpy, with the training settings
    ``t``; ``velocity`` (a list of zeros like ``W + B`` at first) carries the momentum of
    ``t.momentum``."""
    v_b = chip.spec.bias.voltage
    gain, offset = chip.spec.inputs.gain, chip.spec.inputs.offset
    sources = np.concatenate([gain * (x - offset), -gain * (x - offset)], axis=1)
    bounds = [chip.node_bounds(layer) for layer in chip.spec.layers]
    finite = [abs(b) for pair in bounds for side in pair for b in side if np.isfinite(b)]
    v_scale = max([gain, v_b, *finite])  # the largest source voltage
    target = chip.target_voltages(y, t.target_voltage)
    tol, sweeps = chip.spec.solver.tol, chip.spec.solver.max_sweeps
    zeros = [np.zeros((len(x), n)) for n in chip.layer_sizes]
    free = baseline_settle(W, B, sources, v_b, v_scale, bounds, 0.0, target, zeros, tol, sweeps)
    if t.loss == "hinge":  # pull only the outputs on the wrong side; hold the rest
        right = target > 0
        wrong_side = np.where(right, free[-1] < target, free[-1] > 0)
        target = np.where(wrong_side, target, free[-1])
    plus = baseline_settle(W, B, sources, v_b, v_scale, bounds, t.beta, target, free, tol, sweeps)
    minus = baseline_settle(W, B, sources, v_b, v_scale, bounds, -t.beta, target, free, tol, sweeps)
    for k in range(len(W)):
        rows_p = sources if k == 0 else plus[k - 1]
        rows_m = sources if k == 0 else minus[k - 1]
        drop_p = (rows_p[:, :, None] - plus[k][:, None, :]) ** 2
        drop_m = (rows_m[:, :, None] - minus[k][:, None, :]) ** 2
        grad = (drop_p - drop_m).mean(axis=0) / (4 * t.beta)
        bias_rows = np.array([v_b, -v_b])
        bias_p = (bias_rows[None, :, None] - plus[k][:, None, :]) ** 2
        bias_m = (bias_rows[None, :, None] - minus[k][:, None, :]) ** 2
        grad_b = (bias_p - bias_m).mean(axis=0) / (4 * t.beta)
        card = chip.crossbars[k].device
        rate = t.rates(len(W))[k] * rate_scale
        n = len(W)
        velocity[k] = t.momentum * velocity[k] - rate * grad
        velocity[n + k] = t.momentum * velocity[n + k] - rate * grad_b
        W[k] = np.clip(W[k] + velocity[k], card.g_min, card.g_max)
        B[k] = np.clip(B[k] + velocity[n + k], card.g_min, card.g_max)


def baseline_epoch(chip, t, W, B, x, y, epoch):
    rng = np.random.default_rng([chip.seed, 1, epoch])  # the batch order of neuroemu.learning.train
    rate_scale = t.decay ** (epoch - 1) * t.conductance_unit**2
    order = rng.permutation(len(x))
    velocity = [np.zeros_like(a) for a in W + B]
    for lo in range(0, len(x), t.batch_size):
        index = order[lo : lo + t.batch_size]
        baseline_step(chip, t, W, B, x[index], y[index], rate_scale, velocity)


# --------------------------------------------------------------------------- benchmark
def matmul_rate() -> float:
    a = np.random.default_rng(0).uniform(size=(2000, 2000))
    a @ a
    start = time.perf_counter()
    a @ a
    return 2 * 2000**3 / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default=None)
    parser.add_argument("--baseline-samples", type=int, default=400)
    parser.add_argument("--limit", type=int, default=None, help="train samples for the epoch")
    parser.add_argument("--chip", type=Path, default=ROOT / "chips" / "crossbar_784x500.yaml")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the chip's")
    args = parser.parse_args()
    path = args.chip
    default = "fashion-mnist" if Path("/usr/share/datasets/fashion-mnist").is_dir() else None
    data = neuroemu.load_dataset(args.dataset or default)
    x, y = data.x_train.astype(np.float64), data.y_train
    if args.limit:
        x, y = x[: args.limit], y[: args.limit]

    # 1. Same conductances: baseline and neuroemu over the same mini-batches.
    chip = neuroemu.Chip.from_yaml(path)
    training = chip.spec.training
    assert training is not None and training.algorithm == "ep-centred"
    if args.batch_size:
        training = training.model_copy(update={"batch_size": args.batch_size})
    assert training.loss in ("mse", "hinge") and chip.spec.output.readout in (None, "single")
    W = [g.copy() for g in chip.conductances]
    B = [b.copy() for b in chip.bias_conductance]
    xs, ys = x[: args.baseline_samples], y[: args.baseline_samples]
    start = time.perf_counter()
    baseline_epoch(chip, training, W, B, xs, ys, epoch=1)
    baseline_time = time.perf_counter() - start
    train_epoch(chip, xs[:8], ys[:8], training, epoch=1)  # compile before timing
    chip = neuroemu.Chip.from_yaml(path)
    start = time.perf_counter()
    train_epoch(chip, xs, ys, training, epoch=1)
    ours_small = time.perf_counter() - start
    diff = max(float(np.abs(a - b).max()) for a, b in zip(W, chip.conductances, strict=True))
    scale = max(float(np.abs(b).max()) for b in W)
    if not diff <= 1e-9 * scale:  # a speed ratio against another algorithm means nothing
        raise SystemExit(
            f"the numpy baseline and neuroemu disagree: conductances differ by {diff:.3g} S "
            f"({diff / scale:.2g} relative); fix the baseline before timing it"
        )

    # 2. One full epoch with neuroemu.
    chip = neuroemu.Chip.from_yaml(path)
    rate = matmul_rate()
    start = time.perf_counter()
    report = train_epoch(chip, x, y, training, epoch=1)
    epoch_time = time.perf_counter() - start
    sizes = [chip.n_inputs, *chip.layer_sizes]
    steps = -(-len(x) // training.batch_size)
    # Per step: input products of 3 phases through the transfer matrix, 2 sweeps' products of
    # the output crossbar per phase sweep, gradient products of 2 phases, update passes.
    flops = 2 * len(x) * 3 * sizes[0] * sizes[1]
    flops += 2 * len(x) * 2 * 2 * sizes[1] * sizes[2] * report.mean_sweeps * 3
    flops += 2 * len(x) * 2 * (2 * sizes[0] * sizes[1] + sizes[1] * sizes[2])
    summary = {
        "chip": chip.name,
        "batch_size": training.batch_size,
        "dataset": data.name,
        "train_samples": len(x),
        "epoch_s": epoch_time,
        "samples_per_s": len(x) / epoch_time,
        "steps": steps,
        "train_error": report.train_error,
        "mean_sweeps_per_phase": report.mean_sweeps,
        "baseline_samples": len(xs),
        "baseline_s": baseline_time,
        "neuroemu_same_samples_s": ours_small,
        "speed_ratio_vs_numpy_baseline": baseline_time / ours_small,
        "max_conductance_difference_S": diff,
        "relative_conductance_difference": diff / scale,
        "matmul_gflops": rate / 1e9,
        "epoch_gflops": flops / epoch_time / 1e9,
        "fraction_of_matmul_rate": flops / epoch_time / rate,
    }
    print(
        f"one EP epoch of {chip.name} at batch {training.batch_size} on {len(x):,} "
        f"{data.name} images: {epoch_time:.1f} s"
    )
    print(
        f"  {summary['samples_per_s']:,.0f} samples/s, {summary['epoch_gflops']:.1f} GFLOP/s = "
        f"{100 * summary['fraction_of_matmul_rate']:.1f} % of the matmul rate "
        f"({summary['matmul_gflops']:.0f} GFLOP/s)"
    )
    print(
        f"  numpy baseline on {len(xs)} samples: {baseline_time:.2f} s vs {ours_small:.2f} s "
        f"-> {summary['speed_ratio_vs_numpy_baseline']:.1f}x; conductances agree to "
        f"{summary['relative_conductance_difference']:.1e} relative"
    )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
