"""Equilibrium propagation through the devices (Scellier and Bengio 2017; Kendall et al.
2020; Scellier 2024).

The loss is ``C = 1/2 sum_k (V_k - y_k)^2`` over output nodes. The nudged phase adds
``beta * C`` to the circuit's energy: physically a conductance ``beta`` from each output node
to a source at ``y_k`` (see :func:`neuroemu.engine.settle`); for the squared hinge the
same sources, moved to the free voltages of the nodes that meet their margin
(:func:`hinge_targets`). Since the energy holds
``1/2 g_ij dV_ij^2`` for every device, the gradient of the loss at equilibrium with respect
to one conductance is estimated from the voltage drop across that one device:

    one-sided:  dC/dg_ij ~ [ dV_ij(+beta)^2 - dV_ij(0)^2 ]      / (2 beta)
    centred:    dC/dg_ij ~ [ dV_ij(+beta)^2 - dV_ij(-beta)^2 ]  / (4 beta)

(units: V^2 / S). The one-sided estimate is off by O(beta), the centred one by O(beta^2)
(Laborieux et al. 2021). Everything here is local: :func:`mean_squared_drops` sees, for each
device, only the voltages of its own two terminals.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ..chip.resistive import Chip
from ..chip.state import DeviceUpdate
from ..errors import InputError
from .registry import EpochDraws, Step, Traced, register_rule

if TYPE_CHECKING:
    from ..engine.states import Equilibrium
    from ..models.pairs import Refresh
    from ..spec.training import Training

Algorithm = Literal["ep-one-sided", "ep-centred"]


def mean_squared_drops(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``mean over the batch of (V_i - V_j)^2`` for every device ``(i, j)`` of a crossbar
    whose row terminals sit at ``rows`` (batch, m) and column terminals at ``cols``
    (batch, n), in V^2. Expanded as ``V_i^2 + V_j^2 - 2 V_i V_j`` so a batch costs one
    matrix product; each entry still depends on its own device's two terminals only."""
    rows = np.asarray(rows, dtype=np.float64)
    cols = np.asarray(cols, dtype=np.float64)
    batch = rows.shape[0]
    drops = np.square(rows).sum(axis=0)[:, None] + np.square(cols).sum(axis=0)[None, :]
    drops -= 2.0 * (rows.T @ cols)
    return drops / batch


@dataclass
class EPGradient:
    """Estimated ``dC/dg`` (V^2/S) for every crossbar and every bias conductance array."""

    crossbars: list[np.ndarray]
    biases: list[np.ndarray]


