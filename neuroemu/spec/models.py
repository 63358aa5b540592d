"""Strict pydantic models of device cards and chip specs.

Every model forbids unknown keys, holds physical quantities in SI (see :mod:`.units`) and
checks the physics it can check on its own (``g_min < g_max``, positive gain, a readout
that fits the output layer). Loading from files, resolving card names and turning
validation errors into one-line messages is :mod:`.loader`'s job.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .units import Capacitance, Conductance, Current, Temperature, Time, Voltage, format_quantity

#: Temperature SPICE simulates at by default (27 degC), in kelvin.
SPICE_NOMINAL_TEMPERATURE = 300.15


class Strict(BaseModel):
    """Base of every spec model: unknown keys are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


def _non_negative_conductance(value: float) -> float:
    if value < 0:
        raise ValueError(f"conductance must be >= 0 ({format_quantity(value, 'S')} < 0 S)")
    return value


def _positive(value: float, unit: str) -> float:
    if not value > 0:
        raise ValueError(f"must be > 0 {unit} (got {value} {unit})")
    return value


# --------------------------------------------------------------------------- device cards
class ProgrammingNoise(Strict):
    """Noise on a programmed conductance, ``G = G_target + N(0, sigma(G_target))``.

    ``constant``: ``sigma`` is fixed. ``pcm_polynomial`` (Nandakumar et al. 2019, as in IBM
    aihwkit's PCM noise model): ``sigma = (c0 + c1 g + c2 g^2) * 1 uS * g_max / 25 uS`` with
    ``g = G_target / g_max``. Applied to programming by the non-ideality models.
    """

    model: Literal["constant", "pcm_polynomial"]
    sigma: Conductance = 0.0
    coefficients: tuple[float, float, float] = (0.0, 0.0, 0.0)

    _check_sigma = field_validator("sigma")(_non_negative_conductance)


class ReadNoise(Strict):
    """Gaussian noise on every read: ``sigma = relative * G + absolute``."""

    relative: float = Field(0.0, ge=0.0)
    absolute: Conductance = 0.0

    _check_absolute = field_validator("absolute")(_non_negative_conductance)


class Drift(Strict):
    """Conductance drift ``G(t) = G(t0) (t / t0)^(-nu)``, ``nu ~ N(nu_mean, nu_std)``
    clipped to ``[nu_min, nu_max]`` per device (PCM; Nandakumar et al. 2019)."""

    t0: Time = 20.0
    nu_mean: float = Field(ge=0.0)
    nu_std: float = Field(0.0, ge=0.0)
    nu_min: float = 0.0
    nu_max: float = 1.0

    @model_validator(mode="after")
    def _ordered(self) -> Drift:
        if not self.nu_min <= self.nu_mean <= self.nu_max:
            raise ValueError(
                f"need nu_min <= nu_mean <= nu_max (got {self.nu_min}, {self.nu_mean}, "
                f"{self.nu_max})"
            )
        if self.t0 <= 0:
            raise ValueError(f"t0 must be > 0 s (got {self.t0} s)")
        return self


class Pulses(Strict):
    """Programming by identical pulses whose effect depends on the state (soft bounds).

    One up pulse adds ``up * (g_max - G)`` (soft bounds) or ``up * (g_max - g_min)``; one
    down pulse removes ``down * (G - g_min)`` or ``down * (g_max - g_min)``. ``up != down``
    is the up/down asymmetry. Each pulse's size varies by ``cycle_noise`` (relative standard
    deviation, independent per pulse: cycle-to-cycle noise).
    """

    up: float = Field(gt=0, le=1)
    down: float = Field(gt=0, le=1)
    soft_bounds: bool = True
    cycle_noise: float = Field(0.0, ge=0)


