"""Programming a change of conductance through the device model.

``apply_update(g, delta, card, rng)`` moves every conductance of ``g`` (S) by the requested
``delta`` (S) as the device allows: a device with ``n_levels`` takes whole programming
pulses of one level step ``(g_max - g_min) / (n_levels - 1)`` (the pulse count rounded to
the nearest integer, or stochastically: up with probability equal to the fractional part),
and every device stays within ``[g_min, g_max]``. Vectorised over the whole array.
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
    g: np.ndarray, delta: np.ndarray, card: ResistorCard, rng: np.random.Generator
) -> np.ndarray:
    """Add ``delta`` to ``g`` in place through the device model; return ``g``."""
    step = card.level_step
    if step is None:
        g += delta
    else:
        g += pulses(delta, step, card.rounding, rng) * step
    np.clip(g, card.g_min, card.g_max, out=g)
    return g
