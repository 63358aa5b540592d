"""Settle a resistive circuit whose crossbars have resistive wires (IR drop), exactly.

**Geometry.** Crossbar ``k`` (feeding free layer ``k``, 0-based) of shape ``(N, M)`` with
a wire segment of resistance ``r`` per cell: every cell ``(i, j)`` has a row-wire node
``R[i, j]`` and a column-wire node ``C[i, j]``, its device ``G[i, j]`` between them. Row
``i`` is driven at its ``j = 0`` end by node ``i`` of the layer before (an input source for
``k = 0``) through one segment, then a segment joins each cell to the next; its ``j = M - 1``
end is open. Column ``j`` is open at ``i = 0`` and ends at ``i = N - 1`` on node ``j`` of
layer ``k``, through one segment. Bias conductances and diodes sit at the node itself.

**Chains.** Node ``j`` of layer ``k``, column ``j`` of crossbar ``k`` and row ``j`` of
crossbar ``k + 1`` form a path: column cells, the node, row cells, each cell also joined
through its device to a cell of another such path. Given the other paths, a path is a
tridiagonal system with one nonlinear node, solved exactly: eliminating the cells from both
open ends toward the node leaves the node a Norton equivalent (a conductance and a
current); the node's own equation is then the one of :mod:`neuroemu.kernels.nodes`
(linear, ideal-diode clip, Shockley Newton), and substituting back gives every cell. The
eliminated conductances depend only on the devices and the wire, so they are computed once
per chip state (:func:`chain_factors`): per sample a path costs a few multiply-adds per
cell. The paths of layer ``k`` touch only paths of layers ``k - 1`` and ``k + 1`` (the
input rows count as layer ``-1``), so layers of one parity are independent given the
others, as without wires: a sweep solves the even layers' paths, then the odd ones' with
the input rows. Each step minimises the circuit's strictly convex co-content over a block
of nodes exactly, so the sweeps converge to the unique operating point (block coordinate
descent, as :mod:`neuroemu.engine.settle`); a node and its two wires move together, so the
wires' large conductances do not slow it down.

With ``r = 0`` the same formulas give ideal wires (every row cell at its driver, every
column cell at its node), which the tests hold against :func:`neuroemu.engine.settle.settle`.

**Stopping and checking.** The sweeps stop when no node, layer or wire, moved by more than
``tol * V_scale`` in the last sweep; then the KCL residual of every node, wire nodes
included, is computed from the voltages and reported (its largest absolute and relative
value, ``|r| / (G V_scale)`` with ``G`` the node's total conductance), with the power
dissipated in every device, wire segment, bias conductance and Shockley diode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit, prange

from ..kernels import KIND_IDEAL, KIND_LINEAR, KIND_SHOCKLEY, NodeParams
from ..kernels.nodes import diode_current, report_nodes, shockley_node
from .circuit import Circuit
from .settle import nudged_conductance, operating_point
from .states import Equilibrium, Trace, check_target, initial_voltages


@dataclass(frozen=True)
class Chains:
    """The eliminated conductances of one crossbar's wires (:func:`chain_factors`), float64.

    ``s[i, j] = 1 / (1 + r y[i, j])`` passes column ``j``'s cells ``0..i`` through the
    segment after cell ``i``; ``y_node[j]`` (S) is the column's Norton conductance at its
    node. ``t[i, m]`` and ``z_driver[i]`` are the same for row ``i``, from its open end
    toward its driver.
    """

    r: float
    g: np.ndarray  # S, (N, M)
    s: np.ndarray
    y_node: np.ndarray
    t: np.ndarray
    z_driver: np.ndarray


def chain_factors(g: np.ndarray, r: float) -> Chains:
    """The elimination of crossbar ``g`` (S, (N, M)) with wire segments of ``r`` (Ohm):
    column ``j`` from its open end (``i = 0``), ``y_0 = G_0``,
    ``y_i = y_{i-1} / (1 + r y_{i-1}) + G_i`` (a segment in series, then the cell's device
    to a held voltage), and row ``i`` likewise from ``m = M - 1`` toward ``m = 0``. Every
    term is positive: no cancellation, at any ``r`` (``r = 0`` gives the plain sums)."""
    g = np.ascontiguousarray(g, dtype=np.float64)
    n, m = g.shape
    y = np.empty_like(g)
    s = np.empty_like(g)
    acc = np.zeros(m)
    for i in range(n):
        acc = acc + g[i]
        y[i] = acc
        s[i] = 1.0 / (1.0 + r * acc)
        acc = acc * s[i]
    z = np.empty_like(g)
    t = np.empty_like(g)
    acc = np.zeros(n)
    for j in range(m - 1, -1, -1):
        acc = acc + g[:, j]
        z[:, j] = acc
        t[:, j] = 1.0 / (1.0 + r * acc)
        acc = acc * t[:, j]
    return Chains(r=float(r), g=g, s=s, y_node=y[-1] * s[-1], t=t, z_driver=z[:, 0] * t[:, 0])


# --------------------------------------------------------------------------- kernels
@njit(cache=True, inline="always", error_model="numpy")
def _node(kind, i_in, g, lo, hi, i_s, n_vt, gmin, v_prev):
    """The equilibrium of one node given its Norton current ``i_in`` (A) and conductance
    ``g`` (S) (:mod:`neuroemu.kernels.nodes`)."""
    if kind == KIND_SHOCKLEY:
        return shockley_node(i_in, g, lo, hi, i_s, n_vt, gmin, v_prev)
    v = i_in / g
    if kind == KIND_IDEAL:
        v = lo if v < lo else v
        v = hi if v > hi else v
    return v


@njit(cache=True, parallel=True, error_model="numpy")
def _solve_layer(
    kind, lo, hi, i_s, n_vt, gmin, g_node, const,
    g_in, s_in, r_in, rows_in, cols_in,
    above, g_out, t_out, r_out, rows_out, cols_out,
    v, change,
):  # fmt: skip
    """Solve every path of one layer (every sample ``b`` and node ``j``) given the others:
    the column of the crossbar below (``g_in``, ``s_in``, ``r_in``; its row-wire voltages
    ``rows_in`` held, its column-wire voltages ``cols_in`` written) and, when ``above``, the
    row of the crossbar above (``g_out``, ``t_out``, ``r_out``; ``cols_out`` held,
    ``rows_out`` written). ``g_node`` (S) is each node's Norton conductance with its bias
    (and nudging) conductance, ``const`` (A) the bias (and nudging) current, one row or one
    per sample. ``change[b]`` receives the sample's largest voltage change.

    The columns are eliminated row of cells by row of cells, every column at once (the
    loops over ``j`` run along memory); each row of the crossbar above, which lies along
    memory, node by node."""
    batch, nodes = v.shape
    n_in = g_in.shape[0]
    m_out = g_out.shape[1]
    for bb in prange(batch):
        b = np.intp(bb)  # prange hands out unsigned indices
        col = np.empty((n_in, nodes))
        acc = np.zeros(nodes)
        row = np.empty(max(m_out, 1))
        c = b if b < const.shape[0] else 0
        q = b if b < lo.shape[0] else 0
        worst = 0.0
        # Every column of the crossbar below, from its open end toward its node.
        for i in range(n_in):
            for j in range(nodes):
                a = acc[j] + g_in[i, j] * rows_in[b, i, j]
                col[i, j] = a
                acc[j] = a * s_in[i, j]
        for j in range(nodes):
            i_node = acc[j]
            if above:  # row j of the crossbar above, from its open end toward the node
                a = 0.0
                for mm in range(m_out - 1, -1, -1):
                    a = a + g_out[j, mm] * cols_out[b, j, mm]
                    row[mm] = a
                    a = a * t_out[j, mm]
                i_node += a
            old = v[b, j]
            new = _node(kind, i_node + const[c, j], g_node[j], lo[q, j], hi[q, j], i_s, n_vt,
                        gmin, old)  # fmt: skip
            v[b, j] = new
            worst = max(worst, abs(new - old))
            acc[j] = new  # from here on: the voltage the column's next cell hangs from
            if above:
                prev = new
                for mm in range(m_out):
                    value = t_out[j, mm] * (r_out * row[mm] + prev)
                    worst = max(worst, abs(value - rows_out[b, j, mm]))
                    rows_out[b, j, mm] = value
                    prev = value
        # Back along the columns, from the nodes to their open ends.
        for i in range(n_in - 1, -1, -1):
            for j in range(nodes):
                value = s_in[i, j] * (r_in * col[i, j] + acc[j])
                worst = max(worst, abs(value - cols_in[b, i, j]))
                cols_in[b, i, j] = value
                acc[j] = value
        change[b] = max(change[b], worst)


@njit(cache=True, parallel=True, error_model="numpy")
def _solve_inputs(sources, g, t, r, rows, cols, change):
    """Solve the input crossbar's rows (each driven by its source, ``sources`` (batch, N)
    in V) given its column-wire voltages ``cols``; write ``rows``."""
    batch, n = sources.shape
    m = g.shape[1]
    for b in prange(batch):
        acc_row = np.empty(m)
        worst = 0.0
        for i in range(n):
            acc = 0.0
            for mm in range(m - 1, -1, -1):
                acc = acc + g[i, mm] * cols[b, i, mm]
                acc_row[mm] = acc
                acc = acc * t[i, mm]
            prev = sources[b, i]
            for mm in range(m):
                value = t[i, mm] * (r * acc_row[mm] + prev)
                worst = max(worst, abs(value - rows[b, i, mm]))
                rows[b, i, mm] = value
                prev = value
        change[b] = max(change[b], worst)


@njit(cache=True, parallel=True, error_model="numpy")
def _wire_report(g, r, drivers, nodes, rows, cols, scale, out):
    """Fold one crossbar's wire nodes into ``out`` (3, batch): the largest KCL residual
    (A) and relative residual of every wire node, and the power (W) of its devices and
    segments. ``drivers`` (batch, N) and ``nodes`` (batch, M) are the voltages its rows and
    columns end on. With ``r = 0`` there are no wire nodes, only the devices' power."""
    batch = rows.shape[0]
    n, m = g.shape
    for b in prange(batch):
        worst = 0.0
        worst_rel = 0.0
        power = 0.0
        for i in range(n):
            for j in range(m):
                d = rows[b, i, j] - cols[b, i, j]
                power += g[i, j] * d * d
        if r > 0.0:
            w = 1.0 / r
            for i in range(n):
                for j in range(m):
                    here = rows[b, i, j]
                    before = drivers[b, i] if j == 0 else rows[b, i, j - 1]
                    seg = before - here
                    power += w * seg * seg
                    into = w * seg + g[i, j] * (cols[b, i, j] - here)
                    total = w + g[i, j]
                    if j + 1 < m:
                        into += w * (rows[b, i, j + 1] - here)
                        total += w
                    worst = max(worst, abs(into))
                    worst_rel = max(worst_rel, abs(into) / (total * scale))
            for j in range(m):
                for i in range(n):
                    here = cols[b, i, j]
                    after = nodes[b, j] if i == n - 1 else cols[b, i + 1, j]
                    seg = after - here
                    power += w * seg * seg
                    into = w * seg + g[i, j] * (rows[b, i, j] - here)
                    total = w + g[i, j]
                    if i > 0:
                        into += w * (cols[b, i - 1, j] - here)
                        total += w
                    worst = max(worst, abs(into))
                    worst_rel = max(worst_rel, abs(into) / (total * scale))
        if not worst <= out[0, b]:
            out[0, b] = worst
        if not worst_rel <= out[1, b]:
            out[1, b] = worst_rel
        out[2, b] += power


