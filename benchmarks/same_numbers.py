"""Same seed, same numbers: run a set of cases with two versions of neuroemu and compare
everything they write, bit for bit.

A change of the code's structure must not change a single result. This script checks out
the ``--before`` revision of this repository into a temporary git worktree, runs every case
with that tree and with the working tree (each in its own processes, ``PYTHONPATH`` set to
the tree), and compares:

- every run file, read by this tree's ``neuroemu.open_run`` whatever its format version:
  metrics, conductance snapshots, the final state, predictions, traces, aging (wall times
  and the ``/meta`` attributes that name a time, host, version or run aside);
- the last line of ``--json`` (wall times and ``out`` aside), and the text report of the
  README's main run (its speed line aside);
- a sweep file;
- ``chip.settle`` of every library chip (free, nudged with a trace, float32): voltages,
  residuals, power, energy, scores.

The cases: every library chip that trains, with its own settings or a few epochs of a
``--limit``; a resume against an uninterrupted run; a sweep; and, on two tiny chips and a
tiny IDX data set made here, every learning rule, loss and device model (quantised,
stochastic, pulses, programming and read noise, drift, spreads, stuck devices, DAC/ADC,
dropout, augmentation, momentum) with ``--infer-at``.

Run: ``python benchmarks/same_numbers.py --before REV`` (a few minutes per version).
Prints each difference, naming the figures that differ, and exits 1 if there is any. A
metric the working tree writes and ``REV`` does not (a new figure) is no difference: it is
listed apart, and every figure both write is compared.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
TIMINGS = {"wall_time_s", "samples_per_s", "train_wall_time_s"}
#: /meta attributes that differ between any two runs (or that a newer version adds).
META_ASIDE = {"started", "finished", "command", "host", "neuroemu_version"}


def write_idx_data(folder: Path, classes: int, seed: int = 42) -> None:
    """A tiny MNIST-format data set: 2 x 3 pixel images of ``classes`` classes."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for part, n in (("train", 200), ("t10k", 60)):
        y = rng.integers(0, classes, n).astype(np.uint8)
        prototypes = rng.integers(0, 256, (classes, 6))
        x = np.clip(prototypes[y] + rng.integers(-60, 60, (n, 6)), 0, 255).astype(np.uint8)
        (folder / f"{part}-images-idx3-ubyte").write_bytes(
            struct.pack(">IIII", 0x803, n, 2, 3) + x.tobytes()
        )
        (folder / f"{part}-labels-idx1-ubyte").write_bytes(
            struct.pack(">II", 0x801, n) + y.tobytes()
        )


#: Card keys that only set a figure (no conductance, no draw): left out of the inline cards,
#: so that a revision from before them reads the same cards.
FIGURE_KEYS = ("pulse_energy", "reset_energy")


def card(name: str, **extra: object) -> dict:
    data = yaml.safe_load((ROOT / "devices" / f"{name}.yaml").read_text())
    return {**{k: v for k, v in data.items() if k not in FIGURE_KEYS}, **extra}


