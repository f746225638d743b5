"""Numerical edges: extreme spectra, k = rank, duplicate rows, n = 1, zero quality, float32,
large n; on every device (the ``on_device`` fixture of tests/conftest.py)."""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import pytest
from _stats import (
    assert_marginals,
    assert_subset_distribution,
    assert_valid_samples,
    count_subsets,
)
from conftest import SEED, on_the_cpu, to_numpy

import ipdpp
from ipdpp import _reference as ref

METHODS = ["sequential", "rejection"]


def orthogonal(n: int, seed: int) -> np.ndarray:
    """A random n x n orthogonal matrix (QR of a Gaussian matrix)."""
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def kept_rank_bounds(eigenvalues: np.ndarray) -> tuple[int, int]:
    """Bounds on how many of ``eigenvalues`` ipdpp's documented cut-off keeps.

    Eigenvalues within a factor 10 of the cut-off EIGENVALUE_RTOL * max may land on either side
    after round-off (the computed ones carry an absolute error ~ n eps max), so they are allowed
    to count either way.
    """
    cutoff = ipdpp.EIGENVALUE_RTOL * eigenvalues.max()
    return int(np.sum(eigenvalues > 10 * cutoff)), int(np.sum(eigenvalues > cutoff / 10))


# --- eigenvalues spanning 1e-12 .. 1e12 ---------------------------------------------------------

# 25 eigenvalues 1e-12, 1e-11, ..., 1e12 on n = 40 items (15 more are zero). The largest dominate
# any k-DPP with small k; the smallest fall below any relative cut-off, so the rank is what
# EIGENVALUE_RTOL says.
EXTREME = np.logspace(-12, 12, 25)


@pytest.fixture(scope="module")
def extreme_features() -> np.ndarray:
    """Features B (40, 25) with B^T B = diag(EXTREME): L = B B^T has exactly that spectrum."""
    Q = orthogonal(40, SEED)[:, :25]
    return Q * np.sqrt(EXTREME)


Device = Callable[[Any], Any]


def test_extreme_spectrum_rank_and_eigh(extreme_features: np.ndarray, on_device: Device) -> None:
    K = ipdpp.LowRankKernel(on_device(extreme_features))
    low, high = kept_rank_bounds(EXTREME)
    assert low <= K.rank <= high
    lam, V = (np.asarray(to_numpy(a)) for a in K.eigh())
    assert lam.shape == (K.rank,) and V.shape == (40, K.rank)
    assert np.all(np.isfinite(lam)) and np.all(np.isfinite(V))
    # Absolute accuracy ~ n eps lambda_max (backward stability of the Gram and of syevd).
    np.testing.assert_allclose(np.sort(lam), EXTREME[-K.rank :], rtol=1e-9, atol=1e-13 * 1e12)
    np.testing.assert_allclose(V.T @ V, np.eye(K.rank), atol=1e-6)


@pytest.mark.emulator_heavy
@pytest.mark.parametrize("method", METHODS)
def test_extreme_spectrum_k_dpp(
    extreme_features: np.ndarray, method: str, on_device: Device
) -> None:
    K = ipdpp.LowRankKernel(on_device(extreme_features))
    rank = K.rank
    for k in (1, 5, rank):
        pi = np.asarray(to_numpy(ipdpp.inclusion_probabilities(K, k=k)))
        assert np.all(np.isfinite(pi)) and np.all((pi >= -1e-9) & (pi <= 1 + 1e-9))
        assert pi.sum() == pytest.approx(k, abs=1e-6)
        samples = to_numpy(ipdpp.sample_k_dpp(K, k, 5_000, seed=SEED, method=method))
        assert_valid_samples(samples, 40, k)
        assert_marginals(samples, pi, label=f"extreme spectrum k={k} method={method}")
    # With k = rank every kept eigenvector is selected: marginals are the leverage scores.
    _, V = (np.asarray(to_numpy(a)) for a in K.eigh())
    np.testing.assert_allclose(
        np.asarray(to_numpy(ipdpp.inclusion_probabilities(K, k=rank))),
        np.sum(V**2, axis=1),
        atol=1e-8,
    )


