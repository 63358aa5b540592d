"""The learning rules of each family of chips, looked up by the chip's family and the
spec's ``training.algorithm``.

A rule is a class built from the ``training:`` section (it reads the settings it needs and
no other module unpacks them) that knows how to take one training step on a mini-batch and
how to trace its phases. Rules register themselves (:func:`register_rule`); the training
loop (:func:`neuroemu.learning.train.train_epoch`) and the orchestrator only look them up
(:func:`rule_for`), so a new rule or family plugs in without a branch anywhere else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ..errors import InputError

if TYPE_CHECKING:
    from ..chip.base import BaseChip
    from ..engine.states import Equilibrium, Trace
    from ..spec.training import Training


@dataclass
class EpochDraws:
    """What a training step draws from and learns with in epoch ``epoch`` (from 1): the
    streams of the chip's seed (:mod:`neuroemu.streams`) and the learning rate of every
    device array (``u^2`` and the decay of this epoch included)."""

    epoch: int
    rng: np.random.Generator  # mini-batch order, signs of beta
    pulses: np.random.Generator  # the devices' programming draws
    dropout: np.random.Generator  # hidden nodes switched to ground
    rates: list[float]
    dtype: Any


@dataclass
class Step:
    """What one training step measured in its free phase: the free equilibrium, the sum of
    the training loss over the mini-batch, and the sweeps (time steps) and phases settled."""

    free: Equilibrium
    loss: float
    sweeps: int
    phases: int


@dataclass
class Traced:
    """The phases of traced samples sweep by sweep, and the change (S) of every crossbar
    their estimate would make (through no device model, not applied)."""

    phases: dict[str, Trace]
    update: dict[str, np.ndarray]


class Rule(Protocol):
    """A learning rule of one family of chips."""

    #: The run file's metric of the rule's training loss (:mod:`neuroemu.metrics`).
    loss_metric: str

    def step(self, chip: BaseChip, x: np.ndarray, y: np.ndarray, draws: EpochDraws) -> Step:
        """One training step on the mini-batch ``(x, y)``: settle its phases and move every
        device (``chip.update_devices``)."""
        ...

    def trace(self, chip: BaseChip, x: np.ndarray, y: np.ndarray, rates: list[float]) -> Traced:
        """The phases of ``x`` recorded sweep by sweep, and the change their estimate would
        make with learning ``rates`` (one per crossbar)."""
        ...


#: Each rule's class, by (family, algorithm).
RULES: dict[tuple[str, str], Callable[[Training], Rule]] = {}


def register_rule(family: str, *algorithms: str) -> Callable[[Any], Any]:
    """Class decorator: the class is the rule of chips of ``family`` for ``algorithms``."""

    def register(rule: Any) -> Any:
        for algorithm in algorithms:
            RULES[(family, algorithm)] = rule
        return rule

    return register


def rule_for(chip: BaseChip, training: Training) -> Rule:
    """The rule a chip learns by with the settings ``training``."""
    make = RULES.get((chip.family, training.algorithm))
    if make is None:
        known = sorted(a for family, a in RULES if family == chip.family)
        raise InputError(
            f"training.algorithm: {training.algorithm} is not a rule of {chip.family} chips "
            f"(known: {', '.join(known)})"
        )
    return make(training)
