"""The table of bad inputs in docs/bad-inputs.md, each row a test.

Every case below tries one mistake a user can make, in a workspace laid out like the
repository (``chips/``, ``devices/``, a finished run file ``run.h5``), and returns the one
line the user gets. The test checks the line is short and single, that it names what it
should (``names``), and that it is the very line docs/bad-inputs.md shows for the case.

    python -m tests.test_bad_input_table       # rewrite the table in docs/bad-inputs.md
"""

from __future__ import annotations

import contextlib
import io
import os
import platform
import re
import resource
import shutil
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import neuroemu
from neuroemu.errors import MAX_MESSAGE, NeuroemuError

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "bad-inputs.md"
XS = (ROOT / "chips" / "xs_784x100.yaml").read_text()
LEAKY = (ROOT / "chips" / "leaky_tiny.yaml").read_text()
PCM = (ROOT / "devices" / "pcm.yaml").read_text()
BEGIN, END = "<!-- cases: begin -->", "<!-- cases: end -->"
#: A finished run of ``RUN`` is in every workspace as ``run.h5``.
RUN = ("xs_784x100", "--limit", "32", "--epochs", "1", "--quiet")


@dataclass(frozen=True)
class Case:
    area: str
    tried: str  # what was tried, as the table shows it (Markdown)
    names: str  # what the message must name: the file, key or argument, and the reason
    run: Callable[[Path], str]


CASES: dict[str, Case] = {}
AREAS = ("chip YAML", "device cards", "sweep specs", "CLI arguments", "data sets", "run files")
AREAS += ("Python API",)


def case(area: str, tried: str, names: str) -> Callable[[Callable[[Path], str]], None]:
    assert area in AREAS, area

    def register(run: Callable[[Path], str]) -> None:
        CASES[run.__name__.replace("_", "-")] = Case(area, tried, names, run)

    return register


# --------------------------------------------------------------------------- the means
def normalized(text: str, workspace: Path) -> str:
    """The message with what depends on the machine replaced: the workspace's path, the
    host's name, process ids and the memory this machine has."""
    text = text.replace(f"{workspace}{os.sep}", "").replace(str(workspace), ".")
    text = text.replace(platform.node(), "HOST")
    text = re.sub(r"HOST \d+", "HOST PID", text)
    return re.sub(r"this machine has [\d.]+ [kMGT]?B", "this machine has N GB", text)


def command(workspace: Path, *argv: str) -> str:
    """Run ``neuroemu ARGV`` in ``workspace`` (in this process) and return its one error
    line, after ``neuroemu: error: `` (for ``validate``, after ``error``)."""
    from neuroemu.cli import main

    out, err = io.StringIO(), io.StringIO()
    here = Path.cwd()
    os.chdir(workspace)
    try:
        with (
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
            warnings.catch_warnings(),
        ):
            # as a command has them: deprecations in libraries are not shown
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                code = main(list(argv))
            except SystemExit as exc:  # argparse's own refusals
                code = exc.code
    finally:
        os.chdir(here)
    assert code == 2, (code, out.getvalue(), err.getvalue())
    assert "Traceback" not in err.getvalue()
    if argv[0] == "validate":
        lines = err.getvalue().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error "), err.getvalue()
        return lines[0].split(None, 1)[1]
    lines = err.getvalue().splitlines()
    assert len(lines) == 1, err.getvalue()
    assert lines[0].startswith("neuroemu: error: "), lines[0]
    return lines[0].removeprefix("neuroemu: error: ")


def refused(call: Callable[[], object]) -> str:
    """What a call of the Python API raises: a NeuroemuError, as ``Type: message``."""
    with pytest.raises(NeuroemuError) as info:
        call()
    return f"{type(info.value).__name__}: {info.value}"


def swap(old: str, new: str, text: str = XS) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def chip_file(workspace: Path, text: str, name: str = "x.yaml") -> str:
    (workspace / "chips" / name).write_text(text)
    return f"chips/{name}"


def validate(workspace: Path, text: str) -> str:
    return command(workspace, "validate", chip_file(workspace, text))


def with_device(workspace: Path, card: str, layer_device: str = "ideal_resistor") -> str:
    """``neuroemu validate`` of the XS chip whose input crossbar uses the card ``card``
    (written as devices/x.yaml)."""
    (workspace / "devices" / "x.yaml").write_text(card)
    return validate(workspace, swap(f"device: {layer_device}", "device: x"))