@pytest.mark.emulator_heavy
def test_extreme_spectrum_dpp(extreme_features: np.ndarray, on_device: Device) -> None:
    K = ipdpp.LowRankKernel(on_device(extreme_features))
    pi = np.asarray(to_numpy(ipdpp.inclusion_probabilities(K)))
    assert np.all(np.isfinite(pi))
    # Eigenvalue 1e12 contributes lambda / (1 + lambda) = 1 - 1e-12; tiny ones contribute ~lambda.
    expected_size = np.sum(EXTREME[-K.rank :] / (1 + EXTREME[-K.rank :]))
    assert pi.sum() == pytest.approx(expected_size, rel=1e-8)
    samples = to_numpy(ipdpp.sample_dpp(K, 5_000, seed=SEED))
    assert_valid_samples(samples, 40)
    assert_marginals(samples, pi, label="extreme spectrum DPP")


@pytest.mark.emulator_heavy
def test_esp_without_overflow_at_large_scale(on_device: Device) -> None:
    # e_k of 64 eigenvalues ~ 1e10 each is ~ 1e640: it overflows any plain recursion.
    rng = np.random.default_rng(SEED)
    B = rng.standard_normal((20_000, 64)) * 1e3
    K = ipdpp.LowRankKernel(on_device(B))
    assert K.rank == 64
    for k in (32, 64):
        pi = np.asarray(to_numpy(ipdpp.inclusion_probabilities(K, k=k)))
        assert np.all(np.isfinite(pi)) and pi.sum() == pytest.approx(k, rel=1e-9)
        sample = to_numpy(ipdpp.sample_k_dpp(K, k, 2, seed=SEED))
        assert_valid_samples(sample, 20_000, k)
    Y = to_numpy(ipdpp.sample_k_dpp(K, 64, 1, seed=SEED))[0]
    assert np.isfinite(ipdpp.log_prob(K, Y, k=64))
    assert np.isfinite(ipdpp.log_prob(K, Y))


# --- k = rank, support -----------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_k_equals_rank_takes_the_whole_support(method: str, on_device: Device) -> None:
    # Only 5 of 20 rows are non-zero, with eigenvalues 1e-4 .. 1e4: rank 5, and the 5-DPP has a
    # single possible outcome, the support.
    support = np.array([1, 4, 9, 13, 18])
    B = np.zeros((20, 5))
    B[support] = orthogonal(5, SEED) * np.sqrt(np.logspace(-4, 4, 5))
    K = ipdpp.LowRankKernel(on_device(B))
    assert K.rank == 5
    samples = to_numpy(ipdpp.sample_k_dpp(K, 5, 500, seed=SEED, method=method))
    assert np.all(samples == support), f"k = rank samples left the support: {samples[:3]}"
    pi = np.asarray(to_numpy(ipdpp.inclusion_probabilities(K, k=5)))
    expected = np.zeros(20)
    expected[support] = 1
    np.testing.assert_allclose(pi, expected, atol=1e-9)
    assert ipdpp.log_prob(K, support, k=5) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="rank"):
        ipdpp.sample_k_dpp(K, 6)


@pytest.mark.emulator_heavy
@pytest.mark.parametrize("method", METHODS)
def test_k_equals_rank_distribution(method: str, on_device: Device) -> None:
    # k = rank on a kernel with n > rank: a projection DPP with a genuinely random outcome.
    rng = np.random.default_rng(SEED)
    B = rng.standard_normal((7, 3))
    K = ipdpp.LowRankKernel(on_device(B))
    samples = to_numpy(ipdpp.sample_k_dpp(K, 3, 20_000, seed=SEED, method=method))
    assert_subset_distribution(
        samples, ref.k_dpp_subset_probabilities(ref.dense_from_lowrank(B), 3)
    )


# --- duplicate rows ---------------------------------------------------------------------------


