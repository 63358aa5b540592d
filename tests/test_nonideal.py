"""Device non-idealities against their formulas, with fixed seeds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from neuroemu.errors import InputError
from neuroemu.models.nonideal import drift_exponents, drifted, program, programming_sigma, read
from neuroemu.spec import load_card

ROOT = Path(__file__).resolve().parents[1]
PCM = load_card(ROOT / "devices" / "pcm.yaml")


def test_pcm_programming_sigma_is_the_polynomial():
    g = np.array([0.0, 5e-6, 12.5e-6, 25e-6])
    # Written out in uS for g_max = 25 uS: sigma = c0 + c1 (g/25) + c2 (g/25)^2.
    expected = np.array([0.26348 + 1.9650 * r - 1.1731 * r**2 for r in g / 25e-6]) * 1e-6
    np.testing.assert_allclose(programming_sigma(g, PCM), expected, rtol=1e-12)


def test_programming_noise_statistics():
    rng = np.random.default_rng(0)
    target = np.full(200_000, 12.5e-6)
    g = program(target, PCM, rng)
    sigma = programming_sigma(target[:1], PCM)[0]
    assert np.std(g) == pytest.approx(sigma, rel=0.01)  # 200k draws: std error 0.16 %
    assert np.mean(g) == pytest.approx(12.5e-6, abs=4 * sigma / np.sqrt(len(g)))
    assert g.min() >= PCM.g_min and g.max() <= PCM.g_max


def test_drift_exponent_recovered_by_log_log_fit():
    rng = np.random.default_rng(1)
    g0 = np.full(1000, 10e-6)
    nu = drift_exponents(g0.shape, PCM, rng)
    assert nu.min() >= 0.049 and nu.max() <= 0.1
    times = np.array([20.0, 60.0, 3600.0, 86400.0, 3.15e7])
    curves = np.array([drifted(g0, nu, t, PCM) for t in times])
    slopes = np.polyfit(np.log(times / 20.0), np.log(curves), 1)[0]
    np.testing.assert_allclose(-slopes, nu, rtol=1e-10)
    # Mean exponent near nu_mean (clipped at 0.049 below, so a little above 0.05).
    assert np.mean(nu) == pytest.approx(0.05, abs=0.003)
    np.testing.assert_array_equal(drifted(g0, nu, 1.0, PCM), g0)  # before t0: as programmed
    with pytest.raises(InputError, match="must be > 0 s"):
        drifted(g0, nu, 0.0, PCM)


def test_read_noise_statistics():
    rng = np.random.default_rng(2)
    g = np.full(200_000, 10e-6)
    reads = read(g, PCM, rng)
    assert np.std(reads) == pytest.approx(0.01 * 10e-6, rel=0.01)
    ideal = load_card(ROOT / "devices" / "ideal_resistor.yaml")
    np.testing.assert_array_equal(read(g[:10], ideal, rng), g[:10])


def small_chip(device: str):
    import yaml

    import neuroemu

    data = yaml.safe_load((ROOT / "chips" / "tiny.yaml").read_text())
    for layer in data["layers"]:
        layer["device"] = device
        layer["init"] = {"distribution": "uniform", "low": "1 uS", "high": "20 uS"}
    return neuroemu.Chip.from_dict(data, seed=4)


def test_infer_at_ideal_devices_does_not_age():
    from neuroemu.run.evaluate import evaluate, infer_at

    chip = small_chip("ideal_resistor")
    x = np.random.default_rng(0).uniform(size=(40, chip.n_inputs))
    y = np.arange(40) % chip.n_outputs
    plain = evaluate(chip, x, y)
    for report in infer_at(chip, [1.0, 3600.0, 3.15e7], x, y):
        np.testing.assert_array_equal(report.prediction, plain.prediction)
        assert report.mean_power == pytest.approx(plain.mean_power, rel=1e-12)


def test_infer_at_pcm_follows_the_drift_formula():
    from neuroemu.run.evaluate import infer_at

    chip = small_chip("pcm")
    before = [g.copy() for g in chip.conductances]
    x = np.random.default_rng(1).uniform(size=(30, chip.n_inputs))
    y = np.arange(30) % chip.n_outputs
    first = infer_at(chip, [1.0, 1e6], x, y)
    again = infer_at(chip, [1.0, 1e6], x, y)
    # The chip's seed fixes every draw; the chip itself is left as it was.
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a.prediction, b.prediction)
    for g, g0 in zip(chip.conductances, before, strict=True):
        np.testing.assert_array_equal(g, g0)
    # Drift lowers every conductance: t^-nu with nu in [0.049, 0.1] over 5e4 t0 divides them
    # by 1.7 to 3, and static power (sum g dV^2) falls with them, read noise aside.
    ratio = first[1].mean_power / first[0].mean_power
    assert (1e6 / 20) ** -0.1 * 0.9 < ratio < (1e6 / 20) ** -0.049 * 1.1


def test_stuck_devices_are_drawn_by_the_seed_and_never_move():
    import yaml

    import neuroemu
    from neuroemu.learning.train import train_epoch

    data = yaml.safe_load((ROOT / "chips" / "xs_784x100.yaml").read_text())
    data["layers"][0]["device"] = {
        "g_min": "1 uS",
        "g_max": "40 uS",
        "stuck_at_min": 0.02,
        "stuck_at_max": 0.01,
    }
    data["layers"][0]["init"]["low"] = "1 uS"
    chip = neuroemu.Chip.from_dict(data)
    low, high = chip.faults[0]
    n = low.size
    for mask, p in ((low, 0.02), (high, 0.01)):  # binomial: within 5 standard deviations
        assert abs(mask.sum() - p * n) < 5 * np.sqrt(n * p * (1 - p))
    assert not np.any(low & high) and chip.faults[1] is None
    g = chip.conductances[0]
    card = chip.crossbars[0].device
    assert np.all(g[low] == card.g_min) and np.all(g[high] == card.g_max)
    same = neuroemu.Chip.from_dict(data)
    np.testing.assert_array_equal(same.faults[0][0], low)
    # Faults come from their own stream: the healthy devices are those of a fault-free chip.
    data["layers"][0]["device"].update(stuck_at_min=0.0, stuck_at_max=0.0)
    healthy = neuroemu.Chip.from_dict(data)
    ok = ~(low | high)
    np.testing.assert_array_equal(healthy.conductances[0][ok], g[ok])
    d = neuroemu.load_dataset()
    train_epoch(chip, d.x_train[:64], d.y_train[:64], chip.spec.training, 1)
    g = chip.conductances[0]
    assert np.all(g[low] == card.g_min) and np.all(g[high] == card.g_max)
    assert not np.array_equal(g[ok], healthy.conductances[0][ok])  # the others learned


def test_input_dac_and_output_adc():
    import yaml

    import neuroemu

    data = yaml.safe_load((ROOT / "chips" / "tiny.yaml").read_text())
    plain = neuroemu.Chip.from_dict(data)
    data["inputs"]["dac_bits"] = 2
    data["layers"][-1].update(adc_bits=4, adc_range="0.5 V")
    chip = neuroemu.Chip.from_dict(data)
    x = np.random.default_rng(3).uniform(size=(20, chip.n_inputs))
    snapped = np.rint(x * 3) / 3  # 2 bits: levels 0, 1/3, 2/3, 1
    eq, reference = chip.settle(x), plain.settle(snapped)
    for a, b in zip(eq.voltages, reference.voltages, strict=True):
        np.testing.assert_array_equal(a, b)  # the circuit sees the DAC's levels
    step = 1.0 / 15  # 4 bits over -0.5 .. 0.5 V
    read = chip.adc(eq.output)
    np.testing.assert_allclose((read + 0.5) / step, np.rint((read + 0.5) / step), atol=1e-9)
    assert np.abs(read - np.clip(eq.output, -0.5, 0.5)).max() <= step / 2 + 1e-12
    np.testing.assert_allclose(eq.scores, read[:, 0::2] - read[:, 1::2])


def pulse_card(**pulses):
    from neuroemu.spec.cards import ResistorCard

    return ResistorCard(kind="resistor", name="p", g_min=1e-6, g_max=11e-6, pulses=pulses)


def test_soft_bound_pulses_follow_their_formula():
    from neuroemu.models.update import apply_update

    card = pulse_card(up=0.02, down=0.05)
    rng = np.random.default_rng(0)
    g = np.array([1e-6, 6e-6, 11e-6, 6e-6, 6e-6])
    # One nominal up pulse is 0.02 * span = 0.2 uS; one down pulse 0.05 * span = 0.5 uS.
    delta = np.array([0.2e-6, 0.2e-6, 0.2e-6, -0.5e-6, -1.5e-6])
    expected = g + np.array(
        [
            0.02 * (11e-6 - 1e-6),
            0.02 * (11e-6 - 6e-6),
            0.0,
            -0.05 * (6e-6 - 1e-6),
            -3 * 0.05 * (6e-6 - 1e-6),
        ]
    )
    apply_update(g, delta, card, rng)
    np.testing.assert_allclose(g, expected, rtol=1e-12)
    hard = pulse_card(up=0.02, down=0.05, soft_bounds=False)
    g = np.array([6e-6, 6e-6])
    apply_update(g, np.array([0.4e-6, -0.5e-6]), hard, rng)  # 2 up pulses, 1 down
    np.testing.assert_allclose(g, [6e-6 + 0.4e-6, 6e-6 - 0.5e-6], rtol=1e-12)


def test_cycle_to_cycle_noise_statistics():
    from neuroemu.models.update import pulse_plan

    card = pulse_card(up=0.01, down=0.01, soft_bounds=False, cycle_noise=0.3)
    rng = np.random.default_rng(1)
    g = np.full(200_000, 6e-6)
    change, _ = pulse_plan(g, np.full(g.shape, 4 * 0.1e-6), card, rng)  # 4 pulses of 0.1 uS
    assert change.mean() == pytest.approx(0.4e-6, rel=0.01)
    # Four independent pulses: standard deviation 0.3 * 0.1 uS * sqrt(4).
    assert change.std() == pytest.approx(0.3 * 0.1e-6 * 2, rel=0.01)


def test_pulses_and_levels_are_exclusive(tmp_path):
    from neuroemu.errors import SpecError

    path = tmp_path / "card.yaml"
    path.write_text(
        "kind: resistor\nname: x\ng_min: 0 S\ng_max: 1 uS\nn_levels: 4\npulses: {up: 0.1, down: 0.1}\n"
    )
    with pytest.raises(SpecError, match=r"n_levels .* or pulses"):
        load_card(path)


def test_device_to_device_step_spread():
    import yaml

    import neuroemu

    data = yaml.safe_load((ROOT / "chips" / "xs_784x100.yaml").read_text())
    data["layers"][0]["device"] = {
        "g_min": "0 uS",
        "g_max": "50 uS",
        "n_levels": 500,
        "step_spread": 0.2,
    }
    chip = neuroemu.Chip.from_dict(data)
    spread = chip.crossbar_spread[0]
    assert spread.shape == (1568, 100) and chip.crossbar_spread[1] is None
    assert spread.mean() == pytest.approx(1.0, abs=0.002)
    assert spread.std() == pytest.approx(0.2, rel=0.01)
    np.testing.assert_array_equal(neuroemu.Chip.from_dict(data).crossbar_spread[0], spread)
    # A device moves by its own step: one pulse of a device with scale s is s * step.
    from neuroemu.models.update import apply_update

    card = chip.crossbars[0].device
    g = np.full(5, 25e-6)
    apply_update(g, np.full(5, card.level_step), card, np.random.default_rng(0), spread[0, :5])
    np.testing.assert_allclose(g - 25e-6, card.level_step * spread[0, :5], rtol=1e-9)


def test_device_to_device_up_down_imbalance():
    """up_down_spread: b = s z per device from the chip's stream [seed, 0, 8]; a device's up
    steps are max(1 + b, 0), its down steps max(1 - b, 0) times the nominal one, in the
    chip's update (the kernel) as in the device model's formula."""
    import yaml

    import neuroemu
    from neuroemu.chip import DeviceUpdate
    from neuroemu.models.update import apply_update

    data = yaml.safe_load((ROOT / "chips" / "xs_784x100.yaml").read_text())
    data["layers"][0]["device"] = {"g_min": "0 uS", "g_max": "50 uS", "n_levels": 500,
                                   "up_down_spread": 0.1}  # fmt: skip
    chip = neuroemu.Chip.from_dict(data)
    tilt = chip._tilt[0]
    expected = 0.1 * np.random.default_rng([chip.seed, 0, 8]).standard_normal((1568, 100))
    np.testing.assert_array_equal(tilt, expected)
    assert chip._tilt[1] is None and chip.crossbar_spread[0] is None  # nothing else drawn
    card = chip.crossbars[0].device
    step = card.level_step
    for sign in (1.0, -1.0):  # three steps up, then three down
        before = chip.conductances[0].copy()
        cross = np.full((1568, 100), -sign * 1.5 * step)  # factor 1: a change of 3 steps
        chip.update_devices([DeviceUpdate(0, np.zeros(1568), np.zeros(100), cross, 1.0)],
                            np.random.default_rng(0))  # fmt: skip
        moved = chip.conductances[0] - before
        inside = (before > 4 * step) & (before < card.g_max - 4 * step)
        factor = np.maximum(1.0 + sign * tilt, 0.0)
        np.testing.assert_allclose(moved[inside], (3 * sign * step * factor)[inside], rtol=1e-9)
        g = before[0, :8].copy()
        apply_update(g, np.full(8, 3 * sign * step), card, np.random.default_rng(0),
                     tilt=tilt[0, :8])  # fmt: skip
        np.testing.assert_allclose(g, np.clip(before[0, :8] + moved[0, :8], 0, card.g_max),
                                   rtol=1e-12, atol=1e-18)  # fmt: skip


# --------------------------------------------------------------------------- range spread
RANGED = {"g_min": "2 uS", "g_max": "40 uS", "range_spread": 0.1}


def xs_data(device: dict) -> dict:
    import yaml

    data = yaml.safe_load((ROOT / "chips" / "xs_784x100.yaml").read_text())
    data["layers"][0]["device"] = device
    data["layers"][0]["init"] = {"distribution": "uniform", "low": "0 uS", "high": "45 uS"}
    return data


def test_range_spread_draws_follow_the_formula():
    """g_lo = g_min max(1 + s z1, 0), g_hi = g_max max(1 + s z2, 0), z1, z2 independent
    N(0, 1) per device, from the chip's seed on a stream of their own."""
    import neuroemu

    chip = neuroemu.Chip.from_dict(xs_data(RANGED))
    low, high = chip.crossbar_bounds[0]
    assert low.shape == high.shape == (1568, 100)
    assert chip.crossbar_bounds[1] is None and chip.bias_bounds[1] is None
    assert chip.bias_bounds[0][0].shape == (2, 100)  # the layer's bias devices spread too
    n = low.size
    for bound, nominal in ((low, 2e-6), (high, 40e-6)):
        ratio = bound / nominal
        # Mean within 5 standard errors (0.1 / sqrt(n)), sigma within 1 % (std error 0.18 %).
        assert abs(ratio.mean() - 1.0) < 5 * 0.1 / np.sqrt(n)
        assert ratio.std() == pytest.approx(0.1, rel=0.01)
    # Independent bounds: correlation within 5 / sqrt(n) of 0.
    assert abs(np.corrcoef(low.ravel(), high.ravel())[0, 1]) < 5 / np.sqrt(n)
    # The exact draw: default_rng([seed, 0, 5]), z1 then z2 for each array in order.
    card = chip.crossbars[0].device
    z = np.random.default_rng([0, 0, 5]).standard_normal((2, 1568, 100))
    np.testing.assert_array_equal(low, card.g_min * np.maximum(1 + 0.1 * z[0], 0))
    expected_high = np.maximum(card.g_max * np.maximum(1 + 0.1 * z[1], 0), low)
    np.testing.assert_array_equal(high, expected_high)
    again = neuroemu.Chip.from_dict(xs_data(RANGED))
    np.testing.assert_array_equal(again.crossbar_bounds[0][1], high)
    other = neuroemu.Chip.from_dict(xs_data(RANGED), seed=1)
    assert not np.array_equal(other.crossbar_bounds[0][1], high)


