"""Device dispatch: kernels and samplers on CUDA arrays (torch CUDA tensors, CuPy arrays).

The public API (:mod:`ipdpp.kernels`, :mod:`ipdpp.sampling`) calls the few entry points here when
its inputs live on a GPU:

- :func:`lowrank_spectrum` / :func:`dense_spectrum` build a :class:`CudaSpectrum` (eigenvalues on
  the host, eigenvectors on the device, computed with cuBLAS and cuSOLVER by ``ipdpp._cuda``);
- :func:`sample_k_dpp` / :func:`sample_dpp` draw samples from it with the fused sequential kernel
  or the rejection kernel (:func:`choose_method` picks one for ``method="auto"``).

Interop rules (DESIGN.md sections 3 and 4):

- Inputs are read in place when they are C-contiguous float32/float64; other layouts are copied
  once by their own framework, other floating dtypes are converted to float32 (as on the CPU).
  Objects that only expose ``__cuda_array_interface__`` are viewed through torch (or CuPy).
- Work runs on the caller's current stream of the array's device (``torch.cuda.current_stream``
  or CuPy's current stream); results are allocated by the same framework on the same device.
- A CUDA array without the ``ipdpp._cuda`` extension raises ``ValueError`` saying so.

This module imports neither torch nor CuPy at import time: ``import ipdpp`` stays light and works
on machines without either.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ._arrays import is_cuda_array

__all__ = [
    "available",
    "is_cuda_array",
    "DeviceArray",
    "device_array",
    "CudaSpectrum",
    "lowrank_spectrum",
    "dense_spectrum",
    "dual_gram_eigenvalues",
    "choose_method",
    "sample_k_dpp",
    "sample_dpp",
    "ipdpp_sample_k",
    "balanced_subset",
    "to_host",
    "to_device_like",
    "SEQUENTIAL_MAX_BYTES",
]

Framework = Literal["torch", "cupy"]

#: ``method="auto"`` uses the fused sequential kernel when a sample's gathered eigenvectors
#: (n x k values of the spectrum's dtype) take at most this many bytes, and the rejection kernel
#: otherwise. Below it V_J stays in the GPU's L2 cache (50-60 MB on H100/H200), so each of the k
#: passes costs a few microseconds and the whole device works on the sample; above it every step
#: streams V_J from memory, while the rejection sampler's cost does not depend on n at all (and a
#: batch runs one sample per thread block). The rule looks at (n, k, dtype) only, never at the
#: batch size, so that ``sample_k_dpp(K, k, 5, seed=s)[3]`` equals the single draw with
#: ``sample_offset=3``: the two kernels draw different (equally exact) samples from one seed.
#: (Calibrate with ``benchmarks/gpu_bench.py``.)
SEQUENTIAL_MAX_BYTES = 32 * 2**20


def _extension() -> Any:
    """The compiled ``ipdpp._cuda`` module (imported on first use)."""
    return importlib.import_module("ipdpp._cuda")


def available() -> bool:
    """Whether the CUDA extension ``ipdpp._cuda`` was built (says nothing about a device)."""
    return importlib.util.find_spec("ipdpp._cuda") is not None


def _missing_extension(name: str) -> ValueError:
    return ValueError(
        f"{name} is a CUDA array but ipdpp was built without CUDA support (ipdpp._cuda is "
        f"missing); move {name} to the CPU (e.g. tensor.cpu()) or install a CUDA build of ipdpp "
        "(pip install . with IPDPP_CUDA=ON on a machine with the CUDA toolkit)"
    )


@dataclass(frozen=True)
class DeviceArray:
    """A validated, C-contiguous float32/float64 (or int64) array on one GPU.

    Attributes
    ----------
    array : torch.Tensor or cupy.ndarray
        The array the pointer belongs to (the input itself when no copy was needed); holding it
        keeps the memory alive.
    framework : {"torch", "cupy"}
        Which framework owns ``array``; results are allocated with the same one.
    ptr : int
        Device address of the first element.
    shape : tuple of int
    dtype : numpy.dtype
    device : int
        CUDA device ordinal.
    source_eps : float
        Machine epsilon of the caller's dtype before any conversion (float16 input converted to
        float32 still carries float16 rounding); tolerances of checks on the values use it.
    """

    array: Any
    framework: Framework
    ptr: int
    shape: tuple[int, ...]
    dtype: np.dtype
    device: int
    source_eps: float = float(np.finfo(np.float64).eps)

    @property
    def dtype_name(self) -> str:
        return str(self.dtype)

    def stream(self) -> int:
        """Handle of the framework's current stream on this array's device."""
        return _current_stream(self.framework, self.device)


def _current_stream(framework: Framework, device: int) -> int:
    if framework == "torch":
        import torch

        return int(torch.cuda.current_stream(device).cuda_stream)
    import cupy

    with cupy.cuda.Device(device):
        return int(cupy.cuda.get_current_stream().ptr)


def _as_framework_array(x: Any, name: str) -> tuple[Any, Framework]:
    """``x`` as a torch CUDA tensor or CuPy array (a view for foreign interface objects)."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        return x.detach().resolve_conj().resolve_neg(), "torch"
    if type(x).__module__.split(".", 1)[0] == "cupy":
        return x, "cupy"
    if hasattr(x, "__cuda_array_interface__"):
        if importlib.util.find_spec("torch") is not None:
            import torch as torch_module

            return torch_module.as_tensor(x), "torch"  # the device comes from the pointer
        if importlib.util.find_spec("cupy") is not None:
            import cupy

            return cupy.asarray(x), "cupy"
        raise ValueError(
            f"{name} exposes __cuda_array_interface__, but neither torch nor cupy is installed "
            "to read it"
        )
    raise TypeError(f"{name} must be a CUDA array (torch CUDA tensor or cupy array)")


