"""SI prefixes, display scales and durations: one table each, read and written alike."""

import pytest

from neuroemu.units import (
    PREFIXES,
    SI_PREFIXES,
    display_scale,
    format_duration,
    format_quantity,
    parse_any_quantity,
    parse_quantity,
)


@pytest.mark.parametrize("micro", ["u", "µ", "μ"])
def test_every_spelling_of_micro_parses(micro):
    assert parse_quantity(f"2.5 {micro}S", "S") == 2.5 * 1e-6
    assert parse_any_quantity(f"10 {micro}A") == (10 * 1e-6, "A")


def test_every_prefix_written_is_read_back():
    for exponent, symbol in SI_PREFIXES.items():
        assert PREFIXES[symbol] == float(f"1e{exponent}")
        assert parse_quantity(format_quantity(3 * 10.0**exponent, "S"), "S") == pytest.approx(
            3 * 10.0**exponent
        )
    assert set(PREFIXES) == {*SI_PREFIXES.values(), "µ", "μ"}


@pytest.mark.parametrize(
    ("largest", "unit", "scale"),
    [
        (2.5e-5, "S", (1e6, "uS")),
        (1e-6, "S", (1e6, "uS")),
        (999e-6, "S", (1e6, "uS")),
        (3.2e-3, "W", (1e3, "mW")),
        (4e-13, "J", (1e15, "fJ")),
        (1e-20, "J", (1e15, "fJ")),
        (42.0, "s", (1.0, "s")),
        (3e11, "W", (1e-9, "GW")),
        (0.02, "V/s", (1e3, "mV/s")),
        (0.0, "W", (1.0, "W")),
        (float("nan"), "W", (1.0, "W")),
        (0.25, "1", (1.0, "1")),
        (0.25, "", (1.0, "")),
        (0.25, "1/s", (1.0, "1/s")),
        (0.25, "V^2", (1.0, "V^2")),
    ],
)
def test_display_scale_picks_a_readable_prefix(largest, unit, scale):
    assert display_scale(largest, unit) == scale


@pytest.mark.parametrize(
    ("value", "unit", "like", "text"),
    [
        (1e-7, "S", None, "100 nS"),
        (1e-7, "S", 1e-6, "0.1 uS"),
        (0.0, "S", None, "0 S"),
        (2.52e-9, "A", None, "2.52 nA"),
        (1.5e-3, "W", None, "1.5 mW"),
        (5e12, "W", None, "5000 GW"),
    ],
)
def test_format_quantity(value, unit, like, text):
    assert format_quantity(value, unit, like) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.5, "0.5 s"),
        (1.0, "1 s"),
        (59.0, "59 s"),
        (90.0, "1.5 min"),
        (3600.0, "1 h"),
        (216000.0, "2.5 d"),
        (365.25 * 86400, "1 y"),
        (10 * 365.25 * 86400, "10 y"),
        (12345.0, "3.43 h"),
    ],
)
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_format_duration_to_more_digits():
    assert format_duration(12345.0, digits=6) == "3.42917 h"