def test_range_spread_changes_no_other_draw_and_bounds_the_initial_state():
    import neuroemu

    spread = {**RANGED, "step_spread": 0.2, "stuck_at_min": 0.01, "n_levels": 39}
    plain = {k: v for k, v in spread.items() if k != "range_spread"}
    chip = neuroemu.Chip.from_dict(xs_data(spread))
    nominal = neuroemu.Chip.from_dict(xs_data(plain))
    np.testing.assert_array_equal(chip.crossbar_spread[0], nominal.crossbar_spread[0])
    np.testing.assert_array_equal(chip.faults[0][0], nominal.faults[0][0])
    np.testing.assert_array_equal(chip.conductances[1], nominal.conductances[1])
    low, high = chip.crossbar_bounds[0]
    g = chip.conductances[0]
    assert np.all(g >= low) and np.all(g <= high)
    # A continuous device holds the nominal programming clipped to its own range.
    continuous = neuroemu.Chip.from_dict(xs_data(RANGED))
    plain_continuous = neuroemu.Chip.from_dict(xs_data({"g_min": "2 uS", "g_max": "40 uS"}))
    lo, hi = continuous.crossbar_bounds[0]
    # Uniform 0-45 uS is clipped to the card first, then to the device.
    np.testing.assert_array_equal(
        continuous.conductances[0], np.clip(plain_continuous.conductances[0], lo, hi)
    )
    moved = continuous.conductances[0] - plain_continuous.conductances[0]
    assert np.sum(moved > 0) > 1000 and np.sum(moved < 0) > 1000  # raised to g_lo, cut to g_hi
    # A quantised device sits on its own levels g_lo + k step, or at its own g_hi.
    step = 1e-6
    healthy = ~chip.faults[0][0]
    k = (g - low) / step
    on_level = np.abs(k - np.rint(k)) < 1e-6
    assert np.all(on_level[healthy] | (g[healthy] == high[healthy]))
    # Stuck-at-g_min devices sit at their own g_min.
    stuck = chip.faults[0][0]
    np.testing.assert_array_equal(g[stuck], low[stuck])


