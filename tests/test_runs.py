"""Run files: written by simulate, read back by open_run, summarised and plotted."""

from __future__ import annotations

import json
import os
import platform
import re
import signal
from datetime import UTC, datetime
from pathlib import Path

import h5py
import numpy as np
import pytest

import neuroemu
from neuroemu.errors import RunFileError
from neuroemu.interrupts import Terminated, deferred_interrupts, sigterm_interrupts
from neuroemu.io.hdf5 import parts_folder
from neuroemu.spec.loader import load_card

from .conftest import run_cli, start_training

ROOT = Path(__file__).resolve().parents[1]


cli = run_cli


SIMULATE = ("simulate", "xs_784x100", "--limit", "120", "--epochs", "2", "--batch-size", "40")
INFER_AT = [1.0, 86400.0]  # --infer-at 1s,1d


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "xs.h5"
    before = datetime.now(UTC).replace(microsecond=0)
    result = cli(*SIMULATE, "--infer-at", "1s,1d", "--out", str(out), "--json", "--quiet")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    summary["window"] = (before, datetime.now(UTC))
    return out, summary


@pytest.fixture(scope="module")
def replayed():
    """The run of ``trained`` done again in this process, step by step, through the public
    API: the chip at every epoch, its evaluations, traces and aged evaluations."""
    from neuroemu.learning.train import trace_phases, train_epoch
    from neuroemu.run.evaluate import evaluate, infer_at

    chip = neuroemu.Chip.from_yaml(ROOT / "chips" / "xs_784x100.yaml")
    training = chip.spec.training
    data = neuroemu.load_dataset("mnist5k").subset(120, 120)
    samples = list(training.trace_samples)
    epochs = []
    for epoch in range(3):
        trained = None
        if epoch > 0:
            trained = train_epoch(chip, data.x_train, data.y_train, training, epoch)
        epochs.append(
            {
                "conductance": {c.name: c.conductance.copy() for c in chip.crossbars},
                "velocity": [v.copy() for v in chip.velocities or []],  # momentum's
                "bias": {
                    layer.name: bias.copy()
                    for layer, bias in zip(chip.spec.layers, chip.bias_conductance, strict=True)
                },
                "report": evaluate(chip, data.x_test, data.y_test, batch_size=40),
                "trained": trained,
                "traces": trace_phases(
                    chip, data.x_test[samples], data.y_test[samples], training, epoch
                ),
            }
        )
    aged = infer_at(chip, INFER_AT, data.x_test, data.y_test, batch_size=40)
    return {"chip": chip, "data": data, "epochs": epochs, "aged": aged}


# Units each dataset must carry, written out here rather than taken from the writer.
METRIC_UNITS = {
    "epoch": "1",
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
    "train_error": "1",
    "train_loss_V2": "V^2",
    "train_mean_sweeps": "1",
    "train_wall_time_s": "s",
    "update_unmoved_fraction": "1",
    "update_clipped_fraction": "1",
}
# Figures of a pass that do not depend on the clock, by their name in InferenceReport.
REPORT_FIELDS = {
    "samples": "samples",
    "accuracy": "accuracy",
    "error": "error",
    "mean_sweeps": "mean_sweeps",
    "max_sweeps": "max_sweeps",
    "max_residual_A": "max_residual",
    "max_relative_residual": "max_relative_residual",
    "mean_power_W": "mean_power",
    "energy_per_inference_J": "energy_per_inference",
    "settle_time_s": "settle_time",
    "converged": "converged",
    "tol": "tol",
}
TRAIN_FIELDS = {
    "train_error": "train_error",
    "train_loss_V2": "train_loss",
    "train_mean_sweeps": "mean_sweeps",
}
# What the device models made of an epoch's updates, by their name in UpdateCounts.
UPDATE_FIELDS = {
    "update_unmoved_fraction": "unmoved_fraction",
    "update_clipped_fraction": "clipped_fraction",
}
CLOCK = ("wall_time_s", "samples_per_s", "train_wall_time_s")


def walk(f):
    """Every dataset (``path``) and attribute (``path@name``) of an HDF5 file."""
    items = {f"@{name}" for name in f.attrs}

    def visit(name, item):
        if isinstance(item, h5py.Dataset):
            items.add(name)
        items.update(f"{name}@{attr}" for attr in item.attrs)

    f.visititems(visit)
    return items


def copy_run(source: Path, target: Path) -> Path:
    """A copy of a run file and its parts folder."""
    import shutil

    shutil.copy(source, target)
    shutil.copytree(parts_folder(source), parts_folder(target))
    return target


def edited(path: Path):
    """A context in which ``path`` is open for writing with h5py, sealed anew after (as if
    the file had been written so)."""
    import contextlib

    from neuroemu.files import seal

    @contextlib.contextmanager
    def edit():
        with h5py.File(path, "a") as f:
            yield f
        seal(path)

    return edit()


