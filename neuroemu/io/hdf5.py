"""HDF5 run files: the one module that writes them.

Layout (format ``neuroemu-run``, version 2; version 1 files, which snapshot every epoch and
have no ``/state``, are read and resumed as well):

- ``/meta`` attributes: ``format``, ``format_version``, ``neuroemu_version``, ``seed``,
  ``chip_name``, ``chip_yaml`` (the exact text of the chip file), ``chip_spec`` (the
  validated spec as JSON, SI units, cards included: what a chip is rebuilt from and what
  ``--resume`` compares), ``device_cards`` (the
  validated cards as JSON), ``device_cards_yaml`` (JSON: card name -> the exact text of its
  YAML file; an inline card's YAML dump), ``dataset``, ``dataset_source``, ``command``,
  ``started``, ``finished`` (ISO 8601, UTC; empty while running), ``host``, ``complete``
  (false until the run ends normally), and the run's settings: ``chip_file`` (the chip as
  it was named), ``dtype`` and ``epochs`` (the epochs asked for; files without them were
  written before they were kept);
- ``/metrics/<name>``: one value per evaluated epoch (epoch 0 is the chip as first
  programmed), each dataset with a ``unit`` attribute; ``/metrics/epoch`` numbers them.
  Names and units are those of :mod:`neuroemu.metrics`; NaN where an epoch did not report
  a metric (epoch 0 has no training figures);
- ``/conductance/<crossbar>`` (snapshots, rows, columns) and ``/bias/<layer>`` (snapshots,
  2, nodes): snapshots in S every ``snapshot_every`` evaluated epochs (and of epoch 0 and
  the last), chunked per snapshot and compressed; ``/snapshot_epoch`` numbers them;
- ``/state/conductance/<crossbar>``, ``/state/bias/<layer>``: the conductances after the
  last evaluated epoch (attribute ``epoch``), overwritten each epoch, for ``--resume``;
  with ``training.momentum``, ``/state/velocity/conductance/<crossbar>`` and
  ``/state/velocity/bias/<layer>`` hold each device's velocity (S) as well;
- ``/inference/prediction`` and ``/inference/label``: the last evaluation, per test sample;
- ``/aging`` (after ``--infer-at``): ``time_s`` and the metrics of the test pass at each
  time after programming, with programming noise, drift and read noise;
- ``/traces/epoch_<e>`` (when the spec names ``trace_samples``): ``samples`` (test indices),
  and for each phase ``free``, ``plus``, ``minus``: ``voltage/<layer>`` (sweep, sample,
  node) in V, ``residual`` (sweep, sample), ``power`` (sweep, sample) in W and ``energy``
  (sweep, sample); and ``update/<crossbar>`` (rows, columns) in S, the change those
  samples' centred EP estimate would make.

An inference run is written under a temporary name and renamed into place when complete. A
training run grows epoch by epoch and is flushed after each, so an interrupted run leaves a
file that opens and holds every finished epoch (``complete`` false); ``--resume`` continues
it. Ctrl-C and SIGTERM wait for an append under way to finish (:mod:`neuroemu.interrupts`),
so an epoch is in the file whole or not at all. An existing file is only replaced when the
caller says so.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..chip.state import ChipState
from ..errors import RunFileError
from ..files import AtomicFile
from ..interrupts import uninterrupted
from ..learning.registry import Traced
from ..metrics import metric
from ..spec.loader import LoadedChip
from ..version import __version__

FORMAT = "neuroemu-run"
FORMAT_VERSION = 2  # 2: /state for resuming, /snapshot_epoch (snapshots every k epochs)


class RecordedChip(Protocol):
    """What a run file needs of a chip: its identity, the names and shapes of its arrays,
    and its state (:meth:`~neuroemu.chip.base.BaseChip.state`)."""

    @property
    def name(self) -> str: ...

    @property
    def seed(self) -> int: ...

    @property
    def source(self) -> LoadedChip | None: ...

    @property
    def spec(self) -> Any: ...

    @property
    def crossbars(self) -> Sequence[Any]: ...

    @property
    def bias_conductance(self) -> Sequence[np.ndarray]: ...

    def state(self) -> ChipState: ...


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def check_output_path(path: str | os.PathLike[str], force: bool = False) -> Path:
    """Refuse, before any work starts, to write where the run file cannot go."""
    path = Path(path)
    if path.is_dir():
        raise RunFileError(f"{path}: is a folder, expected a file name")
    if path.exists() and not force:
        raise RunFileError(f"{path}: already exists (pass --force to overwrite it)")
    if not path.parent.is_dir():
        raise RunFileError(f"{path}: folder {path.parent} does not exist")
    return path


def open_run_file(path: str | os.PathLike[str], mode: str = "r") -> Any:
    """Open a run file with h5py, checking that it is one this neuroemu can read: an HDF5
    file, of format ``neuroemu-run``, not of a newer version, with every group."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise RunFileError(f"{path}: no such run file")
    try:
        f = h5py.File(path, mode)
    except OSError:
        raise RunFileError(f"{path}: not an HDF5 file") from None
    try:
        attrs = f["meta"].attrs if "meta" in f else {}
        fmt = attrs.get("format")
        if (fmt.decode() if isinstance(fmt, bytes) else fmt) != FORMAT:
            raise RunFileError(f"{path}: an HDF5 file, but not a neuroemu run file")
        version = int(attrs.get("format_version", 0))
        if version > FORMAT_VERSION:
            raise RunFileError(
                f"{path}: format version {version} is newer than this neuroemu reads "
                f"({FORMAT_VERSION}); upgrade neuroemu"
            )
        for group in ("metrics", "conductance", "bias", "inference"):
            if group not in f:
                raise RunFileError(f"{path}: missing group /{group}")
    except RunFileError:
        f.close()
        raise
    return f


