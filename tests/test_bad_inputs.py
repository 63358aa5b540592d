"""Bad inputs are refused clearly: units, ranges, floating nodes, memory, YAML aliases, long
messages, learning rates that throw devices to their bounds, and the chip's arguments. Each
refusal is one short line naming the file, key or argument, and leaves nothing behind."""

from __future__ import annotations

import shutil
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml

import neuroemu
from neuroemu.errors import MAX_MESSAGE, InputError, NeuroemuError, NeuroemuWarning, SpecError
from neuroemu.learning.train import check_first_update, train_epoch
from neuroemu.spec import Training
from neuroemu.spec.loader import chip_from_dict, iter_validate, list_library, load_chip
from neuroemu.spec.sweep import load_sweep

ROOT = Path(__file__).resolve().parents[1]
XS = (ROOT / "chips" / "xs_784x100.yaml").read_text()
TINY = (ROOT / "chips" / "tiny.yaml").read_text()


def data_of(text: str) -> dict:
    return yaml.safe_load(text)


@pytest.fixture
def workspace(tmp_path):
    """A chips/ and devices/ layout like the repository's, to write broken files into."""
    (tmp_path / "chips").mkdir()
    shutil.copytree(ROOT / "devices", tmp_path / "devices")
    return tmp_path


def validation_error(workspace: Path, text: str, name: str = "x.yaml") -> str:
    """The one error ``neuroemu validate`` reports for a chip file of ``text``, after the
    file's name."""
    path = workspace / "chips" / name
    path.write_text(text)
    ((_, error),) = list(iter_validate([path]))
    assert error is not None, "expected an error"
    assert "\n" not in error and len(error) <= MAX_MESSAGE, error
    assert error.startswith(f"chips/{name}: ") or f"{name}: " in error, error
    return error.split(f"{name}: ", 1)[1]


def swap(old: str, new: str, text: str = XS) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def neuroemu_warnings(record: list) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, NeuroemuWarning)]


# --------------------------------------------------------------------------- units
@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "high: 5 uS}",
            "high: 5}",
            "layers[0].init.high: give a unit: '5 S' if SI is meant, or e.g. '5 uS' (got a bare 5)",
        ),
        ("gain: 4 V", "gain: 4", "inputs.gain: give a unit: '4 V' if SI is meant"),
        (
            "beta: 300 uS",
            "beta: 0.0003",
            "training.beta: give a unit: '300 uS' if SI is meant (got a bare 0.0003)",
        ),
        ("low: 0 uS, high: 5 uS", "low: 0, high: 5 uS", "layers[0].init.low: give a unit"),
        ("target_voltage: 50 mV", "target_voltage: '0.05'", "training.target_voltage: give a unit"),
        ("conductance_unit: 1 mS", "conductance_unit: 1e-3", "training.conductance_unit: give a"),
    ],
)
def test_a_bare_number_for_a_quantity_is_refused(workspace, old, new, expected):
    assert validation_error(workspace, swap(old, new)).startswith(expected)


def test_a_bare_number_in_a_card_file_or_inline_card_is_refused(workspace):
    card = (ROOT / "devices" / "shockley_1n4148.yaml").read_text()
    path = workspace / "devices" / "hot.yaml"
    path.write_text(card.replace("temperature: 27 degC", "temperature: 300"))
    ((_, error),) = list(iter_validate([path]))
    assert error.endswith(
        "hot.yaml: temperature: give a unit: '300 K' or '300 degC' (got a bare 300)"
    )
    inline = swap("device: ideal_resistor\n    diode", "device: {g_min: 0, g_max: 1e-4}\n    diode")
    assert validation_error(workspace, inline).startswith(
        "layers[0].device.g_min: give a unit: '0 S' if SI is meant"
    )


def test_chip_from_dict_needs_units_and_python_numbers_are_si():
    data = data_of(TINY)
    data["inputs"]["gain"] = 2
    with pytest.raises(SpecError, match=r"^<dict>: inputs.gain: give a unit: '2 V' if SI"):
        neuroemu.Chip.from_dict(data)
    data["inputs"]["gain"] = "2 V"
    assert neuroemu.Chip.from_dict(data).spec.inputs.gain == 2.0
    # In Python, numbers are SI: the models take them as they are.
    assert Training(beta=3e-4, target_voltage=0.05, learning_rate=0.1).beta == 3e-4


