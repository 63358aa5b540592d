"""The command line as a user meets it: subprocesses, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

import neuroemu as neuroemu_api
from neuroemu.io.datasets import load_dataset
from neuroemu.io.runs import open_run

from .conftest import run_cli, start_training

ROOT = Path(__file__).resolve().parents[1]
CHIPS = ROOT / "chips"


neuroemu = run_cli


def assert_one_line_error(result: subprocess.CompletedProcess, *needles: str) -> None:
    """Exit status 2 and exactly one line on stderr (no blank line before or after it)."""
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and result.stderr.endswith("\n"), repr(result.stderr)
    assert lines[0].startswith("neuroemu: error: "), lines[0]
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


#: Modules ``neuroemu --help`` must not import: each takes a noticeable time to load.
HEAVY_MODULES = (
    "numpy",
    "numba",
    "scipy",
    "pydantic",
    "h5py",
    "xarray",
    "dask",
    "distributed",
    "matplotlib",
    "rich",
    "yaml",
    "brian2",
)


def test_help_imports_no_heavy_module():
    """``neuroemu --help`` answers without loading numpy, numba, pydantic, ...: measured by
    the modules Python reports importing (``-X importtime``), not by a wall-time bound that
    a busy machine would break."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "neuroemu.cli", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "simulate" in result.stdout and "check-spice" in result.stdout
    imported = {
        line.split("|")[-1].strip().split(".")[0]
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "neuroemu" in imported  # the report is there to be read
    assert sorted(imported & set(HEAVY_MODULES)) == []
    # Building every subcommand's parser imports none of them either.
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from neuroemu import cli; cli.build_parser(); "
            f"print(sorted(m for m in {HEAVY_MODULES!r} if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert probe.stdout.strip() == "[]", probe.stdout + probe.stderr


def test_simulate_dataset_mismatch(tmp_path):
    out = tmp_path / "run.h5"
    result = neuroemu(
        "simulate", str(CHIPS / "tiny.yaml"), "--json", "--limit", "3", "--out", str(out)
    )
    # tiny takes 6 inputs: the 784-pixel default data set does not fit it.
    assert_one_line_error(result, "784", "6 inputs")
    assert not out.exists()


def test_simulate_main_chip(tmp_path):
    out = tmp_path / "run.h5"
    result = neuroemu(
        "simulate",
        "chips/crossbar_784x500.yaml",
        "--limit",
        "300",
        "--json",
        "--out",
        str(out),
        "--quiet",
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["samples"] == 300
    assert figures["dataset"] == "mnist5k"
    assert 0.0 <= figures["accuracy"] <= 1.0
    assert figures["error"] == pytest.approx(1.0 - figures["accuracy"])
    assert figures["converged"] is True
    assert figures["max_relative_residual"] < 1e-9
    assert 1 <= figures["mean_sweeps"] <= figures["max_sweeps"]
    assert figures["mean_power_W"] > 0
    assert figures["energy_per_inference_J"] == pytest.approx(
        figures["mean_power_W"] * figures["settle_time_s"]
    )
    with h5py.File(out) as f:
        assert f["meta"].attrs["format"] == "neuroemu-run"
        assert f["meta"].attrs["seed"] == 0
        assert "crossbar_784x500" in f["meta"].attrs["chip_yaml"]
        assert f["metrics/accuracy"][-1] == pytest.approx(figures["accuracy"])
        assert f["metrics/epoch"][()].tolist() == [0, 1, 2, 3]  # the spec's 3 epochs
        assert f["metrics/mean_power_W"].attrs["unit"] == "W"
        prediction = f["inference/prediction"][()]
        label = f["inference/label"][()]
    assert prediction.shape == (300,)
    assert np.mean(prediction == label) == pytest.approx(figures["accuracy"])
    # An existing run file is never overwritten without --force.
    again = neuroemu("simulate", "chips/crossbar_784x500.yaml", "--limit", "5", "--out", str(out))
    assert_one_line_error(again, str(out), "--force")


def test_progress_bars_only_on_a_terminal():
    """Into a pipe or a file (a CI log) stderr gets the per-epoch lines only, in order; on
    a terminal the live bars are drawn as well."""
    args = ("simulate", "xs_784x100", "--limit", "40", "--epochs", "2", "--batch-size", "20")
    logged = neuroemu(*args)
    assert logged.returncode == 0, logged.stderr
    assert [line.split(":")[0] for line in logged.stderr.splitlines()] == [
        "epoch 0/2",
        "epoch 1/2",
        "epoch 2/2",
    ], logged.stderr
    import pty
    import threading

    parent, child = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "neuroemu.cli", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=child,
        env={**os.environ, "COLUMNS": "120"},
    )
    os.close(child)
    chunks: list[bytes] = []

    def read() -> None:
        while True:
            try:
                chunk = os.read(parent, 4096)
            except OSError:  # the terminal closed with the process
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    proc.communicate(timeout=600)
    reader.join(timeout=60)
    os.close(parent)
    drawn = b"".join(chunks).decode(errors="replace")
    drawn = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", drawn)  # colours and cursor moves
    assert proc.returncode == 0, drawn
    assert "epoch 2/2: train error" in drawn
    assert "━" in drawn and "40/40" in drawn  # a bar and its count


def test_simulate_text_report():
    result = neuroemu("simulate", "xs_784x100", "--limit", "20", "--quiet", "--seed", "3")
    assert result.returncode == 0, result.stderr
    for key in ("accuracy", "sweeps", "residual", "power", "energy", "seed 3"):
        assert key in result.stdout


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (("simulate", "chips/nope.yaml"), ("chips/nope.yaml", "no such file")),
        (
            ("simulate", "chips/crossbar_784x500.yaml", "--dataset", "/nonexistent/x"),
            ("/nonexistent/x",),
        ),
        (("chips", "show", "nope"), ("nope",)),
        (("devices", "show", "nope"), ("nope",)),
        (
            ("simulate", "xs_784x100", "--dataset", ""),
            ("argument --dataset: '' is empty: give mnist5k, fashion-mnist or a folder",),
        ),
        (
            ("simulate", "xs_784x100", "--infer-at", ","),
            ("argument --infer-at: no times in ','",),
        ),
    ],
)
def test_bad_input_one_line(args, needles):
    assert_one_line_error(neuroemu(*args), *needles)


