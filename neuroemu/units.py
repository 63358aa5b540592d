"""Physical quantities written with units in YAML, held in SI inside.

A quantity is a number with an optional SI prefix and its unit: ``10 uS``, ``0.7 V``,
``2.52 nA``, ``27 degC``, ``1e-12 S``, ``20 s``. Temperatures in ``degC`` are converted to
kelvin. Every physical field of a spec is declared with the unit it must have, so
``g_max: 0.7 V`` fails with a message naming the key, and a value must be finite.

What a user writes (YAML files, mappings given to ``Chip.from_dict``, a sweep's axis values)
must carry its unit: a bare ``5`` for a conductance is refused (``give a unit``), since
nothing says whether ``5 S`` or ``5 uS`` was meant. Numbers in Python (``Training(beta=3e-4)``)
and a validated spec's own JSON form are in SI; :func:`parse_quantity` takes them with
``bare_si=True``.

Written out, quantities and durations go the same way back: :data:`SI_PREFIXES` is the one
table of prefixes for reading and writing, :func:`format_quantity` and :func:`display_scale`
pick a readable prefix, :func:`format_duration` the largest unit of :data:`DURATIONS`.
"""

from __future__ import annotations

import math
import re
from typing import Any

#: The SI prefixes by power of ten, spelled as neuroemu writes them (micro as ``u``).
SI_PREFIXES: dict[int, str] = {
    -15: "f",
    -12: "p",
    -9: "n",
    -6: "u",
    -3: "m",
    0: "",
    3: "k",
    6: "M",
    9: "G",
}

#: Further spellings a quantity may be written with, and the prefix each stands for.
PREFIX_SPELLINGS: dict[str, str] = {"µ": "u", "μ": "u"}

#: Every prefix a quantity may be written with, and its factor: :data:`SI_PREFIXES` and
#: their other spellings.
PREFIXES: dict[str, float] = {
    symbol: float(f"1e{exponent}") for exponent, symbol in SI_PREFIXES.items()
}
PREFIXES.update({spelling: PREFIXES[same] for spelling, same in PREFIX_SPELLINGS.items()})

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


#: The prefix an example of each unit is written with in messages (``5 uS``).
_EXAMPLE_PREFIX = {"S": "u", "V": "m", "A": "n", "s": "u", "F": "p", "W": "m", "J": "p"}


def bare_number_message(number: float | int, unit: str) -> str:
    """Why a bare number is refused for a quantity in ``unit``, with what to write:
    ``give a unit: '5 S' if SI is meant, or e.g. '5 uS' (got a bare 5)``."""
    shown = repr(number) if isinstance(number, float) else str(number)
    if unit == "K":
        return f"give a unit: '{shown} K' or '{shown} degC' (got a bare {shown})"
    si = format_quantity(float(number), unit)
    if not math.isclose(parse_quantity(si, unit), float(number), rel_tol=1e-12):
        si = f"{shown} {unit}"  # the readable form rounds it
    if si == f"{shown} {unit}":
        prefixed = f"{shown} {_EXAMPLE_PREFIX.get(unit, 'm')}{unit}"
        options = f"'{si}' if SI is meant, or e.g. '{prefixed}'"
    else:
        options = f"'{si}' if SI is meant"
    return f"give a unit: {options} (got a bare {shown})"


def _finite(number: float, value: Any) -> float:
    if not math.isfinite(number):
        raise ValueError(f"must be finite (got {value!r})")
    return number


