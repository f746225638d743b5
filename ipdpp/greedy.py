"""Greedy MAP inference for DPPs (Chen, Zhang & Zhou, NeurIPS 2018)."""

from __future__ import annotations

from typing import Any

__all__ = ["greedy_map"]


def greedy_map(kernel: Any, k: int) -> Any:
    """Greedy maximiser of det(L_Y) over |Y| = k by incremental Cholesky, O(n k^2).

    (Implementation lands with the C++ kernels.)
    """
    raise NotImplementedError("greedy_map: C++ kernels not built yet")
