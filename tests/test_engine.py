"""settle against independent solvers of the same circuit, and its bookkeeping."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy.linalg import cho_factor, cho_solve, cholesky
from scipy.optimize import lsq_linear

import neuroemu
from neuroemu.errors import InputError
from neuroemu.models.diode import diode_current

ROOT = Path(__file__).resolve().parents[1]


def chip_dict(diode: str = "ideal_diode", sizes=(6, 4), out=4, readout="differential", **kw):
    data = yaml.safe_load((ROOT / "chips" / "tiny.yaml").read_text())
    layers = []
    for index, size in enumerate(sizes):
        layers.append(
            {
                "name": f"h{index}",
                "size": size,
                "device": "ideal_resistor",
                "diode": diode,
                "init": {"distribution": "uniform", "low": "1 uS", "high": "50 uS"},
                **kw,
            }
        )
    layers.append(
        {
            "name": "out",
            "size": out,
            "device": "ideal_resistor",
            "readout": readout,
            "init": {"distribution": "uniform", "low": "1 uS", "high": "50 uS"},
        }
    )
    data["layers"] = layers
    data["inputs"]["gain"] = "5 V"
    return data


def linear_system(chip, x_row, beta=0.0, target=None):
    """The free nodes' KCL as ``b - A V`` (all free layers stacked), built element by element."""
    sizes = chip.layer_sizes
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    n = offsets[-1]
    a = np.zeros((n, n))
    b = np.zeros(n)
    sources = chip.source_voltages(x_row[None, :])[0]
    v_b = chip.spec.bias.voltage

    def connect(i, j, g):  # free node i to free node j
        a[i, i] += g
        a[j, j] += g
        a[i, j] -= g
        a[j, i] -= g

    def to_source(j, g, v):
        a[j, j] += g
        b[j] += g * v

    for k, w in enumerate(chip.conductances):
        for i in range(w.shape[0]):
            for j in range(w.shape[1]):
                if k == 0:
                    to_source(offsets[0] + j, w[i, j], sources[i])
                else:
                    connect(offsets[k - 1] + i, offsets[k] + j, w[i, j])
        bias = chip.bias_conductance[k]
        for j in range(sizes[k]):
            to_source(offsets[k] + j, bias[0, j], v_b)
            to_source(offsets[k] + j, bias[1, j], -v_b)
    if beta:
        for j in range(sizes[-1]):
            to_source(offsets[-2] + j, beta, target[j])
    lo = np.concatenate([chip.node_bounds(layer)[0] for layer in chip.spec.layers])
    hi = np.concatenate([chip.node_bounds(layer)[1] for layer in chip.spec.layers])
    return a, b, lo, hi, offsets


def split(v, offsets):
    return [v[offsets[k] : offsets[k + 1]] for k in range(len(offsets) - 1)]


def ideal_reference(chip, x_row, **nudge):
    """Minimise the co-content under the diode bounds by bounded least squares (BVLS, an
    exact active-set method): E = 1/2 V'AV - b'V = 1/2 |C V - d|^2 + const, A = C'C."""
    a, b, lo, hi, offsets = linear_system(chip, x_row, **nudge)
    c = cholesky(a)  # upper: A = C'C
    d = np.linalg.solve(c.T, b)
    result = lsq_linear(c, d, bounds=(lo, hi), method="bvls", tol=1e-15, lsmr_tol=None)
    return split(result.x, offsets)