@pytest.mark.parametrize("path", list_library("chips"), ids=lambda p: p.stem)
def test_a_spec_written_with_units_reads_back_the_same(path):
    spec = load_chip(path).spec
    written = spec.to_dict()
    assert chip_from_dict(written, "<to_dict>", need_units=True) == spec
    # The validated JSON form (run files) holds bare SI numbers and reads back as such.
    assert chip_from_dict(spec.model_dump(mode="json"), "<json>") == spec


def test_to_dict_builds_the_same_chip():
    chip = neuroemu.Chip.from_yaml("tiny")
    again = neuroemu.Chip.from_dict(chip.spec.to_dict())
    for a, b in zip(chip.device_arrays(), again.device_arrays(), strict=True):
        assert np.array_equal(a[0], b[0])


def write_sweep(folder: Path, axes: str) -> Path:
    path = folder / "sweep.yaml"
    path.write_text(f"name: s\nchip: {ROOT / 'chips' / 'xs_784x100.yaml'}\nmode: train\n{axes}")
    return path


def test_sweep_axis_values_need_units(tmp_path):
    bare = write_sweep(tmp_path, "axes:\n  - path: training.beta\n    values: [0.0001]\n")
    with pytest.raises(
        SpecError,
        match=r"sweep.yaml \(point training.beta=0.0001\): "
        r"training.beta: give a unit: '100 uS' if SI is meant",
    ):
        load_sweep(bare)
    ok = write_sweep(tmp_path, "axes:\n  - path: training.beta\n    values: [100 uS]\n")
    assert load_sweep(ok).point_spec((0, 0)).training.beta == pytest.approx(1e-4)


def test_random_sweep_axes_of_quantities_carry_their_unit(tmp_path):
    axes = "axes:\n  - path: training.beta\n    random: {low: 100 uS, high: 1 mS, count: 3}\n"
    sweep = load_sweep(write_sweep(tmp_path, axes))
    assert all(value.endswith(" S") for value in sweep.values[0])
    betas = [sweep.point_spec((i, 0)).training.beta for i in range(3)]
    assert all(1e-4 <= b <= 1e-3 for b in betas)
    bare = "axes:\n  - path: training.beta\n    random: {low: 0.0001, high: 0.001, count: 2}\n"
    with pytest.raises(SpecError, match=r"training.beta: give a unit"):
        load_sweep(write_sweep(tmp_path, bare))
    mixed = "axes:\n  - path: training.beta\n    random: {low: 100 uS, high: 1 V, count: 2}\n"
    with pytest.raises(SpecError, match=r"axes\[0\].random: low and high need the same unit"):
        load_sweep(write_sweep(tmp_path, mixed))


