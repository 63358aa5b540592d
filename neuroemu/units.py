"""Physical quantities written with units in YAML, held in SI inside.

A quantity is a number with an optional SI prefix and unit: ``10 uS``, ``0.7 V``,
``2.52 nA``, ``27 degC``, ``1e-12 S``, ``20 s``. A bare number is taken as already in SI.
Temperatures in ``degC`` are converted to kelvin. Every physical field of a spec is declared
with the unit it must have, so ``g_max: 0.7 V`` fails with a message naming the key.
"""

from __future__ import annotations

import math
import re
from typing import Any

PREFIXES: dict[str, float] = {
    "f": 1e-15,
    "p": 1e-12,
    "n": 1e-9,
    "u": 1e-6,
    "µ": 1e-6,
    "μ": 1e-6,
    "m": 1e-3,
    "": 1.0,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
}

#: Units the specs use, with their SI base symbol and a human name.
UNITS: dict[str, str] = {
    "S": "conductance",
    "V": "voltage",
    "A": "current",
    "s": "time",
    "F": "capacitance",
    "Ohm": "resistance",
    "K": "temperature",
    "W": "power",
    "J": "energy",
}

ZERO_CELSIUS = 273.15

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_QUANTITY = re.compile(rf"^\s*({_NUMBER})\s*([A-Za-zµμ]*)\s*$")


def parse_quantity(value: Any, unit: str) -> float:
    """Return ``value`` in SI units of ``unit``.

    ``value`` is a number (taken as SI) or a string ``"<number> [<prefix>]<unit>"``.
    Raises ``ValueError`` with a message suitable for a spec error.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a quantity in {unit}, got a boolean")
    if isinstance(value, int | float):
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"must be finite, got {value}")
        return number
    if not isinstance(value, str):
        raise ValueError(f"expected a quantity in {unit} such as '1 {unit}', got {value!r}")
    match = _QUANTITY.match(value)
    if match is None:
        raise ValueError(f"cannot read {value!r} as a quantity in {unit} (e.g. '10 u{unit}')")
    number = float(match.group(1))
    symbol = match.group(2)
    if unit == "K" and symbol in ("degC", "C"):
        return number + ZERO_CELSIUS
    if symbol == "":
        return number
    for prefix, factor in PREFIXES.items():
        if symbol == prefix + unit:
            return number * factor
    raise ValueError(f"unit of {value!r} is not {unit} (with an optional SI prefix)")


def parse_any_quantity(value: Any) -> tuple[float, str]:
    """``value`` (a number, or ``"<number> [<prefix>]<unit>"`` in any unit of :data:`UNITS`
    or ``Hz``) as ``(SI value, base unit)``; a bare number is dimensionless (unit ``""``).
    For parameters whose unit the equations that use them decide (neuron models)."""
    if isinstance(value, bool):
        raise ValueError("expected a number or a quantity, got a boolean")
    if isinstance(value, int | float):
        return parse_quantity(value, ""), ""
    if not isinstance(value, str):
        raise ValueError(f"expected a number or a quantity such as '10 ms', got {value!r}")
    match = _QUANTITY.match(value)
    if match is None:
        raise ValueError(f"cannot read {value!r} as a quantity (e.g. '10 ms', '1 uS')")
    symbol = match.group(2)
    if symbol in ("degC", "C"):
        return parse_quantity(value, "K"), "K"
    if symbol == "":
        return float(match.group(1)), ""
    # The longest unit that ends the symbol decides (so "mS" is milli-siemens, not "m" + "S"
    # taken wrongly, and "Ohm" is not read as a prefix plus "m").
    for unit in sorted([*UNITS, "Hz"], key=len, reverse=True):
        if symbol.endswith(unit) and symbol[: -len(unit)] in PREFIXES:
            return float(match.group(1)) * PREFIXES[symbol[: -len(unit)]], unit
    raise ValueError(f"unknown unit in {value!r} (known: {', '.join([*UNITS, 'Hz'])})")


DURATIONS = {"s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0, "y": 365.25 * 86400.0}


def parse_duration(text: str) -> float:
    """A time after programming such as ``1s``, ``10 min``, ``1h``, ``1d``, ``1y`` (a
    Julian year), in s."""
    match = _QUANTITY.match(text)
    if match is None or match.group(2) not in DURATIONS:
        raise ValueError(f"cannot read {text!r} as a duration (e.g. 1s, 10min, 1h, 1d, 1y)")
    value = float(match.group(1)) * DURATIONS[match.group(2)]
    if not value > 0:
        raise ValueError(f"a duration must be > 0 (got {text!r})")
    return value


def format_quantity(value: float, unit: str, like: float | None = None) -> str:
    """Format an SI value with a readable prefix, e.g. ``1e-7, 'S' -> '100 nS'``; with
    ``like``, in the prefix that suits ``like`` (``1e-7, 'S', like=1e-6 -> '0.1 uS'``), so two
    values compared in a message read in one unit."""
    reference = value if like is None else like
    if reference == 0 or not math.isfinite(reference) or not math.isfinite(value):
        return f"{value:g} {unit}"
    exponent = math.floor(math.log10(abs(reference)) / 3) * 3
    exponent = max(-15, min(9, exponent))
    prefix = {-15: "f", -12: "p", -9: "n", -6: "u", -3: "m", 0: "", 3: "k", 6: "M", 9: "G"}[
        exponent
    ]
    return f"{value / 10.0**exponent:.4g} {prefix}{unit}"