def shockley_reference(chip, x_row):
    """Damped Newton on the whole KCL system with a dense Jacobian."""
    a, b, lo, hi, offsets = linear_system(chip, x_row)
    card = chip.spec.layers[0].diode
    n_vt = card.n * chip.thermal_voltage(chip.spec.layers[0])
    has_lo, has_hi = np.isfinite(lo), np.isfinite(hi)

    def residual(v):
        f = b - a @ v
        d_lo = np.where(has_lo, lo - v, 0.0)
        d_hi = np.where(has_hi, v - hi, 0.0)
        f += np.where(has_lo, diode_current(d_lo, card.i_s, n_vt, card.gmin), 0.0)
        f -= np.where(has_hi, diode_current(d_hi, card.i_s, n_vt, card.gmin), 0.0)
        slope = np.where(
            has_lo, card.i_s / n_vt * np.exp(np.minimum(d_lo / n_vt, 600)) + card.gmin, 0
        )
        slope += np.where(
            has_hi, card.i_s / n_vt * np.exp(np.minimum(d_hi / n_vt, 600)) + card.gmin, 0
        )
        return f, a + np.diag(slope)

    v = cho_solve(cho_factor(a), b)
    for _ in range(200):
        f, jac = residual(v)
        step = np.linalg.solve(jac, f)
        t = 1.0
        while np.linalg.norm(residual(v + t * step)[0]) > np.linalg.norm(f) and t > 1e-6:
            t /= 2
        v = v + t * step
        if np.abs(t * step).max() < 1e-15:
            break
    return split(v, offsets)


@pytest.mark.parametrize("data", [None, chip_dict(sizes=(8, 6, 4), out=3, readout="single")])
def test_ideal_equilibrium_matches_bounded_least_squares(data):
    chip = (
        neuroemu.Chip.from_yaml(ROOT / "chips" / "tiny.yaml")
        if data is None
        else neuroemu.Chip.from_dict(data)
    )
    x = np.random.default_rng(1).uniform(size=(5, chip.n_inputs))
    eq = chip.settle(x)
    assert eq.converged
    gain = chip.spec.inputs.gain
    for b in range(len(x)):
        reference = ideal_reference(chip, x[b])
        for ours, theirs in zip(eq.voltages, reference, strict=True):
            np.testing.assert_allclose(ours[b], theirs, atol=1e-9 * gain, rtol=0)
    # The diodes matter: some nodes sit on their clamps.
    assert any(np.any(v == 0.0) for v in eq.voltages[:-1])


def test_ideal_optimality_conditions():
    chip = neuroemu.Chip.from_dict(chip_dict(sizes=(10, 8), out=4))
    x = np.random.default_rng(2).uniform(size=(6, chip.n_inputs))
    eq = chip.settle(x)
    for b in range(len(x)):
        a, rhs, lo, hi, _ = linear_system(chip, x[b])
        v = np.concatenate([layer[b] for layer in eq.voltages])
        r = rhs - a @ v  # current the node's conductances bring in
        scale = np.diag(a) * chip.circuit().v_scale
        free = (v > lo) & (v < hi)
        assert np.all(np.abs(r[free]) <= 1e-9 * scale[free])
        at_lo = v <= lo  # lower diode may only push current in: r <= 0 there
        at_hi = v >= hi  # upper diode may only draw current out: r >= 0 there
        assert at_lo.any() and at_hi.any()
        assert np.all(r[at_lo] <= 1e-9 * scale[at_lo])
        assert np.all(r[at_hi] >= -1e-9 * scale[at_hi])
        assert np.all(v >= lo) and np.all(v <= hi)


def test_shockley_equilibrium_matches_dense_newton():
    chip = neuroemu.Chip.from_dict(chip_dict("shockley_1n4148", sizes=(7, 5), out=4))
    x = np.random.default_rng(3).uniform(size=(4, chip.n_inputs))
    eq = chip.settle(x)
    for b in range(len(x)):
        for ours, theirs in zip(eq.voltages, shockley_reference(chip, x[b]), strict=True):
            np.testing.assert_allclose(ours[b], theirs, atol=1e-9, rtol=0)
    assert np.abs(eq.voltages[0]).max() > 0.3  # diodes well into conduction
    assert eq.relative_residual.max() < eq.tol


