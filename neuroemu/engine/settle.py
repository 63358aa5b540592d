"""Settle a chip to its DC operating point.

The free layers of a layered resistive network form a bipartite graph: given the even
layers the odd ones are independent, and the other way round. Solving all odd layers, then
all even layers, each node exactly (:mod:`neuroemu.kernels.nodes`), is block coordinate
descent on the strictly convex co-content of the circuit (Scellier 2024), so it converges to
the unique operating point. One sweep costs two matrix products per crossbar (the input
crossbar's product is constant and computed once).

Convergence is judged physically: a sweep changes node ``j`` by ``|r_j| / G_j``, its KCL
residual current over its conductance. The solve stops when, for every sample, no node moved
by more than ``tol * V_scale`` in the last sweep (``V_scale``, the largest source voltage),
that is when every relative KCL residual ``|r_j| / (G_j V_scale)`` is below ``tol``. The
residual currents of the returned voltages are then computed exactly and reported.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError
from ..kernels import KIND_SHOCKLEY, kcl_residual, solve_nodes
from ..models.diode import diode_current

if TYPE_CHECKING:
    from ..build.chip import BaseChip, Chip
    from .circuit import Circuit


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

    @property
    def output(self) -> np.ndarray:
        """Output node voltages (V), (batch, output nodes)."""
        return self.voltages[-1]


def _initial_voltages(init: Any, sizes: list[int], batch: int, dtype: np.dtype) -> list:
    if init is None:
        return [np.zeros((batch, n), dtype=dtype) for n in sizes]
    arrays = init.voltages if isinstance(init, Equilibrium) else list(init)
    if len(arrays) != len(sizes):
        raise InputError(f"init: expected {len(sizes)} layers of voltages, got {len(arrays)}")
    out = []
    for k, (a, n) in enumerate(zip(arrays, sizes, strict=True)):
        a = np.asarray(a)
        if a.shape != (batch, n):
            raise InputError(f"init[{k}]: expected shape ({batch}, {n}), got {a.shape}")
        if not np.all(np.isfinite(a)):
            raise InputError(f"init[{k}]: contains NaN or infinite values")
        out.append(np.array(a, dtype=dtype, order="C"))  # a copy: init is never modified
    return out


def _nudge(chip: BaseChip, beta: float, target: Any, batch: int) -> np.ndarray | None:
    """Check the nudging arguments; return the target voltages (V) or None."""
    if not np.isfinite(beta):
        raise InputError(f"beta: must be finite (got {beta})")
    if beta == 0.0:
        return None
    if target is None:
        raise InputError("target: required when beta is not 0")
    target = np.asarray(target, dtype=np.float64)
    shape = (batch, chip.layer_sizes[-1])
    if target.shape != shape:
        raise InputError(
            f"target: expected shape {shape} (output node voltages), got {target.shape}"
        )
    if not np.all(np.isfinite(target)):
        raise InputError("target: contains NaN or infinite values")
    return target


def _injection(chip: Chip, current: Any, batch: int) -> np.ndarray | None:
    """Check an injected output current (A) of shape (batch, output nodes)."""
    if current is None:
        return None
    current = np.asarray(current, dtype=np.float64)
    shape = (batch, chip.layer_sizes[-1])
    if current.shape != shape:
        raise InputError(f"current: expected shape {shape} (output nodes), got {current.shape}")
    if not np.all(np.isfinite(current)):
        raise InputError("current: contains NaN or infinite values")
    return current


def _input_currents(c: Circuit, k: int, v: list[np.ndarray], const: np.ndarray, out: np.ndarray):
    """``I_in`` of layer ``k``: constant part plus currents from the neighbouring layers
    (products written straight into ``out``, no temporaries for one-sided layers)."""
    below, above = k > 0, k + 1 < len(v)
    if below:
        np.matmul(v[k - 1], c.weights[k], out=out)
        if above:
            out += v[k + 1] @ c.weights[k + 1].T
    elif above:
        np.matmul(v[k + 1], c.weights[k + 1].T, out=out)
    else:
        out[...] = 0.0
    out += const
    return out


def settle(
    chip: Chip,
    x: Any,
    beta: float = 0.0,
    target: Any = None,
    *,
    current: Any = None,
    init: Any = None,
    tol: float | None = None,
    max_sweeps: int | None = None,
    dtype: Any = np.float64,
    parallel: bool | None = None,
    trace: bool = False,
) -> Equilibrium:
    """Settle ``chip`` for inputs ``x`` (batch, n_inputs), values in [0, 1].

    Parameters
    ----------
    beta
        Nudging conductance (S) from each output node to a source at ``target``; 0 for the
        free phase. Negative values inject the opposite current (the circuit stays solvable
        while every node conductance stays positive).
    target
        Target voltages (V) of the output nodes, (batch, output nodes); needed when
        ``beta != 0``.
    current
        Current (A) injected into each output node, (batch, output nodes): the other way to
        nudge, used for losses whose gradient is not a pull toward a voltage.
    init
        Starting voltages (an :class:`Equilibrium` or a list of arrays) for a warm start.
    tol, max_sweeps
        Stopping rule (see the module docstring); default from the chip's ``solver``.
        In float32 ``tol`` is raised to at least ``16 eps`` of float32.
    dtype
        ``numpy.float64`` or ``numpy.float32`` for the arrays and matrix products.
    parallel
        Spread the per-node solves over threads (bitwise identical to the serial path).
        ``None`` (default) chooses by the work: with Shockley diodes the Newton solves
        dominate, so they run on every core while BLAS is held to one thread; with ideal
        diodes the matrix products dominate, so BLAS keeps its threads and the cheap clips
        run serially (two thread pools busy-waiting on two cores slow each other down).
    trace
        Record every sweep (:class:`Trace`): meant for a few samples, it costs a copy of the
        voltages per sweep and a power evaluation per recorded state.
    """
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise InputError(f"dtype: must be float32 or float64 (got {dtype})")
    threaded = any(p.kind == KIND_SHOCKLEY for p in chip.circuit(dtype).params)
    threaded = threaded if parallel is None else bool(parallel)
    if not threaded:
        return _settle(chip, x, beta, target, current, init, tol, max_sweeps, dtype, False, trace)
    with _blas_controller().limit(limits=1, user_api="blas"):
        return _settle(chip, x, beta, target, current, init, tol, max_sweeps, dtype, True, trace)


@functools.cache
def _blas_controller() -> Any:
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _settle(
    chip: Chip,
    x: Any,
    beta: float,
    target: Any,
    current: Any,
    init: Any,
    tol: float | None,
    max_sweeps: int | None,
    dtype: Any,
    parallel: bool,
    trace: bool = False,
) -> Equilibrium:
    x = chip.check_inputs(x)
    batch = x.shape[0]
    tol = chip.spec.solver.tol if tol is None else float(tol)
    if not 0 < tol < 1:
        raise InputError(f"tol: must lie in (0, 1) (got {tol})")
    tol = max(tol, 16 * float(np.finfo(dtype).eps))
    max_sweeps = chip.spec.solver.max_sweeps if max_sweeps is None else int(max_sweeps)
    if max_sweeps < 1:
        raise InputError(f"max_sweeps: must be >= 1 (got {max_sweeps})")
    target = _nudge(chip, float(beta), target, batch)
    injected = _injection(chip, current, batch)

    c = chip.circuit(dtype)
    n_layers = len(c.weights)
    sizes = chip.layer_sizes
    # Constant parts of I_in and node conductances of this call (nudging included).
    x = chip.dac(x)
    source_current = x.astype(dtype, copy=False) @ c.input_transfer
    const = [np.broadcast_to(i, (batch, i.shape[0])) for i in c.bias_current]
    const[0] = source_current + c.bias_current[0]
    node_g = list(c.node_conductance)
    if target is not None:
        node_g[-1] = (c.node_conductance[-1] + beta).astype(dtype)
        const[-1] = const[-1] + (beta * target).astype(dtype)
        if node_g[-1].min() <= 0:
            raise InputError(
                f"beta: {beta:g} S makes an output node's total conductance non-positive "
                f"(smallest {c.node_conductance[-1].min():g} S): no operating point"
            )
    if injected is not None:
        const[-1] = const[-1] + injected.astype(dtype)
    v = _initial_voltages(init, sizes, batch, dtype)
    i_in = [np.empty((batch, n), dtype=dtype) for n in sizes]
    order = list(range(0, n_layers, 2)) + list(range(1, n_layers, 2))

    change = np.empty(batch)
    row_change = np.empty(batch)
    sweeps_per_sample = np.zeros(batch, dtype=np.int64)
    done = np.zeros(batch, dtype=bool)
    threshold = tol * c.v_scale
    sweeps = 0
    states = [[a.copy() for a in v]] if trace else []
    changes = []
    while sweeps < max_sweeps:
        sweeps += 1
        row_change[:] = 0.0
        for k in order:
            _input_currents(c, k, v, const[k], i_in[k])
            solve_nodes(i_in[k], node_g[k], c.params[k], v[k], change, parallel=parallel)
            np.maximum(row_change, change, out=row_change)
        if trace:
            states.append([a.copy() for a in v])
            changes.append(row_change / c.v_scale)
        newly = ~done & (row_change <= threshold)
        sweeps_per_sample[newly] = sweeps
        done |= newly
        if done.all():
            break
    sweeps_per_sample[~done] = sweeps

    # Exact KCL residuals of the returned voltages (this leaves I_in of every layer in i_in).
    residual = np.zeros(batch)
    relative = np.zeros(batch)
    r = np.empty((batch, max(sizes)))
    for k in range(n_layers):
        rk = r[:, : sizes[k]]
        _input_currents(c, k, v, const[k], i_in[k])
        kcl_residual(i_in[k], node_g[k], c.params[k], v[k], rk, parallel=parallel)
        np.abs(rk, out=rk)
        np.maximum(residual, rk.max(axis=1), out=residual)
        rk /= node_g[k] * c.v_scale
        np.maximum(relative, rk.max(axis=1), out=relative)

    nudge = None if target is None else beta * target
    if injected is not None:
        nudge = injected if nudge is None else nudge + injected
    power = static_power(c, x, v, i_in, const, nudge)
    recorded = None
    if trace:
        buffers = [np.empty_like(a) for a in v]
        powers, energies = [], []
        for state in states:
            for k in range(n_layers):
                _input_currents(c, k, state, const[k], buffers[k])
            powers.append(static_power(c, x, state, buffers, const, nudge))
            resistive = static_power(c, x, state, buffers, const, nudge, diodes=False)
            energies.append(0.5 * resistive)
        recorded = Trace(
            voltages=[np.stack([state[k] for state in states]) for k in range(n_layers)],
            residual=np.array(changes),
            power=np.array(powers),
            energy=np.array(energies),
        )
    scores = chip.scores(v[-1])
    return Equilibrium(
        voltages=v,
        scores=scores,
        prediction=np.argmax(scores, axis=1),
        sweeps=sweeps,
        sweeps_per_sample=sweeps_per_sample,
        residual=residual,
        relative_residual=relative,
        power=power,
        energy=power * c.settle_time,
        settle_time=c.settle_time,
        converged=bool(done.all()),
        tol=tol,
        trace=recorded,
    )


def static_power(
    c: Circuit,
    x: np.ndarray,
    v: list[np.ndarray],
    i_in: list[np.ndarray],
    const: list[np.ndarray],
    nudge: np.ndarray | None,
    diodes: bool = True,
) -> np.ndarray:
    """Power (W) per sample dissipated in every crossbar device, bias conductance and
    (``diodes``) diode.

    Expanding ``sum over edges g (V_i - V_j)^2`` node by node gives, with ``G_k`` the
    conductance at each node of layer ``k``, ``I_in`` the currents its neighbours bring and
    ``I_0`` the part of them from sources (inputs and biases):

        P = sum_sources g V_s^2 + sum_k [ V_k^2 . G_k - V_k . (I_in,k + I_0,k) ]

    an identity of algebra (not of KCL) that reuses the currents the solve computed. The
    nudging element is not part of the chip: its current is taken out of ``I_in`` and
    ``I_0`` of the output layer.
    """
    f64 = np.float64
    power = np.einsum("bi,bi,i->b", x, x, c.input_power.astype(x.dtype), dtype=f64)
    power += c.bias_power
    for k in range(len(v)):
        vk = v[k]
        power += np.einsum("bj,bj,j->b", vk, vk, c.node_conductance[k], dtype=f64)
        power -= np.einsum("bj,bj->b", vk, i_in[k], dtype=f64)
        if k == 0:  # input and bias currents, per sample
            power -= np.einsum("bj,bj->b", vk, const[0], dtype=f64)
        else:  # bias currents only, the same for every sample
            power -= vk @ c.bias_current[k]
        if nudge is not None and k == len(v) - 1:
            power += 2.0 * np.einsum("bj,bj->b", vk, nudge)
        p = c.params[k]
        if diodes and p.kind == KIND_SHOCKLEY:
            for bound, sign in ((p.lo, 1.0), (p.hi, -1.0)):
                present = np.isfinite(bound)
                if present.any():
                    drop = sign * (bound[present] - vk[:, present].astype(f64))  # forward
                    current = diode_current(drop, p.i_s, p.n_vt, p.gmin)
                    power += (current * drop).sum(axis=1)
    return np.maximum(power, 0.0)
