"""Spec layer: YAML device cards, chip specs and sweep specs as validated models, in SI."""

from .cards import DiodeCard, Drift, NeuronCard, ProgrammingNoise, Pulses, ReadNoise, ResistorCard
from .leaky import Dynamics, LeakyChipSpec, LeakyInputs, LeakyLayer
from .loader import LoadedChip, chip_from_dict, load_card, load_chip
from .resistive import Bias, ChipSpec, Initialisation, Inputs, Layer, Solver, WireResistance
from .training import Augment, Training

__all__ = [
    "Augment",
    "Bias",
    "ChipSpec",
    "DiodeCard",
    "Drift",
    "Dynamics",
    "Initialisation",
    "Inputs",
    "Layer",
    "LeakyChipSpec",
    "LeakyInputs",
    "LeakyLayer",
    "LoadedChip",
    "NeuronCard",
    "ProgrammingNoise",
    "Pulses",
    "ReadNoise",
    "ResistorCard",
    "Solver",
    "Training",
    "WireResistance",
    "chip_from_dict",
    "load_card",
    "load_chip",
]