def test_bad_spec_file(tmp_path):
    bad = tmp_path / "chips" / "bad.yaml"
    bad.parent.mkdir()
    text = (CHIPS / "tiny.yaml").read_text().replace("gain: 2 V", "gain: -2 V")
    bad.write_text(text)
    result = neuroemu("simulate", str(bad))
    assert_one_line_error(result, "bad.yaml", "inputs.gain", "must be > 0 V")
    malformed = tmp_path / "malformed.yaml"
    malformed.write_text("name: x\nlayers: [\n")
    assert_one_line_error(neuroemu("simulate", str(malformed)), "malformed YAML", "line")


def test_validate_and_library():
    files = sorted(str(p) for p in (ROOT / "chips").glob("*.yaml"))
    files += sorted(str(p) for p in (ROOT / "devices").glob("*.yaml"))
    result = neuroemu("validate", *files)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("ok ") == len(files)
    listed = neuroemu("chips", "list")
    assert listed.returncode == 0
    assert "crossbar_784x500" in listed.stdout and "tiny" in listed.stdout
    shown = neuroemu("devices", "show", "shockley_1n4148")
    assert shown.returncode == 0 and "2.52 nA" in shown.stdout
    chip = neuroemu("chips", "show", "tiny")
    assert chip.returncode == 0 and "input->hidden1: 12 x 6" in chip.stdout


def test_validate_reports_each_bad_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: resistor\nname: r\ng_min: 2 uS\ng_max: 1 uS\n")
    good = ROOT / "devices" / "ideal_resistor.yaml"
    result = neuroemu("validate", str(good), str(bad))
    assert result.returncode == 2
    assert "g_max: must be greater than g_min (1 uS <= 2 uS)" in result.stderr
    assert "ok" in result.stdout


