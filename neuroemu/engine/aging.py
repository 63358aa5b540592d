"""Inference at times after programming: programming noise, drift and read noise.

The chip's conductances (as trained) are programmed once onto the devices (programming
noise), each device draws its drift exponent, and at each time ``t`` the conductances
``G(t) = G(t0) (t / t0)^(-nu)`` are what the test set runs through, every batch a read of
them (read noise on every read, :func:`neuroemu.models.nonideal.reading`). Every draw comes
from ``numpy.random.default_rng([seed, 2])``: the chip's seed fixes the outcome.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from ..models.nonideal import drift_exponents, drifted, program, reading
from .inference import InferenceReport, evaluate

if TYPE_CHECKING:
    from ..chip.base import Chip


def infer_at(
    chip: Chip,
    times: list[float],
    x: np.ndarray,
    y: np.ndarray,
    *,
    progress: Callable[[int], None] | None = None,
    **options: Any,
) -> list[InferenceReport]:
    """Evaluate ``chip`` at each time (s) after programming; ``chip`` is left unchanged."""
    rng = np.random.default_rng([chip.seed, 2])
    arrays = [array for array, _ in chip.device_arrays()]
    devices = [card for _, card in chip.device_arrays()]
    bounds = chip.device_bounds()  # each device's own range (device-to-device spread)
    programmed = [
        program(g, card, rng, b) for g, card, b in zip(arrays, devices, bounds, strict=True)
    ]
    nu = [drift_exponents(g.shape, card, rng) for g, card in zip(arrays, devices, strict=True)]
    aged = copy.deepcopy(chip)
    reports = []
    n = len(chip.crossbars)
    for t in times:
        for index, (g0, card) in enumerate(zip(programmed, devices, strict=True)):
            target = (
                aged.crossbars[index].conductance if index < n else aged.bias_conductance[index - n]
            )
            target[...] = drifted(g0, nu[index], t, card)
        aged.apply_faults()  # stuck devices do not drift
        aged.touch()
        with reading(aged, rng):  # every batch a read, with read noise
            reports.append(evaluate(aged, x, y, progress=progress, **options))
    return reports
