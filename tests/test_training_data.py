"""training.data: the long-tailed profile, the split, and every file format it reads."""

from __future__ import annotations

import gzip
import os
import pickle
import struct

import numpy as np
import pytest

from ipdpp_train.config import DataConfig
from ipdpp_train.data import (
    FASHION_HARD_TAIL_ORDER,
    load_long_tailed,
    long_tail_counts,
    read_idx,
)


def test_cifar10_lt_profile():
    assert long_tail_counts(5000, 100, 10) == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]


def test_profile_edges_and_errors():
    assert long_tail_counts(7, 1, 3) == [7, 7, 7]  # IF 1: balanced
    assert long_tail_counts(500, 100, 100)[-1] == 5  # CIFAR-100-LT IF 100 tail
    assert long_tail_counts(9, 50, 1) == [9]
    with pytest.raises(ValueError, match="imbalance_factor"):
        long_tail_counts(10, 0.5, 3)
    with pytest.raises(ValueError, match="n_max"):
        long_tail_counts(0, 10, 3)


def _write_idx(path, array, compress):
    codes = {np.dtype(np.uint8): 0x08}
    header = bytes([0, 0, codes[array.dtype], array.ndim]) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    payload = header + array.tobytes()
    if compress:
        with gzip.open(str(path) + ".gz", "wb") as fh:
            fh.write(payload)
    else:
        path.write_bytes(payload)


def _fake_fashion(folder, compress, per_class=(30, 8)):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", per_class[0]), ("t10k", per_class[1])):
        labels = np.repeat(np.arange(10, dtype=np.uint8), n)
        images = rng.integers(0, 256, size=(len(labels), 6, 5), dtype=np.uint8)
        # Encode the label in pixel (0, 0) so the tests can check that images follow labels.
        images[:, 0, 0] = labels * 20
        _write_idx(folder / f"{prefix}-images-idx3-ubyte", images, compress)
        _write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels, compress)


@pytest.mark.parametrize("compress", [True, False], ids=["gz", "raw"])
def test_fashion_idx_loader_and_hard_tail_order(tmp_path, compress):
    _fake_fashion(tmp_path, compress)
    config = DataConfig(
        source="fashion-mnist",
        data_dir=str(tmp_path),
        imbalance_factor=10,
        n_max=30,
        class_order="hard-tail",
    )
    data = load_long_tailed(config)
    assert data.train_counts == tuple(long_tail_counts(30, 10, 10))
    assert np.bincount(data.y_train).tolist() == list(data.train_counts)
    assert data.x_train.shape[1:] == (1, 6, 5) and data.x_train.dtype == np.float32
    assert 0.0 <= data.x_train.min() and data.x_train.max() <= 1.0
    assert data.class_order == FASHION_HARD_TAIL_ORDER
    assert data.class_names[0] == "trouser" and data.class_names[-1] == "shirt"
    # New label c holds source class order[c] (pixel (0, 0) carries the source label).
    source_label = np.rint(data.x_train[:, 0, 0, 0] * 255 / 20).astype(int)
    assert np.array_equal(source_label, np.asarray(FASHION_HARD_TAIL_ORDER)[data.y_train])
    test_source = np.rint(data.x_test[:, 0, 0, 0] * 255 / 20).astype(int)
    assert np.array_equal(test_source, np.asarray(FASHION_HARD_TAIL_ORDER)[data.y_test])
    assert np.bincount(data.y_test).tolist() == [8] * 10  # the test set stays balanced
    # Validation: up to val_per_class (20) of the images each class's split left unused.
    spare = [30 - n for n in data.train_counts]
    assert np.bincount(data.y_val, minlength=10).tolist() == [min(20, n) for n in spare]
    assert "fewer for trouser" in " ".join(data.notes)
    val_source = np.rint(data.x_val[:, 0, 0, 0] * 255 / 20).astype(int)
    assert np.array_equal(val_source, np.asarray(FASHION_HARD_TAIL_ORDER)[data.y_val])
    rows = lambda x: {r.tobytes() for r in x.reshape(len(x), -1)}  # noqa: E731
    assert not rows(data.x_val) & rows(data.x_train)  # never trained on


def test_split_depends_on_data_seed_only(tmp_path):
    _fake_fashion(tmp_path, True)
    base = DataConfig(source="fashion-mnist", data_dir=str(tmp_path), imbalance_factor=5, n_max=20)
    a = load_long_tailed(base)
    b = load_long_tailed(base)
    c = load_long_tailed(DataConfig(**{**base.__dict__, "data_seed": 1}))
    assert np.array_equal(a.x_train, b.x_train)
    assert not np.array_equal(a.x_train, c.x_train)
    assert np.array_equal(np.sort(a.y_train), np.sort(c.y_train))


