"""Shared fixtures and fakes: dtypes, devices, seeds, small kernels with their dense references,
stand-ins for CUDA arrays and a host-memory double of the CUDA extension.

Devices (the ``device`` fixture): "cpu" (numpy inputs, the CPU backend), "cuda" (torch CUDA
tensors, the CUDA backend; skipped without a GPU) and "emulated" (numpy inputs run through the
CUDA backend over the CPU emulation of the CUDA kernels, ``ipdpp._cuda_emulated``; skipped where
it was not built). Tests too slow for the emulator carry ``@pytest.mark.emulator_heavy``.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pytest

import ipdpp
from ipdpp import _core
from ipdpp import _reference as ref
from ipdpp._adapters import HostArrays
from ipdpp._cpu import CpuBackend
from ipdpp._dispatch import forced_backend
from ipdpp._gpu import CudaBackend

# The seed of every statistical test. Fixed, so a test passes or fails deterministically; when a
# correct sampler lands near a threshold the test needs more samples, not another seed.
SEED = 20261126


def cuda_unavailable_reason() -> str | None:
    """Why the CUDA backend can not be tested here, or None when it can."""
    if importlib.util.find_spec("ipdpp._cuda") is None:
        return "ipdpp was built without its CUDA extension (ipdpp._cuda)"
    try:
        import torch
    except ImportError:
        return "torch is not installed (the CUDA tests move data with torch)"
    if not torch.cuda.is_available():
        return "no CUDA device is visible"
    return None


def emulated_unavailable_reason() -> str | None:
    """Why the CUDA backend can not run under the CPU emulator here, or None when it can."""
    if importlib.util.find_spec("ipdpp._cuda_emulated") is None:
        return "ipdpp was built without the CPU emulator of its CUDA kernels (ipdpp._cuda_emulated)"
    return None


def emulated_backend() -> CudaBackend:
    """The CUDA backend over the CPU emulator, on numpy arrays (host addresses, no streams)."""
    return CudaBackend(importlib.import_module("ipdpp._cuda_emulated"), HostArrays("numpy"))


@contextmanager
def on_the_cpu() -> Iterator[None]:
    """Within the block, calls run on the CPU backend whatever the test's device: the reference
    a device's result is compared with."""
    with forced_backend(CpuBackend(HostArrays("numpy"))):
        yield


@pytest.fixture(params=[np.float32, np.float64], ids=["float32", "float64"])
def dtype(request: pytest.FixtureRequest) -> type[np.floating]:
    """Every floating dtype the kernels accept."""
    return request.param


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.gpu), "emulated"])
def device(request: pytest.FixtureRequest) -> Iterator[str]:
    """The device the inputs live on; "cuda" and "emulated" are skipped with a reason where they
    can not run. On "emulated" every call in the test goes through the emulated CUDA backend."""
    if request.param == "cuda":
        reason = cuda_unavailable_reason()
        if reason is not None:
            pytest.skip(reason)
    if request.param == "emulated":
        reason = emulated_unavailable_reason()
        if reason is not None:
            pytest.skip(reason)
        if request.node.get_closest_marker("emulator_heavy") is not None:
            pytest.skip("too slow under the CPU emulator of the CUDA kernels")
        with forced_backend(emulated_backend()):
            yield request.param
        return
    yield request.param


@pytest.fixture
def seed() -> int:
    """The fixed seed of the statistical tests."""
    return SEED


def to_device(x: Any, device: str) -> Any:
    """The numpy array ``x`` as an input on ``device`` (torch CUDA tensor for "cuda")."""
    if device != "cuda" or x is None:
        return x
    import torch

    return torch.from_numpy(np.ascontiguousarray(x)).to("cuda")


@pytest.fixture
def on_device(device: str) -> Callable[[Any], Any]:
    """``on_device(x)``: the numpy array ``x`` as an input on the test's ``device``."""
    return lambda x: to_device(x, device)


def to_numpy(result: Any) -> Any:
    """The numpy view of a result: arrays and tensors -> np.ndarray, lists element-wise."""
    if isinstance(result, (list, tuple)):
        return [to_numpy(r) for r in result]
    if hasattr(result, "detach"):
        return result.detach().cpu().numpy()
    if type(result).__module__.split(".", 1)[0] == "cupy":
        return result.get()
    return np.asarray(result)


