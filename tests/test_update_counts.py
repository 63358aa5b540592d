"""What an update did to the devices: the update kernel's counts of devices asked to move,
rounded to no pulse and clipped, against a slow numpy reference of the whole kernel; the
chip's accumulated counts; and the training epoch's figures and warning."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import yaml

import neuroemu
from neuroemu.chip import DeviceUpdate
from neuroemu.errors import NeuroemuWarning
from neuroemu.kernels.update import PARALLEL_MIN_DEVICES, VELOCITY_FLOOR, ep_update
from neuroemu.learning.train import train_epoch

from .conftest import ROOT
from .test_datasets import idx_bytes

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
G_MIN, G_MAX = 1e-6, 40e-6
STEP = (G_MAX - G_MIN) / 63  # 64 levels


# --------------------------------------------------------------------------- reference
def mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser on uint64 arrays (they wrap, as the kernel's words do)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def uniform(key: np.ndarray, device: np.ndarray, draw: int) -> np.ndarray:
    """Word ``4 device + draw`` of the SplitMix64 sequence from ``key``, in [0, 1)."""
    word = mix(key + (device.astype(np.uint64) * np.uint64(4) + np.uint64(draw + 1)) * GOLDEN)
    return (word >> np.uint64(11)).astype(np.float64) * (1.0 / 2.0**53)


def normal(key: np.ndarray, device: np.ndarray) -> np.ndarray:
    """Box-Muller from draws 1 and 2, with the C library's log and cos (as the kernel's)."""
    u1 = (1.0 - uniform(key, device, 1)).ravel()
    u2 = uniform(key, device, 2).ravel()
    z = [
        math.sqrt(-2.0 * math.log(a)) * math.cos(2.0 * math.pi * b)
        for a, b in zip(u1, u2, strict=True)
    ]
    return np.array(z).reshape(device.shape)


def reference_update(
    g, rows, cols, cross, factor, step=None, *, stochastic=False, seed=-1, pulses=None,
    spread=None, bounds=None, velocity=None, momentum=0.0, stuck=None, residual=None,
    threshold=1.0, tilt=None,
):  # fmt: skip
    """The kernel written the obvious way over whole arrays: the new conductances, the new
    velocity and the counts ``(asked, unmoved, clipped, pulses)`` of the module docs. An
    accumulator ``residual`` (with its ``threshold`` in steps) is updated in place."""
    delta = factor * (rows[:, None] + cols[None, :] - 2.0 * cross)
    new_velocity = None
    if velocity is not None:
        delta = delta + momentum * velocity
        delta = np.where(np.abs(delta) < VELOCITY_FLOOR, 0.0, delta)
        new_velocity = delta
    requested = delta
    carries = residual is not None and (pulses is not None or step is not None)
    if carries:
        delta = delta + residual
    device = np.arange(g.size).reshape(g.shape)
    key = mix(np.array([(max(seed, 0) * int(GOLDEN) + 1) % 2**64], dtype=np.uint64))

    def whole(count):
        if not stochastic:
            return np.rint(count)
        low = np.floor(count)
        return low + np.where(uniform(key, device, 0) < count - low, 1.0, 0.0)

    lo, hi = (np.full(g.shape, G_MIN), np.full(g.shape, G_MAX)) if bounds is None else bounds
    scale = 1.0 if spread is None else spread
    pulsed = np.ones(g.shape, dtype=bool)  # took at least one pulse (or moved continuously)
    count = np.zeros(g.shape)  # pulses taken
    if pulses is not None:
        up, down, soft, cycle = pulses
        rise = delta > 0.0
        nominal = np.where(rise, up, down) * (G_MAX - G_MIN)
        if carries:  # whole pulses past the threshold, the rest kept
            count = np.floor(np.abs(delta) / nominal + 1.0 - threshold)
            residual[...] = delta - np.where(rise, count * nominal, -count * nominal)
        else:
            count = whole(np.abs(delta) / nominal)
        pulsed = count != 0.0
        if soft and bounds is not None:
            width = hi - lo
            room = np.where(rise, hi - g, g - lo)
            with np.errstate(divide="ignore", invalid="ignore"):
                size = np.where(width > 0.0, nominal * room / width, 0.0)
        elif soft:
            size = np.where(rise, up * (G_MAX - g), down * (g - G_MIN))
        else:
            size = nominal
        size = size * scale
        if tilt is not None:  # the device's own up/down imbalance
            size = size * np.maximum(np.where(rise, 1.0 + tilt, 1.0 - tilt), 0.0)
        change = count * size
        if cycle > 0.0:
            change = change + size * cycle * np.sqrt(count) * normal(key, device)
        delta = np.where(rise, change, -change)
    elif step is not None:
        if carries:
            count = np.sign(delta) * np.floor(np.abs(delta) / step + 1.0 - threshold)
            residual[...] = delta - count * step
        else:
            count = whole(delta / step)
        pulsed = count != 0.0
        delta = count * step * scale
        if tilt is not None:
            delta = delta * np.maximum(np.where(count > 0, 1.0 + tilt, 1.0 - tilt), 0.0)
    wanted = g + delta
    clipped_g = np.minimum(np.maximum(wanted, lo), hi)
    new_g = clipped_g if pulses is None else np.where(pulsed, clipped_g, g)
    asked = requested != 0.0
    movable = np.ones(g.shape, dtype=bool)
    if stuck is not None:
        movable = ~(stuck[0] | stuck[1])
    asked &= movable
    counts = (
        int(asked.sum()),
        int((asked & ~pulsed).sum()),
        int((asked & pulsed & (clipped_g != wanted)).sum()),
        int(np.abs(count)[movable].sum()),
    )
    return new_g, new_velocity, counts


# --------------------------------------------------------------------------- cases
def problem(shape, seed, scale=0.6):
    """Conductances in range, and row, column and cross terms whose change (factor -1) is
    spread over about ``scale`` level steps: many round to no pulse, some go past a bound."""
    rng = np.random.default_rng(seed)
    g = G_MIN + STEP * rng.integers(0, 64, shape).astype(float)
    g[:, 0] = G_MAX  # a column at each bound: changes beyond them are clipped
    g[:, 1] = G_MIN
    rows = rng.normal(0.0, scale * STEP / 4, shape[0])
    cols = rng.normal(0.0, scale * STEP / 4, shape[1])
    cross = rng.normal(0.0, scale * STEP / 2, shape)
    cross[:, :2] *= 20  # large changes at the bounds
    return rng, g, rows, cols, cross


def own_bounds(rng, shape, sigma=0.3):
    low = G_MIN * np.maximum(1.0 + sigma * rng.standard_normal(shape), 0.0)
    high = G_MAX * np.maximum(1.0 + sigma * rng.standard_normal(shape), 0.0)
    return low, np.maximum(high, low)


CASES = {
    "levels": {"step": STEP},
    "levels-stochastic": {"step": STEP, "stochastic": True, "seed": 11},
    "levels-step-spread": {"step": STEP, "spread": 0.3},
    "levels-own-bounds": {"step": STEP, "bounds": True},
    "levels-up-down-spread": {"step": STEP, "tilt": 0.5, "spread": 0.2},
    "soft-pulses": {"pulses": (1 / 63, 1.5 / 63, True, 0.0)},
    "soft-pulses-overshoot": {"pulses": (0.15, 0.1, True, 0.0), "scale": 10.0},
    "soft-pulses-own-bounds-noise": {
        "pulses": (0.15, 0.15, True, 0.5),
        "scale": 10.0,
        "bounds": True,
        "spread": 0.2,
        "stochastic": True,
        "seed": 5,
    },
    "hard-pulses": {"pulses": (1 / 63, 1 / 63, False, 0.0)},
    "soft-pulses-up-down-spread": {
        "pulses": (0.15, 0.1, True, 0.3),
        "scale": 10.0,
        "bounds": True,
        "tilt": 0.5,
        "stochastic": True,
        "seed": 8,
    },
    "continuous": {"step": None},
    "stuck": {"step": STEP, "stuck": True},
}


def arguments(case, rng, g):
    """The case's keyword arguments, with its spread, bounds and stuck masks drawn."""
    kw = dict(CASES[case])
    kw.pop("scale", None)
    if "spread" in kw:
        kw["spread"] = np.maximum(1.0 + kw["spread"] * rng.standard_normal(g.shape), 0.0)
    if "tilt" in kw:  # sigma 0.5: some devices cannot move one way at all
        kw["tilt"] = kw["tilt"] * rng.standard_normal(g.shape)
    if kw.pop("bounds", False):
        kw["bounds"] = own_bounds(rng, g.shape)
        np.clip(g, *kw["bounds"], out=g)
    if kw.pop("stuck", False):
        u = rng.random(g.shape)
        kw["stuck"] = (u < 0.05, (u >= 0.05) & (u < 0.1))
    return kw