@njit(cache=True, parallel=True, error_model="numpy")
def _node_inflow(g_in, r_in, rows_in, cols_in, above, g_out, r_out, rows_out, cols_out, v, out):
    """The current (A) the wires bring into each node of a layer, (batch, nodes): through
    the last segment of its column and the first of its row (the devices' currents when
    ``r = 0``, where the wire is the node)."""
    batch, nodes = v.shape
    n_in = g_in.shape[0]
    m_out = g_out.shape[1]
    for b in prange(batch):
        for j in range(nodes):
            total = 0.0
            if r_in > 0.0:
                total += (cols_in[b, n_in - 1, j] - v[b, j]) / r_in
            else:
                for i in range(n_in):
                    total += g_in[i, j] * (rows_in[b, i, j] - v[b, j])
            if above:
                if r_out > 0.0:
                    total += (rows_out[b, j, 0] - v[b, j]) / r_out
                else:
                    for mm in range(m_out):
                        total += g_out[j, mm] * (cols_out[b, j, mm] - v[b, j])
            out[b, j] = total


@njit(cache=True, error_model="numpy")
def _diode_power(v, lo, hi, i_s, n_vt, gmin, out):
    """Add the power ``I_D v_D`` (W) of every Shockley diode of a layer to ``out``."""
    for b in range(v.shape[0]):
        q = b if b < lo.shape[0] else 0
        for j in range(v.shape[1]):
            if lo[q, j] > -np.inf:
                d = lo[q, j] - v[b, j]
                out[b] += diode_current(d, i_s, n_vt, gmin)[0] * d
            if hi[q, j] < np.inf:
                d = v[b, j] - hi[q, j]
                out[b] += diode_current(d, i_s, n_vt, gmin)[0] * d


