"""Summaries and figures of run files, for ``neuroemu traces`` and ``neuroemu plot``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import RunFileError
from .spec.units import format_quantity

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
        top.set_ylabel("relative KCL residual")
        top.legend(title=f"phase ({trace.sizes['sample']} traced samples)", fontsize=8)
        bottom.set_ylabel("static power (mW)")
        bottom.set_xlabel("sweep (state after it; 0 = start of the phase)")
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


def _save(fig: Any, ax: Any, out: str) -> None:
    """Grid, tight layout, write ``out`` (one-line error if it cannot be), close."""
    import matplotlib.pyplot as plt

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
    """Test error (or ``metric``) against the sweep's axes: a line with the seeds' spread as
    a band for one axis, one line per value of the second axis for two, a heat map of the
    seed mean for more (the first two axes, the others at their first value)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .io.sweepfile import open_sweep

    ds = open_sweep(path)
    if metric not in ds:
        raise RunFileError(f"{path}: no {metric} in this sweep")
    data = ds[metric]
    axes = [d for d in data.dims if d != "seed"]
    percent = ("error", "accuracy", "train_error", "error_after_programming")
    scale = 100.0 if metric in percent else 1.0
    label = f"{metric} (%)" if scale == 100.0 else f"{metric} ({data.attrs.get('units', '')})"
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    if len(axes) <= 2:
        x_dim = axes[0]
        groups = (
            [(None, data)]
            if len(axes) == 1
            else [(v, data.sel({axes[1]: v})) for v in data[axes[1]].values]
        )
        positions = np.arange(data.sizes[x_dim])
        for value, part in groups:
            mean = scale * part.mean("seed").values
            spread = scale * part.std("seed").values
            legend = None if value is None else f"{axes[1]} = {value}"
            ax.plot(positions, mean, "o-", label=legend)
            ax.fill_between(positions, mean - spread, mean + spread, alpha=0.25)
        ax.set_xticks(positions, [str(v) for v in data[x_dim].values])
        ax.set_xlabel(x_dim)
        ax.set_ylabel(label)
        if len(axes) == 2:
            ax.legend(fontsize=8)
    else:
        first = data.isel({d: 0 for d in axes[2:]}).mean("seed")
        image = ax.imshow(scale * first.transpose(axes[1], axes[0]).values, origin="lower")
        ax.set_xticks(range(first.sizes[axes[0]]), [str(v) for v in first[axes[0]].values])
        ax.set_yticks(range(first.sizes[axes[1]]), [str(v) for v in first[axes[1]].values])
        ax.set_xlabel(axes[0])
        ax.set_ylabel(axes[1])
        fig.colorbar(image, label=label)
    spread = " (lines: seed mean; bands: seed spread)" if len(axes) <= 2 else " (seed mean)"
    ax.set_title(f"sweep {Path(path).stem}{spread}", fontsize=10)
    _save(fig, ax, out)
