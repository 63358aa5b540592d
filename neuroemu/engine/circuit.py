"""A resistive chip's arrays laid out for the engine in one dtype (the chip lays them out:
:meth:`neuroemu.chip.resistive.Chip.circuit`).

For free layer ``k`` (0-based; layer ``l = k + 1`` of the chip) the node conductance is

    G_k = sum over rows of W_k  +  sum over columns of W_{k+1}  +  bias conductances

and the bias sources bring ``I_bias = (g_b+ - g_b-) V_b``. The input sources, at
``+a x_i`` and ``-a x_i``, bring ``I = x @ T`` with the transfer matrix
``T = a (W_0[+ half] - W_0[- half])``: one product of half the rows of ``W_0``. These depend
only on the conductances, so they are computed once per chip state, not once per sweep.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..kernels import NodeParams

if TYPE_CHECKING:
    from .wires import Chains


@dataclass(frozen=True)
class Circuit:
    """Everything a settle needs of a chip, as plain arrays in one dtype."""

    dtype: np.dtype
    weights: list[np.ndarray]  # W_k (rows, nodes of layer k), dtype
    input_transfer: np.ndarray  # A per unit input, (n_inputs, nodes of layer 1), dtype
    input_power: np.ndarray  # W per unit input squared: a^2 (row sums of both halves)
    node_conductance: list[np.ndarray]  # G_k (nodes,), dtype, without nudging
    bias_current: list[np.ndarray]  # I_bias (nodes,), dtype
    params: list[NodeParams]
    node_conductance64: list[np.ndarray]  # G_k in float64, for the power report
    bias_power: float  # W, V_b^2 times every bias conductance: their sources' own term
    v_scale: float  # V, the largest source voltage: the scale of relative residuals
    settle_time: float  # s, 5 C_node / min G: an RC estimate of the settling time
    bias_conductance: list[np.ndarray] | None = None  # S, (2, nodes) per layer, float64
    chains: list[Chains] | None = None  # the crossbars' wires, for chips with wire resistance
    #: ``params`` as the compiled sweeps take them (:func:`neuroemu.kernels.sweeps.node_layout`),
    #: laid out once per chip, or ``None``
    node_arrays: tuple | None = None
    #: What the engine derives from these arrays and keeps while they last (a circuit is
    #: laid out anew whenever the chip's arrays change): its compiled loop's arrays, and
    #: the input sources' current of the last small batch (the phases of a training step
    #: settle the same inputs).
    cache: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