# --------------------------------------------------------------------------- driver
def _rows2(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a.reshape(1, -1) if a.ndim == 1 else a, dtype=np.float64)


def settle_wired(
    c: Circuit,
    chains: list[Chains],
    sources: np.ndarray,
    bias_g: list[np.ndarray],
    bias_voltage: float,
    readout: Any,
    beta: float = 0.0,
    target: Any = None,
    *,
    current: np.ndarray | None = None,
    params: list[NodeParams],
    init: Any = None,
    tol: float,
    max_sweeps: int,
    trace: bool = False,
) -> Equilibrium:
    """The operating point of circuit ``c`` with the wires of ``chains`` (one per crossbar;
    ``c.node_conductance64`` the nodes' Norton conductances through them, with the biases),
    its input sources at ``sources`` (V, (batch, N_0)); ``bias_g`` (S, (2, nodes) per
    layer) to ``+bias_voltage`` and ``-bias_voltage``; ``params`` each layer's nodes
    (grounded nodes included). ``beta``, ``target``, ``current``, ``tol``, ``max_sweeps``
    and ``trace`` as :func:`neuroemu.engine.settle.settle` (a trace holds the layer nodes'
    voltages sweep by sweep, with the power and co-content of each state: half the
    resistive elements' power, wires included); ``init`` an :class:`Equilibrium` of the
    same chip (its wire voltages are taken too when it has them) or one array per layer.
    Float64 throughout."""
    batch = len(sources)
    sizes = [len(g) for g in c.node_conductance]
    n_layers = len(sizes)
    target = check_target(beta, target, batch, sizes[-1])
    # Each node's Norton conductance: its column's and row's, and its bias conductances.
    g_node = [np.asarray(g, dtype=np.float64) for g in c.node_conductance64]
    const = [_rows2((bias_g[k][0] - bias_g[k][1]) * bias_voltage) for k in range(n_layers)]
    if target is not None:
        g_node[-1] = nudged_conductance(g_node[-1], beta)
        const[-1] = const[-1] + beta * np.asarray(target, dtype=np.float64)
    if current is not None:
        const[-1] = const[-1] + np.asarray(current, dtype=np.float64)
    v = initial_voltages(init, sizes, batch, np.dtype(np.float64))
    drivers = [np.asarray(sources, dtype=np.float64), *v[:-1]]
    wires = None
    if isinstance(init, Equilibrium) and init.wires is not None:
        wires = [(rows.copy(), cols.copy()) for rows, cols in init.wires]
    if wires is None:
        # Every row cell at its driver, every column cell at its node: ideal wires.
        wires = [
            (
                np.repeat(drivers[k][:, :, None], sizes[k], axis=2),
                np.repeat(v[k][:, None, :], len(drivers[k][0]), axis=1),
            )
            for k in range(n_layers)
        ]
    phys = [(p.kind, _rows2(p.lo), _rows2(p.hi), p.i_s, p.n_vt, p.gmin) for p in params]
    empty3 = np.zeros((batch, 0, 0))
    empty2 = np.zeros((0, 0))
    change = np.zeros(batch)
    threshold = tol * c.v_scale
    done = np.zeros(batch, dtype=bool)
    per_sample = np.zeros(batch, dtype=np.int64)
    sweeps = 0

    def solve(k: int) -> None:
        ch = chains[k]
        above = k + 1 < n_layers
        nxt = chains[k + 1] if above else None
        _solve_layer(
            *phys[k], g_node[k], const[k],
            ch.g, ch.s, ch.r, wires[k][0], wires[k][1],
            above,
            nxt.g if nxt else empty2, nxt.t if nxt else empty2, nxt.r if nxt else 0.0,
            wires[k + 1][0] if above else empty3, wires[k + 1][1] if above else empty3,
            v[k], change,
        )  # fmt: skip

    def sweep() -> None:
        change[:] = 0.0
        for k in range(0, n_layers, 2):
            solve(k)
        _solve_inputs(drivers[0], chains[0].g, chains[0].t, chains[0].r, *wires[0], change)
        for k in range(1, n_layers, 2):
            solve(k)

    def figures() -> tuple[np.ndarray, np.ndarray]:
        """The largest KCL residual (A) and relative residual over every node, and the
        power (W) of the resistive elements, (3, batch); and that of the Shockley diodes."""
        out = np.zeros((3, batch))
        diode_power = np.zeros(batch)
        for k in range(n_layers):
            ch, above = chains[k], k + 1 < n_layers
            nxt = chains[k + 1] if above else None
            inflow = np.empty((batch, sizes[k]))
            _node_inflow(
                ch.g, ch.r, wires[k][0], wires[k][1], above,
                nxt.g if nxt else empty2, nxt.r if nxt else 0.0,
                wires[k + 1][0] if above else empty3, wires[k + 1][1] if above else empty3,
                v[k], inflow,
            )  # fmt: skip
            _wire_report(ch.g, ch.r, drivers[k], v[k], *wires[k], c.v_scale, out)
            # The node's own KCL: the wires' inflow, bias and nudging, against its diodes.
            # report_nodes takes I_in - G V; adding the Norton part G_w V to both keeps the
            # residual and relative residual those of the node's total conductance.
            nudged = beta if k == n_layers - 1 and target is not None else 0.0
            wired = g_node[k] - bias_g[k].sum(axis=0) - nudged
            i_in = inflow + const[k] + wired * v[k]
            scratch = np.zeros((3, batch))
            report_nodes(
                i_in, g_node[k], params[k]._replace(lo=phys[k][1], hi=phys[k][2]), v[k],
                scratch, scale=c.v_scale, conductance=np.zeros(sizes[k]),
                source=np.zeros((1, sizes[k])), diodes=False,
            )  # fmt: skip
            out[0] = np.maximum(out[0], scratch[0])
            out[1] = np.maximum(out[1], scratch[1])
            # Bias conductances to +V_b and -V_b.
            out[2] += (bias_g[k][0] * (v[k] - bias_voltage) ** 2).sum(axis=1)
            out[2] += (bias_g[k][1] * (v[k] + bias_voltage) ** 2).sum(axis=1)
            if phys[k][0] == KIND_SHOCKLEY:
                _diode_power(v[k], *phys[k][1:], diode_power)
        return out, diode_power

    if trace:
        first, diode_power = figures()
        states = [[a.copy() for a in v]]
        powers = [first[2] + diode_power]
        energies = [0.5 * first[2]]
        changes = []
    while sweeps < max_sweeps:
        sweep()
        sweeps += 1
        newly = ~done & (change <= threshold)
        per_sample[newly] = sweeps
        done |= newly
        if trace:
            now, diode_power = figures()
            states.append([a.copy() for a in v])
            powers.append(now[2] + diode_power)
            energies.append(0.5 * now[2])
            changes.append(change / c.v_scale)
        if done.all():
            break
    per_sample[~done] = sweeps

    final, diode_power = figures()
    power = np.maximum(final[2] + diode_power, 0.0)
    recorded = None
    if trace:
        recorded = Trace(
            voltages=[np.stack([state[k] for state in states]) for k in range(n_layers)],
            residual=np.array(changes),
            power=np.array(powers),
            energy=np.array(energies),
        )
    return operating_point(
        c,
        v,
        readout,
        sweeps=sweeps,
        per_sample=per_sample,
        figures=final,
        power=power,
        done=done,
        tol=tol,
        trace=recorded,
        wires=wires,
    )


__all__ = ["KIND_LINEAR", "Chains", "chain_factors", "settle_wired"]
