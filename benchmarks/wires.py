"""Wire resistance (docs/physics.md, "Wires"): what the exact solve costs, and where a
first-order IR-drop estimate fails.

1. Speed, as ratios measured in this process: inference of crossbar_784x500 (a batch of
   test images) with wire segments of ``--ohm`` in both crossbars against the same chip
   with ideal wires; and a training epoch of chips/xs_784x100_wires.yaml against
   chips/xs_784x100.yaml (``--train-samples`` images of the chip's data set, its own
   settings, test part included). Each timing is the fastest of ``--repeats``. Beside
   them, two floors: reading and writing every wire voltage of the batch once per sweep
   at the memory bandwidth measured here (what any solve that keeps each sample's wire
   voltages must do), and the wire solves a multi-port reduction needs per conductance
   state (one per port).
2. Accuracy of a first-order estimate: the drop across every device of the XS chip's input
   crossbar, exact (the engine's operating point with wires) against the closed-form
   linearised estimate peers apply per product (the ideal-wire cell currents, summed along
   each row from its driver and each column toward its node, times the segment resistance,
   taken off the ideal drops), at the same node voltages, over a range of segment
   resistances; with ``--plot FILE`` the figure.

Run: ``python benchmarks/wires.py [--ohm 0.1] [--train-samples 500] [--plot wires.png]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import yaml

import neuroemu

ROOT = Path(__file__).resolve().parents[1]


def with_wires(name: str, ohm: float) -> neuroemu.Chip:
    """Library chip ``name`` with ``ohm`` per wire segment in every crossbar."""
    data = yaml.safe_load((ROOT / "chips" / f"{name}.yaml").read_text())
    for layer in data["layers"]:
        layer["wire_resistance"] = f"{ohm!r} Ohm"
    return neuroemu.Chip.from_dict(data)


def fastest(work, repeats: int) -> float:
    """The fastest wall time (s) of ``repeats`` calls of ``work``."""
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def stream(size: int) -> None:
    """Read and write ``size`` doubles once (in place), as a sweep does its wire voltages."""
    global _STREAM
    if _STREAM is None or _STREAM.size != size:
        _STREAM = np.ones(size)
    np.multiply(_STREAM, 1.0000001, out=_STREAM)


_STREAM: np.ndarray | None = None


def first_order_drops(g: np.ndarray, r: float, sources: np.ndarray, nodes: np.ndarray):
    """The linearised estimate of every device's drop (V), (batch, N, M): the ideal-wire
    cell currents ``I = g (u_i - v_j)``; the current through row segment ``m`` is the sum
    of the row's cell currents from ``m`` on, through column segment ``i`` (toward the node)
    the column's from 0 to ``i``; each wire node is its end's voltage moved by ``r`` times
    the currents of the segments between them."""
    ideal = sources[:, :, None] - nodes[:, None, :]
    current = g[None] * ideal
    row_segments = np.cumsum(current[:, :, ::-1], axis=2)[:, :, ::-1]  # segment m feeds m..M-1
    rows = sources[:, :, None] - r * np.cumsum(row_segments, axis=2)
    col_segments = np.cumsum(current, axis=1)  # segment after cell i carries cells 0..i
    cols = nodes[:, None, :] + r * np.cumsum(col_segments[:, ::-1, :], axis=1)[:, ::-1, :]
    return rows - cols


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ohm", type=float, default=0.1, help="segment resistance (Ohm)")
    parser.add_argument("--batch", type=int, default=128, help="inference batch")
    parser.add_argument("--train-samples", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--plot", help="write the first-order figure to this file")
    args = parser.parse_args()
    report: dict = {}

    # 1. Speed.
    x = np.random.default_rng(0).uniform(size=(args.batch, 784))
    ideal = neuroemu.Chip.from_yaml(ROOT / "chips" / "crossbar_784x500.yaml")
    wired = with_wires("crossbar_784x500", args.ohm)
    ideal.settle(x[:2])
    wired.settle(x[:2])  # compile
    t_ideal = fastest(lambda: ideal.settle(x), args.repeats)
    t_wired = fastest(lambda: wired.settle(x), args.repeats)
    eq, eq0 = wired.settle(x), ideal.settle(x)
    # The floor of any solve that keeps each sample's wire voltages (2 N M per crossbar)
    # and updates them once per sweep: read and write them all, at this machine's memory
    # bandwidth (measured here, on an array of the same size).
    state = sum(2 * rows.size for rows, _ in eq.wires)  # doubles of the whole batch
    t_stream = fastest(lambda: stream(state), args.repeats)
    floor = t_stream * eq.sweeps
    report["inference_784x500"] = {
        "batch": args.batch,
        "ohm": args.ohm,
        "ideal_s": t_ideal,
        "wires_s": t_wired,
        "ratio": t_wired / t_ideal,
        "sweeps": [eq0.sweeps, eq.sweeps],
        "wire_state_GB": state * 8 / 1e9,
        "bandwidth_GB_s": 2 * state * 8 / t_stream / 1e9,
        "floor_s": floor,
        "floor_ratio": floor / t_ideal,
        "largest_output_move_V": float(np.abs(eq.voltages[-1] - eq0.voltages[-1]).max()),
        "relative_residual": float(eq.relative_residual.max()),
    }
    print(json.dumps(report["inference_784x500"]), flush=True)
    # A multi-port reduction (each crossbar's wires eliminated once per conductance state,
    # leaving the nodes coupled by dense matrices) needs one wire solve per port, N + M:
    # the cost of settling that many samples.
    ports = sum(sum(g.shape) for g in wired.conductances)
    report["port_reduction_784x500"] = {
        "ports": ports,
        "estimate_s": t_wired / args.batch * ports,
        "ratio_to_ideal_batch": t_wired / args.batch * ports / t_ideal,
    }
    print(json.dumps(report["port_reduction_784x500"]), flush=True)

    def epoch(name: str) -> float:
        def run() -> None:
            neuroemu.simulate(name, epochs=1, limit=args.train_samples)

        return fastest(run, args.repeats)

    epoch("xs_784x100")
    t_ideal = epoch("xs_784x100")
    t_wired = epoch(str(ROOT / "chips" / "xs_784x100_wires.yaml"))
    report["training_xs"] = {
        "samples": args.train_samples,
        "ideal_s": t_ideal,
        "wires_s": t_wired,
        "ratio": t_wired / t_ideal,
    }
    print(json.dumps(report["training_xs"]), flush=True)

    # 2. The first-order estimate against the exact drops.
    rows = []
    x = np.random.default_rng(1).uniform(size=(16, 784))
    for ohm in (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0):
        chip = with_wires("xs_784x100", ohm)
        eq = chip.settle(x)
        rows_v, cols_v = eq.wires[0]
        exact = rows_v - cols_v
        g = np.asarray(chip.conductances[0])
        estimate = first_order_drops(g, ohm, chip.source_voltages(x), eq.voltages[0])
        ideal_drops = chip.source_voltages(x)[:, :, None] - eq.voltages[0][:, None, :]
        scale = float(np.abs(ideal_drops).max())
        n = g.shape[0]
        rows.append(
            {
                "ohm": ohm,
                "r_N2_g": ohm * n * n * float(g.mean()),
                "wire_effect_V": float(np.abs(exact - ideal_drops).max()),
                "first_order_error_V": float(np.abs(estimate - exact).max()),
                "relative_error": float(np.abs(estimate - exact).max()) / scale,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    report["first_order"] = rows
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        ohms = [r["ohm"] for r in rows]
        ax.loglog(ohms, [r["wire_effect_V"] for r in rows], "o-", label="IR drop (exact)")
        ax.loglog(ohms, [r["first_order_error_V"] for r in rows], "s-",
                  label="error of the first-order estimate")  # fmt: skip
        ax.set_xlabel("wire segment resistance (Ohm)")
        ax.set_ylabel("largest change of a device's drop (V)")
        ax.set_title("XS input crossbar (1568 x 100), 16 random inputs")
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot, dpi=120)
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
