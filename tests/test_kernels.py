"""Each Numba kernel against a slow, obvious reference written here."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq

from neuroemu.kernels import (
    KIND_IDEAL,
    KIND_LINEAR,
    KIND_SHOCKLEY,
    NodeParams,
    kcl_residual,
    solve_nodes,
)
from neuroemu.kernels import nodes as kernel_nodes
from neuroemu.kernels.nodes import report_nodes, weighted_squares
from neuroemu.models.diode import diode_current, thermal_voltage

I_S = 2.52e-9
N_VT = 1.752 * thermal_voltage(300.15)
GMIN = 1e-12


def reference_shockley(i_in, g, lo, hi):
    """Root of the node's KCL by bracketing and Brent's method, one node at a time."""

    def f(v):
        out = i_in - g * v
        if np.isfinite(lo):
            out += diode_current(lo - v, I_S, N_VT, GMIN)
        if np.isfinite(hi):
            out -= diode_current(v - hi, I_S, N_VT, GMIN)
        return float(out)

    a, b = -50.0, 50.0
    assert f(a) > 0 > f(b)
    return brentq(f, a, b, xtol=1e-15, rtol=1e-15, maxiter=500)


def layer(batch=7, nodes=9, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    g = rng.uniform(1e-6, 1e-3, nodes)
    # Node voltages from -10 V to +10 V if there were no diodes.
    i_in = rng.uniform(-10, 10, (batch, nodes)) * g * scale
    lo = np.full(nodes, -np.inf)
    hi = np.full(nodes, np.inf)
    lo[: nodes // 3] = 0.0  # V >= 0
    hi[nodes // 3 : 2 * nodes // 3] = 0.0  # V <= 0
    lo[2 * nodes // 3 :] = -0.3  # a pair: V in [-0.3, 0.4]
    hi[2 * nodes // 3 :] = 0.4
    lo[-1], hi[-1] = -np.inf, np.inf  # and one node without diodes
    return i_in, g, lo, hi


@pytest.mark.parametrize("parallel", [True, False])
def test_ideal_is_clip(parallel):
    i_in, g, lo, hi = layer()
    v = np.zeros_like(i_in)
    change = np.zeros(len(v))
    solve_nodes(i_in, g, NodeParams(KIND_IDEAL, lo, hi), v, change, parallel=parallel)
    expected = np.minimum(np.maximum(i_in / g, lo), hi)
    np.testing.assert_array_equal(v, expected)
    np.testing.assert_array_equal(change, np.abs(expected).max(axis=1))


def test_linear_ignores_bounds():
    i_in, g, lo, hi = layer()
    v = np.zeros_like(i_in)
    solve_nodes(i_in, g, NodeParams(KIND_LINEAR, lo, hi), v, np.zeros(len(v)))
    np.testing.assert_allclose(v, i_in / g, rtol=1e-15)


@pytest.mark.parametrize("start", ["zero", "far", "exact"])
def test_shockley_matches_brent(start):
    i_in, g, lo, hi = layer(batch=5, nodes=12, seed=3)
    expected = np.array(
        [[reference_shockley(i_in[b, j], g[j], lo[j], hi[j]) for j in range(12)] for b in range(5)]
    )
    v = {"zero": np.zeros_like(i_in), "far": np.full_like(i_in, 40.0), "exact": expected.copy()}[
        start
    ]
    params = NodeParams(KIND_SHOCKLEY, lo, hi, I_S, N_VT, GMIN)
    solve_nodes(i_in, g, params, v, np.zeros(5))
    np.testing.assert_allclose(v, expected, rtol=0, atol=1e-12)
    # Strongly forward-biased diodes really conduct here: the clamp is not trivial.
    assert np.any((v[:, :4] < 0) & (v[:, :4] > -0.7))


def test_parallel_and_serial_bitwise_equal():
    i_in, g, lo, hi = layer(batch=64, nodes=50, seed=4)
    for params in (
        NodeParams(KIND_IDEAL, lo, hi),
        NodeParams(KIND_SHOCKLEY, lo, hi, I_S, N_VT, GMIN),
    ):
        out = []
        for parallel in (True, False):
            v = np.zeros_like(i_in)
            solve_nodes(i_in, g, params, v, np.zeros(64), parallel=parallel)
            out.append(v)
        assert np.array_equal(out[0], out[1])


def test_float32_arrays():
    i_in, g, lo, hi = layer(batch=4, nodes=9, seed=5)
    params = NodeParams(KIND_SHOCKLEY, lo, hi, I_S, N_VT, GMIN)
    v64 = np.zeros_like(i_in)
    solve_nodes(i_in, g, params, v64, np.zeros(4))
    v32 = np.zeros(i_in.shape, dtype=np.float32)
    solve_nodes(i_in.astype(np.float32), g.astype(np.float32), params, v32, np.zeros(4))
    np.testing.assert_allclose(v32, v64, rtol=1e-5, atol=1e-6)


def test_residual_matches_formula():
    i_in, g, lo, hi = layer(batch=6, nodes=9, seed=6)
    rng = np.random.default_rng(0)
    v = rng.uniform(-1, 1, i_in.shape)
    v[:, 0] = 0.0  # exactly at a lower clamp
    v[:, 3] = 0.0  # exactly at an upper clamp
    out = np.zeros_like(v)
    kcl_residual(i_in, g, NodeParams(KIND_IDEAL, lo, hi), v, out)
    r = i_in - g * v
    expected = r.copy()
    at_lo = v <= lo
    at_hi = v >= hi
    expected[at_lo] = np.maximum(r[at_lo], 0)
    expected[at_hi] = np.minimum(r[at_hi], 0)
    np.testing.assert_allclose(out, expected, rtol=1e-14, atol=0)
    kcl_residual(i_in, g, NodeParams(KIND_SHOCKLEY, lo, hi, I_S, N_VT, GMIN), v, out)
    shockley = i_in - g * v
    shockley += np.where(
        np.isfinite(lo), diode_current(np.where(np.isfinite(lo), lo - v, 0), I_S, N_VT, GMIN), 0
    )
    shockley -= np.where(
        np.isfinite(hi), diode_current(np.where(np.isfinite(hi), v - hi, 0), I_S, N_VT, GMIN), 0
    )
    np.testing.assert_allclose(out, shockley, rtol=1e-12, atol=1e-20)


@pytest.mark.parametrize("rows", [1, 7])
def test_const_is_added_in_the_same_pass(rows):
    """``const`` (one row for the batch, or a row per sample) is added to ``i_in`` in place
    and the nodes solved for the sum, exactly as if added first."""
    i_in, g, lo, hi = layer(seed=8)
    const = np.random.default_rng(9).uniform(-5, 5, (rows, 9)) * g
    for params in (
        NodeParams(KIND_IDEAL, lo, hi),
        NodeParams(KIND_SHOCKLEY, lo, hi, I_S, N_VT, GMIN),
    ):
        expected_v, expected_change = np.zeros_like(i_in), np.zeros(7)
        solve_nodes(i_in + const, g, params, expected_v, expected_change)
        fused, v, change = i_in.copy(), np.zeros_like(i_in), np.zeros(7)
        solve_nodes(fused, g, params, v, change, const=const)
        np.testing.assert_array_equal(fused, i_in + const)
        np.testing.assert_array_equal(v, expected_v)
        np.testing.assert_array_equal(change, expected_change)


def test_nan_is_never_a_small_change():
    """The change is a maximum taken on bit patterns: a NaN node must make it NaN (never
    below a tolerance), whatever else the row holds."""
    i_in, g, lo, hi = layer(batch=3, nodes=40, seed=10)
    i_in[1, 17] = np.nan
    change = np.zeros(3)
    solve_nodes(i_in, g, NodeParams(KIND_LINEAR, lo, hi), np.zeros_like(i_in), change)
    assert np.isnan(change[1]) and np.all(np.isfinite(change[[0, 2]]))


def reference_report(i_in, g, params, v, scale, conductance, source, diodes):
    """Residuals by :func:`kcl_residual` and the power term by numpy, row by row."""
    r = np.zeros(v.shape)
    kcl_residual(i_in, g, params, v, r)
    power = np.einsum("bj,bj->b", v, conductance * v - i_in - source)
    if diodes and params.kind == KIND_SHOCKLEY:
        for bound, sign in ((params.lo, 1.0), (params.hi, -1.0)):
            present = np.isfinite(bound)
            drop = sign * (bound[present] - v[:, present])
            power += (diode_current(drop, params.i_s, params.n_vt, params.gmin) * drop).sum(1)
    return np.abs(r).max(1), (np.abs(r) / (g * scale)).max(1), power


@pytest.mark.parametrize("kind", [KIND_LINEAR, KIND_IDEAL, KIND_SHOCKLEY])
@pytest.mark.parametrize("diodes", [True, False])
def test_report_matches_formula(kind, diodes):
    i_in, g, lo, hi = layer(batch=6, nodes=9, seed=11)
    params = NodeParams(kind, lo, hi, I_S, N_VT, GMIN)
    rng = np.random.default_rng(12)
    v = rng.uniform(-1, 1, i_in.shape)
    v[:, 0] = 0.0  # at a lower clamp
    conductance = g * rng.uniform(0.5, 1.0, 9)
    source = rng.uniform(-1e-4, 1e-4, (6, 9))
    expected = reference_report(i_in, g, params, v, 2.0, conductance, source, diodes)
    for parallel in (False, True):
        out = np.zeros((3, 6))
        out[0, 2] = 1.0  # running maxima keep what is larger; the power adds on
        out[2] = 0.25
        report_nodes(
            i_in,
            g,
            params,
            v,
            out,
            scale=2.0,
            conductance=conductance,
            source=source,
            diodes=diodes,
            parallel=parallel,
        )
        residual = np.where(np.arange(6) == 2, np.maximum(expected[0], 1.0), expected[0])
        np.testing.assert_allclose(out[0], residual, rtol=1e-14)
        np.testing.assert_allclose(out[1], expected[1], rtol=1e-14)
        np.testing.assert_allclose(out[2], expected[2] + 0.25, rtol=1e-12)


def test_weighted_squares():
    x = np.random.default_rng(13).uniform(size=(5, 33))
    w = np.random.default_rng(14).uniform(size=33)
    out = np.zeros(5)
    weighted_squares(x, w, out)
    np.testing.assert_allclose(out, (x * x) @ w, rtol=1e-14)
    weighted_squares(x.astype(np.float32), w, out)
    np.testing.assert_allclose(out, (x.astype(np.float32).astype(float) ** 2) @ w, rtol=1e-14)


@pytest.mark.parametrize(
    "v", [0.6, 0.1, 1e-4, 0.0, -1e-3, -2.99 * N_VT, -3 * N_VT, -3.01 * N_VT, -1.0, -40.0]
)
def test_scalar_diode_matches_numpy_and_slope(v):
    current, slope = kernel_nodes.diode_current(v, I_S, N_VT, GMIN)
    assert current == pytest.approx(float(diode_current(v, I_S, N_VT, GMIN)), rel=1e-13, abs=1e-25)
    h = 1e-7 * max(abs(v), N_VT)
    numeric = (diode_current(v + h, I_S, N_VT, GMIN) - diode_current(v - h, I_S, N_VT, GMIN)) / (
        2 * h
    )
    assert slope == pytest.approx(float(numeric), rel=1e-5)


def test_diode_branches_join_smoothly():
    edge = -3 * N_VT
    below, above = edge * (1 + 1e-12), edge * (1 - 1e-12)
    c_below, s_below = kernel_nodes.diode_current(below, I_S, N_VT, 0.0)
    c_above, s_above = kernel_nodes.diode_current(above, I_S, N_VT, 0.0)
    assert c_below == pytest.approx(c_above, rel=1e-9)
    assert s_below == pytest.approx(s_above, rel=1e-9)
    # The reverse branch saturates at -I_s.
    assert float(diode_current(-100.0, I_S, N_VT)) == pytest.approx(-I_S, rel=1e-6)


@settings(max_examples=60, deadline=None)
@given(
    st.floats(-5e-3, 5e-3),
    st.floats(1e-7, 1e-2),
    st.floats(-1.0, 1.0),
    st.floats(0.0, 2.0),
)
def test_ideal_node_solution_is_optimal(i_in, g, lo, width):
    hi = lo + width
    v = np.zeros((1, 1))
    params = NodeParams(KIND_IDEAL, np.array([lo]), np.array([hi]))
    solve_nodes(np.array([[i_in]]), np.array([g]), params, v, np.zeros(1))
    assert lo <= v[0, 0] <= hi
    r = np.zeros((1, 1))
    kcl_residual(np.array([[i_in]]), np.array([g]), params, v, r)
    assert abs(r[0, 0]) <= 1e-15 * max(abs(i_in), g)


@settings(max_examples=60, deadline=None)
@given(st.floats(-1e-2, 1e-2), st.floats(1e-7, 1e-2), st.sampled_from(["lo", "hi", "pair"]))
def test_shockley_node_residual_vanishes(i_in, g, kind):
    lo = np.array([0.0 if kind != "hi" else -np.inf])
    hi = np.array([0.0 if kind == "hi" else (0.5 if kind == "pair" else np.inf)])
    params = NodeParams(KIND_SHOCKLEY, lo, hi, I_S, N_VT, GMIN)
    v = np.zeros((1, 1))
    solve_nodes(np.array([[i_in]]), np.array([g]), params, v, np.zeros(1))
    r = np.zeros((1, 1))
    kcl_residual(np.array([[i_in]]), np.array([g]), params, v, r)
    slope = g + I_S / N_VT * np.exp(min(abs(v[0, 0]) / N_VT, 700))
    # The residual is what one ulp of voltage changes the current by.
    assert abs(r[0, 0]) <= 64 * np.finfo(float).eps * max(abs(v[0, 0]), N_VT) * slope + 1e-20


def test_wrapper_checks_shapes():
    i_in, g, lo, hi = layer()
    with pytest.raises(ValueError, match="g must have shape"):
        solve_nodes(i_in, g[:-1], NodeParams(KIND_IDEAL, lo, hi), np.zeros_like(i_in), np.zeros(7))
    with pytest.raises(ValueError, match="dtypes differ"):
        solve_nodes(
            i_in, g, NodeParams(KIND_IDEAL, lo, hi), np.zeros(i_in.shape, np.float32), np.zeros(7)
        )


def test_update_kernel_random_draws():
    """Stochastic rounding is unbiased and cycle-to-cycle noise has its spread, with draws
    from the kernel's own seeded generator (the same seed, the same update)."""
    from neuroemu.kernels.update import ep_update

    rows, cols = 400, 500
    wanted = 0.3e-6  # 0.3 of a 1 uS step, or 3 pulses of 0.1 uS
    cross = np.full((rows, cols), -wanted / 2)  # the kernel's change: factor * (-2 cross)
    zeros_r, zeros_c = np.zeros(rows), np.zeros(cols)

    def run(seed, **kw):
        g = np.full((rows, cols), 5e-6)
        ep_update(g, zeros_r, zeros_c, cross, 1.0, 0.0, 1e-4, kw.pop("step", None), seed=seed, **kw)
        return g - 5e-6

    moved = run(7, step=1e-6, stochastic=True) / 1e-6
    assert set(np.unique(np.round(moved, 9))) == {0.0, 1.0}
    assert moved.mean() == pytest.approx(0.3, abs=0.005)  # 2e5 draws: std error 0.001
    np.testing.assert_array_equal(run(7, step=1e-6, stochastic=True) / 1e-6, moved)
    assert not np.array_equal(run(8, step=1e-6, stochastic=True) / 1e-6, moved)
    g_serial = np.full((rows, cols), 5e-6)  # rows on threads or in order: the same bits
    ep_update(g_serial, zeros_r, zeros_c, cross, 1.0, 0.0, 1e-4, 1e-6, True, 7, parallel=False)
    np.testing.assert_array_equal((g_serial - 5e-6) / 1e-6, moved)
    span = 1e-4
    noisy = run(3, pulses=(0.1e-6 / span, 0.1e-6 / span, False, 0.2))
    assert noisy.mean() == pytest.approx(0.3e-6, rel=0.005)
    assert noisy.std() == pytest.approx(0.2 * 0.1e-6 * np.sqrt(3), rel=0.01)


