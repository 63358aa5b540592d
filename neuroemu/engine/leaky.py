"""Run a network of leaky neurons through time, as Brian2 would.

Each step of length ``dt`` first computes every neuron's input current from the rates at
the start of the step (all layers at once, as Brian2 updates summed variables before its
state updaters), then advances every neuron by the update Brian2 derives from its equations
(:mod:`neuroemu.models.neurons`):

    I_syn,k = I_bias,k + rate_{k-1} @ F_k + rate_{k+1} @ B_k          (A)

with ``F_k`` the forward weights into layer ``k`` (the input rows' term is constant and
computed once), ``B_k`` the feedback weights from layer ``k + 1`` (the forward array read
backwards on a symmetric chip), weights ``read_voltage * (G - G_ref)`` in A per unit rate.
An output neuron nudged with ``beta`` (S) also takes ``beta * (v_target - v)``.

The state reached is reported like a settled resistive chip's: ``sweeps`` counts steps,
``residual`` is the largest ``|dv/dt|`` (V/s) over the last step and ``relative_residual``
that step's largest change of ``v`` over the rate scale ``v_r``; ``power`` is the read power
of the device arrays (W): every array row at ``r * read_voltage`` drives its devices and the
reference device into virtual ground, ``P = read_voltage^2 sum_i r_i^2 (sum_j G_ij + G_ref)``
(both ways for a symmetric array), and ``energy`` that power over the phase's duration.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError
from ..kernels.leaky import step as step_layer
from .states import Equilibrium, Trace, as_number, check_target, initial_voltages
from .threads import on_one_blas_thread

#: Relative change of v per step (over v_r) below which the state counts as steady.
STEADY = 1e-3


@dataclass(frozen=True)
class Network:
    """A leaky chip's arrays for the engine in one dtype (the chip lays them out:
    :meth:`neuroemu.chip.leaky.LeakyChip.network`): every weight in A per unit rate,
    ``read_voltage * (G - G_ref)``."""

    dtype: np.dtype
    forward: list[np.ndarray]  # (nodes k, nodes k+1), into layer k+1
    backward: list[np.ndarray | None]  # backward[k] (nodes k+1, nodes k) into layer k, or None
    bias: list[np.ndarray]  # (nodes,) A
    read_rows: list[np.ndarray]  # per array, its row sums plus G_ref (S), for the read power
    read_cols: list[np.ndarray]  # symmetric arrays 1.. (read backwards): column sums + G_ref
    read_voltage: float  # V, a row's voltage at a rate of 1
    bias_rows: list[float]  # S, per layer: its bias conductances' sum plus G_ref


def read_power(
    net: Network, rates: list[np.ndarray], constant: np.ndarray | None = None
) -> np.ndarray:
    """Read power (W) per sample of every array (see the module docs); ``rates[0]`` are the
    input rows' rates. ``constant``: the part from the input rows and the bias rows, which
    does not change during a phase (:func:`constant_power`), if already known."""
    read2 = net.read_voltage**2
    f64 = np.float64
    power = constant_power(net, rates[0]) if constant is None else constant.copy()
    n = len(net.forward)
    for index in range(1, len(net.read_rows)):  # arrays whose rows are free neurons
        pre = rates[index] if index < n else rates[index - n + 2]
        power += read2 * np.einsum("bi,bi,i->b", pre, pre, net.read_rows[index], dtype=f64)
    for index, cols in enumerate(net.read_cols):  # symmetric arrays 1.. read backwards
        post = rates[index + 2]
        power += read2 * np.einsum("bj,bj,j->b", post, post, cols, dtype=f64)
    return power


def constant_power(net: Network, x_rates: np.ndarray) -> np.ndarray:
    """Read power (W) per sample of the input rows and the bias rows (at a rate of 1)."""
    read2 = net.read_voltage**2
    power = read2 * np.einsum("bi,bi,i->b", x_rates, x_rates, net.read_rows[0], dtype=np.float64)
    for bias_row in net.bias_rows:
        power += read2 * bias_row
    return power


@on_one_blas_thread
def run(
    net: Network,
    x_rates: np.ndarray,
    kernels: tuple[Any, Any],
    v_r: float,
    dt: float,
    readout: Callable[[np.ndarray], np.ndarray],
    beta: float = 0.0,
    target: Any = None,
    *,
    init: Any = None,
    steps: int,
    parallel: bool | None = None,
    trace: bool = False,
    on_step: Callable[[int, list[np.ndarray], list[np.ndarray]], None] | None = None,
    refresh: Callable[[], Network] | None = None,
) -> Equilibrium:
    """Integrate the neurons of ``net`` for ``steps`` steps of ``dt`` (s), the input rows
    at rates ``x_rates`` (batch, n_inputs) (the chip's inputs after its DAC), in ``net``'s
    dtype; ``kernels`` are the neuron's compiled step kernels (hidden, output), ``v_r`` (V)
    the voltage over which its rate rises from 0 to 1, and ``readout`` turns output
    voltages into class scores. Every product runs on one BLAS thread (a threaded one
    sums in another order: the bits would depend on the machine's threads).

    Parameters
    ----------
    beta, target
        Nudging conductance (S) of the output neurons toward ``target`` (V), (batch,
        outputs); 0 for the free phase.
    init
        Starting membrane voltages (an :class:`Equilibrium` or a list of arrays), else rest
        (0 V).
    parallel
        Spread the batch over Numba's threads (bitwise identical to the serial path).
        ``None`` (default) runs the neurons serially: the matrix products dominate, and
        BLAS's threads and Numba's busy-waiting on the same cores slow each other down.
    trace
        Record every step (:class:`~neuroemu.engine.states.Trace`).
    on_step
        ``on_step(t, rates_before, rates_after)`` after each step (rates per layer, input
        rows first): where continual learning rules change the weights. The steps after it
        run on ``refresh()``, the network as it then is.
    """
    if isinstance(steps, bool) or not isinstance(steps, int | np.integer) or steps < 1:
        raise InputError(f"steps: must be a whole number >= 1 (got {steps!r})")
    steps = int(steps)
    dtype = net.dtype
    batch = x_rates.shape[0]
    sizes = [len(b) for b in net.bias]
    beta = as_number(beta, "beta", "S")
    target = check_target(beta, target, batch, sizes[-1])
    parallel = bool(parallel)
    hidden_kernel, output_kernel = kernels
    n = len(sizes)

    v = initial_voltages(init, sizes, batch, dtype)
    rates = [np.empty((batch, m), dtype=dtype) for m in sizes]
    scratch = [np.empty((batch, m), dtype=dtype) for m in sizes]
    change = np.empty(batch, dtype=dtype)
    largest = np.zeros(batch)
    target_arr = None if target is None else np.ascontiguousarray(target, dtype=dtype)
    for k in range(n):
        hidden_kernel.rates(v[k], rates[k])
    i_in = [np.empty((batch, m), dtype=dtype) for m in sizes]
    first = x_rates @ net.forward[0] + net.bias[0]
    states = [[a.copy() for a in v]] if trace else []
    changes, powers = [], []
    constant = constant_power(net, x_rates)
    if trace:
        powers.append(read_power(net, [x_rates, *rates], constant))
    for t in range(steps):
        if on_step is not None:
            before = [a.copy() for a in rates]
            if refresh is not None:
                net = refresh()
            first = x_rates @ net.forward[0] + net.bias[0]
        for k in range(n):  # every input current from the rates at the start of the step
            out = i_in[k]
            if k == 0:
                out[...] = first
            else:
                np.matmul(rates[k - 1], net.forward[k], out=out)
                out += net.bias[k]
            back = net.backward[k]
            if back is not None:
                out += rates[k + 1] @ back
        largest[:] = 0.0
        for k in range(n):
            if k == n - 1:
                step_layer(
                    output_kernel,
                    v[k],
                    i_in[k],
                    scratch[k],
                    change,
                    float(beta),
                    target_arr if target_arr is not None else v[k],
                    parallel,
                )
            else:
                step_layer(hidden_kernel, v[k], i_in[k], scratch[k], change, parallel=parallel)
            np.maximum(largest, change, out=largest)
        rates, scratch = scratch, rates
        if trace:
            states.append([a.copy() for a in v])
            changes.append(largest / v_r)
            powers.append(read_power(net, [x_rates, *rates], constant))
        if on_step is not None:
            on_step(t, [x_rates, *before], [x_rates, *rates])

    power = read_power(net, [x_rates, *rates])  # on the arrays as last read
    duration = steps * dt
    relative = largest / v_r
    recorded = None
    if trace:
        power_steps = np.array(powers)
        recorded = Trace(
            voltages=[np.stack([state[k] for state in states]) for k in range(n)],
            residual=np.array(changes),
            power=power_steps,
            energy=np.concatenate([np.zeros((1, batch)), np.cumsum(power_steps[1:], axis=0) * dt]),
            energy_unit="J",
        )
    scores = readout(v[-1])
    return Equilibrium(
        voltages=v,
        scores=scores,
        prediction=np.argmax(scores, axis=1),
        sweeps=steps,
        sweeps_per_sample=np.full(batch, steps, dtype=np.int64),
        residual=largest / dt,
        relative_residual=relative,
        power=power,
        energy=power * duration,
        settle_time=duration,
        converged=bool(np.all(relative <= STEADY)),
        tol=STEADY,
        trace=recorded,
        rates=rates,
        residual_unit="V/s",
    )
