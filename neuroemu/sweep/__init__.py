"""Non-ideality sweeps: many chips, one per point of a grid of spec values and seeds, run on
Dask (a local cluster of processes, or an existing cluster)."""

from .run import connect, run_point, run_sweep

__all__ = ["connect", "run_point", "run_sweep"]
