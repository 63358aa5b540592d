"""Specs of resistive chips: input sources, layers of diode nodes joined by crossbars, outputs."""

from __future__ import annotations

from typing import Literal, NamedTuple

from pydantic import Field, field_validator, model_validator

from ..errors import brief
from ..units import format_quantity
from .base import (
    Capacitance,
    Conductance,
    Resistance,
    Strict,
    Voltage,
    Whole,
    non_negative,
    non_negative_conductance,
    positive,
)
from .cards import DiodeCard, ResistorCard
from .training import LEAKY_ONLY, Training, check_augment, check_scheme


class Initialisation(Strict):
    """How a crossbar's conductances are first programmed (clipped to the device range).

    ``uniform``: ``U(low, high)``; ``normal``: ``N(mean, std)``; ``constant``: ``value``.
    ``low``/``value`` default to the device's ``g_min``.
    """

    distribution: Literal["uniform", "normal", "constant"] = "uniform"
    low: Conductance | None = None
    high: Conductance | None = None
    mean: Conductance | None = None
    std: Conductance | None = None
    value: Conductance | None = None

    @model_validator(mode="after")
    def _parameters_fit_distribution(self) -> Initialisation:
        needed = {"uniform": ("high",), "normal": ("mean", "std"), "constant": ()}
        for key in needed[self.distribution]:
            if getattr(self, key) is None:
                raise ValueError(f"distribution {self.distribution} needs {key}")
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(
                f"low must not exceed high ({format_quantity(self.low, 'S')} > "
                f"{format_quantity(self.high, 'S')})"
            )
        if self.std is not None and self.std < 0:
            raise ValueError("std: must be >= 0 S")
        return self

    _non_negative = field_validator("low", "high", "mean", "value")(non_negative_conductance)

    def may_be_nonzero(self, device: ResistorCard) -> bool:
        """Whether a device of ``device`` programmed by this init may hold more than 0 S:
        ``False`` only when the device can reach 0 S (``g_min`` 0 S, none stuck at
        ``g_max``) and every draw is at most 0 S (clipped to it)."""
        if device.g_min > 0 or device.stuck_at_max > 0:
            return True
        if self.distribution == "constant":
            return (self.value or 0.0) > 0
        if self.distribution == "uniform":
            return (self.high or 0.0) > 0
        return (self.mean or 0.0) > 0 or (self.std or 0.0) > 0

    def mean_conductance(self, device: ResistorCard) -> float:
        """About the mean conductance (S) this init programs on ``device``: the mean of its
        distribution, clipped to the device's range (a uniform one's bounds clipped
        first)."""
        g_min, g_max = device.g_min, device.g_max
        clip = lambda value: min(max(value, g_min), g_max)  # noqa: E731
        if self.distribution == "constant":
            return clip(g_min if self.value is None else self.value)
        if self.distribution == "uniform":
            low = clip(g_min if self.low is None else self.low)
            return 0.5 * (low + clip(self.high or 0.0))
        return clip(self.mean or 0.0)

    def describe(self, device: ResistorCard) -> str:
        """The init in a message: ``constant 0 S``, ``uniform 0 S .. 0 S``."""
        g = lambda value: format_quantity(value, "S")  # noqa: E731
        low = device.g_min if self.low is None else self.low
        if self.distribution == "constant":
            return f"constant {g(device.g_min if self.value is None else self.value)}"
        if self.distribution == "uniform":
            return f"uniform {g(low)} .. {g(self.high or 0.0)}"
        return f"normal {g(self.mean or 0.0)} +- {g(self.std or 0.0)}"


class Inputs(Strict):
    """The input voltage sources: each input ``x in [0, 1]`` drives ``+gain*(x - offset)``
    and, when ``encoding`` is ``differential``, also ``-gain*(x - offset)`` (so positive
    conductances realise signed weights). With ``offset`` 0 a dark pixel drives 0 V and only
    loads the nodes; with 0.5 the sources swing both ways about 0 V (centred inputs)."""

    size: Whole = Field(gt=0)
    gain: Voltage = Field(description="volts per unit input")
    encoding: Literal["differential", "single"] = "differential"
    offset: float = Field(
        0.0, ge=0, lt=1, description="the input value that drives 0 V (dimensionless, in [0, 1))"
    )
    dac_bits: Whole | None = Field(
        None, ge=1, le=32, description="input DAC resolution: x rounded to 2^bits - 1 steps"
    )

    _positive_gain = field_validator("gain")(lambda value: positive(value, "V"))

    @property
    def n_sources(self) -> int:
        return 2 * self.size if self.encoding == "differential" else self.size


