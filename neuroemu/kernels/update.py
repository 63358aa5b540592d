"""The EP update of a whole crossbar in one pass over its devices.

For device ``(i, j)`` with terminal voltages ``r_i`` (row) and ``c_j`` (column) in the two
phases ``+`` and ``-`` of a mini-batch of ``B`` samples,

    sum_b [(r+_i - c+_j)^2 - (r-_i - c-_j)^2] = R_i + C_j - 2 X_ij

with ``R_i = sum_b (r+_i^2 - r-_i^2)``, ``C_j = sum_b (c+_j^2 - c-_j^2)`` and
``X = r+^T c+ - r-^T c-`` (one matrix product, done by BLAS before the call). The kernel
forms each device's change ``factor * (R_i + C_j - 2 X_ij)`` from its own terms, programs
it as the device allows (whole pulses of ``step`` when ``step > 0``: rounded to nearest,
ties to even as ``numpy.rint``, or, when ``stochastic``, up with probability equal to the
fraction; or, for a pulse-programmed device, pulses with soft bounds, up/down asymmetry and
cycle-to-cycle noise, as :func:`neuroemu.models.update.pulse_plan`), each device's step
scaled by its own ``spread[i, j]`` when given (device-to-device spread of the step), and
clips to ``[g_min, g_max]``, or, when ``bounds = (g_lo, g_hi)`` is given (device-to-device
spread of the range), to each device's own ``[g_lo[i, j], g_hi[i, j]]``, at which its soft
bounds then saturate (:mod:`neuroemu.models.update`), in place. Rows run in parallel.
Random draws (stochastic rounding, cycle-to-cycle noise) are counter-based: word
``4 device + draw`` of the SplitMix64 sequence of the scrambled ``seed`` (Steele, Lea and
Flood 2014), so a given seed gives the same update whatever the threads (``seed`` must be
>= 0 when draws are needed). A device whose change rounds to no pulse is not touched.

Every update also counts, per row (rows on threads never share a counter; the wrapper sums
them), what happened to the devices:

- ``asked``: devices asked to move, their change ``delta != 0`` before programming (with
  momentum, their velocity);
- ``unmoved``: of those, the devices whose change rounded to no pulse (whole steps of
  ``step`` or pulses: a pulse count of 0; a continuous device always moves);
- ``clipped``: of those that took a pulse (or moved continuously), the devices that ended at
  a bound with their change cut: ``g + delta`` fell outside ``[g_min, g_max]`` (or the
  device's own bounds) and the clip changed it.

- ``pulses``: the programming pulses applied, summed over devices (whole level steps or
  pulses; a continuous device takes none).

``unmoved`` and ``clipped`` never overlap. Stuck devices (``stuck``) are left out of all
three: the kernel moves them as any other, but their chip puts them back at their stuck
conductance after the update (:meth:`neuroemu.chip.base.BaseChip.update_devices`), so
nothing the device model did to them happened. Counting changes no conductance.

Accumulators: with ``residual`` (S, one per device, a digital memory beside the array),
each device adds its change to its accumulator ``chi <- chi + delta`` and takes the whole
pulses the sum holds past a ``threshold`` ``t`` (in nominal steps),
``n = sign(chi) floor(|chi| / eps + 1 - t)`` with ``eps`` the nominal step (``step``, or the
nominal pulse ``up (g_max - g_min)`` or ``down (g_max - g_min)`` in the direction of
``chi``), and keeps the rest, ``chi <- chi - n eps``, so ``|chi| < t eps`` after every
update. ``t = 1`` is mixed precision (Nandakumar et al. 2020, Front. Neurosci. 14, 406): a
pulse once a whole step has accumulated, ``n = trunc(chi / eps)``; ``t = 1/2`` rounds the
accumulated change to the nearest step and carries the rounding error (error feedback, as
in a sigma-delta modulator). No change is lost to rounding and no draw is made for it;
what the pulses actually did (soft bounds, spread, cycle noise, a clip) is not fed back:
the programming is open loop, as in the paper. A continuous device takes its change whole
and its accumulator stays 0.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from numba import njit, prange

if TYPE_CHECKING:
    from ..models.update import Bounds
    from ..spec.cards import ResistorCard

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)

#: Velocities below this (S) are set to zero. A device that gets no gradient (e.g. into a
#: hidden node clamped at 0 V) has its velocity shrink by ``momentum`` every step; left
#: alone it would reach subnormal numbers within a few epochs, whose arithmetic is some 20x
#: slower (measured: an epoch of crossbar_784x500 went from 10 s to 24 s). 1e-30 S is far
#: below the rounding of any conductance (the spacing of floats near 1 nS is 2e-25 S).
VELOCITY_FLOOR = 1e-30

#: The stuck-device masks of an array without faults (read-only, as a chip's own masks are,
#: so that one compiled kernel serves both).
_NO_FAULTS = np.zeros((0, 0), dtype=np.bool_)
_NO_FAULTS.flags.writeable = False


class UpdateCount(NamedTuple):
    """What one update did to an array's devices (see the module docs): ``asked`` to move,
    of them ``unmoved`` (rounded to no pulse) and ``clipped`` (cut at a bound), and the
    ``pulses`` programmed."""

    asked: int
    unmoved: int
    clipped: int
    pulses: int = 0


#: Arrays with fewer devices are updated on one thread (the serial twin: the same bits).
PARALLEL_MIN_DEVICES = 16384


@njit(cache=True, inline="always")
def _mix(z):
    """SplitMix64's finaliser (Steele, Lea and Flood 2014): a bijection of 64-bit words
    that scatters neighbouring inputs over the whole range."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@njit(cache=True)
