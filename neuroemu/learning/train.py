"""Training a chip on-chip, one epoch at a time: mini-batches, each a step of the chip's
learning rule (:mod:`neuroemu.learning.registry`).

Every draw of an epoch comes from a stream of the chip's seed of its own
(:mod:`neuroemu.streams`): epoch ``e`` draws its mini-batch order and signs of beta from
``epoch``, the devices' programming draws from ``epoch_pulses``, its reads from
``epoch_reads``, its augmentation from ``epoch_augment`` and its dropout from
``epoch_dropout``. So a run resumed after epoch ``e`` continues exactly as an uninterrupted
one.

An epoch also reports what the device models made of its updates
(:attr:`~neuroemu.chip.base.BaseChip.update_counts`): the fractions of the devices asked to
move whose change rounded to no pulse and that were clipped at a bound. When more than
half of them rounded to no pulse on devices that round to the nearest pulse (the change is
lost, not taken with a probability nor kept in an accumulator), or more than half were
clipped, the epoch warns (:func:`check_updates`). It also reports the programming pulses
per device.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import failpoints
from ..engine.threads import one_blas_thread
from ..errors import NeuroemuWarning
from ..streams import stream
from ..units import format_quantity
from .augment import augment_epoch
from .registry import EpochDraws, Traced, rule_for

if TYPE_CHECKING:
    from ..chip.base import BaseChip
    from ..chip.state import UpdateCounts
    from ..spec.training import Training


@dataclass
class EpochReport:
    epoch: int  # 1-based
    train_error: float  # fraction wrong in the free phase, during the epoch
    train_loss: float  # mean loss in the free phase (its metric: the rule's loss_metric)
    mean_sweeps: float  # per phase
    wall_time: float  # s
    loss_metric: str = "train_loss_V2"
    updates: UpdateCounts | None = None  # what the device models made of the epoch's updates

    def figures(self) -> dict[str, float]:
        """The epoch's figures, named as in :mod:`neuroemu.metrics`."""
        figures = {
            "train_error": self.train_error,
            self.loss_metric: self.train_loss,
            "train_mean_sweeps": self.mean_sweeps,
            "train_wall_time_s": self.wall_time,
        }
        if self.updates is not None:
            figures["update_unmoved_fraction"] = self.updates.unmoved_fraction
            figures["update_clipped_fraction"] = self.updates.clipped_fraction
            if self.updates.pulses_per_device is not None:
                figures["update_pulses_per_device"] = self.updates.pulses_per_device
            if self.updates.refreshes_per_pair is not None:
                figures["update_refreshes_per_pair"] = self.updates.refreshes_per_pair
            if self.updates.programming_energy is not None:
                figures["update_programming_energy_J"] = self.updates.programming_energy
            if any(self.updates.reads) and self.updates.reads_per_device is not None:
                figures["update_reads_per_device"] = self.updates.reads_per_device
            if self.updates.read_energy is not None:
                figures["update_read_energy_J"] = self.updates.read_energy
        return figures


def epoch_rates(training: Training, n_arrays: int, epoch: int) -> list[float]:
    """The learning rate of each of ``n_arrays`` arrays in ``epoch`` (from 1; 0 counts as
    1), in S^-1 V^-2 units of the update ``dG = -rate dC/dG``: ``learning_rate * decay^(e-1)
    * u^2``, ``u`` the spec's ``conductance_unit``."""
    scale = training.decay ** max(epoch - 1, 0) * training.conductance_unit**2
    return [rate * scale for rate in training.rates(n_arrays)]


def train_epoch(
    chip: BaseChip,
    x: np.ndarray,
    y: np.ndarray,
    training: Training,
    epoch: int,
    *,
    dtype: Any = np.float64,
    progress: Callable[[int, float], None] | None = None,
) -> EpochReport:
    """One epoch of the chip's learning rule over ``(x, y)``; ``epoch`` counts from 1 and
    sets the learning-rate decay and the random streams. ``progress(n, running_error)``
    after each mini-batch."""
    rule = rule_for(chip, training)
    # Every settle of training reads the arrays (read noise) from a stream of its own. BLAS
    # keeps to one thread: a mini-batch's products are small, the device updates run on
    # Numba's threads, and two pools of threads busy-waiting on the same cores slow each
    # other down (sixfold, measured on this 2-core machine).
    with one_blas_thread():
        x = chip.check_inputs(x)
        y = chip.check_labels(y)
        if epoch == 1:
            check_first_update(chip, x, y, training)
    with one_blas_thread(), chip.reading(stream(chip.seed, "epoch_reads", epoch)):
        x = augment_epoch(x, training.augment, chip.n_inputs, chip.seed, epoch)
        draws = EpochDraws(
            epoch=epoch,
            rng=stream(chip.seed, "epoch", epoch),
            pulses=stream(chip.seed, "epoch_pulses", epoch),
            dropout=stream(chip.seed, "epoch_dropout", epoch),
            rates=epoch_rates(training, len(chip.crossbars), epoch),
            dtype=dtype,
        )
        order = draws.rng.permutation(len(x))
        chip.take_update_counts()  # the epoch's counts start here
        wrong = seen = sweeps = phases = 0
        total_loss = 0.0
        start = time.perf_counter()
        for lo in range(0, len(x), training.batch_size):
            index = order[lo : lo + training.batch_size]
            xb, yb = x[index], y[index]
            chip.next_read()  # the phases of one step see one read of the arrays
            step = rule.step(chip, xb, yb, draws)
            wrong += int(np.sum(step.free.prediction != yb))
            seen += len(yb)
            total_loss += step.loss
            sweeps += step.sweeps
            phases += step.phases
            if progress is not None:
                progress(len(yb), wrong / seen)
            failpoints.reach("train.batch")
    updates = chip.take_update_counts()
    check_updates(chip, updates, epoch, accumulated=training.accumulator_threshold is not None)
    return EpochReport(
        epoch=epoch,
        train_error=wrong / max(seen, 1),
        train_loss=total_loss / max(seen, 1),
        mean_sweeps=sweeps / max(phases, 1),
        wall_time=time.perf_counter() - start,
        loss_metric=rule.loss_metric,
        updates=updates,
    )


