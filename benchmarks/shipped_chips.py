"""Every shipped chip that trains, trained as a user would: ``neuroemu simulate CHIP``
with the chip's own settings (its epochs, its data set, seed 0), one after the other.

Prints a Markdown table (docs/learning.md, "Shipped chips"): the chip, its devices, its
epochs and data set, the test error after its default run, the best and the worst test
error over its epochs, whether the run ended cleanly (exit status 0), and the wall time.
A chip that does not end cleanly is listed with the last line it printed, and the script
exits 1.

Run: ``python benchmarks/shipped_chips.py [--dataset NAME] [--only CHIP ...]``; about
2 minutes on 2 cores on the default data sets. ``--dataset fashion-mnist`` trains every
chip on Fashion-MNIST instead (60,000 training images: about 12 times as many).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def trainable() -> list[Path]:
    """The shipped chip files with a ``training:`` section."""
    return [
        p
        for p in sorted((ROOT / "chips").glob("*.yaml"))
        if "training" in yaml.safe_load(p.read_text())
    ]


def devices(path: Path) -> str:
    """The device cards of a chip's layers, in order, without repeats."""
    data = yaml.safe_load(path.read_text())
    names: list[str] = []
    for layer in data.get("layers", []):
        for key in ("device", "neuron"):
            if key in layer and layer[key] not in names:
                names.append(str(layer[key]))
    return ", ".join(names)


def train(path: Path, dataset: str | None, folder: Path) -> dict:
    command = [sys.executable, "-m", "neuroemu.cli", "simulate", str(path), "--json", "--quiet"]
    command += ["--out", str(folder / f"{path.stem}.h5")]
    if dataset is not None:
        command += ["--dataset", dataset]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    row = {"chip": path.stem, "devices": devices(path), "wall": time.perf_counter() - start}
    row["status"] = done.returncode
    if done.returncode != 0:
        row["said"] = (done.stderr.strip().splitlines() or ["(nothing)"])[-1]
        return row
    result = json.loads(done.stdout.strip().splitlines()[-1])
    errors = [entry["error"] for entry in result["history"] if entry["epoch"] > 0]
    row.update(
        epochs=result["epochs"],
        dataset=result["dataset"],
        error=result["error"],
        best=min(errors),
        worst=max(errors),
    )
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", help="train every chip on this data set instead")
    parser.add_argument("--only", nargs="+", metavar="CHIP", help="these chips only")
    args = parser.parse_args()
    chips = [p for p in trainable() if not args.only or p.stem in args.only]
    print("| chip | devices | epochs | data set | test error | best, worst epoch | ends | wall |")
    print("|---|---|---|---|---|---|---|---|")
    failed = False
    with tempfile.TemporaryDirectory() as folder:
        for path in chips:
            row = train(path, args.dataset, Path(folder))
            wall = f"{row['wall']:.0f} s"
            if row["status"] != 0:
                failed = True
                print(
                    f"| {row['chip']} | {row['devices']} | | | | | **no**: {row['said']} | {wall} |"
                )
            else:
                print(
                    f"| {row['chip']} | {row['devices']} | {row['epochs']} | {row['dataset']} "
                    f"| {100 * row['error']:.2f} % | {100 * row['best']:.2f}, "
                    f"{100 * row['worst']:.2f} % | yes | {wall} |",
                    flush=True,
                )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