def same(actual, expected):
    """Equal to the last bit but for a few ulps of reordered sums (BLAS threads)."""
    np.testing.assert_allclose(np.asarray(actual, float), np.asarray(expected, float), rtol=1e-12)


def test_round_trip_of_every_field(trained, replayed):
    """Every field the run file holds (``RUN.h5`` and every part), against what the same
    run computes in this process (and, for clock times, the ``--json`` history), and as
    ``open_run`` shows it. The files are walked: a field no check below claims fails the
    test."""
    path, summary = trained
    history = summary["history"]
    epochs = replayed["epochs"]
    data = replayed["data"]
    run = neuroemu.open_run(path)
    chip_file = ROOT / "chips" / "xs_784x100.yaml"
    card_files = {
        name: ROOT / "devices" / f"{name}.yaml" for name in ("ideal_resistor", "ideal_diode")
    }
    started, finished = summary["window"]

    def meta(name, value):
        expected = {
            "format": "neuroemu-run",
            "format_version": 3,
            "neuroemu_version": neuroemu.__version__,
            "seed": 0,
            "chip_name": "xs_784x100",
            "chip_yaml": chip_file.read_text(),
            "dataset": "mnist5k",
            "dataset_source": data.source,
            "host": platform.node(),
            "complete": True,
            "chip_file": "xs_784x100",  # the chip as the command named it
            "dtype": "float64",
            "epochs": 2,
            "limit": 120,
        }
        if name == "chip_spec":  # the validated spec, as the chip was built from it
            chip = neuroemu.Chip.from_yaml(chip_file)
            assert json.loads(value) == chip.spec.model_dump(mode="json")
            return
        if name in expected:
            assert value == expected[name], name
        elif name == "device_cards":
            cards = {n: load_card(p).model_dump(mode="json") for n, p in card_files.items()}
            assert json.loads(value) == cards and run.cards == cards
        elif name == "device_cards_yaml":
            texts = {n: p.read_text() for n, p in card_files.items()}
            assert json.loads(value) == texts and run.card_files == texts
        elif name == "command":
            assert value.endswith(
                " ".join(SIMULATE[1:]) + f" --infer-at 1s,1d --out {path} --json --quiet"
            )
        elif name in ("started", "finished"):
            moment = datetime.fromisoformat(value)
            assert moment.tzinfo is not None and started <= moment <= finished
        elif name == "run_id":
            assert re.fullmatch(r"[0-9a-f]{12}", value)
        elif name == "dataset_labels":  # SHA-256 of the labels, training part then test part
            import hashlib

            digest = hashlib.sha256()
            for labels in (data.y_train, data.y_test):
                digest.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
            assert value == digest.hexdigest()
        else:
            raise AssertionError(f"/meta@{name}: no expected value")
        assert run.meta[name] == value

    def metric(name, values):
        if name == "epoch":
            assert values.tolist() == [h["epoch"] for h in history] == [0, 1, 2]
        for epoch, value in enumerate(values):
            in_json = history[epoch].get(name, float("nan"))
            assert value == pytest.approx(float(in_json), rel=0, nan_ok=True), (name, epoch)
            if name in REPORT_FIELDS:
                same(value, getattr(epochs[epoch]["report"], REPORT_FIELDS[name]))
            elif name in TRAIN_FIELDS:
                done = epochs[epoch]["trained"]
                same(value, np.nan if done is None else getattr(done, TRAIN_FIELDS[name]))
            elif name in UPDATE_FIELDS:
                done = epochs[epoch]["trained"]
                same(value, np.nan if done is None else getattr(done.updates, UPDATE_FIELDS[name]))
            elif name in CLOCK:
                assert np.isnan(value) if epoch == 0 and name.startswith("train") else value > 0
            else:
                assert name == "epoch", f"/metrics/{name}: no expected value"
        np.testing.assert_array_equal(run.metrics[name].values, values)

    checks = []  # (pattern, check(match, f)) for every item the file may hold

    def check(pattern):
        def register(fn):
            checks.append((re.compile(pattern), fn))
            return fn

        return register

    @check(r"meta@(\w+)")
    def _(m, f):
        meta(m[1], f["meta"].attrs[m[1]])

    @check(r"metrics/(\w+)")
    def _(m, f):
        metric(m[1], f[m[0]][()])

    @check(r"(metrics/\w+|aging/\w+|state/.+|snapshot_epoch|inference/\w+|traces/.+)@unit")
    def _(m, f):
        unit = f[m[1]].attrs["unit"]
        name = m[1].rsplit("/", 1)[-1]
        if m[1].startswith(("metrics/", "aging/")):
            assert unit == ("s" if name == "time_s" else METRIC_UNITS[name])
        elif m[1].startswith("state/") or "/update/" in m[1]:
            assert unit == "S"
        elif m[1] == "snapshot_epoch":
            assert unit == "1"
        elif m[1].startswith("inference/"):
            assert unit == "class"
        else:
            assert unit == {"samples": "index", "residual": "1", "power": "W", "energy": "W"}.get(
                name, "V" if "/voltage/" in m[1] else None
            ), m[1]

    @check(r"snapshot_epoch")
    def _(m, f):
        assert (
            f["snapshot_epoch"][()].tolist() == [0, 1, 2] == run.conductance.epoch.values.tolist()
        )

    @check(r"parts/(epoch|file|kind)@unit")
    def _(m, f):
        assert f[f"parts/{m[1]}"].attrs["unit"] == ("1" if m[1] == "epoch" else "name")

    @check(r"parts/(epoch|file|kind)")
    def _(m, f):
        parts = f["parts"]
        files = [name.decode() for name in parts["file"][()]]
        kinds = [kind.decode() for kind in parts["kind"][()]]
        epochs_of = parts["epoch"][()].tolist()
        assert sorted(zip(epochs_of, kinds, strict=True)) == [
            (e, k) for e in (0, 1, 2) for k in ("snapshot", "traces")
        ] + [(2, "velocity")]  # momentum: the velocities of the last state only
        on_disk = sorted(p.name for p in parts_folder(path).iterdir())
        assert sorted(files) == on_disk  # every part named, no other file left
        for epoch in (0, 1, 2):  # open_run's snapshots are the run's conductances
            for kind in ("conductance", "bias"):
                for name, values in epochs[epoch][kind].items():
                    key = name if kind == "conductance" else f"bias:{name}"
                    same(run.conductance[key].sel(epoch=epoch).values, values)

    @check(r"state/(conductance|bias)/([^@]+)")
    def _(m, f):
        same(f[m[0]][()], epochs[f["state"].attrs["epoch"]][m[1]][m[2]])

    @check(r"state/velocity/(conductance|bias)/([^@]+)")
    def _(m, f):
        epoch = f["state"].attrs["epoch"]
        names = [f"conductance/{c}" for c in epochs[epoch]["conductance"]]
        names += [f"bias/{layer}" for layer in epochs[epoch]["bias"]]
        velocity = epochs[epoch]["velocity"][names.index(f"{m[1]}/{m[2]}")]
        if epoch > 0:
            assert np.abs(velocity).max() > 0  # the chip trains with momentum
        same(f[m[0]][()], velocity)

    @check(r"state@epoch")
    def _(m, f):
        assert f["state"].attrs["epoch"] in (0, 1, 2)

    @check(r"inference/(prediction|label)")
    def _(m, f):
        expected = epochs[2]["report"].prediction if m[1] == "prediction" else data.y_test
        np.testing.assert_array_equal(f[m[0]][()], expected)
        np.testing.assert_array_equal(getattr(run, m[1]).values, expected)
        assert getattr(run, m[1]).sample.values.tolist() == list(range(120))

    @check(r"traces/epoch_(\d)@epoch")
    def _(m, f):
        assert f[f"traces/epoch_{m[1]}"].attrs["epoch"] == int(m[1])
        assert run.trace(int(m[1])).epoch.item() == int(m[1])

    @check(r"traces/epoch_(\d)/samples")
    def _(m, f):
        assert f[m[0]][()].tolist() == [0, 1, 2] == run.trace(int(m[1])).sample.values.tolist()

    @check(r"traces/epoch_(\d)/(free|plus|minus)/(voltage/\w+|residual|power|energy)")
    def _(m, f):
        epoch, phase, key = int(m[1]), m[2], m[3]
        recorded = epochs[epoch]["traces"].phases[phase]
        layers = [layer.name for layer in replayed["chip"].spec.layers]
        trace = run.trace(epoch)
        if key.startswith("voltage/"):
            layer = key.split("/")[1]
            expected = recorded.voltages[layers.index(layer)]
            view = trace[f"voltage:{layer}"].sel(phase=phase).values
            every = trace["voltage"].sel(phase=phase, layer=layer).values
            np.testing.assert_array_equal(every[..., : view.shape[-1]], view)
            assert np.all(np.isnan(every[..., view.shape[-1] :]))
        else:
            expected = getattr(recorded, key)
            view = trace[key].sel(phase=phase).values
        same(f[m[0]][()], expected)
        # Phases are padded with NaN after their last sweep (the residual one further:
        # it is measured during the sweep from each state).
        np.testing.assert_array_equal(view[: len(expected)], f[m[0]][()])
        assert np.all(np.isnan(view[len(expected) :]))

    @check(r"traces/epoch_(\d)/update/([^@]+)")
    def _(m, f):
        expected = epochs[int(m[1])]["traces"].update[m[2]].astype(np.float32)
        np.testing.assert_allclose(f[m[0]][()], expected, rtol=1e-6, atol=1e-30)
        np.testing.assert_array_equal(run.trace(int(m[1]))[f"update:{m[2]}"].values, f[m[0]][()])

    @check(r"aging/(\w+)")
    def _(m, f):
        values = f[m[0]][()]
        if m[1] == "time_s":
            assert values.tolist() == INFER_AT == run.aging.time.values.tolist()
            return
        for value, entry, report in zip(values, summary["infer_at"], replayed["aged"], strict=True):
            assert value == pytest.approx(float(entry[m[1]]), rel=0)
            if m[1] in REPORT_FIELDS:
                same(value, getattr(report, REPORT_FIELDS[m[1]]))
            else:
                assert m[1] in CLOCK, f"/aging/{m[1]}: no expected value"
        np.testing.assert_array_equal(run.aging[m[1]].values, values)

    seen: set[str] = set()
    unclaimed = set()
    for file in [path, *sorted(parts_folder(path).iterdir())]:
        with h5py.File(file) as f:
            items = walk(f)
            seen |= items
            for item in sorted(items):
                matches = [(fn, m) for pattern, fn in checks if (m := pattern.fullmatch(item))]
                if not matches:
                    unclaimed.add(item)
                for fn, m in matches:
                    fn(m, f)
    assert unclaimed == set(), f"fields with no check: {sorted(unclaimed)}"
    # The walk saw every kind of field: files missing one would pass too easily.
    for prefix in (
        "meta@",
        "metrics/",
        "parts/",
        "state/conductance/",
        "state/bias/",
        "state/velocity/",
        "inference/",
        "traces/",
        "aging/",
        "snapshot_epoch",
    ):
        assert any(item.startswith(prefix) for item in seen), prefix
    with h5py.File(path) as f:
        assert len([i for i in walk(f) if re.fullmatch(r"metrics/\w+", i)]) == 21  # epoch + 20


