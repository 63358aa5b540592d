"""Specs of chips of leaky-integrating neurons (``kind: leaky``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from ..errors import brief
from .base import Strict, Time, Voltage, Whole, positive
from .cards import NeuronCard, ResistorCard
from .resistive import Initialisation
from .training import ASYMMETRIC, Training, check_augment, check_scheme


class LeakyInputs(Strict):
    """Inputs of a leaky chip: sample ``x in [0, 1]`` is the rate of an input row, which
    drives its crossbar row at ``x * read_voltage``."""

    size: Whole = Field(gt=0)
    read_voltage: Voltage = Field(description="row voltage of a rate of 1, for every array")
    dac_bits: Whole | None = Field(
        None, ge=1, le=32, description="input DAC resolution: x rounded to 2^bits - 1 steps"
    )

    _positive_read = field_validator("read_voltage")(lambda value: positive(value, "V"))


class LeakyLayer(Strict):
    """A layer of leaky neurons, the device array that feeds it from the layer before and,
    on an asymmetric chip, the array that feeds the layer before back from it.

    A synapse's weight is ``G - G_ref`` (S), ``G_ref = (g_min + g_max) / 2`` of its card: a
    reference column of mid-range devices subtracts its current, so positive conductances
    give signed weights. Each neuron also has a bias device read at a rate of 1.
    """

    name: str
    size: Whole = Field(gt=0)
    device: ResistorCard
    init: Initialisation
    backward_device: ResistorCard | None = Field(
        None, description="asymmetric chips: the device of the feedback array (default: device)"
    )
    backward_init: Initialisation | None = None


class Dynamics(Strict):
    """How the neurons are integrated: Brian2's ``euler`` or ``exponential_euler`` update
    with step ``dt``, ``free_steps`` steps in the free phase and ``nudged_steps`` in each
    nudged phase (started from the free phase's end state)."""

    dt: Time
    method: Literal["euler", "exponential_euler"] = "exponential_euler"
    free_steps: Whole = Field(gt=0)
    nudged_steps: Whole = Field(gt=0)

    _positive_dt = field_validator("dt")(lambda value: positive(value, "s"))


class LeakyChipSpec(Strict):
    """A chip of leaky-integrating neurons joined by device arrays, used both ways
    (``symmetric``: one array per pair of layers) or with a separate feedback array per
    pair (``asymmetric``, the bio-realistic setting; Scellier et al. 2018, Ernoult et al.
    2020). Layer 0 is the clamped inputs; the last layer is the output."""

    kind: Literal["leaky"]
    name: str
    description: str = ""
    seed: Whole = Field(0, ge=0)
    inputs: LeakyInputs
    neuron: NeuronCard
    synapses: Literal["symmetric", "asymmetric"]
    layers: tuple[LeakyLayer, ...] = Field(min_length=1)
    bias_init: Initialisation | None = Field(
        None, description="bias devices' first conductance (default: G_ref, zero bias)"
    )
    dynamics: Dynamics
    training: Training | None = None

    @model_validator(mode="after")
    def _consistent(self) -> LeakyChipSpec:
        names = [layer.name for layer in self.layers]
        if len(set(names)) != len(names) or "input" in names:
            raise ValueError(f"layers: names must be unique and not 'input' (got {brief(names)})")
        for index, layer in enumerate(self.layers):
            feedback = layer.backward_device is not None or layer.backward_init is not None
            if feedback and self.synapses == "symmetric":
                raise ValueError(
                    f"layers[{index}] ({layer.name}): a symmetric chip uses one array both "
                    "ways; backward_device and backward_init need synapses: asymmetric"
                )
            if feedback and index == 0:
                raise ValueError(
                    f"layers[{index}] ({layer.name}): inputs are clamped, so the first layer "
                    "has no feedback array (no backward_device or backward_init)"
                )
        training = self.training
        if training is None:
            return self
        check_augment(training, self.inputs.size)
        backward = [layer.backward_device for layer in self.layers if layer.backward_device]
        if training.pair_refresh is not None:
            raise ValueError(
                "training.scheme: pairs needs the pair circuits of a resistive chip "
                "(kind: leaky has none)"
            )
        if training.transfer is not None:
            raise ValueError(
                "training.scheme: tiki-taka trains a resistive chip (kind: leaky has no "
                "fast arrays)"
            )
        check_scheme(training, [layer.device for layer in self.layers] + backward)
        algorithm = training.algorithm
        if algorithm in ASYMMETRIC and self.synapses != "asymmetric":
            raise ValueError(
                f"training.algorithm: {algorithm} updates separate forward and backward "
                "arrays; this chip has symmetric synapses (no backward arrays)"
            )
        if algorithm not in ASYMMETRIC and self.synapses != "symmetric":
            raise ValueError(
                f"training.algorithm: {algorithm} needs symmetric synapses (an energy); "
                "on an asymmetric chip use vf or c-vf"
            )
        if algorithm in ("ep-discrete", "c-ep", "c-vf") and self.dynamics.method != "euler":
            raise ValueError(
                f"training.algorithm: {algorithm} is defined on Euler steps of the neuron "
                f"(the discrete-time transition); set dynamics.method: euler "
                f"(got {self.dynamics.method})"
            )
        if training.loss != "mse":
            raise ValueError("training.loss: a leaky chip learns the squared error (mse)")
        if training.nudge is not None:
            raise ValueError(
                "training.nudge: is for resistive chips; a leaky chip's output neuron takes "
                "beta (v_target - v) in its equation"
            )
        if training.dropout > 0:
            raise ValueError("training.dropout: only resistive chips switch hidden nodes off")
        rates = training.learning_rate
        n_arrays = len(self.layers) * (2 if self.synapses == "asymmetric" else 1) - (
            1 if self.synapses == "asymmetric" else 0
        )
        if isinstance(rates, tuple) and len(rates) != n_arrays:
            raise ValueError(
                f"training.learning_rate: {len(rates)} rates for {n_arrays} device arrays "
                "(forward arrays, then backward arrays)"
            )
        return self

    @property
    def n_classes(self) -> int:
        return self.layers[-1].size

    @property
    def output(self) -> LeakyLayer:
        return self.layers[-1]