def run_kernel(g, rows, cols, cross, kw, parallel=True):
    kw = dict(kw)
    step = kw.pop("step", None)
    return ep_update(g, rows, cols, cross, -1.0, G_MIN, G_MAX, step, parallel=parallel, **kw)


@pytest.mark.parametrize("case", list(CASES))
def test_kernel_counts_match_the_numpy_reference(case):
    """The kernel's conductances and counts, bit for bit and exactly, against the reference;
    each count is neither 0 nor everything, so a wrong definition shows."""
    rng, g, rows, cols, cross = problem((40, 30), len(case), CASES[case].get("scale", 0.6))
    kw = arguments(case, rng, g)
    expected_g, _, expected = reference_update(g, rows, cols, cross, -1.0, **kw)
    counts = run_kernel(g, rows, cols, cross, kw)
    np.testing.assert_array_equal(g, expected_g)
    assert tuple(counts) == expected
    asked, unmoved, clipped, pulses = counts
    assert 0 < asked <= g.size
    assert (pulses == 0) == (case == "continuous")
    if case == "continuous":
        assert unmoved == 0 and 0 < clipped < asked
    elif case == "soft-pulses":  # fewer than 1 / up pulses never reach a soft bound
        assert 0 < unmoved < asked and clipped == 0
    else:
        assert 0 < unmoved < asked and 0 < clipped < asked - unmoved
    if case == "stuck":
        assert asked <= g.size - int(kw["stuck"][0].sum() + kw["stuck"][1].sum())