def test_validate_checks_sweep_specs_and_their_points(tmp_path):
    """A sweep file is validated as one, with every point's chip: the shipped sweeps pass;
    a point whose value the chip refuses is named."""
    files = sorted(str(p) for p in (ROOT / "examples" / "sweeps").glob("*.yaml"))
    result = neuroemu("validate", *files)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("ok ") == len(files) > 0
    text = (ROOT / "examples" / "sweeps" / "wire_resistance.yaml").read_text()
    chip = str(ROOT / "chips" / "xs_784x100_wires.yaml")
    bad = tmp_path / "bad_sweep.yaml"
    bad.write_text(
        text.replace("../../chips/xs_784x100_wires.yaml", chip)
        .replace("layers[0].wire_resistance", "layers[0].driver_resistance")
        .replace('"0 Ohm", ', '"-5 Ohm", ')
    )
    result = neuroemu("validate", str(bad))
    assert result.returncode == 2
    assert "layers[0].driver_resistance='-5 Ohm'" in result.stderr
    assert "driver_resistance: must be finite and >= 0 Ohm (got -5.0 Ohm)" in result.stderr


def test_check_spice_without_ngspice(tmp_path):
    # An empty PATH hides ngspice: the command must say so in one line.
    result = neuroemu(
        "check-spice", "kendall_784x100_shockley", "--samples", "1", env={"PATH": str(tmp_path)}
    )
    assert_one_line_error(result, "ngspice not found")


def test_export_spice(tmp_path):
    out = tmp_path / "net.cir"
    result = neuroemu(
        "export-spice", "kendall_784x100_shockley", "--sample", "2", "--out", str(out)
    )
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert text.count("\nR1_") > 150_000 and ".model DL1 D(IS=2.52e-09 N=1.752)" in text
    # The +x half of the sources is test sample 2 times the gain.
    x = load_dataset().x_test[2]
    i = int(np.argmax(x))
    line = next(s for s in text.splitlines() if s.startswith(f"V0_{i} "))
    assert float(line.split()[-1]) == pytest.approx(20.0 * x[i], rel=1e-7)
    again = neuroemu("export-spice", "kendall_784x100_shockley", "--out", str(out))
    assert_one_line_error(again, "already exists")
    # Ideal diodes: the active set of the sample's operating point, which the chip settles.
    ideal = neuroemu("export-spice", "xs_784x100", "--out", str(tmp_path / "ideal.cir"))
    assert ideal.returncode == 0, ideal.stderr
    text = (tmp_path / "ideal.cir").read_text()
    clamps = text.count("\nVclamp_1_")
    assert f"as the active set of its operating point ({clamps} clamped nodes)" in ideal.stdout
    assert 0 < clamps < 100 and "ACTIVE SET OF ONE OPERATING" in text and "\nD" not in text


needs_ngspice = pytest.mark.skipif(
    not __import__("shutil").which("ngspice") and not os.environ.get("CI"),
    reason="ngspice is not installed (Debian package ngspice); CI installs it",
)


def tiny_shockley(tmp_path: Path) -> Path:
    """The 6-input tiny chip with Shockley diodes (ngspice has a model of them)."""
    text = (CHIPS / "tiny.yaml").read_text()
    assert text.count("diode: ideal_diode") == 2
    path = tmp_path / "tiny_shockley.yaml"
    path.write_text(
        text.replace("diode: ideal_diode", "diode: shockley_1n4148").replace(
            "name: tiny", "name: tiny_shockley"
        )
    )
    return path


