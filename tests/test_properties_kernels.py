"""Property tests of the kernel constructors and their ``eigh()`` / ``rank``.

Random shapes (including empty and single-item ones), dtypes, NaN/Inf, magnitudes from 1e-300 to
1e300, non-contiguous, reversed, read-only and memory-mapped arrays, torch tensors and nested
lists. The invariant is the one of ``_properties.expect``; a kernel that is built must have a
well-formed, consistent eigendecomposition.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from _properties import SETTINGS, ArrayInput, array_input, expect, present
from hypothesis import given
from hypothesis import strategies as st

import ipdpp

#: Shapes of array arguments: mostly the right number of axes, with lengths 0 to 6.
AXIS = st.integers(0, 6)


def _shape(ndim: int) -> st.SearchStrategy[tuple[int, ...]]:
    return st.tuples(*([AXIS] * ndim))


def _check_eigh(
    kernel: Any, n: int, max_rank: int, L: np.ndarray | None, dropped: float = 0.0
) -> None:
    """eigh() is (rank,) positive ascending, (n, rank) orthonormal, and reproduces L up to the
    dropped eigenvalues (at most ``dropped`` times the largest in magnitude)."""
    rank = kernel.rank
    assert isinstance(rank, int) and 0 <= rank <= max_rank, (rank, max_rank)
    values, vectors = kernel.eigh()
    for array, shape in ((values, (rank,)), (vectors, (n, rank))):
        assert isinstance(array, np.ndarray) and array.dtype == np.float64, type(array)
        assert array.shape == shape and not array.flags.writeable, (array.shape, shape)
        assert np.isfinite(array).all()
    assert np.all(values > 0) and np.all(np.diff(values) >= 0), values
    np.testing.assert_allclose(vectors.T @ vectors, np.eye(rank), atol=1e-6)
    if L is not None and rank:
        scale = max(float(np.abs(L).max()), float(values[-1]))
        rebuilt = (vectors * values) @ vectors.T
        np.testing.assert_allclose(rebuilt, L, atol=(1e-6 + dropped) * scale, rtol=0)


def _ordinary(x: ArrayInput) -> bool:
    """Whether the values' magnitudes leave every Gram product well inside float range."""
    assert x.values is not None
    peak = float(np.abs(x.values).max()) if x.values.size else 0.0
    return peak < 1e100 and (peak == 0 or peak > 1e-100)


@st.composite
def _quality(draw: st.DrawFn, n: int) -> ArrayInput | None:
    if draw(st.booleans()):
        return None
    shape = draw(st.sampled_from([(n,), (n,), (n,), (n + 1,), (n, 1), ()]))
    return draw(array_input(shape, nonnegative=draw(st.integers(0, 3)) > 0))


@SETTINGS
@given(data=st.data())
def test_lowrank_kernel(data: st.DataObject) -> None:
    shape = data.draw(st.sampled_from([2, 2, 2, 2, 1, 3, 0]).flatmap(_shape), label="shape")
    features = data.draw(array_input(shape), label="features")
    n = shape[0] if len(shape) == 2 else 1
    quality = data.draw(_quality(n), label="quality")
    bad = []
    if not (features.real and len(shape) == 2 and np.prod(shape) > 0 and features.finite):
        bad.append("features")
    if quality is not None and not (
        quality.real and quality.shape == (n,) and quality.finite and np.all(quality.values >= 0)
    ):
        bad.append("quality")
    maybe = not bad and not (_ordinary(features) and (quality is None or _ordinary(quality)))

    def build() -> Any:
        return ipdpp.LowRankKernel(features.obj, None if quality is None else quality.obj)

    kernel = expect(build, bad, may_fail=["features", "quality"] if maybe else [])
    if kernel is None:
        return
    assert kernel.n == shape[0] and kernel.d == shape[1]
    # The eigendecomposition runs on first use, so an overflow shows there, named as well.
    if expect(lambda: kernel.rank, [], may_fail=["features", "quality"] if maybe else []) is None:
        return
    B = features.values
    if quality is not None:
        B = quality.values[:, None] * B
    _check_eigh(kernel, shape[0], min(shape), None if maybe else B @ B.T)


def _symmetric_matrix(draw: st.DrawFn, n: int) -> np.ndarray:
    """A symmetric matrix: PSD of random rank, indefinite, or PSD up to a tiny perturbation."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    A = rng.standard_normal((n, draw(st.integers(0, n + 1))))
    L = A @ A.T
    form = draw(st.sampled_from(["psd", "psd", "psd", "indefinite", "nearly", "asymmetric"]))
    if form == "indefinite" and n:
        L -= np.eye(n) * draw(st.sampled_from([1e-3, 1.0, 100.0]))
    elif form == "nearly" and n:
        L[0, 0] -= 1e-14 * max(1.0, float(np.abs(L).max()))
    L = (L + L.T) / 2
    if form == "asymmetric" and n > 1:
        L[0, 1] += draw(st.sampled_from([1e-15, 1e-6, 1.0]))
    return L * draw(st.sampled_from([0.0, 1e-300, 1e-20, 1.0, 1e20, 1e150, 1e300]))


def _dense_tolerance(L_obj: Any, values: np.ndarray) -> float:
    """The PSD and symmetry tolerance DenseKernel documents for the input's dtype."""
    n = values.shape[0]
    dtype = getattr(L_obj, "dtype", np.float64)
    eps = float(np.finfo(np.float64).eps)
    if "bfloat16" in str(dtype):
        eps = 2.0**-7
    elif "float16" in str(dtype):
        eps = float(np.finfo(np.float16).eps)
    elif "float32" in str(dtype):
        eps = float(np.finfo(np.float32).eps)
    if eps <= float(np.finfo(np.float64).eps):
        return float(ipdpp.EIGENVALUE_RTOL)
    return max(float(ipdpp.EIGENVALUE_RTOL), n * eps)