def device_array(x: Any, name: str, *, ndim: int, shape_doc: str) -> DeviceArray:
    """Validate a floating CUDA array and return a zero-copy view when possible.

    Parameters
    ----------
    x : torch CUDA tensor, cupy.ndarray, or object with ``__cuda_array_interface__``
    name : str
        Argument name for error messages.
    ndim : int
        Required number of dimensions.
    shape_doc : str
        Shape in messages, e.g. ``"(n, d)"``.

    Returns
    -------
    DeviceArray
        float32/float64, C-contiguous. Non-contiguous inputs are copied once, other floating
        dtypes become float32.

    Raises
    ------
    ValueError
        Without the CUDA extension; wrong ``ndim``; empty; NaN or Inf entries.
    TypeError
        Integer, bool or complex dtypes.
    """
    if not available():
        raise _missing_extension(name)
    array, framework = _as_framework_array(x, name)
    if framework == "torch":
        import torch

        if not array.is_cuda:
            raise ValueError(
                f"{name} must be on a CUDA device like the other inputs; got device {array.device}"
            )
        if not array.dtype.is_floating_point:
            raise TypeError(f"{name} must be a float32 or float64 array; got dtype {array.dtype}")
        source_eps = float(torch.finfo(array.dtype).eps)
        if array.dtype not in (torch.float32, torch.float64):
            array = array.float()
        array = array.contiguous()
        if array.dim() != ndim:
            raise ValueError(f"{name} must have shape {shape_doc}; got {tuple(array.shape)}")
        if array.numel() == 0:
            raise ValueError(f"{name} must not be empty; got shape {tuple(array.shape)}")
        if not bool(torch.isfinite(array).all()):
            raise ValueError(f"{name} must be finite; it contains NaN or Inf")
        dtype = np.dtype("float32" if array.dtype == torch.float32 else "float64")
        return DeviceArray(
            array,
            "torch",
            array.data_ptr(),
            tuple(array.shape),
            dtype,
            array.device.index,
            source_eps,
        )
    import cupy

    if array.dtype.kind != "f":
        raise TypeError(f"{name} must be a float32 or float64 array; got dtype {array.dtype}")
    source_eps = float(np.finfo(array.dtype).eps)
    with cupy.cuda.Device(array.device.id):
        if array.dtype not in (np.float32, np.float64):
            array = array.astype(np.float32)
        array = cupy.ascontiguousarray(array)
        if array.ndim != ndim:
            raise ValueError(f"{name} must have shape {shape_doc}; got {array.shape}")
        if array.size == 0:
            raise ValueError(f"{name} must not be empty; got shape {array.shape}")
        if not bool(cupy.isfinite(array).all()):
            raise ValueError(f"{name} must be finite; it contains NaN or Inf")
    return DeviceArray(
        array,
        "cupy",
        int(array.data.ptr),
        tuple(array.shape),
        np.dtype(array.dtype),
        array.device.id,
        source_eps,
    )


