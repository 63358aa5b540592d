"""neuroemu.simulate: the one orchestrator, as a notebook calls it and as the CLI prints it;
the registry of learning rules it trains with; the metrics table every writer reads."""

from __future__ import annotations

import json
import typing
from pathlib import Path

import numpy as np
import pytest

import neuroemu
from neuroemu.errors import InputError, NeuroemuError, RunFileError

from .conftest import run_cli
from .test_datasets import make_folder

ROOT = Path(__file__).resolve().parents[1]
XS = ROOT / "chips" / "xs_784x100.yaml"
TIMINGS = {"wall_time_s", "samples_per_s", "train_wall_time_s"}


def untimed(obj):
    """``obj`` (a run's summary) without wall times, which differ from run to run."""
    if isinstance(obj, dict):
        return {k: untimed(v) for k, v in obj.items() if k not in TIMINGS}
    if isinstance(obj, list):
        return [untimed(v) for v in obj]
    return obj


def test_the_command_prints_what_the_function_returns(tmp_path):
    """``neuroemu simulate --json`` prints ``simulate(...).to_json()``, and the run file read
    back gives the same JSON to the letter."""
    out = tmp_path / "run.h5"
    args = ["--limit", "60", "--epochs", "2", "--infer-at", "1h"]
    printed = run_cli("simulate", str(XS), *args, "--out", str(out), "--json", "--quiet")
    assert printed.returncode == 0, printed.stderr
    summary = json.loads(printed.stdout.strip().splitlines()[-1])
    again = neuroemu.open_run(out)
    assert again.to_json() == json.dumps(summary)  # the file holds every figure, typed
    run = neuroemu.simulate(XS, limit=60, epochs=2, infer_at=["1h"])
    assert run.path is None and run.conductance["epoch"].values.tolist() == [2]
    ours = untimed(run.summary())
    theirs = untimed(summary)
    del theirs["out"]
    assert ours == theirs
    assert [h["epoch"] for h in run.history] == [0, 1, 2]
    assert set(run.history[0]) < set(run.history[1])  # epoch 0 has no training figures
    assert run.error == run.history[-1]["error"] == summary["error"]
    assert isinstance(run.history[1]["converged"], bool)
    assert isinstance(run.history[1]["samples"], int)


def test_a_built_chip_trains_in_place_and_keeps_its_seed(tmp_path):
    chip = neuroemu.Chip.from_yaml(XS)
    before = chip.state()
    run = neuroemu.simulate(chip, limit=40, epochs=1)
    assert run.chip is chip
    assert not np.array_equal(chip.conductances[0], before.conductances[0])
    with pytest.raises(InputError, match="seed: chip xs_784x100 is built already"):
        neuroemu.simulate(chip, seed=3, epochs=0)
    with pytest.raises(InputError, match="chip: expected a spec file"):
        neuroemu.simulate(42)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="dtype: must be float64 or float32"):
        neuroemu.simulate(XS, epochs=0, limit=5, dtype="float16")
    with pytest.raises(InputError, match="infer_at: cannot read '1 fortnight'"):
        neuroemu.simulate(XS, epochs=0, limit=5, infer_at=["1 fortnight"])


def test_progress_is_reported_as_events():
    events = []
    neuroemu.simulate(XS, limit=40, epochs=2, progress=events.append)
    kinds = [(e.kind, e.task) for e in events if e.kind != "advance"]
    test = [("start", "test"), ("end", "test")]
    train = [("start", "train"), ("end", "train")]
    epoch = [("epoch", "test")]
    assert kinds == test + epoch + train + test + epoch + train + test + epoch
    advanced = sum(e.advance for e in events if e.kind == "advance" and e.task == "train")
    assert advanced == 2 * 40  # every training sample of both epochs
    assert [e.epoch for e in events if e.kind == "epoch"] == [0, 1, 2]
    assert all(e.epochs == 2 for e in events)
    last = [e for e in events if e.kind == "epoch"][-1]
    assert "train_error" in last.figures and "error" in last.figures


