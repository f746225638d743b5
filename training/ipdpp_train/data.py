"""Long-tailed datasets from local files (nothing is downloaded).

Every source is read into float32 images in [0, 1] of shape (N, C, H, W) and int64 labels; the
long-tailed training split keeps ``floor(n_max * IF ** (-c / (C - 1)))`` images of class ``c``
(class 0 the head) after a per-class shuffle driven by ``data_seed``; the test set stays
balanced. Labels are renumbered to the chosen class order, so label 0 is always the head class.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .config import DataConfig

__all__ = [
    "FASHION_HARD_TAIL_ORDER",
    "LongTailData",
    "load_long_tailed",
    "load_source",
    "long_tail_counts",
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
#: Fashion-MNIST head-to-tail order whose tail holds the hard upper-body classes (DESIGN.md §6):
#: trouser, bag, sandal, sneaker, boot, dress, T-shirt, pullover, coat, shirt.
FASHION_HARD_TAIL_ORDER = (1, 8, 5, 7, 9, 3, 0, 2, 4, 6)


@dataclass(frozen=True)
class Source:
    """A dataset as read from disk, before the long-tailed split (labels in source numbering)."""

    x_train: np.ndarray  # float32 (N, C, H, W) in [0, 1]
    y_train: np.ndarray  # int64 (N,)
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]


@dataclass(frozen=True)
class LongTailData:
    """A long-tailed training split and its balanced test set.

    Attributes
    ----------
    x_train, x_test : numpy.ndarray
        float32, shape (N, C, H, W), values in [0, 1].
    y_train, y_test : numpy.ndarray
        int64, shape (N,), in [0, num_classes); label 0 is the head class.
    train_counts : tuple of int
        Training images per class (non-increasing).
    class_names : tuple of str
        Names in the new label order.
    class_order : tuple of int
        ``class_order[c]`` is the source class that became label ``c``.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    train_counts: tuple[int, ...]
    class_names: tuple[str, ...]
    class_order: tuple[int, ...]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        c, h, w = self.x_train.shape[1:]
        return int(c), int(h), int(w)


def long_tail_counts(n_max: int, imbalance_factor: float, num_classes: int) -> list[int]:
    """Class sizes of the standard exponential long-tailed profile.

    ``n_c = floor(n_max * imbalance_factor ** (-c / (num_classes - 1)))`` for c = 0..C-1 (Cui et
    al. 2019; the CIFAR-10/100-LT convention).

    Examples
    --------
    >>> long_tail_counts(5000, 100, 10)
    [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    """
    if n_max < 1:
        raise ValueError(f"n_max must be >= 1; got {n_max!r}")
    if not imbalance_factor >= 1:
        raise ValueError(f"imbalance_factor must be >= 1; got {imbalance_factor!r}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1; got {num_classes!r}")
    if num_classes == 1:
        return [int(n_max)]
    return [int(n_max * imbalance_factor ** (-c / (num_classes - 1))) for c in range(num_classes)]


# --------------------------------------------------------------------------------------------
# Readers
# --------------------------------------------------------------------------------------------

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


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


def _find(directory: Path, names: Sequence[str], what: str, hint: str) -> Path:
    for name in names:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"{what} not found: looked for {' or '.join(names)} in {directory}. {hint}"
    )


