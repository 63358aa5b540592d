"""Signed pairs of devices that are only ever potentiated, refreshed when one fills up.

Phase-change memory potentiates in gradual SET pulses but depresses only by an abrupt RESET
(all the way to ``g_min``), so on-chip training keeps each weight on two devices, takes
every change as SET pulses on one or the other, and now and then moves the pair's
difference back down (Boybat et al. 2018, Nat. Commun. 9, 2514).

**The circuit.** Two devices between the same two nodes add, so a pair needs two devices
whose currents reach the circuit with opposite signs. A resistive chip has three such
places, all of them already in its netlist, device count, power and energy:

- the input crossbar with ``differential`` encoding: device ``(i, j)`` is driven by the
  source at ``+a x_i`` and device ``(N + i, j)`` by the one at ``-a x_i``; their difference
  ``a (g+ - g-)`` is the weight of ``x_i`` at node ``j``;
- every bias array: row 0 goes to ``+V_b``, row 1 to ``-V_b``;
- the last crossbar with ``readout: differential``: device ``(h, 2k)`` feeds ``V+_k`` and
  device ``(h, 2k + 1)`` feeds ``V-_k``; their difference weighs node ``h`` in the score
  ``V+_k - V-_k``.

A crossbar between two hidden layers has no such partner (its rows are hidden nodes, with
no inverted copies), so a chip with one cannot train by pairs
(:func:`neuroemu.spec.training.check_pairs`).

**The update.** EP asks device ``a`` for ``d_a`` and its partner ``b`` for ``d_b``. The
pair takes the change of its difference, ``w = d_a - d_b`` (with momentum, the pair's
velocity ``v <- m v + w``, kept beside device ``a``), as SET pulses on ``a`` when ``w > 0``
and on ``b`` when ``w < 0``, through the card's model (pulse size, soft bounds, rounding,
cycle noise, spread). The common part ``(d_a + d_b) / 2``, which would move the node's total
conductance, is not programmed: a device that only rises cannot follow it. This is the
local part: each pair needs only its own two devices' EP terms.

**The refresh.** After each update, every pair with a device at or above ``refresh_at`` of
the nominal range (``g_min + refresh_at (g_max - g_min)``) and whose smaller device holds at
least one nominal SET step above its lower bound is read, both devices are RESET to their
lower bounds, and the difference they held is programmed back into the device that held the
larger conductance, as SET pulses through the device model (open loop, as any update: cycle
noise and soft bounds act, nothing is verified), or, with a verified refresh
(``training.refresh_write: verified``), by program and verify: SET pulses and reads in turn
until the device holds the difference, as a device is programmed to a target before
inference, so the written device's error is the card's ``programming_noise`` at that target
(:func:`neuroemu.models.nonideal.program`; exact on a card without it). A verified write
counts the nominal SET pulses that bring the device from its lower bound within the loop's
tolerance of the target (:func:`verified_pulses`) and one read after the RESET and after
each of those pulses. A pair with a stuck device is not refreshed. The refresh needs a read
of both devices and a comparator per pair, done row by row by the programming circuit; the
read is taken noise-free. The reads are counted (two per refresh, with the verified
write's), and cost the card's ``read_energy`` each.

A chip programs its pairs through the Numba update kernel (``program=``
:func:`neuroemu.kernels.update.program_half`: the same device model, the kernel's own
counter-based draws) and re-programs the few pairs a refresh empties through numpy; the
numpy path (no ``program``) is the reference the kernel's is tested against.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .nonideal import program as program_to
from .nonideal import programming_sigma
from .update import Bounds, programmed

if TYPE_CHECKING:
    from ..spec.cards import ResistorCard

#: The two halves of a device array that form its pairs: index expressions ``(a, b)`` into
#: the array, ``g[a]`` and ``g[b]`` of one shape, device ``g[a][k]`` paired with
#: ``g[b][k]``. Basic slices only, so each half is a view.
Halves = tuple[tuple[slice, ...], tuple[slice, ...]]


@dataclass(frozen=True)
class Refresh:
    """How pairs are refreshed: once a device reaches ``at`` of the nominal range, with the
    difference written back open loop as SET pulses (``verified`` false) or by program
    and verify (``verified`` true)."""

    at: float
    verified: bool = False


def nominal_set(card: ResistorCard) -> float | None:
    """The nominal SET step (S) a pair's accumulator counts in: one pulse at ``g_min``
    (``up (g_max - g_min)``), or one level; ``None`` for a continuous device."""
    if card.pulses is not None:
        return card.pulses.up * (card.g_max - card.g_min)
    return card.level_step


def verified_pulses(target: np.ndarray, card: ResistorCard) -> np.ndarray:
    """The nominal SET pulses a verified write takes from ``g_min`` to ``g_min + target``
    (``target`` in S, >= 0): the fewest whose conductance comes within the loop's
    tolerance of the target, the larger of the card's programming noise there
    (:func:`~neuroemu.models.nonideal.programming_sigma`, what the write leaves) and half a
    nominal step. For a fraction ``x`` of the range and pulses of ``u`` of it,
    ``n u >= x - tol``; with soft bounds (each pulse ``u`` of the room left)
    ``1 - (1 - u)^n >= x - tol``; a card with levels counts level steps, a continuous card
    none."""
    target = np.asarray(target, dtype=np.float64)
    span = card.g_max - card.g_min
    noise = programming_sigma(card.g_min + target, card) / span
    x = np.clip(target / span, 0.0, 1.0)
    if card.pulses is not None:
        up = card.pulses.up
        if card.pulses.soft_bounds:
            reach = x - np.maximum(noise, 0.5 * up * (1.0 - x))
            with np.errstate(divide="ignore"):
                n = np.log1p(-np.clip(reach, 0.0, 1.0)) / np.log1p(-up)
            n = np.minimum(n, np.ceil(np.log(1e-12) / np.log1p(-up)))  # a full device
        else:
            n = (x - np.maximum(noise, 0.5 * up)) / up
    elif card.level_step is not None:
        step = card.level_step / span
        n = (x - np.maximum(noise, 0.5 * step)) / step
    else:
        return np.zeros(target.shape, dtype=np.int64)
    # A hair above a whole count is that count: the difference was read, not planned.
    return np.ceil(np.maximum(n, 0.0) - 1e-9).astype(np.int64)


def _part(a: np.ndarray | None, half: tuple[slice, ...]) -> np.ndarray | None:
    return None if a is None else a[half]


def _program(
    g: np.ndarray,
    half: tuple[slice, ...],
    request: np.ndarray,
    card: ResistorCard,
    rng: np.random.Generator,
    spread: np.ndarray | None,
    bounds: Bounds,
    tilt: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """SET ``request`` (S, >= 0) into ``g[half]`` in place, clipped to each device's range;
    return the pulses per device and whether the clip cut the change (numpy, drawing from
    ``rng``)."""
    view = g[half]
    own = None if bounds is None else (bounds[0][half], bounds[1][half])
    change, count = programmed(
        view, request, card, rng, _part(spread, half), own, _part(tilt, half)
    )
    low, high = (card.g_min, card.g_max) if own is None else own
    target = view + change
    cut = (change != 0) & ((target < low) | (target > high))
    np.clip(target, low, high, out=view)
    return count, cut


def pair_update(
    g: np.ndarray,
    delta: np.ndarray,
    halves: Halves,
    card: ResistorCard,
    rng: np.random.Generator,
    *,
    spread: np.ndarray | None = None,
    bounds: Bounds = None,
    tilt: np.ndarray | None = None,
    velocity: np.ndarray | None = None,
    momentum: float = 0.0,
    residual: np.ndarray | None = None,
    threshold: float = 0.5,
    stuck: np.ndarray | None = None,
    refresh_at: float = 0.9,
    verified: bool = False,
    program: Callable[..., np.ndarray] | None = None,
) -> np.ndarray:
    """Move the pairs of array ``g`` (S, in place) by the changes ``delta`` (S, one per
    device) EP asks, as the module describes, and refresh the pairs that filled up.

    Returns ``[asked, unmoved, clipped, pulses, refreshed, reads]``: the pairs asked to move (a
    nonzero difference), of them those whose change rounded to no pulse and those cut by a
    bound, the pulses programmed (SET pulses, and two RESETs and the SET pulses of each
    refresh), the pairs refreshed and the device reads of the refreshes. With ``residual``
    (S, beside device ``a`` of each pair: a digital memory per pair) the pair accumulates
    its changes and takes the whole nominal SET pulses its sum holds past ``threshold``
    (0.5: the nearest whole number, the rest carried), as :mod:`neuroemu.kernels.update`
    does per device; the card's rounding is then not used. ``stuck`` (a device mask, or
    ``None``) only keeps pairs with a stuck device from refreshing; the chip puts stuck
    devices back. ``verified`` refreshes by program and verify, drawing the written devices'
    programming noise from ``rng``, instead of open-loop SET pulses. With ``program``
    (:func:`neuroemu.kernels.update.program_half`) the pairs' SET pulses are programmed by
    the Numba update kernel (the same device model, its own counter-based draws, so a card
    that draws gives other draws than numpy's; bit for bit the same on a card that draws
    nothing) and the refreshed pairs' by numpy; without, all by numpy, drawing from
    ``rng``."""
    a, b = halves
    want = delta[a] - delta[b]
    if momentum > 0:
        assert velocity is not None
        v = velocity[a]
        v *= momentum
        v += want
        want = v.copy()
    asked = want != 0
    step = nominal_set(card)
    if residual is not None and step is not None:
        chi = residual[a]
        chi += want
        whole = np.sign(chi) * np.floor(np.abs(chi) / step + 1.0 - threshold)
        chi -= whole * step
        want = whole * step  # whole pulses: the rounding below leaves them whole
    device = (card, rng, spread, bounds, tilt)
    if program is not None:
        counts = np.zeros(6, dtype=np.int64)
        counts[:4] += program(g, a, np.maximum(want, 0.0), *device)
        counts[:4] += program(g, b, np.maximum(-want, 0.0), *device)
        counts[0] = np.count_nonzero(asked)  # a pair whose difference is asked to move
    else:
        count_a, cut_a = _program(g, a, np.maximum(want, 0.0), *device)
        count_b, cut_b = _program(g, b, np.maximum(-want, 0.0), *device)
        count = count_a + count_b
        counts = np.array(
            [
                np.count_nonzero(asked),
                np.count_nonzero(asked & (count == 0)) if step is not None else 0,
                np.count_nonzero(cut_a | cut_b),
                count.sum(),
                0,
                0,
            ],
            dtype=np.int64,
        )
    level = card.g_min + refresh_at * (card.g_max - card.g_min)
    g_a, g_b = g[a], g[b]
    full = (g_a >= level) | (g_b >= level)
    # Each device's RESET level: its own lower bound.
    low_a, low_b = (card.g_min if bounds is None else bounds[0][half] for half in (a, b))
    if step is not None:
        # A refresh lowers the pair's common conductance by what its smaller device holds
        # above its RESET level; less than one SET step, and it would only write the
        # difference back with the write's error: skipped.
        full &= np.minimum(g_a - low_a, g_b - low_b) >= step
    if stuck is not None:
        full &= ~(stuck[a] | stuck[b])
    if full.any():
        net = np.where(full, g_a - g_b, 0.0)
        for view, low in ((g_a, low_a), (g_b, low_b)):
            view[full] = np.broadcast_to(low, view.shape)[full]
        reads = 2 * np.count_nonzero(full)  # the pair's difference
        if verified:
            refill = 0
            for half, view, sign in ((a, g_a, 1.0), (b, g_b, -1.0)):
                take = full & (sign * net > 0)
                own = None if bounds is None else (bounds[0][half][take], bounds[1][half][take])
                target = sign * net[take]
                view[take] = program_to(view[take] + target, card, rng, own)
                pulses = int(verified_pulses(target, card).sum())
                refill += pulses
                reads += pulses + int(np.count_nonzero(take))  # after the RESET, each pulse
        elif program is not None:  # the few pairs refreshed, through numpy
            refill = 0
            for half, view, sign in ((a, g_a, 1.0), (b, g_b, -1.0)):
                take = full & (sign * net > 0)
                sub = view[take]
                own = None if bounds is None else (bounds[0][half][take], bounds[1][half][take])
                count, _ = _program(
                    sub,
                    (slice(None),),
                    sign * net[take],
                    card,
                    rng,
                    None if spread is None else spread[half][take],
                    own,
                    None if tilt is None else tilt[half][take],
                )
                view[take] = sub
                refill += int(count.sum())
        else:
            refill_a, _ = _program(g, a, np.maximum(net, 0.0), *device)
            refill_b, _ = _program(g, b, np.maximum(-net, 0.0), *device)
            refill = (refill_a + refill_b).sum()
        refreshed = np.count_nonzero(full)
        counts[3] += 2 * refreshed + int(refill)
        counts[4] = refreshed
        counts[5] = reads
    return counts