def test_deterministic_rounding_leaves_most_small_changes_unmoved():
    """Changes of a third of a level step at most never take a pulse when rounded to the
    nearest; rounded stochastically about a sixth of them do (the mean of |u| / step)."""
    shape = (100, 100)
    rng = np.random.default_rng(1)
    cross = rng.uniform(-STEP / 6, STEP / 6, shape)  # changes of -1/3 to 1/3 of a step
    zeros_r, zeros_c = np.zeros(shape[0]), np.zeros(shape[1])
    g = np.full(shape, G_MIN + 30 * STEP)
    counts = ep_update(g, zeros_r, zeros_c, cross, -1.0, G_MIN, G_MAX, STEP)
    assert counts == (g.size, g.size, 0, 0)
    np.testing.assert_array_equal(g, G_MIN + 30 * STEP)
    counts = ep_update(g, zeros_r, zeros_c, cross, -1.0, G_MIN, G_MAX, STEP, True, 3)
    assert counts.asked == g.size and counts.clipped == 0
    assert counts.unmoved / g.size == pytest.approx(1 - 1 / 6, abs=0.01)  # 1e4 draws


@pytest.mark.parametrize("case", ["levels-stochastic", "soft-pulses-own-bounds-noise"])
def test_parallel_and_serial_counts_agree(case):
    """Rows on threads count into their own row: the same counts as in order."""
    side = math.isqrt(PARALLEL_MIN_DEVICES) + 2
    rng, g, rows, cols, cross = problem((side, side), seed=3)
    kw = arguments(case, rng, g)
    g_serial = g.copy()
    counts = run_kernel(g, rows, cols, cross, kw, parallel=True)
    serial = run_kernel(g_serial, rows, cols, cross, kw, parallel=False)
    np.testing.assert_array_equal(g, g_serial)
    assert counts == serial
    assert 0 < counts.unmoved < counts.asked and counts.clipped > 0


@pytest.mark.parametrize("step", [None, STEP])
def test_momentum_counts_the_velocity(step):
    """With momentum a device is asked to move by its velocity: three steps against the
    reference, the last with no gradient at all (only the velocity asks)."""
    _, g, rows, cols, cross = problem((30, 20), seed=9, scale=2.0)
    velocity = np.zeros_like(g)
    v_ref, g_ref = velocity.copy(), g.copy()
    for k in range(3):
        if k == 2:
            rows, cols, cross = np.zeros_like(rows), np.zeros_like(cols), np.zeros_like(cross)
        expected_g, v_ref, expected = reference_update(
            g_ref, rows, cols, cross, -1.0, step, velocity=v_ref, momentum=0.9
        )
        counts = ep_update(
            g, rows, cols, cross, -1.0, G_MIN, G_MAX, step, velocity=velocity, momentum=0.9
        )
        g_ref = expected_g
        np.testing.assert_array_equal(g, g_ref)
        np.testing.assert_array_equal(velocity, v_ref)
        assert tuple(counts) == expected
    assert counts.asked == g.size  # every velocity still asks
    assert counts.clipped > 0 and (step is None) == (counts.unmoved == 0)


