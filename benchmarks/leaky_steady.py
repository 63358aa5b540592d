"""How far the free phase of ``chips/leaky_784x500.yaml`` gets toward its fixed point, and
whether a longer one trains better (docs/leaky.md, "How long the free phase runs").

``settle``: for the chip as programmed and as trained (its spec's 5 epochs on mnist5k, seed
0; or the chip of ``--run RUN.h5``), the 1,000 test samples are run for a number of free
steps and compared with their fixed point (4,000 steps): the share of samples whose last
step moved some ``v`` by 1e-3 of ``v_r`` or more (what the report's ``steady`` line tests),
the largest and the 90th-percentile distance of the output voltages from the fixed point,
the test error and how many predictions equal the fixed point's. Then the same with the
step ``dt`` changed instead of the number of steps. About a minute on 2 cores.

``train``: the chip trained (its 5 epochs on mnist5k) with each ``--free-steps`` and each
``--seeds``, by :func:`neuroemu.simulate`: the test error after each epoch. About a minute
per run at 80 steps and three at 400, on 2 busy cores.

Run: ``python benchmarks/leaky_steady.py settle [--run RUN.h5]`` and
``python benchmarks/leaky_steady.py train [--free-steps 80 160 400] [--seeds 0 1 2]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

import neuroemu
from neuroemu.chip import build_chip
from neuroemu.engine.leaky import STEADY

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "chips" / "leaky_784x500.yaml"
FIXED_POINT_STEPS = 4000


def settle(run_file: str | None) -> None:
    data = neuroemu.load_dataset("mnist5k")
    x, y = data.x_test, data.y_test
    programmed = neuroemu.Chip.from_yaml(SPEC)
    if run_file is None:
        trained = neuroemu.simulate(SPEC).chip
    else:
        trained = neuroemu.open_run(run_file).chip
    print(f"{len(x)} test samples; steady: the last step moved every v by < {STEADY:g} v_r")
    for name, chip in (("as programmed", programmed), ("trained", trained)):
        fixed = chip.settle(x, steps=FIXED_POINT_STEPS)
        print(
            f"\n{name}: fixed point after {FIXED_POINT_STEPS} steps, test error "
            f"{100 * np.mean(fixed.prediction != y):.1f} %, its last step moved v by up to "
            f"{fixed.relative_residual.max():.1e} v_r"
        )
        print(
            f"{'steps':>6} {'not steady':>10} {'|dV_out| max':>12} {'90 %':>8} "
            f"{'error':>7} {'same class':>10}"
        )
        for steps in (40, 80, 160, 240, 400):
            eq = chip.settle(x, steps=steps)
            show(steps, eq, fixed, y)
    d = trained.spec.dynamics
    print(f"\ntrained, dt changed instead (its own: {d.free_steps} steps of {d.dt * 1e6:g} us)")
    print(
        f"{'dt':>8} {'steps':>6} {'time':>6} {'last step':>9} {'not steady':>10} "
        f"{'|dV_out| max':>12} {'error':>7}"
    )
    fixed = trained.settle(x, steps=FIXED_POINT_STEPS)
    for dt, steps in ((0.2e-6, 80), (0.4e-6, 80), (0.2e-6, 160), (0.8e-6, 80), (0.2e-6, 320)):
        dynamics = d.model_copy(update={"dt": dt, "free_steps": steps})
        chip = build_chip(trained.spec.model_copy(update={"dynamics": dynamics}))
        chip.load_state(trained.state())
        eq = chip.settle(x)
        distance = np.abs(eq.output - fixed.output).max(axis=1)
        print(
            f"{dt * 1e6:>5.1f} us {steps:>6} {dt * steps * 1e6:>3.0f} us "
            f"{eq.relative_residual.max():>9.1e} "
            f"{100 * np.mean(eq.relative_residual >= STEADY):>8.1f} % "
            f"{distance.max():>10.3f} V {100 * np.mean(eq.prediction != y):>5.1f} %"
        )


def show(steps: int, eq: neuroemu.Equilibrium, fixed: neuroemu.Equilibrium, y: np.ndarray) -> None:
    distance = np.abs(eq.output - fixed.output).max(axis=1)
    print(
        f"{steps:>6} {100 * np.mean(eq.relative_residual >= STEADY):>8.1f} % "
        f"{distance.max():>10.3f} V {np.quantile(distance, 0.9):>6.3f} V "
        f"{100 * np.mean(eq.prediction != y):>5.1f} % "
        f"{100 * np.mean(eq.prediction == fixed.prediction):>8.1f} %"
    )


def train(free_steps: list[int], seeds: list[int]) -> None:
    text = SPEC.read_text()
    assert "free_steps: 80" in text
    with tempfile.TemporaryDirectory() as folder:
        for steps in free_steps:
            path = Path(folder) / f"leaky_{steps}.yaml"
            path.write_text(text.replace("free_steps: 80", f"free_steps: {steps}"))
            for seed in seeds:
                start = time.perf_counter()
                run = neuroemu.simulate(path, seed=seed)
                errors = " ".join(f"{100 * row['error']:5.1f}" for row in run.history)
                steady = "steady" if run.figures["converged"] else "not steady"
                print(
                    f"free_steps {steps:>4}, seed {seed}: test error per epoch {errors} % "
                    f"({steady}; {time.perf_counter() - start:.0f} s)",
                    flush=True,
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="part", required=True)
    p = sub.add_parser("settle")
    p.add_argument("--run", help="a run file of the trained chip (default: train it)")
    p = sub.add_parser("train")
    p.add_argument("--free-steps", type=int, nargs="+", default=[80, 160, 400])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    if args.part == "settle":
        settle(args.run)
    else:
        train(args.free_steps, args.seeds)


if __name__ == "__main__":
    main()
