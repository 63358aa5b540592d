"""Sweep result files: netCDF4 (HDF5) written with h5netcdf, so that
``xarray.open_dataset(path, engine="h5netcdf")`` opens them as a Dataset with one dimension
per axis (named by its key path) and ``seed``.

Variables: one per figure (``error``, ``accuracy``, ``mean_power_W``, ...; NaN until the
point is done), ``status`` (0 pending, 1 done, 2 failed) and ``message`` (the error of a
failed point). Attributes: ``format`` ``neuroemu-sweep``, ``format_version``, ``sweep_yaml``
(the exact spec text). Each point is written and flushed as it finishes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import RunFileError

if TYPE_CHECKING:
    from ..spec.sweep import LoadedSweep

FORMAT = "neuroemu-sweep"
FORMAT_VERSION = 1
FIGURES = {
    "error": "1",
    "accuracy": "1",
    "mean_sweeps": "1",
    "max_residual_A": "A",
    "mean_power_W": "W",
    "energy_per_inference_J": "J",
    "train_error": "1",
    "wall_time_s": "s",
}
PENDING, DONE, FAILED = 0, 1, 2


def _coordinate(values: list[Any]) -> np.ndarray:
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return np.asarray(values, dtype=np.int64)
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return np.asarray(values, dtype=np.float64)
    return np.asarray([str(v) for v in values], dtype=object)


def open_for_sweep(path: str | os.PathLike[str], sweep: LoadedSweep) -> Any:
    """Create the file, or reopen one written by the same sweep spec to continue it."""
    import h5netcdf

    path = Path(path)
    dims = [axis.path for axis in sweep.spec.axes] + ["seed"]
    if path.exists():
        try:
            f = h5netcdf.File(path, "a")
        except OSError:
            raise RunFileError(f"{path}: exists and is not a sweep file") from None
        if f.attrs.get("format") != FORMAT or f.attrs.get("sweep_yaml") != sweep.text:
            f.close()
            raise RunFileError(
                f"{path}: holds another sweep; pass another --out or remove the file"
            )
        return f
    if not path.parent.is_dir():
        raise RunFileError(f"{path}: folder {path.parent} does not exist")
    import h5py

    text = h5py.string_dtype()
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    f = h5netcdf.File(partial, "w")
    f.attrs.update({"format": FORMAT, "format_version": FORMAT_VERSION, "sweep_yaml": sweep.text})
    for dim, values in zip(dims, [*sweep.values, sweep.spec.seeds], strict=True):
        f.dimensions[dim] = len(values)
        coordinate = _coordinate(values)
        dtype = text if coordinate.dtype == object else coordinate.dtype
        var = f.create_variable(dim, (dim,), dtype=dtype)
        var[...] = coordinate
    for name, unit in FIGURES.items():
        var = f.create_variable(name, tuple(dims), dtype="f8", fillvalue=np.nan)
        var.attrs["units"] = unit
    if sweep.spec.infer_at:
        f.dimensions["time"] = len(sweep.spec.times)
        var = f.create_variable("time", ("time",), dtype="f8")
        var[...] = np.asarray(sweep.spec.times)
        var.attrs["units"] = "s"
        var = f.create_variable(
            "error_after_programming", (*dims, "time"), dtype="f8", fillvalue=np.nan
        )
        var.attrs["units"] = "1"
    f.create_variable("status", tuple(dims), dtype="i1", fillvalue=PENDING)
    f.create_variable("message", tuple(dims), dtype=text)
    f.close()
    os.replace(partial, path)  # a complete, empty results file, then filled point by point
    return h5netcdf.File(path, "a")


def record(f: Any, index: tuple[int, ...], result: dict[str, Any] | None, error: str = "") -> None:
    """Write one finished point (``result``) or one failed point (``error``)."""
    if result is None:
        f.variables["status"][index] = FAILED
        f.variables["message"][index] = error
    else:
        for name in FIGURES:
            if name in result:
                f.variables[name][index] = float(result[name])
        if "error_after_programming" in result:
            f.variables["error_after_programming"][index] = result["error_after_programming"]
        f.variables["status"][index] = DONE
        f.variables["message"][index] = ""
    f.flush()


def is_sweep_file(path: str | os.PathLike[str]) -> bool:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            fmt = f.attrs.get("format")
            return (fmt.decode() if isinstance(fmt, bytes) else fmt) == FORMAT
    except OSError:
        return False


def open_sweep(path: str | os.PathLike[str]) -> Any:
    """The results as an ``xarray.Dataset`` (points not done are NaN)."""
    import xarray as xr

    if not is_sweep_file(path):
        raise RunFileError(f"{path}: not a neuroemu sweep file")
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        return ds.load()