def test_traces_and_plots(trained, tmp_path):
    path, _ = trained
    result = cli("traces", str(path))
    assert result.returncode == 0, result.stderr
    assert (
        "xs_784x100" in result.stdout
        and "2 trained" in result.stdout
        and "complete" in result.stdout
    )
    for kind in ("learning-curve", "conductance-histogram", "power", "drift"):
        out = tmp_path / f"{kind}.png"
        done = cli("plot", str(path), "--kind", kind, "-o", str(out))
        assert done.returncode == 0, done.stderr
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    young = copy_run(path, tmp_path / "young.h5")  # a run never evaluated after programming
    with edited(young) as f:
        del f["aging"]
    missing = cli("plot", str(young), "--kind", "drift", "-o", str(tmp_path / "s.png"))
    assert missing.returncode == 2 and "holds no inference results over time" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1


def test_plot_defaults_to_the_learning_curve_and_never_overwrites(trained, tmp_path):
    """Without --kind a run file's figure is its learning curve; an existing figure file is
    only replaced with --force, and a figure is written whole or not at all."""
    path, _ = trained
    default, named = tmp_path / "default.png", tmp_path / "named.png"
    assert cli("plot", str(path), "-o", str(default)).returncode == 0
    done = cli("plot", str(path), "--kind", "learning-curve", "-o", str(named))
    assert done.returncode == 0, done.stderr
    assert default.read_bytes() == named.read_bytes()
    before = named.read_bytes()
    again = cli("plot", str(path), "--kind", "power", "-o", str(named))
    assert again.returncode == 2
    assert (
        again.stderr == f"neuroemu: error: {named}: already exists (pass --force to overwrite it)\n"
    )
    assert named.read_bytes() == before
    forced = cli("plot", str(path), "--kind", "power", "-o", str(named), "--force")
    assert forced.returncode == 0, forced.stderr
    assert named.read_bytes() != before
    # A format matplotlib cannot write leaves the old file as it was, and no temporary file.
    bad = tmp_path / "figure.xyz"
    bad.write_bytes(b"old")
    failed = cli("plot", str(path), "-o", str(bad), "--force")
    assert failed.returncode == 2 and len(failed.stderr.splitlines()) == 1
    assert failed.stderr.startswith(f"neuroemu: error: {bad}: cannot write the figure (")
    assert bad.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["default.png", "figure.xyz", "named.png"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--kind", "sweep"),
            "--kind sweep: {run} is a run file, not a sweep file (its figures: learning-curve, conductance-histogram, power, settle, drift)",
        ),
        (
            ("--metric", "mean_power_W"),
            "--metric mean_power_W: only for a sweep file; a run file's figure is chosen by --kind",
        ),
        (("--kind", "bogus"), "plot: argument --kind: invalid choice: 'bogus'"),
    ],
)
def test_plot_refuses_what_a_run_file_has_not(trained, tmp_path, args, message):
    path, _ = trained
    result = cli("plot", str(path), *args, "-o", str(tmp_path / "f.png"))
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("neuroemu: error: " + message.format(run=path)), line
    assert not (tmp_path / "f.png").exists()


