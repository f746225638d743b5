"""The CPU rejection sampler's bfloat16 screen: exact k-DPP and DPP laws where it is active.

With stored eigenvectors, a proposal whose row gather touches at least twice as many float64
cache lines as bfloat16 ones is first tested on the bfloat16 rounding of its row, and rejected
there only when a rigorous rounding margin proves the float64 test would reject it too. These
kernels have rows of 10 to 12 eigenvector coordinates (80 to 96 bytes, two or more lines in
float64, one in bfloat16) and k about half the rank, so that most samples go through the screen,
with eigenvalues spread over two decades so that acceptances near the threshold occur.
"""

from __future__ import annotations

import numpy as np
import pytest
from _stats import assert_subset_distribution, assert_valid_samples

import ipdpp
from ipdpp import _reference as ref

NUM_SAMPLES = 20_000


def _kernel(n: int, d: int, seed: int) -> tuple[ipdpp.LowRankKernel, np.ndarray]:
    rng = np.random.default_rng(seed)
    B = rng.standard_normal((n, d)) * np.geomspace(1.0, 0.1, d)
    return ipdpp.LowRankKernel(B, memory="full"), B @ B.T


@pytest.mark.parametrize(("n", "d", "k"), [(10, 10, 5), (12, 12, 6)])
def test_k_dpp_exact_distribution_through_the_screen(seed: int, n: int, d: int, k: int) -> None:
    K, L = _kernel(n, d, seed)
    samples = np.asarray(ipdpp.sample_k_dpp(K, k, NUM_SAMPLES, seed=seed, method="rejection"))
    assert_valid_samples(samples, n, k)
    assert_subset_distribution(
        samples, ref.k_dpp_subset_probabilities(L, k), label=f"k-DPP n={n} k={k} rejection"
    )


def test_dpp_exact_distribution_through_the_screen(seed: int) -> None:
    K, L = _kernel(10, 10, seed + 1)
    samples = ipdpp.sample_dpp(K, NUM_SAMPLES, seed=seed, method="rejection")
    assert_valid_samples(samples, 10)
    assert_subset_distribution(samples, ref.dpp_subset_probabilities(L), label="DPP rejection")


def test_screen_keeps_the_samples_of_the_computed_rows(seed: int) -> None:
    # Rows computed from the features (memory="low") never go through the screen; both storages
    # take the same decisions unless rounding flips an acceptance test, which these
    # well-conditioned features keep far from happening.
    rng = np.random.default_rng(seed)
    B = rng.standard_normal((3000, 64)) * np.geomspace(1.0, 0.1, 64)
    full = ipdpp.LowRankKernel(B, memory="full")
    low = ipdpp.LowRankKernel(B, memory="low")
    for k in (8, 40, 64):
        a = ipdpp.sample_k_dpp(full, k, 30, seed=seed, method="rejection")
        b = ipdpp.sample_k_dpp(low, k, 30, seed=seed, method="rejection")
        np.testing.assert_array_equal(a, b, err_msg=f"k={k}")
