"""Per-node equilibrium solves of a layer given its neighbours.

For node ``j`` of a layer, with every neighbouring node and source held fixed, Kirchhoff's
current law reads

    f(V) = I_in - G V + I_lo(V) - I_hi(V) = 0

where ``I_in = sum_n g_jn V_n`` (A) sums the currents its conductances would bring from the
neighbours at ``V = 0`` (bias sources and nudging included), ``G = sum_n g_jn`` (S) is the
total conductance at the node, ``I_lo`` the current of the diode from the source ``lo`` into
the node and ``I_hi`` that of the diode from the node to the source ``hi``. A node without a
lower (upper) diode has ``lo = -inf`` (``hi = +inf``).

- linear node (no diode): ``V = I_in / G``.
- ideal diodes: ``V = clip(I_in / G, lo, hi)``, the minimiser of the layer's energy under the
  box constraint ``lo <= V <= hi`` (exact block coordinate descent, Scellier 2024).
- Shockley diodes: ``f`` is strictly decreasing; a safeguarded Newton iteration inside a
  bracket ``[a, b]`` with ``f(a) >= 0 >= f(b)`` finds its root to a few ulps.

The diode current is SPICE's level-1 junction, so the equilibrium matches ngspice:

    I_D(v) = I_s (exp(v / nV_T) - 1) + gmin v                for v >= -3 nV_T
    I_D(v) = -I_s (1 + (3 nV_T / (e v))^3) + gmin v            for v <  -3 nV_T

(continuous with a continuous derivative at ``-3 nV_T``). Scalar work is done in float64
whatever the array dtype.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
from numba import njit, prange

from ..errors import InputError

KIND_LINEAR = 0
KIND_IDEAL = 1
KIND_SHOCKLEY = 2

_NEWTON_MAX_ITER = 200


class NodeParams(NamedTuple):
    """The nonlinearity of one layer's nodes (arrays of shape ``(nodes,)``, float64)."""

    kind: int
    lo: np.ndarray  # V, -inf where there is no lower diode
    hi: np.ndarray  # V, +inf where there is no upper diode
    i_s: float = 0.0  # A
    n_vt: float = 1.0  # V, emission coefficient times thermal voltage
    gmin: float = 0.0  # S


# --------------------------------------------------------------------------- scalar physics
@njit(cache=True, inline="always")
def diode_current(v, i_s, n_vt, gmin):
    """SPICE level-1 junction current (A) and its derivative (S) at forward voltage ``v``."""
    if v >= -3.0 * n_vt:
        x = v / n_vt
        return i_s * math.expm1(x) + gmin * v, i_s * math.exp(x) / n_vt + gmin
    a = 3.0 * n_vt / (math.e * v)
    a3 = a * a * a
    return -i_s * (1.0 + a3) + gmin * v, 3.0 * i_s * a3 / v + gmin


@njit(cache=True, inline="always")
def _shockley_f(v, i_in, g, lo, hi, i_s, n_vt, gmin):
    """KCL residual ``f(v)`` at a node with Shockley diodes, and ``df/dv`` (< 0)."""
    f = i_in - g * v
    df = -g
    if lo > -np.inf:
        c, dc = diode_current(lo - v, i_s, n_vt, gmin)
        f += c
        df -= dc
    if hi < np.inf:
        c, dc = diode_current(v - hi, i_s, n_vt, gmin)
        f -= c
        df -= dc
    return f, df


@njit(cache=True)
def shockley_node(i_in, g, lo, hi, i_s, n_vt, gmin, v_prev):
    """Root of ``f`` at one node by safeguarded Newton in a bracket (V)."""
    has_lo = lo > -np.inf
    has_hi = hi < np.inf
    # Fold the linear gmin parts in: the exponential parts then lie in (-I_s, inf).
    g_tot = g + gmin * (has_lo + has_hi)
    i_tot = i_in + (gmin * lo if has_lo else 0.0) + (gmin * hi if has_hi else 0.0)
    v_lin = i_tot / g_tot
    # f(b) <= 0 for b >= max((I + I_s) / G, lo); f(a) >= 0 for a <= min((I - I_s) / G, hi).
    b = (i_tot + i_s) / g_tot
    if has_lo and lo > b:
        b = lo
    a = (i_tot - i_s) / g_tot
    if has_hi and hi < a:
        a = hi
    # First guess: where a conducting diode takes the current the node would otherwise
    # carry; or the previous voltage, whichever leaves the smaller residual.
    guess = v_lin
    if has_lo and v_lin < lo:
        guess = lo - n_vt * math.log1p(g_tot * (lo - v_lin) / i_s)
    elif has_hi and v_lin > hi:
        guess = hi + n_vt * math.log1p(g_tot * (v_lin - hi) / i_s)
    guess = min(max(guess, a), b)
    v = guess
    f, df = _shockley_f(v, i_in, g, lo, hi, i_s, n_vt, gmin)
    if a <= v_prev <= b:
        f_prev, df_prev = _shockley_f(v_prev, i_in, g, lo, hi, i_s, n_vt, gmin)
        if abs(f_prev) < abs(f):
            v, f, df = v_prev, f_prev, df_prev
    for _ in range(_NEWTON_MAX_ITER):
        if f > 0.0:
            a = v
        elif f < 0.0:
            b = v
        else:
            return v
        step = f / df
        if abs(step) <= 4e-16 * max(abs(v), n_vt):
            return v - step  # converged to within a few ulps
        v_new = v - step
        if not (a < v_new < b):  # also catches NaN from an overflowing exponential
            v_new = 0.5 * (a + b)
            if v_new == a or v_new == b:
                return v_new  # the bracket is down to adjacent floats
        v = v_new
        f, df = _shockley_f(v, i_in, g, lo, hi, i_s, n_vt, gmin)
    return v