def test_plot_into_a_missing_folder_or_a_folder(trained, tmp_path):
    path, _ = trained
    missing = tmp_path / "nope" / "f.png"
    result = cli("plot", str(path), "-o", str(missing))
    assert result.stderr == (
        f"neuroemu: error: {missing}: folder {missing.parent} does not exist\n"
    )
    folder = cli("plot", str(path), "-o", str(tmp_path))
    assert folder.returncode == 2 and "a folder; name the figure file" in folder.stderr


def test_drift_and_power_figures_do_not_zoom_into_noise(trained):
    """The drift figure shows each test error with its standard error over the test
    samples, and its y axis spans at least that band; the power figure's axes start at 0."""
    from neuroemu.analysis import run_figure
    from neuroemu.analysis.figures import sampling_spread

    path, _ = trained
    run = neuroemu.open_run(path)
    error = run.aging["error"].values
    samples = run.aging["samples"].values
    spread = sampling_spread(error, samples)
    assert spread == pytest.approx(np.sqrt(error * (1 - error) / samples))
    ax = run_figure(run, "drift").axes[0]
    (band,) = ax.collections  # the band of +/- 1 standard error
    corners = band.get_paths()[0].vertices[:, 1]
    assert corners.min() == pytest.approx(100 * (error - spread).min())
    assert corners.max() == pytest.approx(100 * (error + spread).max())
    low, high = ax.get_ylim()
    assert low <= 100 * (error - spread).min() and high >= 100 * (error + spread).max()
    assert high - low >= 2 * 100 * spread.min()
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert labels[1] == f"+/- 1 standard error ({int(samples.min())} test samples)"
    assert labels[2] == "as trained (epoch 2)"
    for axis in run_figure(run, "power").axes:
        assert axis.get_ylim()[0] == 0.0