def _in_framework(x: Any, framework: Framework) -> Any:
    """A zero-copy view of the CUDA array ``x`` in ``framework`` (via the array interface)."""
    if framework == "torch":
        import torch

        return torch.as_tensor(x)  # the device comes from the pointer
    import cupy

    return cupy.asarray(x)


def _float64_on(x: DeviceArray) -> DeviceArray:
    """``x`` converted to float64 on its device (no copy when it already is)."""
    if x.dtype == np.float64:
        return x
    if x.framework == "torch":
        import torch

        converted = x.array.to(torch.float64)
        return DeviceArray(
            converted,
            "torch",
            converted.data_ptr(),
            x.shape,
            np.dtype("float64"),
            x.device,
            x.source_eps,
        )
    import cupy

    with cupy.cuda.Device(x.device):
        converted = x.array.astype(np.float64)
    return DeviceArray(
        converted,
        "cupy",
        int(converted.data.ptr),
        x.shape,
        np.dtype("float64"),
        x.device,
        x.source_eps,
    )


def _empty(framework: Framework, shape: tuple[int, ...], dtype: str, device: int) -> Any:
    if framework == "torch":
        import torch

        return torch.empty(shape, dtype=getattr(torch, dtype), device=f"cuda:{device}")
    import cupy

    with cupy.cuda.Device(device):
        return cupy.empty(shape, dtype=dtype)


def _data_ptr(array: Any, framework: Framework) -> int:
    return int(array.data_ptr()) if framework == "torch" else int(array.data.ptr)


def to_host(x: Any, name: str = "array") -> np.ndarray:
    """A host (numpy) copy of a CUDA array (torch, cupy or interface object); numpy passes.

    torch float16/bfloat16 become float32, as on the CPU path (:func:`ipdpp._arrays.as_numpy`).

    Raises
    ------
    TypeError
        A torch dtype with no numpy equivalent (e.g. a quantized or unsigned 16-bit tensor),
        naming ``name``.
    """
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "detach"):  # torch
        import torch

        tensor = x.detach().resolve_conj().resolve_neg()
        if tensor.dtype in (torch.float16, torch.bfloat16):
            tensor = tensor.float()
        try:
            return tensor.cpu().numpy()
        except TypeError as error:
            raise TypeError(
                f"{name} has dtype {tensor.dtype}, which numpy cannot represent; convert it "
                "(e.g. to float32 or int64) first"
            ) from error
    if type(x).__module__.split(".", 1)[0] == "cupy":
        return x.get()
    if hasattr(x, "__cuda_array_interface__"):
        array, _ = _as_framework_array(x, name)
        return to_host(array, name)
    return np.asarray(x)


def to_device_like(x: np.ndarray, like: Any) -> Any:
    """The host array ``x`` copied to the device and framework of the CUDA array ``like``."""
    array, framework = _as_framework_array(like, "like")
    if framework == "torch":
        import torch

        return torch.from_numpy(np.ascontiguousarray(x)).to(array.device)
    import cupy

    with cupy.cuda.Device(array.device.id):
        return cupy.asarray(x)


class _InterfaceView:
    """Exposes device memory owned by ``owner`` through ``__cuda_array_interface__`` (v3)."""

    def __init__(self, owner: Any, ptr: int, shape: tuple[int, ...], typestr: str) -> None:
        self._owner = owner  # torch / cupy keep this object, hence the memory, alive
        self.__cuda_array_interface__ = {
            "shape": shape,
            "typestr": typestr,
            "data": (ptr, True),
            "strides": None,
            "version": 3,
            "stream": None,  # the spectrum was complete (synchronised) when it was returned
        }


