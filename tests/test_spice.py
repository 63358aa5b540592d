"""Netlists, and the engine against ngspice: the circuit ground truth."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

import neuroemu
from neuroemu.errors import SpiceError
from neuroemu.io.spice import (
    SpiceMismatch,
    check_spice,
    complementarity,
    ngspice_available,
    run_ngspice,
)
from neuroemu.models.diode import diode_current, thermal_voltage

ROOT = Path(__file__).resolve().parents[1]
TOLERANCE_V = 1e-6

needs_ngspice = pytest.mark.skipif(
    not ngspice_available() and not os.environ.get("CI"),
    reason="ngspice is not installed (Debian package ngspice); CI installs it",
)


def tiny_shockley(**layer_overrides) -> neuroemu.Chip:
    data = yaml.safe_load((ROOT / "chips" / "tiny.yaml").read_text())
    for layer in data["layers"][:-1]:
        layer["diode"] = "shockley_1n4148"
        layer.update(layer_overrides)
    data["inputs"]["gain"] = "10 V"  # drive the hidden nodes well into the diodes' knees
    return neuroemu.Chip.from_dict(data, seed=11)


def test_netlist_elements_and_values():
    chip = tiny_shockley()
    x = np.linspace(0, 1, chip.n_inputs)
    text = chip.to_spice(x)
    lines = text.splitlines()
    resistors = [line for line in lines if line.startswith("R")]
    sources = [line for line in lines if re.match(r"V0_\d+ ", line)]
    diodes = [line for line in lines if line.startswith("D")]
    n_conductances = sum(np.count_nonzero(g) for g in chip.conductances)
    n_conductances += sum(np.count_nonzero(b) for b in chip.bias_conductance)
    assert len(resistors) == n_conductances
    assert len(sources) == chip.n_sources + 2
    assert len(diodes) == sum(chip.layer_sizes[:-1])  # alternate: one diode per hidden node
    # Every value round-trips exactly.
    name, a, b, value = resistors[0].split()
    _, i, j = (int(t) for t in name[1:].split("_"))
    assert (a, b) == (f"n0_{i}", f"n1_{j}")
    assert 1.0 / float(value) == pytest.approx(chip.conductances[0][i, j], rel=1e-15)
    second = next(line for line in sources if line.startswith(f"V0_{chip.n_inputs + 2} "))
    assert float(second.split()[-1]) == -chip.spec.inputs.gain * x[2]
    assert ".model DL1 D(IS=2.52e-09 N=1.752)" in text
    assert "TEMP=27.0" in text and "GMIN=1e-12" in text


def test_netlist_of_ideal_diodes_is_the_active_set():
    """Each node settle leaves at its bound is a source at the bound, every other node is
    plain; the netlist says it holds for one operating point."""
    chip = neuroemu.Chip.from_yaml(ROOT / "chips" / "tiny.yaml")
    x = np.random.default_rng(3).uniform(size=chip.n_inputs)
    text = chip.to_spice(x)
    assert "ACTIVE SET OF ONE OPERATING" in text and "valid for this input only" in text
    assert not any(line.startswith("D") for line in text.splitlines())
    eq = chip.settle(x[None, :])
    expected = []
    for k, layer in enumerate(chip.spec.layers):
        lo, hi = chip.node_bounds(layer)
        v = eq.voltages[k][0]
        at = (v == lo) | (v == hi) if layer.diode is not None else np.zeros(v.shape, bool)
        expected += [f"Vclamp_{k + 1}_{j} n{k + 1}_{j} 0 DC 0.0" for j in np.flatnonzero(at)]
    clamps = [line for line in text.splitlines() if line.startswith("Vclamp_")]
    assert clamps == expected and len(clamps) >= 2
    active = chip.active_set([v[0] for v in eq.voltages])
    assert active.n_clamped == len(clamps)
    assert active.tolerance == pytest.approx(chip.spec.solver.tol * 2.0)  # V_scale: the 2 V gain
    # The same netlist from the voltages given, and the writer refuses to guess them.
    assert chip.to_spice(x, voltages=[v[0] for v in eq.voltages]) == text
    from neuroemu.engine.netlist import netlist

    with pytest.raises(SpiceError, match="ideal diodes have no SPICE model; their netlist is"):
        netlist(chip.spec, chip.conductances, chip.bias_conductance, np.zeros(12), [], 0)
    with pytest.raises(neuroemu.errors.InputError, match=r"voltages\[1\]: expected 4 finite"):
        chip.to_spice(x, voltages=[v[0] for v in eq.voltages[:1]] + [np.zeros(3), np.zeros(4)])


def test_netlist_checks_input():
    with pytest.raises(neuroemu.errors.InputError, match="x_row"):
        tiny_shockley().to_spice(np.full(6, 2.0))


@needs_ngspice
@pytest.mark.parametrize("arrangement", ["alternate", "pair"])
def test_tiny_shockley_matches_ngspice(arrangement):
    overrides = {"arrangement": arrangement}
    if arrangement == "pair":
        overrides.update({"v_lo": "-0.3 V", "v_hi": "0.4 V"})
    chip = tiny_shockley(**overrides)
    x = np.random.default_rng(5).uniform(size=(4, chip.n_inputs))
    results = check_spice(chip, x)
    worst = max(r["max_abs_diff_V"] for r in results)
    assert worst <= TOLERANCE_V, results
    # The diodes must matter: the same chip without them settles elsewhere.
    eq = chip.settle(x)
    assert np.abs(eq.voltages[0]).max() > 0.3


@needs_ngspice
def test_offset_inputs_match_ngspice():
    """Centred inputs (``inputs.offset``): every source at +-gain (x - offset), so dark
    inputs drive negative voltages; the netlist and the engine must agree on them."""
    chip = tiny_shockley()
    data = chip.spec.to_dict()
    data["inputs"]["offset"] = 0.5
    chip = neuroemu.Chip.from_dict(data, seed=11)
    x = np.random.default_rng(6).uniform(size=(3, chip.n_inputs))
    x[:, :2] = 0.0  # dark inputs
    sources = chip.source_voltages(x)
    assert sources[0, 0] == -0.5 * chip.spec.inputs.gain
    assert sources[0, chip.n_inputs] == 0.5 * chip.spec.inputs.gain
    results = check_spice(chip, x)
    assert max(r["max_abs_diff_V"] for r in results) <= TOLERANCE_V, results
    # The offset moves the operating point (else this test would not test it).
    plain = neuroemu.Chip.from_dict({**data, "inputs": {**data["inputs"], "offset": 0.0}}, seed=11)
    assert np.abs(plain.settle(x).voltages[0] - chip.settle(x).voltages[0]).max() > 0.05


@needs_ngspice
def test_random_784_100_10_matches_ngspice():
    chip = neuroemu.Chip.from_yaml(ROOT / "chips" / "kendall_784x100_shockley.yaml")
    x = neuroemu.load_dataset("mnist5k").x_test[:1]
    (result,) = check_spice(chip, x)
    assert result["max_abs_diff_V"] <= TOLERANCE_V, result
    # A nonlinear operating point: hidden voltages reach the diode knees.
    assert np.abs(chip.settle(x).voltages[0]).max() > 0.3


@needs_ngspice
def test_diode_equation_matches_ngspice(tmp_path):
    """Sweep a source across a lone 1N4148 junction; compare its current with the formula,
    across the forward branch and the reverse branch below -3 n V_T."""
    i_s, n = 2.52e-9, 1.752
    n_vt = n * thermal_voltage(300.15)
    biases = np.array([0.7, 0.5, 0.2, 0.01, -0.01, -2.9 * n_vt, -3.1 * n_vt, -0.5, -3.0])
    deck = ["* lone diode", ".options TEMP=27 TNOM=27 GMIN=1e-12 RELTOL=1e-12 ABSTOL=1e-18"]
    deck.append(".model DX D(IS=2.52e-09 N=1.752)")
    for k, v in enumerate(biases):
        deck += [f"V{k} a{k} 0 DC {float(v)!r}", f"VM{k} a{k} m{k} DC 0", f"D{k} m{k} 0 DX"]
    raw = tmp_path / "op.raw"
    deck += [".control", "set filetype=ascii", "op", f"write {raw} all", "quit", ".endc", ".end"]
    (tmp_path / "d.cir").write_text("\n".join(deck) + "\n")
    subprocess.run(["ngspice", "-b", "d.cir"], cwd=tmp_path, capture_output=True, check=True)
    from neuroemu.io.spice import parse_ascii_raw

    values = parse_ascii_raw(raw.read_text())
    # The current through ammeter source VM_k flows from a_k into m_k: the diode current.
    spice = np.array([values[f"i(vm{k})"] for k in range(len(biases))])
    ours = diode_current(biases, i_s, n_vt, 1e-12)
    np.testing.assert_allclose(spice, ours, rtol=1e-9, atol=1e-21)


def test_run_ngspice_missing(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(SpiceError, match="ngspice not found on PATH"):
        run_ngspice("* empty\n.op\n.end\n")


# Ideal diodes: the active set of one operating point


def one_clamp_chip() -> neuroemu.Chip:
    """One input source at +-1 V (x = 1 or 0: gain 2 V, offset 0.5), 10 uS to each of two
    hidden nodes (node 0 has a diode keeping V >= 0, node 1 one keeping V <= 0), 10 uS from
    each to one output node, no bias. At x = 1 node 1 is clamped at 0 V and node 0 is free:
    KCL gives V_0 = 2/3 V and V_out = 1/3 V, and node 1's diode carries
    10 uS * (1 V + 1/3 V) = 40/3 uA out of it. At x = 0 everything is mirrored."""
    devices = {"device": "ideal_resistor", "init": {"distribution": "constant", "value": "10 uS"}}
    data = {
        "name": "one_clamp",
        "seed": 0,
        "inputs": {"size": 1, "gain": "2 V", "offset": 0.5, "encoding": "single"},
        "bias": {"voltage": "1 V", "init": {"distribution": "constant"}},
        "layers": [
            {"name": "hidden", "size": 2, "diode": "ideal_diode", **devices},
            {"name": "output", "size": 1, **devices},
        ],
    }
    chip = neuroemu.Chip.from_dict(data)
    assert not any(b.any() for b in chip.bias_conductance)  # ideal_resistor's g_min: 0 S
    return chip


@needs_ngspice
@pytest.mark.parametrize("x", [1.0, 0.0])
def test_clamp_current_sign_convention(x):
    """ngspice's i(Vclamp) is the current from the node through the source to ground; an
    upper clamp may carry it out of the node (i >= 0), a lower one into it (i <= 0)."""
    chip = one_clamp_chip()
    sign = 1.0 if x == 1.0 else -1.0
    eq = chip.settle([[x]])
    hidden = [2 / 3, 0.0] if x == 1.0 else [0.0, -2 / 3]
    np.testing.assert_allclose(eq.voltages[0][0], hidden, atol=1e-9)
    text = chip.to_spice([x])
    clamped = 1 if x == 1.0 else 0
    assert [line for line in text.splitlines() if line.startswith("Vclamp")] == [
        f"Vclamp_1_{clamped} n1_{clamped} 0 DC 0.0"
    ]
    values = run_ngspice(text)
    assert values[f"i(vclamp_1_{clamped})"] == pytest.approx(sign * 4e-5 / 3, rel=1e-9)
    assert values["n2_0"] == pytest.approx(sign / 3, rel=1e-9)
    (result,) = check_spice(chip, [[x]])
    assert result["clamped_nodes"] == 1 and result["max_abs_diff_V"] <= 1e-9
    # The margin: the free node's 2/3 V inside its bound, against the clamp's current over
    # its node's 20 uS (2/3 V as well).
    assert result["complementarity_margin_V"] == pytest.approx(2 / 3, rel=1e-9)


@needs_ngspice
def test_tiny_ideal_matches_ngspice():
    chip = neuroemu.Chip.from_yaml(ROOT / "chips" / "tiny.yaml")
    x = np.random.default_rng(5).uniform(size=(4, chip.n_inputs))
    results = check_spice(chip, x)
    assert max(r["max_abs_diff_V"] for r in results) <= TOLERANCE_V, results
    assert all(r["clamped_nodes"] >= 2 and r["complementarity_margin_V"] >= 0 for r in results)


def small_ideal_chip() -> neuroemu.Chip:
    """A 20-input chip of ideal diodes at bounds other than 0 V: a pair layer (every node in
    [-0.3, 0.4] V) and an alternate one (V >= -0.1 V, V <= 0.2 V), driven hard (10 V gain)."""
    data = yaml.safe_load((ROOT / "chips" / "tiny.yaml").read_text())
    data["name"] = "small_ideal"
    data["inputs"] = {"size": 20, "gain": "10 V", "offset": 0.5}
    data["layers"][0].update(size=24, arrangement="pair", v_lo="-0.3 V", v_hi="0.4 V")
    data["layers"][1].update(size=12, v_lo="-0.1 V", v_hi="0.2 V")
    return neuroemu.Chip.from_dict(data, seed=3)


@needs_ngspice
def test_small_ideal_chip_matches_ngspice():
    chip = small_ideal_chip()
    x = np.random.default_rng(8).uniform(size=(3, chip.n_inputs))
    results = check_spice(chip, x)
    assert max(r["max_abs_diff_V"] for r in results) <= TOLERANCE_V, results
    assert min(r["complementarity_margin_V"] for r in results) >= 0
    # Both bounds of the pair layer and bounds other than 0 V are exercised.
    eq = chip.settle(x)
    active = chip.active_set([v[0] for v in eq.voltages])
    bounds = np.concatenate(active.bound)
    assert {-0.3, 0.4} <= set(bounds[np.isfinite(bounds)].tolist())
    assert 0 < active.n_clamped < sum(chip.layer_sizes[:-1])


@needs_ngspice
@pytest.mark.parametrize("mistake", ["clamp a free node", "free a clamped node", "flip a clamp"])
def test_a_wrong_active_set_fails_the_check(mistake):
    """An active set that is not the operating point's: ngspice solves its circuit, and the
    complementarity conditions, not the comparison with settle, say it is wrong."""
    chip = small_ideal_chip()
    x = np.random.default_rng(8).uniform(size=chip.n_inputs)
    voltages = [v[0].copy() for v in chip.settle(x[None, :]).voltages]
    right = chip.active_set(voltages)
    assert complementarity(chip, right, run_ngspice(chip.to_spice(x)), TOLERANCE_V) >= 0
    lo, hi = chip.node_bounds(chip.spec.layers[0])
    v = voltages[0]
    side = right.side[0]
    if mistake == "clamp a free node":  # the free node farthest inside its bounds, to v_lo
        j = int(np.argmax(np.where(side == 0, np.minimum(v - lo, hi - v), -np.inf)))
        v[j] = lo[j]
        expected = "is clamped at its lower bound -0.3 V, but its source carries"
    elif mistake == "free a clamped node":
        j = int(np.flatnonzero(side == -1)[0])
        v[j] = lo[j] + 0.05
        expected = "is free in the active set, but ngspice puts it at"
    else:
        j = int(np.flatnonzero(side == -1)[0])
        v[j] = hi[j]
        expected = "is clamped at its upper bound 0.4 V, but its source carries"
    wrong = chip.active_set(voltages)
    values = run_ngspice(chip.to_spice(x, voltages=voltages))
    with pytest.raises(SpiceMismatch, match=rf"layer 1 \(hidden1\) node {j} \(n1_{j}\) {expected}"):
        complementarity(chip, wrong, values, TOLERANCE_V)
