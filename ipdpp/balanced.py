"""Class-balanced subsets drawn per class by IP-DPP (stage 2 of Lin & Yuan, NeurIPS 2025)."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from . import _core, _cuda_backend
from ._arrays import ArrayKind, as_numpy, is_cuda_array, use_cuda, wrap
from ._validation import check_int, check_memory, check_threads, check_uint64, real_array
from .kernels import EIGENVALUE_RTOL

__all__ = ["balanced_subset", "BALANCED_MODES"]

#: Bytes of the per-class tables of one class, labels 0 .. max(labels) (an upper bound).
_BYTES_PER_CLASS = 64

#: The selection rules of :func:`balanced_subset`.
BALANCED_MODES = ("exact", "paper", "random", "greedy")


def _labels_array(labels: Any) -> tuple[np.ndarray, ArrayKind]:
    array, kind = as_numpy(labels, "labels")
    if array.ndim != 1:
        raise ValueError(f"labels must have shape (n,); got {array.shape}")
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer):
        # ValueError rather than TypeError: the issue asks for it for non-integer labels.
        raise ValueError(f"labels must be an integer array; got dtype {array.dtype}")
    if array.size and int(array.min()) < 0:
        raise ValueError(f"labels must be >= 0; got {int(array.min())}")
    if array.size:  # before the int64 cast, so that no unsigned label wraps around
        # The selection keeps a few per-class tables (offsets, a fill cursor, the kept list, k)
        # for the classes 0 .. max(labels): one huge label must not ask for more than memory.
        top = int(array.max())
        check_memory(_BYTES_PER_CLASS * (top + 1), "labels", f"the classes 0..{top}")
    return np.ascontiguousarray(array, dtype=np.int64), kind


def _p_array(p: Any, n: int) -> np.ndarray:
    array, _ = real_array(p, "p", ndim=1, shape_doc="(n,)", allow_float32=False)
    if array.shape[0] != n:
        raise ValueError(f"p must have the length of labels, {n}; got {array.shape[0]}")
    low, high = float(array.min()), float(array.max())
    if low < 0.0 or high > 1.0:
        raise ValueError(f"p must lie in [0, 1]; got values in [{low}, {high}]")
    return array


def _k_array(k_per_class: Any, num_classes: int) -> np.ndarray:
    if isinstance(k_per_class, (bool, np.bool_)):
        raise TypeError(f"k_per_class must be an int or an integer array; got {k_per_class!r}")
    if isinstance(k_per_class, (numbers.Integral, np.integer)) or np.ndim(k_per_class) == 0:
        k = check_int(k_per_class, "k_per_class", minimum=0)
        return np.full(num_classes, k, dtype=np.int64)
    array, _ = as_numpy(k_per_class, "k_per_class")
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"k_per_class must be an int or an integer array; got dtype {array.dtype}")
    if array.shape != (num_classes,):
        raise ValueError(
            f"k_per_class must be an int or have shape (max(labels) + 1,) = ({num_classes},); "
            f"got {array.shape}"
        )
    if array.size and int(array.min()) < 0:
        raise ValueError(f"k_per_class must be >= 0; got {int(array.min())}")
    return np.ascontiguousarray(array, dtype=np.int64)


def _alpha_rule(alpha: str | float) -> tuple[float, float]:
    """(alpha_power, alpha_value) of the C++ options: alpha_c = value, or N_c ** -power."""
    if isinstance(alpha, str):
        if alpha == "paper":
            return 1.0, 0.0
        if alpha == "code":
            return 2.0, 0.0
        raise ValueError(f"alpha must be 'paper', 'code' or a float > 0; got {alpha!r}")
    if isinstance(alpha, (bool, np.bool_)) or not isinstance(alpha, numbers.Real):
        raise TypeError(f"alpha must be 'paper', 'code' or a float > 0; got {alpha!r}")
    value = float(alpha)
    if not (math.isfinite(value) and value > 0.0):
        raise ValueError(f"alpha must be 'paper', 'code' or a finite float > 0; got {alpha!r}")
    return 0.0, value


def _features_array(features: Any, n: int, mode: str) -> np.ndarray | None:
    if features is None:
        return None
    if mode not in ("exact", "greedy"):
        raise ValueError(f"features are used by mode 'exact' and 'greedy' only; got mode {mode!r}")
    if n == 0:  # no rows, so no values to check: only the shape must fit
        array, _ = as_numpy(features, "features")
    else:
        array, _ = real_array(features, "features", ndim=2, shape_doc="(n, d)")
    if array.ndim != 2 or array.shape[0] != n:
        raise ValueError(
            f"features must have shape (n, d) with n = len(labels) = {n}; got {array.shape}"
        )
    return array


def _balanced_subset_cuda(
    labels: Any,
    p: Any,
    k_per_class: int | Any,
    mode: str,
    alpha: str | float,
    seed: Any,
    features: Any | None,
    threads: int | None,
) -> Any:
    """:func:`balanced_subset` for CUDA inputs; the result goes to the input's GPU.

    Mode "exact" without features (the paper's stage 2) samples every class in one launch on
    p's GPU. The other modes, and inputs with only labels or features on a GPU, run the CPU code
    on host copies: moving n labels and confidences costs little next to their per-class work.
    """
    if mode == "exact" and features is None and is_cuda_array(p):
        check_threads(threads)
        return _cuda_backend.balanced_subset(
            labels, p, k_per_class, alpha, check_uint64(seed, "seed")
        )
    like = next(x for x in (p, labels, features, k_per_class) if is_cuda_array(x))

    def host(x: Any, name: str) -> Any:
        return _cuda_backend.to_host(x, name) if is_cuda_array(x) else x

    kept = balanced_subset(
        host(labels, "labels"),
        host(p, "p"),
        host(k_per_class, "k_per_class"),
        mode,
        alpha,
        seed,
        features=host(features, "features"),
        threads=threads,
    )
    return _cuda_backend.to_device_like(kept, like)


def balanced_subset(
    labels: Any,
    p: Any,
    k_per_class: int | Any,
    mode: str = "exact",
    alpha: str | float = "paper",
    seed: int = 0,
    *,
    features: Any | None = None,
    threads: int | None = None,
) -> Any:
    """Keep ``min(k_c, N_c)`` items of every class, chosen per class by IP-DPP.

    Stage 2 of "Long-Tailed Recognition via Information-Preservable Two-Stage Learning" (Lin &
    Yuan, NeurIPS 2025): class ``c`` with ``N_c`` items and confidences ``p`` (the model's
    probability of each item's true label) gets the IP-DPP kernel
    ``S_c = diag(1 - alpha_c p_i sum(p)) + alpha_c p p^T`` (paper Eq. 16), which favours
    low-confidence, mutually diverse items. All classes are handled in one C++ call, spread over
    threads.

    Parameters
    ----------
    labels : int array (n,), numpy, torch (CPU or CUDA) or CuPy
        Class of each item; nonnegative integers. The classes are ``0 .. max(labels)``; a class
        with no items simply contributes none.
    p : float32 or float64 array (n,), numpy, torch (CPU or CUDA) or CuPy
        Confidence of each item in ``[0, 1]``, finite. With ``p`` on a GPU, mode "exact"
        (without features) samples every class in one launch there; other modes, and GPU
        labels or features with ``p`` on the host, run on host copies.
    k_per_class : int or int array (max(labels) + 1,)
        Items to keep per class (>= 0). Classes with ``N_c <= k_c`` are kept whole.
    mode : {"exact", "paper", "random", "greedy"}, default "exact"
        - ``"exact"``: an exact k-DPP sample of ``S_c`` (structured sampler, O(N_c k) per class,
          no eigendecomposition).
        - ``"paper"``: the paper's Algorithm 1 as published. It eigendecomposes ``S_c``, scans the
          eigenpairs once in ascending order keeping each with probability ``λ/(λ+1)`` and stops
          after ``k`` acceptances; if the scan ends with fewer than ``k``, the not-yet-kept
          eigenpairs of largest eigenvalue fill the set (the paper does not say; this is our
          choice). Then it repeatedly takes the item with the largest squared projection onto
          the kept eigenvectors (argmax) and projects it out. **Not an exact k-DPP sampler**;
          kept to reproduce the paper. The eigenvalues of ``S_c`` (diagonal plus rank one) come
          from its secular equation and only the kept eigenvectors are formed: O(N_c^2) per
          class. Where the eigenvalues are distinct (distinct ``p_i``) the eigenvectors are
          unique up to sign and the result is that of a dense ``eigh``; within a repeated
          eigenvalue any orthonormal basis is as valid and the choice (a deterministic one) can
          change which items the argmax phase takes.
        - ``"random"``: a uniform k-subset of each class (random class-balanced undersampling).
        - ``"greedy"``: greedy MAP of ``det(S_c)`` (deterministic; see :func:`ipdpp.greedy_map`).
    alpha : "paper", "code" or float > 0, default "paper"
        ``alpha_c = 1/N_c`` ("paper"), ``1/N_c**2`` ("code", what the authors' release used; it
        makes ``S_c`` close to the identity) or a fixed value, which must keep every ``S_c`` PSD
        (``alpha * p_i * sum(p) <= 1``).
    seed : int, default 0
        Seed in ``[0, 2**64)``.
    features : float32 or float64 array (n, d), optional
        An extension beyond the paper: with ``mode="exact"`` or ``"greedy"``, replace ``S_c`` by
        the quality-diversity kernel ``L_c = diag(q) F̂ F̂^T diag(q)`` of the class's rows, where
        ``F̂`` has the rows of ``features`` scaled to unit norm and
        ``q_i = sqrt(1 - p_i + 1e-3)`` favours low-confidence items as IP-DPP does (the floor
        keeps items with ``p_i = 1`` selectable). ``L_c`` has rank at most ``d``, so ``k_c``
        must not exceed the rank of each sampled class's features.
    threads : int, optional
        Worker threads (default: all cores). Results do not depend on it.

    Returns
    -------
    int64 array (sum_c min(k_c, N_c),)
        Indices of the kept items, ascending; a numpy array, or a torch tensor when ``labels``
        is one. When an input is on a GPU, an array of its framework on that device.

    Raises
    ------
    ValueError
        labels not 1-D, not integers or negative; p of another length, not finite or outside
        [0, 1]; k_per_class negative or of the wrong length; an unknown mode or alpha; features
        of the wrong shape, not finite or with a mode other than "exact"/"greedy"; a class whose
        kernel has rank below its k (e.g. every ``p_i = 1`` with ``alpha="paper"`` makes
        ``S_c`` rank one), or an alpha too large for ``S_c`` to be PSD (the message names the
        class).
    TypeError
        p or features not float32/float64; k_per_class, seed or threads of the wrong type.

    Notes
    -----
    Class ``c`` draws its random numbers from the Philox stream ``(seed, c)``, so the result
    depends neither on ``threads`` nor on the other classes. In mode ``"exact"`` the draw of
    class ``c`` equals
    ``sample_k_dpp(IPDPPKernel(p_c, alpha), k_c, seed=seed, sample_offset=c, method="structured")``
    (with features: ``sample_k_dpp(LowRankKernel(F̂_c, quality=q_c), k_c, seed=seed,
    sample_offset=c, method="sequential")``).

    Cost per sampled class (N_c > k_c): "exact" O(N_c k_c) time and memory (see
    ``csrc/cpu/ipdpp_sampler.h`` for the memory cap on very large classes), "greedy"
    O(N_c k_c), "random" O(N_c), "paper" O(N_c^2) time and O(N_c k_c) memory; with features,
    "exact" O(N_c d^2 + d^3 + N_c k_c^2) and "greedy" O(N_c k_c (d + k_c)).

    A float32 softmax can round a confident prediction to exactly 1. If *every* item of a class
    has ``p_i = 1``, ``S_c = 11^T / N_c`` has rank one and no k-DPP with ``k_c >= 2`` exists
    (ValueError); clip ``p`` to at most ``1 - 1e-6`` before calling to avoid this.

    Examples
    --------
    >>> import numpy as np, ipdpp
    >>> labels = np.repeat([0, 1, 2], [50, 20, 3])
    >>> p = np.linspace(0.05, 0.95, labels.size)
    >>> kept = ipdpp.balanced_subset(labels, p, 5, seed=1)
    >>> np.bincount(labels[kept]).tolist()
    [5, 5, 3]
    """
    if use_cuda(labels, p, features, k_per_class):
        return _balanced_subset_cuda(labels, p, k_per_class, mode, alpha, seed, features, threads)
    labels_np, kind = _labels_array(labels)
    n = labels_np.shape[0]
    if not isinstance(mode, str) or mode not in BALANCED_MODES:
        raise ValueError(f"mode must be one of {BALANCED_MODES}; got {mode!r}")
    alpha_power, alpha_value = _alpha_rule(alpha)
    seed_int = check_uint64(seed, "seed")
    threads_int = check_threads(threads)
    if n == 0:  # nothing to select, but the other arguments must still fit empty labels
        if np.shape(as_numpy(p, "p")[0]) != (0,):
            raise ValueError(f"p must have the length of labels, 0; got shape {np.shape(p)}")
        _k_array(k_per_class, 0)
        _features_array(features, 0, mode)
        return wrap(np.empty(0, dtype=np.int64), kind)
    p_np = _p_array(p, n)
    num_classes = int(labels_np.max()) + 1
    k_np = _k_array(k_per_class, num_classes)
    features_np = _features_array(features, n, mode)
    kept = _core.balanced_subset(
        labels_np,
        p_np,
        k_np,
        mode,
        alpha_power,
        alpha_value,
        seed_int,
        features_np,
        float(EIGENVALUE_RTOL),
        threads_int,
    )
    return wrap(kept, kind)
