"""The CPU backend: the C++ library ``ipdpp._core`` on host arrays (numpy, torch CPU)."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _core
from ._adapters import HostArrays
from ._backend import StructuredKernel
from ._memory import MemoryOption, budget

__all__ = ["CpuBackend"]


class CpuBackend:
    """:class:`ipdpp._backend.Backend` over ``ipdpp._core``; working arrays are numpy arrays.

    Parameters
    ----------
    arrays : HostArrays
        Reads the caller's host arrays and turns results back into their type (numpy or torch).
    """

    name = "cpu"
    low_memory_supported = True

    def __init__(self, arrays: HostArrays) -> None:
        self.arrays = arrays

    def lowrank_spectrum(
        self,
        features: np.ndarray,
        quality: np.ndarray | None,
        rtol: float,
        memory: MemoryOption = "full",
        threads: int = 0,
    ) -> _core.Spectrum:
        return _core.lowrank_spectrum(features, quality, rtol, budget(memory), threads)

    def dense_spectrum(
        self, L: np.ndarray, rtol: float, symmetry_rtol: float, psd_rtol: float
    ) -> _core.Spectrum:
        # The C++ eigensolver works in float64; a float32 L is widened for the call only.
        L64 = np.ascontiguousarray(L, dtype=np.float64)
        return _core.dense_spectrum(L64, rtol, symmetry_rtol, psd_rtol)

    def ipdpp_spectrum(
        self, kernel: StructuredKernel, rtol: float, symmetry_rtol: float, psd_rtol: float
    ) -> _core.Spectrum:
        # Diagonal plus rank one: O(N^2) through the secular equation, not O(N^3) dense (S is
        # symmetric and PSD by construction, so the dense tolerances have nothing to check).
        return _core.ipdpp_spectrum(kernel.p, kernel.alpha, rtol)

    def eigh(self, spectrum: _core.Spectrum) -> tuple[np.ndarray, np.ndarray]:
        return spectrum.eigenvalues, spectrum.eigenvectors

    def host_eigh(self, spectrum: _core.Spectrum) -> tuple[np.ndarray, np.ndarray]:
        return spectrum.eigenvalues, spectrum.eigenvectors

    def host_eigenvector_rows(self, spectrum: _core.Spectrum, items: np.ndarray) -> np.ndarray:
        # Computed from the features for a low-memory spectrum, whose eigenvectors do not exist.
        return spectrum.eigenvector_rows(np.ascontiguousarray(items, dtype=np.int64))

    def host_weighted_row_norms(self, spectrum: _core.Spectrum, weights: np.ndarray) -> np.ndarray:
        return spectrum.weighted_row_norms(np.ascontiguousarray(weights, dtype=np.float64))

    def sample_k(
        self,
        spectrum: _core.Spectrum,
        k: int,
        num_samples: int,
        seed: int,
        sample_offset: int,
        method: str,
        threads: int,
    ) -> np.ndarray:
        return _core.sample_k_dpp(spectrum, k, num_samples, seed, sample_offset, method, threads)

    def sample(
        self,
        spectrum: _core.Spectrum,
        num_samples: int,
        seed: int,
        sample_offset: int,
        method: str,
        threads: int,
    ) -> list[Any]:
        samples = _core.sample_dpp(spectrum, num_samples, seed, sample_offset, method, threads)
        return [np.asarray(s) for s in samples]

    def ipdpp_sample_k(
        self,
        p: np.ndarray,
        alpha: float,
        k: int,
        num_samples: int,
        seed: int,
        sample_offset: int,
        threads: int,
    ) -> np.ndarray:
        return _core.ipdpp_sample_k(p, alpha, k, num_samples, seed, sample_offset, threads)

    def balanced_subset(
        self,
        labels: np.ndarray,
        p: np.ndarray,
        k_per_class: np.ndarray,
        mode: str,
        alpha_power: float,
        alpha_value: float,
        seed: int,
        features: np.ndarray | None,
        rtol: float,
        threads: int,
    ) -> np.ndarray:
        return _core.balanced_subset(
            labels,
            p,
            k_per_class,
            mode,
            alpha_power,
            alpha_value,
            seed,
            features,
            rtol,
            threads,
        )

    def to_host(self, x: Any) -> np.ndarray:
        return self.arrays.to_host(x)

    def from_host(self, x: np.ndarray) -> np.ndarray:
        return x

    def wrap(self, x: Any) -> Any:
        return self.arrays.wrap(x)

    def __repr__(self) -> str:
        return f"CpuBackend({self.arrays!r})"