@pytest.mark.parametrize(
    "device",
    [
        {"n_levels": 20},
        {"n_levels": 20, "step_spread": 0.3},
        {"pulses": {"up": 0.05, "down": 0.08}},
        {"pulses": {"up": 0.05, "down": 0.08, "soft_bounds": False}},
        {},
    ],
    ids=["levels", "levels-step-spread", "soft-pulses", "hard-pulses", "continuous"],
)
def test_updates_stay_in_each_devices_own_bounds(device):
    """The fused kernel with per-device bounds equals its numpy reference, and no update
    takes a device out of its own range, however large."""
    import neuroemu
    from neuroemu.kernels.update import ep_update
    from neuroemu.models.update import apply_update

    chip = neuroemu.Chip.from_dict(xs_data({**RANGED, "range_spread": 0.3, **device}))
    card = chip.crossbars[0].device
    low, high = chip.crossbar_bounds[0]
    spread = chip.crossbar_spread[0]
    rng = np.random.default_rng(7)
    g = chip.conductances[0].copy()  # the kernel moves this array, not the chip
    reference = g.copy()
    pulses = None
    if card.pulses is not None:
        p = card.pulses
        pulses = (p.up, p.down, p.soft_bounds, p.cycle_noise)
    for scale in (3e-6, 30e-6, 300e-6):  # a few steps, then far past either bound
        cross = rng.normal(0.0, scale, g.shape)
        zeros_r, zeros_c = np.zeros(g.shape[0]), np.zeros(g.shape[1])
        ep_update(
            g, zeros_r, zeros_c, cross, -0.5, card.g_min, card.g_max, card.level_step,
            False, -1, pulses, spread, (low, high),
        )  # fmt: skip
        apply_update(reference, cross, card, rng, spread, (low, high))
        np.testing.assert_allclose(g, reference, rtol=1e-12, atol=1e-18)
        assert np.all(g >= low) and np.all(g <= high)
    if card.pulses is None or not card.pulses.soft_bounds:  # soft bounds approach them
        assert np.sum(g == high) > 1000 and np.sum(g == low) > 1000
        assert np.any(high > card.g_max) and np.any(g > card.g_max)  # not the card's bounds
        assert np.any(g < card.g_min)