def test_nudged_equilibrium_includes_the_nudging_current():
    chip = neuroemu.Chip.from_dict(chip_dict(sizes=(6,), out=4, readout="single"))
    x = np.random.default_rng(4).uniform(size=(3, chip.n_inputs))
    target = np.tile([1.0, -1.0, 0.5, 0.0], (3, 1))
    free = chip.settle(x)
    beta = 1e-4
    nudged = chip.settle(x, beta=beta, target=target)
    # Outputs move toward the target.
    assert np.all(np.abs(nudged.output - target) < np.abs(free.output - target))
    for b in range(3):
        reference = ideal_reference(chip, x[b], beta=beta, target=target[b])
        for ours, theirs in zip(nudged.voltages, reference, strict=True):
            np.testing.assert_allclose(ours[b], theirs, atol=1e-9, rtol=0)
    negative = chip.settle(x, beta=-beta, target=target)
    assert np.all(np.abs(negative.output - target) > np.abs(free.output - target))
    with pytest.raises(InputError, match="non-positive"):
        chip.settle(x, beta=-1.0, target=target)


def grounded_reference(chip, x_row, grounded, **nudge):
    """``ideal_reference`` with the ``grounded`` nodes (one mask per layer) held at 0 V:
    their variables eliminated, the rest minimised by BVLS."""
    a, b, lo, hi, offsets = linear_system(chip, x_row, **nudge)
    keep = ~np.concatenate(grounded)
    c = cholesky(a[np.ix_(keep, keep)])
    d = np.linalg.solve(c.T, b[keep])
    result = lsq_linear(c, d, bounds=(lo[keep], hi[keep]), method="bvls", tol=1e-15)
    v = np.zeros(len(b))
    v[keep] = result.x
    return split(v, offsets)


@pytest.mark.parametrize("per_sample", [False, True])
def test_grounded_nodes_match_bounded_least_squares(per_sample, monkeypatch):
    """Nodes switched to ground (dropout) sit at 0 V, their conductances still loading the
    neighbours: the co-content minimised over the other nodes, by an exact active-set method.
    An output node (linear) is grounded too, and a nudged phase keeps the same switches.
    Switches set sample by sample are cut into chunks with their rows."""
    engine = importlib.import_module("neuroemu.engine.settle")
    monkeypatch.setattr(engine, "CHUNK_ROWS", 2)  # 4 samples: two chunks
    chip = neuroemu.Chip.from_dict(chip_dict(sizes=(8, 6), out=4, readout="single"))
    x = np.random.default_rng(12).uniform(size=(4, chip.n_inputs))
    rng = np.random.default_rng(13)
    shape = (len(x),) if per_sample else ()
    grounded = [rng.random((*shape, n)) < 0.4 for n in chip.layer_sizes]
    grounded[0][..., :2] = True  # a node of each diode direction
    grounded[-1][...] = [False, True, False, False]
    rows = [[mask[b] if per_sample else mask for mask in grounded] for b in range(len(x))]
    if per_sample:
        assert not np.array_equal(grounded[0][0], grounded[0][1])
    free = chip.settle(x)
    eq = chip.settle(x, grounded=grounded)
    target = np.tile([1.0, -1.0, 0.5, 0.0], (len(x), 1))
    nudged = chip.settle(x, beta=1e-4, target=target, init=eq, grounded=grounded)
    assert eq.converged and nudged.converged
    gain = chip.spec.inputs.gain
    for b in range(len(x)):
        for result, nudge in ((eq, {}), (nudged, {"beta": 1e-4, "target": target[b]})):
            reference = grounded_reference(chip, x[b], rows[b], **nudge)
            for ours, theirs, mask in zip(result.voltages, reference, rows[b], strict=True):
                np.testing.assert_allclose(ours[b], theirs, atol=1e-9 * gain, rtol=0)
                assert np.all(ours[b][mask] == 0.0)
    # The switches matter: nodes they hold at 0 V are not at 0 V without them, and the
    # reported residual counts the switches' currents as the circuit's own.
    assert np.any(free.voltages[0][np.broadcast_to(grounded[0], free.voltages[0].shape)] != 0)
    assert np.abs(free.output[:, 1]).min() > 1e-3
    assert eq.relative_residual.max() < eq.tol
    # No closed switch is the same circuit as no switches.
    none = chip.settle(x, grounded=[np.zeros(n, bool) for n in chip.layer_sizes])
    for a, b in zip(none.voltages, free.voltages, strict=True):
        np.testing.assert_array_equal(a, b)


