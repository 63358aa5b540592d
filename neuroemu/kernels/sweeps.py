"""The sweeps of a layered resistive circuit in one compiled call.

A sweep solves the layers in a fixed order (even ones, then odd ones), each node exactly
given its neighbours (:mod:`.nodes`): layer ``k``'s current from its neighbours at ``V = 0``
is ``V_{k-1} W_k + V_{k+1} W_{k+1}^T`` (A), computed by BLAS, then every node is solved.
Sweeps repeat until every row of the batch has moved by at most ``threshold`` (V) in a
sweep, or ``max_sweeps``.

This is :meth:`neuroemu.engine.settle._Chunk.sweep` and its stopping rule without the
interpreter between the steps: the same products (BLAS, held to one thread by the engine),
the same node solves and the same comparisons in the same order; it saves the per-sweep
calls that dominate a small batch's settle. Numba's products call scipy's OpenBLAS and
numpy's call numpy's own, so the two loops give the same bits where the two libraries are
one version (``tests/test_sweeps.py`` checks the bits then, and agreement to rounding
otherwise).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import njit

from .nodes import NodeParams, _report_serial, _solve_serial


@njit(cache=True, nogil=True, error_model="numpy")
def _sweep_until(
    weights,
    i_in,
    const,
    node_g,
    kinds,
    lo,
    hi,
    i_s,
    n_vt,
    gmin,
    v,
    order,
    change,
    row_change,
    done,
    per_sample,
    threshold,
    sweeps,
    max_sweeps,
):
    n_layers = len(v)
    while sweeps < max_sweeps:
        row_change[:] = 0.0
        for k in order:
            out = i_in[k]
            if k > 0:
                out[:, :] = np.dot(v[k - 1], weights[k])
                if k + 1 < n_layers:
                    out += np.dot(v[k + 1], weights[k + 1].T)
            elif k + 1 < n_layers:
                out[:, :] = np.dot(v[k + 1], weights[k + 1].T)
            else:
                out[:, :] = 0.0
            _solve_serial(
                kinds[k], out, const[k], node_g[k], lo[k], hi[k], i_s[k], n_vt[k], gmin[k],
                v[k], change,
            )  # fmt: skip
            for b in range(change.shape[0]):  # np.maximum: a NaN stays
                if change[b] > row_change[b] or change[b] != change[b]:
                    row_change[b] = change[b]
        sweeps += 1
        finished = True
        for b in range(done.shape[0]):
            if not done[b] and row_change[b] <= threshold:
                per_sample[b] = sweeps
                done[b] = True
            finished = finished and done[b]
        if finished:
            break
    for b in range(done.shape[0]):
        if not done[b]:
            per_sample[b] = sweeps
    return sweeps


@njit(cache=True, nogil=True, error_model="numpy")
def _report_layers(
    weights, i_in, const, node_g, kinds, lo, hi, i_s, n_vt, gmin, v, g_chip, inv, sources, out
):
    """Every layer's figures into ``out`` (3, rows), as
    :meth:`neuroemu.engine.settle._Chunk.finish` and
    :func:`neuroemu.kernels.nodes.report_nodes` form them: a layer solved first in the last
    sweep takes its neighbours' currents (and ``const``) again, one solved second still holds
    its exact ``I_in``."""
    n_layers = len(v)
    for k in range(n_layers):
        if k % 2 == 0 and n_layers > 1:
            out_k = i_in[k]
            if k > 0:
                out_k[:, :] = np.dot(v[k - 1], weights[k])
                if k + 1 < n_layers:
                    out_k += np.dot(v[k + 1], weights[k + 1].T)
            else:
                out_k[:, :] = np.dot(v[k + 1], weights[k + 1].T)
            c = const[k]
            for b in range(out_k.shape[0]):
                row = b if b < c.shape[0] else 0
                for j in range(out_k.shape[1]):
                    out_k[b, j] += c[row, j]
        _report_serial(
            kinds[k], i_in[k], node_g[k], lo[k], hi[k], i_s[k], n_vt[k], gmin[k], v[k],
            g_chip[k], sources[k], True, inv[k], out,
        )  # fmt: skip


def _frozen(a: np.ndarray) -> np.ndarray:
    """A read-only view of ``a``: every array a tuple of the layout holds is read-only, so
    the tuple has one Numba type whether its arrays came writable (a chip's own) or not (a
    read of the arrays, a library chip's bounds)."""
    view = a.view()
    view.flags.writeable = False
    return view


def _bound_rows(bound: np.ndarray) -> np.ndarray:
    """A layer's diode bounds (V) as rows: (1, nodes) for the whole batch, or (rows, nodes)."""
    return _frozen(np.ascontiguousarray(np.atleast_2d(bound), dtype=np.float64))


class Sweeper:
    """The arrays of one block of rows laid out for :func:`_sweep_until`, checked once.

    ``layout`` holds what does not change with the rows (:func:`layout`); ``i_in``, ``v``
    and ``const`` (A, V, A; rows of the block, or one row for ``const``) are as the engine
    holds them: ``v`` and ``i_in`` are written in place."""

    def __init__(
        self,
        layout: tuple,
        i_in: Sequence[np.ndarray],
        v: Sequence[np.ndarray],
        const: Sequence[np.ndarray],
    ):
        dtype = layout[0][0].dtype
        for name, arrays in (("v", v), ("i_in", i_in), ("const", const)):
            for k, a in enumerate(arrays):
                if a.ndim != 2 or a.dtype != dtype or not a.flags.c_contiguous:
                    raise ValueError(f"{name}[{k}]: expected C-contiguous 2-D {dtype} rows")
        self.layout = layout
        self.i_in, self.v, self.const = tuple(i_in), tuple(v), tuple(const)

    def run(
        self,
        change: np.ndarray,
        row_change: np.ndarray,
        done: np.ndarray,
        per_sample: np.ndarray,
        threshold: float,
        sweeps: int,
        max_sweeps: int,
    ) -> int:
        """Sweep on from ``sweeps`` done until every row not yet ``done`` has moved by at
        most ``threshold`` (V) in a sweep, or ``max_sweeps``: rows that meet it are marked
        in ``done`` with their count in ``per_sample``, rows that never do get the last
        count. ``row_change`` holds each row's largest move in the last sweep; returns the
        sweeps done in all."""
        weights, node_g, kinds, lo, hi, i_s, n_vt, gmin, order = self.layout[:9]
        return int(
            _sweep_until(
                weights, self.i_in, self.const, node_g, kinds, lo, hi, i_s, n_vt, gmin,
                self.v, order, change, row_change, done, per_sample, float(threshold),
                int(sweeps), int(max_sweeps),
            )
        )  # fmt: skip

    def report(self, sources: Sequence[np.ndarray], out: np.ndarray) -> None:
        """Each row's largest KCL residual (A), largest relative residual and the static
        power of the layers (W) into ``out`` (3, rows), float64, as
        :func:`neuroemu.kernels.nodes.report_nodes` folds them layer by layer, with
        ``sources`` (A, per layer: rows of the block, or one row) the current each layer's
        own sources bring (the chip's, without a nudge)."""
        weights, node_g, kinds, lo, hi, i_s, n_vt, gmin, _, g_chip, inv = self.layout
        rows = tuple(_source_rows(a, v) for a, v in zip(sources, self.v, strict=True))
        _report_layers(
            weights, self.i_in, self.const, node_g, kinds, lo, hi, i_s, n_vt, gmin, self.v,
            g_chip, inv, rows, out,
        )  # fmt: skip


def _source_rows(source: np.ndarray, v: np.ndarray) -> np.ndarray:
    """A layer's source current as report_nodes takes it: C-contiguous rows (or one row)."""
    return np.ascontiguousarray(source.reshape(1, -1) if source.ndim == 1 else source)


def node_layout(params: Sequence[NodeParams]) -> tuple:
    """The layers' node ``params`` as the compiled loop takes them: kinds, bounds as rows,
    diode constants, and the order a sweep solves the layers in (even, then odd)."""
    n = len(params)
    return (
        np.array([p.kind for p in params], dtype=np.int64),
        tuple(_bound_rows(p.lo) for p in params),
        tuple(_bound_rows(p.hi) for p in params),
        np.array([p.i_s for p in params], dtype=np.float64),
        np.array([p.n_vt for p in params], dtype=np.float64),
        np.array([p.gmin for p in params], dtype=np.float64),
        np.array(list(range(0, n, 2)) + list(range(1, n, 2)), dtype=np.int64),
    )


def layout(
    weights: Sequence[np.ndarray],
    node_g: Sequence[np.ndarray],
    nodes: tuple,
    g_chip: Sequence[np.ndarray] | None = None,
    scale: float = 1.0,
) -> tuple:
    """What :class:`Sweeper` needs of a circuit that does not change with the rows: the
    crossbars ``weights`` (S; the first, the input crossbar, is not used), the node
    conductances ``node_g`` (S), both in the voltages' dtype, and the layers' node
    parameters as :func:`node_layout` gives them; for :meth:`Sweeper.report`, each node's
    conductance to the chip's own elements ``g_chip`` (S, float64; default ``node_g``) and
    the voltage ``scale`` (V) of the relative residuals."""
    dtype = node_g[0].dtype
    g_chip = node_g if g_chip is None else g_chip
    return (
        tuple(_frozen(np.ascontiguousarray(w, dtype=dtype)) for w in weights),
        tuple(_frozen(np.ascontiguousarray(g, dtype=dtype)) for g in node_g),
        *nodes,
        tuple(_frozen(np.ascontiguousarray(g, dtype=np.float64)) for g in g_chip),
        # 1 / (g scale), as report_nodes forms it: within an ulp of dividing each
        tuple(_frozen(1.0 / (g.astype(np.float64) * scale)) for g in node_g),
    )
