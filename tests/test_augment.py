"""Augmentation of training images: against a slow pixel-by-pixel version, its stream,
and its spec."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import yaml

import neuroemu
from neuroemu.errors import SpecError
from neuroemu.learning.augment import augment_epoch, augment_images
from neuroemu.spec.training import Augment

ROOT = Path(__file__).resolve().parents[1]


def slow_augment(x, rng, shape, flip, shift):
    """Image by image, pixel by pixel, from the same draws in the same order."""
    n, (height, width) = len(x), shape
    mirrored = rng.random(n) < 0.5 if flip else np.zeros(n, bool)
    down = rng.integers(-shift, shift + 1, n) if shift else np.zeros(n, int)
    across = rng.integers(-shift, shift + 1, n) if shift else np.zeros(n, int)
    out = np.zeros_like(x)
    for k in range(n):
        image = x[k].reshape(height, width)
        if mirrored[k]:
            image = image[:, ::-1]
        for i in range(height):
            for j in range(width):
                si, sj = i - down[k], j - across[k]  # the pixel that moves to (i, j)
                if 0 <= si < height and 0 <= sj < width:
                    out[k, i * width + j] = image[si, sj]
    return out


@pytest.mark.parametrize(("flip", "shift"), [(True, 0), (False, 2), (True, 1)])
def test_augment_matches_slow_version(flip, shift):
    x = np.random.default_rng(0).uniform(size=(40, 5 * 7))
    fast = augment_images(x, np.random.default_rng(9), (5, 7), flip, shift)
    slow = slow_augment(x, np.random.default_rng(9), (5, 7), flip, shift)
    np.testing.assert_array_equal(fast, slow)
    assert fast.dtype == x.dtype and not np.shares_memory(fast, x)
    changed = np.any(fast != x, axis=1).mean()
    assert 0.3 < changed <= 1.0  # most images moved or mirrored (a mirror or move of 0: not)


def test_flip_mirrors_rows_and_shift_moves_in_dark_pixels():
    x = np.arange(1.0, 13.0).reshape(1, 12)  # one 3 x 4 image, no dark pixel
    flips = [augment_images(x, np.random.default_rng(s), (3, 4), flip=True) for s in range(20)]
    mirrored = x.reshape(3, 4)[:, ::-1].reshape(1, 12)
    kinds = {tuple(f.ravel()) for f in flips}
    assert kinds == {tuple(x.ravel()), tuple(mirrored.ravel())}
    moved = [augment_images(x, np.random.default_rng(s), (3, 4), shift=1) for s in range(40)]
    for m in moved:  # a move keeps pixels in order and brings in zeros, never other values
        kept = m[m > 0]
        assert set(kept) <= set(x.ravel()) and np.all(np.diff(kept) > 0)
    assert any((m == 0).any() for m in moved)


def test_epoch_stream_and_no_augmentation():
    x = np.random.default_rng(1).uniform(size=(10, 784))
    augment = Augment(flip=True, shift=1)
    first = augment_epoch(x, augment, 784, seed=5, epoch=1)
    expected = augment_images(x, np.random.default_rng([5, 1, 1, 3]), (28, 28), True, 1)
    np.testing.assert_array_equal(first, expected)
    assert not np.array_equal(first, augment_epoch(x, augment, 784, seed=5, epoch=2))
    assert augment_epoch(x, None, 784, seed=5, epoch=1) is x
    assert augment_epoch(x, Augment(), 784, seed=5, epoch=1) is x


@pytest.mark.parametrize(
    ("augment", "message"),
    [
        ({"flip": True, "shape": [20, 30]}, "training.augment.shape: 20 x 30 images have 600"),
        ({"shift": 9}, "training.augment.shift: Input should be less than or equal to 8"),
        ({"shift": 1, "shape": [0, 784]}, "training.augment.shape: must be two sizes >= 1"),
    ],
)
def test_augment_spec_errors(augment, message):
    data = yaml.safe_load((ROOT / "chips" / "crossbar_784x500.yaml").read_text())
    data["training"]["augment"] = augment
    with pytest.raises(SpecError, match=re.escape(message)):
        neuroemu.Chip.from_dict(data)


def test_augment_needs_square_inputs_or_a_shape():
    data = yaml.safe_load((ROOT / "chips" / "tiny.yaml").read_text())
    data["training"] = {"beta": "1 uS", "target_voltage": "0.1 V", "learning_rate": 1.0}
    data["training"]["augment"] = {"flip": True}
    with pytest.raises(SpecError, match="6 inputs are not a square image"):
        neuroemu.Chip.from_dict(data)
    data["training"]["augment"]["shape"] = [2, 3]
    assert neuroemu.Chip.from_dict(data).spec.training.augment.shape == (2, 3)
