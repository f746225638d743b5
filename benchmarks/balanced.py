"""``balanced_subset`` on long-tailed label sets, against per-class loops of k-DPP samplers.

A user's alternative to one ``balanced_subset`` call is a Python loop over the classes that
builds each dense IP-DPP kernel (paper Eq. 16, ``alpha = 1/N_c``) and calls DPPy or the numpy
baseline; classes with ``N_c <= k`` are kept whole. The loops time one class at the middle of
each of m equal quantile bins (classes sorted by size) and scale by classes / m.
"""

from __future__ import annotations

import contextlib
import importlib
import io
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .baselines import NumpyKDPP

__all__ = ["LOOPS", "SHAPES", "LongTailShape", "class_loop", "class_sizes", "ipdpp_kernel_dense"]


@dataclass(frozen=True)
class LongTailShape:
    """A long-tailed label set: ``num_classes`` classes from ``largest`` down to ``smallest``."""

    name: str
    num_classes: int
    largest: int
    smallest: int
    k: int

    def problem(self, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Shuffled labels (N,) int64 with these class sizes and scores p (N,) ~ Beta(8, 2)."""
        rng = np.random.default_rng([seed, self.num_classes])
        labels = np.repeat(np.arange(self.num_classes), class_sizes(self))
        rng.shuffle(labels)
        return labels, rng.beta(8.0, 2.0, size=labels.size)


SHAPES: dict[str, tuple[LongTailShape, ...]] = {
    "full": (
        LongTailShape("ImageNet-LT-shaped", 1_000, 1_280, 5, 50),
        LongTailShape("iNaturalist-shaped", 8_142, 1_000, 2, 20),
    ),
    "quick": (
        LongTailShape("ImageNet-LT-shaped", 1_000, 1_280, 5, 50),
        LongTailShape("iNaturalist-shaped (1/10 of the classes)", 814, 1_000, 2, 20),
    ),
    "tiny": (LongTailShape("tiny long-tailed", 12, 120, 3, 8),),
    "off": (),
}


def class_sizes(shape: LongTailShape) -> np.ndarray:
    """Class sizes (C,) int64: ``floor(largest * IF^(-c/(C-1)))`` with IF = largest / smallest."""
    exponent = np.arange(shape.num_classes) / max(shape.num_classes - 1, 1)
    ratio = shape.smallest / shape.largest
    # The small offset keeps floor() from turning an exact integer like 5.0 into 4.
    return np.floor(shape.largest * ratio**exponent + 1e-9).astype(np.int64)


def ipdpp_kernel_dense(p: np.ndarray) -> np.ndarray:
    """The dense IP-DPP kernel of one class (paper Eq. 16, ``alpha = 1/N``), shape (N, N).

    ``S = diag(1 - alpha p_i P) + alpha p p^T`` with ``P = sum(p)``; the diagonal is
    ``1 - alpha p_i (P - p_i)`` and the off-diagonal ``alpha p_i p_j``.
    """
    alpha = 1.0 / p.size
    kernel = alpha * np.outer(p, p)
    kernel[np.diag_indices_from(kernel)] += 1.0 - alpha * p * p.sum()
    return kernel


def _dppy_draw(kernel: np.ndarray, k: int, seed: int) -> Any:
    from dppy.finite_dpps import FiniteDPP  # imported untimed by class_loop

    with contextlib.redirect_stdout(io.StringIO()):  # DPPy prints what it computes
        dpp = FiniteDPP("likelihood", L=kernel)
        return dpp.sample_exact_k_dpp(k, mode="GS_bis", random_state=np.random.RandomState(seed))


def _numpy_draw(kernel: np.ndarray, k: int, seed: int) -> Any:
    return NumpyKDPP.from_dense(kernel).sample(k, np.random.default_rng(seed))


# key -> (label, draw(dense kernel, k, seed), the optional module it needs)
LOOPS: dict[str, tuple[str, Callable[[np.ndarray, int, int], Any], str]] = {
    "dppy": ("DPPy GS_bis loop", _dppy_draw, "dppy.finite_dpps"),
    "numpy": ("numpy loop", _numpy_draw, "numpy"),
}


def class_loop(
    labels: np.ndarray, p: np.ndarray, k: int, loop: str, max_classes: int, seed: int
) -> tuple[Callable[[], None], dict[str, Any]]:
    """A per-class loop (``loop`` "dppy" or "numpy") over at most ``max_classes`` classes.

    ``labels`` and ``p`` have shape (N,); k items are drawn per class. Returns ``call``, one
    pass over the chosen classes (kernel construction and one sample each; RuntimeError on an
    invalid sample), and ``info``: ``scale`` (the loop over every class with N_c > k costs about
    ``scale`` passes), ``classes_timed``, ``classes_sampled``, ``extrapolated``.
    """
    _, draw, module = LOOPS[loop]
    importlib.import_module(module)  # so that the pass does not time the import
    order = np.argsort(labels, kind="stable")
    _, starts, counts = np.unique(labels[order], return_index=True, return_counts=True)
    big = np.flatnonzero(counts > k)
    big = big[np.argsort(counts[big], kind="stable")]
    m = min(max_classes, big.size)
    chosen = big[((np.arange(m) + 0.5) * big.size / m).astype(np.int64)] if m else big
    members = [order[starts[c] : starts[c] + counts[c]] for c in chosen]

    def call() -> None:
        for c, rows in zip(chosen, members):
            sample = draw(ipdpp_kernel_dense(p[rows]), k, seed + int(c))
            if len(set(np.asarray(sample).tolist())) != k:
                raise RuntimeError(f"{loop} returned an invalid sample for class {c}")

    info = {
        "scale": big.size / m if m else 0.0,
        "classes_timed": int(m),
        "classes_sampled": int(big.size),
        "extrapolated": bool(m < big.size),
    }
    return call, info
