"""Numba kernels of the wire solve (:mod:`neuroemu.engine.wires`, which documents the
geometry and the elimination): each node's path (its column, itself, its row) solved
exactly given the others, the input rows, and the figures of a settled state (every wire
node's KCL residual, the wires' and devices' power, the nodes' inflow, Shockley diodes'
power). Samples run on threads with ``prange``; every sample's result is computed by the
same operations in the same order either way.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .nodes import KIND_IDEAL, KIND_SHOCKLEY, diode_current, shockley_node


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
def solve_layer(
    kind, lo, hi, i_s, n_vt, gmin, g_node, const,
    g_in, s_in, r_in, r_in_last, rows_in, cols_in,
    above, g_out, t_out, r_out, r_out_first, rows_out, cols_out,
    v, change,
):  # fmt: skip
    """Solve every path of one layer (every sample ``b`` and node ``j``) given the others:
    the column of the crossbar below (``g_in``, ``s_in``, segments ``r_in`` and the last
    one, into the node, ``r_in_last``; its row-wire voltages ``rows_in`` held, its
    column-wire voltages ``cols_in`` written) and, when ``above``, the row of the crossbar
    above (``g_out``, ``t_out``, segments ``r_out`` and the first one, from the node,
    ``r_out_first``; ``cols_out`` held, ``rows_out`` written). ``g_node`` (S) is each
    node's Norton conductance with its bias (and nudging) conductance, ``const`` (A) the
    bias (and nudging) current, one row or one per sample. ``change[b]`` receives the
    sample's largest voltage change.

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
                    seg = r_out_first if mm == 0 else r_out
                    value = t_out[j, mm] * (seg * row[mm] + prev)
                    worst = max(worst, abs(value - rows_out[b, j, mm]))
                    rows_out[b, j, mm] = value
                    prev = value
        # Back along the columns, from the nodes to their open ends.
        for i in range(n_in - 1, -1, -1):
            seg = r_in_last if i == n_in - 1 else r_in
            for j in range(nodes):
                value = s_in[i, j] * (seg * col[i, j] + acc[j])
                worst = max(worst, abs(value - cols_in[b, i, j]))
                cols_in[b, i, j] = value
                acc[j] = value
        change[b] = max(change[b], worst)


@njit(cache=True, parallel=True, error_model="numpy")
def solve_inputs(sources, g, t, r, r_first, rows, cols, change):
    """Solve the input crossbar's rows (each driven by its source, ``sources`` (batch, N)
    in V, through a first segment of ``r_first``) given its column-wire voltages ``cols``;
    write ``rows``."""
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
                value = t[i, mm] * ((r_first if mm == 0 else r) * acc_row[mm] + prev)
                worst = max(worst, abs(value - rows[b, i, mm]))
                rows[b, i, mm] = value
                prev = value
        change[b] = max(change[b], worst)


@njit(cache=True, parallel=True, error_model="numpy")
def wire_report(g, r, r_first, r_last, drivers, nodes, rows, cols, scale, out):
    """Fold one crossbar's wire nodes into ``out`` (3, batch): the largest KCL residual
    (A) and relative residual of every wire node, and the power (W) of its devices and
    segments (``r``, but ``r_first`` from a row's driver and ``r_last`` into a column's
    node). ``drivers`` (batch, N) and ``nodes`` (batch, M) are the voltages its rows and
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
            w_first = 1.0 / r_first
            w_last = 1.0 / r_last
            for i in range(n):
                for j in range(m):
                    here = rows[b, i, j]
                    before = drivers[b, i] if j == 0 else rows[b, i, j - 1]
                    seg = before - here
                    w_seg = w_first if j == 0 else w
                    power += w_seg * seg * seg
                    into = w_seg * seg + g[i, j] * (cols[b, i, j] - here)
                    total = w_seg + g[i, j]
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
                    w_seg = w_last if i == n - 1 else w
                    power += w_seg * seg * seg
                    into = w_seg * seg + g[i, j] * (rows[b, i, j] - here)
                    total = w_seg + g[i, j]
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
def node_inflow(g_in, r_in, rows_in, cols_in, above, g_out, r_out, rows_out, cols_out, v, out):
    """The current (A) the wires bring into each node of a layer, (batch, nodes): through
    the last segment of its column (``r_in``, Ohm) and the first of its row (``r_out``)
    (the devices' currents when the wires are ideal, ``r = 0``, and the wire is the
    node)."""
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
def diode_power(v, lo, hi, i_s, n_vt, gmin, out):
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
