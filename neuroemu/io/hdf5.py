"""HDF5 run files: the one module that writes them, and the layout every reader goes through.

A run file is ``RUN.h5`` and, beside it, the folder ``RUN.h5.parts/``:

- ``RUN.h5`` (format ``neuroemu-run``, version 3) is small and written whole at each commit:
  ``/meta`` (attributes: ``format``, ``format_version``, ``neuroemu_version``, ``run_id``,
  ``seed``, ``chip_name``, ``chip_yaml`` (the exact text of the chip file), ``chip_spec``
  (the validated spec as JSON, SI units, cards included: what a chip is rebuilt from and
  what ``--resume`` compares), ``device_cards`` (the validated cards as JSON),
  ``device_cards_yaml`` (JSON: card name -> the exact text of its YAML file; an inline
  card's YAML dump), ``dataset``, ``dataset_source``, ``command``, ``started``,
  ``finished`` (ISO 8601, UTC; empty until the run ends), ``host``, ``complete``, and the
  run's settings ``chip_file``, ``dtype``, ``epochs`` (asked for) and ``limit`` (samples
  per part, -1: all)); ``/metrics/<name>``, one value per evaluated epoch (epoch 0 is the
  chip as first programmed), named and united as in :mod:`neuroemu.metrics`, NaN where an
  epoch did not report one; ``/metrics/epoch``; ``/inference/prediction`` and ``label``
  (the last evaluation, per test sample); ``/aging`` (after ``--infer-at``: ``time_s`` and
  the test pass's metrics at each time after programming); ``/parts`` (``epoch``, ``file``,
  ``kind``: the part files the run keeps) and ``/snapshot_epoch``.
- ``RUN.h5.parts/<run_id>-<epoch>.h5``, one per evaluated epoch, written once:
  ``/state/conductance/<crossbar>`` (rows, columns) and ``/state/bias/<layer>`` in S, the
  conductances after that epoch; with ``training.momentum``,
  ``<run_id>-<epoch>-velocity.h5`` holds ``/state/velocity/...`` (S) beside it, and with
  an accumulator ``training.scheme`` ``<run_id>-<epoch>-residual.h5`` holds each
  device's accumulator, ``/state/residual/...`` (S), and with ``scheme: tiki-taka``
  ``<run_id>-<epoch>-fast.h5`` each fast device's distance from its symmetry point,
  ``/state/fast/...`` (S). The parts of snapshot epochs (every
  ``snapshot_every``-th, epoch 0 and the last; kind ``snapshot``) stay; so does the last
  state with its velocities, accumulators and fast arrays (kinds ``state``, ``velocity``,
  ``residual``, ``fast``), the run's state; the others are removed once a later epoch is
  committed.
- ``RUN.h5.parts/<run_id>-<epoch>-traces.h5`` (kind ``traces``), for the samples the spec's
  ``trace_samples`` names, at every evaluated epoch: ``/traces/epoch_<e>``: ``samples``,
  and for each phase ``free``, ``plus``, ``minus`` ``voltage/<layer>`` (sweep, sample, node)
  in V, ``residual``, ``power`` (W) and ``energy`` (sweep, sample), and
  ``update/<crossbar>`` (S, float32).

Both kinds of file are sealed (:func:`neuroemu.files.seal`): their first 512 bytes, an HDF5
user block, hold the SHA-256 of the rest, which every open checks, so a file cut short or
changed by a single bit is refused, never read.

A commit survives SIGKILL at any instant: the epoch's part is written under a temporary
name, sealed, flushed and renamed into the folder; then ``RUN.h5`` is written whole under a
temporary name, sealed, flushed and renamed over the previous one; then parts no longer
referenced are removed. ``RUN.h5`` is therefore at every instant absent (before the first
commit), the previous commit or the new one, and every part it names is whole. A commit
writes what the epoch adds (its state, its traces) and the small ``RUN.h5``, never the
snapshots of earlier epochs. A writer holds ``RUN.h5.lock`` (:class:`neuroemu.files.Lock`,
which works on NFS) from start to end: a second writer, ``--force`` or not, is refused,
and an old run file that a new run replaces survives until the new run's first commit.

Version 1 and 2 files (one file: ``/conductance``, ``/bias`` snapshots, ``/state``,
``/traces`` inside it) are read as they are; ``--resume`` converts one to version 3 with
its first commit.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .. import failpoints
from ..chip.state import ChipState
from ..errors import NeuroemuError, RunFileError, one_line
from ..files import Lock, LockHeld, fsync_path, partial_prefix, sealed, sealed_image
from ..interrupts import uninterrupted
from ..learning.registry import Traced
from ..metrics import metric
from ..spec.loader import LoadedChip
from ..version import __version__

FORMAT = "neuroemu-run"
#: 3: a small file rewritten per commit and a folder of parts; 2: /state, /snapshot_epoch.
FORMAT_VERSION = 3
#: The digital memories a chip state may hold beside its conductances: the part kind (and
#: ``/state`` group) of each, and its :class:`~neuroemu.chip.state.ChipState` field.
MEMORY = {"velocity": "velocities", "residual": "residuals", "fast": "fast"}


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


def parts_folder(path: str | os.PathLike[str]) -> Path:
    """The folder of a run file's parts: ``RUN.h5.parts`` beside ``RUN.h5``."""
    path = Path(path)
    return path.with_name(f"{path.name}.parts")


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


