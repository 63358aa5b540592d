"""Training a chip on-chip: mini-batches of free and nudged phases, local updates.

Randomness flows from one seed, each use on a stream of its own so that no use changes
another's draws: the chip is programmed from ``default_rng(seed)``; its stuck devices from
``[seed, 3]``, step spreads from ``[seed, 4]``, device ranges from ``[seed, 0, 5]``, aging
from ``[seed, 2]``; epoch ``e`` of training draws its mini-batch order and signs of beta
from ``[seed, 1, e]``, the devices' programming draws (stochastic rounding, cycle noise)
from ``[seed, 1, e, 1]``, its reads from ``[seed, 1, e, 2]``, its augmentation of the
training images from ``[seed, 1, e, 3]`` and its dropout masks from ``[seed, 1, e, 4]``.
So a run resumed after epoch ``e`` continues exactly as an uninterrupted one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..engine.inference import check_labels
from .augment import augment_epoch
from .ep import (
    Algorithm,
    apply_ep_update,
    cross_entropy,
    cross_entropy_pull,
    ep_gradient,
    hinge_loss,
    hinge_targets,
    loss,
    one_hot_targets,
)

if TYPE_CHECKING:
    from ..chip.base import Chip
    from ..spec.training import Training


@dataclass
class EpochReport:
    epoch: int  # 1-based
    train_error: float  # fraction wrong in the free phase, during the epoch
    train_loss: float  # mean loss in the free phase: C in V^2 (mse), or cross-entropy
    mean_sweeps: float  # per phase
    wall_time: float  # s


def trace_phases(
    chip: Chip, x: np.ndarray, y: np.ndarray, training: Training, epoch: int
) -> dict[str, Any]:
    """Settle samples ``x`` free, then nudged by ``+beta`` and ``-beta`` as the training
    loss nudges (warm-started from the free phase), recording every sweep, and the
    conductance change (S) their centred EP estimate would make at ``epoch`` (computed
    through no device model, and not applied)."""
    if chip.family == "leaky":
        from . import leaky

        leaky_chip: Any = chip
        return leaky.trace_phases(leaky_chip, x, y, training, epoch)
    target = one_hot_targets(chip, y, training.target_voltage)
    free = chip.settle(x, trace=True)
    pulled, pull = nudge_for_loss(chip, free, y, target, training)
    plus = _nudged(chip, x, free, training.beta, pulled, pull, np.float64, None, trace=True)
    minus = _nudged(chip, x, free, -training.beta, pulled, pull, np.float64, None, trace=True)
    grad = ep_gradient(chip, x, minus, plus, training.beta, "ep-centred")
    scale = training.decay ** max(epoch - 1, 0) * training.conductance_unit**2
    rates = training.rates(len(chip.crossbars))
    return {
        "phases": {"free": free.trace, "plus": plus.trace, "minus": minus.trace},
        "update": {
            crossbar.name: -rates[k] * scale * grad.crossbars[k]
            for k, crossbar in enumerate(chip.crossbars)
        },
    }


def _nudged(
    chip: Chip,
    x: np.ndarray,
    free: Any,
    beta: float,
    target: np.ndarray,
    pull: np.ndarray | None,
    dtype: Any,
    grounded: list[np.ndarray | None] | None,
    trace: bool = False,
) -> Any:
    """A nudged phase warm-started from the free one: a conductance ``beta`` to the target
    sources (squared error, squared hinge), or the current ``beta * pull``
    (cross-entropy)."""
    options = {"init": free, "dtype": dtype, "grounded": grounded, "trace": trace}
    if pull is not None:
        return chip.settle(x, current=beta * pull, **options)
    return chip.settle(x, beta=beta, target=target, **options)


def nudge_for_loss(
    chip: Chip, free: Any, y: np.ndarray, target: np.ndarray, training: Training
) -> tuple[np.ndarray, np.ndarray | None]:
    """What the nudged phases pull toward, from the free phase ``free``: the voltages of
    the target sources, and for the cross-entropy the current per unit beta instead
    (``None`` otherwise). The squared error pulls every output node toward ``target``, the
    squared hinge only those on the wrong side of it (:func:`~.ep.hinge_targets`)."""
    if training.loss == "cross-entropy":
        return target, cross_entropy_pull(chip, free, y, training.temperature)
    if training.loss == "hinge":
        return hinge_targets(chip, free.output, target), None
    return target, None


def free_loss(
    chip: Chip, free: Any, y: np.ndarray, target: np.ndarray, training: Training
) -> np.ndarray:
    """The training loss of each sample in the free phase: V^2 for the squared error and
    the squared hinge, dimensionless for the cross-entropy."""
    if training.loss == "cross-entropy":
        return cross_entropy(chip, free, y, training.temperature)
    if training.loss == "hinge":
        return hinge_loss(chip, free.output, target)
    return loss(chip, free, target)


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


@dataclass
class EpochSetup:
    """What an epoch draws from the seed: the batch order, the stream of the rest of the
    epoch's draws, the stream of the devices' programming draws, and the learning rates
    with the decay and ``u^2`` of this epoch."""

    x: np.ndarray
    y: np.ndarray
    rng: np.random.Generator
    pulse_rng: np.random.Generator
    rates: list[float]
    order: np.ndarray


def epoch_setup(chip: Any, x: Any, y: Any, training: Training, epoch: int) -> EpochSetup:
    """Check the epoch's data, augment it (``training.augment``) and draw its order; shared
    by every chip family."""
    x = chip.check_inputs(x)
    y = check_labels(chip, y)
    x = augment_epoch(x, training.augment, chip.n_inputs, chip.seed, epoch)
    rng = np.random.default_rng([chip.seed, 1, epoch])
    pulse_rng = np.random.default_rng([chip.seed, 1, epoch, 1])
    scale = training.decay ** (epoch - 1) * training.conductance_unit**2
    rates = [rate * scale for rate in training.rates(len(chip.crossbars))]
    return EpochSetup(x, y, rng, pulse_rng, rates, rng.permutation(len(x)))


def train_epoch(
    chip: Chip,
    x: np.ndarray,
    y: np.ndarray,
    training: Training,
    epoch: int,
    *,
    dtype: Any = np.float64,
    progress: Callable[[int, float], None] | None = None,
) -> EpochReport:
    """One epoch of EP over ``(x, y)``; ``epoch`` counts from 1 and sets the learning-rate
    decay and the random streams. ``progress(n, running_error)`` after each mini-batch.
    A leaky chip trains by its own rules (:mod:`neuroemu.learning.leaky`)."""
    from ..engine.settle import _blas_controller
    from ..models.nonideal import reading

    # Every settle of training reads the arrays (read noise) from a stream of its own. BLAS
    # keeps to one thread: a mini-batch's products are small, the device updates run on
    # Numba's threads, and two pools of threads busy-waiting on the same cores slow each
    # other down (sixfold, measured on this 2-core machine).
    blas = _blas_controller().limit(limits=1, user_api="blas")
    with blas, reading(chip, np.random.default_rng([chip.seed, 1, epoch, 2])):
        if chip.family == "leaky":
            from . import leaky

            leaky_chip: Any = chip
            return leaky.train_epoch(
                leaky_chip, x, y, training, epoch, dtype=dtype, progress=progress
            )
        return _train_resistive(chip, x, y, training, epoch, dtype, progress)


def _train_resistive(
    chip: Chip,
    x: np.ndarray,
    y: np.ndarray,
    training: Training,
    epoch: int,
    dtype: Any,
    progress: Callable[[int, float], None] | None,
) -> EpochReport:
    setup = epoch_setup(chip, x, y, training, epoch)
    x, y, rng, pulse_rng, rates, order = (
        setup.x,
        setup.y,
        setup.rng,
        setup.pulse_rng,
        setup.rates,
        setup.order,
    )
    drop_rng = np.random.default_rng([chip.seed, 1, epoch, 4])
    wrong = 0
    seen = 0
    total_loss = 0.0
    sweeps = 0
    phases = 0
    start = time.perf_counter()
    for lo in range(0, len(x), training.batch_size):
        index = order[lo : lo + training.batch_size]
        xb, yb = x[index], y[index]
        target = one_hot_targets(chip, yb, training.target_voltage)
        chip.next_read()  # the phases of one step see one read of the arrays
        grounded = dropout_masks(chip, training.dropout, len(xb), drop_rng)  # for every phase
        free = chip.settle(xb, dtype=dtype, grounded=grounded)
        beta = training.beta
        if training.random_sign and rng.random() < 0.5:
            beta = -beta
        pulled, pull = nudge_for_loss(chip, free, yb, target, training)
        plus = _nudged(chip, xb, free, beta, pulled, pull, dtype, grounded)
        if training.algorithm == "ep-centred":
            first = _nudged(chip, xb, free, -beta, pulled, pull, dtype, grounded)
            phases += 3
            sweeps += free.sweeps + plus.sweeps + first.sweeps
        else:
            first = free
            phases += 2
            sweeps += free.sweeps + plus.sweeps
        algorithm: Algorithm = training.algorithm  # type: ignore[assignment]
        apply_ep_update(chip, xb, first, plus, beta, algorithm, rates, pulse_rng, training.momentum)
        chip.apply_faults()  # stuck devices do not move
        chip.touch()
        wrong += int(np.sum(free.prediction != yb))
        seen += len(yb)
        total_loss += float(free_loss(chip, free, yb, target, training).sum())
        if progress is not None:
            progress(len(yb), wrong / seen)
    return EpochReport(
        epoch=epoch,
        train_error=wrong / max(seen, 1),
        train_loss=total_loss / max(seen, 1),
        mean_sweeps=sweeps / max(phases, 1),
        wall_time=time.perf_counter() - start,
    )
