"""Device cards: programmable resistors with their non-idealities, diodes and neurons."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from ..units import format_quantity
from .base import (
    Conductance,
    Current,
    Energy,
    Strict,
    Temperature,
    Time,
    Whole,
    non_negative_conductance,
)

#: Temperature SPICE simulates at by default (27 degC), in kelvin.
SPICE_NOMINAL_TEMPERATURE = 300.15


class ProgrammingNoise(Strict):
    """Noise on a programmed conductance, ``G = G_target + N(0, sigma(G_target))``.

    ``constant``: ``sigma`` is fixed. ``pcm_polynomial`` (Nandakumar et al. 2019, as in IBM
    aihwkit's PCM noise model): ``sigma = (c0 + c1 g + c2 g^2) * 1 uS * g_max / 25 uS`` with
    ``g = G_target / g_max``. Applied to programming by the non-ideality models.
    """

    model: Literal["constant", "pcm_polynomial"]
    sigma: Conductance = 0.0
    coefficients: tuple[float, float, float] = (0.0, 0.0, 0.0)

    _check_sigma = field_validator("sigma")(non_negative_conductance)


class ReadNoise(Strict):
    """Gaussian noise on every read: ``sigma = relative * G + absolute``."""

    relative: float = Field(0.0, ge=0.0)
    absolute: Conductance = 0.0

    _check_absolute = field_validator("absolute")(non_negative_conductance)


class Drift(Strict):
    """Conductance drift ``G(t) = G(t0) (t / t0)^(-nu)``, ``nu ~ N(nu_mean, nu_std)``
    clipped to ``[nu_min, nu_max]`` per device (PCM; Nandakumar et al. 2019)."""

    t0: Time = 20.0
    nu_mean: float = Field(ge=0.0)
    nu_std: float = Field(0.0, ge=0.0)
    nu_min: float = Field(0.0, ge=0.0)
    nu_max: float = 1.0

    @model_validator(mode="after")
    def _ordered(self) -> Drift:
        if not self.nu_min <= self.nu_mean <= self.nu_max:
            raise ValueError(
                f"need nu_min <= nu_mean <= nu_max (got nu_min {self.nu_min}, nu_mean "
                f"{self.nu_mean}, nu_max {self.nu_max})"
            )
        if self.t0 <= 0:
            raise ValueError(f"t0: must be > 0 s (got {self.t0} s)")
        return self


class Pulses(Strict):
    """Programming by identical pulses whose effect depends on the state (soft bounds).

    One up pulse adds ``up * (g_max - G)`` (soft bounds) or ``up * (g_max - g_min)``; one
    down pulse removes ``down * (G - g_min)`` or ``down * (g_max - g_min)``. ``up != down``
    is the up/down asymmetry. Each pulse's size varies by ``cycle_noise`` (relative standard
    deviation, independent per pulse: cycle-to-cycle noise). ``down: reset`` is a device
    that depresses only abruptly, all the way to ``g_min`` (phase-change memory: a RESET
    melts and quenches the whole programmed region), so it learns only as one of a pair of
    devices that are only potentiated (``training.scheme: pairs``).
    """

    up: float = Field(gt=0, le=1)
    down: Annotated[float, Field(gt=0, le=1)] | Literal["reset"]
    soft_bounds: bool = True
    cycle_noise: float = Field(0.0, ge=0)

    @property
    def resets(self) -> bool:
        """Whether depression is an abrupt RESET to ``g_min`` (``down: reset``)."""
        return self.down == "reset"

    @property
    def down_fraction(self) -> float:
        """One down pulse as a fraction of the range (soft bounds: of ``G - g_min``); a
        RESET is the whole of it."""
        return 1.0 if self.down == "reset" else float(self.down)


class ResistorCard(Strict):
    """A programmable resistive device: its conductance range and non-idealities."""

    kind: Literal["resistor"]
    name: str
    description: str = ""
    source: str = Field("", description="citation (paper, DOI or datasheet)")
    g_min: Conductance
    g_max: Conductance
    n_levels: Whole | None = Field(None, ge=2, description="programmable states, evenly spaced")
    rounding: Literal["deterministic", "stochastic"] = "deterministic"
    programming_noise: ProgrammingNoise | None = None
    read_noise: ReadNoise | None = None
    drift: Drift | None = None
    pulses: Pulses | None = None
    step_spread: float = Field(
        0.0, ge=0, description="device-to-device relative spread of the step (pulse) size"
    )
    up_down_spread: float = Field(
        0.0,
        ge=0,
        description="device-to-device imbalance of the up and down steps: each device's up "
        "step scaled by max(1 + b, 0) and its down step by max(1 - b, 0), "
        "b = up_down_spread z, z ~ N(0, 1) per device (as IBM aihwkit's up_down_dtod); "
        "the programming circuit plans on the nominal steps",
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
    pulse_energy: Energy | None = Field(
        None,
        description="energy of one programming pulse (or level step), either direction; of "
        "one SET pulse for a card with pulses.down: reset",
    )
    reset_energy: Energy | None = Field(
        None, description="energy of one RESET (a card with pulses.down: reset)"
    )
    read_energy: Energy | None = Field(
        None,
        description="energy of one read of one device by the programming circuit during "
        "training (a refresh of pairs, a verified write, a Tiki-Taka transfer): its read "
        "voltage squared times its conductance times the read time",
    )

    _check_g_min = field_validator("g_min")(non_negative_conductance)

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

    @model_validator(mode="after")
    def _energy_of_pulses(self) -> ResistorCard:
        for key in ("pulse_energy", "reset_energy", "read_energy"):
            value = getattr(self, key)
            if value is not None and not value >= 0:
                raise ValueError(f"{key}: must be >= 0 J (got {value} J)")
        if self.pulse_energy is not None and self.pulses is None and self.n_levels is None:
            raise ValueError(
                "pulse_energy: a continuous device takes no pulses (give n_levels or pulses)"
            )
        resets = self.pulses is not None and self.pulses.resets
        if self.reset_energy is not None and not resets:
            raise ValueError("reset_energy: only a card with pulses.down: reset takes RESETs")
        if resets and (self.pulse_energy is None) != (self.reset_energy is None):
            raise ValueError(
                "a card with pulses.down: reset gives pulse_energy and reset_energy together"
            )
        return self

    def programming_energy(self, pulses: int, resets: int) -> float | None:
        """The energy (J) of ``pulses`` programming pulses of which ``resets`` are RESETs
        (the rest SET pulses or level steps), or ``None`` for a card without figures."""
        if self.pulse_energy is None:
            return None
        per_reset = self.pulse_energy if self.reset_energy is None else self.reset_energy
        return (pulses - resets) * self.pulse_energy + resets * per_reset

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
                raise ValueError(f"i_s: must be > 0 A (got {self.i_s} A)")
            if not self.n > 0:
                raise ValueError(f"n: must be > 0 (got {self.n})")
        elif self.i_s is not None or self.n is not None:
            raise ValueError("an ideal diode takes no i_s or n (use model: shockley)")
        if not self.temperature > 0:
            raise ValueError(f"temperature: must be above absolute zero (got {self.temperature} K)")
        if self.gmin < 0:
            raise ValueError("gmin: must be >= 0 S")
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
