"""Training, validation and test splits of a source, on the host and on the training device.

Two profiles (``data.profile``): ``"exponential"`` cuts the standard long-tailed split out of a
balanced benchmark, keeping ``floor(n_max * IF ** (-c / (C - 1)))`` images of class ``c`` after
a per-class shuffle driven by ``data_seed``; ``"as-given"`` keeps every training image of a
user's own data. Either way labels are renumbered head to tail (label 0 is the largest class)
and the test set is left as the source gives it. The validation split never touches the test
set: the source's own validation images, else images the exponential split left unused, else a
stratified hold-out from the training images (see :class:`ipdpp_train.config.DataConfig`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .config import DataConfig, data_profile
from .sources import (
    FASHION_HARD_TAIL_ORDER,
    FASHION_MNIST_DIR,
    Source,
    load_cifar,
    load_digits,
    load_fashion,
    read_idx,
)
from .user_data import load_folder, load_npz

__all__ = [
    "FASHION_HARD_TAIL_ORDER",
    "DeviceData",
    "LongTailData",
    "load_long_tailed",
    "load_source",
    "long_tail_counts",
    "make_long_tailed",
    "read_idx",
    "resize_images",
    "to_device",
]


@dataclass(frozen=True)
class LongTailData:
    """A long-tailed training split, its validation split and the test set.

    Attributes
    ----------
    x_train, x_val, x_test : numpy.ndarray
        float32, shape (N, C, H, W), values in [0, 1] (``x_val`` may hold no images).
    y_train, y_val, y_test : numpy.ndarray
        int64, shape (N,), in [0, num_classes); label 0 is the head class.
    train_counts : tuple of int
        Training images per class (non-increasing).
    class_names : tuple of str
        Names in the new label order.
    class_order : tuple of int
        ``class_order[c]`` is the source class that became label ``c``.
    notes : tuple of str
        How the splits were built, in words (every report states them).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    train_counts: tuple[int, ...]
    class_names: tuple[str, ...]
    class_order: tuple[int, ...]
    notes: tuple[str, ...] = ()

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


def load_source(config: DataConfig) -> Source:
    """Read the configured source from disk (raises FileNotFoundError saying how to get it)."""
    if config.source == "digits":
        return load_digits(config.test_per_class, config.data_seed)
    if config.source == "fashion-mnist":
        return load_fashion(Path(config.data_dir or FASHION_MNIST_DIR))
    if config.data_dir is None:
        what = {"npz": "the .npz file", "folder": "the image folder"}.get(config.source, "")
        raise ValueError(
            f"data.source = {config.source!r} needs --data-dir ({what or 'the CIFAR folder'})"
        )
    if config.source in ("cifar10", "cifar100"):
        return load_cifar(Path(config.data_dir), 10 if config.source == "cifar10" else 100)
    if config.source == "npz":
        return load_npz(Path(config.data_dir))
    if config.source == "folder":
        return load_folder(Path(config.data_dir), config.image_size)
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


def _exponential(
    source: Source, config: DataConfig, source_name: str
) -> tuple[list[int], list[np.ndarray], list[np.ndarray], str]:
    """Head-to-tail order, training indices and spare (unused) indices per class."""
    names, num_classes = source.class_names, len(source.class_names)
    order = _resolve_order(config.class_order, source_name, num_classes)
    pool = [np.flatnonzero(source.y_train == c) for c in order]
    empty = [names[c] for c, p in zip(order, pool) if len(p) == 0]
    if empty:
        raise ValueError(f"the training set has no images of class(es) {', '.join(empty)}")
    n_max = config.n_max if config.n_max is not None else min(len(p) for p in pool)
    counts = long_tail_counts(n_max, config.imbalance_factor, num_classes)
    rng = np.random.default_rng([config.data_seed, 0x17])
    train, spare = [], []
    for c, members, count in zip(order, pool, counts):
        if count > len(members):
            raise ValueError(
                f"data.n_max = {n_max} needs {count} images of class {names[c]!r} but the "
                f"source has {len(members)}"
            )
        if count == 0:
            raise ValueError(
                f"data.n_max = {n_max} with imbalance factor {config.imbalance_factor:g} leaves "
                f"class {names[c]!r} empty; raise n_max"
            )
        shuffled = rng.permutation(members)
        train.append(shuffled[:count])
        spare.append(shuffled[count:])
    note = f"exponential profile: n_max {n_max}, imbalance factor {config.imbalance_factor:g}"
    return order, train, spare, note


def _as_given(source: Source) -> tuple[list[int], list[np.ndarray], str]:
    """Every training image; classes ordered by decreasing size (ties by source index)."""
    num_classes = len(source.class_names)
    counts = np.bincount(source.y_train, minlength=num_classes)[:num_classes]
    empty = [source.class_names[c] for c in np.flatnonzero(counts == 0)]
    if empty:
        raise ValueError(f"the training set has no images of class(es) {', '.join(empty)}")
    order = [int(c) for c in np.argsort(-counts, kind="stable")]
    train = [np.flatnonzero(source.y_train == c) for c in order]
    return order, train, f"as given: {int(counts.sum())} training images"