def _card_files(chip: RecordedChip) -> str:
    """The YAML text of every card the chip uses, by card name, as JSON (empty for a chip
    not read from a file)."""
    return json.dumps(dict(chip.source.cards) if chip.source else {})


def _cards(chip: RecordedChip) -> str:
    """Every card the chip uses (device arrays, diodes, the neuron), as JSON."""
    cards = {}
    found: list[Any] = [crossbar.device for crossbar in chip.crossbars]
    found += [getattr(layer, "diode", None) for layer in chip.spec.layers]
    found.append(getattr(chip.spec, "neuron", None))
    for card in found:
        if card is not None:
            cards[card.name] = card.model_dump(mode="json")
    return json.dumps(cards)


class RunWriter:
    """An open run file that grows by one evaluated epoch at a time."""

    def __init__(
        self,
        file: Any,
        path: Path,
        arrays: list[str],
        pending: AtomicFile | None = None,
    ):
        self.file = file
        self.path = path
        self.arrays = arrays  # names of the conductance datasets: crossbars, then biases
        self.pending = pending

    # ------------------------------------------------------------------ opening
    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        chip: RecordedChip,
        *,
        dataset: str,
        dataset_source: str,
        started: str,
        settings: dict[str, Any] | None = None,
        command: str | None = None,
        force: bool = False,
        atomic: bool = False,
    ) -> RunWriter:
        """Start a run file. ``settings``: the run's ``chip_file``, ``dtype`` and ``epochs``
        (``/meta``). ``atomic``: write under a temporary name until :meth:`close`."""
        import h5py

        path = check_output_path(path, force)
        pending = AtomicFile(path) if atomic else None
        target = pending.partial if pending is not None else path
        try:
            f = h5py.File(target, "w")
        except OSError as exc:
            if pending is not None:
                pending.abandon()
            raise RunFileError(f"{path}: cannot write ({exc})") from None
        meta = f.create_group("meta")
        meta.attrs.update(
            {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "neuroemu_version": __version__,
                "seed": chip.seed,
                "chip_name": chip.name,
                "chip_yaml": chip.source.text if chip.source else "",
                "chip_spec": chip.spec.model_dump_json(),
                "device_cards": _cards(chip),
                "device_cards_yaml": _card_files(chip),
                "dataset": dataset,
                "dataset_source": dataset_source,
                "command": command if command is not None else " ".join(sys.argv),
                "started": started,
                "finished": "",
                "host": platform.node(),
                "complete": False,
                **(settings or {}),
            }
        )
        for group in ("metrics", "conductance", "bias", "inference"):
            f.create_group(group)
        for crossbar in chip.crossbars:
            rows, cols = crossbar.shape
            f["conductance"].create_dataset(
                crossbar.name.replace("/", "_"),
                shape=(0, rows, cols),
                maxshape=(None, rows, cols),
                chunks=(1, rows, cols),
                dtype="f8",
                compression="gzip",
                compression_opts=1,
            ).attrs["unit"] = "S"
        for layer, bias in zip(chip.spec.layers, chip.bias_conductance, strict=True):
            f["bias"].create_dataset(
                layer.name, shape=(0, *bias.shape), maxshape=(None, *bias.shape), dtype="f8"
            ).attrs["unit"] = "S"
        return cls(f, path, array_names(chip), pending)

    @classmethod
    def resume(
        cls,
        path: str | os.PathLike[str],
        chip: RecordedChip,
        settings: dict[str, Any] | None = None,
    ) -> tuple[RunWriter, int, ChipState]:
        """Reopen a training run of ``chip``, checked to be the run that wrote the file:
        the chip's spec, cards and seed, and the run's ``settings`` that decide its numbers
        (``dataset``, ``limit``: -1 for all samples, ``dtype``; a file that does not say one
        is taken at its word). Returns the writer, the last finished epoch and the chip's
        state after it. A run that does not fit is refused with the field and both values,
        and the file is left as it was."""
        path = Path(path)
        f = open_run_file(path, "a")
        try:
            _check_same_run(path, f["meta"].attrs, chip, settings or {})
            epochs = f["metrics/epoch"][()] if "epoch" in f["metrics"] else np.zeros(0)
            if len(epochs) == 0:
                raise RunFileError(f"{path}: holds no finished epoch to resume from")
            state = read_state(f, array_names(chip), len(chip.crossbars))
            if "snapshot_epoch" not in f:  # migrate a version 1 file: snapshots numbered
                n = f[array_names(chip)[0]].shape[0]
                numbers = epochs[:n].astype("i8")
                data = f.create_dataset("snapshot_epoch", data=numbers, maxshape=(None,))
                data.attrs["unit"] = "1"
            f["meta"].attrs["format_version"] = FORMAT_VERSION
            f["meta"].attrs["complete"] = False
        except KeyError as exc:
            f.close()
            raise RunFileError(f"{path}: missing {exc.args[0]} (not a complete run file)") from None
        except RunFileError:
            f.close()
            raise
        return cls(f, path, array_names(chip)), int(epochs[-1]), state

    # ------------------------------------------------------------------ writing
    @uninterrupted
    def append(
        self,
        epoch: int,
        metrics: dict[str, Any],
        state: ChipState,
        prediction: np.ndarray | None = None,
        labels: np.ndarray | None = None,
        snapshot: bool = True,
    ) -> None:
        """Add one evaluated epoch: its metrics (each named in :mod:`neuroemu.metrics`),
        the chip's state (for ``--resume``) and, when ``snapshot``, a snapshot of every
        conductance."""
        f = self.file
        n = f["metrics/epoch"].shape[0] if "epoch" in f["metrics"] else 0
        units = {key: metric(key).unit for key in ("epoch", *metrics)}  # unknown: an error
        for key, value in {"epoch": epoch, **metrics}.items():
            unit = units[key]
            if key not in f["metrics"]:
                data = f["metrics"].create_dataset(
                    key, shape=(n,), maxshape=(None,), dtype="f8", fillvalue=np.nan
                )
                data.attrs["unit"] = unit
            data = f["metrics"][key]
            data.resize((n + 1,))
            data[n] = float(value)
        for key in f["metrics"]:  # metrics this epoch did not report stay NaN
            if f["metrics"][key].shape[0] < n + 1:
                f["metrics"][key].resize((n + 1,))
        arrays = list(zip(self.arrays, state.arrays, strict=True))
        group = f.require_group("state")
        kept = list(arrays)
        if state.velocities is not None:  # training with momentum: its velocities too
            kept += [
                (f"velocity/{name}", v)
                for name, v in zip(self.arrays, state.velocities, strict=True)
            ]
        for name, array in kept:
            if name in group:
                group[name][...] = array
            else:
                group.create_dataset(name, data=array).attrs["unit"] = "S"
        group.attrs["epoch"] = epoch
        if snapshot:
            for name, array in arrays:
                data = f[name]
                data.resize((data.shape[0] + 1, *data.shape[1:]))
                data[-1] = array
            if "snapshot_epoch" not in f:
                f.create_dataset("snapshot_epoch", shape=(0,), maxshape=(None,), dtype="i8").attrs[
                    "unit"
                ] = "1"
            data = f["snapshot_epoch"]
            data.resize((data.shape[0] + 1,))
            data[-1] = epoch
        if prediction is not None and labels is not None:
            for key, value in (("prediction", prediction), ("label", labels)):
                if key in f["inference"]:
                    del f["inference"][key]
                data = f["inference"].create_dataset(
                    key, data=np.asarray(value), compression="gzip"
                )
                data.attrs["unit"] = "class"
        f.flush()

    @uninterrupted
    def append_traces(
        self, epoch: int, samples: list[int], traced: Traced, layers: Sequence[str]
    ) -> None:
        """Write the per-sweep record of the traced samples at ``epoch`` (see module docs);
        ``layers`` names the free layers."""
        group = self.file.require_group("traces").create_group(f"epoch_{epoch}")
        group.attrs["epoch"] = epoch
        group.create_dataset("samples", data=np.asarray(samples)).attrs["unit"] = "index"
        for phase, trace in traced.phases.items():
            g = group.create_group(phase)
            for layer, voltages in zip(layers, trace.voltages, strict=True):
                g.create_dataset(f"voltage/{layer}", data=voltages).attrs["unit"] = "V"
            g.create_dataset("residual", data=trace.residual).attrs["unit"] = "1"
            g.create_dataset("power", data=trace.power).attrs["unit"] = "W"
            g.create_dataset("energy", data=trace.energy).attrs["unit"] = trace.energy_unit
        for name, update in traced.update.items():
            group.create_dataset(
                f"update/{name}", data=update.astype(np.float32), compression="gzip"
            ).attrs["unit"] = "S"
        self.file.flush()

    @uninterrupted
    def append_aging(self, entries: list[dict[str, Any]]) -> None:
        """Write inference results at times after programming (``/aging``)."""
        if "aging" in self.file:
            del self.file["aging"]
        group = self.file.create_group("aging")
        for key in entries[0]:
            unit = metric(key).unit
            data = group.create_dataset(key, data=np.array([e[key] for e in entries], dtype="f8"))
            data.attrs["unit"] = unit
        self.file.flush()

    @uninterrupted
    def close(self, complete: bool = True) -> Path:
        """Close the file; ``complete`` marks a run that ended normally."""
        if not self.file:
            return self.path
        try:
            self.file["meta"].attrs["complete"] = complete
            self.file["meta"].attrs["finished"] = now() if complete else ""
        finally:
            self.file.close()
        if self.pending is not None:
            if complete:
                self.pending.commit()
            else:
                self.pending.abandon()
        return self.path


