"""What every chip has, and the one owner of its state.

A chip is the device arrays its spec describes, programmed from one seed
(:mod:`neuroemu.streams`), with each device's own range, step and faults. Its state, the
conductances, the momentum velocities, the read-noise pool and the drift clock, changes
only through the methods of :class:`BaseChip`, so the arrays the engine lays out from them
are never stale:

- ``chip.conductances`` and ``chip.bias_conductance`` are read-only views
  (:class:`~neuroemu.chip.state.ReadOnlyArray`);
- :meth:`BaseChip.set_conductances` writes new values, checked (shapes, finite, ``>= 0``,
  each device's range); :meth:`BaseChip.state` and :meth:`BaseChip.load_state` save and
  restore everything training changes (run files and ``--resume`` use them);
- :meth:`BaseChip.update_devices` moves devices through their cards' models (learning),
  counting the devices asked to move, rounded to no pulse and clipped at a bound
  (:attr:`BaseChip.update_counts`, :meth:`BaseChip.take_update_counts`);
- :meth:`BaseChip.reading` reads the arrays with read noise;
- :meth:`BaseChip.programmed` and :meth:`BaseChip.drift_to` program the devices once and
  let them drift (inference after programming).

Each family of chips (resistive networks, leaky neurons) registers the spec it is built
from (:func:`register_family`), and :func:`build_chip` looks the family up.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np

from ..engine.states import as_array
from ..errors import InputError, brief
from ..kernels.update import kernel_update, program_half
from ..memory import check_memory
from ..models.nonideal import drift_exponents, drifted, normal_pool
from ..models.nonideal import program as program_noisily
from ..models.pairs import Refresh
from ..models.update import (
    Bounds,
    fit_to_range,
    range_bounds,
    step_spread,
    symmetry_point,
    up_down_tilt,
)
from ..spec.cards import ResistorCard
from ..spec.loader import LoadedChip, chip_from_dict, load_chip
from ..spec.resistive import Initialisation
from ..streams import stream
from ..units import format_quantity
from .reads import read_arrays
from .state import (
    ChipState,
    DeviceUpdate,
    DriftClock,
    ReadOnlyArray,
    UpdateCounts,
    frozen,
    read_only,
)

if TYPE_CHECKING:
    from ..engine.states import Equilibrium
    from ..models.pairs import Halves


@dataclass(frozen=True)
class FastDevices:
    """The fast devices of one array trained by Tiki-Taka (``training.scheme:
    tiki-taka``): each device's own range, step scale and up/down imbalance (as the array's
    own devices have theirs; :mod:`neuroemu.models.update`) and its symmetry point ``G*``
    (S, :func:`~neuroemu.models.update.symmetry_point`), which the transfer reads it
    against."""

    bounds: Bounds
    spread: np.ndarray | None
    tilt: np.ndarray | None
    reference: np.ndarray


@dataclass(frozen=True)
class Crossbar:
    """A full array of devices between two layers: its name (``"input->hidden"``), card,
    and a read-only view of its conductances (S, rows = the presynaptic layer's nodes)."""

    name: str
    device: ResistorCard
    conductance: ReadOnlyArray

    @property
    def shape(self) -> tuple[int, int]:
        return self.conductance.shape  # type: ignore[return-value]


def program(
    init: Initialisation, device: ResistorCard, shape: tuple[int, ...], rng: np.random.Generator
) -> np.ndarray:
    """Draw initial conductances, clip them to the device range and, for a device with
    ``n_levels``, round them to the nearest level."""
    low = device.g_min if init.low is None else init.low
    if init.distribution == "uniform":
        assert init.high is not None  # the spec requires it
        g = rng.uniform(low, init.high, size=shape)
    elif init.distribution == "normal":
        assert init.mean is not None and init.std is not None  # the spec requires them
        g = rng.normal(init.mean, init.std, size=shape)
    else:
        g = np.full(shape, device.g_min if init.value is None else init.value)
    g = np.clip(g, device.g_min, device.g_max)
    step = device.level_step
    if step is not None:
        g = device.g_min + np.rint((g - device.g_min) / step) * step
    return g


ChipT = TypeVar("ChipT", bound="BaseChip")


class BaseChip:
    """What every chip has: device arrays programmed from one seed, their stuck devices and
    device-to-device spread, the input DAC, input checks, and the one owner of the state.

    A family (:class:`~neuroemu.chip.resistive.Chip`,
    :class:`~neuroemu.chip.leaky.LeakyChip`) programs its arrays with :meth:`_add_array`
    and :meth:`_add_bias` in the order of its seed's draws, then calls :meth:`_finish`.
    """

    #: The family's name, for lookups in registries (learning rules, reports); each family
    #: sets its own.
    family: ClassVar[str]

    # ------------------------------------------------------------------ memory
    #: Samples of one settle a chip's memory estimate allows for (a test pass's batch).
    MEMORY_BATCH = 256
    #: Bytes of the engine's arrays per sample and node of a settle (voltages, currents,
    #: sources, changes, a few phases' worth).
    BATCH_BYTES_PER_NODE = 64
    #: A settle of fewer bytes than this is not checked against the machine's memory.
    UNCHECKED_BYTES = 1 << 28

    @classmethod
    def array_shapes(cls, spec: Any) -> list[tuple[tuple[int, int], ResistorCard]]:
        """The shape and card of every device array a chip of ``spec`` holds, in the order
        of :meth:`device_arrays`; each family gives its own."""
        raise NotImplementedError

    @classmethod
    def node_count(cls, spec: Any) -> int:
        """Values per sample a settle of a chip of ``spec`` holds per array: its inputs and
        the nodes of every free layer."""
        return int(spec.inputs.size) + sum(int(layer.size) for layer in spec.layers)

    @classmethod
    def memory_needed(cls, spec: Any, batch: int = MEMORY_BATCH) -> int:
        """An estimate (bytes) of the memory a chip of ``spec`` takes, built and settling a
        batch of ``batch`` samples: per device its conductance and the engine's copy of it
        (float64), its own range (``range_spread``), step (``step_spread``) and up/down
        imbalance (``up_down_spread``), read buffer (``read_noise``), fault masks, momentum
        velocity and accumulator when it has them (Tiki-Taka: the fast devices too); two
        temporaries of the largest array (programming, updates); and the engine's arrays
        of the batch."""
        momentum = spec.training is not None and spec.training.momentum > 0
        accumulates = spec.training is not None and spec.training.scheme != "direct"
        fast = spec.training is not None and spec.training.scheme == "tiki-taka"
        total = largest = 0
        for shape, card in cls.array_shapes(spec):
            devices = int(shape[0]) * int(shape[1])
            per_device = 16 + 8 * momentum
            spread = 16 * (card.range_spread > 0) + 8 * (card.step_spread > 0)
            spread += 8 * (card.up_down_spread > 0)
            # Tiki-Taka: the fast devices' own draws and symmetry points, beside their state.
            per_device += spread * (1 + fast) + 8 * accumulates + 8 * fast
            per_device += 8 * (card.read_noise is not None)
            per_device += 2 * (card.stuck_at_min + card.stuck_at_max > 0)
            total += devices * per_device
            largest = max(largest, devices)
        return total + 16 * largest + batch * cls.node_count(spec) * cls.BATCH_BYTES_PER_NODE

    @classmethod
    def check_memory(cls, spec: Any) -> None:
        """Refuse a chip of ``spec`` that cannot fit in this machine's available memory
        (:meth:`memory_needed`), before anything is allocated."""
        devices = sum(int(s[0]) * int(s[1]) for s, _ in cls.array_shapes(spec))
        what = f"chip {spec.name} ({devices:.3g} devices, a settle of {cls.MEMORY_BATCH} samples)"
        check_memory(cls.memory_needed(spec), what)

    def check_batch(self, batch: int, name: str = "x") -> None:
        """Refuse a settle of ``batch`` samples whose arrays cannot fit in the memory this
        machine has available (checked only for large ones)."""
        needed = batch * self.node_count(self.spec) * self.BATCH_BYTES_PER_NODE
        if needed > self.UNCHECKED_BYTES:
            check_memory(needed, f"{name}: a settle of {batch} samples on chip {self.name}")

    # ------------------------------------------------------------------ construction
    def _begin(self, spec: Any, seed: int | None, source: LoadedChip | None) -> np.random.Generator:
        """Check the chip fits in memory; keep the spec, seed and source; return the
        generator the arrays are programmed from, in order (stream ``program``)."""
        self.check_memory(spec)
        self._spec = spec
        self._seed = spec.seed if seed is None else check_seed(seed)
        self._source = source
        self._arrays: list[np.ndarray] = []  # crossbars, then biases (device_arrays order)
        self._names: list[str] = []
        self._cards: list[ResistorCard] = []
        self._n_crossbars = 0
        return stream(self.seed, "program")

    def _add_array(self, name: str, card: ResistorCard, g: np.ndarray) -> None:
        """Add a programmed crossbar (before any bias)."""
        assert self._n_crossbars == len(self._arrays), "crossbars come before biases"
        self._arrays.append(np.ascontiguousarray(g, dtype=np.float64))
        self._names.append(name)
        self._cards.append(card)
        self._n_crossbars += 1

    def _add_bias(self, name: str, card: ResistorCard, g: np.ndarray) -> None:
        """Add a programmed bias array (after every crossbar)."""
        self._arrays.append(np.ascontiguousarray(g, dtype=np.float64))
        self._names.append(name)
        self._cards.append(card)

    def _finish(self) -> None:
        """Draw each device's own range, stuck devices and step spreads (each from its own
        stream of the seed), hold the programmed conductances to the devices' own ranges and
        apply the faults; called once every array is programmed."""
        n = self._n_crossbars
        range_rng = stream(self.seed, "range_spread")
        bounds = [range_bounds(g.shape, card, range_rng) for g, card in self._device_pairs()]
        self._bounds: list[Bounds] = [
            None if b is None else (frozen(b[0]), frozen(b[1])) for b in bounds
        ]
        for (g, card), own in zip(self._device_pairs(), self._bounds, strict=True):
            fit_to_range(g, card, own)
        self.faults = self._draw_faults()
        self._stuck = self._stuck_values()
        self._apply_faults()
        spread_rng = stream(self.seed, "step_spread")
        self._spread = [
            frozen(step_spread(g.shape, card, spread_rng)) for g, card in self._device_pairs()
        ]
        tilt_rng = stream(self.seed, "up_down_spread")
        self._tilt = [
            frozen(up_down_tilt(g.shape, card, tilt_rng)) for g, card in self._device_pairs()
        ]
        self.crossbar_bounds, self.bias_bounds = self._bounds[:n], self._bounds[n:]
        self.crossbar_spread, self.bias_spread = self._spread[:n], self._spread[n:]
        self._velocities: list[np.ndarray] | None = None
        self._residuals: list[np.ndarray] | None = None
        self._fast: list[np.ndarray] | None = None  # Tiki-Taka: G_fast - G* per device
        self._fast_devices: list[FastDevices] | None = None
        # Per device array: devices asked to move, rounded to no pulse, clipped; pulses;
        # pairs refreshed (training by pairs); reads by the programming circuit.
        self._update_counts = np.zeros((len(self._arrays), 6), dtype=np.int64)
        self._pairs = [0] * len(self._arrays)  # pairs per array, once trained by pairs
        self._clock: DriftClock | None = None
        self._reads: np.random.Generator | None = None
        self._read_pool = (
            normal_pool(stream(self.seed, "read_pool")) if self.reads_noisily else None
        )
        self._views()

    def _views(self) -> None:
        """The read-only views others see, and the caches (empty). The chip's own arrays
        are read-only too, but inside :meth:`_writing`, so that no view can be made writable
        again (numpy refuses to while the array it views is read-only)."""
        n = self._n_crossbars
        for g in self._owned():
            g.flags.writeable = False
        views = [read_only(g) for g in self._arrays]
        self.crossbars: tuple[Crossbar, ...] = tuple(
            Crossbar(name, card, view)
            for name, card, view in zip(self._names[:n], self._cards[:n], views[:n], strict=True)
        )
        self._conductance_views = tuple(views[:n])
        self._bias_views = tuple(views[n:])
        self._circuits: dict[Any, Any] = {}
        self._read_buffers: dict[int, np.ndarray] = {}
        self._current_read: list[np.ndarray] | None = None

    @contextmanager
    def _writing(self) -> Iterator[list[np.ndarray]]:
        """The chip's own arrays, writable inside the block (the chip's writes only); every
        cache is dropped after it."""
        for g in self._owned():
            g.flags.writeable = True
        try:
            yield self._arrays
        finally:
            for g in self._owned():
                g.flags.writeable = False
            self._changed()

    def _owned(self) -> list[np.ndarray]:
        """Every array of the chip's state: conductances, then velocities and accumulators
        (if any)."""
        return [
            *self._arrays,
            *(self._velocities or []),
            *(self._residuals or []),
            *(self._fast or []),
        ]

    def _device_pairs(self) -> list[tuple[np.ndarray, ResistorCard]]:
        return list(zip(self._arrays, self._cards, strict=True))

    # ------------------------------------------------------------------ faults
    def _draw_faults(self) -> list[tuple[np.ndarray, np.ndarray] | None]:
        """Per crossbar, the devices stuck at ``g_min`` and at ``g_max`` (boolean masks), or
        ``None`` without faults, drawn from stream ``faults``."""
        rng = stream(self.seed, "faults")
        faults: list[tuple[np.ndarray, np.ndarray] | None] = []
        for g, card in self._device_pairs()[: self._n_crossbars]:
            if card.stuck_at_min == 0 and card.stuck_at_max == 0:
                faults.append(None)
                continue
            u = rng.random(g.shape)
            low = u < card.stuck_at_min
            high = (u >= card.stuck_at_min) & (u < card.stuck_at_min + card.stuck_at_max)
            faults.append((frozen(low), frozen(high)))
        return faults

    def _stuck_values(self) -> list[tuple[np.ndarray, np.ndarray] | None]:
        """Per device array, its stuck devices as ``(flat indices, stuck conductances)``
        (S), each its own ``g_min`` or ``g_max`` (with ``range_spread``, its own bound), or
        ``None``; bias arrays have none. Flat indices are far cheaper to apply than masks."""
        stuck: list[tuple[np.ndarray, np.ndarray] | None] = []
        for card, fault, bounds in zip(self._cards, self.faults, self._bounds, strict=False):
            if fault is None:
                stuck.append(None)
                continue
            low, high = np.flatnonzero(fault[0]), np.flatnonzero(fault[1])
            if bounds is None:
                values = (np.full(low.size, card.g_min), np.full(high.size, card.g_max))
            else:
                values = (bounds[0].reshape(-1)[low], bounds[1].reshape(-1)[high])
            stuck.append((np.concatenate([low, high]), np.concatenate(values)))
        return stuck + [None] * (len(self._arrays) - len(stuck))

    def stuck_devices(self) -> list[tuple[np.ndarray, np.ndarray] | None]:
        """Per crossbar, its stuck devices as ``(flat indices, stuck conductances)`` (S), or
        ``None`` for a crossbar without faults."""
        return self._stuck[: self._n_crossbars]

    def _apply_faults(self) -> None:
        """Put every stuck device back at its stuck conductance (after any programming; the
        arrays writable, as inside :meth:`_writing`)."""
        for g, stuck in zip(self._arrays, self._stuck, strict=True):
            if stuck is not None:
                g.reshape(-1)[stuck[0]] = stuck[1]

    # ------------------------------------------------------------------ building
    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str], seed: int | None = None) -> Any:
        """Build the chip of a spec file (or of a library chip given by name): a
        :class:`~neuroemu.chip.resistive.Chip` for a resistive spec, a
        :class:`~neuroemu.chip.leaky.LeakyChip` for one with ``kind: leaky``."""
        if not isinstance(path, str | os.PathLike):
            raise InputError(
                f"path: expected a chip file or a library chip's name, got {brief(path)}"
            )
        loaded = load_chip(path)
        return build_chip(loaded.spec, seed=seed, source=loaded)

    @classmethod
    def from_dict(
        cls, data: dict[str, Any], seed: int | None = None, base: Path | None = None
    ) -> Any:
        """Build from a mapping shaped like a chip YAML (card names resolve in the library,
        or beside ``base``). As in a YAML file, every quantity carries its unit
        (``"5 uS"``; a bare ``5`` is refused)."""
        spec = chip_from_dict(data, "<dict>", base, need_units=True)
        return build_chip(spec, seed=seed)

    def copy(self: ChipT) -> ChipT:
        """An independent copy of the chip, its state included."""
        return copy.deepcopy(self)

    def __getstate__(self) -> dict[str, Any]:
        # Copies and pickles leave the views and caches out (__setstate__ makes them anew
        # over the copied arrays), and are not in the middle of a read.
        state = dict(self.__dict__)
        for key in (
            "crossbars",
            "_conductance_views",
            "_bias_views",
            "_circuits",
            "_read_buffers",
            "_current_read",
        ):
            state.pop(key, None)
        state["_reads"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._views()

    # ------------------------------------------------------------------ identity
    @property
    def spec(self) -> Any:
        """The validated spec the chip was built from (immutable)."""
        return self._spec

    @property
    def seed(self) -> int:
        """The seed every random stream of the chip derives from."""
        return self._seed

    @property
    def source(self) -> LoadedChip | None:
        """The file the spec was read from, with its exact text, or ``None``."""
        return self._source

    # ------------------------------------------------------------------ geometry
    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def n_inputs(self) -> int:
        """Inputs the chip takes per sample (pixels), before the +/- encoding."""
        return self.spec.inputs.size

    @property
    def n_outputs(self) -> int:
        """Classes the chip reads out (output nodes, or pairs of them when differential)."""
        return self.spec.n_classes

    @property
    def layer_sizes(self) -> list[int]:
        """Nodes of each free layer, hidden layers then the output layer."""
        return [layer.size for layer in self.spec.layers]

    @property
    def conductances(self) -> tuple[ReadOnlyArray, ...]:
        """The crossbars' conductances (S), input side first: read-only views."""
        return self._conductance_views

    @property
    def bias_conductance(self) -> tuple[ReadOnlyArray, ...]:
        """Each free layer's bias conductances (S): read-only views."""
        return self._bias_views

    @property
    def bias_devices(self) -> list[ResistorCard]:
        """The device card of each layer's bias array (its first crossbar's)."""
        return self._cards[self._n_crossbars :]

    @property
    def n_devices(self) -> int:
        return sum(g.size for g in self._arrays)

    def device_arrays(self) -> list[tuple[ReadOnlyArray, ResistorCard]]:
        """Every programmable array (read-only view) with its card: crossbars, then biases."""
        views = [*self.conductances, *self.bias_conductance]
        return list(zip(views, self._cards, strict=True))

    def device_bounds(self) -> list[Bounds]:
        """Each array's own device ranges ``(g_lo, g_hi)`` (or ``None``: the card's range),
        in the order of :meth:`device_arrays`."""
        return list(self._bounds)

    @property
    def velocities(self) -> tuple[ReadOnlyArray, ...] | None:
        """Each device's momentum velocity (S), in :meth:`device_arrays` order, as read-only
        views; ``None`` until training with momentum first moves a device."""
        if self._velocities is None:
            return None
        return tuple(read_only(v) for v in self._velocities)

    @property
    def residuals(self) -> tuple[ReadOnlyArray, ...] | None:
        """Each device's accumulator (S): the change asked of it and not
        yet programmed, in :meth:`device_arrays` order, as read-only views; ``None`` until
        training with an accumulator scheme (``mixed-precision``,
        ``nearest-carry``) first updates the chip."""
        if self._residuals is None:
            return None
        return tuple(read_only(r) for r in self._residuals)

    # ------------------------------------------------------------------ inputs
    def dac(self, x: np.ndarray) -> np.ndarray:
        """The inputs the input DAC produces: ``x`` rounded to ``2^bits - 1`` steps of
        [0, 1] with ``inputs.dac_bits``, else ``x`` itself."""
        bits = self.spec.inputs.dac_bits
        if bits is None:
            return x
        levels = 2**bits - 1
        return (np.rint(x * levels) / levels).astype(x.dtype, copy=False)

    def check_inputs(self, x: Any, name: str = "x") -> np.ndarray:
        """``x`` as an array of shape (batch, n_inputs) with values in [0, 1]: float32 and
        float64 arrays are kept as they are (no copy), anything else becomes float64."""
        try:
            x = np.asarray(x)
        except ValueError:  # a ragged list
            raise InputError(
                f"{name}: expected an array of numbers, got rows of different lengths"
            ) from None
        if x.dtype.kind not in "biuf":
            raise InputError(f"{name}: expected real numbers in [0, 1], got {x.dtype} values")
        if x.dtype not in (np.float32, np.float64):
            x = x.astype(np.float64)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != self.n_inputs:
            raise InputError(
                f"{name}: expected shape (batch, {self.n_inputs}) for chip {self.name}, "
                f"got {x.shape}"
            )
        if x.size:
            low, high = x.min(), x.max()  # NaN propagates into both
            if np.isnan(low) or np.isnan(high):
                raise InputError(f"{name}: contains NaN values")
            if low < 0.0 or high > 1.0:
                raise InputError(f"{name}: values must lie in [0, 1] (got {low:g} to {high:g})")
        return x

    def check_labels(self, y: Any, name: str = "labels") -> np.ndarray:
        """``y`` as a 1-D array of integer classes that fit the chip's outputs."""
        y = np.asarray(y)
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
            raise InputError(f"{name}: expected a 1-D array of integer class labels")
        if y.size and (y.min() < 0 or y.max() >= self.n_outputs):
            raise InputError(
                f"{name}: classes {y.min()}..{y.max()} do not fit chip {self.name}'s "
                f"{self.n_outputs} outputs"
            )
        return y

    # ------------------------------------------------------------------ state
    def set_conductances(
        self,
        conductances: Iterable[Any] | None = None,
        biases: Iterable[Any] | None = None,
    ) -> None:
        """Program new conductances (S): one array per crossbar (``conductances``, shaped
        like ``chip.conductances``) and/or per bias array (``biases``); ``None`` keeps that
        part as it is. Every value must be finite, ``>= 0`` and within its device's range
        (its own with ``range_spread``), else nothing is written and
        :class:`~neuroemu.errors.InputError` says which array and value is at fault. Stuck
        devices keep their stuck conductance whatever is written to them."""
        new = list(self._arrays)
        n = self._n_crossbars
        if conductances is not None:
            new[:n] = self._checked("conductances", _arrays(conductances, "conductances"), 0, n)
        if biases is not None:
            new[n:] = self._checked("biases", _arrays(biases, "biases"), n, len(self._arrays))
        self._write(new)

    def state(self) -> ChipState:
        """A copy of everything training changes (see :class:`~neuroemu.chip.state.ChipState`)."""
        n = self._n_crossbars
        arrays = [g.copy() for g in self._arrays]
        velocities = None if self._velocities is None else [v.copy() for v in self._velocities]
        residuals = None if self._residuals is None else [r.copy() for r in self._residuals]
        fast = None if self._fast is None else [a.copy() for a in self._fast]
        return ChipState(arrays[:n], arrays[n:], velocities, residuals, fast)

    def load_state(self, state: ChipState) -> None:
        """Restore a state saved by :meth:`state` (or read from a run file), checked as
        :meth:`set_conductances` checks conductances; velocities, accumulators and fast
        arrays must match the arrays' shapes and be finite."""
        if not isinstance(state, ChipState):
            raise InputError(f"state: expected a ChipState (chip.state()), got {brief(state)}")
        n = self._n_crossbars
        new = self._checked("conductances", _arrays(state.conductances, "conductances"), 0, n)
        new += self._checked("biases", _arrays(state.biases, "biases"), n, len(self._arrays))
        velocities = self._digital(state.velocities, "velocities")
        residuals = self._digital(state.residuals, "residuals")
        fast = self._digital(state.fast, "fast")
        self._write(new)
        for v in [*(velocities or []), *(residuals or []), *(fast or [])]:
            v.flags.writeable = False
        self._velocities, self._residuals, self._fast = velocities, residuals, fast

    def _digital(self, arrays: Any, what: str) -> list[np.ndarray] | None:
        """Per-device memory (velocities, accumulators, fast arrays) of a state, as float64
        copies: one finite array per device array, of its shape; ``None`` stays ``None``."""
        if arrays is None:
            return None
        copies = [as_array(a, f"{what}[{k}]", "S") for k, a in enumerate(_arrays(arrays, what))]
        shapes = [g.shape for g in self._arrays]
        if [a.shape for a in copies] != shapes:
            raise InputError(
                f"{what}: expected arrays of shapes {shapes}, got {[a.shape for a in copies]}"
            )
        if not all(np.all(np.isfinite(a)) for a in copies):
            raise InputError(f"{what}: contain NaN or infinite values")
        return copies

    def _checked(self, what: str, arrays: list[Any], first: int, stop: int) -> list[np.ndarray]:
        """``arrays`` as float64 copies, checked against device arrays ``first..stop-1``."""
        if len(arrays) != stop - first:
            raise InputError(f"{what}: expected {stop - first} arrays, got {len(arrays)}")
        out = []
        for offset, value in enumerate(arrays):
            index = first + offset
            name = f"{what}[{offset}] ({self._names[index]})"
            g = as_array(value, name, "S")
            if g.shape != self._arrays[index].shape:
                raise InputError(
                    f"{name}: expected shape {self._arrays[index].shape}, got {g.shape}"
                )
            if not np.all(np.isfinite(g)):
                raise InputError(f"{name}: contains NaN or infinite values")
            card, bounds = self._cards[index], self._bounds[index]
            low, high = (card.g_min, card.g_max) if bounds is None else bounds
            below, above = g < low, g > high
            if np.any(below) or np.any(above):
                at = np.unravel_index(int(np.argmax(below | above)), g.shape)
                bound = np.broadcast_to(low if below[at] else high, g.shape)[at]
                side = "below the device's g_min" if below[at] else "above the device's g_max"
                raise InputError(
                    f"{name}: {format_quantity(float(g[at]), 'S')} at {tuple(int(i) for i in at)} "
                    f"is {side} ({format_quantity(float(bound), 'S')}; device {card.name})"
                )
            out.append(g)
        return out

    def _write(self, arrays: list[np.ndarray]) -> None:
        """Write checked arrays into the chip's own (the views stay valid), hold the stuck
        devices and drop every cache. Conductances written are programmed anew: a drift
        clock (:meth:`programmed`) no longer holds."""
        with self._writing() as own_arrays:
            for own, new in zip(own_arrays, arrays, strict=True):
                if new is not own:
                    own[...] = new
            self._apply_faults()
        self._clock = None

    def _changed(self) -> None:
        """The conductances changed: every array laid out from them, and the current read
        of them, is stale."""
        self._circuits.clear()
        self._current_read = None

    # ------------------------------------------------------------------ learning
    def update_devices(
        self,
        updates: Iterable[DeviceUpdate],
        rng: np.random.Generator,
        momentum: float = 0.0,
        *,
        accumulate: float | None = None,
        pairs: Refresh | float | None = None,
        transfer: float | None = None,
    ) -> None:
        """Move devices as :class:`~neuroemu.chip.state.DeviceUpdate` asks, one array at a
        time in the order given, each through its card's model (bounds, levels, pulses,
        cycle noise; :func:`neuroemu.kernels.update.ep_update`) within its own range and
        with its own step spread; the kernel's random stream is seeded from ``rng`` for each
        array whose card draws (stochastic rounding, cycle noise). With ``momentum`` > 0
        every device moves by its velocity ``v <- momentum v + change`` instead. With
        ``accumulate``, a threshold in nominal steps (1: mixed precision; 0.5: rounded to
        the nearest step with the rounding error carried), every device with levels or
        pulses adds the change to its accumulator and takes the whole pulses it holds past
        the threshold, keeping the rest (:mod:`~neuroemu.kernels.update`; the card's
        ``rounding`` is then not used). With ``pairs``, a
        :class:`~neuroemu.models.pairs.Refresh` (or a refresh level, a fraction of the
        range, refreshed open loop), every array moves as pairs of devices that are only potentiated
        (:mod:`neuroemu.models.pairs`; the arrays' pairs are :meth:`pair_halves`), with
        ``accumulate`` through an accumulator per pair. With ``transfer``, a rate in (0, 1],
        every array learns by Tiki-Taka (:meth:`_update_transfer`). Stuck
        devices do not move. Each array's devices (or pairs) asked to move, rounded to no
        pulse and clipped, its pulses and its refreshed pairs, add to
        :attr:`update_counts`."""
        updates = list(updates)
        for u in updates:
            if not isinstance(u, DeviceUpdate) or not 0 <= u.index < len(self._arrays):
                raise InputError(
                    f"updates: expected DeviceUpdate of arrays 0..{len(self._arrays) - 1}, "
                    f"got {brief(u)}"
                )
        if accumulate is not None and not (
            isinstance(accumulate, float | int)
            and not isinstance(accumulate, bool)
            and 0.5 <= accumulate <= 1.0
        ):
            raise InputError(
                f"accumulate: expected a threshold in [0.5, 1] nominal steps or None, "
                f"got {brief(accumulate)}"
            )
        if pairs is not None:
            level = pairs.at if isinstance(pairs, Refresh) else pairs
            if not (
                isinstance(level, float | int) and not isinstance(level, bool) and 0 < level <= 1
            ):
                raise InputError(
                    f"pairs: expected a refresh level in (0, 1] of the range or None, "
                    f"got {brief(level)}"
                )
            if not isinstance(pairs, Refresh):
                pairs = Refresh(float(pairs))
            missing = [self._names[u.index] for u in updates if self.pair_halves(u.index) is None]
            if missing:
                raise InputError(
                    f"pairs: array {missing[0]} has no pair circuit (pairs are the input "
                    "crossbar with differential encoding, the bias arrays and the last "
                    "crossbar with differential readout)"
                )
        if transfer is not None:
            if not (
                isinstance(transfer, float | int)
                and not isinstance(transfer, bool)
                and 0 < transfer <= 1
            ):
                raise InputError(
                    f"transfer: expected a transfer rate in (0, 1] or None, got {brief(transfer)}"
                )
            if pairs is not None or accumulate is not None:
                raise InputError("transfer: Tiki-Taka takes no pairs or accumulate")
        with self._writing():
            for u in updates:
                if transfer is not None:
                    self._update_transfer(u, rng, momentum, float(transfer))
                elif pairs is None:
                    self._update(u, rng, momentum, accumulate)
                else:
                    self._update_pairs(u, rng, momentum, pairs, accumulate)
            self._apply_faults()
        self._clock = None

    def _update(
        self,
        u: DeviceUpdate,
        rng: np.random.Generator,
        momentum: float,
        accumulate: float | None,
    ) -> None:
        """One array's update through its card's model (inside :meth:`_writing`)."""
        card = self._cards[u.index]
        quantised = card.level_step is not None or card.pulses is not None
        carries = accumulate is not None and quantised
        counts = self._program(
            self._arrays[u.index],
            u,
            rng,
            (self._bounds[u.index], self._spread[u.index], self._tilt[u.index]),
            velocity=self._memory("_velocities", u.index) if momentum > 0 else None,
            momentum=momentum,
            stuck=self.faults[u.index] if u.index < self._n_crossbars else None,
            residual=self._memory("_residuals", u.index) if carries else None,
            threshold=1.0 if accumulate is None else float(accumulate),
        )
        self._update_counts[u.index, :4] += counts

    def _program(
        self,
        g: np.ndarray,
        u: DeviceUpdate,
        rng: np.random.Generator,
        own: tuple[Bounds, np.ndarray | None, np.ndarray | None],
        **options: Any,
    ) -> Any:
        """Move devices ``g`` (of array ``u.index``'s card) by ``u`` through the update
        kernel (:func:`~neuroemu.kernels.update.kernel_update`), with the devices' ``own``
        bounds, step scales and imbalances. Returns its counts."""
        change = (u.rows, u.cols, u.cross, u.factor)
        return kernel_update(g, change, self._cards[u.index], rng, own, **options)

    def _update_transfer(
        self, u: DeviceUpdate, rng: np.random.Generator, momentum: float, rate: float
    ) -> None:
        """One array's update by Tiki-Taka (inside :meth:`_writing`; docs/learning.md,
        "Tiki-Taka"). The change EP asks goes to the array's fast devices, a second array of
        the same card outside the circuit (each at its symmetry point ``G*`` at first), as
        the card's model takes it; then each slow device (the array in the circuit) is
        asked for ``rate (G_fast - G*)``, read against a reference at the fast device's
        symmetry point. The fast devices are not reset: their own asymmetry pulls them
        back to ``G*``. The fast array's devices ask, round to nothing and clip in the
        counts; the pulses are both arrays'."""
        g = self._arrays[u.index]
        fast = self.fast_devices[u.index]
        deviation = self._memory("_fast", u.index)
        conductance = fast.reference + deviation
        counts = self._program(
            conductance,
            u,
            rng,
            (fast.bounds, fast.spread, fast.tilt),
            velocity=self._memory("_velocities", u.index) if momentum > 0 else None,
            momentum=momentum,
        )
        np.subtract(conductance, fast.reference, out=deviation)
        zeros = np.zeros(g.shape[0]), np.zeros(g.shape[1])
        transfer = DeviceUpdate(u.index, *zeros, np.multiply(deviation, -0.5 * rate), 1.0)
        moved = self._program(
            g,
            transfer,
            rng,
            (self._bounds[u.index], self._spread[u.index], self._tilt[u.index]),
            stuck=self.faults[u.index] if u.index < self._n_crossbars else None,
        )
        self._update_counts[u.index, :4] += counts
        self._update_counts[u.index, 3] += moved[3]
        self._update_counts[u.index, 5] += deviation.size  # every fast device read

    @property
    def fast_devices(self) -> list[FastDevices]:
        """Per device array, its fast devices for Tiki-Taka (:class:`FastDevices`), drawn
        once from the chip's stream ``fast_devices`` (their range, step scale and imbalance,
        in that order per array), so that the slow devices' draws stay those of the chip
        trained any other way."""
        if self._fast_devices is None:
            rng = stream(self.seed, "fast_devices")
            devices = []
            for g, card in self._device_pairs():
                bounds = range_bounds(g.shape, card, rng)
                spread = step_spread(g.shape, card, rng)
                tilt = up_down_tilt(g.shape, card, rng)
                reference = symmetry_point(g.shape, card, bounds, tilt)
                for a in (*(bounds or ()), spread, tilt, reference):
                    frozen(a)
                devices.append(FastDevices(bounds, spread, tilt, reference))
            self._fast_devices = devices
        return self._fast_devices

    def _update_pairs(
        self,
        u: DeviceUpdate,
        rng: np.random.Generator,
        momentum: float,
        refresh: Refresh,
        accumulate: float | None,
    ) -> None:
        """One array's update as pairs (inside :meth:`_writing`)."""
        from ..models.pairs import pair_update

        g, card = self._arrays[u.index], self._cards[u.index]
        halves = self.pair_halves(u.index)
        assert halves is not None
        delta = u.factor * (u.rows[:, None] + u.cols[None, :] - 2.0 * u.cross)
        stuck, held = None, self._stuck[u.index]
        if held is not None:
            stuck = np.zeros(g.shape, dtype=bool)
            stuck.reshape(-1)[held[0]] = True
        counts = pair_update(
            g,
            delta,
            halves,
            card,
            rng,
            spread=self._spread[u.index],
            bounds=self._bounds[u.index],
            tilt=self._tilt[u.index],
            velocity=self._memory("_velocities", u.index) if momentum > 0 else None,
            momentum=momentum,
            residual=self._memory("_residuals", u.index) if accumulate is not None else None,
            threshold=1.0 if accumulate is None else float(accumulate),
            stuck=stuck,
            refresh_at=refresh.at,
            verified=refresh.verified,
            program=program_half,
        )
        self._update_counts[u.index] += counts
        self._pairs[u.index] = g[halves[0]].size

    def pair_halves(self, index: int) -> Halves | None:
        """The two halves of device array ``index`` whose devices pair up in the circuit
        (:mod:`neuroemu.models.pairs`), or ``None`` where the circuit has no pairs (a
        family without them: every array)."""
        return None

    @property
    def update_counts(self) -> UpdateCounts:
        """The devices each array was asked to move by :meth:`update_devices`, and of them
        those rounded to no pulse and those clipped at a bound, and the pulses programmed,
        since the counts were last taken (:meth:`take_update_counts`) or the chip was
        built."""
        asked, unmoved, clipped, pulses, refreshed, reads = (
            tuple(int(n) for n in c) for c in self._update_counts.T
        )
        fast = self._fast is not None  # Tiki-Taka: the fast devices take pulses too
        pulsed = tuple(
            g.size * (1 + fast) if card.level_step is not None or card.pulses is not None else 0
            for g, card in self._device_pairs()
        )
        names = tuple(self._names)
        pairs = tuple(self._pairs)
        # A refresh RESETs both devices of its pair (neuroemu.models.pairs).
        energies = [
            card.programming_energy(n, 2 * r)
            for (_, card), n, r in zip(self._device_pairs(), pulses, refreshed, strict=True)
        ]
        missing = any(e is None for e, n in zip(energies, pulses, strict=True) if n > 0)
        known = [e for e in energies if e is not None]
        energy = None if missing or not known else sum(known)
        cards = [card for _, card in self._device_pairs()]
        read_energy = None
        read = [(c, n) for c, n in zip(cards, reads, strict=True) if n]
        if read and all(c.read_energy is not None for c, _ in read):
            read_energy = sum(n * (c.read_energy or 0.0) for c, n in read)
        return UpdateCounts(
            names, asked, unmoved, clipped, pulses, pulsed, refreshed, pairs, energy,
            reads, read_energy,
        )  # fmt: skip

    def take_update_counts(self) -> UpdateCounts:
        """:attr:`update_counts`, and start counting anew (training: once per epoch)."""
        counts = self.update_counts
        self._update_counts[...] = 0
        return counts

    def _memory(self, kind: str, index: int) -> np.ndarray:
        """Device array ``index``'s digital memory ``kind``, a number per device beside the
        array (S), zero until first used (inside :meth:`_writing`): ``_velocities``, each
        device's last requested change (SGD with momentum); ``_residuals``, each device's
        accumulator of what was asked and not yet programmed (``mixed-precision``,
        ``nearest-carry``)."""
        if getattr(self, kind) is None:
            setattr(self, kind, [np.zeros(g.shape) for g in self._arrays])
        return getattr(self, kind)[index]

    # ------------------------------------------------------------------ reads
    @property
    def reads_noisily(self) -> bool:
        """Whether any device array reads with read noise (then every settle while
        :meth:`reading` reads the arrays anew; otherwise the arrays are what reads see)."""
        return any(card.read_noise is not None for card in self._cards)

    @property
    def reads(self) -> np.random.Generator | None:
        """The stream reads draw their noise from while :meth:`reading`, else ``None``."""
        return self._reads

    @contextmanager
    def reading(self, rng: np.random.Generator) -> Iterator[None]:
        """Within the block the chip's settles see its arrays as read with read noise drawn
        from ``rng``, a new read at every :meth:`next_read` (training: each mini-batch,
        whose phases share a read; inference: each batch), when a card has read noise; a
        chip without any reads exactly and pays nothing. A block inside another keeps the
        outer stream."""
        check_rng(rng)
        previous = self._reads
        if previous is None and self.reads_noisily:
            self._reads = rng
            self.next_read()
        try:
            yield
        finally:
            self._reads = previous
            self.next_read()

    def next_read(self) -> None:
        """Start a new read of the arrays: while :meth:`reading`, the settles that follow
        see a fresh draw of read noise; until then they share the present one, whatever
        their dtype."""
        for key in [k for k in self._circuits if isinstance(k, tuple)]:
            del self._circuits[key]
        self._current_read = None

    def read_arrays(self, rng: np.random.Generator) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """The conductances (S) one read of the chip sees, ``(crossbars, biases)``, noise
        drawn from ``rng`` (:func:`neuroemu.chip.reads.read_arrays`): new arrays for
        the noisy cards, the chip's own (read-only views) for the others."""
        arrays = self._read(check_rng(rng), None)
        views = [*self.conductances, *self.bias_conductance]
        arrays = [
            view if a is g else a for a, g, view in zip(arrays, self._arrays, views, strict=True)
        ]
        return arrays[: self._n_crossbars], arrays[self._n_crossbars :]

    def _read(self, rng: np.random.Generator, buffers: dict[int, np.ndarray] | None) -> list:
        pool = self._read_pool
        if pool is None:
            return list(self._arrays)
        return read_arrays(self._arrays, self._cards, self._stuck, pool, rng, buffers)

    def _laid_out(
        self,
        key: Any,
        lay_out: Callable[[list[np.ndarray], list[np.ndarray]], Any],
        read: bool = True,
    ) -> Any:
        """``lay_out(conductances, biases)`` of the arrays as the engine should see them,
        cached until they change: with ``read`` while :meth:`reading`, of the current read
        (cached until :meth:`next_read`), else of the chip's own arrays."""
        read = read and self._reads is not None
        tag = ("read", key) if read else key
        if tag not in self._circuits:
            arrays = self._arrays
            if read:
                assert self._reads is not None
                if self._current_read is None:  # one draw per read, for every dtype
                    self._current_read = self._read(self._reads, self._read_buffers)
                arrays = self._current_read
            n = self._n_crossbars
            self._circuits[tag] = lay_out(arrays[:n], arrays[n:])
        return self._circuits[tag]

    # ------------------------------------------------------------------ programming
    def programmed(self: ChipT, rng: np.random.Generator) -> ChipT:
        """A copy of the chip whose devices were programmed once to its conductances:
        programming noise (each device within its own range) and each device's drift
        exponent drawn from ``rng``, in that order, array by array. The copy holds the
        conductances programming left (as read at the cards' ``t0``;
        ``time_since_programming`` is ``None`` until :meth:`drift_to` moves its clock). Writing
        conductances to it (:meth:`set_conductances`, :meth:`load_state`, learning)
        programs it anew and ends the clock. This chip is not changed."""
        check_rng(rng)
        g0 = [
            program_noisily(g, card, rng, bounds)
            for (g, card), bounds in zip(self._device_pairs(), self._bounds, strict=True)
        ]
        nu = [drift_exponents(g.shape, card, rng) for g, card in self._device_pairs()]
        chip = self.copy()
        with chip._writing() as arrays:
            for g, programmed in zip(arrays, g0, strict=True):
                g[...] = programmed
            chip._apply_faults()
        chip._clock = DriftClock(g0, nu)
        return chip

    @property
    def time_since_programming(self) -> float | None:
        """Seconds since :meth:`programmed` (set by :meth:`drift_to`), or ``None``."""
        return None if self._clock is None else self._clock.time

    def drift_to(self, time: float) -> None:
        """The conductances ``time`` s after programming, ``G(t) = G(t0) (t / t0)^(-nu)``
        (:func:`neuroemu.models.nonideal.drifted`); stuck devices do not drift. Needs a chip
        from :meth:`programmed`."""
        if self._clock is None:
            raise InputError(
                f"chip {self.name}: drift_to needs a chip programmed onto its devices "
                "(chip.programmed(rng))"
            )
        if isinstance(time, bool) or not isinstance(time, int | float | np.integer | np.floating):
            raise InputError(f"time: expected seconds after programming, got {brief(time)}")
        if not np.isfinite(time):
            raise InputError(f"time: must be finite seconds after programming (got {time})")
        clock = self._clock
        with self._writing() as arrays:
            for g, g0, nu, card in zip(
                arrays, clock.programmed, clock.exponents, self._cards, strict=True
            ):
                g[...] = drifted(g0, nu, float(time), card)
            self._apply_faults()
        clock.time = float(time)

    # ------------------------------------------------------------------ family
    #: ``settle(x, beta=0.0, target=None, **options) -> Equilibrium``: the family's phase
    #: (a DC operating point, or time steps of leaky neurons) as the current read sees it.
    settle: Callable[..., Equilibrium]
    #: Class scores (V) from output voltages.
    scores: Callable[[np.ndarray], np.ndarray]
    #: ``target_voltages(labels, voltage)``: output targets (V) of the right classes.
    target_voltages: Callable[[np.ndarray, float], np.ndarray]


def check_rng(rng: Any) -> np.random.Generator:
    """``rng`` itself if it is a ``numpy.random.Generator``, else an InputError."""
    if not isinstance(rng, np.random.Generator):
        raise InputError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")
    return rng


def check_seed(seed: Any) -> int:
    """``seed`` as an int >= 0, else an InputError."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise InputError(f"seed: expected a whole number >= 0, got {brief(seed)}")
    return int(seed)


def _arrays(values: Any, name: str) -> list[Any]:
    """``values`` (one array per device array) as a list, else an InputError."""
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise InputError(f"{name}: expected a list of arrays (one per array), got {brief(values)}")
    return list(values)


#: Each family's chip class, by the type of spec it is built from.
FAMILIES: dict[type, Callable[..., BaseChip]] = {}

FamilyT = TypeVar("FamilyT", bound=type[BaseChip])


def register_family(spec_type: type) -> Callable[[FamilyT], FamilyT]:
    """Class decorator: the chip class builds chips of specs of ``spec_type``."""

    def register(chip_type: FamilyT) -> FamilyT:
        FAMILIES[spec_type] = chip_type
        return chip_type

    return register


def build_chip(spec: Any, seed: int | None = None, source: LoadedChip | None = None) -> Any:
    """The chip a validated spec describes, built by its family's class."""
    try:
        family = FAMILIES[type(spec)]
    except KeyError:
        raise InputError(f"no chip family builds a {type(spec).__name__}") from None
    return family(spec, seed=seed, source=source)