def write_tiny_cases(folder: Path) -> tuple[list[Path], list[Path]]:
    """Chip specs covering every rule, loss and device model: (resistive, leaky)."""
    folder.mkdir(parents=True, exist_ok=True)
    tiny = yaml.safe_load((ROOT / "chips" / "tiny.yaml").read_text())
    leaky = yaml.safe_load((ROOT / "chips" / "leaky_tiny.yaml").read_text())
    train = {"algorithm": "ep-centred", "beta": "20 uS", "target_voltage": "0.5 V"}
    train.update(learning_rate=0.05, batch_size=8, epochs=2, dataset="mnist5k")
    resistive, leaky_cases = [], []

    def tiny_case(name, training=None, device=None, single=False, change=None):
        d = copy.deepcopy(tiny)
        d["name"] = name
        d["training"] = {**train, **(training or {})}
        if single:
            d["layers"][-1].update(readout="single", size=2)
        for layer in d["layers"] if device is not None else []:
            layer["device"] = device
        if change:
            change(d)
        path = folder / f"{name}.yaml"
        path.write_text(yaml.safe_dump(d, sort_keys=False))
        resistive.append(path)

    def periphery(d):
        d["inputs"].update(dac_bits=4, offset=0.5)
        d["layers"][-1].update(adc_bits=6, adc_range="2 V")

    tiny_case("t_mse")
    tiny_case("t_onesided", {"algorithm": "ep-one-sided", "random_sign": True})
    tiny_case("t_xent", {"loss": "cross-entropy", "temperature": "0.1 V"})
    tiny_case("t_hinge", {"loss": "hinge"}, single=True)
    augment = {"flip": True, "shift": 1, "shape": [2, 3]}
    tiny_case("t_dropout_aug", {"dropout": 0.3, "augment": augment, "trace_samples": [0, 1]})
    momentum = {"momentum": 0.9, "learning_rate": [0.05, 0.02, 0.1], "decay": 0.9}
    tiny_case("t_momentum", {**momentum, "snapshot_every": 2, "epochs": 3})
    rram = card("rram_hfo2", rounding="stochastic", step_spread=0.1, range_spread=0.05)
    tiny_case(
        "t_rram", {"learning_rate": 1.0}, {**rram, "stuck_at_min": 0.05, "stuck_at_max": 0.05}
    )
    ecram = card("ecram", range_spread=0.1, step_spread=0.2, stuck_at_max=0.1)
    tiny_case("t_ecram", {"learning_rate": 1.0}, ecram)
    tiny_case("t_pcm", {"learning_rate": 0.5}, card("pcm", stuck_at_min=0.1))
    tiny_case("t_periphery", change=periphery)
    tiny_case("t_single_encoding", change=lambda d: d["inputs"].update(encoding="single"))

    def leaky_case(name, training, asymmetric=False, change=None):
        d = copy.deepcopy(leaky)
        d["name"] = name
        if asymmetric:
            d["synapses"] = "asymmetric"
            back = {"distribution": "uniform", "low": "45 uS", "high": "55 uS"}
            d["layers"][1]["backward_init"] = back
        d["training"] = {"beta": "2 uS", "target_voltage": "0.2 V", "learning_rate": 0.5}
        d["training"].update(batch_size=10, epochs=2, dataset="mnist5k", trace_samples=[0, 2])
        d["training"].update(training)
        if change:
            change(d)
        path = folder / f"{name}.yaml"
        path.write_text(yaml.safe_dump(d, sort_keys=False))
        leaky_cases.append(path)

    def leaky_pcm(d):
        for layer in d["layers"]:
            layer["device"] = card("pcm", g_min="30 uS", g_max="70 uS", stuck_at_max=0.05)

    leaky_case("l_ep", {"algorithm": "ep-one-sided"})
    leaky_case(
        "l_epc", {"algorithm": "ep-centred", "random_sign": True, "momentum": 0.5, "beta": "0.5 uS"}
    )
    leaky_case("l_discrete", {"algorithm": "ep-discrete"})
    leaky_case("l_cep", {"algorithm": "c-ep", "learning_rate": 0.05})
    leaky_case("l_vf", {"algorithm": "vf"}, asymmetric=True)
    leaky_case("l_cvf", {"algorithm": "c-vf", "learning_rate": 0.05}, asymmetric=True)
    leaky_case("l_pcm", {"algorithm": "ep-one-sided"}, change=leaky_pcm)
    return resistive, leaky_cases


SETTLE_EVERY_CHIP = """
import sys
from pathlib import Path
import numpy as np
import neuroemu
root, out = Path(sys.argv[1]), sys.argv[2]
arrays = {}
data = neuroemu.load_dataset("mnist5k")
for path in sorted((root / "chips").glob("*.yaml")):
    chip = neuroemu.Chip.from_yaml(path)
    x = data.x_test[:12]
    if chip.n_inputs != 784:
        x = np.random.default_rng(1).random((12, chip.n_inputs))
    free = chip.settle(x)
    target = np.zeros((12, chip.layer_sizes[-1]))
    target[:, 0] = 0.3
    nudged = chip.settle(x, 2e-6, target, init=free, trace=True)
    single = chip.settle(x, dtype=np.float32)
    for name, eq in (("free", free), ("nudged", nudged), ("float32", single)):
        for k, v in enumerate(eq.voltages):
            arrays[f"{path.stem}/{name}/v{k}"] = v
        for key in ("residual", "relative_residual", "power", "energy", "scores"):
            arrays[f"{path.stem}/{name}/{key}"] = np.asarray(getattr(eq, key))
        arrays[f"{path.stem}/{name}/sweeps"] = eq.sweeps_per_sample
    for k, v in enumerate(nudged.trace.voltages):
        arrays[f"{path.stem}/trace/v{k}"] = v
    for key in ("residual", "power", "energy"):
        arrays[f"{path.stem}/trace/{key}"] = getattr(nudged.trace, key)
np.savez(out, **arrays)
"""


