"""The EP estimate against the true gradient of the loss at equilibrium."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

import neuroemu
from neuroemu.learning.ep import ep_gradient, loss, mean_squared_drops

ROOT = Path(__file__).resolve().parents[1]


def small_chip(diode: str, offset: float = 0.0) -> neuroemu.Chip:
    data = yaml.safe_load((ROOT / "chips" / "tiny.yaml").read_text())
    data["inputs"]["gain"] = "10 V"
    data["inputs"]["offset"] = offset
    for layer in data["layers"][:-1]:
        layer["diode"] = diode
    data["solver"] = {"tol": 1e-13}
    return neuroemu.Chip.from_dict(data, seed=3)


def central_difference(chip, cost, k, i, j, h):
    """``(cost(g + h) - cost(g - h)) / 2h`` for device ``(i, j)`` of crossbar ``k``."""
    saved = [g.copy() for g in chip.conductances]
    values = []
    for sign in (1, -1):
        moved = [g.copy() for g in saved]
        moved[k][i, j] += sign * h
        chip.set_conductances(moved)
        values.append(cost())
    chip.set_conductances(saved)
    return (values[0] - values[1]) / (2 * h)


def finite_difference(chip, x, target, k, i, j, h, **options):
    """Of the squared error at equilibrium."""
    return central_difference(
        chip, lambda: loss(chip, chip.settle(x, **options), target).mean(), k, i, j, h
    )


def centred_errors(chip, x, free, devices, truth, fractions, nudge):
    """Largest relative error of the centred EP estimate for ``devices`` against ``truth``,
    at each ``beta = fraction x`` the mean output node conductance; ``nudge(beta)`` gives
    ``settle``'s nudging arguments."""
    errors = []
    for fraction in fractions:
        beta = fraction * chip.circuit().node_conductance[-1].mean()
        plus = chip.settle(x, init=free, **nudge(beta))
        minus = chip.settle(x, init=free, **nudge(-beta))
        grad = ep_gradient(chip, x, minus, plus, beta, "ep-centred")
        estimate = np.array([grad.crossbars[k][i, j] for k, i, j in devices])
        errors.append(np.abs(estimate - truth).max() / np.abs(truth).max())
    return errors


def test_mean_squared_drops_is_per_device():
    rng = np.random.default_rng(0)
    rows, cols = rng.normal(size=(5, 3)), rng.normal(size=(5, 4))
    expected = np.mean((rows[:, :, None] - cols[:, None, :]) ** 2, axis=0)
    np.testing.assert_allclose(mean_squared_drops(rows, cols), expected, rtol=1e-12)


@pytest.mark.parametrize(
    ("diode", "offset"), [("shockley_1n4148", 0.0), ("ideal_diode", 0.0), ("ideal_diode", 0.5)]
)
def test_ep_matches_finite_differences(diode, offset):
    """Centred inputs (offset 0.5) drive the input devices from negative voltages too."""
    check_ep_orders(small_chip(diode, offset))


#: Devices of the small chip whose EP estimates are checked: (crossbar, row, column).
DEVICES = [(0, 1, 2), (0, 9, 4), (1, 3, 0), (2, 2, 3), (2, 3, 1)]


