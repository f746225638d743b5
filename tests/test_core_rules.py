"""The rules the compiled extensions expose once for both devices (csrc/common): the IP-DPP
alpha rule, the method="auto" cost models of the CPU and the GPU, and the InternalError type.

These run without a GPU: the GPU rule is plain host code, bound in ``_core`` as well.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from ipdpp import _core


@pytest.mark.parametrize(
    "power, value, n, expected",
    [
        (1.0, 0.0, 10, 0.1),  # the paper's 1/N
        (2.0, 0.0, 10, 0.01),  # the released code's 1/N^2
        (1.0, 0.25, 10, 0.25),  # an explicit value wins
        (0.0, 0.5, 3, 0.5),
        (1.0, 0.0, 1, 1.0),
    ],
)
def test_ipdpp_alpha(power: float, value: float, n: int, expected: float) -> None:
    assert _core.ipdpp_alpha(power, value, n) == pytest.approx(expected, rel=1e-15)


@pytest.mark.parametrize(
    "power, value, n, message",
    [
        (0.0, 0.0, 5, "alpha must be 'paper', 'code' or a float > 0"),
        (-1.0, -2.0, 5, "alpha must be 'paper', 'code' or a float > 0"),
        (1.0, 0.0, 0, "n >= 1"),
        (0.0, float("inf"), 5, "finite"),
    ],
)
def test_ipdpp_alpha_rejects(power: float, value: float, n: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _core.ipdpp_alpha(power, value, n)


def test_balanced_subset_uses_the_alpha_rule() -> None:
    # Class c of mode "exact" is ipdpp_sample_k(p_c, alpha_c, k_c, sample_offset=c) with the
    # class's alpha from the one rule.
    rng = np.random.default_rng(3)
    labels = np.repeat(np.arange(3), [9, 6, 7]).astype(np.int64)
    p = rng.uniform(0.05, 0.95, labels.size)
    k = np.array([3, 2, 4], dtype=np.int64)
    kept = _core.balanced_subset(labels, p, k, "exact", 2.0, 0.0, 11, None, 1e-10, 1)
    expected = []
    for c in range(3):
        members = np.flatnonzero(labels == c)
        alpha = _core.ipdpp_alpha(2.0, 0.0, members.size)
        rows = _core.ipdpp_sample_k(p[members], alpha, int(k[c]), 1, 11, c, 1)
        expected.extend(members[rows[0]])
    np.testing.assert_array_equal(kept, np.sort(expected))


@pytest.mark.parametrize(
    "n, size, itemsize, expected",
    [
        (100_000, 50, 4, "sequential"),  # 20 MB of V_J (float32): stays in L2
        (100_000, 100, 4, "rejection"),  # 40 MB: every step would stream V_J from HBM
        (1_000_000, 50, 4, "rejection"),  # 200 MB: the n-independent sampler
        (60_000, 100, 4, "sequential"),
        (60_000, 100, 8, "rejection"),  # float64 halves the size that stays sequential
        (10, 0, 8, "sequential"),  # an empty sample counts as size 1
    ],
)
def test_gpu_auto_method(n: int, size: int, itemsize: int, expected: str) -> None:
    # The rule sees (n, size, dtype) only, never the batch size: a sample must not depend on
    # the batch it was drawn in.
    assert _core.auto_method("cuda", n, 256, size, itemsize) == expected


@pytest.mark.parametrize(
    "n, rank, k, expected",
    [
        (1_000_000, 64, 5, "rejection"),  # n k^2 passes dwarf rank H_k proposals
        (1_000, 1_000, 60, "sequential"),  # few items, a large rank: the passes are cheap
        (20_000, 256, 20, "rejection"),
    ],
)
def test_cpu_auto_method(n: int, rank: int, k: int, expected: str) -> None:
    assert _core.auto_method("cpu", n, rank, k) == expected


def test_auto_method_names_the_device() -> None:
    with pytest.raises(ValueError, match="device must be 'cpu' or 'cuda'"):
        _core.auto_method("tpu", 10, 2, 1)


def test_internal_error_is_one_runtime_error_type() -> None:
    assert issubclass(_core.InternalError, RuntimeError)
    if importlib.util.find_spec("ipdpp._cuda") is not None:
        from ipdpp import _cuda

        assert _cuda.InternalError is _core.InternalError
