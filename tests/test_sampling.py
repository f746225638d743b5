"""Exactness of ipdpp.sample_dpp / ipdpp.sample_k_dpp against enumeration, and reproducibility.

Every test draws NUM_SAMPLES samples in one batched call with a fixed seed, enumerates every
subset of the small ground set, and runs the chi-square test of tests/_stats.py on the counts.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pytest
from _stats import (
    assert_subset_distribution,
    assert_valid_samples,
)
from conftest import KernelCase, to_numpy

import ipdpp
from ipdpp import _reference as ref

NUM_SAMPLES = 20_000

# name -> (conftest kernel kind, n, rank of the random factor). Ranks below n give subsets of
# probability zero, which the chi-square test then sees as impossible outcomes; IP-DPP kernels
# have full rank. "lowrank_primal" has more features than items (d = 9 > n = 6), which takes the
# n x n primal Gram path of LowRankKernel instead of the d x d dual one.
KERNELS = {
    "lowrank": ("lowrank", 7, 4),
    "lowrank_quality": ("lowrank_quality", 7, 4),
    "lowrank_primal": ("lowrank_quality", 6, 9),
    "dense": ("dense", 6, 8),
    "ipdpp": ("ipdpp", 8, None),
}
# Projection phases exercised per kernel. The IP-DPP kernel's "spectral" goes through its
# secular-equation eigendecomposition (then auto picks sequential/rejection), its "auto" is the
# structured sampler for k-DPPs (tested at length in tests/test_ipdpp_structured.py) and
# spectral for DPPs.
SPECTRAL_METHODS = ["sequential", "rejection", "auto"]
METHODS = {name: SPECTRAL_METHODS for name in KERNELS} | {"ipdpp": ["spectral", "auto"]}
KERNEL_METHODS = [(kind, method) for kind in KERNELS for method in METHODS[kind]]
K_VALUES = {
    "lowrank": [1, 3],
    "lowrank_quality": [2, 4],
    "lowrank_primal": [2, 5],
    "dense": [3],
    "ipdpp": [2, 5],
}
KERNEL_METHOD_K = [(kind, method, k) for kind, method in KERNEL_METHODS for k in K_VALUES[kind]]


def _case(make_kernel: Callable[..., KernelCase], name: str, dtype: type) -> KernelCase:
    kind, n, rank = KERNELS[name]
    return make_kernel(kind, n, dtype=dtype, rank=rank)


@pytest.mark.emulator_heavy
@pytest.mark.parametrize(("kind", "method", "k"), KERNEL_METHOD_K)
def test_k_dpp_exact_distribution(
    make_kernel: Callable[..., KernelCase], dtype: type, seed: int, kind: str, method: str, k: int
) -> None:
    case = _case(make_kernel, kind, dtype)
    samples = to_numpy(ipdpp.sample_k_dpp(case.kernel, k, NUM_SAMPLES, seed=seed, method=method))
    assert samples.dtype == np.int64
    assert samples.shape == (NUM_SAMPLES, k)
    assert_valid_samples(samples, case.n, k)
    assert_subset_distribution(
        samples,
        ref.k_dpp_subset_probabilities(case.L, k),
        label=f"k-DPP {case.name} k={k} method={method}",
    )


@pytest.mark.emulator_heavy
@pytest.mark.parametrize(("kind", "method"), KERNEL_METHODS)
def test_dpp_exact_distribution(
    make_kernel: Callable[..., KernelCase], dtype: type, seed: int, kind: str, method: str
) -> None:
    case = _case(make_kernel, kind, dtype)
    samples = to_numpy(ipdpp.sample_dpp(case.kernel, NUM_SAMPLES, seed=seed, method=method))
    assert isinstance(samples, list) and len(samples) == NUM_SAMPLES
    assert all(s.dtype == np.int64 for s in samples)
    assert_valid_samples(samples, case.n)
    assert_subset_distribution(
        samples, ref.dpp_subset_probabilities(case.L), label=f"DPP {case.name} method={method}"
    )


# --- reproducibility ---------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "method"), KERNEL_METHODS)
def test_batch_equals_one_by_one(
    make_kernel: Callable[..., KernelCase], seed: int, kind: str, method: str
) -> None:
    case = _case(make_kernel, kind, np.float64)
    k = K_VALUES[kind][-1]
    batch = to_numpy(ipdpp.sample_k_dpp(case.kernel, k, 12, seed=seed, method=method))
    for i in [0, 1, 5, 11]:
        single = to_numpy(
            ipdpp.sample_k_dpp(case.kernel, k, 1, seed=seed, method=method, sample_offset=i)
        )
        np.testing.assert_array_equal(single[0], batch[i], err_msg=f"k-DPP sample {i}")
    # A window of the stream is the same window of a longer batch.
    window = to_numpy(
        ipdpp.sample_k_dpp(case.kernel, k, 4, seed=seed, method=method, sample_offset=7)
    )
    np.testing.assert_array_equal(window, batch[7:11])

    dpp_batch = to_numpy(ipdpp.sample_dpp(case.kernel, 12, seed=seed, method=method))
    for i in [0, 3, 11]:
        single = to_numpy(
            ipdpp.sample_dpp(case.kernel, 1, seed=seed, method=method, sample_offset=i)
        )
        np.testing.assert_array_equal(single[0], dpp_batch[i], err_msg=f"DPP sample {i}")


@pytest.mark.emulator_heavy
@pytest.mark.parametrize("method", ["sequential", "rejection", "auto"])
def test_batch_equals_one_by_one_large_kernel(
    on_device: Callable[[Any], Any], seed: int, method: str
) -> None:
    # n large enough that a GPU spreads one sample over many blocks, and a DPP batch whose
    # samples have different sizes: the largest one (which sizes the batch's buffers) must not
    # change the others.
    rng = np.random.default_rng(seed)
    B = rng.standard_normal((3_000, 20)).astype(np.float32)
    q = rng.uniform(0.3, 2.0, 3_000)
    K = ipdpp.LowRankKernel(on_device(B), quality=on_device(q))

    def draw(num: int, offset: int) -> np.ndarray:
        return to_numpy(
            ipdpp.sample_k_dpp(K, 10, num, seed=seed, sample_offset=offset, method=method)
        )

    batch = draw(6, 5)
    for i in range(6):
        np.testing.assert_array_equal(batch[i], draw(1, 5 + i)[0])
    np.testing.assert_array_equal(batch, draw(6, 5))
    # Eigenvalues ~ 1 spread the DPP sizes.
    K = ipdpp.LowRankKernel(on_device(B / np.float32(np.sqrt(3_000))), quality=on_device(q))
    dpp_batch = to_numpy(ipdpp.sample_dpp(K, 8, seed=seed, sample_offset=2, method=method))
    assert len({row.shape[0] for row in dpp_batch}) > 1
    for i in range(8):
        single = ipdpp.sample_dpp(K, 1, seed=seed, sample_offset=2 + i, method=method)[0]
        np.testing.assert_array_equal(dpp_batch[i], to_numpy(single))


@pytest.mark.emulator_heavy
@pytest.mark.parametrize(("kind", "method"), KERNEL_METHODS)
def test_seed_reproducibility(
    make_kernel: Callable[..., KernelCase], seed: int, kind: str, method: str
) -> None:
    case = _case(make_kernel, kind, np.float64)
    k = K_VALUES[kind][-1]
    first = to_numpy(ipdpp.sample_k_dpp(case.kernel, k, 200, seed=seed, method=method))
    again = to_numpy(ipdpp.sample_k_dpp(case.kernel, k, 200, seed=seed, method=method))
    np.testing.assert_array_equal(first, again)
    other = to_numpy(ipdpp.sample_k_dpp(case.kernel, k, 200, seed=seed + 1, method=method))
    assert not np.array_equal(first, other), "a different seed gave the very same 200 samples"
    # A kernel rebuilt from the same input samples the same (no hidden state in the kernel).
    rebuilt = _case(make_kernel, kind, np.float64)
    np.testing.assert_array_equal(
        first, to_numpy(ipdpp.sample_k_dpp(rebuilt.kernel, k, 200, seed=seed, method=method))
    )
    dpp_first = to_numpy(ipdpp.sample_dpp(case.kernel, 50, seed=seed, method=method))
    dpp_again = to_numpy(ipdpp.sample_dpp(case.kernel, 50, seed=seed, method=method))
    for a, b in zip(dpp_first, dpp_again):
        np.testing.assert_array_equal(a, b)


@pytest.mark.emulator_heavy
@pytest.mark.parametrize(("kind", "method"), KERNEL_METHODS)
def test_thread_count_does_not_change_samples(
    make_kernel: Callable[..., KernelCase], seed: int, kind: str, method: str
) -> None:
    case = _case(make_kernel, kind, np.float64)
    k = K_VALUES[kind][-1]
    results = [
        to_numpy(ipdpp.sample_k_dpp(case.kernel, k, 300, seed=seed, method=method, threads=t))
        for t in (1, 2, 3)
    ]
    np.testing.assert_array_equal(results[0], results[1])
    np.testing.assert_array_equal(results[0], results[2])
    dpps = [
        to_numpy(ipdpp.sample_dpp(case.kernel, 100, seed=seed, method=method, threads=t))
        for t in (1, 2)
    ]
    for a, b in zip(*dpps):
        np.testing.assert_array_equal(a, b)


def test_defaults_and_empty_requests(make_kernel: Callable[..., KernelCase]) -> None:
    case = make_kernel("lowrank_quality", 7, rank=4)
    one = to_numpy(ipdpp.sample_k_dpp(case.kernel, 3))
    assert one.shape == (1, 3) and one.dtype == np.int64
    np.testing.assert_array_equal(one, to_numpy(ipdpp.sample_k_dpp(case.kernel, 3, 1, seed=0)))
    assert len(to_numpy(ipdpp.sample_dpp(case.kernel))) == 1
    assert to_numpy(ipdpp.sample_k_dpp(case.kernel, 3, 0)).shape == (0, 3)
    assert to_numpy(ipdpp.sample_k_dpp(case.kernel, 0, 4)).shape == (4, 0)
    assert to_numpy(ipdpp.sample_dpp(case.kernel, 0)) == []


def test_seed_and_offset_span_uint64(make_kernel: Callable[..., KernelCase]) -> None:
    case = make_kernel("lowrank", 7, rank=4)
    top = 2**64 - 1
    last_two = to_numpy(ipdpp.sample_k_dpp(case.kernel, 2, 2, seed=top, sample_offset=top - 1))
    last = to_numpy(ipdpp.sample_k_dpp(case.kernel, 2, 1, seed=top, sample_offset=top))
    np.testing.assert_array_equal(last_two[1], last[0])
    # numpy integer scalars are accepted as seeds and counts.
    np.testing.assert_array_equal(
        to_numpy(ipdpp.sample_k_dpp(case.kernel, np.int64(2), np.int32(3), seed=np.uint64(9))),
        to_numpy(ipdpp.sample_k_dpp(case.kernel, 2, 3, seed=9)),
    )


@pytest.mark.emulator_heavy
def test_concurrent_calls_match_serial(make_kernel: Callable[..., KernelCase], seed: int) -> None:
    # Several Python threads sample from one fresh kernel at once (the GIL is released and the
    # kernel builds its per-k tables lazily): every call must equal the same call made serially.
    from concurrent.futures import ThreadPoolExecutor

    requests = [(k, method) for k in (1, 2, 3, 4) for method in ("sequential", "rejection")] * 2

    def run(kernel: Any, request: tuple[int, str]) -> np.ndarray:
        k, method = request
        return to_numpy(ipdpp.sample_k_dpp(kernel, k, 200, seed=seed, method=method, threads=1))

    fresh = make_kernel("lowrank_quality", 40, rank=6).kernel
    with ThreadPoolExecutor(max_workers=4) as pool:
        concurrent = list(pool.map(lambda r: run(fresh, r), requests))
    serial_kernel = make_kernel("lowrank_quality", 40, rank=6).kernel
    for request, result in zip(requests, concurrent):
        np.testing.assert_array_equal(result, run(serial_kernel, request), err_msg=str(request))
