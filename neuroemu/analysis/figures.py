"""Summaries and figures of run files, for ``neuroemu traces`` and ``neuroemu plot``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import RunFileError
from .units import format_quantity

if TYPE_CHECKING:
    from .io.runs import Run

PLOT_KINDS = ("learning-curve", "conductance-histogram", "power", "settle", "drift")


def summary_lines(run: Run) -> list[tuple[str, str]]:
    """What a run file holds, as (key, text) pairs."""
    meta, metrics = run.meta, run.metrics
    lines = [
        ("file", f"{run.path} ({run.path.stat().st_size / 1e6:.2f} MB)"),
        ("chip", f"{meta.get('chip_name')} (seed {meta.get('seed')})"),
        ("data set", f"{meta.get('dataset')} ({meta.get('dataset_source')})"),
        ("started", f"{meta.get('started')}, finished {meta.get('finished') or '-'}"),
        ("status", "complete" if meta.get("complete") else "incomplete (interrupted or running)"),
    ]
    if "error" in metrics:
        errors = metrics["error"].values
        best = int(np.nanargmin(errors))
        lines += [
            ("epochs", f"{run.epochs_done} trained (epoch 0 is the chip as programmed)"),
            (
                "test error",
                f"best {100 * errors[best]:.2f} % (epoch {int(metrics.epoch[best])}), "
                f"last {100 * errors[-1]:.2f} %",
            ),
        ]
    for key, label, unit in (
        ("mean_power_W", "power", "W"),
        ("energy_per_inference_J", "energy", "J"),
    ):
        if key in metrics:
            lines.append((label, f"{format_quantity(float(metrics[key][-1]), unit)} (last epoch)"))
    inside = [f"metrics ({len(metrics.data_vars)} per epoch)"]
    inside.append(f"conductance snapshots ({len(run.conductance.data_vars)} arrays)")
    if run.prediction is not None:
        inside.append(f"predictions of {run.prediction.sizes['sample']} test samples")
    if run.aging is not None:
        inside.append(f"test passes at {run.aging.sizes['time']} times after programming")
    if run.traces:
        samples = run.trace().sizes["sample"]
        inside.append(f"per-sweep traces of {samples} samples at epochs {run.traced_epochs}")
    else:
        inside.append("no per-sweep traces")
    lines.append(("inside", ", ".join(inside)))
    return lines


def plot(run: Run, kind: str, out: str) -> None:
    """Draw one kind of figure of a run to ``out`` (PNG, PDF or SVG by its suffix)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    metrics = run.metrics
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    title = f"{run.meta.get('chip_name')} on {run.meta.get('dataset')}"
    if kind == "learning-curve":
        _need(run, "error", kind)
        epoch = metrics["epoch"].values
        ax.plot(epoch, 100 * metrics["error"].values, "s-", label="test")
        if "train_error" in metrics:
            ax.plot(epoch, 100 * metrics["train_error"].values, "o-", label="train (free phase)")
        ax.set_xlabel("epoch")
        ax.set_ylabel("error (%)")
        ax.set_ylim(0, 100)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend()
    elif kind == "conductance-histogram":
        names = [n for n in run.conductance.data_vars if not n.startswith("bias:")]
        if not names or run.conductance.sizes.get("epoch", 0) == 0:
            raise RunFileError(f"{run.path}: holds no conductance snapshots to plot")
        for name in names:
            data = run.conductance[name]
            for index, label in ((0, "first"), (-1, "last")):
                values = data.isel(epoch=index).values.ravel() * 1e6
                epoch = int(data.epoch[index])
                ax.hist(values, bins=80, histtype="step", label=f"{name}, epoch {epoch} ({label})")
        ax.set_xlabel("conductance (uS)")
        ax.set_ylabel("devices")
        ax.set_yscale("log")
        ax.legend(fontsize=8)
    elif kind == "power":
        _need(run, "mean_power_W", kind)
        epoch = metrics["epoch"].values
        ax.plot(epoch, 1e3 * metrics["mean_power_W"].values, "o-", color="C3")
        ax.set_xlabel("epoch")
        ax.set_ylabel("mean static power per inference (mW)", color="C3")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if "energy_per_inference_J" in metrics:
            twin = ax.twinx()
            twin.plot(epoch, 1e12 * metrics["energy_per_inference_J"].values, "s--", color="C0")
            twin.set_ylabel("energy per inference (pJ, RC estimate)", color="C0")
    elif kind == "drift" and run.aging is not None:
        time = run.aging["time"].values
        ax.semilogx(time, 100 * run.aging["error"].values, "o-")
        ax.set_xlabel("time after programming (s)")
        ax.set_ylabel("test error (%)")
        for seconds, label in ((3600, "1 h"), (86400, "1 d"), (3.15576e7, "1 y")):
            if time.min() <= seconds <= time.max():
                ax.axvline(seconds, color="0.7", lw=0.8)
                ax.annotate(label, (seconds, ax.get_ylim()[1]), va="top", ha="right", fontsize=8)
    elif kind == "settle" and run.traces:
        trace = run.trace()
        plt.close(fig)
        fig, (top, bottom) = plt.subplots(2, 1, figsize=(6.4, 6.4), sharex=True)
        phases = list(trace.phase.values)
        for phase in phases:
            for index, sample in enumerate(trace.sample.values):
                style = {"color": f"C{phases.index(phase)}", "alpha": 0.8}
                legend = f"{phase}" if index == 0 else None
                residual = trace["residual"].sel(phase=phase, sample=sample)
                top.semilogy(trace.sweep, residual, ".-", label=legend, **style)
                power = 1e3 * trace["power"].sel(phase=phase, sample=sample)
                bottom.plot(trace.sweep, power, ".-", label=legend, **style)
        # A leaky chip's trace is in time steps; its energy is read energy so far (J).
        leaky = "energy" in trace and trace["energy"].attrs.get("units") == "J"
        top.set_ylabel(
            "largest change of v per step (of v_r)" if leaky else "relative KCL residual"
        )
        top.legend(title=f"phase ({trace.sizes['sample']} traced samples)", fontsize=8)
        bottom.set_ylabel("read power of the arrays (mW)" if leaky else "static power (mW)")
        step = "time step" if leaky else "sweep"
        bottom.set_xlabel(f"{step} (state after it; 0 = start of the phase)")
        bottom.xaxis.set_major_locator(MaxNLocator(integer=True))
        bottom.grid(alpha=0.3)
        ax = top
        title = f"{title}: settling at epoch {trace.attrs['epoch']}"
    else:
        what = {"settle": "per-sweep traces", "drift": "inference results over time"}.get(kind)
        plt.close(fig)
        if what is None:
            raise RunFileError(f"--kind {kind}: unknown (known: {', '.join(PLOT_KINDS)})")
        raise RunFileError(f"{run.path}: holds no {what}, so it has no {kind} figure")
    ax.set_title(title)
    _save(fig, ax, out)


