"""Class-balanced subsets drawn per class by IP-DPP (stage 2 of Lin & Yuan, NeurIPS 2025)."""

from __future__ import annotations

from typing import Any, Optional, Union

import numpy as np

__all__ = ["balanced_subset"]


def balanced_subset(
    labels: Any,
    p: Any,
    k_per_class: Union[int, Any],
    mode: str = "exact",
    alpha: Union[str, float] = "paper",
    seed: int = 0,
    *,
    features: Optional[Any] = None,
    threads: Optional[int] = None,
) -> Any:
    """Draw min(k_c, N_c) items from every class; all classes in one C++ call.

    (Implementation lands with the C++ kernels.)
    """
    raise NotImplementedError("balanced_subset: C++ kernels not built yet")


_ = np
