"""Sweeps: spec checks before any point runs, a 2-worker Dask run, resumption."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from neuroemu.errors import SpecError
from neuroemu.io.sweepfile import open_sweep
from neuroemu.spec.sweep import load_sweep

from .conftest import run_cli

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(textwrap.dedent(body))
    return path


cli = run_cli


BASE = """\
    name: s
    chip: xs_784x100
    limit: 40
    axes:
      - path: {path}
        values: {values}
    seeds: [0, 1]
"""


@pytest.mark.parametrize(
    ("path", "values", "message"),
    [
        ("layers[0].device.n_level", "[4]", "no key 'n_level' in layers[0].device (it has: "),
        ("layers[5].size", "[4]", "layers[5]: no such item (layers has 2 items)"),
        ("inputs.gain.volts", "[1]", "inputs.gain.volts: inputs.gain is not a mapping"),
        ("inputs.gain", '["-1 V"]', "inputs.gain: must be > 0 V (got -1.0 V)"),
    ],
)
def test_bad_axes_fail_before_any_point(tmp_path, path, values, message):
    with pytest.raises(SpecError) as info:
        load_sweep(write(tmp_path, BASE.format(path=path, values=values)))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_points_get_their_values(tmp_path):
    sweep = load_sweep(
        write(tmp_path, BASE.format(path="layers[0].device.n_levels", values="[4, 16]"))
    )
    assert sweep.shape == (2, 2)
    assert sweep.point_spec((1, 0)).layers[0].device.n_levels == 16
    assert sweep.point_spec((0, 1)).layers[0].device.n_levels == 4
    assert sweep.point_spec((0, 0)).layers[1].device.n_levels is None  # only that path moved


def test_two_worker_sweep_records_failures_and_resumes(tmp_path):
    spec = write(tmp_path, BASE.format(path="inputs.size", values="[784, 100]"))
    out = tmp_path / "s.h5"
    first = cli("sweep", str(spec), "--workers", "2", "--out", str(out))
    assert first.returncode == 1, first.stderr  # the 100-input points cannot take MNIST
    assert "4 points, 2 run, 0 already done, 2 failed" in first.stdout
    ds = open_sweep(out)
    assert ds["error"].dims == ("inputs.size", "seed")
    assert ds["seed"].values.tolist() == [0, 1]
    assert np.all(np.isfinite(ds["error"].sel({"inputs.size": 784}).values))
    assert np.all(np.isnan(ds["error"].sel({"inputs.size": 100}).values))
    assert ds["status"].values.tolist() == [[1, 1], [2, 2]]
    assert "784 values per sample, chip takes 100" in str(ds["message"].values[1, 0])
    # The error of a point equals a direct evaluation of the same chip.
    import neuroemu
    from neuroemu.engine.inference import evaluate

    chip = neuroemu.Chip.from_yaml(ROOT / "chips" / "xs_784x100.yaml", seed=1)
    data = neuroemu.load_dataset().subset(40, 40)
    assert ds["error"].values[0, 1] == pytest.approx(evaluate(chip, data.x_test, data.y_test).error)
    again = cli("sweep", str(spec), "--workers", "2", "--out", str(out))
    assert "2 already done" in again.stdout  # finished points are skipped, failed ones retried
    figure = tmp_path / "s.png"
    assert cli("plot", str(out), "-o", str(figure)).returncode == 0
    assert figure.stat().st_size > 10_000


def test_unreachable_scheduler(tmp_path):
    spec = write(tmp_path, BASE.format(path="inputs.gain", values='["2 V"]'))
    result = cli(
        "sweep", str(spec), "--scheduler", "tcp://127.0.0.1:9", "--out", str(tmp_path / "x.h5")
    )
    assert result.returncode == 2
    assert result.stderr.startswith(
        "neuroemu: error: --scheduler tcp://127.0.0.1:9: cannot connect"
    )
    assert len(result.stderr.strip().splitlines()) == 1


def test_time_after_programming_is_a_dimension(tmp_path):
    spec = write(
        tmp_path,
        """\
        name: aging
        chip: xs_784x100_pcm
        limit: 40
        infer_at: [1s, 1y]
        axes:
          - path: layers[0].device.drift.nu_std
            values: [0.0, 0.02]
        seeds: [3]
        """,
    )
    out = tmp_path / "aging.h5"
    result = cli("sweep", str(spec), "--workers", "1", "--out", str(out))
    assert result.returncode == 0, result.stderr
    ds = open_sweep(out)
    aged = ds["error_after_programming"]
    assert aged.dims == ("layers[0].device.drift.nu_std", "seed", "time")
    assert ds["time"].values.tolist() == [1.0, 365.25 * 86400]
    assert np.all(np.isfinite(aged.values))
    # At 1 s nothing has drifted yet: only programming and read noise separate it from the
    # noiseless error, and the same seed gives the same draws at both nu_std values.
    assert aged.values[0, 0, 0] == aged.values[1, 0, 0]
    bad = write(
        tmp_path, BASE.format(path="inputs.gain", values='["2 V"]') + "    infer_at: [5 parsecs]\n"
    )
    with pytest.raises(SpecError, match="cannot read '5 parsecs' as a duration"):
        load_sweep(bad)
