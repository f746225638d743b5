"""``balanced_subset`` on long-tailed label sets, against per-class loops of k-DPP samplers.

Stage 2 of the long-tailed pipeline draws, for every class c, ``min(k, N_c)`` items from the
class's IP-DPP k-DPP (paper Eq. 16: ``S = diag(d) + alpha p p^T`` with ``alpha = 1/N_c``). ipdpp
does all classes in one call; the alternative a user has is a Python loop over classes that
builds each dense ``S`` and calls a k-DPP sampler: DPPy (``FiniteDPP("likelihood", L=S)``,
``GS_bis``) or the plain numpy baseline (dense ``eigh`` + sequential phase). Classes with
``N_c <= k`` are kept whole and cost nothing in either.

The loops are slow on the large problems, so they time a systematic subset of classes and
extrapolate: the classes that need sampling are sorted by size and cut into equal strata, the
middle class of each stratum is timed, and the total is the sum of stratum size times that
class's time. The report says when a number is extrapolated and from how many classes.

Shapes (class sizes follow the exponential profile ``n_c = floor(n_max * IF^(-c/(C-1)))``):
ImageNet-LT-shaped, 1,000 classes from 1,280 to 5 items, k = 50; iNaturalist-shaped, 8,142
classes from 1,000 to 2 items, k = 20. Probabilities ``p`` are drawn from Beta(8, 2), like the
confident but imperfect scores of a trained model.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .baselines import NumpyKDPP

__all__ = ["SHAPES", "LongTailShape", "class_sizes", "ipdpp_kernel_dense", "make_problem"]


@dataclass(frozen=True)
class LongTailShape:
    """A long-tailed label set: ``num_classes`` classes from ``largest`` down to ``smallest``."""

    name: str
    num_classes: int
    largest: int
    smallest: int
    k: int


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
    """Class sizes ``floor(largest * IF^(-c/(C-1)))`` with ``IF = largest / smallest``.

    Returns
    -------
    numpy.ndarray, shape (num_classes,), int64
        Non-increasing; the first is ``largest`` and the last ``smallest``.
    """
    c = np.arange(shape.num_classes)
    ratio = shape.smallest / shape.largest
    exponent = c / max(shape.num_classes - 1, 1)
    # The small offset keeps floor() from turning an exact integer like 5.0 into 4.
    return np.floor(shape.largest * ratio**exponent + 1e-9).astype(np.int64)


def make_problem(shape: LongTailShape, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Shuffled labels with the shape's class sizes and scores ``p ~ Beta(8, 2)``.

    Returns
    -------
    labels : numpy.ndarray, shape (N,), int64
    p : numpy.ndarray, shape (N,), float64
    """
    rng = np.random.default_rng([seed, shape.num_classes])
    labels = np.repeat(np.arange(shape.num_classes), class_sizes(shape))
    rng.shuffle(labels)
    return labels, rng.beta(8.0, 2.0, size=labels.size)


def ipdpp_kernel_dense(p: np.ndarray) -> np.ndarray:
    """The dense IP-DPP kernel of one class (paper Eq. 16, ``alpha = 1/N``).

    ``S = diag(1 - alpha p_i P) + alpha p p^T`` with ``P = sum(p)``; the diagonal is
    ``1 - alpha p_i (P - p_i)`` and the off-diagonal ``alpha p_i p_j``.
    """
    alpha = 1.0 / p.size
    kernel = alpha * np.outer(p, p)
    kernel[np.diag_indices_from(kernel)] += 1.0 - alpha * p * p.sum()
    return kernel


def _dppy_sampler() -> Callable[[np.ndarray, int, int], Any]:
    from dppy.finite_dpps import FiniteDPP

    def draw(kernel: np.ndarray, k: int, seed: int) -> Any:
        with contextlib.redirect_stdout(io.StringIO()):  # DPPy prints what it computes
            dpp = FiniteDPP("likelihood", L=kernel)
            return dpp.sample_exact_k_dpp(
                k, mode="GS_bis", random_state=np.random.RandomState(seed)
            )

    return draw


def _numpy_sampler() -> Callable[[np.ndarray, int, int], Any]:
    def draw(kernel: np.ndarray, k: int, seed: int) -> Any:
        return NumpyKDPP.from_dense(kernel).sample(k, np.random.default_rng(seed))

    return draw


LOOPS: dict[str, tuple[str, Callable[[], Callable[[np.ndarray, int, int], Any]]]] = {
    "dppy": ("DPPy GS_bis loop", _dppy_sampler),
    "numpy": ("numpy loop", _numpy_sampler),
}


def time_class_loop(
    labels: np.ndarray, p: np.ndarray, k: int, loop: str, max_classes: int, seed: int
) -> dict[str, Any]:
    """Time a per-class loop of dense IP-DPP k-DPP samplers, extrapolating from a subset.

    Parameters
    ----------
    labels, p : numpy.ndarray, shape (N,)
    k : int
        Items per class.
    loop : {"dppy", "numpy"}
    max_classes : int
        Most classes timed; with more classes needing sampling, strata are used.
    seed : int

    Returns
    -------
    dict
        ``seconds`` (measured, or extrapolated total), ``extrapolated`` (bool),
        ``classes_timed``, ``classes_sampled`` (classes with N_c > k), ``measured_seconds``.
    """
    draw = LOOPS[loop][1]()
    order = np.argsort(labels, kind="stable")
    classes, starts, counts = np.unique(labels[order], return_index=True, return_counts=True)
    big = np.flatnonzero(counts > k)
    big = big[np.argsort(counts[big], kind="stable")]
    strata = [s for s in np.array_split(big, min(max_classes, big.size)) if s.size]
    measured = 0.0
    total = 0.0
    for stratum in strata:
        c = int(stratum[stratum.size // 2])
        members = order[starts[c] : starts[c] + counts[c]]
        t0 = time.perf_counter()
        sample = draw(ipdpp_kernel_dense(p[members]), k, seed + c)
        elapsed = time.perf_counter() - t0
        if len(set(np.asarray(sample).tolist())) != k:
            raise RuntimeError(f"{loop} returned an invalid sample for class {classes[c]}")
        measured += elapsed
        total += stratum.size * elapsed
    return {
        "seconds": total,
        "extrapolated": len(strata) < big.size,
        "classes_timed": len(strata),
        "classes_sampled": int(big.size),
        "measured_seconds": measured,
    }


def loop_available(loop: str) -> str | None:
    """Why a per-class loop cannot run here, or None."""
    if loop == "dppy" and importlib.util.find_spec("dppy") is None:
        return "DPPy is not installed"
    return None
