"""Inference passes: a chip over a labelled data set in batches, as programmed or at times
after programming (programming noise, drift and read noise)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import failpoints
from ..errors import InputError
from ..metrics import ordered
from ..streams import stream

if TYPE_CHECKING:
    from ..chip.base import BaseChip


@dataclass
class InferenceReport:
    """What one pass over a data set measured. Units in the field names' docs."""

    samples: int
    accuracy: float  # fraction correct
    error: float  # fraction wrong
    mean_sweeps: float  # sweeps per sample to meet the tolerance
    max_sweeps: int
    max_residual: float  # A, largest KCL residual current at any node of any sample
    max_relative_residual: float  # largest |r_j| / (G_j V_scale)
    mean_power: float  # W per sample
    energy_per_inference: float  # J, mean power times the RC settling estimate
    settle_time: float  # s, RC estimate 5 C_node / min G
    wall_time: float  # s, the whole pass (after a one-sample warm-up that loads the kernels)
    samples_per_second: float
    converged: bool
    tol: float
    prediction: np.ndarray
    residual_unit: str = "A"  # a leaky chip's residual is the largest |dv/dt|, in V/s

    def figures(self) -> dict[str, Any]:
        """The scalar figures, JSON-ready, with units in the key names."""
        residual_key = "max_residual_A" if self.residual_unit == "A" else "max_residual_V_per_s"
        return ordered(
            {
                "samples": self.samples,
                "accuracy": self.accuracy,
                "error": self.error,
                "mean_sweeps": self.mean_sweeps,
                "max_sweeps": self.max_sweeps,
                residual_key: self.max_residual,
                "max_relative_residual": self.max_relative_residual,
                "mean_power_W": self.mean_power,
                "energy_per_inference_J": self.energy_per_inference,
                "settle_time_s": self.settle_time,
                "wall_time_s": self.wall_time,
                "samples_per_s": self.samples_per_second,
                "converged": self.converged,
                "tol": self.tol,
            }
        )


def evaluate(
    chip: BaseChip,
    x: np.ndarray,
    y: np.ndarray,
    *,
    batch_size: int = 256,
    dtype: Any = np.float64,
    progress: Callable[[int], None] | None = None,
    **settle_options: Any,
) -> InferenceReport:
    """Settle the chip on every sample of ``x`` and compare its prediction with ``y``.

    ``progress(n)`` is called after each batch with the number of samples it held. Each
    batch is one read of the arrays: with read noise drawn from the chip's stream
    ``inference`` (:mod:`neuroemu.streams`), or from the stream of a
    :meth:`~neuroemu.chip.base.BaseChip.reading` block around the call.
    """
    with chip.reading(stream(chip.seed, "inference")):
        return _evaluate(chip, x, y, batch_size, dtype, progress, settle_options)


def _evaluate(
    chip: BaseChip,
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    dtype: Any,
    progress: Callable[[int], None] | None,
    settle_options: dict[str, Any],
) -> InferenceReport:
    x = chip.check_inputs(x)
    y = chip.check_labels(y)
    if len(y) != len(x):
        raise InputError(f"labels: {len(y)} labels for {len(x)} samples")
    if batch_size < 1:
        raise InputError(f"batch_size: must be >= 1 (got {batch_size})")
    n = len(x)
    prediction = np.empty(n, dtype=np.int64)
    sweeps = np.empty(n, dtype=np.int64)
    power = np.empty(n)
    max_residual = max_relative = 0.0
    converged = True
    settle_time = tol = float("nan")
    residual_unit = "A"
    if n:  # load the compiled kernels and build the circuit before the clock starts
        chip.settle(x[:1], dtype=dtype, **settle_options)
    start = time.perf_counter()
    for lo in range(0, n, batch_size):
        hi = min(lo + batch_size, n)
        chip.next_read()  # every batch is a read of the arrays
        eq = chip.settle(x[lo:hi], dtype=dtype, **settle_options)
        prediction[lo:hi] = eq.prediction
        sweeps[lo:hi] = eq.sweeps_per_sample
        power[lo:hi] = eq.power
        max_residual = max(max_residual, float(eq.residual.max()))
        max_relative = max(max_relative, float(eq.relative_residual.max()))
        converged &= eq.converged
        settle_time, tol, residual_unit = eq.settle_time, eq.tol, eq.residual_unit
        if progress is not None:
            progress(hi - lo)
        failpoints.reach("evaluate.batch")
    wall = time.perf_counter() - start
    accuracy = float(np.mean(prediction == y)) if n else float("nan")
    mean_power = float(power.mean()) if n else float("nan")
    return InferenceReport(
        samples=n,
        accuracy=accuracy,
        error=1.0 - accuracy,
        mean_sweeps=float(sweeps.mean()) if n else float("nan"),
        max_sweeps=int(sweeps.max()) if n else 0,
        max_residual=max_residual,
        max_relative_residual=max_relative,
        mean_power=mean_power,
        energy_per_inference=mean_power * settle_time,
        settle_time=settle_time,
        wall_time=wall,
        samples_per_second=n / wall if wall > 0 else float("inf"),
        converged=converged,
        tol=tol,
        prediction=prediction,
        residual_unit=residual_unit,
    )


def infer_at(
    chip: BaseChip,
    times: list[float],
    x: np.ndarray,
    y: np.ndarray,
    *,
    progress: Callable[[int], None] | None = None,
    **options: Any,
) -> list[InferenceReport]:
    """Evaluate ``chip`` at each time (s) after programming; ``chip`` is left unchanged.

    The chip's conductances (as trained) are programmed once onto the devices (programming
    noise), each device draws its drift exponent
    (:meth:`~neuroemu.chip.base.BaseChip.programmed`), and at each time ``t`` the
    conductances ``G(t) = G(t0) (t / t0)^(-nu)`` are what the test set runs through, every
    batch a read of them (read noise). Every draw comes from the chip's stream ``aging``.
    """
    rng = stream(chip.seed, "aging")
    aged = chip.programmed(rng)
    reports = []
    for t in times:
        aged.drift_to(t)
        with aged.reading(rng):  # every batch a read, with read noise
            reports.append(evaluate(aged, x, y, progress=progress, **options))
    return reports
