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
    """The nonlinearity of one layer's nodes, float64. The bounds are ``(nodes,)``, the
    same for every sample, or rows of the batch ``(batch, nodes)`` (nodes grounded sample by
    sample, :func:`neuroemu.engine.settle`)."""

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
# Each works on row ``b`` of (batch, nodes) arrays, indexing them directly: inlined into the
# serial and the parallel driver, a row costs no views and no calls, which matters for
# narrow layers (an output layer of 10 nodes). ``error_model="numpy"`` (on the drivers too,
# whose error model inlined code takes): a division by a zero conductance gives inf or NaN
# as IEEE says instead of raising, which is also what lets LLVM vectorise the loops over
# linear and ideal nodes. A row of ``const`` or ``source`` stands for every row when the
# array has only one.


@njit(cache=True, inline="always", error_model="numpy")
def _largest(d, n):
    """``max(d[:n])`` of non-negative floats (a NaN wins), through their bit patterns: for
    non-negative IEEE floats the integer order is the float order, and an integer maximum
    vectorises where a float one would need fast-math flags that drop NaN semantics.
    Overwrites ``d[0]``."""
    if n == 0:
        return 0.0
    bits = d.view(np.int64)
    m = bits[0]
    for j in range(1, n):
        m = max(m, bits[j])
    bits[0] = m
    return d[0]


@njit(cache=True, inline="always", error_model="numpy")
def _solve_row(kind, i_in, const, g, lo, hi, i_s, n_vt, gmin, v, b, d):
    """Add ``const`` to row ``b`` of ``i_in`` in place (which then holds the whole
    ``I_in``), set row ``b`` of ``v`` to its equilibrium; return the largest change (V).
    ``d``: float64 scratch of a row."""
    n = v.shape[1]
    c = b if b < const.shape[0] else 0
    r = b if b < lo.shape[0] else 0
    if kind == KIND_SHOCKLEY:
        change = 0.0
        for j in range(n):
            i_in[b, j] = i_in[b, j] + const[c, j]
            old = float(v[b, j])
            v[b, j] = shockley_node(
                float(i_in[b, j]), float(g[j]), lo[r, j], hi[r, j], i_s, n_vt, gmin, old
            )
            change = max(change, abs(float(v[b, j]) - old))
        return change
    for j in range(n):  # linear and ideal nodes: one vectorised pass
        i_in[b, j] = i_in[b, j] + const[c, j]
        new = float(i_in[b, j]) / float(g[j])
        if kind == KIND_IDEAL:  # the clip, letting a NaN through
            new = lo[r, j] if new < lo[r, j] else new
            new = hi[r, j] if new > hi[r, j] else new
        old = float(v[b, j])
        v[b, j] = new
        d[j] = abs(float(v[b, j]) - old)
    return _largest(d, n)


@njit(cache=True, inline="always", error_model="numpy")
def _clamped_residual(kind, i_in, g, lo, hi, v):
    """KCL residual current (A) at a linear node or one with ideal diodes: what no element
    accounts for. A node clamped by an ideal diode may carry any diode current of the
    allowed sign, so only the part of the wrong sign is a residual."""
    r = i_in - g * v
    if kind == KIND_IDEAL:
        if lo >= v >= hi:
            r = 0.0  # pinned from both sides: either diode takes any current
        elif v <= lo:
            r = max(r, 0.0)  # the lower diode can only push current in
        elif v >= hi:
            r = min(r, 0.0)  # the upper diode can only draw current out
    return r


@njit(cache=True, inline="always", error_model="numpy")
def _residual_row(kind, i_in, g, lo, hi, i_s, n_vt, gmin, v, out, b):
    """KCL residual current (A) of every node of row ``b`` into ``out``."""
    r = b if b < lo.shape[0] else 0
    for j in range(v.shape[1]):
        vj, ij, gj = float(v[b, j]), float(i_in[b, j]), float(g[j])
        if kind == KIND_SHOCKLEY:
            out[b, j] = _shockley_f(vj, ij, gj, lo[r, j], hi[r, j], i_s, n_vt, gmin)[0]
        else:
            out[b, j] = _clamped_residual(kind, ij, gj, lo[r, j], hi[r, j], vj)


@njit(cache=True, error_model="numpy", fastmath={"reassoc"})
def _sum(f, n):
    """``sum(f[:n])``, its terms added in whatever order vectorises (the one fast-math
    flag, and only here)."""
    total = 0.0
    for j in range(n):
        total += f[j]
    return total


