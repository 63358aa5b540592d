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

from ..kernels import KIND_SHOCKLEY, NodeParams
from ..kernels.nodes import report_nodes
from ..kernels.wires import diode_power, node_inflow, solve_inputs, solve_layer, wire_report
from .circuit import Circuit
from .settle import nudged_conductance, operating_point
from .states import Equilibrium, Trace, check_target, initial_voltages


@dataclass(frozen=True)
class Chains:
    """The eliminated conductances of one crossbar's wires (:func:`chain_factors`), float64.

    ``s[i, j] = 1 / (1 + r_i y[i, j])`` passes column ``j``'s cells ``0..i`` through the
    segment ``r_i`` after cell ``i``; ``y_node[j]`` (S) is the column's Norton conductance
    at its node. ``t[i, m]`` and ``z_driver[i]`` are the same for row ``i``, from its open
    end toward its driver. Every segment is ``r`` but the row's first, ``r_first`` (through
    the driver's resistance), and the column's last, ``r_last`` (through the sense
    resistance).
    """

    r: float
    r_first: float
    r_last: float
    g: np.ndarray  # S, (N, M)
    s: np.ndarray
    y_node: np.ndarray
    t: np.ndarray
    z_driver: np.ndarray


def chain_factors(g: np.ndarray, r: float, driver: float = 0.0, sense: float = 0.0) -> Chains:
    """The elimination of crossbar ``g`` (S, (N, M)) with wire segments of ``r`` (Ohm):
    column ``j`` from its open end (``i = 0``), ``y_0 = G_0``,
    ``y_i = y_{i-1} / (1 + r y_{i-1}) + G_i`` (a segment in series, then the cell's device
    to a held voltage), and row ``i`` likewise from ``m = M - 1`` toward ``m = 0``. Every
    term is positive: no cancellation, at any ``r`` (``r = 0`` gives the plain sums).
    ``driver`` and ``sense`` (Ohm) add to the segment that joins a row to its driver and a
    column to its node."""
    g = np.ascontiguousarray(g, dtype=np.float64)
    n, m = g.shape
    r_first, r_last = r + driver, r + sense
    y = np.empty_like(g)
    s = np.empty_like(g)
    acc = np.zeros(m)
    for i in range(n):
        acc = acc + g[i]
        y[i] = acc
        s[i] = 1.0 / (1.0 + (r_last if i == n - 1 else r) * acc)
        acc = acc * s[i]
    z = np.empty_like(g)
    t = np.empty_like(g)
    acc = np.zeros(n)
    for j in range(m - 1, -1, -1):
        acc = acc + g[:, j]
        z[:, j] = acc
        t[:, j] = 1.0 / (1.0 + (r_first if j == 0 else r) * acc)
        acc = acc * t[:, j]
    return Chains(
        r=float(r),
        r_first=float(r_first),
        r_last=float(r_last),
        g=g,
        s=s,
        y_node=y[-1] * s[-1],
        t=t,
        z_driver=z[:, 0] * t[:, 0],
    )


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
        solve_layer(
            *phys[k], g_node[k], const[k],
            ch.g, ch.s, ch.r, ch.r_last, wires[k][0], wires[k][1],
            above,
            nxt.g if nxt else empty2, nxt.t if nxt else empty2, nxt.r if nxt else 0.0,
            nxt.r_first if nxt else 0.0,
            wires[k + 1][0] if above else empty3, wires[k + 1][1] if above else empty3,
            v[k], change,
        )  # fmt: skip

    def sweep() -> None:
        change[:] = 0.0
        for k in range(0, n_layers, 2):
            solve(k)
        first = chains[0]
        solve_inputs(drivers[0], first.g, first.t, first.r, first.r_first, *wires[0], change)
        for k in range(1, n_layers, 2):
            solve(k)

    def figures() -> tuple[np.ndarray, np.ndarray]:
        """The largest KCL residual (A) and relative residual over every node, and the
        power (W) of the resistive elements, (3, batch); and that of the Shockley diodes."""
        out = np.zeros((3, batch))
        in_diodes = np.zeros(batch)
        for k in range(n_layers):
            ch, above = chains[k], k + 1 < n_layers
            nxt = chains[k + 1] if above else None
            inflow = np.empty((batch, sizes[k]))
            node_inflow(
                ch.g, ch.r_last, wires[k][0], wires[k][1], above,
                nxt.g if nxt else empty2, nxt.r_first if nxt else 0.0,
                wires[k + 1][0] if above else empty3, wires[k + 1][1] if above else empty3,
                v[k], inflow,
            )  # fmt: skip
            wire_report(
                ch.g, ch.r, ch.r_first, ch.r_last, drivers[k], v[k], *wires[k], c.v_scale, out
            )  # fmt: skip
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
                diode_power(v[k], *phys[k][1:], in_diodes)
        return out, in_diodes

    if trace:
        first, in_diodes = figures()
        states = [[a.copy() for a in v]]
        powers = [first[2] + in_diodes]
        energies = [0.5 * first[2]]
        changes = []
    while sweeps < max_sweeps:
        sweep()
        sweeps += 1
        newly = ~done & (change <= threshold)
        per_sample[newly] = sweeps
        done |= newly
        if trace:
            now, in_diodes = figures()
            states.append([a.copy() for a in v])
            powers.append(now[2] + in_diodes)
            energies.append(0.5 * now[2])
            changes.append(change / c.v_scale)
        if done.all():
            break
    per_sample[~done] = sweeps

    final, in_diodes = figures()
    power = np.maximum(final[2] + in_diodes, 0.0)
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