def check_ep_orders(chip) -> np.ndarray:
    """The EP estimates of :data:`DEVICES` against central finite differences of the loss
    on three random inputs, at two nudging strengths: the one-sided error falls as
    O(beta), the centred one as O(beta^2) (halving beta halves / quarters it). Returns the
    finite differences."""
    x = np.random.default_rng(1).uniform(size=(3, chip.n_inputs))
    target = chip.target_voltages(np.array([0, 1, 1]), 1.0)
    free = chip.settle(x)
    g_node = chip.circuit().node_conductance[-1].mean()
    truth = np.array(
        [
            finite_difference(chip, x, target, k, i, j, 1e-3 * chip.conductances[k][i, j])
            for k, i, j in DEVICES
        ]
    )
    errors = {}
    for algorithm in ("ep-one-sided", "ep-centred"):
        errors[algorithm] = []
        for fraction in (1e-2, 5e-3):
            beta = fraction * g_node
            plus = chip.settle(x, beta=beta, target=target, init=free)
            first = (
                free
                if algorithm == "ep-one-sided"
                else chip.settle(x, beta=-beta, target=target, init=free)
            )
            grad = ep_gradient(chip, x, first, plus, beta, algorithm)
            estimate = np.array([grad.crossbars[k][i, j] for k, i, j in DEVICES])
            errors[algorithm].append(np.abs(estimate - truth).max() / np.abs(truth).max())
    one, centred = errors["ep-one-sided"], errors["ep-centred"]
    assert one[0] < 0.1 and centred[0] < one[0] / 10
    assert one[1] / one[0] == pytest.approx(0.5, abs=0.1)
    assert centred[1] / centred[0] == pytest.approx(0.25, abs=0.08)
    return truth


def test_ep_with_grounded_nodes_matches_finite_differences():
    """Dropout grounds hidden nodes for all three phases of a step: EP then estimates the
    gradient of the loss of that circuit, and the devices between an input source and a
    grounded node get none (their drops are the same in every phase)."""
    chip = small_chip("ideal_diode", 0.5)
    x = np.random.default_rng(5).uniform(size=(3, chip.n_inputs))
    target = chip.target_voltages(np.array([1, 0, 1]), 1.0)
    grounded = [np.zeros(n, bool) for n in chip.layer_sizes]
    grounded[0][[1, 4]] = True
    grounded[1][2] = True
    options = {"grounded": grounded}
    # From sources to grounded nodes: (0, *, 1), (0, *, 4). Between a grounded node and a
    # free one: (1, 0, 2), (1, 1, 3), (2, 2, 3); the rest join free nodes.
    into = [(0, 3, 1), (0, 8, 4)]
    others = [(0, 2, 0), (1, 0, 2), (1, 1, 3), (1, 3, 0), (2, 2, 3), (2, 0, 1)]
    truth = np.array(
        [
            finite_difference(
                chip, x, target, k, i, j, 1e-3 * chip.conductances[k][i, j], **options
            )
            for k, i, j in into + others
        ]
    )
    scale = np.abs(truth).max()
    assert np.all(np.abs(truth[: len(into)]) < 1e-9 * scale)
    assert np.all(np.abs(truth[len(into) :]) > 1e-3 * scale)
    beta = 5e-3 * chip.circuit().node_conductance[-1].mean()
    free = chip.settle(x, **options)
    plus = chip.settle(x, beta=beta, target=target, init=free, **options)
    minus = chip.settle(x, beta=-beta, target=target, init=free, **options)
    grad = ep_gradient(chip, x, minus, plus, beta, "ep-centred")
    estimate = np.array([grad.crossbars[k][i, j] for k, i, j in into + others])
    assert np.abs(estimate - truth).max() < 1e-3 * scale
    np.testing.assert_array_equal(grad.crossbars[0][:, [1, 4]], 0.0)
    # Without the switches the same devices do get a gradient.
    whole = ep_gradient(
        chip,
        x,
        chip.settle(x, beta=-beta, target=target),
        chip.settle(x, beta=beta, target=target),
        beta,
        "ep-centred",
    )
    assert np.abs(whole.crossbars[0][:, [1, 4]]).max() > 1e-3 * scale


def test_update_moves_quantised_devices_by_whole_pulses():
    from neuroemu.models.update import apply_update
    from neuroemu.spec import load_card

    card = load_card(ROOT / "devices" / "rram_hfo2.yaml")
    step = card.level_step
    rng = np.random.default_rng(0)
    g = card.g_min + step * rng.integers(0, card.n_levels, size=1000)
    before = g.copy()
    delta = rng.normal(0, 3 * step, size=1000)
    apply_update(g, delta, card, rng)
    moved = (g - before) / step
    np.testing.assert_allclose(moved, np.round(moved), atol=1e-9)  # whole pulses
    inside = (before + np.rint(delta / step) * step >= card.g_min) & (
        before + np.rint(delta / step) * step <= card.g_max
    )
    np.testing.assert_allclose(moved[inside], np.rint(delta / step)[inside], atol=1e-9)
    assert g.min() >= card.g_min and g.max() <= card.g_max
    assert np.any(g == card.g_max) and np.any(g == card.g_min)  # clipped at both bounds