def test_soft_bounds_saturate_at_the_devices_own_bounds():
    """One up pulse adds up (g_max - g_min) (g_hi - G) / (g_hi - g_lo): the primer's soft
    bound with the device's own range; a device without range does not move."""
    from neuroemu.models.update import apply_update

    card = pulse_card(up=0.1, down=0.1)  # 1-11 uS: nominal pulse 1 uS
    low = np.array([2e-6, 1e-6, 5e-6])
    high = np.array([8e-6, 13e-6, 5e-6])
    g = np.array([5e-6, 1e-6, 5e-6])
    apply_update(g, np.full(3, 1e-6), card, np.random.default_rng(0), bounds=(low, high))
    expected = [5e-6 + 1e-6 * 3 / 6, 1e-6 + 1e-6 * 12 / 12, 5e-6]
    np.testing.assert_allclose(g, expected, rtol=1e-12)
    for _ in range(300):  # many up pulses: G approaches the device's own g_hi
        apply_update(g, np.full(3, 1e-6), card, np.random.default_rng(0), bounds=(low, high))
    np.testing.assert_allclose(g, high, rtol=1e-9)


def test_programming_noise_clips_to_each_devices_own_range():
    rng = np.random.default_rng(3)
    target = np.full(100_000, 12.5e-6)
    low = np.full(target.shape, 11e-6)
    high = np.full(target.shape, 13e-6)
    g = program(target, PCM, rng, bounds=(low, high))
    assert g.min() == 11e-6 and g.max() == 13e-6  # sigma about 1 uS: both bounds hit
    inside = (g > 11e-6) & (g < 13e-6)
    unclipped = program(target, PCM, np.random.default_rng(3))
    np.testing.assert_array_equal(g[inside], unclipped[inside])


