"""neuroemu: an emulator of analog neuromorphic chips.

Crossbars of programmable resistive devices, described in YAML, settle to their exact DC
operating point (cross-checked against ngspice). The public API:

- :func:`simulate`: evaluate and train a chip over a data set, write a run file, and get
  the :class:`Run` back (``neuroemu simulate`` is this function);
- :class:`Chip` (``Chip.from_yaml(path, seed=None)``, ``chip.settle(x)``,
  ``chip.to_spice(x_row)``, ``chip.state()``, ``chip.set_conductances(...)``);
- :func:`load_dataset`, the embedded MNIST subset and IDX folders;
- :func:`open_run`, a run file as a :class:`Run` of xarray objects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .chip import Chip as Chip
    from .chip import LeakyChip as LeakyChip
    from .engine.states import Equilibrium as Equilibrium
    from .errors import NeuroemuError as NeuroemuError
    from .io.datasets import load_dataset as load_dataset
    from .io.runs import Run as Run
    from .io.runs import open_run as open_run
    from .run.simulate import simulate as simulate
    from .version import __version__ as __version__

__all__ = [
    "Chip",
    "Equilibrium",
    "LeakyChip",
    "NeuroemuError",
    "Run",
    "__version__",
    "load_dataset",
    "open_run",
    "simulate",
]

#: Where each public name lives; imported when first used, so that `import neuroemu` (and
#: `neuroemu --help`) stays instant.
_PUBLIC = {
    "__version__": "version",
    "Chip": "chip",
    "LeakyChip": "chip",
    "Equilibrium": "engine.states",
    "NeuroemuError": "errors",
    "Run": "io.runs",
    "load_dataset": "io.datasets",
    "open_run": "io.runs",
    "simulate": "run.simulate",
}


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'neuroemu' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f".{_PUBLIC[name]}", __name__), name)
