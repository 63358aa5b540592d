"""Run files: written by simulate, read back by open_run, summarised and plotted."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import h5py
import numpy as np
import pytest

import neuroemu
from neuroemu.errors import RunFileError

from .conftest import run_cli, start_training

ROOT = Path(__file__).resolve().parents[1]


cli = run_cli


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "xs.h5"
    result = cli(
        "simulate",
        "xs_784x100",
        "--limit",
        "120",
        "--epochs",
        "2",
        "--batch-size",
        "40",
        "--out",
        str(out),
        "--json",
        "--quiet",
    )
    assert result.returncode == 0, result.stderr
    return out, json.loads(result.stdout.strip().splitlines()[-1])


def test_round_trip(trained):
    path, summary = trained
    run = neuroemu.open_run(path)
    assert run.meta["chip_name"] == "xs_784x100" and run.meta["seed"] == 0
    assert run.meta["complete"] is True or run.meta["complete"] == 1
    assert run.meta["chip_yaml"] == (ROOT / "chips" / "xs_784x100.yaml").read_text()
    assert set(run.cards) == {"ideal_resistor", "ideal_diode"}
    assert run.epochs_done == 2
    history = summary["history"]
    for key in ("error", "mean_power_W", "energy_per_inference_J", "mean_sweeps", "max_residual_A"):
        np.testing.assert_allclose(run.metrics[key].values, [h[key] for h in history], rtol=1e-12)
        assert run.metrics[key].attrs["units"]
    assert run.metrics["mean_power_W"].attrs["units"] == "W"
    assert np.isnan(run.metrics["train_error"].values[0])
    g = run.conductance["input->hidden"]
    assert g.dims == ("epoch", "input", "hidden") and g.shape == (3, 1568, 100)
    assert g.attrs["units"] == "S"
    # Epoch 0 is the chip as programmed from its seed.
    chip = neuroemu.Chip.from_yaml(ROOT / "chips" / "xs_784x100.yaml")
    np.testing.assert_array_equal(g.isel(epoch=0).values, chip.conductances[0])
    assert not np.array_equal(g.isel(epoch=2).values, chip.conductances[0])
    assert run.conductance["bias:output"].dims == ("epoch", "source", "output")
    accuracy = float(np.mean(run.prediction.values == run.label.values))
    assert accuracy == pytest.approx(history[-1]["accuracy"])


def test_traces_and_plots(trained, tmp_path):
    path, _ = trained
    result = cli("traces", str(path))
    assert result.returncode == 0, result.stderr
    assert (
        "xs_784x100" in result.stdout
        and "2 trained" in result.stdout
        and "complete" in result.stdout
    )
    for kind in ("learning-curve", "conductance-histogram", "power"):
        out = tmp_path / f"{kind}.png"
        done = cli("plot", str(path), "--kind", kind, "-o", str(out))
        assert done.returncode == 0, done.stderr
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    missing = cli("plot", str(path), "--kind", "drift", "-o", str(tmp_path / "s.png"))
    assert missing.returncode == 2 and "holds no inference results over time" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1


def test_bad_files(tmp_path):
    text = tmp_path / "text.h5"
    text.write_text("not hdf5")
    with pytest.raises(RunFileError, match="not an HDF5 file"):
        neuroemu.open_run(text)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = 1
    with pytest.raises(RunFileError, match="not a neuroemu run file"):
        neuroemu.open_run(other)
    with pytest.raises(RunFileError, match="no such run file"):
        neuroemu.open_run(tmp_path / "none.h5")
    result = cli("traces", str(other))
    assert result.returncode == 2 and result.stderr.startswith("neuroemu: error: ")


def test_newer_format_fails_clearly(trained, tmp_path):
    path, _ = trained
    newer = tmp_path / "newer.h5"
    newer.write_bytes(path.read_bytes())
    with h5py.File(newer, "a") as f:
        f["meta"].attrs["format_version"] = 99
    with pytest.raises(RunFileError, match="format version 99 is newer"):
        neuroemu.open_run(newer)


def test_killed_writer_leaves_finished_epochs(tmp_path):
    out = tmp_path / "killed.h5"
    proc = start_training(out, until_epoch=2)
    try:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        proc.kill()
    run = neuroemu.open_run(out)
    assert not run.meta["complete"]
    assert run.metrics["epoch"].values[:3].tolist() == [0, 1, 2]
    assert run.conductance.sizes["epoch"] >= 3


def test_traces_round_trip(trained):
    path, _ = trained
    run = neuroemu.open_run(path)
    assert run.traced_epochs == [0, 1, 2]
    trace = run.trace()
    assert list(trace.phase.values) == ["free", "plus", "minus"]
    assert trace.sample.values.tolist() == [0, 1, 2]
    assert trace["voltage:hidden"].dims == ("phase", "sweep", "sample", "hidden")
    assert trace["voltage:hidden"].attrs["units"] == "V"
    # The free phase's last state is the operating point of the chip as the file left it.
    chip = neuroemu.Chip.from_yaml(ROOT / "chips" / "xs_784x100.yaml")
    for name in run.conductance.data_vars:
        if name.startswith("bias:"):
            layer = name.split(":", 1)[1]
            index = [layer_.name for layer_ in chip.spec.layers].index(layer)
            chip.bias_conductance[index][...] = run.conductance[name].isel(epoch=-1).values
        else:
            index = [c.name for c in chip.crossbars].index(name)
            chip.crossbars[index].conductance[...] = run.conductance[name].isel(epoch=-1).values
    chip.touch()
    x = neuroemu.load_dataset().x_test[:3]
    eq = chip.settle(x)
    free = trace["voltage:output"].sel(phase="free")
    last = free.isel(sweep=eq.sweeps).values
    np.testing.assert_allclose(last, eq.output, atol=1e-12)
    # Residuals fall sweep by sweep below the tolerance; each phase's power is finite.
    residual = trace["residual"].sel(phase="free", sample=0).values
    finite = residual[np.isfinite(residual)]
    assert finite[-1] <= 1e-10 < finite[0]
    assert np.all(np.isfinite(trace["power"].sel(phase="free").values[: eq.sweeps + 1]))
    assert trace["update:input->hidden"].dims == ("input", "hidden")
    settle = cli("plot", str(path), "--kind", "settle", "-o", str(path.with_suffix(".png")))
    assert settle.returncode == 0, settle.stderr


def test_snapshots_every_k_epochs_and_resume(tmp_path):
    import yaml

    data = yaml.safe_load((ROOT / "chips" / "xs_784x100.yaml").read_text())
    data["training"]["snapshot_every"] = 2
    data["training"]["trace_samples"] = []
    chip_file = tmp_path / "chips" / "xs_k2.yaml"
    chip_file.parent.mkdir()
    chip_file.write_text(yaml.safe_dump(data))
    common = ("simulate", str(chip_file), "--limit", "100", "--batch-size", "50", "--quiet")
    whole, part = tmp_path / "whole.h5", tmp_path / "part.h5"
    assert cli(*common, "--epochs", "3", "--out", str(whole)).returncode == 0
    run = neuroemu.open_run(whole)
    assert run.metrics["epoch"].values.tolist() == [0, 1, 2, 3]
    assert run.conductance["epoch"].values.tolist() == [0, 2, 3]  # every 2nd, and the last
    # Epoch 1 has no snapshot, yet a run stopped after it resumes exactly.
    assert cli(*common, "--epochs", "1", "--out", str(part)).returncode == 0
    assert cli(*common, "--epochs", "3", "--resume", str(part)).returncode == 0
    resumed = neuroemu.open_run(part)
    for name in run.conductance.data_vars:
        np.testing.assert_array_equal(
            resumed.conductance[name].isel(epoch=-1).values,
            run.conductance[name].isel(epoch=-1).values,
        )


def test_missing_group(trained, tmp_path):
    path, _ = trained
    broken = tmp_path / "broken.h5"
    broken.write_bytes(path.read_bytes())
    with h5py.File(broken, "a") as f:
        del f["inference"]
    with pytest.raises(RunFileError, match="missing group /inference"):
        neuroemu.open_run(broken)
    result = cli("plot", str(broken), "--kind", "power", "-o", str(tmp_path / "p.png"))
    assert result.returncode == 2 and "missing group /inference" in result.stderr


def test_version_1_file_is_read_and_resumed(trained, tmp_path):
    """A version 1 file (a snapshot every epoch, no /state) reads and resumes as before."""
    path, _ = trained
    old = tmp_path / "old.h5"
    old.write_bytes(path.read_bytes())
    with h5py.File(old, "a") as f:
        del f["state"], f["snapshot_epoch"]
        f["meta"].attrs["format_version"] = 1
    run = neuroemu.open_run(old)
    assert run.conductance["epoch"].values.tolist() == [0, 1, 2]
    resumed = cli(
        "simulate",
        "xs_784x100",
        "--limit",
        "120",
        "--batch-size",
        "40",
        "--epochs",
        "3",
        "--resume",
        str(old),
        "--quiet",
    )
    assert resumed.returncode == 0, resumed.stderr
    assert neuroemu.open_run(old).metrics["epoch"].values.tolist() == [0, 1, 2, 3]


def test_every_dataset_has_a_unit(trained):
    path, _ = trained
    missing = []
    with h5py.File(path) as f:
        f.visititems(
            lambda name, item: (
                missing.append(name)
                if isinstance(item, h5py.Dataset) and "unit" not in item.attrs
                else None
            )
        )
    assert missing == []