def _scramble(seed):
    """A seed's key: its mix, so that the sequences of two seeds start far apart."""
    return _mix(seed)


@njit(cache=True, inline="always")
def _uniform(key, device, draw):
    """The ``draw``-th uniform in [0, 1) of ``device`` under ``key`` (``draw`` < 4): word
    ``4 device + draw`` of the SplitMix64 sequence that starts at ``key`` (a scrambled seed,
    :func:`ep_update`). Counter-based, so every device's draws are its own whatever thread
    updates it, and one seed gives one update."""
    word = _mix(key + (np.uint64(device) * np.uint64(4) + np.uint64(draw + 1)) * _GOLDEN)
    return float(word >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(cache=True, inline="always")
def _normal(key, device):
    """A standard normal draw of ``device`` (Box and Muller 1958, from draws 1 and 2)."""
    u1 = 1.0 - _uniform(key, device, 1)  # in (0, 1]: the logarithm is finite
    u2 = _uniform(key, device, 2)
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


@njit(cache=True, inline="always")
def _whole(count, stochastic, key, device):
    """A whole pulse count: nearest (ties to even), or up with probability the fraction."""
    if not stochastic:
        return np.rint(count)
    low = math.floor(count)
    return low + (1.0 if _uniform(key, device, 0) < count - low else 0.0)


@njit(cache=True, inline="always")
def _update_row(
    i,
    g,
    row_term,
    col_term,
    cross,
    factor,
    g_min,
    g_max,
    step,
    stochastic,
    key,
    up,
    down,
    soft,
    cycle,
    spread,
    tilt,
    low,
    high,
    velocity,
    momentum,
    residual,
    threshold,
    stuck_low,
    stuck_high,
    counts,
):
    spreads = spread.shape[0] > 0
    tilted = tilt.shape[0] > 0
    faulty = stuck_low.shape[0] > 0
    accumulates = velocity.shape[0] > 0
    carries = residual.shape[0] > 0
    bounded = low.shape[0] > 0
    span = g_max - g_min
    cols = g.shape[1]
    asked = unmoved = clipped = 0
    pulses = 0
    for j in range(cols):
        device = i * cols + j
        delta = factor * (row_term[i] + col_term[j] - 2.0 * cross[i, j])
        if accumulates:  # heavy-ball momentum: the change asked for is the running sum
            delta += momentum * velocity[i, j]
            if abs(delta) < VELOCITY_FLOOR:
                delta = 0.0  # a velocity decaying to nothing never turns subnormal
            velocity[i, j] = delta
        # Counted: a device asked to move that can (a stuck one is put back by its chip).
        movable = not (faulty and (stuck_low[i, j] or stuck_high[i, j]))
        counted = delta != 0.0 and movable
        asked += counted
        if carries:  # an accumulator: what earlier updates left unprogrammed is added
            delta += residual[i, j]
        if up > 0.0:  # pulses of a state-dependent size
            rise = delta > 0.0
            nominal = (up if rise else down) * span
            if carries:  # whole pulses once past the threshold; the rest stays
                count = math.floor(abs(delta) / nominal + 1.0 - threshold)
                residual[i, j] = delta - (count * nominal if rise else -count * nominal)
            else:
                count = _whole(abs(delta) / nominal, stochastic, key, device)
            if count == 0.0:
                unmoved += counted
                continue  # no pulse: the device stays where it is, inside its range
            pulses += int(count) * movable
            size = nominal
            if soft and bounded:  # saturating at the device's own bounds
                lo, hi = low[i, j], high[i, j]
                width = hi - lo
                room = hi - g[i, j] if rise else g[i, j] - lo
                size = nominal * room / width if width > 0.0 else 0.0
            elif soft:
                size = up * (g_max - g[i, j]) if rise else down * (g[i, j] - g_min)
            if spreads:
                size *= spread[i, j]
            if tilted:  # the device's own imbalance of up and down steps
                size *= max(1.0 + tilt[i, j], 0.0) if rise else max(1.0 - tilt[i, j], 0.0)
            change = count * size
            if cycle > 0.0:
                change += size * cycle * math.sqrt(count) * _normal(key, device)
            delta = change if rise else -change
        elif step > 0.0:
            if carries:
                count = math.copysign(math.floor(abs(delta) / step + 1.0 - threshold), delta)
                residual[i, j] = delta - count * step
            else:
                count = _whole(delta / step, stochastic, key, device)
            if count == 0.0:
                unmoved += counted
                counted = False
            pulses += int(abs(count)) * movable
            delta = count * step * (spread[i, j] if spreads else 1.0)
            if tilted:
                delta *= max(1.0 + tilt[i, j] if count > 0 else 1.0 - tilt[i, j], 0.0)
        lo = low[i, j] if bounded else g_min
        hi = high[i, j] if bounded else g_max
        wanted = g[i, j] + delta
        g[i, j] = min(max(wanted, lo), hi)
        clipped += counted and g[i, j] != wanted
    counts[i, 0] = asked
    counts[i, 1] = unmoved
    counts[i, 2] = clipped
    counts[i, 3] = pulses


@njit(cache=True, parallel=True)
def _ep_update_parallel(
    g,
    row_term,
    col_term,
    cross,
    factor,
    g_min,
    g_max,
    step,
    stochastic,
    key,
    up,
    down,
    soft,
    cycle,
    spread,
    tilt,
    low,
    high,
    velocity,
    momentum,
    residual,
    threshold,
    stuck_low,
    stuck_high,
    counts,
):
    for i in prange(g.shape[0]):
        _update_row(
            i,
            g,
            row_term,
            col_term,
            cross,
            factor,
            g_min,
            g_max,
            step,
            stochastic,
            key,
            up,
            down,
            soft,
            cycle,
            spread,
            tilt,
            low,
            high,
            velocity,
            momentum,
            residual,
            threshold,
            stuck_low,
            stuck_high,
            counts,
        )


@njit(cache=True)
def _ep_update_serial(
    g,
    row_term,
    col_term,
    cross,
    factor,
    g_min,
    g_max,
    step,
    stochastic,
    key,
    up,
    down,
    soft,
    cycle,
    spread,
    tilt,
    low,
    high,
    velocity,
    momentum,
    residual,
    threshold,
    stuck_low,
    stuck_high,
    counts,
):
    for i in range(g.shape[0]):
        _update_row(
            i,
            g,
            row_term,
            col_term,
            cross,
            factor,
            g_min,
            g_max,
            step,
            stochastic,
            key,
            up,
            down,
            soft,
            cycle,
            spread,
            tilt,
            low,
            high,
            velocity,
            momentum,
            residual,
            threshold,
            stuck_low,
            stuck_high,
            counts,
        )


@njit(cache=True, inline="always")
def _continuous_row(
    i, g, row_term, col_term, cross, factor, g_min, g_max, velocity, momentum, counts
):
    """:func:`_update_row` for a device that takes its change whole (no pulses, levels,
    spread, tilt, own bounds, faults or accumulator), the branches that do not apply
    taken out so the loop over a row vectorises: the same operations in the same order,
    so the same bits."""
    accumulates = velocity.shape[0] > 0
    row = row_term[i]
    asked = clipped = 0
    for j in range(g.shape[1]):
        delta = factor * (row + col_term[j] - 2.0 * cross[i, j])
        if accumulates:
            delta += momentum * velocity[i, j]
            if abs(delta) < VELOCITY_FLOOR:
                delta = 0.0
            velocity[i, j] = delta
        wanted = g[i, j] + delta
        new = min(max(wanted, g_min), g_max)
        g[i, j] = new
        asked += delta != 0.0
        clipped += (delta != 0.0) and new != wanted
    counts[i, 0] = asked
    counts[i, 1] = 0
    counts[i, 2] = clipped
    counts[i, 3] = 0


@njit(cache=True, parallel=True)
def _continuous_parallel(
    g, row_term, col_term, cross, factor, g_min, g_max, velocity, momentum, counts
):
    for i in prange(g.shape[0]):
        _continuous_row(
            i, g, row_term, col_term, cross, factor, g_min, g_max, velocity, momentum, counts
        )


@njit(cache=True)
def _continuous_serial(
    g, row_term, col_term, cross, factor, g_min, g_max, velocity, momentum, counts
):
    for i in range(g.shape[0]):
        _continuous_row(
            i, g, row_term, col_term, cross, factor, g_min, g_max, velocity, momentum, counts
        )


def ep_update(
    g: np.ndarray,
    row_term: np.ndarray,
    col_term: np.ndarray,
    cross: np.ndarray,
    factor: float,
    g_min: float,
    g_max: float,
    step: float | None,
    stochastic: bool = False,
    seed: int = -1,
    pulses: tuple[float, float, bool, float] | None = None,
    spread: np.ndarray | None = None,
    bounds: tuple[np.ndarray, np.ndarray] | None = None,
    parallel: bool = True,
    velocity: np.ndarray | None = None,
    momentum: float = 0.0,
    stuck: tuple[np.ndarray, np.ndarray] | None = None,
    residual: np.ndarray | None = None,
    threshold: float = 1.0,
    tilt: np.ndarray | None = None,
) -> UpdateCount:
    """Apply the EP update to crossbar ``g`` (rows, cols) in place (see module docs); return
    how many devices were asked to move, rounded to no pulse and clipped (module docs).

    ``spread`` (rows, cols) scales each device's step, ``tilt`` (rows, cols) its up steps
    by ``max(1 + tilt, 0)`` and its down steps by ``max(1 - tilt, 0)``;
    ``bounds = (g_lo, g_hi)``, each (rows, cols) in S, are each device's own range (else
    ``[g_min, g_max]`` for all).
    ``velocity`` (rows, cols, S), with ``momentum``: heavy-ball momentum (Polyak 1964), each
    device asked to move by ``v <- momentum v + factor (R_i + C_j - 2 X_ij)`` (``v``
    updated in place) instead of the bare change; the device model then programs ``v``.
    ``stuck = (at_min, at_max)``, boolean (rows, cols): the stuck devices, left out of the
    counts (their chip puts them back; the kernel moves them as any other).
    ``residual`` (rows, cols, S): each device's accumulator (module docs), updated in
    place, with its ``threshold`` in nominal steps (1: mixed precision; 0.5: rounded to the
    nearest step, the rounding error carried); ``stochastic`` is then not used.
    ``parallel``: rows on Numba's threads (the serial twin gives the same bits)."""
    rows, cols = g.shape
    if row_term.shape != (rows,) or col_term.shape != (cols,) or cross.shape != g.shape:
        raise ValueError(
            f"shapes do not fit crossbar {g.shape}: rows {row_term.shape}, "
            f"columns {col_term.shape}, cross {cross.shape}"
        )
    if g.dtype != np.float64 or not g.flags.c_contiguous:
        raise ValueError("conductances must be a C-contiguous float64 array")
    empty = np.zeros((0, 0))
    low, high = (empty, empty) if bounds is None else bounds
    named = (
        ("spread", spread),
        ("tilt", tilt),
        ("g_lo", low),
        ("g_hi", high),
        ("velocity", velocity),
        ("residual", residual),
    )
    for name, array in named:
        if array is None or array is empty:
            continue
        if array.shape != g.shape or array.dtype != np.float64 or not array.flags.c_contiguous:
            raise ValueError(f"{name}: must be a C-contiguous float64 array of shape {g.shape}")
    if not 0.5 <= threshold <= 1.0:
        raise ValueError(f"threshold: must be in [0.5, 1] nominal steps (got {threshold})")
    stuck_low, stuck_high = (_NO_FAULTS, _NO_FAULTS) if stuck is None else stuck
    for name, mask in (("stuck at g_min", stuck_low), ("stuck at g_max", stuck_high)):
        if mask is not _NO_FAULTS and (mask.shape != g.shape or mask.dtype != np.bool_):
            raise ValueError(f"{name}: must be a boolean array of shape {g.shape}")
    counts = np.zeros((rows, 4), dtype=np.int64)  # per row: threads never share a counter
    up, down, soft, cycle = pulses if pulses is not None else (0.0, 0.0, False, 0.0)
    # Small arrays (bias columns, a 100 x 10 readout) finish before threads would wake.
    threads = parallel and g.size >= PARALLEL_MIN_DEVICES
    terms = (
        g,
        np.ascontiguousarray(row_term, dtype=np.float64),
        np.ascontiguousarray(col_term, dtype=np.float64),
        np.ascontiguousarray(cross, dtype=np.float64),
        float(factor),
        float(g_min),
        float(g_max),
    )
    plain = step is None and pulses is None and spread is None and tilt is None and bounds is None
    if plain and residual is None and stuck_low is _NO_FAULTS:  # a continuous device
        fast = _continuous_parallel if threads else _continuous_serial
        fast(*terms, empty if velocity is None else velocity, float(momentum), counts)
    else:
        key = np.uint64(_scramble(np.uint64((max(int(seed), 0) * int(_GOLDEN) + 1) % 2**64)))
        kernel = _ep_update_parallel if threads else _ep_update_serial
        kernel(
            *terms,
            0.0 if step is None else float(step),
            bool(stochastic),
            key,
            float(up),
            float(down),
            bool(soft),
            float(cycle),
            empty if spread is None else spread,
            empty if tilt is None else tilt,
            low,
            high,
            empty if velocity is None else velocity,
            float(momentum),
            empty if residual is None else residual,
            float(threshold),
            stuck_low,
            stuck_high,
            counts,
        )
    asked, unmoved, clipped, programmed = (int(n) for n in counts.sum(axis=0))
    return UpdateCount(asked, unmoved, clipped, programmed)


def kernel_update(
    g: np.ndarray,
    change: tuple[np.ndarray, np.ndarray, np.ndarray, float],
    card: ResistorCard,
    rng: np.random.Generator,
    own: tuple[Bounds, np.ndarray | None, np.ndarray | None] = (None, None, None),
    **options: Any,
) -> Any:
    """Move devices ``g`` (C-contiguous, rows x columns, in place) of ``card`` by
    ``change = (rows, cols, cross, factor)``, ``factor (rows_i + cols_j - 2 cross_ij)``,
    through the Numba update kernel (:func:`neuroemu.kernels.update.ep_update`: the
    device model of this module), with the devices' ``own`` bounds, step scales and
    imbalances; the kernel's draws are seeded from ``rng`` when the card draws
    (stochastic rounding without an accumulator, cycle noise). ``options`` as the kernel
    takes them (velocity, momentum, stuck, residual, threshold). Returns its counts
    ``(asked, unmoved, clipped, pulses)``."""
    p = card.pulses
    pulses = None if p is None else (p.up, p.down_fraction, p.soft_bounds, p.cycle_noise)
    quantised = card.level_step is not None or p is not None
    carries = options.get("residual") is not None
    stochastic = quantised and card.rounding == "stochastic" and not carries
    draws = stochastic or (pulses is not None and pulses[3] > 0)
    seed = int(rng.integers(2**31)) if draws else -1
    bounds, spread, tilt = own
    rows, cols, cross, factor = change
    return ep_update(
        g,
        rows,
        cols,
        cross,
        factor,
        card.g_min,
        card.g_max,
        card.level_step,
        stochastic,
        seed,
        pulses,
        spread,
        bounds,
        tilt=tilt,
        **options,
    )


def program_half(
    g: np.ndarray,
    half: tuple[slice, ...],
    request: np.ndarray,
    card: ResistorCard,
    rng: np.random.Generator,
    spread: np.ndarray | None,
    bounds: Bounds,
    tilt: np.ndarray | None,
) -> np.ndarray:
    """SET ``request`` (S, >= 0) into ``g[half]`` in place through :func:`ep_update` (the
    device model of :func:`neuroemu.models.pairs._program`, with the kernel's own
    counter-based draws seeded from ``rng``), a strided half through a copy; return its
    counts ``[asked, unmoved, clipped, pulses]`` of the half (each pair asks one device at
    most, so they count pairs)."""
    view = g[half]
    work = view if view.flags.c_contiguous else np.ascontiguousarray(view)

    def part(a: np.ndarray | None) -> np.ndarray | None:
        return None if a is None else np.ascontiguousarray(a[half])

    own = None
    if bounds is not None:
        own = (np.ascontiguousarray(bounds[0][half]), np.ascontiguousarray(bounds[1][half]))
    rows, cols = work.shape
    change = (np.zeros(rows), np.zeros(cols), np.multiply(request, -0.5), 1.0)
    counts = kernel_update(work, change, card, rng, (own, part(spread), part(tilt)))
    if work is not view:
        view[...] = work
    return np.asarray(counts, dtype=np.int64)
