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

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from ..chip.leaky import LeakyChip
from ..chip.state import DeviceUpdate
from .registry import EpochDraws, Step, Traced, register_rule

if TYPE_CHECKING:
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
    accumulate: float | None = None,
) -> None:
    """``G <- device(G - rate u^2 dC/dG)`` for every array and bias array, from the phases
    ``low`` and ``high`` (see :func:`estimate`); ``rates`` already include ``u^2`` and the
    decay. Each device sees only its own pre- and postsynaptic rates. With ``momentum`` > 0
    each device moves by its velocity instead, with ``accumulate`` through its accumulator:
    all arrays, then all biases (:meth:`~neuroemu.chip.base.BaseChip.update_devices`)."""
    crosses, bias = _crosses(chip, low, high, rule)
    coefficient = chip.spec.inputs.read_voltage * chip.model.v_r / (beta * low[0].shape[0])
    n = len(chip.crossbars)
    shapes = [g.shape for g, _ in chip.device_arrays()]

    def updates() -> Iterator[DeviceUpdate]:
        for index, cross in enumerate([*crosses, *bias]):
            # The kernel forms factor * (row + col - 2 cross): rows and columns carry
            # nothing here, so factor = -rate * coefficient / 2 gives dG = rate * coef * cross.
            rows, cols = shapes[index]
            rate = rates[index if index < n else index - n]
            factor = -0.5 * rate * coefficient
            yield DeviceUpdate(index, np.zeros(rows), np.zeros(cols), cross, factor)

    chip.update_devices(updates(), rng, momentum, accumulate=accumulate)


def _phase_rates(x_rates: np.ndarray, eq: Any) -> list[np.ndarray]:
    return [x_rates, *eq.rates]


@register_rule("leaky", "ep-centred", "ep-one-sided", "ep-discrete", "vf", "c-ep", "c-vf")
class LeakyEP:
    """EP and its variants on a chip of leaky neurons: a free phase, then nudged phases
    warm-started from it (one; two of opposite signs for ``ep-centred``), every device moved
    by the estimate of its rule (``ep``: the change of ``rho_i rho_j``; ``vf``, ``c-vf``:
    presynaptic rate times the change of the postsynaptic one). The continual variants
    (``c-ep``, ``c-vf``) move the devices at every step of the nudged phase.

    Its settings, from the ``training:`` section: ``algorithm``, ``beta`` (S) and
    ``random_sign``, ``target_voltage``, ``momentum`` and ``scheme``.
    """

    loss_metric = "train_loss_V2"

    def __init__(self, training: Training):
        self.algorithm = training.algorithm
        self.rule = "vf" if training.algorithm in VECTOR_FIELD else "ep"
        self.beta = training.beta
        self.random_sign = training.random_sign
        self.target_voltage = training.target_voltage
        self.momentum = training.momentum
        self.accumulate = training.accumulator_threshold

    def step(self, chip: LeakyChip, x: np.ndarray, y: np.ndarray, draws: EpochDraws) -> Step:
        dtype, rates, pulses = draws.dtype, draws.rates, draws.pulses
        target = chip.target_voltages(y, self.target_voltage)
        x_rates = chip.dac(x).astype(dtype, copy=False)
        free = chip.settle(x, dtype=dtype)
        beta = self.beta
        if self.random_sign and draws.rng.random() < 0.5:
            beta = -beta
        if self.algorithm in CONTINUAL:

            def learn(t: int, before: list, after: list, beta: float = beta) -> None:
                apply_update(
                    chip,
                    before,
                    after,
                    beta,
                    self.rule,
                    rates,
                    pulses,
                    self.momentum,
                    self.accumulate,
                )

            nudged = chip.settle(x, beta, target, init=free, dtype=dtype, on_step=learn)
            phases, sweeps = 2, free.sweeps + nudged.sweeps
        elif self.algorithm == "ep-centred":
            plus = chip.settle(x, beta, target, init=free, dtype=dtype)
            minus = chip.settle(x, -beta, target, init=free, dtype=dtype)
            low, high = _phase_rates(x_rates, minus), _phase_rates(x_rates, plus)
            apply_update(
                chip, low, high, 2 * beta, self.rule, rates, pulses, self.momentum, self.accumulate
            )
            phases, sweeps = 3, free.sweeps + plus.sweeps + minus.sweeps
        else:
            nudged = chip.settle(x, beta, target, init=free, dtype=dtype)
            low, high = _phase_rates(x_rates, free), _phase_rates(x_rates, nudged)
            apply_update(
                chip, low, high, beta, self.rule, rates, pulses, self.momentum, self.accumulate
            )
            phases, sweeps = 2, free.sweeps + nudged.sweeps
        loss = float(0.5 * np.square(free.voltages[-1] - target).sum())
        return Step(free, loss, sweeps, phases)

    def trace(self, chip: LeakyChip, x: np.ndarray, y: np.ndarray, rates: list[float]) -> Traced:
        """The free and nudged phases step by step, and the change (S) their estimate would
        make (through no device model, not applied)."""
        target = chip.target_voltages(y, self.target_voltage)
        x_rates = chip.dac(chip.check_inputs(x))
        free = chip.settle(x, trace=True)
        plus = chip.settle(x, self.beta, target, init=free, trace=True)
        phases = {"free": free.trace, "plus": plus.trace}
        low, high, beta = _phase_rates(x_rates, free), _phase_rates(x_rates, plus), self.beta
        if self.algorithm == "ep-centred":
            minus = chip.settle(x, -self.beta, target, init=free, trace=True)
            phases["minus"] = minus.trace
            low, beta = _phase_rates(x_rates, minus), 2 * self.beta
        grads, _ = estimate(chip, low, high, beta, self.rule)
        update = {c.name: -rates[k] * grads[k] for k, c in enumerate(chip.crossbars)}
        return Traced(phases, update)  # type: ignore[arg-type]
