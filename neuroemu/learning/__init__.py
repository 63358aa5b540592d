"""On-chip learning: each device changes its own conductance from its own voltage drops."""

from .ep import EPGradient, ep_gradient, mean_squared_drops, one_hot_targets

__all__ = ["EPGradient", "ep_gradient", "mean_squared_drops", "one_hot_targets"]