def sweep_file(workspace: Path, body: str) -> str:
    (workspace / "sweep.yaml").write_text(
        "name: s\nchip: chips/xs_784x100.yaml\nmode: train\nepochs: 1\nlimit: 16\n" + body
    )
    return command(workspace, "sweep", "sweep.yaml", "--out", "s.h5")


def tiny_chip():
    return neuroemu.Chip.from_yaml(ROOT / "chips" / "tiny.yaml")


# --------------------------------------------------------------------------- chip YAML
@case("chip YAML", "a quantity without its unit: `high: 5`", "layers[0].init.high")
def bare_quantity(ws: Path) -> str:
    return validate(ws, swap("high: 5 uS}", "high: 5}"))


@case("chip YAML", "the wrong unit: `gain: 4 uS`", "inputs.gain")
def wrong_unit(ws: Path) -> str:
    return validate(ws, swap("gain: 4 V", "gain: 4 uS"))


@case("chip YAML", "a quantity that overflows: `beta: 1e999 uS`", "training.beta")
def infinite_quantity(ws: Path) -> str:
    return validate(ws, swap("beta: 300 uS", "beta: 1e999 uS"))


@case("chip YAML", "a negative learning rate", "training.learning_rate")
def negative_learning_rate(ws: Path) -> str:
    return validate(ws, swap("learning_rate: [0.08, 0.32]", "learning_rate: [-0.08, 0.32]"))


@case("chip YAML", "a negative wire resistance: `wire_resistance: -1 Ohm`", "wire_resistance")
def negative_wire_resistance(ws: Path) -> str:
    return validate(ws, swap("high: 5 uS}", "high: 5 uS}\n    wire_resistance: -1 Ohm"))


@case(
    "chip YAML",
    "a driver resistance on ideal wires: `driver_resistance: 50 Ohm` without `wire_resistance`",
    "driver_resistance",
)
def driver_without_wire(ws: Path) -> str:
    return validate(ws, swap("high: 5 uS}", "high: 5 uS}\n    driver_resistance: 50 Ohm"))


@case("chip YAML", "`.nan` for a number", "training.decay")
def nan_number(ws: Path) -> str:
    return validate(ws, swap("decay: 0.99", "decay: .nan"))


@case("chip YAML", "`momentum: 1` (velocities that never decay)", "training.momentum")
def momentum_one(ws: Path) -> str:
    return validate(ws, swap("momentum: 0.9", "momentum: 1"))


@case(
    "chip YAML",
    "an accumulator scheme on continuous devices: `scheme: mixed-precision`",
    "training.scheme",
)
def scheme_on_continuous_devices(ws: Path) -> str:
    return validate(ws, swap("momentum: 0.9", "momentum: 0.9\n  scheme: mixed-precision"))


@case(
    "chip YAML",
    "a device that depresses only by RESET, trained directly: `device: pcm_pulsed`",
    "training.scheme",
)
def reset_device_without_pairs(ws: Path) -> str:
    return validate(ws, swap("device: ideal_resistor", "device: pcm_pulsed"))


@case(
    "chip YAML",
    "training by pairs on a chip whose output layer has no pair circuit: `scheme: pairs`",
    "training.scheme",
)
def pairs_without_circuit(ws: Path) -> str:
    return validate(ws, swap("momentum: 0.9", "momentum: 0.9\n  scheme: pairs"))


@case("chip YAML", "`batch_size: 0`", "training.batch_size")
def batch_size_zero(ws: Path) -> str:
    return validate(ws, swap("batch_size: 32", "batch_size: 0"))


@case("chip YAML", "a size that is a boolean: `size: true`", "layers[0].size")
def size_boolean(ws: Path) -> str:
    return validate(ws, swap("size: 100", "size: true"))


@case("chip YAML", "a mistyped key: `gian: 4 V`", "inputs.gian")
def unknown_key(ws: Path) -> str:
    return validate(ws, swap("gain: 4 V", "gian: 4 V"))


@case("chip YAML", "a key given twice", "seed")
def duplicate_key(ws: Path) -> str:
    return validate(ws, swap("seed: 0\n", "seed: 0\nseed: 1\n"))


@case("chip YAML", "YAML that does not parse (an unclosed bracket)", "line")
def broken_yaml(ws: Path) -> str:
    return validate(ws, swap("high: 5 uS}", "high: 5 uS"))


