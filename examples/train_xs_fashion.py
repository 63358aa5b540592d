"""Train the XS chip (784-100-10) on Fashion-MNIST on chip and plot its learning curve.

Needs Debian's package ``dataset-fashion-mnist`` (or ``--dataset PATH`` to the IDX files).
Run from the repository root::

    python examples/train_xs_fashion.py --epochs 5 --out xs_fashion.png

``--limit N`` trains and tests on the first N samples of each part, for a quick look.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

import neuroemu
from neuroemu.run import Event

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--epochs", type=int, default=5)
parser.add_argument("--limit", type=int, default=None)
parser.add_argument("--dataset", default="fashion-mnist")
parser.add_argument("--out", default="xs_fashion.png")
args = parser.parse_args()


def report(event: Event) -> None:
    """Print each evaluated epoch as the run goes."""
    if event.kind == "epoch":
        f = event.figures
        train = f" train error {100 * f['train_error']:.2f} %," if "train_error" in f else ""
        print(f"epoch {f['epoch']}:{train} test error {100 * f['error']:.2f} %")


chip = Path(__file__).resolve().parents[1] / "chips" / "xs_784x100.yaml"
run = neuroemu.simulate(
    chip, dataset=args.dataset, epochs=args.epochs, limit=args.limit, progress=report
)

metrics = run.metrics
fig = Figure(figsize=(6, 4))
ax = fig.subplots()
ax.plot(metrics.epoch, 100 * metrics.train_error, "o-", label="train (free phase, during epoch)")
ax.plot(metrics.epoch, 100 * metrics.error, "s-", label="test")
ax.set_xlabel("epoch")
ax.xaxis.set_major_locator(MaxNLocator(integer=True))
ax.set_ylabel("error (%)")
ax.set_title(f"{run.chip.name} on {run.meta['dataset']}: centred EP on chip")
ax.set_ylim(0, 100)
ax.grid(alpha=0.3)
ax.legend()
fig.tight_layout()
fig.savefig(args.out, dpi=120)
print(f"wrote {args.out}")
