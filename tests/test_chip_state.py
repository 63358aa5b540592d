"""The chip owns its state: read-only views, checked writes, caches kept in step, state saved
and restored, devices programmed once and drifting."""

from __future__ import annotations

import copy
import pickle
from pathlib import Path

import numpy as np
import pytest
import yaml

import neuroemu
from neuroemu.chip import ChipState, DeviceUpdate
from neuroemu.errors import InputError

ROOT = Path(__file__).resolve().parents[1]


def tiny() -> neuroemu.Chip:
    return neuroemu.Chip.from_yaml(ROOT / "chips" / "tiny.yaml")


def inputs(chip, n=5, seed=0):
    return np.random.default_rng(seed).uniform(size=(n, chip.n_inputs))


def test_conductances_are_read_only_views_with_a_clear_error():
    chip = tiny()
    g = chip.conductances[0]
    assert not g.flags.writeable and g.base is not None  # a view of the chip's own array
    for write in (
        lambda: g.__setitem__((0, 0), 1e-6),
        lambda: g.__imul__(3),
        lambda: np.multiply(g, 3, out=g),
        lambda: chip.bias_conductance[0].__iadd__(1e-6),
        lambda: chip.crossbars[1].conductance.__setitem__(Ellipsis, 0.0),
    ):
        with pytest.raises(InputError, match="set_conductances"):
            write()
    with pytest.raises(TypeError):
        chip.conductances[1] = np.zeros_like(chip.conductances[1])  # a tuple: no silent no-op
    with pytest.raises(ValueError):  # numpy's own guard holds too
        np.copyto(g, 0.0)
    # Reading works as on any array, and arithmetic and copies are ordinary arrays.
    doubled = 2 * g
    assert type(doubled) is np.ndarray and doubled.flags.writeable
    mine = g.copy()
    mine[0, 0] = 5e-6
    assert type(mine) is np.ndarray and g[0, 0] != 5e-6
    assert float(g.sum()) == pytest.approx(float(np.asarray(g).sum()))


def test_set_conductances_drops_every_cache():
    """Scaling the conductances (the case a stale cache once got wrong) settles exactly as a
    chip built with those conductances, residual included."""
    chip = tiny()
    x = inputs(chip)
    chip.settle(x)  # lays out and caches the circuit
    scaled = [1.8 * g for g in chip.conductances]  # within the devices' 0-100 uS
    chip.set_conductances(scaled)
    fresh = tiny()
    fresh.set_conductances(scaled)
    ours, theirs = chip.settle(x), fresh.settle(x)
    for a, b in zip(ours.voltages, theirs.voltages, strict=True):
        np.testing.assert_array_equal(a, b)
    assert ours.converged and ours.relative_residual.max() < 1e-9
    before = tiny().settle(x)
    assert np.abs(ours.output - before.output).max() > 1e-3  # the change is seen


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda gs: gs[:2], "expected 3 arrays, got 2"),
        (
            lambda gs: [gs[0][:, :3], *gs[1:]],
            r"conductances\[0\] \(input->hidden1\): expected shape",
        ),
        (lambda gs: [np.where(gs[0] > 0, np.nan, gs[0]), *gs[1:]], "NaN or infinite"),
        (lambda gs: [gs[0], -gs[1], gs[2]], r"conductances\[1\] \(hidden1->hidden2\): .* below"),
        (lambda gs: [gs[0], gs[1], gs[2] + 1e-3], r"above the device's g_max \(100 uS"),
    ],
)
def test_set_conductances_refuses_bad_values_and_writes_nothing(change, message):
    chip = tiny()
    before = chip.state()
    with pytest.raises(InputError, match=message):
        chip.set_conductances(change([np.array(g) for g in chip.conductances]))
    for a, b in zip(chip.state().arrays, before.arrays, strict=True):
        np.testing.assert_array_equal(a, b)


def test_set_conductances_checks_each_devices_own_range_and_holds_stuck_devices():
    data = yaml.safe_load((ROOT / "chips" / "tiny.yaml").read_text())
    card = {"g_min": "1 uS", "g_max": "50 uS", "range_spread": 0.2, "stuck_at_max": 0.2}
    for layer in data["layers"]:
        layer["device"] = card
        layer["init"] = {"distribution": "uniform", "low": "2 uS", "high": "20 uS"}
    chip = neuroemu.Chip.from_dict(data)
    low, high = chip.crossbar_bounds[0]
    stuck = chip.faults[0][1]
    assert stuck.any()
    inside = np.clip(np.full(chip.conductances[0].shape, 30e-6), low, high)
    chip.set_conductances([inside, *chip.conductances[1:]])
    np.testing.assert_array_equal(chip.conductances[0][~stuck], inside[~stuck])
    np.testing.assert_array_equal(chip.conductances[0][stuck], high[stuck])  # stuck at g_hi
    beyond = inside.copy()
    i = np.unravel_index(np.argmin(high), high.shape)
    beyond[i] = high[i] * 1.0001  # within the card's range, beyond this device's own
    assert beyond[i] < 50e-6
    with pytest.raises(InputError, match="above the device's g_max"):
        chip.set_conductances([beyond, *chip.conductances[1:]])