@case("chip YAML", "a list where the chip is expected", "chips/x.yaml")
def not_a_mapping(ws: Path) -> str:
    return validate(ws, "- 1\n- 2\n")


@case("chip YAML", "ten levels of nested YAML aliases (an alias bomb)", "aliases")
def alias_bomb(ws: Path) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    return validate(ws, XS + "\n".join(lines) + "\n")


@case("chip YAML", "an unknown device card: `device: rram_hf02`", "rram_hf02")
def unknown_device(ws: Path) -> str:
    return validate(ws, swap("device: ideal_resistor", "device: rram_hf02"))


@case(
    "chip YAML",
    "output nodes that connect to nothing (output init `constant 0 S`, no bias)",
    "layers[1] (output)",
)
def floating_outputs(ws: Path) -> str:
    text = swap(
        "{distribution: uniform, low: 0 uS, high: 20 uS}", "{distribution: constant, value: 0 S}"
    )
    return validate(ws, text)


@case(
    "chip YAML",
    "hidden nodes no source reaches (input crossbar and every bias at 0 S)",
    "layers[0] (hidden)",
)
def unreached_hidden(ws: Path) -> str:
    text = swap(
        "{distribution: uniform, low: 0 uS, high: 5 uS}", "{distribution: constant, value: 0 S}"
    )
    text = swap(
        "voltage: 0.1 V", "voltage: 0.1 V\n  init: {distribution: constant, value: 0 S}", text
    )
    return validate(ws, text)


@case("chip YAML", "a hidden layer of 10^9 nodes (`neuroemu simulate`)", "needs about")
def chip_too_large(ws: Path) -> str:
    path = chip_file(ws, swap("size: 100", "size: 1000000000"))
    return command(ws, "simulate", path, "--epochs", "0", "--limit", "1", "--quiet")


@case("chip YAML", "a leaky chip with `dt: 0 us`", "dynamics.dt")
def leaky_zero_dt(ws: Path) -> str:
    return validate(ws, swap("dt: 0.1 us", "dt: 0 us", LEAKY))


@case("chip YAML", "`trace_samples` that repeat a sample", "training.trace_samples")
def repeated_trace_samples(ws: Path) -> str:
    return validate(ws, swap("trace_samples: [0, 1, 2]", "trace_samples: [0, 1, 1]"))


# --------------------------------------------------------------------------- device cards
@case("device cards", "`g_max` below `g_min` (`g_min: 5 uS`, `g_max: 1 uS`)", "g_max")
def range_reversed(ws: Path) -> str:
    card = swap("g_min: 0 uS", "g_min: 5 uS", swap("g_max: 25 uS", "g_max: 1 uS", PCM))
    return with_device(ws, card)


@case(
    "device cards",
    "a programming energy on a continuous card: `pulse_energy: 1 pJ` (`pcm`)",
    "pulse_energy",
)
def energy_on_continuous_card(ws: Path) -> str:
    return with_device(ws, PCM + "pulse_energy: 1 pJ\n")


@case("device cards", "a bare number in a card: `g_max: 25`", "g_max")
def card_bare_number(ws: Path) -> str:
    return with_device(ws, swap("g_max: 25 uS", "g_max: 25", PCM))


@case("device cards", "stuck fractions adding up to more than 1", "stuck")
def stuck_over_one(ws: Path) -> str:
    card = PCM + "stuck_at_min: 0.7\nstuck_at_max: 0.5\n"
    return with_device(ws, card)


@case("device cards", "a drift exponent mean below its minimum", "drift")
def drift_mean_below_minimum(ws: Path) -> str:
    return with_device(ws, swap("nu_mean: 0.05", "nu_mean: 0.01", PCM))


@case("device cards", "a pulse of 0 (`pulses.up: 0`)", "pulses.up")
def zero_pulse(ws: Path) -> str:
    card = (ROOT / "devices" / "ecram.yaml").read_text()
    return with_device(ws, swap("up: 0.001", "up: 0", card))


@case("device cards", "a diode with a negative saturation current", "i_s")
def negative_saturation_current(ws: Path) -> str:
    card = (ROOT / "devices" / "shockley_1n4148.yaml").read_text()
    (ws / "devices" / "x.yaml").write_text(swap("i_s: 2.52 nA", "i_s: -2.52 nA", card))
    return validate(ws, swap("diode: ideal_diode", "diode: x"))


