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

from ..errors import SpiceError

if TYPE_CHECKING:
    from ..chip.resistive import Chip


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


def spice_voltages(chip: Chip, x_row: Any, **options: Any) -> list[np.ndarray]:
    """Free-layer voltages of the operating point ngspice finds, laid out as ``settle``'s."""
    voltages = run_ngspice(chip.to_spice(x_row), **options)
    try:
        return [
            np.array([voltages[f"n{k + 1}_{j}"] for j in range(n)])
            for k, n in enumerate(chip.layer_sizes)
        ]
    except KeyError as exc:
        raise SpiceError(f"ngspice output lacks node {exc.args[0]}") from None


def check_spice(
    chip: Chip,
    x: Any,
    *,
    progress: Callable[[], None] | None = None,
    timeout: float = 600.0,
) -> list[dict[str, float]]:
    """Settle each row of ``x`` with the engine and with ngspice ``.op``; per sample the
    largest voltage difference (V) over all free nodes and each one's wall time (s).

    Each ngspice run may take ``timeout`` seconds; a longer one is stopped and raises
    :class:`SpiceTimeout` naming the sample."""
    x = chip.check_inputs(x)
    chip.settle(x[:1])  # compile and cache before timing
    results = []
    for index, row in enumerate(x):
        start = time.perf_counter()
        eq = chip.settle(row[None, :])
        engine = time.perf_counter() - start
        start = time.perf_counter()
        try:
            reference = spice_voltages(chip, row, timeout=timeout)
        except SpiceTimeout as exc:
            raise SpiceTimeout(f"sample {index}: {exc}") from None
        spice = time.perf_counter() - start
        diff = max(
            float(np.max(np.abs(v[0] - r))) for v, r in zip(eq.voltages, reference, strict=True)
        )
        results.append({"max_abs_diff_V": diff, "engine_s": engine, "ngspice_s": spice})
        if progress is not None:
            progress()
    return results