def test_training_keeps_devices_in_their_own_bounds():
    import neuroemu
    from neuroemu.learning.train import train_epoch

    chip = neuroemu.Chip.from_dict(xs_data({**RANGED, "range_spread": 0.3, "n_levels": 64}))
    d = neuroemu.load_dataset()
    training = chip.spec.training.model_copy(update={"learning_rate": 50.0})
    train_epoch(chip, d.x_train[:64], d.y_train[:64], training, 1)
    for g, bounds in zip(chip.conductances, chip.crossbar_bounds, strict=True):
        if bounds is not None:
            assert np.all(g >= bounds[0]) and np.all(g <= bounds[1])


# --------------------------------------------------------------------------- levels
@pytest.mark.parametrize("rounding", ["deterministic", "stochastic"])
def test_a_quantised_device_has_exactly_n_levels_states(rounding):
    """Every conductance a device with n_levels ever holds, through programming and many
    updates of the fused kernel, is one of g_min + k (g_max - g_min) / (n_levels - 1),
    and every one of those states is reached."""
    import neuroemu
    from neuroemu.chip import DeviceUpdate

    device = {"g_min": "1 uS", "g_max": "8 uS", "n_levels": 8, "rounding": rounding}
    chip = neuroemu.Chip.from_dict(xs_data(device))
    card = chip.crossbars[0].device
    step = card.level_step
    assert step == pytest.approx(1e-6)
    g = chip.conductances[0]
    seen = {float(v) for v in np.unique(g)}
    rng = np.random.default_rng(11)
    for _ in range(20):  # changes of -3..3 steps (fractions included), then clipped
        cross = rng.uniform(-3.5, 3.5, g.shape) * step
        zeros_r, zeros_c = np.zeros(g.shape[0]), np.zeros(g.shape[1])
        chip.update_devices([DeviceUpdate(0, zeros_r, zeros_c, cross, -0.5)], rng)
        seen.update(float(v) for v in np.unique(g))
    levels = np.array(sorted(seen))
    k = (levels - card.g_min) / step
    np.testing.assert_allclose(k, np.rint(k), atol=1e-9)  # on the grid
    distinct = np.unique(np.rint(k))
    np.testing.assert_array_equal(distinct, np.arange(8))  # exactly the 8 levels


