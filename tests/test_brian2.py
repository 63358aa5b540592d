"""The Numba engine of leaky chips against Brian2 itself (neuroemu.io.brian2):
the same network built from NeuronGroups and Synapses with summed variables, run by
Brian2's numpy runtime with the same dt and method, gives the same voltage trajectories
(float64, relative 1e-6 of the largest |v|)."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
import yaml

from neuroemu import Chip
from neuroemu.errors import InputError
from neuroemu.io.brian2 import simulate
from neuroemu.models.synapse import reference

from .conftest import ROOT

RTOL = 1e-6

# Brian2 2.9 calls pyparsing APIs that pyparsing 3.3 deprecates ("'parseString'
# deprecated - use 'parse_string'"); not ours to fix.
pytestmark = pytest.mark.filterwarnings(
    r"ignore:'\w+' (argument is )?deprecated:DeprecationWarning"
)


def tiny(**changes: Any) -> dict[str, Any]:
    """The leaky_tiny chip's mapping with top-level keys and ``dynamics`` keys replaced."""
    data = yaml.safe_load((ROOT / "chips" / "leaky_tiny.yaml").read_text())
    dynamics = changes.pop("dynamics", {})
    data.update(changes)
    data["dynamics"].update(dynamics)
    return data


def inputs(chip: Any, batch: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(size=(batch, chip.n_inputs))


def relative(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    """Largest |difference| over every layer's whole trajectory over the largest |v|."""
    assert [x.shape for x in a] == [y.shape for y in b]
    scale = max(float(np.abs(x).max()) for x in a)
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b, strict=True)) / scale


def compare(chip: Any, x: np.ndarray, **options: Any) -> tuple[list[np.ndarray], float]:
    """The engine's trace and the largest relative difference from Brian2's."""
    engine = chip.settle(x, trace=True, dtype=np.float64, **options).trace.voltages
    brian = simulate(chip, x, target_runtime="numpy", **options)
    return engine, relative(engine, brian)


def assert_moving(trajectories: list[np.ndarray], v_r: float) -> None:
    """The neurons leave rest, and their rates end neither all 0 nor all 1."""
    for v in trajectories:
        assert np.all(v[0] == 0.0)
        assert np.abs(v[-1]).max() > 0.1 * v_r  # every layer moved well away from rest
    rates = np.concatenate([np.clip(v[-1] / v_r, 0, 1).ravel() for v in trajectories])
    inside = (rates > 0.02) & (rates < 0.98)
    assert inside.sum() >= 3, rates  # several neurons in the rising part of the rate
    assert (rates < 0.98).any() and (rates > 0.02).any()


def test_tiny_gated_euler():
    chip = Chip.from_yaml(ROOT / "chips" / "leaky_tiny.yaml")
    assert chip.spec.neuron.name == "leaky_integrator_gated"
    assert chip.spec.dynamics.method == "euler"
    x = inputs(chip)
    engine, diff = compare(chip, x)  # the default steps: free_steps
    assert engine[0].shape == (chip.spec.dynamics.free_steps + 1, 3, 5)
    assert diff < RTOL
    assert_moving(engine, chip.model.v_r)
    # the gate is exercised: some hidden neurons are driven below 0 V, where it closes
    assert engine[0].min() < -0.05


def test_tiny_gated_exponential_euler():
    chip = Chip.from_dict(tiny(dynamics={"method": "exponential_euler"}))
    x = inputs(chip, seed=1)
    engine, diff = compare(chip, x, steps=60)
    assert diff < RTOL
    assert_moving(engine, chip.model.v_r)
    # exponential Euler is not Euler: the two trajectories differ by far more than RTOL
    euler = Chip.from_yaml(ROOT / "chips" / "leaky_tiny.yaml")
    assert relative(engine, euler.settle(x, trace=True, steps=60).trace.voltages) > 1e-3


def asymmetric_chip() -> Any:
    """A 6-5-4-3 asymmetric tiny chip: two feedback arrays, drawn from their own range;
    inputs through a 3-bit DAC."""
    data = tiny(synapses="asymmetric")
    data["inputs"]["dac_bits"] = 3
    hidden, output = data["layers"]
    second = {**copy.deepcopy(hidden), "name": "hidden2", "size": 4}
    feedback = {"distribution": "uniform", "low": "35 uS", "high": "65 uS"}
    second["backward_init"] = feedback
    output["backward_init"] = feedback
    data["layers"] = [hidden, second, output]
    return Chip.from_dict(data)