def test_stochastic_rounding_is_unbiased():
    from neuroemu.models.update import pulses

    rng = np.random.default_rng(1)
    counts = pulses(np.full(200_000, 0.3), 1.0, "stochastic", rng)
    assert set(np.unique(counts)) == {0.0, 1.0}
    # Mean 0.3 with standard error sqrt(0.21 / 2e5) ~ 1e-3.
    assert counts.mean() == pytest.approx(0.3, abs=5e-3)
    assert pulses(np.array([0.49, 0.51, -1.6]), 1.0, "deterministic", rng).tolist() == [0, 1, -2]


def test_analog_update_is_exact_and_bounded():
    from neuroemu.models.update import apply_update
    from neuroemu.spec import load_card

    card = load_card(ROOT / "devices" / "ideal_resistor.yaml")
    g = np.array([1e-6, 50e-6, 99e-6])
    apply_update(g, np.array([-2e-6, 1e-7, 5e-6]), card, np.random.default_rng(0))
    np.testing.assert_allclose(g, [0.0, 50.1e-6, 100e-6], rtol=1e-12)


def test_target_voltages():
    chip = small_chip("ideal_diode")  # differential readout, 2 classes
    target = chip.target_voltages(np.array([1, 0]), 0.4)
    np.testing.assert_array_equal(target, [[0, 0, 0.2, -0.2], [0.2, -0.2, 0, 0]])


PULSED = {"g_min": "1 uS", "g_max": "60 uS", "pulses": {"up": 0.01, "down": 0.03}}
SPREAD = {"g_min": "1 uS", "g_max": "60 uS", "n_levels": 200, "step_spread": 0.3}


@pytest.mark.parametrize("device", ["ideal_resistor", "rram_hfo2", PULSED, SPREAD])
@pytest.mark.parametrize("algorithm", ["ep-centred", "ep-one-sided"])
def test_fused_update_matches_reference(device, algorithm):
    """The one-pass kernel update equals gradient-then-device-model, written plainly."""
    from neuroemu.learning.ep import apply_ep_update
    from neuroemu.models.update import apply_update

    data = yaml.safe_load((ROOT / "chips" / "tiny.yaml").read_text())
    for layer in data["layers"]:
        layer["device"] = device
        layer["init"] = {"distribution": "uniform", "low": "2 uS", "high": "30 uS"}
    chip = neuroemu.Chip.from_dict(data, seed=5)
    x = np.random.default_rng(2).uniform(size=(4, chip.n_inputs)).astype(np.float32)
    target = chip.target_voltages(np.array([0, 1, 1, 0]), 1.0)
    beta = 1e-5
    free = chip.settle(x)
    plus = chip.settle(x, beta=beta, target=target)
    first = free if algorithm == "ep-one-sided" else chip.settle(x, beta=-beta, target=target)
    rates = [3e-6, 2e-6, 1e-6]  # large enough to move quantised devices by several pulses
    grad = ep_gradient(chip, x, first, plus, beta, algorithm)
    expected = [g.copy() for g in chip.conductances]
    expected_bias = [b.copy() for b in chip.bias_conductance]
    rng = np.random.default_rng(0)
    for k, crossbar in enumerate(chip.crossbars):
        card = crossbar.device
        spreads = (chip.crossbar_spread[k], chip.bias_spread[k])
        apply_update(expected[k], -rates[k] * grad.crossbars[k], card, rng, spreads[0])
        apply_update(expected_bias[k], -rates[k] * grad.biases[k], card, rng, spreads[1])
    before = [g.copy() for g in chip.conductances]
    apply_ep_update(chip, x, first, plus, beta, algorithm, rates, np.random.default_rng(0))
    for k in range(len(expected)):
        assert not np.array_equal(chip.conductances[k], before[k])  # something moved
        np.testing.assert_allclose(chip.conductances[k], expected[k], rtol=1e-9, atol=1e-18)
        np.testing.assert_allclose(
            chip.bias_conductance[k], expected_bias[k], rtol=1e-9, atol=1e-18
        )