def _lock(path: Path) -> Lock:
    """The lock of the run file ``path``, taken, or a one-line error naming its holder.
    Holding it, the writer removes what a killed writer of ``path`` left half written."""
    try:
        lock = Lock(path).acquire()
        for stale in path.parent.glob(f"{partial_prefix(path)}*"):
            stale.unlink(missing_ok=True)
        return lock
    except LockHeld as exc:
        raise RunFileError(
            f"{path}: another run writes it (lock {path.name}.lock held by {exc}); if that "
            f"process is gone, remove {path.name}.lock"
        ) from None
    except OSError as exc:
        raise RunFileError(f"{path}: cannot take its lock ({one_line(exc)})") from None


# --------------------------------------------------------------------------- reading
def _damaged(path: Path) -> RunFileError:
    return RunFileError(
        f"{path}: damaged (its content does not match its seal: cut short or changed since "
        "it was written)"
    )


def _open_hdf5(path: Path, what: str, sealed_only: bool = False) -> tuple[Any, bool]:
    """An HDF5 file opened for reading and whether it carries a seal (checked: a file whose
    content does not match its seal is refused; ``sealed_only``: so is one without)."""
    import h5py

    if not path.is_file():
        raise RunFileError(f"{path}: no such {what}")
    try:
        whole = sealed(path)
    except OSError as exc:
        raise RunFileError(f"{path}: cannot read ({one_line(exc)})") from None
    if whole is False or (whole is None and sealed_only):
        raise _damaged(path)
    try:
        return h5py.File(path, "r"), whole is True
    except OSError:
        raise (_damaged(path) if whole else RunFileError(f"{path}: not an HDF5 file")) from None


