"""Wire resistance in the ngspice netlist, against an independent nodal solve.

The reference (``tests/wire_reference.py``) builds the nodal matrix of every layer and wire
node and solves it directly; ngspice solves the exported netlist. Neither uses the engine.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import yaml

import neuroemu
from neuroemu.engine.netlist import netlist
from neuroemu.errors import SpiceError
from neuroemu.io.spice import check_spice, run_ngspice
from neuroemu.spec import WireResistance

from .conftest import ROOT
from .test_spice import needs_ngspice, tiny_shockley
from .wire_reference import wire_operating_point

#: ngspice and the reference must agree on every node to this (V).
AGREEMENT_V = 1e-9
#: The wires must move some node by more than this (V) for the check to mean anything.
WIRE_EFFECT_V = 1e-3
#: settle and the reference must agree to this (V): settle stops when no node moves by more
#: than tol * V_scale = 2e-10 V in a sweep, and is within about 1e-10 V of it here.
SETTLE_V = 1e-8


def wired_chip(wires: tuple[str | dict, ...], seed: int = 5) -> neuroemu.Chip:
    """A small chip whose nodes are all linear at the operating point: 6 inputs (12
    sources), then 4 hidden nodes and 2 outputs, or 2 outputs alone with one wire.

    A hidden layer needs a diode, so the hidden nodes have ideal diodes at -10 V and +10 V,
    far beyond any voltage the 2 V sources and 1 V biases can reach: they never conduct,
    and the reference checks it. The devices are of 1 to 10 kOhm (a low-resistance state
    of RRAM), so that wires of tens of Ohm move the nodes by millivolts; a few are exactly
    0 S (open cells). A wire is a segment resistance, or a dict of the layer's wire keys
    (``wire_resistance``, ``driver_resistance``, ``sense_resistance``)."""
    device = {"description": "ideal resistor, 0 to 1 mS", "g_min": "0 S", "g_max": "1 mS"}
    init = {"distribution": "uniform", "low": "100 uS", "high": "1 mS"}
    hidden = {
        "name": "hidden",
        "size": 4,
        "device": device,
        "diode": "ideal_diode",
        "arrangement": "pair",
        "v_lo": "-10 V",
        "v_hi": "10 V",
        "init": init,
    }
    output = {"name": "output", "size": 2, "device": device, "init": init}
    layers = [hidden, output] if len(wires) == 2 else [output]
    for layer, wire in zip(layers, wires, strict=True):
        layer.update(wire if isinstance(wire, dict) else {"wire_resistance": wire})
    data = {
        "name": "wired",
        "seed": seed,
        "inputs": {"size": 6, "gain": "2 V"},
        "bias": {
            "voltage": "1 V",
            "init": {"distribution": "uniform", "low": "5 uS", "high": "50 uS"},
        },
        "layers": layers,
    }
    chip = neuroemu.Chip.from_dict(data)
    g = [np.array(w) for w in chip.conductances]
    g[0][1, 1] = 0.0  # open cells of the first crossbar: one away from its wires' ends
    g[0][-1, 0] = 0.0  # one at the corner where the columns join their nodes
    g[-1][0, -1] = 0.0  # and one at the open end of a row
    chip.set_conductances(g)
    return chip


def spice_text(chip: neuroemu.Chip, x: np.ndarray) -> str:
    """The chip's netlist; hidden ideal diodes are exported as the active set of the
    reference's operating point (settle does not model wires), where none is clamped."""
    if len(chip.layer_sizes) == 1:
        return chip.to_spice(x)
    voltages, _ = wire_operating_point(chip, x)
    text = chip.to_spice(x, voltages=voltages)
    assert "0 of 4 nodes clamped" in text
    return text


#: Driver and sense resistances at the wires' ends, in both crossbars.
ENDS = (
    {"wire_resistance": "50 Ohm", "driver_resistance": "200 Ohm", "sense_resistance": "100 Ohm"},
    {"wire_resistance": "20 Ohm", "sense_resistance": "300 Ohm"},
)
CHIPS = [("50 Ohm", "20 Ohm"), ("0 Ohm", "20 Ohm"), ("50 Ohm", "0 Ohm"), ("50 Ohm",), ENDS]


