"""Sweeps: spec checks before any point runs, a 2-worker Dask run, resumption."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
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
        (
            "layers[0].device.n_level",
            "[4]",
            "no key 'n_level' in layers[0].device (did you mean n_levels?)",
        ),
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
    # stderr is not a terminal here: a line per recorded point instead of a live bar.
    logged = [line for line in first.stderr.splitlines() if line.startswith("sweep s: ")]
    assert len(logged) == 4 and logged[-1] == "sweep s: 2 of 4 points done, 2 failed"
    assert "\u2501" not in first.stderr
    ds = open_sweep(out)
    assert ds["error"].dims == ("inputs.size", "seed")
    assert ds["seed"].values.tolist() == [0, 1]
    assert np.all(np.isfinite(ds["error"].sel({"inputs.size": 784}).values))
    assert np.all(np.isnan(ds["error"].sel({"inputs.size": 100}).values))
    assert ds["status"].values.tolist() == [[1, 1], [2, 2]]
    assert "samples have 784 values but chip xs_784x100 takes 100 inputs" in str(
        ds["message"].values[1, 0]
    )
    # The error of a point equals a direct evaluation of the same chip.
    import neuroemu
    from neuroemu.run.evaluate import evaluate

    chip = neuroemu.Chip.from_yaml(ROOT / "chips" / "xs_784x100.yaml", seed=1)
    data = neuroemu.load_dataset().subset(40, 40)
    assert ds["error"].values[0, 1] == pytest.approx(evaluate(chip, data.x_test, data.y_test).error)
    again = cli("sweep", str(spec), "--workers", "2", "--out", str(out))
    assert "2 already done" in again.stdout  # finished points are skipped, failed ones retried
    figure = tmp_path / "s.png"
    assert cli("plot", str(out), "-o", str(figure)).returncode == 0
    assert figure.stat().st_size > 10_000


def test_an_output_the_sweep_cannot_write_is_refused_first(tmp_path):
    """A missing folder, a folder, a file that is not a sweep file and another sweep's
    file are each one line, before any cluster starts, and leave the file as it was."""
    spec = write(tmp_path, BASE.format(path="inputs.gain", values='["2 V"]'))
    (tmp_path / "other").mkdir()
    other = write(tmp_path / "other", BASE.format(path="inputs.gain", values='["4 V"]'))
    theirs = tmp_path / "theirs.h5"
    from neuroemu.io.sweepfile import open_for_sweep

    with open_for_sweep(theirs, load_sweep(other)):
        pass
    text = tmp_path / "notes.h5"
    text.write_text("my notes")
    cases = [
        (tmp_path / "nope" / "s.h5", f"folder {tmp_path / 'nope'} does not exist"),
        (tmp_path, "a folder; name the sweep file"),
        (text, "exists and is not a sweep file (pass another --out)"),
        (theirs, "holds another sweep"),
    ]
    for out, said in cases:
        before = out.read_bytes() if out.is_file() else None
        result = cli("sweep", str(spec), "--out", str(out))
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith(f"neuroemu: error: {out}: {said}"), result.stderr
        assert len(result.stderr.splitlines()) == 1, result.stderr
        if before is not None:
            assert out.read_bytes() == before


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


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("notanaddress", "not a scheduler address (missing port number in address"),
        ("tcp://somehost", "not a scheduler address (missing port number in address"),
        ("foo://host:1", "not a scheduler address (unknown protocol 'foo'"),
        ("tcp://127.0.0.1:0", "not a scheduler address (port 0 is not in 1..65535)"),
    ],
)
def test_scheduler_that_is_not_an_address(tmp_path, address, reason):
    spec = write(tmp_path, BASE.format(path="inputs.gain", values='["2 V"]'))
    result = cli("sweep", str(spec), "--scheduler", address, "--out", str(tmp_path / "x.h5"))
    assert result.returncode == 2
    assert result.stderr.startswith(f"neuroemu: error: --scheduler {address}: {reason}")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "x.h5").exists()


def test_scheduler_that_speaks_garbage(tmp_path):
    """A server that answers, but not in Dask's protocol (here: an HTTP error and bytes that
    Dask reads as a frame length of exabytes), is one line, not a traceback."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    stop = threading.Event()

    def answer() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                try:
                    conn.recv(4096)
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n" + b"\xff" * 64)
                    conn.recv(4096)  # until the client gives up
                except OSError:
                    pass

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        spec = write(tmp_path, BASE.format(path="inputs.gain", values='["2 V"]'))
        address = f"tcp://127.0.0.1:{port}"
        result = cli("sweep", str(spec), "--scheduler", address, "--out", str(tmp_path / "x.h5"))
    finally:
        stop.set()
        thread.join()
        server.close()
    assert result.returncode == 2
    assert result.stderr.startswith(
        f"neuroemu: error: --scheduler {address}: something answers there, but not a Dask scheduler"
    ), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