class RunFile:
    """A run file opened for reading, whatever its version: ``RUN.h5`` (checked: an HDF5
    file of format ``neuroemu-run``, not newer than this neuroemu reads, whole) and, for
    version 3, its parts. Use as a context manager."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self.file, self.sealed = _open_hdf5(self.path, "run file")
        try:
            self._check()
        except RunFileError:
            self.file.close()
            raise
        except Exception as exc:  # a damaged file h5py half reads
            self.file.close()
            raise RunFileError(f"{self.path}: damaged ({one_line(exc)})") from None

    def _check(self) -> None:
        f = self.file
        attrs = f["meta"].attrs if "meta" in f else {}
        if attribute(attrs.get("format")) != FORMAT:
            raise RunFileError(f"{self.path}: an HDF5 file, but not a neuroemu run file")
        self.version = int(attrs.get("format_version", 0))
        if self.version > FORMAT_VERSION:
            raise RunFileError(
                f"{self.path}: format version {self.version} is newer than this neuroemu "
                f"reads ({FORMAT_VERSION}); upgrade neuroemu"
            )
        needed = (
            ("metrics", "inference", "parts")
            if self.version >= 3
            else ("metrics", "conductance", "bias", "inference")
        )
        for group in needed:
            if group not in f:
                raise RunFileError(f"{self.path}: missing group /{group}")
        if self.version >= 3 and not self.sealed:  # every version 3 file is sealed
            raise _damaged(self.path)
        self.meta = {key: attribute(value) for key, value in attrs.items()}

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> RunFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ parts
    def _parts(self) -> list[tuple[int, str, str]]:
        """(epoch, file, kind) of every part, in the order of the index (version 3)."""
        parts = self.file["parts"]
        files = [attribute(name) for name in parts["file"][()]]
        kinds = [attribute(kind) for kind in parts["kind"][()]]
        return list(zip(parts["epoch"][()].tolist(), files, kinds, strict=True))

    @contextmanager
    def part(self, name: str) -> Iterator[Any]:
        """One part file of the run, opened and checked."""
        folder = parts_folder(self.path)
        if not folder.is_dir():
            raise RunFileError(
                f"{self.path}: its parts folder {folder.name} is missing (a run file's parts "
                "folder goes with it: copy or move both)"
            )
        if not (folder / name).is_file():
            raise RunFileError(f"{self.path}: part file {name} is missing from {folder.name}")
        f, _ = _open_hdf5(folder / name, "part file", sealed_only=True)
        try:
            yield f
        finally:
            f.close()

    def epochs(self) -> np.ndarray:
        metrics = self.file["metrics"]
        return metrics["epoch"][()].astype(int) if "epoch" in metrics else np.zeros(0, int)

    def snapshots(self) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Every conductance snapshot, ``({"conductance/<crossbar>": (snapshots, rows,
        columns), "bias/<layer>": ...}, epochs)``."""
        f = self.file
        if self.version < 3:
            arrays = {f"conductance/{k}": v[()] for k, v in f["conductance"].items()}
            arrays.update({f"bias/{k}": v[()] for k, v in f["bias"].items()})
            if "snapshot_epoch" in f:
                epochs = f["snapshot_epoch"][()]
            else:  # version 1: a snapshot per evaluated epoch
                n = min((a.shape[0] for a in arrays.values()), default=0)
                epochs = self.epochs()[:n]
            return arrays, np.asarray(epochs)
        taken = sorted((e, name) for e, name, kind in self._parts() if kind == "snapshot")
        stacks: dict[str, list[np.ndarray]] = {}
        for _, name in taken:
            with self.part(name) as part:
                for kind in ("conductance", "bias"):
                    for key, data in part["state"][kind].items():
                        stacks.setdefault(f"{kind}/{key}", []).append(data[()])
        arrays = {key: np.stack(values) for key, values in stacks.items()}
        return arrays, np.array([epoch for epoch, _ in taken], dtype=np.int64)

    def state(self, names: list[str], n_crossbars: int) -> ChipState:
        """The chip's state after the last evaluated epoch (``names``: see
        :func:`array_names`)."""
        if self.version < 3:
            return read_state(self.file, names, n_crossbars)
        parts = self._parts()
        states = sorted((e, name) for e, name, kind in parts if kind in ("snapshot", "state"))
        if not states:
            raise RunFileError(f"{self.path}: holds no state to resume from")
        epoch, name = states[-1]
        with self.part(name) as part:
            state = read_state(part, names, n_crossbars)
        for e, memory, kind in parts:
            if kind in MEMORY and e == epoch:
                with self.part(memory) as part:
                    arrays = [part[f"state/{kind}/{n}"][()] for n in names]
                setattr(state, MEMORY[kind], arrays)
        return state

    def trace_groups(self) -> Iterator[Any]:
        """Each ``/traces/epoch_<e>`` group of the run (open while the caller reads it)."""
        if self.version < 3:
            yield from self.file.get("traces", {}).values()
            return
        for _, name, kind in self._parts():
            if kind == "traces":
                with self.part(name) as part:
                    yield from part["traces"].values()

    def size(self) -> int:
        """Bytes of the run on disk: ``RUN.h5`` and its parts."""
        total = self.path.stat().st_size
        if self.version >= 3:
            folder = parts_folder(self.path)
            total += sum((folder / name).stat().st_size for _, name, _ in self._parts())
        return total


