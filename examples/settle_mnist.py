"""Settle the main example chip on a few test images and look at what the circuit did.

Run from the repository root: ``python examples/settle_mnist.py``.
"""

from __future__ import annotations

import numpy as np

import neuroemu
from neuroemu.units import format_quantity

chip = neuroemu.Chip.from_yaml("chips/crossbar_784x500.yaml")
data = neuroemu.load_dataset("mnist5k")
x, y = data.x_test[:8], data.y_test[:8]

eq = chip.settle(x)
print(chip)
print(f"sweeps {eq.sweeps}, largest KCL residual {format_quantity(eq.residual.max(), 'A')}")
hidden, output = eq.voltages
clamped = np.mean(hidden == 0.0)
print(f"hidden voltages {hidden.min():+.3f} .. {hidden.max():+.3f} V, {clamped:.0%} at a diode")
for label, scores, power in zip(y, eq.scores, eq.power, strict=True):
    print(
        f"label {label}  predicted {np.argmax(scores)}  "
        f"outputs {np.array2string(scores, precision=3, suppress_small=True)} V  "
        f"power {format_quantity(power, 'W')}"
    )

# A warm start from the previous operating point settles a nudged phase in fewer sweeps.
target = np.where(np.eye(chip.n_outputs)[y] > 0, 0.5, 0.0)
nudged = chip.settle(x, beta=1e-5, target=target, init=eq)
print(f"nudged phase (beta = 10 uS): {nudged.sweeps} sweeps from the free equilibrium")
print(f"mean output shift toward the target: {np.mean(nudged.output - eq.output):+.2e} V")