#: Loaded by every Python process of a sweep started with ``PYTHONPATH`` holding its folder
#: (the command and its Dask workers): while ``NEUROEMU_TEST_GATE`` names a path, the first
#: point to start runs and every other waits until that path exists.
GATE = """\
import os

if os.environ.get("NEUROEMU_TEST_GATE"):
    import functools
    import time

    import neuroemu.sweep.run as sweep_run

    original = sweep_run.run_point

    @functools.wraps(original)
    def gated(*args, **kwargs):
        gate = os.environ["NEUROEMU_TEST_GATE"]
        try:
            os.close(os.open(gate + ".first", os.O_CREAT | os.O_EXCL))
        except FileExistsError:  # not the first point: wait for the gate to open
            while not os.path.exists(gate):
                time.sleep(0.05)
        return original(*args, **kwargs)

    sweep_run.run_point = gated
"""


def test_killed_sweep_keeps_finished_points_and_resumes(tmp_path):
    """SIGKILL a sweep once a point is recorded: the file holds that point (readable while
    the sweep runs, and after the kill), and the same command then runs only the rest.

    The sweep's other points are held back (``GATE``) until the kill, so exactly one point
    is done when it comes, however fast or slow the machine is; the test waits for the
    point to appear in the file, not for a time."""
    import h5py

    spec = write(
        tmp_path,
        """\
        name: killed
        chip: xs_784x100
        mode: train
        epochs: 1
        limit: 200
        axes:
          - path: training.learning_rate
            values: [0.05, 0.1, 0.2, 0.4]
        """,
    )
    out = tmp_path / "killed.h5"
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(GATE)
    paths = [str(hooks), str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(paths),
        "NEUROEMU_TEST_GATE": str(tmp_path / "gate"),  # never opened: the rest wait
    }
    command = [sys.executable, "-m", "neuroemu.cli", "sweep", str(spec), "--workers", "2"]
    command += ["--out", str(out)]
    # Its own session, so the kill reaches the Dask workers it starts as well.
    proc = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    status = np.zeros(4)
    try:
        while proc.poll() is None:  # until a point is recorded (or the sweep dies)
            if out.exists():
                with h5py.File(out, "r") as f:  # read-only, while the sweep writes
                    status = f["status"][...]
                if (status != 0).any():
                    break
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
    assert status.ravel().tolist().count(1) == 1, f"status {status.ravel()}: {err!r}"
    killed = open_sweep(out)  # a complete file: the recorded point, the rest pending
    finished = killed["status"].fillna(0).values == 1
    assert int(finished.sum()) == 1
    assert np.all(np.isfinite(killed["error"].values[finished]))
    assert np.all(np.isnan(killed["error"].values[~finished]))
    again = cli("sweep", str(spec), "--workers", "1", "--out", str(out))
    assert again.returncode == 0, again.stderr
    assert "4 points, 3 run, 1 already done, 0 failed" in again.stdout
    resumed = open_sweep(out)
    assert resumed["status"].values.tolist() == [[1], [1], [1], [1]]
    np.testing.assert_array_equal(
        resumed["error"].values[finished], killed["error"].values[finished]
    )
    assert not list(tmp_path.glob(".killed.h5.partial-*"))


def test_a_second_writer_is_refused(tmp_path):
    from neuroemu.errors import RunFileError
    from neuroemu.io.sweepfile import open_for_sweep

    sweep = load_sweep(write(tmp_path, BASE.format(path="inputs.gain", values='["2 V"]')))
    out = tmp_path / "s.h5"
    with open_for_sweep(out, sweep) as first:
        with pytest.raises(RunFileError, match="another sweep is writing this file"):
            open_for_sweep(out, sweep)
        first.record((0, 1), {"error": 0.25})
        assert open_sweep(out)["error"].values.tolist() == [
            [pytest.approx(np.nan, nan_ok=True), 0.25]
        ]
    with open_for_sweep(out, sweep) as second:  # the lock went with the first
        assert second.status.tolist() == [[0, 1]]


