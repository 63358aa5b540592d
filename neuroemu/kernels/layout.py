"""Row and column sums of a crossbar, and the input transfer matrix, in one pass over its
devices (what :meth:`neuroemu.chip.resistive.Chip.circuit` needs of every state of the
conductances: once per mini-batch in training, once per read with read noise). The numpy
forms they replace, ``w.sum(axis=1)``, ``w.sum(axis=0)`` and ``a (w[:n] - w[n:])``, are
their reference (``tests/test_kernels.py``)."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _sums(w, rows, cols):
    cols[:] = 0.0
    for i in range(w.shape[0]):
        total = 0.0
        for j in range(w.shape[1]):
            value = w[i, j]
            total += value
            cols[j] += value
        rows[i] = total


@njit(cache=True)
def _differential(w, gain, transfer, rows, cols):
    half = w.shape[0] // 2
    cols[:] = 0.0
    for i in range(half):
        plus = 0.0
        minus = 0.0
        for j in range(w.shape[1]):
            p = w[i, j]
            q = w[i + half, j]
            transfer[i, j] = gain * (p - q)
            cols[j] += p + q
            plus += p
            minus += q
        rows[i] = plus
        rows[i + half] = minus


def _checked(w: np.ndarray) -> np.ndarray:
    if w.ndim != 2 or w.dtype != np.float64:
        raise ValueError(f"a crossbar must be a 2-D float64 array (got {w.dtype}, {w.shape})")
    return np.ascontiguousarray(w)


def crossbar_sums(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(w.sum(axis=1), w.sum(axis=0))`` of crossbar ``w`` (rows, cols), in one pass."""
    w = _checked(w)
    rows, cols = np.empty(w.shape[0]), np.empty(w.shape[1])
    _sums(w, rows, cols)
    return rows, cols


def differential_layout(w: np.ndarray, gain: float) -> tuple[np.ndarray, ...]:
    """For an input crossbar ``w`` whose first half of rows is driven at ``+gain x`` and
    second half at ``-gain x``: ``(gain (w[:n] - w[n:]), row sums, column sums)`` in one
    pass."""
    w = _checked(w)
    if w.shape[0] % 2:
        raise ValueError(f"a differential crossbar needs an even number of rows ({w.shape})")
    transfer = np.empty((w.shape[0] // 2, w.shape[1]))
    rows, cols = np.empty(w.shape[0]), np.empty(w.shape[1])
    _differential(w, float(gain), transfer, rows, cols)
    return transfer, rows, cols
