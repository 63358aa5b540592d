"""What every spec model shares: strict pydantic models, and physical quantities written
with units in YAML (``10 uS``) held in SI (see :mod:`neuroemu.units`)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer

from ..units import format_quantity, parse_quantity


class Strict(BaseModel):
    """Base of every spec model: unknown keys are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


def non_negative_conductance(value: float) -> float:
    if value < 0:
        raise ValueError(f"conductance must be >= 0 ({format_quantity(value, 'S')} < 0 S)")
    return value


def positive(value: float, unit: str) -> float:
    if not value > 0:
        raise ValueError(f"must be > 0 {unit} (got {value} {unit})")
    return value


def _quantity_type(unit: str) -> Any:
    return Annotated[
        float,
        BeforeValidator(lambda v: parse_quantity(v, unit)),
        # JSON keeps full precision as a bare SI number, which reads back unchanged.
        PlainSerializer(lambda v: float(v), return_type=float, when_used="json"),
    ]


Conductance = _quantity_type("S")
Voltage = _quantity_type("V")
Current = _quantity_type("A")
Time = _quantity_type("s")
Capacitance = _quantity_type("F")
Temperature = _quantity_type("K")