def test_sweep_file_units_are_the_metrics_tables(tmp_path):
    from neuroemu.io.sweepfile import open_for_sweep
    from neuroemu.metrics import metric

    body = BASE.format(path="inputs.gain", values='["2 V"]') + "    infer_at: [1s, 1h]\n"
    out = tmp_path / "s.h5"
    with open_for_sweep(out, load_sweep(write(tmp_path, body))):
        pass
    ds = open_sweep(out)
    figures = {
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
        "error_after_programming",
    }
    assert set(ds.data_vars) == figures | {"status", "message"}
    for name in figures:
        assert ds[name].attrs["units"] == metric(name).unit, name
    assert ds["mean_power_W"].attrs["units"] == "W"
    assert ds["time"].attrs["units"] == metric("time_s").unit == "s"
    assert ds["error_after_programming"].dims == ("inputs.gain", "seed", "time")


@pytest.mark.parametrize(
    ("result", "error", "message"),
    [
        (
            {"error": 0.25, "eror": 0.5},
            "NeuroemuError",
            "metric 'eror': unknown (known: epoch, samples, accuracy, error,",
        ),
        (
            {"error": 0.25, "samples": 40},
            "RunFileError",
            "a sweep point records no samples (it records: error, accuracy, mean_sweeps,",
        ),
    ],
)
def test_recording_a_figure_a_sweep_does_not_hold_is_refused(tmp_path, result, error, message):
    from neuroemu.errors import NeuroemuError
    from neuroemu.io.sweepfile import open_for_sweep

    sweep = load_sweep(write(tmp_path, BASE.format(path="inputs.gain", values='["2 V"]')))
    out = tmp_path / "s.h5"
    with open_for_sweep(out, sweep) as results:
        before = out.read_bytes()
        with pytest.raises(NeuroemuError) as info:
            results.record((0, 0), result)
        assert type(info.value).__name__ == error
        assert message in str(info.value) and "\n" not in str(info.value)
        assert out.read_bytes() == before  # nothing of the point written
        assert results.status.tolist() == [[0, 0]]
        assert not list(tmp_path.glob(".s.h5.partial-*"))


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


def synthetic_sweep(tmp_path: Path, body: str, figures) -> Path:
    """A sweep file with every point recorded from ``figures(values, seed)``, without
    running a chip: for testing what is drawn from it."""
    from neuroemu.io.sweepfile import open_for_sweep

    sweep = load_sweep(write(tmp_path, body))
    out = tmp_path / "synthetic.h5"
    with open_for_sweep(out, sweep) as results:
        for index in sweep.points():
            values = [v[i] for v, i in zip(sweep.values, index, strict=False)]
            results.record(index, figures(values, sweep.spec.seeds[index[-1]]))
    return out


def drawn(monkeypatch, path: Path, metric: str = "error"):
    """The axes ``neuroemu plot`` draws for a sweep file (the figure built, not saved)."""
    from neuroemu.analysis import sweep_figure

    return sweep_figure(str(path), metric).axes[0]