def test_grounding_bad_arguments():
    chip = neuroemu.Chip.from_dict(chip_dict(sizes=(6,), out=4))
    x = np.zeros((2, 6))
    with pytest.raises(InputError, match="grounded: expected 2 layers, got 1"):
        chip.settle(x, grounded=[np.ones(6, bool)])
    with pytest.raises(InputError, match=r"grounded\[0\]: expected booleans of shape \(6,\)"):
        chip.settle(x, grounded=[np.ones(5, bool), None])
    with pytest.raises(InputError, match=r"or \(2, 6\), got float64 \(2, 6\)"):
        chip.settle(x, grounded=[np.ones((2, 6)), None])
    shockley = neuroemu.Chip.from_dict(chip_dict("shockley_1n4148", sizes=(6,), out=4))
    with pytest.raises(InputError, match="only linear or ideal-diode nodes can be grounded"):
        shockley.settle(x, grounded=[np.ones(6, bool), None])


def test_warm_start_and_init_untouched():
    chip = neuroemu.Chip.from_dict(chip_dict(sizes=(8, 6), out=4))
    x = np.random.default_rng(5).uniform(size=(4, chip.n_inputs))
    cold = chip.settle(x)
    init = [v.copy() for v in cold.voltages]
    warm = chip.settle(x, init=cold)
    assert warm.sweeps < cold.sweeps
    for a, b, c in zip(warm.voltages, cold.voltages, init, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-9)
        np.testing.assert_array_equal(b, c)


def test_float32_agrees_with_float64():
    chip = neuroemu.Chip.from_yaml(ROOT / "chips" / "xs_784x100.yaml")
    x = np.random.default_rng(6).uniform(size=(16, 784))
    e64 = chip.settle(x)
    e32 = chip.settle(x, dtype=np.float32)
    assert e32.voltages[0].dtype == np.float32
    for a, b in zip(e64.voltages, e32.voltages, strict=True):
        np.testing.assert_allclose(b, a, atol=1e-4 * chip.spec.inputs.gain)


def test_parallel_and_serial_identical_and_seeds():
    """A batch of three chunks settles to the same bits on threads or one after another."""
    engine = importlib.import_module("neuroemu.engine.settle")  # the module, not the function

    chip = neuroemu.Chip.from_yaml(ROOT / "chips" / "kendall_784x100_shockley.yaml")
    x = np.random.default_rng(7).uniform(size=(2 * engine.CHUNK_ROWS + 1, 784))
    a = chip.settle(x, parallel=True)
    b = chip.settle(x, parallel=False)
    for u, v in zip(a.voltages, b.voltages, strict=True):
        assert np.array_equal(u, v)
    for key in ("sweeps_per_sample", "residual", "relative_residual", "power"):
        assert np.array_equal(getattr(a, key), getattr(b, key))
    same = neuroemu.Chip.from_yaml(ROOT / "chips" / "kendall_784x100_shockley.yaml", seed=0)
    other = neuroemu.Chip.from_yaml(ROOT / "chips" / "kendall_784x100_shockley.yaml", seed=1)
    assert chip.seed == 0 and other.seed == 1
    assert np.array_equal(chip.conductances[0], same.conductances[0])
    assert not np.array_equal(chip.conductances[0], other.conductances[0])


