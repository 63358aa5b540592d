"""An independent reference for the operating point of a chip with wire resistance.

It builds the nodal conductance matrix of the whole circuit, every wire node included, and
solves it with a sparse direct solver: slow and obvious on purpose, sharing nothing with the
engine or the netlist writer but the geometry they all follow (``neuroemu.engine.netlist``):

- crossbar ``l`` (1-based) with conductances ``W`` of shape ``(N, M)`` joins the nodes of
  layer ``l-1`` (the input sources for ``l = 1``) to the nodes of layer ``l``;
- with a wire resistance ``r > 0`` every cell ``(i, j)`` has a row-wire node ``R[i, j]`` and
  a column-wire node ``C[i, j]`` joined by the device ``W[i, j]``; row ``i`` is a chain of
  segments of ``1 / r`` from its driving node to ``R[i, 0]``, ``R[i, 1]``, .. ``R[i, M-1]``
  (open at the far end); column ``j`` a chain from ``C[0, j]`` (open) through ``C[N-1, j]``
  to node ``j`` of layer ``l``; the layer's ``driver_resistance`` adds to the row's first
  segment, its ``sense_resistance`` to the column's last;
- with ``r = 0`` the device joins the two layers' nodes directly;
- bias conductances join each layer node to the ``+V_b`` and ``-V_b`` sources.

Only linear nodes are solved. A Shockley diode always carries some current, so a chip with
Shockley diodes is refused. An ideal diode carries no current while its node lies within its
bounds, so a chip with ideal diodes is solved as if they were not there, and refused if the
solution puts any of their nodes beyond a bound (a diode would then conduct).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse
import scipy.sparse.linalg

import neuroemu


def wire_operating_point(
    chip: neuroemu.Chip, x_row: Any
) -> tuple[list[np.ndarray], list[tuple[np.ndarray, np.ndarray] | None]]:
    """The DC operating point of ``chip`` with inputs ``x_row`` (n_inputs,), wire
    resistances included.

    Parameters
    ----------
    chip
        A resistive chip; its crossbars' wire resistances are the ``wire_resistance`` of the
        layers they feed.
    x_row
        One input sample, values in [0, 1].

    Returns
    -------
    voltages
        The voltages (V) of each free layer's nodes, one (nodes,) array per layer.
    wires
        Per crossbar, the voltages (V) of its row-wire and column-wire nodes ``(R, C)``, each
        of shape ``(N, M)`` like its conductances, or ``None`` for a crossbar without wire
        resistance.

    Raises
    ------
    ValueError
        For a chip with Shockley diodes, or whose linear solution puts a node with an ideal
        diode beyond its bound.
    """
    spec = chip.spec
    for layer in spec.layers:
        if layer.diode is not None and layer.diode.model != "ideal":
            raise ValueError(
                f"wire_operating_point solves linear nodes only; layer {layer.name} has "
                f"{layer.diode.model} diodes"
            )
    x = np.asarray(x_row, dtype=np.float64).reshape(1, -1)
    sources = np.asarray(chip.source_voltages(x)[0], dtype=np.float64)
    v_b = spec.bias.voltage
    known_values = [*sources.tolist(), v_b, -v_b]

    # Number every node: the known ones (input sources, then +V_b, -V_b) first.
    n_known = len(known_values)
    count = n_known
    layer_nodes = [np.arange(chip.n_sources)]
    for size in chip.layer_sizes:
        layer_nodes.append(np.arange(count, count + size))
        count += size
    wire_nodes: list[tuple[np.ndarray, np.ndarray] | None] = []
    for g, layer in zip(chip.conductances, spec.layers, strict=True):
        if layer.wire_resistance > 0:
            n, m = g.shape
            row_wire = np.arange(count, count + n * m).reshape(n, m)
            count += n * m
            col_wire = np.arange(count, count + n * m).reshape(n, m)
            count += n * m
            wire_nodes.append((row_wire, col_wire))
        else:
            wire_nodes.append(None)

    # Every two-terminal conductance of the circuit, as (node a, node b, conductance in S).
    edges: list[tuple[int, int, float]] = []
    for k, (g, layer) in enumerate(zip(chip.conductances, spec.layers, strict=True)):
        below, above = layer_nodes[k], layer_nodes[k + 1]
        n, m = g.shape
        nodes = wire_nodes[k]
        if nodes is None:
            for i in range(n):
                for j in range(m):
                    edges.append((int(below[i]), int(above[j]), float(g[i, j])))
            continue
        row_wire, col_wire = nodes
        segment = 1.0 / layer.wire_resistance
        driven = 1.0 / (layer.wire_resistance + layer.driver_resistance)
        sensed = 1.0 / (layer.wire_resistance + layer.sense_resistance)
        for i in range(n):
            for j in range(m):
                edges.append((int(row_wire[i, j]), int(col_wire[i, j]), float(g[i, j])))
                left = int(below[i]) if j == 0 else int(row_wire[i, j - 1])
                edges.append((left, int(row_wire[i, j]), driven if j == 0 else segment))
                down = int(above[j]) if i == n - 1 else int(col_wire[i + 1, j])
                edges.append((int(col_wire[i, j]), down, sensed if i == n - 1 else segment))
    for k, bias in enumerate(chip.bias_conductance):
        for j, node in enumerate(layer_nodes[k + 1]):
            edges.append((n_known - 2, int(node), float(bias[0, j])))
            edges.append((n_known - 1, int(node), float(bias[1, j])))

    # The nodal matrix: each conductance adds g on both diagonals and -g off them.
    a = np.array([e[0] for e in edges])
    b = np.array([e[1] for e in edges])
    w = np.array([e[2] for e in edges])
    matrix = scipy.sparse.coo_matrix(
        (
            np.concatenate([w, w, -w, -w]),
            (np.concatenate([a, b, a, b]), np.concatenate([a, b, b, a])),
        ),
        shape=(count, count),
    ).tocsr()
    known = np.arange(n_known)
    free = np.arange(n_known, count)
    v_known = np.array(known_values)
    rhs = -(matrix[free][:, known] @ v_known)
    v_free = scipy.sparse.linalg.spsolve(matrix[free][:, free].tocsc(), rhs)
    v = np.concatenate([v_known, v_free])

    voltages = [v[nodes] for nodes in layer_nodes[1:]]
    for layer, volts in zip(spec.layers, voltages, strict=True):
        if layer.diode is None:
            continue
        lo, hi = chip.node_bounds(layer)
        beyond = (volts < lo) | (volts > hi)
        if beyond.any():
            j = int(np.argmax(beyond))
            raise ValueError(
                f"wire_operating_point solves linear nodes only; node {j} of layer "
                f"{layer.name} would sit at {volts[j]:.6g} V, beyond its ideal diode's "
                f"bounds [{lo[j]:g}, {hi[j]:g}] V"
            )
    wires = [None if nodes is None else (v[nodes[0]], v[nodes[1]]) for nodes in wire_nodes]
    return voltages, wires