class CudaSpectrum:
    """Eigenpairs of a kernel on one GPU, as returned by :func:`lowrank_spectrum`.

    Attributes
    ----------
    n, rank : int
    eigenvalues : numpy.ndarray, float64 (rank,)
        Ascending; a host copy (the selection tables are built from it on the host).
    framework : {"torch", "cupy"}
        Framework of the kernel's input; samples and views are returned as its arrays.
    device : int
    """

    def __init__(self, handle: Any, framework: Framework) -> None:
        self._handle = handle
        self.framework: Framework = framework
        self.n: int = int(handle.n)
        self.rank: int = int(handle.rank)
        self.device: int = int(handle.device)
        self.dtype: str = str(handle.dtype)
        self.eigenvalues: np.ndarray = np.asarray(handle.eigenvalues)

    def eigenvectors(self) -> Any:
        """Orthonormal eigenvectors, (n, rank) in the input's dtype, a zero-copy device view."""
        if self.rank == 0:
            return _empty(self.framework, (self.n, 0), self.dtype, self.device)
        typestr = "<f4" if self.dtype == "float32" else "<f8"
        view = _InterfaceView(
            self._handle, int(self._handle.eigenvectors_ptr), (self.n, self.rank), typestr
        )
        if self.framework == "torch":
            import torch

            return torch.as_tensor(view, device=f"cuda:{self.device}")
        import cupy

        with cupy.cuda.Device(self.device):
            return cupy.asarray(view)

    def eigh(self) -> tuple[Any, Any]:
        """(eigenvalues float64 (rank,), eigenvectors (n, rank)) as device arrays."""
        if self.framework == "torch":
            import torch

            values = torch.from_numpy(self.eigenvalues.copy()).to(f"cuda:{self.device}")
        else:
            import cupy

            with cupy.cuda.Device(self.device):
                values = cupy.asarray(self.eigenvalues)
        return values, self.eigenvectors()

    def __repr__(self) -> str:
        return (
            f"CudaSpectrum(n={self.n}, rank={self.rank}, dtype={self.dtype}, "
            f"device=cuda:{self.device})"
        )


def lowrank_spectrum(features: Any, quality: Any, rtol: float) -> CudaSpectrum:
    """Spectrum of ``L = diag(q) B B^T diag(q)`` on the GPU of ``features``.

    Parameters
    ----------
    features : CUDA array, float32/float64, shape (n, d)
    quality : CUDA array, shape (n,), non-negative, or None
        Must be on the same device as ``features``.
    rtol : float
        Eigenvalues at or below ``rtol * max`` are dropped (``ipdpp.EIGENVALUE_RTOL``).

    Returns
    -------
    CudaSpectrum

    Raises
    ------
    ValueError, TypeError
        As :func:`device_array`; ``quality`` of the wrong shape, negative, or on another device.
    MemoryError
        When the device runs out of memory (``ipdpp._cuda.CudaOutOfMemoryError``).
    """
    B = device_array(features, "features", ndim=2, shape_doc="(n, d)")
    n, d = B.shape
    q_ptr = 0
    q: DeviceArray | None = None
    if quality is not None:
        q = _float64_on(device_array(quality, "quality", ndim=1, shape_doc=f"({n},)"))
        if q.shape != (n,):
            raise ValueError(f"quality must have shape ({n},); got {q.shape}")
        if q.device != B.device:
            raise ValueError(
                f"quality must be on the same device as features (cuda:{B.device}); "
                f"got cuda:{q.device}"
            )
        if bool((q.array < 0).any()):
            raise ValueError("quality must be non-negative")
        q_ptr = q.ptr
    handle = _extension().lowrank_spectrum(
        B.ptr, B.dtype_name, n, d, q_ptr, float(rtol), B.device, B.stream()
    )
    return CudaSpectrum(handle, B.framework)