@pytest.mark.parametrize("diode", ["ideal_diode", "shockley_1n4148"])
def test_chunks_sweep_as_one_batch(diode, monkeypatch):
    """Chunks stop together: every sample of a chunked batch runs as many sweeps as the
    whole batch in one piece would, and reaches the same voltages (to the rounding of
    products over fewer rows), traced or not."""
    engine = importlib.import_module("neuroemu.engine.settle")  # the module, not the function

    chip = neuroemu.Chip.from_dict(chip_dict(diode, sizes=(6, 5), out=4))
    rng = np.random.default_rng(13)
    x = rng.uniform(size=(70, chip.n_inputs))
    target = rng.uniform(-1, 1, (70, 4))
    init = [rng.uniform(-0.1, 0.1, (70, n)) for n in chip.layer_sizes]
    settled = chip.settle(x, 1e-4, target)
    for a, b in zip(init, settled.voltages, strict=True):
        a[:14] = b[:14]  # the first chunk starts settled: it is done long before the others
    monkeypatch.setattr(engine, "CHUNK_ROWS", 16)  # 5 chunks
    chunked = chip.settle(x, 1e-4, target, init=init, trace=True)
    stops = {int(chunked.sweeps_per_sample[p].max()) for p in np.array_split(np.arange(70), 5)}
    assert len(stops) > 1  # some chunks are done before the last one
    monkeypatch.setattr(engine, "CHUNK_ROWS", 1000)
    whole = chip.settle(x, 1e-4, target, init=init, trace=True)
    assert chunked.sweeps == whole.sweeps
    np.testing.assert_array_equal(chunked.sweeps_per_sample, whole.sweeps_per_sample)
    for a, b in zip(chunked.voltages, whole.voltages, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-13)
    for a, b in zip(chunked.trace.voltages, whole.trace.voltages, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-13)
    for key in ("power", "energy"):
        np.testing.assert_allclose(
            getattr(chunked.trace, key), getattr(whole.trace, key), rtol=1e-12
        )
    np.testing.assert_allclose(chunked.power, whole.power, rtol=1e-12)
    assert chunked.relative_residual.max() <= chunked.tol


def direct_power(chip, x, eq):
    """Static power per sample by a sum over every element of the chip."""
    rows = [chip.source_voltages(x), *eq.voltages[:-1]]
    v_b = chip.spec.bias.voltage
    total = np.zeros(len(x))
    for k, g in enumerate(chip.conductances):
        cols = eq.voltages[k]
        total += np.einsum("ij,bij->b", g, (rows[k][:, :, None] - cols[:, None, :]) ** 2)
        bias = chip.bias_conductance[k]
        total += ((cols - v_b) ** 2) @ bias[0] + ((cols + v_b) ** 2) @ bias[1]
    for k, layer in enumerate(chip.spec.layers):
        card = layer.diode
        if card is None or card.model == "ideal":
            continue
        lo, hi = chip.node_bounds(layer)
        n_vt = card.n * chip.thermal_voltage(layer)
        for b in range(len(x)):
            for j, vj in enumerate(eq.voltages[k][b]):
                for drop in ([lo[j] - vj] if np.isfinite(lo[j]) else []) + (
                    [vj - hi[j]] if np.isfinite(hi[j]) else []
                ):
                    total[b] += float(diode_current(drop, card.i_s, n_vt, card.gmin)) * drop
    return total


@pytest.mark.parametrize("diode", ["ideal_diode", "shockley_1n4148"])
def test_power_is_the_sum_over_every_element(diode):
    """The chip's own dissipation, also while nudged: the nudging element (a conductance
    to the target, or an injected current) is outside the chip and not counted."""
    chip = neuroemu.Chip.from_dict(chip_dict(diode, sizes=(6, 5), out=4))
    x = np.random.default_rng(8).uniform(size=(3, chip.n_inputs))
    target = np.random.default_rng(9).uniform(-1, 1, (3, 4))
    injected = np.random.default_rng(10).uniform(-1e-5, 1e-5, (3, 4))
    for nudging in ({}, {"beta": 1e-4, "target": target}, {"current": injected}):
        eq = chip.settle(x, **nudging)
        np.testing.assert_allclose(eq.power, direct_power(chip, x, eq), rtol=1e-10)
        np.testing.assert_allclose(eq.energy, eq.power * eq.settle_time)
    free = chip.settle(x)
    assert not np.allclose(chip.settle(x, beta=1e-4, target=target).power, free.power)


