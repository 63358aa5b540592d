"""Units, device cards and chip specs: what validates, and the one-line errors."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest

from neuroemu.errors import SpecError
from neuroemu.spec import load_card, load_chip
from neuroemu.spec.loader import iter_validate, list_library
from neuroemu.units import format_quantity, parse_quantity

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("text", "unit", "value"),
    [
        ("10 uS", "S", 1e-5),
        ("10µS", "S", 1e-5),
        ("0.7 V", "V", 0.7),
        ("2.52 nA", "A", 2.52e-9),
        ("27 degC", "K", 300.15),
        ("300 K", "K", 300.0),
        ("1e-12 S", "S", 1e-12),
        ("20 s", "s", 20.0),
        ("1 pF", "F", 1e-12),
        (3, "V", 3.0),
        (-0.5, "V", -0.5),
    ],
)
def test_parse_quantity(text, unit, value):
    assert parse_quantity(text, unit) == pytest.approx(value, rel=1e-12)


@pytest.mark.parametrize(
    ("text", "unit"),
    [("10 uV", "S"), ("ten", "V"), ("1 V V", "V"), (True, "V"), (math.inf, "V"), ([1], "V")],
)
def test_parse_quantity_rejects(text, unit):
    with pytest.raises(ValueError):
        parse_quantity(text, unit)


@pytest.mark.parametrize("value", [1e-13, 2.5e-9, 1e-6, 3.3e-3, 0.7, 12.0, 4.7e3, 2e6])
def test_format_round_trip(value):
    assert parse_quantity(format_quantity(value, "S"), "S") == pytest.approx(value, rel=1e-3)


def test_library_validates():
    paths = list_library("chips") + list_library("devices")
    assert len(paths) >= 10
    failures = [error for _, error in iter_validate(paths) if error]
    assert failures == []
    assert load_card(ROOT / "devices" / "rram_hfo2.yaml").level_step == pytest.approx(39e-6 / 63)


@pytest.fixture
def workspace(tmp_path):
    """A chips/ and devices/ layout like the repository's, to write broken files into."""
    (tmp_path / "chips").mkdir()
    shutil.copytree(ROOT / "devices", tmp_path / "devices")
    return tmp_path


TINY = (ROOT / "chips" / "tiny.yaml").read_text()


def chip_error(workspace: Path, text: str) -> str:
    path = workspace / "chips" / "x.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        load_chip(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path.name)) or "x.yaml: " in message
    return message.split("x.yaml: ", 1)[1]


def test_g_max_below_g_min(workspace):
    text = TINY.replace(
        "device: ideal_resistor\n    readout",
        "device: {g_min: 1 uS, g_max: 0.1 uS}\n    readout",
    )
    assert chip_error(workspace, text) == (
        "layers[2].device.g_max: must be greater than g_min (0.1 uS <= 1 uS)"
    )


def test_unknown_key_lists_allowed(workspace):
    message = chip_error(workspace, TINY.replace("  gain: 2 V\n", "  gain: 2 V\n  gian: 3 V\n"))
    assert message.startswith("inputs.gian: unknown key (allowed: ")
    assert "gain" in message and "encoding" in message


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("gain: 2 V", "gain: -2 V", "inputs.gain: must be > 0 V (got -2.0 V)"),
        ("gain: 2 V", "gain: 2 uS", "inputs.gain: unit of '2 uS' is not V"),
        ("gain: 2 V", "gain: 2 V\n  offset: 1", "inputs.offset: Input should be less than 1"),
        ("gain: 2 V", "gain: 2 V\n  offset: -0.5", "inputs.offset: Input should be greater"),
        ("size: 6\n  gain", "size: ten\n  gain", "inputs.size: Input should be a valid integer"),
        ("readout: differential", "readout: sideways", "layers[2].readout: Input should be"),
        (
            "diode: ideal_diode\n    init: {distribution: uniform, low: 0 uS, high: 50 uS}\n  - name: output",
            "init: {distribution: uniform, low: 0 uS, high: 50 uS}\n  - name: output",
            "layers: [1] (hidden2): a hidden layer needs a diode",
        ),
        ("seed: 7\n", "", None),
        ("name: tiny\n", "", "name: missing required key"),
        (
            "device: ideal_resistor\n    diode: ideal_diode\n    init: {distribution: uniform, low: 0 uS, high: 50 uS}\n  - name: hidden2",
            "device: ideal_diode\n    diode: ideal_diode\n    init: {distribution: uniform, low: 0 uS, high: 50 uS}\n  - name: hidden2",
            "layers[0].device: card 'ideal_diode' is a diode, expected a resistor",
        ),
        (
            "device: ideal_resistor\n    diode: ideal_diode\n    init: {distribution: uniform, low: 0 uS, high: 50 uS}\n  - name: hidden2",
            "device: nothing_like_it\n    diode: ideal_diode\n    init: {distribution: uniform, low: 0 uS, high: 50 uS}\n  - name: hidden2",
            "layers[0].device: no device card named 'nothing_like_it' (known: ",
        ),
        ("high: 20 uS}", "high: -20 uS}", "bias.init.high: conductance must be >= 0 (-20 uS"),
        ("low: 0 uS, high: 20 uS}", "low: 30 uS, high: 20 uS}", "bias.init: low must not exceed"),
        (
            "  - name: output\n    size: 4",
            "  - name: output\n    size: 5",
            "layers[2]: Value error, differential readout needs an even size (got 5)",
        ),
    ],
)
def test_chip_errors(workspace, old, new, expected):
    assert old in TINY, old
    text = TINY.replace(old, new, 1)
    if expected is None:  # a default fills in: still valid
        path = workspace / "chips" / "x.yaml"
        path.write_text(text)
        assert load_chip(path).spec.seed == 0
        return
    message = chip_error(workspace, text)
    assert message.startswith(expected.replace("Value error, ", "")), message


