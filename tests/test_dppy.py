"""Cross-check against DPPy 0.3.3, an independent implementation of the same samplers.

Same kernel in both libraries; DPPy's exact spectral samplers ("GS") must produce inclusion
frequencies that agree with ipdpp's exact inclusion probabilities and with ipdpp's own samples,
within sampling error. A fresh FiniteDPP is created for every k: DPPy caches its ESP table on the
object and reuses it wrongly when k grows. DPPy's own test helpers are not used.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pytest
from _stats import (
    MARGINAL_Z,
    all_k_subsets,
    all_subsets,
    assert_marginals,
    assert_subset_distribution,
    two_sample_marginal_z,
)
from conftest import SEED, KernelCase, build_kernel, to_numpy

import ipdpp

pytestmark = pytest.mark.dppy
finite_dpps = pytest.importorskip("dppy.finite_dpps")

DPPY_SAMPLES = 5_000
IPDPP_SAMPLES = 20_000


def dppy_object(L: np.ndarray) -> Any:
    """A fresh DPPy L-ensemble for ``L``."""
    return finite_dpps.FiniteDPP("likelihood", L=L)


def dppy_samples(L: np.ndarray, num_samples: int, k: int | None, seed: int) -> list[np.ndarray]:
    """``num_samples`` exact DPPy samples (k-DPP of size k, or the DPP when k is None)."""
    dpp = dppy_object(L)
    rng = np.random.RandomState(seed)  # DPPy 0.3.3 takes only the legacy RandomState
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DPPy warns about its own choices of mode
        if k is None:
            out = [dpp.sample_exact(mode="GS", random_state=rng) for _ in range(num_samples)]
        else:
            out = [
                dpp.sample_exact_k_dpp(size=k, mode="GS", random_state=rng)
                for _ in range(num_samples)
            ]
    return [np.sort(np.asarray(s, dtype=np.int64)) for s in out]


@pytest.fixture(scope="module")
def case() -> KernelCase:
    """A low-rank kernel with quality, n = 30, rank 10."""
    return build_kernel("lowrank_quality", 30, rank=10)


def test_dpp_marginal_kernel_matches_dppy(case: KernelCase) -> None:
    dpp = dppy_object(case.L)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dpp.compute_K()
    pi = np.asarray(to_numpy(ipdpp.inclusion_probabilities(case.kernel)))
    np.testing.assert_allclose(pi, np.diag(dpp.K), atol=1e-10)


def test_dpp_samples_agree_with_dppy(case: KernelCase) -> None:
    pi = np.asarray(to_numpy(ipdpp.inclusion_probabilities(case.kernel)))
    theirs = dppy_samples(case.L, DPPY_SAMPLES, None, SEED)
    assert_marginals(theirs, pi, label="DPPy DPP samples vs ipdpp.inclusion_probabilities")
    ours = to_numpy(ipdpp.sample_dpp(case.kernel, IPDPP_SAMPLES, seed=SEED))
    assert np.max(two_sample_marginal_z(ours, theirs, case.n)) < MARGINAL_Z
    # Sample sizes: both have mean sum(pi).
    sizes_ours = np.array([s.size for s in ours])
    sizes_theirs = np.array([s.size for s in theirs])
    se = math.sqrt(sizes_ours.var() / IPDPP_SAMPLES + sizes_theirs.var() / DPPY_SAMPLES)
    assert abs(sizes_ours.mean() - sizes_theirs.mean()) < MARGINAL_Z * se
    assert abs(sizes_ours.mean() - pi.sum()) < MARGINAL_Z * sizes_ours.std() / IPDPP_SAMPLES**0.5


@pytest.mark.parametrize("k", [1, 4, 10])
def test_k_dpp_samples_agree_with_dppy(case: KernelCase, k: int) -> None:
    pi = np.asarray(to_numpy(ipdpp.inclusion_probabilities(case.kernel, k=k)))
    theirs = dppy_samples(case.L, DPPY_SAMPLES, k, SEED + k)
    assert all(s.size == k for s in theirs)
    assert_marginals(theirs, pi, label=f"DPPy {k}-DPP samples vs ipdpp.inclusion_probabilities")
    ours = to_numpy(ipdpp.sample_k_dpp(case.kernel, k, IPDPP_SAMPLES, seed=SEED))
    assert np.max(two_sample_marginal_z(ours, theirs, case.n)) < MARGINAL_Z


def test_dppy_samples_follow_ipdpp_log_prob() -> None:
    # DPPy's samples against the exact distribution computed by ipdpp.log_prob (not the reference).
    small = build_kernel("lowrank_quality", 6, rank=4)
    dpp_probs = {Y: math.exp(ipdpp.log_prob(small.kernel, list(Y))) for Y in all_subsets(6)}
    assert_subset_distribution(
        dppy_samples(small.L, DPPY_SAMPLES, None, SEED), dpp_probs, label="DPPy DPP"
    )
    k_probs = {Y: math.exp(ipdpp.log_prob(small.kernel, Y, k=3)) for Y in all_k_subsets(6, 3)}
    assert_subset_distribution(
        dppy_samples(small.L, DPPY_SAMPLES, 3, SEED), k_probs, label="DPPy 3-DPP"
    )


@pytest.fixture(scope="module")
def ipdpp_case_and_dppy_samples() -> tuple[KernelCase, list[np.ndarray]]:
    """An IP-DPP kernel (N = 30, p ~ Beta(8, 2)) and DPPy's 6-DPP samples of the paper's S."""
    case = build_kernel("ipdpp", 30)
    return case, dppy_samples(case.L, DPPY_SAMPLES, 6, SEED)


@pytest.mark.parametrize("method", ["auto", "spectral"])
def test_ipdpp_kernel_agrees_with_dppy(
    ipdpp_case_and_dppy_samples: tuple[KernelCase, list[np.ndarray]], method: str
) -> None:
    # DPPy samples the paper's S (built entry by entry by the reference); ipdpp samples its own
    # IPDPPKernel ("auto" = the structured sampler, "spectral" = through its eigendecomposition).
    case, theirs = ipdpp_case_and_dppy_samples
    pi = np.asarray(to_numpy(ipdpp.inclusion_probabilities(case.kernel, k=6)))
    assert_marginals(theirs, pi, label="DPPy 6-DPP on the IP-DPP kernel")
    ours = to_numpy(ipdpp.sample_k_dpp(case.kernel, 6, IPDPP_SAMPLES, seed=SEED, method=method))
    assert np.max(two_sample_marginal_z(ours, theirs, case.n)) < MARGINAL_Z
