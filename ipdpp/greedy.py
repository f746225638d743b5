"""Greedy MAP inference for DPPs (Chen, Zhang & Zhou, NeurIPS 2018)."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from . import _core
from ._arrays import wrap
from .kernels import DenseKernel, IPDPPKernel, LowRankKernel

__all__ = ["greedy_map"]


def greedy_map(kernel: Any, k: int) -> Any:
    """Greedy maximiser of ``det(L_Y)`` over ``|Y| = k``, by incremental Cholesky.

    Step t adds the item that maximises ``det(L_{Y ∪ {j}})`` given the items already chosen
    (Chen, Zhang & Zhou, "Fast Greedy MAP Inference for Determinantal Point Process", NeurIPS
    2018, Algorithm 1): O(n k^2) plus one row of L per step, and L is never formed.

    - :class:`~ipdpp.LowRankKernel`: rows of L from the cached eigendecomposition's factor
      ``F = V Λ^{1/2}`` (n x rank), O(n rank) per row through BLAS.
    - :class:`~ipdpp.DenseKernel`: rows read from ``L`` itself, O(n) per row.
    - :class:`~ipdpp.IPDPPKernel`: entries ``L_ij = alpha p_i p_j``, ``L_ii = d_i + alpha p_i^2``
      computed on the fly, O(n) per row, no eigendecomposition.

    Parameters
    ----------
    kernel : LowRankKernel, DenseKernel or IPDPPKernel
        The L-ensemble.
    k : int
        Number of items, ``0 <= k <= rank``.

    Returns
    -------
    int64 array (k,)
        Item indices **in selection order** (not sorted); numpy, or a torch tensor when the
        kernel was built from torch tensors. Ties go to the smallest index, so the result is
        deterministic. Always k items: when the remaining gains vanish numerically before k
        (only possible near the numerical rank), the rest are taken by largest remaining
        residual without further updates.

    Raises
    ------
    TypeError
        kernel is not an ipdpp kernel, or k is not an int.
    ValueError
        k < 0 or k > rank: ``kernel.rank`` (numerical, after the cached eigendecomposition) for
        low-rank and dense kernels, ``kernel.structural_rank()`` (exact, O(n), no
        eigendecomposition) for an IPDPPKernel.

    Examples
    --------
    >>> import numpy as np, ipdpp
    >>> features = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    >>> ipdpp.greedy_map(ipdpp.LowRankKernel(features), 2).tolist()
    [0, 2]
    """
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise TypeError(f"k must be an int; got {type(k).__name__}")
    k = int(k)
    if k < 0:
        raise ValueError(f"k must be >= 0; got {k}")
    if isinstance(kernel, IPDPPKernel):
        rank = kernel.structural_rank()
        if k > rank:
            raise ValueError(f"k = {k} exceeds the rank of the kernel ({rank})")
        selected = _core.greedy_map_ipdpp(kernel.p, float(kernel.alpha), k)
    elif isinstance(kernel, DenseKernel):
        rank = int(kernel.rank)
        if k > rank:
            raise ValueError(f"k = {k} exceeds the rank of the kernel ({rank})")
        selected = _core.greedy_map_dense(kernel.L, k)
    elif isinstance(kernel, LowRankKernel):
        rank = int(kernel.rank)
        if k > rank:
            raise ValueError(f"k = {k} exceeds the rank of the kernel ({rank})")
        eigenvalues, eigenvectors = kernel.eigh()
        factor = np.ascontiguousarray(eigenvectors * np.sqrt(eigenvalues), dtype=np.float64)
        selected = _core.greedy_map_factor(factor, k)
    else:
        raise TypeError(
            "kernel must be an ipdpp LowRankKernel, DenseKernel or IPDPPKernel; "
            f"got {type(kernel).__name__}"
        )
    return wrap(selected, kernel._kind)
