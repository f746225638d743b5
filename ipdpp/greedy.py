"""Greedy MAP inference for DPPs (Chen, Zhang & Zhou, NeurIPS 2018)."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _core
from ._validation import check_int
from .kernels import DenseKernel, IPDPPKernel, LowRankKernel

__all__ = ["greedy_map"]


def greedy_map(kernel: Any, k: int) -> Any:
    """Greedy maximiser of ``det(L_Y)`` over ``|Y| = k``, by incremental Cholesky.

    Step t adds the item that maximises ``det(L_{Y ∪ {j}})`` given the items already chosen
    (Chen, Zhang & Zhou, "Fast Greedy MAP Inference for Determinantal Point Process", NeurIPS
    2018, Algorithm 1): O(n k^2) plus one row of L per step; the n x n matrix of a low-rank or
    IP-DPP kernel is never formed.

    - :class:`~ipdpp.LowRankKernel`: rows of L from the cached eigendecomposition's factor
      ``F = V Λ^{1/2}`` (n x rank), O(n rank) per row through BLAS.
    - :class:`~ipdpp.DenseKernel`: rows read from ``L`` itself, O(n) per row.
    - :class:`~ipdpp.IPDPPKernel` (``L = diag(d) + alpha p p^T``): the Schur complements of a
      diagonal-plus-rank-one matrix stay diagonal plus rank one (Sherman-Morrison), so item
      i's gain after choosing Y is ``d_i + gamma alpha p_i^2`` with
      ``gamma = 1 / (1 + sum_{j in Y} alpha p_j^2 / d_j)``: O(n) per step, O(n k) in all, the
      same choices as the incremental Cholesky and no eigendecomposition.

    Kernels on a GPU run the same CPU code on host copies (of ``L``, of the eigenvectors, or the
    kernel's host ``p``); the result is copied back to the input's device.

    Parameters
    ----------
    kernel : LowRankKernel, DenseKernel or IPDPPKernel
        The L-ensemble.
    k : int
        Number of items, ``0 <= k <= rank``.

    Returns
    -------
    int64 array (k,)
        Item indices **in selection order** (not sorted); numpy, or a torch tensor / CuPy array
        on the input's device when the kernel was built from one. Ties go to the smallest
        index, so the result is deterministic. Always k items: when the remaining gains vanish
        numerically before k (only possible near the numerical rank), the rest are taken by
        largest remaining residual without further updates.

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
    k = check_int(k, "k", minimum=0)
    if isinstance(kernel, IPDPPKernel):
        rank = kernel.structural_rank()
    elif isinstance(kernel, (DenseKernel, LowRankKernel)):
        rank = int(kernel.rank)
    else:
        raise TypeError(
            "kernel must be an ipdpp LowRankKernel, DenseKernel or IPDPPKernel; "
            f"got {type(kernel).__name__}"
        )
    if k > rank:
        raise ValueError(f"k = {k} exceeds the rank of the kernel ({rank})")
    if isinstance(kernel, IPDPPKernel):
        selected = _core.greedy_map_ipdpp(kernel.p, float(kernel.alpha), k)
    elif isinstance(kernel, DenseKernel):
        L = np.ascontiguousarray(kernel._backend.to_host(kernel.L), dtype=np.float64)
        selected = _core.greedy_map_dense(L, k)
    else:
        eigenvalues, eigenvectors = kernel._host_eigh()
        factor = np.ascontiguousarray(eigenvectors * np.sqrt(eigenvalues), dtype=np.float64)
        selected = _core.greedy_map_factor(factor, k)
    return kernel._backend.wrap(kernel._backend.from_host(selected))
