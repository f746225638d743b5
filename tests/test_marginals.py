"""ipdpp.inclusion_probabilities and ipdpp.log_prob against the reference, and sample frequencies
against exact inclusion probabilities at n ~ 500."""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import pytest
from _stats import (
    MARGINAL_Z,
    all_k_subsets,
    all_subsets,
    assert_marginals,
    assert_valid_samples,
    inclusion_frequencies,
)
from conftest import KernelCase, build_kernel, on_the_cpu, to_numpy

import ipdpp
from ipdpp import _reference as ref

# Tolerance of exact quantities computed by ipdpp against the float64 reference built from the
# same input values. float64 kernels: a few hundred ulps of O(1) quantities; float32 inputs may be
# processed in float32 arithmetic (relative error ~ 1e-7 * condition), hence the looser bound.
EXACT_ATOL = {np.float64: 1e-9, np.float32: 1e-4}
# Relative tolerance of individual subset probabilities (exp of log_prob); subsets with a
# probability below 1e-12 are compared in absolute terms (they are round-off around zero).
PROB_RTOL = {np.float64: 1e-6, np.float32: 1e-3}


def _lowrank_eigh_tolerances(features_dtype: Any, n: int, lam: np.ndarray) -> tuple[float, float]:
    """(eigenvalue atol, orthonormality atol) of eigh() against the float64 reference.

    float64 input: 1e-9 of the largest eigenvalue and 1e-10. float32 features: the CPU sums
    their dual Gram from float32 products of at most 512 rows, whose rounding moves every
    eigenvalue by at most gamma_{m+2}(2**-24) * trace (m = min(n, 512); the stated bound of
    csrc/cpu/feature_products.h), and leaves V orthonormal to ~1e-5, as float32 eigenvectors are.
    """
    if features_dtype != np.float32:
        return 1e-9 * float(lam.max()), 1e-10
    m = min(n, 512) + 2
    return m * 2.0**-24 / (1 - m * 2.0**-24) * float(lam.sum()), 1e-5


# n ~ 500 marginal tests: (kind, n, rank, k). The IP-DPP kernel has full rank, so its DPP samples
# have ~n/2 items and cost O(n^3) each: its DPP check runs at n = 100.
LARGE = {
    "lowrank_quality": (500, 30, 10),
    "dense": (500, 40, 15),
    "ipdpp": (500, None, 20),
}
NUM_SAMPLES = 10_000
METHODS = {
    "lowrank_quality": ["sequential", "rejection"],
    "dense": ["sequential", "rejection"],
    "ipdpp": ["spectral"],
}
KIND_METHODS = [(kind, m) for kind in LARGE for m in METHODS[kind]]

# The n ~ 500 kernels and their reference marginals are shared by the tests of both methods
# (a dense eigendecomposition and the reference's O(r^2 k) marginals are the slow parts).
_LARGE_CACHE: dict[tuple[object, ...], tuple[KernelCase, np.ndarray]] = {}


def large_case(device: str, kind: str, n: int, k: int | None) -> tuple[KernelCase, np.ndarray]:
    """(kernel case, reference inclusion probabilities) for the k-DPP, or the DPP if k is None."""
    key = (device, kind, n, k)
    if key not in _LARGE_CACHE:
        case = build_kernel(kind, n, rank=LARGE[kind][1], device=device)
        if k is None:
            pi = ref.dpp_inclusion_probabilities(case.L)
        else:
            pi = ref.k_dpp_inclusion_probabilities(case.L, k)
        _LARGE_CACHE[key] = (case, pi)
    return _LARGE_CACHE[key]


@pytest.mark.emulator_heavy
@pytest.mark.parametrize(("kind", "method"), KIND_METHODS)
def test_k_dpp_frequencies_match_inclusion_probabilities(
    device: str, seed: int, kind: str, method: str
) -> None:
    n, _, k = LARGE[kind]
    case, expected = large_case(device, kind, n, k)
    pi = np.asarray(to_numpy(ipdpp.inclusion_probabilities(case.kernel, k=k)), dtype=np.float64)
    np.testing.assert_allclose(pi, expected, atol=1e-9)
    assert pi.sum() == pytest.approx(k, abs=1e-9)
    samples = to_numpy(ipdpp.sample_k_dpp(case.kernel, k, NUM_SAMPLES, seed=seed, method=method))
    assert_valid_samples(samples, n, k)
    assert_marginals(samples, pi, label=f"k-DPP {case.name} k={k} method={method}")


