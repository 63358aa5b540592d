"""Summaries and figures of run and sweep files, for ``neuroemu traces`` and ``neuroemu plot``.

``summary`` states what a run file holds; ``figures`` draws the figures of a run file
(:data:`PLOT_KINDS`); ``sweeps`` draws a sweep file's metric against its axes and states
what a sweep file holds. Figures are
:class:`matplotlib.figure.Figure` objects built without pyplot (``run_figure`` and
``sweep_figure`` return them unsaved); axis labels and units of metrics come from
:data:`neuroemu.metrics.METRICS`.
"""

from .figures import PLOT_KINDS, plot, run_figure
from .summary import summary_lines
from .sweeps import plot_sweep, sweep_figure, sweep_summary_lines

__all__ = [
    "PLOT_KINDS",
    "plot",
    "plot_sweep",
    "run_figure",
    "summary_lines",
    "sweep_figure",
    "sweep_summary_lines",
]