def test_stuck_masks_are_checked():
    g = np.full((3, 4), G_MIN)
    zeros = np.zeros((3, 4))
    with pytest.raises(ValueError, match="stuck at g_min"):
        ep_update(g, np.zeros(3), np.zeros(4), zeros, 1.0, G_MIN, G_MAX, None,
                  stuck=(np.zeros((3, 4)), np.zeros((3, 4), bool)))  # fmt: skip


# --------------------------------------------------------------------------- chip, training
def tiny_levels(rounding: str, learning_rate: float = 3000.0) -> dict:
    """chips/tiny.yaml with 64-level devices (1-50 uS) in every array, and training."""
    data = yaml.safe_load((ROOT / "chips" / "tiny.yaml").read_text())
    card = {"g_min": "1 uS", "g_max": "50 uS", "n_levels": 64, "rounding": rounding}
    for layer in data["layers"]:
        layer["device"] = card
    data["training"] = {
        "beta": "10 uS",
        "target_voltage": "0.1 V",
        "learning_rate": learning_rate,
        "batch_size": 10,
        "epochs": 1,
    }
    return data


def two_classes(n: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Six-pixel samples of two noisy prototypes."""
    rng = np.random.default_rng(seed)
    prototypes = rng.uniform(0.0, 1.0, (2, 6))
    y = rng.integers(0, 2, n)
    return np.clip(prototypes[y] + rng.normal(0.0, 0.1, (n, 6)), 0.0, 1.0), y


def write_idx(folder, x, y, n_test=40):
    """``x``, ``y`` as an MNIST-format folder of 2 x 3 images (the last ``n_test`` the test
    part)."""
    folder.mkdir()
    images = np.rint(255 * x).astype(np.uint8).reshape(-1, 2, 3)
    parts = {"train": slice(0, len(x) - n_test), "t10k": slice(len(x) - n_test, len(x))}
    for part, rows in parts.items():
        (folder / f"{part}-images-idx3-ubyte").write_bytes(idx_bytes(images[rows], 0x08))
        (folder / f"{part}-labels-idx1-ubyte").write_bytes(idx_bytes(y[rows], 0x08))


def test_chip_counts_accumulate_and_are_taken():
    """The chip adds up every update's counts per array; taking them starts anew."""
    chip = neuroemu.Chip.from_dict(tiny_levels("deterministic"))
    assert len(chip.update_counts.names) == len(chip.device_arrays())
    shapes = [g.shape for g, _ in chip.device_arrays()]
    step = chip.crossbars[0].device.level_step
    updates = []
    for index, (rows, cols) in enumerate(shapes):
        cross = np.full((rows, cols), -0.3 * step / 2)  # 0.3 of a step: rounds to nothing
        cross[0, 0] = -3.0 * step / 2  # 3 steps: moves
        updates.append(DeviceUpdate(index, np.zeros(rows), np.zeros(cols), cross, 1.0))
    chip.update_devices(updates, np.random.default_rng(0))
    chip.update_devices(updates[:1], np.random.default_rng(0))
    counts = chip.update_counts
    sizes = [rows * cols for rows, cols in shapes]
    assert counts.asked == (2 * sizes[0], *sizes[1:])
    assert counts.unmoved == (2 * (sizes[0] - 1), *(n - 1 for n in sizes[1:]))
    assert counts.unmoved_fraction == pytest.approx(1 - (len(sizes) + 1) / (sum(sizes) + sizes[0]))
    assert chip.take_update_counts() == counts
    assert chip.update_counts.total_asked == 0 and chip.update_counts.unmoved_fraction == 0.0


def test_stuck_devices_are_not_counted():
    data = tiny_levels("deterministic")
    data["layers"][0]["device"] = {**data["layers"][0]["device"], "stuck_at_min": 0.2}
    chip = neuroemu.Chip.from_dict(data)
    stuck = int(chip.faults[0][0].sum())
    assert 0 < stuck < chip.conductances[0].size
    rows, cols = chip.conductances[0].shape
    cross = np.full((rows, cols), -1e-6)
    update = DeviceUpdate(0, np.zeros(rows), np.zeros(cols), cross, 1.0)
    chip.update_devices([update], np.random.default_rng(0))
    assert chip.update_counts.asked[0] == rows * cols - stuck


def test_deterministic_rounding_warns_once_per_epoch_and_records_the_fractions(tmp_path):
    """64 levels rounded to the nearest with a small learning rate: almost every update
    rounds to no pulse; the epoch warns once with the fraction, which the run file keeps."""
    x, y = two_classes()
    write_idx(tmp_path / "two", x, y)
    chip = neuroemu.Chip.from_dict(tiny_levels("deterministic"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = neuroemu.simulate(chip, dataset=tmp_path / "two", epochs=2, out=tmp_path / "r.h5")
    messages = [str(w.message) for w in caught if issubclass(w.category, NeuroemuWarning)]
    assert len(messages) == 2  # one per epoch
    for epoch, message in enumerate(messages, 1):
        fraction = run.history[epoch]["update_unmoved_fraction"]
        assert 0.9 < fraction < 1.0  # most, not all: a few output devices take a pulse
        assert message.startswith(f"epoch {epoch}: {100 * fraction:.1f} % of the device ")
        assert "rounded to no pulse (worst: " in message and "rounding: stochastic" in message
        assert "\n" not in message
        assert run.history[epoch]["update_clipped_fraction"] == 0.0
    assert "update_unmoved_fraction" not in run.history[0]  # epoch 0: no training
    reread = neuroemu.open_run(tmp_path / "r.h5")
    assert reread.history[2]["update_unmoved_fraction"] == run.history[2]["update_unmoved_fraction"]


def test_stochastic_rounding_does_not_warn():
    """The same chip rounding stochastically: as many small changes take no pulse, but each
    is taken with its probability, so nothing is lost on average and the epoch is quiet."""
    x, y = two_classes()
    quiet = neuroemu.Chip.from_dict(tiny_levels("stochastic"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", NeuroemuWarning)
        report = train_epoch(quiet, x, y, quiet.spec.training, 1)
    moved = report.updates
    assert moved is not None and 0.5 < moved.unmoved_fraction < 1.0
    loud = neuroemu.Chip.from_dict(tiny_levels("deterministic"))
    with pytest.warns(NeuroemuWarning, match=r"^epoch 1: 9\d\.\d % of the device updates"):
        deterministic = train_epoch(loud, x, y, loud.spec.training, 1)
    assert deterministic.updates is not None
    assert deterministic.updates.unmoved_fraction > moved.unmoved_fraction


def test_clipping_warns_with_the_arrays_worst_hit():
    """A learning rate far too large drives devices against their bounds: the epoch says
    so and what to change."""
    x, y = two_classes()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        chip = neuroemu.Chip.from_dict(tiny_levels("deterministic", learning_rate=1e7))
        report = train_epoch(chip, x, y, chip.spec.training, 1)
    assert report.updates is not None and report.updates.clipped_fraction > 0.5
    clipped = [str(w.message) for w in caught if "clipped at a bound" in str(w.message)]
    assert len(clipped) == 1
    assert f"{100 * report.updates.clipped_fraction:.1f} %" in clipped[0]
    assert "take a smaller learning rate" in clipped[0]


def test_leaky_chips_count_and_warn_too():
    """A leaky chip updates through the same chip method: its epoch reports and warns."""
    data = yaml.safe_load((ROOT / "chips" / "leaky_tiny.yaml").read_text())
    for layer in data["layers"]:
        layer["device"] = {"g_min": "1 uS", "g_max": "100 uS", "n_levels": 64}
    data["training"] = {
        "algorithm": "ep-centred",
        "beta": "0.5 uS",
        "target_voltage": "1 V",
        "learning_rate": 1.0,
        "conductance_unit": "10 uS",
        "batch_size": 4,
    }
    chip = neuroemu.Chip.from_dict(data)
    x = np.random.default_rng(7).random((8, 6))
    y = np.arange(8) % 3
    with pytest.warns(NeuroemuWarning, match="rounded to no pulse") as caught:
        report = train_epoch(chip, x, y, chip.spec.training, 1)
    figures = report.figures()
    assert 0.5 < figures["update_unmoved_fraction"] < 1.0
    assert f"{100 * figures['update_unmoved_fraction']:.1f} %" in str(caught[0].message)
    assert report.updates is not None and report.updates.names[0] == "input->hidden"


@pytest.mark.parametrize(
    ("fraction", "text"),
    [(0.981, "98.1 %"), (0.99968, "99.97 %"), (0.999996, "99.9996 %"), (1.0, "100.0 %"),
     (0.0, "0.0 %"), (0.0004, "0.04 %")],
)  # fmt: skip
def test_warnings_never_round_a_fraction_to_all_or_nothing(fraction, text):
    from neuroemu.learning.train import percent

    assert percent(fraction) == text
