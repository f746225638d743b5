"""Every bad input raises ValueError / TypeError with a message that names the argument.

Each case states the exception type and a regular expression the message must match (at least the
argument's name), and runs on every device with the same expectation: one message per condition.
None of them may crash the interpreter: they run in this process.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pytest

import ipdpp

RNG = np.random.default_rng(7)
B = RNG.standard_normal((6, 3))
L_GOOD = B @ B.T + np.eye(6)
P_GOOD = RNG.uniform(0.1, 0.9, 6)
Device = Callable[[Any], Any]


def _with(array: np.ndarray, index: tuple[int, ...], value: float) -> np.ndarray:
    out = array.copy()
    out[index] = value
    return out


def _asymmetric() -> np.ndarray:
    L = L_GOOD.copy()
    L[0, 1] += 0.5
    return L


def _indefinite() -> np.ndarray:
    return np.diag([1.0, 2.0, -1.0])


# (id, constructor call, exception type, message pattern)
KERNEL_CASES: list[tuple[str, Callable[[Device], Any], type[Exception], str]] = [
    (
        "features-nan",
        lambda dev: ipdpp.LowRankKernel(dev(_with(B, (2, 1), np.nan))),
        ValueError,
        "features.*NaN",
    ),
    (
        "features-inf",
        lambda dev: ipdpp.LowRankKernel(dev(_with(B, (0, 0), np.inf))),
        ValueError,
        "features.*Inf",
    ),
    (
        "features-neg-inf",
        lambda dev: ipdpp.LowRankKernel(dev(_with(B, (5, 2), -np.inf))),
        ValueError,
        "features",
    ),
    (
        "features-1d",
        lambda dev: ipdpp.LowRankKernel(dev(B[:, 0].copy())),
        ValueError,
        r"features.*\(n, d\)",
    ),
    ("features-3d", lambda dev: ipdpp.LowRankKernel(dev(B[None])), ValueError, "features"),
    ("features-0d", lambda dev: ipdpp.LowRankKernel(dev(np.float64(1.0))), ValueError, "features"),
    (
        "features-empty",
        lambda dev: ipdpp.LowRankKernel(dev(np.zeros((0, 3)))),
        ValueError,
        "features",
    ),
    (
        "features-int",
        lambda dev: ipdpp.LowRankKernel(dev(np.ones((4, 2), dtype=np.int64))),
        TypeError,
        "features",
    ),
    (
        "features-bool",
        lambda dev: ipdpp.LowRankKernel(dev(np.ones((4, 2), dtype=bool))),
        TypeError,
        "features",
    ),
    (
        "features-complex",
        lambda dev: ipdpp.LowRankKernel(dev(B.astype(np.complex128))),
        TypeError,
        "features",
    ),
    (
        "features-object",
        lambda dev: ipdpp.LowRankKernel(dev(np.array([["a", "b"]], dtype=object))),
        TypeError,
        "features",
    ),
    ("features-string", lambda dev: ipdpp.LowRankKernel(dev("abc")), TypeError, "features"),
    (
        "quality-negative",
        lambda dev: ipdpp.LowRankKernel(dev(B), quality=dev(_with(np.ones(6), (3,), -0.1))),
        ValueError,
        "quality",
    ),
    (
        "quality-nan",
        lambda dev: ipdpp.LowRankKernel(dev(B), quality=dev(_with(np.ones(6), (1,), np.nan))),
        ValueError,
        "quality",
    ),
    (
        "quality-inf",
        lambda dev: ipdpp.LowRankKernel(dev(B), quality=dev(_with(np.ones(6), (1,), np.inf))),
        ValueError,
        "quality",
    ),
    (
        "quality-short",
        lambda dev: ipdpp.LowRankKernel(dev(B), quality=dev(np.ones(5))),
        ValueError,
        r"quality.*\(6,\)",
    ),
    (
        "quality-2d",
        lambda dev: ipdpp.LowRankKernel(dev(B), quality=dev(np.ones((6, 1)))),
        ValueError,
        "quality",
    ),
    (
        "quality-complex",
        lambda dev: ipdpp.LowRankKernel(dev(B), quality=dev(np.ones(6, dtype=complex))),
        TypeError,
        "quality",
    ),
    (
        "L-nan",
        lambda dev: ipdpp.DenseKernel(dev(_with(L_GOOD, (1, 1), np.nan))),
        ValueError,
        r"\bL\b",
    ),
    (
        "L-inf",
        lambda dev: ipdpp.DenseKernel(dev(_with(L_GOOD, (0, 0), np.inf))),
        ValueError,
        r"\bL\b",
    ),
    (
        "L-not-square",
        lambda dev: ipdpp.DenseKernel(dev(np.ones((3, 4)))),
        ValueError,
        r"\bL\b.*\(n, n\)",
    ),
    ("L-1d", lambda dev: ipdpp.DenseKernel(dev(np.ones(4))), ValueError, r"\bL\b"),
    ("L-empty", lambda dev: ipdpp.DenseKernel(dev(np.zeros((0, 0)))), ValueError, r"\bL\b"),
    (
        "L-asymmetric",
        lambda dev: ipdpp.DenseKernel(dev(_asymmetric())),
        ValueError,
        r"\bL\b.*symmetric",
    ),
    (
        "L-indefinite",
        lambda dev: ipdpp.DenseKernel(dev(_indefinite())),
        ValueError,
        r"\bL\b.*semidefinite",
    ),
    ("L-int", lambda dev: ipdpp.DenseKernel(dev(np.eye(3, dtype=np.int32))), TypeError, r"\bL\b"),
    (
        "L-complex",
        lambda dev: ipdpp.DenseKernel(dev(np.eye(3, dtype=np.complex64))),
        TypeError,
        r"\bL\b",
    ),
    (
        "p-above-one",
        lambda dev: ipdpp.IPDPPKernel(dev(_with(P_GOOD, (2,), 1.5))),
        ValueError,
        r"\bp\b.*\[0, 1\]",
    ),
    (
        "p-negative",
        lambda dev: ipdpp.IPDPPKernel(dev(_with(P_GOOD, (0,), -0.01))),
        ValueError,
        r"\bp\b.*\[0, 1\]",
    ),
    (
        "p-nan",
        lambda dev: ipdpp.IPDPPKernel(dev(_with(P_GOOD, (4,), np.nan))),
        ValueError,
        r"\bp\b",
    ),
    ("p-2d", lambda dev: ipdpp.IPDPPKernel(dev(P_GOOD[None])), ValueError, r"\bp\b.*\(N,\)"),
    ("p-empty", lambda dev: ipdpp.IPDPPKernel(dev(np.zeros(0))), ValueError, r"\bp\b"),
    ("p-int", lambda dev: ipdpp.IPDPPKernel(dev(np.array([0, 1, 1]))), TypeError, r"\bp\b"),
    (
        "alpha-unknown",
        lambda dev: ipdpp.IPDPPKernel(dev(P_GOOD), alpha="papers"),
        ValueError,
        "alpha",
    ),
    ("alpha-zero", lambda dev: ipdpp.IPDPPKernel(dev(P_GOOD), alpha=0.0), ValueError, "alpha"),
    ("alpha-negative", lambda dev: ipdpp.IPDPPKernel(dev(P_GOOD), alpha=-1.0), ValueError, "alpha"),
    (
        "alpha-nan",
        lambda dev: ipdpp.IPDPPKernel(dev(P_GOOD), alpha=float("nan")),
        ValueError,
        "alpha",
    ),
    (
        "alpha-too-large",
        lambda dev: ipdpp.IPDPPKernel(dev(np.ones(4)), alpha=1.0),
        ValueError,
        "alpha",
    ),
]


@pytest.mark.parametrize(
    ("make", "error", "pattern"),
    [pytest.param(make, error, pattern, id=name) for name, make, error, pattern in KERNEL_CASES],
)
def test_bad_kernel_input(
    make: Callable[[Device], Any], error: type[Exception], pattern: str, on_device: Device
) -> None:
    with pytest.raises(error, match=pattern):
        kernel = make(on_device)
        kernel.rank  # noqa: B018 - some checks may run with the eigendecomposition


@pytest.fixture
def kernel(on_device: Device) -> ipdpp.LowRankKernel:
    return ipdpp.LowRankKernel(on_device(B))  # n = 6, rank 3


# (id, call on the rank-3 kernel, exception type, message pattern)
CALL_CASES: list[tuple[str, Callable[[Any], Any], type[Exception], str]] = [
    ("k-negative", lambda K: ipdpp.sample_k_dpp(K, -1), ValueError, r"\bk\b"),
    ("k-above-rank", lambda K: ipdpp.sample_k_dpp(K, 4), ValueError, "rank.*3"),
    ("k-above-n", lambda K: ipdpp.sample_k_dpp(K, 7), ValueError, "rank.*3"),
    ("k-huge", lambda K: ipdpp.sample_k_dpp(K, 2**62), ValueError, "rank.*3"),
    ("k-float", lambda K: ipdpp.sample_k_dpp(K, 2.0), TypeError, r"\bk\b"),
    ("k-none", lambda K: ipdpp.sample_k_dpp(K, None), TypeError, r"\bk\b"),
    ("num-samples-negative", lambda K: ipdpp.sample_k_dpp(K, 2, -1), ValueError, "num_samples"),
    ("num-samples-float", lambda K: ipdpp.sample_k_dpp(K, 2, 1.5), TypeError, "num_samples"),
    (
        "num-samples-huge",
        lambda K: ipdpp.sample_k_dpp(K, 2, 2**62),
        ValueError,
        "large|num_samples",
    ),
    ("dpp-num-samples-negative", lambda K: ipdpp.sample_dpp(K, -3), ValueError, "num_samples"),
    ("seed-negative", lambda K: ipdpp.sample_k_dpp(K, 2, seed=-1), ValueError, "seed"),
    ("seed-float", lambda K: ipdpp.sample_k_dpp(K, 2, seed=0.5), TypeError, "seed"),
    (
        "sample-offset-negative",
        lambda K: ipdpp.sample_k_dpp(K, 2, sample_offset=-1),
        ValueError,
        "sample_offset",
    ),
    ("threads-zero", lambda K: ipdpp.sample_k_dpp(K, 2, threads=0), ValueError, "threads"),
    ("method-unknown", lambda K: ipdpp.sample_k_dpp(K, 2, method="gibbs"), ValueError, "method"),
    (
        "method-structured-lowrank",
        lambda K: ipdpp.sample_k_dpp(K, 2, method="structured"),
        ValueError,
        "method",
    ),
    ("dpp-method-unknown", lambda K: ipdpp.sample_dpp(K, method="fast"), ValueError, "method"),
    ("kernel-not-a-kernel", lambda K: ipdpp.sample_k_dpp(np.eye(3), 2), TypeError, "kernel"),
    ("dpp-kernel-not-a-kernel", lambda K: ipdpp.sample_dpp(np.eye(3)), TypeError, "kernel"),
    (
        "marginals-k-above-rank",
        lambda K: ipdpp.inclusion_probabilities(K, k=4),
        ValueError,
        "rank.*3",
    ),
    (
        "marginals-k-negative",
        lambda K: ipdpp.inclusion_probabilities(K, k=-2),
        ValueError,
        r"\bk\b",
    ),
    ("marginals-not-a-kernel", lambda K: ipdpp.inclusion_probabilities(B), TypeError, "kernel"),
    ("log-prob-k-mismatch", lambda K: ipdpp.log_prob(K, [0, 1], k=3), ValueError, r"\bk\b"),
    ("log-prob-out-of-range", lambda K: ipdpp.log_prob(K, [0, 6]), ValueError, r"\bY\b"),
    ("log-prob-negative-index", lambda K: ipdpp.log_prob(K, [-1, 2]), ValueError, r"\bY\b"),
    ("log-prob-repeat", lambda K: ipdpp.log_prob(K, [2, 2]), ValueError, r"\bY\b"),
    ("log-prob-float-indices", lambda K: ipdpp.log_prob(K, [0.0, 1.0]), TypeError, r"\bY\b"),
    ("log-prob-2d", lambda K: ipdpp.log_prob(K, [[0, 1]]), ValueError, r"\bY\b"),
    (
        "log-prob-k-above-rank",
        lambda K: ipdpp.log_prob(K, [0, 1, 2, 3], k=4),
        ValueError,
        "rank.*3",
    ),
]


@pytest.mark.parametrize(
    ("call", "error", "pattern"),
    [pytest.param(call, error, pattern, id=name) for name, call, error, pattern in CALL_CASES],
)
def test_bad_call_input(
    kernel: ipdpp.LowRankKernel, call: Callable[[Any], Any], error: type[Exception], pattern: str
) -> None:
    with pytest.raises(error, match=pattern):
        call(kernel)


def test_ipdpp_k_above_rank_states_the_rank(on_device: Device) -> None:
    # p = 1 everywhere with alpha = 1/N: S = (1/N) 1 1^T has rank 1, whichever sampler runs.
    K = ipdpp.IPDPPKernel(on_device(np.ones(4)))
    for method in ("auto", "structured", "spectral"):
        with pytest.raises(ValueError, match="rank.*1"):
            ipdpp.sample_k_dpp(K, 2, method=method)


def test_torch_bad_inputs() -> None:
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match="features"):
        ipdpp.LowRankKernel(torch.tensor([[1.0, float("nan")]]))
    with pytest.raises(TypeError, match="features"):
        ipdpp.LowRankKernel(torch.ones((3, 2), dtype=torch.int64))
    with pytest.raises(TypeError, match=r"\bp\b"):
        ipdpp.IPDPPKernel(torch.ones(3, dtype=torch.complex64))


def test_kernel_still_usable_after_errors(kernel: ipdpp.LowRankKernel) -> None:
    # Errors leave no half-built state behind.
    for bad_k, message in ((-1, r"\bk\b"), (4, "rank.*3")):
        with pytest.raises(ValueError, match=message):
            ipdpp.sample_k_dpp(kernel, bad_k)
    samples = ipdpp.sample_k_dpp(kernel, 3, 5, seed=1)
    assert tuple(samples.shape) == (5, 3)
