"""Exact sampling from DPPs and k-DPPs.

Spectral kernels (low rank, dense, and IP-DPP with ``method="spectral"``) are sampled in C++ in two
phases: the eigenvector selection (Bernoulli ``lambda / (1 + lambda)`` for a DPP, the elementary
symmetric polynomial backward pass for a k-DPP), then the projection phase, either the sequential
O(n k^2) pass or the rejection sampler of Barthelmé, Tremblay & Amblard (AISTATS 2023), whose
per-sample cost does not grow with n. ``IPDPPKernel`` defaults to the structured O(N k) sampler.

Every kernel samples on the device it was built on, through its backend (:mod:`ipdpp._backend`):
kernels built from CUDA arrays use the fused sequential, rejection and structured IP-DPP kernels
of their GPU, and the samples stay on that device.
"""

from __future__ import annotations

from typing import Any

from ._validation import (
    DPP_SAMPLE_OVERHEAD,
    check_int,
    check_sample_count,
    check_seed,
    check_threads,
)
from .kernels import IPDPPKernel, Kernel

__all__ = ["sample_dpp", "sample_k_dpp", "METHODS"]

#: Accepted values of ``method``.
METHODS = ("auto", "sequential", "rejection", "columns", "structured", "spectral")


def _check_kernel(kernel: Any) -> Kernel:
    if not isinstance(kernel, Kernel):
        raise TypeError(
            "kernel must be an ipdpp kernel (LowRankKernel, DenseKernel or IPDPPKernel); "
            f"got {type(kernel).__name__}"
        )
    return kernel


def _spectral_method(kernel: Kernel, method: Any, *, fixed_size: bool) -> str:
    """The projection method of the spectral path for ``method`` (validated)."""
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, METHODS))}; got {method!r}")
    if method == "structured":
        if not fixed_size:
            raise ValueError(
                "method='structured' is a k-DPP sampler (sample_k_dpp with an IPDPPKernel); "
                "sample_dpp supports 'auto', 'sequential', 'rejection', 'columns' and 'spectral'"
            )
        raise ValueError(
            "method='structured' needs an IPDPPKernel (it samples the diagonal-plus-rank-one "
            f"structure); got {type(kernel).__name__}"
        )
    return "auto" if method == "spectral" else method


def sample_k_dpp(
    kernel: Kernel,
    k: int,
    num_samples: int = 1,
    seed: int = 0,
    *,
    method: str = "auto",
    sample_offset: int = 0,
    threads: int | None = None,
) -> Any:
    """Draw exact samples of the k-DPP ``P(Y) ∝ det(L_Y)``, ``|Y| = k``.

    Parameters
    ----------
    kernel : LowRankKernel, DenseKernel or IPDPPKernel
        The L-ensemble. Its eigendecomposition is computed on first use and cached.
    k : int
        Subset size, ``0 <= k <= kernel.rank``.
    num_samples : int, default 1
        Number of independent samples (>= 0); they share the setup and run on ``threads``.
    seed : int, default 0
        Unsigned 64-bit seed of the Philox generator.
    method : {"auto", "sequential", "rejection", "columns", "structured", "spectral"}, \
default "auto"
        ``"sequential"``: one O(n k) pass over the eigenvectors per selected item (workspace:
        ``n k`` doubles per thread); not available for a low-memory kernel
        (``LowRankKernel(..., memory=...)``), which never stores them.
        ``"rejection"``: Barthelmé et al. (2023), proposals from the leverage scores of the full
        eigenbasis (alias table built once per kernel), per-sample cost independent of n.
        ``"columns"`` (CPU): rejection with proposals from the selected eigenvectors alone, one
        alias table per eigenvector column (``12 n rank`` bytes, built on the first call, which
        also forms the eigenvectors: about a second at n = 1e5, rank = 256), so that a sample
        draws ``rank / k`` times fewer proposals; the fastest per sample when ``k`` is well
        below the rank and many samples are drawn (7x "rejection" at n = 1e5, rank 256, k = 10;
        1.3x at k = 100). Not for a low-memory kernel; "auto" never picks it.
        ``"auto"``: rejection when its modelled cost ``H_k (rank (310 + 23 k) + 0.4 k^3)`` is below
        the sequential ``n k (k + 57)`` (constants fitted to measurements, in units of one
        multiply-add of the sequential pass; roughly, rejection once ``n`` is a few times
        ``rank log k``). The rule depends only on ``(n, rank, k)``, so a sample never depends on
        the batch it was drawn in. For an ``IPDPPKernel`` "auto" means "structured"; for a
        low-memory kernel it means "rejection" (rows computed from the features).
        ``"structured"`` (IPDPPKernel only): the O(N k) diagonal-plus-rank-one sampler, no
        eigendecomposition. ``"spectral"``: the eigendecomposition path with the "auto" choice
        between sequential and rejection. On a GPU, "auto" picks the fused sequential kernel while
        a sample's ``n k`` gathered eigenvector entries fit in the L2 cache, else rejection.
    sample_offset : int, default 0
        Sample ``i`` uses the random stream ``(seed, sample_offset + i)``.
    threads : int, optional
        CPU worker threads (default: all hardware threads; unused for kernels on a GPU). Results
        do not depend on it.

    Returns
    -------
    samples : int64 array, shape (num_samples, k)
        Item indices, each row sorted ascending; a numpy array, or a torch tensor / CuPy array on
        the kernel input's device when the kernel was built from one.

    Raises
    ------
    TypeError
        If ``kernel`` is not an ipdpp kernel or an integer argument is not an integer.
    ValueError
        If ``k < 0``, ``k`` exceeds the kernel's rank, ``num_samples < 0``, the samples
        (``8 * max(k, 1)`` bytes each) need more than the machine's memory, ``seed`` or
        ``sample_offset`` is out of range, ``threads`` is not in ``[1, 2**31)`` or ``method`` is
        unknown or does not apply to the kernel ("sequential" or "columns" for a low-memory
        kernel, "columns" on a GPU).

    Notes
    -----
    Reproducible: ``sample_k_dpp(K, k, 5, seed=s)[3]`` equals
    ``sample_k_dpp(K, k, 1, seed=s, sample_offset=3)[0]`` whatever the thread count. Different
    methods give different (equally exact) samples for the same seed, and so do the CPU and the
    GPU, except for the structured IP-DPP sampler, which walks the same way on both. On a GPU,
    too, ``method="auto"`` depends only on the kernel and ``k``, never on ``num_samples``.

    Examples
    --------
    >>> import numpy as np, ipdpp
    >>> K = ipdpp.LowRankKernel(np.random.default_rng(0).standard_normal((50, 6)))
    >>> Y = ipdpp.sample_k_dpp(K, 3, num_samples=4, seed=1)
    >>> Y.shape, Y.dtype
    ((4, 3), dtype('int64'))
    """
    kernel = _check_kernel(kernel)
    k = check_int(k, "k", minimum=0)
    # An int64 index per item, at most n of them (a larger k fails the rank check below, by its
    # own name); an empty sample still costs the loop its turn.
    num_samples = check_sample_count(num_samples, 8 * max(min(k, kernel.n), 1))
    seed, sample_offset = check_seed(seed, sample_offset, num_samples)
    threads_arg = check_threads(threads)
    backend = kernel._backend
    if isinstance(kernel, IPDPPKernel) and method in ("auto", "structured"):
        rank = kernel.structural_rank()
        if k > rank:
            raise ValueError(f"k = {k} exceeds the kernel's rank {rank}")
        result = backend.ipdpp_sample_k(
            kernel._p_on_device, kernel.alpha, k, num_samples, seed, sample_offset, threads_arg
        )
        return backend.wrap(result)
    projection = _spectral_method(kernel, method, fixed_size=True)
    spectrum = kernel._spectrum(threads_arg)
    if k > spectrum.rank:
        raise ValueError(f"k = {k} exceeds the kernel's rank {spectrum.rank}")
    result = backend.sample_k(
        spectrum, k, num_samples, seed, sample_offset, projection, threads_arg
    )
    return backend.wrap(result)


