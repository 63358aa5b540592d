"""Programming a change of conductance through the device model.

``apply_update(g, delta, card, rng)`` moves every conductance of ``g`` (S) by the requested
``delta`` (S) as the device allows: a device with ``n_levels`` takes whole programming
pulses of one level step ``(g_max - g_min) / (n_levels - 1)`` (the pulse count rounded to
the nearest integer, or stochastically: up with probability equal to the fractional part),
and every device stays within its range. A device with ``pulses`` counts pulses of its
nominal size at ``g_min`` (up) or ``g_max`` (down) and applies them with soft bounds,
up/down asymmetry and cycle-to-cycle noise (:class:`~neuroemu.spec.cards.Pulses`; the
first-order effect of ``n`` pulses: ``n`` times one pulse at the present state).
Vectorised over the whole array.

Device-to-device spread (each drawn once per chip, from the chip's seed):

- of the step, ``s_ij = max(1 + step_spread z, 0)`` (:func:`step_spread`): every step or
  pulse of device ``(i, j)`` is ``s_ij`` times the nominal one;
- of the balance of up and down steps (:func:`up_down_tilt`), after IBM aihwkit's
  ``up_down_dtod``: device ``(i, j)`` has an imbalance ``b_ij = up_down_spread z`` and its
  up steps are ``max(1 + b_ij, 0)``, its down steps ``max(1 - b_ij, 0)`` times the nominal
  ones (times ``s_ij``);
- of the range (:func:`range_bounds`), after IBM aihwkit's ``w_min_dtod``/``w_max_dtod``:
  device ``(i, j)`` has its own bounds

      g_lo_ij = g_min max(1 + range_spread z1, 0)
      g_hi_ij = max(g_max max(1 + range_spread z2, 0), g_lo_ij)

  with ``z1, z2 ~ N(0, 1)`` independent per device (a device whose upper bound falls below
  its lower one has no range and sits at ``g_lo_ij``). The bounds are what clipping uses,
  and soft bounds saturate at them: an up pulse adds
  ``s up (g_max - g_min) (g_hi - G) / (g_hi - g_lo)``, a down pulse removes
  ``s down (g_max - g_min) (G - g_lo) / (g_hi - g_lo)`` (the primer's soft-bound pulse with
  the device's own bounds; with the nominal bounds this is ``s up (g_max - G)``). Pulse
  counts are planned on the nominal device: the programming circuit does not know a
  device's own range, step or imbalance. (A card's own ``up != down`` is known to it, and
  planned for: the nominal pulse of each direction.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ..spec.cards import ResistorCard


#: A device array's own bounds ``(g_lo, g_hi)`` (S, each shaped like the array), or
#: ``None`` for an array whose devices all have the card's range.
Bounds = tuple[np.ndarray, np.ndarray] | None


def pulses(delta: np.ndarray, step: float, rounding: str, rng: np.random.Generator) -> np.ndarray:
    """Whole pulse counts for the changes ``delta`` (S) with pulses of ``step`` (S)."""
    exact = delta / step
    if rounding == "stochastic":
        low = np.floor(exact)
        return low + (rng.random(exact.shape) < (exact - low))
    return np.rint(exact)


def apply_update(
    g: np.ndarray,
    delta: np.ndarray,
    card: ResistorCard,
    rng: np.random.Generator,
    spread: np.ndarray | None = None,
    bounds: Bounds = None,
    tilt: np.ndarray | None = None,
) -> np.ndarray:
    """Add ``delta`` to ``g`` in place through the device model (:func:`programmed`),
    clipped to each device's range; return ``g``."""
    g += programmed(g, delta, card, rng, spread, bounds, tilt)[0]
    low, high = (card.g_min, card.g_max) if bounds is None else bounds
    np.clip(g, low, high, out=g)
    return g