class ResistorCard(Strict):
    """A programmable resistive device: its conductance range and non-idealities."""

    kind: Literal["resistor"]
    name: str
    description: str = ""
    source: str = Field("", description="citation (paper, DOI or datasheet)")
    g_min: Conductance
    g_max: Conductance
    n_levels: int | None = Field(None, ge=2, description="programmable states, evenly spaced")
    rounding: Literal["deterministic", "stochastic"] = "deterministic"
    programming_noise: ProgrammingNoise | None = None
    read_noise: ReadNoise | None = None
    drift: Drift | None = None
    pulses: Pulses | None = None
    step_spread: float = Field(
        0.0, ge=0, description="device-to-device relative spread of the step (pulse) size"
    )
    range_spread: float = Field(
        0.0,
        ge=0,
        description="device-to-device relative spread of the range: each device's own "
        "g_min * max(1 + range_spread z1, 0) and g_max * max(1 + range_spread z2, 0), "
        "z ~ N(0, 1) per device (as IBM aihwkit's w_min_dtod, w_max_dtod)",
    )
    stuck_at_min: float = Field(0.0, ge=0, le=1, description="fraction stuck at g_min")
    stuck_at_max: float = Field(0.0, ge=0, le=1, description="fraction stuck at g_max")

    _check_g_min = field_validator("g_min")(_non_negative_conductance)

    @field_validator("g_max")
    @classmethod
    def _above_g_min(cls, value: float, info: ValidationInfo) -> float:
        g_min = info.data.get("g_min")
        if g_min is not None and not value > g_min:
            raise ValueError(
                f"must be greater than g_min ({format_quantity(value, 'S', like=g_min)} <= "
                f"{format_quantity(g_min, 'S')})"
            )
        return value

    @model_validator(mode="after")
    def _one_update_model(self) -> ResistorCard:
        if self.pulses is not None and self.n_levels is not None:
            raise ValueError("give n_levels (even steps) or pulses (state-dependent), not both")
        return self

    @model_validator(mode="after")
    def _fault_fractions(self) -> ResistorCard:
        if self.stuck_at_min + self.stuck_at_max > 1:
            raise ValueError(
                f"stuck_at_min + stuck_at_max must not exceed 1 (got {self.stuck_at_min} + "
                f"{self.stuck_at_max})"
            )
        return self

    @property
    def level_step(self) -> float | None:
        """Conductance of one programming step (S), or ``None`` for an analog device."""
        if self.n_levels is None:
            return None
        return (self.g_max - self.g_min) / (self.n_levels - 1)


class DiodeCard(Strict):
    """A diode, the nonlinearity of a hidden node.

    ``ideal``: a perfect clamp (zero current when reverse biased, zero voltage when
    conducting). ``shockley``: the SPICE level-1 junction
    ``I = I_s (exp(V_d / (n V_T)) - 1) + gmin V_d`` with ``V_T = k T / q`` (below
    ``-3 n V_T`` SPICE's reverse branch ``-I_s (1 + (3 n V_T / (e V_d))^3)``, which the
    engine follows so that it matches ngspice). ``gmin`` is the conductance SPICE places
    across every junction (its ``GMIN`` option, 1e-12 S by default).
    """

    kind: Literal["diode"]
    name: str
    description: str = ""
    source: str = Field("", description="citation (paper, DOI or datasheet)")
    model: Literal["ideal", "shockley"]
    i_s: Current | None = Field(None, description="saturation current")
    n: float | None = Field(None, description="emission (ideality) coefficient")
    temperature: Temperature = SPICE_NOMINAL_TEMPERATURE
    gmin: Conductance = 1e-12

    @model_validator(mode="after")
    def _parameters_fit_model(self) -> DiodeCard:
        if self.model == "shockley":
            if self.i_s is None or self.n is None:
                raise ValueError("a shockley diode needs i_s and n")
            if not self.i_s > 0:
                raise ValueError(f"i_s must be > 0 A (got {self.i_s} A)")
            if not self.n > 0:
                raise ValueError(f"n must be > 0 (got {self.n})")
        elif self.i_s is not None or self.n is not None:
            raise ValueError("an ideal diode takes no i_s or n (use model: shockley)")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be above absolute zero (got {self.temperature} K)")
        if self.gmin < 0:
            raise ValueError("gmin must be >= 0 S")
        return self