def run_all(tree: Path, out: Path, cases: Path) -> None:
    """Every case with the neuroemu of ``tree``, results in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(tree)}
    resistive, leaky = sorted(cases.glob("t_*.yaml")), sorted(cases.glob("l_*.yaml"))

    def neuroemu(name: str, *args: str, stdout: str | None = None) -> None:
        command = [
            sys.executable,
            "-c",
            "import sys; from neuroemu.cli import main; sys.exit(main())",
        ]
        with open(out / (stdout or f"{name}.json"), "w") as f:
            done = subprocess.run(
                [*command, *args], cwd=tree, env=env, stdout=f, stderr=subprocess.PIPE, text=True
            )
        if done.returncode != 0:
            print(f"  {tree.name}: case {name} failed: {done.stderr.strip().splitlines()[-1]}")

    for path in resistive:
        neuroemu(
            path.stem,
            "simulate",
            str(path),
            "--dataset",
            str(cases / "two"),
            "--out",
            str(out / f"{path.stem}.h5"),
            "--json",
            "--quiet",
            "--infer-at",
            "1h,1y",
        )
    for path in leaky:
        neuroemu(
            path.stem,
            "simulate",
            str(path),
            "--dataset",
            str(cases / "three"),
            "--out",
            str(out / f"{path.stem}.h5"),
            "--json",
            "--quiet",
            "--infer-at",
            "1h",
        )
    neuroemu(
        "main", "simulate", "chips/crossbar_784x500.yaml", "--out", str(out / "main.h5"), "--json"
    )
    neuroemu("main_text", "simulate", "chips/crossbar_784x500.yaml", stdout="main.txt")
    neuroemu(
        "xs",
        "simulate",
        "chips/xs_784x100.yaml",
        "--out",
        str(out / "xs.h5"),
        "--json",
        "--quiet",
        "--infer-at",
        "1s,1d",
    )
    neuroemu(
        "xs_pcm",
        "simulate",
        "chips/xs_784x100_pcm.yaml",
        "--limit",
        "600",
        "--epochs",
        "2",
        "--out",
        str(out / "xs_pcm.h5"),
        "--json",
        "--quiet",
        "--infer-at",
        "1h,1y",
        "--dtype",
        "float32",
    )
    neuroemu(
        "two_hidden",
        "simulate",
        "chips/crossbar_784x256x256.yaml",
        "--limit",
        "400",
        "--epochs",
        "2",
        "--out",
        str(out / "two_hidden.h5"),
        "--json",
        "--quiet",
    )
    neuroemu(
        "kendall",
        "simulate",
        "chips/kendall_784x100_shockley.yaml",
        "--limit",
        "100",
        "--out",
        str(out / "kendall.h5"),
        "--json",
        "--quiet",
        "--batch-size",
        "64",
    )
    for name in ("leaky_784x500", "leaky_784x500_asym"):
        neuroemu(
            name,
            "simulate",
            f"chips/{name}.yaml",
            "--limit",
            "100",
            "--epochs",
            "1",
            "--out",
            str(out / f"{name}.h5"),
            "--json",
            "--quiet",
        )
    xs = ["simulate", "chips/xs_784x100.yaml", "--limit", "500", "--quiet", "--json"]
    neuroemu("resume_first", *xs, "--epochs", "2", "--out", str(out / "resumed.h5"))
    neuroemu("resumed", *xs, "--epochs", "4", "--resume", str(out / "resumed.h5"))
    neuroemu("straight", *xs, "--epochs", "4", "--out", str(out / "straight.h5"))
    sweep = out / "sweep.yaml"
    sweep.write_text(
        "name: same_numbers\nchip: chips/xs_784x100.yaml\nmode: train\nepochs: 1\n"
        "limit: 300\ninfer_at: [1h]\naxes:\n  - path: layers[0].device.stuck_at_min\n"
        "    values: [0.0, 0.2]\nseeds: [0, 1]\n"
    )
    neuroemu(
        "sweep",
        "sweep",
        str(sweep),
        "--workers",
        "2",
        "--out",
        str(out / "sweep.h5"),
        stdout="sweep.txt",
    )
    subprocess.run(
        [sys.executable, "-c", SETTLE_EVERY_CHIP, str(tree), str(out / "settle.npz")],
        env=env,
        check=True,
    )


def compare(before: Path, after: Path) -> list[str]:
    """Every difference between two result folders. Run files are compared through
    ``neuroemu.open_run`` of this tree, which reads every version of the format: /meta, the
    metrics, every conductance snapshot, the final state (velocities included), the last
    predictions, the traces and the test passes after programming."""
    import neuroemu

    found: list[str] = []
    added: set[str] = set()

    def history_differs(where: str, a: list[dict], b: list[dict]) -> None:
        """Name each figure whose values differ; set aside figures only ``b`` reports."""
        old = {k for row in a for k in row}
        new = {k for row in b for k in row} - old
        added.update(new)
        b = [{k: v for k, v in row.items() if k not in new} for row in b]
        if len(a) != len(b):
            found.append(f"{where}: {len(a)} epochs before, {len(b)} after")
            return
        rows = zip(a, b, strict=True)
        names = sorted({k for x, y in rows for k in x.keys() | y.keys() if x.get(k) != y.get(k)})
        if names:
            found.append(f"{where}: {', '.join(names)} differ")

    def untimed(value):
        if isinstance(value, dict):
            return {k: untimed(v) for k, v in value.items() if k not in TIMINGS | {"out"}}
        if isinstance(value, list):
            return [untimed(v) for v in value]
        return value

    def arrays_differ(where: str, a: object, b: object) -> None:
        x, y = np.asarray(a), np.asarray(b)
        if x.shape != y.shape or not np.array_equal(x, y, equal_nan=x.dtype.kind == "f"):
            found.append(f"{where} differs")

    for file in sorted(before.glob("*.h5")):
        other = after / file.name
        if not other.exists():
            found.append(f"{file.name}: not written after")
            continue
        if file.name == "sweep.h5":
            continue
        a, b = neuroemu.open_run(file), neuroemu.open_run(other)
        for key, value in a.meta.items():
            if key not in META_ASIDE | {"format_version", "run_id"} and b.meta.get(key) != value:
                found.append(f"{file.name}: /meta@{key} differs")
        history_differs(f"{file.name}: metrics", untimed(a.history), untimed(b.history))
        if a.infer_at or b.infer_at:
            if untimed(a.infer_at) != untimed(b.infer_at):
                found.append(f"{file.name}: aging differs")
        for name in set(a.conductance.data_vars) | set(b.conductance.data_vars):
            arrays_differ(
                f"{file.name}: snapshots {name}", a.conductance[name], b.conductance[name]
            )
        arrays_differ(f"{file.name}: prediction", a.prediction, b.prediction)
        ours, theirs = a.chip.state(), b.chip.state()
        for i, (x, y) in enumerate(zip(ours.arrays, theirs.arrays, strict=True)):
            arrays_differ(f"{file.name}: state {i}", x, y)
        for memory in ("velocities", "residuals"):  # digital memories beside the devices
            x_arrays, y_arrays = getattr(ours, memory, None), getattr(theirs, memory, None)
            if (x_arrays is None) != (y_arrays is None):
                found.append(f"{file.name}: {memory} kept in one only")
            elif x_arrays is not None:
                for i, (x, y) in enumerate(zip(x_arrays, y_arrays, strict=True)):
                    arrays_differ(f"{file.name}: {memory} {i}", x, y)
        if a.traced_epochs != b.traced_epochs:
            found.append(f"{file.name}: traced epochs differ")
        for epoch in a.traced_epochs:
            x, y = a.trace(epoch), b.trace(epoch)
            for name in x.data_vars:
                arrays_differ(f"{file.name}: trace {epoch} {name}", x[name], y[name])
    from neuroemu.io.sweepfile import open_sweep

    if (before / "sweep.h5").exists():
        x, y = open_sweep(before / "sweep.h5"), open_sweep(after / "sweep.h5")
        for name in x.data_vars:
            if name not in TIMINGS:
                arrays_differ(f"sweep.h5: {name}", x[name], y[name])
    for file in sorted(before.glob("*.json")):
        lines = [(f / file.name).read_text().strip().splitlines() for f in (before, after)]
        if not lines[0] or not lines[1]:
            found.append(f"{file.name}: no JSON")
            continue
        a, b = (untimed(json.loads(text[-1])) for text in lines)
        if file.stem == "resumed":  # compare the epochs run after resuming
            for summary in (a, b):
                summary["history"] = [h for h in summary["history"] if h["epoch"] > 2]
        history_differs(file.name, a.pop("history", []), b.pop("history", []))
        if a != b:
            found.append(f"{file.name} differs")
    texts = [
        [line for line in (f / "main.txt").read_text().splitlines() if not line.startswith("speed")]
        for f in (before, after)
    ]
    if texts[0] != texts[1]:
        found.append("main.txt differs")
    a, b = np.load(before / "settle.npz"), np.load(after / "settle.npz")
    found += [
        f"settle {key} differs"
        for key in a.files
        if key not in b.files or not np.array_equal(a[key], b[key])
    ]
    if added:
        print(f"figures only the working tree writes (not compared): {', '.join(sorted(added))}")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="the git revision to compare with")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        cases = folder / "cases"
        write_idx_data(cases / "two", 2)
        write_idx_data(cases / "three", 3)
        write_tiny_cases(cases)
        tree = folder / "before"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(tree), args.before],
            check=True,
        )
        try:
            print(f"cases with {args.before} ...")
            run_all(tree, folder / "results_before", cases)
            print("cases with the working tree ...")
            run_all(ROOT, folder / "results_after", cases)
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False
            )
        differences = compare(folder / "results_before", folder / "results_after")
    for line in differences:
        print(f"DIFF {line}")
    print(f"{len(differences)} differences")
    sys.exit(1 if differences else 0)


if __name__ == "__main__":
    main()
