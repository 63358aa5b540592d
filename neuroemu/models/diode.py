"""The diode: SPICE's level-1 junction, in numpy.

``I_D(v) = I_s (exp(v / (n V_T)) - 1) + gmin v`` for ``v >= -3 n V_T`` and
``I_D(v) = -I_s (1 + (3 n V_T / (e v))^3) + gmin v`` below, as ngspice's ``dioload.c``
computes it (Nagel 1975, SPICE2 report ERL-M520, section on the diode model), so that
equilibria match ngspice. ``V_T = k T / q``.
"""

from __future__ import annotations

import numpy as np

#: Boltzmann constant over elementary charge (V/K), the values ngspice 39 uses
#: (CODATA 2014: k = 1.38064852e-23 J/K, q = 1.6021766208e-19 C).
K_OVER_Q = 1.38064852e-23 / 1.6021766208e-19


def thermal_voltage(temperature: float) -> float:
    """``V_T = k T / q`` (V) at ``temperature`` (K)."""
    return K_OVER_Q * temperature


def diode_current(v: np.ndarray, i_s: float, n_vt: float, gmin: float = 0.0) -> np.ndarray:
    """Junction current (A) at forward voltage ``v`` (V); ``n_vt = n V_T`` (V)."""
    v = np.asarray(v, dtype=np.float64)
    forward = v >= -3.0 * n_vt
    with np.errstate(over="ignore", divide="ignore"):
        exp_branch = i_s * np.expm1(np.where(forward, v, 0.0) / n_vt)
        a = 3.0 * n_vt / (np.e * np.where(forward, -1.0, v))
        reverse_branch = -i_s * (1.0 + a**3)
    return np.where(forward, exp_branch, reverse_branch) + gmin * v
