"""L-ensemble kernels: low rank (features), dense, and the IP-DPP kernel of Lin & Yuan (2025).

Every kernel knows its ground set size ``n`` and computes its eigendecomposition once, in C++
(LAPACK ``dsyevd``; for the IP-DPP kernel, diagonal plus rank one, the secular equation in
O(N^2)), truncated to the numerical rank: eigenvalues at or below
``EIGENVALUE_RTOL * max eigenvalue`` count as zero.

Kernels built from CUDA arrays (torch CUDA tensors, CuPy arrays) keep their eigendecomposition on
that GPU (cuBLAS / cuSOLVER through :mod:`ipdpp._cuda_backend`), and the samplers return results
there. Without the CUDA extension such arrays raise ``ValueError``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _core, _cuda_backend
from ._arrays import ArrayKind, as_numpy, use_cuda, wrap
from ._validation import real_array

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


class Kernel:
    """Base class of the L-ensemble kernels (not instantiated directly).

    Attributes
    ----------
    n : int
        Size of the ground set.
    """

    n: int
    _kind: ArrayKind

    def __init__(self, n: int, kind: ArrayKind, device_like: Any = None) -> None:
        self.n = n
        self._kind = kind
        # The caller's CUDA array for kernels on a GPU (None on the CPU; ``kind`` is then unused):
        # array results computed on the host are copied to its device and framework.
        self._device_like = device_like
        self._spectrum_cache: Any = None

    def _compute_spectrum(self) -> _core.Spectrum | _cuda_backend.CudaSpectrum:
        raise NotImplementedError

    def _spectrum(self) -> _core.Spectrum | _cuda_backend.CudaSpectrum:
        """The cached spectrum (eigenpairs plus the sampler's tables), on the CPU or a GPU."""
        if self._spectrum_cache is None:
            self._spectrum_cache = self._compute_spectrum()
        return self._spectrum_cache

    def _host_eigh(self) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`eigh` as float64 numpy arrays (for a GPU kernel a host copy, made per call)."""
        spectrum = self._spectrum()
        if isinstance(spectrum, _cuda_backend.CudaSpectrum):
            vectors = _cuda_backend.to_host(spectrum.eigenvectors())
            return spectrum.eigenvalues, vectors.astype(np.float64, copy=False)
        return spectrum.eigenvalues, spectrum.eigenvectors

    def _on_input_device(self, result: np.ndarray) -> Any:
        """A host result moved to the GPU (and framework) of a CUDA kernel's input."""
        if self._device_like is None:
            return result
        return _cuda_backend.to_device_like(result, self._device_like)

    def _wrap(self, result: np.ndarray) -> Any:
        """A host result as the input's array type: numpy, torch CPU, or on the input's GPU."""
        if self._device_like is None:
            return wrap(result, self._kind)
        return self._on_input_device(result)

    @property
    def rank(self) -> int:
        """Numerical rank: the number of eigenvalues above ``EIGENVALUE_RTOL * max``."""
        return int(self._spectrum().rank)

    def eigh(self) -> tuple[np.ndarray, np.ndarray]:
        """Eigendecomposition of L truncated to its numerical rank (computed once, cached).

        Returns
        -------
        eigenvalues : numpy.ndarray, float64, shape (rank,)
            The positive eigenvalues in ascending order (read-only).
        eigenvectors : numpy.ndarray, float64, shape (n, rank)
            Orthonormal eigenvectors as columns, row-major (read-only). ``L`` is
            ``eigenvectors @ diag(eigenvalues) @ eigenvectors.T`` up to the dropped eigenvalues.

        For a kernel built from CUDA arrays both are arrays of the input's framework (torch or
        CuPy) on its GPU: eigenvalues float64, eigenvectors in the input's dtype (float32 or
        float64; a zero-copy view of the cached spectrum).

        Examples
        --------
        >>> import numpy as np, ipdpp
        >>> K = ipdpp.LowRankKernel(np.eye(4, 2))
        >>> [a.shape for a in K.eigh()]
        [(2,), (4, 2)]
        """
        spectrum = self._spectrum()
        if isinstance(spectrum, _cuda_backend.CudaSpectrum):
            return spectrum.eigh()
        return spectrum.eigenvalues, spectrum.eigenvectors

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

    Notes
    -----
    On the CPU the eigendecomposition runs on first use. For CUDA inputs it runs at construction
    on their GPU (the checks of the inputs happen there too); ``features`` and ``quality`` are
    then kept as given.

    Raises
    ------
    TypeError
        If an array has an integer, bool or complex dtype.
    ValueError
        If ``features`` is not 2-D or is empty, ``quality`` does not have shape (n,), an entry is
        NaN or Inf, or a quality is negative; or for CUDA arrays without the CUDA build.

    Examples
    --------
    >>> import numpy as np, ipdpp
    >>> K = ipdpp.LowRankKernel(np.random.default_rng(0).standard_normal((100, 8)))
    >>> K.n, K.rank
    (100, 8)
    """

    def __init__(self, features: Any, quality: Any = None) -> None:
        self.features: Any  # numpy array, or the caller's CUDA array
        self.quality: Any
        if use_cuda(features, quality):
            spectrum = _cuda_backend.lowrank_spectrum(features, quality, EIGENVALUE_RTOL)
            super().__init__(spectrum.n, "numpy", device_like=features)
            self._spectrum_cache = spectrum
            self.features, self.quality = features, quality
            self.d: int = int(features.shape[1])
            return
        array, kind = real_array(features, "features", ndim=2, shape_doc="(n, d)")
        super().__init__(array.shape[0], kind)
        self.features = array
        self.d = array.shape[1]
        self.quality = None
        if quality is not None:
            q, _ = real_array(
                quality, "quality", ndim=1, shape_doc=f"({self.n},)", allow_float32=False
            )
            if q.shape[0] != self.n:
                raise ValueError(f"quality must have shape ({self.n},); got {q.shape}")
            if q.min() < 0:
                raise ValueError(f"quality must be non-negative; got minimum {q.min()}")
            self.quality = q

    def _compute_spectrum(self) -> _core.Spectrum:
        return _core.lowrank_spectrum(self.features, self.quality, EIGENVALUE_RTOL)

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
        numpy array or torch CPU tensor: float64 C-contiguous input is read without copying,
        float32 is converted to float64 (a copy). A torch CUDA tensor or CuPy array is
        decomposed on its GPU (float64 arithmetic, eigenvectors kept in the input's dtype) with
        the same symmetry, PSD and rank tolerances as on the CPU.

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
        self.L: Any  # float64 numpy array, or the caller's CUDA array
        if use_cuda(L):
            spectrum = _cuda_backend.dense_spectrum(L, EIGENVALUE_RTOL, _dense_tolerances)
            super().__init__(spectrum.n, "numpy", device_like=L)
            self._spectrum_cache = spectrum
            self.L = L
            return
        array, kind = real_array(L, "L", ndim=2, shape_doc="(n, n)", allow_float32=False)
        if array.shape[0] != array.shape[1]:
            raise ValueError(f"L must have shape (n, n); got {array.shape}")
        super().__init__(array.shape[0], kind)
        source_eps = float(np.finfo(as_numpy(L, "L")[0].dtype).eps)
        torch_dtype: Any = getattr(L, "dtype", None)
        if type(torch_dtype).__module__ == "torch":  # float16/bfloat16 reach numpy as float32
            import torch

            source_eps = float(torch.finfo(torch_dtype).eps)
        self._symmetry_rtol, self._psd_rtol = _dense_tolerances(self.n, source_eps)
        self.L = array
        self._spectrum()  # check symmetry and PSD now, not at the first sample

    def _compute_spectrum(self) -> _core.Spectrum:
        return _core.dense_spectrum(self.L, EIGENVALUE_RTOL, self._symmetry_rtol, self._psd_rtol)


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
        or CuPy. For a CUDA array the checks run on a host copy and the samplers run on its GPU.
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
        device_like = p if use_cuda(p) else None
        host = p if device_like is None else _cuda_backend.to_host(p, "p")
        array, kind = real_array(host, "p", ndim=1, shape_doc="(N,)", allow_float32=False)
        if array.min() < 0.0 or array.max() > 1.0:
            raise ValueError(f"p must lie in [0, 1]; got values in [{array.min()}, {array.max()}]")
        super().__init__(array.shape[0], kind, device_like=device_like)
        self.p: np.ndarray = array
        self.alpha: float = _resolve_alpha(alpha, self.n)
        total = float(array.sum())
        diagonal = 1.0 - self.alpha * array * total
        # alpha <= 1/N gives d_i >= 1 - p_i P / N >= 0 exactly; rounding can leave -1e-16.
        tolerance = 8 * np.finfo(np.float64).eps
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

    def _compute_spectrum(self) -> _core.Spectrum | _cuda_backend.CudaSpectrum:
        if self._device_like is not None:
            dense = _cuda_backend.to_device_like(self.dense(), self._device_like)
            return _cuda_backend.dense_spectrum(dense, EIGENVALUE_RTOL)
        # Diagonal plus rank one: O(N^2) through the secular equation, not O(N^3) dense.
        return _core.ipdpp_spectrum(self.p, self.alpha, EIGENVALUE_RTOL)

    def __repr__(self) -> str:
        return f"IPDPPKernel(n={self.n}, alpha={self.alpha:g})"


def _resolve_alpha(alpha: Any, n: int) -> float:
    if isinstance(alpha, str):
        if alpha == "paper":
            return 1.0 / n
        if alpha == "code":
            return 1.0 / n**2
        raise ValueError(f"alpha must be 'paper', 'code' or a positive float; got {alpha!r}")
    if isinstance(alpha, (bool, np.bool_)) or not isinstance(
        alpha, (int, float, np.integer, np.floating)
    ):
        raise TypeError(f"alpha must be 'paper', 'code' or a positive float; got {alpha!r}")
    value = float(alpha)
    if not np.isfinite(value) or value <= 0.0:
        raise ValueError(f"alpha must be a positive finite float; got {alpha!r}")
    return value
