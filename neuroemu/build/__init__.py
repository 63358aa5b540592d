"""Build: a validated chip spec becomes arrays of programmed devices."""

from .chip import Chip, Crossbar

__all__ = ["Chip", "Crossbar"]