def _save(fig: Any, ax: Any, out: str, grid: bool = True) -> None:
    """Grid, tight layout, write ``out`` (one-line error if it cannot be), close."""
    import matplotlib.pyplot as plt

    if grid:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    try:
        fig.savefig(out, dpi=120)
    except (OSError, ValueError) as exc:
        raise RunFileError(f"{out}: cannot write the figure ({exc})") from None
    finally:
        plt.close(fig)


def _need(run: Run, key: str, kind: str) -> Any:
    if key not in run.metrics or run.metrics.sizes.get("epoch", 0) == 0:
        raise RunFileError(f"{run.path}: holds no {key} per epoch, so it has no {kind} figure")


def plot_sweep(path: str, out: str, metric: str = "error") -> None:
    """Test error (or ``metric``) against the sweep's axes, seed mean with the seeds' spread
    (one standard deviation) as a band.

    Numeric axes are drawn at their values, sorted, on a log scale when the values span a
    decade or more or were drawn log-uniformly, in a readable unit (``uS``); text axes as
    categories in file order. A metric with a ``time`` dimension (``infer_at``) is drawn
    against the time after programming (log scale, ticks in s, min, h, d, y), one line per
    value of the first axis (a single time is drawn like a metric without one). Without
    time: one axis is a line, two are one line per value of the second, more are a heat
    map of the seed mean over the first two (the others at their first value).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .io.sweepfile import open_sweep

    ds = open_sweep(path)
    if metric not in ds:
        known = ", ".join(name for name in ds.data_vars if name not in ("status", "message"))
        raise RunFileError(f"{path}: no {metric} in this sweep (it has: {known})")
    data = ds[metric]
    note = ""
    if "time" in data.dims and data.sizes["time"] == 1:
        note = f" at {_duration(float(data['time'][0]))} after programming"
        data = data.isel(time=0)
    log_axes = _log_sampled_axes(ds.attrs.get("sweep_yaml", ""))
    axes = [d for d in data.dims if d not in ("seed", "time")]
    for dim in axes:
        if np.issubdtype(data[dim].dtype, np.number):
            data = data.sortby(dim)
    names = {
        "error": "test error",
        "accuracy": "test accuracy",
        "train_error": "training error (free phase)",
        "error_after_programming": "test error after programming",
    }
    scale = 100.0 if metric in names else 1.0
    unit = "%" if scale == 100.0 else data.attrs.get("units", "")
    name = names.get(metric, metric)
    if unit not in ("%", "", "1"):  # mean_power_W in a readable prefix: mean power (mW)
        name = name.removesuffix(f"_{unit}").replace("_", " ")
        largest = float(np.nanmax(np.abs(data.values), initial=0.0))
        if largest > 0 and np.isfinite(largest):
            exponent = int(np.clip(np.floor(np.log10(largest) / 3) * 3, -15, 9))
            scale, unit = 10.0**-exponent, _PREFIXES[exponent] + unit
    if note:
        name = name.replace(" after programming", "") + note
    label = f"{name} ({unit})" if unit not in ("", "1") else name
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    bars = False
    if "time" in data.dims:
        time = data["time"].values
        bars = _seed_lines(ax, time, _groups(data, axes), data, axes[:1], scale)
        _time_axis(ax, time)
        ax.set_ylabel(label)
        if axes:
            ax.legend(fontsize=8, title=axes[0], title_fontsize=8)
        rest = axes[1:]
    elif len(axes) <= 2:
        x_dim = axes[0]
        positions = _positions(ax, data, x_dim, x_dim in log_axes)
        bars = _seed_lines(ax, positions, _groups(data, axes[1:]), data, axes[1:], scale)
        ax.set_ylabel(label)
        if len(axes) == 2:
            ax.legend(fontsize=8, title=axes[1], title_fontsize=8)
        rest = []
    else:
        first = data.isel({d: 0 for d in axes[2:]}).mean("seed").transpose(axes[1], axes[0])
        image = ax.imshow(scale * first.values, origin="lower", aspect="auto", cmap="viridis")
        for which, dim in (("x", axes[0]), ("y", axes[1])):
            ticks = range(first.sizes[dim])
            labels = [_format_value(data, dim, v) for v in first[dim].values]
            (ax.set_xticks if which == "x" else ax.set_yticks)(ticks, labels)
            (ax.set_xlabel if which == "x" else ax.set_ylabel)(_axis_label(data, dim))
        shown = scale * first.values
        middle = np.nanmean([np.nanmin(shown), np.nanmax(shown)]) if np.isfinite(shown).any() else 0
        for (row, col), value in np.ndenumerate(shown):
            if np.isfinite(value):  # dark text on the bright half of viridis
                color = "k" if value > middle else "w"
                ax.annotate(
                    f"{value:.3g}", (col, row), ha="center", va="center", fontsize=8, color=color
                )
        fig.colorbar(image, label=f"{label}, seed mean")
        rest = axes[2:]
    title = f"sweep {Path(path).stem}"
    if len(axes) <= 2 or "time" in data.dims:
        title += f" (seed mean, {'bars' if bars else 'band'}: +/- 1 std over seeds)"
    if rest:
        fixed = ", ".join(_legend(data, d, data[d].values[0]) for d in rest)
        title += f"\nat {fixed}"
    ax.set_title(title, fontsize=9)
    _save(fig, ax, out, grid=len(axes) <= 2 or "time" in data.dims)


def _seed_lines(
    ax: Any, x: np.ndarray, groups: list[tuple[Any, Any]], data: Any, dims: list[str], scale: float
) -> bool:
    """One line per group (a value of ``dims[0]``): the seed mean, with the seeds' standard
    deviation as a band for a single line, or as error bars for several (where bands would
    hide each other). Returns whether bars were drawn."""
    bars = len(groups) > 1
    for value, part in groups:
        mean = scale * part.mean("seed").values
        spread = scale * part.std("seed").values
        legend = None if value is None else _legend(data, dims[0], value, False)
        if bars:
            ax.errorbar(x, mean, yerr=spread, fmt="o-", capsize=3, label=legend)
        else:
            ax.plot(x, mean, "o-", label=legend)
            ax.fill_between(x, mean - spread, mean + spread, alpha=0.2)
    return bars


def _groups(data: Any, dims: list[str]) -> list[tuple[Any, Any]]:
    """``(value, part)`` for each value of the first of ``dims`` (the others at their first
    value), or ``[(None, data)]`` without one."""
    if not dims:
        return [(None, data)]
    part = data.isel({d: 0 for d in dims[1:]})
    return [(v, part.sel({dims[0]: v})) for v in data[dims[0]].values]


#: Readable SI prefixes for axis units.
_PREFIXES = {-15: "f", -12: "p", -9: "n", -6: "u", -3: "m", 0: "", 3: "k", 6: "M", 9: "G"}


def _unit_scale(data: Any, dim: str) -> tuple[float, str]:
    """``(factor, unit)`` that shows a numeric coordinate in a readable prefix (``uS``)."""
    unit = data[dim].attrs.get("units")
    values = np.abs(np.asarray(data[dim].values, dtype=float))
    values = values[values > 0]
    if not unit or unit == "1" or values.size == 0:
        return 1.0, unit if unit not in (None, "1") else ""
    exponent = int(np.clip(np.floor(np.log10(values.max()) / 3) * 3, -15, 9))
    return 10.0**-exponent, _PREFIXES[exponent] + unit


def _axis_label(data: Any, dim: str) -> str:
    _, unit = _unit_scale(data, dim) if _numeric(data, dim) else (1.0, "")
    return f"{dim} ({unit})" if unit else dim


def _format_value(data: Any, dim: str, value: Any) -> str:
    if not _numeric(data, dim):
        return str(value)
    factor, _ = _unit_scale(data, dim)
    return f"{float(value) * factor:.3g}"


def _legend(data: Any, dim: str, value: Any, named: bool = True) -> str:
    """``dim = value unit``, or only ``value unit`` under a legend titled with ``dim``."""
    unit = _unit_scale(data, dim)[1] if _numeric(data, dim) else ""
    text = _format_value(data, dim, value) + (f" {unit}" if unit else "")
    return f"{dim} = {text}" if named else text


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
    spans_decades = positive.size == positions.size and positive.max() >= 10 * positive.min()
    if log_sampled or spans_decades:
        ax.set_xscale("log")
    random = log_sampled or not _grid_like(positions)
    if not random and len(positions) <= 10:  # a grid: a tick at each value
        ax.xaxis.set_major_locator(FixedLocator(positions.tolist()))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_locator(NullLocator())
    elif ax.get_xscale() == "log":  # labels at 1, 2 and 5 of each decade
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
    1.0: "1 s",
    10.0: "10 s",
    60.0: "1 min",
    600.0: "10 min",
    3600.0: "1 h",
    86400.0: "1 d",
    7 * 86400.0: "1 week",
    30.4375 * 86400.0: "1 month",
    365.25 * 86400.0: "1 y",
    10 * 365.25 * 86400.0: "10 y",
    100 * 365.25 * 86400.0: "100 y",
}


def _duration(seconds: float) -> str:
    """A time (s) in the largest unit that shows it in a few digits: ``1 h``, ``2.5 d``."""
    for size, unit in ((365.25 * 86400, "y"), (86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds:.3g} s"


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
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: _TIME_TICKS.get(v) or _duration(v)))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlim(low / 2, high * 2)
    ax.set_xlabel("time after programming")
