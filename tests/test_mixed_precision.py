"""Mixed precision (Nandakumar et al. 2020): each device accumulates the changes asked of it
and takes the whole pulses the sum holds. The kernel against the numpy reference over several
updates, the accumulator's invariants, the chip's state and run files, and training."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import neuroemu
from neuroemu.chip import DeviceUpdate
from neuroemu.errors import InputError, NeuroemuWarning, SpecError
from neuroemu.kernels.update import PARALLEL_MIN_DEVICES, ep_update

from .conftest import ROOT
from .test_simulate import untimed
from .test_update_counts import (
    CASES,
    G_MAX,
    G_MIN,
    STEP,
    arguments,
    problem,
    reference_update,
    run_kernel,
    tiny_levels,
    two_classes,
    write_idx,
)

QUANTISED = [case for case in CASES if case != "continuous"]


@pytest.mark.parametrize("threshold", [1.0, 0.5])
@pytest.mark.parametrize("case", QUANTISED)
def test_kernel_accumulates_as_the_reference(case, threshold):
    """Four updates in a row with accumulators: conductances, accumulators and counts bit for
    bit as the reference's, and every accumulator under its threshold (one nominal step for
    mixed precision, half of one rounded to the nearest)."""
    rng, g, rows, cols, cross = problem((40, 30), len(case), CASES[case].get("scale", 0.6))
    kw = arguments(case, rng, g)
    kw.pop("stochastic", None)  # an accumulator replaces the rounding
    residual = np.zeros_like(g)
    g_ref, r_ref = g.copy(), residual.copy()
    for k in range(4):
        scale = 1.0 + 0.5 * k  # a different change each time
        expected_g, _, expected = reference_update(
            g_ref, rows * scale, cols, cross, -1.0, residual=r_ref, threshold=threshold, **kw
        )
        counts = run_kernel(
            g, rows * scale, cols, cross, {**kw, "residual": residual, "threshold": threshold}
        )
        g_ref = expected_g
        np.testing.assert_array_equal(g, g_ref)
        np.testing.assert_array_equal(residual, r_ref)
        assert tuple(counts) == expected
    if "pulses" in kw:  # rounded to the nearest, a rest may change sign: the larger pulse
        up, down = kw["pulses"][:2]
        nominal = np.where(residual > 0, up, down) * (G_MAX - G_MIN)
        if threshold < 1.0:
            nominal = max(up, down) * (G_MAX - G_MIN)
    else:
        nominal = STEP
    assert np.all(np.abs(residual) <= threshold * nominal)
    if threshold == 1.0:
        assert np.all(np.abs(residual) < nominal)
    assert np.any(residual != 0.0)
    assert counts.pulses > 0


@pytest.mark.parametrize("threshold", [1.0, 0.5])
def test_hard_pulses_program_exactly_what_was_asked(threshold):
    """Hard pulses, far from the bounds, no spread or noise: after any number of updates the
    programmed change plus what the accumulators hold is the sum of the changes asked,
    although each change alone is under a pulse (and rounded to the nearest would be lost)."""
    shape = (50, 40)
    rng = np.random.default_rng(4)
    g = np.full(shape, G_MIN + 30 * STEP)
    start = g.copy()
    residual = np.zeros(shape)
    asked = np.zeros(shape)
    zeros_r, zeros_c = np.zeros(shape[0]), np.zeros(shape[1])
    pulses = (1 / 63, 1 / 63, False, 0.0)
    total = 0
    for _ in range(12):
        cross = rng.uniform(-0.2 * STEP, 0.4 * STEP, shape)  # changes under half a pulse
        asked += -2.0 * cross * -1.0
        before = g.copy()
        counts = ep_update(g, zeros_r, zeros_c, cross, -1.0, G_MIN, G_MAX, None,
                           pulses=pulses, residual=residual, threshold=threshold)  # fmt: skip
        assert counts.pulses == int(np.rint(np.abs(g - before) / STEP).sum())
        total += counts.pulses
    np.testing.assert_allclose(g - start + residual, asked, rtol=0, atol=1e-18)
    assert np.all(np.abs(residual) <= threshold * STEP * (1 + 1e-12))
    assert total >= int(np.rint(np.abs(g - start) / STEP).sum())  # some went up and down
    assert np.abs(g - start).max() > 2 * STEP  # devices did move, by pulses

    lost = np.full(shape, G_MIN + 30 * STEP)
    for _ in range(3):  # the same small changes, rounded to the nearest: nothing moves
        cross = rng.uniform(-0.2 * STEP, 0.2 * STEP, shape)
        ep_update(lost, zeros_r, zeros_c, cross, -1.0, G_MIN, G_MAX, None, pulses=pulses)
    np.testing.assert_array_equal(lost, start)


def test_accumulators_on_threads_match_one_thread():
    side = math.isqrt(PARALLEL_MIN_DEVICES) + 2
    rng, g, rows, cols, cross = problem((side, side), seed=3)
    kw = arguments("soft-pulses-own-bounds-noise", rng, g)
    kw.pop("stochastic")
    g_serial = g.copy()
    residual, r_serial = np.zeros_like(g), np.zeros_like(g)
    for _ in range(2):
        counts = run_kernel(g, rows, cols, cross, {**kw, "residual": residual})
        serial = run_kernel(g_serial, rows, cols, cross, {**kw, "residual": r_serial},
                            parallel=False)  # fmt: skip
        assert counts == serial
    np.testing.assert_array_equal(g, g_serial)
    np.testing.assert_array_equal(residual, r_serial)


def test_kernel_checks_the_accumulator():
    g = np.full((3, 4), G_MIN)
    zeros = np.zeros((3, 4))
    with pytest.raises(ValueError, match="residual"):
        ep_update(g, np.zeros(3), np.zeros(4), zeros, 1.0, G_MIN, G_MAX, STEP,
                  residual=np.zeros((4, 3)))  # fmt: skip
    with pytest.raises(ValueError, match=r"threshold: must be in \[0\.5, 1\]"):
        ep_update(g, np.zeros(3), np.zeros(4), zeros, 1.0, G_MIN, G_MAX, STEP,
                  residual=np.zeros((3, 4)), threshold=0.2)  # fmt: skip


def test_rounded_to_the_nearest_a_device_moves_at_half_a_step():
    """0.3 of a step asked twice: mixed precision waits for a whole step (none yet), the
    nearest-carry accumulator takes one pulse at 0.6 and carries -0.4."""
    moved = {}
    for threshold in (1.0, 0.5):
        g = np.full((2, 3), G_MIN + 10 * STEP)
        residual = np.zeros((2, 3))
        cross = np.full((2, 3), -0.15 * STEP)  # factor 1: a change of 0.3 step
        for _ in range(2):
            ep_update(g, np.zeros(2), np.zeros(3), cross, 1.0, G_MIN, G_MAX, STEP,
                      residual=residual, threshold=threshold)  # fmt: skip
        moved[threshold] = (g - G_MIN) / STEP - 10, residual / STEP
    np.testing.assert_allclose(moved[1.0][0], 0.0, atol=1e-9)
    np.testing.assert_allclose(moved[1.0][1], 0.6, rtol=1e-9)
    np.testing.assert_allclose(moved[0.5][0], 1.0, rtol=1e-9)
    np.testing.assert_allclose(moved[0.5][1], -0.4, rtol=1e-9)


# --------------------------------------------------------------------------- chip
def small_updates(chip, fraction=0.3):
    """Every array asked to move each device by ``fraction`` of a level step (up)."""
    step = chip.crossbars[0].device.level_step
    updates = []
    for index, (g, _) in enumerate(chip.device_arrays()):
        rows, cols = g.shape
        cross = np.full((rows, cols), -fraction * step / 2)
        updates.append(DeviceUpdate(index, np.zeros(rows), np.zeros(cols), cross, 1.0))
    return updates, step


def test_chip_accumulates_and_keeps_its_accumulators_in_its_state():
    """0.3 of a step four times: nothing moves three times, then one step; the accumulators
    are part of the chip's state, which a new chip loads (and refuses when malformed)."""
    chip = neuroemu.Chip.from_dict(tiny_levels("deterministic"))
    updates, step = small_updates(chip)
    start = [g.copy() for g, _ in chip.device_arrays()]
    assert chip.residuals is None and chip.state().residuals is None
    for k in range(4):
        chip.update_devices(updates, np.random.default_rng(k), accumulate=1.0)
        moved = [g - s for (g, _), s in zip(chip.device_arrays(), start, strict=True)]
        if k < 3:
            assert all(np.all(m == 0.0) for m in moved)
    for m, r in zip(moved, chip.residuals, strict=True):  # 1.2 steps: one taken
        np.testing.assert_allclose(m[m != 0], step, rtol=1e-12)
        np.testing.assert_allclose(r, 0.2 * step, rtol=1e-9)
    assert chip.update_counts.pulses == tuple(g.size for g, _ in chip.device_arrays())
    assert chip.update_counts.pulses_per_device == 1.0
    with pytest.raises(ValueError, match="read-only"):
        chip.residuals[0][0, 0] = 1.0
    with pytest.raises(InputError, match=r"^accumulate: expected a threshold in \[0\.5, 1\]"):
        chip.update_devices(updates, np.random.default_rng(0), accumulate=True)

    twin = neuroemu.Chip.from_dict(tiny_levels("deterministic"))
    twin.load_state(chip.state())
    for a, b in zip(twin.residuals, chip.residuals, strict=True):
        np.testing.assert_array_equal(a, b)
    state = chip.state()
    state.residuals[0] = state.residuals[0][:-1]
    with pytest.raises(InputError, match=r"^residuals: expected arrays of shapes"):
        twin.load_state(state)
    state = chip.state()
    state.residuals[1][0, 0] = np.nan
    with pytest.raises(InputError, match=r"^residuals: contain NaN"):
        twin.load_state(state)


