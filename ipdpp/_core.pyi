"""Type stub of the compiled CPU extension ipdpp._core (use the Python API in ipdpp instead)."""

import numpy as np
import numpy.typing as npt

class InternalError(RuntimeError):
    """A broken invariant inside the library (never bad input); ipdpp._cuda raises it too."""

# --- spectral path (csrc/bindings/register_spectral.cpp) -----------------------------------------

class Spectrum:
    """Eigendecomposition of an L-ensemble truncated to its numerical rank, with cached tables."""

    @property
    def n(self) -> int: ...
    @property
    def rank(self) -> int: ...
    @property
    def eigenvalues(self) -> npt.NDArray[np.float64]:
        """(rank,), ascending, read-only view."""
    @property
    def eigenvectors(self) -> npt.NDArray[np.float64]:
        """(n, rank), row-major, orthonormal columns, read-only view (formed on first access;
        ValueError for a low-memory spectrum)."""
    @property
    def low_memory(self) -> bool:
        """True when the eigenvectors are never stored: rows are computed from the features."""
    @property
    def eigenvectors_formed(self) -> bool:
        """True once the eigenvectors are stored (formed at their first need)."""
    def eigenvector_rows(self, items: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        """Rows ``items`` (m,) of the eigenvectors, (m, rank), in any storage."""
    def weighted_row_norms(self, weights: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """sum_j weights_j V_ij^2 per item, (n,), in any storage."""

def lowrank_spectrum(
    features: npt.NDArray[np.floating],
    quality: npt.NDArray[np.float64] | None,
    rtol: float,
    eigenvector_budget: int = -1,
    threads: int = 0,
) -> Spectrum: ...
def leverage_from_features(
    features: npt.NDArray[np.floating],
    quality: npt.NDArray[np.float64] | None,
    w: npt.NDArray[np.float64],
    threads: int = 0,
) -> npt.NDArray[np.float64]: ...
def all_finite(x: npt.NDArray[np.floating]) -> bool: ...
def dual_gram_eigenvalues(
    features: npt.NDArray[np.floating], threads: int = 0
) -> npt.NDArray[np.float64]: ...
def dense_spectrum(
    L: npt.NDArray[np.float64],
    rtol: float,
    symmetry_rtol: float = 1e-10,
    psd_rtol: float = -1.0,
) -> Spectrum: ...
def ipdpp_spectrum(p: npt.NDArray[np.float64], alpha: float, rtol: float) -> Spectrum: ...
def diagonal_rank_one_eigh(
    d: npt.NDArray[np.float64], z: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]: ...
def sample_k_dpp(
    spectrum: Spectrum,
    k: int,
    num_samples: int,
    seed: int,
    sample_offset: int,
    method: str,
    threads: int,
) -> npt.NDArray[np.int64]: ...
def sample_dpp(
    spectrum: Spectrum,
    num_samples: int,
    seed: int,
    sample_offset: int,
    method: str,
    threads: int,
) -> list[npt.NDArray[np.int64]]: ...

# --- IP-DPP (csrc/bindings/register_ipdpp.cpp) ---------------------------------------------------

def ipdpp_sample_k(
    p: npt.NDArray[np.float64],
    alpha: float,
    k: int,
    num_samples: int,
    seed: int,
    sample_offset: int,
    threads: int,
    table_entries_limit: int = 0,
) -> npt.NDArray[np.int64]:
    """Exact k-DPP samples of S = diag(1 - alpha p sum(p)) + alpha p p^T in O(N k): (S, k).

    table_entries_limit (0: 2^23) caps the table rows kept in memory; beyond it checkpoints.
    """

def greedy_map_dense(L: npt.NDArray[np.float64], k: int) -> npt.NDArray[np.int64]:
    """Greedy MAP of a dense (n, n) L; (k,) in selection order."""

def greedy_map_factor(factor: npt.NDArray[np.float64], k: int) -> npt.NDArray[np.int64]:
    """Greedy MAP of L = F F^T for F (n, r); (k,) in selection order."""

def greedy_map_ipdpp(p: npt.NDArray[np.float64], alpha: float, k: int) -> npt.NDArray[np.int64]:
    """Greedy MAP of the IP-DPP kernel of p (N,) and alpha; (k,) in selection order."""

def balanced_subset(
    labels: npt.NDArray[np.int64],
    p: npt.NDArray[np.float64],
    k_per_class: npt.NDArray[np.int64],
    mode: str,
    alpha_power: float,
    alpha_value: float,
    seed: int,
    features: npt.NDArray[np.floating] | None,
    eigenvalue_rtol: float,
    threads: int,
) -> npt.NDArray[np.int64]:
    """Kept indices, ascending: min(k_c, N_c) per class (alpha_c = alpha_value or N_c**-power)."""

def ipdpp_alpha(alpha_power: float, alpha_value: float, n: int) -> float:
    """The IP-DPP alpha for n items: alpha_value if > 0, else n**-alpha_power (ValueError if
    neither is positive or n < 1)."""

def auto_method(device: str, n: int, rank: int, size: int, itemsize: int = 8) -> str:
    """'sequential' or 'rejection': what method="auto" picks on device 'cpu' or 'cuda' for one
    sample of `size` items (k; on the GPU the expected DPP size) from n items and `rank`
    eigenpairs of `itemsize` bytes."""
