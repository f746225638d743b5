"""The test of the tests: the statistical checks accept the exact sampler and reject wrong ones.

Also checks the slow reference (ipdpp._reference) against plain enumeration, since every other
statistical test trusts it.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from _stats import (
    MARGINAL_Z,
    P_VALUE_THRESHOLD,
    all_k_subsets,
    all_subsets,
    assert_marginals,
    assert_subset_distribution,
    assert_valid_samples,
    chisquare_pvalue,
    chisquare_subsets,
    count_subsets,
    marginal_worst_z,
)
from conftest import SEED

from ipdpp import _reference as ref

NUM_SAMPLES = 20_000


def enumeration_sampler(
    probabilities: dict[tuple[int, ...], float], num_samples: int, seed: int
) -> list[tuple[int, ...]]:
    """Exact draws from any enumerated distribution: categorical over the listed subsets."""
    subsets = list(probabilities)
    p = np.array([probabilities[s] for s in subsets])
    idx = np.random.default_rng(seed).choice(len(subsets), size=num_samples, p=p / p.sum())
    return [subsets[i] for i in idx]


@pytest.fixture(scope="module")
def quality_kernel() -> tuple[np.ndarray, np.ndarray]:
    """(L with quality, L of the same features without quality), n = 7, rank 4."""
    rng = np.random.default_rng(SEED)
    B = rng.standard_normal((7, 4))
    q = rng.uniform(0.3, 2.0, 7)
    return ref.dense_from_lowrank(B, q), ref.dense_from_lowrank(B)


# --- the chi-square machinery itself ---------------------------------------------------------


def test_enumeration_helpers() -> None:
    assert all_subsets(3) == [(), (0,), (1,), (2,), (0, 1), (0, 2), (1, 2), (0, 1, 2)]
    assert len(all_subsets(8)) == 256
    assert all_k_subsets(5, 2) == [(i, j) for i in range(5) for j in range(i + 1, 5)]
    assert all_k_subsets(4, 0) == [()]
    counts = count_subsets([np.array([2, 0]), np.array([0, 2]), np.array([], dtype=np.int64)])
    assert counts == Counter({(0, 2): 2, (): 1})
    assert count_subsets(np.array([[1, 3], [3, 1]])) == Counter({(1, 3): 2})


def test_chisquare_perfect_fit_and_pooling() -> None:
    probs = {(0,): 0.5, (1,): 0.3, (2,): 0.1996, (3,): 0.0002, (4,): 0.0002}
    counts = {(0,): 5000, (1,): 3000, (2,): 1996, (3,): 2, (4,): 2}
    result = chisquare_subsets(counts, probs)
    # (3,) and (4,) expect 2 each: pooled with the next-smallest cell (2,) to reach 5.
    assert result.num_pooled == 3
    assert result.num_cells == 3 and result.dof == 2
    assert result.statistic == pytest.approx(0.0, abs=1e-12)
    assert result.pvalue == pytest.approx(1.0)


def test_chisquare_impossible_subset_gives_zero() -> None:
    probs = {(0, 1): 0.5, (0, 2): 0.5}
    assert chisquare_pvalue({(0, 1): 500, (0, 2): 499, (1, 2): 1}, probs) == 0.0
    # A duplicated index is never a valid subset either.
    assert chisquare_pvalue(count_subsets([[0, 1]] * 500 + [[0, 2]] * 499 + [[2, 2]]), probs) == 0.0


def test_chisquare_rejects_bad_probabilities() -> None:
    with pytest.raises(ValueError, match="sum to 1"):
        chisquare_subsets({(0,): 10}, {(0,): 0.5, (1,): 0.4})
    with pytest.raises(ValueError, match="non-negative"):
        chisquare_subsets({(0,): 10}, {(0,): 1.5, (1,): -0.5})
    with pytest.raises(ValueError, match="no power"):
        chisquare_subsets({(0,): 10}, {(0,): 1.0})


def test_assert_valid_samples_catches_malformed_samples() -> None:
    assert_valid_samples(np.array([[0, 2], [1, 3]]), n=4, k=2)
    with pytest.raises(AssertionError, match="strictly increasing"):
        assert_valid_samples(np.array([[2, 0]]), n=4)
    with pytest.raises(AssertionError, match="strictly increasing"):
        assert_valid_samples(np.array([[1, 1]]), n=4)
    with pytest.raises(AssertionError, match="outside"):
        assert_valid_samples(np.array([[1, 4]]), n=4)
    with pytest.raises(AssertionError, match="k = 3"):
        assert_valid_samples(np.array([[1, 2]]), n=4, k=3)


# --- correct samplers pass, wrong samplers fail ---------------------------------------------


def test_exact_enumeration_sampler_passes(quality_kernel: tuple[np.ndarray, np.ndarray]) -> None:
    L, _ = quality_kernel
    probs = ref.k_dpp_subset_probabilities(L, 3)
    result = assert_subset_distribution(enumeration_sampler(probs, NUM_SAMPLES, SEED), probs)
    assert result.pvalue > 100 * P_VALUE_THRESHOLD


def test_reference_k_dpp_sampler_passes(quality_kernel: tuple[np.ndarray, np.ndarray]) -> None:
    L, _ = quality_kernel
    samples = ref.sample_k_dpp(L, 3, NUM_SAMPLES, seed=SEED)
    assert_valid_samples(samples, n=7, k=3)
    result = assert_subset_distribution(samples, ref.k_dpp_subset_probabilities(L, 3))
    assert result.pvalue > 100 * P_VALUE_THRESHOLD


def test_reference_dpp_sampler_passes(quality_kernel: tuple[np.ndarray, np.ndarray]) -> None:
    L, _ = quality_kernel
    samples = ref.sample_dpp(L, NUM_SAMPLES, seed=SEED)
    assert_valid_samples(samples, n=7)
    result = assert_subset_distribution(samples, ref.dpp_subset_probabilities(L))
    assert result.pvalue > 100 * P_VALUE_THRESHOLD
    assert_marginals(samples, ref.dpp_inclusion_probabilities(L))


def test_uniform_k_subsets_fail(quality_kernel: tuple[np.ndarray, np.ndarray]) -> None:
    L, _ = quality_kernel
    probs = ref.k_dpp_subset_probabilities(L, 3)
    uniform = {s: 1.0 / math.comb(7, 3) for s in all_k_subsets(7, 3)}
    samples = enumeration_sampler(uniform, NUM_SAMPLES, SEED)
    assert chisquare_pvalue(count_subsets(samples), probs) < P_VALUE_THRESHOLD
    with pytest.raises(AssertionError, match="do not follow the exact distribution"):
        assert_subset_distribution(samples, probs)


def test_sampler_ignoring_quality_fails(quality_kernel: tuple[np.ndarray, np.ndarray]) -> None:
    # An exact sampler of the kernel without its quality (drawn by enumeration, which is fast).
    L, L_no_quality = quality_kernel
    wrong = ref.k_dpp_subset_probabilities(L_no_quality, 3)
    samples = enumeration_sampler(wrong, NUM_SAMPLES, SEED)
    assert chisquare_pvalue(count_subsets(samples), ref.k_dpp_subset_probabilities(L, 3)) < (
        P_VALUE_THRESHOLD
    )


def test_slightly_wrong_quality_fails() -> None:
    # Power against a subtle bug: quality raised to 1.1 instead of 1 (L scaled by q^2.2, not q^2).
    rng = np.random.default_rng(SEED)
    B = rng.standard_normal((7, 4))
    q = rng.uniform(0.3, 2.0, 7)
    probs = ref.k_dpp_subset_probabilities(ref.dense_from_lowrank(B, q), 3)
    wrong = ref.k_dpp_subset_probabilities(ref.dense_from_lowrank(B, q**1.1), 3)
    samples = enumeration_sampler(wrong, NUM_SAMPLES, SEED)
    assert chisquare_pvalue(count_subsets(samples), probs) < P_VALUE_THRESHOLD


def test_dpp_sampler_with_wrong_sizes_fails(quality_kernel: tuple[np.ndarray, np.ndarray]) -> None:
    # Right sets given the size, wrong size distribution: a k-DPP mixture with uniform k.
    L, _ = quality_kernel
    probs = ref.dpp_subset_probabilities(L)
    mixture = {s: p / 5 for k in range(5) for s, p in ref.k_dpp_subset_probabilities(L, k).items()}
    samples = enumeration_sampler(mixture, NUM_SAMPLES, SEED)
    assert chisquare_pvalue(count_subsets(samples), probs) < P_VALUE_THRESHOLD


def test_marginal_check_accepts_exact_and_rejects_wrong() -> None:
    rng = np.random.default_rng(SEED)
    B = rng.standard_normal((40, 10))
    q = rng.uniform(0.3, 2.0, 40)
    L = ref.dense_from_lowrank(B, q)
    pi = ref.k_dpp_inclusion_probabilities(L, 5)
    good = ref.sample_k_dpp(L, 5, 4000, seed=SEED)
    assert marginal_worst_z(good, pi) < MARGINAL_Z
    bad = ref.sample_k_dpp(ref.dense_from_lowrank(B), 5, 4000, seed=SEED)
    assert marginal_worst_z(bad, pi) > MARGINAL_Z
    with pytest.raises(AssertionError, match="standard|z ="):
        assert_marginals(bad, pi)


def test_marginal_z_for_certain_items() -> None:
    # Items with probability 0 or 1 have zero standard error: any deviation is infinitely many SE.
    pi = np.array([1.0, 0.0, 0.5])
    assert marginal_worst_z([np.array([0, 2]), np.array([0])], pi) == 0.0
    assert marginal_worst_z([np.array([0, 1]), np.array([0])], pi) == np.inf


# --- the reference against enumeration ---------------------------------------------------------


def test_reference_esp_matches_enumeration(quality_kernel: tuple[np.ndarray, np.ndarray]) -> None:
    L, _ = quality_kernel
    lam, _ = ref.eigh(L)
    assert lam.size == 4
    for k in range(6):
        brute = sum(np.linalg.det(L[np.ix_(Y, Y)]) if Y else 1.0 for Y in all_k_subsets(7, k))
        esp = math.exp(ref.log_esp(lam, k))
        assert esp == pytest.approx(brute, rel=1e-9, abs=1e-9 * abs(brute) + 1e-12)


def test_reference_log_esp_extreme_spectrum() -> None:
    lam = np.logspace(-12, 12, 25)
    table = ref.log_esp_table(lam, 25)
    assert np.all(np.isfinite(table[:, -1]))
    # e_25 of 25 numbers is their product; e_1 their sum.
    assert table[25, -1] == pytest.approx(np.sum(np.log(lam)), abs=1e-9)
    assert table[1, -1] == pytest.approx(np.log(lam.sum()), rel=1e-12)


def test_reference_probabilities_sum_to_one(quality_kernel: tuple[np.ndarray, np.ndarray]) -> None:
    L, _ = quality_kernel
    assert sum(ref.dpp_subset_probabilities(L).values()) == pytest.approx(1.0, abs=1e-12)
    for k in range(5):
        probs = ref.k_dpp_subset_probabilities(L, k)
        assert sum(probs.values()) == pytest.approx(1.0, abs=1e-12)
        for Y in [s for s in probs if probs[s] > 1e-9][:5]:
            assert math.exp(ref.k_dpp_log_prob(L, Y)) == pytest.approx(probs[Y], rel=1e-8)
    for Y, p in list(ref.dpp_subset_probabilities(L).items())[:20]:
        if p > 1e-9:
            assert math.exp(ref.dpp_log_prob(L, Y)) == pytest.approx(p, rel=1e-8)


def test_reference_inclusion_matches_enumeration(
    quality_kernel: tuple[np.ndarray, np.ndarray],
) -> None:
    L, _ = quality_kernel
    dpp_pi = np.zeros(7)
    for Y, p in ref.dpp_subset_probabilities(L).items():
        dpp_pi[list(Y)] += p
    np.testing.assert_allclose(ref.dpp_inclusion_probabilities(L), dpp_pi, atol=1e-12)
    for k in range(5):
        spectral = ref.k_dpp_inclusion_probabilities(L, k)
        np.testing.assert_allclose(
            spectral, ref.k_dpp_inclusion_probabilities_enumerated(L, k), atol=1e-10
        )
        assert spectral.sum() == pytest.approx(k, abs=1e-10)


def test_reference_ipdpp_kernel_matches_paper() -> None:
    p = np.random.default_rng(SEED).beta(8.0, 2.0, 6)
    S = ref.dense_from_ipdpp(p, "paper")
    # Eq. 16: rows sum to one, off-diagonal alpha p_i p_j, i.e. S = diag(1 - a p P) + a p p^T.
    np.testing.assert_allclose(S.sum(axis=1), 1.0, atol=1e-14)
    a = 1 / 6
    np.testing.assert_allclose(S, np.diag(1 - a * p * p.sum()) + a * np.outer(p, p), atol=1e-14)
    assert ref.ipdpp_alpha("code", 6) == 1 / 36 and ref.ipdpp_alpha(0.25, 6) == 0.25