def test_every_axis_of_every_run_figure_names_its_unit(trained):
    """Axes showing a metric take label and unit from the metrics table, in a prefix that
    suits the values; the values drawn are the file's, scaled by that prefix."""
    from neuroemu.analysis import PLOT_KINDS, run_figure
    from neuroemu.units import PREFIXES

    path, _ = trained
    run = neuroemu.open_run(path)
    figures = {kind: run_figure(run, kind) for kind in PLOT_KINDS}
    labels = {
        kind: [(ax.get_xlabel(), ax.get_ylabel()) for ax in fig.axes]
        for kind, fig in figures.items()
    }
    assert labels["learning-curve"] == [("epoch", "test error, train error (%)")]
    assert labels["conductance-histogram"] == [("conductance (uS)", "devices")]
    assert labels["drift"] == [("time after programming (s)", "test error after programming (%)")]
    (x, power), (_, energy) = labels["power"]
    assert x == "epoch"
    (top_x, residual), (step, settle_power) = labels["settle"]
    assert residual == "largest relative residual" and top_x == ""
    assert step == "sweep (state after it; 0 = start of the phase)"

    def prefix(label: str, name: str, unit: str) -> float:
        match = re.fullmatch(rf"{name} \((\w?){unit}\)", label)
        assert match is not None, label
        return PREFIXES[match.group(1)]

    watt = prefix(power, "static power", "W")
    joule = prefix(energy, "energy per inference", "J")
    prefix(settle_power, "static power", "W")
    metrics = run.metrics
    lines = [ax.get_lines()[0].get_ydata() for ax in figures["power"].axes]
    np.testing.assert_allclose(lines[0] * watt, metrics["mean_power_W"].values, rtol=1e-12)
    np.testing.assert_allclose(
        lines[1] * joule, metrics["energy_per_inference_J"].values, rtol=1e-12
    )
    assert 1 <= abs(lines[0]).max() < 1000 and 1 <= abs(lines[1]).max() < 1000
    curve = figures["learning-curve"].axes[0].get_lines()
    np.testing.assert_allclose(curve[0].get_ydata(), 100 * metrics["error"].values)
    np.testing.assert_allclose(curve[1].get_ydata(), 100 * metrics["train_error"].values)
    drift = figures["drift"].axes[0].get_lines()[0]
    np.testing.assert_allclose(drift.get_ydata(), 100 * run.aging["error"].values)
    with pytest.raises(RunFileError, match=r"--kind bogus: unknown \(known: learning-curve,"):
        run_figure(run, "bogus")


