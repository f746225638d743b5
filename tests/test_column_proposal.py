"""The CPU rejection phase with per-column proposals (``method="columns"``): exact k-DPP and DPP
laws, with and without the bfloat16 screen, on kernels whose eigenvectors have exact zeros (items a
column's table must never propose), reproducible like every method, and refused where the
eigenvectors are not stored.
"""

from __future__ import annotations

import numpy as np
import pytest
from _stats import assert_subset_distribution, assert_valid_samples

import ipdpp
from ipdpp import _reference as ref

NUM_SAMPLES = 20_000


def _kernel(B: np.ndarray) -> tuple[ipdpp.LowRankKernel, np.ndarray]:
    return ipdpp.LowRankKernel(B, memory="full"), B @ B.T


def _spread(n: int, d: int, seed: int) -> np.ndarray:
    # Eigenvalues over two decades, so that acceptances near the threshold occur.
    return np.random.default_rng(seed).standard_normal((n, d)) * np.geomspace(1.0, 0.1, d)


def _blocks(seed: int) -> np.ndarray:
    # Two decoupled groups of items: every eigenvector vanishes exactly on one of them.
    rng = np.random.default_rng(seed)
    B = np.zeros((10, 6))
    B[:5, :3] = rng.standard_normal((5, 3))
    B[5:, 3:] = rng.standard_normal((5, 3)) * 0.5
    return B


@pytest.mark.parametrize(
    ("shape", "k"),
    [((10, 10), 5), ((12, 12), 6), ((10, 4), 2), ((10, 4), 4), ((9, 9), 1)],
    ids=["screened-k5", "screened-k6", "rank4-k2", "k-is-rank", "k1"],
)
def test_k_dpp_exact_distribution(seed: int, shape: tuple[int, int], k: int) -> None:
    K, L = _kernel(_spread(*shape, seed))
    samples = np.asarray(ipdpp.sample_k_dpp(K, k, NUM_SAMPLES, seed=seed, method="columns"))
    assert_valid_samples(samples, shape[0], k)
    assert_subset_distribution(
        samples, ref.k_dpp_subset_probabilities(L, k), label=f"k-DPP {shape} k={k} columns"
    )


def test_k_dpp_exact_on_eigenvectors_with_zeros(seed: int) -> None:
    K, L = _kernel(_blocks(seed))
    for k in (2, 4):
        samples = np.asarray(ipdpp.sample_k_dpp(K, k, NUM_SAMPLES, seed=seed, method="columns"))
        assert_subset_distribution(
            samples, ref.k_dpp_subset_probabilities(L, k), label=f"block k-DPP k={k} columns"
        )


def test_dpp_exact_distribution(seed: int) -> None:
    K, L = _kernel(_spread(10, 10, seed + 1))
    samples = ipdpp.sample_dpp(K, NUM_SAMPLES, seed=seed, method="columns")
    assert_valid_samples(samples, 10)
    assert_subset_distribution(samples, ref.dpp_subset_probabilities(L), label="DPP columns")


def test_reproducible_across_batches_and_threads(seed: int) -> None:
    K = ipdpp.LowRankKernel(_spread(2000, 32, seed))
    batch = ipdpp.sample_k_dpp(K, 12, 8, seed=seed, method="columns", threads=2)
    for i in (0, 5):
        alone = ipdpp.sample_k_dpp(
            K, 12, 1, seed=seed, sample_offset=i, method="columns", threads=1
        )
        np.testing.assert_array_equal(batch[i], alone[0])


def test_low_memory_kernel_is_refused(seed: int) -> None:
    K = ipdpp.LowRankKernel(_spread(50, 8, seed), memory="low")
    with pytest.raises(ValueError, match="^method='columns' reads whole columns of the eigenvect"):
        ipdpp.sample_k_dpp(K, 3, method="columns")
    with pytest.raises(ValueError, match="^method='columns' reads whole columns"):
        ipdpp.sample_dpp(K, method="columns")