def programmed(
    g: np.ndarray,
    delta: np.ndarray,
    card: ResistorCard,
    rng: np.random.Generator,
    spread: np.ndarray | None = None,
    bounds: Bounds = None,
    tilt: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The change (S, not clipped) devices ``g`` make when asked for ``delta`` (S), and
    the whole pulses it takes per device: pulses of the card's ``pulses``
    (:func:`pulse_plan`), whole steps of its levels, or, for a continuous device, the
    change itself and no pulse. ``spread`` scales each device's own step
    (:func:`step_spread`), ``tilt`` its up and down steps apart (:func:`up_down_tilt`);
    ``bounds`` are each device's own range (:func:`range_bounds`), else the card's."""
    if card.pulses is not None:
        return pulse_plan(g, delta, card, rng, spread=spread, bounds=bounds, tilt=tilt)
    step = card.level_step
    if step is None:
        return delta.copy(), np.zeros(np.shape(delta))
    count = pulses(delta, step, card.rounding, rng)
    scale = (1.0 if spread is None else spread) * direction_scale(count > 0, tilt)
    return count * step * scale, count


def pulse_plan(
    g: np.ndarray,
    delta: np.ndarray,
    card: ResistorCard,
    rng: np.random.Generator,
    gauss: np.ndarray | None = None,
    spread: np.ndarray | None = None,
    bounds: Bounds = None,
    tilt: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The change (S) a pulse-programmed device makes when asked for ``delta``, and the
    whole pulses it takes, per device. A card whose depression is an abrupt RESET
    (``pulses.down: reset``) takes one down pulse as a return to its lower bound."""
    p = card.pulses
    assert p is not None
    span = card.g_max - card.g_min
    up = delta > 0
    nominal = np.where(up, p.up * span, p.down_fraction * span)
    count = pulses(np.abs(delta) / nominal, 1.0, card.rounding, rng)
    if not p.soft_bounds:
        size = nominal
    elif bounds is None:
        size = np.where(up, p.up * (card.g_max - g), p.down_fraction * (g - card.g_min))
    else:
        low, high = bounds
        width = high - low
        room = np.where(up, high - g, g - low)
        # A device without range (width 0) does not move.
        fraction = np.divide(room, width, out=np.zeros(np.shape(g)), where=width > 0)
        size = nominal * fraction
    if spread is not None:
        size = size * spread
    size = size * direction_scale(up, tilt)
    change = count * size
    if p.cycle_noise > 0:
        if gauss is None:
            gauss = rng.standard_normal(np.shape(g))
        change = change + size * p.cycle_noise * np.sqrt(count) * gauss
    return np.where(up, change, -change), count


def step_spread(
    shape: tuple[int, ...], card: ResistorCard, rng: np.random.Generator
) -> np.ndarray | None:
    """Each device's step scale ``max(1 + step_spread * N(0, 1), 0)``, or ``None`` for a
    card without device-to-device spread."""
    if card.step_spread == 0:
        return None
    return np.maximum(1.0 + card.step_spread * rng.standard_normal(shape), 0.0)


def up_down_tilt(
    shape: tuple[int, ...], card: ResistorCard, rng: np.random.Generator
) -> np.ndarray | None:
    """Each device's imbalance ``b = up_down_spread * N(0, 1)`` of its up and down steps
    (:func:`direction_scale`), or ``None`` for a card without it (then nothing is drawn)."""
    if card.up_down_spread == 0:
        return None
    return card.up_down_spread * rng.standard_normal(shape)


def direction_scale(up: np.ndarray, tilt: np.ndarray | None) -> Any:
    """The factor of each device's step in its direction: ``max(1 + b, 0)`` up,
    ``max(1 - b, 0)`` down, for imbalance ``tilt`` ``b``; 1 without one."""
    if tilt is None:
        return 1.0
    return np.maximum(np.where(up, 1.0 + tilt, 1.0 - tilt), 0.0)


def range_bounds(shape: tuple[int, ...], card: ResistorCard, rng: np.random.Generator) -> Bounds:
    """Each device's own range ``(g_lo, g_hi)`` (S; see the module docs), or ``None`` for a
    card without ``range_spread`` (then nothing is drawn)."""
    sigma = card.range_spread
    if sigma == 0:
        return None
    low = card.g_min * np.maximum(1.0 + sigma * rng.standard_normal(shape), 0.0)
    high = card.g_max * np.maximum(1.0 + sigma * rng.standard_normal(shape), 0.0)
    return low, np.maximum(high, low)


def fit_to_range(g: np.ndarray, card: ResistorCard, bounds: Bounds) -> np.ndarray:
    """Conductances programmed for the nominal device, as each device with its own range
    holds them: clipped to ``[g_lo, g_hi]`` and, with ``n_levels``, on the device's own
    levels ``g_lo + k * step`` (the nearest, then clipped: ``g_hi`` is a state too). In
    place; returns ``g``."""
    if bounds is None:
        return g
    low, high = bounds
    np.clip(g, low, high, out=g)
    step = card.level_step
    if step is not None:
        g[...] = low + np.rint((g - low) / step) * step
        np.clip(g, low, high, out=g)
    return g


def symmetry_point(
    shape: tuple[int, ...], card: ResistorCard, bounds: Bounds, tilt: np.ndarray | None
) -> np.ndarray:
    """Each device's symmetry point (S): where one up pulse and one down pulse cancel, so
    that a device pulsed up and down at random drifts to it. With soft bounds an up pulse
    adds ``u (g_hi - G)`` and a down pulse removes ``d (G - g_lo)`` (``u``, ``d`` the
    card's ``up`` and ``down`` times the device's own imbalance ``max(1 +- b, 0)``; its
    step scale multiplies both and cancels), so

        G* = (u g_hi + d g_lo) / (u + d)

    A device without soft bounds (levels, hard-bound pulses, continuous) has no symmetry
    point; its reference is the middle of its range (on a level, for a card with levels).
    """
    low, high = (card.g_min, card.g_max) if bounds is None else bounds
    low = np.broadcast_to(low, shape).astype(np.float64)
    high = np.broadcast_to(high, shape).astype(np.float64)
    p = card.pulses
    if p is not None and p.soft_bounds:
        u = p.up * direction_scale(np.ones(shape, dtype=bool), tilt)
        d = p.down_fraction * direction_scale(np.zeros(shape, dtype=bool), tilt)
        total = np.broadcast_to(u + d, shape)
        middle = 0.5 * (low + high)
        weighted = np.divide(u * high + d * low, total, out=middle.copy(), where=total > 0)
        return np.asarray(weighted, dtype=np.float64)
    step = card.level_step
    if step is None:
        return 0.5 * (low + high)
    return low + np.floor(0.5 * (high - low) / step) * step
