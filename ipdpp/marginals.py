"""Exact probabilities of DPPs and k-DPPs from a kernel's eigendecomposition.

Everything runs in log space where it matters: a k-DPP's normaliser ``e_k(lambda)`` overflows a
double for eigenvalues near 1e12 long before k reaches 100, so elementary symmetric polynomials
are computed as logarithms (``numpy.logaddexp`` recurrences, no cancellation).

For kernels on a GPU the same host code runs on a float64 host copy of the eigendecomposition
(made per call; these are O(n rank) reductions next to the O(n d^2) setup). A low-memory
:class:`~ipdpp.LowRankKernel` computes the rows it needs from its features instead.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._validation import check_int, index_array
from .kernels import Kernel

__all__ = ["log_prob", "inclusion_probabilities"]


def _check_kernel(kernel: Any) -> Kernel:
    if not isinstance(kernel, Kernel):
        raise TypeError(f"kernel must be an ipdpp kernel; got {type(kernel).__name__}")
    return kernel


def _check_k(kernel: Kernel, k: Any) -> int:
    k = check_int(k, "k", minimum=0)
    if k > kernel.rank:
        raise ValueError(f"k = {k} exceeds the kernel's rank {kernel.rank}")
    return k


def _log_esp_rows(log_x: np.ndarray, k: int) -> np.ndarray:
    """rows[j, l] = log e_l(x_0..x_{j-1}) for j = 0..m, l = 0..k (float64, (m + 1, k + 1))."""
    m = log_x.size
    rows = np.full((m + 1, k + 1), -np.inf)
    rows[0, 0] = 0.0
    for j in range(m):
        rows[j + 1, 0] = 0.0
        rows[j + 1, 1:] = np.logaddexp(rows[j, 1:], log_x[j] + rows[j, :-1])
    return rows


def _log_det(kernel: Kernel, eigenvalues: np.ndarray, items: np.ndarray) -> float:
    """log det(L_Y) of the rank-truncated kernel ``V diag(lambda) V^T`` that the samplers use.

    With ``M = V_Y diag(sqrt(lambda))`` (|Y| x rank), det(L_Y) = det(M M^T) = prod sigma_i(M)^2;
    singular values avoid squaring the condition number as forming L_Y would. Only the rows V_Y
    are read (computed from the features for a low-memory kernel).
    """
    if items.size == 0:
        return 0.0
    if items.size > eigenvalues.size:
        return -np.inf
    factor = kernel._host_eigenvector_rows(items) * np.sqrt(eigenvalues)
    singular = np.linalg.svd(factor, compute_uv=False)
    if singular.min() <= 0.0:
        return -np.inf
    return float(2.0 * np.log(singular).sum())


def log_prob(kernel: Kernel, Y: Any, k: int | None = None) -> float:
    """Log-probability of the subset ``Y`` under the DPP (``k=None``) or the k-DPP.

    DPP: ``log det(L_Y) - log det(L + I)``; k-DPP: ``log det(L_Y) - log e_k(lambda)``. L is the
    kernel truncated to its numerical rank, which is the distribution the samplers draw from.

    Parameters
    ----------
    kernel : LowRankKernel, DenseKernel or IPDPPKernel
    Y : array-like of int, shape (m,)
        Distinct item indices in [0, n), any order (numpy, torch, CuPy, list).
    k : int, optional
        For the k-DPP; must equal ``len(Y)`` and be at most the kernel's rank.

    Returns
    -------
    float
        ``log P(Y)``; ``-inf`` for a subset of probability zero (e.g. larger than the rank).

    Raises
    ------
    TypeError
        If ``kernel`` is not an ipdpp kernel, or ``Y`` or ``k`` do not hold integers.
    ValueError
        If ``Y`` has repeated or out-of-range indices or is not 1-D, ``k != len(Y)``, or
        ``k`` exceeds the rank.

    Examples
    --------
    >>> import numpy as np, ipdpp
    >>> K = ipdpp.DenseKernel(np.eye(3))
    >>> round(float(np.exp(ipdpp.log_prob(K, [0, 2]))), 6)  # det(I_2) / det(2 I_3)
    0.125
    """
    kernel = _check_kernel(kernel)
    items = index_array(Y, "Y", kernel.n)  # read back to the host, e.g. a row of GPU samples
    eigenvalues = np.asarray(kernel._spectrum().eigenvalues)
    if k is None:
        return _log_det(kernel, eigenvalues, items) - float(np.log1p(eigenvalues).sum())
    k = _check_k(kernel, k)
    if items.size != k:
        raise ValueError(f"Y must have k = {k} items for the k-DPP; got {items.size}")
    log_normaliser = _log_esp_rows(np.log(eigenvalues), k)[-1, k]
    return _log_det(kernel, eigenvalues, items) - float(log_normaliser)


def _eigenvector_probabilities(eigenvalues: np.ndarray, k: int) -> np.ndarray:
    """P(eigenvector j is selected) = lambda_j e_{k-1}(lambda without j) / e_k(lambda).

    e_{k-1}(lambda without j) = sum_a e_a(lambda_<j) e_{k-1-a}(lambda_>j) combines a prefix and a
    suffix table, so every term is a sum of positive numbers (the classical "deflation" formula
    subtracts and loses everything for a wide spectrum).
    """
    r = eigenvalues.size
    log_x = np.log(eigenvalues)
    prefix = _log_esp_rows(log_x, k)  # prefix[j] over x_0..x_{j-1}
    suffix = _log_esp_rows(log_x[::-1], k)[::-1]  # suffix[j] over x_j..x_{r-1}
    # without[j] = logsumexp_a prefix[j, a] + suffix[j + 1, k - 1 - a], a = 0..k-1
    terms = prefix[:r, :k] + suffix[1:, k - 1 :: -1]
    without = np.logaddexp.reduce(terms, axis=1)
    return np.exp(log_x + without - prefix[r, k])


def inclusion_probabilities(kernel: Kernel, k: int | None = None) -> np.ndarray:
    """Probability that each item is in a sample (the diagonal of the marginal kernel).

    DPP: ``diag(K)`` with ``K = L (L + I)^{-1} = V diag(lambda / (1 + lambda)) V^T``. k-DPP:
    ``sum_j P(j selected) V_ij^2`` with the eigenvector selection probabilities computed from
    log-space elementary symmetric polynomials. They sum to ``E|Y|`` (``k`` for a k-DPP).

    Parameters
    ----------
    kernel : LowRankKernel, DenseKernel or IPDPPKernel
    k : int, optional
        For the k-DPP (``0 <= k <= rank``); ``None`` for the DPP.

    Returns
    -------
    numpy.ndarray, float64, shape (n,)
        A numpy array for kernels on the CPU (whatever their input type); for a kernel on a GPU
        a float64 array of its input's framework on that device.

    Raises
    ------
    TypeError
        If ``kernel`` is not an ipdpp kernel or ``k`` is not an integer.
    ValueError
        If ``k < 0`` or ``k`` exceeds the kernel's rank.

    Examples
    --------
    >>> import numpy as np, ipdpp
    >>> K = ipdpp.DenseKernel(np.diag([1.0, 3.0]))
    >>> ipdpp.inclusion_probabilities(K)
    array([0.5 , 0.75])
    >>> ipdpp.inclusion_probabilities(K, k=1)
    array([0.25, 0.75])
    """
    kernel = _check_kernel(kernel)
    if k is not None:
        k = _check_k(kernel, k)
        if k == 0:
            return kernel._backend.from_host(np.zeros(kernel.n))
    eigenvalues = np.asarray(kernel._spectrum().eigenvalues)
    if k is None:
        weights = eigenvalues / (1.0 + eigenvalues)
    else:
        weights = _eigenvector_probabilities(eigenvalues, k)
    # One pass over the eigenvectors, or over the features for a low-memory kernel.
    return kernel._backend.from_host(kernel._host_weighted_row_norms(weights))
