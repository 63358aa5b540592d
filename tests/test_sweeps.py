"""The compiled sweep loop (neuroemu.kernels.sweeps) against the sweep-by-sweep loop it
replaces: the same voltages, sweep counts, residuals and power, bit for bit, for every kind
of node, nudge, grounding, dtype, chunking and stopping."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import neuroemu
from neuroemu.kernels.sweeps import Sweeper, layout, node_layout

from .test_engine import chip_dict

engine = importlib.import_module("neuroemu.engine.settle")  # the module, not the function


def both(monkeypatch, chip, *args, **kwargs):
    """The settle with the compiled loop, then with the loop of single sweeps."""
    fused = chip.settle(*args, **kwargs)
    with monkeypatch.context() as m:
        m.setattr(engine, "Sweeper", lambda *a: None)
        looped = chip.settle(*args, **kwargs)
    return fused, looped


def one_openblas() -> bool:
    """Whether numpy's products and Numba's (scipy's OpenBLAS) come from one version of
    OpenBLAS: then the two loops give the same bits."""
    import scipy.linalg.cython_blas  # noqa: F401  (Numba's BLAS, loaded)
    from threadpoolctl import threadpool_info

    found = [i for i in threadpool_info() if i["user_api"] == "blas"]
    return len(found) == 2 and {(i["internal_api"], i["version"]) for i in found} == {
        ("openblas", found[0]["version"])
    }


SAME_BITS = one_openblas()


def assert_same(fused, looped):
    """Bit for bit where numpy and Numba use one OpenBLAS; to rounding otherwise."""
    if not SAME_BITS:
        for a, b in zip(fused.voltages, looped.voltages, strict=True):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-13)
        assert abs(fused.sweeps - looped.sweeps) <= 1
        return
    assert fused.sweeps == looped.sweeps
    np.testing.assert_array_equal(fused.sweeps_per_sample, looped.sweeps_per_sample)
    for a, b in zip(fused.voltages, looped.voltages, strict=True):
        np.testing.assert_array_equal(a, b)
    for key in ("residual", "relative_residual", "power"):
        np.testing.assert_array_equal(getattr(fused, key), getattr(looped, key))
    assert fused.converged == looped.converged


def test_numpy_and_numba_share_one_openblas_here():
    """The bit-for-bit checks below run where the two libraries are one version (as the
    pinned wheels give); elsewhere they compare to rounding."""
    assert SAME_BITS


@pytest.mark.parametrize(
    "diode, sizes",
    [
        ("ideal_diode", (6, 5)),
        ("shockley_1n4148", (6, 5)),
        ("ideal_diode", ()),  # the output layer alone: linear nodes, no neighbours
        ("ideal_diode", (8, 6, 5)),  # three free layers: an odd layer between two even
    ],
)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_compiled_sweeps_give_the_same_bits(diode, sizes, dtype, monkeypatch):
    data = chip_dict(diode, sizes=sizes, out=4)
    chip = neuroemu.Chip.from_dict(data)
    rng = np.random.default_rng(3)
    x = rng.uniform(size=(9, chip.n_inputs))
    target = rng.uniform(-1, 1, (9, 4))
    free = both(monkeypatch, chip, x, dtype=dtype)
    assert_same(*free)
    assert free[0].sweeps >= 2
    # Nudged by a conductance and by a current, warm-started from the free state.
    assert_same(*both(monkeypatch, chip, x, 1e-4, target, init=free[0], dtype=dtype))
    current = rng.uniform(-1e-5, 1e-5, (9, 4))
    assert_same(*both(monkeypatch, chip, x, current=current, init=free[0], dtype=dtype))
    # Stopped by max_sweeps before every sample has met the tolerance.
    cut = both(monkeypatch, chip, x, max_sweeps=1, dtype=dtype)
    assert_same(*cut)
    assert not cut[0].converged


def test_grounded_rows_and_chunks_on_threads(monkeypatch):
    """Nodes grounded sample by sample (bounds as rows), and a batch cut into chunks that
    threads settle side by side, each with its own compiled loop."""
    chip = neuroemu.Chip.from_dict(chip_dict("ideal_diode", sizes=(6, 5), out=4))
    rng = np.random.default_rng(5)
    x = rng.uniform(size=(70, chip.n_inputs))
    grounded = [rng.random((70, 6)) < 0.3, None, None]
    monkeypatch.setattr(engine, "CHUNK_ROWS", 16)  # 5 chunks
    assert_same(*both(monkeypatch, chip, x, grounded=grounded))
    assert_same(*both(monkeypatch, chip, x, 1e-4, rng.uniform(-1, 1, (70, 4))))


@pytest.mark.parametrize("batch", [1, 4])
def test_the_shipped_chips_settle_to_the_same_bits(batch, monkeypatch):
    """The XS chip (differential inputs) and the Shockley chip, at a training batch of 4
    and for one sample (a product of one row, which BLAS may take another way)."""
    x = np.random.default_rng(0).uniform(size=(batch, 784))
    for name in ("xs_784x100", "kendall_784x100_shockley"):
        chip = neuroemu.Chip.from_yaml(name)
        assert_same(*both(monkeypatch, chip, x))


def test_a_read_of_arrays_some_noisy_some_not(monkeypatch):
    """With read noise on one layer's card only, a read gives the noisy arrays anew and
    the other's as the chip's own, read-only: the compiled loop takes both."""
    data = chip_dict("ideal_diode", sizes=(6,), out=4)
    data["layers"][1]["device"] = {
        "g_min": "0 uS",
        "g_max": "100 uS",
        "read_noise": {"relative": 0.05},
    }
    chip = neuroemu.Chip.from_dict(data)
    x = np.random.default_rng(2).uniform(size=(5, chip.n_inputs))
    with chip.reading(np.random.default_rng(0)):
        fused, looped = both(monkeypatch, chip, x)
    assert_same(fused, looped)
    quiet = chip.settle(x)  # without the read's noise
    assert not np.array_equal(quiet.voltages[-1], fused.voltages[-1])


def test_sweeper_refuses_arrays_it_cannot_write_in_place():
    chip = neuroemu.Chip.from_dict(chip_dict("ideal_diode", sizes=(6,), out=4))
    c = chip.circuit()
    v = [np.zeros((3, 6)), np.zeros((3, 4))[:, ::2]]
    i_in = [np.zeros((3, 6)), np.zeros((3, 2))]
    with pytest.raises(ValueError, match=r"v\[1\]: expected C-contiguous"):
        Sweeper(layout(c.weights, c.node_conductance, node_layout(c.params)), i_in, v, i_in)


def test_the_input_current_is_reused_only_for_the_same_inputs_and_conductances():
    """The phases of a training step settle the same inputs on the same circuit: the input
    sources' current is computed once. Inputs changed in place, or conductances written,
    are computed anew: the voltages are those of a chip that never kept anything."""
    data = chip_dict("ideal_diode", sizes=(6, 5), out=4)
    chip, fresh = neuroemu.Chip.from_dict(data), neuroemu.Chip.from_dict(data)
    rng = np.random.default_rng(9)
    x = rng.uniform(size=(4, chip.n_inputs))
    target = rng.uniform(-1, 1, (4, 4))

    def same(a, b):
        for p, q in zip(a.voltages, b.voltages, strict=True):
            np.testing.assert_array_equal(p, q)

    free = chip.settle(x)
    kept = chip.circuit().cache["inputs"]
    same(chip.settle(x, 1e-4, target, init=free), fresh.settle(x, 1e-4, target, init=free))
    assert chip.circuit().cache["inputs"] is kept  # the nudged phase took it again
    x[1] = rng.uniform(size=chip.n_inputs)  # the same array, other inputs
    same(chip.settle(x), fresh.settle(x))
    assert chip.circuit().cache["inputs"] is not kept
    g = [a * 0.5 for a in chip.conductances]
    chip.set_conductances(g)
    fresh.set_conductances(g)
    same(chip.settle(x), fresh.settle(x))
