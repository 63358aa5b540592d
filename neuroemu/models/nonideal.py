"""Device non-idealities of programmed conductances, as vectorised numpy functions.

Each function states its equation; all randomness comes from the ``numpy.random.Generator``
passed in, so a chip's seed fixes every draw.

- programming noise: ``G = G_target + N(0, sigma(G_target))``, with ``sigma`` constant or,
  for PCM, ``sigma = (c0 + c1 g + c2 g^2) * 1 uS * g_max / 25 uS`` with ``g = G / g_max``
  (Nandakumar et al. 2019 as used in IBM aihwkit, coefficients 0.26348, 1.9650, -1.1731);
- drift: ``G(t) = G(t0) (t / t0)^(-nu)`` for ``t >= t0`` with ``nu`` per device drawn from
  ``N(nu_mean, nu_std)`` clipped to ``[nu_min, nu_max]`` (PCM, t0 = 20 s);
- read noise: every read sees ``max(G + (relative * G + absolute) z, 0)``, ``z ~ N(0, 1)``
  drawn afresh per device and per read (a chip reads all its arrays at once,
  :func:`neuroemu.chip.reads.read_arrays`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError
from .update import Bounds

if TYPE_CHECKING:
    from ..spec.cards import ResistorCard

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
) -> np.ndarray:
    """One noisy read of conductances ``g`` (S, >= 0): ``max(g + (relative g + absolute) z,
    0)`` with ``z ~ N(0, 1)`` per device (a read is never negative), into ``out`` (a new
    array by default; never ``g`` itself). ``z``: the normal draws to use (shaped like
    ``g``), else drawn from ``rng``. A card without read noise reads ``g`` exactly.
    (:func:`neuroemu.kernels.read.noisy_read` is the same read in one fused pass.)"""
    noise = card.read_noise
    if out is None:
        out = np.empty(np.shape(g))
    if noise is None:
        out[...] = g
        return out
    if z is None:
        rng.standard_normal(out.shape, out=out)  # z, drawn in place: no temporaries
    else:
        out[...] = z
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


def normal_pool(rng: np.random.Generator) -> np.ndarray:
    """:data:`POOL_SIZE` independent N(0, 1) draws (float32) from ``rng``: the pool a chip's
    reads take windows of (:func:`neuroemu.chip.reads.read_arrays`), drawn once per chip."""
    return rng.standard_normal(POOL_SIZE, dtype=np.float32)