@pytest.mark.emulator_heavy
@pytest.mark.parametrize(("kind", "method"), KIND_METHODS)
def test_dpp_frequencies_match_inclusion_probabilities(
    device: str, seed: int, kind: str, method: str
) -> None:
    n = LARGE[kind][0] if kind != "ipdpp" else 100
    case, expected = large_case(device, kind, n, None)
    pi = np.asarray(to_numpy(ipdpp.inclusion_probabilities(case.kernel)), dtype=np.float64)
    np.testing.assert_allclose(pi, expected, atol=1e-9)
    num_samples = NUM_SAMPLES if kind != "ipdpp" else 2_000
    samples = to_numpy(ipdpp.sample_dpp(case.kernel, num_samples, seed=seed, method=method))
    assert_valid_samples(samples, n)
    assert_marginals(samples, pi, label=f"DPP {case.name} method={method}")


@pytest.mark.emulator_heavy
@pytest.mark.parametrize("method", ["sequential", "rejection"])
def test_float32_k_dpp_frequencies_match_inclusion_probabilities(
    device: str, seed: int, method: str
) -> None:
    # float32 features keep float32 eigenvectors on a GPU: the samplers must stay exact.
    n, k = 400, 12
    case = build_kernel("lowrank_quality", n, rank=30, dtype=np.float32, device=device)
    expected = ref.k_dpp_inclusion_probabilities(case.L, k)
    samples = to_numpy(ipdpp.sample_k_dpp(case.kernel, k, 4_000, seed=seed, method=method))
    assert_valid_samples(samples, n, k)
    assert_marginals(samples, expected, label=f"k-DPP {case.name} k={k} method={method}")


@pytest.mark.emulator_heavy
def test_sequential_sampler_on_a_large_ground_set(
    on_device: Callable[[Any], Any], seed: int
) -> None:
    # n = 20,000: on a GPU one sample is spread over many thread blocks (the cross-block race
    # and the per-block Gram-Schmidt copies), so a fault favours or starves whole runs of items.
    # With 600 samples an item is expected 0.04 to 0.8 times, too rarely for per-item z-scores
    # (an exact sampler would put ~35 items beyond 5 SE); runs of 200 consecutive items are
    # expected ~50 times each. DPP inclusions are negatively associated, so a run's count varies
    # at most as a sum of independent Bernoulli variables: a conservative z-score.
    B = np.random.default_rng(seed).standard_normal((20_000, 16)).astype(np.float32)
    K = ipdpp.LowRankKernel(on_device(B))
    draws = [
        to_numpy(ipdpp.sample_k_dpp(K, 8, 4, seed=seed, sample_offset=4 * i, method="sequential"))
        for i in range(150)
    ]
    samples = np.concatenate(draws)
    assert_valid_samples(samples, 20_000, 8)
    with on_the_cpu():
        exact = ipdpp.inclusion_probabilities(ipdpp.LowRankKernel(B), 8)
    runs = (-1, 200)
    observed = inclusion_frequencies(samples, 20_000).reshape(runs).sum(axis=1)
    expected = exact.reshape(runs).sum(axis=1)
    variance_bound = (exact * (1.0 - exact)).reshape(runs).sum(axis=1) / len(samples)
    z = np.abs(observed - expected) / np.sqrt(variance_bound)
    assert z.max() <= MARGINAL_Z, f"items {200 * z.argmax()}.. : z = {z.max():.2f}"


