"""Users' own data used as given: .npz files, image folders, validation splits, resizing."""

from __future__ import annotations

import numpy as np
import pytest

from ipdpp_train.config import DataConfig
from ipdpp_train.data import load_long_tailed, resize_images

PIL = pytest.importorskip("PIL")
from PIL import Image  # noqa: E402

# A user's long-tailed data, deliberately not in head-to-tail label order.
USER_COUNTS = {0: 5, 1: 40, 2: 12, 3: 2, 4: 1}


def _labelled_images(rng, counts, size=(6, 7)):
    """uint8 images whose pixel (0, 0) encodes the label (label * 40) and (0, 1) an index."""
    labels = np.concatenate([np.full(n, c) for c, n in counts.items()]).astype(np.int64)
    images = rng.integers(0, 256, size=(len(labels), *size), dtype=np.uint8)
    images[:, 0, 0] = labels * 40
    images[:, 0, 1] = np.arange(len(labels)) % 256
    return images, labels


def _source_label(x):
    return np.rint(x[:, 0, 0, 0] * 255 / 40).astype(int)


def _rows(x):
    return {r.tobytes() for r in x.reshape(len(x), -1)}


def test_npz_is_used_as_given_with_a_stratified_validation_hold_out(tmp_path):
    rng = np.random.default_rng(0)
    x_train, y_train = _labelled_images(rng, USER_COUNTS)
    x_test, y_test = _labelled_images(rng, dict.fromkeys(USER_COUNTS, 3))
    path = tmp_path / "mine.npz"
    names = np.array(["ant", "bee", "cat", "dog", "eel"])
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
             class_names=names)  # fmt: skip
    data = load_long_tailed(DataConfig(source="npz", data_dir=str(path)))  # as given by default
    # Head to tail by size: bee (40), cat (12), ant (5), dog (2), eel (1); nothing re-cut except
    # the validation hold-out: round(10 %), at least one image of every class with two or more.
    assert data.class_names == ("bee", "cat", "ant", "dog", "eel")
    assert data.class_order == (1, 2, 0, 3, 4)
    held = (4, 1, 1, 1, 0)
    assert data.train_counts == (36, 11, 4, 1, 1)
    assert np.bincount(data.y_val, minlength=5).tolist() == list(held)
    assert len(data.y_train) + len(data.y_val) == len(y_train)
    # Images follow their labels through the renumbering, and validation is never trained on.
    order = np.asarray(data.class_order)
    assert np.array_equal(_source_label(data.x_train), order[data.y_train])
    assert np.array_equal(_source_label(data.x_val), order[data.y_val])
    assert np.array_equal(_source_label(data.x_test), order[data.y_test])
    assert not _rows(data.x_val) & _rows(data.x_train)
    assert data.notes[0] == "as given: 60 training images"
    assert "10% of each class's training images held out (7 images" in data.notes[1]
    # The same data seed gives the same hold-out; another seed another one.
    again = load_long_tailed(DataConfig(source="npz", data_dir=str(path)))
    other = load_long_tailed(DataConfig(source="npz", data_dir=str(path), data_seed=1))
    assert np.array_equal(again.x_val, data.x_val) and not np.array_equal(other.x_val, data.x_val)
    # No hold-out at all when asked.
    whole = load_long_tailed(DataConfig(source="npz", data_dir=str(path), val_fraction=0.0))
    assert whole.train_counts == (40, 12, 5, 2, 1) and len(whole.y_val) == 0


def test_npz_own_validation_arrays_are_used_and_training_is_untouched(tmp_path):
    rng = np.random.default_rng(1)
    x_train, y_train = _labelled_images(rng, USER_COUNTS)
    x_val, y_val = _labelled_images(rng, dict.fromkeys(USER_COUNTS, 2))
    path = tmp_path / "mine.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_val, y_test=y_val,
             x_val=x_val, y_val=y_val)  # fmt: skip
    data = load_long_tailed(DataConfig(source="npz", data_dir=str(path)))
    assert data.train_counts == (40, 12, 5, 2, 1)
    assert len(data.y_val) == 10 and "the source's own 10 images" in data.notes[1]
    assert np.array_equal(_source_label(data.x_val), np.asarray(data.class_order)[data.y_val])
    partial = tmp_path / "partial.npz"
    np.savez(partial, x_train=x_train, y_train=y_train, x_test=x_val, y_test=y_val, x_val=x_val)
    with pytest.raises(ValueError, match="both x_val and y_val"):
        load_long_tailed(DataConfig(source="npz", data_dir=str(partial)))
    empty_class = tmp_path / "gap.npz"
    np.savez(empty_class, x_train=x_train, y_train=np.where(y_train == 2, 5, y_train),
             x_test=x_val, y_test=y_val)  # fmt: skip
    with pytest.raises(ValueError, match="no images of class"):
        load_long_tailed(DataConfig(source="npz", data_dir=str(empty_class)))


