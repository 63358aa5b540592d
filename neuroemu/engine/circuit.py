"""A chip's arrays laid out for the engine in one dtype.

For free layer ``k`` (0-based; layer ``l = k + 1`` of the chip) the node conductance is

    G_k = sum over rows of W_k  +  sum over columns of W_{k+1}  +  bias conductances

and the bias sources bring ``I_bias = (g_b+ - g_b-) V_b``. The input sources, at
``+a x_i`` and ``-a x_i``, bring ``I = x @ T`` with the transfer matrix
``T = a (W_0[+ half] - W_0[- half])``: one product of half the rows of ``W_0``. These depend
only on the conductances, so they are computed once per chip state, not once per sweep.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..kernels import KIND_IDEAL, KIND_LINEAR, KIND_SHOCKLEY, NodeParams
from ..kernels.layout import crossbar_sums, differential_layout

if TYPE_CHECKING:
    from ..chip.base import Chip


@dataclass(frozen=True)
class Circuit:
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

    @classmethod
    def from_chip(
        cls,
        chip: Chip,
        dtype: np.dtype,
        conductances: list[np.ndarray] | None = None,
        biases: list[np.ndarray] | None = None,
    ) -> Circuit:
        """Lay out ``chip``'s arrays, or the ``conductances`` and ``biases`` of one read of
        them (shaped like ``chip.conductances`` and ``chip.bias_conductance``)."""
        spec = chip.spec
        w64 = chip.conductances if conductances is None else conductances
        bias_g = chip.bias_conductance if biases is None else biases
        v_b = spec.bias.voltage
        gain, n_in = spec.inputs.gain, spec.inputs.size
        # Row and column sums of every crossbar, and the input transfer, one pass each.
        if spec.inputs.encoding == "differential":
            transfer, rows, cols = differential_layout(w64[0], gain)
        else:
            rows, cols = crossbar_sums(w64[0])
            transfer = gain * w64[0]
        sums = [(rows, cols)] + [crossbar_sums(w) for w in w64[1:]]
        node_g, bias_i, params = [], [], []
        for k, layer in enumerate(spec.layers):
            g = sums[k][1] + bias_g[k].sum(axis=0)
            if k + 1 < len(w64):
                g = g + sums[k + 1][0]
            node_g.append(g)
            bias_i.append((bias_g[k][0] - bias_g[k][1]) * v_b)
            lo, hi = chip.node_bounds(layer)
            if layer.diode is None:
                params.append(NodeParams(KIND_LINEAR, lo, hi))
            elif layer.diode.model == "ideal":
                params.append(NodeParams(KIND_IDEAL, lo, hi))
            else:
                d = layer.diode
                assert d.i_s is not None and d.n is not None
                n_vt = d.n * chip.thermal_voltage(layer)
                params.append(NodeParams(KIND_SHOCKLEY, lo, hi, d.i_s, n_vt, d.gmin))
        bounds = np.concatenate([np.concatenate([p.lo, p.hi]) for p in params])
        bounds = np.abs(bounds[np.isfinite(bounds)])
        v_scale = max(spec.inputs.gain, v_b, float(bounds.max(initial=0.0)))
        g_min = min(float(g.min()) for g in node_g)
        settle_time = 5.0 * spec.node_capacitance / g_min if g_min > 0 else np.inf
        if spec.inputs.encoding == "differential":
            input_power = gain**2 * (rows[:n_in] + rows[n_in:])
        else:
            input_power = gain**2 * rows
        return cls(
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
        )