def test_asymmetric_feedback_arrays():
    chip = asymmetric_chip()
    assert [chip.backward_index(k) for k in range(3)] == [3, 4, None]
    x = inputs(chip, seed=2)
    assert not np.array_equal(chip.dac(x), x)
    engine, diff = compare(chip, x, steps=60)
    assert diff < RTOL
    assert_moving(engine, chip.model.v_r)

    # The feedback arrays matter: with them at G_ref (zero weights) the hidden layers move
    # differently, in both simulators alike.
    zeroed = [g.copy() for g in chip.conductances]
    for index in (3, 4):
        zeroed[index][...] = reference(chip.crossbars[index].device)
    chip.set_conductances(zeroed)
    without, diff_without = compare(chip, x, steps=60)
    assert diff_without < RTOL
    assert relative(engine[:2], without[:2]) > 1e-2
    assert np.array_equal(engine[0][1], without[0][1])  # the first step sees rates of 0


def test_leaky_integrator():
    chip = Chip.from_dict(tiny(neuron="leaky_integrator"))
    x = inputs(chip, seed=3)
    for method in ("euler", "exponential_euler"):
        chip = Chip.from_dict(tiny(neuron="leaky_integrator", dynamics={"method": method}))
        engine, diff = compare(chip, x, steps=60)
        assert diff < RTOL, method
        assert_moving(engine, chip.model.v_r)


def test_leaky_diode():
    # 5 ns keeps Euler stable past the knee (the loader checks |v| up to 1.25 v_r)
    chip = Chip.from_dict(tiny(neuron="leaky_diode", dynamics={"dt": "5 ns"}))
    assert chip.model.stability() < 1.0
    x = inputs(chip, seed=1)
    engine, diff = compare(chip, x, steps=200)
    assert diff < RTOL
    assert_moving(engine, chip.model.v_r)
    # the junction conducts: at the highest v reached its current exceeds the leak's
    p = chip.model.parameters
    top = max(float(v.max()) for v in engine)
    diode = p["I_s"] * np.expm1(top / (p["n_diode"] * p["V_T"]))
    assert diode > p["g_L"] * top


def test_nudged_phase_from_free_state():
    chip = Chip.from_yaml(ROOT / "chips" / "leaky_tiny.yaml")
    x = inputs(chip, batch=2, seed=4)
    free = chip.settle(x, trace=True, steps=60)
    brian_free = simulate(chip, x, steps=60)
    assert relative(free.trace.voltages, brian_free) < RTOL

    labels = np.array([0, 2])
    target = chip.target_voltages(labels, 1.0)
    beta = 2e-6  # S: twice the leak
    nudged = chip.settle(x, beta, target, init=free, trace=True).trace.voltages
    steps = chip.spec.dynamics.nudged_steps
    assert nudged[-1].shape == (steps + 1, 2, 3)
    # Brian2 started from its own free phase's end state (a list of arrays)
    brian = simulate(chip, x, beta, target, init=[v[-1] for v in brian_free])
    assert relative(nudged, brian) < RTOL
    for k in range(2):
        assert np.array_equal(nudged[k][0], free.voltages[k])
    # the nudge pulls the outputs toward their targets
    out = nudged[-1]
    assert np.abs(out[-1] - target).sum() < 0.8 * np.abs(out[0] - target).sum()
    # and it changes the run: the same start without the nudge goes elsewhere
    unnudged = chip.settle(x, init=free, steps=steps, trace=True).trace.voltages
    assert relative(nudged, unnudged) > 1e-2


def test_bad_arguments():
    chip = Chip.from_yaml(ROOT / "chips" / "leaky_tiny.yaml")
    x = inputs(chip, batch=1)
    with pytest.raises(InputError, match="target_runtime"):
        simulate(chip, x, steps=2, target_runtime="cpp")
    with pytest.raises(InputError, match="steps"):
        simulate(chip, x, steps=0)
    with pytest.raises(InputError, match="steps"):
        simulate(chip, x, steps=2.5)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="target"):
        simulate(chip, x, beta=1e-6, steps=2)
    with pytest.raises(InputError, match="x"):
        simulate(chip, np.full((1, 6), 1.5), steps=2)
    with pytest.raises(InputError, match="init"):
        simulate(chip, x, steps=2, init=[np.zeros((1, 5))])


def test_reserved_names():
    card = yaml.safe_load((ROOT / "devices" / "leaky_integrator.yaml").read_text())
    card["parameters"]["read_voltage"] = "1 V"  # a name the backend gives its arrays
    chip = Chip.from_dict(tiny(neuron=card))
    with pytest.raises(InputError, match="reserved"):
        simulate(chip, inputs(chip, batch=1), steps=2)
