"""Settle a resistive circuit to its DC operating point.

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

Samples are independent circuits, so a large batch is cut into chunks that threads settle
side by side; the chunks stop together, as the batch in one piece would.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numba
import numpy as np

from ..errors import InputError, brief
from ..kernels import KIND_IDEAL, KIND_LINEAR, NodeParams, solve_nodes
from ..kernels.nodes import report_nodes, weighted_squares
from ..kernels.sweeps import Sweeper, layout, node_layout
from .circuit import Circuit
from .states import Equilibrium, Trace, as_array, as_number, check_target, initial_voltages
from .threads import each, one_blas_thread


def injection(current: Any, batch: int, outputs: int) -> np.ndarray | None:
    """Check an injected output current (A) of shape (batch, output nodes)."""
    if current is None:
        return None
    current = as_array(current, "current", "A")
    shape = (batch, outputs)
    if current.shape != shape:
        raise InputError(f"current: expected shape {shape} (output nodes), got {current.shape}")
    if not np.all(np.isfinite(current)):
        raise InputError("current: contains NaN or infinite values")
    return current


def _neighbour_currents(c: Circuit, k: int, v: list[np.ndarray], out: np.ndarray) -> np.ndarray:
    """The currents layer ``k``'s crossbars bring from the neighbouring layers at ``V = 0``:
    ``v[k-1] @ W_k + v[k+1] @ W_{k+1}^T`` (A), written straight into ``out``."""
    below, above = k > 0, k + 1 < len(v)
    if below:
        np.matmul(v[k - 1], c.weights[k], out=out)
        if above:
            out += v[k + 1] @ c.weights[k + 1].T
    elif above:
        np.matmul(v[k + 1], c.weights[k + 1].T, out=out)
    else:
        out[...] = 0.0
    return out


def checked_tol(tol: Any, dtype: np.dtype) -> float:
    """The stopping tolerance, in (0, 1), raised to at least ``16 eps`` of ``dtype``."""
    tol = as_number(tol, "tol")
    if not 0 < tol < 1:
        raise InputError(f"tol: must lie in (0, 1) (got {tol})")
    return max(tol, 16 * float(np.finfo(dtype).eps))


def checked_sweeps(max_sweeps: Any) -> int:
    """The most sweeps a settle may take, a whole number >= 1."""
    if isinstance(max_sweeps, bool) or not isinstance(max_sweeps, int | np.integer):
        raise InputError(f"max_sweeps: must be a whole number >= 1 (got {brief(max_sweeps)})")
    if max_sweeps < 1:
        raise InputError(f"max_sweeps: must be >= 1 (got {max_sweeps})")
    return int(max_sweeps)


def settle(
    c: Circuit,
    drive: np.ndarray,
    readout: Callable[[np.ndarray], np.ndarray],
    beta: float = 0.0,
    target: Any = None,
    *,
    current: Any = None,
    init: Any = None,
    grounded: Any = None,
    tol: float,
    max_sweeps: int,
    parallel: bool | None = None,
    trace: bool = False,
) -> Equilibrium:
    """Settle the circuit ``c`` with its input sources driven by ``drive`` (batch, inputs),
    in units of the input gain (the chip's inputs after its DAC and offset), in ``c``'s
    dtype; ``readout`` turns output voltages (V) into class scores.

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
    grounded
        Nodes held at 0 V by a switch to ground: one boolean array per free layer, (nodes,)
        for every sample of the batch or (batch, nodes) sample by sample, or ``None`` for a
        layer without closed switches (dropout in training, :mod:`neuroemu.learning.train`).
        Their conductances still load their neighbours. Needs linear or ideal-diode nodes
        in those layers.
    tol, max_sweeps
        Stopping rule (see the module docstring). In float32 ``tol`` is raised to at least
        ``16 eps`` of float32.
    parallel
        Settle the chunks of a batch of more than ``CHUNK_ROWS`` samples side by side, on up
        to ``numba.get_num_threads()`` threads (``None``, the default, or ``True``), or one
        after the other (``False``): bitwise the same result either way, since the batch is
        cut into the same chunks and every product of a chunk runs on one BLAS thread.
        Threads synchronise twice per call, not once per BLAS call or sweep, so a machine
        busy with other work slows a settle down about as much as it slows a serial one. A
        batch of one chunk runs on the calling thread. Every product runs on one BLAS
        thread, so the result does not depend on the machine's threads either.
    trace
        Record every sweep (:class:`Trace`): meant for a few samples, it costs a copy of the
        voltages per sweep and a power evaluation per recorded state.
    """
    dtype = c.dtype
    tol = checked_tol(tol, dtype)
    max_sweeps = checked_sweeps(max_sweeps)
    threads = numba.get_num_threads() if parallel is None or parallel else 1
    batch = drive.shape[0]
    sizes = [len(g) for g in c.node_conductance]
    beta = as_number(beta, "beta", "S")
    target = check_target(beta, target, batch, sizes[-1])
    injected = injection(current, batch, sizes[-1])
    params = grounded_params(c.params, grounded, sizes, batch)
    node_g = list(c.node_conductance)
    nudge = None  # A, (batch, output nodes): the nudging current at V = 0, outside the chip
    if target is not None:
        node_g[-1] = nudged_conductance(c.node_conductance[-1], beta).astype(dtype)
        nudge = beta * target
    if injected is not None:
        nudge = injected if nudge is None else nudge + injected
    v = initial_voltages(init, sizes, batch, dtype)

    # Samples are independent circuits: the batch is cut into chunks, the same whatever the
    # threads, and the chunks settle on threads of their own. A chunk sweeps until its
    # samples meet the tolerance, then, as one batch would, until the slowest chunk is done.
    n_chunks = max(1, -(-batch // CHUNK_ROWS))
    edges = [i * batch // n_chunks for i in range(n_chunks + 1)]
    shared = None  # the compiled loop's arrays, when the chunks share their bounds
    if not trace and all(p.lo.ndim == 1 for p in params):
        shared = _layout(c, params, node_g, beta)
    chunks = [
        _Chunk(c, params, drive, v, nudge, node_g, slice(a, b), tol, trace, shared)
        for a, b in itertools.pairwise(edges)
    ]
    # Every product on one BLAS thread: a threaded BLAS product sums in another order, so
    # its bits would depend on the machine's threads; chunks run on threads of their own,
    # the same calls on threads or not, so the same bits.
    if len(chunks) == 1:
        chunk = chunks[0]
        with one_blas_thread():
            chunk.inputs(reuse=True)
            chunk.run(max_sweeps)
            chunk.finish(chunk.sweeps)
    else:

        def start(chunk: _Chunk) -> None:
            chunk.inputs()
            chunk.run(max_sweeps)

        with one_blas_thread():
            each(chunks, start, threads)
            sweeps = max(chunk.sweeps for chunk in chunks)
            each(chunks, lambda chunk: chunk.finish(sweeps), threads)
    sweeps = max(chunk.sweeps for chunk in chunks)
    figures = np.concatenate([chunk.figures for chunk in chunks], axis=1)
    power = np.concatenate([chunk.power for chunk in chunks])
    done = np.concatenate([chunk.done for chunk in chunks])
    recorded = None
    if trace:
        recorded = Trace(
            voltages=[
                np.concatenate([chunk.trace.voltages[k] for chunk in chunks], axis=1)
                for k in range(len(v))
            ],
            **{
                key: np.concatenate([getattr(chunk.trace, key) for chunk in chunks], axis=1)
                for key in ("residual", "power", "energy")
            },
        )
    return operating_point(
        c,
        v,
        readout,
        sweeps=sweeps,
        per_sample=np.concatenate([chunk.sweeps_per_sample for chunk in chunks]),
        figures=figures,
        power=power,
        done=done,
        tol=tol,
        trace=recorded,
    )


def nudged_conductance(g_out: np.ndarray, beta: float) -> np.ndarray:
    """The output nodes' total conductance (S) with the nudging conductance ``beta``; an
    :class:`~neuroemu.errors.InputError` if it leaves one non-positive."""
    nudged = g_out + beta
    if nudged.min() <= 0:
        raise InputError(
            f"beta: {beta:g} S makes an output node's total conductance non-positive "
            f"(smallest {g_out.min():g} S): no operating point; "
            "training.nudge: current nudges by a current, physical at any beta"
        )
    return nudged


def operating_point(
    c: Circuit,
    v: list[np.ndarray],
    readout: Callable[[np.ndarray], np.ndarray],
    *,
    sweeps: int,
    per_sample: np.ndarray,
    figures: np.ndarray,
    power: np.ndarray,
    done: np.ndarray,
    tol: float,
    trace: Trace | None,
    wires: list[tuple[np.ndarray, np.ndarray]] | None = None,
) -> Equilibrium:
    """The :class:`Equilibrium` of settled voltages ``v``: ``figures`` holds the largest
    residual (A) and relative residual per sample in its first two rows."""
    scores = readout(v[-1])
    return Equilibrium(
        voltages=v,
        scores=scores,
        prediction=np.argmax(scores, axis=1),
        sweeps=sweeps,
        sweeps_per_sample=per_sample,
        residual=figures[0],
        relative_residual=figures[1],
        power=power,
        energy=power * c.settle_time,
        settle_time=c.settle_time,
        converged=bool(done.all()),
        tol=tol,
        trace=trace,
        wires=wires,
    )


#: Rows of a batch settled together; larger batches are cut into near-equal chunks of at
#: most this many rows, which threads settle side by side.
CHUNK_ROWS = 128


class _Chunk:
    """The sweeps of a block of rows of a batch: its voltages (views into the batch's
    arrays), currents and stopping state."""

    def __init__(
        self,
        c: Circuit,
        params: list[NodeParams],
        x: np.ndarray,
        v: list[np.ndarray],
        nudge: np.ndarray | None,
        node_g: list[np.ndarray],
        rows: slice,
        tol: float,
        trace: bool,
        shared: tuple | None = None,
    ):
        self.c, self.x, self.node_g = c, x[rows], node_g
        self.shared = shared
        # Bounds that differ sample by sample (grounded nodes) are cut like the batch.
        self.params = [
            p if p.lo.ndim == 1 else p._replace(lo=p.lo[rows], hi=p.hi[rows]) for p in params
        ]
        self.v = [a[rows] for a in v]
        self.nudge = None if nudge is None else nudge[rows]
        n = len(self.x)
        self.i_in = [np.empty_like(a) for a in self.v]
        self.change = np.empty(n)
        self.row_change = np.empty(n)
        self.sweeps_per_sample = np.zeros(n, dtype=np.int64)
        self.done = np.zeros(n, dtype=bool)
        self.threshold = tol * c.v_scale
        self.sweeps = 0
        self.recording = trace
        self.states = [[a.copy() for a in self.v]] if trace else []
        self.changes: list[np.ndarray] = []

    def inputs(self, reuse: bool = False) -> None:
        """What each layer's sources bring (A): inputs and biases, the input product the
        one large product (with ``reuse``, that of the circuit's last small batch when its
        inputs are the same: :func:`_input_current`); one row stands for the whole chunk
        where the current is the same for every sample. And what the solves add to the
        neighbours' currents: the same, with the nudging current."""
        c = self.c
        self.sources = [bias[None, :] for bias in c.bias_current]
        self.sources[0] = _input_current(c, self.x.astype(c.dtype, copy=False), reuse)
        self.const = list(self.sources)
        if self.nudge is not None:
            self.const[-1] = self.sources[-1] + self.nudge.astype(c.dtype)
        self.sweeper = None  # a recorded settle keeps every sweep's voltages: one at a time
        if not self.recording:
            const = [_const_rows(a, v) for a, v in zip(self.const, self.v, strict=True)]
            shared = self.shared or layout(
                c.weights, self.node_g, node_layout(self.params), c.node_conductance64, c.v_scale
            )
            self.sweeper = Sweeper(shared, self.i_in, self.v, const)

    def run(self, max_sweeps: int) -> None:
        """Sweep until every row has met the tolerance, or ``max_sweeps``: in one compiled
        call (:mod:`neuroemu.kernels.sweeps`, the same bits), or sweep by sweep when
        recording."""
        if self.sweeper is not None:
            self.sweeps = self.sweeper.run(
                self.change, self.row_change, self.done, self.sweeps_per_sample,
                self.threshold, self.sweeps, max_sweeps,
            )  # fmt: skip
            return
        while self.sweeps < max_sweeps:
            self.sweep()
            newly = ~self.done & (self.row_change <= self.threshold)
            self.sweeps_per_sample[newly] = self.sweeps
            self.done |= newly
            if self.done.all():
                break
        self.sweeps_per_sample[~self.done] = self.sweeps

    def sweep(self) -> None:
        """Solve the layers solved first (even), then the others, each node exactly."""
        c, v = self.c, self.v
        self.row_change.fill(0.0)
        for k in _order(len(v)):
            _neighbour_currents(c, k, v, self.i_in[k])
            solve_nodes(
                self.i_in[k],
                self.node_g[k],
                self.params[k],
                v[k],
                self.change,
                const=self.const[k],
                parallel=False,
            )
            np.maximum(self.row_change, self.change, out=self.row_change)
        self.sweeps += 1
        if self.recording:
            self.states.append([a.copy() for a in v])
            self.changes.append(self.row_change / c.v_scale)

    def finish(self, sweeps: int) -> None:
        """Sweep on to ``sweeps`` (where the slowest chunk stopped), then report the exact
        residuals and power of the voltages reached."""
        while self.sweeps < sweeps:
            self.sweep()
        c, v = self.c, self.v
        # A layer solved second in the last sweep still holds its exact I_in (its
        # neighbours have not moved since); one solved first needs its neighbours' again.
        self.figures = np.zeros((3, len(self.x)))  # largest |r| (A), relative |r|, power
        sources = [_chip_sources(self.sources, self.nudge, k) for k in range(len(v))]
        if self.sweeper is not None and len({a.dtype for a in sources}) == 1:
            self.sweeper.report(sources, self.figures)  # the same, in one compiled call
        else:
            for k in range(len(v)):
                if k % 2 == 0 and len(v) > 1:
                    _neighbour_currents(c, k, v, self.i_in[k])
                    self.i_in[k] += self.const[k]
                report_nodes(
                    self.i_in[k],
                    self.node_g[k],
                    self.params[k],
                    v[k],
                    self.figures,
                    scale=c.v_scale,
                    conductance=c.node_conductance64[k],
                    source=sources[k],
                    parallel=False,
                )
        self.power = _add_source_power(c, self.x, self.figures[2])
        if self.recording:
            self.trace = _trace(c, self.x, self.states, self.changes)


def grounded_params(
    params: list[NodeParams], grounded: Any, sizes: list[int], batch: int
) -> list[NodeParams]:
    """The layers' node parameters with the ``grounded`` nodes held at 0 V: an ideal clamp
    from both sides, ``lo = hi = 0`` (a linear node becomes an ideal one with infinite
    bounds elsewhere, the same node); bounds of shape (batch, nodes) for masks that differ
    sample by sample."""
    if grounded is None:
        return params
    if not isinstance(grounded, list | tuple):
        raise InputError(
            f"grounded: expected one boolean array (or None) per layer, got {brief(grounded)}"
        )
    if len(grounded) != len(sizes):
        raise InputError(f"grounded: expected {len(sizes)} layers, got {len(grounded)}")
    out = []
    for k, (p, mask, n) in enumerate(zip(params, grounded, sizes, strict=True)):
        if mask is None:
            out.append(p)
            continue
        mask = np.asarray(mask)
        if mask.shape not in ((n,), (batch, n)) or mask.dtype != np.bool_:
            raise InputError(
                f"grounded[{k}]: expected booleans of shape ({n},) or ({batch}, {n}), "
                f"got {mask.dtype} {mask.shape}"
            )
        if not mask.any():
            out.append(p)
            continue
        if p.kind not in (KIND_LINEAR, KIND_IDEAL):
            raise InputError(
                f"grounded[{k}]: only linear or ideal-diode nodes can be grounded "
                "(this layer has Shockley diodes)"
            )
        lo = np.where(mask, 0.0, p.lo)
        hi = np.where(mask, 0.0, p.hi)
        out.append(NodeParams(KIND_IDEAL, lo, hi))
    if all(a is b for a, b in zip(out, params, strict=True)):
        return params  # no node grounded: the circuit's own (what it keeps is for them)
    return out


#: Inputs of at most this many values (batch x inputs: a batch of 128 images of 784
#: pixels) have their sources' current kept with the circuit, for the next settle of the
#: same inputs (a training step's phases).
REUSED_INPUTS = 1 << 17


def _input_current(c: Circuit, x: np.ndarray, reuse: bool) -> np.ndarray:
    """``x @ T + I_bias,0`` (A), the current the input and bias sources bring the first
    layer for drives ``x`` in ``c``'s dtype; with ``reuse`` and a small batch, kept with
    the circuit and returned again for the same ``x`` (compared bit by bit, so an array
    changed in place is computed anew). Never written to after."""
    small = reuse and x.size <= REUSED_INPUTS and x.flags.c_contiguous
    if small:
        last = c.cache.get("inputs")
        if (
            last is not None
            and last[0].shape == x.shape
            and np.array_equal(last[0].view(np.uint8), x.view(np.uint8))
        ):
            return last[1]
    current = np.matmul(x, c.input_transfer)
    current += c.bias_current[0]
    if small:
        c.cache["inputs"] = (x.copy(), current)
    return current


def _layout(c: Circuit, params: list[NodeParams], node_g: list[np.ndarray], beta: float) -> tuple:
    """The compiled loop's arrays for ``c`` with these ``params`` and ``node_g`` (the
    circuit's own, or with a nudging conductance ``beta`` at the outputs), kept with the
    circuit while ``params`` are its own."""
    if params is not c.params:
        return layout(c.weights, node_g, node_layout(params), c.node_conductance64, c.v_scale)
    key = f"layout {beta!r}"
    if key not in c.cache:
        nodes = c.node_arrays or node_layout(params)
        c.cache[key] = layout(c.weights, node_g, nodes, c.node_conductance64, c.v_scale)
    return c.cache[key]


def _const_rows(const: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``const`` as :func:`~neuroemu.kernels.nodes.solve_nodes` takes it: C-contiguous
    rows in ``v``'s dtype, (batch, nodes) or one row (1, nodes)."""
    const = const.reshape(1, -1) if const.ndim == 1 else const
    return np.ascontiguousarray(const).astype(v.dtype, copy=False)


def _order(n_layers: int) -> list[int]:
    """The layers in the order a sweep solves them: even ones, then odd ones."""
    return list(range(0, n_layers, 2)) + list(range(1, n_layers, 2))


def _chip_sources(sources: list[np.ndarray], nudge: np.ndarray | None, k: int) -> np.ndarray:
    """``source`` of layer ``k`` for :func:`report_nodes` (A): ``I_0,k``, less the nudging
    current where settle's ``I_in`` includes it, so that ``I_in + source`` is the chip's own
    ``I_in,k + I_0,k`` of the power identity (:func:`static_power`)."""
    if nudge is None or k != len(sources) - 1:
        return sources[k]
    return sources[k] - nudge


def _add_source_power(c: Circuit, x: np.ndarray, power: np.ndarray) -> np.ndarray:
    """``power`` plus the sources' own terms ``sum_sources g V_s^2`` (W), never negative."""
    sources = np.empty(len(x))
    weighted_squares(x, c.input_power, sources)
    power = power + sources
    power += c.bias_power
    return np.maximum(power, 0.0, out=power)


def _trace(
    c: Circuit, x: np.ndarray, states: list[list[np.ndarray]], changes: list[np.ndarray]
) -> Trace:
    """The recorded states with their power and energy (meant for a few samples)."""
    return Trace(
        voltages=[np.stack([state[k] for state in states]) for k in range(len(c.weights))],
        residual=np.array(changes),
        power=np.array([static_power(c, x, state) for state in states]),
        # The co-content of the resistive part is half the power it dissipates.
        energy=np.array([0.5 * static_power(c, x, state, diodes=False) for state in states]),
    )


def static_power(c: Circuit, x: np.ndarray, v: list[np.ndarray], diodes: bool = True) -> np.ndarray:
    """Power (W) per sample dissipated in every crossbar device, bias conductance and
    (``diodes``) diode of the chip at node voltages ``v``, inputs ``x`` as they drive the
    sources (after the DAC and offset, in units of the input gain: :meth:`Chip.drive`).

    Expanding ``sum over edges g (V_i - V_j)^2`` node by node gives, with ``G_k`` the
    conductance of the chip's elements at each node of layer ``k``, ``I_in,k`` the current
    its neighbours and sources would bring at ``V = 0`` and ``I_0,k`` the part of it from
    sources (inputs and biases):

        P = sum_sources g V_s^2 + sum_k [ V_k^2 . G_k - V_k . (I_in,k + I_0,k) ]

    an identity of algebra (not of KCL); each layer's share is summed by
    :func:`neuroemu.kernels.nodes.report_nodes`, which ``settle`` calls on the currents its
    last sweep computed (taking the nudging element, not part of the chip, back out).
    """
    n_layers = len(v)
    batch = len(x)
    sources = [c.bias_current[k][None, :] for k in range(n_layers)]
    sources[0] = x.astype(c.dtype, copy=False) @ c.input_transfer + c.bias_current[0]
    figures = np.zeros((3, batch))
    for k in range(n_layers):
        i_in = _neighbour_currents(c, k, v, np.empty((batch, len(c.node_conductance[k])), c.dtype))
        i_in += sources[k]
        report_nodes(
            i_in,
            c.node_conductance[k],
            c.params[k],
            np.ascontiguousarray(v[k], dtype=c.dtype),
            figures,
            scale=c.v_scale,
            conductance=c.node_conductance64[k],
            source=sources[k],
            diodes=diodes,
        )
    return _add_source_power(c, x, figures[2])