class NeuronCard(Strict):
    """A neuron written as Brian2 equations with units (Scellier and Bengio 2017's leaky
    integrator and its variants), for leaky chips.

    ``equations`` must define the membrane voltage ``v`` by one differential equation (in
    volt), the input current ``I_syn`` as a parameter (``I_syn : amp``, which the crossbars
    drive) and the rate ``rate`` (dimensionless) that the neuron sends down its crossbar
    rows. ``parameters`` give every other name the equations use, with units (``1 pF``,
    ``1 uS``); ``v_r`` (V) must be among them: the voltage over which the rate rises from 0
    to 1, which sets the scale of the learning rules. With ``diode``, the card's junction
    fills the parameters ``I_s`` (A), ``n_diode`` and ``V_T`` (V). Brian2's own parser
    checks syntax and units (:mod:`neuroemu.models.neurons`).
    """

    kind: Literal["neuron"]
    name: str
    description: str = ""
    source: str = Field("", description="citation (paper, DOI or datasheet)")
    equations: str
    parameters: dict[str, float | str] = Field(default_factory=dict)
    diode: DiodeCard | None = None

    @field_validator("diode")
    @classmethod
    def _shockley(cls, value: DiodeCard | None) -> DiodeCard | None:
        if value is not None and value.model != "shockley":
            raise ValueError(f"diode {value.name!r} is ideal: a neuron needs a shockley diode")
        return value


# --------------------------------------------------------------------------- chip specs
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
            raise ValueError("std must be >= 0 S")
        return self


class Inputs(Strict):
    """The input voltage sources: each input ``x in [0, 1]`` drives ``+gain*(x - offset)``
    and, when ``encoding`` is ``differential``, also ``-gain*(x - offset)`` (so positive
    conductances realise signed weights). With ``offset`` 0 a dark pixel drives 0 V and only
    loads the nodes; with 0.5 the sources swing both ways about 0 V (centred inputs)."""

    size: int = Field(gt=0)
    gain: Voltage = Field(description="volts per unit input")
    encoding: Literal["differential", "single"] = "differential"
    offset: float = Field(
        0.0, ge=0, lt=1, description="the input value that drives 0 V (dimensionless, in [0, 1))"
    )
    dac_bits: int | None = Field(
        None, ge=1, le=32, description="input DAC resolution: x rounded to 2^bits - 1 steps"
    )

    _positive_gain = field_validator("gain")(lambda value: _positive(value, "V"))

    @property
    def n_sources(self) -> int:
        return 2 * self.size if self.encoding == "differential" else self.size


class Bias(Strict):
    """The bias sources ``+voltage`` and ``-voltage``; every hidden and output node has a
    conductance to each (a signed bias from positive conductances)."""

    voltage: Voltage = 1.0
    init: Initialisation = Initialisation(distribution="constant")

    _positive_voltage = field_validator("voltage")(lambda value: _positive(value, "V"))


class Layer(Strict):
    """A layer of nodes and the crossbar that feeds it from the layer before."""

    name: str
    size: int = Field(gt=0)
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
    adc_bits: int | None = Field(None, ge=1, le=32, description="output ADC resolution")
    adc_range: Voltage = Field(1.0, description="ADC full scale: -adc_range .. +adc_range")

    @model_validator(mode="after")
    def _consistent(self) -> Layer:
        if self.arrangement == "pair" and not self.v_lo < self.v_hi:
            raise ValueError(f"pair arrangement needs v_lo < v_hi (got {self.v_lo}, {self.v_hi})")
        if self.arrangement == "alternate" and self.diode is not None and self.size < 2:
            raise ValueError("alternate arrangement needs at least 2 nodes")
        if self.readout == "differential" and self.size % 2:
            raise ValueError(f"differential readout needs an even size (got {self.size})")
        if not self.adc_range > 0:
            raise ValueError(f"adc_range must be > 0 V (got {self.adc_range} V)")
        return self


