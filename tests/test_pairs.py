"""Training by pairs of devices that are only potentiated (Boybat et al. 2018): the pair
update against a slow pair-by-pair reference, what it keeps of EP's update (the change of
each pair's difference), the refresh, the chip's pair circuits, the spec's checks, and a
PCM chip that learns through them."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest

import neuroemu
from neuroemu.chip import DeviceUpdate
from neuroemu.errors import InputError, NeuroemuWarning, SpecError
from neuroemu.kernels.update import program_half
from neuroemu.models.nonideal import programming_sigma
from neuroemu.models.pairs import Refresh, pair_update, verified_pulses
from neuroemu.models.update import programmed
from neuroemu.spec.cards import ResistorCard
from neuroemu.spec.loader import load_card

from .conftest import ROOT
from .test_simulate import untimed
from .test_update_counts import tiny_levels, two_classes, write_idx

G_MIN, G_MAX = 1e-6, 26e-6
ROWS = ((slice(0, 6),), (slice(6, None),))
COLUMNS = ((slice(None), slice(0, None, 2)), (slice(None), slice(1, None, 2)))


def card(kind: str) -> ResistorCard:
    """A continuous card, a 26-level card, or a PCM-like card (soft-bound SET pulses of 4 %
    of the range, RESET), all rounding to the nearest, without noise."""
    extra = {
        "continuous": {},
        "levels": {"n_levels": 26},
        "set-reset": {"pulses": {"up": 0.04, "down": "reset", "soft_bounds": True}},
    }[kind]
    return ResistorCard(kind="resistor", name=kind, g_min=G_MIN, g_max=G_MAX, **extra)


def reference(g, delta, halves, c, refresh_at):
    """Pair by pair, as the module's docs say (no draws: rounding to the nearest, no noise)."""
    g = g.copy()
    a_half, b_half = halves
    index = np.arange(g.size).reshape(g.shape)
    pulses = resets = 0

    def programmed(value, request):
        if request == 0:
            return value, 0
        if c.pulses is not None:
            n = np.rint(request / (c.pulses.up * (G_MAX - G_MIN)))
            return min(value + n * c.pulses.up * (G_MAX - value), G_MAX), int(n)
        if c.level_step is not None:
            n = np.rint(request / c.level_step)
            return min(value + n * c.level_step, G_MAX), int(n)
        return min(value + request, G_MAX), 0

    for ia, ib in zip(index[a_half].ravel(), index[b_half].ravel(), strict=True):
        a, b = np.unravel_index(ia, g.shape), np.unravel_index(ib, g.shape)
        want = delta[a] - delta[b]
        up = a if want > 0 else b
        g[up], n = programmed(g[up], abs(want))
        pulses += n
        # A pair whose smaller device holds less than one nominal SET step is not
        # refreshed (a continuous card has no step: always).
        step = (c.pulses.up * (G_MAX - G_MIN) if c.pulses is not None else c.level_step) or 0.0
        common = min(g[a], g[b]) - G_MIN
        if max(g[a], g[b]) >= G_MIN + refresh_at * (G_MAX - G_MIN) and common >= step:
            net = g[a] - g[b]
            g[a] = g[b] = G_MIN
            larger = a if net > 0 else b
            g[larger], n = programmed(G_MIN, abs(net))
            pulses += 2 + n
            resets += 2
    return g, pulses, resets


