"""Class-balanced subsets drawn per class by IP-DPP (stage 2 of Lin & Yuan, NeurIPS 2025)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._adapters import ArrayAdapter
from ._dispatch import backend_for
from ._validation import (
    check_memory,
    check_threads,
    check_uint64,
    check_unit_interval,
    k_per_class_array,
    labels_array,
    parse_alpha,
    real_array,
)
from .kernels import EIGENVALUE_RTOL

__all__ = ["balanced_subset", "BALANCED_MODES"]

#: Bytes of the per-class tables of one class, labels 0 .. max(labels) (an upper bound).
_BYTES_PER_CLASS = 64

#: The selection rules of :func:`balanced_subset`.
BALANCED_MODES = ("exact", "paper", "random", "greedy")


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
        Confidence of each item in ``[0, 1]``, finite. When ``labels``, ``p`` or ``features``
        is on a GPU the call runs there (host arguments are copied to that device): mode
        "exact" without features samples every class in one launch; the other modes run on
        host copies and the result comes back to the device.
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
    backend = backend_for(
        ("labels", labels), ("p", p), ("features", features), ("k_per_class", k_per_class)
    )
    arrays = backend.arrays
    # On a GPU, host labels, p or features are copied to the device of the GPU argument.
    labels_on_device, num_classes = labels_array(labels, "labels", arrays, host_ok=True)
    # The selection keeps a few per-class tables (offsets, a fill cursor, the kept list, k) for
    # the classes 0 .. max(labels): one huge label must not ask for more than memory.
    check_memory(
        _BYTES_PER_CLASS * num_classes, "labels", f"the classes 0..{max(num_classes - 1, 0)}"
    )
    n = int(labels_on_device.shape[0])
    if not isinstance(mode, str) or mode not in BALANCED_MODES:
        raise ValueError(f"mode must be one of {BALANCED_MODES}; got {mode!r}")
    alpha_power, alpha_value = parse_alpha(alpha)
    seed_int = check_uint64(seed, "seed")
    threads_int = check_threads(threads)
    if n == 0:  # nothing to select, but the other arguments must still fit empty labels
        p_shape = tuple(arrays.adopt(p, "p", host_ok=True).shape)
        if p_shape != (0,):
            raise ValueError(f"p must have the length of labels, 0; got shape {p_shape}")
        k_per_class_array(k_per_class, 0)
        _features_array(features, 0, mode, arrays)
        return backend.wrap(arrays.empty((0,), np.int64))
    p_on_device = real_array(
        p, "p", arrays, ndim=1, shape_doc="(n,)", allow_float32=False, host_ok=True
    )
    if int(p_on_device.shape[0]) != n:
        raise ValueError(f"p must have the length of labels, {n}; got {p_on_device.shape[0]}")
    check_unit_interval(p_on_device, "p")
    k = k_per_class_array(k_per_class, num_classes)
    kept = backend.balanced_subset(
        labels_on_device,
        p_on_device,
        k,
        mode,
        alpha_power,
        alpha_value,
        seed_int,
        _features_array(features, n, mode, arrays),
        EIGENVALUE_RTOL,
        threads_int,
    )
    return backend.wrap(kept)


def _features_array(features: Any, n: int, mode: str, arrays: ArrayAdapter) -> Any:
    """``features`` (n, d) for modes "exact" and "greedy" (None stays None), on the call's device.

    With n = 0 there are no values to check: only the shape must fit.
    """
    if features is None:
        return None
    if mode not in ("exact", "greedy"):
        raise ValueError(f"features are used by mode 'exact' and 'greedy' only; got mode {mode!r}")
    if n == 0:
        array = arrays.adopt(features, "features", host_ok=True)
    else:
        array = real_array(features, "features", arrays, ndim=2, shape_doc="(n, d)", host_ok=True)
    shape = tuple(int(s) for s in array.shape)
    if len(shape) != 2 or shape[0] != n:
        raise ValueError(f"features must have shape (n, d) with n = len(labels) = {n}; got {shape}")
    return array