@pytest.mark.parametrize("shape", [(1568, 100), (10, 1), (2, 7)])
def test_layout_sums_and_transfer_match_numpy(shape):
    from neuroemu.kernels.layout import crossbar_sums, differential_layout

    w = np.random.default_rng(shape[0]).uniform(0, 1e-4, shape)
    rows, cols = crossbar_sums(w)
    np.testing.assert_allclose(rows, w.sum(axis=1), rtol=1e-13)
    np.testing.assert_allclose(cols, w.sum(axis=0), rtol=1e-13)
    transfer, rows2, cols2 = differential_layout(w, 0.5)
    half = shape[0] // 2
    np.testing.assert_array_equal(transfer, 0.5 * (w[:half] - w[half:]))
    np.testing.assert_allclose(rows2, w.sum(axis=1), rtol=1e-13)
    np.testing.assert_allclose(cols2, w.sum(axis=0), rtol=1e-13)
    with pytest.raises(ValueError, match="float64"):
        crossbar_sums(w.astype(np.float32))


@pytest.mark.parametrize("parallel", [True, False])
def test_update_kernel_momentum_is_the_heavy_ball_sum(parallel):
    """Three steps with momentum against the obvious numpy loop: v <- m v + change,
    g <- clip(g + v), with the clip at the bounds never undoing the velocity."""
    from neuroemu.kernels.update import ep_update

    rng = np.random.default_rng(4)
    rows, cols, m = 30, 20, 0.9
    g = rng.uniform(0, 20e-6, (rows, cols))
    velocity = np.zeros_like(g)
    g_ref, v_ref = g.copy(), np.zeros_like(g)
    for _ in range(3):
        r, c = rng.normal(0, 1e-6, rows), rng.normal(0, 1e-6, cols)
        cross = rng.normal(0, 1e-6, (rows, cols))
        ep_update(
            g, r, c, cross, -2.0, 0.0, 20e-6, None, parallel=parallel, velocity=velocity, momentum=m
        )
        v_ref = m * v_ref - 2.0 * (r[:, None] + c[None, :] - 2.0 * cross)
        g_ref = np.clip(g_ref + v_ref, 0.0, 20e-6)
    np.testing.assert_allclose(velocity, v_ref, rtol=1e-12, atol=1e-21)
    np.testing.assert_allclose(g, g_ref, rtol=1e-12, atol=1e-21)
    assert (g == 20e-6).any() and (g == 0.0).any()  # the bounds were met
    with pytest.raises(ValueError, match="velocity"):
        ep_update(g, r, c, cross, 1.0, 0.0, 1.0, None, velocity=np.zeros((2, 2)), momentum=m)


