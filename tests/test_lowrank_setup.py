"""The low-rank kernel's setup products (csrc/cpu/feature_products.h): the float dual Gram against
the double one, its fall-back to double, the leverage scores computed from the features against
the row norms of V (full rank and rank-deficient), and results independent of the thread count.
"""

from __future__ import annotations

import numpy as np
import pytest
from _stats import assert_subset_distribution

import ipdpp
from ipdpp import _core
from ipdpp import _reference as ref

SEED = 20240613
RTOL = ipdpp.EIGENVALUE_RTOL
U32 = 2.0**-24
# Rows per float ssyrk block (kFloatGramRows) and per Gram stripe (kGramStripeRows).
FLOAT_GRAM_ROWS = 512
STRIPE_ROWS = 16384


def _gamma(m: float, u: float) -> float:
    return m * u / (1 - m * u)


def _scaled_features(n: int, d: int, seed: int = SEED) -> np.ndarray:
    """Gaussian features with column scales j^-1/2 / sqrt(n): eigenvalues in about (1/d, 1]."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)) * (np.arange(1, d + 1) ** -0.5) / np.sqrt(n)


def _spectrum(features: np.ndarray, threads: int = 0, quality: np.ndarray | None = None):
    return _core.lowrank_spectrum(features, quality, RTOL, threads=threads)


def _kept_basis(features: np.ndarray, quality: np.ndarray | None = None) -> np.ndarray:
    """W = U_kept Lambda^{-1/2} (d, rank) of the double dual Gram, in numpy."""
    X = features.astype(np.float64)
    if quality is not None:
        X = X * quality[:, None]
    lam, u = np.linalg.eigh(X.T @ X)
    keep = lam > RTOL * lam[-1]
    return np.ascontiguousarray(u[:, keep] / np.sqrt(lam[keep]))


def _row_norms_exact(features: np.ndarray, W: np.ndarray, quality: np.ndarray | None) -> np.ndarray:
    """||q_i B_i W||^2 in extended precision: the reference the rounded-up scores must bound."""
    X = features.astype(np.longdouble)
    if quality is not None:
        X = X * quality.astype(np.longdouble)[:, None]
    V = X @ W.astype(np.longdouble)
    return np.einsum("ij,ij->i", V, V)


# --- the float dual Gram ---------------------------------------------------------------------


def test_float32_gram_matches_float64_within_its_bound() -> None:
    # Three stripes of float ssyrk blocks. The float64 reference decomposes the same (float32)
    # values, so the difference is the float products' rounding alone.
    B = _scaled_features(3 * STRIPE_ROWS + 123, 24).astype(np.float32)
    s32, s64 = _spectrum(B), _spectrum(B.astype(np.float64))
    lam32, lam64 = np.asarray(s32.eigenvalues), np.asarray(s64.eigenvalues)
    assert s32.rank == s64.rank == 24
    assert not np.array_equal(lam32, lam64), "the float products were not used"
    # The deterministic bound of feature_products.h: |d lambda| <= gamma_{m+2} trace(C).
    blocks = -(-B.shape[0] // FLOAT_GRAM_ROWS)
    bound = (_gamma(FLOAT_GRAM_ROWS + 2, U32) + _gamma(blocks + 1, 2.0**-53)) * lam64.sum()
    error = np.abs(lam32 - lam64)
    assert error.max() <= bound
    # The stated typical accuracy: independent roundings stay near u32 of the largest eigenvalue.
    assert error.max() <= 1e-6 * lam64[-1]
    np.testing.assert_allclose(lam32, lam64, rtol=1e-5)
    # Eigenvectors (well-separated eigenvalues here) agree up to sign.
    V32, V64 = np.asarray(s32.eigenvectors), np.asarray(s64.eigenvectors)
    cosines = np.abs(np.einsum("ij,ij->j", V32, V64))
    assert cosines.min() >= 1 - 1e-5


def test_float32_gram_with_quality_matches_float64() -> None:
    B = _scaled_features(STRIPE_ROWS + 77, 16).astype(np.float32)
    q = np.random.default_rng(SEED).uniform(0.5, 2.0, B.shape[0])
    lam32 = np.asarray(_spectrum(B, quality=q).eigenvalues)
    lam64 = np.asarray(_spectrum(B.astype(np.float64), quality=q).eigenvalues)
    assert not np.array_equal(lam32, lam64)
    np.testing.assert_allclose(lam32, lam64, rtol=1e-5, atol=1e-6 * lam64[-1])


@pytest.mark.parametrize("case", ["wide spectrum", "rank deficient", "float overflow"])
def test_float32_gram_falls_back_to_double(case: str) -> None:
    # Where the float Gram's error bound reaches its small eigenvalues (or its products overflow
    # float), the Gram is recomputed from the features widened to double: the same calls on the
    # same values as for float64 input, so the same bits, and in particular the same rank.
    rng = np.random.default_rng(SEED)
    if case == "wide spectrum":
        Q = np.linalg.qr(rng.standard_normal((3000, 7)))[0]
        B = (Q * np.sqrt(np.logspace(-6, 6, 7))).astype(np.float32)
    elif case == "rank deficient":
        B = (rng.standard_normal((3000, 5)) @ rng.standard_normal((5, 12))).astype(np.float32)
    else:
        B = (rng.standard_normal((3000, 6)) * 1e20).astype(np.float32)  # B^T B ~ 1e43
    s32, s64 = _spectrum(B), _spectrum(B.astype(np.float64))
    assert s32.rank == s64.rank
    assert np.array_equal(np.asarray(s32.eigenvalues), np.asarray(s64.eigenvalues))
    assert np.array_equal(np.asarray(s32.eigenvectors), np.asarray(s64.eigenvectors))
    if case == "rank deficient":
        assert s32.rank == 5


@pytest.mark.parametrize("method", ["sequential", "rejection"])
def test_float32_setup_samples_the_exact_law(method: str) -> None:
    # A float32 kernel whose Gram takes the float products; the law is that of the float64
    # kernel on the same values, at the reach of 20,000 samples.
    rng = np.random.default_rng(SEED)
    B = (rng.standard_normal((8, 4)) * [1.0, 0.8, 0.6, 0.5]).astype(np.float32)
    K = ipdpp.LowRankKernel(B)
    lam64 = np.asarray(_spectrum(B.astype(np.float64)).eigenvalues)
    assert not np.array_equal(np.asarray(K.eigh()[0]), lam64), "the float products were not used"
    k = 2
    samples = ipdpp.sample_k_dpp(K, k, 20_000, seed=SEED, method=method)
    L = ref.dense_from_lowrank(B.astype(np.float64))
    assert_subset_distribution(
        samples, ref.k_dpp_subset_probabilities(L, k), label=f"float32 setup, {method}"
    )


# --- leverage scores from the features -------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", ["full rank", "rank deficient", "quality"])
def test_leverage_bounds_the_row_norms_of_v(dtype: type, shape: str) -> None:
    rng = np.random.default_rng(SEED)
    n, d = 5000, 16
    quality = None
    if shape == "rank deficient":  # rank 6 of 16: W is 16 x 6, R a trapezoid
        B = rng.standard_normal((n, 6)) @ rng.standard_normal((6, d)) / np.sqrt(n)
    else:
        B = _scaled_features(n, d)
    if shape == "quality":
        quality = rng.uniform(0.0, 3.0, n)
        quality[::7] = 0.0
    B = B.astype(dtype)
    W = _kept_basis(B, quality)
    assert W.shape[1] == (6 if shape == "rank deficient" else d)
    exact = _row_norms_exact(B, W, quality)
    lev = _core.leverage_from_features(B, quality, W, 2)
    assert lev.shape == (n,) and lev.dtype == np.float64
    # Rounded up: never below the exact score (the rejection sampler's acceptance ratio <= 1),
    # and only by the stated bound (at most 1.6 % for any float score, far less on average).
    assert np.all(lev >= exact)
    # Well-conditioned W: the product runs in float for either dtype.
    excess = (lev - exact) / np.maximum(exact, np.finfo(np.float64).tiny)
    assert excess[exact > 0].max() <= 2.0**-6
    assert W.shape[1] <= lev.sum() <= W.shape[1] * (1 + 1e-3)
    if quality is not None:
        assert np.all(lev[quality == 0] == 0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("quality", [False, True])
def test_leverage_bounds_hold_past_the_vectorised_norm_chunks(dtype: type, quality: bool) -> None:
    # The row norms are summed in chunks of 32 entries plus a tail: d = 70 (two chunks and 6)
    # and rank 37 (one chunk and 5), in the copy-and-norm pass of float features read in place
    # and in the pass over converted or scaled rows.
    rng = np.random.default_rng(SEED + 2)
    n, d = 3000, 70
    B = (rng.standard_normal((n, 37)) @ rng.standard_normal((37, d)) / np.sqrt(n)).astype(dtype)
    q = rng.uniform(0.5, 2.0, n) if quality else None
    W = _kept_basis(B, q)
    assert W.shape[1] == 37
    exact = _row_norms_exact(B, W, q)
    lev = _core.leverage_from_features(B, q, W, 1)
    assert np.all(lev >= exact)
    assert ((lev - exact) / exact).max() <= 2.0**-6
    assert 37 <= lev.sum() <= 37 * (1 + 1e-3)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_leverage_of_a_wide_spectrum_is_computed_in_double(dtype: type) -> None:
    # Eigenvalues over 1e-9 .. 1: kappa_W = sqrt(sum lambda_max / lambda) ~ 3e4 exceeds what a
    # float product may carry (gamma_{d+4}(2^-24) kappa_W > 2^-7), so the scores come from double
    # products and exceed the exact ones by double rounding only (about 2 gamma_{4 d^2}(2^-53)
    # kappa_W ~ 2e-9 relative at most).
    rng = np.random.default_rng(SEED)
    Q = np.linalg.qr(rng.standard_normal((3000, 8)))[0]
    B = (Q * np.sqrt(np.logspace(-9, 0, 8))).astype(dtype)
    W = _kept_basis(B)
    exact = _row_norms_exact(B, W, None)
    lev = _core.leverage_from_features(B, None, W, 1)
    assert np.all(lev >= exact)
    assert ((lev - exact) / exact).max() <= 1e-8


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_leverage_equals_the_row_norms_of_the_stored_eigenvectors(dtype: type) -> None:
    # The spectrum's own V (rank-deficient features, so rtol drops eigenvalues): its row norms are
    # the leverage scores of the kept eigenspace, whichever basis of it W spans.
    rng = np.random.default_rng(SEED + 1)
    B = (rng.standard_normal((4000, 4)) @ rng.standard_normal((4, 10))).astype(dtype)
    s = _spectrum(B)
    V = np.asarray(s.eigenvectors)
    assert s.rank == 4
    lev = _core.leverage_from_features(B, None, _kept_basis(B), 1)
    norms = np.einsum("ij,ij->i", V, V)
    # Float products rounded up by their error bound; V's own rows carry double rounding.
    assert np.all(lev >= norms * (1 - 1e-9))
    assert np.all(lev <= norms * (1 + 2.0**-6))
    assert np.mean(lev / norms - 1) <= 1e-4


# --- thread independence ---------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_setup_does_not_depend_on_the_thread_count(dtype: type) -> None:
    # Five Gram stripes (more than one round at some thread counts) and many leverage tasks: the
    # partition is fixed, so every thread count gives the same bits.
    B = _scaled_features(5 * STRIPE_ROWS + 5, 8).astype(dtype)
    q = np.random.default_rng(SEED).uniform(0.5, 1.5, B.shape[0])
    spectra = [_spectrum(B, threads, q) for threads in (1, 2, 3)]
    for s in spectra[1:]:
        assert np.array_equal(np.asarray(s.eigenvalues), np.asarray(spectra[0].eigenvalues))
        assert np.array_equal(np.asarray(s.eigenvectors), np.asarray(spectra[0].eigenvectors))
    W = _kept_basis(B, q)
    levs = [_core.leverage_from_features(B, q, W, threads) for threads in (1, 2, 3)]
    assert all(np.array_equal(lev, levs[0]) for lev in levs[1:])
    gram = [_core.dual_gram_eigenvalues(B, threads) for threads in (1, 2)]
    assert np.array_equal(gram[0], gram[1])
    # Through the public API: a fresh kernel per thread count, the same samples.
    draws = [
        ipdpp.sample_k_dpp(ipdpp.LowRankKernel(B, q), 3, 4, seed=SEED, threads=threads)
        for threads in (1, 2)
    ]
    assert np.array_equal(draws[0], draws[1])


# --- the input check -------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_features_check_finds_a_non_finite_value_anywhere(dtype: type, bad: float) -> None:
    # Over 2^20 values, which the one-pass check reads in blocks of 2^20: a bad value first, on
    # either side of a block boundary and last. The extreme finite values (largest, subnormal,
    # negative zero) pass.
    info = np.finfo(dtype)
    values = np.array([info.max, -info.max, info.smallest_subnormal, -0.0], dtype=dtype)
    X = np.resize(values, 3 * 2**20 + 6)
    assert _core.all_finite(X)
    ipdpp.LowRankKernel(X.reshape(-1, 2))
    for i in (0, 2**20 - 1, 2**20, X.size - 1):
        Y = X.copy()
        Y[i] = bad
        assert not _core.all_finite(Y)
        with pytest.raises(ValueError, match="^features must not contain NaN or Inf"):
            ipdpp.LowRankKernel(Y.reshape(-1, 2))
