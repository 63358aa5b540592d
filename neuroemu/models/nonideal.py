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

from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError
from ..spec.models import ResistorCard
from .update import Bounds

if TYPE_CHECKING:
    from ..build.chip import BaseChip

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
    g: np.ndarray, card: ResistorCard, rng: np.random.Generator, out: np.ndarray | None = None
) -> np.ndarray:
    """One noisy read of conductances ``g`` (S, >= 0): ``max(g + (relative g + absolute) z,
    0)`` with ``z ~ N(0, 1)`` per device (a read is never negative), into ``out`` (a new
    array by default; never ``g`` itself). A card without read noise reads ``g`` exactly."""
    noise = card.read_noise
    if out is None:
        out = np.empty(np.shape(g))
    if noise is None:
        out[...] = g
        return out
    rng.standard_normal(out.shape, out=out)  # z, drawn in place: no temporaries
    if noise.absolute == 0:
        out *= noise.relative
        out += 1.0
        out *= g  # g (1 + relative z)
    else:
        out *= noise.relative * np.asarray(g) + noise.absolute
        out += g
    return np.maximum(out, 0.0, out=out)


def has_read_noise(chip: BaseChip) -> bool:
    """Whether any device array of ``chip`` reads noisily (then every read needs
    :func:`read_arrays`; otherwise the chip's own arrays are what every read sees)."""
    return any(card.read_noise is not None for _, card in chip.device_arrays())


def read_arrays(
    chip: BaseChip, rng: np.random.Generator
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The conductances (S) one read of ``chip`` sees: ``(crossbars, biases)``, shaped like
    ``chip.conductances`` and ``chip.bias_conductance``.

    Every device of a card with ``read_noise`` reads :func:`read` of its conductance, one
    draw of ``rng`` per device (arrays in the order of ``chip.device_arrays()``, each in one
    vectorised draw), except stuck devices, which read their stuck conductance. Arrays of
    cards without read noise are the chip's own arrays, not copies (read them, do not write
    to them), and take no draws. The chip is not changed. The cost of a read is one normal
    draw and four passes per noisy device (about 2 ms for the XS chip's input crossbar).
    """
    arrays = [
        g if card.read_noise is None else read(g, card, rng) for g, card in chip.device_arrays()
    ]
    n = len(chip.crossbars)
    crossbars, biases = arrays[:n], arrays[n:]
    noisy = [g is not c.conductance for g, c in zip(crossbars, chip.crossbars, strict=True)]
    chip.apply_faults([g if fresh else None for g, fresh in zip(crossbars, noisy, strict=True)])
    return crossbars, biases