# --------------------------------------------------------------------------- read noise
NOISY = {
    "g_min": "0 uS",
    "g_max": "25 uS",
    "read_noise": {"relative": 0.05, "absolute": "0.2 uS"},
    "stuck_at_max": 0.01,
}


def test_read_arrays_draw_once_per_device_and_read():
    """Each read sees G + (relative G + absolute) z with z ~ N(0, 1) independent for every
    device and every read (a window of the chip's pool of draws at an offset drawn from the
    generator passed in); stuck devices read their stuck value, arrays of cards without read
    noise are the chip's own, and the chip is unchanged."""
    import neuroemu

    data = xs_data(NOISY)
    data["layers"][0]["init"] = {"distribution": "uniform", "low": "5 uS", "high": "20 uS"}
    chip = neuroemu.Chip.from_dict(data)
    assert chip.reads_noisily
    before = [g.copy() for g in chip.conductances]
    rng = np.random.default_rng(5)
    first_x, first_b = chip.read_arrays(rng)
    second_x, _ = chip.read_arrays(rng)
    g = chip.conductances[0]
    stuck = chip.faults[0][1]
    sigma = 0.05 * g + 0.2e-6
    residuals = [(read[0] - g)[~stuck] / sigma[~stuck] for read in (first_x, second_x)]
    n = residuals[0].size
    for z in residuals:  # standard normal: mean within 5 standard errors, sigma within 1 %
        assert abs(z.mean()) < 5 / np.sqrt(n)
        assert z.std() == pytest.approx(1.0, rel=0.01)
    # A fresh draw per read: the two reads' noises are uncorrelated.
    assert abs(np.corrcoef(residuals[0], residuals[1])[0, 1]) < 5 / np.sqrt(n)
    np.testing.assert_array_equal(first_x[0][stuck], chip.crossbars[0].device.g_max)
    assert first_x[1] is chip.conductances[1]  # ideal output devices: no copy, no draw
    assert not np.array_equal(first_b[0], chip.bias_conductance[0])  # bias devices read too
    assert first_b[1] is chip.bias_conductance[1]
    for g_now, g_then in zip(chip.conductances, before, strict=True):
        np.testing.assert_array_equal(g_now, g_then)
    # The generator fixes the read: the same seed reads the same conductances.
    again, _ = chip.read_arrays(np.random.default_rng(5))
    np.testing.assert_array_equal(again[0], first_x[0])
    # One offset per noisy array, in device_arrays() order: the input crossbar first, its
    # draws the pool's from there on (the pool: POOL_SIZE float32 normals of [seed, 0, 7]).
    from neuroemu.models.nonideal import POOL_SIZE

    start = int(np.random.default_rng(5).integers(POOL_SIZE - g.size + 1))
    pool = np.random.default_rng([chip.seed, 0, 7]).standard_normal(POOL_SIZE, dtype=np.float32)
    z = pool[start : start + g.size].reshape(g.shape).astype(np.float64)
    expected = np.maximum(g + sigma * z, 0.0)
    np.testing.assert_array_equal(first_x[0][~stuck], expected[~stuck])
    quiet = neuroemu.Chip.from_yaml(ROOT / "chips" / "xs_784x100.yaml")
    assert not quiet.reads_noisily
    state = rng.bit_generator.state
    crossbars, _ = quiet.read_arrays(rng)
    assert rng.bit_generator.state == state
    assert all(a is b for a, b in zip(crossbars, quiet.conductances, strict=True))


