"""Engine: solve a chip's circuit from plain arrays. A resistive circuit settles to its DC
operating point by exact layered block coordinate descent (Scellier 2024), with the
per-node solves in :mod:`neuroemu.kernels`; a network of leaky neurons runs through time."""

from .states import Equilibrium, Trace

__all__ = ["Equilibrium", "Trace"]
