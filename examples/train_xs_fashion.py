"""Train the XS chip (784-100-10) on Fashion-MNIST on chip and plot its learning curve.

Needs Debian's package ``dataset-fashion-mnist`` (or ``--dataset PATH`` to the IDX files).
Run from the repository root::

    python examples/train_xs_fashion.py --epochs 5 --out xs_fashion.png

``--limit N`` trains and tests on the first N samples of each part, for a quick look.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator

import neuroemu
from neuroemu.engine.inference import evaluate
from neuroemu.learning.train import train_epoch

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--epochs", type=int, default=5)
parser.add_argument("--limit", type=int, default=None)
parser.add_argument("--dataset", default="fashion-mnist")
parser.add_argument("--out", default="xs_fashion.png")
args = parser.parse_args()

chip = neuroemu.Chip.from_yaml(Path(__file__).resolve().parents[1] / "chips" / "xs_784x100.yaml")
data = neuroemu.load_dataset(args.dataset).subset(args.limit, args.limit)
training = chip.spec.training
assert training is not None
epochs, train_errors, test_errors = (
    [0],
    [float("nan")],
    [evaluate(chip, data.x_test, data.y_test).error],
)
print(f"epoch 0: test error {100 * test_errors[0]:.2f} %")
for epoch in range(1, args.epochs + 1):
    start = time.perf_counter()
    report = train_epoch(chip, data.x_train, data.y_train, training, epoch)
    test = evaluate(chip, data.x_test, data.y_test)
    epochs.append(epoch)
    train_errors.append(report.train_error)
    test_errors.append(test.error)
    print(
        f"epoch {epoch}: train error {100 * report.train_error:.2f} %, "
        f"test error {100 * test.error:.2f} %, {time.perf_counter() - start:.1f} s"
    )

fig, ax = plt.subplots(figsize=(6, 4))
ax.plot(epochs, [100 * e for e in train_errors], "o-", label="train (free phase, during epoch)")
ax.plot(epochs, [100 * e for e in test_errors], "s-", label="test")
ax.set_xlabel("epoch")
ax.xaxis.set_major_locator(MaxNLocator(integer=True))
ax.set_ylabel("error (%)")
ax.set_title(f"{chip.name} on {data.name}: centred EP on chip")
ax.set_ylim(0, 100)
ax.grid(alpha=0.3)
ax.legend()
fig.tight_layout()
fig.savefig(args.out, dpi=120)
print(f"wrote {args.out}")
