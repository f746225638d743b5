"""The CUDA backend: the extension ``ipdpp._cuda`` on the arrays of one GPU.

:class:`CudaBackend` is built over an extension *module object* and an array adapter, not over
an import: the real extension with torch or CuPy arrays on a device, or any module with the same
API, e.g. a CPU emulation of the kernels whose "device addresses" are host addresses of numpy
arrays (with :class:`ipdpp._adapters.HostArrays`). Every extension function takes raw addresses,
the device ordinal and the caller's current stream, which the adapter supplies; results are
allocated by the adapter, i.e. by the caller's framework on the caller's device.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from ._adapters import ArrayAdapter, HostArrays
from ._backend import StructuredKernel
from ._cpu import CpuBackend
from ._memory import MemoryOption

__all__ = ["CudaBackend", "CudaSpectrum"]


class CudaSpectrum:
    """Eigenpairs of a kernel on one GPU: the extension's handle plus host eigenvalues.

    Attributes
    ----------
    handle : the extension's ``Spectrum`` (owns the device eigenvectors)
    n, rank : int
    dtype : str
        "float32" or "float64", the eigenvectors' (the input's) dtype.
    eigenvalues : numpy.ndarray, float64 (rank,)
        Ascending; a host copy (the selection tables are built from it on the host).
    """

    def __init__(self, handle: Any) -> None:
        self.handle = handle
        self.n: int = int(handle.n)
        self.rank: int = int(handle.rank)
        self.dtype: str = str(handle.dtype)
        self.eigenvalues: np.ndarray = np.asarray(handle.eigenvalues)

    def __repr__(self) -> str:
        return f"CudaSpectrum(n={self.n}, rank={self.rank}, dtype={self.dtype})"


class CudaBackend:
    """:class:`ipdpp._backend.Backend` over a CUDA extension module and one device's arrays.

    Parameters
    ----------
    extension : module
        ``ipdpp._cuda``, or a module with its API.
    arrays : ArrayAdapter
        The arrays of the call (:class:`~ipdpp._adapters.TorchCudaArrays`,
        :class:`~ipdpp._adapters.CupyArrays`, or :class:`~ipdpp._adapters.HostArrays` for an
        emulation on host memory).
    """

    name = "cuda"
    #: The eigenvectors live in device memory; there is no low-memory mode on a GPU.
    low_memory_supported = False

    def __init__(self, extension: ModuleType | Any, arrays: ArrayAdapter) -> None:
        self.extension = extension
        self.arrays = arrays
        # What the extension does not run (balanced subsets other than the exact IP-DPP draw)
        # runs in the CPU library on host copies.
        self._host = CpuBackend(HostArrays("numpy"))

    def _dtype_name(self, x: Any) -> str:
        return str(self.arrays.dtype(x))

    def lowrank_spectrum(
        self,
        features: Any,
        quality: Any | None,
        rtol: float,
        memory: MemoryOption = "full",
        threads: int = 0,
    ) -> CudaSpectrum:
        n, d = (int(s) for s in features.shape)
        quality_pointer = 0 if quality is None else self.arrays.pointer(quality)
        handle = self.extension.lowrank_spectrum(
            self.arrays.pointer(features),
            self._dtype_name(features),
            n,
            d,
            quality_pointer,
            float(rtol),
            self.arrays.device,
            self.arrays.stream(),
        )
        return CudaSpectrum(handle)

    def dense_spectrum(
        self, L: Any, rtol: float, symmetry_rtol: float, psd_rtol: float
    ) -> CudaSpectrum:
        # The extension checks symmetry and positive semidefiniteness on the device, with the
        # CPU library's rules and messages.
        handle = self.extension.dense_spectrum(
            self.arrays.pointer(L),
            self._dtype_name(L),
            int(L.shape[0]),
            float(rtol),
            float(psd_rtol),
            self.arrays.device,
            self.arrays.stream(),
            symmetry_rtol=float(symmetry_rtol),
        )
        return CudaSpectrum(handle)

    def ipdpp_spectrum(
        self, kernel: StructuredKernel, rtol: float, symmetry_rtol: float, psd_rtol: float
    ) -> CudaSpectrum:
        # No secular-equation solver on the device: the dense S, decomposed there.
        S = self.from_host(kernel.dense())
        return self.dense_spectrum(S, rtol, symmetry_rtol, psd_rtol)

    def _eigenvectors(self, spectrum: CudaSpectrum) -> Any:
        """The (n, rank) eigenvectors in the input's dtype: a zero-copy view of the handle's."""
        shape = (spectrum.n, spectrum.rank)
        if spectrum.rank == 0:  # no device allocation to point at
            return self.arrays.empty(shape, spectrum.dtype)
        pointer = int(spectrum.handle.eigenvectors_ptr)
        return self.arrays.view(spectrum.handle, pointer, shape, spectrum.dtype)

    def eigh(self, spectrum: CudaSpectrum) -> tuple[Any, Any]:
        values = self.arrays.from_host(spectrum.eigenvalues.copy())
        return values, self._eigenvectors(spectrum)

    def host_eigh(self, spectrum: CudaSpectrum) -> tuple[np.ndarray, np.ndarray]:
        vectors = self.arrays.to_host(self._eigenvectors(spectrum))
        return spectrum.eigenvalues, vectors.astype(np.float64, copy=False)

    def host_eigenvector_rows(self, spectrum: CudaSpectrum, items: np.ndarray) -> np.ndarray:
        return self.host_eigh(spectrum)[1][items]

    def host_weighted_row_norms(self, spectrum: CudaSpectrum, weights: np.ndarray) -> np.ndarray:
        vectors = self.host_eigh(spectrum)[1]
        return np.einsum("ij,ij,j->i", vectors, vectors, weights)

    def _sample_into(
        self,
        out: Any,
        spectrum: CudaSpectrum,
        k: int,
        num_samples: int,
        seed: int,
        sample_offset: int,
        method: str,
    ) -> None:
        """Runs the extension's sampler into ``out`` on the current stream (k < 0: DPP).

        The extension resolves ``method="auto"`` (from n, k or the expected DPP size, and the
        dtype; never from the batch size, so a sample does not depend on its batch).
        """
        self.extension.sample(
            spectrum.handle,
            k,
            num_samples,
            seed,
            sample_offset,
            method,
            self.arrays.pointer(out),
            self.arrays.stream(),
        )

    def sample_k(
        self,
        spectrum: CudaSpectrum,
        k: int,
        num_samples: int,
        seed: int,
        sample_offset: int,
        method: str,
        threads: int,
    ) -> Any:
        out = self.arrays.empty((num_samples, k), np.int64)
        if num_samples == 0 or k == 0:
            return out
        self._sample_into(out, spectrum, k, num_samples, seed, sample_offset, method)
        return out

    def sample(
        self,
        spectrum: CudaSpectrum,
        num_samples: int,
        seed: int,
        sample_offset: int,
        method: str,
        threads: int,
    ) -> list[Any]:
        width = spectrum.rank
        out = self.arrays.empty((num_samples, width), np.int64)
        if num_samples == 0:
            return []
        if width == 0:
            return [out[s] for s in range(num_samples)]
        self._sample_into(out, spectrum, -1, num_samples, seed, sample_offset, method)
        # Rows are the items in increasing order, then -1 padding: one host read of the sizes.
        sizes = self.arrays.to_host((out >= 0).sum(1))
        return [out[s, : int(sizes[s])] for s in range(num_samples)]

    def _structured_sample(
        self,
        p: Any,
        items: Any | None,
        offsets: np.ndarray,
        k: np.ndarray,
        alpha: np.ndarray,
        samples_per_problem: int,
        seed: int,
        sample_offset: int,
        out: Any,
    ) -> None:
        self.extension.structured_sample(
            self.arrays.pointer(p),
            0 if items is None else self.arrays.pointer(items),
            offsets,
            k,
            alpha,
            samples_per_problem,
            seed,
            sample_offset,
            self.arrays.pointer(out),
            self.arrays.device,
            self.arrays.stream(),
        )

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
        out = self.arrays.empty((num_samples, k), np.int64)
        if num_samples == 0 or k == 0:
            return out
        self._structured_sample(
            p,
            None,
            np.array([0, int(p.shape[0])], dtype=np.int64),
            np.array([k], dtype=np.int64),
            np.array([float(alpha)], dtype=np.float64),
            num_samples,
            seed,
            sample_offset,
            out,
        )
        return out

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
        """Mode "exact" without features runs on the device (every class in one launch, class c
        on the stream (seed, c), as the CPU library draws it); the other modes run the CPU
        library on host copies (moving n labels and confidences costs little next to their
        per-class work) and the result comes back to the device."""
        if mode != "exact" or features is not None:
            kept = self._host.balanced_subset(
                self.to_host(labels),
                self.to_host(p),
                k_per_class,
                mode,
                alpha_power,
                alpha_value,
                seed,
                None if features is None else self.to_host(features),
                rtol,
                threads,
            )
            return self.from_host(kept)
        n = int(labels.shape[0])
        out = self.arrays.empty((n,), np.int64)  # at most every item is kept
        count = self.extension.balanced_subset(
            self.arrays.pointer(labels),
            self.arrays.pointer(p),
            n,
            np.ascontiguousarray(k_per_class, dtype=np.int64),
            float(alpha_power),
            float(alpha_value),
            seed,
            self.arrays.pointer(out),
            self.arrays.device,
            self.arrays.stream(),
        )
        return out[: int(count)]

    def to_host(self, x: Any) -> np.ndarray:
        return self.arrays.to_host(x)

    def from_host(self, x: np.ndarray) -> Any:
        return self.arrays.from_host(x)

    def wrap(self, x: Any) -> Any:
        return self.arrays.wrap(x)

    def __repr__(self) -> str:
        name = getattr(self.extension, "__name__", type(self.extension).__name__)
        return f"CudaBackend({name}, {self.arrays!r})"
