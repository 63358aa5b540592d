"""Runs: what ``neuroemu.simulate`` returns and ``neuroemu.open_run(path)`` reads back, a
:class:`Run` with xarray objects of named dimensions and coordinates.

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
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import RunFileError
from ..metrics import METRICS, metric
from .hdf5 import RunFile, array_names, attribute

if TYPE_CHECKING:
    from ..chip.base import BaseChip


class Run:
    """A run of a chip: its settings, its figures epoch by epoch and what it recorded.

    ``neuroemu.simulate`` returns one; ``neuroemu.open_run(path)`` reads one back from a
    run file, and the two look alike (``open_run(path).to_json()`` is what the run that
    wrote the file returned, ``out`` included).

    Attributes
    ----------
    path
        The run file, or ``None`` for a run that wrote none.
    meta
        The ``/meta`` attributes (chip YAML, seed, data set, settings, times, ``complete``).
    metrics
        ``xarray.Dataset`` over dimension ``epoch`` (0 = the chip as first programmed); each
        variable carries its ``units`` attribute (:mod:`neuroemu.metrics`).
    conductance
        ``xarray.Dataset`` of one variable per crossbar (``input->hidden``, ...) in S with
        dimensions ``(epoch, <row layer>, <column layer>)``, named after the layers whose
        nodes index them (``input`` for the sources) with the node indices as coordinates,
        and one per layer's bias conductances, ``bias:<layer>``, with dimensions
        ``(epoch, source, <layer>)`` (``source`` is ``+V_b`` or ``-V_b``). With
        differential inputs the ``input`` dimension also carries ``input_feature`` (the
        input each source node is driven by) and ``input_sign`` (+1 for ``+a x``, -1 for
        ``-a x``). A run without a file holds its last state only.
    prediction, label
        The last evaluation's predicted and true classes per test sample (``sample``).
    traces
        Per-sweep records of the traced samples by epoch; see :meth:`trace`.
    aging
        ``xarray.Dataset`` over ``time`` (s after programming) of the test pass with
        programming noise, drift and read noise, or ``None``.
    """

    def __init__(
        self,
        path: Path | None,
        meta: dict[str, Any],
        *,
        history: list[dict[str, Any]] | None = None,
        metrics: Any = None,
        prediction: np.ndarray | None = None,
        label: np.ndarray | None = None,
        aging: Any = None,
        figures: dict[str, Any] | None = None,
        infer_at: list[dict[str, Any]] | None = None,
        chip: BaseChip | None = None,
    ):
        self.path = path
        self.meta = meta
        self._history = history
        self._metrics = metrics
        self._prediction = prediction
        self._label = label
        self._aging = aging
        self._figures = figures
        self._infer_at = infer_at
        self._chip = chip
        self._conductance: Any = None
        self._traces: dict[int, Any] | None = None

    # ------------------------------------------------------------------ figures
    @property
    def history(self) -> list[dict[str, Any]]:
        """One dict per evaluated epoch: ``epoch`` and every figure that epoch reported
        (its test pass and, after epoch 0, its training), named and typed as in
        :mod:`neuroemu.metrics`."""
        if self._history is None:
            self._history = _rows(self.metrics, "epoch")
        return self._history

    @property
    def figures(self) -> dict[str, Any]:
        """The figures of the run's last test pass (the trained chip)."""
        if self._figures is None:
            last = self.history[-1] if self.history else {}
            self._figures = {k: v for k, v in last.items() if metric(k).group == "test"}
        return self._figures

    @property
    def error(self) -> float:
        """The test error (fraction) of the last test pass."""
        return float(self.figures["error"])

    @property
    def infer_at(self) -> list[dict[str, Any]]:
        """The test passes at times after programming, one dict per time (``time_s`` and
        the pass's figures); empty without them."""
        if self._infer_at is None:
            self._infer_at = [] if self._aging is None else _rows(self._aging, "time")
        return self._infer_at

    @property
    def epochs_done(self) -> int:
        return int(self.history[-1]["epoch"]) if self.history else -1

    @property
    def epochs(self) -> int:
        """The epochs the run was asked for (files that do not say: the epochs done)."""
        return int(self.meta.get("epochs", max(self.epochs_done, 0)))

    def summary(self) -> dict[str, Any]:
        """The run as ``neuroemu simulate --json`` prints it: chip, seed, data set and
        settings, the last test pass's figures, ``history`` (when it trained),
        ``infer_at`` (when evaluated after programming) and ``out`` (its run file)."""
        meta = self.meta
        summary: dict[str, Any] = {
            "chip": meta.get("chip_name"),
            "chip_file": meta.get("chip_file", ""),
            "seed": int(meta["seed"]),
            "dataset": meta.get("dataset"),
            "dataset_part": "test",
            "dtype": meta.get("dtype", "float64"),
            "epochs": self.epochs,
            **self.figures,
        }
        if self.epochs > 0:
            summary["history"] = self.history
        if self.infer_at:
            summary["infer_at"] = self.infer_at
        if self.path is not None:
            summary["out"] = str(self.path)
        return summary

    def to_json(self) -> str:
        """:meth:`summary` as one line of JSON."""
        return json.dumps(self.summary())

    # ------------------------------------------------------------------ arrays
    @property
    def metrics(self) -> Any:
        if self._metrics is None:
            self._metrics = _dataset(self.history, "epoch")
        return self._metrics

    @property
    def aging(self) -> Any:
        if self._aging is None and self._infer_at:
            self._aging = _dataset(self._infer_at, "time")
        return self._aging

    @property
    def conductance(self) -> Any:
        if self._conductance is None:
            if self.path is not None:
                with RunFile(self.path) as run_file:
                    arrays, epochs = run_file.snapshots()
                self._conductance = conductance_dataset(arrays, epochs, self.meta)
            elif self._chip is not None:  # a run without a file: its last state
                state = self._chip.state()
                names = array_names(self._chip)
                arrays = {name: a[None] for name, a in zip(names, state.arrays, strict=True)}
                epochs = np.array([max(self.epochs_done, 0)])
                self._conductance = conductance_dataset(arrays, epochs, self.meta)
        return self._conductance

    @property
    def prediction(self) -> Any:
        return None if self._prediction is None else _per_sample(self._prediction)

    @property
    def label(self) -> Any:
        return None if self._label is None else _per_sample(self._label)

    @property
    def traces(self) -> dict[int, Any]:
        """The per-sweep records of the traced samples, by epoch (see :meth:`trace`)."""
        if self._traces is None:
            self._traces = {}
            if self.path is not None:
                with RunFile(self.path) as run_file:
                    groups = run_file.trace_groups()
                    self._traces = {
                        int(g.attrs["epoch"]): _read_trace(g, self.meta) for g in groups
                    }
        return self._traces

    @property
    def chip(self) -> BaseChip:
        """The chip as the run left it: the trained chip of a run just made; for a run read
        from its file, the chip rebuilt from the spec and cards the file keeps, with the
        conductances (and velocities, accumulators) of its last evaluated epoch."""
        if self._chip is None:
            self._chip = _rebuild_chip(self)
        return self._chip

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
        where = self.path if self.path is not None else "run"
        if not self.traces:
            raise RunFileError(f"{where}: holds no per-sweep traces")
        epoch = self.traced_epochs[-1] if epoch is None else epoch
        if epoch not in self.traces:
            raise RunFileError(f"{where}: no traces at epoch {epoch} (has {self.traced_epochs})")
        return self.traces[epoch]

    @property
    def cards(self) -> dict[str, Any]:
        """The validated device cards the chip used, by name (SI units)."""
        return json.loads(self.meta.get("device_cards", "{}"))

    @property
    def card_files(self) -> dict[str, str]:
        """The exact YAML text of every device card the chip used, by card name (empty for
        files written before it was kept)."""
        return json.loads(self.meta.get("device_cards_yaml", "{}"))

    def __repr__(self) -> str:
        where = f", {self.path}" if self.path is not None else ""
        done = self.epochs_done
        error = self.figures.get("error")
        tail = "" if error is None else f", test error {100 * error:.2f} %"
        epochs = max(done, 0)
        return (
            f"Run({self.meta.get('chip_name')!r} on {self.meta.get('dataset')}, "
            f"{epochs} epoch{'' if epochs == 1 else 's'}{tail}{where})"
        )