@dataclass
class KernelCase:
    """A kernel under test together with what the reference needs to judge it.

    Attributes
    ----------
    kernel : ipdpp kernel object
    L : float64 (n, n) dense L-ensemble matrix built by ipdpp._reference from the very same input
        values (a float32 input is widened, not regenerated, so both describe the same kernel).
    inputs : dict of the numpy arrays the constructor's inputs were made from.
    name : short id for messages.
    """

    kernel: Any
    L: np.ndarray
    inputs: dict[str, Any]
    name: str

    @property
    def n(self) -> int:
        return self.L.shape[0]


def build_kernel(
    kind: str,
    n: int,
    *,
    dtype: type[np.floating] = np.float64,
    seed: int = SEED,
    rank: int | None = None,
    device: str = "cpu",
) -> KernelCase:
    """Build a small random kernel of the given kind.

    Parameters
    ----------
    kind : {"lowrank", "lowrank_quality", "dense", "ipdpp"}
        "lowrank": Gaussian features B (n, rank); "lowrank_quality": the same with quality
        q ~ Uniform(0.3, 2) (well spread, so ignoring it is detectable); "dense": L = A A^T with A
        (n, rank) Gaussian, passed as a dense matrix; "ipdpp": p ~ Beta(8, 2) as in the paper's
        setting (confident but imperfect predictions), alpha="paper".
    n : int
        Ground set size.
    dtype : numpy floating dtype of the input arrays.
    seed : int
        Seed of the random inputs.
    rank : int, optional
        Feature dimension of the low-rank / dense kernels (default n // 2 + 1, so that k-DPPs up
        to about n / 2 exist and some subsets have probability 0).
    device : "cpu", "cuda" (inputs as torch CUDA tensors) or "emulated" (numpy inputs; the
        caller has forced the emulated backend).
    """
    rng = np.random.default_rng(seed)
    d = rank if rank is not None else n // 2 + 1
    kernel: Any
    if kind in ("lowrank", "lowrank_quality"):
        B = rng.standard_normal((n, d)).astype(dtype)
        q = rng.uniform(0.3, 2.0, n).astype(np.float64) if kind == "lowrank_quality" else None
        kernel = ipdpp.LowRankKernel(to_device(B, device), quality=to_device(q, device))
        L = ref.dense_from_lowrank(B.astype(np.float64), q)
        inputs: dict[str, Any] = {"features": B, "quality": q}
    elif kind == "dense":
        A = rng.standard_normal((n, d))
        L_in = (A @ A.T).astype(dtype)
        L_in = (L_in + L_in.T) / 2  # exactly symmetric after rounding to dtype
        kernel = ipdpp.DenseKernel(to_device(L_in, device))
        L = L_in.astype(np.float64)
        inputs = {"L": L_in}
    elif kind == "ipdpp":
        p = rng.beta(8.0, 2.0, n).astype(dtype)
        kernel = ipdpp.IPDPPKernel(to_device(p, device))
        L = ref.dense_from_ipdpp(p.astype(np.float64), "paper")
        inputs = {"p": p}
    else:
        raise ValueError(f"unknown kernel kind {kind!r}")
    return KernelCase(kernel=kernel, L=L, inputs=inputs, name=f"{kind}-n{n}-{np.dtype(dtype)}")


@pytest.fixture
def make_kernel(device: str) -> Callable[..., KernelCase]:
    """Factory fixture: ``make_kernel(kind, n, dtype=..., seed=..., rank=...)`` on ``device``."""

    def make(kind: str, n: int, **kwargs: Any) -> KernelCase:
        return build_kernel(kind, n, device=device, **kwargs)

    return make


# ----------------------------------------------------------------------------------------------
# Stand-ins for GPU arrays and for the CUDA extension, for machines without a GPU
# ----------------------------------------------------------------------------------------------


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
        self, L: int, dtype: str, n: int, rtol: float, psd_rtol: float, device: int, stream: int
    ) -> _FakeSpectrum:
        self.calls.append("dense_spectrum")
        L64 = np.array(host_memory(L, (n, n), dtype), dtype=np.float64)
        # Symmetry is the caller's check, as in the extension.
        spectrum = _core.dense_spectrum(L64, rtol, float("inf"), psd_rtol)
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
