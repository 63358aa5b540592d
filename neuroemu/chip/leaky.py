"""A chip of leaky-integrating neurons: device arrays programmed from one seed.

Geometry (every array in SI; rows are the presynaptic side, columns the postsynaptic):

- layer 0 is the clamped inputs: sample ``x`` is the rate of the input rows;
- ``crossbars[k]``, ``k = 0..L-1``, is the forward array from layer ``k`` to layer
  ``k + 1``, shape (nodes of layer k, nodes of layer k+1);
- on an asymmetric chip, ``crossbars[L + k - 1]``, ``k = 1..L-1``, is the feedback array
  from layer ``k + 1`` back to layer ``k``, shape (nodes of layer k+1, nodes of layer k);
  on a symmetric chip the forward arrays are read both ways instead;
- ``bias_conductance[k]`` (1, nodes of layer k+1): one bias device per neuron, read at a
  rate of 1.

A row at rate ``r`` is driven at ``r * read_voltage``; the columns sit at virtual ground and
each subtracts a reference current ``G_ref * read_voltage * r`` per row
(``G_ref = (g_min + g_max) / 2`` of the array's card), so a synapse of conductance ``G``
carries the signed weight ``G - G_ref``:

    I_syn,j = read_voltage * sum_i (G_ij - G_ref) * rate_i      (A)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..engine.leaky import Network, run
from ..engine.states import Equilibrium, as_number
from ..errors import InputError
from ..models.neurons import NeuronModel, neuron_model
from ..models.synapse import reference
from ..spec.cards import ResistorCard
from ..spec.leaky import LeakyChipSpec
from ..spec.loader import LoadedChip
from ..spec.resistive import Initialisation
from .base import BaseChip, program, register_family
from .resistive import check_dtype

__all__ = ["LeakyChip", "reference"]


@register_family(LeakyChipSpec)
class LeakyChip(BaseChip):
    """A chip of leaky neurons built from a :class:`~neuroemu.spec.leaky.LeakyChipSpec`.

    Parameters
    ----------
    spec
        The validated spec.
    seed
        Seed of every draw made while building; ``None`` takes the spec's ``seed``.
    source
        The loaded file, kept so run files can store the exact YAML.
    """

    family = "leaky"

    def __init__(
        self, spec: LeakyChipSpec, seed: int | None = None, source: LoadedChip | None = None
    ):
        rng = self._begin(spec, seed, source)
        sizes = [spec.inputs.size] + [layer.size for layer in spec.layers]
        names = ["input"] + [layer.name for layer in spec.layers]
        for k, layer in enumerate(spec.layers):
            g = program(layer.init, layer.device, (sizes[k], sizes[k + 1]), rng)
            self._add_array(f"{names[k]}->{names[k + 1]}", layer.device, g)
        if spec.synapses == "asymmetric":
            for k in range(1, len(spec.layers)):
                layer = spec.layers[k]
                card = layer.backward_device or layer.device
                init = layer.backward_init or layer.init
                g = program(init, card, (sizes[k + 1], sizes[k]), rng)
                self._add_array(f"{names[k + 1]}->{names[k]}", card, g)
        for layer in spec.layers:
            init = spec.bias_init or Initialisation(
                distribution="constant", value=reference(layer.device)
            )
            self._add_bias(
                layer.name, layer.device, program(init, layer.device, (1, layer.size), rng)
            )
        self._model: NeuronModel | None = None
        self._kernels: tuple[Any, Any] | None = None
        self._finish()

    @classmethod
    def array_shapes(cls, spec: LeakyChipSpec) -> list[tuple[tuple[int, int], ResistorCard]]:
        """Forward arrays, feedback arrays (asymmetric chips), then biases (1, nodes)."""
        sizes = [spec.inputs.size] + [layer.size for layer in spec.layers]
        layers = spec.layers
        shapes = [((sizes[k], layer.size), layer.device) for k, layer in enumerate(layers)]
        if spec.synapses == "asymmetric":
            for k in range(1, len(layers)):
                card = layers[k].backward_device or layers[k].device
                shapes.append(((sizes[k + 1], sizes[k]), card))
        return shapes + [((1, layer.size), layer.device) for layer in layers]

    # ------------------------------------------------------------------ geometry
    @property
    def model(self) -> NeuronModel:
        """The neuron, read by Brian2 for the chip's method and step."""
        if self._model is None:
            d = self.spec.dynamics
            self._model = neuron_model(self.spec.neuron, d.method, d.dt)
        return self._model

    def kernels(self) -> tuple[Any, Any]:
        """The compiled step kernels of the neuron: (hidden, output)."""
        if self._kernels is None:
            from ..kernels.leaky import step_kernel

            model = self.model
            self._kernels = (
                step_kernel(model.hidden, model.rate),
                step_kernel(model.output, model.rate),
            )
        return self._kernels

    @property
    def n_forward(self) -> int:
        return len(self.spec.layers)

    def backward_index(self, k: int) -> int | None:
        """Index in ``crossbars`` of the feedback array into layer ``k`` (0-based free
        layer) from layer ``k + 1``, or ``None`` (symmetric chip, or the output layer)."""
        if self.spec.synapses != "asymmetric" or k + 1 >= self.n_forward:
            return None
        return self.n_forward + k

    def scores(self, output_voltages: np.ndarray) -> np.ndarray:
        """Class scores (V): the output neurons' membrane voltages."""
        return output_voltages

    def target_voltages(self, labels: np.ndarray, voltage: float) -> np.ndarray:
        """``voltage`` on the right class's output neuron, 0 V on the others."""
        labels = self.check_labels(labels)
        voltage = as_number(voltage, "voltage", "V")
        target = np.zeros((len(labels), self.layer_sizes[-1]))
        target[np.arange(len(labels)), labels] = voltage
        return target

    # ------------------------------------------------------------------ engine
    def network(self, dtype: Any = np.float64) -> Network:
        """The arrays as the engine uses them, in ``dtype`` (cached until they change);
        while :meth:`reading`, as the current read sees them (:meth:`next_read`)."""
        key = check_dtype(dtype)
        return self._laid_out(key, lambda g, b: self._lay_out(key, g, b))

    def _lay_out(
        self, dtype: np.dtype, arrays: list[np.ndarray], bias_g: list[np.ndarray]
    ) -> Network:
        """The :class:`~neuroemu.engine.leaky.Network` of conductances ``arrays`` (S, one per
        device array) and biases ``bias_g`` (S, one per layer)."""
        read = self.spec.inputs.read_voltage
        cards = [c.device for c in self.crossbars]
        weights = [
            np.ascontiguousarray(read * (g - reference(card)), dtype=dtype)
            for g, card in zip(arrays, cards, strict=True)
        ]
        n = self.n_forward
        backward: list[np.ndarray | None] = []
        for k in range(n):
            index = self.backward_index(k)
            if index is not None:
                backward.append(weights[index])
            elif self.spec.synapses == "symmetric" and k + 1 < n:
                backward.append(np.ascontiguousarray(weights[k + 1].T))
            else:
                backward.append(None)
        bias = [
            (read * (b[0] - reference(card))).astype(dtype)
            for b, card in zip(bias_g, self.bias_devices, strict=True)
        ]
        rows = [g.sum(axis=1) + reference(card) for g, card in zip(arrays, cards, strict=True)]
        cols = []
        if self.spec.synapses == "symmetric":  # read backwards too, but for the input array
            cols = [
                g.sum(axis=0) + reference(card)
                for g, card in zip(arrays[1:n], cards[1:n], strict=True)
            ]
        # The bias rows' read power at a rate of 1: each bias array's sum and G_ref (of the
        # programmed conductances, as a read of them would show them on average).
        bias_rows = [
            float(b.sum()) + reference(card)
            for b, card in zip(self.bias_conductance, self.bias_devices, strict=True)
        ]
        return Network(dtype, weights[:n], backward, bias, rows, cols, read, bias_rows)

    def settle(
        self,
        x: Any,
        beta: float = 0.0,
        target: Any = None,
        *,
        init: Any = None,
        steps: int | None = None,
        dtype: Any = np.float64,
        parallel: bool | None = None,
        trace: bool = False,
        on_step: Any = None,
        **unused: Any,
    ) -> Equilibrium:
        """Run the neurons from rest (or ``init``) for the free phase's steps, nudged by a
        conductance ``beta`` (S) toward ``target`` (V) when ``beta != 0``, and return the
        state reached. See :func:`neuroemu.engine.leaky.run` for the options; ``on_step``
        may change the chip's conductances (continual learning rules), and the steps after
        it see them."""
        for key in unused:
            if key not in ("tol", "max_sweeps", "current"):
                raise InputError(f"{key}: not an option of a leaky chip's run")
        if unused.get("current") is not None:
            raise InputError("current: a leaky chip is nudged by beta and target")
        dtype = check_dtype(dtype)
        x = self.check_inputs(x)
        self.check_batch(len(x))
        dynamics = self.spec.dynamics
        if steps is None:
            steps = dynamics.free_steps if beta == 0 else dynamics.nudged_steps
        return run(
            self.network(dtype),
            self.dac(x).astype(dtype, copy=False),
            self.kernels(),
            self.model.v_r,
            dynamics.dt,
            self.scores,
            beta,
            target,
            init=init,
            steps=steps,
            parallel=parallel,
            trace=trace,
            on_step=on_step,
            refresh=None if on_step is None else lambda: self.network(dtype),
        )

    def to_spice(self, x_row: Any, **options: Any) -> str:
        raise InputError(
            f"chip {self.name}: a leaky chip has no DC netlist (its neurons are dynamic); "
            "export-spice takes resistive chips"
        )

    def __getstate__(self) -> dict[str, Any]:
        # Copies and pickles (aging, Dask) leave the compiled kernels out.
        state = super().__getstate__()
        state["_kernels"] = None
        return state

    def __repr__(self) -> str:
        sizes = "-".join(str(s) for s in [self.n_inputs, *self.layer_sizes])
        return (
            f"LeakyChip({self.name!r}, {sizes}, {self.spec.synapses}, "
            f"{self.n_devices} devices, seed={self.seed})"
        )
