"""A resistive chip: crossbars of devices joining layers of diode nodes, settling to its DC
operating point.

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

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..engine.circuit import Circuit
from ..engine.netlist import ActiveSet, active_set, netlist
from ..engine.settle import checked_sweeps, checked_tol, grounded_params, injection, settle
from ..engine.states import Equilibrium, as_array, as_number
from ..engine.wires import chain_factors, settle_wired
from ..errors import InputError, SpecError, brief
from ..kernels import KIND_IDEAL, KIND_LINEAR, KIND_SHOCKLEY, NodeParams
from ..kernels.layout import crossbar_sums, differential_layout
from ..kernels.sweeps import node_layout
from ..models.diode import thermal_voltage
from ..models.pairs import Halves
from ..spec.cards import ResistorCard
from ..spec.loader import LoadedChip
from ..spec.resistive import ChipSpec, Layer
from .base import BaseChip, program, register_family


def check_dtype(dtype: Any) -> np.dtype:
    """``dtype`` as a numpy dtype, float32 or float64."""
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise InputError(f"dtype: must be float32 or float64 (got {dtype!r})") from None
    if dtype not in (np.float32, np.float64):
        raise InputError(f"dtype: must be float32 or float64 (got {dtype})")
    return dtype


@register_family(ChipSpec)
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

    family = "resistive"

    def __init__(self, spec: ChipSpec, seed: int | None = None, source: LoadedChip | None = None):
        rng = self._begin(spec, seed, source)
        sizes = [spec.inputs.n_sources] + [layer.size for layer in spec.layers]
        names = ["input"] + [layer.name for layer in spec.layers]
        for k, layer in enumerate(spec.layers):
            g = program(layer.init, layer.device, (sizes[k], sizes[k + 1]), rng)
            self._add_array(f"{names[k]}->{names[k + 1]}", layer.device, g)
        for layer in spec.layers:
            g = program(spec.bias.init, layer.device, (2, layer.size), rng)
            self._add_bias(layer.name, layer.device, g)
        self._finish()
        self._check_nodes()

    @classmethod
    def array_shapes(cls, spec: ChipSpec) -> list[tuple[tuple[int, int], ResistorCard]]:
        """Crossbars (nodes of the layer before, nodes of the layer), then biases (2, nodes)."""
        sizes = [spec.inputs.n_sources] + [layer.size for layer in spec.layers]
        crossbars = [((sizes[k], layer.size), layer.device) for k, layer in enumerate(spec.layers)]
        return crossbars + [((2, layer.size), layer.device) for layer in spec.layers]

    def pair_halves(self, index: int) -> Halves | None:
        """The devices of array ``index`` that pair up in this circuit, as
        :mod:`neuroemu.models.pairs` describes: the input crossbar's ``+a x`` and ``-a x``
        rows (differential encoding), a bias array's ``+V_b`` and ``-V_b`` rows, and the
        last crossbar's ``V+`` and ``V-`` columns (differential readout); ``None`` for any
        other array."""
        n = len(self.spec.layers)
        if not 0 <= index < 2 * n:
            raise InputError(f"index: expected a device array 0..{2 * n - 1}, got {index!r}")
        if index >= n:
            return (slice(0, 1),), (slice(1, 2),)
        if index == 0 and self.spec.inputs.encoding == "differential":
            size = self.spec.inputs.size
            return (slice(0, size),), (slice(size, None),)
        if index == n - 1 and self.spec.output.readout == "differential":
            return (slice(None), slice(0, None, 2)), (slice(None), slice(1, None, 2))
        return None

    # ------------------------------------------------------------------ nodes
    def junction_conductance(self, layer: Layer) -> np.ndarray:
        """The conductance (S) a layer's Shockley diodes place at each node: ``gmin`` per
        junction (0 for linear and ideal-diode nodes, which a diode only clamps)."""
        diode = layer.diode
        if diode is None or diode.model != "shockley":
            return np.zeros(layer.size)
        lo, hi = self.node_bounds(layer)
        return diode.gmin * (np.isfinite(lo).astype(float) + np.isfinite(hi))

    def _node_problem(self, k: int, node: int, what: str, seed: bool = False) -> str:
        layer = self.spec.layers[k]
        chip = f"chip {self.name}" + (f" (seed {self.seed})" if seed else "")
        return f"{chip}: layers[{k}] ({layer.name}) node {node} {what}"

    def _check_nodes(self) -> None:
        """Refuse a chip with a node whose voltage its circuit leaves undefined: a node
        that floats (every conductance at it is 0 S: the devices of its crossbars and its
        bias, and the ``gmin`` of its Shockley junctions) or that no source reaches (every
        path of non-zero conductances from it ends without an input source, a bias source,
        or a Shockley junction to its diode's source)."""
        layers = self.spec.layers
        n = len(layers)
        crossbars = [np.asarray(c.conductance) for c in self.crossbars]
        biases = [np.asarray(b) for b in self.bias_conductance]
        own = []  # per layer: whether each node reaches a source through no other node
        for k, layer in enumerate(layers):
            below = crossbars[k].sum(axis=0)
            above = crossbars[k + 1].sum(axis=1) if k + 1 < n else 0.0
            junction = self.junction_conductance(layer)
            total = below + above + biases[k].sum(axis=0) + junction
            if not np.all(total > 0):
                node = int(np.argmax(~(total > 0)))
                raise SpecError(
                    self._node_problem(k, node, "floats: every conductance at it is 0 S", True)
                    + f" (its devices in {self._names[k]}"
                    + (f" and {self._names[k + 1]}" if k + 1 < n else "")
                    + " and its bias); no operating point"
                )
            own.append((biases[k].sum(axis=0) > 0) | (junction > 0))
        if all(np.all(c.sum(axis=0) > 0) for c in crossbars):
            return  # every node has a device to the layer below: the inputs reach it
        reached = [np.ones(crossbars[0].shape[0], dtype=bool), *own]
        links = [c > 0 for c in crossbars]
        for _ in range(sum(self.layer_sizes) + 1):
            before = sum(int(r.sum()) for r in reached)
            for k in range(n):  # reached[k + 1] is free layer k
                reached[k + 1] |= links[k][reached[k]].any(axis=0)
            for k in range(n - 1, 0, -1):
                reached[k] |= links[k][:, reached[k + 1]].any(axis=1)
            if sum(int(r.sum()) for r in reached) == before:
                break
        for k in range(n):
            if not reached[k + 1].all():
                node = int(np.argmax(~reached[k + 1]))
                raise SpecError(
                    self._node_problem(k, node, "is reached by no source", True)
                    + ": every path from it to an input or a bias crosses 0 S devices; its "
                    "voltage is undefined"
                )

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

    # ------------------------------------------------------------------ periphery
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

    def target_voltages(self, labels: np.ndarray, voltage: float) -> np.ndarray:
        """Target output node voltages (V) for class ``labels``: ``voltage`` on the node of
        the right class and 0 V elsewhere; with differential readout ``+voltage/2`` and
        ``-voltage/2`` on the right pair, 0 V on the others."""
        labels = self.check_labels(labels)
        voltage = as_number(voltage, "voltage", "V")
        target = np.zeros((len(labels), self.layer_sizes[-1]))
        rows = np.arange(len(labels))
        if self.spec.output.readout == "differential":
            target[rows, 2 * labels] = voltage / 2
            target[rows, 2 * labels + 1] = -voltage / 2
        else:
            target[rows, labels] = voltage
        return target

    # ------------------------------------------------------------------ engine
    def circuit(self, dtype: Any = np.float64, read: bool = False) -> Circuit:
        """The chip's arrays laid out for the engine in ``dtype`` (cached until they
        change); with ``read`` while :meth:`reading`, as the current read sees them
        (:meth:`next_read`)."""
        key = check_dtype(dtype)
        return self._laid_out(key, lambda g, b: self._lay_out(key, g, b), read)

    def _lay_out(self, dtype: np.dtype, w64: list[np.ndarray], bias_g: list[np.ndarray]) -> Circuit:
        """The arrays of :class:`~neuroemu.engine.circuit.Circuit` from the conductances
        ``w64`` (S, one per crossbar) and biases ``bias_g`` (S, one per layer)."""
        spec = self.spec
        v_b = spec.bias.voltage
        gain, n_in = spec.inputs.gain, spec.inputs.size
        # Row and column sums of every crossbar, and the input transfer, one pass each.
        if spec.inputs.encoding == "differential":
            transfer, rows, cols = differential_layout(w64[0], gain)
        else:
            rows, cols = crossbar_sums(w64[0])
            transfer = gain * w64[0]
        sums = [(rows, cols)] + [crossbar_sums(w) for w in w64[1:]]
        node_g, bias_i = [], []
        for k, layer in enumerate(spec.layers):
            g = sums[k][1] + bias_g[k].sum(axis=0)
            if k + 1 < len(w64):
                g = g + sums[k + 1][0]
            self._check_conductance(k, layer, g)
            node_g.append(g)
            bias_i.append((bias_g[k][0] - bias_g[k][1]) * v_b)
        params, v_scale, node_arrays = self._node_params
        wires = [layer.wires for layer in spec.layers]
        chains = None  # with wires, a node sees its wires' Norton conductances
        if any(w.segment > 0 for w in wires):
            chains = [chain_factors(w, *r) for w, r in zip(w64, wires, strict=True)]
            node_g = [
                chains[k].y_node
                + (chains[k + 1].z_driver if k + 1 < len(chains) else 0.0)
                + bias_g[k].sum(axis=0)
                for k in range(len(chains))
            ]
        g_min = min(float(g.min()) for g in node_g)
        settle_time = 5.0 * spec.node_capacitance / g_min if g_min > 0 else np.inf
        if spec.inputs.encoding == "differential":
            input_power = gain**2 * (rows[:n_in] + rows[n_in:])
        else:
            input_power = gain**2 * rows
        return Circuit(
            dtype=dtype,
            weights=[np.ascontiguousarray(w, dtype=dtype) for w in w64],
            input_transfer=np.ascontiguousarray(transfer, dtype=dtype),
            input_power=input_power,
            node_conductance=[g.astype(dtype) for g in node_g],
            bias_current=[i.astype(dtype) for i in bias_i],
            params=params,
            node_conductance64=node_g,
            bias_power=v_b**2 * sum(float(b.sum()) for b in bias_g),
            v_scale=float(v_scale),
            settle_time=float(settle_time),
            bias_conductance=[np.asarray(b, dtype=np.float64) for b in bias_g],
            chains=chains,
            node_arrays=node_arrays,
        )

    @functools.cached_property
    def _node_params(self) -> tuple[list[NodeParams], float, tuple]:
        """Each layer's node parameters, the largest source voltage (V) (the scale of
        relative residuals), and the parameters as the compiled sweeps take them: fixed by
        the spec (immutable), so worked out once per chip."""
        spec = self.spec
        params = []
        for layer in spec.layers:
            lo, hi = self.node_bounds(layer)
            if layer.diode is None:
                params.append(NodeParams(KIND_LINEAR, lo, hi))
            elif layer.diode.model == "ideal":
                params.append(NodeParams(KIND_IDEAL, lo, hi))
            else:
                d = layer.diode
                assert d.i_s is not None and d.n is not None
                n_vt = d.n * self.thermal_voltage(layer)
                params.append(NodeParams(KIND_SHOCKLEY, lo, hi, d.i_s, n_vt, d.gmin))
        bounds = np.concatenate([np.concatenate([p.lo, p.hi]) for p in params])
        bounds = np.abs(bounds[np.isfinite(bounds)])
        v_scale = max(spec.inputs.gain, spec.bias.voltage, float(bounds.max(initial=0.0)))
        # Shared by every circuit of the chip: never written.
        return params, v_scale, node_layout(params)

    def _check_conductance(self, k: int, layer: Layer, g: np.ndarray) -> None:
        """A node with no conductance left (its devices at 0 S: ``g_min`` 0 S, stuck, or
        read so) has no defined voltage: an error before any solve divides by it."""
        if np.all(g > 0):
            return
        junction = self.junction_conductance(layer)
        lost = ~(g + junction > 0)
        if lost.any():
            node = int(np.argmax(lost))
            raise InputError(
                self._node_problem(k, node, "has lost all its conductance")
                + " (every device at it reads 0 S): its voltage is undefined, no operating point"
            )

    def settle(
        self,
        x: Any,
        beta: float = 0.0,
        target: Any = None,
        *,
        current: Any = None,
        init: Any = None,
        grounded: Any = None,
        tol: float | None = None,
        max_sweeps: int | None = None,
        dtype: Any = np.float64,
        parallel: bool | None = None,
        trace: bool = False,
    ) -> Equilibrium:
        """Settle the chip to its DC operating point for inputs ``x`` (batch, n_inputs),
        values in [0, 1], as the current read sees its arrays.

        ``tol`` and ``max_sweeps`` default to the spec's ``solver``; ``dtype`` is
        ``numpy.float64`` or ``numpy.float32`` for the arrays and matrix products. See
        :func:`neuroemu.engine.settle.settle` for ``beta`` (S), ``target`` (V), ``current``
        (A), ``init``, ``grounded``, ``parallel`` and ``trace``.
        """
        dtype = check_dtype(dtype)
        x = self.check_inputs(x)
        self.check_batch(len(x))
        solver = self.spec.solver
        if self.has_wires:
            return self._settle_wired(
                x, beta, target, current=current, init=init, grounded=grounded, tol=tol,
                max_sweeps=max_sweeps, dtype=dtype, trace=trace,
            )  # fmt: skip
        return settle(
            self.circuit(dtype, read=True),
            self.drive(x),
            self.scores,
            beta,
            target,
            current=current,
            init=init,
            grounded=grounded,
            tol=solver.tol if tol is None else tol,
            max_sweeps=solver.max_sweeps if max_sweeps is None else max_sweeps,
            parallel=parallel,
            trace=trace,
        )

    @property
    def has_wires(self) -> bool:
        """Whether any crossbar has resistive wires (a layer's ``wire_resistance`` > 0)."""
        return any(layer.wire_resistance > 0 for layer in self.spec.layers)

    def _settle_wired(
        self,
        x: np.ndarray,
        beta: float,
        target: Any,
        *,
        current: Any,
        init: Any,
        grounded: Any,
        tol: float | None,
        max_sweeps: int | None,
        dtype: np.dtype,
        trace: bool,
    ) -> Equilibrium:
        """:meth:`settle` of a chip with wire resistance (:mod:`neuroemu.engine.wires`)."""
        if dtype != np.float64:
            raise InputError(
                f"dtype: {dtype}, but chip {self.name} has wire resistance, which settles in "
                "float64 only"
            )
        solver = self.spec.solver
        tol = checked_tol(solver.tol if tol is None else tol, np.dtype(np.float64))
        max_sweeps = checked_sweeps(solver.max_sweeps if max_sweeps is None else max_sweeps)
        c = self.circuit(np.float64, read=True)
        assert c.chains is not None and c.bias_conductance is not None
        batch = len(x)
        sizes = self.layer_sizes
        beta = as_number(beta, "beta", "S")
        injected = injection(current, batch, sizes[-1])
        params = grounded_params(c.params, grounded, sizes, batch)
        return settle_wired(
            c,
            c.chains,
            self.source_voltages(x).astype(np.float64),
            c.bias_conductance,
            self.spec.bias.voltage,
            self.scores,
            beta,
            target,
            current=injected,
            params=params,
            init=init,
            tol=tol,
            max_sweeps=max_sweeps,
            trace=trace,
        )

    def _ideal_layers(self) -> list[bool]:
        """Whether each free layer's diodes are ideal."""
        return [d is not None and d.model == "ideal" for d in (x.diode for x in self.spec.layers)]

    def active_set(self, voltages: Sequence[Any]) -> ActiveSet | None:
        """The active set of an operating point with node ``voltages`` (V, one (nodes,)
        array per free layer, as one row of ``settle``'s): which ideal-diode nodes sit at
        their diode bound (:func:`neuroemu.engine.netlist.active_set`); ``None`` for a chip
        without ideal diodes.

        A node counts as clamped within ``tol * V_scale`` of its bound, the move below which
        ``settle`` stops (``solver.tol``, at least ``16 eps`` of the voltages' dtype). The
        solver's clip puts a clamped node exactly on its bound; a free node that close to it
        is at the bound to the solver's accuracy. Holding it there instead moves no node by
        more than that distance (a resistive network's voltages move less than a source
        that drives them), far below the 1e-6 V of the cross-check, and the current its
        source then carries the wrong way is at most about ``G_j`` times it."""
        layers = self.spec.layers
        ideal = self._ideal_layers()
        if not any(ideal):
            return None
        if not isinstance(voltages, Sequence) or len(voltages) != len(layers):
            raise InputError(
                f"voltages: expected one array per free layer ({len(layers)}), got "
                f"{brief(voltages)}"
            )
        arrays = []
        for k, (v, size) in enumerate(zip(voltages, self.layer_sizes, strict=True)):
            v = as_array(v, f"voltages[{k}]")
            if v.shape != (size,) or not np.all(np.isfinite(v)):
                raise InputError(
                    f"voltages[{k}]: expected {size} finite voltages (layer {layers[k].name}), "
                    f"got shape {v.shape}"
                )
            arrays.append(v)
        dtype = np.result_type(*arrays, np.float32)
        tol = max(self.spec.solver.tol, 16 * float(np.finfo(dtype).eps))
        tolerance = tol * self.circuit(np.float64).v_scale
        bounds = [self.node_bounds(layer) for layer in layers]
        return active_set(arrays, bounds, ideal, tolerance)

    def to_spice(
        self, x_row: Any, *, voltages: Sequence[Any] | None = None, title: str | None = None
    ) -> str:
        """An ngspice netlist of the chip with input ``x_row`` (n_inputs,)
        (:func:`neuroemu.engine.netlist.netlist`).

        Layers of ideal diodes are written as the active set (:meth:`active_set`) of the
        operating point with node ``voltages`` (one (nodes,) array per free layer), by
        default that which ``settle`` finds for ``x_row``. A crossbar whose layer has a
        ``wire_resistance`` is written with its row and column wires, segment by segment,
        with its ``driver_resistance`` and ``sense_resistance`` in the end segments."""
        x = self.check_inputs(as_array(x_row, "x_row").reshape(1, -1), "x_row")
        active = None
        if any(self._ideal_layers()):
            if voltages is None:
                voltages = [v[0] for v in self.settle(x).voltages]
            active = self.active_set(voltages)
        return netlist(
            self.spec,
            list(self.conductances),
            list(self.bias_conductance),
            self.source_voltages(x)[0],
            [self.node_bounds(layer) for layer in self.spec.layers],
            self.seed,
            active=active,
            title=title,
            wires=[layer.wires for layer in self.spec.layers],
        )

    def __repr__(self) -> str:
        sizes = "-".join(str(s) for s in [self.n_inputs, *self.layer_sizes])
        return f"Chip({self.name!r}, {sizes}, {self.n_devices} devices, seed={self.seed})"
