"""Train chips on chip with EP and report test error per epoch and wall time.

Each case runs ``neuroemu simulate CHIP --dataset D --epochs E --json`` (the command a user
runs), echoes its per-epoch lines as they come, and prints the test error after every epoch,
the best and last, and the wall time.

Run: ``python benchmarks/bench_accuracy.py [--dataset fashion-mnist] [--epochs 20]
[--chips crossbar_784x500 xs_784x100] [--set training.algorithm=c-vf ...]``. ``--set``
changes a key of every chip's spec (a key path as in sweep specs, the value read as YAML)
and runs the changed spec from a temporary file. Long: about 14 s per 60,000-image epoch
of crossbar_784x500 on 2 cores, evaluation included (100 epochs: 23 min).
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

from neuroemu.spec.loader import find_chip
from neuroemu.spec.sweep import set_path, split_path


def changed_chip(chip: str, changes: list[str], folder: Path) -> str:
    """The chip file to run: the library chip itself, or a copy with ``changes`` made."""
    if not changes:
        return chip
    data = yaml.safe_load(find_chip(chip).read_text())
    for change in changes:
        path, _, value = change.partition("=")
        try:
            set_path(data, path, yaml.safe_load(value))
        except ValueError:  # perhaps a key the spec leaves at its default: add it
            parent, _, key = path.rpartition(".")
            node = data
            for part in split_path(parent) if parent else []:
                node = node[part]
            if not isinstance(node, dict):
                raise
            node[key] = yaml.safe_load(value)
    out = folder / f"{Path(chip).stem}.yaml"
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(out)


def run_logged(command: list[str], label: str) -> tuple[int, str, str]:
    """Run ``command``, echoing its per-epoch lines as they come (long runs show progress).

    Returns the exit code, the whole stdout and the stderr lines that were not echoed.
    """
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.PIPE, text=True)
        assert proc.stderr is not None
        other = []
        for line in proc.stderr:
            if line.startswith("epoch "):
                print(f"  {label}: {line.rstrip()}", flush=True)
            else:
                other.append(line)
        returncode = proc.wait()
        out.seek(0)
        return returncode, out.read(), "".join(other)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--chips", nargs="+", default=["crossbar_784x500", "xs_784x100"])
    parser.add_argument("--set", action="append", default=[], metavar="PATH=VALUE")
    parser.add_argument(
        "--limit", type=int, help="first N samples of each part (a quick proxy for tuning)"
    )
    args = parser.parse_args()
    results = {}
    folder = Path(tempfile.mkdtemp(prefix="bench_accuracy_"))
    for name in args.chips:
        chip = changed_chip(name, args.set, folder)
        start = time.perf_counter()
        command = [sys.executable, "-m", "neuroemu.cli", "simulate", chip, "--quiet", "--json"]
        command += ["--dataset", args.dataset, "--epochs", str(args.epochs)]
        if args.limit:
            command += ["--limit", str(args.limit)]
        label = " ".join([name, *args.set])
        returncode, stdout, stderr = run_logged(command, label)
        wall = time.perf_counter() - start
        if returncode != 0:
            print(f"{label}: failed: {stderr.strip()}")
            continue
        summary = json.loads(stdout.strip().splitlines()[-1])
        errors = [h["error"] for h in summary["history"]]
        results[label] = {
            "dataset": args.dataset,
            "limit": args.limit,
            "epochs": args.epochs,
            "test_error_per_epoch": errors,
            "best_test_error": min(errors),
            "last_test_error": errors[-1],
            "wall_time_s": wall,
        }
        curve = " ".join(f"{100 * e:.1f}" for e in errors)
        train_s = [h.get("train_wall_time_s", 0.0) for h in summary["history"]]
        results[label]["train_wall_time_per_epoch_s"] = train_s[1:]
        train_errors = [h.get("train_error") for h in summary["history"][1:]]
        results[label]["train_error_per_epoch"] = train_errors
        print(f"{label} on {args.dataset}, {args.epochs} epochs, {wall:.0f} s")
        print(f"  test error % per epoch (0 = untrained): {curve}")
        if train_errors and None not in train_errors:
            running = " ".join(f"{100 * e:.1f}" for e in train_errors)
            print(f"  running train error % per epoch (during the epoch): {running}")
        print(f"  best {100 * min(errors):.2f} %, last {100 * errors[-1]:.2f} %", flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