# --------------------------------------------------------------------------- ranges
@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("beta: 300 uS", "beta: 1e999 uS", "training.beta: must be finite (got '1e999 uS')"),
        (
            "learning_rate: [0.08, 0.32]",
            "learning_rate: .inf",
            "training.learning_rate: learning rates must be finite and > 0 (got inf)",
        ),
        (
            "learning_rate: [0.08, 0.32]",
            "learning_rate: [0.08, .nan]",
            "training.learning_rate: learning rates must be finite and > 0 (got nan)",
        ),
        (
            "learning_rate: [0.08, 0.32]",
            "learning_rate: -0.1",
            "training.learning_rate: learning rates must be finite and > 0 (got -0.1)",
        ),
        (
            "learning_rate: [0.08, 0.32]",
            "learning_rate: []",
            "training.learning_rate: give one rate, or one per crossbar",
        ),
        ("decay: 0.99", "decay: .nan", "training.decay: Input should be a finite number"),
        ("momentum: 0.9", "momentum: .inf", "training.momentum: Input should be a finite number"),
        ("beta: 300 uS", "beta: -300 uS", "training.beta: must be > 0 S"),
        ("target_voltage: 50 mV", "target_voltage: -50 mV", "training.target_voltage: must be > 0"),
        ("beta: 300 uS", "beta: 300 uS\n  temperature: -1 V", "training.temperature: must be > 0"),
        ("training:", "solver: {tol: .inf}\ntraining:", "solver.tol: Input should be a finite"),
        ("training:", "node_capacitance: -1 pF\ntraining:", "node_capacitance: must be >= 0 F"),
        (
            "low: 0 uS, high: 5 uS",
            "low: -1 uS, high: 5 uS",
            "layers[0].init.low: conductance must be >= 0 (-1 uS < 0 S)",
        ),
        ("size: 100", "size: true", "layers[0].size: expected a whole number, got a boolean"),
        ("batch_size: 32", "batch_size: 2.5", "training.batch_size: Input should be a valid int"),
        (
            "gain: 4 V",
            "gian: 4 V",
            "inputs.gian: unknown key (allowed: dac_bits, encoding, "
            "gain, offset, size); did you mean gain?",
        ),
    ],
)
def test_non_finite_negative_and_mistyped_knobs_are_refused(workspace, old, new, expected):
    assert validation_error(workspace, swap(old, new)).startswith(expected)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("nu_min: 0.049", "nu_min: -0.1", "drift.nu_min: Input should be greater than or equal"),
        ("relative: 0.01", "relative: .inf", "read_noise.relative: Input should be a finite"),
        ("coefficients: [0.26348", "coefficients: [.nan", "programming_noise.coefficients[0]: "),
        ("t0: 20 s", "t0: 1e999 s", "drift.t0: must be finite"),
    ],
)
def test_a_card_refuses_non_finite_and_negative_values(workspace, old, new, expected):
    text = (ROOT / "devices" / "pcm.yaml").read_text()
    path = workspace / "devices" / "bad.yaml"
    path.write_text(swap(old, new, text))
    ((_, error),) = list(iter_validate([path]))
    assert error.split("bad.yaml: ", 1)[1].startswith(expected), error


def test_a_yaml_number_without_a_dot_is_still_a_learning_rate(workspace):
    path = workspace / "chips" / "x.yaml"
    path.write_text(swap("learning_rate: [0.08, 0.32]", "learning_rate: [8e-2, 3.2e-1]"))
    assert load_chip(path).spec.training.learning_rate == (0.08, 0.32)


# --------------------------------------------------------------------------- YAML and messages
BOMB = 'a: &a ["x","x","x","x","x","x","x","x","x","x"]\n' + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 10) + "]\n"
    for i in range(9)
)


def test_a_yaml_alias_bomb_is_refused_at_once(workspace):
    start = time.perf_counter()
    error = validation_error(workspace, BOMB)
    assert time.perf_counter() - start < 2.0
    assert error.startswith(
        "YAML aliases at line 4, column 29: aliases expand the file by more than 10000 values"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "name: &n [1, *n]\n",
            "YAML aliases at line 1, column 14: alias *n repeats a node inside itself",
        ),
        (
            "x: &x 1\ny: [" + ", ".join(["*x"] * 101) + "]\n",
            "YAML aliases at line 2, column 405: more than 100 aliases; write the values out",
        ),
    ],
)
def test_recursive_and_too_many_aliases_are_refused(workspace, text, expected):
    assert validation_error(workspace, text) == expected


def test_a_few_aliases_are_fine(workspace):
    text = swap(
        "init: {distribution: uniform, low: 0 uS, high: 5 uS}",
        "init: &small {distribution: uniform, low: 0 uS, high: 5 uS}",
    )
    text = swap("init: {distribution: uniform, low: 0 uS, high: 20 uS}", "init: *small", text)
    path = workspace / "chips" / "x.yaml"
    path.write_text(text)
    assert load_chip(path).spec.output.init.high == pytest.approx(5e-6)


def test_a_message_echoing_a_large_input_is_short(workspace):
    many = "trace_samples: [" + ", ".join(["1"] * 5000) + "]"
    error = validation_error(workspace, swap("trace_samples: [0, 1, 2]", many))
    assert error.startswith(
        "training.trace_samples: must be distinct test sample indices >= 0 (got [1, 1, 1,"
    )
    assert error.endswith("...)")
    with pytest.raises(SpecError) as info:
        chip_from_dict({**data_of(TINY), "k" * 100_000: 1}, "<dict>")
    message = str(info.value)
    assert len(message) == MAX_MESSAGE
    assert message.startswith("<dict>: kkk") and " characters cut ...] " in message
    assert message.endswith(
        "key (allowed: bias, description, inputs, layers, name, node_capacitance, seed, solver, "
        "training)"
    )