def duplicated_features() -> np.ndarray:
    """B (7, 7) whose rows 4, 5, 6 repeat rows 0, 1, 2: L has rank 4."""
    rng = np.random.default_rng(SEED)
    B = rng.standard_normal((7, 7))
    B[4:] = B[:3]
    return B


@pytest.mark.emulator_heavy
@pytest.mark.parametrize("kernel_type", ["lowrank", "dense"])
def test_duplicate_rows(kernel_type: str, on_device: Device) -> None:
    B = duplicated_features()
    L = ref.dense_from_lowrank(B)
    if kernel_type == "lowrank":
        K = ipdpp.LowRankKernel(on_device(B))
    else:
        K = ipdpp.DenseKernel(on_device(L))
    assert K.rank == 4
    with pytest.raises(ValueError, match="rank") as info:
        ipdpp.sample_k_dpp(K, 5)
    assert "4" in str(info.value), f"the message should state the rank 4: {info.value}"
    with pytest.raises(ValueError, match="rank"):
        ipdpp.inclusion_probabilities(K, k=5)
    samples = to_numpy(ipdpp.sample_k_dpp(K, 3, 20_000, seed=SEED))
    # A duplicate pair can never be chosen together; the chi-square sees such a subset as
    # impossible (p = 0), on top of the fit of the possible ones.
    counts = count_subsets(samples)
    assert not any({0, 4} <= set(Y) or {1, 5} <= set(Y) or {2, 6} <= set(Y) for Y in counts)
    assert_subset_distribution(samples, ref.k_dpp_subset_probabilities(L, 3))
    dpp_samples = to_numpy(ipdpp.sample_dpp(K, 20_000, seed=SEED))
    assert_subset_distribution(dpp_samples, ref.dpp_subset_probabilities(L))


@pytest.mark.parametrize("method", METHODS)
def test_k_equals_rank_with_twin_rows(method: str, on_device: Device) -> None:
    # Every item has a twin (rank 4 on 20 items): a sample of k = rank never holds both.
    base = np.random.default_rng(SEED).standard_normal((10, 4))
    K = ipdpp.LowRankKernel(on_device(np.concatenate([base, base])))
    assert K.rank == 4
    samples = to_numpy(ipdpp.sample_k_dpp(K, 4, 300, seed=SEED, method=method))
    assert_valid_samples(samples, 20, 4)
    assert all(len(set((row % 10).tolist())) == 4 for row in samples)


# --- n = 1 -----------------------------------------------------------------------------------


@pytest.mark.emulator_heavy
def test_single_item(on_device: Device) -> None:
    K = ipdpp.LowRankKernel(on_device(np.array([[2.0]])))  # L = [[4]]
    assert K.n == 1 and K.rank == 1
    np.testing.assert_array_equal(to_numpy(ipdpp.sample_k_dpp(K, 1, 10, seed=SEED)), 0)
    assert to_numpy(ipdpp.sample_k_dpp(K, 0, 3, seed=SEED)).shape == (3, 0)
    np.testing.assert_allclose(to_numpy(ipdpp.inclusion_probabilities(K)), [0.8], atol=1e-12)
    np.testing.assert_allclose(to_numpy(ipdpp.inclusion_probabilities(K, k=1)), [1.0], atol=1e-12)
    assert ipdpp.log_prob(K, [0]) == pytest.approx(math.log(0.8), abs=1e-12)
    assert ipdpp.log_prob(K, []) == pytest.approx(math.log(0.2), abs=1e-12)
    assert_subset_distribution(
        to_numpy(ipdpp.sample_dpp(K, 20_000, seed=SEED)), {(): 0.2, (0,): 0.8}
    )
    with pytest.raises(ValueError, match="rank"):
        ipdpp.sample_k_dpp(K, 2)


