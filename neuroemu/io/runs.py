"""Reading run files: ``neuroemu.open_run(path)`` gives xarray objects with named dimensions.

The layout is described in :mod:`neuroemu.io.hdf5` and ``docs/run-file.md``. Files of an
older format version are read as they are (version 1 is the first); a newer version fails
with a message saying to upgrade.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import RunFileError
from .hdf5 import open_run_file


@dataclass
class Run:
    """A run file's contents.

    Attributes
    ----------
    path
        Where it was read from.
    meta
        The ``/meta`` attributes (chip YAML, seed, data set, times, ``complete``, ...).
    metrics
        ``xarray.Dataset`` over dimension ``epoch`` (0 = the chip as first programmed); each
        variable carries its ``units`` attribute.
    conductance
        ``xarray.Dataset`` of one variable per crossbar (``input->hidden``, ...) in S with
        dimensions ``(epoch, <row layer>, <column layer>)``, named after the layers whose
        nodes index them (``input`` for the sources), and one per layer's bias
        conductances, ``bias:<layer>``, with dimensions ``(epoch, source, <layer>)``
        (``source`` is ``+V_b`` or ``-V_b``).
    prediction, label
        The last evaluation's predicted and true classes per test sample (``sample``).
    traces
        Per-sweep records of the traced samples by epoch; see :meth:`trace`.
    aging
        ``xarray.Dataset`` over ``time`` (s after programming) of the test pass with
        programming noise, drift and read noise, or ``None``.
    """

    path: Path
    meta: dict[str, Any]
    metrics: Any
    conductance: Any
    prediction: Any
    label: Any
    traces: dict[int, Any]
    aging: Any = None

    @property
    def traced_epochs(self) -> list[int]:
        return sorted(self.traces)

    def trace(self, epoch: int | None = None) -> Any:
        """The per-sweep record of the traced samples at ``epoch`` (default: the last) as an
        ``xarray.Dataset``: ``voltage:<layer>`` (phase, sweep, sample, <layer>) in V,
        ``residual`` (phase, sweep, sample), ``power`` (phase, sweep, sample) in W, padded
        with NaN after a phase's last sweep, and ``update:<crossbar>`` in S."""
        if not self.traces:
            raise RunFileError(f"{self.path}: holds no per-sweep traces")
        epoch = self.traced_epochs[-1] if epoch is None else epoch
        if epoch not in self.traces:
            raise RunFileError(
                f"{self.path}: no traces at epoch {epoch} (has {self.traced_epochs})"
            )
        return self.traces[epoch]

    @property
    def epochs_done(self) -> int:
        return int(self.metrics["epoch"].max()) if self.metrics.sizes.get("epoch") else -1

    @property
    def cards(self) -> dict[str, Any]:
        return json.loads(self.meta.get("device_cards", "{}"))


def _attr(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


def open_run(path: str | os.PathLike[str]) -> Run:
    """Read a run file written by ``neuroemu simulate --out``."""
    import xarray as xr

    path = Path(path)
    with open_run_file(path) as f:
        meta = {key: _attr(value) for key, value in f["meta"].attrs.items()}
        metrics_group = f["metrics"]
        epochs = metrics_group["epoch"][()].astype(int) if "epoch" in metrics_group else []
        variables = {
            name: xr.Variable("epoch", data[()], {"units": _attr(data.attrs.get("unit", ""))})
            for name, data in metrics_group.items()
            if name != "epoch"
        }
        metrics = xr.Dataset(variables, coords={"epoch": np.asarray(epochs)})
        conductance_vars = {}
        for name, data in f["conductance"].items():
            rows, _, cols = name.partition("->")  # dimensions named after the layers
            conductance_vars[name] = xr.Variable(("epoch", rows, cols), data[()], {"units": "S"})
        bias_rows = {"source": ["+V_b", "-V_b"]}  # a resistive chip's two bias sources
        for name, data in f["bias"].items():
            # A leaky chip has one bias row per layer, read at a rate of 1.
            dim = "source" if data.shape[1] == 2 else "bias_row"
            bias_rows.setdefault(dim, ["rate 1"])
            conductance_vars[f"bias:{name}"] = xr.Variable(
                ("epoch", dim, name), data[()], {"units": "S"}
            )
        if "snapshot_epoch" in f:
            snapshot_epochs = f["snapshot_epoch"][()]
        else:  # version 1: a snapshot per evaluated epoch
            snapshot_epochs = np.asarray(epochs)[: _snapshots(f)]
        coords = {"epoch": snapshot_epochs, **bias_rows}
        conductance = xr.Dataset(conductance_vars, coords=coords)
        inference = f["inference"]
        prediction = (
            xr.DataArray(inference["prediction"][()], dims="sample")
            if "prediction" in inference
            else None
        )
        label = (
            xr.DataArray(inference["label"][()], dims="sample") if "label" in inference else None
        )
        traces = {int(g.attrs["epoch"]): _read_trace(g) for g in f.get("traces", {}).values()}
        aging = None
        if "aging" in f:
            group = f["aging"]
            aging = xr.Dataset(
                {
                    key: ("time", data[()], {"units": _attr(data.attrs.get("unit", ""))})
                    for key, data in group.items()
                    if key != "time_s"
                },
                coords={"time": ("time", group["time_s"][()], {"units": "s"})},
            )
    return Run(path, meta, metrics, conductance, prediction, label, traces, aging)


PHASES = ("free", "plus", "minus")


def _read_trace(group: Any) -> Any:
    """One ``/traces/epoch_<e>`` group as a Dataset, phases padded to a common sweep count."""
    import xarray as xr

    samples = group["samples"][()]
    present = [p for p in PHASES if p in group]
    sweeps = max(group[p]["power"].shape[0] for p in present)

    def stack(key: str) -> np.ndarray:
        arrays = []
        for phase in present:
            data = group[phase][key][()]
            pad = [(0, sweeps - data.shape[0])] + [(0, 0)] * (data.ndim - 1)
            arrays.append(np.pad(data.astype(float), pad, constant_values=np.nan))
        return np.stack(arrays)

    variables: dict[str, Any] = {}
    for layer in group[present[0]]["voltage"]:
        variables[f"voltage:{layer}"] = (
            ("phase", "sweep", "sample", layer),
            stack(f"voltage/{layer}"),
            {"units": "V"},
        )
    # residual[s] is measured during sweep s + 1: pad so it lines up with the states.
    residual = stack("residual")
    residual = np.concatenate([residual, np.full(residual[:, :1].shape, np.nan)], axis=1)
    variables["residual"] = (("phase", "sweep", "sample"), residual[:, :sweeps], {"units": "1"})
    variables["power"] = (("phase", "sweep", "sample"), stack("power"), {"units": "W"})
    if "energy" in group[present[0]]:
        unit = _attr(group[present[0]]["energy"].attrs.get("unit", "W"))
        variables["energy"] = (("phase", "sweep", "sample"), stack("energy"), {"units": unit})
    for name, data in group.get("update", {}).items():
        rows, _, cols = name.partition("->")
        variables[f"update:{name}"] = ((rows, cols), data[()], {"units": "S"})
    coords = {"phase": present, "sweep": np.arange(sweeps), "sample": samples}
    return xr.Dataset(variables, coords=coords, attrs={"epoch": int(group.attrs["epoch"])})


def _snapshots(f: Any) -> int:
    shapes = [data.shape[0] for data in f["conductance"].values()]
    return min(shapes) if shapes else 0
