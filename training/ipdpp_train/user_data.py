"""Users' own datasets: an ``.npz`` file or an image folder, read as given.

``.npz``: arrays ``x_train``, ``y_train``, ``x_test``, ``y_test`` and optionally ``x_val``,
``y_val`` (a validation set of the user's own) and ``class_names``. Images (N, H, W),
(N, H, W, C) or (N, C, H, W) with C in {1, 3}, integer (0..255) or float in [0, 1]; labels
non-negative integers.

Image folder (read with Pillow)::

    ROOT/train/<class name>/*.png|jpg|...   one sub-folder per class
    ROOT/test/<class name>/...              the same class names (a subset is fine)
    ROOT/val/<class name>/...               optional: the user's own validation set

Classes are numbered in sorted folder-name order. Images are grayscale when every file is
(mode 1, L, LA, I, I;16 or F), RGB otherwise; they must share one size unless
``image_size`` resizes them on reading.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .sources import Source, as_images, as_labels

__all__ = ["IMAGE_SUFFIXES", "load_folder", "load_npz"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm")
_GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}
_NPZ_LAYOUT = (
    "numpy.savez(path, x_train=..., y_train=..., x_test=..., y_test=...) "
    "(optionally x_val=..., y_val=..., class_names=...)"
)


def load_npz(path: Path) -> Source:
    """Read a user's ``.npz`` dataset (see the module docstring for the arrays it holds).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist (the message shows how to save such a file).
    ValueError, TypeError
        For missing arrays, mismatched shapes or values outside the documented ranges.
    """
    if path.is_dir():
        raise ValueError(f"data.data_dir for source npz must be the .npz file itself; got {path}")
    if not path.is_file():
        raise FileNotFoundError(
            f"npz dataset not found: {path}. Save your data with {_NPZ_LAYOUT} and pass "
            "--data-dir path."
        )
    with np.load(path, allow_pickle=False) as archive:
        missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in archive]
        if missing:
            raise ValueError(f"{path} lacks array(s) {', '.join(missing)}; expected {_NPZ_LAYOUT}")
        if ("x_val" in archive) != ("y_val" in archive):
            raise ValueError(f"{path} must hold both x_val and y_val, or neither")
        x = {
            k: as_images(archive[f"x_{k}"], f"x_{k}")
            for k in ("train", "test", "val")
            if f"x_{k}" in archive
        }
        y = {k: as_labels(archive[f"y_{k}"], f"y_{k}", len(x[k])) for k in x}
        names = [str(n) for n in archive["class_names"]] if "class_names" in archive else None
    for k in x:
        if x[k].shape[1:] != x["train"].shape[1:]:
            raise ValueError(
                f"x_train and x_{k} image shapes differ: {x['train'].shape} vs {x[k].shape}"
            )
    num_classes = 1 + max(int(v.max(initial=0)) for v in y.values())
    if names is None:
        names = [str(c) for c in range(num_classes)]
    elif len(names) < num_classes or len(set(names)) != len(names):
        raise ValueError(
            f"{path}: class_names must hold {num_classes} distinct names (labels reach "
            f"{num_classes - 1}); got {len(names)}"
        )
    return Source(
        x["train"], y["train"], x["test"], y["test"], tuple(names), x.get("val"), y.get("val")
    )


def _image_files(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
    )  # fmt: skip


def _class_folders(split: Path) -> dict[str, list[Path]]:
    return {d.name: _image_files(d) for d in sorted(split.iterdir()) if d.is_dir()}


def _read_images(files: list[Path], gray: bool, image_size: int | None) -> np.ndarray:
    """uint8 (N, H, W) or (N, H, W, 3); every file the same size unless ``image_size``."""
    from PIL import Image, UnidentifiedImageError

    arrays, first = [], None
    for path in files:
        try:
            with Image.open(path) as opened:
                opened.load()
                image: Image.Image = opened
                if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
                    # Wide grayscale: scale the file's range to 8 bits before converting.
                    values = np.asarray(image, dtype=np.float64)
                    top = 65535.0 if image.mode.startswith("I;16") else max(1.0, values.max())
                    image = Image.fromarray(np.uint8(np.clip(values / top, 0, 1) * 255))
                image = image.convert("L" if gray else "RGB")
                if image_size is not None and image.size != (image_size, image_size):
                    image = image.resize((image_size, image_size), Image.Resampling.BILINEAR)
                array = np.asarray(image, dtype=np.uint8)
        except (UnidentifiedImageError, OSError) as exc:
            raise ValueError(f"{path} is not a readable image ({exc})") from None
        if first is None:
            first = (path, array.shape)
        elif array.shape != first[1]:
            raise ValueError(
                f"images differ in size: {first[0]} is {first[1][1]}x{first[1][0]} but {path} is "
                f"{array.shape[1]}x{array.shape[0]}; set data.image_size to resize them all"
            )
        arrays.append(array)
    return np.stack(arrays)


def load_folder(root: Path, image_size: int | None = None) -> Source:
    """Read an image-folder dataset (layout in the module docstring) with Pillow.

    Parameters
    ----------
    root : pathlib.Path
        Folder holding ``train/`` and ``test/`` (and optionally ``val/``).
    image_size : int, optional
        Resize every image to image_size x image_size on reading (needed when sizes differ).

    Raises
    ------
    FileNotFoundError
        If ``root`` or its ``train``/``test`` sub-folders are missing.
    ValueError
        For an empty training class, a test class unknown to training, or unreadable images.
    """
    layout = (
        "expected ROOT/train/<class>/<images> and ROOT/test/<class>/<images> "
        "(optionally ROOT/val/<class>/<images>), one sub-folder per class"
    )
    if not root.is_dir():
        raise FileNotFoundError(f"image folder not found: {root}; {layout}")
    splits = {}
    for split in ("train", "test", "val"):
        if (root / split).is_dir():
            splits[split] = _class_folders(root / split)
        elif split != "val":
            raise FileNotFoundError(f"{root} has no {split}/ folder; {layout}")
    names = list(splits["train"])
    empty = [n for n, files in splits["train"].items() if not files]
    if not names or empty:
        raise ValueError(
            f"{root / 'train'}: every class folder needs at least one image "
            f"({'no class folders' if not names else 'empty: ' + ', '.join(empty)})"
        )
    for split in ("test", "val"):
        unknown = sorted(set(splits.get(split, {})) - set(names))
        if unknown:
            raise ValueError(f"{root / split} has classes absent from train/: {', '.join(unknown)}")
    from PIL import Image

    gray = True  # opening reads the header only, so this pass is cheap
    for classes in splits.values():
        for files in classes.values():
            for path in files:
                try:
                    with Image.open(path) as image:
                        gray = gray and image.mode in _GRAY_MODES
                except OSError as exc:
                    raise ValueError(f"{path} is not a readable image ({exc})") from None
    arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for split, classes in splits.items():
        files = [f for n in names for f in classes.get(n, [])]
        labels = np.array([c for c, n in enumerate(names) for _ in classes.get(n, [])], np.int64)
        if not files:
            raise ValueError(f"{root / split} holds no images")
        arrays[split] = (as_images(_read_images(files, gray, image_size), split), labels)
    for split, (x, _) in arrays.items():
        if x.shape[1:] != arrays["train"][0].shape[1:]:
            raise ValueError(
                f"{split}/ images are {x.shape[2]}x{x.shape[3]} but train/ images are "
                f"{arrays['train'][0].shape[2]}x{arrays['train'][0].shape[3]}; set data.image_size"
            )
    val = arrays.get("val")
    return Source(
        *arrays["train"],
        *arrays["test"],
        tuple(names),
        None if val is None else val[0],
        None if val is None else val[1],
    )
