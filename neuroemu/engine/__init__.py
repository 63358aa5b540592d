"""Engine: settle a chip to its DC operating point by exact layered block coordinate
descent (Scellier 2024), with the per-node solves in :mod:`neuroemu.kernels`."""

from .settle import Equilibrium, Trace, settle

__all__ = ["Equilibrium", "Trace", "settle"]