def read_state(f: Any, names: list[str], n_crossbars: int) -> ChipState:
    """The chip state an HDF5 group holds: ``/state`` (a part, or a version 2 file), else
    the last snapshot (version 1 snapshots every epoch)."""
    source = f["state"] if "state" in f else None
    arrays = [source[name][()] if source is not None else f[name][-1] for name in names]
    state = ChipState(arrays[:n_crossbars], arrays[n_crossbars:])
    for memory, field in MEMORY.items():  # trained with momentum, or accumulators
        if source is not None and memory in source:
            setattr(state, field, [source[f"{memory}/{name}"][()] for name in names])
    return state


def array_names(chip: RecordedChip) -> list[str]:
    """The datasets of a chip's conductances: ``conductance/<crossbar>``, then
    ``bias/<layer>``, in the order of :class:`~neuroemu.chip.state.ChipState`."""
    names = [f"conductance/{c.name}" for c in chip.crossbars]
    return names + [f"bias/{layer.name}" for layer in chip.spec.layers]


def attribute(value: Any) -> Any:
    """An HDF5 attribute's value as Python reads it (text as ``str``, numbers as numbers)."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


# --------------------------------------------------------------------------- writing
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


def _write_sealed(target: Path, write: Any, point: str) -> None:
    """Write the HDF5 file ``target`` whole and durably: ``write(h5py_file)`` fills it in
    memory; the image, sealed (:func:`neuroemu.files.sealed_image`), is written under a
    temporary name, flushed and renamed into place (failpoints ``<point>.writing`` and
    ``<point>``). A failing write (a full disk) is a plain ``OSError`` and leaves nothing."""
    import h5py

    in_memory = f"{target.name}-{uuid.uuid4().hex}"
    with h5py.File(in_memory, "w", driver="core", backing_store=False, libver="latest") as f:
        write(f)
        f.flush()
        image = f.id.get_file_image()
    partial = target.with_name(f"{partial_prefix(target)}{os.getpid()}")
    try:
        with open(partial, "wb") as out:
            out.write(sealed_image(image))
            failpoints.reach(f"{point}.writing")
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    fsync_path(target.parent)
    failpoints.reach(point)


def _reason(exc: OSError) -> str:
    """Why a write failed, in a few words (the system's, when it says)."""
    return os.strerror(exc.errno) if exc.errno else one_line(exc)


class RunWriter:
    """A run file being written, one evaluated epoch (one commit) at a time, under its lock.

    It keeps in memory what ``RUN.h5`` holds (metadata, metrics, the last predictions, the
    aging passes, the index of parts) and writes it whole at each commit; each epoch's
    state and traces go to a part of their own (see the module docs)."""

    def __init__(self, path: Path, lock: Lock, meta: dict[str, Any], arrays: list[str]):
        self.path = path
        self.lock = lock
        self.meta = meta
        self.arrays = arrays  # names of the state datasets: crossbars, then biases
        self.metrics: dict[str, list[float]] = {}
        self.epochs: list[int] = []
        self.prediction: np.ndarray | None = None
        self.label: np.ndarray | None = None
        self.aging: list[dict[str, Any]] = []
        self.parts: list[tuple[int, str, str]] = []  # (epoch, file, kind)
        self.uncommitted: set[str] = set()  # parts written since the last commit
        self.closed = False

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
    ) -> RunWriter:
        """Start a run file at ``path``: nothing is written until the first commit, which
        replaces an existing file only with ``force``. ``settings``: the run's
        ``chip_file``, ``dtype``, ``epochs`` and ``limit`` (``/meta``)."""
        path = check_output_path(path, force)
        lock = _lock(path)
        try:
            check_output_path(path, force)  # it may have appeared while the lock was taken
        except RunFileError:
            lock.release()
            raise
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "neuroemu_version": __version__,
            "run_id": uuid.uuid4().hex[:12],
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
        return cls(path, lock, meta, array_names(chip))

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
        and the file is left as it was; a version 1 or 2 file becomes version 3 with the
        first commit."""
        path = Path(path)
        lock = _lock(path)
        try:
            with RunFile(path) as run:
                _check_same_run(path, run.file["meta"].attrs, chip, settings or {})
                epochs = run.epochs()
                if len(epochs) == 0:
                    raise RunFileError(f"{path}: holds no finished epoch to resume from")
                names = array_names(chip)
                state = run.state(names, len(chip.crossbars))
                writer = cls(path, lock, dict(run.meta), names)
                writer.meta.setdefault("run_id", uuid.uuid4().hex[:12])
                writer._load(run)
        except KeyError as exc:
            lock.release()
            raise RunFileError(f"{path}: missing {exc.args[0]} (not a complete run file)") from None
        except BaseException:
            lock.release()
            raise
        writer.meta.update(format_version=FORMAT_VERSION, complete=False, finished="")
        return writer, int(epochs[-1]), state

    def _load(self, run: RunFile) -> None:
        """What ``RUN.h5`` of ``run`` holds, in memory; a version 1 or 2 file's snapshots,
        state and traces written out as parts (the file itself is replaced only by the
        first commit)."""
        f = run.file
        self.epochs = run.epochs().tolist()
        for name, data in f["metrics"].items():
            if name != "epoch":
                self.metrics[name] = data[()].astype(float).tolist()
        inference = f["inference"]
        self.prediction = inference["prediction"][()] if "prediction" in inference else None
        self.label = inference["label"][()] if "label" in inference else None
        if "aging" in f:
            group = f["aging"]
            times = group["time_s"][()]
            self.aging = [
                {key: float(data[()][i]) for key, data in group.items()} for i in range(len(times))
            ]
        if run.version >= 3:
            self.parts = run._parts()
            return
        # An older file: a part per snapshot and per traced epoch, and the last state.
        arrays, snapshot_epochs = run.snapshots()
        last = int(self.epochs[-1])
        for i, epoch in enumerate(snapshot_epochs.tolist()):
            if epoch != last:  # the last state is written below
                self._write_state(epoch, [arrays[n][i] for n in self.arrays], True)
        n_crossbars = sum(name.startswith("conductance/") for name in self.arrays)
        state = read_state(f, self.arrays, n_crossbars)
        self._write_state(last, state, last in snapshot_epochs)
        for group in f.get("traces", {}).values():
            epoch = int(group.attrs["epoch"])
            self._write_traces(
                epoch, lambda out, g=group: g.file.copy(g, out.require_group("traces"))
            )

    # ------------------------------------------------------------------ writing
    @uninterrupted
    def commit_epoch(
        self,
        epoch: int,
        metrics: dict[str, Any],
        state: ChipState,
        prediction: np.ndarray | None = None,
        labels: np.ndarray | None = None,
        snapshot: bool = True,
        traced: Traced | None = None,
        samples: Sequence[int] = (),
        layers: Sequence[str] = (),
    ) -> None:
        """Commit one evaluated epoch: its metrics (each named in :mod:`neuroemu.metrics`),
        the chip's state (a snapshot when ``snapshot``), the last predictions and, with
        ``traced``, the per-sweep record of the traced ``samples`` (``layers`` names the
        free layers). Whole, or not at all, whatever instant the process is killed."""
        for key in ("epoch", *metrics):
            metric(key)  # an unknown name is an error, and nothing of the epoch is written
        row = len(self.epochs)
        self.epochs.append(epoch)
        for values in self.metrics.values():
            values.append(np.nan)
        for key, value in metrics.items():
            self.metrics.setdefault(key, [np.nan] * (row + 1))[row] = float(value)
        if prediction is not None and labels is not None:
            self.prediction, self.label = np.asarray(prediction), np.asarray(labels)
        self._write_state(epoch, state, snapshot)
        if traced is not None:
            self._write_traces(epoch, lambda f: _write_traces(f, epoch, traced, samples, layers))
        self._commit()

    @uninterrupted
    def commit_aging(self, entries: list[dict[str, Any]]) -> None:
        """Commit the test passes at times after programming (``/aging``)."""
        for key in entries[0]:
            metric(key)
        self.aging = entries
        self._commit()

    def _write_state(
        self, epoch: int, state: ChipState | Sequence[np.ndarray], snapshot: bool
    ) -> None:
        """Write the part of ``epoch``'s state (a chip state, or its conductance arrays)
        into the parts folder, and a part for each digital memory the state holds."""
        arrays = state.arrays if isinstance(state, ChipState) else state

        def write(f: Any, what: Sequence[np.ndarray], prefix: str) -> None:
            group = f.create_group("state")
            group.attrs["epoch"] = epoch
            for key, array in zip(self.arrays, what, strict=True):
                group.create_dataset(f"{prefix}{key}", data=array).attrs["unit"] = "S"

        kind = "snapshot" if snapshot else "state"
        self._write_part(epoch, f"{epoch:05d}", lambda f: write(f, arrays, ""), kind)
        for memory, field in MEMORY.items():  # kept with the last state only, for --resume
            values = getattr(state, field, None)
            if values is not None:
                part = lambda f, v=values, m=memory: write(f, v, f"{m}/")  # noqa: E731
                self._write_part(epoch, f"{epoch:05d}-{memory}", part, memory)

    def _write_traces(self, epoch: int, write: Any) -> None:
        self._write_part(epoch, f"{epoch:05d}-traces", write, "traces")

    def _write_part(self, epoch: int, stem: str, write: Any, kind: str) -> None:
        folder = parts_folder(self.path)
        name = f"{self.meta['run_id']}-{stem}.h5"
        try:
            folder.mkdir(exist_ok=True)
            _write_sealed(folder / name, write, "commit.part")
        except OSError as exc:
            raise RunFileError(
                f"{self.path}: cannot write epoch {epoch} ({_reason(exc)}); {self._what_is_left()}"
            ) from None
        self.parts = [p for p in self.parts if p[1] != name] + [(epoch, name, kind)]
        self.uncommitted.add(name)

    def _commit(self) -> None:
        """Write ``RUN.h5`` whole (the commit), then remove the parts it no longer needs."""
        try:
            _write_sealed(self.path, self._write_main, "commit.main")
        except OSError as exc:
            raise RunFileError(
                f"{self.path}: cannot write ({_reason(exc)}); {self._what_is_left()}"
            ) from None
        self.uncommitted.clear()
        self._clean()

    def _what_is_left(self) -> str:
        """What a failed write leaves, for its error message."""
        if self.path.is_file():
            return "the file keeps what it held before (--resume goes on from there)"
        return "nothing was written"

    def _write_main(self, f: Any) -> None:
        meta = f.create_group("meta")
        meta.attrs.update(self.meta)
        metrics = f.create_group("metrics")
        metrics.create_dataset("epoch", data=np.asarray(self.epochs, dtype=np.int64))
        metrics["epoch"].attrs["unit"] = "1"
        for key, values in self.metrics.items():
            metrics.create_dataset(key, data=np.asarray(values, dtype=np.float64))
            metrics[key].attrs["unit"] = metric(key).unit
        inference = f.create_group("inference")
        for key, value in (("prediction", self.prediction), ("label", self.label)):
            if value is not None:
                inference.create_dataset(key, data=value, compression="gzip")
                inference[key].attrs["unit"] = "class"
        if self.aging:
            group = f.create_group("aging")
            for key in self.aging[0]:
                data = np.array([entry[key] for entry in self.aging], dtype=np.float64)
                group.create_dataset(key, data=data).attrs["unit"] = metric(key).unit
        kept = self._kept()
        parts = f.create_group("parts")
        parts.create_dataset("epoch", data=np.array([p[0] for p in kept], dtype=np.int64))
        parts.create_dataset("file", data=[p[1] for p in kept], dtype=_text())
        parts.create_dataset("kind", data=[p[2] for p in kept], dtype=_text())
        parts["epoch"].attrs["unit"] = "1"
        parts["file"].attrs["unit"] = "name"  # in RUN.h5.parts/
        parts["kind"].attrs["unit"] = "name"  # snapshot, state or traces
        snapshots = [p[0] for p in kept if p[2] == "snapshot"]
        f.create_dataset("snapshot_epoch", data=np.array(snapshots, dtype=np.int64))
        f["snapshot_epoch"].attrs["unit"] = "1"

    def _kept(self) -> list[tuple[int, str, str]]:
        """The parts the run keeps: every snapshot and every traces part, and the last
        state with its velocities and accumulators (the run's state, to resume from)."""
        states = [p for p in self.parts if p[2] in ("snapshot", "state")]
        last = max(states)[0] if states else None
        return sorted(p for p in self.parts if p[2] in ("snapshot", "traces") or p[0] == last)

    def _clean(self) -> None:
        """Remove the files of the parts folder that the committed ``RUN.h5`` does not name
        (superseded states, and what killed or replaced runs left)."""
        folder = parts_folder(self.path)
        self.parts = self._kept()
        named = {name for _, name, _ in self.parts}
        for file in folder.glob("*"):
            if file.name not in named:
                file.unlink(missing_ok=True)

    @uninterrupted
    def close(self, complete: bool = True) -> Path:
        """End the run: ``complete`` marks a run that ended normally (a last commit of
        ``RUN.h5``); otherwise the last commit stands and parts written since are removed.
        The lock is released either way."""
        if self.closed:
            return self.path
        self.closed = True
        try:
            if complete:
                self.meta.update(complete=True, finished=now())
                self._commit()
            else:
                folder = parts_folder(self.path)
                for name in self.uncommitted:
                    (folder / name).unlink(missing_ok=True)
                if folder.is_dir() and not any(folder.iterdir()) and not self.path.exists():
                    folder.rmdir()
        finally:
            self.lock.release()
        return self.path


def _text() -> Any:
    import h5py

    return h5py.string_dtype()


def _write_traces(
    f: Any, epoch: int, traced: Traced, samples: Sequence[int], layers: Sequence[str]
) -> None:
    """The per-sweep record of the traced samples at ``epoch`` (see the module docs)."""
    group = f.require_group("traces").create_group(f"epoch_{epoch}")
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


def _check_same_run(path: Path, meta: Any, chip: RecordedChip, settings: dict[str, Any]) -> None:
    """Refuse to resume the run of ``meta`` with another chip or other settings."""

    def refuse(what: str, kept: Any, asked: Any) -> None:
        raise RunFileError(
            f"{path}: cannot resume: {what} is {asked} here, but the run used {kept}"
        )

    if "chip_spec" in meta:  # the validated spec: every setting, every card
        kept_spec = _current(json.loads(meta["chip_spec"]), f"{path}: /meta/chip_spec")
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
    names = {
        "dataset": "the data set",
        "dataset_labels": "the data set's labels (SHA-256)",
        "limit": "the limit",
        "neuroemu_version": "neuroemu's version (finish the run with the version that made it)",
    }
    for key, asked in settings.items():
        if key in meta and attribute(meta[key]) != asked:
            kept = attribute(meta[key])
            if key == "limit":
                kept, asked = (_samples(kept), _samples(asked))
            if key == "dataset_labels":
                kept, asked = kept[:12], asked[:12]
            refuse(names.get(key, f"the {key}"), kept, asked)


def _samples(limit: int) -> str:
    return "all samples" if limit < 0 else f"{limit} samples per part"


def _short(value: Any) -> str:
    """A spec's value, short, in SI (a float to 10 significant digits)."""
    if isinstance(value, float):
        return f"{value:.10g}"
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _current(spec: dict[str, Any], source: str) -> dict[str, Any]:
    """A spec kept by a run file as this version validates it: a key added since the file
    was written takes its default (what the run used), so it is no difference. A spec this
    version no longer accepts stays as kept (and differs where it differs)."""
    from ..spec.loader import chip_from_dict

    try:
        current: dict[str, Any] = chip_from_dict(spec, source).model_dump(mode="json")
    except NeuroemuError:
        return spec
    return current


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
