"""The one table of the figures neuroemu reports: name, unit, meaning, how it aggregates.

Every figure a run or a sweep reports is named here, and every writer and reader takes its
unit and meaning from here: the HDF5 run file (a ``unit`` attribute per metric), the sweep
file, the JSON of ``neuroemu simulate --json``, the text report, ``neuroemu traces`` and the
axis labels of ``neuroemu plot``. A name not in the table is an error, never dropped.

Units are SI symbols (``1`` for a dimensionless figure). Names carry their unit where it is
not dimensionless (``mean_power_W``), so a figure read out of context still says what it is.

``over_samples`` says how one pass over a data set forms the figure from its samples:
``mean``, ``max``, ``count``, ``all`` (a flag true only if it holds for every sample) or
``none`` (a setting or a wall time of the whole pass). ``over_epochs`` says how a run's
epochs combine into one figure: ``last`` (the state the run ended in), ``min`` (the best
epoch) or ``sum`` (a total, e.g. time).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from .errors import NeuroemuError


@dataclass(frozen=True)
class Metric:
    """One figure: its name, SI unit, value type, meaning and aggregation."""

    name: str
    unit: str  # SI symbol, "1" for dimensionless
    kind: Literal["float", "int", "bool"]
    label: str  # short, for axis labels and reports
    description: str
    over_samples: Literal["mean", "max", "count", "all", "none"]
    over_epochs: Literal["last", "min", "sum"] = "last"
    percent: bool = False  # a fraction, shown in % on plots and reports
    #: What reports it: ``test`` (an inference pass), ``train`` (a training epoch),
    #: ``index`` (numbers the rows) or ``aging`` (a pass at a time after programming).
    group: Literal["test", "train", "index", "aging"] = "test"

    def axis_label(self) -> str:
        """``label (unit)``, the way a plot's axis names this figure."""
        if self.percent:
            return f"{self.label} (%)"
        return self.label if self.unit == "1" else f"{self.label} ({self.unit})"

    def display(self, value: float) -> float:
        """``value`` as plots show it (fractions in %)."""
        return 100.0 * value if self.percent else value

    def typed(self, value: Any) -> Any:
        """``value`` as its kind (a float read back from a file becomes an int or a bool)."""
        if self.kind == "bool":
            return bool(value)
        if self.kind == "int":
            return int(value)
        return float(value)


def _table(*metrics: Metric) -> dict[str, Metric]:
    return {m.name: m for m in metrics}