#: An epoch warns when more than this fraction of the devices asked to move rounded to no
#: pulse (rounding to the nearest) or were clipped at a bound.
BLOCKED_FRACTION = 0.5


def check_updates(
    chip: BaseChip, updates: UpdateCounts, epoch: int, accumulated: bool = False
) -> None:
    """Warn (:class:`~neuroemu.errors.NeuroemuWarning`, one line) when more than half the
    devices asked to move in ``epoch`` rounded to no pulse, counted over the arrays whose
    cards round to the nearest pulse (with ``rounding: stochastic`` a small change is taken
    with a probability, so nothing is lost on average; when ``accumulated``, an accumulator
    scheme, it waits in the device's accumulator, so none is counted), or more than half
    were clipped at a bound; the message names the fraction, the arrays worst hit and what
    to change."""
    cards = dict(zip(updates.names, (card for _, card in chip.device_arrays()), strict=True))
    nearest = [
        name for name, card in cards.items() if card.rounding != "stochastic" and not accumulated
    ]
    asked = sum(n for name, n in zip(cards, updates.asked, strict=True) if name in nearest)
    unmoved = sum(n for name, n in zip(cards, updates.unmoved, strict=True) if name in nearest)
    blocked = [
        ("unmoved", unmoved / max(asked, 1), nearest, "rounded to no pulse", ROUNDED_ADVICE),
        ("clipped", updates.clipped_fraction, list(cards), "were clipped at a bound", CLIP_ADVICE),
    ]
    for kind, fraction, names, what, advice in blocked:
        if fraction <= BLOCKED_FRACTION:
            continue
        worst = _worst(updates.fractions(kind), names)
        hit = ", ".join(f"{name} {percent(share)}" for name, share in worst)
        devices = sorted({cards[name].name for name, _ in worst})
        warnings.warn(
            f"epoch {epoch}: {percent(fraction)} of the device updates asked {what} "
            f"(worst: {hit}; device{'s' * (len(devices) > 1)} {', '.join(devices)}): {advice}",
            NeuroemuWarning,
            stacklevel=3,
        )


ROUNDED_ADVICE = (
    "learning stalls; set the card's rounding: stochastic, or training.scheme: "
    "nearest-carry, or take a larger learning rate"
)
CLIP_ADVICE = "take a smaller learning rate, or widen the card's range (g_min, g_max)"


def percent(fraction: float) -> str:
    """``fraction`` in % to one decimal, or to as many as it takes not to read 0.0 % or
    100.0 % when it is neither (99.97 % of updates lost is not all of them)."""
    for decimals in range(1, 5):
        text = f"{100 * fraction:.{decimals}f}"
        if text not in (f"{0:.{decimals}f}", f"{100:.{decimals}f}") or fraction in (0, 1):
            break
    return f"{text} %"


def _worst(fractions: dict[str, float], names: list[str], most: int = 2) -> list[tuple[str, float]]:
    """The ``most`` arrays of ``names`` with the largest fractions, largest first."""
    ranked = [(name, fractions[name]) for name in names if name in fractions]
    return sorted(ranked, key=lambda item: -item[1])[:most]


def check_first_update(chip: BaseChip, x: np.ndarray, y: np.ndarray, training: Training) -> None:
    """Warn (:class:`~neuroemu.errors.NeuroemuWarning`) of every device array whose first
    update would move a device by more than its whole range ``g_max - g_min``: the change
    the rule's estimate asks on the first mini-batch's worth of samples, at epoch 1's
    learning rates (as :func:`trace_phases` computes it, with the arrays read exactly; no
    random stream is drawn from and nothing is changed)."""
    count = min(len(x), training.batch_size)
    if count == 0:
        return
    rates = epoch_rates(training, len(chip.crossbars), 1)
    traced = rule_for(chip, training).trace(chip, x[:count], y[:count], rates)
    for index, crossbar in enumerate(chip.crossbars):
        change = traced.update.get(crossbar.name)
        if change is None or not np.size(change):
            continue
        largest = float(np.max(np.abs(change)))
        card = crossbar.device
        span = card.g_max - card.g_min
        if not largest <= span:
            warnings.warn(
                f"training.learning_rate: the first update of {crossbar.name} would move a "
                f"device by {format_quantity(largest, 'S')}, {largest / span:.3g} times its "
                f"range ({format_quantity(span, 'S')}, device {card.name}; learning rate "
                f"{training.rates(len(chip.crossbars))[index]:g}, conductance_unit "
                f"{format_quantity(training.conductance_unit, 'S')}); take a smaller rate",
                NeuroemuWarning,
                stacklevel=3,
            )


def trace_phases(
    chip: BaseChip, x: np.ndarray, y: np.ndarray, training: Training, epoch: int
) -> Traced:
    """Settle samples ``x`` free, then nudged as the chip's rule nudges in training,
    recording every sweep (time step), and the change (S) their estimate would make at
    ``epoch`` (through no device model, and not applied)."""
    rates = epoch_rates(training, len(chip.crossbars), epoch)
    return rule_for(chip, training).trace(chip, x, y, rates)