def test_resume_refuses_other_data_and_leaves_the_file_alone(tmp_path):
    out = tmp_path / "run.h5"
    neuroemu.simulate(XS, limit=40, epochs=1, out=out)
    kept = out.read_bytes()
    limits = "the limit is 50 samples per part here, but the run used 40 samples per part"
    with pytest.raises(RunFileError, match=f"cannot resume: {limits}"):
        neuroemu.simulate(XS, limit=50, epochs=2, resume=out)
    other = tmp_path / "digits"
    make_folder(other, n_train=50, n_test=50)
    with pytest.raises(RunFileError, match="the data set is digits here, but the run used mnist5k"):
        neuroemu.simulate(XS, limit=40, epochs=2, dataset=other, resume=out)
    assert out.read_bytes() == kept
    resumed = neuroemu.simulate(XS, limit=40, epochs=2, resume=out)
    assert [h["epoch"] for h in resumed.history] == [0, 1, 2]
    assert resumed.epochs == 2 and resumed.meta["complete"]


def test_every_algorithm_of_the_spec_has_a_rule():
    from neuroemu.learning import RULES, rule_for
    from neuroemu.spec.training import Algorithm

    algorithms = set(typing.get_args(Algorithm))
    assert {a for _, a in RULES} == algorithms
    assert {f for f, _ in RULES} == {"resistive", "leaky"}
    chip = neuroemu.Chip.from_yaml(XS)
    training = chip.spec.training.model_copy(update={"algorithm": "vf"})
    with pytest.raises(InputError, match="vf is not a rule of resistive chips"):
        rule_for(chip, training)


def test_an_unknown_metric_is_an_error_not_dropped(tmp_path):
    from neuroemu.io.hdf5 import RunWriter
    from neuroemu.metrics import METRICS, metric

    chip = neuroemu.Chip.from_yaml(XS)
    out = tmp_path / "r.h5"
    writer = RunWriter.create(out, chip, dataset="d", dataset_source="s", started="")
    with pytest.raises(NeuroemuError, match="metric 'errors': unknown"):
        writer.commit_epoch(0, {"error": 0.5, "errors": 0.5}, chip.state())
    assert writer.epochs == [] and not out.exists()  # nothing of the epoch was written
    writer.close(complete=False)
    assert metric("mean_power_W").unit == "W"
    assert all(m.unit and m.description and m.label for m in METRICS.values())


def test_test_every_evaluates_fewer_epochs_and_trains_alike():
    every = neuroemu.simulate(XS, limit=40, epochs=3)
    some = neuroemu.simulate(XS, limit=40, epochs=3, test_every=2)
    last = neuroemu.simulate(XS, limit=40, epochs=3, test_every=0)
    assert [h["epoch"] for h in some.history] == [0, 2, 3]
    assert [h["epoch"] for h in last.history] == [3]
    for run in (some, last):
        assert untimed(run.history[-1]) == untimed(every.history[-1])
        for a, b in zip(run.chip.conductances, every.chip.conductances, strict=True):
            np.testing.assert_array_equal(a, b)
    assert untimed(some.history[1]) == untimed(every.history[2])


def test_the_settle_figure_of_a_leaky_chip_names_what_it_shows(tmp_path):
    """A leaky chip's trace is in time steps, its residual the change of v per step and its
    power the arrays' read power: the settle figure's axes say so."""
    from neuroemu.analysis import run_figure

    out = tmp_path / "leaky.h5"
    neuroemu.simulate(ROOT / "chips" / "leaky_784x500.yaml", limit=20, epochs=1, out=out)
    fig = run_figure(neuroemu.open_run(out), "settle")
    top, bottom = fig.axes[:2]
    assert top.get_ylabel() == "largest change of v per step, of v_r"
    assert bottom.get_ylabel().startswith("read power of the arrays (")
    assert bottom.get_xlabel().startswith("time step")