def test_missing_fashion_files_say_how_to_install(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_long_tailed(DataConfig(source="fashion-mnist", data_dir=str(tmp_path)))


def test_bad_idx_file(tmp_path):
    path = tmp_path / "bad"
    path.write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(path)
    truncated = tmp_path / "short"
    truncated.write_bytes(bytes([0, 0, 8, 1]) + struct.pack(">I", 10) + b"\x00" * 3)
    with pytest.raises(ValueError, match="announces shape"):
        read_idx(truncated)


def _cifar_batch(rng, n, classes, label_key):
    labels = rng.integers(0, classes, size=n)
    labels[:classes] = np.arange(classes)  # every class present
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    return {b"data": data, label_key: labels.tolist(), b"filenames": [b"x.png"] * n}


def test_cifar10_pickle_loader(tmp_path):
    rng = np.random.default_rng(1)
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batches[name] = _cifar_batch(rng, 40, 10, b"labels")
        with open(root / name, "wb") as fh:
            pickle.dump(batches[name], fh, protocol=2)
    data = load_long_tailed(
        DataConfig(source="cifar10", data_dir=str(tmp_path), imbalance_factor=4, n_max=4)
    )
    assert data.x_train.shape[1:] == (3, 32, 32)
    assert data.train_counts == (4, 3, 2, 2, 2, 1, 1, 1, 1, 1)
    assert np.bincount(data.y_train).tolist() == list(data.train_counts)
    assert data.class_names[0] == "airplane"
    # The test images are the test batch's, unchanged apart from layout and scale.
    expected = batches["test_batch"][b"data"].reshape(-1, 3, 32, 32).astype(np.float32) / 255
    assert np.allclose(np.sort(data.x_test.ravel()), np.sort(expected.ravel()))


def test_cifar100_pickle_loader_with_meta(tmp_path):
    rng = np.random.default_rng(2)
    root = tmp_path / "cifar-100-python"
    root.mkdir()
    for name in ("train", "test"):
        with open(root / name, "wb") as fh:
            pickle.dump(_cifar_batch(rng, 300, 100, b"fine_labels"), fh)
    with open(root / "meta", "wb") as fh:
        pickle.dump({b"fine_label_names": [f"c{i}".encode() for i in range(100)]}, fh)
    data = load_long_tailed(
        DataConfig(source="cifar100", data_dir=str(root), imbalance_factor=1, n_max=1)
    )
    assert data.num_classes == 100 and data.class_names[5] == "c5"
    assert data.train_counts == (1,) * 100


def test_cifar_loader_refuses_code_in_pickles(tmp_path):
    root = tmp_path / "cifar-100-python"
    root.mkdir()

    class Evil:
        def __reduce__(self):
            return (os.getcwd, ())

    for name in ("train", "test"):
        with open(root / name, "wb") as fh:
            pickle.dump({b"data": Evil()}, fh)
    with pytest.raises(pickle.UnpicklingError, match="not allowed"):
        load_long_tailed(DataConfig(source="cifar100", data_dir=str(root)))


def test_missing_cifar_says_where_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="cs.toronto.edu"):
        load_long_tailed(DataConfig(source="cifar10", data_dir=str(tmp_path)))


def test_npz_loader_channels_last(tmp_path):
    rng = np.random.default_rng(3)
    path = tmp_path / "mine.npz"
    y_train = np.repeat(np.arange(3), [9, 9, 9])
    np.savez(
        path,
        x_train=rng.integers(0, 256, size=(27, 5, 5, 3), dtype=np.uint8),
        y_train=y_train,
        x_test=rng.integers(0, 256, size=(6, 5, 5, 3), dtype=np.uint8),
        y_test=np.array([0, 1, 2, 0, 1, 2]),
    )
    config = DataConfig(source="npz", data_dir=str(path), profile="exponential", imbalance_factor=4)
    data = load_long_tailed(config)
    assert data.x_train.shape == (9 + 4 + 2, 3, 5, 5)
    assert data.train_counts == (9, 4, 2)
    with np.load(path) as raw:
        assert np.allclose(data.x_test, np.moveaxis(raw["x_test"], -1, 1) / 255.0)


def test_npz_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="numpy.savez"):
        load_long_tailed(DataConfig(source="npz", data_dir=str(tmp_path / "none.npz")))
    path = tmp_path / "partial.npz"
    np.savez(path, x_train=np.zeros((2, 3, 3)), y_train=np.zeros(2, dtype=int))
    with pytest.raises(ValueError, match="lacks array"):
        load_long_tailed(DataConfig(source="npz", data_dir=str(path)))
    path = tmp_path / "range.npz"
    np.savez(
        path,
        x_train=np.full((2, 3, 3), 2.0),
        y_train=np.zeros(2, dtype=int),
        x_test=np.zeros((1, 3, 3)),
        y_test=np.zeros(1, dtype=int),
    )
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        load_long_tailed(DataConfig(source="npz", data_dir=str(path)))


def test_class_order_validation(tmp_path):
    _fake_fashion(tmp_path, True)
    with pytest.raises(ValueError, match="permutation"):
        load_long_tailed(
            DataConfig(source="fashion-mnist", data_dir=str(tmp_path), class_order=[0, 0, 1])
        )
    with pytest.raises(ValueError, match="needs 40 images"):
        load_long_tailed(DataConfig(source="fashion-mnist", data_dir=str(tmp_path), n_max=40))


def test_digits_split_is_balanced_and_disjoint():
    pytest.importorskip("sklearn")
    data = load_long_tailed(DataConfig(source="digits", n_max=120, test_per_class=50))
    assert np.bincount(data.y_test).tolist() == [50] * 10
    assert data.train_counts == tuple(long_tail_counts(120, 100, 10))
    assert data.x_train.shape[1:] == (1, 8, 8)
    train_rows = {row.tobytes() for row in data.x_train.reshape(len(data.x_train), -1)}
    test_rows = [row.tobytes() for row in data.x_test.reshape(len(data.x_test), -1)]
    # sklearn's digits holds a few duplicate images; the split itself never shares an index,
    # so almost every test image is absent from the training set.
    assert sum(r in train_rows for r in test_rows) <= 2