@pytest.mark.parametrize("kernel", [False, True], ids=["numpy", "kernel"])
@pytest.mark.parametrize("kind", ["continuous", "levels", "set-reset"])
@pytest.mark.parametrize("halves", [ROWS, COLUMNS], ids=["rows", "columns"])
def test_pair_update_is_the_pair_by_pair_reference(kind, halves, kernel):
    """Conductances and pulses as the slow reference's, over several updates that fill and
    refresh pairs, programmed by numpy and by the Numba kernel (column pairs are strided
    halves, which the kernel takes through a copy)."""
    rng = np.random.default_rng(1)
    c = card(kind)
    g = rng.uniform(G_MIN, 20e-6, (12, 8))
    g_ref = g.copy()
    refreshed = 0
    for step in range(6):
        delta = rng.normal(0.0, 3e-6, g.shape) * (1 + step)
        g_ref, pulses, resets = reference(g_ref, delta, halves, c, 0.8)
        counts = pair_update(
            g,
            delta,
            halves,
            c,
            np.random.default_rng(0),
            refresh_at=0.8,
            program=program_half if kernel else None,
        )
        np.testing.assert_allclose(g, g_ref, rtol=0, atol=1e-18)
        assert counts[3] == pulses
        assert 2 * counts[4] == resets  # the chip's energy figure counts RESETs so
        refreshed += counts[4]
    assert refreshed > 0  # the updates did fill pairs


def test_a_pair_takes_the_change_of_its_difference_and_never_falls():
    """Continuous devices away from the bounds: each pair's difference moves by exactly the
    difference of the two changes asked, only one device of a pair moves, and it rises."""
    rng = np.random.default_rng(2)
    g = rng.uniform(2e-6, 4e-6, (12, 8))
    delta = rng.normal(0.0, 1e-7, g.shape)
    before = g.copy()
    counts = pair_update(g, delta, ROWS, card("continuous"), rng, refresh_at=1.0)
    a, b = ROWS
    np.testing.assert_allclose(g[a] - g[b], before[a] - before[b] + delta[a] - delta[b])
    assert np.all(g >= before)
    assert np.all((g[a] == before[a]) | (g[b] == before[b]))
    assert counts[0] == g[a].size and counts[4] == 0


def test_a_refresh_keeps_the_difference_and_empties_the_pair():
    """A pair past the refresh level: both devices back at g_min, the difference they held
    programmed into the larger one; the other pairs untouched."""
    g = np.full((4, 2), 5e-6)
    g[0, 0], g[2, 0] = 24e-6, 20e-6  # pair (0, 0)-(2, 0) full, difference 4 uS
    g[1, 1], g[3, 1] = 3e-6, 24.5e-6  # pair (1, 1)-(3, 1) full, difference -21.5 uS
    halves = ((slice(0, 2),), (slice(2, None),))
    counts = pair_update(g, np.zeros_like(g), halves, card("continuous"), None, refresh_at=0.9)
    np.testing.assert_allclose(g[:, 0], [G_MIN + 4e-6, 5e-6, G_MIN, 5e-6], rtol=1e-12)
    np.testing.assert_allclose(g[:, 1], [5e-6, G_MIN, 5e-6, G_MIN + 21.5e-6], rtol=1e-12)
    assert counts[4] == 2 and counts[3] == 4  # two RESETs a pair, a continuous refill


@pytest.mark.parametrize("kind", ["set-reset", "levels"])
def test_a_pair_with_no_common_step_to_lower_is_not_refreshed(kind):
    """Refreshing a pair whose smaller device holds less than one nominal SET step above
    g_min would lower its common conductance by less than a step and write the difference
    back with the write's error: past the level, only pairs whose smaller device holds a
    whole step are refreshed; on a continuous card, every pair past the level."""
    c = card(kind)
    step = c.pulses.up * (G_MAX - G_MIN) if c.pulses is not None else c.level_step
    smaller = G_MIN + np.array([0.0, 0.5, 0.99, 1.0, 1.01, 3.0]) * step
    g = np.stack([np.full(6, 20e-6), smaller])
    before = g.copy()
    counts = pair_update(g, np.zeros_like(g), PAIR_ROWS, c, None, refresh_at=0.5)
    refreshed = smaller - G_MIN >= step
    assert counts[4] == refreshed.sum() == 3
    np.testing.assert_array_equal(g[:, ~refreshed], before[:, ~refreshed])
    assert np.all(g[1, refreshed] == G_MIN) and np.all(g[0, refreshed] < 20e-6)
    plain = np.stack([np.full(6, 20e-6), smaller])
    counts = pair_update(plain, np.zeros_like(g), PAIR_ROWS, card("continuous"), None,
                         refresh_at=0.5)  # fmt: skip
    assert counts[4] == 6