@case("device cards", "`n_levels: 1` (a device with one level cannot learn)", "n_levels")
def one_level(ws: Path) -> str:
    card = (ROOT / "devices" / "rram_hfo2.yaml").read_text()
    return with_device(ws, swap("n_levels: 64", "n_levels: 1", card))


@case("device cards", "a resistor card given where a diode is expected", "diode")
def card_of_wrong_kind(ws: Path) -> str:
    return validate(ws, swap("diode: ideal_diode", "diode: ideal_resistor"))


# --------------------------------------------------------------------------- sweep specs
@case("sweep specs", "an axis on a key that does not exist: `training.betta`", "betta")
def sweep_unknown_path(ws: Path) -> str:
    return sweep_file(ws, "axes:\n  - path: training.betta\n    values: [100 uS]\n")


@case("sweep specs", "axis values without their unit", "training.beta")
def sweep_bare_values(ws: Path) -> str:
    return sweep_file(ws, "axes:\n  - path: training.beta\n    values: [0.0001, 0.0003]\n")


@case("sweep specs", "a random axis whose bounds have two units", "axes[0].random")
def sweep_mixed_units(ws: Path) -> str:
    body = "axes:\n  - path: training.beta\n    random: {low: 100 uS, high: 1 V, count: 3}\n"
    return sweep_file(ws, body)


@case("sweep specs", "200000 points (100000 values, 2 seeds)", "100000")
def sweep_too_many_points(ws: Path) -> str:
    body = "axes:\n  - path: seed\n    random: {low: 0, high: 1000, count: 100000}\nseeds: [0, 1]\n"
    return sweep_file(ws, body)


@case("sweep specs", "a negative seed", "seeds[0]")
def sweep_negative_seed(ws: Path) -> str:
    return sweep_file(ws, "axes:\n  - path: training.decay\n    values: [0.9]\nseeds: [-1]\n")


@case("sweep specs", "`infer_at: [1e999s]`", "infer_at[0]")
def sweep_infinite_time(ws: Path) -> str:
    body = "infer_at: [1e999s]\naxes:\n  - path: training.decay\n    values: [0.9]\n"
    return sweep_file(ws, body)


@case("sweep specs", "a chip file that does not exist", "chip")
def sweep_missing_chip(ws: Path) -> str:
    (ws / "sweep.yaml").write_text(
        "name: s\nchip: chips/nope.yaml\naxes:\n  - path: training.decay\n    values: [0.9]\n"
    )
    return command(ws, "sweep", "sweep.yaml", "--out", "s.h5")


@case("sweep specs", "`--out` naming a run file, not a sweep file", "run.h5")
def sweep_onto_run_file(ws: Path) -> str:
    (ws / "sweep.yaml").write_text(
        "name: s\nchip: chips/xs_784x100.yaml\nepochs: 1\nlimit: 16\n"
        "axes:\n  - path: training.decay\n    values: [0.9]\n"
    )
    return command(ws, "sweep", "sweep.yaml", "--out", "run.h5")


# --------------------------------------------------------------------------- CLI arguments
@case("CLI arguments", "`simulate chips/nope.yaml`", "chips/nope.yaml")
def missing_chip(ws: Path) -> str:
    return command(ws, "simulate", "chips/nope.yaml")


@case("CLI arguments", "`simulate xs_784x100 --epochs -1`", "--epochs")
def negative_epochs(ws: Path) -> str:
    return command(ws, "simulate", "xs_784x100", "--epochs", "-1")


@case("CLI arguments", "`--limit 0`", "--limit")
def zero_limit(ws: Path) -> str:
    return command(ws, "simulate", "xs_784x100", "--limit", "0")


@case("CLI arguments", "`--dtype float16`", "--dtype")
def unknown_dtype(ws: Path) -> str:
    return command(ws, "simulate", "xs_784x100", "--dtype", "float16")


@case("CLI arguments", "`--dtype float32` for a chip with wire resistance", "dtype")
def wires_in_float32(ws: Path) -> str:
    argv = ("xs_784x100_wires", "--limit", "8", "--epochs", "0", "--quiet")
    return command(ws, "simulate", *argv, "--dtype", "float32")


@case("CLI arguments", "`--infer-at 1fortnight`", "infer")
def unknown_time_unit(ws: Path) -> str:
    return command(ws, "simulate", "xs_784x100", "--epochs", "0", "--infer-at", "1fortnight")


