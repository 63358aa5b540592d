"""Reading run files: ``neuroemu.open_run(path)`` gives xarray objects with named dimensions
and coordinates.

The layout is described in :mod:`neuroemu.io.hdf5` and ``docs/run-file.md``. Files of an
older format version are read as they are (version 1 is the first); a newer version fails
with a message saying to upgrade.

Dimensions: ``epoch`` (0 = the chip as first programmed), ``time`` (s after programming),
``phase`` (``free``, ``plus``, ``minus``), ``sweep`` (0 = the start of a phase),
``sample`` (index into the test part of the data set), one dimension per layer named after
it (``input`` for the source nodes) whose coordinate is the node index, and, for every
layer's voltages at once, ``layer`` (the free layers' names) with ``node``.
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
        nodes index them (``input`` for the sources) with the node indices as coordinates,
        and one per layer's bias conductances, ``bias:<layer>``, with dimensions
        ``(epoch, source, <layer>)`` (``source`` is ``+V_b`` or ``-V_b``). With
        differential inputs the ``input`` dimension also carries ``input_feature`` (the
        input each source node is driven by) and ``input_sign`` (+1 for ``+a x``, -1 for
        ``-a x``).
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
        ``xarray.Dataset``: ``voltage:<layer>`` (phase, sweep, sample, <layer>) in V, the
        same for every layer at once as ``voltage`` (phase, sweep, sample, layer, node),
        NaN past a layer's last node, ``residual``, ``power`` (W) and ``energy``
        (phase, sweep, sample), padded with NaN after a phase's last sweep, and
        ``update:<crossbar>`` (<row layer>, <column layer>) in S. Coordinates: the phase
        names, sweep numbers, test sample indices, layer names, node indices and, as a
        scalar, ``epoch`` (so ``xr.concat`` over epochs stacks them)."""
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
        """The validated device cards the chip used, by name (SI units)."""
        return json.loads(self.meta.get("device_cards", "{}"))

    @property
    def card_files(self) -> dict[str, str]:
        """The exact YAML text of every device card the chip used, by card name (empty for
        files written before it was kept)."""
        return json.loads(self.meta.get("device_cards_yaml", "{}"))


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
        conductance = xr.Dataset(conductance_vars, coords={"epoch": snapshot_epochs, **bias_rows})
        conductance = conductance.assign_coords(_node_coords(conductance, meta))
        inference = f["inference"]
        prediction, label = (
            _per_sample(inference[key][()]) if key in inference else None
            for key in ("prediction", "label")
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


def _per_sample(values: np.ndarray) -> Any:
    import xarray as xr

    return xr.DataArray(values, dims="sample", coords={"sample": np.arange(len(values))})


def _node_coords(data: Any, meta: dict[str, Any]) -> dict[str, Any]:
    """Node indices for every layer dimension of ``data``; for the ``input`` dimension of a
    chip with differential inputs, also the input and the sign each source node carries
    (the + half first, ``docs/physics.md``)."""
    taken = {"epoch", "source", "bias_row", "phase", "sweep", "sample", "layer", "node"}
    coords: dict[str, Any] = {
        dim: np.arange(size) for dim, size in data.sizes.items() if dim not in taken
    }
    inputs = _chip_yaml(meta).get("inputs")
    if "input" in coords and isinstance(inputs, dict):
        n = len(coords["input"])
        differential = inputs.get("encoding", "differential") == "differential"
        if differential and n == 2 * inputs.get("size", -1):
            half = np.arange(n // 2)
            coords["input_feature"] = ("input", np.concatenate([half, half]))
            coords["input_sign"] = ("input", np.repeat([1, -1], n // 2))
    return coords


def _chip_yaml(meta: dict[str, Any]) -> dict[str, Any]:
    """The chip YAML kept in ``/meta``, parsed (empty if missing or unreadable)."""
    import yaml

    try:
        data = yaml.safe_load(meta.get("chip_yaml", "") or "{}")
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


def _layer_order(meta: dict[str, Any], names: list[str]) -> list[str]:
    """``names`` in the chip's layer order (HDF5 lists group members alphabetically)."""
    layers = _chip_yaml(meta).get("layers")
    order = (
        [layer.get("name") for layer in layers if isinstance(layer, dict)]
        if isinstance(layers, list)
        else []
    )
    return sorted(names, key=lambda n: order.index(n) if n in order else len(order))


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
    meta = {"chip_yaml": _attr(group.file["meta"].attrs.get("chip_yaml", ""))}
    layers = _layer_order(meta, list(group[present[0]]["voltage"]))
    for layer in layers:
        variables[f"voltage:{layer}"] = (
            ("phase", "sweep", "sample", layer),
            stack(f"voltage/{layer}"),
            {"units": "V"},
        )
    # Every layer at once: (phase, sweep, sample, layer, node), NaN past a layer's nodes.
    width = max(variables[f"voltage:{layer}"][1].shape[-1] for layer in layers)
    every = np.full((len(present), sweeps, len(samples), len(layers), width), np.nan)
    for index, layer in enumerate(layers):
        values = variables[f"voltage:{layer}"][1]
        every[..., index, : values.shape[-1]] = values
    variables["voltage"] = (("phase", "sweep", "sample", "layer", "node"), every, {"units": "V"})
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
    epoch = int(group.attrs["epoch"])
    coords = {
        "phase": present,
        "sweep": np.arange(sweeps),
        "sample": samples,
        "layer": layers,
        "node": np.arange(width),
        "epoch": epoch,  # scalar: xr.concat over traced epochs makes it a dimension
    }
    trace = xr.Dataset(variables, coords=coords, attrs={"epoch": epoch})
    return trace.assign_coords(_node_coords(trace, meta))


def _snapshots(f: Any) -> int:
    shapes = [data.shape[0] for data in f["conductance"].values()]
    return min(shapes) if shapes else 0