def test_state_round_trips_with_velocities_and_is_checked():
    data = yaml.safe_load((ROOT / "chips" / "tiny.yaml").read_text())
    data["layers"][-1]["readout"] = "single"
    data["training"] = {
        "beta": "1 uS",
        "target_voltage": "0.1 V",
        "learning_rate": 5.0,
        "batch_size": 4,
        "momentum": 0.9,
    }
    chip = neuroemu.Chip.from_dict(data)
    assert chip.velocities is None
    x = inputs(chip, 12)
    y = np.arange(12) % 4
    from neuroemu.learning.train import train_epoch

    train_epoch(chip, x, y, chip.spec.training, 1)
    state = chip.state()
    assert state.velocities is not None and len(state.velocities) == 6
    other = neuroemu.Chip.from_dict(data)
    other.load_state(state)
    for a, b in zip(other.state().arrays, state.arrays, strict=True):
        np.testing.assert_array_equal(a, b)
    # Both go on alike: the velocities came along.
    train_epoch(chip, x, y, chip.spec.training, 2)
    train_epoch(other, x, y, other.spec.training, 2)
    for a, b in zip(other.conductances, chip.conductances, strict=True):
        np.testing.assert_array_equal(a, b)
    state.conductances[0] *= 10  # a copy: the chip did not change
    assert not np.array_equal(state.conductances[0], chip.conductances[0])
    now = chip.state()
    bad = ChipState(now.conductances, now.biases, [v[:1] for v in now.velocities])
    with pytest.raises(InputError, match="velocities: expected arrays of shapes"):
        other.load_state(bad)


def test_copies_and_pickles_own_their_arrays():
    chip = tiny()
    for twin in (chip.copy(), copy.deepcopy(chip), pickle.loads(pickle.dumps(chip))):
        twin.set_conductances([2 * g for g in twin.conductances])
        assert not np.array_equal(twin.conductances[0], chip.conductances[0])
        np.testing.assert_array_equal(twin.crossbars[0].conductance, twin.conductances[0])
        np.testing.assert_array_equal(twin.conductances[0], 2 * chip.conductances[0])


def test_update_devices_moves_through_the_device_model_and_holds_faults():
    data = yaml.safe_load((ROOT / "chips" / "tiny.yaml").read_text())
    for layer in data["layers"]:
        layer["device"] = {"g_min": "1 uS", "g_max": "40 uS", "n_levels": 40, "stuck_at_min": 0.3}
        layer["init"] = {"distribution": "uniform", "low": "5 uS", "high": "30 uS"}
    chip = neuroemu.Chip.from_dict(data)
    x = inputs(chip)
    chip.settle(x)
    g0 = chip.conductances[0].copy()
    rows, cols = np.zeros(g0.shape[0]), np.zeros(g0.shape[1])
    cross = np.full(g0.shape, 2e-6)  # -0.5 * (0 + 0 - 2 cross): +2 uS asked of every device
    chip.update_devices([DeviceUpdate(0, rows, cols, cross, -0.5)], np.random.default_rng(0))
    g1 = chip.conductances[0]
    stuck = chip.faults[0][0]
    np.testing.assert_array_equal(g1[stuck], 1e-6)  # stuck devices do not move
    step = chip.crossbars[0].device.level_step
    moved = g1[~stuck] - g0[~stuck]
    np.testing.assert_allclose(moved, 2 * step, rtol=1e-9)  # two whole levels of 1 uS
    fresh = neuroemu.Chip.from_dict(data)
    fresh.set_conductances([g1, *chip.conductances[1:]])
    np.testing.assert_array_equal(chip.settle(x).output, fresh.settle(x).output)  # no stale cache


def test_programmed_chips_drift_by_the_formula_and_leave_the_chip_alone():
    data = yaml.safe_load((ROOT / "chips" / "tiny.yaml").read_text())
    for layer in data["layers"]:
        layer["device"] = "pcm"
        layer["init"] = {"distribution": "uniform", "low": "2 uS", "high": "20 uS"}
    chip = neuroemu.Chip.from_dict(data)
    before = chip.state()
    with pytest.raises(InputError, match="programmed"):
        chip.drift_to(3600.0)
    aged = chip.programmed(np.random.default_rng(1))
    assert aged.time_since_programming is None
    aged.drift_to(20.0)  # t0: the conductances programming left
    g0 = aged.conductances[0].copy()
    assert not np.array_equal(g0, chip.conductances[0])  # programming noise
    aged.drift_to(20.0 * 1000)
    ratio = aged.conductances[0] / g0
    nu = -np.log(ratio[g0 > 0]) / np.log(1000.0)
    assert 0.049 - 1e-12 <= nu.min() and nu.max() <= 0.1 + 1e-12  # the card's clamp
    assert aged.time_since_programming == 20000.0
    for a, b in zip(chip.state().arrays, before.arrays, strict=True):
        np.testing.assert_array_equal(a, b)