def test_a_settle_on_one_read_is_the_settle_of_the_read_conductances():
    """How the engine uses a read: the chip's circuit built from the read arrays. Relative
    read noise of 5 % moves the operating point, and the same read gives the same point."""
    import neuroemu

    data = xs_data({"g_min": "0 uS", "g_max": "25 uS", "read_noise": {"relative": 0.05}})
    chip = neuroemu.Chip.from_dict(data)
    x = neuroemu.load_dataset().x_test[:16]
    from neuroemu.engine.settle import settle

    crossbars, biases = chip.read_arrays(np.random.default_rng(0))
    circuit = chip._lay_out(np.dtype(np.float64), crossbars, biases)  # what the read sees
    seen = settle(circuit, chip.drive(x), chip.scores, tol=1e-10, max_sweeps=10_000)
    with chip.reading(np.random.default_rng(0)):  # the same read, by the chip
        noisy = chip.settle(x)
    for ours, theirs in zip(noisy.voltages, seen.voltages, strict=True):
        np.testing.assert_array_equal(ours, theirs)
    exact = chip.settle(x)
    drop = np.abs(noisy.output - exact.output).max()
    assert 1e-4 < drop < 0.1  # V: a visible change, far from a broken circuit


def test_reads_are_fresh_per_batch_shared_within_a_step_and_seeded():
    """While reading, settles see noisy arrays: the same read until next_read(), a new one
    after; outside the block the chip reads exactly; evaluate is reproducible."""
    import neuroemu
    from neuroemu.run.evaluate import evaluate

    chip = neuroemu.Chip.from_dict(xs_data(NOISY))
    x = neuroemu.load_dataset("mnist5k").x_test[:4]
    exact = chip.settle(x).voltages[-1]
    with chip.reading(np.random.default_rng(1)):
        first = chip.settle(x).voltages[-1]
        same = chip.settle(x).voltages[-1]
        chip.next_read()
        fresh = chip.settle(x).voltages[-1]
    np.testing.assert_array_equal(first, same)  # one read, two settles
    assert np.abs(first - exact).max() > 1e-6  # read noise moved the outputs
    assert np.abs(fresh - first).max() > 1e-6  # a new read, new noise
    np.testing.assert_array_equal(chip.settle(x).voltages[-1], exact)  # exact again
    data = neuroemu.load_dataset("mnist5k").subset(10, 100)
    a = evaluate(chip, data.x_test, data.y_test, batch_size=20)
    b = evaluate(chip, data.x_test, data.y_test, batch_size=20)
    np.testing.assert_array_equal(a.prediction, b.prediction)  # seeded: [seed, 6]
    quiet = neuroemu.Chip.from_yaml(ROOT / "chips" / "xs_784x100.yaml")
    with quiet.reading(np.random.default_rng(1)):
        assert quiet.reads is None  # no card reads noisily: nothing to draw


