"""The figure of a sweep file, for ``neuroemu plot SWEEP.h5 [--metric NAME]``.

The metric is looked up in :data:`neuroemu.metrics.METRICS`, which gives its axis label and
unit (fractions in %, other figures in the SI prefix that suits their values); the sweep's
axes are labelled with the units their values were written in.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import NeuroemuError, RunFileError
from ..io.sweepfile import DONE, FAILED, PENDING
from ..metrics import metric
from ..units import DURATIONS, display_scale, format_duration
from .drawing import metric_scale, save

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def plot_sweep(path: str, out: str, metric: str = "error") -> None:
    """Draw :func:`sweep_figure` of the sweep file at ``path`` to ``out`` (PNG, PDF or SVG
    by its suffix)."""
    save(sweep_figure(path, metric), out)


def sweep_figure(path: str, name: str = "error") -> Figure:
    """Test error (or the metric called ``name``) against the sweep's axes: the seed mean,
    with the seeds' spread (one sample standard deviation) as error bars.

    Numeric axes are drawn at their values, sorted, on a log scale when the values span a
    decade or more or were drawn log-uniformly (a symmetric log scale, linear up to the
    smallest positive value, when they also hold 0), in a readable unit (``uS``); text axes as
    categories in file order. A metric with a ``time`` dimension (``infer_at``) is drawn
    against the time after programming (log scale, ticks in s, min, h, d, y), one line per
    value of the first axis (a single time is drawn like a metric without one). Without
    time: one axis is a line, two are one line per value of the second, more are a heat
    map of the seed mean over the first two (the others at their first value).

    Points not done (pending or failed) are left out of the means: a value with no seed
    done is marked ``0 done`` (a heat map cell: ``0 done``), one with some seeds done is
    marked ``k of n seeds``, and the title counts the points done. One seed done has no
    spread (no band, no bar).

    ``name`` must be a metric of :data:`neuroemu.metrics.METRICS` the file holds; otherwise
    a one-line :class:`~neuroemu.errors.RunFileError` names it and the metrics the file
    holds.
    """
    from matplotlib.figure import Figure

    from ..io.sweepfile import open_sweep

    ds = open_sweep(path)
    known = ", ".join(var for var in ds.data_vars if var not in ("status", "message"))
    try:
        figure = metric(name)
    except NeuroemuError:
        raise RunFileError(f"{path}: {name!r} is not a metric (this sweep has: {known})") from None
    if name not in ds:
        raise RunFileError(f"{path}: no {name} in this sweep (it has: {known})")
    data = ds[name]
    note = ""
    if "time" in data.dims and data.sizes["time"] == 1:
        note = f" at {format_duration(float(data['time'][0]))} after programming"
        data = data.isel(time=0)
    log_axes = _log_sampled_axes(ds.attrs.get("sweep_yaml", ""))
    axes = [d for d in data.dims if d not in ("seed", "time")]
    for dim in axes:
        if np.issubdtype(data[dim].dtype, np.number):
            data = data.sortby(dim)
    if note:
        figure = dataclasses.replace(
            figure, label=figure.label.replace(" after programming", "") + note
        )
    scale, label = metric_scale(figure, data.values)
    fig = Figure(figsize=(6.4, 4.4))
    ax = fig.subplots()
    if "time" in data.dims:
        time = data["time"].values
        _seed_lines(ax, time, _groups(data, axes), data, axes[:1], scale)
        _time_axis(ax, time)
        ax.set_ylabel(label)
        if axes:
            ax.legend(fontsize=8, title=_axis_name(axes[0]), title_fontsize=8)
        rest = axes[1:]
    elif len(axes) <= 2:
        x_dim = axes[0]
        positions = _positions(ax, data, x_dim, x_dim in log_axes)
        _seed_lines(ax, positions, _groups(data, axes[1:]), data, axes[1:], scale)
        _cover(ax, positions)
        ax.set_ylabel(label)
        if len(axes) == 2:
            ax.legend(fontsize=8, title=_axis_name(axes[1]), title_fontsize=8)
        rest = []
    else:
        cut = data.isel({d: 0 for d in axes[2:]})
        first = cut.mean("seed").transpose(axes[1], axes[0])
        done = cut.count("seed").transpose(axes[1], axes[0]).values
        image = ax.imshow(scale * first.values, origin="lower", aspect="auto", cmap="viridis")
        for which, dim in (("x", axes[0]), ("y", axes[1])):
            ticks = range(first.sizes[dim])
            labels = [_format_value(data, dim, v) for v in first[dim].values]
            (ax.set_xticks if which == "x" else ax.set_yticks)(ticks, labels)
            (ax.set_xlabel if which == "x" else ax.set_ylabel)(_axis_label(data, dim))
        shown = scale * first.values
        middle = np.nanmean([np.nanmin(shown), np.nanmax(shown)]) if np.isfinite(shown).any() else 0
        seeds = data.sizes["seed"]
        for (row, col), value in np.ndenumerate(shown):
            if np.isfinite(value):  # dark text on the bright half of viridis
                color = "k" if value > middle else "w"
                text = f"{value:.3g}"
                if done[row, col] < seeds:
                    text += f"\n({done[row, col]} of {seeds} seeds)"
                ax.annotate(text, (col, row), ha="center", va="center", fontsize=8, color=color)
            else:
                ax.annotate("0 done", (col, row), ha="center", va="center", fontsize=8, color="0.3")
        fig.colorbar(image, ax=ax, label=f"{label}, seed mean")
        rest = axes[2:]
    title = f"sweep {Path(path).stem}"
    counts = point_counts(ds)
    if counts[DONE] < counts["total"]:
        title += f", {counts[DONE]} of {counts['total']} points done"
        if counts[FAILED]:
            title += f" ({counts[FAILED]} failed)"
    if len(axes) <= 2 or "time" in data.dims:
        title += " (seed mean, bars: +/- 1 sample std over seeds)"
    if rest:
        fixed = ", ".join(_legend(data, d, data[d].values[0]) for d in rest)
        title += f"\nat {fixed}"
    ax.set_title(title, fontsize=9)
    if len(axes) <= 2 or "time" in data.dims:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def _seed_lines(
    ax: Any, x: np.ndarray, groups: list[tuple[Any, Any]], data: Any, dims: list[str], scale: float
) -> None:
    """One line per group (a value of ``dims[0]``): the seed mean, with the seeds' standard
    deviation as error bars, and for a single line also as a band between them. Points with
    fewer seeds done than the sweep has are marked (``0 done`` at the foot of the axes, ``k
    of n seeds`` beside the point), or, when a whole line has the same count (the times of
    one point), once in its legend entry; one seed has no spread."""
    single = len(groups) == 1
    seeds = data.sizes["seed"]
    for number, (value, part) in enumerate(groups):
        done = part.count("seed").values
        mean = scale * part.mean("seed").values
        spread = np.where(done >= 2, scale * part.std("seed", ddof=1).values, np.nan)
        legend = None if value is None else _legend(data, dims[0], value, False)
        uniform = legend is not None and bool(np.all(done == done.flat[0]))
        if legend is not None and uniform and done.flat[0] < seeds:  # said once, in the legend
            count = int(done.flat[0])
            legend += " (0 done)" if count == 0 else f" ({count} of {seeds} seeds)"
        drawn = ax.errorbar(x, mean, yerr=spread, fmt="o-", capsize=3, label=legend)
        color = drawn.lines[0].get_color()
        if single:
            ax.fill_between(x, mean - spread, mean + spread, alpha=0.15, color=color)
        for position, count, y in zip(x, done, mean, strict=True):
            if uniform:
                break
            if count == 0:
                ax.annotate(
                    "0 done",
                    (position, 0.02 + 0.05 * number),
                    xycoords=("data", "axes fraction"),
                    ha="center",
                    fontsize=7,
                    color=color,
                )
            elif count < seeds:
                ax.annotate(
                    f"{count} of {seeds} seeds",
                    (position, y),
                    xytext=(4, 4),
                    textcoords="offset points",
                    fontsize=7,
                    color=color,
                )


def _cover(ax: Any, positions: np.ndarray) -> None:
    """Widen the x axis to every value of the sweep, drawn or not (a value no seed has
    finished has no point to draw, only its ``0 done`` mark)."""
    low, high = float(np.min(positions)), float(np.max(positions))
    if ax.get_xscale() == "log":
        left, right = low / 1.25, high * 1.25
    elif ax.get_xscale() == "symlog":  # 0 and positive values spanning decades
        left, right = -0.3 * float(np.min(positions[positions > 0])), high * 1.25
    else:
        pad = 0.05 * (high - low) if high > low else 0.5
        left, right = low - pad, high + pad
    now = ax.get_xlim()
    ax.set_xlim(min(left, now[0]), max(right, now[1]))


def _groups(data: Any, dims: list[str]) -> list[tuple[Any, Any]]:
    """``(value, part)`` for each value of the first of ``dims`` (the others at their first
    value), or ``[(None, data)]`` without one."""
    if not dims:
        return [(None, data)]
    part = data.isel({d: 0 for d in dims[1:]})
    return [(v, part.sel({dims[0]: v})) for v in data[dims[0]].values]


def _unit_scale(data: Any, dim: str) -> tuple[float, str]:
    """``(factor, unit)`` that shows a numeric coordinate in a readable prefix (``uS``);
    ``(1.0, "")`` for a coordinate without a unit."""
    unit = data[dim].attrs.get("units") or ""
    values = np.abs(np.asarray(data[dim].values, dtype=float))
    values = values[values > 0]
    return display_scale(float(values.max()) if values.size else 0.0, "" if unit == "1" else unit)


def _axis_name(dim: str) -> str:
    """An axis's key path as a reader names it: its last key, then where it sits
    (``stuck_at_min (layers[0].device)``); a path of one key as it is."""
    head, _, last = dim.rpartition(".")
    return f"{last} ({head})" if head else dim


def _axis_label(data: Any, dim: str) -> str:
    """The label of axis ``dim``: its last key with its unit and where it sits,
    ``stuck_at_min (fraction, layers[0].device)``, ``sigma (uS,
    layers[0].device.programming_noise)``, ``learning_rate (training)``."""
    _, unit = _unit_scale(data, dim) if _numeric(data, dim) else (1.0, "")
    unit = unit or _dimensionless_unit(dim)
    head, _, last = dim.rpartition(".")
    inside = ", ".join(part for part in (unit, head) if part)
    return f"{last} ({inside})" if inside else last


def _dimensionless_unit(dim: str) -> str:
    """``fraction`` for an axis whose spec field is a fraction (its description says so:
    ``stuck_at_min``, ``stuck_at_max``), else ``""``."""
    field = _spec_field(dim)
    description = (field.description or "") if field is not None else ""
    return "fraction" if description.startswith("fraction") else ""


def _spec_field(dim: str) -> Any:
    """The pydantic field a key path of a chip spec names (``layers[0].device.n_levels``:
    the device card's ``n_levels``), on a resistive or a leaky chip; ``None`` if neither
    has it."""
    import typing

    from pydantic import BaseModel

    from ..spec.leaky import LeakyChipSpec
    from ..spec.resistive import ChipSpec
    from ..spec.sweep import split_path

    def models(annotation: Any) -> list[type[BaseModel]]:
        """The spec models inside an annotation (``X | None``, ``tuple[X, ...]``)."""
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return [annotation]
        return [m for arg in typing.get_args(annotation) for m in models(arg)]

    try:
        parts = split_path(dim)
    except ValueError:
        return None
    for root in (ChipSpec, LeakyChipSpec):
        current: list[type[BaseModel]] = [root]
        field = None
        for part in parts:
            if isinstance(part, int):  # an item of a list: the same models
                continue
            found = [m.model_fields[part] for m in current if part in m.model_fields]
            if not found:
                field = None
                break
            field = found[0]
            current = models(field.annotation)
        if field is not None:
            return field
    return None


def _format_value(data: Any, dim: str, value: Any) -> str:
    if not _numeric(data, dim):
        return str(value)
    factor, _ = _unit_scale(data, dim)
    return f"{float(value) * factor:.3g}"


def _legend(data: Any, dim: str, value: Any, named: bool = True) -> str:
    """``dim = value unit``, or only ``value unit`` under a legend titled with ``dim``."""
    unit = _unit_scale(data, dim)[1] if _numeric(data, dim) else ""
    text = _format_value(data, dim, value) + (f" {unit}" if unit else "")
    return f"{_axis_name(dim)} = {text}" if named else text


def _numeric(data: Any, dim: str) -> bool:
    return bool(np.issubdtype(data[dim].dtype, np.number))


def _positions(ax: Any, data: Any, dim: str, log_sampled: bool) -> np.ndarray:
    """Set the x axis for coordinate ``dim``; return where its values sit on it."""
    from matplotlib.ticker import (
        FixedLocator,
        FuncFormatter,
        LogLocator,
        NullFormatter,
        NullLocator,
    )

    ax.set_xlabel(_axis_label(data, dim))
    values = data[dim].values
    if not _numeric(data, dim):
        categories = np.arange(len(values), dtype=float)
        ax.set_xticks(categories, [str(v) for v in values])
        return categories
    factor, _ = _unit_scale(data, dim)
    positions = np.asarray(values, dtype=float) * factor
    positive = positions[positions > 0]
    spans_decades = positive.size >= 2 and positive.max() >= 10 * positive.min()
    if log_sampled or (spans_decades and positive.size == positions.size):
        ax.set_xscale("log")
    elif spans_decades and np.all(positions >= 0):
        # 0 and values spanning decades (0 Ohm, then 0.03 .. 3 Ohm): linear up to the
        # smallest positive value, logarithmic beyond.
        ax.set_xscale("symlog", linthresh=float(positive.min()), linscale=0.5)
    random = log_sampled or not _grid_like(positions)
    if not random and len(positions) <= 10:  # a grid: a tick at each value
        ax.xaxis.set_major_locator(FixedLocator(positions.tolist()))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_locator(NullLocator())
    elif ax.get_xscale() in ("log", "symlog"):  # labels at 1, 2 and 5 of each decade
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    return positions


def _grid_like(values: np.ndarray) -> bool:
    """Whether values look written by hand (few significant digits), not drawn at random."""
    return all(abs(float(f"{v:.6g}") - v) <= 1e-9 * abs(v) for v in values)


def _log_sampled_axes(sweep_yaml: str) -> set[str]:
    """Paths of the axes a sweep spec draws log-uniformly (``random: {log: true}``)."""
    import yaml

    try:
        spec = yaml.safe_load(sweep_yaml) or {}
        return {
            axis["path"]
            for axis in spec.get("axes", [])
            if isinstance(axis.get("random"), dict) and axis["random"].get("log")
        }
    except (yaml.YAMLError, AttributeError, TypeError, KeyError):
        return set()


#: Ticks of a time-after-programming axis (s) and their labels.
_TIME_TICKS = {
    seconds: format_duration(seconds)
    for seconds in (
        DURATIONS["s"],
        10 * DURATIONS["s"],
        DURATIONS["min"],
        10 * DURATIONS["min"],
        DURATIONS["h"],
        DURATIONS["d"],
        DURATIONS["y"],
        10 * DURATIONS["y"],
        100 * DURATIONS["y"],
    )
}
_TIME_TICKS[7 * DURATIONS["d"]] = "1 week"
_TIME_TICKS[30.4375 * DURATIONS["d"]] = "1 month"


def _time_axis(ax: Any, time: np.ndarray) -> None:
    """Log time axis with ticks at round durations within the data, labelled in words."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    ax.set_xscale("log")
    low, high = float(np.min(time)), float(np.max(time))
    ticks = [t for t in _TIME_TICKS if low / 1.5 <= t <= high * 1.5]
    if len(ticks) > 7:  # keep the decades' ends and the round units readable
        ticks = [
            t
            for t in ticks
            if _TIME_TICKS[t] in ("1 s", "1 min", "1 h", "1 d", "1 y", "10 y", "100 y")
        ]
    ticks += [float(t) for t in time if not any(abs(np.log(t / k)) < 0.05 for k in ticks)]
    ax.xaxis.set_major_locator(FixedLocator(sorted(ticks)))
    ax.xaxis.set_major_formatter(
        FuncFormatter(lambda v, _: _TIME_TICKS.get(v) or format_duration(v))
    )
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlim(low / 2, high * 2)
    ax.set_xlabel("time after programming")


def point_status(ds: Any) -> Any:
    """Each point's status as whole numbers, ``0`` pending, ``1`` done, ``2`` failed.

    :func:`~neuroemu.io.sweepfile.open_sweep` keeps them whole; a data set opened with
    plain ``xarray.open_dataset`` reads the fill value, ``0`` (pending), as NaN, which
    this turns back into ``0``."""
    return ds["status"].fillna(PENDING).astype(np.int8)


def point_counts(ds: Any) -> dict[Any, int]:
    """How many points a sweep file holds (``"total"``) and how many are pending, done and
    failed (keys :data:`~neuroemu.io.sweepfile.PENDING`, ``DONE``, ``FAILED``)."""
    status = point_status(ds).values
    counts: dict[Any, int] = {"total": int(status.size)}
    for state in (PENDING, DONE, FAILED):
        counts[state] = int((status == state).sum())
    return counts


#: At most this many combinations of axis values are listed by :func:`sweep_summary_lines`.
SUMMARY_ROWS = 24


def sweep_summary_lines(path: str) -> list[tuple[str, str]]:
    """What a sweep file holds, as (key, text) pairs, for ``neuroemu traces SWEEP.h5``:
    the sweep, its axes, how many points are done, pending and failed, the test error of
    each combination of axis values (seed mean over the seeds done, ``0 done`` where none
    is) and the first failures' messages."""
    import yaml

    from ..io.sweepfile import open_sweep

    ds = open_sweep(path)
    file = Path(path)
    try:
        spec = yaml.safe_load(ds.attrs.get("sweep_yaml", "")) or {}
    except yaml.YAMLError:
        spec = {}
    if not isinstance(spec, dict):
        spec = {}
    status = point_status(ds)
    axes = [d for d in status.dims if d != "seed"]
    runs = [f"chip {spec.get('chip', '?')}", spec.get("mode", "infer")]
    if spec.get("epochs") is not None:
        runs.append(f"{spec['epochs']} epochs")
    runs.append(spec.get("dataset") or "the chip's data set")
    if spec.get("limit") is not None:
        runs.append(f"limit {spec['limit']}")
    if "time" in ds.dims:
        times = ", ".join(format_duration(float(t)) for t in ds["time"].values)
        runs.append(f"after programming at {times}")
    counts = point_counts(ds)
    lines = [
        ("file", f"{file} ({file.stat().st_size / 1e6:.2f} MB)"),
        ("sweep", f"{spec.get('name', file.stem)}: {', '.join(runs)}"),
    ]
    for dim in [*axes, "seed"]:
        values = ", ".join(_format_value(ds, dim, v) for v in ds[dim].values)
        unit = _unit_scale(ds, dim)[1] if _numeric(ds, dim) and dim != "seed" else ""
        lines.append(("axis", f"{dim}: {values}" + (f" ({unit})" if unit else "")))
    lines.append(
        (
            "points",
            f"{counts['total']}: {counts[DONE]} done, {counts[PENDING]} pending, "
            f"{counts[FAILED]} failed",
        )
    )
    error = metric("error")
    seeds = ds.sizes["seed"]
    combos = list(np.ndindex(*[ds.sizes[d] for d in axes]))
    for n, combo in enumerate(combos[:SUMMARY_ROWS]):
        where = dict(zip(axes, combo, strict=True))
        part, state = ds["error"].isel(where), status.isel(where).values
        done, failed = int((state == DONE).sum()), int((state == FAILED).sum())
        at = ", ".join(_legend(ds, d, ds[d].values[i]) for d, i in where.items())
        if done:
            text = f"{error.display(float(part.mean('seed'))):.2f} % ({done} of {seeds} seeds)"
        else:
            text = "0 done"
        if failed:
            text += f", {failed} failed"
        lines.append((error.label if n == 0 else "", f"{at}: {text}"))
    if len(combos) > SUMMARY_ROWS:
        lines.append(("", f"... {len(combos) - SUMMARY_ROWS} more (neuroemu plot draws them all)"))
    failures = [
        (index, str(ds["message"].values[index]))
        for index in zip(*np.nonzero(status.values == FAILED), strict=True)
    ]
    for index, message in failures[:3]:
        at = ", ".join(
            _legend(ds, d, ds[d].values[i]) for d, i in zip(status.dims, index, strict=True)
        )
        lines.append(("failed", f"{at}: {message}"))
    if len(failures) > 3:
        lines.append(("", f"... {len(failures) - 3} more failed points"))
    return lines
