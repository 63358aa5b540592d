"""The ``training:`` section of a chip spec: on-chip learning by equilibrium propagation."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from ..errors import brief
from ..models.pairs import Refresh
from .base import Conductance, Strict, Voltage, Whole, positive

#: Learning rules of :class:`Training`: EP (centred or one-sided) for every chip; on leaky
#: chips also vector-field EP (``vf``, asymmetric synapses), discrete-time EP
#: (``ep-discrete``, Euler steps of a primitive-function transition), and the continual
#: variants ``c-ep`` and ``c-vf`` (Ernoult et al. 2020).
Algorithm = Literal["ep-centred", "ep-one-sided", "vf", "ep-discrete", "c-ep", "c-vf"]
LEAKY_ONLY = ("vf", "ep-discrete", "c-ep", "c-vf")
ASYMMETRIC = ("vf", "c-vf")


class Augment(Strict):
    """Augmentation of the training images, drawn anew every epoch: each image mirrored left
    to right with probability 1/2 (``flip``) and moved by up to ``shift`` pixels down and
    across (the pixels moved in are dark). ``shape`` is (height, width) of the images, by
    default the square the chip's inputs make (28 x 28 for 784 inputs)."""

    flip: bool = False
    shift: Whole = Field(0, ge=0, le=8)
    shape: tuple[Whole, Whole] | None = None

    @field_validator("shape")
    @classmethod
    def _positive_shape(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        if value is not None and min(value) < 1:
            raise ValueError(f"must be two sizes >= 1 (got {list(value)})")
        return value


def check_scheme(training: Training | None, cards: Iterable[Any]) -> None:
    """An accumulator scheme needs devices that take whole steps (levels or pulses); a
    device that depresses only by RESET learns only in pairs."""
    if training is None:
        return
    cards = list(cards)
    resets = [card.name for card in cards if card.pulses is not None and card.pulses.resets]
    if resets and training.pair_refresh is None:
        raise ValueError(
            f"training.scheme: {training.scheme}, but device {resets[0]} depresses only by "
            "an abrupt RESET (pulses.down: reset), so it cannot take a change down; train "
            "it with training.scheme: pairs"
        )
    if training.scheme in ("direct", "pairs", "pairs-carry", "tiki-taka"):
        return
    if not any(card.level_step is not None or card.pulses is not None for card in cards):
        raise ValueError(
            f"training.scheme: {training.scheme} gathers changes into whole steps, but every "
            "device of this chip is continuous (no n_levels or pulses in its cards); use "
            "direct"
        )


def check_augment(training: Training | None, n_inputs: int) -> None:
    """Augmented images must tile the chip's inputs."""
    augment = training.augment if training is not None else None
    if augment is None:
        return
    if augment.shape is not None:
        height, width = augment.shape
        if height * width != n_inputs:
            raise ValueError(
                f"training.augment.shape: {height} x {width} images have {height * width} "
                f"pixels, the chip {n_inputs} inputs"
            )
    elif math.isqrt(n_inputs) ** 2 != n_inputs:
        raise ValueError(
            f"training.augment: {n_inputs} inputs are not a square image; give "
            "training.augment.shape: [height, width]"
        )


def _learning_rates(value: Any) -> Any:
    """A learning rate or a list of them: numbers, each finite and > 0."""
    several = isinstance(value, list | tuple)
    if several and not value:
        raise ValueError("give one rate, or one per crossbar (got an empty list)")
    rates = []
    for rate in value if several else [value]:
        try:
            if isinstance(rate, bool) or not isinstance(rate, numbers.Real | str):
                raise ValueError
            rate = float(rate)  # YAML reads 1e-3 (no dot) as text
        except ValueError:
            raise ValueError(
                f"expected a number or a list of numbers, one per crossbar (got {brief(value)})"
            ) from None
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError(f"learning rates must be finite and > 0 (got {rate})")
        rates.append(rate)
    return tuple(rates) if several else rates[0]


class Training(Strict):
    """On-chip learning by equilibrium propagation (see :mod:`neuroemu.learning.ep`).

    Each step settles a mini-batch free, then nudged by ``+beta`` and (centred) ``-beta``,
    and moves every conductance by ``dg = -lr u^2 dC/dg``: plain SGD on conductances
    measured in units of ``u`` (``conductance_unit``), so ``learning_rate`` is dimensionless.
    ``learning_rate`` is one value or one per crossbar (a layer's bias conductances use its
    crossbar's); it is multiplied by ``decay`` after every epoch (Scellier 2024).
    ``scheme`` says how the devices take the changes (direct, or through per-device
    accumulators).
    """

    algorithm: Algorithm = Field(
        "ep-centred",
        description="ep-centred, ep-one-sided (any chip); on leaky chips also vf, "
        "ep-discrete, c-ep, c-vf",
    )
    loss: Literal["mse", "cross-entropy", "hinge"] = Field(
        "mse",
        description="mse: C = 1/2 sum (V - y)^2, nudged by a conductance beta to target "
        "sources; cross-entropy: of softmax(scores / temperature), nudged by the current "
        "beta * temperature * (onehot - p) (Laborieux et al. 2021); hinge: the squared "
        "hinge 1/2 sum relu(s (y - V))^2, the right class's node held at or above its target "
        "and the others at or below 0 V (single readout), nudged by a conductance beta to "
        "the target for a node on the wrong side and to its own free voltage for the rest",
    )
    temperature: Voltage = Field(0.05, description="softmax temperature of cross-entropy")
    beta: Conductance = Field(description="nudging conductance to the target sources")
    nudge: Literal["conductance", "current"] | None = Field(
        None,
        description="how the nudged phases pull the output nodes (resistive chips): "
        "conductance, a conductance +-beta to the target sources (negative for -beta, so "
        "it can leave a node with no positive conductance); current, a held current "
        "+-beta (y - V_free) from a current source per node (any beta stays physical; "
        "the cost is linearised at the free phase). Default: conductance for mse and "
        "hinge; cross-entropy always nudges by a current",
    )
    random_sign: bool = Field(False, description="draw the sign of beta per mini-batch")
    target_voltage: Voltage = Field(description="target of the right class's output node")
    learning_rate: Annotated[float | tuple[float, ...], BeforeValidator(_learning_rates)] = Field(
        description="dimensionless: one for every crossbar, or one per crossbar"
    )
    conductance_unit: Conductance = 1e-6
    decay: float = Field(1.0, gt=0, le=1)
    momentum: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="heavy-ball momentum of SGD (Scellier et al. 2023 use 0.9): each device "
        "moves by a velocity v <- momentum v + change kept beside the array; 0 (plain SGD, "
        "nothing stored but the devices) by default",
    )
    scheme: Literal[
        "direct", "mixed-precision", "nearest-carry", "pairs", "pairs-carry", "tiki-taka"
    ] = Field(
        "direct",
        description="how a device takes the changes asked of it: direct, each update "
        "programmed as the card's model rounds it (a change smaller than a step may be "
        "lost); mixed-precision, each device adds the change to an accumulator beside it "
        "(a digital memory per device, as momentum's velocity) and takes a pulse for each "
        "whole step the sum holds, keeping the rest (Nandakumar et al. 2020, Front. "
        "Neurosci. 14, 406); nearest-carry, the same accumulator rounded to the nearest "
        "step, the rounding error carried (error feedback); both replace the card's "
        "rounding on devices with levels or pulses; pairs, each weight on two devices "
        "whose currents enter with opposite signs, only ever potentiated, the pair "
        "refreshed when a device passes refresh_at (Boybat et al. 2018, Nat. Commun. 9, "
        "2514; resistive chips whose every crossbar has a pair circuit), the pulses rounded "
        "as the card rounds them; pairs-carry, the same pairs, each with an accumulator "
        "rounded to the nearest whole SET pulse, the rest carried (as nearest-carry); "
        "tiki-taka, each array's changes go to a second, fast array of the same devices "
        "outside the circuit, and after every update transfer_rate times each fast "
        "device's distance from its symmetry point is programmed into the array in the "
        "circuit (Gokmen & Haensch 2020, Front. Neurosci. 14, 103)",
    )
    transfer_rate: float = Field(
        0.03,
        gt=0,
        le=1,
        description="scheme: tiki-taka: the fraction of each fast device's distance from "
        "its symmetry point programmed into its slow device after every update",
    )
    refresh_at: float = Field(
        0.9,
        gt=0,
        le=1,
        description="scheme: pairs: a pair is refreshed (both devices RESET, their "
        "difference programmed back into one) once a device reaches this fraction of the "
        "nominal range and the other holds a nominal SET step or more",
    )
    refresh_write: Literal["pulses", "verified"] = Field(
        "pulses",
        description="scheme: pairs: how a refresh writes the difference back: pulses, open "
        "loop as SET pulses through the card's model (cycle noise and soft bounds act); "
        "verified, by program and verify, leaving the card's programming_noise at the "
        "target",
    )
    batch_size: Whole = Field(4, gt=0)
    dropout: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="chance that a hidden node is switched to ground (0 V) for a training "
        "sample's phases, drawn node by node for every sample (dropout; Srivastava et al. "
        "2014); evaluation grounds none. Resistive chips with linear or ideal-diode hidden "
        "nodes",
    )
    augment: Augment | None = Field(
        None, description="random flips and moves of the training images, every epoch"
    )
    epochs: Whole = Field(1, ge=0)
    dataset: str = "mnist5k"
    snapshot_every: Whole = Field(
        1, ge=1, description="conductance snapshots in the run file every k epochs"
    )
    trace_samples: tuple[Whole, ...] = Field(
        (),
        description="test samples whose free and nudged phases are recorded sweep by sweep "
        "in the run file after every evaluated epoch, with the update they would produce",
    )

    @field_validator("trace_samples")
    @classmethod
    def _sample_indices(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(i < 0 for i in value) or len(set(value)) != len(value):
            raise ValueError(
                f"must be distinct test sample indices >= 0 (got {brief(list(value))})"
            )
        return value

    _positive_beta = field_validator("beta", "conductance_unit")(lambda v: positive(v, "S"))
    _positive_target = field_validator("target_voltage", "temperature")(lambda v: positive(v, "V"))

    @model_validator(mode="after")
    def _nudge_fits_loss(self) -> Training:
        if self.loss == "cross-entropy" and self.nudge == "conductance":
            raise ValueError(
                "nudge: cross-entropy nudges by a current (give nudge: current, or leave nudge out)"
            )
        return self

    @property
    def nudging(self) -> Literal["conductance", "current"]:
        """How the nudged phases pull: ``nudge``, or the loss's own way when it is not
        given (a current for the cross-entropy, a conductance otherwise)."""
        if self.nudge is not None:
            return self.nudge
        return "current" if self.loss == "cross-entropy" else "conductance"

    @property
    def accumulator_threshold(self) -> float | None:
        """The threshold, in nominal steps, past which a device's accumulator takes a pulse
        (1 for mixed precision, 1/2 for nearest-carry); ``None`` for direct updates."""
        return {"mixed-precision": 1.0, "nearest-carry": 0.5, "pairs-carry": 0.5}.get(self.scheme)

    @property
    def pair_refresh(self) -> Refresh | None:
        """How training by pairs refreshes them (``refresh_at``, ``refresh_write``);
        ``None`` for the other schemes."""
        if self.scheme not in ("pairs", "pairs-carry"):
            return None
        return Refresh(self.refresh_at, verified=self.refresh_write == "verified")

    @property
    def transfer(self) -> float | None:
        """The transfer rate of Tiki-Taka training (``transfer_rate``); ``None`` for the
        other schemes."""
        return self.transfer_rate if self.scheme == "tiki-taka" else None

    def rates(self, n_crossbars: int) -> list[float]:
        if isinstance(self.learning_rate, tuple):
            return list(self.learning_rate)
        return [self.learning_rate] * n_crossbars
