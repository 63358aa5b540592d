"""neuroemu: an emulator of analog neuromorphic chips.

Crossbars of programmable resistive devices, described in YAML, settle to their exact DC
operating point (cross-checked against ngspice). The public API:

- :class:`Chip` (``Chip.from_yaml(path, seed=None)``, ``chip.settle(x)``,
  ``chip.to_spice(x_row)``);
- :func:`load_dataset`, the embedded MNIST subset and IDX folders;
- :func:`open_run`, a run file as xarray objects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .version import __version__ as __version__

__all__ = ["Chip", "Equilibrium", "NeuroemuError", "__version__", "load_dataset", "open_run"]


def __getattr__(name: str) -> Any:
    # Lazy, so that `import neuroemu` (and `neuroemu --help`) stays instant.
    if name == "__version__":
        from .version import __version__

        return __version__
    if name == "Chip":
        from .chip.base import Chip

        return Chip
    if name == "Equilibrium":
        from .engine.settle import Equilibrium

        return Equilibrium
    if name == "load_dataset":
        from .io.datasets import load_dataset

        return load_dataset
    if name == "open_run":
        from .io.runs import open_run

        return open_run
    if name == "NeuroemuError":
        from .errors import NeuroemuError

        return NeuroemuError
    raise AttributeError(f"module 'neuroemu' has no attribute {name!r}")
