"""``balanced_subset(mode="paper")`` against a dense-``eigh`` rendering of the paper's Algorithm 1.

The C++ path takes the eigenvalues of ``S_c = diag(d) + u u^T`` from the secular equation and
forms only the kept eigenvectors (O(N_c^2)); the reference here decomposes the dense ``S_c`` with
LAPACK (O(N_c^3)) and replays the same random stream, so where the eigenvectors are unique (distinct
``p_i``, hence distinct eigenvalues; signs do not matter to the argmax phase) the two must keep the
very same items. Within a repeated eigenvalue (equal ``p_i``) any orthonormal basis of the
eigenspace is as valid as LAPACK's, and the outputs may differ; they still have to be valid subsets.
"""

from __future__ import annotations

import numpy as np
import pytest

import ipdpp

MASK32 = 0xFFFFFFFF
PAPER_PURPOSE = 6  # RandomPurpose::kPaperAlgorithm in csrc/common/philox.h


def _philox4x32_10(counter: list[int], k0: int, k1: int) -> list[int]:
    """Philox4x32-10 as in csrc/common/philox.h (Salmon et al., SC'11)."""
    c = list(counter)
    for _ in range(10):
        p0 = 0xD2511F53 * c[0]
        p1 = 0xCD9E8D57 * c[2]
        c = [(p1 >> 32) ^ c[1] ^ k0, p1 & MASK32, (p0 >> 32) ^ c[3] ^ k1, p0 & MASK32]
        k0 = (k0 + 0x9E3779B9) & MASK32
        k1 = (k1 + 0xBB67AE85) & MASK32
    return c


class _RandomStream:
    """The uniforms of ``RandomStream(seed, sample, purpose)`` (two per Philox block)."""

    def __init__(self, seed: int, sample: int, purpose: int) -> None:
        self.key = (seed & MASK32, seed >> 32)
        self.counter = (sample & MASK32, ((sample >> 32) ^ (purpose << 24)) & MASK32)
        self.block = 0
        self.spare: float | None = None

    def uniform(self) -> float:
        if self.spare is not None:
            value, self.spare = self.spare, None
            return value
        r = _philox4x32_10([*self.counter, self.block, 0x1D99], *self.key)
        self.block += 1
        u = [(((hi << 32) | lo) >> 11) + 0.5 for hi, lo in ((r[0], r[1]), (r[2], r[3]))]
        self.spare = u[1] / 2.0**53
        return u[0] / 2.0**53


def _dense_paper_algorithm(p: np.ndarray, alpha: float, k: int, rng: _RandomStream) -> list[int]:
    """Algorithm 1 on the dense S_c with LAPACK's eigh, step for step as the C++ documents it."""
    n = p.size
    total = 0.0
    for value in p:  # the C++ order of summation
        total += value
    d = np.maximum(1.0 - alpha * p * total, 0.0)
    u = np.sqrt(alpha * p * p)
    S = np.outer(u, u) + np.diag(d)
    eigenvalues, vectors = np.linalg.eigh(S)
    kept: list[int] = []
    for m in range(n):
        if len(kept) == k:
            break
        lam = max(eigenvalues[m], 0.0)
        if rng.uniform() < lam / (lam + 1.0):
            kept.append(m)
    for m in range(n - 1, -1, -1):  # fill with the largest eigenvalues
        if len(kept) == k:
            break
        if m not in kept:
            kept.append(m)
    V = vectors[:, sorted(kept)]
    residual = np.einsum("ij,ij->i", V, V)
    basis: list[np.ndarray] = []
    chosen = np.zeros(n, dtype=bool)
    out = []
    for _ in range(k):
        best = int(np.argmax(np.where(chosen, -np.inf, residual)))
        out.append(best)
        chosen[best] = True
        w = V[best].copy()
        for b in basis:
            w -= (b @ w) * b
        norm2 = w @ w
        if not norm2 > 0.0:
            continue
        w /= np.sqrt(norm2)
        basis.append(w)
        residual = np.maximum(residual - (V @ w) ** 2, 0.0)
    return out


def _reference_subset(labels: np.ndarray, p: np.ndarray, k: int, seed: int) -> np.ndarray:
    kept = []
    for label in range(int(labels.max()) + 1):
        members = np.flatnonzero(labels == label)
        if members.size <= k:
            kept.extend(members)
            continue
        rng = _RandomStream(seed, label, PAPER_PURPOSE)
        local = _dense_paper_algorithm(p[members], 1.0 / members.size, k, rng)
        kept.extend(members[local])
    return np.sort(np.asarray(kept, dtype=np.int64))


def _long_tail(num_classes: int, largest: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    sizes = np.floor(largest * (4 / largest) ** (np.arange(num_classes) / (num_classes - 1)))
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(num_classes), sizes.astype(np.int64))
    rng.shuffle(labels)
    return labels, rng.beta(8.0, 2.0, labels.size)


def test_philox_mirror_matches_the_cpp_stream() -> None:
    """The replayed stream is the sampler's: mode "random" (a Fisher-Yates on the same generator,
    purpose 5) picks the items the mirror predicts."""
    n, k, seed = 50, 7, 12345
    rng = _RandomStream(seed, 0, 5)
    order = list(range(n))
    for t in range(k):
        j = min(t + int(rng.uniform() * (n - t)), n - 1)
        order[t], order[j] = order[j], order[t]
    ours = ipdpp.balanced_subset(
        np.zeros(n, dtype=np.int64), np.full(n, 0.5), k, "random", seed=seed
    )
    np.testing.assert_array_equal(ours, np.sort(order[:k]))


@pytest.mark.parametrize("seed", [0, 1, 2**40 + 3])
def test_paper_mode_equals_dense_eigh_for_distinct_p(seed: int) -> None:
    labels, p = _long_tail(24, 240, seed=seed)
    k = 12
    ours = ipdpp.balanced_subset(labels, p, k, mode="paper", seed=seed)
    np.testing.assert_array_equal(ours, _reference_subset(labels, p, k, seed))


def test_paper_mode_with_repeated_p_is_a_valid_subset() -> None:
    labels, p = _long_tail(12, 120, seed=5)
    p = np.round(p, 1)  # only ~6 distinct values per class: repeated eigenvalues
    k = 10
    kept = ipdpp.balanced_subset(labels, p, k, mode="paper", seed=3)
    assert np.unique(kept).size == kept.size
    counts = np.bincount(labels[kept], minlength=12)
    np.testing.assert_array_equal(counts, np.minimum(np.bincount(labels), k))