def test_direct_updates_count_pulses_per_device():
    chip = neuroemu.Chip.from_dict(tiny_levels("deterministic"))
    updates, _ = small_updates(chip, fraction=2.4)  # 2 steps each (to the nearest)
    chip.update_devices(updates, np.random.default_rng(0))
    assert chip.update_counts.pulses_per_device == 2.0
    assert chip.residuals is None


def test_continuous_devices_take_no_pulses():
    chip = neuroemu.Chip.from_yaml(ROOT / "chips" / "tiny.yaml")
    assert chip.update_counts.pulses_per_device is None


# --------------------------------------------------------------------------- training
def mixed(learning_rate=3000.0):
    data = tiny_levels("deterministic", learning_rate)
    data["training"]["scheme"] = "mixed-precision"
    return data


def one_layer(scheme: str) -> dict:
    """The tiny chip's output layer alone (6 inputs, 2 differential classes) on 64 levels,
    with a learning rate at which most changes are under half a level step."""
    data = tiny_levels("deterministic", learning_rate=1000.0)
    data["layers"] = data["layers"][-1:]
    data["training"]["scheme"] = scheme
    return data


def test_nearest_carry_learns_without_warning(tmp_path):
    x, y = two_classes(400)
    write_idx(tmp_path / "two", x, y, n_test=100)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NeuroemuWarning)
        run = neuroemu.simulate(neuroemu.Chip.from_dict(one_layer("nearest-carry")),
                                dataset=tmp_path / "two", epochs=3)  # fmt: skip
    assert run.history[3]["error"] < 0.15
    assert run.history[3]["update_pulses_per_device"] > 0.0