def test_sweep_figure_draws_numeric_axes_sorted_with_units(tmp_path, monkeypatch):
    """A random log-uniform axis is drawn at its values, sorted, on a log scale; a quantity
    axis ("100 uS") is stored as SI numbers with units and labelled in uS."""
    body = """\
        name: s
        chip: xs_784x100
        axes:
          - path: training.learning_rate
            random: {low: 0.01, high: 1.0, count: 5, log: true}
          - path: training.beta
            values: ["300 uS", "100 uS"]
        seeds: [0, 1]
        """
    beta = {"300 uS": 300e-6, "100 uS": 100e-6}
    path = synthetic_sweep(
        tmp_path,
        body,
        lambda values, seed: {"error": values[0] / 10 + beta[values[1]] * 100 + 0.01 * seed},
    )
    ds = open_sweep(path)
    assert ds["training.beta"].values.tolist() == pytest.approx([300e-6, 100e-6])
    assert ds["training.beta"].attrs["units"] == "S"
    ax = drawn(monkeypatch, path)
    assert ax.get_xscale() == "log"
    assert ax.get_xlabel() == "learning_rate (training)"
    assert ax.get_ylabel() == "test error (%)"
    rates = np.sort(ds["training.learning_rate"].values)
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert legend == ["100 uS", "300 uS"]  # sorted, in a readable unit
    assert ax.get_legend().get_title().get_text() == "beta (training)"
    lines = [container.lines[0] for container in ax.containers]  # error bars' data lines
    for line, beta in zip(lines, [100e-6, 300e-6], strict=True):
        np.testing.assert_allclose(line.get_xdata(), rates)
        # Seed mean of error = rate / 10 + beta * 100 + 0.01 seed, in %.
        np.testing.assert_allclose(line.get_ydata(), 100 * (rates / 10 + beta * 100 + 0.005))


def test_sweep_figure_of_a_grid_from_zero_over_decades_is_symmetric_log(tmp_path, monkeypatch):
    """0 Ohm, then values over two decades: a symmetric log scale (linear up to the smallest
    positive value), a tick at each value, the seeds' spread as error bars and a band."""
    body = """\
        name: s
        chip: xs_784x100
        axes:
          - path: layers[0].wire_resistance
            values: ["0 Ohm", "0.03 Ohm", "0.3 Ohm", "3 Ohm"]
        seeds: [0, 1, 2]
        """
    ohms = {"0 Ohm": 0.0, "0.03 Ohm": 0.03, "0.3 Ohm": 0.3, "3 Ohm": 3.0}
    path = synthetic_sweep(
        tmp_path, body, lambda values, seed: {"error": 0.1 + 0.2 * ohms[values[0]] + 0.01 * seed}
    )
    ax = drawn(monkeypatch, path)
    assert ax.get_xscale() == "symlog"
    assert ax.xaxis.get_transform().linthresh == pytest.approx(0.03)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "0.03", "0.3", "3"]
    assert ax.get_xlim()[0] < 0 < 3 < ax.get_xlim()[1]
    (bars,) = ax.containers
    np.testing.assert_allclose(bars.lines[0].get_xdata(), [0, 0.03, 0.3, 3])
    np.testing.assert_allclose(
        bars.lines[0].get_ydata(), 100 * (0.11 + 0.2 * np.array([0, 0.03, 0.3, 3]))
    )
    (caps,) = bars.lines[2]  # one bar per point, +/- one standard deviation of the 3 seeds
    half = [np.ptp(segment[:, 1]) / 2 for segment in caps.get_segments()]
    np.testing.assert_allclose(half, 100 * np.std([0.0, 0.01, 0.02], ddof=1))
    assert len(ax.collections) == 2  # the bars' lines and the band
    assert "bars: +/- 1 sample std over seeds" in ax.get_title()


def test_sweep_figure_puts_time_after_programming_on_the_x_axis(tmp_path, monkeypatch):
    body = BASE.format(path="inputs.gain", values='["2 V", "4 V"]') + "    infer_at: [1s, 1h, 1y]\n"
    times = np.array([1.0, 3600.0, 365.25 * 86400])
    path = synthetic_sweep(
        tmp_path,
        body,
        lambda values, seed: {
            "error": 0.1,
            "error_after_programming": (0.1 + 0.01 * np.log10(times)).tolist(),
        },
    )
    ax = drawn(monkeypatch, path, "error_after_programming")
    assert ax.get_xscale() == "log"
    assert ax.get_xlabel() == "time after programming"
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert {"1 s", "1 h", "1 y"} <= set(labels)
    assert ax.get_legend().get_title().get_text() == "gain (inputs)"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["2 V", "4 V"]
    line = ax.containers[0].lines[0]  # the data line of the first value's error bars
    np.testing.assert_allclose(line.get_xdata(), times)
    np.testing.assert_allclose(line.get_ydata(), 100 * (0.1 + 0.01 * np.log10(times)))


