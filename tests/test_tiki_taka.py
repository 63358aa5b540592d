"""Tiki-Taka (training.scheme: tiki-taka; Gokmen & Haensch 2020): the symmetry point of a
device against its pulses, the fast and slow arrays' update against a slow numpy reference
built on the device model, the chip state and a resumed run, the spec's checks, and a chip
that learns through it."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

import neuroemu
from neuroemu.chip import DeviceUpdate
from neuroemu.errors import InputError, SpecError
from neuroemu.models.update import apply_update, pulse_plan, symmetry_point, up_down_tilt
from neuroemu.spec.cards import ResistorCard

from .conftest import ROOT
from .test_simulate import untimed
from .test_update_counts import tiny_levels, two_classes, write_idx

SOFT = {"up": 0.02, "down": 0.03, "soft_bounds": True, "cycle_noise": 0.0}


def soft_card(**extra) -> ResistorCard:
    """A soft-bound pulsed card with unequal up and down pulses, rounding to the nearest."""
    return ResistorCard(kind="resistor", name="soft", g_min=1e-6, g_max=26e-6, pulses=SOFT, **extra)


def test_one_up_and_one_down_pulse_cancel_at_the_symmetry_point():
    """At G* one up pulse and one down pulse leave a device where it was, for every
    device's own imbalance and range; above G* a pair of pulses moves it down, below up."""
    card = soft_card(up_down_spread=0.3, range_spread=0.2)
    rng = np.random.default_rng(0)
    shape = (50,)
    tilt = up_down_tilt(shape, card, rng)
    low = card.g_min * np.maximum(1 + 0.2 * rng.standard_normal(shape), 0)
    high = np.maximum(card.g_max * np.maximum(1 + 0.2 * rng.standard_normal(shape), 0), low)
    star = symmetry_point(shape, card, (low, high), tilt)
    assert np.all((star >= low) & (star <= high))

    def pair_of_pulses(g):
        one = card.pulses.up * (card.g_max - card.g_min)
        up, _ = pulse_plan(g, np.full(shape, one), card, rng, bounds=(low, high), tilt=tilt)
        down, _ = pulse_plan(g, np.full(shape, -one), card, rng, bounds=(low, high), tilt=tilt)
        return up + down  # the first-order change of one pulse each way from g

    np.testing.assert_allclose(pair_of_pulses(star), 0.0, atol=1e-20)
    width = high - low
    assert np.all(pair_of_pulses(star + 0.1 * width)[width > 0] < 0)
    assert np.all(pair_of_pulses(star - 0.1 * width)[width > 0] > 0)
    # The nominal device: (up g_max + down g_min) / (up + down).
    nominal = symmetry_point((1,), soft_card(), None, None)
    assert nominal[0] == pytest.approx((0.02 * 26e-6 + 0.03 * 1e-6) / 0.05, rel=1e-14)
    levels = ResistorCard(kind="resistor", name="l", g_min=1e-6, g_max=26e-6, n_levels=6)
    assert symmetry_point((1,), levels, None, None)[0] == pytest.approx(11e-6)  # a level


def one_layer(device) -> dict:
    """The tiny chip's output layer alone, trained by Tiki-Taka."""
    data = tiny_levels("deterministic", learning_rate=300.0)
    data["layers"] = data["layers"][-1:]
    data["layers"][0]["device"] = device
    data["layers"][0]["init"] = {"distribution": "uniform", "low": "2 uS", "high": "8 uS"}
    data["bias"]["init"] = {"distribution": "uniform", "low": "2 uS", "high": "8 uS"}
    data["training"]["scheme"] = "tiki-taka"
    data["training"]["transfer_rate"] = 0.2
    return data


SOFT_YAML = {
    "g_min": "1 uS",
    "g_max": "26 uS",
    "pulses": {"up": 0.02, "down": 0.03, "soft_bounds": True},
    "up_down_spread": 0.2,
}