@njit(cache=True, inline="always", error_model="numpy")
def _report_row(
    kind, i_in, g, lo, hi, i_s, n_vt, gmin, v, g_chip, source, diodes, inv, out, b, r_abs, r_rel, p
):
    """Fold row ``b``'s figures into ``out[:, b]`` (see :func:`report_nodes`). ``r_abs``,
    ``r_rel``, ``p``: float64 scratch rows."""
    n = v.shape[1]
    c = b if b < source.shape[0] else 0
    k = b if b < lo.shape[0] else 0
    # The kinds get loops of their own: the Shockley branch inside would keep the other
    # from vectorising.
    if kind == KIND_SHOCKLEY:
        for j in range(n):
            vj, ij, gj = float(v[b, j]), float(i_in[b, j]), float(g[j])
            lj, hj = lo[k, j], hi[k, j]
            r = abs(_shockley_f(vj, ij, gj, lj, hj, i_s, n_vt, gmin)[0])
            r_abs[j] = r
            r_rel[j] = r * inv[j]
            p[j] = vj * (g_chip[j] * vj - ij - float(source[c, j]))
            if diodes and lj > -np.inf:
                p[j] += diode_current(lj - vj, i_s, n_vt, gmin)[0] * (lj - vj)
            if diodes and hj < np.inf:
                p[j] += diode_current(vj - hj, i_s, n_vt, gmin)[0] * (vj - hj)
    else:
        for j in range(n):
            vj, ij, gj = float(v[b, j]), float(i_in[b, j]), float(g[j])
            r = abs(_clamped_residual(kind, ij, gj, lo[k, j], hi[k, j], vj))
            r_abs[j] = r
            r_rel[j] = r * inv[j]
            p[j] = vj * (g_chip[j] * vj - ij - float(source[c, j]))
    largest = _largest(r_abs, n)
    if not largest <= out[0, b]:  # running maxima that keep a NaN
        out[0, b] = largest
    largest = _largest(r_rel, n)
    if not largest <= out[1, b]:
        out[1, b] = largest
    out[2, b] += _sum(p, n)


@njit(cache=True, parallel=True, error_model="numpy")
def _solve_parallel(kind, i_in, const, g, lo, hi, i_s, n_vt, gmin, v, change):
    for b in prange(v.shape[0]):
        d = np.empty(v.shape[1])
        row = np.intp(b)  # prange hands out unsigned indices
        change[row] = _solve_row(kind, i_in, const, g, lo, hi, i_s, n_vt, gmin, v, row, d)


@njit(cache=True, nogil=True, error_model="numpy")
def _solve_serial(kind, i_in, const, g, lo, hi, i_s, n_vt, gmin, v, change):
    d = np.empty(v.shape[1])
    for b in range(v.shape[0]):
        change[b] = _solve_row(kind, i_in, const, g, lo, hi, i_s, n_vt, gmin, v, b, d)


@njit(cache=True, parallel=True, error_model="numpy")
def _residual_parallel(kind, i_in, g, lo, hi, i_s, n_vt, gmin, v, out):
    for b in prange(v.shape[0]):
        _residual_row(kind, i_in, g, lo, hi, i_s, n_vt, gmin, v, out, np.intp(b))


@njit(cache=True, nogil=True, error_model="numpy")
def _residual_serial(kind, i_in, g, lo, hi, i_s, n_vt, gmin, v, out):
    for b in range(v.shape[0]):
        _residual_row(kind, i_in, g, lo, hi, i_s, n_vt, gmin, v, out, b)


@njit(cache=True, parallel=True, error_model="numpy")
def _report_parallel(kind, i_in, g, lo, hi, i_s, n_vt, gmin, v, g_chip, source, diodes, inv, out):
    for b in prange(v.shape[0]):
        d = np.empty((3, v.shape[1]))
        _report_row(
            kind,
            i_in,
            g,
            lo,
            hi,
            i_s,
            n_vt,
            gmin,
            v,
            g_chip,
            source,
            diodes,
            inv,
            out,
            np.intp(b),
            d[0],
            d[1],
            d[2],
        )


@njit(cache=True, nogil=True, error_model="numpy")
def _report_serial(kind, i_in, g, lo, hi, i_s, n_vt, gmin, v, g_chip, source, diodes, inv, out):
    r_abs, r_rel, p = np.empty(v.shape[1]), np.empty(v.shape[1]), np.empty(v.shape[1])
    for b in range(v.shape[0]):
        _report_row(
            kind,
            i_in,
            g,
            lo,
            hi,
            i_s,
            n_vt,
            gmin,
            v,
            g_chip,
            source,
            diodes,
            inv,
            out,
            b,
            r_abs,
            r_rel,
            p,
        )


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc"})
def _weighted_squares(x, w, out):
    for b in range(x.shape[0]):
        total = 0.0
        for i in range(x.shape[1]):
            xi = float(x[b, i])
            total += w[i] * xi * xi
        out[b] = total


# --------------------------------------------------------------------------- public wrappers
def _check(i_in: np.ndarray, g: np.ndarray, params: NodeParams, v: np.ndarray) -> None:
    if i_in.ndim != 2 or v.shape != i_in.shape:
        raise InputError(f"i_in and v must be (batch, nodes) of one shape: {i_in.shape}, {v.shape}")
    nodes = v.shape[1]
    if g.shape != (nodes,):
        raise InputError(f"g must have shape ({nodes},), got {g.shape}")
    for name, arr in (("lo", params.lo), ("hi", params.hi)):
        if arr.shape != (nodes,) and arr.shape not in ((1, nodes), (v.shape[0], nodes)):
            raise InputError(
                f"{name} must have shape ({nodes},) or ({v.shape[0]} or 1, {nodes}), "
                f"got {arr.shape}"
            )
    if not (v.flags.c_contiguous and i_in.flags.c_contiguous):
        raise InputError("i_in and v must be C-contiguous")
    if v.dtype != i_in.dtype or g.dtype != v.dtype:
        raise InputError(f"dtypes differ: i_in {i_in.dtype}, g {g.dtype}, v {v.dtype}")


