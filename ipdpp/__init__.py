"""ipdpp: exact, fast sampling from determinantal point processes (DPPs and k-DPPs).

Build a kernel, then sample::

    import ipdpp
    K = ipdpp.LowRankKernel(features)            # (n, d) numpy array or torch CPU tensor
    Y = ipdpp.sample_k_dpp(K, k=10, num_samples=100, seed=0)

Kernels: :class:`LowRankKernel`, :class:`DenseKernel`, :class:`IPDPPKernel`. Samplers:
:func:`sample_dpp`, :func:`sample_k_dpp`. Exact probabilities: :func:`log_prob`,
:func:`inclusion_probabilities`. Diverse deterministic subsets: :func:`greedy_map`. Stage 2 of
long-tailed learning (Lin & Yuan, NeurIPS 2025): :func:`balanced_subset`.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from ._memory import available_memory
from .balanced import balanced_subset
from .greedy import greedy_map
from .kernels import EIGENVALUE_RTOL, DenseKernel, IPDPPKernel, Kernel, LowRankKernel
from .marginals import inclusion_probabilities, log_prob
from .sampling import sample_dpp, sample_k_dpp

try:
    __version__ = version("ipdpp")
except PackageNotFoundError:  # running from a source tree without installed metadata
    __version__ = "0+unknown"

__all__ = [
    "EIGENVALUE_RTOL",
    "Kernel",
    "LowRankKernel",
    "DenseKernel",
    "IPDPPKernel",
    "sample_dpp",
    "sample_k_dpp",
    "log_prob",
    "inclusion_probabilities",
    "greedy_map",
    "balanced_subset",
    "available_memory",
    "__version__",
]