def test_no_view_can_be_made_writable_again():
    chip = tiny()
    before = chip.state()
    view = chip.conductances[0]
    with pytest.raises(ValueError):  # numpy refuses: the chip's own array is read-only
        view.flags.writeable = True
    with pytest.raises(ValueError):
        np.asarray(view).view(np.ndarray).setflags(write=True)
    for write in (lambda: view.setflags(write=True), lambda: view.fill(0.0), view.sort):
        with pytest.raises(InputError, match="set_conductances"):
            write()
    velocity_chip = neuroemu.Chip.from_yaml(ROOT / "chips" / "xs_784x100.yaml")
    neuroemu.simulate(velocity_chip, limit=8, epochs=1)  # momentum: velocities exist
    with pytest.raises(ValueError):
        velocity_chip.velocities[0].flags.writeable = True
    for a, b in zip(chip.state().arrays, before.arrays, strict=True):
        np.testing.assert_array_equal(a, b)


def test_one_read_serves_every_dtype_until_the_next():
    """A float32 settle inside a read sees the same read, and leaves the float64 circuit of
    that read as it was."""
    data = yaml.safe_load((ROOT / "chips" / "tiny.yaml").read_text())
    for layer in data["layers"]:
        layer["device"] = {"g_min": "0 uS", "g_max": "100 uS", "read_noise": {"relative": 0.05}}
    chip = neuroemu.Chip.from_dict(data)
    x = inputs(chip)
    with chip.reading(np.random.default_rng(3)):
        first = chip.settle(x)
        single = chip.settle(x, dtype=np.float32)
        again = chip.settle(x)
    np.testing.assert_array_equal(first.output, again.output)
    np.testing.assert_allclose(single.output, first.output, atol=1e-5)
    assert np.abs(first.output - chip.settle(x).output).max() > 1e-6  # a noisy read


def test_a_copy_is_never_in_the_middle_of_a_read():
    data = yaml.safe_load((ROOT / "chips" / "tiny.yaml").read_text())
    data["layers"][0]["device"] = {
        "g_min": "0 uS",
        "g_max": "100 uS",
        "read_noise": {"relative": 0.05},
    }
    chip = neuroemu.Chip.from_dict(data)
    x = inputs(chip)
    with chip.reading(np.random.default_rng(3)):
        twin = chip.copy()
        pickled = pickle.loads(pickle.dumps(chip))
    for other in (twin, pickled):
        assert other.reads is None
        np.testing.assert_array_equal(other.settle(x).output, chip.settle(x).output)


def test_a_programmed_chip_holds_what_programming_left_and_writes_end_its_clock():
    data = yaml.safe_load((ROOT / "chips" / "tiny.yaml").read_text())
    for layer in data["layers"]:
        layer["device"] = "pcm"
        layer["init"] = {"distribution": "uniform", "low": "2 uS", "high": "20 uS"}
    chip = neuroemu.Chip.from_dict(data)
    aged = chip.programmed(np.random.default_rng(1))
    assert not np.array_equal(aged.conductances[0], chip.conductances[0])  # programming noise
    at_t0 = aged.conductances[0].copy()
    aged.drift_to(20.0)
    np.testing.assert_array_equal(aged.conductances[0], at_t0)  # t0: nothing drifted yet
    aged.set_conductances(chip.conductances)  # programmed anew
    with pytest.raises(InputError, match="drift_to needs a chip programmed"):
        aged.drift_to(3600.0)
    with pytest.raises(InputError, match=r"rng: expected a numpy\.random\.Generator"):
        chip.programmed(0)
    with pytest.raises(InputError, match="time: expected seconds"):
        chip.programmed(np.random.default_rng(1)).drift_to("1h")


def test_the_spec_seed_and_source_cannot_be_changed_under_the_chip():
    chip = neuroemu.Chip.from_yaml(ROOT / "chips" / "xs_784x100.yaml")
    for change in (
        lambda: chip.spec.training.learning_rate.__setitem__(0, 0.0),
        lambda: chip.spec.layers.append(chip.spec.layers[0]),
        lambda: setattr(chip, "seed", 5),
        lambda: setattr(chip, "spec", None),
    ):
        with pytest.raises((TypeError, AttributeError)):
            change()


def test_set_conductances_refuses_what_is_not_real_numbers():
    chip = tiny()
    arrays = [np.array(g) for g in chip.conductances]
    for bad, what in (
        (arrays[0].astype(complex), "complex"),
        (np.full(arrays[0].shape, "x"), "<U1"),
    ):
        with pytest.raises(InputError, match=rf"conductances\[0\].*expected real numbers.*{what}"):
            chip.set_conductances([bad, *arrays[1:]])
