"""Running ngspice on a chip's netlist, and the cross-check of ``settle`` against it.

The netlist, its node names, elements and the options it sets are those of
:func:`neuroemu.engine.netlist.netlist` (``chip.to_spice(x_row)``); node ``n<l>_<j>`` is
node ``j`` of free layer ``l``.
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

from ..engine.netlist import AT_LO, FREE, ActiveSet
from ..errors import SpiceError

if TYPE_CHECKING:
    from ..chip.resistive import Chip


#: The voltage difference (V) at which ``settle`` and ngspice count as agreeing.
TOLERANCE_V = 1e-6


class SpiceTimeout(SpiceError):
    """ngspice did not finish within its time limit (and was stopped)."""


def ngspice_available() -> bool:
    return shutil.which("ngspice") is not None


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
    """Run ngspice in batch mode on a netlist; return node name (lowercase) -> voltage (V).

    ngspice is stopped after ``timeout`` seconds, raising :class:`SpiceTimeout`."""
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
            raise SpiceTimeout(f"ngspice did not finish within {timeout:g} s") from None
        output = proc.stdout + proc.stderr
        if proc.returncode != 0 or not raw.exists():
            problem = next(
                (line.strip() for line in output.splitlines() if "error" in line.lower()),
                f"exit status {proc.returncode}",
            )
            raise SpiceError(f"ngspice failed: {problem}")
        return parse_ascii_raw(raw.read_text(encoding="utf-8", errors="replace"))


def layer_voltages(chip: Chip, values: dict[str, float]) -> list[np.ndarray]:
    """Free-layer voltages (V) of an operating point ngspice wrote (:func:`run_ngspice`),
    laid out as one row of ``settle``'s."""
    try:
        return [
            np.array([values[f"n{k + 1}_{j}"] for j in range(n)])
            for k, n in enumerate(chip.layer_sizes)
        ]
    except KeyError as exc:
        raise SpiceError(f"ngspice output lacks node {exc.args[0]}") from None


def spice_voltages(chip: Chip, x_row: Any, **options: Any) -> list[np.ndarray]:
    """Free-layer voltages of the operating point ngspice finds, laid out as ``settle``'s."""
    return layer_voltages(chip, run_ngspice(chip.to_spice(x_row), **options))


class SpiceMismatch(SpiceError):
    """ngspice's operating point and ``settle``'s disagree, or the active set exported for an
    ideal-diode chip is not the operating point."""


def _node(chip: Chip, k: int, j: int) -> str:
    return f"layer {k + 1} ({chip.spec.layers[k].name}) node {j} (n{k + 1}_{j})"


def complementarity(
    chip: Chip,
    active: ActiveSet,
    values: dict[str, float],
    tolerance: float,
) -> float:
    """The worst complementarity margin (V) of the active-set circuit's operating point
    ``values`` (:func:`run_ngspice`), which is the ideal-diode operating point iff every
    margin is >= 0 (the KKT conditions of the convex problem):

    - a clamped node: the current its source ``Vclamp`` carries in the direction its diode
      conducts (into the node at a lower bound, out of it at an upper one) over the node's
      conductance ``G_j``: how far, to first order, the node would move past its bound
      without the diode, its neighbours held;
    - a free node with a diode: its distance inside its bounds.

    A margin below ``-tolerance`` raises :class:`SpiceMismatch` naming the node."""
    g = chip.circuit(np.float64).node_conductance64
    v_spice = layer_voltages(chip, values)
    worst = np.inf
    for k, layer in enumerate(chip.spec.layers):
        if layer.diode is None or layer.diode.model != "ideal":
            continue
        lo, hi = chip.node_bounds(layer)
        side, bound, v = active.side[k], active.bound[k], v_spice[k]
        for j in range(len(side)):
            if side[j] == FREE:
                margin = min(v[j] - lo[j], hi[j] - v[j])
                if not margin >= -tolerance:
                    which = "lower" if v[j] - lo[j] < hi[j] - v[j] else "upper"
                    raise SpiceMismatch(
                        f"{_node(chip, k, j)} is free in the active set, but ngspice puts it "
                        f"at {v[j]:.9g} V, {-margin:.3e} V beyond its {which} bound "
                        f"{lo[j] if which == 'lower' else hi[j]:g} V (tolerance {tolerance:g} V)"
                    )
            else:
                key = f"i(vclamp_{k + 1}_{j})"
                if key not in values:
                    raise SpiceError(f"ngspice output lacks the current {key}")
                out = values[key]  # flows from the node through the source to ground
                allowed = -out if side[j] == AT_LO else out
                margin = allowed / g[k][j]
                if not margin >= -tolerance:
                    which, may = (
                        ("lower", "push current into it")
                        if side[j] == AT_LO
                        else ("upper", "draw current out of it")
                    )
                    raise SpiceMismatch(
                        f"{_node(chip, k, j)} is clamped at its {which} bound {bound[j]:g} V, "
                        f"but its source carries {abs(out):.3e} A "
                        f"{'out of' if out > 0 else 'into'} the node while its diode can only "
                        f"{may} (margin {margin:.3e} V, tolerance {tolerance:g} V)"
                    )
            worst = min(worst, margin)
    return float(worst)