def _load_fashion(data_dir: Path) -> Source:
    hint = (
        "Install the files with `apt-get install dataset-fashion-mnist` (Debian/Ubuntu; they go "
        f"to {FASHION_MNIST_DIR}), or put the four IDX files from "
        "https://github.com/zalandoresearch/fashion-mnist in a folder and pass --data-dir FOLDER."
    )
    arrays = []
    for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                 "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):  # fmt: skip
        arrays.append(read_idx(_find(data_dir, (stem + ".gz", stem), "Fashion-MNIST", hint)))
    x_train, y_train, x_test, y_test = arrays
    return Source(
        _images(x_train, "train images"),
        y_train.astype(np.int64),
        _images(x_test, "test images"),
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


def _load_cifar(data_dir: Path, classes: int) -> Source:
    folder = "cifar-10-batches-py" if classes == 10 else "cifar-100-python"
    archive = "cifar-10-python.tar.gz" if classes == 10 else "cifar-100-python.tar.gz"
    root = data_dir / folder if (data_dir / folder).is_dir() else data_dir
    hint = (
        f"Download {archive} from https://www.cs.toronto.edu/~kriz/cifar.html, unpack it and "
        "pass the folder with --data-dir."
    )
    if classes == 10:
        names = [f"data_batch_{i}" for i in range(1, 6)]
        train = [_unpickle(_find(root, (n,), "CIFAR-10", hint)) for n in names]
        test = _unpickle(_find(root, ("test_batch",), "CIFAR-10", hint))
        parts = [_cifar_arrays(t, "labels", root / n) for t, n in zip(train, names)]
        x_train = np.concatenate([p[0] for p in parts])
        y_train = np.concatenate([p[1] for p in parts])
        x_test, y_test = _cifar_arrays(test, "labels", root / "test_batch")
        class_names: tuple[str, ...] = CIFAR10_NAMES
    else:
        train_path = _find(root, ("train",), "CIFAR-100", hint)
        test_path = _find(root, ("test",), "CIFAR-100", hint)
        x_train, y_train = _cifar_arrays(_unpickle(train_path), "fine_labels", train_path)
        x_test, y_test = _cifar_arrays(_unpickle(test_path), "fine_labels", test_path)
        class_names = tuple(str(i) for i in range(100))
        if (root / "meta").is_file():
            meta = _unpickle(root / "meta").get("fine_label_names")
            if meta is not None and len(meta) == 100:
                class_names = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in meta)
    return Source(x_train, y_train, x_test, y_test, class_names)


def _images(x: np.ndarray, name: str) -> np.ndarray:
    """(N, H, W) or (N, H, W, C) integer/float images -> float32 (N, C, H, W) in [0, 1]."""
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4:
        x = np.moveaxis(x, -1, 1)
    else:
        raise ValueError(f"{name} must have shape (N, H, W) or (N, H, W, C); got {x.shape}")
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


def _labels(y: np.ndarray, name: str, n: int) -> np.ndarray:
    if y.ndim != 1 or len(y) != n:
        raise ValueError(f"{name} must have shape ({n},); got {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise TypeError(f"{name} must have an integer dtype; got {y.dtype}")
    if y.size and y.min() < 0:
        raise ValueError(f"{name} must be non-negative class indices")
    return y.astype(np.int64)


def _load_npz(path: Path) -> Source:
    if path.is_dir():
        raise ValueError(f"data.data_dir for source npz must be the .npz file itself; got {path}")
    if not path.is_file():
        raise FileNotFoundError(
            f"npz dataset not found: {path}. Save your data with "
            "numpy.savez(path, x_train=..., y_train=..., x_test=..., y_test=...) and pass "
            "--data-dir path."
        )
    with np.load(path, allow_pickle=False) as archive:
        missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in archive]
        if missing:
            raise ValueError(f"{path} lacks array(s) {', '.join(missing)}")
        x_train = _images(archive["x_train"], "x_train")
        x_test = _images(archive["x_test"], "x_test")
        y_train = _labels(archive["y_train"], "y_train", len(x_train))
        y_test = _labels(archive["y_test"], "y_test", len(x_test))
    if x_train.shape[1:] != x_test.shape[1:]:
        raise ValueError(
            f"x_train and x_test image shapes differ: {x_train.shape} vs {x_test.shape}"
        )
    num_classes = int(max(y_train.max(initial=0), y_test.max(initial=0))) + 1
    return Source(x_train, y_train, x_test, y_test, tuple(str(c) for c in range(num_classes)))


def _load_digits(test_per_class: int, data_seed: int) -> Source:
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


def load_source(config: DataConfig) -> Source:
    """Read the configured source from disk (raises FileNotFoundError saying how to get it)."""
    if config.source == "digits":
        return _load_digits(config.test_per_class, config.data_seed)
    if config.source == "fashion-mnist":
        return _load_fashion(Path(config.data_dir or FASHION_MNIST_DIR))
    if config.source in ("cifar10", "cifar100"):
        if config.data_dir is None:
            raise ValueError(f"data.source = {config.source!r} needs --data-dir (the CIFAR folder)")
        return _load_cifar(Path(config.data_dir), 10 if config.source == "cifar10" else 100)
    if config.source == "npz":
        if config.data_dir is None:
            raise ValueError("data.source = 'npz' needs --data-dir pointing at the .npz file")
        return _load_npz(Path(config.data_dir))
    raise ValueError(f"unknown data.source {config.source!r}")