def test_sweep_figure_labels_each_metric_from_the_metrics_table(tmp_path, monkeypatch):
    """The y axis names the metric's label and unit from the table, in a prefix that suits
    the values, and draws the values scaled by it."""
    body = BASE.format(path="inputs.gain", values='["2 V", "4 V", "8 V"]')
    figures = {
        "error": 0.25,
        "accuracy": 0.75,
        "train_error": 0.3,
        "mean_sweeps": 12.0,
        "max_residual_A": 3e-9,
        "mean_power_W": 0.0025,
        "energy_per_inference_J": 4e-12,
        "wall_time_s": 42.0,
    }
    path = synthetic_sweep(
        tmp_path,
        body,
        lambda values, seed: {k: v * (1 + 0.1 * seed) for k, v in figures.items()},
    )
    expected = {
        "error": ("test error (%)", 100.0),
        "accuracy": ("test accuracy (%)", 100.0),
        "train_error": ("train error (%)", 100.0),
        "mean_sweeps": ("sweeps per sample", 1.0),
        "max_residual_A": ("largest KCL residual (nA)", 1e9),
        "mean_power_W": ("static power (mW)", 1e3),
        "energy_per_inference_J": ("energy per inference (pJ)", 1e12),
        "wall_time_s": ("wall time (s)", 1.0),
    }
    assert set(expected) == set(figures)
    for name, (label, factor) in expected.items():
        ax = drawn(monkeypatch, path, name)
        assert ax.get_ylabel() == label
        assert ax.get_xlabel() == "gain (V, inputs)"
        line = ax.get_lines()[0]
        np.testing.assert_allclose(line.get_xdata(), [2.0, 4.0, 8.0])
        np.testing.assert_allclose(line.get_ydata(), factor * figures[name] * 1.05)


def test_sweep_figure_of_an_unknown_metric_is_a_one_line_error(tmp_path):
    from neuroemu.analysis import plot_sweep
    from neuroemu.errors import RunFileError

    body = BASE.format(path="inputs.gain", values='["2 V", "4 V"]')
    path = synthetic_sweep(tmp_path, body, lambda values, seed: {"error": 0.25})
    out = tmp_path / "fig.png"
    with pytest.raises(RunFileError) as info:
        plot_sweep(str(path), str(out), "eror")
    message = str(info.value)
    assert message.startswith(f"{path}: 'eror' is not a metric (this sweep has: error, accuracy,")
    assert "mean_power_W" in message and "\n" not in message
    with pytest.raises(RunFileError, match="no samples in this sweep \\(it has: error, "):
        plot_sweep(str(path), str(out), "samples")  # a metric, but not one a sweep records
    assert not out.exists()
    result = cli("plot", str(path), "--metric", "eror", "-o", str(out))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"neuroemu: error: {message}"]


def test_every_example_sweep_validates():
    examples = sorted((ROOT / "examples" / "sweeps").glob("*.yaml"))
    names = {path.stem for path in examples}
    assert {"rram_levels", "programming_noise", "stuck_devices", "pcm_aging"} <= names
    for path in examples:
        sweep = load_sweep(path)  # every axis path and every point's spec checked
        assert sweep.spec.name == path.stem
        assert len(sweep.points()) >= 4
    noise = load_sweep(ROOT / "examples" / "sweeps" / "programming_noise.yaml")
    sigma = [noise.point_spec((i, 0)).layers[0].device.programming_noise.sigma for i in range(6)]
    assert sigma == pytest.approx([0.0, 0.1e-6, 0.2e-6, 0.5e-6, 1e-6, 2e-6])
    assert noise.spec.infer_at  # programming noise acts when the trained chip is programmed
    wires = load_sweep(ROOT / "examples" / "sweeps" / "wire_resistance.yaml")
    for i, ohm in enumerate([0.0, 0.03, 0.1, 0.3, 1.0, 3.0]):  # both crossbars' wires
        point = wires.point_spec((i, 0))
        assert [layer.wire_resistance for layer in point.layers] == pytest.approx([ohm, ohm])


