"""Crossbars with resistive wires (:mod:`neuroemu.engine.wires`): ideal wires as a limit,
the KCL of every wire node, EP through the wires against finite differences, and a chip
that learns through them."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

import neuroemu
from neuroemu.engine.wires import chain_factors, settle_wired
from neuroemu.errors import InputError

from .conftest import ROOT
from .test_learning import DEVICES, check_ep_orders, finite_difference


def tiny(diode: str | None, wires: str | None, ends: bool = False, **solver) -> neuroemu.Chip:
    """chips/tiny.yaml (6 inputs, 6-4-4 nodes) with ``diode`` in its hidden layers and
    ``wires`` in every crossbar; with ``ends``, a 500 Ohm driver resistance at each row's
    driven end and 300 Ohm sense resistance at each column's node."""
    data = yaml.safe_load((ROOT / "chips" / "tiny.yaml").read_text())
    data["inputs"]["gain"] = "10 V"
    for layer in data["layers"][:-1]:
        layer["diode"] = diode
    for layer in data["layers"]:
        if wires is not None:
            layer["wire_resistance"] = wires
        if ends:
            layer.update(driver_resistance="500 Ohm", sense_resistance="300 Ohm")
    data["solver"] = {"tol": 1e-13, **solver}
    return neuroemu.Chip.from_dict(data, seed=3)


@pytest.mark.parametrize("diode", ["ideal_diode", "shockley_1n4148"])
def test_zero_ohm_wires_are_the_ideal_circuit(diode):
    """The wire solver with r = 0 on every crossbar (every row cell at its driver, every
    column cell at its node) finds the plain settle's operating point, sweep for sweep,
    free and nudged both ways, with nodes grounded, and reports the same residual and
    power."""
    chip = tiny(diode, None)
    x = np.random.default_rng(0).uniform(size=(5, chip.n_inputs))
    c = chip.circuit()
    chains = [chain_factors(w, 0.0) for w in c.weights]
    biases = [np.asarray(b) for b in chip.bias_conductance]
    target = chip.target_voltages(np.array([0, 1, 1, 0, 0]), 1.0)
    grounded = [np.zeros(n, bool) for n in chip.layer_sizes]
    grounded[0][2] = True
    cases = [{}, {"beta": 3e-5, "target": target}, {"current": 1e-6 * target}]
    if diode != "shockley_1n4148":
        cases.append({"grounded": grounded})
    for case in cases:
        plain = chip.settle(x, **case)
        params = neuroemu.engine.settle.grounded_params(
            c.params, case.get("grounded"), chip.layer_sizes, len(x)
        )
        wired = settle_wired(
            c, chains, chip.source_voltages(x), biases, chip.spec.bias.voltage, chip.scores,
            case.get("beta", 0.0), case.get("target"), current=case.get("current"),
            params=params, tol=chip.spec.solver.tol, max_sweeps=chip.spec.solver.max_sweeps,
        )  # fmt: skip
        for a, b in zip(plain.voltages, wired.voltages, strict=True):
            np.testing.assert_allclose(b, a, rtol=0, atol=1e-14)
        assert wired.sweeps == plain.sweeps
        np.testing.assert_allclose(wired.power, plain.power, rtol=1e-12)
        assert wired.residual.max() < 1e-13 and plain.residual.max() < 1e-13
        rows, cols = wired.wires[0]
        np.testing.assert_array_equal(rows, np.repeat(chip.source_voltages(x)[:, :, None], 6, 2))
        np.testing.assert_array_equal(cols, np.repeat(wired.voltages[0][:, None, :], 12, 1))