def _physics(params: NodeParams) -> tuple:
    """The node parameters in the order the kernels take them, after ``i_in`` and ``g``:
    the bounds as rows, float64 (one row standing for every row of the batch)."""
    lo, hi = params.lo, params.hi
    if lo.ndim == 1:
        lo, hi = lo.reshape(1, -1), hi.reshape(1, -1)
    return lo, hi, params.i_s, params.n_vt, params.gmin


def _rows(name: str, a: np.ndarray | None, v: np.ndarray) -> np.ndarray:
    """``a`` as C-contiguous rows of ``v``'s width: (batch, nodes), or (1, nodes) for one
    row shared by the batch; zeros when ``None``."""
    if a is None:
        return np.zeros((1, v.shape[1]), dtype=v.dtype)
    a = a.reshape(1, -1) if a.ndim == 1 else a
    if a.ndim != 2 or a.shape[1] != v.shape[1] or a.shape[0] not in (1, v.shape[0]):
        raise InputError(f"{name} must have shape ({v.shape[0]} or 1, {v.shape[1]}), got {a.shape}")
    return np.ascontiguousarray(a)


def solve_nodes(
    i_in: np.ndarray,
    g: np.ndarray,
    params: NodeParams,
    v: np.ndarray,
    change: np.ndarray,
    *,
    const: np.ndarray | None = None,
    parallel: bool = True,
) -> None:
    """Set every node of ``v`` (batch, nodes) to its equilibrium given the neighbours.

    ``i_in`` (A) and ``g`` (S) are as in the module docstring; ``const`` (A; rows of the
    batch, or one row for all), when given, is added to ``i_in`` first, in the same pass and
    in place, so ``i_in`` then holds the whole ``I_in``. ``v`` (V) holds the previous
    voltages (a starting point for Newton) and receives the new ones; ``change[b]``
    receives the largest voltage change in row ``b``.
    """
    _check(i_in, g, params, v)
    const = _rows("const", const, v).astype(v.dtype, copy=False)
    run: Any = _solve_parallel if parallel else _solve_serial
    run(params.kind, i_in, const, g, *_physics(params), v, change)


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


def report_nodes(
    i_in: np.ndarray,
    g: np.ndarray,
    params: NodeParams,
    v: np.ndarray,
    out: np.ndarray,
    *,
    scale: float,
    conductance: np.ndarray,
    source: np.ndarray | None = None,
    diodes: bool = True,
    parallel: bool = True,
) -> None:
    """Fold one settled layer's figures into ``out`` (3, batch), float64, in one pass:

    - ``out[0, b]``: the running largest KCL residual ``|r_j|`` (A), as :func:`kcl_residual`;
    - ``out[1, b]``: the running largest ``|r_j| / (g_j scale)`` (``scale`` in V);
    - ``out[2, b]``: plus the layer's part of the static power (W),
      ``sum_j v_j (conductance_j v_j - i_in_j - source_j)``, and, with ``diodes``, the
      power ``I_D v_D`` of every Shockley diode (see :func:`neuroemu.engine.static_power`).

    ``conductance`` (S, float64) is each node's conductance to the chip's own elements and
    ``source`` (A; rows of the batch or one row) the current its sources bring.
    """
    _check(i_in, g, params, v)
    if out.shape != (3, v.shape[0]) or out.dtype != np.float64:
        raise InputError(f"out must be float64 of shape (3, {v.shape[0]})")
    if conductance.shape != (v.shape[1],):
        raise InputError(f"conductance must have shape ({v.shape[1]},), got {conductance.shape}")
    source = _rows("source", source, v)
    conductance = conductance.astype(np.float64, copy=False)
    inv = 1.0 / (g.astype(np.float64) * scale)  # to within an ulp of dividing each
    run: Any = _report_parallel if parallel else _report_serial
    run(params.kind, i_in, g, *_physics(params), v, conductance, source, diodes, inv, out)


def weighted_squares(x: np.ndarray, w: np.ndarray, out: np.ndarray) -> None:
    """Write ``sum_i w_i x_bi^2`` of every row of ``x`` (batch, n) into ``out`` (float64):
    with ``w`` in W per unit input squared, the power the input sources' own conductances
    take."""
    if x.ndim != 2 or w.shape != (x.shape[1],) or out.shape != (x.shape[0],):
        raise InputError(f"x (batch, {w.shape[0]}) and out (batch,): got {x.shape}, {out.shape}")
    if out.dtype != np.float64:
        raise InputError("out must be float64")
    _weighted_squares(np.ascontiguousarray(x), w.astype(np.float64, copy=False), out)
