"""Numba kernels: the only place in neuroemu with ``@njit``.

Each kernel works on one batch row at a time; a ``parallel`` driver spreads the rows over
threads with ``prange`` and a serial twin runs them in order. Rows are independent, so the
two give bitwise identical results; the serial one exists for exact reproducibility and for
profiling. Public wrappers in :mod:`.nodes` check shapes and dtypes and allocate nothing:
outputs are passed in so the engine can reuse its buffers.
"""

from .nodes import (
    KIND_IDEAL,
    KIND_LINEAR,
    KIND_SHOCKLEY,
    NodeParams,
    kcl_residual,
    solve_nodes,
)

__all__ = [
    "KIND_IDEAL",
    "KIND_LINEAR",
    "KIND_SHOCKLEY",
    "NodeParams",
    "kcl_residual",
    "solve_nodes",
]