@pytest.mark.parametrize("ends", [False, True], ids=["segments", "driver-sense"])
@pytest.mark.parametrize("diode", ["ideal_diode", "shockley_1n4148"])
def test_wires_move_the_operating_point_and_every_node_keeps_kcl(diode, ends):
    """100 Ohm segments on 20-50 uS devices move the nodes by tens of millivolts; every
    node, wire nodes included, meets KCL to the solver's tolerance; wire voltages lie
    between their ends' (a wire carries no source); the wires dissipate power, so the
    chip's falls with the devices' currents (the same inputs see more resistance). Driver
    and sense resistances at the wires' ends move the nodes further."""
    chip, ideal = tiny(diode, "100 Ohm", ends), tiny(diode, None)
    x = np.random.default_rng(1).uniform(size=(4, chip.n_inputs))
    eq, eq0 = chip.settle(x), ideal.settle(x)
    assert eq.converged and eq.relative_residual.max() < 1e-12
    moved = max(float(np.abs(a - b).max()) for a, b in zip(eq.voltages, eq0.voltages, strict=True))
    assert 0.01 < moved < 0.5
    assert np.all(eq.power < eq0.power)
    rows, cols = eq.wires[1]  # hidden1 -> hidden2: rows driven by hidden1's nodes
    assert rows.shape == cols.shape == (4, 6, 4)
    # Starting from ideal wires or from this operating point: the same operating point.
    again = chip.settle(x, init=eq)
    assert again.sweeps <= 2
    for a, b in zip(again.voltages, eq.voltages, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    if ends:
        bare = tiny(diode, "100 Ohm").settle(x)
        gap = max(
            float(np.abs(a - b).max()) for a, b in zip(eq.voltages, bare.voltages, strict=True)
        )
        assert gap > 1e-3
        assert np.all(eq.power < bare.power)


@pytest.mark.parametrize("ends", [False, True], ids=["segments", "driver-sense"])
def test_ep_through_wires_matches_finite_differences(ends):
    """With 100 Ohm wires (and driver and sense resistances at their ends) the EP estimate
    from each device's own drop (between its two wire nodes) is the gradient of the loss at
    equilibrium: one-sided error O(beta), centred O(beta^2); the gradient differs from the
    same chip's with ideal wires."""
    chip = tiny("ideal_diode", "100 Ohm", ends)
    truth = check_ep_orders(chip)
    x = np.random.default_rng(1).uniform(size=(3, chip.n_inputs))
    target = chip.target_voltages(np.array([0, 1, 1]), 1.0)
    ideal = tiny("ideal_diode", None)
    ideal.set_conductances(chip.conductances)
    assert not np.allclose(truth, [
        finite_difference(ideal, x, target, k, i, j, 1e-3 * ideal.conductances[k][i, j])
        for k, i, j in DEVICES
    ], rtol=0.05)  # fmt: skip


def test_a_chip_with_wires_refuses_what_it_cannot_do():
    chip = tiny("ideal_diode", "10 Ohm")
    x = np.zeros((1, chip.n_inputs))
    with pytest.raises(
        InputError, match=r"^dtype: float32, but chip tiny has wire resistance, which settles in"
    ):
        chip.settle(x, dtype=np.float32)
    with pytest.raises(neuroemu.errors.SpecError, match=r"wire_resistance: must be finite and >="):
        tiny("ideal_diode", "-1 Ohm")
    with pytest.raises(
        neuroemu.errors.SpecError,
        match=r"layers\[0\]: driver_resistance: sits at the end of a resistive wire, but "
        r"wire_resistance is 0 Ohm",
    ):
        tiny("ideal_diode", None, ends=True)


def test_a_traced_settle_with_wires_descends_its_energy():
    """Sweep by sweep the co-content (half the resistive power, wires included) of an
    ideal-diode chip never rises, and the last state is the operating point."""
    chip = tiny("ideal_diode", "100 Ohm")
    x = np.random.default_rng(2).uniform(size=(2, chip.n_inputs))
    eq = chip.settle(x, trace=True)
    energy = eq.trace.energy
    assert energy.shape == (eq.sweeps + 1, 2)
    assert np.all(np.diff(energy, axis=0) <= 1e-13 * energy[0])  # rounding of the sums
    assert energy[-1].max() < 0.95 * energy[0].max()
    np.testing.assert_array_equal(eq.trace.voltages[-1][-1], eq.voltages[-1])
    np.testing.assert_allclose(eq.trace.power[-1], eq.power, rtol=1e-12)