@case("CLI arguments", "`--out run.h5` onto an existing run file", "--force")
def out_exists(ws: Path) -> str:
    return command(ws, "simulate", *RUN, "--out", "run.h5")


@case("CLI arguments", "`--out` into a folder that does not exist", "nowhere")
def out_in_missing_folder(ws: Path) -> str:
    return command(ws, "simulate", *RUN, "--out", "nowhere/run.h5")


@case("CLI arguments", "`--resume` and `--out` together", "resume")
def resume_and_out(ws: Path) -> str:
    return command(ws, "simulate", *RUN, "--resume", "run.h5", "--out", "other.h5")


@case("CLI arguments", "`sweep --workers 0`", "--workers")
def zero_workers(ws: Path) -> str:
    return command(ws, "sweep", "sweep.yaml", "--workers", "0")


@case("CLI arguments", "`plot run.h5 -o` onto an existing file, without `--force`", "--force")
def plot_over_a_file(ws: Path) -> str:
    (ws / "figure.png").write_bytes(b"a figure")
    return command(ws, "plot", "run.h5", "-o", "figure.png")


@case("CLI arguments", "`check-spice --timeout 0`", "--timeout")
def zero_spice_timeout(ws: Path) -> str:
    return command(ws, "check-spice", "xs_784x100", "--timeout", "0")


@case("CLI arguments", "`check-spice --tolerance -1e-6`", "--tolerance")
def negative_spice_tolerance(ws: Path) -> str:
    return command(ws, "check-spice", "tiny", "--tolerance=-1e-6")


@case("CLI arguments", "a library chip name mistyped: `xs_784x10`", "xs_784x10")
def mistyped_library_chip(ws: Path) -> str:
    return command(ws, "simulate", "xs_784x10")


# --------------------------------------------------------------------------- data sets
@case("data sets", "`--dataset nosuch`", "nosuch")
def unknown_dataset(ws: Path) -> str:
    return command(ws, "simulate", "xs_784x100", "--dataset", "nosuch")


@case("data sets", "a folder without the four IDX files", "empty")
def empty_dataset_folder(ws: Path) -> str:
    (ws / "empty").mkdir()
    return command(ws, "simulate", "xs_784x100", "--dataset", "empty")


@case("data sets", "IDX files that are GIF images (a bad magic number)", "not an IDX file")
def bad_idx_magic(ws: Path) -> str:
    folder = ws / "idx"
    folder.mkdir()
    for part in ("train-images-idx3", "train-labels-idx1", "t10k-images-idx3", "t10k-labels-idx1"):
        (folder / f"{part}-ubyte").write_bytes(b"GIF89a" + bytes(10))  # an image, not IDX
    return command(ws, "simulate", "xs_784x100", "--dataset", "idx")


@case(
    "data sets", "samples that do not fit the chip (`simulate tiny`: 784 values, 6 inputs)", "tiny"
)
def samples_do_not_fit(ws: Path) -> str:
    return command(ws, "simulate", "tiny", "--epochs", "0")


@case("data sets", "`--dataset ''`", "--dataset")
def empty_dataset_name(ws: Path) -> str:
    return command(ws, "simulate", "xs_784x100", "--dataset", "")


# --------------------------------------------------------------------------- run files
@case("run files", "`--resume` with another `--limit`", "limit")
def resume_other_limit(ws: Path) -> str:
    return command(
        ws, "simulate", "xs_784x100", "--limit", "16", "--epochs", "2", "--resume", "run.h5"
    )


@case("run files", "`--resume` with another `--seed`", "seed")
def resume_other_seed(ws: Path) -> str:
    return command(ws, "simulate", *RUN[:-3], "--epochs", "2", "--seed", "1", "--resume", "run.h5")


@case("run files", "`--resume` with another data set", "data set")
def resume_other_dataset(ws: Path) -> str:
    argv = (*RUN[:-3], "--epochs", "2", "--dataset", "fashion-mnist", "--resume", "run.h5")
    return command(ws, "simulate", *argv)


@case("run files", "`--resume` with a chip whose learning rate changed", "learning_rate")
def resume_other_chip(ws: Path) -> str:
    path = chip_file(ws, swap("learning_rate: [0.08, 0.32]", "learning_rate: [0.08, 0.3]"))
    return command(ws, "simulate", path, *RUN[1:-3], "--epochs", "2", "--resume", "run.h5")