def dense_spectrum(
    L: Any,
    rtol: float,
    tolerances: Callable[[int, float], tuple[float, float]] | None = None,
) -> CudaSpectrum:
    """Spectrum of a dense symmetric PSD kernel ``L`` (n, n) on its GPU.

    Parameters
    ----------
    L : CUDA array, float32/float64 (other floating dtypes become float32), shape (n, n)
    rtol : float
        Rank cut-off: eigenvalues ``<= rtol * max`` are dropped (``ipdpp.EIGENVALUE_RTOL``).
    tolerances : callable ``(n, eps) -> (symmetry_rtol, psd_rtol)``, optional
        The check tolerances for an n x n input whose dtype has machine epsilon ``eps``
        (:class:`ipdpp.DenseKernel` passes the rule it uses on the CPU, so both devices accept
        the same inputs). Default: ``(1e-10, rtol)``.

    Raises
    ------
    ValueError
        As :func:`device_array`; not square; ``|L_ij - L_ji| > symmetry_rtol * max|L|``; smallest
        eigenvalue below ``-psd_rtol * max|eigenvalue|`` (the same rules as the CPU's
        ``_core.dense_spectrum``).
    """
    A = device_array(L, "L", ndim=2, shape_doc="(n, n)")
    n = A.shape[0]
    if A.shape != (n, n):
        raise ValueError(f"L must have shape (n, n); got {A.shape}")
    symmetry_rtol, psd_rtol = (1e-10, rtol) if tolerances is None else tolerances(n, A.source_eps)
    scale = float(abs(A.array).max())
    gap = float(abs(A.array - A.array.T).max())
    if gap > symmetry_rtol * scale:
        raise ValueError(
            f"L must be symmetric; max |L_ij - L_ji| = {gap:g} exceeds {symmetry_rtol:g} * "
            f"max |L| = {symmetry_rtol * scale:g}"
        )
    handle = _extension().dense_spectrum(
        A.ptr, A.dtype_name, n, float(rtol), float(psd_rtol), A.device, A.stream()
    )
    return CudaSpectrum(handle, A.framework)


def dual_gram_eigenvalues(features: Any, quality: Any = None) -> np.ndarray:
    """All d eigenvalues of ``B^T diag(q^2) B`` (float64, ascending, host): Gram + eigh only."""
    B = device_array(features, "features", ndim=2, shape_doc="(n, d)")
    q_ptr = 0
    if quality is not None:
        q = _float64_on(device_array(quality, "quality", ndim=1, shape_doc=f"({B.shape[0]},)"))
        q_ptr = q.ptr
    return np.asarray(
        _extension().dual_gram_eigenvalues(
            B.ptr, B.dtype_name, B.shape[0], B.shape[1], q_ptr, B.device, B.stream()
        )
    )


def choose_method(spectrum: CudaSpectrum, size: float, method: str) -> str:
    """The projection kernel for ``method`` ("auto", "sequential" or "rejection").

    ``size`` is k (or the expected DPP size, a property of the spectrum). "auto": see
    :data:`SEQUENTIAL_MAX_BYTES`; the choice depends on (n, size, dtype) only, so a sample never
    depends on the batch it was drawn in.
    """
    if method in ("sequential", "rejection"):
        return method
    if method != "auto":
        raise ValueError(f"method must be 'auto', 'sequential' or 'rejection'; got {method!r}")
    itemsize = 4 if spectrum.dtype == "float32" else 8
    if spectrum.n * max(size, 1.0) * itemsize <= SEQUENTIAL_MAX_BYTES:
        return "sequential"
    return "rejection"


def _sample_into(
    out: Any,
    spectrum: CudaSpectrum,
    k: int,
    num_samples: int,
    seed: int,
    sample_offset: int,
    method: str,
) -> None:
    """Runs the extension's sampler into ``out`` on the current stream (k < 0: DPP)."""
    _extension().sample(
        spectrum._handle,
        k,
        num_samples,
        seed,
        sample_offset,
        method,
        _data_ptr(out, spectrum.framework),
        _current_stream(spectrum.framework, spectrum.device),
    )


def _check_sampling_args(
    k: int | None, num_samples: int, seed: int, sample_offset: int, rank: int
) -> None:
    if k is not None and k < 0:
        raise ValueError(f"k must be >= 0; got {k}")
    if k is not None and k > rank:
        raise ValueError(f"k = {k} exceeds the kernel's rank {rank}")
    if num_samples < 0:
        raise ValueError(f"num_samples must be >= 0; got {num_samples}")
    for value, name in ((seed, "seed"), (sample_offset, "sample_offset")):
        if not 0 <= value < 2**64:
            raise ValueError(f"{name} must be in [0, 2**64); got {value}")


