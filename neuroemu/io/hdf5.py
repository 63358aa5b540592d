"""HDF5 run files: the one module that writes them.

Layout (format ``neuroemu-run``, version 1):

- ``/meta`` attributes: ``format``, ``format_version``, ``neuroemu_version``, ``seed``,
  ``chip_name``, ``chip_yaml`` (the exact text of the chip file), ``device_cards`` (the
  validated cards as JSON), ``dataset``, ``dataset_source``, ``command``, ``started``,
  ``finished`` (ISO 8601, UTC), ``host``;
- ``/metrics``: one scalar dataset per figure of the inference pass, each with a ``unit``
  attribute;
- ``/inference/prediction`` and ``/inference/label``: per test sample.

A file is written under a temporary name beside the target and renamed into place when
complete, so an interrupted run never leaves a file that looks finished; an existing file is
only replaced when the caller says so.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .. import __version__
from ..errors import RunFileError

if TYPE_CHECKING:
    from ..build.chip import Chip
    from ..engine.inference import InferenceReport

FORMAT = "neuroemu-run"
FORMAT_VERSION = 1

_UNITS = {
    "samples": "1",
    "accuracy": "1",
    "error": "1",
    "mean_sweeps": "1",
    "max_sweeps": "1",
    "max_residual_A": "A",
    "max_relative_residual": "1",
    "mean_power_W": "W",
    "energy_per_inference_J": "J",
    "settle_time_s": "s",
    "wall_time_s": "s",
    "samples_per_s": "1/s",
    "converged": "1",
    "tol": "1",
}


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def check_output_path(path: str | os.PathLike[str], force: bool = False) -> Path:
    """Refuse, before any work starts, to write where the run file cannot go."""
    path = Path(path)
    if path.exists() and not force:
        raise RunFileError(f"{path}: already exists (pass --force to overwrite it)")
    if path.is_dir():
        raise RunFileError(f"{path}: is a folder, expected a file name")
    if not path.parent.is_dir():
        raise RunFileError(f"{path}: folder {path.parent} does not exist")
    return path


def write_inference_run(
    path: str | os.PathLike[str],
    chip: Chip,
    report: InferenceReport,
    labels: np.ndarray,
    *,
    dataset: str,
    dataset_source: str,
    started: str,
    command: str | None = None,
    force: bool = False,
) -> Path:
    """Write the run file of an inference pass atomically."""
    import h5py

    path = check_output_path(path, force)
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    cards = {}
    for layer in chip.spec.layers:
        for card in (layer.device, layer.diode):
            if card is not None:
                cards[card.name] = card.model_dump(mode="json")
    try:
        with h5py.File(partial, "w") as f:
            meta = f.create_group("meta")
            meta.attrs.update(
                {
                    "format": FORMAT,
                    "format_version": FORMAT_VERSION,
                    "neuroemu_version": __version__,
                    "seed": chip.seed,
                    "chip_name": chip.name,
                    "chip_yaml": chip.source.text if chip.source else "",
                    "device_cards": json.dumps(cards),
                    "dataset": dataset,
                    "dataset_source": dataset_source,
                    "command": command if command is not None else " ".join(sys.argv),
                    "started": started,
                    "finished": now(),
                    "host": platform.node(),
                }
            )
            metrics = f.create_group("metrics")
            for key, value in report.figures().items():
                metrics.create_dataset(key, data=value).attrs["unit"] = _UNITS[key]
            inference = f.create_group("inference")
            inference.create_dataset("prediction", data=report.prediction, compression="gzip")
            inference.create_dataset("label", data=np.asarray(labels), compression="gzip")
        os.replace(partial, path)
    except OSError as exc:
        raise RunFileError(f"{path}: cannot write ({exc})") from None
    finally:
        if partial.exists():
            partial.unlink()
    return path
