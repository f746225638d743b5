"""Type stub of the compiled CUDA extension ipdpp._cuda (used through ipdpp._gpu.CudaBackend).

Every function takes raw device addresses (``int``), the CUDA device ordinal and a stream
handle (``int``, e.g. ``torch.cuda.current_stream().cuda_stream``); ``quality`` / ``items`` /
``out`` address 0 means "none" where documented.
"""

import numpy as np
import numpy.typing as npt

from ._core import InternalError as InternalError

class CudaError(RuntimeError):
    """A CUDA runtime, cuBLAS or cuSOLVER call failed (the message names the call)."""

class CudaOutOfMemoryError(MemoryError):
    """The device ran out of memory."""

class Spectrum:
    """Eigenpairs of a kernel on one GPU: host eigenvalues, device eigenvectors."""

    @property
    def n(self) -> int: ...
    @property
    def rank(self) -> int: ...
    @property
    def device(self) -> int: ...
    @property
    def dtype(self) -> str:
        """'float32' or 'float64' (the eigenvectors' dtype, the input's)."""
    @property
    def eigenvalues(self) -> npt.NDArray[np.float64]:
        """(rank,), ascending, a host copy."""
    @property
    def eigenvectors_ptr(self) -> int:
        """Device address of the (n, rank) row-major eigenvectors."""

def lowrank_spectrum(
    features: int,
    dtype: str,
    n: int,
    d: int,
    quality: int,
    rtol: float,
    device: int,
    stream: int,
) -> Spectrum: ...
def dense_spectrum(
    L: int,
    dtype: str,
    n: int,
    rtol: float,
    psd_rtol: float,
    device: int,
    stream: int,
    symmetry_rtol: float = -1.0,
) -> Spectrum:
    """ValueError (the CPU's messages) for NaN/Inf, asymmetry beyond symmetry_rtol * max|L|
    (symmetry_rtol < 0: not checked) or a negative eigenvalue beyond psd_rtol."""

def dual_gram_eigenvalues(
    features: int, dtype: str, n: int, d: int, quality: int, device: int, stream: int
) -> npt.NDArray[np.float64]: ...
def sample(
    spectrum: Spectrum,
    k: int,
    num_samples: int,
    seed: int,
    sample_offset: int,
    method: str,
    out: int,
    stream: int,
) -> None:
    """k >= 0: k-DPP, k < 0: DPP; method "auto", "sequential" or "rejection" (ValueError up
    front when k, or a DPP's rank, exceeds the method's shared-memory limit on the device)."""

def method_for(spectrum: Spectrum, k: int, method: str) -> str:
    """The method ``sample`` runs: "auto" resolved from (n, k or the expected DPP size, dtype)."""

def structured_sample(
    p: int,
    items: int,
    offsets: npt.NDArray[np.int64],
    k: npt.NDArray[np.int64],
    alpha: npt.NDArray[np.float64],
    samples_per_problem: int,
    seed: int,
    sample_offset: int,
    out: int,
    device: int,
    stream: int,
) -> None: ...
def balanced_subset(
    labels: int,
    p: int,
    n: int,
    k_per_class: npt.NDArray[np.int64],
    alpha_power: float,
    alpha_value: float,
    seed: int,
    out: int,
    device: int,
    stream: int,
) -> int:
    """Mode "exact" of balanced_subset on the GPU: labels (device int64 (n,)), p (device float64
    (n,)), k_per_class (host (C,)); writes the kept indices, ascending, to out (device int64 with
    room for n) and returns their number. Class c draws the stream (seed, c), as the CPU."""