def test_leaky_chips_read_their_arrays_too():
    import neuroemu
    from neuroemu.spec.loader import read_yaml

    data, _ = read_yaml(ROOT / "chips" / "leaky_tiny.yaml")
    data["layers"][0]["device"] = {
        "g_min": "0 uS",
        "g_max": "100 uS",
        "read_noise": {"relative": 0.05},
    }
    chip = neuroemu.Chip.from_dict(data)
    x = np.random.default_rng(0).random((3, 6))
    exact = chip.settle(x).voltages[-1]
    with chip.reading(np.random.default_rng(2)):
        noisy = chip.settle(x).voltages[-1]
    assert np.abs(noisy - exact).max() > 1e-4
    np.testing.assert_array_equal(chip.settle(x).voltages[-1], exact)


def test_fused_read_kernel_is_the_read_formula():
    from neuroemu.kernels.read import noisy_read

    rng = np.random.default_rng(9)
    g = rng.uniform(0, 25e-6, (30, 40))
    z = rng.standard_normal((30, 40)).astype(np.float32)
    out = np.empty_like(g)
    noisy_read(g, z, 0.05, 0.5e-6, out)
    expected = np.maximum(g + (0.05 * g + 0.5e-6) * z.astype(np.float64), 0.0)  # the formula
    np.testing.assert_allclose(out, expected, rtol=1e-15, atol=1e-21)
    assert (out == 0).any()  # some reads would be negative and are clipped at 0 S
    with pytest.raises(ValueError, match="shapes do not fit"):
        noisy_read(g, z[:, :3], 0.05, 0.0, out)


def test_fused_read_sets_stuck_devices_in_the_same_pass():
    from neuroemu.kernels.read import noisy_read

    rng = np.random.default_rng(10)
    g = rng.uniform(0, 25e-6, (20, 30))
    z = rng.standard_normal((20, 30))
    index = rng.choice(g.size, 37, replace=False)
    value = rng.uniform(0, 100e-6, 37)
    out = noisy_read(g, z, 0.05, 0.0, np.empty_like(g), (index, value))
    expected = np.maximum(g + 0.05 * g * z, 0.0)
    expected.reshape(-1)[index] = value  # a stuck device reads its stuck conductance
    np.testing.assert_allclose(out, expected, rtol=1e-15, atol=0)
    with pytest.raises(ValueError, match="outside the array"):
        noisy_read(g, z, 0.05, 0.0, out, (np.array([g.size]), np.array([1e-6])))


def test_a_read_of_a_faulty_chip_reads_stuck_devices_at_their_value():
    import neuroemu

    card = {"g_min": "1 uS", "g_max": "40 uS", "range_spread": 0.2, "stuck_at_min": 0.05}
    card.update(stuck_at_max=0.05, read_noise={"relative": 0.05})
    chip = neuroemu.Chip.from_dict(xs_data(card))
    crossbars, _ = chip.read_arrays(np.random.default_rng(3))
    low, high = chip.faults[0]
    g_lo, g_hi = chip.crossbar_bounds[0]
    np.testing.assert_array_equal(crossbars[0][low], g_lo[low])
    np.testing.assert_array_equal(crossbars[0][high], g_hi[high])
    free = ~(low | high)
    ratio = crossbars[0][free] / chip.conductances[0][free] - 1.0
    assert np.std(ratio) == pytest.approx(0.05, rel=0.02)  # the others read with noise