def test_single_item_dense_and_ipdpp(on_device: Device) -> None:
    dense = ipdpp.DenseKernel(on_device(np.array([[3.0]])))
    np.testing.assert_allclose(to_numpy(ipdpp.inclusion_probabilities(dense)), [0.75], atol=1e-12)
    # A one-item IP-DPP kernel is S = [[1]] (no other items to couple with).
    single = ipdpp.IPDPPKernel(on_device(np.array([0.7])))
    assert single.n == 1 and single.rank == 1
    np.testing.assert_allclose(to_numpy(ipdpp.inclusion_probabilities(single)), [0.5], atol=1e-12)
    np.testing.assert_array_equal(to_numpy(ipdpp.sample_k_dpp(single, 1, 3, seed=SEED)), 0)


# --- zero quality ----------------------------------------------------------------------------


@pytest.mark.emulator_heavy
@pytest.mark.parametrize("method", METHODS)
def test_zero_quality_items_never_chosen(method: str, on_device: Device) -> None:
    rng = np.random.default_rng(SEED)
    B = rng.standard_normal((60, 8))
    q = rng.uniform(0.5, 2.0, 60)
    zero = np.array([0, 7, 8, 30, 59])
    q[zero] = 0.0
    K = ipdpp.LowRankKernel(on_device(B), quality=on_device(q))
    assert K.rank == 8
    for k in (1, 8):
        samples = to_numpy(ipdpp.sample_k_dpp(K, k, 5_000, seed=SEED, method=method))
        assert not np.isin(samples, zero).any()
        pi = np.asarray(to_numpy(ipdpp.inclusion_probabilities(K, k=k)))
        assert np.all(pi[zero] == 0.0) or np.max(pi[zero]) < 1e-15
    dpp = to_numpy(ipdpp.sample_dpp(K, 5_000, seed=SEED, method=method))
    assert not any(np.isin(s, zero).any() for s in dpp)


def test_all_but_k_zero_quality(on_device: Device) -> None:
    # Quality leaves exactly 3 items: the 3-DPP must return them every time.
    B = np.random.default_rng(SEED).standard_normal((10, 5))
    q = np.zeros(10)
    q[[2, 5, 6]] = [0.5, 1.0, 3.0]
    K = ipdpp.LowRankKernel(on_device(B), quality=on_device(q))
    assert K.rank == 3
    np.testing.assert_array_equal(
        to_numpy(ipdpp.sample_k_dpp(K, 3, 50, seed=SEED)), [[2, 5, 6]] * 50
    )


@pytest.mark.emulator_heavy
def test_ipdpp_zero_and_one_probabilities(on_device: Device) -> None:
    # p_i = 0 decouples item i (S_ii = 1); p = 1 everywhere with alpha = 1/N gives d_i = 0.
    p = np.array([0.0, 0.9, 0.0, 0.7, 1.0, 0.95])
    K = ipdpp.IPDPPKernel(on_device(p))
    L = ref.dense_from_ipdpp(p)
    samples = to_numpy(ipdpp.sample_k_dpp(K, 3, 20_000, seed=SEED, method="spectral"))
    assert_subset_distribution(samples, ref.k_dpp_subset_probabilities(L, 3))
    ones = ipdpp.IPDPPKernel(on_device(np.ones(5)))
    L1 = ref.dense_from_ipdpp(np.ones(5))  # = (1/5) 1 1^T: rank 1
    assert ones.rank == 1
    np.testing.assert_allclose(to_numpy(ones.dense()), L1, atol=1e-14)
    pi = np.asarray(to_numpy(ipdpp.inclusion_probabilities(ones, k=1)))
    np.testing.assert_allclose(pi, 0.2, atol=1e-12)


# --- float32 ---------------------------------------------------------------------------------


