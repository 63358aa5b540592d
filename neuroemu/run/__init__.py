"""Running chips: :func:`simulate`, the one orchestrator, and the inference passes it runs."""

from .evaluate import InferenceReport, evaluate, infer_at
from .progress import Event, Listener
from .simulate import simulate

__all__ = ["Event", "InferenceReport", "Listener", "evaluate", "infer_at", "simulate"]
