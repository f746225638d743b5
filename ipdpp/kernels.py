"""L-ensemble kernels: low rank (features), dense, and the IP-DPP kernel of Lin & Yuan (2025).

Every kernel knows its ground set size ``n`` and computes its eigendecomposition once, in C++
(LAPACK ``dsyevd`` on the CPU, cuBLAS / cuSOLVER on a GPU; on the CPU the IP-DPP kernel, diagonal
plus rank one, through its secular equation in O(N^2)), truncated to the numerical rank:
eigenvalues at or below ``EIGENVALUE_RTOL * max eigenvalue`` count as zero.

A kernel keeps the backend its arrays chose when it was built (:mod:`ipdpp._dispatch`): kernels
built from CUDA arrays (torch CUDA tensors, CuPy arrays) keep their eigendecomposition on that
GPU, and the samplers return results there. Without the CUDA extension such arrays raise
``ValueError``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _core
from ._backend import Backend
from ._dispatch import backend_for
from ._frameworks import source_eps
from ._memory import MemoryOption, check_memory_option
from ._validation import check_unit_interval, parse_alpha, real_array

__all__ = ["EIGENVALUE_RTOL", "Kernel", "LowRankKernel", "DenseKernel", "IPDPPKernel"]

#: Relative eigenvalue cut-off: eigenvalues <= EIGENVALUE_RTOL * (largest eigenvalue) are zero.
#:
#: A backward-stable symmetric eigensolver returns each eigenvalue with an absolute error of
#: about c * m * eps * lambda_max for an m x m matrix, and accumulating the Gram matrix of n rows
#: adds an error of the same order with n in place of m. With eps = 2**-52 and m, n up to 2**20
#: (about a million), nothing below 2**20 * eps * lambda_max (~2.3e-10 lambda_max) can be told
#: apart from zero. The same bound makes the eigenvector columns of the low-rank dual
#: (V = B U Lambda^{-1/2}) orthonormal to about eps / EIGENVALUE_RTOL ~ 1e-6 or better. It is
#: also the tolerance of the positive-semidefiniteness check of a float64 :class:`DenseKernel`.
EIGENVALUE_RTOL: float = float(2**20 * np.finfo(np.float64).eps)

# Symmetry tolerance of a float64 DenseKernel (csrc/cpu/spectrum.h kSymmetryRtol): kernels built in
# double precision are symmetric to a few ulps of their largest entry.
_SYMMETRY_RTOL = 1e-10
_FLOAT64_EPS = float(np.finfo(np.float64).eps)


class Kernel:
    """Base class of the L-ensemble kernels (not instantiated directly).

    Attributes
    ----------
    n : int
        Size of the ground set.
    """

    n: int

    def __init__(self, n: int, backend: Backend[Any]) -> None:
        self.n = n
        # The device the kernel's arrays live on, and the caller's array type for results.
        self._backend = backend
        self._spectrum_cache: Any = None

    def _compute_spectrum(self, threads: int) -> Any:
        raise NotImplementedError

    def _spectrum(self, threads: int = 0) -> Any:
        """The cached spectrum (eigenpairs plus the sampler's tables) on the kernel's device.

        The first call computes it on ``threads`` CPU threads (0: all hardware threads; the
        result does not depend on it): a sampling call passes its own ``threads``.
        """
        if self._spectrum_cache is None:
            self._spectrum_cache = self._compute_spectrum(threads)
        return self._spectrum_cache

    def _host_eigh(self) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`eigh` as float64 numpy arrays (for a GPU kernel a host copy, made per call)."""
        return self._backend.host_eigh(self._spectrum())

    def _host_eigenvector_rows(self, items: np.ndarray) -> np.ndarray:
        """Rows ``items`` of the eigenvectors, float64 numpy (m, rank), in any storage."""
        return self._backend.host_eigenvector_rows(self._spectrum(), items)

    def _host_weighted_row_norms(self, weights: np.ndarray) -> np.ndarray:
        """``sum_j weights_j V_ij^2`` per item, float64 numpy (n,), in any storage."""
        return self._backend.host_weighted_row_norms(self._spectrum(), weights)

    @property
    def rank(self) -> int:
        """Numerical rank: the number of eigenvalues above ``EIGENVALUE_RTOL * max``."""
        return int(self._spectrum().rank)

    def eigh(self) -> tuple[Any, Any]:
        """Eigendecomposition of L truncated to its numerical rank (computed once, cached).

        Returns
        -------
        eigenvalues : numpy.ndarray, float64, shape (rank,)
            The positive eigenvalues in ascending order (read-only).
        eigenvectors : numpy.ndarray, float64, shape (n, rank)
            Orthonormal eigenvectors as columns, row-major (read-only). ``L`` is
            ``eigenvectors @ diag(eigenvalues) @ eigenvectors.T`` up to the dropped eigenvalues.
            A :class:`LowRankKernel` forms them on the first call (one pass over the features).

        For a kernel built from CUDA arrays both are arrays of the input's framework (torch or
        CuPy) on its GPU: eigenvalues float64, eigenvectors in the input's dtype (float32 or
        float64; a zero-copy view of the cached spectrum).

        Raises
        ------
        ValueError
            For a :class:`LowRankKernel` in low-memory mode (``memory``), which never stores its
            eigenvectors.

        Examples
        --------
        >>> import numpy as np, ipdpp
        >>> K = ipdpp.LowRankKernel(np.eye(4, 2))
        >>> [a.shape for a in K.eigh()]
        [(2,), (4, 2)]
        """
        return self._backend.eigh(self._spectrum())

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n={self.n})"


