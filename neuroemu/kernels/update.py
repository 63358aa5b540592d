"""The EP update of a whole crossbar in one pass over its devices.

For device ``(i, j)`` with terminal voltages ``r_i`` (row) and ``c_j`` (column) in the two
phases ``+`` and ``-`` of a mini-batch of ``B`` samples,

    sum_b [(r+_i - c+_j)^2 - (r-_i - c-_j)^2] = R_i + C_j - 2 X_ij

with ``R_i = sum_b (r+_i^2 - r-_i^2)``, ``C_j = sum_b (c+_j^2 - c-_j^2)`` and
``X = r+^T c+ - r-^T c-`` (one matrix product, done by BLAS before the call). The kernel
forms each device's change ``factor * (R_i + C_j - 2 X_ij)`` from its own terms, programs
it as the device allows (whole pulses of ``step`` when ``step > 0``: rounded to nearest,
ties to even as ``numpy.rint``, or up with probability equal to the fraction when a uniform
draw ``noise[i, j]`` is given; or, for a pulse-programmed device, pulses with soft bounds,
up/down asymmetry and cycle-to-cycle noise from the normal draw ``gauss[i, j]``, as
:func:`neuroemu.models.update.pulse_change`), each device's step scaled by its own
``spread[i, j]`` when given (device-to-device spread), and clips to ``[g_min, g_max]``, in
place.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True)
def _ep_update(
    g,
    row_term,
    col_term,
    cross,
    factor,
    g_min,
    g_max,
    step,
    noise,
    up,
    down,
    soft,
    cycle,
    gauss,
    spread,
):
    stochastic = noise.shape[0] > 0
    spreads = spread.shape[0] > 0
    span = g_max - g_min
    for i in range(g.shape[0]):
        for j in range(g.shape[1]):
            delta = factor * (row_term[i] + col_term[j] - 2.0 * cross[i, j])
            if up > 0.0:  # pulses of a state-dependent size
                rise = delta > 0.0
                nominal = (up if rise else down) * span
                count = abs(delta) / nominal
                if stochastic:
                    low = math.floor(count)
                    count = low + (1.0 if noise[i, j] < count - low else 0.0)
                else:
                    count = np.rint(count)
                size = nominal
                if soft:
                    size = up * (g_max - g[i, j]) if rise else down * (g[i, j] - g_min)
                if spreads:
                    size *= spread[i, j]
                change = count * size
                if cycle > 0.0:
                    change += size * cycle * math.sqrt(count) * gauss[i, j]
                delta = change if rise else -change
            elif step > 0.0:
                count = delta / step
                if stochastic:
                    low = math.floor(count)
                    count = low + (1.0 if noise[i, j] < count - low else 0.0)
                else:
                    count = np.rint(count)
                delta = count * step * (spread[i, j] if spreads else 1.0)
            value = g[i, j] + delta
            g[i, j] = min(max(value, g_min), g_max)


def ep_update(
    g: np.ndarray,
    row_term: np.ndarray,
    col_term: np.ndarray,
    cross: np.ndarray,
    factor: float,
    g_min: float,
    g_max: float,
    step: float | None,
    noise: np.ndarray | None = None,
    pulses: tuple[float, float, bool, float] | None = None,
    gauss: np.ndarray | None = None,
    spread: np.ndarray | None = None,
) -> None:
    """Apply the EP update to crossbar ``g`` (rows, cols) in place (see module docs)."""
    rows, cols = g.shape
    if row_term.shape != (rows,) or col_term.shape != (cols,) or cross.shape != g.shape:
        raise ValueError(
            f"shapes do not fit crossbar {g.shape}: rows {row_term.shape}, "
            f"columns {col_term.shape}, cross {cross.shape}"
        )
    if g.dtype != np.float64 or not g.flags.c_contiguous:
        raise ValueError("conductances must be a C-contiguous float64 array")
    empty = np.zeros((0, 0))
    up, down, soft, cycle = pulses if pulses is not None else (0.0, 0.0, False, 0.0)
    _ep_update(
        g,
        np.ascontiguousarray(row_term, dtype=np.float64),
        np.ascontiguousarray(col_term, dtype=np.float64),
        np.ascontiguousarray(cross, dtype=np.float64),
        float(factor),
        float(g_min),
        float(g_max),
        0.0 if step is None else float(step),
        empty if noise is None else noise,
        float(up),
        float(down),
        bool(soft),
        float(cycle),
        empty if gauss is None else gauss,
        empty if spread is None else spread,
    )
