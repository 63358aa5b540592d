"""A chip: the conductance arrays its spec describes, programmed from one seed.

Geometry (every array in SI):

- layer 0 is the input sources: with ``differential`` encoding, source ``i`` of the first
  half drives ``+gain * (x_i - offset)`` and source ``n_inputs + i`` drives
  ``-gain * (x_i - offset)`` (``inputs.offset``, 0 by default);
- layer ``l`` (1..L) is a layer of free nodes, ``L`` the output layer;
- ``crossbars[l-1].conductance`` has shape ``(nodes of layer l-1, nodes of layer l)``;
- ``bias_conductance[l-1]`` has shape ``(2, nodes of layer l)``: row 0 goes to the
  ``+V_b`` source, row 1 to the ``-V_b`` source;
- diodes: with ``alternate`` arrangement the first half of a layer's nodes has a diode that
  keeps ``V >= v_lo`` and the second half one that keeps ``V <= v_hi``; with ``pair`` every
  node has both.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError
from ..models.diode import thermal_voltage
from ..models.nonideal import has_read_noise, read_pool
from ..models.update import Bounds, fit_to_range, range_bounds, step_spread
from ..spec.cards import ResistorCard
from ..spec.leaky import LeakyChipSpec
from ..spec.loader import LoadedChip, chip_from_dict, load_chip
from ..spec.resistive import ChipSpec, Initialisation, Layer

if TYPE_CHECKING:
    from ..engine.circuit import Circuit
    from ..engine.settle import Equilibrium


@dataclass
class Crossbar:
    """A full crossbar of devices between two layers."""

    name: str
    device: ResistorCard
    conductance: np.ndarray  # S, (rows, columns)

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


class BaseChip:
    """What every chip has: device arrays programmed from one seed, their stuck devices and
    device-to-device spread, the input DAC, and input checks. :class:`Chip` (resistive
    networks settling to a DC operating point) and
    :class:`~neuroemu.chip.leaky.LeakyChip` (leaky-integrating neurons) build on it.

    Subclasses set ``spec``, ``seed``, ``source``, ``crossbars`` (every device array) and
    ``bias_conductance`` (one bias array per layer), then call :meth:`_finish_devices`.
    """

    spec: Any
    seed: int
    source: LoadedChip | None
    crossbars: list[Crossbar]
    bias_conductance: list[np.ndarray]
    family = "resistive"
    #: While set (by :func:`neuroemu.models.nonideal.reading`), every settle reads the
    #: arrays anew, with read noise drawn from this stream; ``None``: reads are exact.
    reads: np.random.Generator | None = None

    def _begin(
        self, spec: Any, seed: int | None, source: LoadedChip | None, first_rows: int
    ) -> np.random.Generator:
        """Keep the spec, seed and source, and program the forward crossbars (layer
        ``k - 1`` to ``k``; the first has ``first_rows`` rows) from the seed. Returns the
        seed's generator, for the arrays a family programs next."""
        self.spec = spec
        self.seed = spec.seed if seed is None else int(seed)
        self.source = source
        self.velocities: list[np.ndarray] | None = None  # momentum (see velocity())
        rng = np.random.default_rng(self.seed)
        sizes = [first_rows] + [layer.size for layer in spec.layers]
        names = ["input"] + [layer.name for layer in spec.layers]
        self.crossbars = []
        for k, layer in enumerate(spec.layers):
            g = program(layer.init, layer.device, (sizes[k], sizes[k + 1]), rng)
            self.crossbars.append(Crossbar(f"{names[k]}->{names[k + 1]}", layer.device, g))
        return rng

    def _finish_devices(self) -> None:
        """Draw each device's own range, stuck devices and step spreads (each from its own
        stream of the seed), hold the programmed conductances to the devices' own ranges and
        apply the faults; called once every array is programmed."""
        # [seed, 0, 5]: apart from every other stream (see neuroemu.learning.train), so a
        # range spread changes no other draw.
        range_rng = np.random.default_rng([self.seed, 0, 5])
        self.crossbar_bounds: list[Bounds] = [
            range_bounds(c.shape, c.device, range_rng) for c in self.crossbars
        ]
        self.bias_bounds: list[Bounds] = [
            range_bounds(b.shape, card, range_rng)
            for b, card in zip(self.bias_conductance, self.bias_devices, strict=True)
        ]
        for (g, card), bounds in zip(self.device_arrays(), self.device_bounds(), strict=True):
            fit_to_range(g, card, bounds)
        self.faults = self._draw_faults()
        self.apply_faults()
        spread_rng = np.random.default_rng([self.seed, 4])
        self.crossbar_spread = [step_spread(c.shape, c.device, spread_rng) for c in self.crossbars]
        self.bias_spread = [
            step_spread(b.shape, card, spread_rng)
            for b, card in zip(self.bias_conductance, self.bias_devices, strict=True)
        ]
        self._version = 0
        self._circuits: dict[Any, Any] = {}
        if has_read_noise(self):  # the normals its reads draw from, made once per chip
            read_pool(self)

    @property
    def bias_devices(self) -> list[ResistorCard]:
        """The device card of each layer's bias array (its first crossbar's)."""
        return [self.crossbars[k].device for k in range(len(self.bias_conductance))]

    def device_arrays(self) -> list[tuple[np.ndarray, ResistorCard]]:
        """Every programmable array with its card: crossbars, then biases."""
        return [(c.conductance, c.device) for c in self.crossbars] + list(
            zip(self.bias_conductance, self.bias_devices, strict=True)
        )

    def velocity(self, index: int) -> np.ndarray:
        """The momentum velocity (S) of device array ``index`` (in :meth:`device_arrays`
        order): each device's last requested change, zero until training with momentum
        first moves it. It lives beside the array, not in it (a digital accumulator per
        device, as SGD with momentum needs); run files keep it for ``--resume``."""
        if self.velocities is None:
            self.velocities = [np.zeros(g.shape) for g, _ in self.device_arrays()]
        return self.velocities[index]

    def device_bounds(self) -> list[Bounds]:
        """Each array's own device ranges ``(g_lo, g_hi)`` (or ``None``: the card's range),
        in the order of :meth:`device_arrays`."""
        return self.crossbar_bounds + self.bias_bounds

    # ------------------------------------------------------------------ faults
    def _draw_faults(self) -> list[tuple[np.ndarray, np.ndarray] | None]:
        """Per crossbar, the devices stuck at ``g_min`` and at ``g_max`` (boolean masks), or
        ``None`` without faults. Drawn from their own stream of the chip's seed
        (``default_rng([seed, 3])``), so adding faults changes no other draw."""
        rng = np.random.default_rng([self.seed, 3])
        faults: list[tuple[np.ndarray, np.ndarray] | None] = []
        for crossbar in self.crossbars:
            card = crossbar.device
            if card.stuck_at_min == 0 and card.stuck_at_max == 0:
                faults.append(None)
                continue
            u = rng.random(crossbar.shape)
            low = u < card.stuck_at_min
            high = (u >= card.stuck_at_min) & (u < card.stuck_at_min + card.stuck_at_max)
            faults.append((low, high))
        return faults

    def stuck_devices(self) -> list[tuple[np.ndarray, np.ndarray] | None]:
        """Per crossbar, its stuck devices as ``(flat indices, stuck conductances)`` (S):
        each its own ``g_min`` or ``g_max`` (with ``range_spread``, its own bound); ``None``
        for a crossbar without faults. Flat indices are far cheaper to apply than masks."""
        if not hasattr(self, "_stuck"):
            self._stuck: list[tuple[np.ndarray, np.ndarray] | None] = []
            for crossbar, fault, bounds in zip(
                self.crossbars, self.faults, self.crossbar_bounds, strict=True
            ):
                if fault is None:
                    self._stuck.append(None)
                    continue
                low, high = np.flatnonzero(fault[0]), np.flatnonzero(fault[1])
                card = crossbar.device
                if bounds is None:
                    values = (np.full(low.size, card.g_min), np.full(high.size, card.g_max))
                else:
                    values = (bounds[0].reshape(-1)[low], bounds[1].reshape(-1)[high])
                self._stuck.append((np.concatenate([low, high]), np.concatenate(values)))
        return self._stuck

    def apply_faults(self, arrays: list[np.ndarray | None] | None = None) -> None:
        """Put every stuck device back at its stuck conductance (after any programming).
        ``arrays``: put them into these arrays instead of the crossbars (one per crossbar,
        ``None`` to skip one)."""
        if arrays is None:
            arrays = [crossbar.conductance for crossbar in self.crossbars]
        for g, stuck in zip(arrays, self.stuck_devices(), strict=True):
            if stuck is not None and g is not None:
                assert g.flags.c_contiguous  # so reshape is a view
                g.reshape(-1)[stuck[0]] = stuck[1]

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str], seed: int | None = None) -> Any:
        """Build the chip of a spec file (or of a library chip given by name): a
        :class:`Chip` for a resistive spec, a :class:`~neuroemu.chip.leaky.LeakyChip` for
        one with ``kind: leaky``."""
        loaded = load_chip(path)
        return build_chip(loaded.spec, seed=seed, source=loaded)

    @classmethod
    def from_dict(cls, data: dict[str, Any], seed: int | None = None, base: Path | None = None):
        """Build from a mapping shaped like a chip YAML (card names resolve in the library,
        or beside ``base``)."""
        spec = chip_from_dict(data, "<dict>", base)
        return build_chip(spec, seed=seed)

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
    def conductances(self) -> list[np.ndarray]:
        """The crossbars' conductance arrays (S), input side first."""
        return [crossbar.conductance for crossbar in self.crossbars]

    @property
    def n_devices(self) -> int:
        return sum(g.size for g in self.conductances) + sum(b.size for b in self.bias_conductance)

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
        x = np.asarray(x)
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

    def touch(self) -> None:
        """Say that conductances changed, so cached circuits (and the current read) are
        rebuilt."""
        self._version += 1
        self._circuits.clear()

    def next_read(self) -> None:
        """Start a new read of the arrays: while a read stream is set (:attr:`reads`), the
        settles that follow see a fresh draw of read noise (training starts one per
        mini-batch, whose phases follow each other far faster than the noise changes;
        inference one per batch). Until then they share the present one."""
        for key in [k for k in self._circuits if isinstance(k, tuple)]:
            del self._circuits[key]

    def _read(self, key: Any, build: Any) -> Any:
        """The arrays of the current read, laid out by ``build(conductances, biases)``."""
        from ..models.nonideal import read_arrays

        assert self.reads is not None
        tag = ("read", key)
        if tag not in self._circuits:
            self._circuits[tag] = build(*read_arrays(self, self.reads, reuse=True))
        return self._circuits[tag]