class LowRankKernel(Kernel):
    """Low-rank kernel ``L = diag(q) B B^T diag(q)`` given by features ``B``.

    The n x n matrix is never formed: the eigendecomposition goes through the d x d dual Gram
    matrix ``B^T diag(q^2) B`` (or the n x n primal one when n <= d).

    Parameters
    ----------
    features : array, float32 or float64, shape (n, d)
        Item features ``B`` as a numpy array, a torch tensor (CPU or CUDA; ``requires_grad`` is
        fine, the tensor is detached) or a CuPy array. Read without copying when C-contiguous; a
        non-contiguous input is copied once. Results of the samplers come back as the same array
        type, on the same device.
    quality : array, shape (n,), optional
        Non-negative per-item quality ``q`` (default: all ones), on the device of ``features``.
        Converted to float64 (a copy of n values when it is not already float64).
    memory : {"auto", "full", "low"} or int, default "auto"
        Whether the n x rank float64 eigenvectors are stored (with the rejection sampler's
        bfloat16 copy, ``10 n rank`` bytes in all). ``"full"``:
        stored, formed once the samples asked for repay forming them (one GEMM pass over the
        features; until then rejection samples read rows computed from the features, the same
        samples up to rounding), or at once for ``eigh()`` and the sequential sampler.
        ``"low"``: never stored; the samplers compute the
        rows ``V_i = q_i B_i W`` (``W = U Lambda^{-1/2}``, d x rank) they read from the
        features, so the extra memory is O(n) (leverage scores and their alias table, about 32
        bytes per item) and ``features`` may be a ``numpy.memmap`` larger than memory. An int is
        a budget in bytes: low memory when the eigenvectors exceed it. ``"auto"``: a budget of
        half the memory available when the eigendecomposition runs (Linux ``MemAvailable`` of
        /proc/meminfo, capped by the cgroup limit; see :func:`ipdpp.available_memory`). Only
        the rejection sampler runs in low-memory mode (``method="auto"`` picks it; forcing
        ``"sequential"`` is a ValueError), a sample costs ``d k`` multiply-adds per proposal
        instead of ``k`` reads, ``log_prob`` computes the rows of ``Y`` and
        ``inclusion_probabilities`` makes one pass over the features, and ``eigh()`` and
        ``greedy_map`` (which need every row) are unavailable. For ``n <= d`` the eigenvectors
        are no larger than the features and always stored; a kernel on a GPU takes "auto" or
        "full" only.

    Attributes
    ----------
    features : array (n, d)
        The features as read: the caller's memory when it was C-contiguous float32/float64 (a
        numpy view of a torch CPU tensor; a tensor or CuPy array on its GPU).
    quality : float64 array (n,) or None
        On the device of ``features``.
    d : int

    Notes
    -----
    The inputs are checked at construction, on their device; the eigendecomposition runs on
    first use (``rank``, ``eigh``, sampling), on the ``threads`` of the sampling call that
    triggers it (all cores otherwise; the result does not depend on the thread count). The
    kernel reads ``features`` again while sampling when its eigenvectors are formed late or
    never: do not modify them afterwards. Low-memory and stored kernels draw the same samples for
    the same seed, except where rounding (about 1e-16 relative) of a computed row flips an
    acceptance test.

    On the CPU, float32 features stay float32 in the products over the n items: the d x d dual
    Gram is summed in float64 from float32 blocks of 512 rows, whose rounding moves each
    eigenvalue by at most ``(512 + 2) * 2**-24 * trace`` (about 1e-8 of the largest in
    practice). When that bound is not small against the smallest eigenvalue (a wide spectrum,
    rank-deficient features), the Gram is recomputed in float64, so the rank is always that of
    the same values in float64.

    Raises
    ------
    TypeError
        If an array has an integer, bool or complex dtype, or ``memory`` is not a string or int.
    ValueError
        If ``features`` is not 2-D or is empty, ``quality`` does not have shape (n,), an entry is
        NaN or Inf, or a quality is negative; if ``memory`` is an unknown string, a negative
        budget, or not "auto"/"full" for CUDA arrays; or for CUDA arrays without the CUDA build.

    Examples
    --------
    >>> import numpy as np, ipdpp
    >>> K = ipdpp.LowRankKernel(np.random.default_rng(0).standard_normal((100, 8)))
    >>> K.n, K.rank
    (100, 8)

    Eigenvectors never stored (the same call takes a ``numpy.memmap`` of features on disk):

    >>> B = np.random.default_rng(0).standard_normal((1000, 8)).astype(np.float32)
    >>> K = ipdpp.LowRankKernel(B, memory="low")
    >>> K.low_memory, ipdpp.sample_k_dpp(K, 5, seed=0).shape
    (True, (1, 5))
    """

    def __init__(
        self, features: Any, quality: Any = None, *, memory: MemoryOption = "auto"
    ) -> None:
        backend = backend_for(("features", features), ("quality", quality))
        self.memory: MemoryOption = check_memory_option(
            memory, low_memory_supported=backend.low_memory_supported
        )
        arrays = backend.arrays
        B = real_array(features, "features", arrays, ndim=2, shape_doc="(n, d)")
        n, d = (int(s) for s in B.shape)
        super().__init__(n, backend)
        self.features: Any = B
        self.d: int = d
        self.quality: Any = None
        if quality is not None:
            q = real_array(
                quality, "quality", arrays, ndim=1, shape_doc=f"({n},)", allow_float32=False
            )
            if tuple(q.shape) != (n,):
                raise ValueError(f"quality must have shape ({n},); got {tuple(q.shape)}")
            low = q.min().item()
            if low < 0:
                raise ValueError(f"quality must be non-negative; got minimum {low}")
            self.quality = q

    def _compute_spectrum(self, threads: int) -> Any:
        return self._backend.lowrank_spectrum(
            self.features, self.quality, EIGENVALUE_RTOL, self.memory, threads
        )

    @property
    def low_memory(self) -> bool:
        """Whether the eigenvectors are never stored (``memory``); runs the eigendecomposition."""
        return bool(getattr(self._spectrum(), "low_memory", False))

    def __repr__(self) -> str:
        return f"LowRankKernel(n={self.n}, d={self.d}, quality={self.quality is not None})"


