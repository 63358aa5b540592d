"""Learning on chips of leaky neurons: EP and its variants, local in space (and, for the
continual ones, in time).

A synapse of conductance ``G`` from neuron ``i`` (presynaptic, its row) to ``j`` has the
weight ``W_ij = G - G_ref``. With the neuron's rate ``rho(v)`` rising over ``v_r``, the
energy of the rho'-gated network holds ``- read_voltage * v_r * W_ij rho_i rho_j`` per
synapse (Scellier and Bengio 2017, in circuit units), so the EP estimate of the gradient of
the squared error ``C = 1/2 sum (v_out - y)^2`` (V^2) is, for every device,

    ep (symmetric arrays):   dC/dG_ij ~ -(V_read v_r / beta) [rho_i rho_j]^{beta}_{0}
    vf (feedback arrays):    dC/dG_ij ~ -(V_read v_r / beta) rho_i^0 [rho_j]^{beta}_{0}

with ``[f]^{b}_{a} = f(phase b) - f(phase a)`` and ``beta`` the nudging conductance (S), so
the estimate is in V^2/S like a resistive chip's. The vector-field rule (Scellier et al.
2018) moves each synapse by its presynaptic rate times the change of its postsynaptic rate.
``ep-centred`` takes the phases ``-beta`` and ``+beta`` (and ``2 beta``). ``ep-discrete``
(Ernoult et al. 2019) is the same estimate over ``nudged_steps`` Euler steps of the neuron,
the primitive-function transition; its per-step terms telescope to it. The continual
variants ``c-ep`` and ``c-vf`` (Ernoult et al. 2020) apply each step's term at once, with
``rho`` of the state before and after that step as the two phases, so the weights move
during the nudged phase and nothing of the free phase need be kept.

Every update goes through the device model (:func:`neuroemu.kernels.update.ep_update`:
bounds, pulses, noise), ``dG = -lr u^2 dC/dG``, as on a resistive chip.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from .ep import program_devices
from .train import EpochReport, epoch_setup

if TYPE_CHECKING:
    from ..chip.leaky import LeakyChip
    from ..spec.training import Training

#: Algorithms whose estimate pairs presynaptic rates of the first phase with the change of
#: postsynaptic rates (vector-field); the others take the change of the product.
VECTOR_FIELD = ("vf", "c-vf")
CONTINUAL = ("c-ep", "c-vf")


def array_layers(chip: LeakyChip) -> list[tuple[int, int]]:
    """``(pre, post)`` layer of every array of ``chip.crossbars``, in the numbering where 0
    is the input rows and ``k >= 1`` the free layers."""
    n = chip.n_forward
    pairs = [(k, k + 1) for k in range(n)]
    pairs += [(k + 1, k) for k in range(1, n)] if chip.spec.synapses == "asymmetric" else []
    return pairs


def estimate(
    chip: LeakyChip,
    low: list[np.ndarray],
    high: list[np.ndarray],
    beta: float,
    rule: str = "ep",
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The estimates of ``dC/dG`` (V^2/S, batch mean) for every array and every bias array,
    from the rates of each layer (input rows first) in the phases ``low`` and ``high``,
    ``high`` nudged by ``beta`` (S) more than ``low``. ``rule``: ``ep`` or ``vf``."""
    crosses, bias = _crosses(chip, low, high, rule)
    scale = -chip.spec.inputs.read_voltage * chip.model.v_r / (beta * low[0].shape[0])
    return [scale * c for c in crosses], [scale * b for b in bias]