def _rows(data: Any, dim: str) -> list[dict[str, Any]]:
    """The rows of a Dataset over ``dim`` as dicts in the metrics table's order, each value
    typed by its metric; NaN (not reported) left out."""
    index = "epoch" if dim == "epoch" else "time_s"
    names = [name for name in METRICS if name in data.data_vars and name != index]
    rows = []
    for i in range(data.sizes.get(dim, 0)):
        row: dict[str, Any] = {index: metric(index).typed(data[dim].values[i])}
        for name in names:
            value = data[name].values[i]
            if not (isinstance(value, float | np.floating) and np.isnan(value)):
                row[name] = metric(name).typed(value)
        rows.append(row)
    return rows


def _dataset(rows: list[dict[str, Any]], dim: str) -> Any:
    """Rows of figures (:func:`_rows`' form) as a Dataset over ``dim`` with units."""
    import xarray as xr

    index = "epoch" if dim == "epoch" else "time_s"
    names = [name for name in METRICS if name != index and any(name in r for r in rows)]
    variables = {
        name: xr.Variable(
            dim,
            np.array([float(r.get(name, np.nan)) for r in rows]),
            {"units": metric(name).unit},
        )
        for name in names
    }
    coordinate = np.array([r[index] for r in rows])
    coords = {dim: coordinate} if dim == "epoch" else {dim: (dim, coordinate, {"units": "s"})}
    return xr.Dataset(variables, coords=coords)


