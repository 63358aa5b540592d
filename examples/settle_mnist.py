"""Train the main example chip, then settle it on a few test images and look at what the
circuit did.

Run from the repository root: ``python examples/settle_mnist.py`` (about 10 s: the
chip's three epochs on the embedded MNIST subset, the run of the README).

The output nodes of this chip settle at a few millivolts (its training target is 6.25 mV on
the right class's node), so voltages are printed in mV. Before training, with the
conductances drawn from its seed, the outputs lie within a few tenths of a millivolt of each
other and the largest is on a class by chance; after training the right class's node stands
out by several millivolts.
"""

from __future__ import annotations

import numpy as np

import neuroemu
from neuroemu.units import format_quantity

SPEC = "chips/crossbar_784x500.yaml"
data = neuroemu.load_dataset("mnist5k")
x, y = data.x_test[:8], data.y_test[:8]

programmed = neuroemu.Chip.from_yaml(SPEC)
run = neuroemu.simulate(SPEC)  # trains the chip as `neuroemu simulate` does
print(f"{run}\n")


def show(name: str, chip: neuroemu.Chip) -> neuroemu.Equilibrium:
    eq = chip.settle(x)
    hidden, output = eq.voltages
    at_diode = np.mean(hidden == 0.0)
    print(f"{name}: {chip}")
    print(f"  sweeps {eq.sweeps}, largest KCL residual {format_quantity(eq.residual.max(), 'A')}")
    print(
        f"  hidden voltages {1e3 * hidden.min():+.2f} .. {1e3 * hidden.max():+.2f} mV, "
        f"{at_diode:.0%} held at 0 V by a diode"
    )
    for label, out, power in zip(y, output, eq.power, strict=True):
        shown = np.array2string(
            1e3 * out, precision=3, floatmode="fixed", sign=" ", max_line_width=200
        )
        print(
            f"  label {label}  predicted {np.argmax(out)}  outputs {shown} mV  "
            f"power {format_quantity(power, 'W')}"
        )
    return eq


show("as programmed", programmed)
trained = run.chip
free = show("trained", trained)

# A nudged phase: each output node is tied to a source at its target (6.25 mV on the right
# class's node, 0 V elsewhere) through the conductance beta. A warm start from the free
# operating point settles it in a few sweeps.
training = trained.spec.training
target = trained.target_voltages(y, training.target_voltage)
nudged = trained.settle(x, beta=training.beta, target=target, init=free)
beta = format_quantity(training.beta, "S")
print(f"nudged phase (beta = {beta}): {nudged.sweeps} sweeps from the free equilibrium")
before, after = (np.abs(eq.output - target).mean() for eq in (free, nudged))
print(
    f"mean distance of the outputs to their targets: {format_quantity(before, 'V')} free, "
    f"{format_quantity(after, 'V')} nudged"
)