def check_spice(
    chip: Chip,
    x: Any,
    *,
    progress: Callable[[], None] | None = None,
    timeout: float = 600.0,
    tolerance: float = TOLERANCE_V,
) -> list[dict[str, float]]:
    """Settle each row of ``x`` with the engine and with ngspice ``.op``; per sample the
    largest voltage difference (V) over all free nodes and each one's wall time (s).

    A chip with ideal diodes is exported as the active set of each sample's operating point
    (:meth:`~neuroemu.chip.Chip.active_set`); its samples also report ``clamped_nodes`` and
    the worst complementarity margin (V, :func:`complementarity`), and a violation beyond
    ``tolerance`` fails the check. So does a voltage difference above ``tolerance`` (V), on
    any chip: :class:`SpiceMismatch` names the sample, layer and node.

    Each ngspice run may take ``timeout`` seconds; a longer one is stopped and raises
    :class:`SpiceTimeout` naming the sample."""
    x = chip.check_inputs(x)
    chip.settle(x[:1])  # compile and cache before timing
    results = []
    for index, row in enumerate(x):
        start = time.perf_counter()
        eq = chip.settle(row[None, :])
        engine = time.perf_counter() - start
        voltages = [v[0] for v in eq.voltages]
        text = chip.to_spice(row, voltages=voltages)
        start = time.perf_counter()
        try:
            values = run_ngspice(text, timeout=timeout)
        except SpiceTimeout as exc:
            raise SpiceTimeout(f"sample {index}: {exc}") from None
        spice = time.perf_counter() - start
        result = {"engine_s": engine, "ngspice_s": spice}
        active = chip.active_set(voltages)
        try:
            if active is not None:
                result["clamped_nodes"] = active.n_clamped
                result["complementarity_margin_V"] = complementarity(
                    chip, active, values, tolerance
                )
            result["max_abs_diff_V"] = _compare(
                chip, voltages, layer_voltages(chip, values), tolerance
            )
            if eq.wires is not None:
                wired = _compare_wires(chip, eq.wires, values, tolerance)
                result["wire_nodes"] = wired[0]
                result["max_abs_diff_wires_V"] = wired[1]
        except SpiceMismatch as exc:
            raise SpiceMismatch(f"sample {index}: {exc}") from None
        results.append(result)
        if progress is not None:
            progress()
    return results


def _compare(
    chip: Chip, voltages: list[np.ndarray], reference: list[np.ndarray], tolerance: float
) -> float:
    """The largest ``|dV|`` (V) between ``settle``'s voltages and ngspice's; above
    ``tolerance`` it raises :class:`SpiceMismatch` naming the node."""
    diffs = [np.abs(v - r) for v, r in zip(voltages, reference, strict=True)]
    worst = max(float(d.max()) for d in diffs)
    if not worst <= tolerance:
        k = max(range(len(diffs)), key=lambda i: float(diffs[i].max()))
        j = int(np.argmax(diffs[k]))
        raise SpiceMismatch(
            f"{_node(chip, k, j)}: settle gives {voltages[k][j]:.9g} V, ngspice "
            f"{reference[k][j]:.9g} V: |dV| = {worst:.3e} V > tolerance {tolerance:g} V"
        )
    return worst


def _compare_wires(
    chip: Chip,
    wires: list[tuple[np.ndarray, np.ndarray]],
    values: dict[str, float],
    tolerance: float,
) -> tuple[int, float]:
    """The wire nodes compared (every row-wire and column-wire node of a crossbar with
    ``wire_resistance`` > 0) and the largest ``|dV|`` (V) between ``settle``'s (one sample,
    ``wires``) and ngspice's; above ``tolerance`` it raises :class:`SpiceMismatch` naming
    the node."""
    count, worst = 0, 0.0
    for k, layer in enumerate(chip.spec.layers):
        if not layer.wire_resistance > 0:
            continue
        for tag, kind, nodes in (("r", "row", wires[k][0][0]), ("c", "column", wires[k][1][0])):
            n, m = nodes.shape
            try:
                spice = np.array(
                    [values[f"{tag}{k + 1}_{i}_{j}"] for i in range(n) for j in range(m)]
                ).reshape(n, m)
            except KeyError as exc:
                raise SpiceError(f"ngspice output lacks node {exc.args[0]}") from None
            diff = np.abs(spice - nodes)
            count += diff.size
            worst = max(worst, float(diff.max()))
            if not diff.max() <= tolerance:
                i, j = np.unravel_index(int(np.argmax(diff)), diff.shape)
                raise SpiceMismatch(
                    f"layer {k + 1} ({layer.name}) {kind}-wire node {tag}{k + 1}_{i}_{j}: "
                    f"settle gives {nodes[i, j]:.9g} V, ngspice {spice[i, j]:.9g} V: |dV| = "
                    f"{diff[i, j]:.3e} V > tolerance {tolerance:g} V"
                )
    return count, worst