def test_update_kernel_velocity_never_turns_subnormal():
    """A device with no gradient sees its velocity shrink by the momentum every step; it
    goes to exactly 0 at VELOCITY_FLOOR instead of into subnormal numbers (20x slower)."""
    from neuroemu.kernels.update import VELOCITY_FLOOR, ep_update

    g = np.full((3, 4), 1e-6)
    velocity = np.full((3, 4), 1e-6)
    zeros = np.zeros((3, 4))
    smallest = []
    for _ in range(800):  # 1e-6 * 0.9^800 ~ 1e-43: far past the floor (normal without it)
        ep_update(
            g,
            np.zeros(3),
            np.zeros(4),
            zeros,
            1.0,
            0.0,
            1e-4,
            None,
            velocity=velocity,
            momentum=0.9,
        )
        nonzero = velocity[velocity != 0]
        smallest.append(np.abs(nonzero).min() if nonzero.size else 0.0)
    assert (velocity == 0).all()
    assert min(s for s in smallest if s > 0) >= VELOCITY_FLOOR
    assert g[0, 0] == pytest.approx(1e-6 + 1e-6 * 0.9 / 0.1, rel=1e-9)  # the sum it moved


@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize("parallel", [True, False])
def test_update_of_a_continuous_device_takes_the_general_kernels_bits(momentum, parallel):
    """A continuous device (no pulses, levels, spread, own bounds, faults or accumulator)
    is updated by a kernel without the other devices' branches: the same conductances,
    velocities and counts as the general kernel, bit for bit, clipped devices included."""
    from neuroemu.kernels import update

    rng = np.random.default_rng(8)
    rows, cols = 200, 90  # above PARALLEL_MIN_DEVICES: rows on threads
    assert rows * cols >= update.PARALLEL_MIN_DEVICES
    g = rng.uniform(0, 20e-6, (rows, cols))
    velocity = rng.normal(0, 1e-6, (rows, cols)) if momentum else None
    g_ref = g.copy()
    v_ref = None if velocity is None else velocity.copy()
    empty, none = np.zeros((0, 0)), update._NO_FAULTS
    for _ in range(3):
        r, c = rng.normal(0, 1e-6, rows), rng.normal(0, 1e-6, cols)
        cross = rng.normal(0, 1e-6, (rows, cols))
        cross[0, :5] = (r[0] + c[:5]) / 2  # asked for no change
        counts = update.ep_update(
            g, r, c, cross, -2.0, 0.0, 20e-6, None, parallel=parallel,
            velocity=velocity, momentum=momentum,
        )  # fmt: skip
        general = np.zeros((rows, 4), dtype=np.int64)
        update._ep_update_serial(
            g_ref, r, c, cross, -2.0, 0.0, 20e-6, 0.0, False, np.uint64(0), 0.0, 0.0, False,
            0.0, empty, empty, empty, empty, empty if v_ref is None else v_ref, momentum,
            empty, 1.0, none, none, general,
        )  # fmt: skip
        assert tuple(counts) == tuple(int(n) for n in general.sum(axis=0))
        np.testing.assert_array_equal(g, g_ref)
        if momentum:
            np.testing.assert_array_equal(velocity, v_ref)
    assert 0 < counts.clipped < counts.asked
    assert counts.asked < rows * cols or momentum  # (a velocity moves them all)