def chip_id(wires: tuple[str | dict, ...]) -> str:
    """A test id for a chip of :data:`CHIPS`."""
    return "-".join("+".join(w.values()) if isinstance(w, dict) else w for w in wires).replace(
        " ", ""
    )


@needs_ngspice
@pytest.mark.parametrize("wires", CHIPS, ids=chip_id)
def test_ngspice_agrees_with_the_nodal_reference_on_every_node(wires):
    chip = wired_chip(wires)
    x = np.random.default_rng(1).uniform(size=chip.n_inputs)
    voltages, wire_v = wire_operating_point(chip, x)
    values = run_ngspice(spice_text(chip, x))
    for k, v in enumerate(voltages):
        spice = np.array([values[f"n{k + 1}_{j}"] for j in range(len(v))])
        np.testing.assert_allclose(spice, v, rtol=0, atol=AGREEMENT_V)
    for k, nodes in enumerate(wire_v):
        n, m = chip.conductances[k].shape
        names = [name for name in values if re.fullmatch(rf"[rc]{k + 1}_\d+_\d+", name)]
        if nodes is None:
            assert names == []  # no wire nodes for a crossbar with ideal wires
            continue
        assert len(names) == 2 * n * m
        for tag, reference in zip("rc", nodes, strict=True):
            spice = np.array(
                [[values[f"{tag}{k + 1}_{i}_{j}"] for j in range(m)] for i in range(n)]
            )
            np.testing.assert_allclose(spice, reference, rtol=0, atol=AGREEMENT_V)
    # The wires matter: the layer nodes move by more than a millivolt from ideal wires'.
    ideal = wired_chip(tuple("0 Ohm" for _ in wires))
    if wires == ENDS:  # the end resistances matter too: against the same wires without them
        bare = wire_operating_point(wired_chip(("50 Ohm", "20 Ohm")), x)[0]
        moved = max(float(np.abs(a - b).max()) for a, b in zip(voltages, bare, strict=True))
        assert moved > WIRE_EFFECT_V
    ideal_voltages, ideal_wires = wire_operating_point(ideal, x)
    assert all(w is None for w in ideal_wires)
    moved = max(float(np.abs(a - b).max()) for a, b in zip(voltages, ideal_voltages, strict=True))
    assert moved > WIRE_EFFECT_V
    # The wires' own drops are that large too: from the driven end of each row to its
    # open end, and from the open end of each column to its node.
    for k, nodes in enumerate(wire_v):
        if nodes is not None:
            row_v, col_v = nodes
            drop = max(
                float(np.abs(row_v[:, 0] - row_v[:, -1]).max()),
                float(np.abs(col_v[0] - voltages[k]).max()),
            )
            assert drop > WIRE_EFFECT_V


def test_the_reference_with_ideal_wires_is_the_engines_operating_point():
    """With no wire resistance, the reference and settle solve the same circuit."""
    chip = wired_chip(("0 Ohm", "0 Ohm"))
    x = np.random.default_rng(2).uniform(size=(3, chip.n_inputs))
    eq = chip.settle(x)
    for b in range(len(x)):
        voltages, _ = wire_operating_point(chip, x[b])
        for k, v in enumerate(voltages):
            np.testing.assert_allclose(eq.voltages[k][b], v, rtol=0, atol=SETTLE_V)


def test_the_reference_refuses_diodes_that_conduct():
    tiny = neuroemu.Chip.from_yaml(ROOT / "chips" / "tiny.yaml")  # ideal diodes at 0 V
    with pytest.raises(ValueError, match="beyond its ideal diode's bounds"):
        wire_operating_point(tiny, np.linspace(0, 1, tiny.n_inputs))
    shockley = tiny_shockley()
    with pytest.raises(ValueError, match="shockley diodes"):
        wire_operating_point(shockley, np.linspace(0, 1, shockley.n_inputs))


def netlist_args(chip: neuroemu.Chip, x: np.ndarray) -> tuple[tuple, dict]:
    """The arguments ``chip.to_spice(x)`` passes to ``netlist``, but the wires."""
    voltages, _ = wire_operating_point(chip, x)
    return (
        chip.spec,
        list(chip.conductances),
        list(chip.bias_conductance),
        chip.source_voltages(x[None, :])[0],
        [chip.node_bounds(layer) for layer in chip.spec.layers],
        chip.seed,
    ), {"active": chip.active_set(voltages)}


