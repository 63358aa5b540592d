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

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError
from ..models.neurons import NeuronModel, neuron_model
from ..spec.cards import ResistorCard
from ..spec.leaky import LeakyChipSpec
from ..spec.loader import LoadedChip
from ..spec.resistive import Initialisation
from .base import BaseChip, Crossbar, program

if TYPE_CHECKING:
    from ..engine.settle import Equilibrium


def reference(card: ResistorCard) -> float:
    """``G_ref`` (S) of an array of this card: the middle of its range."""
    return 0.5 * (card.g_min + card.g_max)


@dataclass(frozen=True)
class Network:
    """A leaky chip's arrays for the engine in one dtype: every weight in A per unit rate,
    ``read_voltage * (G - G_ref)``."""

    dtype: np.dtype
    forward: list[np.ndarray]  # (nodes k, nodes k+1), into layer k+1
    backward: list[np.ndarray | None]  # backward[k] (nodes k+1, nodes k) into layer k, or None
    bias: list[np.ndarray]  # (nodes,) A
    read_rows: list[np.ndarray]  # per array, its row sums plus G_ref (S), for the read power
    read_cols: list[np.ndarray]  # symmetric arrays 1.. (read backwards): column sums + G_ref


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
        rng = self._begin(spec, seed, source, spec.inputs.size)
        sizes = [spec.inputs.size] + [layer.size for layer in spec.layers]
        names = ["input"] + [layer.name for layer in spec.layers]
        if spec.synapses == "asymmetric":
            for k in range(1, len(spec.layers)):
                layer = spec.layers[k]
                card = layer.backward_device or layer.device
                init = layer.backward_init or layer.init
                g = program(init, card, (sizes[k + 1], sizes[k]), rng)
                self.crossbars.append(Crossbar(f"{names[k + 1]}->{names[k]}", card, g))
        self.bias_conductance: list[np.ndarray] = []
        for layer in spec.layers:
            init = spec.bias_init or Initialisation(
                distribution="constant", value=reference(layer.device)
            )
            self.bias_conductance.append(program(init, layer.device, (1, layer.size), rng))
        self._model: NeuronModel | None = None
        self._kernels: tuple[Any, Any] | None = None
        self._finish_devices()

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
        target = np.zeros((len(labels), self.layer_sizes[-1]))
        target[np.arange(len(labels)), np.asarray(labels)] = voltage
        return target

    # ------------------------------------------------------------------ engine
    def network(self, dtype: Any = np.float64) -> Network:
        """The arrays as the engine uses them, in ``dtype`` (cached until :meth:`touch`);
        while a read stream is set (:attr:`reads`), as the current read sees them
        (:meth:`next_read`)."""
        key = np.dtype(dtype)
        if self.reads is not None:
            return self._read(key, lambda g, b: self._network(key, g, b))
        if key not in self._circuits:
            self._circuits[key] = self._network(key)
        return self._circuits[key]

    def _network(
        self,
        dtype: np.dtype,
        conductances: list[np.ndarray] | None = None,
        biases: list[np.ndarray] | None = None,
    ) -> Network:
        read = self.spec.inputs.read_voltage
        arrays = self.conductances if conductances is None else conductances
        bias_g = self.bias_conductance if biases is None else biases
        weights = [
            np.ascontiguousarray(read * (g - reference(c.device)), dtype=dtype)
            for g, c in zip(arrays, self.crossbars, strict=True)
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
        pairs = list(zip(arrays, self.crossbars, strict=True))
        rows = [g.sum(axis=1) + reference(c.device) for g, c in pairs]
        cols = []
        if self.spec.synapses == "symmetric":  # read backwards too, but for the input array
            cols = [g.sum(axis=0) + reference(c.device) for g, c in pairs[1:n]]
        return Network(dtype, weights[:n], backward, bias, rows, cols)

    def settle(
        self,
        x: Any,
        beta: float = 0.0,
        target: Any = None,
        **options: Any,
    ) -> Equilibrium:
        """Run the neurons from rest (or ``init``) for the free phase's steps, nudged by a
        conductance ``beta`` (S) toward ``target`` (V) when ``beta != 0``, and return the
        state reached. See :func:`neuroemu.engine.leaky.run` for the options."""
        from ..engine.leaky import run

        return run(self, x, beta=beta, target=target, **options)

    def to_spice(self, x_row: Any, **options: Any) -> str:
        raise InputError(
            f"chip {self.name}: a leaky chip has no DC netlist (its neurons are dynamic); "
            "export-spice takes resistive chips"
        )

    def __getstate__(self) -> dict[str, Any]:
        # Copies and pickles (aging, Dask) leave the compiled kernels and cached arrays out.
        state = dict(self.__dict__)
        state["_kernels"] = None
        state["_circuits"] = {}
        return state

    def __repr__(self) -> str:
        sizes = "-".join(str(s) for s in [self.n_inputs, *self.layer_sizes])
        return (
            f"LeakyChip({self.name!r}, {sizes}, {self.spec.synapses}, "
            f"{self.n_devices} devices, seed={self.seed})"
        )
