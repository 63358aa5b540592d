"""Discrete-time EP against backpropagation through time (Ernoult et al. 2019, 2020).

The rho'-gated leaky integrator stepped by Euler is the primitive-function transition
``v_{t+1} = dPhi/dv`` of discrete-time EP. The theorem of Ernoult et al. 2019 ("GDU"): from
the free fixed point, the EP neural updates ``(v^beta_{t+1} - v^beta_t) / beta`` and weight
updates ``(dPhi/dW(t+1) - dPhi/dW(t)) / beta`` equal, step by step and as beta -> 0, minus
the BPTT gradients of the loss after K steps of the free dynamics. Here the engine's
trajectories and the learning module's estimates are held to a plain numpy BPTT written from
the equations (no autodiff): the error shrinks with beta. Continual EP (Ernoult et al. 2020)
applies each step's update at once; as its learning rate shrinks its total update approaches
the BPTT gradient.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

import neuroemu
from neuroemu.learning.leaky import estimate
from neuroemu.learning.train import train_epoch

C, G_L, V_R = 1e-12, 1e-6, 1.0  # the gated card's parameters (F, S, V)
DT = 0.2e-6  # s: Euler steps of dt / tau = 0.2
READ = 0.1  # V


def chip_dict(algorithm: str = "ep-discrete", lr: float = 1.0, beta: str = "1 nS") -> dict:
    layer = lambda name, size: {  # noqa: E731
        "name": name,
        "size": size,
        "device": "ideal_resistor",
        "init": {"distribution": "uniform", "low": "46 uS", "high": "54 uS"},
    }
    return {
        "kind": "leaky",
        "name": "gdu",
        "seed": 11,
        "inputs": {"size": 5, "read_voltage": f"{READ} V"},
        "neuron": "leaky_integrator_gated",
        "synapses": "symmetric",
        "layers": [layer("h1", 6), layer("h2", 4), layer("out", 3)],
        "bias_init": {"distribution": "uniform", "low": "51 uS", "high": "54 uS"},
        "dynamics": {"dt": "0.2 us", "method": "euler", "free_steps": 4000, "nudged_steps": 6},
        "training": {
            "algorithm": algorithm,
            "beta": beta,
            "target_voltage": "0.8 V",
            "learning_rate": lr,
            "conductance_unit": "1 uS",
            "batch_size": 1,
        },
    }


# --------------------------------------------------------------------------- reference
class Reference:
    """The gated network written from its equations in numpy: transition, and the
    transposed Jacobian and parameter derivatives of one step, at a state."""

    def __init__(self, chip):
        self.w = [READ * (c.conductance - 50e-6) for c in chip.crossbars]  # A per unit rate
        self.b = [READ * (b[0] - 50e-6) for b in chip.bias_conductance]
        self.n = len(self.w)

    def currents(self, x, v):
        r = [x] + [np.clip(vk / V_R, 0, 1) for vk in v]
        out = []
        for k in range(self.n):
            i = r[k] @ self.w[k] + self.b[k]
            if k + 1 < self.n:
                i = i + r[k + 2] @ self.w[k + 1].T
            out.append(i)
        return out

    def gates(self, v, i):
        return [
            ((vk >= 0) | (ik > 0)) & ((vk <= V_R) | (ik < 0)) for vk, ik in zip(v, i, strict=True)
        ]

    def step(self, x, v, beta=0.0, y=None):
        i = self.currents(x, v)
        if beta:
            i[-1] = i[-1] + beta * (y - v[-1])
        g = self.gates(v, i)
        return [vk + DT / C * (-G_L * vk + gk * ik) for vk, ik, gk in zip(v, i, g, strict=True)]

    def vjp(self, x, v, delta):
        """``J^T delta`` of one free step at ``v`` (the gates and rho' are constant a.e.)."""
        i = self.currents(x, v)
        gate = self.gates(v, i)
        slope = [((vk > 0) & (vk < V_R)) / V_R for vk in v]  # rho'
        out = [(1 - DT * G_L / C) * d for d in delta]
        for k in range(self.n):
            gd = DT / C * gate[k] * delta[k]
            if k > 0:  # I_k = r_{k} @ W_k with r_k the rates of free layer k - 1
                out[k - 1] = out[k - 1] + (gd @ self.w[k].T) * slope[k - 1]
            if k + 1 < self.n:  # feedback from free layer k + 1 through W_{k+1}^T
                out[k + 1] = out[k + 1] + (gd @ self.w[k + 1]) * slope[k + 1]
        return out

    def grad_g(self, x, v, delta):
        """``(dF/dG)^T delta`` for every array's conductances (chain through W = V (G-G_ref))."""
        i = self.currents(x, v)
        gate = self.gates(v, i)
        r = [x] + [np.clip(vk / V_R, 0, 1) for vk in v]
        gd = [DT / C * gk * dk for gk, dk in zip(gate, delta, strict=True)]
        out = []
        for k in range(self.n):
            grad = r[k].T @ gd[k]  # forward use: into layer k
            if k > 0:
                grad = grad + gd[k - 1].T @ r[k + 1]  # backward use: into layer k - 1
            out.append(READ * grad)
        return out


@pytest.fixture(scope="module")
def setting():
    chip = neuroemu.Chip.from_dict(chip_dict())
    rng = np.random.default_rng(5)
    x = rng.uniform(0.2, 0.8, (1, 5))
    y = np.array([1])
    ref = Reference(chip)
    free = chip.settle(x, steps=4000)
    return chip, x, y, ref, free


def test_engine_fixed_point_is_the_reference_fixed_point(setting):
    _, x, _, ref, free = setting
    assert free.relative_residual.max() < 1e-12  # the free phase has converged
    moved = ref.step(x, free.voltages)
    for a, b in zip(moved, free.voltages, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    rates = np.concatenate([np.clip(v / V_R, 0, 1) for v in free.voltages], axis=1)
    assert np.all(rates < 1)  # no neuron at the top bound (where the gate chatters)
    assert np.mean((rates > 0) & (rates < 1)) > 0.55  # most neurons in the linear range
    assert 0 < rates[0, -3:].min()  # the output neurons are all active


def bptt(ref, x, v_star, y, steps):
    """delta_t = dL/dv_t for t = steps..0 of the free chain resting at v*, and the
    per-step gradient of the conductances used in the step into v_t."""
    delta = [np.zeros_like(v) for v in v_star]
    delta[-1] = v_star[-1] - y  # dL/dv_K with L = 1/2 |v_out - y|^2
    deltas, grads = [delta], []
    for _ in range(steps):
        grads.append(ref.grad_g(x, v_star, deltas[-1]))  # parameters of the step into t
        deltas.append(ref.vjp(x, v_star, deltas[-1]))
    return deltas, grads


def ep_updates(chip, x, y, free, beta, steps):
    """EP neural updates (v(t+1) - v(t)) / beta_eff and the learning module's per-step
    estimates of dC/dG from the engine's nudged trajectory."""
    target = chip.target_voltages(y, 0.8)
    nudged = chip.settle(x, beta, target, init=free, steps=steps, trace=True)
    states = nudged.trace.voltages
    beta_eff = DT * beta / C
    neural = [
        [(states[k][t + 1] - states[k][t]) / beta_eff for k in range(len(states))]
        for t in range(steps)
    ]
    rates = [
        [x] + [np.clip(states[k][t] / V_R, 0, 1) for k in range(len(states))]
        for t in range(steps + 1)
    ]
    weights = [estimate(chip, rates[t], rates[t + 1], beta, "ep")[0] for t in range(steps)]
    return neural, weights, target


def relative_errors(chip, x, y, free, ref, beta, steps=6):
    neural, weights, target = ep_updates(chip, x, y, free, beta, steps)
    deltas, grads = bptt(ref, x, free.voltages, target, steps)
    err_v, err_w = 0.0, 0.0
    for t in range(steps):
        ep_v = np.concatenate([a.ravel() for a in neural[t]])
        bp_v = -np.concatenate([a.ravel() for a in deltas[t]])
        err_v = max(err_v, np.linalg.norm(ep_v - bp_v) / np.linalg.norm(bp_v))
        ep_w = np.concatenate([a.ravel() for a in weights[t]])
        bp_w = np.concatenate([a.ravel() for a in grads[t]])
        err_w = max(err_w, np.linalg.norm(ep_w - bp_w) / np.linalg.norm(bp_w))
    return err_v, err_w


def test_ep_updates_match_bptt_step_by_step(setting):
    chip, x, y, ref, free = setting
    coarse = relative_errors(chip, x, y, free, ref, beta=1e-9)
    fine = relative_errors(chip, x, y, free, ref, beta=1e-10)
    assert fine[0] < 3e-4 and fine[1] < 3e-4
    # The mismatch is of order beta: ten times smaller beta, about ten times smaller error.
    assert coarse[0] / fine[0] > 5 and coarse[1] / fine[1] > 5


def test_bptt_gradients_are_not_trivial(setting):
    chip, x, y, ref, free = setting
    target = chip.target_voltages(y, 0.8)
    deltas, grads = bptt(ref, x, free.voltages, target, 6)
    # The error reaches the first hidden layer only after two steps back, as it must.
    assert np.abs(deltas[1][0]).max() == 0 and np.abs(deltas[2][0]).max() > 0
    assert all(np.abs(g).max() > 0 for g in grads[3])


def test_continual_ep_approaches_bptt_as_the_rate_shrinks(setting):
    chip, x, y, ref, free = setting
    target = chip.target_voltages(y, 0.8)
    _, grads = bptt(ref, x, free.voltages, target, 6)
    total = [sum(grads[t][k] for t in range(6)) for k in range(len(grads[0]))]
    errors = []
    # The weights move during the nudged phase; that perturbs the dynamics unless a step's
    # change of current is small beside the nudge's: lr u^2 |dC/dG| read << beta |y - v|.
    for lr in (1e-2, 1e-3, 1e-4):
        cep = neuroemu.Chip.from_dict(chip_dict("c-ep", lr=lr, beta="0.1 nS"))
        before = [c.conductance.copy() for c in cep.crossbars]
        train_epoch(cep, x, y, cep.spec.training, 1)
        scale = lr * 1e-12  # lr * u^2, u = 1 uS
        change = [(c.conductance - b) / -scale for c, b in zip(cep.crossbars, before, strict=True)]
        errors.append(
            np.linalg.norm(
                np.concatenate([(a - b).ravel() for a, b in zip(change, total, strict=True)])
            )
            / np.linalg.norm(np.concatenate([b.ravel() for b in total]))
        )
    assert errors[0] > 5 * errors[1] and errors[1] > 5 * errors[2]  # about linear in lr
    assert errors[2] < 0.02


def test_discrete_ep_update_is_the_telescoped_sum(setting):
    chip = neuroemu.Chip.from_dict(chip_dict("ep-discrete", lr=1e3, beta="0.1 nS"))
    _, x, y, _, _ = setting
    free = chip.settle(x)
    _, weights, _ = ep_updates(chip, x, y, free, 1e-10, 6)
    summed = [sum(w[k] for w in weights) for k in range(len(weights[0]))]
    before = [c.conductance.copy() for c in chip.crossbars]
    train_epoch(chip, x, y, chip.spec.training, 1)
    for c, b, s in zip(chip.crossbars, before, summed, strict=True):
        np.testing.assert_allclose(c.conductance - b, -1e3 * 1e-12 * s, rtol=1e-9, atol=1e-22)


def test_c_ep_leaves_a_copy_untouched(setting):
    chip = neuroemu.Chip.from_dict(chip_dict("c-ep", lr=1e-3))
    twin = copy.deepcopy(chip)
    _, x, y, _, _ = setting
    train_epoch(chip, x, y, chip.spec.training, 1)
    assert any(
        not np.array_equal(a.conductance, b.conductance)
        for a, b in zip(chip.crossbars, twin.crossbars, strict=True)
    )