def test_figures_need_no_pyplot(trained, tmp_path):
    """Drawing a run's figures neither imports pyplot nor selects a backend."""
    import subprocess
    import sys

    path, _ = trained
    out = tmp_path / "figure.svg"
    script = (
        "import sys, matplotlib, neuroemu\n"
        "def refuse(*args, **kwargs):\n"
        "    raise SystemExit('matplotlib.use was called')\n"
        "matplotlib.use = refuse\n"
        "from neuroemu.analysis import plot, summary_lines\n"
        f"run = neuroemu.open_run({str(path)!r})\n"
        "summary_lines(run)\n"
        "for kind in ('learning-curve', 'conductance-histogram', 'power', 'settle', 'drift'):\n"
        f"    plot(run, kind, {str(out)!r})\n"
        "print('matplotlib.pyplot' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False"]
    assert out.read_text().lstrip().startswith("<?xml")


def test_summary_states_power_and_energy_in_the_tables_units(trained):
    from neuroemu.analysis import summary_lines

    path, _ = trained
    lines = dict(summary_lines(neuroemu.open_run(path)))
    assert re.fullmatch(r"[\d.]+ [munp]?W \(last epoch\)", lines["power"]), lines["power"]
    assert re.fullmatch(r"[\d.]+ [munp]?J \(last epoch\)", lines["energy"]), lines["energy"]
    assert re.fullmatch(r"best \d+\.\d\d % \(epoch \d\), last \d+\.\d\d %", lines["test error"])


def test_named_dimensions_and_coordinates(trained, replayed):
    """What a notebook user slices by: epochs, layers' nodes (and each source node's input
    and sign), sweeps, phases, samples, and every layer's voltages at once."""
    import matplotlib

    matplotlib.use("Agg")
    import xarray as xr

    path, _ = trained
    run = neuroemu.open_run(path)
    chip = replayed["chip"]
    g = run.conductance["input->hidden"]
    assert g.dims == ("epoch", "input", "hidden")
    assert g.hidden.values.tolist() == list(range(100))
    assert g.input.values.tolist() == list(range(1568))
    # Source node i carries +a x_i, node 784 + i carries -a x_i (docs/physics.md).
    plus = g.isel(epoch=-1).where(g.input_sign == 1, drop=True)
    minus = g.isel(epoch=-1).where(g.input_sign == -1, drop=True)
    np.testing.assert_array_equal(plus.values, chip.conductances[0][:784])
    np.testing.assert_array_equal(minus.values, chip.conductances[0][784:])
    assert (
        plus.input_feature.values.tolist()
        == minus.input_feature.values.tolist()
        == list(range(784))
    )
    pixel = g.isel(epoch=0).where(g.input_feature == 5, drop=True)
    assert pixel.sizes["input"] == 2 and pixel.input_sign.values.tolist() == [1, -1]
    assert run.conductance["bias:output"].sel(source="-V_b").dims == ("epoch", "output")
    assert run.metrics.error.sel(epoch=2).item() == run.metrics["error"].values[-1]
    assert run.prediction.sel(sample=7).item() == run.prediction.values[7]

    trace = run.trace(1)
    every = trace["voltage"]
    assert every.dims == ("phase", "sweep", "sample", "layer", "node")
    assert every.layer.values.tolist() == ["hidden", "output"]
    assert every.node.values.tolist() == list(range(100))
    np.testing.assert_array_equal(
        every.sel(layer="output", node=slice(0, 9)).values, trace["voltage:output"].values
    )
    # Slice and plot at once: the last free state of sample 2 across every layer's nodes.
    last = every.sel(phase="free", sample=2).dropna("sweep", how="all").isel(sweep=-1)
    last.plot.line(x="node", hue="layer")
    assert trace["voltage:hidden"].hidden.values.tolist() == list(range(100))
    assert trace["update:input->hidden"].input_sign.values[784] == -1
    # Traced epochs stack along ``epoch`` (sweep counts differ: padded with NaN).
    stacked = xr.concat([run.trace(e) for e in run.traced_epochs], "epoch", join="outer")
    assert stacked.epoch.values.tolist() == [0, 1, 2]
    assert stacked["residual"].dims == ("epoch", "phase", "sweep", "sample")