class Solver(Strict):
    """When the equilibrium counts as reached.

    ``tol`` bounds the relative KCL residual ``max_j |r_j| / (G_j V_scale)``: the residual
    current at a node over the current its conductances ``G_j`` would carry at the circuit's
    voltage scale (the largest source voltage). It is the voltage correction a node still
    wants, as a fraction of ``V_scale``.
    """

    tol: float = Field(1e-10, gt=0, lt=1)
    max_sweeps: int = Field(10_000, gt=0)


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
    shift: int = Field(0, ge=0, le=8)
    shape: tuple[int, int] | None = None

    @field_validator("shape")
    @classmethod
    def _positive_shape(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        if value is not None and min(value) < 1:
            raise ValueError(f"must be two sizes >= 1 (got {list(value)})")
        return value


def _check_augment(training: Training | None, n_inputs: int) -> None:
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


class Training(Strict):
    """On-chip learning by equilibrium propagation (see :mod:`neuroemu.learning.ep`).

    Each step settles a mini-batch free, then nudged by ``+beta`` and (centred) ``-beta``,
    and moves every conductance by ``dg = -lr u^2 dC/dg``: plain SGD on conductances
    measured in units of ``u`` (``conductance_unit``), so ``learning_rate`` is dimensionless.
    ``learning_rate`` is one value or one per crossbar (a layer's bias conductances use its
    crossbar's); it is multiplied by ``decay`` after every epoch (Scellier 2024).
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
    random_sign: bool = Field(False, description="draw the sign of beta per mini-batch")
    target_voltage: Voltage = Field(description="target of the right class's output node")
    learning_rate: float | list[float]
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
    batch_size: int = Field(4, gt=0)
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
    epochs: int = Field(1, ge=0)
    dataset: str = "mnist5k"
    snapshot_every: int = Field(
        1, ge=1, description="conductance snapshots in the run file every k epochs"
    )
    trace_samples: list[int] = Field(
        default_factory=list,
        description="test samples whose free and nudged phases are recorded sweep by sweep "
        "in the run file after every evaluated epoch, with the update they would produce",
    )

    @field_validator("trace_samples")
    @classmethod
    def _sample_indices(cls, value: list[int]) -> list[int]:
        if any(i < 0 for i in value) or len(set(value)) != len(value):
            raise ValueError(f"must be distinct test sample indices >= 0 (got {value})")
        return value

    _positive_beta = field_validator("beta", "conductance_unit")(lambda v: _positive(v, "S"))
    _positive_target = field_validator("target_voltage", "temperature")(lambda v: _positive(v, "V"))

    @field_validator("learning_rate")
    @classmethod
    def _rates(cls, value: float | list[float]) -> float | list[float]:
        for rate in value if isinstance(value, list) else [value]:
            if not (math.isfinite(rate) and rate > 0):
                raise ValueError(f"learning rates must be finite and > 0 (got {rate})")
        return value

    def rates(self, n_crossbars: int) -> list[float]:
        if isinstance(self.learning_rate, list):
            return list(self.learning_rate)
        return [self.learning_rate] * n_crossbars


class ChipSpec(Strict):
    """A crossbar chip: input sources, layers of diode nodes joined by crossbars, outputs."""

    name: str
    description: str = ""
    seed: int = Field(0, ge=0)
    inputs: Inputs
    bias: Bias = Bias()
    layers: list[Layer] = Field(min_length=1)
    solver: Solver = Solver()
    node_capacitance: Capacitance = Field(1e-12, description="per node, for energy estimates")
    training: Training | None = None

    @field_validator("layers")
    @classmethod
    def _layer_roles(cls, layers: list[Layer]) -> list[Layer]:
        for index, layer in enumerate(layers[:-1]):
            if layer.diode is None:
                raise ValueError(f"[{index}] ({layer.name}): a hidden layer needs a diode")
            if layer.readout is not None or layer.adc_bits is not None:
                raise ValueError(
                    f"[{index}] ({layer.name}): only the last layer has a readout and an ADC"
                )
        names = [layer.name for layer in layers]
        if len(set(names)) != len(names):
            raise ValueError(f"layer names must be unique (got {names})")
        return layers

    @model_validator(mode="after")
    def _training_fits(self) -> ChipSpec:
        _check_augment(self.training, self.inputs.size)
        if self.training is not None and self.training.algorithm in LEAKY_ONLY:
            raise ValueError(
                f"training.algorithm: {self.training.algorithm} needs a leaky chip "
                "(kind: leaky); a resistive chip learns by ep-centred or ep-one-sided"
            )
        rates = self.training.learning_rate if self.training else None
        if isinstance(rates, list) and len(rates) != len(self.layers):
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

    @property
    def output(self) -> Layer:
        return self.layers[-1]

    @property
    def n_classes(self) -> int:
        out = self.output
        return out.size // 2 if out.readout == "differential" else out.size


# --------------------------------------------------------------------------- leaky chips
class LeakyInputs(Strict):
    """Inputs of a leaky chip: sample ``x in [0, 1]`` is the rate of an input row, which
    drives its crossbar row at ``x * read_voltage``."""

    size: int = Field(gt=0)
    read_voltage: Voltage = Field(description="row voltage of a rate of 1, for every array")
    dac_bits: int | None = Field(
        None, ge=1, le=32, description="input DAC resolution: x rounded to 2^bits - 1 steps"
    )

    _positive_read = field_validator("read_voltage")(lambda value: _positive(value, "V"))


class LeakyLayer(Strict):
    """A layer of leaky neurons, the device array that feeds it from the layer before and,
    on an asymmetric chip, the array that feeds the layer before back from it.

    A synapse's weight is ``G - G_ref`` (S), ``G_ref = (g_min + g_max) / 2`` of its card: a
    reference column of mid-range devices subtracts its current, so positive conductances
    give signed weights. Each neuron also has a bias device read at a rate of 1.
    """

    name: str
    size: int = Field(gt=0)
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
    free_steps: int = Field(gt=0)
    nudged_steps: int = Field(gt=0)

    _positive_dt = field_validator("dt")(lambda value: _positive(value, "s"))


class LeakyChipSpec(Strict):
    """A chip of leaky-integrating neurons joined by device arrays, used both ways
    (``symmetric``: one array per pair of layers) or with a separate feedback array per
    pair (``asymmetric``, the bio-realistic setting; Scellier et al. 2018, Ernoult et al.
    2020). Layer 0 is the clamped inputs; the last layer is the output."""

    kind: Literal["leaky"]
    name: str
    description: str = ""
    seed: int = Field(0, ge=0)
    inputs: LeakyInputs
    neuron: NeuronCard
    synapses: Literal["symmetric", "asymmetric"]
    layers: list[LeakyLayer] = Field(min_length=1)
    bias_init: Initialisation | None = Field(
        None, description="bias devices' first conductance (default: G_ref, zero bias)"
    )
    dynamics: Dynamics
    training: Training | None = None

    @model_validator(mode="after")
    def _consistent(self) -> LeakyChipSpec:
        names = [layer.name for layer in self.layers]
        if len(set(names)) != len(names) or "input" in names:
            raise ValueError(f"layers: names must be unique and not 'input' (got {names})")
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
        _check_augment(training, self.inputs.size)
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
        if training.dropout > 0:
            raise ValueError("training.dropout: only resistive chips switch hidden nodes off")
        rates = training.learning_rate
        n_arrays = len(self.layers) * (2 if self.synapses == "asymmetric" else 1) - (
            1 if self.synapses == "asymmetric" else 0
        )
        if isinstance(rates, list) and len(rates) != n_arrays:
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