class Chip(BaseChip):
    """A crossbar chip built from a :class:`~neuroemu.spec.ChipSpec`.

    Parameters
    ----------
    spec
        The validated chip spec.
    seed
        Seed of every random draw made while building (initial conductances); ``None``
        takes the spec's ``seed``.
    source
        The loaded file, kept so run files can store the exact YAML.
    """

    def __init__(self, spec: ChipSpec, seed: int | None = None, source: LoadedChip | None = None):
        rng = self._begin(spec, seed, source, spec.inputs.n_sources)
        self.bias_conductance: list[np.ndarray] = []
        for layer in spec.layers:
            self.bias_conductance.append(
                program(spec.bias.init, layer.device, (2, layer.size), rng)
            )
        self._finish_devices()

    # ------------------------------------------------------------------ geometry
    @property
    def n_sources(self) -> int:
        return self.spec.inputs.n_sources

    def node_bounds(self, layer: Layer) -> tuple[np.ndarray, np.ndarray]:
        """Diode bounds ``(lo, hi)`` (V) of a layer's nodes; +/-inf where there is none."""
        lo = np.full(layer.size, -np.inf)
        hi = np.full(layer.size, np.inf)
        if layer.diode is None:
            return lo, hi
        if layer.arrangement == "pair":
            lo[:] = layer.v_lo
            hi[:] = layer.v_hi
        else:
            half = layer.size // 2
            lo[:half] = layer.v_lo
            hi[half:] = layer.v_hi
        return lo, hi

    def thermal_voltage(self, layer: Layer) -> float:
        """``V_T = k T / q`` (V) of a layer's diodes."""
        assert layer.diode is not None
        return thermal_voltage(layer.diode.temperature)

    def adc(self, output_voltages: np.ndarray) -> np.ndarray:
        """Output voltages (V) as the output ADC reads them: clipped to the full scale
        ``[-adc_range, adc_range]`` and rounded to ``2^bits - 1`` steps of it, with
        ``adc_bits`` on the output layer, else as they are."""
        out = self.spec.output
        if out.adc_bits is None:
            return output_voltages
        step = 2 * out.adc_range / (2**out.adc_bits - 1)
        clipped = np.clip(output_voltages, -out.adc_range, out.adc_range)
        return -out.adc_range + np.rint((clipped + out.adc_range) / step) * step

    def drive(self, x: np.ndarray) -> np.ndarray:
        """What the input sources are driven by, in units of ``inputs.gain``: the inputs
        after the DAC, less ``inputs.offset`` (in ``x``'s dtype)."""
        u = self.dac(x)
        offset = self.spec.inputs.offset
        return u - u.dtype.type(offset) if offset else u

    def source_voltages(self, x: np.ndarray) -> np.ndarray:
        """Voltages (V) of the input sources for inputs ``x`` of shape (batch, n_inputs),
        after the input DAC and offset."""
        v = self.spec.inputs.gain * self.drive(x)
        if self.spec.inputs.encoding == "differential":
            v = np.concatenate([v, -v], axis=1)
        return v

    def scores(self, output_voltages: np.ndarray) -> np.ndarray:
        """Class scores (V) from output node voltages as the ADC reads them: the node
        itself, or ``V+ - V-`` of each pair of consecutive nodes with differential readout."""
        output_voltages = self.adc(output_voltages)
        if self.spec.output.readout == "differential":
            return output_voltages[:, 0::2] - output_voltages[:, 1::2]
        return output_voltages

    # ------------------------------------------------------------------ engine
    def circuit(self, dtype: Any = np.float64, read: bool = False) -> Circuit:
        """The chip's arrays prepared for the engine in ``dtype`` (cached until
        :meth:`touch`); with ``read`` and a read stream set (:attr:`reads`), the arrays as
        the current read sees them (:meth:`next_read`)."""
        from ..engine.circuit import Circuit

        key = np.dtype(dtype)
        if read and self.reads is not None:
            return self._read(key, lambda g, b: Circuit.from_chip(self, key, g, b))
        if key not in self._circuits:
            self._circuits[key] = Circuit.from_chip(self, key)
        return self._circuits[key]

    def settle(
        self,
        x: Any,
        beta: float = 0.0,
        target: Any = None,
        **options: Any,
    ) -> Equilibrium:
        """Settle the chip to its DC operating point for inputs ``x`` (batch, n_inputs).

        See :func:`neuroemu.engine.settle` for ``beta``, ``target`` and the options
        (``init``, ``tol``, ``max_sweeps``, ``dtype``, ``parallel``).
        """
        from ..engine.settle import settle

        return settle(self, x, beta=beta, target=target, **options)

    def to_spice(self, x_row: Any, **options: Any) -> str:
        """An ngspice netlist of the chip with input ``x_row`` (see :mod:`neuroemu.io.spice`)."""
        from ..io.spice import netlist

        return netlist(self, x_row, **options)

    def __repr__(self) -> str:
        sizes = "-".join(str(s) for s in [self.n_inputs, *self.layer_sizes])
        return f"Chip({self.name!r}, {sizes}, {self.n_devices} devices, seed={self.seed})"


def build_chip(spec: Any, seed: int | None = None, source: LoadedChip | None = None) -> Any:
    """The chip a validated spec describes: a :class:`Chip`, or a
    :class:`~neuroemu.chip.leaky.LeakyChip` for a leaky spec."""
    if isinstance(spec, LeakyChipSpec):
        from .leaky import LeakyChip

        return LeakyChip(spec, seed=seed, source=source)
    return Chip(spec, seed=seed, source=source)
