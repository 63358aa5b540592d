"""Run a chip of leaky neurons through time, as Brian2 would.

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
from typing import TYPE_CHECKING, Any

import numpy as np

from ..chip.leaky import reference
from ..errors import InputError
from ..kernels.leaky import step as step_layer
from .settle import Equilibrium, Trace, _initial_voltages, _nudge

if TYPE_CHECKING:
    from ..chip.leaky import LeakyChip, Network

#: Relative change of v per step (over v_r) below which the state counts as steady.
STEADY = 1e-3


def read_power(
    chip: LeakyChip, net: Network, rates: list[np.ndarray], constant: np.ndarray | None = None
) -> np.ndarray:
    """Read power (W) per sample of every array (see the module docs); ``rates[0]`` are the
    input rows' rates. ``constant``: the part from the input rows and the bias rows, which
    does not change during a phase (:func:`constant_power`), if already known."""
    read2 = chip.spec.inputs.read_voltage**2
    f64 = np.float64
    power = constant_power(chip, net, rates[0]) if constant is None else constant.copy()
    n = chip.n_forward
    for index in range(1, len(net.read_rows)):  # arrays whose rows are free neurons
        pre = rates[index] if index < n else rates[index - n + 2]
        power += read2 * np.einsum("bi,bi,i->b", pre, pre, net.read_rows[index], dtype=f64)
    for index, cols in enumerate(net.read_cols):  # symmetric arrays 1.. read backwards
        post = rates[index + 2]
        power += read2 * np.einsum("bj,bj,j->b", post, post, cols, dtype=f64)
    return power


def constant_power(chip: LeakyChip, net: Network, x_rates: np.ndarray) -> np.ndarray:
    """Read power (W) per sample of the input rows and the bias rows (at a rate of 1)."""
    read2 = chip.spec.inputs.read_voltage**2
    power = read2 * np.einsum("bi,bi,i->b", x_rates, x_rates, net.read_rows[0], dtype=np.float64)
    for b, card in zip(chip.bias_conductance, chip.bias_devices, strict=True):
        power += read2 * (float(b.sum()) + reference(card))
    return power


def run(
    chip: LeakyChip,
    x: Any,
    beta: float = 0.0,
    target: Any = None,
    *,
    init: Any = None,
    steps: int | None = None,
    dtype: Any = np.float64,
    parallel: bool | None = None,
    trace: bool = False,
    on_step: Callable[[int, list[np.ndarray], list[np.ndarray]], None] | None = None,
    **unused: Any,
) -> Equilibrium:
    """Integrate the chip's neurons for inputs ``x`` (batch, n_inputs) in [0, 1].

    Parameters
    ----------
    beta, target
        Nudging conductance (S) of the output neurons toward ``target`` (V), (batch,
        outputs); 0 for the free phase.
    init
        Starting membrane voltages (an :class:`Equilibrium` or a list of arrays), else rest
        (0 V).
    steps
        Steps of ``dt``; default ``dynamics.free_steps`` (free) or ``nudged_steps``.
    dtype
        ``numpy.float64`` or ``numpy.float32``.
    parallel
        Spread the batch over Numba's threads (bitwise identical to the serial path).
        ``None`` (default) runs the neurons serially: the matrix products dominate, and
        BLAS's threads and Numba's busy-waiting on the same cores slow each other down.
    trace
        Record every step (:class:`~neuroemu.engine.settle.Trace`).
    on_step
        ``on_step(t, rates_before, rates_after)`` after each step (rates per layer, input
        rows first): where continual learning rules change the weights. Its changes to the
        conductances take effect at the next step (call ``chip.touch()`` in it).
    """
    for key in unused:
        if key not in ("tol", "max_sweeps", "current"):
            raise InputError(f"{key}: not an option of a leaky chip's run")
    if unused.get("current") is not None:
        raise InputError("current: a leaky chip is nudged by beta and target")
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise InputError(f"dtype: must be float32 or float64 (got {dtype})")
    x = chip.check_inputs(x)
    batch = x.shape[0]
    dynamics = chip.spec.dynamics
    if steps is None:
        steps = dynamics.free_steps if beta == 0 else dynamics.nudged_steps
    if isinstance(steps, bool) or not isinstance(steps, int | np.integer) or steps < 1:
        raise InputError(f"steps: must be a whole number >= 1 (got {steps!r})")
    steps = int(steps)
    target = _nudge(chip, float(beta), target, batch)
    parallel = bool(parallel)
    hidden_kernel, output_kernel = chip.kernels()
    sizes = chip.layer_sizes
    n = len(sizes)
    model = chip.model

    x_rates = chip.dac(x).astype(dtype, copy=False)
    v = _initial_voltages(init, sizes, batch, dtype)
    rates = [np.empty((batch, m), dtype=dtype) for m in sizes]
    scratch = [np.empty((batch, m), dtype=dtype) for m in sizes]
    change = np.empty(batch, dtype=dtype)
    largest = np.zeros(batch)
    target_arr = None if target is None else np.ascontiguousarray(target, dtype=dtype)
    net = chip.network(dtype)
    for k in range(n):
        model_rates(chip, v[k], rates[k])
    i_in = [np.empty((batch, m), dtype=dtype) for m in sizes]
    first = x_rates @ net.forward[0] + net.bias[0]
    states = [[a.copy() for a in v]] if trace else []
    changes, powers = [], []
    constant = constant_power(chip, net, x_rates)
    if trace:
        powers.append(read_power(chip, net, [x_rates, *rates], constant))
    for t in range(steps):
        if on_step is not None:
            before = [a.copy() for a in rates]
            net = chip.network(dtype)
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
            changes.append(largest / model.v_r)
            powers.append(read_power(chip, net, [x_rates, *rates], constant))
        if on_step is not None:
            on_step(t, [x_rates, *before], [x_rates, *rates])

    power = read_power(chip, net, [x_rates, *rates])  # on the arrays as last read
    duration = steps * dynamics.dt
    relative = largest / model.v_r
    recorded = None
    if trace:
        power_steps = np.array(powers)
        recorded = Trace(
            voltages=[np.stack([state[k] for state in states]) for k in range(n)],
            residual=np.array(changes),
            power=power_steps,
            energy=np.concatenate(
                [np.zeros((1, batch)), np.cumsum(power_steps[1:], axis=0) * dynamics.dt]
            ),
            energy_unit="J",
        )
    scores = chip.scores(v[-1])
    return Equilibrium(
        voltages=v,
        scores=scores,
        prediction=np.argmax(scores, axis=1),
        sweeps=steps,
        sweeps_per_sample=np.full(batch, steps, dtype=np.int64),
        residual=largest / dynamics.dt,
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


def model_rates(chip: LeakyChip, v: np.ndarray, out: np.ndarray) -> np.ndarray:
    """The rates of neurons at membrane voltages ``v`` (the neuron's ``rate``)."""
    chip.kernels()[0].rates(v, out)
    return out