def test_dropout_is_validated(workspace):
    training = (
        "training:\n  beta: 1 uS\n  target_voltage: 1 V\n  learning_rate: 0.1\n  dropout: {}\n"
    )
    path = workspace / "chips" / "x.yaml"
    path.write_text(TINY + training.format(0.2))
    assert load_chip(path).spec.training.dropout == 0.2
    message = chip_error(workspace, TINY + training.format(1))
    assert message.startswith("training.dropout: Input should be less than 1"), message
    message = chip_error(workspace, TINY + training.format(-0.1))
    assert message.startswith("training.dropout: Input should be greater than or equal to 0")
    shockley = TINY.replace("diode: ideal_diode", "diode: shockley_1n4148")
    assert shockley != TINY
    message = chip_error(workspace, shockley + training.format(0.2))
    assert message.startswith(
        "training.dropout: layer hidden1 has Shockley diodes; only linear or ideal-diode "
        "nodes can be switched to ground"
    ), message
    path.write_text(shockley + training.format(0))  # no dropout: no switches needed
    assert load_chip(path).spec.training.dropout == 0


def test_hinge_loss_needs_a_single_readout(workspace):
    training = (
        "training:\n  beta: 1 uS\n  target_voltage: 1 V\n  learning_rate: 0.1\n  loss: hinge\n"
    )
    assert "readout: differential" in TINY
    message = chip_error(workspace, TINY + training)
    assert message.startswith(
        "training.loss: hinge bounds each output node on one side of its target, so it "
        "needs a single readout"
    ), message
    path = workspace / "chips" / "x.yaml"
    path.write_text(TINY.replace("readout: differential", "readout: single") + training)
    assert load_chip(path).spec.training.loss == "hinge"


def test_malformed_and_duplicate_yaml(workspace):
    assert "malformed YAML at line 4" in chip_error(workspace, "name: x\ninputs:\n  - [\n")
    assert "duplicate key 'seed'" in chip_error(workspace, TINY + "seed: 3\n")
    assert "expected a mapping" in chip_error(workspace, "- 1\n- 2\n")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "kind: resistor\nname: r\ng_min: -1 uS\ng_max: 1 uS\n",
            "g_min: conductance must be >= 0 (-1 uS < 0 S)",
        ),
        ("kind: diode\nname: d\nmodel: shockley\nn: 1.5\n", "a shockley diode needs i_s and n"),
        ("kind: diode\nname: d\nmodel: ideal\ni_s: 1 nA\n", "an ideal diode takes no i_s or n"),
        (
            "kind: capacitor\nname: c\n",
            "kind: must be one of resistor, diode, neuron (got 'capacitor')",
        ),
        (
            "kind: resistor\nname: r\ng_min: 0 S\ng_max: 1 uS\nn_levels: 1\n",
            "n_levels: Input should be greater than or equal to 2",
        ),
    ],
)
def test_card_errors(tmp_path, text, expected):
    path = tmp_path / "card.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        load_card(path)
    assert expected in str(info.value)
    assert "card.yaml" in str(info.value)