@case("run files", "`--resume` with `--dtype float32` (the run used float64)", "dtype")
def resume_other_dtype(ws: Path) -> str:
    argv = (*RUN[:-3], "--epochs", "2", "--dtype", "float32", "--resume", "run.h5")
    return command(ws, "simulate", *argv)


@case("run files", "`--resume` asking for fewer epochs than are done", "epochs")
def resume_fewer_epochs(ws: Path) -> str:
    return command(ws, "simulate", *RUN[:-3], "--epochs", "0", "--resume", "run.h5")


@case("run files", "a run file whose lock another host holds", "run.h5.lock")
def lock_held_elsewhere(ws: Path) -> str:
    (ws / "run.h5.lock").write_text("another-host 4242 2026-01-01T00:00:00+00:00\n")
    try:
        return command(ws, "simulate", *RUN, "--out", "run.h5", "--force")
    finally:
        (ws / "run.h5.lock").unlink()


@case("run files", "a run file cut short (`traces`)", "damaged")
def truncated_run_file(ws: Path) -> str:
    data = (ws / "run.h5").read_bytes()
    (ws / "cut.h5").write_bytes(data[: len(data) // 2])
    return command(ws, "traces", "cut.h5")


@case("run files", "a run file with one bit flipped (`traces`)", "damaged")
def flipped_bit(ws: Path) -> str:
    data = bytearray((ws / "run.h5").read_bytes())
    data[len(data) // 2] ^= 0x10
    shutil.copytree(ws / "run.h5.parts", ws / "flip.h5.parts")
    (ws / "flip.h5").write_bytes(bytes(data))
    return command(ws, "traces", "flip.h5")


@case("run files", "a text file given as a run file", "notes.h5")
def not_hdf5(ws: Path) -> str:
    (ws / "notes.h5").write_text("my notes\n")
    return command(ws, "traces", "notes.h5")


@case("run files", "a run file whose parts folder is gone", "parts")
def parts_missing(ws: Path) -> str:
    shutil.copy(ws / "run.h5", ws / "alone.h5")
    return refused(lambda: neuroemu.open_run(ws / "alone.h5").chip)


@case("run files", "a full disk while an epoch is written (files of at most 1 MB)", "epoch 2")
def full_disk(ws: Path) -> str:
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, hard))
    try:
        return command(ws, "simulate", *RUN[:-3], "--epochs", "2", "--resume", "run.h5")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


# --------------------------------------------------------------------------- Python API
@case("Python API", '`chip.settle(x, beta="300 uS")`', "beta")
def settle_beta_text(ws: Path) -> str:
    chip = tiny_chip()
    return refused(lambda: chip.settle(np.zeros((1, 6)), beta="300 uS"))


@case("Python API", "`chip.settle(x)` with samples of the wrong length", "x")
def settle_wrong_shape(ws: Path) -> str:
    chip = tiny_chip()
    return refused(lambda: chip.settle(np.zeros((2, 5))))


@case("Python API", "`chip.settle(x)` with inputs outside [0, 1]", "x")
def settle_out_of_range(ws: Path) -> str:
    chip = tiny_chip()
    return refused(lambda: chip.settle(np.full((1, 6), 2.0)))


@case("Python API", '`chip.set_conductances("abc")`', "conductances")
def set_conductances_text(ws: Path) -> str:
    chip = tiny_chip()
    return refused(lambda: chip.set_conductances("abc"))


@case("Python API", "`chip.load_state(None)`", "state")
def load_state_none(ws: Path) -> str:
    chip = tiny_chip()
    return refused(lambda: chip.load_state(None))


@case("Python API", "`chip.drift_to(float('inf'))` on a programmed chip", "time")
def drift_to_infinity(ws: Path) -> str:
    chip = tiny_chip().programmed(np.random.default_rng(0))
    return refused(lambda: chip.drift_to(float("inf")))


@case("Python API", "`chip.drift_to(3600)` on a chip never programmed", "programmed")
def drift_unprogrammed(ws: Path) -> str:
    chip = tiny_chip()
    return refused(lambda: chip.drift_to(3600.0))


@case("Python API", "`Chip.from_dict` with a bare number", "inputs.gain")
def from_dict_bare_number(ws: Path) -> str:
    data = tiny_chip().spec.to_dict()
    data["inputs"]["gain"] = 2
    return refused(lambda: neuroemu.Chip.from_dict(data))


@case("Python API", '`neuroemu.simulate("xs_784x100", epochs=2.5)`', "epochs")
def simulate_fractional_epochs(ws: Path) -> str:
    return refused(lambda: neuroemu.simulate("xs_784x100", epochs=2.5))


@case("Python API", '`neuroemu.open_run("missing.h5")`', "missing.h5")
def open_missing_run(ws: Path) -> str:
    return refused(lambda: neuroemu.open_run(ws / "missing.h5"))


@case("Python API", "`run.trace(9)` on a run of 1 epoch", "epoch 9")
def trace_beyond_the_run(ws: Path) -> str:
    run = neuroemu.open_run(ws / "run.h5")
    return refused(lambda: run.trace(9))


# --------------------------------------------------------------------------- the tests
@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    where = tmp_path_factory.mktemp("finished")
    (where / "chips").mkdir()
    from neuroemu.cli import main

    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["simulate", *RUN, "--out", str(where / "run.h5")]) == 0
    return where


