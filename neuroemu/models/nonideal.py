"""Device non-idealities of programmed conductances, as vectorised numpy functions.

Each function states its equation; all randomness comes from the ``numpy.random.Generator``
passed in, so a chip's seed fixes every draw.

- programming noise: ``G = G_target + N(0, sigma(G_target))``, with ``sigma`` constant or,
  for PCM, ``sigma = (c0 + c1 g + c2 g^2) * 1 uS * g_max / 25 uS`` with ``g = G / g_max``
  (Nandakumar et al. 2019 as used in IBM aihwkit, coefficients 0.26348, 1.9650, -1.1731);
- drift: ``G(t) = G(t0) (t / t0)^(-nu)`` for ``t >= t0`` with ``nu`` per device drawn from
  ``N(nu_mean, nu_std)`` clipped to ``[nu_min, nu_max]`` (PCM, t0 = 20 s);
- read noise: every read sees ``G + N(0, relative * G + absolute)``.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..spec.models import ResistorCard

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


def program(g_target: np.ndarray, card: ResistorCard, rng: np.random.Generator) -> np.ndarray:
    """Conductances after programming ``g_target`` once: target plus programming noise,
    clipped to the device range."""
    sigma = programming_sigma(g_target, card)
    g = g_target + sigma * rng.standard_normal(np.shape(g_target))
    return np.clip(g, card.g_min, card.g_max)


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


def read(g: np.ndarray, card: ResistorCard, rng: np.random.Generator) -> np.ndarray:
    """One noisy read of conductances ``g`` (clipped at 0 S: a read is never negative)."""
    noise = card.read_noise
    if noise is None:
        return np.array(g, dtype=np.float64, copy=True)
    sigma = noise.relative * np.abs(g) + noise.absolute
    return np.maximum(g + sigma * rng.standard_normal(np.shape(g)), 0.0)