@pytest.mark.parametrize(
    ("kind", "n", "rank", "dtype"),
    [
        ("lowrank_quality", 300, 24, np.float32),
        ("lowrank_quality", 300, 24, np.float64),
        # float32 rounding of a rank-deficient dense L adds eigenvalues above the cut-off
        ("dense", 40, 10, np.float64),
    ],
)
def test_eigh_matches_numpy_at_moderate_size(
    device: str, seed: int, kind: str, n: int, rank: int, dtype: Any
) -> None:
    case = build_kernel(kind, n, rank=rank, dtype=dtype, seed=seed, device=device)
    lam, V = (np.asarray(to_numpy(a)) for a in case.kernel.eigh())
    assert lam.size == rank
    expected = np.linalg.eigvalsh(case.L)[-rank:]
    lam_atol, tol = _lowrank_eigh_tolerances(dtype if kind != "dense" else np.float64, n, expected)
    np.testing.assert_allclose(lam, expected, rtol=1e-9, atol=lam_atol)
    tol = max(tol, 1e-10 if V.dtype == np.float64 else 1e-5)
    V = V.astype(np.float64)
    np.testing.assert_allclose(V.T @ V, np.eye(rank), atol=tol)
    np.testing.assert_allclose((V * lam) @ V.T, case.L, atol=tol * 10 * np.abs(case.L).max())


# --- exact utilities on small kernels ----------------------------------------------------------

# name -> (conftest kernel kind, n, rank); as in tests/test_sampling.py ("lowrank_primal" has
# d > n and takes the primal Gram path).
SMALL = {
    "lowrank": ("lowrank", 7, 4),
    "lowrank_quality": ("lowrank_quality", 7, 4),
    "lowrank_primal": ("lowrank_quality", 6, 9),
    "dense": ("dense", 6, 8),
    "ipdpp": ("ipdpp", 8, None),
}


@pytest.mark.parametrize("name", list(SMALL))
def test_inclusion_probabilities_match_reference(
    make_kernel: Callable[..., KernelCase], dtype: Any, name: str
) -> None:
    kind, n, rank = SMALL[name]
    case = make_kernel(kind, n, dtype=dtype, rank=rank)
    atol = EXACT_ATOL[dtype]
    pi = np.asarray(to_numpy(ipdpp.inclusion_probabilities(case.kernel)))
    assert pi.dtype == np.float64 and pi.shape == (n,)
    np.testing.assert_allclose(pi, ref.dpp_inclusion_probabilities(case.L), atol=atol)
    for k in range(0, case.kernel.rank + 1):
        pik = np.asarray(to_numpy(ipdpp.inclusion_probabilities(case.kernel, k=k)))
        expected = ref.k_dpp_inclusion_probabilities_enumerated(case.L, k)
        np.testing.assert_allclose(pik, expected, atol=atol, err_msg=f"k = {k}")
        assert pik.sum() == pytest.approx(k, abs=n * atol)


@pytest.mark.parametrize("name", list(SMALL))
def test_dpp_log_prob_sums_to_one(
    make_kernel: Callable[..., KernelCase], dtype: Any, name: str
) -> None:
    kind, n, rank = SMALL[name]
    case = make_kernel(kind, n, dtype=dtype, rank=rank)
    exact = ref.dpp_subset_probabilities(case.L)
    probs = {Y: math.exp(ipdpp.log_prob(case.kernel, list(Y))) for Y in all_subsets(n)}
    assert sum(probs.values()) == pytest.approx(1.0, abs=10 * EXACT_ATOL[dtype])
    for Y, p in probs.items():
        assert p == pytest.approx(exact[Y], rel=PROB_RTOL[dtype], abs=1e-12), Y


@pytest.mark.parametrize("name", list(SMALL))
def test_k_dpp_log_prob_sums_to_one(
    make_kernel: Callable[..., KernelCase], dtype: Any, name: str
) -> None:
    kind, n, rank = SMALL[name]
    case = make_kernel(kind, n, dtype=dtype, rank=rank)
    for k in range(1, case.kernel.rank + 1):
        exact = ref.k_dpp_subset_probabilities(case.L, k)
        probs = {Y: math.exp(ipdpp.log_prob(case.kernel, Y, k=k)) for Y in all_k_subsets(n, k)}
        assert sum(probs.values()) == pytest.approx(1.0, abs=10 * EXACT_ATOL[dtype]), k
        for Y, p in probs.items():
            assert p == pytest.approx(exact[Y], rel=PROB_RTOL[dtype], abs=1e-12)


