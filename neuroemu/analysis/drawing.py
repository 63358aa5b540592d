"""What every figure shares: axis labels and scales of metrics, and writing the file.

Figures are built as :class:`matplotlib.figure.Figure` objects, without pyplot and without
selecting a backend: ``Figure.savefig`` picks the canvas the file's format needs.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import RunFileError
from ..files import atomic_path
from ..metrics import Metric
from ..units import display_scale

#: Resolution of written raster figures (dots per inch).
DPI = 120


def largest_magnitude(values: Any) -> float:
    """The largest finite ``|value|`` of ``values`` (0 without one)."""
    magnitudes = np.abs(np.asarray(values, dtype=float))
    magnitudes = magnitudes[np.isfinite(magnitudes)]
    return float(magnitudes.max()) if magnitudes.size else 0.0


def metric_scale(figure: Metric, values: Any) -> tuple[float, str]:
    """``(factor, axis label)`` that show ``values`` (SI, in ``figure.unit``) on an axis.

    A fraction shown in % is multiplied as :meth:`Metric.display` does (by 100) and labelled
    ``test error (%)``; a figure whose unit takes an SI prefix is shown in the prefix that
    suits its largest magnitude, ``static power (mW)``; a dimensionless one as it is,
    labelled without a unit."""
    if figure.percent:
        return figure.display(1.0), figure.axis_label()
    factor, unit = display_scale(largest_magnitude(values), figure.unit)
    return factor, dataclasses.replace(figure, unit=unit).axis_label()


def shared_label(figures: list[Metric]) -> str:
    """The label of an axis several figures of one unit share: ``test error, train error
    (%)``."""
    units = {(figure.percent, figure.unit) for figure in figures}
    if len(units) != 1:
        raise ValueError(f"figures in different units share an axis: {units}")
    joined = ", ".join(figure.label for figure in figures)
    return dataclasses.replace(figures[0], label=joined).axis_label()


def save(fig: Any, out: str) -> None:
    """Write ``fig`` to ``out`` (PNG, PDF or SVG by its suffix; PNG without one),
    atomically: under a temporary name beside it, renamed over ``out`` once whole, so
    ``out`` holds the old figure or the new one, never part of one. A one-line
    :class:`~neuroemu.errors.RunFileError` if it cannot be written."""
    target = Path(out)
    if not target.parent.is_dir():
        raise RunFileError(f"{out}: folder {target.parent} does not exist")
    if target.is_dir():
        raise RunFileError(f"{out}: a folder, not a figure file")
    # The temporary name has no suffix matplotlib knows: name the format.
    form = target.suffix[1:].lower() or "png"
    try:
        with atomic_path(target) as partial:
            fig.savefig(partial, dpi=DPI, format=form)
    except (OSError, ValueError) as exc:
        raise RunFileError(f"{out}: cannot write the figure ({exc})") from None
