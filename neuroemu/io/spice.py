"""ngspice netlists of a chip, running ngspice, and the cross-check against ``settle``.

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

import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import SpiceError
from ..units import ZERO_CELSIUS
from ..version import __version__

if TYPE_CHECKING:
    from ..chip.base import Chip

OPTIONS = "RELTOL=1e-12 VNTOL=1e-15 ABSTOL=1e-18 ITL1=1000"


def ngspice_available() -> bool:
    return shutil.which("ngspice") is not None


def _g(value: float) -> str:
    return repr(float(value))


def netlist(chip: Chip, x_row: Any, *, title: str | None = None) -> str:
    """The ngspice netlist of ``chip`` with input ``x_row`` (n_inputs,), see module docs."""
    x = chip.check_inputs(np.asarray(x_row, dtype=np.float64).reshape(1, -1), "x_row")
    spec = chip.spec
    diodes = [layer.diode for layer in spec.layers if layer.diode is not None]
    for layer in spec.layers:
        if layer.diode is not None and layer.diode.model != "shockley":
            raise SpiceError(
                f"chip {chip.name}: layer {layer.name}: ideal diodes have no SPICE model; "
                "use a chip with Shockley diodes"
            )
    temps = {d.temperature for d in diodes}
    gmins = {d.gmin for d in diodes}
    if len(temps) > 1 or len(gmins) > 1:
        raise SpiceError(
            f"chip {chip.name}: ngspice takes one temperature and one GMIN for the whole "
            "circuit, but the diode cards differ"
        )
    temperature = (temps.pop() if temps else 300.15) - ZERO_CELSIUS
    gmin = gmins.pop() if gmins else 1e-12
    sources = chip.source_voltages(x)[0]
    n_src = len(sources)
    lines: list[str] = []
    omitted = sum(int(np.count_nonzero(g == 0)) for g in chip.conductances)
    omitted += sum(int(np.count_nonzero(b == 0)) for b in chip.bias_conductance)
    lines += [
        f"* {title or f'neuroemu chip {chip.name}'}",
        f"* written by neuroemu {__version__}; chip {chip.name}, seed {chip.seed}",
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
    names += [[f"n{k + 1}_{j}" for j in range(n)] for k, n in enumerate(chip.layer_sizes)]
    for k, g in enumerate(chip.conductances):
        layer_no = k + 1
        rows, cols = np.nonzero(g)
        resist = 1.0 / g[rows, cols]
        lines += [
            f"R{layer_no}_{i}_{j} {names[k][i]} {names[layer_no][j]} {_g(r)}"
            for i, j, r in zip(rows.tolist(), cols.tolist(), resist.tolist(), strict=True)
        ]
        bias = chip.bias_conductance[k]
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
        lo, hi = chip.node_bounds(layer)
        for side, bounds in (("lo", lo), ("hi", hi)):
            values = np.unique(bounds[np.isfinite(bounds)])
            if len(values) > 1:  # pragma: no cover (one bound per side per layer today)
                raise SpiceError(f"chip {chip.name}: layer {layer.name}: several {side} bounds")
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


def _control_block(raw: Path) -> str:
    return "\n".join(
        [".control", "set filetype=ascii", "op", f"write {raw} all", "quit", ".endc", ""]
    )


def parse_ascii_raw(text: str) -> dict[str, float]:
    """Node voltages of an operating point from an ngspice ASCII raw file."""
    lines = text.splitlines()
    try:
        n_vars = int(
            next(line for line in lines if line.startswith("No. Variables:")).split(":")[1]
        )
        start = lines.index("Variables:") + 1
        values_at = lines.index("Values:") + 1
    except (StopIteration, ValueError):
        raise SpiceError(
            "ngspice wrote no operating point (no Variables/Values in its raw file)"
        ) from None
    names = [lines[start + i].split()[1].lower() for i in range(n_vars)]
    tokens = " ".join(lines[values_at:]).split()
    values = [float(t) for t in tokens[1 : 1 + n_vars]]  # the first token is the point index
    if len(values) != n_vars:
        raise SpiceError(f"ngspice raw file holds {len(values)} values for {n_vars} variables")
    out = {}
    for name, value in zip(names, values, strict=True):
        if name.startswith("v(") and name.endswith(")"):
            name = name[2:-1]
        out[name] = value
    return out


def run_ngspice(text: str, *, timeout: float = 600.0) -> dict[str, float]:
    """Run ngspice in batch mode on a netlist; return node name (lowercase) -> voltage (V)."""
    exe = shutil.which("ngspice")
    if exe is None:
        raise SpiceError("ngspice not found on PATH (install Debian's package ngspice)")
    with tempfile.TemporaryDirectory(prefix="neuroemu-spice-") as tmp:
        raw = Path(tmp) / "op.raw"
        deck = Path(tmp) / "chip.cir"
        body = text.rstrip()
        if body.endswith(".end"):
            body = body[: -len(".end")]
        deck.write_text(body + "\n" + _control_block(raw) + ".end\n", encoding="utf-8")
        try:
            proc = subprocess.run(
                [exe, "-b", str(deck)], capture_output=True, text=True, timeout=timeout, cwd=tmp
            )
        except subprocess.TimeoutExpired:
            raise SpiceError(f"ngspice did not finish within {timeout:g} s") from None
        output = proc.stdout + proc.stderr
        if proc.returncode != 0 or not raw.exists():
            problem = next(
                (line.strip() for line in output.splitlines() if "error" in line.lower()),
                f"exit status {proc.returncode}",
            )
            raise SpiceError(f"ngspice failed: {problem}")
        return parse_ascii_raw(raw.read_text(encoding="utf-8", errors="replace"))


def spice_voltages(chip: Chip, x_row: Any, **options: Any) -> list[np.ndarray]:
    """Free-layer voltages of the operating point ngspice finds, laid out as ``settle``'s."""
    voltages = run_ngspice(netlist(chip, x_row), **options)
    try:
        return [
            np.array([voltages[f"n{k + 1}_{j}"] for j in range(n)])
            for k, n in enumerate(chip.layer_sizes)
        ]
    except KeyError as exc:
        raise SpiceError(f"ngspice output lacks node {exc.args[0]}") from None


def check_spice(
    chip: Chip, x: Any, *, progress: Callable[[], None] | None = None
) -> list[dict[str, float]]:
    """Settle each row of ``x`` with the engine and with ngspice ``.op``; per sample the
    largest voltage difference (V) over all free nodes and each one's wall time (s)."""
    x = chip.check_inputs(x)
    chip.settle(x[:1])  # compile and cache before timing
    results = []
    for row in x:
        start = time.perf_counter()
        eq = chip.settle(row[None, :])
        engine = time.perf_counter() - start
        start = time.perf_counter()
        reference = spice_voltages(chip, row)
        spice = time.perf_counter() - start
        diff = max(
            float(np.max(np.abs(v[0] - r))) for v, r in zip(eq.voltages, reference, strict=True)
        )
        results.append({"max_abs_diff_V": diff, "engine_s": engine, "ngspice_s": spice})
        if progress is not None:
            progress()
    return results