class DenseKernel(Kernel):
    """Dense symmetric positive semidefinite kernel ``L`` (n x n), for small n.

    The eigendecomposition runs at construction, which is also when symmetry and positive
    semidefiniteness are checked: ``|L_ij - L_ji| <= tol_sym * max|L|`` and smallest eigenvalue
    ``>= -tol_psd * max|eigenvalue|``. For float64 input ``tol_sym = 1e-10`` and
    ``tol_psd = EIGENVALUE_RTOL``; an input in a coarser dtype (float32) is only symmetric and PSD
    up to rounding its entries, which moves eigenvalues by up to ``n * eps(dtype) * max|L|``, so
    both tolerances become ``n * eps(dtype)`` (at least the float64 ones). The rank cut-off is
    ``EIGENVALUE_RTOL`` in every case.

    Parameters
    ----------
    L : array, float32 or float64, shape (n, n)
        numpy array or torch CPU tensor: C-contiguous input is read without copying (kept as
        ``L``); the CPU eigensolver reads a float64 copy of float32 input. A torch CUDA tensor
        or CuPy array is decomposed on its GPU (float64 arithmetic, eigenvectors kept in the
        input's dtype) with the same symmetry, PSD and rank tolerances as on the CPU.

    Raises
    ------
    TypeError
        If ``L`` has an integer, bool or complex dtype.
    ValueError
        If ``L`` is not square, is empty, holds NaN/Inf, is not symmetric or not PSD.

    Examples
    --------
    >>> import numpy as np, ipdpp
    >>> ipdpp.DenseKernel(np.diag([2.0, 1.0, 0.0])).rank
    2
    """

    def __init__(self, L: Any) -> None:
        backend = backend_for(("L", L))
        A = real_array(L, "L", backend.arrays, ndim=2, shape_doc="(n, n)")
        shape = tuple(int(s) for s in A.shape)
        if shape[0] != shape[1]:
            raise ValueError(f"L must have shape (n, n); got {shape}")
        super().__init__(shape[0], backend)
        self._symmetry_rtol, self._psd_rtol = _dense_tolerances(self.n, source_eps(L))
        self.L: Any = A  # float32 or float64 on the kernel's device
        self._spectrum()  # check symmetry and PSD now, not at the first sample

    def _compute_spectrum(self, threads: int) -> Any:
        return self._backend.dense_spectrum(
            self.L, EIGENVALUE_RTOL, self._symmetry_rtol, self._psd_rtol
        )