#: Every figure, in the order reports list them (the JSON's key order).
METRICS: dict[str, Metric] = _table(
    Metric(
        "epoch",
        "1",
        "int",
        "epoch",
        "training epochs done (0: the chip as first programmed)",
        "none",
        group="index",
    ),
    # One pass over the test part of a data set.
    Metric("samples", "1", "int", "samples", "samples in the pass", "count"),
    Metric(
        "accuracy",
        "1",
        "float",
        "test accuracy",
        "fraction of samples classified right",
        "mean",
        percent=True,
    ),
    Metric(
        "error",
        "1",
        "float",
        "test error",
        "fraction of samples classified wrong",
        "mean",
        "min",
        percent=True,
    ),
    Metric(
        "mean_sweeps",
        "1",
        "float",
        "sweeps per sample",
        "block coordinate descent sweeps (leaky chips: time steps) a sample needed to meet "
        "the tolerance",
        "mean",
    ),
    Metric(
        "max_sweeps",
        "1",
        "int",
        "largest sweeps per sample",
        "the most sweeps (time steps) any sample needed",
        "max",
    ),
    Metric(
        "max_residual_A",
        "A",
        "float",
        "largest KCL residual",
        "largest Kirchhoff current-law residual current at any node of any sample",
        "max",
    ),
    Metric(
        "max_residual_V_per_s",
        "V/s",
        "float",
        "largest |dv/dt|",
        "leaky chips: largest rate of change of a membrane voltage at the end of the free phase",
        "max",
    ),
    Metric(
        "max_relative_residual",
        "1",
        "float",
        "largest relative residual",
        "largest |r_j| / (G_j V_scale) (leaky chips: the last step's change of v over v_r)",
        "max",
    ),
    Metric(
        "mean_power_W",
        "W",
        "float",
        "static power",
        "static power per sample dissipated in the devices, bias conductances and diodes "
        "(leaky chips: read power of the arrays)",
        "mean",
    ),
    Metric(
        "energy_per_inference_J",
        "J",
        "float",
        "energy per inference",
        "mean power times the settling time",
        "mean",
    ),
    Metric(
        "settle_time_s",
        "s",
        "float",
        "settling time",
        "RC estimate of the settling time, 5 C_node / min G (leaky chips: the free "
        "phase's duration)",
        "none",
    ),
    Metric(
        "wall_time_s",
        "s",
        "float",
        "wall time",
        "wall time of the pass (of a sweep point: of the whole point)",
        "none",
        "sum",
    ),
    Metric(
        "samples_per_s",
        "1/s",
        "float",
        "samples per second",
        "samples over the pass's wall time",
        "none",
    ),
    Metric(
        "converged",
        "1",
        "bool",
        "converged",
        "every sample met the tolerance (leaky chips: came to rest)",
        "all",
    ),
    Metric(
        "tol", "1", "float", "tolerance", "the stopping tolerance of the relative residual", "none"
    ),
    # One training epoch (free phase of every mini-batch, during the epoch).
    Metric(
        "train_error",
        "1",
        "float",
        "train error",
        "fraction of training samples the free phase classified wrong, during the epoch",
        "mean",
        percent=True,
        group="train",
    ),
    Metric(
        "train_loss_V2",
        "V^2",
        "float",
        "squared error",
        "mean squared-error loss 1/2 sum (V - y)^2 of the free phase",
        "mean",
        group="train",
    ),
    Metric(
        "train_cross_entropy",
        "1",
        "float",
        "cross-entropy",
        "mean cross-entropy of softmax(scores / temperature) in the free phase",
        "mean",
        group="train",
    ),
    Metric(
        "train_hinge_V2",
        "V^2",
        "float",
        "squared hinge",
        "mean squared-hinge loss 1/2 sum relu(shortfall)^2 of the free phase",
        "mean",
        group="train",
    ),
    Metric(
        "train_mean_sweeps",
        "1",
        "float",
        "training sweeps per phase",
        "sweeps (time steps) per settled phase of training",
        "mean",
        group="train",
    ),
    Metric(
        "train_wall_time_s",
        "s",
        "float",
        "training time",
        "wall time of the training epoch",
        "none",
        "sum",
        group="train",
    ),
    Metric(
        "update_unmoved_fraction",
        "1",
        "float",
        "updates rounded to nothing",
        "fraction of the devices asked to move during the epoch whose change rounded to no "
        "pulse (devices with levels or pulses; stuck devices not counted)",
        "mean",
        percent=True,
        group="train",
    ),
    Metric(
        "update_clipped_fraction",
        "1",
        "float",
        "updates clipped",
        "fraction of the devices asked to move during the epoch whose change was cut at a "
        "bound of their range (stuck devices not counted)",
        "mean",
        percent=True,
        group="train",
    ),
    Metric(
        "update_pulses_per_device",
        "1",
        "float",
        "pulses per device",
        "programming pulses (whole level steps or pulses) applied during the epoch, per "
        "device of the arrays whose devices take pulses (stuck devices not counted)",
        "mean",
        "sum",
        group="train",
    ),
    Metric(
        "update_refreshes_per_pair",
        "1",
        "float",
        "refreshes per pair",
        "refreshes (both devices RESET, their difference programmed back into one) during "
        "the epoch, per pair of devices (training.scheme: pairs)",
        "mean",
        "sum",
        group="train",
    ),
    Metric(
        "update_programming_energy_J",
        "J",
        "float",
        "programming energy",
        "energy of the programming pulses and RESETs applied during the epoch, from the "
        "device cards' pulse_energy and reset_energy (recorded when the cards give them)",
        "mean",
        "sum",
        group="train",
    ),
    Metric(
        "update_reads_per_device",
        "1",
        "float",
        "reads per device",
        "reads of devices by the programming circuit during the epoch (refreshes of pairs, "
        "verified writes, Tiki-Taka transfers), per device that takes pulses",
        "mean",
        "sum",
        group="train",
    ),
    Metric(
        "update_read_energy_J",
        "J",
        "float",
        "read energy",
        "energy of those reads, from the device cards' read_energy (recorded when the cards "
        "give it)",
        "mean",
        "sum",
        group="train",
    ),
    # Inference at times after programming.
    Metric(
        "time_s",
        "s",
        "float",
        "time after programming",
        "time since the conductances were programmed",
        "none",
        group="index",
    ),
    Metric(
        "error_after_programming",
        "1",
        "float",
        "test error after programming",
        "test error at each time after programming (programming noise, drift, read noise)",
        "mean",
        percent=True,
        group="aging",
    ),
)


def metric(name: str) -> Metric:
    """The metric called ``name``; an unknown name is an error."""
    try:
        return METRICS[name]
    except KeyError:
        raise NeuroemuError(f"metric {name!r}: unknown (known: {', '.join(METRICS)})") from None


def group(name: str) -> list[str]:
    """The names of the metrics of one group, in the table's order."""
    return [m.name for m in METRICS.values() if m.group == name]


def ordered(figures: dict[str, Any]) -> dict[str, Any]:
    """``figures`` in the table's order, each checked to be a metric."""
    for name in figures:
        metric(name)
    return {name: figures[name] for name in METRICS if name in figures}
