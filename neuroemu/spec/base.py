"""What every spec model shares: strict pydantic models, and physical quantities written
with units in YAML (``10 uS``) held in SI (see :mod:`neuroemu.units`).

What users write must give every quantity its unit: validation with the context
:data:`NEED_UNITS` (YAML files, ``Chip.from_dict``, sweep axis values) refuses a bare
number for a field with a unit. Without it (numbers from Python, and a validated spec's own
JSON form, ``model_dump(mode="json")``) a bare number is in SI. ``model_dump(mode="json",
context=WITH_UNITS)`` writes every quantity as text with its unit (``'1e-05 S'``), which
reads back to the same number under :data:`NEED_UNITS`.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    SerializationInfo,
    ValidationInfo,
)

from ..units import format_quantity, parse_quantity

#: Validation context of what users write: a quantity must carry its unit.
NEED_UNITS: dict[str, Any] = {"need_units": True}
#: Serialisation context that writes quantities as text with their unit.
WITH_UNITS: dict[str, Any] = {"with_units": True}


class Strict(BaseModel):
    """Base of every spec model: unknown keys are errors, instances are immutable, and no
    number is infinite or NaN. Defaults are the models' own values, in SI, and are not
    validated again (what needs units is what a user writes)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    def to_dict(self) -> dict[str, Any]:
        """The spec as a user writes it: plain JSON types, device cards inline, every
        quantity as text with its unit (``'0.0003 S'``, the same number when read back), so
        ``Chip.from_dict(chip.spec.to_dict())`` builds the same chip, and a changed copy
        (``data["inputs"]["gain"] = "2 V"``) another."""
        return self.model_dump(mode="json", context=WITH_UNITS)


def non_negative_conductance(value: float | None) -> float | None:
    if value is not None and value < 0:
        raise ValueError(f"conductance must be >= 0 ({format_quantity(value, 'S')} < 0 S)")
    return value


def positive(value: float, unit: str) -> float:
    if not value > 0:
        raise ValueError(f"must be > 0 {unit} (got {value} {unit})")
    return value


def non_negative(value: float, unit: str) -> float:
    if not value >= 0:
        raise ValueError(f"must be >= 0 {unit} (got {value} {unit})")
    return value


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError(f"expected a whole number, got a boolean ({str(value).lower()})")
    return value


#: A whole number (a count, a size, a seed); ``true`` and ``false`` are not numbers here.
Whole = Annotated[int, BeforeValidator(_not_bool)]


def needs_units(info: ValidationInfo) -> bool:
    """Whether the validation is of what a user wrote (context :data:`NEED_UNITS`)."""
    return bool(info.context and info.context.get("need_units"))


def _quantity_type(unit: str) -> Any:
    def parse(value: Any, info: ValidationInfo) -> float:
        return parse_quantity(value, unit, bare_si=not needs_units(info))

    def serialise(value: float, info: SerializationInfo) -> float | str:
        if info.context and info.context.get("with_units") and math.isfinite(value):
            return f"{float(value)!r} {unit}"  # repr: the same float when read back
        # JSON keeps full precision as a bare SI number, which reads back unchanged.
        return float(value)

    return Annotated[
        float,
        BeforeValidator(parse),
        PlainSerializer(serialise, return_type=float | str, when_used="json"),
    ]


Conductance = _quantity_type("S")
Voltage = _quantity_type("V")
Current = _quantity_type("A")
Time = _quantity_type("s")
Capacitance = _quantity_type("F")
Temperature = _quantity_type("K")
Energy = _quantity_type("J")
Resistance = _quantity_type("Ohm")
