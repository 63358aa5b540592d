"""Figures of run files, for ``neuroemu plot RUN.h5 --kind KIND``.

Every axis that shows a metric is labelled, and scaled, from :data:`neuroemu.metrics.METRICS`
(fractions in %, other figures in the SI prefix that suits their values).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..errors import RunFileError
from ..metrics import metric
from ..units import DURATIONS, display_scale, format_duration
from .drawing import largest_magnitude, metric_scale, save, shared_label

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..io.runs import Run

PLOT_KINDS = ("learning-curve", "conductance-histogram", "power", "settle", "drift")

#: Times after programming (s) marked on the drift figure.
DRIFT_MARKS = (DURATIONS["h"], DURATIONS["d"], DURATIONS["y"])


def plot(run: Run, kind: str, out: str) -> None:
    """Draw one kind of figure of a run to ``out`` (PNG, PDF or SVG by its suffix)."""
    save(run_figure(run, kind), out)


def run_figure(run: Run, kind: str) -> Figure:
    """One kind of figure of a run (:data:`PLOT_KINDS`), laid out and ready to save.

    A kind the file holds no data for, and an unknown kind, are a one-line
    :class:`~neuroemu.errors.RunFileError`."""
    from matplotlib.figure import Figure

    title = f"{run.meta.get('chip_name')} on {run.meta.get('dataset')}"
    if kind == "settle" and run.traces:
        fig = Figure(figsize=(6.4, 6.4))
        title = _settle(fig, run, title)
    elif kind in ("learning-curve", "conductance-histogram", "power") or (
        kind == "drift" and run.aging is not None
    ):
        fig = Figure(figsize=(6.4, 4.2))
        ax = fig.subplots()
        {
            "learning-curve": _learning_curve,
            "conductance-histogram": _conductance_histogram,
            "power": _power,
            "drift": _drift,
        }[kind](ax, run)
        ax.grid(alpha=0.3)
    else:
        what = {"settle": "per-sweep traces", "drift": "inference results over time"}.get(kind)
        if what is None:
            raise RunFileError(f"--kind {kind}: unknown (known: {', '.join(PLOT_KINDS)})")
        raise RunFileError(f"{run.path}: holds no {what}, so it has no {kind} figure")
    fig.axes[0].set_title(title)
    fig.tight_layout()
    return fig


def _learning_curve(ax: Any, run: Run) -> None:
    """Test error (and training error of the free phase) per epoch, in %."""
    from matplotlib.ticker import MaxNLocator

    _need(run, "error", "learning-curve")
    metrics = run.metrics
    epoch = metrics["epoch"].values
    shown = [metric("error")]
    factor, _ = metric_scale(shown[0], metrics["error"].values)
    ax.plot(epoch, factor * metrics["error"].values, "s-", label="test")
    if "train_error" in metrics:
        shown.append(metric("train_error"))
        ax.plot(epoch, factor * metrics["train_error"].values, "o-", label="train (free phase)")
    ax.set_xlabel(metric("epoch").axis_label())
    ax.set_ylabel(shared_label(shown))
    ax.set_ylim(0, 100)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend()


def _conductance_histogram(ax: Any, run: Run) -> None:
    """Every crossbar's conductances at the first and the last snapshot, devices per bin."""
    names = [n for n in run.conductance.data_vars if not n.startswith("bias:")]
    if not names or run.conductance.sizes.get("epoch", 0) == 0:
        raise RunFileError(f"{run.path}: holds no conductance snapshots to plot")
    snapshots = [(name, run.conductance[name].isel(epoch=[0, -1])) for name in names]
    unit = run.conductance[names[0]].attrs.get("units", "S")
    largest = max(largest_magnitude(data.values) for _, data in snapshots)
    factor, shown_unit = display_scale(largest, unit)
    for name, data in snapshots:
        for index, label in ((0, "first"), (-1, "last")):
            values = data.isel(epoch=index).values.ravel() * factor
            epoch = int(data.epoch[index])
            ax.hist(values, bins=80, histtype="step", label=f"{name}, epoch {epoch} ({label})")
    ax.set_xlabel(f"conductance ({shown_unit})")
    ax.set_ylabel("devices")
    ax.set_yscale("log")
    ax.legend(fontsize=8)


def _power(ax: Any, run: Run) -> None:
    """Static power per inference per epoch, and energy per inference on a second axis.

    Both axes start at 0: they show how large the power and the energy are, and a change
    between epochs at its true proportion (an axis fitted to the values alone would draw a
    change of 0.1 % across its whole height)."""
    from matplotlib.ticker import MaxNLocator

    _need(run, "mean_power_W", "power")
    metrics = run.metrics
    epoch = metrics["epoch"].values
    power = metrics["mean_power_W"].values
    factor, label = metric_scale(metric("mean_power_W"), power)
    ax.plot(epoch, factor * power, "o-", color="C3")
    ax.set_xlabel(metric("epoch").axis_label())
    ax.set_ylabel(label, color="C3")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    _from_zero(ax)
    if "energy_per_inference_J" in metrics:
        energy = metrics["energy_per_inference_J"].values
        factor, label = metric_scale(metric("energy_per_inference_J"), energy)
        twin = ax.twinx()
        twin.plot(epoch, factor * energy, "s--", color="C0")
        twin.set_ylabel(label, color="C0")
        _from_zero(twin)


