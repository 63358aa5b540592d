"""Data set loaders against files written here byte by byte."""

from __future__ import annotations

import csv
import gzip
import io
import struct
from pathlib import Path

import numpy as np
import pytest

from neuroemu.errors import DatasetError
from neuroemu.io.datasets import (
    FASHION_MNIST_DIR,
    load_dataset,
    load_idx_folder,
    load_mnist5k,
    mnist5k_path,
    read_idx,
    stratified_split,
)


def idx_bytes(array: np.ndarray, code: int) -> bytes:
    """An IDX file, written from the format's description: two zero bytes, the type code,
    the number of dimensions, the dimensions as big-endian uint32, then big-endian data."""
    dtype = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    header = struct.pack(">BBBB", 0, 0, code, array.ndim)
    header += b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(dtype).tobytes()


def write(path: Path, data: bytes, gz: bool = False) -> Path:
    if gz:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize(
    ("code", "values"),
    [
        (0x08, np.arange(24, dtype=np.uint8).reshape(2, 3, 4)),
        (0x0B, np.array([-300, 2, 30000], dtype=np.int16)),
        (0x0D, np.array([[1.5, -2.25], [3e-3, 7.0]], dtype=np.float32)),
    ],
)
def test_read_idx_round_trip(tmp_path, gz, code, values):
    path = write(tmp_path / "a-idx", idx_bytes(values, code), gz)
    out = read_idx(path)
    assert out.shape == values.shape
    np.testing.assert_array_equal(out, values)


def test_read_idx_rejects(tmp_path):
    good = idx_bytes(np.zeros((3, 2, 2), np.uint8), 0x08)
    truncated = write(tmp_path / "truncated-idx", good[:-1])
    with pytest.raises(DatasetError, match="truncated-idx: IDX data holds 11 bytes"):
        read_idx(truncated)
    bad = write(tmp_path / "bad-idx", b"PK\x03\x04rest")
    with pytest.raises(DatasetError, match=r"bad-idx: not an IDX file \(magic 0x504b0304\)"):
        read_idx(bad)


def make_folder(folder: Path, n_train=6, n_test=4, gz=True, labels_train=None) -> np.ndarray:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n_train + n_test, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n_train + n_test).astype(np.uint8)
    if labels_train is not None:
        labels[:n_train] = labels_train
    write(folder / "train-images-idx3-ubyte", idx_bytes(images[:n_train], 0x08), gz)
    write(folder / "train-labels-idx1-ubyte", idx_bytes(labels[:n_train], 0x08), gz)
    write(folder / "t10k-images-idx3-ubyte", idx_bytes(images[n_train:], 0x08), gz)
    write(folder / "t10k-labels-idx1-ubyte", idx_bytes(labels[n_train:], 0x08), gz)
    return images


def test_idx_folder(tmp_path):
    images = make_folder(tmp_path / "kmnist")
    data = load_dataset(tmp_path / "kmnist")
    assert data.name == "kmnist"
    assert data.x_train.shape == (6, 784) and data.x_test.shape == (4, 784)
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int64
    np.testing.assert_allclose(data.x_test[1], images[7].reshape(-1) / 255.0, rtol=1e-6)
    assert data.image_shape == (28, 28)


def test_idx_folder_errors(tmp_path):
    make_folder(tmp_path / "short", gz=False)
    (tmp_path / "short" / "train-labels-idx1-ubyte").write_bytes(
        idx_bytes(np.zeros(5, np.uint8), 0x08)
    )
    with pytest.raises(DatasetError, match="5 labels but 6 images"):
        load_idx_folder(tmp_path / "short")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="missing train-images-idx3-ubyte"):
        load_idx_folder(tmp_path / "empty")
    with pytest.raises(DatasetError, match="nonexistent: no such data set folder"):
        load_dataset(tmp_path / "nonexistent")
    (tmp_path / "file").write_text("x")
    with pytest.raises(DatasetError, match="is a file"):
        load_dataset(tmp_path / "file")


def test_mnist5k_split():
    data = load_mnist5k()
    assert data.x_train.shape == (4000, 784) and data.x_test.shape == (1000, 784)
    assert np.bincount(data.y_train).tolist() == [400] * 10
    assert np.bincount(data.y_test).tolist() == [100] * 10
    assert data.y_test[:10].tolist() == list(range(10))
    assert data.x_test.min() == 0.0 and data.x_test.max() == 1.0
    assert data.x_train.dtype == np.float32
    # Test sample 0 is the file's first row (the first 0, index 0 of its class).
    with gzip.open(mnist5k_path(), "rt") as f:
        first = next(csv.reader(io.StringIO(f.readline())))
    np.testing.assert_allclose(data.x_test[0] * 255, np.array(first[:784], dtype=float), atol=1e-4)
    assert int(first[784]) == data.y_test[0] == 0
    # No image is in both parts.
    train = {row.tobytes() for row in data.x_train}
    assert not any(row.tobytes() in train for row in data.x_test)


def test_stratified_split_is_round_robin():
    labels = np.repeat(np.arange(3), 10)
    train, test = stratified_split(labels, every=5)
    assert labels[test].tolist() == [0, 1, 2, 0, 1, 2]
    assert labels[train][:6].tolist() == [0, 1, 2, 0, 1, 2]
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(30))


@pytest.mark.skipif(
    not FASHION_MNIST_DIR.is_dir(), reason="Debian's dataset-fashion-mnist is not installed"
)
def test_fashion_mnist_from_debian():
    data = load_dataset("fashion-mnist")
    assert data.x_train.shape == (60000, 784) and data.x_test.shape == (10000, 784)
    assert np.bincount(data.y_test).tolist() == [1000] * 10


def test_fashion_mnist_missing(monkeypatch, tmp_path):
    monkeypatch.setenv("NEUROEMU_FASHION_MNIST", str(tmp_path / "none"))
    with pytest.raises(DatasetError, match="dataset-fashion-mnist"):
        load_dataset("fashion-mnist")
