"""The fault campaign: runs killed at moments the program chooses, concurrent writers, a full
disk, damaged files, killed sweeps. Nothing finished may be lost, and a resumed run must
end bit for bit where an uninterrupted one ends.

Kills land at failpoints (neuroemu/failpoints.py): the process sends itself SIGKILL the
n-th time it reaches a named moment, so where it dies is chosen by what it is doing, not by
the clock.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

import neuroemu
from neuroemu.errors import RunFileError
from neuroemu.files import Lock, LockHeld
from neuroemu.io.hdf5 import parts_folder

from .conftest import start_training

ROOT = Path(__file__).resolve().parents[1]
#: A small training run: 64 samples (2 mini-batches of 32), 3 epochs, test passes of 16.
RUN = ("simulate", "xs_784x100", "--limit", "64", "--epochs", "3", "--batch-size", "16")
RUN += ("--quiet", "--json")
TIMINGS = {"wall_time_s", "samples_per_s", "train_wall_time_s"}


def neuroemu_cli(*args: str, failpoint: str | None = None, limit_file_size: int | None = None):
    env = dict(os.environ)
    env.pop("NEUROEMU_FAILPOINT", None)
    if failpoint is not None:
        env["NEUROEMU_FAILPOINT"] = failpoint

    def limit() -> None:  # in the child: a file system that takes no file over this size
        if limit_file_size is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_file_size, limit_file_size))

    return subprocess.run(
        [sys.executable, "-m", "neuroemu.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=limit,
    )


def untimed(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in TIMINGS} for row in history]


def assert_same_run(path: Path, reference: neuroemu.Run) -> None:
    """The run file at ``path`` is the reference run: every figure but wall times, every
    snapshot and the final state (velocities included), bit for bit."""
    run = neuroemu.open_run(path)
    assert run.meta["complete"]
    assert untimed(run.history) == untimed(reference.history)
    for name in reference.conductance.data_vars:
        np.testing.assert_array_equal(
            run.conductance[name].values, reference.conductance[name].values
        )
    ours, theirs = run.chip.state(), reference.chip.state()
    for a, b in zip(ours.arrays, theirs.arrays, strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(ours.velocities or [], theirs.velocities or [], strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "run.h5"
    done = neuroemu_cli(*RUN, "--out", str(out))
    assert done.returncode == 0, done.stderr
    return neuroemu.open_run(out)


def kill_moments() -> list[str]:
    """Twelve moments, drawn from a seeded generator over every kind of failpoint a run
    passes: during training (after the n-th mini-batch of the run), between training and
    the test pass, during a test pass, and inside a commit (while the epoch's part or the
    run file is written, and just after either is in place)."""
    rng = np.random.default_rng(18)
    counts = {  # how often a 3-epoch run of RUN reaches each point
        "train.batch": 6,
        "epoch.trained": 3,
        "evaluate.batch": 16,
        "commit.part.writing": 8,
        "commit.part": 8,
        "commit.main.writing": 5,
        "commit.main": 5,
    }
    moments = [f"{point}:{int(rng.integers(1, n + 1))}" for point, n in counts.items()]
    points = list(counts)
    while len(moments) < 12:
        point = points[int(rng.integers(len(points)))]
        moment = f"{point}:{int(rng.integers(1, counts[point] + 1))}"
        if moment not in moments:
            moments.append(moment)
    return moments


@pytest.mark.parametrize("moment", kill_moments())
def test_a_run_killed_at_any_moment_loses_nothing_and_resumes_exactly(
    tmp_path, uninterrupted, moment
):
    out = tmp_path / "run.h5"
    killed = neuroemu_cli(*RUN, "--out", str(out), failpoint=moment)
    assert killed.returncode == -signal.SIGKILL, killed.stderr  # it died where it was told
    if out.exists():  # killed after the first commit: a valid file of every finished epoch
        run = neuroemu.open_run(out)
        done = run.epochs_done
        assert untimed(run.history) == untimed(uninterrupted.history[: done + 1])
        assert run.conductance["epoch"].values.tolist() == list(range(done + 1))
        assert run.meta["complete"] == (moment == "commit.main:5")  # after the last commit
        resumed = neuroemu_cli(*RUN, "--resume", str(out))
    else:  # killed before it: nothing but what the next writer cleans up
        resumed = neuroemu_cli(*RUN, "--out", str(out))
    assert resumed.returncode == 0, resumed.stderr
    assert_same_run(out, uninterrupted)
    named = {p.name for p in parts_folder(out).iterdir()}
    with h5py.File(out) as f:  # no file left behind that the run does not name
        assert named == {name.decode() for name in f["parts/file"][()]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.h5", "run.h5.parts"]


def test_a_second_writer_is_refused_and_the_first_one_finishes(tmp_path):
    out = tmp_path / "run.h5"
    first = start_training(out, until_epoch=1)
    try:
        for extra, said in (((), "already exists"), (("--force",), "another run writes it")):
            second = neuroemu_cli(
                "simulate", "xs_784x100", "--limit", "20", "--out", str(out), *extra
            )
            assert second.returncode == 2, second.stderr
            lines = second.stderr.strip().splitlines()
            assert len(lines) == 1 and said in lines[0], lines
        resumer = neuroemu_cli(
            "simulate", "xs_784x100", "--limit", "100", "--epochs", "600", "--resume", str(out)
        )
        assert resumer.returncode == 2 and "another run writes it" in resumer.stderr
        run = neuroemu.open_run(out)  # readable while it is written
        assert run.epochs_done >= 1
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=120)
    assert first.returncode == 143
    run = neuroemu.open_run(out)
    assert not run.meta["complete"] and run.epochs_done >= 1
    assert not (tmp_path / "run.h5.lock").exists()


def test_a_killed_overwrite_keeps_the_old_file(tmp_path, uninterrupted):
    out = tmp_path / "run.h5"
    assert neuroemu_cli(*RUN, "--out", str(out)).returncode == 0
    before = out.read_bytes()
    for moment in ("evaluate.batch:1", "commit.part:1", "commit.main.writing:1"):
        killed = neuroemu_cli(*RUN, "--out", str(out), "--force", failpoint=moment)
        assert killed.returncode == -signal.SIGKILL
        assert out.read_bytes() == before  # the old run, whole
        assert_same_run(out, uninterrupted)
    # The overwrite, done: the new run replaces the old, and the old run's parts go.
    assert neuroemu_cli(*RUN, "--epochs", "1", "--out", str(out), "--force").returncode == 0
    run = neuroemu.open_run(out)
    assert run.epochs_done == 1
    assert all(p.name.startswith(run.meta["run_id"]) for p in parts_folder(out).iterdir())


def test_a_full_disk_is_a_clean_error_and_keeps_the_finished_epochs(tmp_path):
    out = tmp_path / "run.h5"
    assert neuroemu_cli(*RUN, "--epochs", "1", "--out", str(out)).returncode == 0
    kept = neuroemu.open_run(out)
    # No file may grow past 1 MB: an epoch's part (2.5 MB of conductances) cannot be written.
    full = neuroemu_cli(*RUN, "--resume", str(out), limit_file_size=1 << 20)
    assert full.returncode == 2, full.stderr
    lines = full.stderr.strip().splitlines()
    assert "Traceback" not in full.stderr
    assert "cannot write epoch 2" in lines[-1] and "File too large" in lines[-1]
    again = neuroemu.open_run(out)
    assert untimed(again.history) == untimed(kept.history)
    assert not any(
        ".partial" in p.name for p in [*tmp_path.iterdir(), *parts_folder(out).iterdir()]
    )
    assert neuroemu_cli(*RUN, "--resume", str(out)).returncode == 0  # room again: it goes on


def test_a_new_run_on_a_full_disk_leaves_nothing(tmp_path):
    out = tmp_path / "run.h5"
    full = neuroemu_cli(*RUN, "--out", str(out), limit_file_size=1 << 20)
    assert full.returncode == 2 and "cannot write epoch 0" in full.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("finished") / "run.h5"
    assert neuroemu_cli(*RUN, "--out", str(out)).returncode == 0
    return out


def damaged_copy(source: Path, target: Path) -> Path:
    shutil.copy(source, target)
    shutil.copytree(parts_folder(source), parts_folder(target))
    return target


@pytest.mark.parametrize("cut", [0, 100, 512, 4096, -1])
def test_a_truncated_run_file_is_refused_clearly(tmp_path, finished, cut):
    out = damaged_copy(finished, tmp_path / "run.h5")
    data = out.read_bytes()
    out.write_bytes(data[: cut if cut >= 0 else len(data) + cut])
    with pytest.raises(RunFileError, match=r"run.h5: (damaged|not an HDF5 file)"):
        neuroemu.open_run(out)
    shown = neuroemu_cli("traces", str(out))
    assert shown.returncode == 2 and len(shown.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("seed", range(8))
def test_a_flipped_bit_anywhere_is_refused_clearly(tmp_path, finished, seed):
    """One bit flipped, in the run file or in one of its parts, at a seeded place: the
    file is refused when read, naming it, never read as if whole."""
    out = damaged_copy(finished, tmp_path / "run.h5")
    rng = np.random.default_rng(seed)
    files = [out, *sorted(parts_folder(out).iterdir())]
    victim = files[0] if seed % 2 == 0 else files[1 + int(rng.integers(len(files) - 1))]
    data = bytearray(victim.read_bytes())
    at = int(rng.integers(len(data)))
    data[at] ^= 1 << int(rng.integers(8))
    victim.write_bytes(bytes(data))
    with pytest.raises(RunFileError, match=rf"{victim.name}: damaged"):
        run = neuroemu.open_run(out)
        run.conductance  # noqa: B018 (reads every snapshot part)
        run.traces  # noqa: B018 (reads every traces part)
        run.chip  # noqa: B018 (reads the state)


def test_locks_take_over_from_dead_processes_of_this_host_only(tmp_path):
    import platform

    path = tmp_path / "run.h5"
    lock_file = tmp_path / "run.h5.lock"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    lock_file.write_text(f"{platform.node()} {int(dead.stdout)} 2026-01-01T00:00:00+00:00\n")
    with Lock(path) as lock:  # its owner has ended: a stale lock, taken over
        assert lock.held and str(os.getpid()) in lock_file.read_text()
    assert not lock_file.exists()
    lock_file.write_text("another-host 1 2026-01-01T00:00:00+00:00\n")
    with pytest.raises(LockHeld, match="another-host 1"):
        Lock(path).acquire()  # on another host it may be alive: never broken here
    refused = neuroemu_cli("simulate", "xs_784x100", "--limit", "20", "--out", str(path))
    assert refused.returncode == 2
    assert "lock run.h5.lock held by another-host 1" in refused.stderr
    assert "remove run.h5.lock" in refused.stderr


SWEEP = """\
name: faults
chip: {chip}
mode: train
epochs: 1
limit: 64
axes:
  - path: training.learning_rate
    values: [0.05, 0.2]
