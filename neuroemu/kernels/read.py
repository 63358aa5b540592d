"""One noisy read of a device array in one pass (the read-noise model of
:func:`neuroemu.models.nonideal.read`, whose numpy form is its reference)."""

from __future__ import annotations

import numpy as np
from numba import get_num_threads, njit, prange


@njit(cache=True, inline="always")
def _read_block(g, z, relative, absolute, out, start, stop):
    for k in range(start, stop):
        value = g[k] + (relative * g[k] + absolute) * z[k]
        out[k] = value if value > 0.0 else 0.0


@njit(cache=True, parallel=True)
def _noisy_read_parallel(g, z, relative, absolute, out, stuck, stuck_value, blocks):
    size = (g.size + blocks - 1) // blocks
    for b in prange(blocks):
        _read_block(g, z, relative, absolute, out, b * size, min((b + 1) * size, g.size))
    for s in range(stuck.size):
        out[stuck[s]] = stuck_value[s]


@njit(cache=True)
def _noisy_read_serial(g, z, relative, absolute, out, stuck, stuck_value):
    _read_block(g, z, relative, absolute, out, 0, g.size)
    for s in range(stuck.size):
        out[stuck[s]] = stuck_value[s]


#: Arrays with fewer devices are read on one thread (threads would cost more than they save).
PARALLEL_MIN_DEVICES = 65536


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
    args = (
        np.ascontiguousarray(g).reshape(-1),
        np.ascontiguousarray(z).reshape(-1),
        float(relative),
        float(absolute),
        out.reshape(-1),
        np.ascontiguousarray(index, dtype=np.int64),
        np.ascontiguousarray(value, dtype=np.float64),
    )
    if g.size >= PARALLEL_MIN_DEVICES:
        _noisy_read_parallel(*args, get_num_threads())
    else:
        _noisy_read_serial(*args)
    return out
