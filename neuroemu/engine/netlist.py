"""The ngspice netlist of a resistive chip (its DC operating point, ``.op``).

Node names are ``n<layer>_<index>``:

- layer 0 holds the sources. With ``differential`` encoding ``n0_0 .. n0_{N-1}`` are the
  ``+gain * x_i`` sources and ``n0_N .. n0_{2N-1}`` the ``-gain * x_i`` sources (N inputs;
  with ``single`` encoding only the first half exists). The two bias sources follow:
  ``n0_S`` at ``+V_b`` and ``n0_{S+1}`` at ``-V_b``, S being the number of input sources.
- ``n<l>_<j>`` is node ``j`` of free layer ``l`` (1 .. L, L the output layer).
- a diode bound other than 0 V gets its own source node, ``nlo<l>`` or ``nhi<l>``; a bound
  of 0 V is ground, node ``0``.

Elements: ``V0_<i>`` sources, ``R<l>_<i>_<j>`` crossbar devices (from node ``i`` of layer
``l-1`` to node ``j`` of layer ``l``), ``RB<l>p_<j>`` / ``RB<l>n_<j>`` bias conductances,
``D<l>lo_<j>`` (anode at the lower bound, cathode at the node) and ``D<l>hi_<j>`` (anode at
the node, cathode at the upper bound) Shockley diodes with ``.model DL<l>``. A conductance
of exactly 0 S is an open circuit and is left out.

Wires. Each crossbar may have a wire resistance ``r`` (Ohm, the ``wire_resistance`` of the
layer it feeds): the resistance of one segment of its row and column wires. Crossbar ``l``
(1-based, the one feeding layer ``l``) with conductances ``W`` of shape ``(N, M)`` (rows =
the nodes of layer ``l-1``, the input sources for ``l = 1``; columns = the nodes of layer
``l``) is written, when ``r > 0``, as:

- at every cell ``(i, j)`` a row-wire node ``r<l>_<i>_<j>`` and a column-wire node
  ``c<l>_<i>_<j>``, the device ``R<l>_<i>_<j>`` (``1 / W[i, j]``, left out at exactly 0 S)
  joining the two;
- row ``i`` driven at its ``j = 0`` end: segment ``RWr<l>_<i>_0`` joins the driving node
  ``n<l-1>_<i>`` to ``r<l>_<i>_0`` and ``RWr<l>_<i>_<j>`` joins ``r<l>_<i>_<j-1>`` to
  ``r<l>_<i>_<j>`` for ``j = 1 .. M-1``; the ``j = M-1`` end is open;
- column ``j`` joining its layer node at its ``i = N-1`` end: ``RWc<l>_<i>_<j>`` joins
  ``c<l>_<i>_<j>`` to ``c<l>_<i+1>_<j>`` for ``i = 0 .. N-2`` and ``RWc<l>_<N-1>_<j>`` joins
  ``c<l>_<N-1>_<j>`` to ``n<l>_<j>``; the ``i = 0`` end is open;
- every segment has resistance ``r``, but ``RWr<l>_<i>_0`` has ``r`` plus the layer's
  ``driver_resistance`` and ``RWc<l>_<N-1>_<j>`` ``r`` plus its ``sense_resistance``; bias
  conductances and diodes stay on the layer's nodes themselves, with no wire.

So a crossbar with wires adds ``2 N M`` nodes and ``2 N M`` segments. A crossbar with
``r = 0`` is written with its devices directly between the two layers' nodes, and a chip
without wire resistance gets the same netlist, byte for byte, as if wires were not given.

An ideal diode has no SPICE model, so a layer of ideal diodes is written as the *active set*
of one operating point (:class:`ActiveSet`): each node that sits at its diode bound in that
solution becomes a DC source ``Vclamp_<l>_<j>`` from the node to ground at the bound, each
other node stays a plain node with no diode. The netlist then holds for that one input only.
ngspice's ``i(Vclamp_<l>_<j>)`` is the current flowing from the node through the source to
ground: the current the diode would carry out of the node. A lower diode (``V >= lo``) can
only push current into its node, so at the operating point ``i <= 0`` at a lower bound and
``i >= 0`` at an upper one; with every free node within its bounds, these are the
conditions (KKT) under which the active-set circuit's solution is the ideal-diode operating
point (:mod:`neuroemu.io.spice` checks them).

Options written into every netlist, and why:

- ``TEMP`` and ``TNOM`` both equal to the diode card's temperature: ngspice then takes
  ``I_s`` as given at that temperature and does not rescale it;
- ``GMIN`` equal to the card's ``gmin``: the conductance across every junction, which the
  engine's diode equation includes too;
- ``RELTOL=1e-12``, ``VNTOL=1e-15``, ``ABSTOL=1e-18``: Newton stops only when voltages
  agree to about 1e-12 relative. ngspice's defaults (1e-3, 1 uV, 1 pA) would leave errors
  near 1e-6 V, the very size the cross-check must resolve;
- ``ITL1=1000``: more Newton iterations for the operating point, which the tight
  tolerances can need.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import SpiceError
from ..spec.resistive import ChipSpec, WireResistance
from ..units import ZERO_CELSIUS
from ..version import __version__

OPTIONS = "RELTOL=1e-12 VNTOL=1e-15 ABSTOL=1e-18 ITL1=1000"


#: Sides of :attr:`ActiveSet.side`: a node at its lower bound, free, at its upper bound.
AT_LO, FREE, AT_HI = -1, 0, 1


@dataclass(frozen=True)
class ActiveSet:
    """Which nodes of one ideal-diode operating point sit at a diode bound.

    ``side[k]`` (int8, one per node of free layer ``k + 1``) is :data:`AT_LO`, :data:`FREE`
    or :data:`AT_HI`; ``bound[k]`` is the bound (V) of each clamped node, NaN at a free one.
    Layers without ideal diodes are all free. ``tolerance`` (V) is how close to its bound a
    node of the solution had to be to count as clamped."""

    side: list[np.ndarray]
    bound: list[np.ndarray]
    tolerance: float

    @property
    def n_clamped(self) -> int:
        """The number of clamped nodes, over every layer."""
        return sum(int(np.count_nonzero(s)) for s in self.side)


def active_set(
    voltages: Sequence[np.ndarray],
    node_bounds: Sequence[tuple[np.ndarray, np.ndarray]],
    ideal: Sequence[bool],
    tolerance: float,
) -> ActiveSet:
    """The active set of an operating point: each node of a layer with ideal diodes
    (``ideal[k]``) whose voltage in ``voltages`` (V, one (nodes,) array per free layer) lies
    within ``tolerance`` (V) of a finite bound of ``node_bounds`` (``(lo, hi)`` per layer)
    is clamped there. ``settle`` stops when no node moves by more than ``tol * V_scale`` in a
    sweep, and its clip puts a clamped node exactly on its bound, so a tolerance of that size
    separates the two: a node that close to its bound and yet free is, to the solver's
    accuracy, at the bound (see :meth:`neuroemu.chip.Chip.active_set`)."""
    sides, bounds = [], []
    for v, (lo, hi), is_ideal in zip(voltages, node_bounds, ideal, strict=True):
        v = np.asarray(v, dtype=np.float64)
        side = np.zeros(v.shape, dtype=np.int8)
        if is_ideal:
            side[np.isfinite(lo) & (np.abs(v - lo) <= tolerance)] = AT_LO
            side[np.isfinite(hi) & (np.abs(v - hi) <= tolerance)] = AT_HI
        bound = np.where(side == AT_LO, lo, np.where(side == AT_HI, hi, np.nan))
        sides.append(side)
        bounds.append(bound.astype(np.float64))
    return ActiveSet(sides, bounds, float(tolerance))


def _g(value: float) -> str:
    return repr(float(value))


def netlist(
    spec: ChipSpec,
    conductances: Sequence[np.ndarray],
    biases: Sequence[np.ndarray],
    sources: np.ndarray,
    node_bounds: Sequence[tuple[np.ndarray, np.ndarray]],
    seed: int,
    *,
    active: ActiveSet | None = None,
    title: str | None = None,
    wires: Sequence[float | WireResistance] | None = None,
) -> str:
    """The ngspice netlist of the chip ``spec`` describes, with ``conductances`` (S, one
    array per crossbar), ``biases`` (S, one (2, nodes) array per layer), its input sources
    at ``sources`` (V, one per source node) and each layer's diode bounds ``node_bounds``
    (``(lo, hi)`` in V, +/-inf where there is none); ``seed`` is named in the header.
    Layers of ideal diodes are written as the ``active`` set of the operating point for
    these sources (see the module docstring), which they need.

    ``wires`` gives the resistance (Ohm, >= 0) of one wire segment of each crossbar, or its
    :class:`~neuroemu.spec.resistive.WireResistance` (segment, driver, sense); a crossbar
    with a segment > 0 is written segment by segment (see the module docstring). ``None``,
    or every segment 0 Ohm, writes ideal wires."""
    name = spec.name
    wire = _wire_resistances(spec, len(conductances), wires)
    diodes = [
        layer.diode
        for layer in spec.layers
        if layer.diode is not None and layer.diode.model == "shockley"
    ]
    ideal = [layer.diode is not None and layer.diode.model == "ideal" for layer in spec.layers]
    if any(ideal) and active is None:
        layer = spec.layers[ideal.index(True)]
        raise SpiceError(
            f"chip {name}: layer {layer.name}: ideal diodes have no SPICE model; their "
            "netlist is the active set of one operating point (chip.to_spice settles the input)"
        )
    temps = {d.temperature for d in diodes}
    gmins = {d.gmin for d in diodes}
    if len(temps) > 1 or len(gmins) > 1:
        raise SpiceError(
            f"chip {name}: ngspice takes one temperature and one GMIN for the whole "
            "circuit, but the diode cards differ"
        )
    temperature = (temps.pop() if temps else 300.15) - ZERO_CELSIUS
    gmin = gmins.pop() if gmins else 1e-12
    n_src = len(sources)
    lines: list[str] = []
    omitted = sum(int(np.count_nonzero(g == 0)) for g in conductances)
    omitted += sum(int(np.count_nonzero(b == 0)) for b in biases)
    lines += [
        f"* {title or f'neuroemu chip {name}'}",
        f"* written by neuroemu {__version__}; chip {name}, seed {seed}",
        f"* n0_0..n0_{spec.inputs.size - 1}: +gain*x sources"
        + (
            f"; n0_{spec.inputs.size}..n0_{n_src - 1}: -gain*x sources"
            if spec.inputs.encoding == "differential"
            else ""
        ),
        f"* n0_{n_src}: +V_b bias source; n0_{n_src + 1}: -V_b bias source",
        "* n<l>_<j>: node j of free layer l; nlo<l>/nhi<l>: diode bound sources (0 V is ground)",
        f"* {omitted} conductances of exactly 0 S are open circuits and are left out",
        "* TEMP = TNOM = the diode card's temperature, so I_s is used as given;",
        "* GMIN = the card's gmin (conductance across each junction, in the engine's model too);",
        "* RELTOL/VNTOL/ABSTOL far below the defaults so the operating point is exact to",
        "* about 1e-12 relative, well below the 1e-6 V the cross-check resolves.",
    ]
    if any(w.segment > 0 for w in wire):
        lines += _wire_header(spec, wire)
    if active is not None and any(ideal):
        lines += _active_set_header(spec, active, ideal)
    lines.append(f".options TEMP={temperature!r} TNOM={temperature!r} GMIN={_g(gmin)} {OPTIONS}")
    all_sources = np.concatenate([sources, [spec.bias.voltage, -spec.bias.voltage]])
    lines += [f"V0_{i} n0_{i} 0 DC {_g(v)}" for i, v in enumerate(all_sources)]
    names = [[f"n0_{i}" for i in range(n_src)]]
    for k, layer in enumerate(spec.layers):
        names.append([f"n{k + 1}_{j}" for j in range(layer.size)])
    for k, g in enumerate(conductances):
        layer_no = k + 1
        if wire[k].segment > 0:
            lines += _wired_crossbar(layer_no, g, names[k], names[layer_no], wire[k])
        else:
            rows, cols = np.nonzero(g)
            resist = 1.0 / g[rows, cols]
            lines += [
                f"R{layer_no}_{i}_{j} {names[k][i]} {names[layer_no][j]} {_g(r)}"
                for i, j, r in zip(rows.tolist(), cols.tolist(), resist.tolist(), strict=True)
            ]
        bias = biases[k]
        for row, node, tag in ((0, f"n0_{n_src}", "p"), (1, f"n0_{n_src + 1}", "n")):
            lines += [
                f"RB{layer_no}{tag}_{j} {node} {names[layer_no][j]} {_g(1.0 / bias[row, j])}"
                for j in np.flatnonzero(bias[row]).tolist()
            ]
    for k, layer in enumerate(spec.layers):
        if layer.diode is None:
            continue
        layer_no = k + 1
        if ideal[k]:
            assert active is not None  # checked above
            bound = active.bound[k]
            lines += [
                f"Vclamp_{layer_no}_{j} {names[layer_no][j]} 0 DC {_g(bound[j])}"
                for j in np.flatnonzero(active.side[k]).tolist()
            ]
            continue
        d = layer.diode
        assert d.i_s is not None and d.n is not None  # a Shockley card
        lines.append(f".model DL{layer_no} D(IS={_g(d.i_s)} N={_g(d.n)})")
        lo, hi = node_bounds[k]
        for side, bounds in (("lo", lo), ("hi", hi)):
            values = np.unique(bounds[np.isfinite(bounds)])
            if len(values) > 1:  # pragma: no cover (one bound per side per layer today)
                raise SpiceError(f"chip {name}: layer {layer.name}: several {side} bounds")
            if len(values) == 0:
                continue
            ref = "0"
            if values[0] != 0.0:
                ref = f"n{side}{layer_no}"
                lines.append(f"V{side}{layer_no} {ref} 0 DC {_g(values[0])}")
            for j in np.flatnonzero(np.isfinite(bounds)).tolist():
                node = names[layer_no][j]
                anode, cathode = (ref, node) if side == "lo" else (node, ref)
                lines.append(f"D{layer_no}{side}_{j} {anode} {cathode} DL{layer_no}")
    lines += [".op", ".end", ""]
    return "\n".join(lines)


def _wire_resistances(
    spec: ChipSpec, n_crossbars: int, wires: Sequence[float | WireResistance] | None
) -> list[WireResistance]:
    """The wire resistances (Ohm) of each crossbar, checked: one per crossbar, each finite
    and >= 0, end resistances only on a wire with segments; all ideal when ``wires`` is
    ``None``."""
    if wires is None:
        return [WireResistance(0.0)] * n_crossbars
    values = [
        WireResistance(*(float(x) for x in w)) if isinstance(w, tuple) else WireResistance(float(w))
        for w in wires
    ]
    if len(values) != n_crossbars:
        raise SpiceError(
            f"chip {spec.name}: wires: expected one resistance per crossbar ({n_crossbars}), "
            f"got {len(values)}"
        )
    for k, w in enumerate(values):
        for key, r in w._asdict().items():
            if not (np.isfinite(r) and r >= 0):
                raise SpiceError(
                    f"chip {spec.name}: wires[{k}].{key}: the wire resistance must be finite "
                    f"and >= 0 Ohm (got {r!r} Ohm)"
                )
        if (w.driver > 0 or w.sense > 0) and not w.segment > 0:
            raise SpiceError(
                f"chip {spec.name}: wires[{k}]: a driver or sense resistance needs wire "
                "segments (segment > 0 Ohm)"
            )
    return values


def _wire_header(spec: ChipSpec, wire: Sequence[WireResistance]) -> list[str]:
    """Comment lines stating each crossbar's wire segment resistance and the names of the
    wire nodes and segments."""
    names = ["input", *[layer.name for layer in spec.layers]]
    lines = ["* Wire resistance per segment of each crossbar's row and column wires:"]
    for k, w in enumerate(wire):
        what = (
            f"{_g(w.segment)} Ohm"
            if w.segment > 0
            else "0 Ohm (ideal wires: devices join the nodes)"
        )
        if w.driver > 0:
            what += f", plus {_g(w.driver)} Ohm driver resistance in each RWr<l>_<i>_0"
        if w.sense > 0:
            what += f", plus {_g(w.sense)} Ohm sense resistance in each RWc<l>_<N-1>_<j>"
        lines.append(f"*   crossbar {k + 1} ({names[k]}->{names[k + 1]}): {what}")
    lines += [
        "* With wires, crossbar l has at cell (i, j) row-wire node r<l>_<i>_<j> and column-wire",
        "* node c<l>_<i>_<j>, joined by the device R<l>_<i>_<j>. Row i is driven at j = 0:",
        "* RWr<l>_<i>_0 from n<l-1>_<i> to r<l>_<i>_0, RWr<l>_<i>_<j> from r<l>_<i>_<j-1> to",
        "* r<l>_<i>_<j>. Column j joins its node at i = N-1: RWc<l>_<i>_<j> from c<l>_<i>_<j> to",
        "* c<l>_<i+1>_<j>, RWc<l>_<N-1>_<j> from c<l>_<N-1>_<j> to n<l>_<j>. The other ends are",
        "* open; bias conductances and diodes are on the layer nodes, with no wire.",
    ]
    return lines


def _wired_crossbar(
    layer_no: int, g: np.ndarray, row_nodes: list[str], col_nodes: list[str], w: WireResistance
) -> list[str]:
    """The lines of crossbar ``layer_no`` with conductances ``g`` (S, (N, M)) and wires
    ``w`` (Ohm, segment > 0): the devices between the cells' row and column wire nodes,
    then the row wires (driven from ``row_nodes`` at ``j = 0``, through the driver
    resistance), then the column wires (ending on ``col_nodes`` at ``i = N-1``, through the
    sense resistance)."""
    n, m = g.shape
    seg = _g(w.segment)
    first = _g(w.segment + w.driver)
    last = _g(w.segment + w.sense)
    rows, cols = np.nonzero(g)
    resist = 1.0 / g[rows, cols]
    lines = [
        f"R{layer_no}_{i}_{j} r{layer_no}_{i}_{j} c{layer_no}_{i}_{j} {_g(value)}"
        for i, j, value in zip(rows.tolist(), cols.tolist(), resist.tolist(), strict=True)
    ]
    for i in range(n):
        lines.append(f"RWr{layer_no}_{i}_0 {row_nodes[i]} r{layer_no}_{i}_0 {first}")
        lines += [
            f"RWr{layer_no}_{i}_{j} r{layer_no}_{i}_{j - 1} r{layer_no}_{i}_{j} {seg}"
            for j in range(1, m)
        ]
    for i in range(n - 1):
        lines += [
            f"RWc{layer_no}_{i}_{j} c{layer_no}_{i}_{j} c{layer_no}_{i + 1}_{j} {seg}"
            for j in range(m)
        ]
    lines += [
        f"RWc{layer_no}_{n - 1}_{j} c{layer_no}_{n - 1}_{j} {col_nodes[j]} {last}" for j in range(m)
    ]
    return lines


def _active_set_header(spec: ChipSpec, active: ActiveSet, ideal: Sequence[bool]) -> list[str]:
    """Comment lines saying that the ideal-diode layers are one operating point's active set."""
    lines = [
        "* Ideal diodes have no SPICE model: their layers are the ACTIVE SET OF ONE OPERATING",
        "* POINT, valid for this input only. A node at its diode bound in that solution",
        f"* (within {active.tolerance:.3g} V) is held there by source Vclamp_<l>_<j> (node to",
        "* ground); every other node of the layer is free, with no diode.",
        "* i(Vclamp) flows from the node into the source: the current the diode carries out of",
        "* the node. It is the operating point iff i <= 0 at a lower bound (V >= lo), i >= 0 at",
        "* an upper bound (V <= hi), and every free node lies within its bounds.",
    ]
    for k, layer in enumerate(spec.layers):
        if ideal[k]:
            side = active.side[k]
            lines.append(
                f"* layer {k + 1} ({layer.name}): {int(np.count_nonzero(side))} of {side.size} "
                f"nodes clamped ({int(np.count_nonzero(side < 0))} at lower bounds, "
                f"{int(np.count_nonzero(side > 0))} at upper bounds)"
            )
    return lines
