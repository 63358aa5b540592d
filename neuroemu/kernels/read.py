"""One noisy read of a device array in one pass (the read-noise model of
:func:`neuroemu.models.nonideal.read`, whose numpy form is its reference)."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _noisy_read(g, z, relative, absolute, out, stuck, stuck_value):
    for k in range(g.size):
        value = g[k] + (relative * g[k] + absolute) * z[k]
        out[k] = value if value > 0.0 else 0.0
    for s in range(stuck.size):
        out[stuck[s]] = stuck_value[s]


_NONE_STUCK = (np.zeros(0, dtype=np.int64), np.zeros(0))


def noisy_read(
    g: np.ndarray,
    z: np.ndarray,
    relative: float,
    absolute: float,
    out: np.ndarray,
    stuck: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """``out = max(g + (relative g + absolute) z, 0)`` elementwise (S), in one pass; ``g``
    and ``out`` C-contiguous float64, ``z`` (normal draws) float32 or float64, one shape.
    ``stuck = (flat indices, conductances)``: devices that read their stuck conductance
    instead (stuck-at faults)."""
    if g.shape != z.shape or g.shape != out.shape:
        raise ValueError(f"shapes do not fit: g {g.shape}, z {z.shape}, out {out.shape}")
    if g.dtype != np.float64 or out.dtype != np.float64 or not out.flags.c_contiguous:
        raise ValueError("g and out must be float64, out C-contiguous")
    index, value = _NONE_STUCK if stuck is None else stuck
    if index.size and (index.min() < 0 or index.max() >= g.size):
        raise ValueError(f"stuck device indices outside the array of {g.size} devices")
    _noisy_read(
        np.ascontiguousarray(g).reshape(-1),
        np.ascontiguousarray(z).reshape(-1),
        float(relative),
        float(absolute),
        out.reshape(-1),
        np.ascontiguousarray(index, dtype=np.int64),
        np.ascontiguousarray(value, dtype=np.float64),
    )
    return out
