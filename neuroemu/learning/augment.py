"""Training-set augmentation: each epoch sees its images mirrored and moved at random.

An epoch's draws come from a stream of the chip's seed of their own
(``epoch_augment``, :mod:`neuroemu.streams`), so a resumed run augments exactly as an
uninterrupted one, and no other draw of the run changes. Only training images are
augmented; evaluation sees the data as it is.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from ..streams import stream

if TYPE_CHECKING:
    from ..spec.training import Augment


def augment_images(
    x: np.ndarray,
    rng: np.random.Generator,
    shape: tuple[int, int],
    flip: bool = False,
    shift: int = 0,
) -> np.ndarray:
    """A new array of the images ``x`` (batch, height * width), each mirrored left to right
    with probability 1/2 (``flip``), then moved by a whole number of pixels drawn uniformly
    from ``[-shift, shift]`` down and across, the pixels moved in being 0 (dark).

    The draws, in order: one uniform per image (flip), then the vertical and the horizontal
    moves (``rng.integers``, one per image each).
    """
    n = len(x)
    height, width = shape
    if x.ndim != 2 or x.shape[1] != height * width:
        raise ValueError(f"images of shape {shape} need {height * width} values, got {x.shape}")
    images = x.reshape(n, height, width)
    out = images.copy()
    if flip:
        mirrored = rng.random(n) < 0.5
        out[mirrored] = images[mirrored, :, ::-1]
    if shift > 0:
        down = rng.integers(-shift, shift + 1, n)
        across = rng.integers(-shift, shift + 1, n)
        padded = np.zeros((n, height + 2 * shift, width + 2 * shift), dtype=x.dtype)
        padded[:, shift : shift + height, shift : shift + width] = out
        rows = np.arange(height)[None, :, None] + (shift - down)[:, None, None]
        cols = np.arange(width)[None, None, :] + (shift - across)[:, None, None]
        out = padded[np.arange(n)[:, None, None], rows, cols]
    return out.reshape(n, height * width)


def image_shape(augment: Augment, n_inputs: int) -> tuple[int, int]:
    """The images' (height, width): ``augment.shape``, else a square of ``n_inputs``."""
    if augment.shape is not None:
        return augment.shape
    side = math.isqrt(n_inputs)
    return side, side


def augment_epoch(
    x: np.ndarray, augment: Augment | None, n_inputs: int, seed: int, epoch: int
) -> np.ndarray:
    """The training images of ``epoch`` as augmented by ``augment`` (``x`` itself when
    there is nothing to do)."""
    if augment is None or not (augment.flip or augment.shift):
        return x
    rng = stream(seed, "epoch_augment", epoch)
    shape = image_shape(augment, n_inputs)
    return augment_images(x, rng, shape, augment.flip, augment.shift)
