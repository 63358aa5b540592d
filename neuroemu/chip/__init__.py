"""Chips: the device arrays a spec describes, programmed from one seed, and the one owner of
their state. Each family registers the spec it is built from: resistive networks
(:class:`Chip`) and chips of leaky neurons (:class:`LeakyChip`)."""

from .base import FAMILIES, BaseChip, Crossbar, build_chip
from .leaky import LeakyChip
from .resistive import Chip
from .state import ChipState, DeviceUpdate, ReadOnlyArray, UpdateCounts

__all__ = [
    "FAMILIES",
    "BaseChip",
    "Chip",
    "ChipState",
    "Crossbar",
    "DeviceUpdate",
    "LeakyChip",
    "ReadOnlyArray",
    "UpdateCounts",
    "build_chip",
]
