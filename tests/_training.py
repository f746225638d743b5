"""Shared pieces of the training tests: a tiny four-class image set and a run table over it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

K_PER_CLASS = 5


def write_tiny_npz(path: Path) -> Path:
    """Four classes of 8x8 images (a class-specific bright quadrant plus noise), 24 training and
    6 test images per class, as a users'-data ``.npz`` at ``path``."""
    rng = np.random.default_rng(0)

    def images(labels):
        x = rng.uniform(0, 0.3, size=(len(labels), 8, 8))
        for i, c in enumerate(labels):
            r, s = divmod(int(c), 2)
            x[i, 4 * r : 4 * r + 4, 4 * s : 4 * s + 4] += 0.6
        return (x * 255).astype(np.uint8)

    y_train = np.repeat(np.arange(4), 24)
    y_test = np.repeat(np.arange(4), 6)
    np.savez(path, x_train=images(y_train), y_train=y_train, x_test=images(y_test), y_test=y_test)
    return path


def tiny_table(npz: Path, out: Path, *, val_per_class: int = 4, **run) -> dict:
    """A run table that trains every phase for a few steps on :func:`write_tiny_npz`'s data
    (class sizes 16, 10, 6, 4); ``run`` entries override the ``[run]`` section."""
    return {
        "data": {
            "source": "npz",
            "data_dir": str(npz),
            "profile": "exponential",
            "imbalance_factor": 4.0,
            "n_max": 16,
            "val_per_class": val_per_class,
        },
        "model": {"arch": "small_cnn", "width": 4, "projection_hidden": 16, "projection_dim": 8},
        "augment": {"flip": False},
        "stage1": {"epochs": 2, "batch_size": 16, "warmup_epochs": 1, "partners": 2},
        "stage2": {
            "epochs": 3,
            "batch_size": 8,
            "warmup_epochs": 1,
            "resample_every": 2,
            "k_per_class": K_PER_CLASS,
        },
        "ce": {"epochs": 2, "batch_size": 16, "warmup_epochs": 0},
        "linear_probe": {"epochs": 3, "batch_size": 16},
        "run": {"name": "tiny", "out_dir": str(out), "progress": False, "threads": 1, **run},
    }
