"""Chips of leaky neurons: kernels against the neuron's formula, the engine's step against a
plain numpy network, the learning rules against their equations, spec errors, the CLI."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

import neuroemu
from neuroemu.errors import InputError, SpecError
from neuroemu.kernels.leaky import step, step_kernel
from neuroemu.learning.leaky import apply_update, estimate
from neuroemu.spec.loader import card_from_dict, read_yaml

from .conftest import ROOT, run_cli

C, G_L, V_R = 1e-12, 1e-6, 1.0


def tiny(**changes) -> dict:
    data, _ = read_yaml(ROOT / "chips" / "leaky_tiny.yaml")
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return data


def asymmetric(**changes) -> dict:
    data = tiny(**changes)
    data["synapses"] = "asymmetric"
    data["layers"] = [dict(layer) for layer in data["layers"]]
    data["layers"][1]["backward_init"] = {
        "distribution": "uniform",
        "low": "42 uS",
        "high": "58 uS",
    }
    return data


# --------------------------------------------------------------------------- kernels
@pytest.mark.parametrize("method", ["euler", "exponential_euler"])
def test_kernel_is_the_leaky_integrator_formula(method):
    chip = neuroemu.Chip.from_dict(tiny(neuron="leaky_integrator", dynamics={"method": method}))
    hidden, output = chip.kernels()
    dt = chip.spec.dynamics.dt
    rng = np.random.default_rng(0)
    v = rng.normal(0.3, 0.6, (5, 7))
    i = rng.normal(0, 2e-6, (5, 7))
    target = rng.uniform(0, 1, (5, 7))
    g = 3e-7
    if method == "euler":  # v + dt/C (-g_L v + I)
        want_hidden = v + dt / C * (-G_L * v + i)
        want_output = v + dt / C * (-G_L * v + i + g * (target - v))
    else:  # exact for a linear ODE: v_inf + (v - v_inf) exp(-dt G / C)
        want_hidden = i / G_L + (v - i / G_L) * np.exp(-dt * G_L / C)
        total = G_L + g
        v_inf = (i + g * target) / total
        want_output = v_inf + (v - v_inf) * np.exp(-dt * total / C)
    for kernel, want, nudge in ((hidden, want_hidden, 0.0), (output, want_output, g)):
        for parallel in (False, True):
            got = v.copy()
            rate = np.empty_like(v)
            change = np.empty(5)
            step(kernel, got, i, rate, change, nudge, target, parallel)
            np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)
            np.testing.assert_array_equal(rate, np.clip(got / V_R, 0, 1))
            np.testing.assert_allclose(change, np.abs(want - v).max(axis=1), rtol=1e-12)


def test_parallel_and_serial_kernels_agree_bitwise():
    chip = neuroemu.Chip.from_yaml(ROOT / "chips" / "leaky_tiny.yaml")
    x = np.random.default_rng(1).random((70, 6))
    a = chip.settle(x, parallel=False, trace=True)
    b = chip.settle(x, parallel=True, trace=True)
    for u, w in zip(a.trace.voltages, b.trace.voltages, strict=True):
        np.testing.assert_array_equal(u, w)


def test_kernel_source_is_cached_by_content(tmp_path, monkeypatch):
    card = neuroemu.Chip.from_yaml(ROOT / "chips" / "leaky_tiny.yaml").model
    first = step_kernel(card.hidden, card.rate)
    assert step_kernel(card.hidden, card.rate) is first
    assert first.__file__.endswith(".py")


# --------------------------------------------------------------------------- engine
def numpy_network(chip, x, steps):
    """The network stepped in plain numpy from the neuron's own (numpy) update."""
    model = chip.model
    read = chip.spec.inputs.read_voltage
    w = [read * (c.conductance - 0.5 * (c.device.g_min + c.device.g_max)) for c in chip.crossbars]
    b = [
        read * (bb[0] - 0.5 * (card.g_min + card.g_max))
        for bb, card in zip(chip.bias_conductance, chip.bias_devices, strict=True)
    ]
    n = chip.n_forward
    v = [np.zeros((len(x), m)) for m in chip.layer_sizes]
    for _ in range(steps):
        r = [x] + [model.rate_numpy(vk) for vk in v]
        currents = []
        for k in range(n):
            i = r[k] @ w[k] + b[k]
            if k + 1 < n:
                back = chip.backward_index(k)
                i = i + (r[k + 2] @ w[back] if back is not None else r[k + 2] @ w[k + 1].T)
            currents.append(i)
        v = [
            model.step_numpy(v[k], {"I_syn": currents[k]})
            if k < n - 1
            else model.step_numpy(
                v[k], {"I_cross": currents[k], "g_nudge": 0.0, "v_target": 0 * v[k]}, "output"
            )
            for k in range(n)
        ]
    return v


