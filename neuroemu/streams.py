"""The named random streams of a chip, every one derived from the chip's seed.

All randomness flows from one seed through ``numpy.random.Generator``. Each use draws from
a stream of its own, so that no use changes another's draws: adding stuck devices to a
card changes nothing else of a run, and a run resumed after epoch ``e`` continues exactly
as an uninterrupted one. A stream is ``numpy.random.default_rng(key)`` with the key below
(``seed`` alone for programming, a list ``[seed, ...]`` for the rest; ``E`` is the epoch,
counted from 1).

==================  ==================  ===============================================
stream              key                 draws
==================  ==================  ===============================================
``program``         ``seed``            first conductances of every array, in order
``faults``          ``[seed, 3]``       which devices are stuck
``step_spread``     ``[seed, 4]``       each device's step scale
``range_spread``    ``[seed, 0, 5]``    each device's own range
``up_down_spread``  ``[seed, 0, 8]``    each device's imbalance of up and down steps
``fast_devices``    ``[seed, 0, 9]``    the range, step scale and imbalance of each
                                        fast device (``training.scheme: tiki-taka``)
``read_pool``       ``[seed, 0, 7]``    the pool of normal draws that reads take windows of
``inference``       ``[seed, 6]``       reads of an inference pass (read noise)
``aging``           ``[seed, 2]``       programming noise, drift exponents and reads
                                        after programming
``epoch``           ``[seed, 1, E]``    mini-batch order, signs of beta
``epoch_pulses``    ``[seed, 1, E, 1]`` the devices' programming draws in training
                                        (stochastic rounding, cycle-to-cycle noise)
``epoch_reads``     ``[seed, 1, E, 2]`` reads in training (read noise)
``epoch_augment``   ``[seed, 1, E, 3]`` flips and moves of the training images
``epoch_dropout``   ``[seed, 1, E, 4]`` hidden nodes switched to ground
==================  ==================  ===============================================
"""

from __future__ import annotations

import numpy as np

#: The key of each stream after the seed (and, for the ``epoch`` streams, the epoch).
CHIP_STREAMS: dict[str, tuple[int, ...]] = {
    "faults": (3,),
    "step_spread": (4,),
    "up_down_spread": (0, 8),
    "fast_devices": (0, 9),
    "range_spread": (0, 5),
    "read_pool": (0, 7),
    "inference": (6,),
    "aging": (2,),
}
EPOCH_STREAMS: dict[str, tuple[int, ...]] = {
    "epoch": (),
    "epoch_pulses": (1,),
    "epoch_reads": (2,),
    "epoch_augment": (3,),
    "epoch_dropout": (4,),
}
#: Every epoch stream's key starts ``[seed, 1, epoch]``.
TRAINING = 1
#: The seed of a sweep's random axis values (``random:`` axes), fixed so that a sweep spec
#: names the same points every time it is read.
SWEEP_AXES_SEED = 0


def stream(seed: int, name: str, epoch: int | None = None) -> np.random.Generator:
    """The generator of stream ``name`` (see the table above) of a chip with ``seed``;
    ``epoch`` (from 1) for the ``epoch`` streams."""
    if name == "program":
        return np.random.default_rng(seed)
    if name in CHIP_STREAMS:
        if epoch is not None:
            raise ValueError(f"stream {name}: takes no epoch")
        return np.random.default_rng([seed, *CHIP_STREAMS[name]])
    if name in EPOCH_STREAMS:
        if epoch is None:
            raise ValueError(f"stream {name}: needs the epoch")
        return np.random.default_rng([seed, TRAINING, epoch, *EPOCH_STREAMS[name]])
    known = ["program", *CHIP_STREAMS, *EPOCH_STREAMS]
    raise ValueError(f"stream {name!r}: unknown (known: {', '.join(known)})")
