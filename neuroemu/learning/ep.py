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

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from ..errors import InputError

if TYPE_CHECKING:
    from ..chip.base import Chip
    from ..engine.settle import Equilibrium
    from ..spec.cards import ResistorCard

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


def _phase_drops(chip: Chip, x: np.ndarray, eq: Equilibrium) -> tuple[list, list]:
    """Mean squared drops of every crossbar and bias array in one settled phase."""
    terminals = [chip.source_voltages(x), *eq.voltages]
    v_b = chip.spec.bias.voltage
    crossbars, biases = [], []
    for k in range(len(chip.crossbars)):
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
) -> None:
    """``g <- device(g - rate * dC/dg)`` for every crossbar and bias array, with ``dC/dg``
    the EP estimate of :func:`ep_gradient`, fused into one pass per crossbar (the kernel
    :func:`neuroemu.kernels.update.ep_update`; each device still uses only its own two
    terminals' voltages). With ``momentum`` > 0 each device is asked to move by its
    velocity (:meth:`~neuroemu.chip.base.BaseChip.velocity`) instead."""
    scale = {"ep-one-sided": 2.0 * beta, "ep-centred": 4.0 * beta}[algorithm]
    batch = len(x)
    high = [chip.source_voltages(x), *second.voltages]
    low = [high[0], *first.voltages]
    v_b = chip.spec.bias.voltage
    bias_rows = np.broadcast_to(np.array([v_b, -v_b]), (batch, 2))
    n = len(chip.crossbars)
    for k, crossbar in enumerate(chip.crossbars):
        card = crossbar.device
        c_hi = np.asarray(high[k + 1], dtype=np.float64)
        c_lo = np.asarray(low[k + 1], dtype=np.float64)
        col_term = np.square(c_hi).sum(axis=0) - np.square(c_lo).sum(axis=0)
        factor = -rates[k] / (batch * scale)
        targets = [
            (
                k,
                crossbar.conductance,
                high[k],
                low[k],
                chip.crossbar_spread[k],
                chip.crossbar_bounds[k],
            ),
            (
                n + k,
                chip.bias_conductance[k],
                bias_rows,
                bias_rows,
                chip.bias_spread[k],
                chip.bias_bounds[k],
            ),
        ]
        for index, g, raw_hi, raw_lo, spread, bounds in targets:
            r_hi = np.asarray(raw_hi, dtype=np.float64)
            r_lo = np.asarray(raw_lo, dtype=np.float64)
            if raw_hi is raw_lo:
                # Source rows are the same in both phases: one product suffices.
                row_term = np.zeros(g.shape[0])
                cross = r_hi.T @ (c_hi - c_lo)
            else:
                row_term = np.square(r_hi).sum(axis=0) - np.square(r_lo).sum(axis=0)
                cross = np.concatenate([r_hi, -r_lo]).T @ np.concatenate([c_hi, c_lo])
            velocity = chip.velocity(index) if momentum > 0 else None
            program_devices(
                g, card, spread, row_term, col_term, cross, factor, rng, bounds, velocity, momentum
            )


def program_devices(
    g: np.ndarray,
    card: ResistorCard,
    spread: np.ndarray | None,
    row_term: np.ndarray,
    col_term: np.ndarray,
    cross: np.ndarray,
    factor: float,
    rng: np.random.Generator,
    bounds: tuple[np.ndarray, np.ndarray] | None = None,
    velocity: np.ndarray | None = None,
    momentum: float = 0.0,
) -> None:
    """Move every device of array ``g`` by ``factor * (row_i + col_j - 2 cross_ij)`` (S)
    through its card's model, in place (:func:`neuroemu.kernels.update.ep_update`), each
    device within its own range ``bounds`` (device-to-device spread) or the card's; the
    kernel's random stream is seeded from ``rng`` when the card needs draws (stochastic
    rounding, cycle-to-cycle noise). ``velocity`` and ``momentum``: move each device by its
    velocity, ``v <- momentum v + change``, instead (``v`` updated in place)."""
    from ..kernels.update import ep_update

    pulses = None
    if card.pulses is not None:
        p = card.pulses
        pulses = (p.up, p.down, p.soft_bounds, p.cycle_noise)
    quantised = card.level_step is not None or card.pulses is not None
    stochastic = quantised and card.rounding == "stochastic"
    draws = stochastic or (pulses is not None and pulses[3] > 0)
    seed = int(rng.integers(2**31)) if draws else -1
    ep_update(
        g,
        row_term,
        col_term,
        cross,
        factor,
        card.g_min,
        card.g_max,
        card.level_step,
        stochastic,
        seed,
        pulses,
        spread,
        bounds,
        velocity=velocity,
        momentum=momentum,
    )


def one_hot_targets(chip: Chip, labels: np.ndarray, voltage: float) -> np.ndarray:
    """Target output node voltages (V) for class ``labels``: ``voltage`` on the node of the
    right class and 0 V elsewhere; with differential readout ``+voltage/2`` and
    ``-voltage/2`` on the right pair, 0 V on the others."""
    labels = np.asarray(labels)
    n_nodes = chip.layer_sizes[-1]
    target = np.zeros((len(labels), n_nodes))
    rows = np.arange(len(labels))
    if chip.spec.output.readout == "differential":
        target[rows, 2 * labels] = voltage / 2
        target[rows, 2 * labels + 1] = -voltage / 2
    else:
        target[rows, labels] = voltage
    return target


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