def _rebuild_chip(run: Run) -> BaseChip:
    """The chip of a run file: its validated spec as the file keeps it (``chip_spec``; in
    files without it, the chip's YAML with every card the file keeps), its seed, and its
    state after the last evaluated epoch."""
    from ..chip import build_chip
    from ..spec.loader import chip_from_dict

    if run.path is None:
        raise RunFileError("run: keeps no chip")
    source = f"{run.path}: /meta/chip_spec"
    if run.meta.get("chip_spec"):
        data = json.loads(run.meta["chip_spec"])
    else:
        source = f"{run.path}: /meta/chip_yaml"
        data = _chip_yaml(run.meta)
        cards = run.cards
        if not data or not cards:
            raise RunFileError(f"{run.path}: keeps no chip spec to rebuild the chip from")

        def card(value: Any) -> Any:
            return cards.get(value, value) if isinstance(value, str) else value

        if data.get("neuron") is not None:
            data["neuron"] = card(data["neuron"])
        for layer in data.get("layers") or []:
            if isinstance(layer, dict):
                for key in ("device", "diode", "backward_device"):
                    if layer.get(key) is not None:
                        layer[key] = card(layer[key])
    spec = chip_from_dict(data, source)
    chip = build_chip(spec, seed=int(run.meta["seed"]))
    with RunFile(run.path) as run_file:
        state = run_file.state(array_names(chip), len(chip.crossbars))
    chip.load_state(state)
    return chip


def open_run(
    path: str | os.PathLike[str],
    *,
    chip: BaseChip | None = None,
    figures: dict[str, Any] | None = None,
) -> Run:
    """Read a run file written by ``neuroemu simulate --out`` (``neuroemu.simulate(...,
    out=...)``). Metrics, predictions and test passes after programming are read at once;
    conductance snapshots and traces when first asked for. ``chip`` and ``figures``: the
    run's chip and last test pass when the caller holds them (``simulate`` does), instead of
    rebuilding the chip from the file and taking the figures of its last epoch."""
    import xarray as xr

    path = Path(path)
    with RunFile(path) as run_file:
        f, meta = run_file.file, run_file.meta
        metrics_group = f["metrics"]
        epochs = metrics_group["epoch"][()].astype(int) if "epoch" in metrics_group else []
        variables = {
            name: xr.Variable("epoch", data[()], {"units": attribute(data.attrs.get("unit", ""))})
            for name, data in metrics_group.items()
            if name != "epoch"
        }
        metrics = xr.Dataset(variables, coords={"epoch": np.asarray(epochs)})
        inference = f["inference"]
        prediction, label = (
            inference[key][()] if key in inference else None for key in ("prediction", "label")
        )
        aging = None
        if "aging" in f:
            group = f["aging"]
            aging = xr.Dataset(
                {
                    key: ("time", data[()], {"units": attribute(data.attrs.get("unit", ""))})
                    for key, data in group.items()
                    if key != "time_s"
                },
                coords={"time": ("time", group["time_s"][()], {"units": "s"})},
            )
    return Run(
        path,
        meta,
        metrics=metrics,
        prediction=prediction,
        label=label,
        aging=aging,
        figures=figures,
        chip=chip,
    )


def conductance_dataset(
    arrays: dict[str, np.ndarray], epochs: np.ndarray, meta: dict[str, Any]
) -> Any:
    """The ``conductance`` Dataset of :class:`Run` from snapshots ``arrays`` (S, each
    (snapshots, rows, columns)) named as in a run file (``conductance/<crossbar>``,
    ``bias/<layer>``), taken at ``epochs``."""
    import xarray as xr

    variables = {}
    bias_rows = {"source": ["+V_b", "-V_b"]}  # a resistive chip's two bias sources
    for key, data in arrays.items():
        kind, _, name = key.partition("/")
        if kind == "conductance":
            rows, _, cols = name.partition("->")  # dimensions named after the layers
            variables[name] = xr.Variable(("epoch", rows, cols), data, {"units": "S"})
        else:
            # A leaky chip has one bias row per layer, read at a rate of 1.
            dim = "source" if data.shape[1] == 2 else "bias_row"
            bias_rows.setdefault(dim, ["rate 1"])
            variables[f"bias:{name}"] = xr.Variable(("epoch", dim, name), data, {"units": "S"})
    conductance = xr.Dataset(variables, coords={"epoch": np.asarray(epochs), **bias_rows})
    return conductance.assign_coords(_node_coords(conductance, meta))


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


def _read_trace(group: Any, meta: dict[str, Any]) -> Any:
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
        unit = attribute(group[present[0]]["energy"].attrs.get("unit", "W"))
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