def test_cross_entropy_nudge_matches_finite_differences():
    """EP with the injected cross-entropy current estimates dC'/dg, C' = T^2 CE."""
    from neuroemu.learning.ep import cross_entropy, cross_entropy_pull

    chip = small_chip("shockley_1n4148")
    x = np.random.default_rng(4).uniform(size=(3, chip.n_inputs))
    labels = np.array([1, 0, 1])
    temperature = 0.2

    def cost():
        return temperature**2 * cross_entropy(chip, chip.settle(x), labels, temperature).mean()

    devices = [(0, 2, 1), (1, 4, 2), (2, 1, 3)]
    truth = np.array(
        [
            central_difference(chip, cost, k, i, j, 1e-3 * chip.conductances[k][i, j])
            for k, i, j in devices
        ]
    )
    free = chip.settle(x)
    pull = cross_entropy_pull(chip, free, labels, temperature)
    # The linearised cost makes the centred estimate very accurate: large nudges show its
    # O(beta^2) error above the finite differences' own (about 1e-7 here).
    errors = centred_errors(
        chip, x, free, devices, truth, (0.4, 0.2), lambda beta: {"current": beta * pull}
    )
    assert errors[0] < 1e-3
    assert errors[1] / errors[0] == pytest.approx(0.25, abs=0.08)  # O(beta^2)


@pytest.mark.parametrize("diode", ["shockley_1n4148", "ideal_diode"])
def test_current_nudge_matches_finite_differences(diode):
    """``nudge: current``: the held current beta (y - V_free) estimates the squared error's
    gradient, off by O(beta) one-sided and O(beta^2) centred, like the conductance nudge."""
    from neuroemu.learning.ep import current_pull

    chip = small_chip(diode)
    x = np.random.default_rng(1).uniform(size=(3, chip.n_inputs))
    target = chip.target_voltages(np.array([0, 1, 1]), 1.0)
    free = chip.settle(x)
    pull = current_pull(free.output, target)
    np.testing.assert_allclose(pull, target - free.output, rtol=0, atol=0)
    g_node = chip.circuit().node_conductance[-1].mean()
    devices = [(0, 1, 2), (0, 9, 4), (1, 3, 0), (2, 2, 3), (2, 3, 1)]
    truth = np.array(
        [
            finite_difference(chip, x, target, k, i, j, 1e-3 * chip.conductances[k][i, j])
            for k, i, j in devices
        ]
    )
    one = []
    for fraction in (1e-2, 5e-3):
        beta = fraction * g_node
        plus = chip.settle(x, init=free, current=beta * pull)
        grad = ep_gradient(chip, x, free, plus, beta, "ep-one-sided")
        estimate = np.array([grad.crossbars[k][i, j] for k, i, j in devices])
        one.append(np.abs(estimate - truth).max() / np.abs(truth).max())
    centred = centred_errors(
        chip, x, free, devices, truth, (1e-2, 5e-3), lambda b: {"current": b * pull}
    )
    assert one[0] < 0.1 and centred[0] < one[0] / 10
    assert one[1] / one[0] == pytest.approx(0.5, abs=0.1)  # O(beta)
    if diode == "ideal_diode":
        # Piecewise linear: with the diodes' states unchanged, the voltages move linearly
        # with the injected current, each squared drop is quadratic in beta, and the
        # centred difference is exact. What is left is the finite differences' own error.
        assert max(centred) < 1e-5
    else:
        assert centred[1] / centred[0] == pytest.approx(0.25, abs=0.08)  # O(beta^2)