class Bias(Strict):
    """The bias sources ``+voltage`` and ``-voltage``; every hidden and output node has a
    conductance to each (a signed bias from positive conductances)."""

    voltage: Voltage = 1.0
    init: Initialisation = Initialisation(distribution="constant")

    _positive_voltage = field_validator("voltage")(lambda value: positive(value, "V"))


class WireResistance(NamedTuple):
    """The wires of one crossbar (Ohm): ``segment`` between neighbouring cells (and
    between a wire's end cell and what it joins); ``driver`` in series at each row's driven
    end (the output resistance of what drives it); ``sense`` in series at each column's end
    on its node. ``segment = 0`` is ideal wires."""

    segment: float
    driver: float = 0.0
    sense: float = 0.0


class Layer(Strict):
    """A layer of nodes and the crossbar that feeds it from the layer before."""

    name: str
    size: Whole = Field(gt=0)
    device: ResistorCard
    diode: DiodeCard | None = None
    arrangement: Literal["alternate", "pair"] = Field(
        "alternate",
        description="alternate: the first half of the nodes clamped V >= v_lo, the second "
        "half V <= v_hi (Scellier 2024); pair: every node has both diodes, V in [v_lo, v_hi] "
        "(Kendall et al. 2020)",
    )
    v_lo: Voltage = 0.0
    v_hi: Voltage = 0.0
    init: Initialisation
    readout: Literal["single", "differential"] | None = None
    adc_bits: Whole | None = Field(None, ge=1, le=32, description="output ADC resolution")
    adc_range: Voltage = Field(1.0, description="ADC full scale: -adc_range .. +adc_range")
    wire_resistance: Resistance = Field(
        0.0,
        description="resistance of one segment of the row and column wires of the crossbar "
        "that feeds this layer, between neighbouring cells and between a wire's last cell "
        "and the node or source it joins (0 Ohm: ideal wires; docs/physics.md, wires)",
    )
    driver_resistance: Resistance = Field(
        0.0,
        description="resistance in series with the first segment of each row of that "
        "crossbar: the output resistance of the source or node driving it (needs "
        "wire_resistance > 0)",
    )
    sense_resistance: Resistance = Field(
        0.0,
        description="resistance in series with the last segment of each column of that "
        "crossbar, at this layer's node (needs wire_resistance > 0)",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Layer:
        if self.arrangement == "pair" and not self.v_lo < self.v_hi:
            raise ValueError(f"pair arrangement needs v_lo < v_hi (got {self.v_lo}, {self.v_hi})")
        if self.arrangement == "alternate" and self.diode is not None and self.size < 2:
            raise ValueError("alternate arrangement needs at least 2 nodes")
        if self.readout == "differential" and self.size % 2:
            raise ValueError(f"differential readout needs an even size (got {self.size})")
        if not self.adc_range > 0:
            raise ValueError(f"adc_range: must be > 0 V (got {self.adc_range} V)")
        for key in ("wire_resistance", "driver_resistance", "sense_resistance"):
            value = getattr(self, key)
            if not (value >= 0 and value < float("inf")):
                raise ValueError(f"{key}: must be finite and >= 0 Ohm (got {value} Ohm)")
        for key in ("driver_resistance", "sense_resistance"):
            if getattr(self, key) > 0 and not self.wire_resistance > 0:
                raise ValueError(
                    f"{key}: sits at the end of a resistive wire, but wire_resistance is "
                    "0 Ohm (ideal wires); give the wire its segment resistance (> 0 Ohm)"
                )
        return self

    @property
    def wires(self) -> WireResistance:
        """The resistances of the wires of the crossbar that feeds this layer (Ohm)."""
        return WireResistance(
            float(self.wire_resistance), float(self.driver_resistance), float(self.sense_resistance)
        )


class Solver(Strict):
    """When the equilibrium counts as reached.

    ``tol`` bounds the relative KCL residual ``max_j |r_j| / (G_j V_scale)``: the residual
    current at a node over the current its conductances ``G_j`` would carry at the circuit's
    voltage scale (the largest source voltage). It is the voltage correction a node still
    wants, as a fraction of ``V_scale``.
    """

    tol: float = Field(1e-10, gt=0, lt=1)
    max_sweeps: Whole = Field(10_000, gt=0)


class ChipSpec(Strict):
    """A crossbar chip: input sources, layers of diode nodes joined by crossbars, outputs."""

    name: str
    description: str = ""
    seed: Whole = Field(0, ge=0)
    inputs: Inputs
    bias: Bias = Bias()
    layers: tuple[Layer, ...] = Field(min_length=1)
    solver: Solver = Solver()
    node_capacitance: Capacitance = Field(1e-12, description="per node, for energy estimates")
    training: Training | None = None

    _capacitance = field_validator("node_capacitance")(lambda value: non_negative(value, "F"))

    @field_validator("layers")
    @classmethod
    def _layer_roles(cls, layers: tuple[Layer, ...]) -> tuple[Layer, ...]:
        for index, layer in enumerate(layers[:-1]):
            if layer.diode is None:
                raise ValueError(f"[{index}] ({layer.name}): a hidden layer needs a diode")
            if layer.readout is not None or layer.adc_bits is not None:
                raise ValueError(
                    f"[{index}] ({layer.name}): only the last layer has a readout and an ADC"
                )
        names = [layer.name for layer in layers]
        if len(set(names)) != len(names):
            raise ValueError(f"layer names must be unique (got {brief(names)})")
        return layers

    @model_validator(mode="after")
    def _training_fits(self) -> ChipSpec:
        check_augment(self.training, self.inputs.size)
        check_scheme(self.training, [layer.device for layer in self.layers])
        if self.training is not None and self.training.pair_refresh is not None:
            self._check_pairs()
        if self.training is not None and self.training.algorithm in LEAKY_ONLY:
            raise ValueError(
                f"training.algorithm: {self.training.algorithm} needs a leaky chip "
                "(kind: leaky); a resistive chip learns by ep-centred or ep-one-sided"
            )
        rates = self.training.learning_rate if self.training else None
        if isinstance(rates, tuple) and len(rates) != len(self.layers):
            raise ValueError(
                f"training.learning_rate: {len(rates)} rates for {len(self.layers)} crossbars"
            )
        if self.training is not None and self.training.dropout > 0:
            for layer in self.layers[:-1]:
                if layer.diode is not None and layer.diode.model != "ideal":
                    raise ValueError(
                        f"training.dropout: layer {layer.name} has Shockley diodes; only "
                        "linear or ideal-diode nodes can be switched to ground"
                    )
        if (
            self.training is not None
            and self.training.loss == "hinge"
            and self.output.readout == "differential"
        ):
            raise ValueError(
                "training.loss: hinge bounds each output node on one side of its target, "
                "so it needs a single readout (this chip reads classes differentially)"
            )
        return self

    def _check_pairs(self) -> None:
        """Training by pairs needs a pair circuit for every crossbar: the input sources at
        +a x and -a x (differential encoding) for the first, differential readout for the
        last, and nothing can pair the devices between two hidden layers
        (:mod:`neuroemu.models.pairs`)."""
        n = len(self.layers)
        scheme = self.training.scheme if self.training is not None else None
        for k, layer in enumerate(self.layers):
            first = k == 0 and self.inputs.encoding == "differential"
            last = k == n - 1 and self.output.readout == "differential"
            if first or last:
                continue
            if k == 0:
                why = "its inputs need encoding: differential (sources at +a x and -a x)"
            elif k < n - 1:
                why = "it joins two hidden layers, whose nodes have no inverted copies"
            else:
                why = "its outputs need readout: differential (scores V+ - V-)"
            raise ValueError(
                f"training.scheme: {scheme} needs a pair circuit for every device, but "
                f"layers[{k}] ({layer.name}) has none: {why}"
            )

    @model_validator(mode="after")
    def _nodes_reached(self) -> ChipSpec:
        """Every node needs a conductance, and a path of conductances to a source (an input
        or a bias source, or through a Shockley junction to its diode's source), or its
        voltage is undefined. Decided here where the spec alone decides it: a crossbar or
        bias array whose every device is surely 0 S (see
        :meth:`Initialisation.may_be_nonzero`); the chip checks its programmed arrays."""
        layers = self.layers
        n = len(layers)
        crossbar = [layer.init.may_be_nonzero(layer.device) for layer in layers]
        bias = [self.bias.init.may_be_nonzero(layer.device) for layer in layers]
        junction = [layer.diode is not None and layer.diode.model == "shockley" for layer in layers]
        # reached[l]: free layer l (0-based) may connect to a source.
        reached = [bias[k] or junction[k] for k in range(n)]
        for _ in range(n + 1):
            for k in range(n):
                below = crossbar[k] and (k == 0 or reached[k - 1])
                above = k + 1 < n and crossbar[k + 1] and reached[k + 1]
                reached[k] = reached[k] or below or above
        names = ["input", *[layer.name for layer in layers]]
        for k, layer in enumerate(layers):
            if reached[k]:
                continue
            own = [k, k + 1] if k + 1 < n else [k]  # the crossbars at the layer's nodes
            if not any(crossbar[j] for j in own) and not bias[k]:
                problem = "its nodes float: every conductance at them is 0 S"
                zero = own
                biases = [k]
            else:
                problem = "no source reaches its nodes: every path to an input or a bias "
                problem += "crosses 0 S devices"
                zero = [j for j in range(n) if not crossbar[j]]
                biases = [j for j in range(n) if not bias[j] and not junction[j]]
            arrays = [
                f"{names[j]}->{names[j + 1]} {layers[j].init.describe(layers[j].device)}"
                for j in zero
            ]
            arrays += [
                f"bias of {names[j + 1]} {self.bias.init.describe(layers[j].device)}"
                for j in biases
            ]
            raise ValueError(
                f"layers[{k}] ({layer.name}): {problem} ({', '.join(arrays)}, devices with "
                "g_min 0 S); give them a conductance above 0 S"
            )
        return self

    def first_updates(self) -> list[tuple[str, float, float, float]]:
        """An estimate of the first training update of every crossbar, from the chip's own
        scales: ``(crossbar, learning rate, |dG| (S), device range g_max - g_min (S))``.

        For a device feeding node ``j``, ``dC/dg = (V_j - y_j) dV_j/dg`` with
        ``dV_j/dg = (V_i - V_j) / G_j``: the output error and the drop across the device
        over the node's conductance. Taking both voltages at the target voltage (at the
        softmax temperature for the error of the cross-entropy) and ``G_j`` as the
        init's mean conductances at the node gives
        ``|dG| = lr u^2 V_t E / G``, ``u`` the ``conductance_unit``. It is an order of
        magnitude: for the library's chips it exceeds the largest first update measured by
        2 to 25 times. Empty without a training section."""
        training = self.training
        if training is None:
            return []
        layers = self.layers
        n = len(layers)
        sizes = [self.inputs.n_sources] + [layer.size for layer in layers]
        error = training.temperature if training.loss == "cross-entropy" else None
        v_t = training.target_voltage
        out = []
        names = ["input", *[layer.name for layer in layers]]
        for k, (layer, rate) in enumerate(zip(layers, training.rates(n), strict=True)):
            g = sizes[k] * layer.init.mean_conductance(layer.device)
            if k + 1 < n:
                after = layers[k + 1]
                g += after.size * after.init.mean_conductance(after.device)
            g += 2 * self.bias.init.mean_conductance(layer.device)
            if not g > 0:
                continue
            change = rate * training.conductance_unit**2 * v_t * (error or v_t) / g
            span = layer.device.g_max - layer.device.g_min
            out.append((f"{names[k]}->{names[k + 1]}", rate, change, span))
        return out

    @property
    def output(self) -> Layer:
        return self.layers[-1]

    @property
    def n_classes(self) -> int:
        out = self.output
        return out.size // 2 if out.readout == "differential" else out.size