def test_a_point_that_cannot_be_recorded_leaves_the_file_as_it_was(tmp_path, monkeypatch):
    from neuroemu.errors import RunFileError
    from neuroemu.io import sweepfile

    sweep = load_sweep(write(tmp_path, BASE.format(path="inputs.gain", values='["2 V"]')))
    out = tmp_path / "s.h5"
    (tmp_path / ".s.h5.partial-1").write_bytes(b"left by a killed sweep")
    with sweepfile.open_for_sweep(out, sweep) as results:
        assert not list(tmp_path.glob(".s.h5.partial-*"))
        results.record((0, 0), {"error": 0.5})
        before = out.read_bytes()

        def full(*args):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(sweepfile, "_write_point", full)
        with pytest.raises(RunFileError, match=r"s\.h5: cannot record a point"):
            results.record((0, 1), {"error": 0.25})
        assert out.read_bytes() == before
        assert results.status.tolist() == [[1, 0]]
    assert not list(tmp_path.glob(".s.h5.partial-*"))
    error = open_sweep(out)["error"].values
    assert error[0, 0] == 0.5 and np.isnan(error[0, 1])


def partial_sweep(tmp_path: Path, body: str, recorded: dict) -> Path:
    """A sweep file with only the points of ``recorded`` (index -> figures, or an error
    message for a failed point) recorded; the others pending."""
    from neuroemu.io.sweepfile import open_for_sweep

    sweep = load_sweep(write(tmp_path, body))
    out = tmp_path / "partial.h5"
    with open_for_sweep(out, sweep) as results:
        for index, figures in recorded.items():
            if isinstance(figures, str):
                results.record(index, None, figures)
            else:
                results.record(index, figures)
    return out


STUCK = """\
    name: stuck
    chip: xs_784x100
    limit: 40
    axes:
      - path: layers[0].device.stuck_at_min
        values: [0.0, 0.05, 0.2]
    seeds: [0, 1]
"""


def test_open_sweep_reads_pending_points_as_pending(tmp_path):
    path = partial_sweep(tmp_path, STUCK, {(0, 0): {"error": 0.5}})
    status = open_sweep(path)["status"]
    assert status.dtype.kind == "i"
    assert status.values.tolist() == [[1, 0], [0, 0], [0, 0]]


def test_pending_points_are_counted_not_nan(tmp_path):
    """A sweep with points pending and failed: ``traces`` counts them and says ``0 done``
    for a value no seed has finished; the figure marks them and counts the points."""
    from neuroemu.analysis import sweep_figure
    from neuroemu.analysis.sweeps import point_status

    recorded = {
        (0, 0): {"error": 0.5},
        (0, 1): {"error": 0.4},
        (1, 0): {"error": 0.3},
        (2, 0): "InputError: boom",
    }
    path = partial_sweep(tmp_path, STUCK, recorded)
    ds = open_sweep(path)
    assert point_status(ds).values.tolist() == [[1, 1], [1, 0], [2, 0]]
    result = cli("traces", str(path))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "points      6: 3 done, 2 pending, 1 failed" in lines
    assert "test error  stuck_at_min (layers[0].device) = 0: 45.00 % (2 of 2 seeds)" in lines
    assert "            stuck_at_min (layers[0].device) = 0.05: 30.00 % (1 of 2 seeds)" in lines
    assert "            stuck_at_min (layers[0].device) = 0.2: 0 done, 1 failed" in lines
    assert any(line.startswith("failed") and "InputError: boom" in line for line in lines)
    assert "nan" not in result.stdout.lower()
    ax = sweep_figure(str(path)).axes[0]
    assert ax.get_xlabel() == "stuck_at_min (fraction, layers[0].device)"
    assert "3 of 6 points done (1 failed)" in ax.get_title()
    marks = [text.get_text() for text in ax.texts]
    assert marks.count("0 done") == 1 and marks.count("1 of 2 seeds") == 1
    low, high = ax.get_xlim()
    assert low < 0.0 and high > 0.2  # the value with no point is still on the axis
    line = ax.get_lines()[0]  # the seed mean (then the lone point's spread as a bar)
    np.testing.assert_allclose(line.get_ydata(), [45.0, 30.0, np.nan])