def _resolve_order(order: str | Sequence[int], source: str, num_classes: int) -> list[int]:
    if order == "index":
        return list(range(num_classes))
    if order == "hard-tail":
        if source != "fashion-mnist":
            raise ValueError('data.class_order = "hard-tail" is defined for fashion-mnist only')
        return list(FASHION_HARD_TAIL_ORDER)
    values = [int(c) for c in order]
    if sorted(values) != list(range(num_classes)):
        raise ValueError(
            f"data.class_order must be a permutation of 0..{num_classes - 1}; got {values}"
        )
    return values


def make_long_tailed(
    source: Source, config: DataConfig, source_name: str | None = None
) -> LongTailData:
    """Cut the long-tailed training split out of ``source`` (see the module docstring)."""
    num_classes = len(source.class_names)
    order = _resolve_order(config.class_order, source_name or config.source, num_classes)
    pool = [np.flatnonzero(source.y_train == c) for c in order]
    smallest = min(len(p) for p in pool)
    if smallest == 0:
        empty = [source.class_names[c] for c, p in zip(order, pool) if len(p) == 0]
        raise ValueError(f"the training set has no images of class(es) {', '.join(empty)}")
    n_max = config.n_max if config.n_max is not None else smallest
    counts = long_tail_counts(n_max, config.imbalance_factor, num_classes)
    rng = np.random.default_rng([config.data_seed, 0x17])
    chosen = []
    for new_label, (members, count) in enumerate(zip(pool, counts)):
        if count > len(members):
            raise ValueError(
                f"data.n_max = {n_max} needs {count} images of class "
                f"{source.class_names[order[new_label]]!r} but the source has {len(members)}"
            )
        if count == 0:
            raise ValueError(
                f"data.n_max = {n_max} with imbalance factor {config.imbalance_factor:g} leaves "
                f"class {source.class_names[order[new_label]]!r} empty; raise n_max"
            )
        chosen.append(rng.permutation(members)[:count])
    train_idx = np.concatenate(chosen)
    relabel = np.empty(num_classes, dtype=np.int64)
    relabel[order] = np.arange(num_classes)
    test_keep = np.isin(source.y_test, order)
    return LongTailData(
        x_train=np.ascontiguousarray(source.x_train[train_idx]),
        y_train=relabel[source.y_train[train_idx]],
        x_test=np.ascontiguousarray(source.x_test[test_keep]),
        y_test=relabel[source.y_test[test_keep]],
        train_counts=tuple(counts),
        class_names=tuple(source.class_names[c] for c in order),
        class_order=tuple(order),
    )


def load_long_tailed(config: DataConfig) -> LongTailData:
    """Read the configured source and build its long-tailed training split.

    Parameters
    ----------
    config : DataConfig
        Source, location, imbalance factor, head size, class order and data seed.

    Returns
    -------
    LongTailData
        Host (numpy) arrays; move them to the training device once (training/pipeline.py).

    Raises
    ------
    FileNotFoundError
        When the source's files are missing (the message says how to get them).
    ValueError
        For malformed files, an impossible split or a bad class order.

    Notes
    -----
    The split depends only on ``config`` (``data_seed``), never on the training seed.
    """
    return make_long_tailed(load_source(config), config)


@dataclass(frozen=True)
class DeviceData:
    """A :class:`LongTailData` resident on the training device (DESIGN.md §6: small datasets
    live on the device and are augmented there in whole batches).

    Attributes
    ----------
    x_train, x_test : torch.Tensor
        float32 (N, C, H, W) in [0, 1], on ``device``.
    y_train, y_test : torch.Tensor
        int64 (N,), on ``device``.
    host : LongTailData
        The numpy originals (labels for samplers and ipdpp, counts, names).
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    host: LongTailData

    @property
    def num_classes(self) -> int:
        return self.host.num_classes

    def channel_stats(self) -> tuple[list[float], list[float]]:
        """Per-channel mean and std of the training images (for the models' normalisation)."""
        mean = self.x_train.mean(dim=(0, 2, 3))
        std = self.x_train.std(dim=(0, 2, 3)).clamp(min=1e-3)
        return mean.tolist(), std.tolist()


def to_device(data: LongTailData, device: torch.device) -> DeviceData:
    """Copy the arrays to ``device`` once."""
    return DeviceData(
        x_train=torch.from_numpy(data.x_train).to(device),
        y_train=torch.from_numpy(data.y_train).to(device),
        x_test=torch.from_numpy(data.x_test).to(device),
        y_test=torch.from_numpy(data.y_test).to(device),
        host=data,
    )