def _from_zero(ax: Any) -> None:
    """Start a y axis of positive values at 0 (with room above the largest)."""
    low, high = ax.get_ylim()
    if low >= 0:
        ax.set_ylim(0, high * 1.05)


def sampling_spread(error: Any, samples: Any) -> Any:
    """The standard error (a fraction) of a test error measured on ``samples`` test
    samples, ``sqrt(e (1 - e) / n)``: how much the figure moves from one draw of the test
    samples (or of the noise) to another, with nothing else changed."""
    import numpy as np

    error = np.asarray(error, dtype=float)
    samples = np.asarray(samples, dtype=float)
    # at 0 % or 100 % the estimate would be 0: take one sample's worth instead
    rate = np.clip(error, 1.0 / samples, 1.0 - 1.0 / samples)
    return np.sqrt(rate * (1.0 - rate) / samples)


def _drift(ax: Any, run: Run) -> None:
    """Test error against time after programming (log scale), with 1 h, 1 d and 1 y marked.

    A band shows one standard error of each test error (:func:`sampling_spread`, from
    the number of test samples): a run holds one chip and one draw of its noise, so this
    sampling spread is the smallest difference between two times that means anything, and
    the y axis always spans the band instead of zooming into differences of a sample or
    two. A dashed line marks the test error of the chip as trained (its last epoch), before
    programming."""
    time = run.aging["time"].values
    error = run.aging["error"].values
    figure = metric("error_after_programming")
    factor, label = metric_scale(figure, error)
    samples = run.aging["samples"].values if "samples" in run.aging else None
    (line,) = ax.semilogx(time, factor * error, "o-", label="after programming")
    if samples is not None:
        spread = factor * sampling_spread(error, samples)
        count = int(samples.min())
        ax.fill_between(
            time,
            factor * error - spread,
            factor * error + spread,
            color=line.get_color(),
            alpha=0.2,
            label=f"+/- 1 standard error ({count:,} test samples)",
        )
    if "error" in run.metrics and run.metrics.sizes.get("epoch", 0):
        trained = float(run.metrics["error"].values[-1])
        epoch = int(run.metrics["epoch"].values[-1])
        ax.axhline(
            factor * trained, color="0.4", ls="--", lw=1, label=f"as trained (epoch {epoch})"
        )
    low, high = ax.get_ylim()
    if figure.percent:
        ax.set_ylim(max(low, 0.0), min(high, 100.0))
    ax.set_xlabel(metric("time_s").axis_label())
    ax.set_ylabel(label)
    ax.legend(fontsize=8)
    for seconds in DRIFT_MARKS:
        if time.min() <= seconds <= time.max():
            ax.axvline(seconds, color="0.7", lw=0.8)
            ax.annotate(
                format_duration(seconds),
                (seconds, ax.get_ylim()[1]),
                va="top",
                ha="right",
                fontsize=8,
            )


def _settle(fig: Any, run: Run, title: str) -> str:
    """The largest relative residual (log scale) and the power of the traced samples, sweep
    by sweep (a leaky chip: time step by time step), per phase; returns the title."""
    from matplotlib.ticker import MaxNLocator

    trace = run.trace()
    top, bottom = fig.subplots(2, 1, sharex=True)
    residual_figure, power_figure = metric("max_relative_residual"), metric("mean_power_W")
    # A leaky chip's trace is in time steps; its energy is read energy so far (J), its
    # residual the change of v per step over v_r, its power the arrays' read power.
    leaky = "energy" in trace and trace["energy"].attrs.get("units") == "J"
    if leaky:
        residual_figure = replace(residual_figure, label="largest change of v per step, of v_r")
        power_figure = replace(power_figure, label="read power of the arrays")
    power_factor, power_label = metric_scale(power_figure, trace["power"].values)
    phases = list(trace.phase.values)
    for phase in phases:
        for index, sample in enumerate(trace.sample.values):
            style = {"color": f"C{phases.index(phase)}", "alpha": 0.8}
            legend = f"{phase}" if index == 0 else None
            residual = trace["residual"].sel(phase=phase, sample=sample)
            top.semilogy(trace.sweep, residual, ".-", label=legend, **style)
            power = power_factor * trace["power"].sel(phase=phase, sample=sample)
            bottom.plot(trace.sweep, power, ".-", label=legend, **style)
    top.set_ylabel(residual_figure.axis_label())
    top.legend(title=f"phase ({trace.sizes['sample']} traced samples)", fontsize=8)
    top.grid(alpha=0.3)
    bottom.set_ylabel(power_label)
    step = "time step" if leaky else "sweep"
    bottom.set_xlabel(f"{step} (state after it; 0 = start of the phase)")
    bottom.xaxis.set_major_locator(MaxNLocator(integer=True))
    bottom.grid(alpha=0.3)
    return f"{title}: settling at epoch {trace.attrs['epoch']}"


def _need(run: Run, key: str, kind: str) -> None:
    if key not in run.metrics or run.metrics.sizes.get("epoch", 0) == 0:
        raise RunFileError(f"{run.path}: holds no {key} per epoch, so it has no {kind} figure")
