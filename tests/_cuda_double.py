"""Stand-ins for GPU arrays and for the CUDA extension, for machines without a GPU.

``FakeCudaArray`` looks like a GPU array and must be rejected before anything reads it;
``FakeCudaExtension`` implements the ``ipdpp._cuda`` API on host memory with the CPU library, so
that ``CudaBackend(FakeCudaExtension(), HostArrays())`` runs the CUDA code path end to end.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

import ipdpp
from ipdpp import _core


class FakeCudaArray:
    """Stands in for a CuPy array / CUDA tensor: it exposes only ``__cuda_array_interface__``
    (over an address nothing may read; for the paths that must reject it before any read)."""

    def __init__(self, shape: tuple[int, ...], typestr: str = "<f4") -> None:
        self.shape = shape
        self.__cuda_array_interface__ = {
            "shape": shape,
            "typestr": typestr,
            "data": (0xDEAD0000, False),
            "strides": None,
            "version": 3,
        }


class _HostMemory:
    def __init__(self, pointer: int, shape: tuple[int, ...], dtype: Any, writable: bool) -> None:
        self.__array_interface__ = {
            "shape": tuple(int(s) for s in shape),
            "typestr": np.dtype(dtype).str,
            "data": (int(pointer), not writable),
            "strides": None,
            "version": 3,
        }


def host_memory(pointer: int, shape: tuple[int, ...], dtype: Any, *, writable: bool = False):
    """A numpy array over the C-contiguous host memory at ``pointer`` (no copy)."""
    return np.asarray(_HostMemory(pointer, shape, dtype, writable))


class _FakeSpectrum:
    """The extension's Spectrum handle: host eigenvalues, eigenvectors at an address."""

    def __init__(self, spectrum: _core.Spectrum, dtype: str, device: int) -> None:
        self.spectrum = spectrum
        self.n, self.rank, self.device, self.dtype = spectrum.n, spectrum.rank, device, dtype
        self.eigenvalues = np.array(spectrum.eigenvalues)
        self._vectors = np.ascontiguousarray(spectrum.eigenvectors, dtype=dtype)
        self.eigenvectors_ptr = int(self._vectors.ctypes.data)