def test_ideal_wires_give_the_netlist_without_wires_byte_for_byte():
    chip = wired_chip(("0 Ohm", "0 Ohm"))
    x = np.random.default_rng(3).uniform(size=chip.n_inputs)
    args, options = netlist_args(chip, x)
    plain = netlist(*args, **options)
    assert netlist(*args, **options, wires=[0.0, 0.0]) == plain
    assert netlist(*args, **options, wires=None) == plain
    voltages, _ = wire_operating_point(chip, x)
    assert chip.to_spice(x, voltages=voltages) == plain
    assert "Wire resistance" not in plain and "RW" not in plain


def test_wires_must_be_one_non_negative_resistance_per_crossbar():
    chip = wired_chip(("0 Ohm", "0 Ohm"))
    x = np.full(chip.n_inputs, 0.5)
    args, options = netlist_args(chip, x)
    with pytest.raises(SpiceError, match=r"one resistance per crossbar \(2\), got 1"):
        netlist(*args, **options, wires=[1.0])
    with pytest.raises(SpiceError, match=r"wires\[1\]\.segment: .* >= 0 Ohm"):
        netlist(*args, **options, wires=[1.0, -1.0])
    with pytest.raises(SpiceError, match=r"wires\[0\]\.segment: .* finite"):
        netlist(*args, **options, wires=[float("nan"), 1.0])
    with pytest.raises(SpiceError, match=r"wires\[1\]\.driver: .* >= 0 Ohm"):
        netlist(*args, **options, wires=[1.0, WireResistance(1.0, -2.0)])
    with pytest.raises(SpiceError, match=r"wires\[0\]: a driver or sense resistance needs"):
        netlist(*args, **options, wires=[WireResistance(0.0, 0.0, 5.0), 1.0])


@pytest.mark.parametrize("wires", CHIPS, ids=chip_id)
def test_segment_and_device_counts_follow_the_geometry(wires):
    chip = wired_chip(wires)
    x = np.random.default_rng(4).uniform(size=chip.n_inputs)
    text = spice_text(chip, x)
    lines = text.splitlines()
    elements = {line.split()[0]: line.split()[1:] for line in lines if line.startswith("R")}
    names = ["n0"] + [f"n{k + 1}" for k in range(len(chip.layer_sizes))]
    for k, (g, layer) in enumerate(zip(chip.conductances, chip.spec.layers, strict=True)):
        no = k + 1  # the crossbar's number
        n, m = g.shape
        devices = [line for line in lines if line.startswith(f"R{no}_")]
        rows = [line for line in lines if line.startswith(f"RWr{no}_")]
        cols = [line for line in lines if line.startswith(f"RWc{no}_")]
        assert len(devices) == np.count_nonzero(g) < n * m  # open cells are left out
        r = layer.wire_resistance
        header = f"*   crossbar {no} ({'input' if k == 0 else chip.spec.layers[k - 1].name}->"
        if r == 0:
            assert rows == cols == []
            assert all(re.fullmatch(rf"{names[k]}_\d+", d.split()[1]) for d in devices)
            if any(w.wire_resistance > 0 for w in chip.spec.layers):
                assert any(
                    h.startswith(header)
                    and h.endswith("0 Ohm (ideal wires: devices join the nodes)")
                    for h in lines
                )
            continue
        assert len(rows) == len(cols) == n * m
        # Every segment is r, but a row's first adds the driver's resistance and a
        # column's last the sense resistance.
        for s in rows + cols:
            kind, i, j = re.fullmatch(rf"RW([rc]){no}_(\d+)_(\d+)", s.split()[0]).groups()
            expected = r
            if kind == "r" and int(j) == 0:
                expected = r + layer.driver_resistance
            if kind == "c" and int(i) == n - 1:
                expected = r + layer.sense_resistance
            assert float(s.split()[3]) == pytest.approx(expected, rel=1e-15)
        (said,) = [h for h in lines if h.startswith(header)]
        assert f": {r!r} Ohm" in said
        for key, tag in (("driver_resistance", "driver"), ("sense_resistance", "sense")):
            extra = getattr(layer, key)
            assert (f"plus {extra!r} Ohm {tag} resistance" in said) == (extra > 0)
            assert (f"Ohm {tag} resistance" in said) == (extra > 0)
        # Each device between its cell's row and column wire nodes.
        i, j = np.argwhere(g > 0)[0]
        assert elements[f"R{no}_{i}_{j}"][:2] == [f"r{no}_{i}_{j}", f"c{no}_{i}_{j}"]
        # Rows driven at j = 0 from the layer below, open at j = M-1; columns open at i = 0,
        # joining the layer's node at i = N-1.
        for i in range(n):
            assert elements[f"RWr{no}_{i}_0"][:2] == [f"{names[k]}_{i}", f"r{no}_{i}_0"]
            assert elements[f"RWr{no}_{i}_{m - 1}"][:2] == [
                f"r{no}_{i}_{m - 2}",
                f"r{no}_{i}_{m - 1}",
            ]
        for j in range(m):
            assert elements[f"RWc{no}_0_{j}"][:2] == [f"c{no}_0_{j}", f"c{no}_1_{j}"]
            assert elements[f"RWc{no}_{n - 1}_{j}"][:2] == [
                f"c{no}_{n - 1}_{j}",
                f"{names[no]}_{j}",
            ]
        # Biases stay on the layer's nodes.
        biases = [line.split() for line in lines if line.startswith(f"RB{no}")]
        assert biases and all(re.fullmatch(rf"n{no}_\d+", b[2]) for b in biases)


