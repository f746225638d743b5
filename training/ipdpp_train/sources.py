"""Readers of the built-in benchmark datasets, from local files (nothing is downloaded).

Fashion-MNIST from its IDX files, CIFAR-10/100 from their python batches and scikit-learn's
bundled digits; users' own data (an ``.npz`` file or an image folder) is read by
:mod:`ipdpp_train.user_data`. Every reader returns a :class:`Source`: float32 images in [0, 1] of
shape (N, C, H, W) and int64 labels, in the source's own class numbering.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "FASHION_HARD_TAIL_ORDER",
    "FASHION_MNIST_DIR",
    "Source",
    "as_images",
    "as_labels",
    "load_cifar",
    "load_digits",
    "load_fashion",
    "read_idx",
]

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_NAMES = (
    "T-shirt", "trouser", "pullover", "dress", "coat",
    "sandal", "shirt", "sneaker", "bag", "ankle boot",
)  # fmt: skip
CIFAR10_NAMES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
#: Fashion-MNIST head-to-tail order whose tail holds the hard upper-body classes (in index
#: order the tail classes are the easy ones, so a long-tailed benchmark would test little):
#: trouser, bag, sandal, sneaker, boot, dress, T-shirt, pullover, coat, shirt.
FASHION_HARD_TAIL_ORDER = (1, 8, 5, 7, 9, 3, 0, 2, 4, 6)


@dataclass(frozen=True)
class Source:
    """A dataset as read from disk, before any split (labels in the source's numbering).

    ``x_val``/``y_val`` hold a validation set the files themselves provide (a user's ``x_val``
    array or ``val/`` folder); None when the source has none.
    """

    x_train: np.ndarray  # float32 (N, C, H, W) in [0, 1]
    y_train: np.ndarray  # int64 (N,)
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None


_IDX_DTYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (the MNIST / Fashion-MNIST format), gzip-compressed or raw.

    Raises
    ------
    ValueError
        If the file is not a well-formed IDX file.
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":  # gzip magic, whatever the file name says
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number)")
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(
            f"{path}: IDX header announces shape {shape} ({expected} bytes) but the file holds "
            f"{len(raw) - header} bytes of data"
        )
    return (
        np.frombuffer(raw, dtype=dtype, offset=header)
        .reshape(shape)
        .astype(dtype.newbyteorder("="))
    )


def find_file(directory: Path, names: Sequence[str], what: str, hint: str) -> Path:
    for name in names:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"{what} not found: looked for {' or '.join(names)} in {directory}. {hint}"
    )


def load_fashion(data_dir: Path) -> Source:
    hint = (
        "Install the files with `apt-get install dataset-fashion-mnist` (Debian/Ubuntu; they go "
        f"to {FASHION_MNIST_DIR}), or put the four IDX files from "
        "https://github.com/zalandoresearch/fashion-mnist in a folder and pass --data-dir FOLDER."
    )
    arrays = []
    for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                 "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):  # fmt: skip
        arrays.append(read_idx(find_file(data_dir, (stem + ".gz", stem), "Fashion-MNIST", hint)))
    x_train, y_train, x_test, y_test = arrays
    return Source(
        as_images(x_train, "train images"),
        y_train.astype(np.int64),
        as_images(x_test, "test images"),
        y_test.astype(np.int64),
        FASHION_NAMES,
    )


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles only what the CIFAR batches hold (dicts, lists, numpy arrays): a pickle file
    cannot run arbitrary code through this loader."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        # Protocol-2 pickles written by Python 3 spell bytes objects as _codecs.encode(str, enc).
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):  # type: ignore[no-untyped-def]
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"CIFAR batch refers to {module}.{name}, which is not allowed")


def _unpickle(path: Path) -> dict:
    with open(path, "rb") as fh:
        table = _ArrayUnpickler(fh, encoding="bytes").load()
    if not isinstance(table, dict):
        raise ValueError(f"{path} does not hold a CIFAR batch (a dict)")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in table.items()}


def _cifar_arrays(table: dict, label_key: str, path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        data = np.asarray(table["data"], dtype=np.uint8)
        labels = np.asarray(table[label_key], dtype=np.int64)
    except KeyError as exc:
        raise ValueError(f"{path} has no {exc.args[0]!r} entry; is it a CIFAR batch?") from None
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(labels) != len(data):
        raise ValueError(f"{path}: expected data (N, 3072) and N labels; got {data.shape}")
    return data.reshape(-1, 3, 32, 32).astype(np.float32) / 255.0, labels


def load_cifar(data_dir: Path, classes: int) -> Source:
    folder = "cifar-10-batches-py" if classes == 10 else "cifar-100-python"
    archive = "cifar-10-python.tar.gz" if classes == 10 else "cifar-100-python.tar.gz"
    root = data_dir / folder if (data_dir / folder).is_dir() else data_dir
    hint = (
        f"Download {archive} from https://www.cs.toronto.edu/~kriz/cifar.html, unpack it and "
        "pass the folder with --data-dir."
    )
    if classes == 10:
        names = [f"data_batch_{i}" for i in range(1, 6)]
        train = [_unpickle(find_file(root, (n,), "CIFAR-10", hint)) for n in names]
        test = _unpickle(find_file(root, ("test_batch",), "CIFAR-10", hint))
        parts = [_cifar_arrays(t, "labels", root / n) for t, n in zip(train, names)]
        x_train = np.concatenate([p[0] for p in parts])
        y_train = np.concatenate([p[1] for p in parts])
        x_test, y_test = _cifar_arrays(test, "labels", root / "test_batch")
        class_names: tuple[str, ...] = CIFAR10_NAMES
    else:
        train_path = find_file(root, ("train",), "CIFAR-100", hint)
        test_path = find_file(root, ("test",), "CIFAR-100", hint)
        x_train, y_train = _cifar_arrays(_unpickle(train_path), "fine_labels", train_path)
        x_test, y_test = _cifar_arrays(_unpickle(test_path), "fine_labels", test_path)
        class_names = tuple(str(i) for i in range(100))
        if (root / "meta").is_file():
            meta = _unpickle(root / "meta").get("fine_label_names")
            if meta is not None and len(meta) == 100:
                class_names = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in meta)
    return Source(x_train, y_train, x_test, y_test, class_names)


def as_images(x: np.ndarray, name: str) -> np.ndarray:
    """(N, H, W), (N, H, W, C) or (N, C, H, W) integer/float images, C in {1, 3}, -> float32
    (N, C, H, W) in [0, 1]. A trailing axis of size 1 or 3 is read as channels-last."""
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[-1] in (1, 3):
        x = np.moveaxis(x, -1, 1)
    elif x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(
            f"{name} must have shape (N, H, W), (N, H, W, C) or (N, C, H, W) with C = 1 or 3; "
            f"got {x.shape}"
        )
    if np.issubdtype(x.dtype, np.integer):
        scale = float(np.iinfo(x.dtype).max) if x.dtype != np.uint8 else 255.0
        if x.dtype != np.uint8 and x.size and x.max() <= 255:
            scale = 255.0  # 8-bit images stored in a wider integer type
        return np.ascontiguousarray(x, dtype=np.float32) / np.float32(scale)
    if np.issubdtype(x.dtype, np.floating):
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.size and (not np.isfinite(x).all() or x.min() < 0 or x.max() > 1):
            raise ValueError(f"float {name} must be finite and lie in [0, 1]")
        return x
    raise TypeError(f"{name} must have an integer or float dtype; got {x.dtype}")


def as_labels(y: np.ndarray, name: str, n: int) -> np.ndarray:
    """Check int labels of shape (n,), >= 0; return them as int64."""
    if y.ndim != 1 or len(y) != n:
        raise ValueError(f"{name} must have shape ({n},); got {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise TypeError(f"{name} must have an integer dtype; got {y.dtype}")
    if y.size and y.min() < 0:
        raise ValueError(f"{name} must be non-negative class indices")
    return y.astype(np.int64)


def load_digits(test_per_class: int, data_seed: int) -> Source:
    try:
        from sklearn.datasets import load_digits
    except ImportError:  # pragma: no cover - scikit-learn is in the train extra
        raise ImportError(
            "data.source = 'digits' needs scikit-learn: pip install scikit-learn "
            "(or pip install 'ipdpp[train]')"
        ) from None
    bunch = load_digits()
    x = (bunch.images.astype(np.float32) / np.float32(16.0))[:, None]  # 8x8, values 0..16
    y = bunch.target.astype(np.int64)
    # digits has no official split: hold out test_per_class images of every class (a balanced
    # test set), chosen by the data seed so that train and test never overlap.
    rng = np.random.default_rng([data_seed, 0xD161])
    test_idx = []
    for c in range(10):
        members = rng.permutation(np.flatnonzero(y == c))
        if len(members) <= test_per_class:
            raise ValueError(
                f"data.test_per_class = {test_per_class} leaves no training images of digit {c} "
                f"({len(members)} in total)"
            )
        test_idx.append(members[:test_per_class])
    test = np.sort(np.concatenate(test_idx))
    train = np.setdiff1d(np.arange(len(y)), test)
    return Source(x[train], y[train], x[test], y[test], tuple(str(c) for c in range(10)))