# --------------------------------------------------------------------------- floating nodes
def test_a_layer_whose_nodes_float_is_refused_by_validate(workspace):
    text = swap(
        "init: {distribution: uniform, low: 0 uS, high: 20 uS}",
        "init: {distribution: constant, value: 0 S}",
    )
    assert validation_error(workspace, text) == (
        "layers[1] (output): its nodes float: every conductance at them is 0 S (hidden->output "
        "constant 0 S, bias of output constant 0 S, devices with g_min 0 S); give them a "
        "conductance above 0 S"
    )
    # A bias conductance ties the same nodes to a source.
    with_bias = swap(
        "voltage: 0.1 V", "voltage: 0.1 V\n  init: {distribution: constant, value: 1 uS}", text
    )
    path = workspace / "chips" / "x.yaml"
    path.write_text(with_bias)
    assert load_chip(path).spec.output.size == 10


def test_a_refused_chip_writes_no_run_file(workspace):
    path = workspace / "chips" / "x.yaml"
    path.write_text(
        swap(
            "init: {distribution: uniform, low: 0 uS, high: 20 uS}",
            "init: {distribution: constant}",
        )
    )
    out = workspace / "run.h5"
    with pytest.raises(SpecError, match=r"x.yaml: layers\[1\] \(output\): its nodes float"):
        neuroemu.simulate(str(path), out=str(out), epochs=1, limit=8)
    assert not out.exists()
    data = tiny_with(levels_output=True)
    tiny = workspace / "chips" / "tiny_zero.yaml"
    tiny.write_text(yaml.safe_dump(data))
    with pytest.raises(SpecError, match=r"^chip tiny \(seed 7\): layers\[2\] \(output\) node 0"):
        neuroemu.simulate(str(tiny), out=str(out), epochs=0, limit=8)
    assert not out.exists()


def test_a_layer_no_source_reaches_is_refused_by_validate(workspace):
    text = swap(
        "init: {distribution: uniform, low: 0 uS, high: 5 uS}", "init: {distribution: constant}"
    )
    assert validation_error(workspace, text).startswith(
        "layers[0] (hidden): no source reaches its nodes: every path to an input or a bias "
        "crosses 0 S devices (input->hidden constant 0 S, bias of hidden constant 0 S"
    )


def tiny_with(levels_input: bool = False, levels_output: bool = False) -> dict:
    """tiny without bias conductances, with crossbars whose devices round every drawn value
    to 0 S (two levels, 0 S and 50 uS): the spec allows them, the arrays are 0 S."""
    data = data_of(TINY)
    data["bias"]["init"] = {"distribution": "constant"}
    rounds_to_zero = {"distribution": "uniform", "low": "0 S", "high": "0.3 uS"}
    two_levels = {"g_min": "0 S", "g_max": "50 uS", "n_levels": 2}
    for index, chosen in ((0, levels_input), (2, levels_output)):
        if chosen:
            data["layers"][index]["init"] = rounds_to_zero
            data["layers"][index]["device"] = two_levels
    return data


def test_building_refuses_a_node_its_arrays_leave_floating():
    with pytest.raises(SpecError) as info:
        neuroemu.Chip.from_dict(tiny_with(levels_output=True))
    assert str(info.value) == (
        "chip tiny (seed 7): layers[2] (output) node 0 floats: every conductance at it is 0 S "
        "(its devices in hidden2->output and its bias); no operating point"
    )


def test_building_refuses_nodes_no_source_reaches():
    with pytest.raises(SpecError) as info:
        neuroemu.Chip.from_dict(tiny_with(levels_input=True))
    assert str(info.value) == (
        "chip tiny (seed 7): layers[0] (hidden1) node 0 is reached by no source: every path "
        "from it to an input or a bias crosses 0 S devices; its voltage is undefined"
    )