def _dense_tolerances(n: int, eps: float) -> tuple[float, float]:
    """(symmetry_rtol, psd_rtol) of an n x n DenseKernel input whose dtype has epsilon ``eps``.

    float64: ``(1e-10, EIGENVALUE_RTOL)``; coarser dtypes: at least ``n * eps`` each (rounding the
    entries moves eigenvalues by up to ``n * eps * max|L|``). Shared by the CPU and GPU paths.
    """
    if eps <= float(np.finfo(np.float64).eps):
        return _SYMMETRY_RTOL, EIGENVALUE_RTOL
    rounding = n * eps
    return max(_SYMMETRY_RTOL, rounding), max(EIGENVALUE_RTOL, rounding)


class IPDPPKernel(Kernel):
    """The IP-DPP kernel of Lin & Yuan (NeurIPS 2025, Eq. 16).

    ``S_ij = alpha p_i p_j`` for i != j and ``S_ii = 1 - alpha p_i (P - p_i)`` with ``P = sum(p)``,
    i.e. ``S = diag(d) + alpha p p^T`` with ``d_i = 1 - alpha p_i P``: diagonal plus rank one, so
    rows sum to one and the structured sampler needs no eigendecomposition.

    Parameters
    ----------
    p : array, shape (N,)
        Each item's model probability of its true label, in [0, 1]; numpy, torch (CPU or CUDA)
        or CuPy. For a CUDA array the checks and the samplers run on its GPU.
    alpha : {"paper", "code"} or float, default "paper"
        Coupling strength: "paper" is 1/N (the paper), "code" 1/N**2 (the authors' released code,
        which makes S close to the identity), or a positive float.

    Attributes
    ----------
    p : numpy.ndarray, float64, shape (N,)
        A host copy for CUDA input.
    alpha : float
    diagonal : numpy.ndarray, float64, shape (N,)
        ``d_i = 1 - alpha p_i P`` (>= 0; values within rounding of zero are set to 0).

    Raises
    ------
    TypeError
        If ``p`` is not a floating array or ``alpha`` is neither a string nor a real number.
    ValueError
        If ``p`` is not 1-D, empty, non-finite or outside [0, 1]; if ``alpha`` is an unknown
        string or not positive; or if ``alpha`` makes some ``d_i`` negative (any alpha <= 1/N is
        safe).

    Examples
    --------
    >>> import numpy as np, ipdpp
    >>> K = ipdpp.IPDPPKernel(np.array([0.9, 0.5, 0.2, 0.7]))
    >>> np.allclose(K.dense().sum(axis=1), 1.0)
    True
    """

    def __init__(self, p: Any, alpha: str | float = "paper") -> None:
        backend = backend_for(("p", p))
        p_on_device = real_array(
            p, "p", backend.arrays, ndim=1, shape_doc="(N,)", allow_float32=False
        )
        check_unit_interval(p_on_device, "p")
        super().__init__(int(p_on_device.shape[0]), backend)
        self._p_on_device = p_on_device  # what the structured sampler reads (float64)
        array = backend.to_host(p_on_device)
        self.p: np.ndarray = array
        self.alpha: float = _core.ipdpp_alpha(*parse_alpha(alpha), self.n)
        total = float(array.sum())
        diagonal = 1.0 - self.alpha * array * total
        # alpha <= 1/N gives d_i >= 1 - p_i P / N >= 0 exactly; rounding can leave -1e-16.
        tolerance = 8 * _FLOAT64_EPS
        if diagonal.min() < -tolerance:
            raise ValueError(
                f"alpha = {self.alpha} is too large for this p: d_i = 1 - alpha p_i sum(p) is "
                f"{diagonal.min()} < 0 for some i, so S is not positive semidefinite; use "
                f"alpha <= {1.0 / (array.max() * total) if total > 0 else float('inf')}"
            )
        self.diagonal: np.ndarray = np.maximum(diagonal, 0.0)

    def dense(self) -> np.ndarray:
        """The dense kernel ``S = diag(d) + alpha p p^T`` as float64 (N, N)."""
        S = self.alpha * np.outer(self.p, self.p)
        S[np.diag_indices(self.n)] += self.diagonal
        return S

    def structural_rank(self) -> int:
        """Exact rank of S from its structure: #{d_i > 0}, plus one if some p_i > 0 has d_i = 0."""
        positive = self.diagonal > 0
        return int(positive.sum()) + int(bool(np.any(self.p[~positive] > 0)))

    def _compute_spectrum(self, threads: int) -> Any:
        return self._backend.ipdpp_spectrum(
            self, EIGENVALUE_RTOL, *_dense_tolerances(self.n, _FLOAT64_EPS)
        )

    def __repr__(self) -> str:
        return f"IPDPPKernel(n={self.n}, alpha={self.alpha:g})"