def workspace_for(tmp_path: Path, finished: Path) -> Path:
    shutil.copytree(ROOT / "devices", tmp_path / "devices")
    (tmp_path / "chips").mkdir()
    shutil.copy(ROOT / "chips" / "xs_784x100.yaml", tmp_path / "chips")
    shutil.copy(finished / "run.h5", tmp_path)
    shutil.copytree(finished / "run.h5.parts", tmp_path / "run.h5.parts")
    return tmp_path


def message(name: str, workspace: Path) -> str:
    return normalized(CASES[name].run(workspace), workspace)


def documented() -> dict[str, tuple[str, str]]:
    """The table of docs/bad-inputs.md: case -> (what was tried, the message)."""
    text = DOC.read_text()
    table = text.split(BEGIN, 1)[1].split(END, 1)[0]
    rows = {}
    for line in table.splitlines():
        if not line.startswith("| `") or line.startswith("| ---"):
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        name, tried, said = cells
        rows[name.strip("`")] = (tried.replace("\\|", "|"), said.strip("`").replace("\\|", "|"))
    return rows


def test_the_table_has_every_case_and_every_area():
    rows = documented()
    assert sorted(rows) == sorted(CASES)
    assert len(CASES) >= 40
    assert {c.area for c in CASES.values()} == set(AREAS)


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_bad_input_gets_the_documented_line(name, tmp_path, finished_run):
    ws = workspace_for(tmp_path, finished_run)
    said = message(name, ws)
    assert "\n" not in said and len(said) <= MAX_MESSAGE, said
    assert CASES[name].names in said, said
    assert documented()[name][1] == said
    assert (ws / "run.h5").read_bytes() == (finished_run / "run.h5").read_bytes()  # untouched


# --------------------------------------------------------------------------- the table
def table(messages: dict[str, str]) -> str:
    lines = []
    for area in AREAS:
        lines += ["", f"### {area[0].upper()}{area[1:]}", "", "| case | tried | message |"]
        lines.append("| --- | --- | --- |")
        for name, c in CASES.items():
            if c.area == area:
                said, tried = (t.replace("|", "\\|") for t in (messages[name], c.tried))
                lines.append(f"| `{name}` | {tried} | `{said}` |")
    return "\n".join(lines) + "\n"


def rewrite_doc() -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as where:
        base = Path(where)
        finished = base / "finished"
        (finished / "chips").mkdir(parents=True)
        from neuroemu.cli import main

        with contextlib.redirect_stdout(io.StringIO()):
            assert main(["simulate", *RUN, "--out", str(finished / "run.h5")]) == 0
        messages, failed = {}, []
        for name in CASES:
            ws = workspace_for(base / name, finished)
            try:
                messages[name] = message(name, ws)
            except BaseException as exc:
                failed.append(f"{name}: {type(exc).__name__}: {exc}")
    if failed:
        sys.exit("cases that do not refuse as they should:\n" + "\n".join(failed))
    text = DOC.read_text()
    head, rest = text.split(BEGIN, 1)
    DOC.write_text(head + BEGIN + "\n" + table(messages) + "\n" + END + rest.split(END, 1)[1])
    print(f"{DOC.relative_to(ROOT)}: {len(messages)} cases", file=sys.stderr)


if __name__ == "__main__":
    rewrite_doc()
