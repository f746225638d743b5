"""The O(N^2) eigensolver of diagonal-plus-rank-one matrices (csrc/cpu/diagonal_rank_one_eigen).

``S = diag(d) + z z^T`` through its secular equation, with deflation and the Gu-Eisenstat
eigenvector correction. Judged against LAPACK (``numpy.linalg.eigh``) and, for small n, against
34-digit eigenvalues from mpmath, on random and adversarial spectra: clustered and repeated
``d``, ``d_i = 0``, ``z_i = 0`` (``p_i = 0``), tiny and huge magnitudes, n = 1 and 2.
``IPDPPKernel.eigh`` is built on it.
"""

from __future__ import annotations

from typing import Callable

import mpmath
import numpy as np
import pytest

import ipdpp
from ipdpp import _core

EPS = float(np.finfo(np.float64).eps)

# Bounds, in units of eps * |S|_2 (eigenvalues, residuals) or eps (orthogonality):
# - against exact eigenvalues: deflation changes S by at most 8 eps (max|d| + |z|^2) <= 16 eps|S|,
#   and a converged root is accurate to a few ulps of |S| beyond that;
# - against LAPACK: LAPACK's own error grows like n eps |S| (dsyevd's bound is p(n) eps |S|);
#   agreement within 2 sqrt(n) + 16 ulps covers both solvers' errors with room;
# - orthonormality and residual: the brief's O(n eps), floored for tiny n.
EXACT_ULPS = 16.0


def lapack_ulps(n: int) -> float:
    return 2.0 * np.sqrt(n) + 16.0


def orthogonality_eps(n: int) -> float:
    return max(float(n), 16.0)