def test_an_accumulator_scheme_needs_devices_with_steps():
    data = mixed()
    for layer in data["layers"]:
        layer["device"] = "ideal_resistor"
    with pytest.raises(SpecError, match=r"^<dict>: training\.scheme: mixed-precision gathers "):
        neuroemu.Chip.from_dict(data)


def test_scheme_is_checked():
    data = mixed()
    data["training"]["scheme"] = "mixed"
    with pytest.raises(
        SpecError,
        match=r"^<dict>: training\.scheme: Input should be .direct., .mixed-precision., .nearest-carry., .pairs., .pairs-carry. or .tiki-taka.",
    ):
        neuroemu.Chip.from_dict(data)


def test_mixed_precision_learns_where_rounding_to_the_nearest_does_not(tmp_path):
    """A one-layer chip on 64 levels with a small learning rate: rounded to the nearest
    almost every change is lost (the epoch warns) and the chip barely learns; with
    accumulators the same changes add up, no warning, and the test error falls far below.
    Pulses per device are recorded, and a run resumed after its first epoch ends as the
    uninterrupted one, accumulators included."""
    x, y = two_classes(400)
    write_idx(tmp_path / "two", x, y, n_test=100)
    data = tmp_path / "two"
    direct = neuroemu.Chip.from_dict(one_layer("direct"))
    with pytest.warns(NeuroemuWarning, match="rounded to no pulse"):
        lost = neuroemu.simulate(direct, dataset=data, epochs=3, out=tmp_path / "direct.h5")
    with warnings.catch_warnings():
        warnings.simplefilter("error", NeuroemuWarning)
        run = neuroemu.simulate(neuroemu.Chip.from_dict(one_layer("mixed-precision")), dataset=data, epochs=3,
                                out=tmp_path / "mixed.h5")  # fmt: skip
    assert lost.history[3]["error"] > 0.5  # the direct chip barely learns
    assert run.history[3]["error"] < 0.15
    for epoch in (1, 2, 3):
        assert run.history[epoch]["update_pulses_per_device"] > 0.0
        assert (
            lost.history[epoch]["update_pulses_per_device"]
            < (run.history[epoch]["update_pulses_per_device"])
        )

    first = neuroemu.simulate(neuroemu.Chip.from_dict(one_layer("mixed-precision")), dataset=data, epochs=1,
                              out=tmp_path / "resumed.h5")  # fmt: skip
    reread = neuroemu.open_run(tmp_path / "resumed.h5").chip.residuals
    assert reread is not None and any(np.any(r != 0) for r in reread)
    assert untimed(first.history[1]) == untimed(run.history[1])
    resumed = neuroemu.simulate(neuroemu.Chip.from_dict(one_layer("mixed-precision")), dataset=data, epochs=3,
                                resume=tmp_path / "resumed.h5")  # fmt: skip
    assert untimed(resumed.history) == untimed(run.history)
    end = neuroemu.open_run(tmp_path / "mixed.h5").chip.residuals
    again = neuroemu.open_run(tmp_path / "resumed.h5").chip.residuals
    for a, b in zip(end, again, strict=True):
        np.testing.assert_array_equal(a, b)