def test_a_node_that_lost_its_conductance_stops_the_settle():
    chip = neuroemu.Chip.from_yaml("tiny")
    saved = chip.state()
    g = [np.array(c) for c in chip.conductances]
    b = [np.array(c) for c in chip.bias_conductance]
    g[2][:, 3] = 0.0
    b[2][:, 3] = 0.0
    chip.set_conductances(g, b)
    x = np.full((2, 6), 0.5)
    with pytest.raises(InputError) as info:
        chip.settle(x)
    assert str(info.value) == (
        "chip tiny: layers[2] (output) node 3 has lost all its conductance (every device at it "
        "reads 0 S): its voltage is undefined, no operating point"
    )
    chip.load_state(saved)
    assert np.all(np.isfinite(chip.settle(x).output))


def test_a_node_lost_in_training_stops_the_run_and_keeps_its_finished_epochs(tmp_path):
    """An output node whose every device reaches 0 S during epoch 2 (here set so after the
    commit of epoch 1, as devices of g_min 0 S pushed to their bound would leave it): the
    settle stops the run with the one line, and the run file holds epochs 0 and 1."""
    chip = neuroemu.Chip.from_yaml("xs_784x100")
    out = tmp_path / "run.h5"

    def lose_a_node(event) -> None:
        if event.kind == "epoch" and event.epoch == 1:
            g = [np.array(c) for c in chip.conductances]
            b = [np.array(c) for c in chip.bias_conductance]
            g[1][:, 4] = 0.0
            b[1][:, 4] = 0.0
            chip.set_conductances(g, b)

    with pytest.raises(InputError) as info:
        neuroemu.simulate(chip, epochs=3, limit=32, out=out, progress=lose_a_node)
    assert str(info.value) == (
        "chip xs_784x100: layers[1] (output) node 4 has lost all its conductance (every "
        "device at it reads 0 S): its voltage is undefined, no operating point"
    )
    run = neuroemu.open_run(out)
    assert [row["epoch"] for row in run.history] == [0, 1]
    assert not run.meta["complete"]
    assert run.conductance["epoch"].values.tolist() == [0, 1]
    assert np.all(run.conductance["hidden->output"].values[1][:, 4] > 0)  # as it was trained


# --------------------------------------------------------------------------- memory
def test_a_chip_too_large_for_the_machine_is_refused_before_allocating(workspace):
    huge = swap("size: 100", "size: 1000000000")
    path = workspace / "chips" / "huge.yaml"
    path.write_text(huge)
    assert list(iter_validate([path])) == [(path, None)]  # a spec fits some machine
    out = workspace / "run.h5"
    tracemalloc.start()
    with pytest.raises(InputError) as info:
        neuroemu.simulate(str(path), out=str(out), epochs=0, limit=8)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    message = str(info.value)
    assert message.startswith(
        "chip xs_784x100 (1.58e+12 devices, a settle of 256 samples) needs about 7"
    )
    assert "TB of memory, but this machine has " in message and message.endswith(" available")
    assert peak < 50e6  # nothing of the chip was allocated
    assert not out.exists()


def test_the_memory_figure_is_the_machines(monkeypatch):
    monkeypatch.setattr("neuroemu.memory.available_memory", lambda: 1_000_000)
    with pytest.raises(
        InputError,
        match=r"^chip xs_784x100 \(1.58e\+05 devices, a settle of "
        r"256 samples\) needs about \d+(\.\d+)? MB of memory, but this machine "
        r"has 1 MB available$",
    ):
        neuroemu.Chip.from_yaml("xs_784x100")


def test_a_settle_batch_too_large_is_refused(monkeypatch):
    chip = neuroemu.Chip.from_yaml("tiny")
    monkeypatch.setattr("neuroemu.memory.available_memory", lambda: 500_000_000)
    x = np.broadcast_to(np.float64(0.5), (10**7, 6))  # no memory of its own
    with pytest.raises(
        InputError,
        match=r"^x: a settle of 10000000 samples on chip tiny needs "
        r"about 12.8 GB of memory, but this machine has 500 MB available$",
    ):
        chip.settle(x)


# --------------------------------------------------------------------------- learning rates
def test_an_absurd_learning_rate_is_warned_of_when_loaded(workspace):
    path = workspace / "chips" / "x.yaml"
    path.write_text(swap("learning_rate: [0.08, 0.32]", "learning_rate: 1e300"))
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        ((_, error),) = list(iter_validate([path]))
    assert error is None
    found = neuroemu_warnings(record)
    assert len(found) == 2
    assert (
        found[1]
        .split("x.yaml: ", 1)[1]
        .startswith(
            "training.learning_rate: 1e+300 for hidden->output would move a device "
            "by about 2.5e+285 GS in the first update, 2.5e+298 times its range (100 uS;"
        )
    )
    assert all("\n" not in w and len(w) <= MAX_MESSAGE for w in found)