# --------------------------------------------------------------------------- row kernels
@njit(cache=True)
def _solve_row(kind, i_in, g, lo, hi, i_s, n_vt, gmin, v):
    """Update row ``v`` in place; return the largest change (V)."""
    change = 0.0
    for j in range(v.shape[0]):
        old = float(v[j])
        if kind == KIND_SHOCKLEY:
            new = shockley_node(float(i_in[j]), float(g[j]), lo[j], hi[j], i_s, n_vt, gmin, old)
        else:
            new = float(i_in[j]) / float(g[j])
            if kind == KIND_IDEAL:
                new = min(max(new, lo[j]), hi[j])
        v[j] = new
        change = max(change, abs(float(v[j]) - old))
    return change


@njit(cache=True)
def _residual_row(kind, i_in, g, lo, hi, i_s, n_vt, gmin, v, out):
    """KCL residual current (A) at each node of a row: what no element accounts for.

    For ideal diodes a clamped node may carry any diode current of the allowed sign, so only
    the part of the wrong sign is a residual.
    """
    for j in range(v.shape[0]):
        vj = float(v[j])
        if kind == KIND_SHOCKLEY:
            r, _ = _shockley_f(vj, float(i_in[j]), float(g[j]), lo[j], hi[j], i_s, n_vt, gmin)
        else:
            r = float(i_in[j]) - float(g[j]) * vj
            if kind == KIND_IDEAL:
                if lo[j] >= vj >= hi[j]:
                    r = 0.0  # pinned from both sides: either diode takes any current
                elif vj <= lo[j]:
                    r = max(r, 0.0)  # the lower diode can only push current in
                elif vj >= hi[j]:
                    r = min(r, 0.0)  # the upper diode can only draw current out
        out[j] = r


@njit(cache=True, parallel=True)
def _solve_parallel(kind, i_in, g, lo, hi, i_s, n_vt, gmin, v, change):
    for b in prange(v.shape[0]):
        change[b] = _solve_row(kind, i_in[b], g, lo, hi, i_s, n_vt, gmin, v[b])


@njit(cache=True)
def _solve_serial(kind, i_in, g, lo, hi, i_s, n_vt, gmin, v, change):
    for b in range(v.shape[0]):
        change[b] = _solve_row(kind, i_in[b], g, lo, hi, i_s, n_vt, gmin, v[b])


@njit(cache=True, parallel=True)
def _residual_parallel(kind, i_in, g, lo, hi, i_s, n_vt, gmin, v, out):
    for b in prange(v.shape[0]):
        _residual_row(kind, i_in[b], g, lo, hi, i_s, n_vt, gmin, v[b], out[b])


@njit(cache=True)
def _residual_serial(kind, i_in, g, lo, hi, i_s, n_vt, gmin, v, out):
    for b in range(v.shape[0]):
        _residual_row(kind, i_in[b], g, lo, hi, i_s, n_vt, gmin, v[b], out[b])


# --------------------------------------------------------------------------- public wrappers
def _check(i_in: np.ndarray, g: np.ndarray, params: NodeParams, v: np.ndarray) -> None:
    if i_in.ndim != 2 or v.shape != i_in.shape:
        raise InputError(f"i_in and v must be (batch, nodes) of one shape: {i_in.shape}, {v.shape}")
    nodes = v.shape[1]
    for name, arr in (("g", g), ("lo", params.lo), ("hi", params.hi)):
        if arr.shape != (nodes,):
            raise InputError(f"{name} must have shape ({nodes},), got {arr.shape}")
    if not (v.flags.c_contiguous and i_in.flags.c_contiguous):
        raise InputError("i_in and v must be C-contiguous")
    if v.dtype != i_in.dtype or g.dtype != v.dtype:
        raise InputError(f"dtypes differ: i_in {i_in.dtype}, g {g.dtype}, v {v.dtype}")


def _physics(params: NodeParams) -> tuple:
    """The node parameters in the order the kernels take them, after ``i_in`` and ``g``."""
    return params.lo, params.hi, params.i_s, params.n_vt, params.gmin


def solve_nodes(
    i_in: np.ndarray,
    g: np.ndarray,
    params: NodeParams,
    v: np.ndarray,
    change: np.ndarray,
    *,
    parallel: bool = True,
) -> None:
    """Set every node of ``v`` (batch, nodes) to its equilibrium given the neighbours.

    ``i_in`` (A) and ``g`` (S) are as in the module docstring; ``v`` (V) holds the previous
    voltages (a starting point for Newton) and receives the new ones; ``change[b]`` receives
    the largest voltage change in row ``b``.
    """
    _check(i_in, g, params, v)
    run: Any = _solve_parallel if parallel else _solve_serial
    run(params.kind, i_in, g, *_physics(params), v, change)


def kcl_residual(
    i_in: np.ndarray,
    g: np.ndarray,
    params: NodeParams,
    v: np.ndarray,
    out: np.ndarray,
    *,
    parallel: bool = True,
) -> None:
    """Write the KCL residual current (A) of every node of ``v`` into ``out`` (float64)."""
    _check(i_in, g, params, v)
    if out.shape != v.shape or out.dtype != np.float64:
        raise InputError(f"out must be float64 of shape {v.shape}")
    run: Any = _residual_parallel if parallel else _residual_serial
    run(params.kind, i_in, g, *_physics(params), v, out)