def test_log_prob_accepts_arrays_and_any_order(make_kernel: Callable[..., KernelCase]) -> None:
    case = make_kernel("lowrank_quality", 7, rank=4)
    expected = ref.dpp_log_prob(case.L, [1, 4, 6])
    assert ipdpp.log_prob(case.kernel, [6, 1, 4]) == pytest.approx(expected, rel=1e-10)
    assert ipdpp.log_prob(case.kernel, np.array([1, 4, 6])) == pytest.approx(expected, rel=1e-10)
    expected_k = ref.k_dpp_log_prob(case.L, [1, 4, 6])
    assert ipdpp.log_prob(case.kernel, (4, 6, 1), k=3) == pytest.approx(expected_k, rel=1e-10)
    # More items than the rank: probability zero (-inf, or the log of round-off).
    assert math.exp(ipdpp.log_prob(case.kernel, [0, 1, 2, 3, 4])) < 1e-12


@pytest.mark.parametrize("name", list(SMALL))
def test_eigh_matches_reference(
    make_kernel: Callable[..., KernelCase], dtype: Any, name: str
) -> None:
    # The spectrum every exact utility and sampler starts from: truncated, ascending, orthonormal,
    # cached, and reconstructing the reference L.
    # On a GPU, eigh() returns device arrays and the eigenvectors keep the input's dtype (float32
    # eigenvectors are orthonormal to float32 rounding); on the CPU they are float64 numpy arrays.
    kind, n, rank = SMALL[name]
    case = make_kernel(kind, n, dtype=dtype, rank=rank)
    first = case.kernel.eigh()
    lam, V = (np.asarray(to_numpy(a)) for a in first)
    lam_ref, _ = ref.eigh(case.L, rtol=ipdpp.EIGENVALUE_RTOL)
    assert case.kernel.n == n and case.kernel.rank == lam.size == lam_ref.size
    assert lam.dtype == np.float64 and V.shape == (n, lam.size)
    assert np.all(np.diff(lam) >= 0) and np.all(lam > 0)
    lowrank = kind.startswith("lowrank")
    lam_atol, tol = _lowrank_eigh_tolerances(dtype if lowrank else np.float64, n, lam_ref)
    float32_features = lowrank and dtype == np.float32
    np.testing.assert_allclose(lam, lam_ref, rtol=1e-9, atol=lam_atol if float32_features else 0.0)
    tol = max(tol, 1e-10 if V.dtype == np.float64 else 1e-5)
    V = V.astype(np.float64)
    np.testing.assert_allclose(V.T @ V, np.eye(lam.size), atol=tol)
    np.testing.assert_allclose((V * lam) @ V.T, case.L, atol=tol * 10 * np.abs(case.L).max())
    again = case.kernel.eigh()
    if hasattr(first[1], "data_ptr") and first[1].is_cuda:  # device views of one cached buffer
        assert again[1].data_ptr() == first[1].data_ptr(), "eigh() is not cached"
    else:
        cached = np.shares_memory(np.asarray(to_numpy(again[1])), np.asarray(to_numpy(first[1])))
        assert cached, "eigh() is not cached"


def test_ipdpp_kernel_attributes() -> None:
    p = np.random.default_rng(1).beta(8.0, 2.0, 9)
    for alpha, expected in [("paper", 1 / 9), ("code", 1 / 81), (0.05, 0.05)]:
        K = ipdpp.IPDPPKernel(p, alpha=alpha)
        assert K.alpha == pytest.approx(expected, rel=1e-15)
        np.testing.assert_allclose(K.dense(), ref.dense_from_ipdpp(p, alpha), atol=1e-15)
        np.testing.assert_allclose(K.diagonal, 1 - expected * p * p.sum(), atol=1e-15)
        np.testing.assert_array_equal(K.p, p)