def full_pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` pairs (rows 0 and 1 of each column) that are past a refresh at 0.5, with
    differences spread over most of the range, and the differences. Each device holds more
    than one SET step (1 uS on the set-reset card) above g_min, so a refresh lowers the
    pair's common conductance."""
    rng = np.random.default_rng(11)
    g = np.empty((2, n))
    g[0] = rng.uniform(14e-6, 25e-6, n)
    g[1] = rng.uniform(G_MIN + 1.5e-6, 25e-6, n)
    return g, g[0] - g[1]


PAIR_ROWS = ((slice(0, 1),), (slice(1, 2),))


def test_a_verified_refresh_writes_the_difference_exactly_on_a_noise_free_card():
    """A refresh by program and verify on the SET/RESET card without programming noise:
    the larger device holds exactly the difference, where open-loop SET pulses leave it a
    rounding away, and the pulses counted are the nominal pulses from g_min to it."""
    c = card("set-reset")
    g, net = full_pairs(200)
    open_loop = g.copy()
    counts = pair_update(g, np.zeros_like(g), PAIR_ROWS, c, np.random.default_rng(0),
                         refresh_at=0.5, verified=True)  # fmt: skip
    larger = np.where(net > 0, g[0], g[1])
    np.testing.assert_allclose(larger - G_MIN, np.abs(net), rtol=1e-12)
    assert np.all(np.where(net > 0, g[1], g[0]) == G_MIN)
    assert counts[4] == 200
    assert counts[3] == 2 * 200 + verified_pulses(np.abs(net), c).sum()
    # Reads: both devices of each pair, then the written one after its RESET and after
    # each pulse; open loop, only the first two.
    assert np.all(net != 0)
    assert counts[5] == 2 * 200 + 200 + verified_pulses(np.abs(net), c).sum()
    loop = pair_update(open_loop, np.zeros_like(g), PAIR_ROWS, c, np.random.default_rng(0),
                       refresh_at=0.5)  # fmt: skip
    assert loop[4] == 200 and loop[5] == 2 * 200
    error = np.abs(np.where(net > 0, open_loop[0], open_loop[1]) - G_MIN - np.abs(net))
    assert np.median(error) > 0.1 * c.pulses.up * (G_MAX - G_MIN)


def test_a_verified_refresh_leaves_the_cards_programming_noise():
    """On the pcm_pulsed card the written device's error is its programming noise at the
    difference (the card's polynomial in the target): mean 0, unit variance in sigmas."""
    c = load_card(ROOT / "devices" / "pcm_pulsed.yaml")
    assert isinstance(c, ResistorCard)
    rng = np.random.default_rng(12)
    n = 20000
    g = np.empty((2, n))
    g[0] = c.g_max
    g[1] = rng.uniform(2e-6, 15e-6, n)
    net = g[0] - g[1]
    pair_update(g, np.zeros_like(g), PAIR_ROWS, c, rng, refresh_at=0.5, verified=True)
    assert np.all(g[1] == c.g_min)
    z = (g[0] - net) / programming_sigma(net, c)
    assert abs(z.mean()) < 4 / np.sqrt(n)
    assert abs(z.std() - 1.0) < 0.02


@pytest.mark.parametrize("kind", ["hard", "soft", "levels", "noisy"])
def test_verified_pulses_count_the_pulses_that_reach_the_target(kind):
    """The formula against pulses applied one at a time from g_min through the device
    model, until the device is within the loop's tolerance of the target: half a step
    there, or the card's programming noise there when that is larger."""
    if kind == "levels":
        c = card("levels")
    else:
        extra = {}
        if kind == "noisy":
            extra["programming_noise"] = {"model": "pcm_polynomial",
                                          "coefficients": [0.26348, 1.9650, -1.1731]}  # fmt: skip
        c = ResistorCard(kind="resistor", name=kind, g_min=G_MIN, g_max=G_MAX,
                         pulses={"up": 0.04, "down": "reset", "soft_bounds": kind != "hard"},
                         **extra)  # fmt: skip
    span = G_MAX - G_MIN
    targets = np.random.default_rng(3).uniform(0.0, span, 300)
    targets[:3] = [0.0, span, 0.5 * span]
    expected = []
    for target in targets:
        one = np.array([c.pulses.up * span if c.pulses else c.level_step])
        if c.pulses is None:
            step = c.level_step
        elif c.pulses.soft_bounds:
            step = c.pulses.up * (span - target)
        else:
            step = c.pulses.up * span
        tol = max(0.5 * step, float(programming_sigma(np.array([G_MIN + target]), c)[0]))
        value, n = np.array([G_MIN]), 0
        while value[0] < G_MIN + target - tol and n < 1000:
            change, taken = programmed(value, one, c, np.random.default_rng(0))
            assert taken[0] == 1
            value = np.minimum(value + change, G_MAX)
            n += 1
        expected.append(n)
    counted = verified_pulses(targets, c)
    if kind == "soft":  # a noise-free soft-bound device never reaches g_max: the cap
        assert counted[1] == np.ceil(np.log(1e-12) / np.log1p(-0.04))
        counted, expected = counted[2:], expected[2:]
    assert counted.tolist() == expected
    assert verified_pulses(targets, card("continuous")).sum() == 0


def test_a_pair_remembers_its_velocity():
    """With momentum the pair moves by its velocity, kept beside its first device."""
    g = np.full((4, 3), 5e-6)
    velocity = np.zeros_like(g)
    delta = np.zeros_like(g)
    delta[0, 0], delta[2, 0] = 2e-7, -1e-7  # the pair (0, 0)-(2, 0) asks +0.3 uS
    halves = ((slice(0, 2),), (slice(2, None),))
    for _ in range(2):
        pair_update(
            g, delta, halves, card("continuous"), None, velocity=velocity, momentum=0.5,
            refresh_at=1.0,
        )  # fmt: skip
    np.testing.assert_allclose(g[0, 0], 5e-6 + 0.3e-6 + 1.5 * 0.3e-6, rtol=1e-12)
    assert g[2, 0] == 5e-6 and velocity[0, 0] == pytest.approx(0.45e-6) and velocity[2, 0] == 0


def test_a_reset_pulse_returns_the_device_to_g_min():
    """``down: reset`` as the card's formula says: one down pulse (a change of the whole
    range, rounded) takes any state to g_min."""
    from neuroemu.models.update import pulse_plan

    c = card("set-reset")
    g = np.linspace(G_MIN, G_MAX, 7)
    change, _ = pulse_plan(g, np.full(7, -0.6 * (G_MAX - G_MIN)), c, np.random.default_rng(0))
    np.testing.assert_allclose(g + change, G_MIN, rtol=0, atol=1e-20)
    assert c.pulses.resets and c.pulses.down_fraction == 1.0


def one_layer_pairs(device="pcm_pulsed") -> dict:
    """The tiny chip's output layer alone (6 inputs at +a x and -a x, 2 differential
    classes): every device of it has a pair circuit."""
    data = tiny_levels("deterministic", learning_rate=300.0)
    data["layers"] = data["layers"][-1:]
    data["layers"][0]["device"] = device
    data["layers"][0]["init"] = {"distribution": "uniform", "low": "0 uS", "high": "5 uS"}
    data["bias"]["init"] = {"distribution": "uniform", "low": "0 uS", "high": "5 uS"}
    data["training"]["scheme"] = "pairs"
    data["training"]["momentum"] = 0.5
    data["training"]["refresh_at"] = 0.6
    return data


def test_the_chip_pairs_inputs_biases_and_differential_outputs():
    chip = neuroemu.Chip.from_yaml(ROOT / "chips" / "tiny.yaml")
    n = 6
    g = np.arange(8.0).reshape(2, 4)
    assert chip.pair_halves(0) == ((slice(0, n),), (slice(n, None),))
    assert chip.pair_halves(1) is None  # hidden1 -> hidden2: no inverted copies
    a, b = chip.pair_halves(2)
    assert g[a].tolist() == [[0, 2], [4, 6]] and g[b].tolist() == [[1, 3], [5, 7]]
    a, b = chip.pair_halves(3)
    assert g[a].tolist() == [[0, 1, 2, 3]] and g[b].tolist() == [[4, 5, 6, 7]]
    update = DeviceUpdate(1, np.zeros(6), np.zeros(4), np.zeros((6, 4)), 1.0)
    with pytest.raises(InputError, match=r"^pairs: array hidden1->hidden2 has no pair circuit"):
        chip.update_devices([update], np.random.default_rng(0), pairs=0.9)
    with pytest.raises(InputError, match=r"^pairs: expected a refresh level in \(0, 1\]"):
        chip.update_devices([], np.random.default_rng(0), pairs=1.5)


def test_pairs_on_a_chip_move_the_differences_as_direct_updates_do():
    """The same EP changes on two copies of a chip of ideal resistors, one direct, one as
    pairs: every pair's difference moves alike (the devices themselves do not)."""
    data = one_layer_pairs("ideal_resistor")
    data["layers"][0]["init"]["low"] = data["bias"]["init"]["low"] = "1 uS"  # no clipping
    direct_data = copy.deepcopy(data)
    direct_data["training"]["scheme"] = "direct"
    paired, direct = neuroemu.Chip.from_dict(data), neuroemu.Chip.from_dict(direct_data)
    rng = np.random.default_rng(3)
    shapes = [g.shape for g, _ in paired.device_arrays()]
    updates = [
        DeviceUpdate(k, rng.normal(size=s[0]), rng.normal(size=s[1]), rng.normal(size=s), 1e-8)
        for k, s in enumerate(shapes)
    ]
    before = [g.copy() for g, _ in paired.device_arrays()]
    paired.update_devices(updates, np.random.default_rng(0), pairs=1.0)
    direct.update_devices(updates, np.random.default_rng(0))
    for k, (old, (g_pair, _), (g_direct, _)) in enumerate(
        zip(before, paired.device_arrays(), direct.device_arrays(), strict=True)
    ):
        a, b = paired.pair_halves(k)
        np.testing.assert_allclose(g_pair[a] - g_pair[b], g_direct[a] - g_direct[b], atol=1e-18)
        assert np.all(g_pair >= old)
        assert not np.allclose(g_pair, g_direct)


@pytest.mark.parametrize("write", ["pulses", "verified"])
def test_a_pcm_chip_learns_through_pairs_and_resumes(tmp_path, write):
    """The pcm_pulsed card (gradual SET, RESET) trained by pairs, refreshed at 60 % of the
    range, open loop or by program and verify: it learns two classes, the epochs report
    pulses and refreshes, and a resumed run is the uninterrupted one."""
    x, y = two_classes(400)
    write_idx(tmp_path / "two", x, y, n_test=100)
    data = tmp_path / "two"

    def spec() -> dict:
        data = one_layer_pairs()
        data["training"]["refresh_write"] = write
        return data

    chip = neuroemu.Chip.from_dict(spec())
    assert chip.spec.training.pair_refresh == Refresh(0.6, verified=write == "verified")
    with warnings.catch_warnings():
        warnings.simplefilter("error", NeuroemuWarning)
        run = neuroemu.simulate(chip, dataset=data, epochs=3, out=tmp_path / "run.h5")
    assert run.history[0]["error"] > 0.3
    assert run.history[3]["error"] < 0.1
    assert run.history[3]["update_pulses_per_device"] > 0.0
    assert sum(run.history[e]["update_refreshes_per_pair"] for e in (1, 2, 3)) > 0.0
    first = neuroemu.simulate(neuroemu.Chip.from_dict(spec()), dataset=data,
                              epochs=1, out=tmp_path / "resumed.h5")  # fmt: skip
    assert untimed(first.history[1]) == untimed(run.history[1])
    resumed = neuroemu.simulate(neuroemu.Chip.from_dict(spec()), dataset=data,
                                epochs=3, resume=tmp_path / "resumed.h5")  # fmt: skip
    assert untimed(resumed.history) == untimed(run.history)


def test_the_spec_refuses_what_pairs_cannot_train():
    data = one_layer_pairs()
    data["training"]["scheme"] = "direct"
    with pytest.raises(SpecError, match=r"^<dict>: training\.scheme: direct, but device "
                       r"pcm_pulsed depresses only by an abrupt RESET"):  # fmt: skip
        neuroemu.Chip.from_dict(data)
    data = one_layer_pairs()
    data["layers"][0]["readout"] = "single"
    data["layers"][0]["size"] = 2
    data["inputs"]["encoding"] = "single"
    with pytest.raises(SpecError, match=r"layers\[0\] \(output\) has none: its inputs need "):
        neuroemu.Chip.from_dict(data)
    tiny = tiny_levels("stochastic")
    tiny["training"]["scheme"] = "pairs"
    with pytest.raises(SpecError, match=r"layers\[1\] \(hidden2\) has none: it joins two hidden"):
        neuroemu.Chip.from_dict(tiny)


def test_a_pair_accumulator_programs_exactly_what_was_asked():
    """``pairs-carry`` on a levels card away from the bounds: after any number of updates
    each pair's difference has moved by the sum of the changes asked, less what its
    accumulator holds, which stays within half a level; changes far under a level add up."""
    rng = np.random.default_rng(5)
    c = card("levels")
    g = rng.uniform(5e-6, 8e-6, (12, 8))
    start, residual = g.copy(), np.zeros_like(g)
    a, b = ROWS
    asked = np.zeros_like(g[a])
    for _ in range(20):
        delta = rng.normal(0.0, 0.1 * c.level_step, g.shape)
        asked += delta[a] - delta[b]
        pair_update(g, delta, ROWS, c, rng, residual=residual, threshold=0.5, refresh_at=1.0)
    moved = (g[a] - g[b]) - (start[a] - start[b])
    np.testing.assert_allclose(moved + residual[a], asked, rtol=0, atol=1e-18)
    assert np.all(np.abs(residual[a]) <= 0.5 * c.level_step) and np.all(residual[b] == 0)
    assert np.any(moved != 0)


def test_programming_energy_counts_set_pulses_and_resets_at_their_own_energy():
    """A pair update's energy: every SET pulse at the card's pulse_energy, the two RESETs
    of each refresh at its reset_energy; on a chip, the epoch figure is that sum over the
    arrays, and a card without figures gives none."""
    c = card("set-reset").model_copy(update={"pulse_energy": 2e-12, "reset_energy": 7e-12})
    rng = np.random.default_rng(4)
    g = rng.uniform(G_MIN, 20e-6, (12, 8))
    g_ref = g.copy()
    for _ in range(4):
        delta = rng.normal(0.0, 6e-6, g.shape)
        g_ref, pulses, resets = reference(g_ref, delta, ROWS, c, 0.5)
        counts = pair_update(g, delta, ROWS, c, None, refresh_at=0.5)
        assert resets > 0
        energy = c.programming_energy(int(counts[3]), 2 * int(counts[4]))
        assert energy == pytest.approx((pulses - resets) * 2e-12 + resets * 7e-12, rel=1e-12)

    data = one_layer_pairs({"g_min": "0 uS", "g_max": "25 uS", "rounding": "stochastic",
                            "pulses": {"up": 0.05, "down": "reset"},
                            "pulse_energy": "2 pJ", "reset_energy": "7 pJ"})  # fmt: skip
    chip = neuroemu.Chip.from_dict(data)
    shapes = [g.shape for g, _ in chip.device_arrays()]
    updates = [
        DeviceUpdate(k, rng.normal(size=s[0]), rng.normal(size=s[1]), rng.normal(size=s), 3e-6)
        for k, s in enumerate(shapes)
    ]
    for _ in range(5):
        chip.update_devices(updates, np.random.default_rng(0), pairs=0.3)
    counts = chip.update_counts
    resets = 2 * sum(counts.refreshed)
    assert resets > 0 and sum(counts.pulses) > resets
    assert counts.programming_energy == pytest.approx(
        (sum(counts.pulses) - resets) * 2e-12 + resets * 7e-12, rel=1e-12
    )
    assert counts.read_energy is None  # the card gives no read_energy
    assert sum(counts.reads) == 2 * sum(counts.refreshed)
    priced = neuroemu.Chip.from_dict(one_layer_pairs({**data["layers"][0]["device"],
                                                      "read_energy": "0.5 pJ"}))  # fmt: skip
    for _ in range(5):
        priced.update_devices(updates, np.random.default_rng(0), pairs=0.3)
    assert priced.update_counts.reads == counts.reads  # the same pairs, the same refreshes
    assert priced.update_counts.read_energy == pytest.approx(sum(counts.reads) * 0.5e-12)
    plain = neuroemu.Chip.from_dict(one_layer_pairs("ideal_resistor"))  # no figures
    plain.update_devices(updates, np.random.default_rng(0), pairs=0.3)
    assert plain.update_counts.programming_energy is None


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"pulse_energy": "1 pJ"}, "a continuous device takes no pulses"),
        ({"n_levels": 8, "reset_energy": "1 pJ"}, "only a card with pulses.down: reset"),
        ({"pulses": {"up": 0.1, "down": "reset"}, "pulse_energy": "1 pJ"}, "together"),
        ({"n_levels": 8, "pulse_energy": "-1 pJ"}, "must be >= 0 J"),
    ],
)
def test_a_card_refuses_energy_figures_it_cannot_use(extra, message):
    with pytest.raises(ValueError, match=message):
        ResistorCard(kind="resistor", name="x", g_min=G_MIN, g_max=G_MAX, **extra)


def test_the_kernel_draws_as_the_device_model_says():
    """A card that draws (stochastic rounding, cycle noise, soft bounds), many pairs asked
    for the same change: the kernel's draws differ from numpy's but not their law; the
    mean programmed difference and the mean pulse count agree within a few standard
    errors, and the counts of both paths agree with each other."""
    c = ResistorCard(kind="resistor", name="pcm", g_min=0.0, g_max=25e-6, rounding="stochastic",
                     pulses={"up": 0.05, "down": "reset", "cycle_noise": 0.5})  # fmt: skip
    shape = (400, 500)
    halves = ((slice(0, 200),), (slice(200, None),))
    delta = np.zeros(shape)
    delta[:200] = 0.3 * 0.05 * 25e-6  # 0.3 of a nominal SET pulse, on side a
    results = []
    for kernel in (False, True):
        g = np.full(shape, 5e-6)
        counts = pair_update(
            g,
            delta,
            halves,
            c,
            np.random.default_rng(1),
            refresh_at=1.0,
            program=program_half if kernel else None,
        )
        moved = g[:200] - 5e-6
        results.append((moved.mean(), moved.std() / np.sqrt(moved.size), counts))
    (m0, e0, c0), (m1, e1, c1) = results
    assert abs(m0 - m1) < 4 * np.hypot(e0, e1)
    assert c0[0] == c1[0] == 200 * 500
    n = c0[0]
    p = 0.3  # chance of a pulse
    assert abs(c0[3] - c1[3]) < 4 * np.sqrt(2 * n * p * (1 - p))
    assert abs(c0[1] - c1[1]) < 4 * np.sqrt(2 * n * p * (1 - p))
