"""Results do not depend on the number of threads: the same run on one thread and on two
(Numba's threads, which settle a batch's chunks and update a crossbar's rows side by side,
and BLAS's) writes the same bits.

Each run is a subprocess, since a process fixes its thread counts when it starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from .conftest import ROOT, run_cli

#: Figures that time the run, which threads change by design.
TIMINGS = ("wall_time", "samples_per_s")


def datasets(path: Path) -> dict[str, np.ndarray]:
    """Every numeric dataset of a run file and its parts (conductances, velocities,
    traces: ``docs/run-file.md``) but the timings, by the part's name (without the run's
    own id) and the dataset's path."""
    out: dict[str, np.ndarray] = {}
    files = [("", path)]
    files += [(p.name.split("-", 1)[1] + ":", p) for p in sorted(path.parent.glob("*.parts/*"))]
    for tag, file in files:

        def visit(name: str, item: object, tag: str = tag) -> None:
            if isinstance(item, h5py.Dataset) and item.dtype.kind in "biuf":
                if not any(t in name for t in TIMINGS):
                    out[tag + name] = item[...]

        with h5py.File(file, "r") as f:
            f.visititems(visit)
    return out


@pytest.mark.parametrize(
    ("chip", "options"),
    [
        # chunks of a test batch settled on threads; rows of the updates on threads
        ("xs_784x100", ["--epochs", "1", "--limit", "256"]),
        # Shockley nodes (a Newton solve per node), inference of 300 test samples
        ("kendall_784x100_shockley", ["--epochs", "0", "--limit", "300"]),
        # one chunk of 100 test samples, whose input product BLAS could thread
        ("crossbar_784x500", ["--epochs", "0", "--limit", "100"]),
        # leaky neurons stepped through time, their products and kernels
        ("leaky_784x500", ["--epochs", "0", "--limit", "100"]),
        # pairs of PCM devices with accumulators, refreshed by program and verify,
        # counter-based draws; a test pass of one chunk
        ("crossbar_784x500_pcm", ["--epochs", "1", "--limit", "128"]),
    ],
)
def test_one_thread_and_two_give_the_same_bits(chip, options, tmp_path):
    files = []
    for threads in ("1", "2"):
        out = tmp_path / threads / "run.h5"
        out.parent.mkdir()
        env = {
            "NUMBA_NUM_THREADS": threads,
            "OPENBLAS_NUM_THREADS": threads,
            "OMP_NUM_THREADS": threads,
            "MKL_NUM_THREADS": threads,
        }
        result = run_cli("simulate", chip, *options, "--out", str(out), env=env)
        assert result.returncode == 0, result.stderr
        files.append(datasets(out))
    one, two = files
    assert one.keys() == two.keys()
    assert any(name.endswith("prediction") for name in one)
    for name in one:
        np.testing.assert_array_equal(one[name], two[name], err_msg=name)


#: Settles whose every node voltage is saved: one chunk of a resistive chip's inputs (its
#: input product is 100 x 784 x 500, which a threaded BLAS sums in another order), and a
#: leaky chip's free phase.
VOLTAGES = """
import sys
import numpy as np
import neuroemu
x = np.random.default_rng(0).uniform(size=(100, 784))
out = {}
for name in ("crossbar_784x500", "leaky_784x500"):
    eq = neuroemu.Chip.from_yaml(name).settle(x)
    for k, v in enumerate(eq.voltages):
        out[f"{name}/{k}"] = v
np.savez(sys.argv[1], **out)
"""


def test_node_voltages_do_not_depend_on_the_threads(tmp_path):
    """Every node voltage of a settle, not only the figures a run file keeps."""
    saved = []
    for threads in ("1", "2"):
        path = tmp_path / f"{threads}.npz"
        env = {
            **os.environ,
            "NUMBA_NUM_THREADS": threads,
            "OPENBLAS_NUM_THREADS": threads,
            "OMP_NUM_THREADS": threads,
            "MKL_NUM_THREADS": threads,
        }
        done = subprocess.run(
            [sys.executable, "-c", VOLTAGES, str(path)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        saved.append(dict(np.load(path)))
    one, two = saved
    assert len(one) == 4
    for name in one:
        np.testing.assert_array_equal(one[name], two[name], err_msg=name)


#: Inside the engine's block every BLAS library of the process runs on one thread: numpy's
#: and scipy's, which Numba's compiled products call; the outermost block restores them.
BLAS_THREADS = """
import json
import numpy as np
import neuroemu
from threadpoolctl import threadpool_info
from neuroemu.engine.threads import one_blas_thread

def threads():
    return sorted(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")

with one_blas_thread():  # the block's first use, before any product has run
    pass
chip = neuroemu.Chip.from_yaml("xs_784x100")
chip.settle(np.random.default_rng(0).uniform(size=(4, 784)))  # Numba's BLAS in use
seen = {"before": threads()}
with one_blas_thread():
    with one_blas_thread():
        seen["inner"] = threads()
    seen["outer"] = threads()
seen["after"] = threads()
print(json.dumps(seen))
"""


def test_every_blas_library_is_held_to_one_thread():
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "2"}
    done = subprocess.run(
        [sys.executable, "-c", BLAS_THREADS],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["before"] == [2, 2]  # numpy's and scipy's OpenBLAS
    assert seen["inner"] == seen["outer"] == [1, 1]
    assert seen["after"] == [2, 2]