@SETTINGS
@given(data=st.data())
def test_dense_kernel(data: st.DataObject) -> None:
    form = data.draw(st.sampled_from(["square"] * 6 + ["rectangular", "1d", "3d"]), label="form")
    n = data.draw(AXIS, label="n")
    if form == "square":
        L = data.draw(present(_symmetric_matrix(data.draw, n)), label="L")
    else:
        shape = {"rectangular": (n, n + 1), "1d": (n,), "3d": (n, n, 1)}[form]
        L = data.draw(array_input(shape), label="L")
    bad, maybe, tol = [], False, 0.0
    if not (L.real and form == "square" and n > 0 and L.finite):
        bad.append("L")
    else:
        values = L.values
        peak = float(np.abs(values).max())
        tol = _dense_tolerance(L.obj, values)
        asym = float(np.abs(values - values.T).max()) / peak if peak else 0.0
        eigenvalues = np.linalg.eigvalsh(values / peak) if peak else np.zeros(n)
        low = float(eigenvalues.min()) / max(float(np.abs(eigenvalues).max()), 1e-300)
        if asym > 2e-10 and asym > 2 * tol or (peak and low < -2 * tol):
            bad.append("L")
        maybe = (1e-10 < asym <= 2 * tol) or -2 * tol <= low < -tol / 2 or not _ordinary(L)
    kernel = expect(lambda: ipdpp.DenseKernel(L.obj), bad, may_fail=["L"] if maybe else [])
    if kernel is None:
        return
    assert kernel.n == n
    _check_eigh(kernel, n, n, None if maybe else L.values, dropped=tol)


#: Values of ``alpha``: the two rules, positive numbers of every size, and wrong ones.
ALPHAS: tuple[Any, ...] = (
    "paper",
    "code",
    "Paper",
    "",
    1e-6,
    0.01,
    0.2,
    1.0,
    10.0,
    1,
    np.float32(0.05),
    np.int64(1),
    0.0,
    -0.1,
    float("nan"),
    float("inf"),
    True,
    None,
    1j,
    [0.1],
)


def _alpha_problem(alpha: Any, p: np.ndarray) -> tuple[bool, bool]:
    """(bad, borderline) for ``alpha`` with valid probabilities ``p``."""
    if isinstance(alpha, str):
        return alpha not in ("paper", "code"), False
    if isinstance(alpha, (bool, np.bool_)) or not isinstance(alpha, (int, float, np.number)):
        return True, False
    if isinstance(alpha, complex) or not (np.isfinite(alpha) and alpha > 0):
        return True, False
    lowest = float((1.0 - float(alpha) * p * p.sum()).min())
    return lowest < -1e-9, abs(lowest) <= 1e-9


@SETTINGS
@given(data=st.data())
def test_ipdpp_kernel(data: st.DataObject) -> None:
    shape = data.draw(st.sampled_from([1, 1, 1, 1, 0, 2]).flatmap(_shape), label="shape")
    p = data.draw(array_input(shape, unit=True), label="p")
    alpha = data.draw(st.sampled_from(ALPHAS), label="alpha")
    bad, maybe = [], False
    p_ok = p.real and len(shape) == 1 and shape[0] > 0 and p.finite
    if not (p_ok and 0 <= p.values.min() and p.values.max() <= 1):
        bad.append("p")
    if not bad:
        alpha_bad, maybe = _alpha_problem(alpha, p.values)
        bad += ["alpha"] if alpha_bad else []
    elif isinstance(alpha, str) and alpha not in ("paper", "code"):
        bad.append("alpha")
    kernel = expect(lambda: ipdpp.IPDPPKernel(p.obj, alpha), bad, may_fail=["alpha"] * maybe)
    if kernel is None:
        return
    N = shape[0]
    assert kernel.n == N and isinstance(kernel.alpha, float) and kernel.alpha > 0
    expected_alpha = {"paper": 1.0 / N, "code": 1.0 / N**2}.get(alpha, alpha)
    assert kernel.alpha == float(expected_alpha)
    assert kernel.diagonal.shape == (N,) and np.all(kernel.diagonal >= 0)
    S = kernel.dense()
    assert S.shape == (N, N) and np.array_equal(S, S.T)
    structural = kernel.structural_rank()
    assert isinstance(structural, int) and 0 <= structural <= N
    if np.all(1.0 - kernel.alpha * p.values * p.values.sum() >= 0):
        np.testing.assert_allclose(S.sum(axis=1), 1.0, atol=1e-12)
    _check_eigh(kernel, N, N, S)