def sample_dpp(
    kernel: Kernel,
    num_samples: int = 1,
    seed: int = 0,
    *,
    method: str = "auto",
    sample_offset: int = 0,
    threads: int | None = None,
) -> list[Any]:
    """Draw exact samples of the DPP (L-ensemble) ``P(Y) = det(L_Y) / det(L + I)``.

    Parameters
    ----------
    kernel : LowRankKernel, DenseKernel or IPDPPKernel
        The L-ensemble (IPDPPKernel through its O(N^2) secular-equation eigendecomposition).
    num_samples : int, default 1
        Number of independent samples (>= 0).
    seed : int, default 0
        Unsigned 64-bit seed of the Philox generator.
    method : {"auto", "sequential", "rejection", "columns", "spectral"}, default "auto"
        Projection phase, as in :func:`sample_k_dpp`; "auto" decides per sample from its size
        (on a GPU, per call from the expected size).
    sample_offset : int, default 0
        Sample ``i`` uses the random stream ``(seed, sample_offset + i)``.
    threads : int, optional
        CPU worker threads (default: all hardware threads; unused for kernels on a GPU). Results
        do not depend on it.

    Returns
    -------
    samples : list of int64 arrays
        One sorted index array per sample (random sizes); numpy arrays, or torch tensors / CuPy
        arrays on the kernel input's device when the kernel was built from them.

    Raises
    ------
    TypeError
        If ``kernel`` is not an ipdpp kernel or an integer argument is not an integer.
    ValueError
        If ``num_samples < 0``, the samples (at least 120 bytes each) need more than the
        machine's memory, ``seed``/``sample_offset`` is out of range, ``threads`` is not in
        ``[1, 2**31)``, or ``method`` is unknown, "structured", "sequential" or "columns" for a
        low-memory kernel, or "columns" on a GPU.

    Notes
    -----
    Reproducible: sample ``i`` of a call equals sample 0 of a call with
    ``sample_offset=sample_offset + i``, whatever the thread count.

    Examples
    --------
    >>> import numpy as np, ipdpp
    >>> K = ipdpp.DenseKernel(np.eye(5))
    >>> samples = ipdpp.sample_dpp(K, num_samples=3, seed=0)
    >>> len(samples), samples[0].dtype
    (3, dtype('int64'))
    """
    kernel = _check_kernel(kernel)
    num_samples = check_sample_count(num_samples, DPP_SAMPLE_OVERHEAD)
    seed, sample_offset = check_seed(seed, sample_offset, num_samples)
    threads_arg = check_threads(threads)
    projection = _spectral_method(kernel, method, fixed_size=False)
    backend = kernel._backend
    samples = backend.sample(
        kernel._spectrum(threads_arg), num_samples, seed, sample_offset, projection, threads_arg
    )
    return [backend.wrap(s) for s in samples]