@pytest.mark.parametrize("make", [tiny, asymmetric])
def test_engine_steps_the_network_as_written(make):
    chip = neuroemu.Chip.from_dict(make())
    x = np.random.default_rng(2).random((3, 6))
    got = chip.settle(x, steps=25)
    want = numpy_network(chip, x, 25)
    for a, b in zip(got.voltages, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    assert np.abs(got.voltages[0]).max() > 0.05  # the neurons moved


def test_float32_follows_float64():
    chip = neuroemu.Chip.from_yaml(ROOT / "chips" / "leaky_tiny.yaml")
    x = np.random.default_rng(3).random((4, 6))
    a = chip.settle(x, dtype=np.float64)
    b = chip.settle(x.astype(np.float32), dtype=np.float32)
    assert b.voltages[0].dtype == np.float32
    for u, w in zip(a.voltages, b.voltages, strict=True):
        np.testing.assert_allclose(u, w, atol=1e-4)


def test_read_power_is_the_sum_over_devices():
    chip = neuroemu.Chip.from_dict(tiny(neuron="leaky_integrator"))
    x = np.random.default_rng(4).random((2, 6))
    eq = chip.settle(x)
    read = chip.spec.inputs.read_voltage
    rates = [x, *eq.rates]
    want = np.zeros(2)
    for k, c in enumerate(chip.crossbars):  # every row drives its devices and G_ref
        ref = 0.5 * (c.device.g_min + c.device.g_max)
        want += read**2 * (rates[k] ** 2) @ (c.conductance.sum(axis=1) + ref)
        if k > 0:  # symmetric arrays but the input one are read backwards too
            want += read**2 * (rates[k + 1] ** 2) @ (c.conductance.sum(axis=0) + ref)
    for bias, card in zip(chip.bias_conductance, chip.bias_devices, strict=True):
        want += read**2 * (bias.sum() + 0.5 * (card.g_min + card.g_max))
    np.testing.assert_allclose(eq.power, want, rtol=1e-12)
    assert eq.energy == pytest.approx(eq.power * eq.settle_time)


def test_run_arguments_are_checked():
    chip = neuroemu.Chip.from_yaml(ROOT / "chips" / "leaky_tiny.yaml")
    x = np.zeros((1, 6))
    for kwargs, message in [
        ({"steps": 2.5}, "steps: must be a whole number"),
        ({"steps": 0}, "steps: must be a whole number"),
        ({"beta": 1e-7}, "target: required"),
        ({"dtype": np.int32}, "dtype: must be float32 or float64"),
        ({"current": np.zeros((1, 3))}, "current: a leaky chip is nudged"),
        ({"bogus": 1}, "bogus: not an option"),
    ]:
        with pytest.raises(InputError, match=message):
            chip.settle(x, **kwargs)
    with pytest.raises(InputError, match=r"x: expected shape \(batch, 6\)"):
        chip.settle(np.zeros((1, 5)))
    with pytest.raises(InputError, match="has no DC netlist"):
        chip.to_spice(x[0])


# --------------------------------------------------------------------------- learning
def test_ep_and_vf_estimates_are_the_local_formulas():
    for make, rule in ((tiny, "ep"), (asymmetric, "vf")):
        chip = neuroemu.Chip.from_dict(make())
        rng = np.random.default_rng(5)
        low = [rng.random((3, n)) for n in [6, *chip.layer_sizes]]
        high = [low[0]] + [a + 0.01 * rng.standard_normal(a.shape) for a in low[1:]]
        beta = 2e-7
        grads, bias = estimate(chip, low, high, beta, rule)
        scale = -chip.spec.inputs.read_voltage * V_R / (beta * 3)
        pairs = [(0, 1), (1, 2)] + ([(2, 1)] if rule == "vf" else [])
        assert len(grads) == len(pairs)
        for g, (pre, post) in zip(grads, pairs, strict=True):
            want = np.zeros(g.shape)
            for s in range(3):  # one device at a time, from its own two neurons
                for i in range(g.shape[0]):
                    for j in range(g.shape[1]):
                        if rule == "vf" or pre == 0:
                            d = low[pre][s, i] * (high[post][s, j] - low[post][s, j])
                        else:
                            d = (
                                high[pre][s, i] * high[post][s, j]
                                - low[pre][s, i] * low[post][s, j]
                            )
                        want[i, j] += scale * d
            np.testing.assert_allclose(g, want, rtol=1e-12)
        np.testing.assert_allclose(bias[1][0], scale * (high[2] - low[2]).sum(axis=0), rtol=1e-12)


def test_update_goes_through_the_device_model():
    data = tiny()
    data["layers"] = [
        dict(
            layer,
            device="rram_hfo2",
            init={"distribution": "uniform", "low": "10 uS", "high": "30 uS"},
        )
        for layer in data["layers"]
    ]
    chip = neuroemu.Chip.from_dict(data)
    step_size = chip.crossbars[0].device.level_step
    before = [c.conductance.copy() for c in chip.crossbars]
    rng = np.random.default_rng(6)
    low = [rng.random((4, n)) for n in [6, *chip.layer_sizes]]
    high = [low[0]] + [a + 0.2 for a in low[1:]]
    apply_update(chip, low, high, 1e-7, "ep", [1e-9, 1e-9], np.random.default_rng(0))
    for c, b in zip(chip.crossbars, before, strict=True):
        pulses = (c.conductance - b) / step_size
        np.testing.assert_allclose(pulses, np.rint(pulses), atol=1e-9)  # whole pulses
        assert np.abs(pulses).max() >= 1
        assert c.conductance.min() >= 1e-6 and c.conductance.max() <= 40e-6


def test_leaky_training_learns_and_is_reproducible():
    data = neuroemu.load_dataset("mnist5k").subset(600, 200)
    chip = neuroemu.Chip.from_yaml(ROOT / "chips" / "leaky_784x500.yaml")
    twin = copy.deepcopy(chip)
    from neuroemu.learning.train import train_epoch
    from neuroemu.run.evaluate import evaluate

    before = evaluate(chip, data.x_test, data.y_test).error

    for epoch in (1, 2):
        train_epoch(chip, data.x_train, data.y_train, chip.spec.training, epoch)
        train_epoch(twin, data.x_train, data.y_train, twin.spec.training, epoch)
    after = evaluate(chip, data.x_test, data.y_test).error
    assert before > 0.8 and after < 0.4
    for a, b in zip(chip.crossbars, twin.crossbars, strict=True):
        np.testing.assert_array_equal(a.conductance, b.conductance)


@pytest.mark.parametrize("algorithm", ["vf", "c-vf"])
def test_asymmetric_rules_move_forward_and_feedback_arrays(algorithm):
    data = asymmetric(dynamics={"method": "euler"})
    data["training"] = {
        "algorithm": algorithm,
        "beta": "0.5 uS",
        "target_voltage": "1 V",
        "learning_rate": 1.0,
        "conductance_unit": "10 uS",
        "batch_size": 4,
    }
    chip = neuroemu.Chip.from_dict(data)
    before = [c.conductance.copy() for c in chip.crossbars]
    x = np.random.default_rng(7).random((8, 6))
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    from neuroemu.learning.train import train_epoch

    train_epoch(chip, x, y, chip.spec.training, 1)
    moved = [np.abs(c.conductance - b).max() for c, b in zip(chip.crossbars, before, strict=True)]
    assert len(moved) == 3 and min(moved) > 0


# --------------------------------------------------------------------------- spec errors
@pytest.mark.parametrize(
    "change, message",
    [
        (
            {
                "training": {
                    "algorithm": "vf",
                    "beta": "1 uS",
                    "target_voltage": "1 V",
                    "learning_rate": 0.1,
                }
            },
            "training.algorithm: vf updates separate forward and backward arrays; this chip has symmetric synapses",
        ),
        (
            {
                "training": {
                    "algorithm": "ep-discrete",
                    "beta": "1 uS",
                    "target_voltage": "1 V",
                    "learning_rate": 0.1,
                },
                "dynamics": {"method": "exponential_euler"},
            },
            "ep-discrete is defined on Euler steps",
        ),
        (
            {
                "training": {
                    "algorithm": "ep-centred",
                    "beta": "1 uS",
                    "target_voltage": "1 V",
                    "learning_rate": 0.1,
                    "loss": "cross-entropy",
                }
            },
            "training.loss: a leaky chip learns the squared error",
        ),
        (
            {
                "training": {
                    "algorithm": "ep-centred",
                    "beta": "1 uS",
                    "target_voltage": "1 V",
                    "learning_rate": [0.1, 0.1, 0.1],
                }
            },
            "training.learning_rate: 3 rates for 2 device arrays",
        ),
        (
            {
                "training": {
                    "algorithm": "ep-centred",
                    "beta": "1 uS",
                    "target_voltage": "1 V",
                    "learning_rate": 0.1,
                    "dropout": 0.2,
                }
            },
            "training.dropout: only resistive chips switch hidden nodes off",
        ),
        (
            {"dynamics": {"dt": "5 us"}},
            "dynamics.dt: 5e-06 s is too large for stable euler steps of neuron 'leaky_integrator_gated'",
        ),
        (
            {
                "neuron": {
                    "equations": "dv/dt = (-v + I_syn) / C : volt\nrate = v / v_r : 1\nI_syn : amp",
                    "parameters": {"C": "1 pF", "v_r": "1 V"},
                }
            },
            "neuron.equations: Inconsistent units in differential equation defining variable 'v'",
        ),
        (
            {
                "neuron": {
                    "equations": "dv/dt = (-g_L * v + I_syn / C : volt\nrate = v / v_r : 1\nI_syn : amp",
                    "parameters": {"C": "1 pF", "g_L": "1 uS", "v_r": "1 V"},
                }
            },
            "neuron.equations: '(' was never closed",
        ),
        (
            {
                "neuron": {
                    "equations": "dv/dt = (-g_L * v + I_syn) / C : volt\nrate = v / v_r : 1\nI_syn : amp",
                    "parameters": {"C": "1 pF", "g_L": "1 uS"},
                }
            },
            "neuron.parameters: must give v_r",
        ),
        (
            {
                "neuron": {
                    "equations": "dv/dt = (-g_L * v + I_syn) / C : volt\nI_syn : amp",
                    "parameters": {"C": "1 pF", "g_L": "1 uS", "v_r": "1 V"},
                }
            },
            "neuron.equations: need the rate as 'rate = ... : 1'",
        ),
        (
            {
                "neuron": {
                    "equations": "dv/dt = (-g_L * v + I_syn) / C : volt\nrate = v / v_r : 1\nI_syn : amp",
                    "parameters": {"C": "1 qF", "g_L": "1 uS", "v_r": "1 V"},
                }
            },
            "neuron.parameters.C: unknown unit in '1 qF'",
        ),
        ({"neuron": "leaky_nothing"}, "neuron: no device card named 'leaky_nothing'"),
        (
            {"neuron": "ideal_resistor"},
            "neuron: card 'ideal_resistor' is a resistor, expected a neuron",
        ),
        ({"synapses": "sideways"}, "synapses: Input should be 'symmetric' or 'asymmetric'"),
        (
            {
                "dynamics": {"method": "exponential_euler"},
                "training": {
                    "algorithm": "ep-centred",
                    "beta": "1 uS",
                    "target_voltage": "1 V",
                    "learning_rate": 0.1,
                },
            },
            "training.beta: nudging the outputs by +-1 uS makes exponential_euler steps",
        ),
    ],
)
def test_leaky_spec_errors(change, message):
    with pytest.raises(SpecError) as info:
        neuroemu.Chip.from_dict(tiny(**change))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_feedback_arrays_need_an_asymmetric_chip():
    data = tiny()
    data["layers"] = [dict(layer) for layer in data["layers"]]
    data["layers"][1]["backward_device"] = "ideal_resistor"
    with pytest.raises(SpecError, match=r"layers\[1\] \(output\): a symmetric chip uses one array"):
        neuroemu.Chip.from_dict(data)
    data = asymmetric()
    data["layers"][0]["backward_init"] = data["layers"][1]["backward_init"]
    with pytest.raises(SpecError, match="inputs are clamped"):
        neuroemu.Chip.from_dict(data)


def test_neuron_card_diode_fills_its_parameters():
    card = card_from_dict(
        {
            "kind": "neuron",
            "name": "d",
            "diode": "shockley_1n4148",
            "equations": "dv/dt = (-g_L * v + I_syn - I_s * (exp(v / (n_diode * V_T)) - 1)) / C : volt\n"
            "rate = clip(v / v_r, 0, 1) : 1\nI_syn : amp",
            "parameters": {"C": "1 pF", "g_L": "1 uS", "v_r": "0.3 V"},
        },
        "<test>",
    )
    from neuroemu.models.neurons import neuron_model

    model = neuron_model(card, "euler", 1e-9)
    assert model.parameters["I_s"] == pytest.approx(2.52e-9)
    assert model.parameters["n_diode"] == pytest.approx(1.752)
    assert model.parameters["V_T"] == pytest.approx(0.025864917, rel=1e-6)
    with pytest.raises(SpecError, match=r"<test>: diode: .*is ideal: a neuron needs a shockley"):
        card_from_dict(
            {"kind": "neuron", "name": "d", "diode": "ideal_diode", "equations": "x"}, "<test>"
        )


# --------------------------------------------------------------------------- command line
def test_simulate_trains_a_leaky_chip_and_records_trajectories(tmp_path):
    out = tmp_path / "leaky.h5"
    result = run_cli(
        "simulate",
        str(ROOT / "chips" / "leaky_784x500_asym.yaml"),
        "--epochs",
        "1",
        "--limit",
        "300",
        "--out",
        str(out),
        "--json",
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["history"][1]["error"] < summary["history"][0]["error"]
    assert "max_residual_V_per_s" in summary
    run = neuroemu.open_run(out)
    trace = run.trace()
    assert set(trace.phase.values) == {"free", "plus"}
    assert trace["voltage:hidden"].sizes["sweep"] == 81  # free_steps + 1 states
    assert trace["energy"].attrs["units"] == "J"
    assert "update:output->hidden" in trace
    assert {"input->hidden", "hidden->output", "output->hidden"} <= set(run.conductance)
    shown = run_cli("traces", str(out))
    assert shown.returncode == 0 and "leaky_784x500_asym" in shown.stdout