def test_heat_map_marks_cells_with_no_seed_done(tmp_path):
    from neuroemu.analysis import sweep_figure

    body = """\
        name: grid
        chip: xs_784x100
        limit: 40
        axes:
          - path: layers[0].device.stuck_at_min
            values: [0.0, 0.1]
          - path: layers[0].device.stuck_at_max
            values: [0.0, 0.1]
          - path: inputs.gain
            values: ["1 V", "2 V"]
        seeds: [0, 1]
    """
    recorded = {(0, 0, 0, 0): {"error": 0.25}, (0, 0, 0, 1): {"error": 0.35}}
    recorded[(1, 0, 0, 0)] = {"error": 0.5}
    ax = sweep_figure(str(partial_sweep(tmp_path, body, recorded))).axes[0]
    marks = sorted(text.get_text() for text in ax.texts)
    assert marks == ["0 done", "0 done", "30", "50\n(1 of 2 seeds)"]  # %, seed means
    assert ax.get_xlabel() == "stuck_at_min (fraction, layers[0].device)"
    assert ax.get_ylabel() == "stuck_at_max (fraction, layers[0].device)"
    assert "gain (inputs) = 1 V" in ax.get_title()


def test_a_sweep_of_a_leaky_chip_runs(tmp_path):
    spec = write(
        tmp_path,
        """\
        name: leaky
        chip: leaky_784x500
        mode: infer
        limit: 20
        axes:
          - path: dynamics.free_steps
            values: [40]
        """,
    )
    result = cli("sweep", str(spec), "--workers", "1", "--out", str(tmp_path / "leaky.h5"))
    assert result.returncode == 0, result.stdout + result.stderr
    ds = open_sweep(tmp_path / "leaky.h5")
    assert ds["status"].values.tolist() == [[1]]  # done, not failed
    assert 0.0 <= float(ds["error"].values[0, 0]) <= 1.0  # a recorded figure, not NaN


def test_a_line_with_no_seed_done_says_so_in_its_legend(tmp_path):
    from neuroemu.analysis import sweep_figure

    body = BASE.format(path="inputs.gain", values='["2 V", "4 V", "8 V"]')
    body += "    infer_at: [1s, 1h, 1y]\n"
    recorded = {
        (0, 0): {"error": 0.5, "error_after_programming": [0.5, 0.52, 0.55]},
        (0, 1): {"error": 0.4, "error_after_programming": [0.45, 0.5, 0.52]},
        (1, 0): {"error": 0.3, "error_after_programming": [0.4, 0.45, 0.6]},
    }
    path = partial_sweep(tmp_path, body, recorded)
    ax = sweep_figure(str(path), "error_after_programming").axes[0]
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert legend == ["2 V", "4 V (1 of 2 seeds)", "8 V (0 done)"]
    assert len(ax.texts) == 0  # said in the legend, not at every time
    assert "3 of 6 points done" in ax.get_title()


def test_an_axis_sets_every_path_it_names(tmp_path):
    """``also``: the same value at further keys (both layers' cards), one dimension; a bad
    further path is named by its place in ``also``."""
    body = BASE.format(path="layers[0].device.n_levels", values="[4, 16]").replace(
        "        values:", '        also: ["layers[1].device.n_levels"]\n        values:'
    )
    sweep = load_sweep(write(tmp_path, body))
    assert sweep.shape == (2, 2)
    spec = sweep.point_spec((1, 0))
    assert spec.layers[0].device.n_levels == spec.layers[1].device.n_levels == 16
    bad = body.replace("layers[1].device.n_levels", "layers[2].device.n_levels")
    with pytest.raises(SpecError, match=r"axes\[0\]\.also\[0\]: layers\[2\]: no such item"):
        load_sweep(write(tmp_path, bad))
    twice = body.replace("layers[1].device.n_levels", "layers[0].device.n_levels")
    with pytest.raises(SpecError, match=r"also: names layers\[0\]\.device\.n_levels twice"):
        load_sweep(write(tmp_path, twice))