def squared_drops(wires: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """``sum over the batch of (R_ij - C_ij)^2`` (V^2) for every device of a crossbar with
    resistive wires, from its row-wire and column-wire node voltages (batch, rows, columns):
    each device's own drop."""
    rows, cols = wires
    drop = rows - cols
    return np.einsum("bij,bij->ij", drop, drop)


def _phase_drops(chip: Chip, x: np.ndarray, eq: Equilibrium) -> tuple[list, list]:
    """Mean squared drops of every crossbar and bias array in one settled phase."""
    terminals = [chip.source_voltages(x), *eq.voltages]
    v_b = chip.spec.bias.voltage
    crossbars, biases = [], []
    for k in range(len(chip.crossbars)):
        if eq.wires is not None:
            crossbars.append(squared_drops(eq.wires[k]) / len(x))
        else:
            crossbars.append(mean_squared_drops(terminals[k], terminals[k + 1]))
        bias_rows = np.broadcast_to([v_b, -v_b], (len(x), 2))
        biases.append(mean_squared_drops(bias_rows, terminals[k + 1]))
    return crossbars, biases


def ep_gradient(
    chip: Chip,
    x: np.ndarray,
    first: Equilibrium,
    second: Equilibrium,
    beta: float,
    algorithm: Algorithm = "ep-centred",
) -> EPGradient:
    """The EP estimate of ``dC/dg`` from two settled phases of the same inputs ``x``.

    ``ep-one-sided``: ``first`` is the free phase (beta = 0), ``second`` the phase nudged with
    ``+beta``. ``ep-centred``: ``first`` is nudged with ``-beta``, ``second`` with ``+beta``.
    """
    if not np.isfinite(beta) or beta == 0:
        raise InputError(f"beta: must be finite and non-zero for learning (got {beta})")
    scale = {"ep-one-sided": 2.0 * beta, "ep-centred": 4.0 * beta}.get(algorithm)
    if scale is None:
        raise InputError(f"algorithm: unknown {algorithm!r} (ep-one-sided, ep-centred)")
    x = chip.check_inputs(x)
    low_w, low_b = _phase_drops(chip, x, first)
    high_w, high_b = _phase_drops(chip, x, second)
    return EPGradient(
        crossbars=[(h - lo) / scale for h, lo in zip(high_w, low_w, strict=True)],
        biases=[(h - lo) / scale for h, lo in zip(high_b, low_b, strict=True)],
    )


def ep_updates(
    chip: Chip,
    x: np.ndarray,
    first: Equilibrium,
    second: Equilibrium,
    beta: float,
    algorithm: Algorithm,
    rates: list[float],
) -> Iterator[DeviceUpdate]:
    """The change ``-rate * dC/dg`` every crossbar and bias array is asked for, with
    ``dC/dg`` the EP estimate of :func:`ep_gradient` in the form the device update kernel
    takes it (``factor * (row_i + col_j - 2 cross_ij)``; each device still uses only its own
    two terminals' voltages): crossbar ``k``, then layer ``k``'s biases, for each ``k``."""
    scale = {"ep-one-sided": 2.0 * beta, "ep-centred": 4.0 * beta}[algorithm]
    batch = len(x)
    high = [chip.source_voltages(x), *second.voltages]
    low = [high[0], *first.voltages]
    v_b = chip.spec.bias.voltage
    bias_rows = np.broadcast_to(np.array([v_b, -v_b]), (batch, 2))
    n = len(chip.crossbars)
    for k in range(n):
        c_hi = np.asarray(high[k + 1], dtype=np.float64)
        c_lo = np.asarray(low[k + 1], dtype=np.float64)
        col_term = np.square(c_hi).sum(axis=0) - np.square(c_lo).sum(axis=0)
        factor = -rates[k] / (batch * scale)
        for index, raw_hi, raw_lo in ((k, high[k], low[k]), (n + k, bias_rows, bias_rows)):
            if index == k and second.wires is not None and first.wires is not None:
                # Wires: each device's drop is between its own two wire nodes, per sample.
                yield DeviceUpdate(
                    k,
                    np.zeros(high[k].shape[1]),
                    np.zeros(c_hi.shape[1]),
                    -0.5 * (squared_drops(second.wires[k]) - squared_drops(first.wires[k])),
                    factor,
                )
                continue
            r_hi = np.asarray(raw_hi, dtype=np.float64)
            r_lo = np.asarray(raw_lo, dtype=np.float64)
            if raw_hi is raw_lo:
                # Source rows are the same in both phases: one product suffices.
                row_term = np.zeros(r_hi.shape[1])
                cross = r_hi.T @ (c_hi - c_lo)
            else:
                row_term = np.square(r_hi).sum(axis=0) - np.square(r_lo).sum(axis=0)
                cross = np.concatenate([r_hi, -r_lo]).T @ np.concatenate([c_hi, c_lo])
            yield DeviceUpdate(index, row_term, col_term, cross, factor)


def apply_ep_update(
    chip: Chip,
    x: np.ndarray,
    first: Equilibrium,
    second: Equilibrium,
    beta: float,
    algorithm: Algorithm,
    rates: list[float],
    rng: np.random.Generator,
    momentum: float = 0.0,
    accumulate: float | None = None,
    pairs: Refresh | None = None,
    transfer: float | None = None,
) -> None:
    """``g <- device(g - rate * dC/dg)`` for every crossbar and bias array
    (:func:`ep_updates`), each through its device model in one pass
    (:meth:`~neuroemu.chip.base.BaseChip.update_devices`); with ``momentum`` > 0 each
    device moves by its velocity instead, with ``accumulate`` through its accumulator,
    with ``pairs`` (how they refresh) as pairs of devices, with ``transfer`` (a rate) by
    Tiki-Taka."""
    updates = ep_updates(chip, x, first, second, beta, algorithm, rates)
    chip.update_devices(
        updates, rng, momentum, accumulate=accumulate, pairs=pairs, transfer=transfer
    )


def loss(chip: Chip, eq: Equilibrium, target: np.ndarray) -> np.ndarray:
    """``C = 1/2 sum_k (V_k - y_k)^2`` (V^2) per sample."""
    return 0.5 * np.square(eq.output - target).sum(axis=1)


def hinge_shortfall(output: np.ndarray, target: np.ndarray) -> np.ndarray:
    """How far (V) each output node falls short of its side of the target: ``y - V`` for
    the right class's node (target positive; it should be at or above it), ``V - y`` for
    every other node (target 0 V; at or below it). Positive where the node misses."""
    return np.where(target > 0, target - output, output - target)


def hinge_loss(chip: Chip, output: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Squared hinge ``C = 1/2 sum_k relu(shortfall_k)^2`` (V^2) per sample: a node on the
    right side of its target (:func:`hinge_shortfall`) costs nothing."""
    return 0.5 * np.square(np.maximum(hinge_shortfall(output, target), 0.0)).sum(axis=1)


def hinge_targets(chip: Chip, output: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Where the nudging sources sit for the squared hinge, given the free outputs: at the
    target for a node on the wrong side of it, at the node's own free voltage (no pull at
    the free equilibrium) for one on the right side. Nudged so, the energy gains ``beta``
    times a cost whose gradient at the free equilibrium is that of :func:`hinge_loss`."""
    return np.where(hinge_shortfall(output, target) > 0, target, output)


def current_pull(output: np.ndarray, sources: np.ndarray) -> np.ndarray:
    """The current nudge per unit beta (V): ``sources - output`` at the free phase.

    A conductance ``beta`` to a source at ``y_k`` adds ``beta * 1/2 (V_k - y_k)^2`` to the
    energy; the held current ``beta (y_k - V*_k)``, with ``V*`` the free voltages, adds
    ``beta * (V*_k - y_k) V_k``: the cost linearised at the free equilibrium. Both costs
    have the same gradient there, so the EP estimate tends to the same ``dC/dg`` as beta
    goes to 0, off by O(beta) one-sided and O(beta^2) centred (the bias terms differ).
    The current source leaves every node's conductance as it is: a nudge of either sign
    and any size keeps an operating point. Physically, a current source per output node
    set from a sample-and-hold of its free voltage."""
    return np.asarray(sources, dtype=np.float64) - np.asarray(output, dtype=np.float64)


def _softmax(scores: np.ndarray, temperature: float) -> np.ndarray:
    z = scores / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def cross_entropy(chip: Chip, eq: Equilibrium, labels: np.ndarray, temperature: float):
    """Cross-entropy of ``softmax(scores / temperature)`` against ``labels``, per sample."""
    p = _softmax(np.asarray(eq.scores, dtype=np.float64), temperature)
    return -np.log(np.maximum(p[np.arange(len(labels)), labels], 1e-300))


def cross_entropy_pull(
    chip: Chip, eq: Equilibrium, labels: np.ndarray, temperature: float
) -> np.ndarray:
    """``-dC'/dV`` (V) at ``eq`` for the cross-entropy readout (Laborieux et al. 2021), with
    ``C' = temperature^2 * cross-entropy`` so that, like the squared error, it is in V^2.

    Nudging by the current ``beta * pull`` (A) injected into the output nodes and held
    while the circuit settles adds ``beta`` times the cost linearised at ``eq`` to the
    energy, so the EP estimate from the drops tends to ``dC'/dg`` as beta goes to 0.
    """
    p = _softmax(np.asarray(eq.scores, dtype=np.float64), temperature)
    onehot = np.zeros_like(p)
    onehot[np.arange(len(labels)), labels] = 1.0
    per_class = temperature * (onehot - p)  # -dC'/d(score)
    if chip.spec.output.readout == "differential":
        pull = np.empty((len(labels), 2 * p.shape[1]))
        pull[:, 0::2] = per_class
        pull[:, 1::2] = -per_class
        return pull
    return per_class


def dropout_masks(
    chip: Chip, rate: float, batch: int, rng: np.random.Generator
) -> list[np.ndarray | None] | None:
    """The hidden nodes switched to ground for each sample of a mini-batch, (batch, nodes)
    per hidden layer, each with chance ``rate`` (none of the output nodes); ``None`` when
    ``rate`` is 0 (no draws)."""
    if rate == 0.0:
        return None
    hidden = [rng.random((batch, n)) < rate for n in chip.layer_sizes[:-1]]
    return [*hidden, None]


#: The run file's metric of each training loss (:mod:`neuroemu.metrics`).
LOSS_METRIC = {
    "mse": "train_loss_V2",
    "cross-entropy": "train_cross_entropy",
    "hinge": "train_hinge_V2",
}


@register_rule("resistive", "ep-centred", "ep-one-sided")
class ResistiveEP:
    """Equilibrium propagation on a resistive chip: a free phase, then one nudged phase
    (``ep-one-sided``) or two of opposite signs (``ep-centred``), warm-started from the free
    one, and every device moved by the EP estimate from its own voltage drops.

    Its settings, from the ``training:`` section: ``beta`` (S) and ``random_sign``, the
    loss (``mse``, ``cross-entropy`` with its ``temperature``, ``hinge``) and its
    ``target_voltage``, ``dropout``, ``momentum`` and ``scheme``.
    """

    def __init__(self, training: Training):
        self.algorithm: Algorithm = training.algorithm  # type: ignore[assignment]
        self.beta = training.beta
        self.random_sign = training.random_sign
        self.target_voltage = training.target_voltage
        self.loss = training.loss
        self.nudging = training.nudging
        self.temperature = training.temperature
        self.dropout = training.dropout
        self.momentum = training.momentum
        self.accumulate = training.accumulator_threshold
        self.pairs = training.pair_refresh
        self.transfer = training.transfer
        self.loss_metric = LOSS_METRIC[training.loss]

    def step(self, chip: Chip, x: np.ndarray, y: np.ndarray, draws: EpochDraws) -> Step:
        target = chip.target_voltages(y, self.target_voltage)
        grounded = dropout_masks(chip, self.dropout, len(x), draws.dropout)  # every phase
        free = chip.settle(x, dtype=draws.dtype, grounded=grounded)
        beta = self.beta
        if self.random_sign and draws.rng.random() < 0.5:
            beta = -beta
        pulled, pull = self.pull(chip, free, y, target)
        plus = self._nudged(chip, x, free, beta, pulled, pull, draws.dtype, grounded)
        if self.algorithm == "ep-centred":
            first = self._nudged(chip, x, free, -beta, pulled, pull, draws.dtype, grounded)
            phases, sweeps = 3, free.sweeps + plus.sweeps + first.sweeps
        else:
            first = free
            phases, sweeps = 2, free.sweeps + plus.sweeps
        apply_ep_update(
            chip,
            x,
            first,
            plus,
            beta,
            self.algorithm,
            draws.rates,
            draws.pulses,
            self.momentum,
            self.accumulate,
            self.pairs,
            self.transfer,
        )
        loss = float(self.free_loss(chip, free, y, target).sum())
        return Step(free, loss, sweeps, phases)

    def trace(self, chip: Chip, x: np.ndarray, y: np.ndarray, rates: list[float]) -> Traced:
        """The free and the ``+beta`` and ``-beta`` phases, nudged as the training loss
        nudges, and the change (S) their centred estimate would make."""
        target = chip.target_voltages(y, self.target_voltage)
        free = chip.settle(x, trace=True)
        pulled, pull = self.pull(chip, free, y, target)
        plus = self._nudged(chip, x, free, self.beta, pulled, pull, np.float64, None, True)
        minus = self._nudged(chip, x, free, -self.beta, pulled, pull, np.float64, None, True)
        grad = ep_gradient(chip, x, minus, plus, self.beta, "ep-centred")
        phases = {"free": free.trace, "plus": plus.trace, "minus": minus.trace}
        update = {c.name: -rates[k] * grad.crossbars[k] for k, c in enumerate(chip.crossbars)}
        return Traced(phases, update)  # type: ignore[arg-type]

    def pull(
        self, chip: Chip, free: Equilibrium, y: np.ndarray, target: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """What the nudged phases pull toward, from the free phase ``free``: the voltages of
        the target sources, and, when the nudge is a current, the current per unit beta
        (V, times beta in S gives A; ``None`` for a conductance nudge). The squared error
        pulls every output node toward ``target``, the squared hinge only those on the
        wrong side of it (:func:`hinge_targets`); as a current, each pull is the sources'
        voltage less the node's free voltage, ``-dC/dV`` at the free phase
        (:func:`current_pull`)."""
        if self.loss == "cross-entropy":
            return target, cross_entropy_pull(chip, free, y, self.temperature)
        sources = hinge_targets(chip, free.output, target) if self.loss == "hinge" else target
        if self.nudging == "current":
            return sources, current_pull(free.output, sources)
        return sources, None

    def free_loss(
        self, chip: Chip, free: Equilibrium, y: np.ndarray, target: np.ndarray
    ) -> np.ndarray:
        """The training loss of each sample in the free phase: V^2 for the squared error
        and the squared hinge, dimensionless for the cross-entropy."""
        if self.loss == "cross-entropy":
            return cross_entropy(chip, free, y, self.temperature)
        if self.loss == "hinge":
            return hinge_loss(chip, free.output, target)
        return loss(chip, free, target)

    @staticmethod
    def _nudged(
        chip: Chip,
        x: np.ndarray,
        free: Equilibrium,
        beta: float,
        target: np.ndarray,
        pull: np.ndarray | None,
        dtype: Any,
        grounded: list[np.ndarray | None] | None,
        trace: bool = False,
    ) -> Equilibrium:
        """A nudged phase warm-started from the free one: a conductance ``beta`` to the
        target sources, or the held current ``beta * pull`` (``nudge: current``, and
        always for the cross-entropy)."""
        options = {"init": free, "dtype": dtype, "grounded": grounded, "trace": trace}
        if pull is not None:
            return chip.settle(x, current=beta * pull, **options)
        return chip.settle(x, beta=beta, target=target, **options)