@pytest.mark.parametrize("momentum", [0.0, 0.5])
def test_the_fast_and_slow_arrays_move_as_the_device_model_says(momentum):
    """Three updates: each moves the fast devices (from their symmetry points) by the
    change asked, through the card's model with the fast devices' own imbalance, then the
    slow devices by transfer_rate times the fast devices' distance from G*, with their own;
    against the numpy device model step by step."""
    chip = neuroemu.Chip.from_dict(one_layer(SOFT_YAML))
    card = chip.device_arrays()[0][1]
    rng = np.random.default_rng(5)
    slow = [np.array(g) for g, _ in chip.device_arrays()]
    fast = [f.reference.copy() for f in chip.fast_devices]
    velocity = [np.zeros_like(g) for g in slow]
    tilts = chip._tilt  # the slow devices' own imbalance, as the chip drew it
    for _ in range(3):
        updates = []
        for k, g in enumerate(slow):
            rows, cols = g.shape
            u = DeviceUpdate(
                k, rng.normal(size=rows), rng.normal(size=cols), rng.normal(size=(rows, cols)), 4e-6
            )
            updates.append(u)
            delta = u.factor * (u.rows[:, None] + u.cols[None, :] - 2 * u.cross)
            velocity[k] = momentum * velocity[k] + delta
            own = chip.fast_devices[k]
            apply_update(fast[k], velocity[k] if momentum else delta, card, None, tilt=own.tilt)
            transfer = 0.2 * (fast[k] - own.reference)
            apply_update(slow[k], transfer, card, None, tilt=tilts[k])
        chip.update_devices(updates, np.random.default_rng(0), momentum, transfer=0.2)
        state = chip.state()
        for k in range(len(slow)):
            np.testing.assert_allclose(state.arrays[k], slow[k], rtol=0, atol=1e-18)
            expected = fast[k] - chip.fast_devices[k].reference
            np.testing.assert_allclose(state.fast[k], expected, rtol=0, atol=1e-18)
    counts = chip.update_counts
    assert sum(counts.pulses) > 0
    assert counts.pulses_per_device == sum(counts.pulses) / (2 * chip.n_devices)
    # Each transfer reads every fast device once; the card gives no read energy.
    assert sum(counts.reads) == 3 * chip.n_devices
    assert counts.reads_per_device == 0.5 * 3
    assert counts.read_energy is None


def test_the_transfers_reads_cost_the_cards_read_energy():
    chip = neuroemu.Chip.from_dict(one_layer({**SOFT_YAML, "read_energy": "3 pJ"}))
    rng = np.random.default_rng(2)
    updates = [
        DeviceUpdate(k, rng.normal(size=g.shape[0]), rng.normal(size=g.shape[1]),
                     rng.normal(size=g.shape), 4e-6)
        for k, (g, _) in enumerate(chip.device_arrays())
    ]  # fmt: skip
    for _ in range(2):
        chip.update_devices(updates, np.random.default_rng(0), transfer=0.2)
    counts = chip.take_update_counts()
    assert counts.read_energy == pytest.approx(2 * chip.n_devices * 3e-12, rel=1e-12)
    assert chip.update_counts.reads == (0,) * len(counts.reads)  # taken: counting anew


def test_the_fast_devices_are_drawn_apart_from_the_slow_ones():
    """The fast devices' imbalance comes from their own stream: the slow devices' draws
    are those of the chip trained directly."""
    tiki = neuroemu.Chip.from_dict(one_layer(SOFT_YAML))
    direct_data = one_layer(SOFT_YAML)
    direct_data["training"]["scheme"] = "direct"
    direct = neuroemu.Chip.from_dict(direct_data)
    for a, b in zip(tiki._tilt, direct._tilt, strict=True):
        np.testing.assert_array_equal(a, b)
    for own, slow in zip(tiki.fast_devices, tiki._tilt, strict=True):
        assert own.tilt.shape == slow.shape and not np.allclose(own.tilt, slow)


def test_a_chip_learns_by_tiki_taka_and_resumes(tmp_path):
    """A soft-bound card with device-to-device imbalance learns two classes by Tiki-Taka;
    the fast arrays are part of the run's state, so a resumed run is the uninterrupted
    one."""
    x, y = two_classes(400)
    write_idx(tmp_path / "two", x, y, n_test=100)
    data = tmp_path / "two"
    run = neuroemu.simulate(neuroemu.Chip.from_dict(one_layer(SOFT_YAML)), dataset=data,
                            epochs=3, out=tmp_path / "run.h5")  # fmt: skip
    assert run.history[0]["error"] > 0.3
    assert run.history[3]["error"] < 0.1
    first = neuroemu.simulate(neuroemu.Chip.from_dict(one_layer(SOFT_YAML)), dataset=data,
                              epochs=1, out=tmp_path / "resumed.h5")  # fmt: skip
    assert untimed(first.history[1]) == untimed(run.history[1])
    resumed = neuroemu.simulate(neuroemu.Chip.from_dict(one_layer(SOFT_YAML)), dataset=data,
                                epochs=3, resume=tmp_path / "resumed.h5")  # fmt: skip
    assert untimed(resumed.history) == untimed(run.history)


def test_tiki_taka_refuses_what_it_cannot_train():
    chip = neuroemu.Chip.from_dict(one_layer(SOFT_YAML))
    with pytest.raises(InputError, match=r"^transfer: expected a transfer rate in \(0, 1\]"):
        chip.update_devices([], np.random.default_rng(0), transfer=1.5)
    with pytest.raises(InputError, match=r"^transfer: Tiki-Taka takes no pairs or accumulate"):
        chip.update_devices([], np.random.default_rng(0), transfer=0.1, accumulate=1.0)
    data = one_layer(SOFT_YAML)
    data["training"]["transfer_rate"] = 0
    with pytest.raises(SpecError, match="transfer_rate"):
        neuroemu.Chip.from_dict(data)
    spec = yaml.safe_load((ROOT / "chips" / "leaky_784x500.yaml").read_text())
    spec["training"]["scheme"] = "tiki-taka"
    with pytest.raises(SpecError, match="tiki-taka trains a resistive chip"):
        neuroemu.Chip.from_dict(spec)