def test_every_device_requirements_sweep_validates():
    """The device-requirements sweeps (benchmarks/device_requirements.py): each moves one
    property of both layers' devices, and the pulsed base chip is symmetric and noiseless;
    the soft-bound pulse moves up and down alike."""
    folder = ROOT / "benchmarks" / "device_requirements"
    specs = sorted(folder.glob("*.yaml"))
    names = [path.stem for path in specs]
    assert names == sorted(["ideal", "levels", "asymmetry", "up_down_spread", "cycle_noise",
                            "read_noise", "step_spread", "soft_bounds",
                            "soft_bounds_tiki_taka", "asymmetry_pairs", "cycle_noise_pairs",
                            "step_spread_pairs", "read_noise_pairs", "levels_pairs"])  # fmt: skip
    for path in specs:
        sweep = load_sweep(path)
        assert sweep.spec.name == f"requirements_{path.stem}"
        assert sweep.spec.seeds == [0, 1, 2] and sweep.spec.limit == 10_000
        if path.stem == "ideal":
            continue
        first = sweep.spec.axes[0]
        layer1 = first.path.replace("layers[0]", "layers[1]")
        if path.stem.startswith("soft_bounds"):
            down = first.path.replace(".up", ".down")
            assert first.also == [down, layer1, down.replace("layers[0]", "layers[1]")]
        else:
            assert first.also == [layer1]
        last = tuple(n - 1 for n in sweep.shape)
        spec = sweep.point_spec(last)  # the last value of every axis
        hidden, output = (layer.device.model_dump(exclude={"name"}) for layer in spec.layers)
        assert hidden == output
        schemes = [a.values for a in sweep.spec.axes if a.path == "training.scheme"]
        if path.stem == "soft_bounds_tiki_taka":
            assert schemes == [] and spec.training.scheme == "tiki-taka"
            continue
        if path.stem.endswith("_pairs"):
            # the same property on the same devices, every one paired (20 output nodes)
            plain = load_sweep(folder / f"{path.stem.removesuffix('_pairs')}.yaml")
            assert first.path == plain.spec.axes[0].path
            assert spec.layers[-1].readout == "differential" and spec.layers[-1].size == 20
            if path.stem in ("read_noise_pairs", "levels_pairs"):  # both ways of rounding
                assert schemes == [["pairs", "pairs-carry"]]
                assert spec.training.scheme == "pairs-carry"
            else:
                assert schemes == [] and spec.training.scheme == "pairs"
            continue
        expected = ["direct", "nearest-carry"]
        if path.stem != "soft_bounds":
            expected.insert(1, "mixed-precision")
        assert schemes == [expected]
        assert spec.training.scheme == "nearest-carry"
        if path.stem == "soft_bounds":
            assert hidden["pulses"]["up"] == hidden["pulses"]["down"] == 0.02
    base = load_sweep(folder / "asymmetry.yaml").point_spec((0, 0, 0)).layers[0].device
    assert base.pulses.up == base.pulses.down == 0.001 and base.pulses.cycle_noise == 0.0


def test_a_training_point_records_its_update_figures_and_an_older_file_keeps_its_own(tmp_path):
    """A point of a chip with levels records its last epoch's update figures (pulses per
    device among them); a file made before they were recorded has no such variables, and
    its points are recorded with the figures it has."""
    import h5py

    from neuroemu.io.sweepfile import open_for_sweep
    from neuroemu.sweep.run import run_point

    body = BASE.format(path="layers[0].device.n_levels", values="[256]")
    body = body.replace("chip: xs_784x100", "chip: xs_784x100\n    mode: train\n    epochs: 1")
    body = body.replace("    seeds:", "      - path: layers[0].device.rounding\n"
                        "        values: [stochastic]\n    seeds:")  # fmt: skip
    sweep = load_sweep(write(tmp_path, body))
    index = (0, 0, 0)
    s = sweep.spec
    spec = sweep.point_spec(index).model_dump(mode="json")
    result = run_point(spec, s.seeds[0], s.mode, s.epochs, s.dataset, s.limit, s.times)
    assert 0.0 < result["update_unmoved_fraction"] < 1.0
    assert result["update_pulses_per_device"] > 0.0
    out = tmp_path / "s.h5"
    with open_for_sweep(out, sweep) as f:
        f.record(index, result)
    ds = open_sweep(out)
    assert ds["update_pulses_per_device"].values[index] == result["update_pulses_per_device"]
    older = tmp_path / "older.h5"
    with open_for_sweep(older, sweep):
        pass
    with h5py.File(older, "a") as f:  # as a version without the update figures made it
        for name in ("update_unmoved_fraction", "update_clipped_fraction",
                     "update_pulses_per_device"):  # fmt: skip
            del f[name]
    with open_for_sweep(older, sweep) as f:
        f.record(index, result)
    ds = open_sweep(older)
    assert "update_pulses_per_device" not in ds and ds["error"].values[index] == result["error"]