def _hold_out(
    train: list[np.ndarray], fraction: float, seed: int
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Move ``round(fraction * n)`` random images of each class (at least one of a class with
    two or more, so every class is validated) from training to validation."""
    rng = np.random.default_rng([seed, 0x5A1])
    kept, held = [], []
    for members in train:
        n = len(members)
        take = 0 if fraction == 0 or n < 2 else max(1, round(fraction * n))
        shuffled = rng.permutation(members)
        held.append(np.sort(shuffled[:take]))
        kept.append(np.sort(shuffled[take:]))
    return kept, held


def make_long_tailed(
    source: Source, config: DataConfig, source_name: str | None = None
) -> LongTailData:
    """Build the training, validation and test splits of ``source`` (module docstring)."""
    profile = data_profile(config)
    notes = []
    spare: list[np.ndarray] | None = None
    if profile == "exponential":
        order, train, spare, note = _exponential(source, config, source_name or config.source)
    else:
        order, train, note = _as_given(source)
    notes.append(note)
    relabel = np.empty(len(source.class_names), dtype=np.int64)
    relabel[order] = np.arange(len(order))
    if source.x_val is not None and source.y_val is not None:
        x_val, y_val = source.x_val, relabel[source.y_val]
        notes.append(f"validation: the source's own {len(y_val)} images")
    else:
        if spare is not None:
            held = [s[: config.val_per_class] for s in spare]
            short = [
                source.class_names[c] for c, h in zip(order, held) if len(h) < config.val_per_class
            ]
            notes.append(
                f"validation: {config.val_per_class} unused training images per class"
                + (f" (fewer for {', '.join(short)}, which had fewer to spare)" if short else "")
            )
        else:
            train, held = _hold_out(train, config.val_fraction, config.data_seed)
            notes.append(
                f"validation: {config.val_fraction:.0%} of each class's training images held "
                f"out ({sum(len(h) for h in held)} images; not trained on)"
            )
        val_idx = np.concatenate(held).astype(np.int64)
        x_val, y_val = source.x_train[val_idx], relabel[source.y_train[val_idx]]
    train_idx = np.concatenate(train)
    counts = tuple(int(len(t)) for t in train)
    if list(counts) != sorted(counts, reverse=True):  # pragma: no cover - guarded by the order
        raise AssertionError(f"class sizes are not head to tail: {counts}")
    test_keep = np.isin(source.y_test, order)
    arrays = [source.x_train[train_idx], x_val, source.x_test[test_keep]]
    if config.image_size is not None:
        arrays = [resize_images(x, config.image_size) for x in arrays]
        notes.append(f"images resized to {config.image_size}x{config.image_size}")
    return LongTailData(
        x_train=np.ascontiguousarray(arrays[0]),
        y_train=relabel[source.y_train[train_idx]],
        x_val=np.ascontiguousarray(arrays[1]),
        y_val=np.asarray(y_val, dtype=np.int64),
        x_test=np.ascontiguousarray(arrays[2]),
        y_test=relabel[source.y_test[test_keep]],
        train_counts=counts,
        class_names=tuple(source.class_names[c] for c in order),
        class_order=tuple(order),
        notes=tuple(notes),
    )


def resize_images(x: np.ndarray, size: int) -> np.ndarray:
    """float32 (N, C, H, W) -> (N, C, size, size), antialiased bilinear (a no-op at that size)."""
    if x.shape[-2:] == (size, size):
        return x
    out = np.empty((len(x), x.shape[1], size, size), dtype=np.float32)
    for start in range(0, len(x), 4096):  # bounded memory on large sources
        chunk = torch.from_numpy(np.ascontiguousarray(x[start : start + 4096]))
        resized = F.interpolate(chunk, size=(size, size), mode="bilinear", antialias=True)
        out[start : start + len(chunk)] = resized.clamp(0, 1).numpy()
    return out


def load_long_tailed(config: DataConfig) -> LongTailData:
    """Read the configured source and build its training, validation and test splits.

    Parameters
    ----------
    config : DataConfig
        Source, location, profile, imbalance factor, head size, class order, validation
        settings, image size and data seed.

    Returns
    -------
    LongTailData
        Host (numpy) arrays; move them to the training device once (:func:`to_device`).

    Raises
    ------
    FileNotFoundError
        When the source's files are missing (the message says how to get them).
    ValueError
        For malformed files, an impossible split or a bad class order.

    Notes
    -----
    The splits depend only on ``config`` (``data_seed``), never on the training seed.
    """
    return make_long_tailed(load_source(config), config)


@dataclass(frozen=True)
class DeviceData:
    """A :class:`LongTailData` resident on the training device (small datasets
    live on the device and are augmented there in whole batches).

    Attributes
    ----------
    x_train, x_val, x_test : torch.Tensor
        float32 (N, C, H, W) in [0, 1], on ``device``.
    y_train, y_val, y_test : torch.Tensor
        int64 (N,), on ``device``.
    host : LongTailData
        The numpy originals (labels for samplers and ipdpp, counts, names).
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
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

    def move(array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array)).to(device)

    return DeviceData(
        x_train=move(data.x_train),
        y_train=move(data.y_train),
        x_val=move(data.x_val),
        y_val=move(data.y_val),
        x_test=move(data.x_test),
        y_test=move(data.y_test),
        host=data,
    )