def test_a_current_nudge_keeps_an_operating_point_at_any_beta():
    """A conductance nudge of -beta larger than an output node's own conductance leaves the
    node no operating point and is refused; the same beta as a held current settles, with
    the circuit's KCL residual as small as the free phase's and the current balanced."""
    from neuroemu.errors import InputError
    from neuroemu.learning.ep import current_pull

    chip = small_chip("shockley_1n4148")
    x = np.random.default_rng(1).uniform(size=(3, chip.n_inputs))
    target = chip.target_voltages(np.array([0, 1, 1]), 1.0)
    free = chip.settle(x)
    beta = 2.0 * chip.circuit().node_conductance[-1].max()
    with pytest.raises(InputError, match="non-positive"):
        chip.settle(x, beta=-beta, target=target)
    pull = current_pull(free.output, target)
    minus = chip.settle(x, init=free, current=-beta * pull)
    assert np.all(minus.converged) and np.all(minus.relative_residual < 1e-9)
    # Kirchhoff at the output nodes: the current in from the hidden layer and the bias
    # equals the node's conductance times its voltage less the injected current.
    circuit = chip.circuit()
    g_out = circuit.node_conductance[-1]
    w = chip.conductances[-1]
    bias = chip.bias_conductance[-1]
    v_b = chip.spec.bias.voltage
    inflow = minus.voltages[-2] @ w + v_b * (bias[0] - bias[1])
    np.testing.assert_allclose(g_out * minus.output, inflow - beta * pull, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("loss_name", ["mse", "hinge"])
def test_training_step_with_a_current_nudge(loss_name):
    """``nudge: current``: every nudged phase of a step holds the current beta (y - V_free)
    (toward the hinge's sources for the hinge), and no conductance to a source."""
    from neuroemu.learning.ep import apply_ep_update, current_pull, hinge_targets
    from neuroemu.learning.train import epoch_rates, train_epoch
    from neuroemu.streams import stream

    data = yaml.safe_load((ROOT / "chips" / "tiny.yaml").read_text())
    data["inputs"]["offset"] = 0.5
    data["layers"][-1]["readout"] = "single"
    data["training"] = {
        "beta": "2 uS",
        "nudge": "current",
        "target_voltage": "0.1 V",
        "learning_rate": 20.0,
        "batch_size": 8,
        "loss": loss_name,
    }
    rng = np.random.default_rng(0)
    chip = neuroemu.Chip.from_dict(data, seed=4)
    assert chip.spec.training.nudging == "current"
    x, y = rng.uniform(size=(8, chip.n_inputs)), rng.integers(0, 4, 8)
    twin = neuroemu.Chip.from_dict(data, seed=4)
    order = stream(twin.seed, "epoch", 1).permutation(len(x))
    xb, yb = x[order], y[order]
    free = twin.settle(xb)
    sources = twin.target_voltages(yb, 0.1)
    if loss_name == "hinge":
        sources = hinge_targets(twin, free.output, sources)
    pull = current_pull(free.output, sources)
    plus = twin.settle(xb, current=2e-6 * pull, init=free)
    minus = twin.settle(xb, current=-2e-6 * pull, init=free)
    rates = epoch_rates(chip.spec.training, len(twin.crossbars), 1)
    pulses = stream(twin.seed, "epoch_pulses", 1)
    apply_ep_update(twin, xb, minus, plus, 2e-6, "ep-centred", rates, pulses)
    train_epoch(chip, x, y, chip.spec.training, 1)
    for ours, theirs in zip(chip.conductances, twin.conductances, strict=True):
        np.testing.assert_array_equal(ours, theirs)
    # ... which differs from the conductance nudge's step
    data["training"]["nudge"] = "conductance"
    other = neuroemu.Chip.from_dict(data, seed=4)
    train_epoch(other, x, y, other.spec.training, 1)
    assert not np.array_equal(other.conductances[0], chip.conductances[0])


def test_nudge_settings_that_do_not_fit_are_refused():
    from neuroemu.errors import SpecError

    data = yaml.safe_load((ROOT / "chips" / "tiny.yaml").read_text())
    data["training"] = {
        "beta": "2 uS",
        "nudge": "conductance",
        "target_voltage": "0.1 V",
        "learning_rate": 1.0,
        "loss": "cross-entropy",
    }
    with pytest.raises(SpecError, match="training: nudge: cross-entropy nudges by a current"):
        neuroemu.Chip.from_dict(data)
    data["training"]["nudge"] = None
    assert neuroemu.Chip.from_dict(data).spec.training.nudging == "current"
    leaky = yaml.safe_load((ROOT / "chips" / "leaky_tiny.yaml").read_text())
    leaky["training"] = {**data["training"], "loss": "mse", "nudge": "current"}
    with pytest.raises(SpecError, match=r"training\.nudge: is for resistive chips"):
        neuroemu.Chip.from_dict(leaky)


def test_hinge_nudge_matches_finite_differences():
    """Sources at the target for the output nodes on its wrong side, at their own free
    voltages for the rest: EP then estimates the gradient of the squared hinge, O(beta^2)
    centred, and a node on the right side of its target adds nothing."""
    from neuroemu.learning.ep import hinge_loss, hinge_targets

    data = yaml.safe_load((ROOT / "chips" / "tiny.yaml").read_text())
    data["inputs"].update(gain="10 V", offset=0.5)
    data["layers"][-1]["readout"] = "single"
    data["solver"] = {"tol": 1e-13}
    chip = neuroemu.Chip.from_dict(data, seed=4)
    x = np.random.default_rng(4).uniform(size=(3, chip.n_inputs))
    free = chip.settle(x)  # outputs from -0.1 to 0.2 V: nodes on both sides of 0 and 0.1 V
    target = chip.target_voltages(np.array([0, 3, 1]), 0.1)
    pulled = hinge_targets(chip, free.output, target)
    missed = pulled == target
    assert 0 < np.sum(missed & (target > 0)) and 0 < np.sum(missed & (target == 0))
    assert np.sum(~missed) >= 3  # nodes on the right side, held at their free voltage

    def cost():
        return hinge_loss(chip, chip.settle(x).output, target).mean()

    devices = [(0, 2, 1), (0, 7, 4), (1, 4, 2), (2, 1, 3), (2, 3, 0)]
    truth = np.array(
        [
            central_difference(chip, cost, k, i, j, 1e-3 * chip.conductances[k][i, j])
            for k, i, j in devices
        ]
    )
    # The squared error toward the same targets differs: the hinge's gradient is its own.
    squared = np.array(
        [
            finite_difference(chip, x, target, k, i, j, 1e-3 * chip.conductances[k][i, j])
            for k, i, j in devices
        ]
    )
    assert np.abs(squared - truth).max() > 0.1 * np.abs(truth).max()
    errors = centred_errors(
        chip, x, free, devices, truth, (1e-2, 5e-3), lambda b: {"beta": b, "target": pulled}
    )
    assert errors[0] < 2e-3
    assert errors[1] / errors[0] == pytest.approx(0.25, abs=0.08)  # O(beta^2)


def test_hinge_training_step_nudges_toward_the_hinge_targets():
    """A training step with ``loss: hinge`` settles the free phase, moves the sources of
    the nodes on the right side of their targets to their free voltages, and reports the
    free phase's squared hinge."""
    from neuroemu.learning.ep import apply_ep_update, hinge_loss, hinge_targets
    from neuroemu.learning.train import epoch_rates, train_epoch
    from neuroemu.streams import stream

    data = yaml.safe_load((ROOT / "chips" / "tiny.yaml").read_text())
    data["inputs"]["offset"] = 0.5
    data["layers"][-1]["readout"] = "single"
    data["training"] = {
        "beta": "2 uS",
        "target_voltage": "0.1 V",
        "learning_rate": 20.0,
        "batch_size": 8,
        "loss": "hinge",
    }
    rng = np.random.default_rng(0)
    chip = neuroemu.Chip.from_dict(data, seed=4)
    x, y = rng.uniform(size=(8, chip.n_inputs)), rng.integers(0, 4, 8)
    training = chip.spec.training
    twin = neuroemu.Chip.from_dict(data, seed=4)
    order = stream(twin.seed, "epoch", 1).permutation(len(x))
    xb, yb = x[order], y[order]
    free = twin.settle(xb)
    target = twin.target_voltages(yb, 0.1)
    pulled = hinge_targets(twin, free.output, target)
    assert 0 < np.sum(pulled != target) < pulled.size  # some nodes pulled, some not
    plus = twin.settle(xb, beta=2e-6, target=pulled, init=free)
    minus = twin.settle(xb, beta=-2e-6, target=pulled, init=free)
    rates = epoch_rates(training, len(twin.crossbars), 1)
    pulses = stream(twin.seed, "epoch_pulses", 1)
    apply_ep_update(twin, xb, minus, plus, 2e-6, "ep-centred", rates, pulses)

    report = train_epoch(chip, x, y, training, 1)
    assert report.train_loss == pytest.approx(hinge_loss(twin, free.output, target).mean())
    assert report.train_loss < loss(twin, free, target).mean()  # not the squared error
    for ours, theirs in zip(chip.conductances, twin.conductances, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-18)
    moved = [
        np.abs(g - h).max()
        for g, h in zip(
            chip.conductances, neuroemu.Chip.from_dict(data, seed=4).conductances, strict=True
        )
    ]
    assert min(moved) > 0


def test_dropout_grounds_each_samples_hidden_nodes_for_all_its_phases(monkeypatch):
    """Every settle of a training step gets the step's switches, drawn sample by sample
    from the epoch's own stream."""
    from neuroemu.learning.ep import dropout_masks
    from neuroemu.learning.train import train_epoch

    data = yaml.safe_load((ROOT / "chips" / "tiny.yaml").read_text())
    data["layers"][-1]["readout"] = "single"
    data["training"] = {
        "beta": "1 uS",
        "target_voltage": "0.1 V",
        "learning_rate": 0.1,
        "batch_size": 4,
        "dropout": 0.3,
    }
    chip = neuroemu.Chip.from_dict(data)
    rng = np.random.default_rng(0)
    x, y = rng.uniform(size=(10, chip.n_inputs)), rng.integers(0, 4, 10)
    seen = []
    settle = chip.settle

    def recording(*args, **kwargs):
        seen.append(kwargs.get("grounded"))
        return settle(*args, **kwargs)

    monkeypatch.setattr(chip, "settle", recording)
    train_epoch(chip, x, y, chip.spec.training, 2)
    assert len(seen) == 3 * 3  # batches of 4, 4 and 2; free, +beta, -beta
    draws = np.random.default_rng([chip.seed, 1, 2, 4])
    for step, batch in enumerate((4, 4, 2)):
        expected = dropout_masks(chip, 0.3, batch, draws)
        phases = seen[3 * step : 3 * step + 3]
        for masks in phases:
            assert masks is phases[0]  # one set of switches for the step's phases
            assert masks[-1] is None  # the output nodes are never grounded
            for ours, theirs, n in zip(
                masks[:-1], expected[:-1], chip.layer_sizes[:-1], strict=True
            ):
                assert ours.shape == (batch, n)
                np.testing.assert_array_equal(ours, theirs)
    # The draw is Bernoulli(rate) node by node and sample by sample.
    masks = dropout_masks(chip, 0.3, 20000, np.random.default_rng(1))
    assert [m.shape for m in masks[:-1]] == [(20000, 6), (20000, 4)]
    assert np.mean(masks[0]) == pytest.approx(0.3, abs=0.005)
    assert dropout_masks(chip, 0.0, 4, np.random.default_rng(1)) is None
