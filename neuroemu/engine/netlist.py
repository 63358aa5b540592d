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
the node, cathode at the upper bound) diodes with ``.model DL<l>``. A conductance of exactly
0 S is an open circuit and is left out.

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

import numpy as np

from ..errors import SpiceError
from ..spec.resistive import ChipSpec
from ..units import ZERO_CELSIUS
from ..version import __version__

OPTIONS = "RELTOL=1e-12 VNTOL=1e-15 ABSTOL=1e-18 ITL1=1000"


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
    title: str | None = None,
) -> str:
    """The ngspice netlist of the chip ``spec`` describes, with ``conductances`` (S, one
    array per crossbar), ``biases`` (S, one (2, nodes) array per layer), its input sources
    at ``sources`` (V, one per source node) and each layer's diode bounds ``node_bounds``
    (``(lo, hi)`` in V, +/-inf where there is none); ``seed`` is named in the header."""
    name = spec.name
    diodes = [layer.diode for layer in spec.layers if layer.diode is not None]
    for layer in spec.layers:
        if layer.diode is not None and layer.diode.model != "shockley":
            raise SpiceError(
                f"chip {name}: layer {layer.name}: ideal diodes have no SPICE model; "
                "use a chip with Shockley diodes"
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
        f".options TEMP={temperature!r} TNOM={temperature!r} GMIN={_g(gmin)} {OPTIONS}",
    ]
    all_sources = np.concatenate([sources, [spec.bias.voltage, -spec.bias.voltage]])
    lines += [f"V0_{i} n0_{i} 0 DC {_g(v)}" for i, v in enumerate(all_sources)]
    names = [[f"n0_{i}" for i in range(n_src)]]
    for k, layer in enumerate(spec.layers):
        names.append([f"n{k + 1}_{j}" for j in range(layer.size)])
    for k, g in enumerate(conductances):
        layer_no = k + 1
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
        d = layer.diode
        assert d.i_s is not None and d.n is not None  # checked above: a Shockley card
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
