"""Signed weights from positive conductances.

A leaky chip's synapse of conductance ``G`` carries the weight ``G - G_ref``: a reference
column of mid-range devices subtracts ``G_ref * V`` from every column current, so an array
of positive conductances realises weights of both signs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..spec.cards import ResistorCard


def reference(card: ResistorCard) -> float:
    """``G_ref`` (S) of an array of this card: the middle of its range."""
    return 0.5 * (card.g_min + card.g_max)