def _random(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    return rng.random(n), rng.standard_normal(n)


def _clustered(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    return 0.5 + 1e-3 * np.sort(rng.random(n)), rng.random(n)


def _repeated(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.repeat(rng.random(-(-n // 8)), 8)[:n], rng.random(n)


def _zero_d(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    d = rng.random(n)
    d[: n // 3] = 0.0
    return d, rng.random(n)


def _zero_z(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    z = rng.random(n)
    z[::3] = 0.0
    return rng.random(n), z


def _repeated_and_zero_z(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    d, z = _repeated(rng, n)
    z[::5] = 0.0
    return d, z


def _all_equal(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.full(n, 0.7), np.full(n, rng.random())


def _all_d_zero(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(n), rng.random(n)


def _z_zero(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    return rng.random(n), np.zeros(n)


def _near_pairs(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    d = np.sort(rng.random(n))
    d[1::2] = d[::2][: n // 2] + 1e-14  # pairs within deflation range of each other
    return d, rng.random(n)


def _barely_separated(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    d = 0.5 + 1e-12 * np.arange(n)  # poles a few thousand ulps apart: not deflated
    return d, rng.random(n)


def _tiny_z(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.linspace(0.0, 1.0, n), 1e-9 * rng.random(n)


def _graded(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.geomspace(1e-12, 1.0, n), rng.random(n)


def _dominant_z(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    return 1e-6 * rng.random(n), 1e3 * rng.random(n)


def _huge(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    return 1e200 * rng.random(n), 1e100 * rng.standard_normal(n)


def _tiny(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    return 1e-200 * rng.random(n), 1e-100 * rng.standard_normal(n)


def _ipdpp(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    p = rng.beta(8.0, 2.0, n)
    alpha = 1.0 / n
    return 1.0 - alpha * p * p.sum(), np.sqrt(alpha) * p


CASES: dict[str, Callable[[np.random.Generator, int], tuple[np.ndarray, np.ndarray]]] = {
    "random": _random,
    "clustered": _clustered,
    "repeated": _repeated,
    "d_zero": _zero_d,
    "z_zero": _zero_z,
    "repeated_and_z_zero": _repeated_and_zero_z,
    "all_equal": _all_equal,
    "all_d_zero": _all_d_zero,
    "no_coupling": _z_zero,
    "near_pairs": _near_pairs,
    "barely_separated": _barely_separated,
    "tiny_z": _tiny_z,
    "graded": _graded,
    "dominant_z": _dominant_z,
    "huge": _huge,
    "tiny": _tiny,
    "ipdpp": _ipdpp,
}
SIZES = [1, 2, 3, 17, 300]


def _dense(d: np.ndarray, z: np.ndarray) -> np.ndarray:
    return np.diag(d) + np.outer(z, z)


def _norm(d: np.ndarray, z: np.ndarray) -> float:
    return float(np.abs(d).max() + z @ z) if d.size else 1.0


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("case", sorted(CASES))
def test_against_lapack(case: str, n: int) -> None:
    d, z = CASES[case](np.random.default_rng([n, len(case)]), n)
    w, V = _core.diagonal_rank_one_eigh(d, z)
    S = _dense(d, z)
    norm = _norm(d, z)  # >= |S|_2 / 2 for PSD-like S; an upper bound otherwise
    assert np.all(np.diff(w) >= 0.0), "eigenvalues must come back ascending"
    lapack = np.linalg.eigvalsh(S)
    assert np.max(np.abs(w - lapack)) <= lapack_ulps(n) * EPS * norm
    assert np.max(np.abs(V.T @ V - np.eye(n))) <= orthogonality_eps(n) * EPS
    residual = (S / norm) @ V - V * (w / norm)  # scaled first: |S|^2 can overflow
    assert np.max(np.linalg.norm(residual, axis=0)) <= orthogonality_eps(n) * EPS


@pytest.mark.parametrize("case", sorted(CASES))
def test_against_exact_eigenvalues(case: str) -> None:
    """34-digit eigenvalues of the same S (its entries z_i z_j taken exactly)."""
    n = 20
    d, z = CASES[case](np.random.default_rng([7, len(case)]), n)
    w, _ = _core.diagonal_rank_one_eigh(d, z)
    with mpmath.workdps(34):
        S = mpmath.matrix(n, n)
        for i in range(n):
            for j in range(n):
                S[i, j] = mpmath.mpf(z[i]) * mpmath.mpf(z[j])
            S[i, i] += mpmath.mpf(d[i])
        exact = sorted(mpmath.eigsy(S, eigvals_only=True))
        error = max(abs(mpmath.mpf(a) - b) for a, b in zip(w, exact))
    assert float(error) <= EXACT_ULPS * EPS * _norm(d, z)


def test_eigenvalue_accuracy_beats_its_bound_on_clusters() -> None:
    """Roots relative to the nearer pole: tight clusters keep a fraction-of-an-ulp accuracy."""
    n = 20
    d = 0.5 + 1e-10 * np.arange(n)
    z = np.full(n, 1e-3)
    w, _ = _core.diagonal_rank_one_eigh(d, z)
    with mpmath.workdps(40):
        poles = [mpmath.mpf(a) for a in d]
        weights = [mpmath.mpf(b) ** 2 for b in z]

        def secular(x: mpmath.mpf) -> mpmath.mpf:
            return 1 + mpmath.fsum(w_s / (d_s - x) for d_s, w_s in zip(poles, weights))

        inside = mpmath.mpf(1e-30)
        for j in range(n - 1):
            bracket = (poles[j] + inside, poles[j + 1] - inside)
            root = mpmath.findroot(secular, bracket, solver="anderson")
            assert abs(mpmath.mpf(w[j]) - root) <= 2 * EPS * abs(root)


def test_bad_input_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="finite"):
        _core.diagonal_rank_one_eigh(np.array([0.0, np.nan]), np.ones(2))
    with pytest.raises(ValueError, match="length"):
        _core.diagonal_rank_one_eigh(np.ones(3), np.ones(2))


@pytest.mark.parametrize("alpha", ["paper", "code", 1e-4])
@pytest.mark.parametrize("n", [1, 2, 40, 400])
def test_ipdpp_kernel_eigh_matches_lapack(n: int, alpha: str | float) -> None:
    rng = np.random.default_rng(n)
    p = rng.beta(8.0, 2.0, n)
    p[:: max(n // 5, 2)] = 0.0  # p_i = 0: decoupled items, eigenvalue 1
    if n >= 40:
        p[1:9] = p[1]  # a repeated p: a repeated eigenvalue
    kernel = ipdpp.IPDPPKernel(p, alpha=alpha)
    values, vectors = kernel.eigh()
    S = kernel.dense()
    lapack = np.linalg.eigvalsh(S)
    kept = lapack[lapack > ipdpp.EIGENVALUE_RTOL * lapack[-1]]
    assert values.shape == kept.shape and vectors.shape == (n, kept.size)
    norm = float(lapack[-1])
    assert np.max(np.abs(values - kept)) <= lapack_ulps(n) * EPS * norm
    assert np.max(np.abs(vectors.T @ vectors - np.eye(kept.size))) <= orthogonality_eps(n) * EPS
    residual = np.linalg.norm(S @ vectors - vectors * values, axis=0)
    assert np.max(residual) <= orthogonality_eps(n) * EPS * norm


def test_ipdpp_kernel_rank_counts_zero_eigenvalues() -> None:
    """All p_i = 1 with alpha = 1/N: S = 11^T / N, rank one (N - 1 eigenvalues are exactly 0)."""
    kernel = ipdpp.IPDPPKernel(np.ones(30))
    values, vectors = kernel.eigh()
    assert kernel.rank == 1 == kernel.structural_rank()
    np.testing.assert_allclose(values, [1.0], rtol=4 * EPS)
    np.testing.assert_allclose(np.abs(vectors[:, 0]), np.full(30, 30**-0.5), rtol=8 * EPS)
