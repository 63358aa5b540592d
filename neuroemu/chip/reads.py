"""One read of a chip's device arrays, with read noise.

A chip read noisily (:meth:`neuroemu.chip.base.BaseChip.reading`) sees its arrays anew at
every read: each device of a card with ``read_noise`` reads
``max(G + (relative G + absolute) z, 0)`` (:func:`neuroemu.models.nonideal.read`), computed
in one fused pass (:func:`neuroemu.kernels.read.noisy_read`) with the normal draws ``z``
taken from a pool drawn once per chip.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..kernels.read import noisy_read
from ..models.nonideal import read
from ..spec.cards import ResistorCard


def read_arrays(
    arrays: Sequence[np.ndarray],
    cards: Sequence[ResistorCard],
    stuck: Sequence[tuple[np.ndarray, np.ndarray] | None],
    pool: np.ndarray,
    rng: np.random.Generator,
    buffers: dict[int, np.ndarray] | None = None,
) -> list[np.ndarray]:
    """The conductances (S) one read of the device ``arrays`` sees, one array each.

    Every device of a card with ``read_noise`` reads its conductance with noise, except
    stuck devices (``stuck[k] = (flat indices, conductances)`` of array ``k``, or ``None``),
    which read their stuck conductance. Arrays of cards without read noise are returned
    themselves, not copies (read them, do not write to them).

    The normal draws of a read are a window of ``pool``
    (:func:`neuroemu.models.nonideal.normal_pool`), at an offset drawn from ``rng`` for each
    array: within a read every device's draw is independent of the others; a device's draws
    in two reads are independent unless the two offsets coincide (odds ``1 / pool.size``).
    A read then costs one pass over the noisy devices, stuck devices set in the same pass,
    instead of a fresh normal draw for each (several times as much). An array larger than
    the pool draws afresh.

    ``buffers``: write array ``k``'s read into ``buffers[k]`` (made on first use), which the
    next read with the same buffers overwrites (a read lives until the next read).
    """
    out = []
    for index, (g, card) in enumerate(zip(arrays, cards, strict=True)):
        noise = card.read_noise
        if noise is None:
            out.append(g)  # read exactly: stuck devices are at their values already
            continue
        buffer = None
        if buffers is not None:
            buffer = buffers.get(index)
            if buffer is None or buffer.shape != g.shape:
                buffer = buffers[index] = np.empty(g.shape)
        if g.size > pool.size:  # larger than the pool: draw afresh
            values = read(g, card, rng, buffer)
            held = stuck[index]
            if held is not None:
                values.reshape(-1)[held[0]] = held[1]
            out.append(values)
            continue
        start = int(rng.integers(pool.size - g.size + 1))
        z = pool[start : start + g.size].reshape(g.shape)
        if buffer is None:
            buffer = np.empty(g.shape)
        out.append(noisy_read(g, z, noise.relative, noise.absolute, buffer, stuck[index]))
    return out
