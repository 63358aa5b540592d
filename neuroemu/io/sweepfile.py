"""Sweep result files: netCDF4 (HDF5) written with h5netcdf, so that
``xarray.open_dataset(path, engine="h5netcdf")`` opens them as a Dataset with one dimension
per axis (named by its key path) and ``seed``.

Coordinates: each axis's values (quantities written with a unit, ``0.5 uS``, as SI numbers
with a ``units`` attribute; version 1 files kept them as text) and ``seed``; with
``infer_at``, ``time`` (s). Variables: one per figure (``error``, ``accuracy``,
``mean_power_W``, ..., the last training epoch's update figures; NaN until the point is
done; named, and with the ``units`` attribute, as in :data:`neuroemu.metrics.METRICS`; a
file made before a figure was recorded keeps the figures it has), ``status`` (0 pending, 1 done, 2
failed) and ``message`` (the error of a failed point). Attributes: ``format``
``neuroemu-sweep``, ``format_version``, ``sweep_yaml`` (the exact spec text). Each point
is recorded as it finishes, atomically and durably (:class:`SweepFile`): a killed sweep
keeps every point it recorded.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import RunFileError, one_line
from ..files import Lock, LockHeld, atomic_path, partial_prefix
from ..metrics import Metric, metric
from ..units import parse_any_quantity

if TYPE_CHECKING:
    from ..spec.sweep import LoadedSweep

FORMAT = "neuroemu-sweep"
FORMAT_VERSION = 2  # 2: axes of quantities (0.5 uS) as SI numbers with a units attribute
#: The figures a sweep point records, one number each.
FIGURES: dict[str, Metric] = {
    name: metric(name)
    for name in (
        "error",
        "accuracy",
        "mean_sweeps",
        "max_residual_A",
        "mean_power_W",
        "energy_per_inference_J",
        "train_error",
        "update_unmoved_fraction",
        "update_clipped_fraction",
        "update_pulses_per_device",
        "update_refreshes_per_pair",
        "update_programming_energy_J",
        "update_reads_per_device",
        "update_read_energy_J",
        "wall_time_s",
    )
}
#: The figures a sweep point with ``infer_at`` records at each time after programming.
TIMED_FIGURES: dict[str, Metric] = {name: metric(name) for name in ("error_after_programming",)}
#: The coordinate of the times after programming.
TIME = metric("time_s")
PENDING, DONE, FAILED = 0, 1, 2


def _coordinate(values: list[Any]) -> tuple[np.ndarray, str | None]:
    """An axis's values as a coordinate and its unit: integers and numbers as they are,
    quantities written with a unit (``0.5 uS``, all in one unit) as SI numbers with that
    unit, anything else as text."""
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return np.asarray(values, dtype=np.int64), None
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return np.asarray(values, dtype=np.float64), None
    try:
        parsed = [parse_any_quantity(v) for v in values]
    except ValueError:
        parsed = []
    units = {unit for _, unit in parsed}
    if parsed and len(units) == 1:
        return np.asarray([value for value, _ in parsed], dtype=np.float64), units.pop() or None
    return np.asarray([str(v) for v in values], dtype=object), None


class SweepFile:
    """A sweep's results file, filled point by point (:func:`open_for_sweep` opens one).

    Every record is atomic and durable: the file is copied beside itself, the point is
    written into the copy, the copy is flushed to disk (``fsync``) and renamed over the file.
    A sweep killed at any moment therefore leaves a complete file holding every point
    recorded before the kill, which the next run of the same command skips; the file is
    never open for writing, so ``open_sweep`` can read it while the sweep runs. A lock,
    ``NAME.lock`` beside it (:class:`neuroemu.files.Lock`: works on NFS; removed when the
    sweep closes, and taken over when its owner is a process of this host that has ended,
    killed) keeps a second sweep from writing the same file at the same time.
    """

    def __init__(self, path: Path, status: np.ndarray, lock: Lock | None) -> None:
        self.path = path
        self.status = status  # 0 pending, 1 done, 2 failed, per point: kept in step
        self._lock = lock

    def record(
        self, index: tuple[int, ...], result: dict[str, Any] | None, error: str = ""
    ) -> None:
        """Write one finished point (``result``, figures by their names in
        :data:`FIGURES` and :data:`TIMED_FIGURES`) or one failed point (``error``). A name
        that is not a figure of a sweep point is an error, and nothing is written."""
        import h5netcdf

        if self._lock is None:
            raise RunFileError(f"{self.path}: closed")
        if result is not None:
            _check_figures(self.path, result)
        try:
            with atomic_path(self.path) as partial:
                shutil.copyfile(self.path, partial)
                with h5netcdf.File(partial, "a") as f:
                    _write_point(f, index, result, error, self.status[index] == FAILED)
        except OSError as exc:
            raise RunFileError(f"{self.path}: cannot record a point ({exc})") from None
        self.status[index] = FAILED if result is None else DONE

    def close(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> SweepFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _write_point(
    f: Any, index: tuple[int, ...], result: dict[str, Any] | None, error: str, retried: bool
) -> None:
    """Write one point into an open file. Messages are written only when they change (a
    failure, or a success after one): every string written takes new heap space in HDF5,
    which is never reclaimed, so writing them always would grow the file by kilobytes per
    point."""
    if result is None:
        f.variables["status"][index] = FAILED
        f.variables["message"][index] = error
        return
    for name, value in result.items():
        if name not in f.variables:  # a file made before the figure existed
            continue
        if name in TIMED_FIGURES:
            f.variables[name][index] = value
        else:
            f.variables[name][index] = float(value)
    f.variables["status"][index] = DONE
    if retried:
        f.variables["message"][index] = ""


def _check_figures(path: Path, result: dict[str, Any]) -> None:
    """Refuse a result holding a name that is not a figure a sweep point records (a name
    not in the metrics table raises :class:`~neuroemu.errors.NeuroemuError` from it)."""
    for name in result:
        metric(name)
        if name not in FIGURES and name not in TIMED_FIGURES:
            known = ", ".join([*FIGURES, *TIMED_FIGURES])
            raise RunFileError(f"{path}: a sweep point records no {name} (it records: {known})")


def _lock(path: Path) -> Lock:
    """The lock of the sweep file ``path`` (``NAME.lock`` beside it, removed when the sweep
    closes; a lock left by a killed sweep of this host is taken over), or a one-line error:
    another sweep writes ``path``."""
    try:
        return Lock(path).acquire()
    except LockHeld as exc:
        raise RunFileError(
            f"{path}: another sweep is writing this file (lock {path.name}.lock held by {exc});"
            " wait for it or pass another --out"
        ) from None
    except OSError as exc:
        raise RunFileError(f"{path}: cannot write in {path.parent} ({one_line(exc)})") from None


def open_for_sweep(path: str | os.PathLike[str], sweep: LoadedSweep) -> SweepFile:
    """Create the results file, or reopen one written by the same sweep spec to continue
    it; the returned :class:`SweepFile` holds the lock until closed."""
    import h5netcdf

    path = Path(path)
    if not path.parent.is_dir():
        raise RunFileError(f"{path}: folder {path.parent} does not exist")
    lock = _lock(path)
    try:
        for stale in path.parent.glob(f"{partial_prefix(path)}*"):
            stale.unlink(missing_ok=True)  # left by a killed sweep; the lock says none runs
        if not path.exists():
            _create(path, sweep)
        try:
            f = h5netcdf.File(path, "r")
        except OSError:
            raise RunFileError(f"{path}: exists and is not a sweep file") from None
        with f:
            if f.attrs.get("format") != FORMAT or f.attrs.get("sweep_yaml") != sweep.text:
                raise RunFileError(
                    f"{path}: holds another sweep; pass another --out or remove the file"
                )
            status = np.asarray(f.variables["status"][...])
    except BaseException:
        lock.release()
        raise
    return SweepFile(path, status, lock)


def _create(path: Path, sweep: LoadedSweep) -> None:
    """Write a complete results file with every point pending, atomically."""
    import h5netcdf
    import h5py

    dims = [axis.path for axis in sweep.spec.axes] + ["seed"]
    text = h5py.string_dtype()
    with atomic_path(path) as partial, h5netcdf.File(partial, "w") as f:
        f.attrs.update(
            {"format": FORMAT, "format_version": FORMAT_VERSION, "sweep_yaml": sweep.text}
        )
        for dim, values in zip(dims, [*sweep.values, sweep.spec.seeds], strict=True):
            f.dimensions[dim] = len(values)
            coordinate, unit = _coordinate(values)
            dtype = text if coordinate.dtype == object else coordinate.dtype
            var = f.create_variable(dim, (dim,), dtype=dtype)
            var[...] = coordinate
            if unit is not None:
                var.attrs["units"] = unit
        for name, figure in FIGURES.items():
            var = f.create_variable(name, tuple(dims), dtype="f8", fillvalue=np.nan)
            var.attrs["units"] = figure.unit
        if sweep.spec.infer_at:
            f.dimensions["time"] = len(sweep.spec.times)
            var = f.create_variable("time", ("time",), dtype="f8")
            var[...] = np.asarray(sweep.spec.times)
            var.attrs["units"] = TIME.unit
            for name, figure in TIMED_FIGURES.items():
                var = f.create_variable(name, (*dims, "time"), dtype="f8", fillvalue=np.nan)
                var.attrs["units"] = figure.unit
        f.create_variable("status", tuple(dims), dtype="i1", fillvalue=PENDING)
        f.create_variable("message", tuple(dims), dtype=text)


def is_sweep_file(path: str | os.PathLike[str]) -> bool:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            fmt = f.attrs.get("format")
            return (fmt.decode() if isinstance(fmt, bytes) else fmt) == FORMAT
    except OSError:
        return False


def open_sweep(path: str | os.PathLike[str]) -> Any:
    """The results as an ``xarray.Dataset``: figures of points not done are NaN; ``status``
    is an integer per point (:data:`PENDING`, :data:`DONE`, :data:`FAILED`)."""
    import xarray as xr

    if not is_sweep_file(path):
        raise RunFileError(f"{path}: not a neuroemu sweep file")
    # status keeps its integers: its fill value is a state (pending), not a missing value
    with xr.open_dataset(path, engine="h5netcdf", mask_and_scale={"status": False}) as ds:
        ds = ds.load()
    ds["status"].attrs.pop("_FillValue", None)
    ds["status"].encoding.pop("_FillValue", None)
    return ds