def _check_same_run(path: Path, meta: Any, chip: RecordedChip, settings: dict[str, Any]) -> None:
    """Refuse to resume the run of ``meta`` with another chip or other settings."""

    def refuse(what: str, kept: Any, asked: Any) -> None:
        raise RunFileError(
            f"{path}: cannot resume: {what} is {asked} here, but the run used {kept}"
        )

    if "chip_spec" in meta:  # the validated spec: every setting, every card
        kept_spec = json.loads(meta["chip_spec"])
        difference = first_difference(kept_spec, chip.spec.model_dump(mode="json"))
        if difference is not None:
            key, kept, asked = difference
            refuse(f"the chip spec's {key}", _short(kept), _short(asked))
    else:  # files that keep the chip's text and cards only
        text = chip.source.text if chip.source else ""
        if meta["chip_name"] != chip.name or meta["chip_yaml"] != text:
            raise RunFileError(
                f"{path}: cannot resume: the run is of chip {meta['chip_name']!r} with another "
                f"spec than this chip {chip.name!r}"
            )
        if "device_cards_yaml" in meta:
            kept_cards = json.loads(meta["device_cards_yaml"])
            cards = json.loads(_card_files(chip))
            names = kept_cards.keys() | cards.keys()
            changed = sorted(n for n in names if kept_cards.get(n) != cards.get(n))
            if changed:
                raise RunFileError(
                    f"{path}: cannot resume: device card {', '.join(changed)} is not what the "
                    "run used"
                )
    if int(meta["seed"]) != chip.seed:
        refuse("the seed", int(meta["seed"]), chip.seed)
    for key, asked in settings.items():
        if key in meta and attribute(meta[key]) != asked:
            kept = attribute(meta[key])
            if key == "limit":
                kept, asked = (_samples(kept), _samples(asked))
            refuse(
                {"dataset": "the data set", "limit": "the limit"}.get(key, f"the {key}"),
                kept,
                asked,
            )


