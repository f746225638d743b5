"""Plain numpy and PyTorch k-DPP samplers: the baselines ipdpp is measured against.

What a competent user would write from Kulesza & Taskar (2012, Alg. 1 and 8) without a compiled
extension: setup by the dual Gram's ``eigh`` (numpy.linalg.matrix_rank's rank rule), the
eigenvector selection from a log-space ESP table cached per k, then a sequential phase with one
GEMV over the selected eigenvectors per step. They are exact (tests/test_benchmarks_quick.py
checks them against enumeration). The batched torch sampler keeps every direction in the r
eigen-coordinates, masked to its own selection, so a step is one ``(n x r) @ (r x S)`` GEMM over
the shared ``V``: r/k times the flops of S GEMVs, but ``V`` is read once per step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = ["NumpyKDPP", "TorchKDPP", "esp_acceptance_table", "select_eigenvectors"]


def _rank_tolerance(largest: float, size: int, eps: float) -> float:
    """Eigenvalues at or below this count as zero (numpy.linalg.matrix_rank's rule)."""
    return largest * size * eps


def esp_acceptance_table(eigenvalues: np.ndarray, k: int) -> np.ndarray:
    """Acceptance probabilities of the k-DPP eigenvector selection (Kulesza & Taskar, Alg. 8).

    For eigenvalues (r,) of ``L`` and ``1 <= k <= r``, returns the (k + 1, r) float64 table
    ``table[l, m] = lam_m e_{l-1}(lam_0..lam_{m-1}) / e_l(lam_0..lam_m)``: the probability of
    keeping eigenvector m when l are still to be chosen among 0..m (row 0 unused). The ESPs are
    carried in log space, so eigenvalues from 1e-300 to 1e300 and any k work; a zero ESP is
    ``-inf`` and yields probability 0, never NaN.
    """
    lam = np.asarray(eigenvalues, dtype=np.float64)
    r = lam.size
    if not 1 <= k <= r:
        raise ValueError(f"k must be in [1, {r}] (the number of nonzero eigenvalues); got {k}")
    with np.errstate(divide="ignore"):
        log_lam = np.log(lam)
    # log_e[l] = log e_l(lam_0..lam_{m-1}) for the prefix processed so far.
    log_e = np.full(k + 1, -np.inf)
    log_e[0] = 0.0
    table = np.zeros((k + 1, r))
    for m in range(r):
        with_m = log_lam[m] + log_e[:-1]
        new = np.logaddexp(log_e[1:], with_m)
        with np.errstate(invalid="ignore"):
            table[1:, m] = np.where(np.isneginf(new), 0.0, np.exp(with_m - new))
        log_e[1:] = new
    return table


def select_eigenvectors(table: list[list[float]], uniforms: np.ndarray) -> np.ndarray:
    """The (k,) int64 indices, ascending, of the eigenvectors one k-DPP sample uses.

    ``table`` is ``esp_acceptance_table(...).tolist()`` (the loop is scalar, and Python lists
    index several times faster than an array); ``uniforms`` (r,) are Uniform[0, 1) draws.
    """
    need = len(table) - 1
    chosen = np.empty(need, dtype=np.int64)
    draws = uniforms.tolist()
    for m in range(len(draws) - 1, -1, -1):
        if draws[m] < table[need][m]:
            need -= 1
            chosen[need] = m
            if need == 0:
                break
    return chosen


class _AcceptanceTables:
    """``rank`` and the per-k ESP tables of ``_host_eigenvalues`` (float64, on the host)."""

    _host_eigenvalues: np.ndarray
    _tables: dict[int, list[list[float]]]

    @property
    def rank(self) -> int:
        """Number of nonzero eigenvalues, the largest admissible ``k``."""
        return int(self._host_eigenvalues.size)

    def _table(self, k: int) -> list[list[float]]:
        if k not in self._tables:
            self._tables[k] = esp_acceptance_table(self._host_eigenvalues, k).tolist()
        return self._tables[k]


class NumpyKDPP(_AcceptanceTables):
    """k-DPP sampler for ``L = B B^T`` (or a dense ``L``) in plain numpy.

    ``features`` is ``B``, shape (n, d), float32 or float64; setup (dual Gram + ``eigh``) runs
    in the constructor and leaves ``eigenvalues`` (r,) and ``eigenvectors`` (n, r).

    >>> rng = np.random.default_rng(0)
    >>> NumpyKDPP(rng.standard_normal((50, 8))).sample(3, rng).shape
    (3,)
    """

    def __init__(self, features: np.ndarray) -> None:
        features = np.asarray(features)
        if features.ndim != 2 or features.shape[0] == 0:
            raise ValueError(f"features must have shape (n, d) with n >= 1; got {features.shape}")
        lam, u = np.linalg.eigh(features.T @ features)  # the d x d dual Gram
        keep = lam > _rank_tolerance(float(lam[-1]), lam.size, float(np.finfo(lam.dtype).eps))
        lam, u = lam[keep], u[:, keep]
        self.eigenvalues, self.eigenvectors = lam, features @ (u / np.sqrt(lam))
        self._tables: dict[int, list[list[float]]] = {}

    @classmethod
    def from_dense(cls, kernel: np.ndarray) -> NumpyKDPP:
        """Sampler for a dense symmetric PSD ``L`` (n x n) through ``numpy.linalg.eigh``."""
        kernel = np.asarray(kernel, dtype=np.float64)
        if kernel.ndim != 2 or kernel.shape[0] != kernel.shape[1]:
            raise ValueError(f"kernel must have shape (n, n); got {kernel.shape}")
        self = cls.__new__(cls)
        lam, vec = np.linalg.eigh(kernel)
        keep = lam > _rank_tolerance(float(lam[-1]), lam.size, float(np.finfo(np.float64).eps))
        self.eigenvalues, self.eigenvectors = lam[keep], vec[:, keep]
        self._tables = {}
        return self

    @property
    def _host_eigenvalues(self) -> np.ndarray:
        return self.eigenvalues

    def sample(self, k: int, rng: np.random.Generator) -> np.ndarray:
        """One k-DPP sample (``0 <= k <= rank``): sorted item indices, shape (k,), int64."""
        if k == 0:
            return np.empty(0, dtype=np.int64)
        chosen = select_eigenvectors(self._table(k), rng.random(self.rank))
        return projection_sample_numpy(self.eigenvectors[:, chosen], rng)


def projection_sample_numpy(basis: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One sample, sorted (k,) int64, of the projection DPP of orthonormal ``basis`` (n, k)."""
    n, k = basis.shape
    residual = np.einsum("ij,ij->i", basis, basis)  # leverage scores, summing to k
    directions = np.empty((k, k), dtype=basis.dtype)
    items = np.empty(k, dtype=np.int64)
    for t in range(k):
        cumulative = np.cumsum(residual)
        # side="right" never lands on a zero-weight item: its cumulative value equals the previous.
        j = int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))
        items[t] = j = min(j, n - 1)
        if t == k - 1:
            break
        # Gram-Schmidt in k-space: the part of row j not explained by the earlier choices.
        w = basis[j] - directions[:t].T @ (directions[:t] @ basis[j])
        w /= np.linalg.norm(w)
        directions[t] = w
        u = basis @ w  # the one GEMV of the step
        residual -= u * u
        residual[j] = 0.0
        np.maximum(residual, 0.0, out=residual)  # rounding can leave -1e-17
    items.sort()
    return items


def _draw_proportional(weights: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Index drawn with probability proportional to ``weights``, per row; on the device.

    ``weights`` of shape (n,) gives shape (1,); shape (S, n) gives (S,). Zero-weight items are
    never drawn: ``right=True`` skips the flat steps of the cumulative sum.
    """
    import torch

    cumulative = torch.cumsum(weights, dim=-1)
    total = cumulative[..., -1:]
    u = torch.rand(total.shape, dtype=weights.dtype, device=weights.device, generator=gen)
    j = torch.searchsorted(cumulative, u * total, right=True)
    return j.clamp_(max=weights.shape[-1] - 1).reshape(-1)


class TorchKDPP(_AcceptanceTables):
    """k-DPP sampler for ``L = B B^T`` in plain PyTorch, on the CPU or a CUDA device.

    ``features`` is ``B``, shape (n, d), float32 or float64: a tensor is used where it lives, a
    numpy array is moved to ``device``; setup (``B.T @ B`` + ``torch.linalg.eigh``) runs in the
    constructor. The eigenvector selection (r <= d scalars) runs on the host; the sequential
    phase runs on the device with no host synchronisation. Items are drawn by inverse CDF
    (``cumsum`` + ``searchsorted``): on the CPU about 15 times faster than ``torch.multinomial``
    at n = 1e5.
    """

    def __init__(self, features: Any, device: Any = "cpu") -> None:
        import torch

        self._torch = torch
        if not isinstance(features, torch.Tensor):
            features = torch.from_numpy(np.ascontiguousarray(features)).to(device)
        if features.ndim != 2 or features.shape[0] == 0:
            raise ValueError(
                f"features must have shape (n, d) with n >= 1; got {tuple(features.shape)}"
            )
        self.device = features.device
        gram = features.T @ features
        lam, u = torch.linalg.eigh(gram)
        eps = torch.finfo(lam.dtype).eps
        keep = lam > _rank_tolerance(float(lam[-1]), gram.shape[0], eps)
        lam, u = lam[keep], u[:, keep]
        self.eigenvalues = lam
        self.eigenvectors = features @ (u / torch.sqrt(lam))
        self._host_eigenvalues = lam.double().cpu().numpy()
        self._tables: dict[int, list[list[float]]] = {}

    def generator(self, seed: int) -> tuple[np.random.Generator, torch.Generator]:
        """The (host, device) random generators for ``seed``."""
        gen = self._torch.Generator(device=self.device)
        gen.manual_seed(seed)
        return np.random.default_rng(seed), gen

    def sample(self, k: int, seed: int) -> torch.Tensor:
        """One k-DPP sample: sorted indices, shape (k,), int64, on the sampler's device.

        ``seed`` seeds both the host (selection) and device (sequential phase) generators.
        """
        torch = self._torch
        host_rng, gen = self.generator(seed)
        chosen = select_eigenvectors(self._table(k), host_rng.random(self.rank))
        basis = self.eigenvectors[:, torch.from_numpy(chosen).to(self.device)]
        residual = (basis * basis).sum(dim=1)
        directions = torch.zeros((k, k), dtype=basis.dtype, device=self.device)
        items = torch.empty(k, dtype=torch.int64, device=self.device)
        for t in range(k):
            j = _draw_proportional(residual, gen)  # stays on the device: no sync
            items[t : t + 1] = j
            if t == k - 1:
                break
            row = basis.index_select(0, j)[0]
            w = row - directions[:t].T @ (directions[:t] @ row)
            w = w / torch.linalg.vector_norm(w)
            directions[t] = w
            u = torch.mv(basis, w)  # the one GEMV of the step
            residual.sub_(u * u).index_fill_(0, j, 0.0).clamp_(min=0.0)
        return torch.sort(items).values

    def sample_batch(self, k: int, num_samples: int, seed: int) -> torch.Tensor:
        """``num_samples`` (S) independent k-DPP samples in lock step: (S, k) int64, sorted rows."""
        torch = self._torch
        host_rng, gen = self.generator(seed)
        table = self._table(k)
        vecs = self.eigenvectors
        dtype, device = vecs.dtype, self.device
        mask = np.zeros((num_samples, self.rank))
        for s in range(num_samples):
            mask[s, select_eigenvectors(table, host_rng.random(self.rank))] = 1.0
        mask_t = torch.from_numpy(mask).to(device=device, dtype=dtype)
        residual = mask_t @ (vecs * vecs).T  # (S, n): each sample's leverage scores
        directions = torch.zeros((num_samples, k, self.rank), dtype=dtype, device=device)
        items = torch.empty((num_samples, k), dtype=torch.int64, device=device)
        samples = torch.arange(num_samples, device=device)
        for t in range(k):
            j = _draw_proportional(residual, gen)  # (S,)
            items[:, t] = j
            if t == k - 1:
                break
            rows = vecs.index_select(0, j) * mask_t  # (S, r)
            if t > 0:
                prev = directions[:, :t]  # (S, t, r)
                rows = rows - (prev.transpose(1, 2) @ (prev @ rows.unsqueeze(2))).squeeze(2)
            rows = rows / torch.linalg.vector_norm(rows, dim=1, keepdim=True)
            directions[:, t] = rows
            u = rows @ vecs.T  # (S, n): the one GEMM of the step
            residual.sub_(u * u)
            residual[samples, j] = 0.0
            residual.clamp_(min=0.0)
        return torch.sort(items, dim=1).values
