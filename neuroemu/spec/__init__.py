"""Spec layer: YAML device cards and chip specs as validated models, quantities in SI."""

from .loader import LoadedChip, chip_from_dict, load_card, load_chip
from .models import ChipSpec, DiodeCard, Layer, ResistorCard
from .units import format_quantity, parse_quantity

__all__ = [
    "ChipSpec",
    "DiodeCard",
    "Layer",
    "LoadedChip",
    "ResistorCard",
    "chip_from_dict",
    "format_quantity",
    "load_card",
    "load_chip",
    "parse_quantity",
]
