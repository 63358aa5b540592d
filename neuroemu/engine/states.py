"""Node voltages: where a settle starts from and what it returns.

Both families of chips report their state alike: a resistive chip's operating point
(:func:`neuroemu.engine.settle.settle`) and a leaky chip's state after its time steps
(:func:`neuroemu.engine.leaky.run`) are an :class:`Equilibrium`, with a :class:`Trace` of
every sweep (step) on request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError, brief
from ..units import format_quantity, parse_quantity


@dataclass
class Trace:
    """How a settle went, sweep by sweep (recorded when ``settle(..., trace=True)``).

    ``voltages[k]`` is (sweeps + 1, batch, nodes) in V: the starting voltages, then those
    after each sweep. ``residual`` is (sweeps, batch): the largest relative KCL residual
    ``|r_j| / (G_j V_scale)`` at the start of each sweep (the largest node correction it
    made, over ``V_scale``). ``power`` is (sweeps + 1, batch) in W: the static power of
    each recorded state. ``energy`` is (sweeps + 1, batch) in W: the energy (co-content)
    ``E(V) = 1/2 sum g (V_i - V_j)^2`` of the chip's resistive part, the function the
    sweeps descend (for ideal diodes exactly; with Shockley diodes their co-content adds).
    """

    voltages: list[np.ndarray]
    residual: np.ndarray
    power: np.ndarray
    energy: np.ndarray
    energy_unit: str = "W"  # co-content; a leaky chip records the read energy so far (J)

    def __repr__(self) -> str:
        sweeps, batch = self.residual.shape if self.residual.ndim == 2 else (0, 0)
        nodes = [int(v.shape[-1]) for v in self.voltages]
        return f"Trace({sweeps} sweeps, batch {batch}, nodes {nodes})"


@dataclass
class Equilibrium:
    """The operating point of a batch, with the figures that make it physical.

    Attributes
    ----------
    voltages
        One array per free layer (hidden layers, then output), each (batch, nodes), in V.
    scores
        Class scores (V): output voltages, or differences of output pairs.
    prediction
        Predicted class per sample (argmax of ``scores``).
    sweeps
        Sweeps the batch ran; ``sweeps_per_sample`` the sweep at which each sample met
        the tolerance.
    residual
        Largest KCL residual current (A) per sample at the returned voltages;
        ``relative_residual`` the largest ``|r_j| / (G_j V_scale)``. (A leaky chip: the
        largest ``|dv/dt|``, in ``residual_unit`` V/s, and the last step's change over
        ``v_r``.)
    power
        Static power (W) per sample: dissipated in every conductance and diode of the chip
        (the nudging element excluded).
    energy
        Energy per inference (J): ``power * settle_time``.
    settle_time
        RC estimate of the settling time (s): ``5 C_node / min_j G_j``.
    converged
        Whether every sample met ``tol`` within ``max_sweeps``.
    """

    voltages: list[np.ndarray]
    scores: np.ndarray
    prediction: np.ndarray
    sweeps: int
    sweeps_per_sample: np.ndarray
    residual: np.ndarray
    relative_residual: np.ndarray
    power: np.ndarray
    energy: np.ndarray
    settle_time: float
    converged: bool
    tol: float
    trace: Trace | None = None
    rates: list[np.ndarray] | None = None  # leaky chips: each layer's rates
    residual_unit: str = "A"  # leaky chips: V/s, the largest |dv/dt|
    # Chips with wire resistance: per crossbar, its row-wire and column-wire node voltages
    # (V), each (batch, rows, columns) (:mod:`neuroemu.engine.wires`); None for ideal wires.
    wires: list[tuple[np.ndarray, np.ndarray]] | None = None

    @property
    def output(self) -> np.ndarray:
        """Output node voltages (V), (batch, output nodes)."""
        return self.voltages[-1]

    def __repr__(self) -> str:
        """One line: the batch, the layers' nodes, the sweeps, whether it converged, and the
        largest residual and mean power of the batch."""
        batch = int(self.output.shape[0]) if self.voltages else 0
        nodes = [int(v.shape[-1]) for v in self.voltages]
        residual = _largest(self.residual)
        relative = _largest(self.relative_residual)
        power = float(np.mean(self.power)) if np.size(self.power) else 0.0
        unit = self.residual_unit
        shown = f"{residual:.3g} {unit}" if "/" in unit else format_quantity(residual, unit)
        traced = ", traced" if self.trace is not None else ""
        return (
            f"Equilibrium(batch {batch}, nodes {nodes}, {self.sweeps} sweeps, "
            f"converged={self.converged}, largest residual {shown} (relative {relative:.3g}, "
            f"tol {self.tol:g}), mean power {format_quantity(power, 'W')}{traced})"
        )


def _largest(values: Any) -> float:
    """The largest of ``values`` (0 for none)."""
    return float(np.max(values)) if np.size(values) else 0.0


def as_number(value: Any, name: str, unit: str = "") -> float:
    """``value`` as a real number (in SI ``unit``), or an
    :class:`~neuroemu.errors.InputError` naming ``name`` (a bool, a string such as
    ``'300 uS'``, an array or anything else is not a number here)."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf":
            return float(value)
        hint = f" in {unit} (SI)" if unit else ""
        written = ""
        if isinstance(value, str) and unit:
            try:
                written = f"; write {parse_quantity(value, unit)!r} for {value}"
            except ValueError:
                pass
        raise InputError(f"{name}: expected a number{hint}, got {brief(value)}{written}")
    return float(value)