def test_card_files_kept_and_resume_checks_them(tmp_path):
    """/meta keeps the exact text of every card file the chip names (an inline card: its
    YAML dump), and a run does not resume with a card whose figures have changed since (a
    comment changes none)."""
    import yaml

    from neuroemu.spec.loader import load_chip

    data = yaml.safe_load((ROOT / "chips" / "xs_784x100.yaml").read_text())
    data["layers"][1]["device"] = {"g_min": "0 uS", "g_max": "30 uS"}  # inline
    data["training"]["trace_samples"] = []
    (tmp_path / "chips").mkdir()
    (tmp_path / "devices").mkdir()
    card = tmp_path / "devices" / "ideal_resistor.yaml"  # found before the library's
    card.write_text("# a local copy\n" + (ROOT / "devices" / "ideal_resistor.yaml").read_text())
    chip_file = tmp_path / "chips" / "xs_inline.yaml"
    chip_file.write_text(yaml.safe_dump(data))
    loaded = load_chip(chip_file)
    inline = "inline layers[1].device"
    assert set(loaded.cards) == {"ideal_resistor", "ideal_diode", inline}
    assert loaded.cards["ideal_resistor"] == card.read_text()
    assert loaded.cards["ideal_diode"] == (ROOT / "devices" / "ideal_diode.yaml").read_text()
    assert yaml.safe_load(loaded.cards[inline]) == {
        "kind": "resistor",
        "name": inline,
        "g_min": "0 uS",
        "g_max": "30 uS",
    }
    out = tmp_path / "run.h5"
    common = ("simulate", str(chip_file), "--limit", "60", "--batch-size", "30", "--quiet")
    assert cli(*common, "--epochs", "1", "--out", str(out)).returncode == 0
    assert neuroemu.open_run(out).card_files == loaded.cards
    text = card.read_text()
    card.write_text(text.replace("g_max: 100 uS", "g_max: 90 uS"))
    resumed = cli(*common, "--epochs", "2", "--resume", str(out))
    assert resumed.returncode == 2
    assert (
        "cannot resume: the chip spec's layers[0].device.g_max is 9e-05 here, but the run used "
        "0.0001" in resumed.stderr
    )
    card.write_text(text + "# a comment changes no figure of the run\n")
    assert cli(*common, "--epochs", "2", "--resume", str(out)).returncode == 0


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
    newer = copy_run(path, tmp_path / "newer.h5")
    with edited(newer) as f:
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


class _SignalOnRead:
    """A metric that sends this process ``signum`` when the writer reads it, as if Ctrl-C or
    a scheduler's SIGTERM came in the middle of a commit."""

    def __init__(self, value: float, signum: int):
        self.value, self.signum = value, signum

    def __float__(self) -> float:
        signal.raise_signal(self.signum)
        return self.value


@pytest.mark.parametrize(
    ("signum", "raised"), [(signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, Terminated)]
)
def test_a_signal_during_an_append_waits_for_it(tmp_path, signum, raised):
    from neuroemu.chip import Chip
    from neuroemu.io.hdf5 import RunWriter

    chip = Chip.from_yaml("xs_784x100")
    out = tmp_path / "run.h5"
    writer = RunWriter.create(out, chip, dataset="d", dataset_source="s", started="now")
    writer.commit_epoch(0, {"error": 0.9}, chip.state())
    with sigterm_interrupts():
        state = chip.state()
        state.conductances[0] *= 2  # "epoch 1" changed the conductances
        with pytest.raises(raised):
            writer.commit_epoch(1, {"error": _SignalOnRead(0.5, signum)}, state)
    writer.close(complete=False)
    run = neuroemu.open_run(out)  # the epoch's metrics, state and snapshot are all there
    assert run.metrics["epoch"].values.tolist() == [0, 1]
    assert run.metrics["error"].values.tolist() == [0.9, 0.5]
    assert run.conductance["epoch"].values.tolist() == [0, 1]
    np.testing.assert_array_equal(
        run.conductance["input->hidden"].sel(epoch=1).values, state.conductances[0]
    )
    np.testing.assert_array_equal(run.chip.conductances[0], state.conductances[0])
    assert not (out.parent / "run.h5.lock").exists()  # the writer let go of its lock
    # The handlers in place before are back: SIGTERM is Python's default again.
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_deferred_signals_nest_and_arrive_once():
    arrived = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: arrived.append(signum))
    try:
        with deferred_interrupts():
            with deferred_interrupts():
                signal.raise_signal(signal.SIGINT)
                signal.raise_signal(signal.SIGINT)
                assert arrived == []
            assert arrived == []  # the inner block handed it to the outer one
        assert arrived == [signal.SIGINT]
    finally:
        signal.signal(signal.SIGINT, previous)


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
    last = run.conductance.isel(epoch=-1)
    chip.set_conductances(
        [last[c.name].values for c in chip.crossbars],
        [last[f"bias:{layer.name}"].values for layer in chip.spec.layers],
    )
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
    broken = copy_run(path, tmp_path / "broken.h5")
    with edited(broken) as f:
        del f["inference"]
    with pytest.raises(RunFileError, match="missing group /inference"):
        neuroemu.open_run(broken)
    result = cli("plot", str(broken), "--kind", "power", "-o", str(tmp_path / "p.png"))
    assert result.returncode == 2 and "missing group /inference" in result.stderr