def test_a_chip_built_in_python_reopens_and_resumes_only_as_it_was(tmp_path):
    import yaml

    data = yaml.safe_load(XS.read_text())
    out = tmp_path / "dict.h5"
    chip = neuroemu.Chip.from_dict(data)
    neuroemu.simulate(chip, limit=40, epochs=1, out=out)
    again = neuroemu.open_run(out).chip  # rebuilt from the validated spec the file keeps
    for a, b in zip(again.conductances, chip.conductances, strict=True):
        np.testing.assert_array_equal(a, b)
    data["training"]["batch_size"] = 64
    other = neuroemu.Chip.from_dict(data)
    with pytest.raises(
        RunFileError, match=r"the chip spec's training.batch_size is 64 here, but the run used 32"
    ):
        neuroemu.simulate(other, limit=40, epochs=2, resume=out)
    with pytest.raises(RunFileError, match="the dtype is float32 here, but the run used float64"):
        neuroemu.simulate(XS, limit=40, epochs=2, resume=out, dtype="float32")
    resumed = neuroemu.simulate(XS, limit=40, epochs=2, resume=out)  # the same spec, by file
    assert [h["epoch"] for h in resumed.history] == [0, 1, 2]
    with pytest.raises(InputError, match="epochs: 1 is fewer than the 2 the run"):
        neuroemu.simulate(XS, limit=40, epochs=1, resume=out)


def test_times_after_programming_in_every_spelling():
    runs = [
        neuroemu.simulate(XS, limit=20, epochs=0, infer_at=spelling)
        for spelling in ("1h", "1h,1d", 3600, [3600.0, "1d"])
    ]
    assert [[e["time_s"] for e in r.infer_at] for r in runs] == [
        [3600.0],
        [3600.0, 86400.0],
        [3600.0],
        [3600.0, 86400.0],
    ]
    for bad in (0, -1, float("nan"), "5 parsecs"):
        with pytest.raises(InputError, match="infer_at"):
            neuroemu.simulate(XS, limit=20, epochs=0, infer_at=bad)
    for name, value in (("dataset", 42), ("out", 42), ("progress", 1), ("force", "yes")):
        with pytest.raises(InputError, match=name):
            neuroemu.simulate(XS, limit=20, epochs=0, **{name: value})


def test_resume_refuses_other_labels_under_one_name_and_another_version(tmp_path):
    import h5py

    from neuroemu.files import seal

    digits = tmp_path / "digits"
    make_folder(digits, n_train=50, n_test=50, labels=[i % 10 for i in range(100)])
    out = tmp_path / "run.h5"
    neuroemu.simulate(XS, dataset=digits, epochs=1, out=out)
    make_folder(digits, n_train=50, n_test=50, labels=[(i + 1) % 10 for i in range(100)])
    with pytest.raises(RunFileError, match=r"the data set's labels \(SHA-256\) is \w{12} here"):
        neuroemu.simulate(XS, dataset=digits, epochs=2, resume=out)
    with h5py.File(out, "a") as f:  # a file made by another version of neuroemu
        f["meta"].attrs["neuroemu_version"] = "0.0.1"
    seal(out)
    make_folder(digits, n_train=50, n_test=50, labels=[i % 10 for i in range(100)])
    with pytest.raises(RunFileError, match=r"neuroemu's version .* here, but the run used 0.0.1"):
        neuroemu.simulate(XS, dataset=digits, epochs=2, resume=out)


def test_a_spec_kept_before_a_key_existed_resumes_with_its_default(tmp_path):
    """A run file whose kept spec predates a key (a card's up_down_spread, training.scheme)
    resumes, since the key's default is what that run used; a kept value that differs is
    still refused."""
    import json

    import h5py

    from neuroemu.files import seal

    out = tmp_path / "run.h5"
    straight = neuroemu.simulate(XS, limit=20, epochs=2)
    neuroemu.simulate(XS, limit=20, epochs=1, out=out)
    with h5py.File(out, "a") as f:  # as a version without those keys wrote it
        spec = json.loads(f["meta"].attrs["chip_spec"])
        del spec["training"]["scheme"]
        for layer in spec["layers"]:
            del layer["device"]["up_down_spread"]
        f["meta"].attrs["chip_spec"] = json.dumps(spec)
    seal(out)
    resumed = neuroemu.simulate(XS, limit=20, epochs=2, resume=out)
    assert untimed(resumed.history) == untimed(straight.history)
    with h5py.File(out, "a") as f:
        spec = json.loads(f["meta"].attrs["chip_spec"])
        spec["training"]["beta"] = 2e-4
        f["meta"].attrs["chip_spec"] = json.dumps(spec)
    seal(out)
    with pytest.raises(
        RunFileError, match=r"spec's training\.beta is 0\.0003 here, but .* 0\.0002"
    ):
        neuroemu.simulate(XS, limit=20, epochs=3, resume=out)
