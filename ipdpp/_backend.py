"""The interface every device backend implements (:class:`Backend`), checked by mypy.

A backend is picked once per call where arrays enter ipdpp (:mod:`ipdpp._dispatch`): kernel
construction and :func:`ipdpp.balanced_subset`. A kernel keeps the backend it was built with, so
sampling reads the same on every device: validate the arguments, call the kernel's backend, wrap
the result. Backends receive arguments that :mod:`ipdpp._validation` has already checked, as
working arrays of their :attr:`Backend.arrays` adapter (numpy on the host, torch or CuPy on a GPU).

Implementations: :class:`ipdpp._cpu.CpuBackend` (the C++ library ``ipdpp._core``) and
:class:`ipdpp._gpu.CudaBackend` (the CUDA extension ``ipdpp._cuda``, or any module with its API).
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

import numpy as np

from ._adapters import ArrayAdapter
from ._memory import MemoryOption

__all__ = ["Spectrum", "StructuredKernel", "Backend", "SpectrumT"]


class Spectrum(Protocol):
    """A kernel's eigendecomposition, truncated to its numerical rank, on some device."""

    @property
    def n(self) -> int:
        """Size of the ground set."""
        ...

    @property
    def rank(self) -> int:
        """Number of eigenvalues kept."""
        ...

    @property
    def eigenvalues(self) -> np.ndarray:
        """The kept eigenvalues, float64 (rank,), ascending, on the host."""
        ...


class StructuredKernel(Protocol):
    """What a backend reads from an IP-DPP kernel ``S = diag(d) + alpha p p^T`` for its spectrum."""

    p: np.ndarray  # float64 (N,), on the host
    alpha: float

    def dense(self) -> np.ndarray:
        """S as float64 (N, N) on the host."""
        ...


#: The spectrum type of one backend (``_core.Spectrum`` on the CPU).
SpectrumT = TypeVar("SpectrumT", bound=Spectrum)


class Backend(Protocol[SpectrumT]):
    """Kernel spectra, samplers and array traffic of one device, for the arrays of one call.

    Arrays in and out are working arrays of :attr:`arrays`; integer results are int64.
    ``threads`` is the CPU worker count (0: all hardware threads), ignored on a GPU.
    """

    @property
    def name(self) -> str:
        """ "cpu" or "cuda"."""
        ...

    @property
    def arrays(self) -> ArrayAdapter:
        """The adapter of the caller's arrays: validation reads them through it."""
        ...

    @property
    def low_memory_supported(self) -> bool:
        """Whether low-rank spectra can leave their eigenvectors unstored (:mod:`ipdpp._memory`)."""
        ...

    def lowrank_spectrum(
        self,
        features: Any,
        quality: Any | None,
        rtol: float,
        memory: MemoryOption = "full",
        threads: int = 0,
    ) -> SpectrumT:
        """Spectrum of ``diag(q) B B^T diag(q)``; features (n, d) float32/float64, quality (n,)
        float64 or None; eigenvalues ``<= rtol * max`` dropped; ``memory`` (validated) decides
        whether the eigenvectors are stored; CPU products over the items on ``threads``."""
        ...

    def dense_spectrum(
        self, L: Any, rtol: float, symmetry_rtol: float, psd_rtol: float
    ) -> SpectrumT:
        """Spectrum of a dense (n, n) L (float32/float64); ValueError naming ``L`` when
        ``|L_ij - L_ji| > symmetry_rtol * max|L|`` or an eigenvalue is below
        ``-psd_rtol * max|eigenvalue|``."""
        ...

    def ipdpp_spectrum(
        self, kernel: StructuredKernel, rtol: float, symmetry_rtol: float, psd_rtol: float
    ) -> SpectrumT:
        """Spectrum of an IP-DPP kernel, through its structure where the device can (the
        tolerances are those of a dense S)."""
        ...

    def eigh(self, spectrum: SpectrumT) -> tuple[Any, Any]:
        """(eigenvalues float64 (rank,), eigenvectors (n, rank)) as working arrays."""
        ...

    def host_eigh(self, spectrum: SpectrumT) -> tuple[np.ndarray, np.ndarray]:
        """(eigenvalues, eigenvectors) as float64 numpy arrays."""
        ...

    def host_eigenvector_rows(self, spectrum: SpectrumT, items: np.ndarray) -> np.ndarray:
        """Rows ``items`` (int64 (m,), in range) of the eigenvectors, float64 numpy (m, rank)."""
        ...

    def host_weighted_row_norms(self, spectrum: SpectrumT, weights: np.ndarray) -> np.ndarray:
        """``sum_j weights_j V_ij^2`` for every item, float64 numpy (n,); weights (rank,)."""
        ...

    def sample_k(
        self,
        spectrum: SpectrumT,
        k: int,
        num_samples: int,
        seed: int,
        sample_offset: int,
        method: str,
        threads: int,
    ) -> Any:
        """k-DPP samples (num_samples, k), rows ascending; method "auto", "sequential" or
        "rejection"; sample i draws the stream (seed, sample_offset + i)."""
        ...

    def sample(
        self,
        spectrum: SpectrumT,
        num_samples: int,
        seed: int,
        sample_offset: int,
        method: str,
        threads: int,
    ) -> list[Any]:
        """DPP samples: one ascending index array per sample."""
        ...

    def ipdpp_sample_k(
        self,
        p: Any,
        alpha: float,
        k: int,
        num_samples: int,
        seed: int,
        sample_offset: int,
        threads: int,
    ) -> Any:
        """Structured k-DPP samples (num_samples, k) of ``diag(1 - alpha p sum(p)) + alpha p p^T``;
        p float64 (N,) in [0, 1]."""
        ...

    def balanced_subset(
        self,
        labels: Any,
        p: Any,
        k_per_class: np.ndarray,
        mode: str,
        alpha_power: float,
        alpha_value: float,
        seed: int,
        features: Any | None,
        rtol: float,
        threads: int,
    ) -> Any:
        """Kept indices, ascending: ``min(k_c, N_c)`` of every class c (labels int64 (n,) >= 0,
        p float64 (n,), k_per_class host int64 (max(labels) + 1,)); class c draws the stream
        (seed, c) and uses ``alpha_c = alpha_value`` if > 0, else ``N_c**-alpha_power``."""
        ...

    def to_host(self, x: Any) -> np.ndarray:
        """A working array read back to the host."""
        ...

    def from_host(self, x: np.ndarray) -> Any:
        """A host array as a working array (a copy on a GPU, ``x`` itself on the CPU)."""
        ...

    def wrap(self, x: Any) -> Any:
        """A working array as the caller's array type (e.g. torch for torch CPU input)."""
        ...