def test_version_1_file_is_read_and_resumed(tmp_path):
    """A version 1 file (a snapshot every epoch, no /state), made from the stored version 2
    file, reads and resumes, and resuming makes it a version 3 run file."""
    import shutil

    data = ROOT / "tests" / "data"
    shutil.copy(data / "run_v2_chip.yaml", tmp_path)
    old = Path(shutil.copy(data / "run_v2.h5", tmp_path / "old.h5"))
    with h5py.File(old, "a") as f:
        del f["state"], f["snapshot_epoch"]
        del f["meta"].attrs["device_cards_yaml"]  # kept since, within version 2
        f["meta"].attrs["format_version"] = 1
    run = neuroemu.open_run(old)
    assert run.conductance["epoch"].values.tolist() == [0, 1, 2]
    assert run.card_files == {} and set(run.cards) == {"ideal_resistor", "ideal_diode"}
    common = ("simulate", str(tmp_path / "run_v2_chip.yaml"), "--limit", "40", "--quiet")
    resumed = cli(*common, "--epochs", "3", "--resume", str(old))
    assert resumed.returncode == 0, resumed.stderr
    again = neuroemu.open_run(old)
    assert again.metrics["epoch"].values.tolist() == [0, 1, 2, 3]
    assert again.meta["format_version"] == 3
    assert again.conductance["epoch"].values.tolist() == [0, 1, 2, 3]
    assert again.traced_epochs == [0, 1, 2, 3]


def test_every_dataset_has_a_unit(trained):
    path, _ = trained
    missing = []
    for file in [path, *parts_folder(path).iterdir()]:
        with h5py.File(file) as f:
            f.visititems(
                lambda name, item, file=file: (
                    missing.append(f"{file.name}:{name}")
                    if isinstance(item, h5py.Dataset) and "unit" not in item.attrs
                    else None
                )
            )
    assert missing == []


def test_a_run_file_of_an_earlier_version_opens_and_resumes(tmp_path):
    """tests/data/run_v2.h5 was written by an earlier neuroemu: two epochs of
    tests/data/run_v2_chip.yaml. It opens as it is, its chip is rebuilt from what it keeps,
    and resumed to four epochs it gives bit for bit what an uninterrupted four-epoch run of
    that version gave (tests/data/run_v2_expected.json)."""
    import hashlib
    import shutil

    data = ROOT / "tests" / "data"
    expected = json.loads((data / "run_v2_expected.json").read_text())
    timings = {"wall_time_s", "samples_per_s", "train_wall_time_s"}
    shutil.copy(data / "run_v2_chip.yaml", tmp_path)
    path = shutil.copy(data / "run_v2.h5", tmp_path)

    run = neuroemu.open_run(path)
    assert run.epochs_done == 2 and run.traced_epochs == [0, 1, 2]
    kept = [{k: v for k, v in h.items() if k not in timings} for h in run.history]
    assert kept == expected["history"][:3]
    assert run.trace(1)["update:input->hidden"].dims == ("input", "hidden")
    chip = run.chip  # rebuilt: the spec and cards the file keeps, its state after epoch 2
    np.testing.assert_array_equal(
        chip.conductances[0], run.conductance["input->hidden"].isel(epoch=-1).values
    )
    assert chip.velocities is not None  # trained with momentum

    resumed = neuroemu.simulate(tmp_path / "run_v2_chip.yaml", limit=40, epochs=4, resume=path)
    # The epochs trained now also say what the device models made of their updates, a
    # figure that version did not have; every other figure is as it gave.
    assert all(set(UPDATE_FIELDS) <= set(h) for h in resumed.history[3:])
    history = [
        {k: v for k, v in h.items() if k not in timings and k not in UPDATE_FIELDS}
        for h in resumed.history
    ]
    # Power and energy are sums over every device, whose last bit follows numpy's
    # summation order (it changed between numpy releases); every other figure, and every
    # array below, is bit for bit.
    sums = {"mean_power_W", "energy_per_inference_J"}
    exact = [{k: v for k, v in h.items() if k not in sums} for h in history]
    assert exact == [{k: v for k, v in h.items() if k not in sums} for h in expected["history"]]
    for got, want in zip(history, expected["history"], strict=True):
        for key in sums & set(want):
            assert got[key] == pytest.approx(want[key], rel=1e-14, abs=0), key
    from neuroemu.io.hdf5 import array_names

    kept = neuroemu.open_run(path).chip  # the state the file now holds
    state, names = kept.state(), array_names(kept)
    arrays = dict(zip(names, state.arrays, strict=True))
    arrays.update({f"velocity/{n}": v for n, v in zip(names, state.velocities, strict=True)})
    assert set(arrays) == set(expected["state_sha256"])
    for name, digest in expected["state_sha256"].items():
        array = np.ascontiguousarray(arrays[name], dtype=np.float64)
        assert hashlib.sha256(array.tobytes()).hexdigest() == digest, name
    assert resumed.meta["complete"] and resumed.meta["format_version"] == 3