def parse_quantity(value: Any, unit: str, bare_si: bool = True) -> float:
    """Return ``value`` in SI units of ``unit``, a finite number.

    ``value`` is a string ``"<number> [<prefix>]<unit>"`` or, with ``bare_si``, a number
    taken as SI; without it a number is refused (what users write must carry its unit).
    Raises ``ValueError`` with a message suitable for a spec error.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a quantity in {unit}, got a boolean")
    if isinstance(value, int | float):
        if not bare_si:
            raise ValueError(bare_number_message(value, unit))
        return _finite(float(value), value)
    if not isinstance(value, str):
        shown = repr(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise ValueError(f"expected a quantity in {unit} such as '1 {unit}', got {shown}")
    match = _QUANTITY.match(value)
    if match is None:
        shown = repr(value) if len(value) <= 60 else repr(value[:50]) + "..."
        raise ValueError(f"cannot read {shown} as a quantity in {unit} (e.g. '10 u{unit}')")
    number = float(match.group(1))
    symbol = match.group(2)
    if unit == "K" and symbol in ("degC", "C"):
        return _finite(number + ZERO_CELSIUS, value)
    if symbol == "":
        if not bare_si:
            raise ValueError(bare_number_message(number, unit))
        return _finite(number, value)
    for prefix, factor in PREFIXES.items():
        if symbol == prefix + unit:
            return _finite(number * factor, value)
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
        return _finite(float(match.group(1)), value), ""
    # The longest unit that ends the symbol decides (so "mS" is milli-siemens, not "m" + "S"
    # taken wrongly, and "Ohm" is not read as a prefix plus "m").
    for unit in sorted([*UNITS, "Hz"], key=len, reverse=True):
        if symbol.endswith(unit) and symbol[: -len(unit)] in PREFIXES:
            return _finite(float(match.group(1)) * PREFIXES[symbol[: -len(unit)]], value), unit
    raise ValueError(f"unknown unit in {value!r} (known: {', '.join([*UNITS, 'Hz'])})")


DURATIONS = {"s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0, "y": 365.25 * 86400.0}


def parse_duration(text: str) -> float:
    """A time after programming such as ``1s``, ``10 min``, ``1h``, ``1d``, ``1y`` (a
    Julian year), in s; a bare number is in s, as every quantity without a unit is SI."""
    match = _QUANTITY.match(text)
    unit = None if match is None else (match.group(2) or "s")
    if match is None or unit not in DURATIONS:
        raise ValueError(f"cannot read {text!r} as a duration (e.g. 1s, 10min, 1h, 1d, 1y)")
    value = float(match.group(1)) * DURATIONS[unit]
    if not math.isfinite(value):
        raise ValueError(f"a duration must be finite (got {text!r})")
    if not value > 0:
        raise ValueError(f"a duration must be > 0 (got {text!r})")
    return value


def prefix_exponent(reference: float) -> int:
    """The power of ten (a multiple of 3 in -15..9) whose SI prefix shows ``reference`` with
    one to three digits before the point; 0 for 0 and for a value that is not finite."""
    if reference == 0 or not math.isfinite(reference):
        return 0
    exponent = math.floor(math.log10(abs(reference)) / 3) * 3
    return max(min(SI_PREFIXES), min(max(SI_PREFIXES), exponent))


def takes_prefix(unit: str) -> bool:
    """Whether an SI prefix can be written before ``unit``: a symbol such as ``S`` or
    ``V/s``, not a dimensionless ``1``, an inverse ``1/s`` or a power ``V^2``."""
    return re.fullmatch(r"[A-Za-z]+(/[A-Za-z]+)*", unit) is not None


def display_scale(largest: float, unit: str) -> tuple[float, str]:
    """``(factor, prefixed unit)`` that shows SI values up to ``largest`` (in ``unit``) with
    a readable prefix: ``display_scale(2.5e-5, "S") == (1e6, "uS")``. SI values times
    ``factor`` are in the prefixed unit. A unit that takes no prefix, and a ``largest`` of
    0 or not finite, give ``(1.0, unit)``."""
    if not takes_prefix(unit):
        return 1.0, unit
    exponent = prefix_exponent(largest)
    return 10.0**-exponent, SI_PREFIXES[exponent] + unit


def format_quantity(value: float, unit: str, like: float | None = None) -> str:
    """Format an SI value with a readable prefix, e.g. ``1e-7, 'S' -> '100 nS'``; with
    ``like``, in the prefix that suits ``like`` (``1e-7, 'S', like=1e-6 -> '0.1 uS'``), so two
    values compared in a message read in one unit."""
    reference = value if like is None else like
    if reference == 0 or not math.isfinite(reference) or not math.isfinite(value):
        return f"{value:g} {unit}"
    exponent = prefix_exponent(reference)
    return f"{value / 10.0**exponent:.4g} {SI_PREFIXES[exponent]}{unit}"


def format_duration(seconds: float, digits: int = 3) -> str:
    """A time (s) in the largest unit of :data:`DURATIONS` it is at least one of, to
    ``digits`` significant digits: ``3600 -> '1 h'``, ``216000 -> '2.5 d'``, ``0.5 -> '0.5 s'``
    (a year is a Julian year, 365.25 d)."""
    for unit in sorted(DURATIONS, key=DURATIONS.__getitem__, reverse=True):
        if seconds >= DURATIONS[unit]:
            return f"{seconds / DURATIONS[unit]:.{digits}g} {unit}"
    return f"{seconds:.{digits}g} s"
