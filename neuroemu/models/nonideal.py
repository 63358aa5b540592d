"""Device non-idealities of programmed conductances, as vectorised numpy functions.

Each function states its equation; all randomness comes from the ``numpy.random.Generator``
passed in, so a chip's seed fixes every draw.

- programming noise: ``G = G_target + N(0, sigma(G_target))``, with ``sigma`` constant or,
  for PCM, ``sigma = (c0 + c1 g + c2 g^2) * 1 uS * g_max / 25 uS`` with ``g = G / g_max``
  (Nandakumar et al. 2019 as used in IBM aihwkit, coefficients 0.26348, 1.9650, -1.1731);
- drift: ``G(t) = G(t0) (t / t0)^(-nu)`` for ``t >= t0`` with ``nu`` per device drawn from
  ``N(nu_mean, nu_std)`` clipped to ``[nu_min, nu_max]`` (PCM, t0 = 20 s);
- read noise: every read sees ``max(G + (relative * G + absolute) z, 0)``, ``z ~ N(0, 1)``
  drawn afresh per device and per read; :func:`read_arrays` reads a whole chip once (what
  the engine does for each settle of a batch).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError
from ..spec.cards import ResistorCard
from .update import Bounds

if TYPE_CHECKING:
    from ..chip.base import BaseChip

MICROSIEMENS = 1e-6
PCM_REFERENCE_G_MAX = 25e-6  # S, the scale the PCM polynomial was fitted on


def programming_sigma(g_target: np.ndarray, card: ResistorCard) -> np.ndarray:
    """Standard deviation (S) of programming noise at each target conductance."""
    noise = card.programming_noise
    g_target = np.asarray(g_target, dtype=np.float64)
    if noise is None:
        return np.zeros_like(g_target)
    if noise.model == "constant":
        return np.full_like(g_target, noise.sigma)
    c0, c1, c2 = noise.coefficients
    g = g_target / card.g_max
    sigma = (c0 + c1 * g + c2 * g**2) * MICROSIEMENS * card.g_max / PCM_REFERENCE_G_MAX
    return np.maximum(sigma, 0.0)


def program(
    g_target: np.ndarray, card: ResistorCard, rng: np.random.Generator, bounds: Bounds = None
) -> np.ndarray:
    """Conductances after programming ``g_target`` once: target plus programming noise,
    clipped to the device range (each device's own, ``bounds = (g_lo, g_hi)``, with
    ``range_spread``; see :func:`neuroemu.models.update.range_bounds`)."""
    sigma = programming_sigma(g_target, card)
    g = g_target + sigma * rng.standard_normal(np.shape(g_target))
    low, high = (card.g_min, card.g_max) if bounds is None else bounds
    return np.clip(g, low, high)


def drift_exponents(
    shape: tuple[int, ...], card: ResistorCard, rng: np.random.Generator
) -> np.ndarray:
    """Drift exponent ``nu`` of every device (zeros for a card without drift)."""
    drift = card.drift
    if drift is None:
        return np.zeros(shape)
    nu = drift.nu_mean + drift.nu_std * rng.standard_normal(shape)
    return np.clip(nu, drift.nu_min, drift.nu_max)


def drifted(g0: np.ndarray, nu: np.ndarray, t: float, card: ResistorCard) -> np.ndarray:
    """``G(t) = G(t0) (t / t0)^(-nu)`` at ``t`` s after programming; ``G(t0)`` until ``t0``
    (the conductance programming leaves is the one read at ``t0``)."""
    if not t > 0:
        raise InputError(f"time after programming: must be > 0 s (got {t:g} s)")
    if card.drift is None:
        return np.array(g0, dtype=np.float64, copy=True)
    ratio = max(t / card.drift.t0, 1.0)
    return np.asarray(g0) * ratio ** (-np.asarray(nu))


def read(
    g: np.ndarray,
    card: ResistorCard,
    rng: np.random.Generator,
    out: np.ndarray | None = None,
    z: np.ndarray | None = None,
    stuck: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """One noisy read of conductances ``g`` (S, >= 0): ``max(g + (relative g + absolute) z,
    0)`` with ``z ~ N(0, 1)`` per device (a read is never negative), into ``out`` (a new
    array by default; never ``g`` itself). ``z``: the normal draws to use (shaped like
    ``g``), else drawn from ``rng``; with ``z``, ``stuck = (flat indices, conductances)``
    are devices read at their stuck conductance in the same pass (stuck-at faults). A card
    without read noise reads ``g`` exactly."""
    noise = card.read_noise
    if out is None:
        out = np.empty(np.shape(g))
    if noise is None:
        out[...] = g
        return out
    if z is not None:  # one fused pass (neuroemu.kernels.read; this function's numpy below)
        from ..kernels.read import noisy_read

        g = np.asarray(g, dtype=np.float64)
        return noisy_read(g, z, noise.relative, noise.absolute, out, stuck)
    rng.standard_normal(out.shape, out=out)  # z, drawn in place: no temporaries
    if noise.absolute == 0:
        out *= noise.relative
        out += 1.0
        out *= g  # g (1 + relative z)
    else:
        out *= noise.relative * np.asarray(g) + noise.absolute
        out += g
    return np.maximum(out, 0.0, out=out)


#: Normal draws kept per chip for its reads (float32: 16 MB).
POOL_SIZE = 1 << 22


def read_pool(chip: BaseChip) -> np.ndarray:
    """The chip's pool of :data:`POOL_SIZE` N(0, 1) draws (float32) that its reads take
    windows of (:func:`read_arrays`), drawn once from stream ``[seed, 0, 7]``: the chip draws
    it when built, if any of its cards has read noise."""
    pool = getattr(chip, "_read_noise_pool", None)
    if pool is None:
        rng = np.random.default_rng([chip.seed, 0, 7])
        pool = rng.standard_normal(POOL_SIZE, dtype=np.float32)
        chip._read_noise_pool = pool  # type: ignore[attr-defined]
    return pool


def has_read_noise(chip: BaseChip) -> bool:
    """Whether any device array of ``chip`` reads noisily (then every read needs
    :func:`read_arrays`; otherwise the chip's own arrays are what every read sees)."""
    return any(card.read_noise is not None for _, card in chip.device_arrays())


def read_arrays(
    chip: BaseChip, rng: np.random.Generator, reuse: bool = False
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The conductances (S) one read of ``chip`` sees: ``(crossbars, biases)``, shaped like
    ``chip.conductances`` and ``chip.bias_conductance``.

    Every device of a card with ``read_noise`` reads :func:`read` of its conductance, except
    stuck devices, which read their stuck conductance. Arrays of cards without read noise
    are the chip's own arrays, not copies (read them, do not write to them). The chip is
    not changed.

    The normal draws of a read are a window of a pool of :data:`POOL_SIZE` independent
    N(0, 1) draws made once per chip (stream ``[seed, 0, 7]``), at an offset drawn from
    ``rng`` for each array: within a read every device's draw is independent of the others;
    a device's draws in two reads are independent unless the two offsets coincide (odds
    ``1 / POOL_SIZE``). A read then costs one pass over the noisy devices, stuck devices
    set in the same pass, instead of a fresh normal draw for each (several times as much).

    ``reuse``: write into the chip's own read buffers, which the next read with ``reuse``
    overwrites (the engine's way: a read's arrays live until the next read).
    """
    pool = read_pool(chip)
    buffers: dict[int, np.ndarray] = chip.__dict__.setdefault("_read_buffers", {})
    n = len(chip.crossbars)
    stuck = chip.stuck_devices() + [None] * (len(chip.device_arrays()) - n)
    arrays = []
    for index, (g, card) in enumerate(chip.device_arrays()):
        if card.read_noise is None:
            arrays.append(g)  # read exactly: stuck devices are at their values already
            continue
        out = None
        if reuse:
            out = buffers.get(index)
            if out is None or out.shape != g.shape:
                out = buffers[index] = np.empty(g.shape)
        if g.size > pool.size:  # larger than the pool: draw afresh
            arrays.append(read(g, card, rng, out))
            if index < n:
                chip.apply_faults([arrays[-1] if k == index else None for k in range(n)])
            continue
        start = int(rng.integers(pool.size - g.size + 1))
        z = pool[start : start + g.size].reshape(g.shape)
        arrays.append(read(g, card, rng, out, z=z, stuck=stuck[index]))
    return arrays[:n], arrays[n:]


@contextmanager
def reading(chip: BaseChip, rng: np.random.Generator) -> Iterator[None]:
    """Within the block, ``chip``'s settles see its arrays as read with read noise drawn
    from ``rng`` (:func:`read_arrays`), a new read at every ``chip.next_read()`` (training:
    each mini-batch, whose phases share a read; inference: each batch) or change of the
    conductances, when a card has read noise; a chip without any reads exactly and pays
    nothing. A block inside another keeps the outer stream."""
    previous = chip.reads
    if previous is None and has_read_noise(chip):
        chip.reads = rng
        chip.next_read()
    try:
        yield
    finally:
        chip.reads = previous
        chip.next_read()
