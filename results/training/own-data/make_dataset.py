"""Build the own-data test set behind results/training/own-data: a long-tailed ~1.4k-image
subset of Fashion-MNIST, shaped like a user's own data (28x28 grayscale, 10 classes, already
long-tailed, no validation set of its own), saved as one .npz file.

    python results/training/own-data/make_dataset.py fashion_lt_1k4.npz

Training: 550 * 100 ** (-c / 9) images of class c in the "hard-tail" order (550 trousers ...
5 shirts, 1,361 images); test: 100 images of every class from the official test set. Needs the
IDX files (apt-get install dataset-fashion-mnist).
"""

from __future__ import annotations

import sys

import numpy as np

from ipdpp_train.data import FASHION_HARD_TAIL_ORDER, long_tail_counts
from ipdpp_train.sources import FASHION_MNIST_DIR, load_fashion

N_MAX, IMBALANCE, TEST_PER_CLASS, SEED = 550, 100.0, 100, 2026


def main(path: str) -> None:
    from pathlib import Path

    source = load_fashion(Path(FASHION_MNIST_DIR))
    rng = np.random.default_rng(SEED)
    counts = long_tail_counts(N_MAX, IMBALANCE, 10)
    train = [rng.choice(np.flatnonzero(source.y_train == c), n, replace=False)
             for c, n in zip(FASHION_HARD_TAIL_ORDER, counts)]  # fmt: skip
    test = [rng.choice(np.flatnonzero(source.y_test == c), TEST_PER_CLASS, replace=False)
            for c in range(10)]  # fmt: skip
    train_idx, test_idx = rng.permutation(np.concatenate(train)), np.concatenate(test)
    as_uint8 = lambda x: np.rint(x[:, 0] * 255).astype(np.uint8)  # noqa: E731
    np.savez_compressed(
        path,
        x_train=as_uint8(source.x_train[train_idx]),
        y_train=source.y_train[train_idx],
        x_test=as_uint8(source.x_test[test_idx]),
        y_test=source.y_test[test_idx],
        class_names=np.array(source.class_names),
    )
    print(f"{path}: {len(train_idx)} training images {counts}, {len(test_idx)} test images")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "fashion_lt_1k4.npz")