def _samples(limit: int) -> str:
    return "all samples" if limit < 0 else f"{limit} samples per part"


def attribute(value: Any) -> Any:
    """An HDF5 attribute's value as Python reads it (text as ``str``, numbers as numbers)."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _short(value: Any) -> str:
    """A spec's value, short, in SI (a float to 10 significant digits)."""
    if isinstance(value, float):
        return f"{value:.10g}"
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def first_difference(a: Any, b: Any, where: str = "") -> tuple[str, Any, Any] | None:
    """The first place two JSON-like values differ: (key path, a's value, b's value)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(a) + [k for k in b if k not in a]:
            found = first_difference(a.get(key), b.get(key), f"{where}.{key}" if where else key)
            if found is not None:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            found = first_difference(x, y, f"{where}[{i}]")
            if found is not None:
                return found
        return None
    return None if a == b else (where or "(root)", a, b)


def array_names(chip: RecordedChip) -> list[str]:
    """The datasets of a chip's conductances: ``conductance/<crossbar>``, then
    ``bias/<layer>``, in the order of :class:`~neuroemu.chip.state.ChipState`."""
    names = [f"conductance/{c.name}" for c in chip.crossbars]
    return names + [f"bias/{layer.name}" for layer in chip.spec.layers]


def read_state(f: Any, names: list[str], n_crossbars: int) -> ChipState:
    """The chip state a run file holds after its last evaluated epoch: ``/state`` (format
    version 2), else the last snapshot (version 1 snapshots every epoch)."""
    source = f["state"] if "state" in f else None
    arrays = [source[name][()] if source is not None else f[name][-1] for name in names]
    velocities = None
    if source is not None and "velocity" in source:  # trained with momentum
        velocities = [source[f"velocity/{name}"][()] for name in names]
    return ChipState(arrays[:n_crossbars], arrays[n_crossbars:], velocities)