seeds: [0, 1]
"""


def sweep_figures(path: Path) -> dict:
    from neuroemu.io.sweepfile import open_sweep

    data = open_sweep(path)
    return {
        name: data[name].values
        for name in ("error", "accuracy", "train_error", "mean_power_W", "status")
    }


def test_a_killed_sweep_and_a_killed_worker_resume_to_the_same_result(tmp_path):
    spec = tmp_path / "sweep.yaml"
    spec.write_text(SWEEP.format(chip=ROOT / "chips" / "xs_784x100.yaml"))
    whole = tmp_path / "whole.h5"
    assert neuroemu_cli("sweep", str(spec), "--workers", "1", "--out", str(whole)).returncode == 0
    expected = sweep_figures(whole)
    assert (expected["status"] == 1).all()
    # The sweep itself killed just after it records its first point; then run again.
    killed = tmp_path / "killed.h5"
    died = neuroemu_cli(
        "sweep", str(spec), "--workers", "1", "--out", str(killed), failpoint="sweep.record:1"
    )
    assert died.returncode == -signal.SIGKILL
    assert (sweep_figures(killed)["status"] == 1).sum() == 1  # the first point, kept
    assert neuroemu_cli("sweep", str(spec), "--workers", "1", "--out", str(killed)).returncode == 0
    # A worker killed at its second point (each new worker again): Dask retries the point on
    # a fresh worker; what it cannot finish is recorded failed, and the next run redoes it.
    worker = tmp_path / "worker.h5"
    first = neuroemu_cli(
        "sweep", str(spec), "--workers", "1", "--out", str(worker), failpoint="sweep.point:2"
    )
    assert first.returncode in (0, 1), first.stderr
    assert neuroemu_cli("sweep", str(spec), "--workers", "1", "--out", str(worker)).returncode == 0
    for path in (killed, worker):
        got = sweep_figures(path)
        for name, values in expected.items():
            np.testing.assert_array_equal(got[name], values, err_msg=f"{path.name}: {name}")
    assert not list(tmp_path.glob("*.lock"))
