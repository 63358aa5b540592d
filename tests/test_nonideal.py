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
    from neuroemu.engine.aging import infer_at
    from neuroemu.engine.inference import evaluate

    chip = small_chip("ideal_resistor")
    x = np.random.default_rng(0).uniform(size=(40, chip.n_inputs))
    y = np.arange(40) % chip.n_outputs
    plain = evaluate(chip, x, y)
    for report in infer_at(chip, [1.0, 3600.0, 3.15e7], x, y):
        np.testing.assert_array_equal(report.prediction, plain.prediction)
        assert report.mean_power == pytest.approx(plain.mean_power, rel=1e-12)


def test_infer_at_pcm_follows_the_drift_formula():
    from neuroemu.engine.aging import infer_at

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
    from neuroemu.spec.models import ResistorCard

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
    from neuroemu.models.update import pulse_change

    card = pulse_card(up=0.01, down=0.01, soft_bounds=False, cycle_noise=0.3)
    rng = np.random.default_rng(1)
    g = np.full(200_000, 6e-6)
    change = pulse_change(g, np.full(g.shape, 4 * 0.1e-6), card, rng)  # 4 pulses of 0.1 uS
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