@needs_ngspice
def test_check_spice_of_a_chip_the_data_set_does_not_fit(tmp_path):
    """Without --dataset, a chip the default data set does not fit is driven with random
    inputs in [0, 1] from a fixed seed, and the output says so; with --dataset it is an
    error."""
    chip = tiny_shockley(tmp_path)
    result = neuroemu("check-spice", str(chip), "--samples", "2", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["inputs"].startswith("random in [0, 1] (seed 0): mnist5k has 784 values")
    assert summary["samples"] == 2 and summary["max_abs_diff_V"] <= 1e-6
    text = neuroemu("check-spice", str(chip), "--samples", "1")
    assert text.returncode == 0, text.stderr
    assert text.stdout.startswith("inputs: random in [0, 1] (seed 0)")
    assert "largest difference" in text.stdout
    asked = neuroemu("check-spice", str(chip), "--dataset", "mnist5k")
    assert_one_line_error(asked, "--dataset mnist5k", "784 values", "takes 6 inputs")
    # export-spice drives the same inputs: sample 4 is the 5th row of the seed-0 draws.
    out = tmp_path / "net.cir"
    exported = neuroemu("export-spice", str(chip), "--sample", "4", "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    assert "inputs: random in [0, 1] (seed 0)" in exported.stdout
    sources = {
        line.split()[0]: float(line.split()[-1])
        for line in out.read_text().splitlines()
        if line.startswith("V0_")
    }
    x = np.random.default_rng(0).random((5, 6))[4]
    np.testing.assert_allclose([sources[f"V0_{i}"] for i in range(6)], 2.0 * x, rtol=1e-12)


@needs_ngspice
def test_check_spice_of_ideal_diodes(tmp_path):
    """The tiny chip's ideal diodes, checked as the active set of each operating point; a
    difference above --tolerance fails in one line naming the sample, layer and node."""
    result = neuroemu("check-spice", "tiny", "--samples", "2", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["max_abs_diff_V"] <= 1e-6 and summary["tolerance_V"] == 1e-6
    assert len(summary["clamped_nodes"]) == 2 and min(summary["clamped_nodes"]) > 0
    assert summary["worst_complementarity_margin_V"] >= 0
    text = neuroemu("check-spice", "tiny", "--samples", "1")
    assert text.returncode == 0, text.stderr
    assert "clamped  margin (V)" in text.stdout and "worst margin" in text.stdout
    strict = neuroemu("check-spice", "tiny", "--samples", "1", "--tolerance", "1e-300")
    assert_one_line_error(strict, "chip tiny: sample 0: layer ", "> tolerance 1e-300 V")


def test_check_spice_default_tolerance():
    from neuroemu.cli.spice import DEFAULT_TOLERANCE_V
    from neuroemu.io.spice import TOLERANCE_V

    assert DEFAULT_TOLERANCE_V == TOLERANCE_V


@needs_ngspice
def test_check_spice_timeout(tmp_path):
    """ngspice stopped at --timeout is one line naming the sample and the option."""
    result = neuroemu(
        "check-spice", "kendall_784x100_shockley", "--samples", "1", "--timeout", "0.001"
    )
    assert_one_line_error(
        result, "sample 0: ngspice did not finish within 0.001 s", "--timeout 0.001"
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "must be a finite number > 0, got 0"),
        ("-5", "must be a finite number > 0, got -5"),
        ("inf", "must be a finite number > 0, got inf"),
        ("soon", "expected a number, got 'soon'"),
    ],
)
def test_check_spice_refuses_a_bad_timeout(value, message):
    result = neuroemu("check-spice", "kendall_784x100_shockley", f"--timeout={value}")
    assert_one_line_error(result, "check-spice: argument --timeout", message)


@needs_ngspice
def test_check_spice_runs_ngspice():
    result = neuroemu("check-spice", "kendall_784x100_shockley", "--samples", "1", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["samples"] == 1
    assert summary["max_abs_diff_V"] <= 1e-6
    assert summary["mean_ngspice_s"] > summary["mean_engine_s"]


@pytest.mark.parametrize(
    ("momentum", "augment", "dropout"), [(0.0, False, 0.0), (0.9, True, 0.0), (0.9, False, 0.2)]
)
def test_training_run_and_resume_match(tmp_path, momentum, augment, dropout):
    """With momentum the velocities must carry over too; with augmentation and dropout,
    each epoch's flips, moves and grounded nodes must be drawn as in an uninterrupted run."""
    whole, part = tmp_path / "whole.h5", tmp_path / "part.h5"
    text = (CHIPS / "xs_784x100.yaml").read_text()
    assert "momentum: 0.9" in text
    new = f"momentum: {momentum}"
    if augment:
        new += "\n  augment: {flip: true, shift: 1}"
    if dropout:
        new += f"\n  dropout: {dropout}"
    chip = str(tmp_path / "xs_784x100.yaml")
    Path(chip).write_text(text.replace("momentum: 0.9", new))
    common = ("simulate", chip, "--limit", "400", "--quiet", "--json", "--batch-size", "64")
    # A narrow terminal must not wrap the per-epoch lines checked below.
    first = neuroemu(*common, "--epochs", "2", "--out", str(whole), env={"COLUMNS": "30"})
    assert first.returncode == 0, first.stderr
    figures = json.loads(first.stdout.strip().splitlines()[-1])
    assert [h["epoch"] for h in figures["history"]] == [0, 1, 2]
    # The per-epoch log goes to stderr even with --json, one line per epoch: a long run
    # shows its progress.
    logged = [line for line in first.stderr.splitlines() if line.startswith("epoch ")]
    assert [line.split(":")[0] for line in logged] == ["epoch 0/2", "epoch 1/2", "epoch 2/2"]
    assert f"test error {100 * figures['history'][2]['error']:.2f} %" in logged[-1]
    # Training lowers the test error from chance (with the chip's own momentum: in 26 steps
    # plain SGD at the same rates barely moves).
    assert figures["history"][0]["error"] > 0.8
    assert figures["history"][2]["error"] < (0.6 if momentum else 0.85)
    assert neuroemu(*common, "--epochs", "1", "--out", str(part)).returncode == 0
    resumed = neuroemu(*common, "--epochs", "2", "--resume", str(part))
    assert resumed.returncode == 0, resumed.stderr
    a, b = neuroemu_api.open_run(whole), neuroemu_api.open_run(part)
    assert a.meta["complete"] and b.meta["complete"]
    assert a.metrics["epoch"].values.tolist() == b.metrics["epoch"].values.tolist() == [0, 1, 2]
    for name in a.conductance.data_vars:
        np.testing.assert_array_equal(a.conductance[name].values, b.conductance[name].values)
    np.testing.assert_array_equal(a.metrics["error"].values, b.metrics["error"].values)
    assert a.conductance["input->hidden"].attrs["units"] == "S"
    ours, theirs = a.chip.state(), b.chip.state()  # the state each file holds
    assert (ours.velocities is not None) == (momentum > 0)
    if momentum > 0:
        assert np.abs(ours.velocities[0]).max() > 0
        for x, y in zip(ours.velocities, theirs.velocities, strict=True):
            np.testing.assert_array_equal(x, y)


def test_training_bad_input(tmp_path):
    no_training = neuroemu("simulate", "tiny", "--epochs", "1")
    assert_one_line_error(no_training, "has no training: section")
    other = tmp_path / "other.h5"
    assert (
        neuroemu("simulate", "crossbar_784x500", "--limit", "5", "--out", str(other)).returncode
        == 0
    )
    wrong_chip = neuroemu("simulate", "xs_784x100", "--resume", str(other), "--limit", "5")
    assert_one_line_error(
        wrong_chip,
        """cannot resume: the chip spec's name is "xs_784x100" here, but the run used""",
        '"crossbar_784x500"',
    )
    not_h5 = tmp_path / "x.h5"
    not_h5.write_text("hello")
    assert_one_line_error(
        neuroemu("simulate", "xs_784x100", "--resume", str(not_h5)), "not an HDF5 file"
    )
    bad = tmp_path / "chips" / "bad.yaml"
    bad.parent.mkdir()
    text = (CHIPS / "xs_784x100.yaml").read_text()
    negative = text.replace("learning_rate: [0.08, 0.32]", "learning_rate: [-0.08, 0.32]")
    assert negative != text  # the chip still says what this test changes
    bad.write_text(negative)
    assert_one_line_error(
        neuroemu("simulate", str(bad)), "training.learning_rate", "finite and > 0"
    )
    assert "beta: 300 uS" in text
    bad.write_text(text.replace("beta: 300 uS", "beta: 0 uS"))
    assert_one_line_error(neuroemu("simulate", str(bad)), "training.beta", "must be > 0 S")


@pytest.mark.parametrize(
    ("signum", "code", "said"),
    [("SIGINT", 130, "neuroemu: interrupted"), ("SIGTERM", 143, "neuroemu: terminated")],
)
def test_interrupted_training_leaves_a_valid_file(tmp_path, signum, code, said):
    """Ctrl-C, or SIGTERM from a batch scheduler or ``kill``: the run file is closed as
    interrupted, with every finished epoch."""
    import signal

    out = tmp_path / "run.h5"
    proc = start_training(out, until_epoch=2)
    try:
        proc.send_signal(getattr(signal, signum))
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == code
    assert said in err and "Traceback" not in err
    run = neuroemu_api.open_run(out)
    assert not run.meta["complete"]
    epochs = run.metrics["epoch"].values
    assert epochs[:3].tolist() == [0, 1, 2]
    assert run.conductance["epoch"].values.tolist() == epochs.tolist()


def test_infer_at(tmp_path):
    out = tmp_path / "pcm.h5"
    result = neuroemu(
        "simulate",
        "xs_784x100_pcm",
        "--epochs",
        "1",
        "--limit",
        "200",
        "--infer-at",
        "1s,1d,1y",
        "--out",
        str(out),
        "--json",
        "--quiet",
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    times = [entry["time_s"] for entry in summary["infer_at"]]
    assert times == [1.0, 86400.0, 365.25 * 86400.0]
    run = open_run(out)
    np.testing.assert_array_equal(run.aging["time"].values, times)
    np.testing.assert_allclose(run.aging["error"].values, [e["error"] for e in summary["infer_at"]])
    assert run.aging["mean_power_W"].attrs["units"] == "W"
    plot = neuroemu("plot", str(out), "--kind", "drift", "-o", str(tmp_path / "d.png"))
    assert plot.returncode == 0, plot.stderr
    bad = neuroemu("simulate", "xs_784x100_pcm", "--infer-at", "5parsecs")
    assert_one_line_error(bad, "--infer-at", "cannot read '5parsecs' as a duration")


def test_infer_at_names_what_applies_to_the_chip(tmp_path):
    """The report of --infer-at names the non-idealities the chip's cards have; a chip of
    ideal devices is evaluated as trained, and says so."""
    ideal = neuroemu(
        "simulate", "xs_784x100", "--epochs", "0", "--limit", "20", "--infer-at", "1h", "--quiet"
    )
    assert ideal.returncode == 0, ideal.stderr
    error = next(line for line in ideal.stdout.splitlines() if line.startswith("accuracy"))
    error = error.split("(error ")[1].rstrip(")")
    assert f"after     1 h: test error {error} (no non-idealities: the chip as trained)" in (
        ideal.stdout
    )
    text = (ROOT / "devices" / "pcm.yaml").read_text()
    assert "read_noise:\n  relative: 0.01\n" in text
    cards = tmp_path / "devices"
    cards.mkdir()
    (cards / "pcm.yaml").write_text(text.replace("read_noise:\n  relative: 0.01\n", ""))
    chips = tmp_path / "chips"
    chips.mkdir()
    chip = chips / "pcm_quiet_reads.yaml"
    chip.write_text((CHIPS / "xs_784x100_pcm.yaml").read_text())  # its cards: ../devices
    for path, said in (
        ("xs_784x100_pcm", "(programming noise, drift, read noise)"),
        (str(chip), "(programming noise, drift)"),
    ):
        result = neuroemu(
            "simulate", path, "--epochs", "0", "--limit", "20", "--infer-at", "1s,1y", "--quiet"
        )
        assert result.returncode == 0, result.stderr
        after = [line for line in result.stdout.splitlines() if line.startswith("after")]
        assert len(after) == 2 and all(line.endswith(said) for line in after), after


def test_leaky_report_says_whether_the_free_phase_ended_steady(tmp_path):
    """The steady line names the criterion (the last step's largest change of v over v_r,
    below 1e-3 for every sample) and says yes or no; a no points to free_steps."""
    from neuroemu.cli.simulate import report_lines
    from neuroemu.run.simulate import simulate

    run = simulate("leaky_784x500", epochs=0, limit=20)
    steady = dict(report_lines(run))["steady"]
    assert not run.figures["converged"]  # the chip as programmed settles slowly
    assert steady.startswith("no: the last of 80 steps moved v by up to ")
    assert "of v_r (steady: below 1e-03), |dv/dt| up to " in steady
    assert steady.endswith(
        "the free phase ended before the slowest samples settled "
        "(dynamics.free_steps; docs/leaky.md)"
    )
    run.figures.update(converged=True, max_relative_residual=2e-4)  # as a steady run's
    steady = dict(report_lines(run))["steady"]
    assert steady.startswith("yes: the last of 80 steps moved v by up to 2.0e-04 of v_r")
    assert "settled" not in steady