def sample_k_dpp(
    spectrum: CudaSpectrum,
    k: int,
    num_samples: int = 1,
    seed: int = 0,
    *,
    sample_offset: int = 0,
    method: str = "auto",
) -> Any:
    """k-DPP samples on the spectrum's GPU.

    Parameters
    ----------
    spectrum : CudaSpectrum
    k : int
        Sample size, ``0 <= k <= spectrum.rank``.
    num_samples, seed, sample_offset : int
        Sample i uses the random streams of sample ``sample_offset + i``.
    method : {"auto", "sequential", "rejection"}

    Returns
    -------
    int64 array (num_samples, k) of the input's framework on the same device; rows ascending.

    Notes
    -----
    The same (seed, sample) on the same device gives the same sample whatever the batch: "auto"
    depends on (n, k, dtype) only. The two methods (and the CPU) draw different, equally exact
    samples.
    """
    _check_sampling_args(k, num_samples, seed, sample_offset, spectrum.rank)
    out = _empty(spectrum.framework, (num_samples, k), "int64", spectrum.device)
    if num_samples == 0 or k == 0:
        return out
    chosen = choose_method(spectrum, float(k), method)
    _sample_into(out, spectrum, k, num_samples, seed, sample_offset, chosen)
    return out


def sample_dpp(
    spectrum: CudaSpectrum,
    num_samples: int = 1,
    seed: int = 0,
    *,
    sample_offset: int = 0,
    method: str = "auto",
) -> list[Any]:
    """DPP samples (random sizes) on the spectrum's GPU: a list of int64 device arrays."""
    _check_sampling_args(None, num_samples, seed, sample_offset, spectrum.rank)
    width = spectrum.rank
    out = _empty(spectrum.framework, (num_samples, width), "int64", spectrum.device)
    if num_samples == 0:
        return []
    if width == 0:
        return [out[s] for s in range(num_samples)]
    lam = spectrum.eigenvalues
    expected_size = float(np.sum(lam / (1.0 + lam)))
    chosen = choose_method(spectrum, math.ceil(expected_size), method)
    _sample_into(out, spectrum, -1, num_samples, seed, sample_offset, chosen)
    # Rows are the items in increasing order, then -1 padding: one host read of the sizes.
    sizes = (out >= 0).sum(1)
    sizes = sizes.cpu().numpy() if spectrum.framework == "torch" else sizes.get()
    return [out[s, : int(sizes[s])] for s in range(num_samples)]


def _confidences(p: Any, n: int | None) -> DeviceArray:
    """``p`` as float64 on its device, checked to lie in [0, 1] (and to have length n)."""
    q = _float64_on(device_array(p, "p", ndim=1, shape_doc="(n,)"))
    if n is not None and q.shape[0] != n:
        raise ValueError(f"p must have the length of labels, {n}; got {q.shape[0]}")
    low, high = float(q.array.min()), float(q.array.max())
    if low < 0.0 or high > 1.0:
        raise ValueError(f"p must lie in [0, 1]; got values in [{low}, {high}]")
    return q


def ipdpp_sample_k(
    p: Any, alpha: float, k: int, num_samples: int = 1, seed: int = 0, *, sample_offset: int = 0
) -> Any:
    """Structured O(N k) k-DPP samples of the IP-DPP kernel ``diag(d) + alpha p p^T`` on the GPU.

    Parameters
    ----------
    p : CUDA array (N,), values in [0, 1]
    alpha : float > 0 (already resolved, e.g. ``IPDPPKernel.alpha``)
    k : int, ``0 <= k <= N``
    num_samples, seed, sample_offset : int
        Sample i draws the Philox stream ``(seed, sample_offset + i)``, as on the CPU.

    Returns
    -------
    int64 array (num_samples, k) of p's framework on p's device; rows ascending.

    Raises
    ------
    ValueError
        k outside [0, N]; alpha too large for S to be PSD; k above the rank of S.
    """
    q = _confidences(p, None)
    N = q.shape[0]
    if not 0 <= k <= N:
        raise ValueError(f"k must be between 0 and N = {N}; got {k}")
    _check_sampling_args(None, num_samples, seed, sample_offset, N)
    out = _empty(q.framework, (num_samples, k), "int64", q.device)
    if num_samples == 0 or k == 0:
        return out
    _extension().structured_sample(
        q.ptr,
        0,
        np.array([0, N], dtype=np.int64),
        np.array([k], dtype=np.int64),
        np.array([float(alpha)], dtype=np.float64),
        num_samples,
        seed,
        sample_offset,
        _data_ptr(out, q.framework),
        q.device,
        q.stream(),
    )
    return out