@pytest.mark.parametrize(
    ("x", "match"),
    [
        (np.zeros((2, 5)), r"expected shape \(batch, 6\)"),
        (np.full((2, 6), np.nan), "NaN"),
        (np.full((2, 6), 1.5), r"values must lie in \[0, 1\]"),
        (np.zeros((2, 6, 1)), "expected shape"),
    ],
)
def test_bad_inputs(x, match):
    chip = neuroemu.Chip.from_yaml(ROOT / "chips" / "tiny.yaml")
    with pytest.raises(InputError, match=match) as info:
        chip.settle(x)
    assert "\n" not in str(info.value)


def test_bad_nudging_arguments():
    chip = neuroemu.Chip.from_yaml(ROOT / "chips" / "tiny.yaml")
    x = np.zeros((2, 6))
    with pytest.raises(InputError, match="target: required"):
        chip.settle(x, beta=1e-6)
    with pytest.raises(InputError, match="target: expected shape"):
        chip.settle(x, beta=1e-6, target=np.zeros((2, 3)))
    with pytest.raises(InputError, match="dtype"):
        chip.settle(x, dtype=np.int32)


def test_max_sweeps_reports_not_converged():
    chip = neuroemu.Chip.from_dict(chip_dict(sizes=(8, 6, 6), out=4))
    x = np.random.default_rng(9).uniform(size=(3, chip.n_inputs))
    eq = chip.settle(x, max_sweeps=1)
    assert not eq.converged and eq.sweeps == 1
    assert eq.relative_residual.max() > eq.tol


def test_readout_and_prediction():
    chip = neuroemu.Chip.from_yaml(ROOT / "chips" / "tiny.yaml")
    x = np.random.default_rng(10).uniform(size=(20, 6))
    eq = chip.settle(x)
    out = eq.output
    np.testing.assert_array_equal(eq.scores, out[:, 0::2] - out[:, 1::2])
    np.testing.assert_array_equal(eq.prediction, np.argmax(eq.scores, axis=1))
    assert chip.n_outputs == 2


def test_trace_records_every_sweep():
    chip = neuroemu.Chip.from_dict(chip_dict(sizes=(8, 6), out=4))
    x = np.random.default_rng(11).uniform(size=(3, chip.n_inputs))
    plain = chip.settle(x)
    traced = chip.settle(x, trace=True)
    t = traced.trace
    assert plain.trace is None and t is not None
    assert [v.shape for v in t.voltages] == [(traced.sweeps + 1, 3, n) for n in chip.layer_sizes]
    for k, v in enumerate(t.voltages):
        np.testing.assert_array_equal(v[0], 0.0)  # cold start
        np.testing.assert_array_equal(v[-1], traced.voltages[k])
        np.testing.assert_array_equal(traced.voltages[k], plain.voltages[k])
    assert t.residual.shape == (traced.sweeps, 3)
    assert t.residual[-1].max() <= traced.tol  # the last sweep met the tolerance
    assert t.residual[0].max() > t.residual[-1].max()
    np.testing.assert_allclose(t.power[-1], traced.power, rtol=1e-12)
    # The power of an intermediate state, by a direct sum over every element.
    s = 1
    rows = [chip.source_voltages(x), *[v[s] for v in t.voltages[:-1]]]
    total = np.zeros(3)
    v_b = chip.spec.bias.voltage
    for k, g in enumerate(chip.conductances):
        cols = t.voltages[k][s]
        total += np.einsum("ij,bij->b", g, (rows[k][:, :, None] - cols[:, None, :]) ** 2)
        bias = chip.bias_conductance[k]
        total += ((cols - v_b) ** 2) @ bias[0] + ((cols + v_b) ** 2) @ bias[1]
    np.testing.assert_allclose(t.power[s], total, rtol=1e-10)


def test_trace_energy_never_rises_under_ideal_diodes():
    """Block coordinate descent on the co-content: each sweep can only lower it."""
    chip = neuroemu.Chip.from_dict(chip_dict(sizes=(8, 6), out=4))
    x = np.random.default_rng(12).uniform(size=(4, chip.n_inputs))
    t = chip.settle(x, trace=True).trace
    assert np.all(np.diff(t.energy, axis=0) <= 1e-12 * t.energy[0])
    np.testing.assert_allclose(t.energy, 0.5 * t.power, rtol=1e-10)  # no diode power here