@pytest.mark.emulator_heavy
def test_float32_wide_spectrum(on_device: Device) -> None:
    # float32 features whose dual Gram spans 1e-6 .. 1e6; the float64 reference uses the same
    # (rounded) values.
    Q = orthogonal(50, SEED)[:, :7]
    B = (Q * np.sqrt(np.logspace(-6, 6, 7))).astype(np.float32)
    K = ipdpp.LowRankKernel(on_device(B))
    L = ref.dense_from_lowrank(B.astype(np.float64))
    k = 3
    pi = np.asarray(to_numpy(ipdpp.inclusion_probabilities(K, k=k)))
    assert np.all(np.isfinite(pi)) and pi.sum() == pytest.approx(k, abs=1e-4)
    lam_ref, _ = ref.eigh(L, rtol=ipdpp.EIGENVALUE_RTOL)
    if lam_ref.size == K.rank:
        np.testing.assert_allclose(pi, ref.k_dpp_inclusion_probabilities(L, k), atol=1e-4)
    samples = to_numpy(ipdpp.sample_k_dpp(K, k, 5_000, seed=SEED))
    assert_marginals(samples, pi, label="float32 wide spectrum")


def test_float32_rank_deficient_dense_kernel_is_accepted(on_device: Device) -> None:
    # X X^T computed in float32 is PSD only up to float32 round-off (~1e-7 relative): a DenseKernel
    # must accept it, as users build dense kernels exactly this way, with the same tolerances and
    # the same rank on every device.
    X = np.random.default_rng(SEED).standard_normal((30, 5)).astype(np.float32)
    L = X @ X.T
    L = (L + L.T) / 2
    K = ipdpp.DenseKernel(on_device(L))
    with on_the_cpu():
        cpu = ipdpp.DenseKernel(L)
    assert K.rank == cpu.rank
    # Both decompose the same float64 values; the float32 rounding noise among the eigenvalues
    # only agrees to the solvers' absolute accuracy.
    np.testing.assert_allclose(to_numpy(K.eigh()[0]), cpu.eigh()[0], atol=1e-12 * np.abs(L).max())
    pi = np.asarray(to_numpy(ipdpp.inclusion_probabilities(K, k=3)))
    assert np.all(np.isfinite(pi)) and pi.sum() == pytest.approx(3, abs=1e-4)
    assert_valid_samples(to_numpy(ipdpp.sample_k_dpp(K, 3, 10, seed=SEED)), 30, 3)


# --- large n ---------------------------------------------------------------------------------


@pytest.mark.emulator_heavy
@pytest.mark.parametrize("method", ["sequential", "rejection", "auto"])
def test_large_n_single_sample(method: str, on_device: Device) -> None:
    rng = np.random.default_rng(SEED)
    B = (rng.standard_normal((100_000, 32)) * 1e4).astype(np.float32)
    K = ipdpp.LowRankKernel(on_device(B))
    assert K.n == 100_000 and K.rank == 32
    for k in (1, 16, 32):
        sample = to_numpy(ipdpp.sample_k_dpp(K, k, 1, seed=SEED, method=method))
        assert_valid_samples(sample, 100_000, k)
    dpp = to_numpy(ipdpp.sample_dpp(K, 1, seed=SEED, method=method))
    # Every eigenvalue is ~ 1e8 * 1e5: each is kept with probability 1 - 1e-13.
    assert_valid_samples(dpp, 100_000, 32)


# --- rank 0 ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda on: ipdpp.LowRankKernel(on(np.zeros((5, 2)))),
        lambda on: ipdpp.LowRankKernel(on(np.ones((5, 2))), quality=on(np.zeros(5))),
        lambda on: ipdpp.DenseKernel(on(np.zeros((5, 5)))),
    ],
    ids=["zero-features", "zero-quality", "zero-dense"],
)
def test_rank_zero_kernel(make: Callable[[Device], Any], on_device: Device) -> None:
    # L = 0 is a valid PSD kernel: the DPP is always empty and only the 0-DPP exists.
    K = make(on_device)
    assert K.rank == 0
    assert all(s.size == 0 for s in to_numpy(ipdpp.sample_dpp(K, 4, seed=SEED)))
    assert to_numpy(ipdpp.sample_k_dpp(K, 0, 3, seed=SEED)).shape == (3, 0)
    np.testing.assert_array_equal(to_numpy(ipdpp.inclusion_probabilities(K)), 0.0)
    assert ipdpp.log_prob(K, []) == 0.0
    with pytest.raises(ValueError, match="rank 0"):
        ipdpp.sample_k_dpp(K, 1)