def as_array(value: Any, name: str, unit: str = "") -> np.ndarray:
    """``value`` as a float64 array of real numbers (in SI ``unit``), or an
    :class:`~neuroemu.errors.InputError` naming ``name``: a ragged list, text, complex
    numbers or objects are not."""
    try:
        raw = np.asarray(value)
    except ValueError:  # a ragged list
        raise InputError(
            f"{name}: expected an array of numbers, got rows of different lengths"
        ) from None
    if raw.dtype.kind not in "biuf":
        what = f" ({unit})" if unit else ""
        raise InputError(f"{name}: expected real numbers{what}, got {raw.dtype} values")
    return np.array(raw, dtype=np.float64)


def initial_voltages(init: Any, sizes: list[int], batch: int, dtype: np.dtype) -> list:
    """Where a phase starts: zeros, or copies of ``init`` (an :class:`Equilibrium` or one
    array per free layer, each (batch, nodes), V) checked and cast to ``dtype``."""
    if init is None:
        return [np.zeros((batch, n), dtype=dtype) for n in sizes]
    if isinstance(init, Equilibrium):
        arrays = init.voltages
    elif isinstance(init, list | tuple):
        arrays = list(init)
    else:
        raise InputError(
            f"init: expected an Equilibrium or a list of voltages per layer, got {brief(init)}"
        )
    if len(arrays) != len(sizes):
        raise InputError(f"init: expected {len(sizes)} layers of voltages, got {len(arrays)}")
    out = []
    for k, (a, n) in enumerate(zip(arrays, sizes, strict=True)):
        a = as_array(a, f"init[{k}]", "V")
        if a.shape != (batch, n):
            raise InputError(f"init[{k}]: expected shape ({batch}, {n}), got {a.shape}")
        if not np.all(np.isfinite(a)):
            raise InputError(f"init[{k}]: contains NaN or infinite values")
        out.append(np.array(a, dtype=dtype, order="C"))  # a copy: init is never modified
    return out


def check_target(beta: float, target: Any, batch: int, outputs: int) -> np.ndarray | None:
    """Check the nudging arguments (``outputs`` output nodes); return the target voltages
    (V), or ``None`` for the free phase."""
    beta = as_number(beta, "beta", "S")
    if not np.isfinite(beta):
        raise InputError(f"beta: must be finite (got {beta})")
    if beta == 0.0:
        return None
    if target is None:
        raise InputError("target: required when beta is not 0")
    target = as_array(target, "target", "V")
    shape = (batch, outputs)
    if target.shape != shape:
        raise InputError(
            f"target: expected shape {shape} (output node voltages), got {target.shape}"
        )
    if not np.all(np.isfinite(target)):
        raise InputError("target: contains NaN or infinite values")
    return target