def _write_folder(root, split, counts, rng, mode="L", size=(7, 6)):
    x, y = _labelled_images(rng, counts, size=size[::-1])
    names = {0: "ant", 1: "bee", 2: "cat", 3: "dog", 4: "eel"}
    for i, (image, label) in enumerate(zip(x, y)):
        folder = root / split / names[int(label)]
        folder.mkdir(parents=True, exist_ok=True)
        picture = Image.fromarray(image)
        picture = picture.convert(mode) if mode != "L" else picture
        picture.save(folder / f"{i:03d}.png")
    return x, y


def test_image_folder_is_read_as_given(tmp_path):
    rng = np.random.default_rng(2)
    _write_folder(tmp_path, "train", USER_COUNTS, rng)
    _write_folder(tmp_path, "test", {0: 2, 1: 2, 2: 2, 4: 1}, rng)  # a test class may be absent
    (tmp_path / "train" / "notes.txt").write_text("not a class")  # files beside folders: ignored
    (tmp_path / "train" / "bee" / ".hidden.png").write_bytes(b"")
    data = load_long_tailed(DataConfig(source="folder", data_dir=str(tmp_path)))
    assert data.class_names == ("bee", "cat", "ant", "dog", "eel")
    assert data.train_counts == (36, 11, 4, 1, 1)
    assert data.x_train.shape[1:] == (1, 6, 7) and data.x_train.dtype == np.float32
    order = np.asarray(data.class_order)
    assert np.array_equal(_source_label(data.x_train), order[data.y_train])
    assert np.array_equal(_source_label(data.x_test), order[data.y_test])
    assert sorted(np.bincount(data.y_test, minlength=5).tolist()) == [0, 1, 2, 2, 2]


def test_image_folder_validation_colour_and_sizes(tmp_path):
    rng = np.random.default_rng(3)
    _write_folder(tmp_path, "train", {0: 3, 1: 6}, rng, mode="RGB")
    _write_folder(tmp_path, "test", {0: 2, 1: 2}, rng, mode="RGB")
    _write_folder(tmp_path, "val", {0: 1, 1: 2}, rng, mode="RGB")
    data = load_long_tailed(DataConfig(source="folder", data_dir=str(tmp_path)))
    assert data.x_train.shape[1] == 3 and data.train_counts == (6, 3)  # val/ is not held out
    assert np.bincount(data.y_val).tolist() == [2, 1] and "source's own" in data.notes[1]
    # A differently sized image: a clear error, or resized on request.
    Image.fromarray(np.zeros((9, 9, 3), np.uint8)).save(tmp_path / "train" / "ant" / "big.png")
    with pytest.raises(ValueError, match="set data.image_size"):
        load_long_tailed(DataConfig(source="folder", data_dir=str(tmp_path)))
    resized = load_long_tailed(DataConfig(source="folder", data_dir=str(tmp_path), image_size=5))
    assert resized.x_train.shape[1:] == (3, 5, 5) and resized.x_test.shape[1:] == (3, 5, 5)
    (tmp_path / "train" / "ant" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="broken.png is not a readable image"):
        load_long_tailed(DataConfig(source="folder", data_dir=str(tmp_path), image_size=5))


def test_image_folder_layout_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="image folder not found"):
        load_long_tailed(DataConfig(source="folder", data_dir=str(tmp_path / "none")))
    (tmp_path / "train" / "ant").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="no test/ folder"):
        load_long_tailed(DataConfig(source="folder", data_dir=str(tmp_path)))
    (tmp_path / "test" / "bee").mkdir(parents=True)
    with pytest.raises(ValueError, match="empty: ant"):
        load_long_tailed(DataConfig(source="folder", data_dir=str(tmp_path)))
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "train" / "ant" / "a.png")
    with pytest.raises(ValueError, match="classes absent from train/: bee"):
        load_long_tailed(DataConfig(source="folder", data_dir=str(tmp_path)))
    with pytest.raises(ValueError, match="needs --data-dir"):
        load_long_tailed(DataConfig(source="folder"))


def test_downsampling_keeps_the_range_and_averages():
    x = np.zeros((2, 1, 28, 28), np.float32)
    x[0, :, :14, :] = 1.0  # top half white
    small = resize_images(x, 16)
    assert small.shape == (2, 1, 16, 16) and small.dtype == np.float32
    assert 0.0 <= small.min() and small.max() <= 1.0
    assert small[0].mean() == pytest.approx(0.5, abs=0.02) and small[1].max() == 0.0
    assert resize_images(x, 28) is x
