"""What a run file holds, in words, for ``neuroemu traces``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..metrics import metric
from ..units import format_quantity

if TYPE_CHECKING:
    from ..io.runs import Run

#: The figures of the last epoch ``neuroemu traces`` states with their units, by the key
#: that introduces each.
LAST_EPOCH_FIGURES = {"power": "mean_power_W", "energy": "energy_per_inference_J"}


def summary_lines(run: Run) -> list[tuple[str, str]]:
    """What a run file holds, as (key, text) pairs."""
    meta, metrics = run.meta, run.metrics
    lines = [
        (
            "file",
            "-" if run.path is None else f"{run.path} ({run.path.stat().st_size / 1e6:.2f} MB)",
        ),
        ("chip", f"{meta.get('chip_name')} (seed {meta.get('seed')})"),
        ("data set", f"{meta.get('dataset')} ({meta.get('dataset_source')})"),
        ("started", f"{meta.get('started')}, finished {meta.get('finished') or '-'}"),
        ("status", "complete" if meta.get("complete") else "incomplete (interrupted or running)"),
    ]
    if "error" in metrics:
        error = metric("error")
        errors = metrics["error"].values
        best = int(np.nanargmin(errors))
        lines += [
            ("epochs", f"{run.epochs_done} trained (epoch 0 is the chip as programmed)"),
            (
                error.label,
                f"best {error.display(errors[best]):.2f} % (epoch {int(metrics.epoch[best])}), "
                f"last {error.display(errors[-1]):.2f} %",
            ),
        ]
    for key, name in LAST_EPOCH_FIGURES.items():
        if name in metrics:
            value = format_quantity(float(metrics[name][-1]), metric(name).unit)
            lines.append((key, f"{value} (last epoch)"))
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