def balanced_subset(
    labels: Any, p: Any, k_per_class: np.ndarray | int, alpha: str | float, seed: int
) -> Any:
    """Mode "exact" of :func:`ipdpp.balanced_subset` on the GPU: every class in one launch.

    Parameters
    ----------
    labels : integer array (n,), values >= 0
        On p's device, or on the host (then copied to p's device).
    p : CUDA float array (n,), values in [0, 1]
    k_per_class : int or integer array (max(labels) + 1,) (host or device), >= 0
    alpha : "paper" (1/N_c), "code" (1/N_c**2) or float > 0
    seed : int

    Returns
    -------
    int64 array (sum_c min(k_c, N_c),) of p's framework on p's device: kept indices, ascending.
    Class c draws the stream ``(seed, c)``, so its items equal
    ``ipdpp_sample_k(p_c, alpha_c, k_c, seed=seed, sample_offset=c)``.

    Raises
    ------
    ValueError
        Bad labels / p / k_per_class / alpha, or a class whose kernel cannot supply k_c items.
    """
    if not available():
        raise _missing_extension("labels" if is_cuda_array(labels) else "p")
    p_array, p_framework = _as_framework_array(p, "p")
    if tuple(p_array.shape) == (0,):  # nothing to select, as on the CPU; labels must match
        labels_shape = tuple(getattr(labels, "shape", np.shape(labels)))
        if labels_shape != (0,):
            raise ValueError(f"p must have the shape of labels, {labels_shape}; got (0,)")
        device = p_array.device.index if p_framework == "torch" else p_array.device.id
        return _empty(p_framework, (0,), "int64", device)
    q = _confidences(p, None)
    n, framework = q.shape[0], q.framework
    if hasattr(labels, "detach") and not is_cuda_array(labels):  # a torch CPU tensor
        labels = labels.detach().numpy()
    if framework == "torch":
        import torch

        array = torch.as_tensor(labels)
        if array.dtype == torch.bool or array.is_floating_point() or array.is_complex():
            raise ValueError(f"labels must be an integer array; got dtype {array.dtype}")
        labels64 = array.to(device=f"cuda:{q.device}", dtype=torch.int64).contiguous()
        if labels64.shape != (n,):
            raise ValueError(
                f"labels must have shape (n,) = ({n},) like p; got {tuple(labels64.shape)}"
            )
        low = int(labels64.min()) if n else 0
        num_classes = int(labels64.max()) + 1 if n else 0
        order = torch.argsort(labels64, stable=True)
        sizes = torch.bincount(labels64, minlength=num_classes).cpu().numpy()
    else:
        import cupy

        with cupy.cuda.Device(q.device):
            array = cupy.asarray(labels)
            if array.dtype.kind not in "iu":
                raise ValueError(f"labels must be an integer array; got dtype {array.dtype}")
            labels64 = cupy.ascontiguousarray(array, dtype=cupy.int64)
            if labels64.shape != (n,):
                raise ValueError(
                    f"labels must have shape (n,) = ({n},) like p; got {labels64.shape}"
                )
            low = int(labels64.min()) if n else 0
            num_classes = int(labels64.max()) + 1 if n else 0
            order = cupy.argsort(labels64, kind="stable")
            sizes = cupy.bincount(labels64, minlength=num_classes).get()
    if low < 0:
        raise ValueError(f"labels must be >= 0; got {low}")
    # The CPU path's validation, so that both devices accept and reject the same arguments
    # (imported here: ipdpp.balanced imports this module).
    from .balanced import _alpha_rule, _k_array

    if is_cuda_array(k_per_class):
        k_per_class = to_host(k_per_class, "k_per_class")
    k = _k_array(k_per_class, num_classes)
    alpha_power, alpha_value = _alpha_rule(alpha)
    sizes = sizes.astype(np.int64)
    if alpha_power > 0:
        alphas = np.maximum(sizes, 1).astype(np.float64) ** -alpha_power
    else:
        alphas = np.full(num_classes, alpha_value)
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    total = int(np.minimum(k, sizes).sum())
    grouped_p = q.array[order]  # p in class order (a gather; n values)
    out = _empty(framework, (total,), "int64", q.device)
    if total == 0:
        return out
    _extension().structured_sample(
        _data_ptr(grouped_p, framework),
        _data_ptr(order, framework),
        offsets,
        k,
        alphas,
        1,
        seed,
        0,
        _data_ptr(out, framework),
        q.device,
        q.stream(),
    )
    if framework == "torch":
        return out.sort()[0]
    import cupy

    with cupy.cuda.Device(q.device):
        return cupy.sort(out)