def test_training_warns_of_a_first_update_beyond_the_range():
    data = data_of(XS)
    data["training"]["learning_rate"] = [0.08, 500.0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the estimate at load time
        chip = neuroemu.Chip.from_dict(data)
    dataset = neuroemu.load_dataset("mnist5k")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        neuroemu.simulate(chip, limit=64, epochs=2)
    found = neuroemu_warnings(record)
    assert len(found) == 1  # epoch 1 only, and only the crossbar beyond its range
    assert found[0].startswith(
        "training.learning_rate: the first update of hidden->output would move a device by "
    )
    assert "times its range (100 uS, device ideal_resistor; learning rate 500, " in found[0]
    assert dataset.x_train.shape[1] == chip.n_inputs


def test_the_first_update_check_changes_no_number(monkeypatch):
    """The check settles outside the epoch's reads and draws nothing: training with it gives
    the bits training without it gives (a chip with read noise and momentum)."""
    data = neuroemu.load_dataset("mnist5k")
    x, y = data.x_train[:64], data.y_train[:64]
    trained = []
    for check in (True, False):
        chip = neuroemu.Chip.from_yaml("xs_784x100_pcm")
        if not check:
            monkeypatch.setattr("neuroemu.learning.train.check_first_update", lambda *a: None)
        train_epoch(chip, x, y, chip.spec.training, 1)
        trained.append(chip.state())
    for a, b in zip(trained[0].conductances, trained[1].conductances, strict=True):
        assert np.array_equal(a, b)


LIBRARY_TRAINED = [p for p in list_library("chips") if load_chip(p).spec.training is not None]


@pytest.mark.parametrize("path", LIBRARY_TRAINED, ids=lambda p: p.stem)
def test_no_library_chip_warns_of_its_first_update(path):
    chip = neuroemu.Chip.from_yaml(path)
    data = neuroemu.load_dataset("mnist5k")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        check_first_update(chip, data.x_train, data.y_train, chip.spec.training)
    assert neuroemu_warnings(record) == []


def test_the_shipped_library_and_sweeps_validate_without_warnings():
    paths = list_library("chips") + list_library("devices")
    paths += sorted((ROOT / "examples" / "sweeps" / "chips").glob("*.yaml"))
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        assert [error for _, error in iter_validate(paths) if error] == []
        sweeps = sorted((ROOT / "examples" / "sweeps").glob("*.yaml"))
        assert len(sweeps) >= 5
        for sweep in sweeps:
            load_sweep(sweep)
    assert neuroemu_warnings(record) == []
    assert [w for w in record if "neuroemu" in w.filename] == []


# --------------------------------------------------------------------------- the chip's API
X = np.full((2, 6), 0.5)

BAD_CALLS = [
    (
        lambda c: c.settle(X, beta="300 uS"),
        "beta: expected a number in S (SI), got '300 uS'; write 0.0003 for 300 uS",
    ),
    (lambda c: c.settle(X, beta=None), "beta: expected a number in S (SI), got None"),
    (lambda c: c.settle("abc"), "x: expected real numbers in [0, 1], got <U3 values"),
    (
        lambda c: c.settle([[0.1, 0.2], [0.3]]),
        "x: expected an array of numbers, got rows of different lengths",
    ),
    (lambda c: c.settle(X + 0j), "x: expected real numbers in [0, 1], got complex128 values"),
    (lambda c: c.settle(X, beta=1e-6, target="abc"), "target: expected real numbers (V), got"),
    (lambda c: c.settle(X, tol="1e-3"), "tol: expected a number, got '1e-3'"),
    (lambda c: c.settle(X, max_sweeps=1.5), "max_sweeps: must be a whole number >= 1 (got 1.5)"),
    (lambda c: c.settle(X, dtype="junk"), "dtype: must be float32 or float64 (got 'junk')"),
    (
        lambda c: c.settle(X, init=5),
        "init: expected an Equilibrium or a list of voltages per layer, got 5",
    ),
    (
        lambda c: c.settle(X, grounded=5),
        "grounded: expected one boolean array (or None) per layer, got 5",
    ),
    (lambda c: c.settle(X, current="abc"), "current: expected real numbers (A), got <U3 values"),
    (lambda c: c.set_conductances(5), "conductances: expected a list of arrays (one per array)"),
    (lambda c: c.set_conductances(biases="abc"), "biases: expected a list of arrays"),
    (
        lambda c: c.set_conductances([[[1e-6], [1e-6, 2e-6]]] * 3),
        "conductances[0] (input->hidden1): expected an array of numbers, got rows of different",
    ),
    (lambda c: c.load_state(None), "state: expected a ChipState (chip.state()), got None"),
    (lambda c: c.load_state({"conductances": []}), "state: expected a ChipState"),
    (lambda c: c.to_spice("abc"), "x_row: expected real numbers, got <U3 values"),
    (lambda c: c.programmed(3), "rng: expected a numpy.random.Generator, got int"),
    (lambda c: c.reading(None).__enter__(), "rng: expected a numpy.random.Generator, got"),
    (lambda c: c.read_arrays(5), "rng: expected a numpy.random.Generator, got int"),
    (
        lambda c: c.programmed(np.random.default_rng(0)).drift_to(float("inf")),
        "time: must be finite seconds after programming (got inf)",
    ),
    (lambda c: c.drift_to(10.0), "chip tiny: drift_to needs a chip programmed onto its devices"),
    (lambda c: c.check_inputs({"a": 1}), "x: expected real numbers in [0, 1], got object"),
    (lambda c: c.target_voltages([99], 0.1), "labels: classes 99..99 do not fit chip tiny's 2"),
    (lambda c: c.circuit("junk"), "dtype: must be float32 or float64 (got 'junk')"),
    (lambda c: type(c).from_yaml("tiny", seed="x"), "seed: expected a whole number >= 0, got 'x'"),
    (lambda c: type(c).from_yaml("tiny", seed=-1), "seed: expected a whole number >= 0, got -1"),
    (
        lambda c: type(c).from_yaml(None),
        "path: expected a chip file or a library chip's name, got None",
    ),
    (lambda c: type(c).from_dict("chips/tiny.yaml"), "<dict>: expected a mapping of keys, got"),
    (
        lambda c: c.update_devices([1], np.random.default_rng(0)),
        "updates: expected DeviceUpdate of arrays 0..5, got 1",
    ),
]


@pytest.mark.parametrize(("call", "expected"), BAD_CALLS, ids=[e for _, e in BAD_CALLS])
def test_a_bad_argument_is_one_line_naming_it(call, expected):
    chip = neuroemu.Chip.from_yaml("tiny")
    before = chip.state()
    with pytest.raises(NeuroemuError) as info:
        call(chip)
    assert str(info.value).startswith(expected), str(info.value)
    assert "\n" not in str(info.value)
    for a, b in zip(before.arrays, chip.state().arrays, strict=True):
        assert np.array_equal(a, b)  # nothing written


def test_a_leaky_chip_refuses_the_same_arguments():
    chip = neuroemu.Chip.from_yaml("leaky_tiny")
    with pytest.raises(InputError, match=r"^beta: expected a number in S \(SI\), got '1 uS'"):
        chip.settle(X, beta="1 uS")
    with pytest.raises(InputError, match=r"^dtype: must be float32 or float64"):
        chip.network("junk")
    with pytest.raises(InputError, match=r"^labels: expected a 1-D array of integer class"):
        chip.target_voltages("a", 0.5)


def test_an_equilibrium_reads_in_one_line():
    chip = neuroemu.Chip.from_yaml("xs_784x100")
    x = neuroemu.load_dataset("mnist5k").x_test[:8]
    free = chip.settle(x, trace=True)
    text = repr(free)
    assert "\n" not in text and len(text) < 200
    assert text.startswith(
        "Equilibrium(batch 8, nodes [100, 10], 5 sweeps, converged=True, largest residual "
    )
    assert text.endswith(" mean power 711.6 mW, traced)")
    assert repr(free.trace) == "Trace(5 sweeps, batch 8, nodes [100, 10])"
