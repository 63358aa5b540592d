"""Programming a change of conductance through the device model.

``apply_update(g, delta, card, rng)`` moves every conductance of ``g`` (S) by the requested
``delta`` (S) as the device allows: a device with ``n_levels`` takes whole programming
pulses of one level step ``(g_max - g_min) / (n_levels - 1)`` (the pulse count rounded to
the nearest integer, or stochastically: up with probability equal to the fractional part),
and every device stays within ``[g_min, g_max]``. A device with ``pulses`` counts pulses of
its nominal size at ``g_min`` (up) or ``g_max`` (down) and applies them with soft bounds,
up/down asymmetry and cycle-to-cycle noise (:class:`~neuroemu.spec.models.Pulses`; the
first-order effect of ``n`` pulses: ``n`` times one pulse at the present state).
Vectorised over the whole array.
"""

from __future__ import annotations

import numpy as np

from ..spec.models import ResistorCard


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
) -> np.ndarray:
    """Add ``delta`` to ``g`` in place through the device model; return ``g``. ``spread``
    scales each device's own step (device-to-device spread, see :func:`step_spread`)."""
    step = card.level_step
    if card.pulses is not None:
        g += pulse_change(g, delta, card, rng, spread=spread)
    elif step is None:
        g += delta
    else:
        scale = 1.0 if spread is None else spread
        g += pulses(delta, step, card.rounding, rng) * step * scale
    np.clip(g, card.g_min, card.g_max, out=g)
    return g


def pulse_change(
    g: np.ndarray,
    delta: np.ndarray,
    card: ResistorCard,
    rng: np.random.Generator,
    gauss: np.ndarray | None = None,
    spread: np.ndarray | None = None,
) -> np.ndarray:
    """The change (S) a pulse-programmed device makes when asked for ``delta``."""
    p = card.pulses
    assert p is not None
    span = card.g_max - card.g_min
    up = delta > 0
    nominal = np.where(up, p.up * span, p.down * span)
    count = pulses(np.abs(delta) / nominal, 1.0, card.rounding, rng)
    if p.soft_bounds:
        size = np.where(up, p.up * (card.g_max - g), p.down * (g - card.g_min))
    else:
        size = nominal
    if spread is not None:
        size = size * spread
    change = count * size
    if p.cycle_noise > 0:
        if gauss is None:
            gauss = rng.standard_normal(np.shape(g))
        change = change + size * p.cycle_noise * np.sqrt(count) * gauss
    return np.where(up, change, -change)


def step_spread(
    shape: tuple[int, ...], card: ResistorCard, rng: np.random.Generator
) -> np.ndarray | None:
    """Each device's step scale ``max(1 + step_spread * N(0, 1), 0)``, or ``None`` for a
    card without device-to-device spread."""
    if card.step_spread == 0:
        return None
    return np.maximum(1.0 + card.step_spread * rng.standard_normal(shape), 0.0)