def _crosses(
    chip: LeakyChip, low: list[np.ndarray], high: list[np.ndarray], rule: str
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Batch sums ``[rho_i rho_j]`` (ep) or ``rho_i^low [rho_j]`` (vf) per array, and the
    same for the bias rows (rate 1 in both phases)."""
    f64 = np.float64
    crosses = []
    for pre, post in array_layers(chip):
        a_pre, b_pre = low[pre].astype(f64), high[pre].astype(f64)
        a_post, b_post = low[post].astype(f64), high[post].astype(f64)
        if rule == "vf" or pre == 0:  # inputs are clamped: both rules agree there
            crosses.append(a_pre.T @ (b_post - a_post))
        else:
            crosses.append(b_pre.T @ b_post - a_pre.T @ a_post)
    bias = [
        (high[k + 1].astype(f64) - low[k + 1].astype(f64)).sum(axis=0)[None, :]
        for k in range(chip.n_forward)
    ]
    return crosses, bias


def apply_update(
    chip: LeakyChip,
    low: list[np.ndarray],
    high: list[np.ndarray],
    beta: float,
    rule: str,
    rates: list[float],
    rng: np.random.Generator,
    momentum: float = 0.0,
) -> None:
    """``G <- device(G - rate u^2 dC/dG)`` for every array and bias array, from the phases
    ``low`` and ``high`` (see :func:`estimate`); ``rates`` already include ``u^2`` and the
    decay. Each device sees only its own pre- and postsynaptic rates. With ``momentum`` > 0
    each device moves by its velocity (:meth:`~neuroemu.chip.base.BaseChip.velocity`)."""
    crosses, bias = _crosses(chip, low, high, rule)
    coefficient = chip.spec.inputs.read_voltage * chip.model.v_r / (beta * low[0].shape[0])
    targets = [
        (c.conductance, c.device, cross, rates[k], chip.crossbar_spread[k], chip.crossbar_bounds[k])
        for k, (c, cross) in enumerate(zip(chip.crossbars, crosses, strict=True))
    ]
    targets += [
        (b, card, cross, rates[k], chip.bias_spread[k], chip.bias_bounds[k])
        for k, (b, card, cross) in enumerate(
            zip(chip.bias_conductance, chip.bias_devices, bias, strict=True)
        )
    ]
    for index, (g, card, cross, rate, spread, bounds) in enumerate(targets):
        # The kernel forms factor * (row + col - 2 cross): rows and columns carry nothing
        # here, so factor = -rate * coefficient / 2 gives dG = rate * coefficient * cross.
        zero_rows, zero_cols = np.zeros(g.shape[0]), np.zeros(g.shape[1])
        factor = -0.5 * rate * coefficient
        velocity = chip.velocity(index) if momentum > 0 else None  # device_arrays order
        program_devices(
            g, card, spread, zero_rows, zero_cols, cross, factor, rng, bounds, velocity, momentum
        )
    chip.apply_faults()
    chip.touch()


def _phase_rates(x_rates: np.ndarray, eq: Any) -> list[np.ndarray]:
    return [x_rates, *eq.rates]


def train_epoch(
    chip: LeakyChip,
    x: np.ndarray,
    y: np.ndarray,
    training: Training,
    epoch: int,
    *,
    dtype: Any = np.float64,
    progress: Callable[[int, float], None] | None = None,
) -> EpochReport:
    """One epoch of ``training.algorithm`` over ``(x, y)``; ``epoch`` counts from 1 (it
    sets the decay and the random streams, as on a resistive chip)."""
    setup = epoch_setup(chip, x, y, training, epoch)
    x, y, rng, pulse_rng, rates = setup.x, setup.y, setup.rng, setup.pulse_rng, setup.rates
    algorithm = training.algorithm
    rule = "vf" if algorithm in VECTOR_FIELD else "ep"
    order = setup.order
    wrong = seen = 0
    total_loss = 0.0
    start = time.perf_counter()
    for lo in range(0, len(x), training.batch_size):
        index = order[lo : lo + training.batch_size]
        xb, yb = x[index], y[index]
        target = chip.target_voltages(yb, training.target_voltage)
        x_rates = chip.dac(xb).astype(dtype, copy=False)
        chip.next_read()  # the phases of one step see one read of the arrays
        free = chip.settle(xb, dtype=dtype)
        beta = training.beta
        if training.random_sign and rng.random() < 0.5:
            beta = -beta
        if algorithm in CONTINUAL:

            def learn(t: int, before: list, after: list, beta: float = beta) -> None:
                apply_update(chip, before, after, beta, rule, rates, pulse_rng, training.momentum)

            chip.settle(xb, beta, target, init=free, dtype=dtype, on_step=learn)
        elif algorithm == "ep-centred":
            plus = chip.settle(xb, beta, target, init=free, dtype=dtype)
            minus = chip.settle(xb, -beta, target, init=free, dtype=dtype)
            low, high = _phase_rates(x_rates, minus), _phase_rates(x_rates, plus)
            apply_update(chip, low, high, 2 * beta, rule, rates, pulse_rng, training.momentum)
        else:
            nudged = chip.settle(xb, beta, target, init=free, dtype=dtype)
            low, high = _phase_rates(x_rates, free), _phase_rates(x_rates, nudged)
            apply_update(chip, low, high, beta, rule, rates, pulse_rng, training.momentum)
        wrong += int(np.sum(free.prediction != yb))
        seen += len(yb)
        total_loss += float(0.5 * np.square(free.voltages[-1] - target).sum())
        if progress is not None:
            progress(len(yb), wrong / seen)
    return EpochReport(
        epoch=epoch,
        train_error=wrong / max(seen, 1),
        train_loss=total_loss / max(seen, 1),
        mean_sweeps=_mean_steps(chip, algorithm),
        wall_time=time.perf_counter() - start,
    )


def _mean_steps(chip: LeakyChip, algorithm: str) -> float:
    """Time steps per phase of one training step."""
    d = chip.spec.dynamics
    nudged = 2 if algorithm == "ep-centred" else 1
    return (d.free_steps + nudged * d.nudged_steps) / (1 + nudged)


def trace_phases(
    chip: LeakyChip, x: np.ndarray, y: np.ndarray, training: Training, epoch: int
) -> dict[str, Any]:
    """The free and nudged phases of samples ``x`` step by step, and the change (S) their
    estimate would make at ``epoch`` (through no device model, not applied)."""
    target = chip.target_voltages(y, training.target_voltage)
    x_rates = chip.dac(chip.check_inputs(x))
    free = chip.settle(x, trace=True)
    plus = chip.settle(x, training.beta, target, init=free, trace=True)
    phases = {"free": free.trace, "plus": plus.trace}
    low, high, beta = _phase_rates(x_rates, free), _phase_rates(x_rates, plus), training.beta
    if training.algorithm == "ep-centred":
        minus = chip.settle(x, -training.beta, target, init=free, trace=True)
        phases["minus"] = minus.trace
        low, beta = _phase_rates(x_rates, minus), 2 * training.beta
    rule = "vf" if training.algorithm in VECTOR_FIELD else "ep"
    grads, _ = estimate(chip, low, high, beta, rule)
    scale = training.decay ** max(epoch - 1, 0) * training.conductance_unit**2
    rates = training.rates(len(chip.crossbars))
    return {
        "phases": phases,
        "update": {c.name: -rates[k] * scale * grads[k] for k, c in enumerate(chip.crossbars)},
    }