class FakeCudaExtension:
    """The ``ipdpp._cuda`` API on host memory, computed by the CPU library (a test double).

    Use with :class:`ipdpp._adapters.HostArrays`: "device addresses" are host addresses of numpy
    arrays, streams are ignored. It draws the CPU library's samples, so it checks the CUDA
    backend's plumbing (addresses, shapes, padding, grouping, ordering), not the CUDA kernels.
    ``calls`` lists the names of the functions called, in order.
    """

    class CudaError(RuntimeError):
        pass

    class CudaOutOfMemoryError(MemoryError):
        pass

    def __init__(self) -> None:
        self.calls: list[str] = []

    def lowrank_spectrum(
        self,
        features: int,
        dtype: str,
        n: int,
        d: int,
        quality: int,
        rtol: float,
        device: int,
        stream: int,
    ) -> _FakeSpectrum:
        self.calls.append("lowrank_spectrum")
        B = host_memory(features, (n, d), dtype)
        q = None if quality == 0 else host_memory(quality, (n,), np.float64)
        return _FakeSpectrum(_core.lowrank_spectrum(B, q, rtol), dtype, device)

    def dense_spectrum(
        self,
        L: int,
        dtype: str,
        n: int,
        rtol: float,
        psd_rtol: float,
        device: int,
        stream: int,
        symmetry_rtol: float = -1.0,
    ) -> _FakeSpectrum:
        self.calls.append("dense_spectrum")
        L64 = np.array(host_memory(L, (n, n), dtype), dtype=np.float64)
        # symmetry_rtol < 0: the extension does not check symmetry.
        symmetry = float("inf") if symmetry_rtol < 0 else symmetry_rtol
        spectrum = _core.dense_spectrum(L64, rtol, symmetry, psd_rtol)
        return _FakeSpectrum(spectrum, dtype, device)

    def method_for(self, spectrum: _FakeSpectrum, k: int, method: str) -> str:
        if method not in ("auto", "sequential", "rejection"):
            raise ValueError(f"method must be 'auto', 'sequential' or 'rejection'; got '{method}'")
        if method != "auto":
            return method
        size = k
        if k < 0:  # a DPP: its expected size
            size = math.ceil(float(np.sum(spectrum.eigenvalues / (1.0 + spectrum.eigenvalues))))
        itemsize = np.dtype(spectrum.dtype).itemsize
        return _core.auto_method("cuda", spectrum.n, spectrum.rank, size, itemsize)

    def sample(
        self,
        spectrum: _FakeSpectrum,
        k: int,
        num_samples: int,
        seed: int,
        sample_offset: int,
        method: str,
        out: int,
        stream: int,
    ) -> None:
        self.calls.append(f"sample {method}")
        method = self.method_for(spectrum, k, method)
        if k >= 0:
            result = _core.sample_k_dpp(
                spectrum.spectrum, k, num_samples, seed, sample_offset, method, 1
            )
            host_memory(out, (num_samples, k), np.int64, writable=True)[...] = result
            return
        rows = host_memory(out, (num_samples, spectrum.rank), np.int64, writable=True)
        rows[...] = -1
        samples = _core.sample_dpp(spectrum.spectrum, num_samples, seed, sample_offset, method, 1)
        for row, items in zip(rows, samples):
            row[: len(items)] = items

    def balanced_subset(
        self,
        labels: int,
        p: int,
        n: int,
        k_per_class: np.ndarray,
        alpha_power: float,
        alpha_value: float,
        seed: int,
        out: int,
        device: int,
        stream: int,
    ) -> int:
        self.calls.append("balanced_subset")
        kept = _core.balanced_subset(
            np.array(host_memory(labels, (n,), np.int64)),
            np.array(host_memory(p, (n,), np.float64)),
            np.ascontiguousarray(k_per_class, dtype=np.int64),
            "exact",
            alpha_power,
            alpha_value,
            seed,
            None,
            ipdpp.EIGENVALUE_RTOL,
            1,
        )
        host_memory(out, (n,), np.int64, writable=True)[: kept.size] = kept
        return int(kept.size)

    def structured_sample(
        self,
        p: int,
        items: int,
        offsets: np.ndarray,
        k: np.ndarray,
        alpha: np.ndarray,
        samples_per_problem: int,
        seed: int,
        sample_offset: int,
        out: int,
        device: int,
        stream: int,
    ) -> None:
        self.calls.append("structured_sample")
        total = int(offsets[-1])
        p_host = host_memory(p, (total,), np.float64)
        index = np.arange(total) if items == 0 else host_memory(items, (total,), np.int64)
        sizes = np.diff(offsets)
        kept = np.minimum(k, sizes)
        written = host_memory(
            out, (int(samples_per_problem * kept.sum()),), np.int64, writable=True
        )
        position = 0
        for c, (begin, size, kc) in enumerate(zip(offsets[:-1], sizes, kept)):
            if kc == 0:
                continue
            members = index[begin : begin + size]
            if kc == size:  # the whole class, nothing to draw
                for _ in range(samples_per_problem):
                    written[position : position + kc] = members
                    position += kc
                continue
            # Sample s of problem c draws the stream sample_offset + c * samples_per_problem + s.
            try:
                draws = _core.ipdpp_sample_k(
                    np.array(p_host[begin : begin + size]),
                    float(alpha[c]),
                    int(kc),
                    samples_per_problem,
                    seed,
                    sample_offset + c * samples_per_problem,
                    1,
                )
            except ValueError as error:
                raise ValueError(f"class {c}: {error}") from None
            for draw in draws:
                written[position : position + kc] = members[draw]
                position += kc