@pytest.mark.parametrize("wires", CHIPS, ids=chip_id)
def test_settle_with_wires_is_the_nodal_reference_on_every_node(wires):
    """The engine's exact solve (:mod:`neuroemu.engine.wires`) against the direct nodal
    solve, on every layer and wire node of chips whose nodes are all linear."""
    chip = wired_chip(wires)
    x = np.random.default_rng(1).uniform(size=(3, chip.n_inputs))
    eq = chip.settle(x, tol=1e-14)
    for b in range(len(x)):
        voltages, wire_v = wire_operating_point(chip, x[b])
        for k, v in enumerate(voltages):
            np.testing.assert_allclose(eq.voltages[k][b], v, rtol=0, atol=1e-12)
        for k, nodes in enumerate(wire_v):
            if nodes is not None:
                np.testing.assert_allclose(eq.wires[k][0][b], nodes[0], rtol=0, atol=1e-12)
                np.testing.assert_allclose(eq.wires[k][1][b], nodes[1], rtol=0, atol=1e-12)


@needs_ngspice
@pytest.mark.parametrize("ends", [False, True], ids=["segments", "driver-sense"])
@pytest.mark.parametrize("diode", ["ideal_diode", "shockley_1n4148"])
def test_check_spice_passes_a_wired_chip_with_conducting_diodes(diode, ends):
    """chips/tiny.yaml with 100 Ohm wires in every crossbar (and 500 Ohm drivers and
    300 Ohm sense resistances at their ends) and diodes that conduct: ngspice (ideal diodes
    as the active set of settle's operating point) agrees with settle on every layer and
    wire node to 1e-9 V, and the active set is the operating point."""
    data = yaml.safe_load((ROOT / "chips" / "tiny.yaml").read_text())
    data["inputs"]["gain"] = "10 V"
    for layer in data["layers"]:
        layer["wire_resistance"] = "100 Ohm"
        if ends:
            layer.update(driver_resistance="500 Ohm", sense_resistance="300 Ohm")
        if "diode" in layer:
            layer["diode"] = diode
    chip = neuroemu.Chip.from_dict(data, seed=3)
    x = np.random.default_rng(4).uniform(size=(3, chip.n_inputs))
    results = check_spice(chip, x, tolerance=1e-9)
    assert all(r["wire_nodes"] == 2 * (12 * 6 + 6 * 4 + 4 * 4) for r in results)
    assert max(r["max_abs_diff_wires_V"] for r in results) < 1e-9
    if diode == "ideal_diode":
        assert sum(r["clamped_nodes"] for r in results) > 0
