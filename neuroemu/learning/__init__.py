"""On-chip learning: each device changes its own conductance from its own voltage drops.

The rules of every family register themselves here (:mod:`.registry`): EP on resistive
chips (:mod:`.ep`), EP and its variants on leaky chips (:mod:`.leaky`).
"""

from . import ep, leaky
from .ep import EPGradient, ep_gradient, mean_squared_drops
from .registry import RULES, Rule, rule_for
from .train import EpochReport, trace_phases, train_epoch

__all__ = [
    "RULES",
    "EPGradient",
    "EpochReport",
    "Rule",
    "ep",
    "ep_gradient",
    "leaky",
    "mean_squared_drops",
    "rule_for",
    "trace_phases",
    "train_epoch",
]
