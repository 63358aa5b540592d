"""What a chip lets others see of its state, and the state it can save and restore.

A chip's conductances, momentum velocities, read-noise pool and drift clock are its own:
they change only through its methods (:class:`~neuroemu.chip.base.BaseChip`), which keep
every cache in step. Others read them through :class:`ReadOnlyArray` views, which refuse
writes with a message that says what to call instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError


class ReadOnlyArray(np.ndarray):
    """A read-only view of one of a chip's arrays (S).

    Reading, slicing and arithmetic work as on any array (arithmetic gives plain arrays);
    writing into it raises :class:`~neuroemu.errors.InputError`: a chip's conductances
    change through ``chip.set_conductances(...)`` or ``chip.load_state(...)``, which check
    the values and keep the chip's caches in step. A copy (``np.array(view)``,
    ``view.copy()``) is an ordinary array to change at will.
    """

    def __setitem__(self, key: Any, value: Any) -> None:
        if not self.flags.writeable:
            raise InputError(_REFUSAL)
        super().__setitem__(key, value)

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        out = kwargs.get("out")
        if out is not None:
            for target in out:
                if isinstance(target, ReadOnlyArray) and not target.flags.writeable:
                    raise InputError(_REFUSAL)
            kwargs["out"] = tuple(_plain(a) for a in out)
        return getattr(ufunc, method)(*[_plain(a) for a in inputs], **kwargs)

    def copy(self, order: Any = "C") -> np.ndarray:  # type: ignore[override]
        return np.array(self, order=order, copy=True)

    def _refuse(self, *args: Any, **kwargs: Any) -> None:
        if not self.flags.writeable:
            raise InputError(_REFUSAL)

    def fill(self, value: Any) -> None:
        self._refuse()
        super().fill(value)

    def sort(self, *args: Any, **kwargs: Any) -> None:
        self._refuse()
        super().sort(*args, **kwargs)

    def put(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        self._refuse()
        super().put(*args, **kwargs)

    def setflags(self, write: Any = None, align: Any = None, uic: Any = None) -> None:
        if write:
            raise InputError(_REFUSAL)
        super().setflags(write=write, align=align, uic=uic)


_REFUSAL = (
    "a chip's arrays are read-only views: change conductances with "
    "chip.set_conductances(...) or chip.load_state(...)"
)


def _plain(a: Any) -> Any:
    return a.view(np.ndarray) if isinstance(a, ReadOnlyArray) else a


def read_only(array: np.ndarray) -> ReadOnlyArray:
    """A read-only view of ``array`` (which stays writable for its owner)."""
    view = array.view(ReadOnlyArray)
    view.flags.writeable = False
    return view


def frozen(array: np.ndarray | None) -> Any:
    """``array`` itself, made read-only (for arrays fixed when the chip is built)."""
    if array is not None:
        array.flags.writeable = False
    return array


@dataclass
class ChipState:
    """What training changes in a chip: what run files keep and ``--resume`` restores.

    Attributes
    ----------
    conductances
        One array per device array (crossbars, input side first; on an asymmetric leaky
        chip the feedback arrays follow the forward ones), in S.
    biases
        One bias conductance array per free layer, in S.
    velocities
        With momentum: each device's velocity (S), one array per device array in the
        order of ``conductances`` then ``biases``; ``None`` when nothing moved with
        momentum.
    residuals
        With an accumulator scheme: each device's accumulator (S), in the same order; ``None``
        when nothing was trained with it.
    fast
        Trained by Tiki-Taka: each fast device's distance from its symmetry point,
        ``G_fast - G*`` (S), in the same order; ``None`` when nothing was trained so.
    """

    conductances: list[np.ndarray]
    biases: list[np.ndarray]
    velocities: list[np.ndarray] | None = None
    residuals: list[np.ndarray] | None = None
    fast: list[np.ndarray] | None = None

    @property
    def arrays(self) -> list[np.ndarray]:
        """Every conductance array: crossbars, then biases."""
        return [*self.conductances, *self.biases]


@dataclass
class DeviceUpdate:
    """A change asked of every device ``(i, j)`` of one device array (S):

        dG_ij = factor * (rows_i + cols_j - 2 cross_ij)

    ``index`` names the array in the chip's :meth:`~neuroemu.chip.base.BaseChip.device_arrays`
    order (crossbars, then biases). The device model decides what the device makes of it
    (bounds, levels, pulses, noise).
    """

    index: int
    rows: np.ndarray
    cols: np.ndarray
    cross: np.ndarray
    factor: float


@dataclass(frozen=True)
class UpdateCounts:
    """What the device models made of the updates a chip was asked for, since its counts
    were last taken (:meth:`~neuroemu.chip.base.BaseChip.take_update_counts`): per device
    array (``names``, in :meth:`~neuroemu.chip.base.BaseChip.device_arrays` order), the
    devices asked to move, of them those whose change rounded to no pulse (``unmoved``) and
    those cut at a bound (``clipped``), summed over updates (a device asked at every one of
    ``n`` updates counts ``n`` times), and the programming ``pulses`` applied; stuck
    devices are never counted (:mod:`neuroemu.kernels.update`). Arrays trained as pairs
    count pairs, not devices, and their ``refreshed`` pairs (``pairs``: their pairs, 0 for
    an array not trained so), and the ``programming_energy`` (J) of the pulses, RESETs
    included, from the cards' ``pulse_energy`` and ``reset_energy`` (``None`` when an array
    that took pulses has a card without them); the ``reads`` of devices by the programming
    circuit (refreshes of pairs, verified writes, Tiki-Taka transfers) and their
    ``read_energy`` (J) from the cards' ``read_energy`` (``None`` when there were none, or
    an array that was read has a card without it)."""

    names: tuple[str, ...]
    asked: tuple[int, ...]
    unmoved: tuple[int, ...]
    clipped: tuple[int, ...]
    pulses: tuple[int, ...] = ()
    pulsed_devices: tuple[int, ...] = ()
    refreshed: tuple[int, ...] = ()
    pairs: tuple[int, ...] = ()
    programming_energy: float | None = None
    reads: tuple[int, ...] = ()
    read_energy: float | None = None

    @property
    def refreshes_per_pair(self) -> float | None:
        """Refreshes per pair of devices (training by pairs: :mod:`neuroemu.models.pairs`),
        over the arrays trained as pairs; ``None`` when none was."""
        pairs = sum(self.pairs)
        return sum(self.refreshed) / pairs if pairs else None

    @property
    def pulses_per_device(self) -> float | None:
        """The programming pulses (whole level steps or pulses) per device, over the arrays
        whose devices take pulses (``pulsed_devices``: their device counts, 0 for an array
        of continuous devices); ``None`` for a chip without such arrays."""
        devices = sum(self.pulsed_devices)
        return sum(self.pulses) / devices if devices else None

    @property
    def reads_per_device(self) -> float | None:
        """The reads by the programming circuit per device, over the same devices as
        :attr:`pulses_per_device`; ``None`` without such devices."""
        devices = sum(self.pulsed_devices)
        return sum(self.reads) / devices if devices else None

    @property
    def total_asked(self) -> int:
        return sum(self.asked)

    @property
    def unmoved_fraction(self) -> float:
        """Of every device asked to move, the fraction that rounded to no pulse (0 when
        none was asked)."""
        return sum(self.unmoved) / max(self.total_asked, 1)

    @property
    def clipped_fraction(self) -> float:
        """Of every device asked to move, the fraction cut at a bound (0 when none was
        asked)."""
        return sum(self.clipped) / max(self.total_asked, 1)

    def fractions(self, kind: str) -> dict[str, float]:
        """Each array's fraction of its asked devices that were ``kind`` (``"unmoved"`` or
        ``"clipped"``), for the arrays asked anything."""
        counts = {"unmoved": self.unmoved, "clipped": self.clipped}[kind]
        return {
            name: n / asked
            for name, n, asked in zip(self.names, counts, self.asked, strict=True)
            if asked > 0
        }


@dataclass
class DriftClock:
    """A chip as programmed onto its devices once: the conductances programming left (S,
    read at ``t0``), each device's drift exponent, and the time (s) since programming."""

    programmed: list[np.ndarray]
    exponents: list[np.ndarray]
    time: float | None = None
