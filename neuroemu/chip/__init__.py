"""Chips: the device arrays a spec describes, programmed from one seed."""

from .base import Chip, Crossbar

__all__ = ["Chip", "Crossbar"]
