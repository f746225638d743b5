"""The CUDA kernels on the CPU emulator (ipdpp._cuda_emulated, built with IPDPP_CUDA_EMULATOR=ON).

The emulated module is compiled from the same kernel and binding sources as ipdpp._cuda and
has its API; device addresses are the addresses of numpy arrays. Every CUDA thread runs as a
fiber that switches only at barriers, warp shuffles and votes, so these tests execute the real
kernels (cooperative grid syncs, shared memory filled with garbage, the launch limits of an
sm_90 device) and judge their output like the GPU tests do: chi-square against enumeration,
marginals, determinism, agreement with the CPU library, and the same results whichever order
the threads run in.

Skipped (with the reason) where the module was not built, except where the environment sets
IPDPP_REQUIRE_EMULATOR (CI does), so that a build without it cannot pass silently.
"""

from __future__ import annotations

import ctypes
import os
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _stats import assert_marginals, assert_subset_distribution, assert_valid_samples
from conftest import SEED

import ipdpp
from ipdpp import _reference as ref
from ipdpp.kernels import _dense_tolerances

try:
    from ipdpp import _cuda_emulated as emu
except ImportError:
    if os.environ.get("IPDPP_REQUIRE_EMULATOR"):
        raise
    pytest.skip(
        "ipdpp was built without the CUDA emulator (build with IPDPP_CUDA_EMULATOR=ON)",
        allow_module_level=True,
    )

pytestmark = pytest.mark.emulated
RTOL = ipdpp.EIGENVALUE_RTOL
METHODS = ["sequential", "rejection"]
DTYPES = [np.float32, np.float64]
ORDERS = ["forward", "reversed", "shuffled"]


@pytest.fixture(autouse=True)
def forward_order() -> Iterator[None]:
    """Every test starts in forward thread order and with an empty launch log."""
    previous = emu.emulator.thread_order()
    emu.emulator.set_thread_order("forward")
    emu.emulator.clear_launch_log()
    yield
    emu.emulator.set_thread_order(previous)


# ----------------------------------------------------------------------------------------------
# The raw API: device addresses are numpy data pointers, the stream is 0
# ----------------------------------------------------------------------------------------------


def lowrank_case(n: int, d: int, dtype: Any, *, quality: bool = False, seed: int = SEED):
    rng = np.random.default_rng(seed)
    B = rng.standard_normal((n, d)).astype(dtype)
    q = rng.uniform(0.3, 2.0, n) if quality else None
    return B, q, ref.dense_from_lowrank(B.astype(np.float64), q)


def spectrum_of(B: np.ndarray, q: np.ndarray | None = None) -> Any:
    B = np.ascontiguousarray(B)
    q64 = None if q is None else np.ascontiguousarray(q, dtype=np.float64)
    quality = 0 if q64 is None else q64.ctypes.data
    n, d = B.shape
    return emu.lowrank_spectrum(B.ctypes.data, str(B.dtype), n, d, quality, RTOL, 0, 0)


def sample(spectrum: Any, k: int, num_samples: int, method: str, offset: int = 0) -> np.ndarray:
    """(num_samples, k) for a k-DPP, (num_samples, rank) with -1 padding for a DPP (k = -1)."""
    width = k if k >= 0 else spectrum.rank
    out = np.full((num_samples, width), -7, dtype=np.int64)
    emu.sample(spectrum, k, num_samples, SEED, offset, method, out.ctypes.data, 0)
    return out


def dpp_rows(out: np.ndarray) -> list[np.ndarray]:
    rows = [row[row >= 0] for row in out]
    for row in out:  # items first, then padding
        assert (row[len(row[row >= 0]) :] == -1).all()
    return rows


def projection_launches() -> list[dict[str, Any]]:
    return [r for r in emu.emulator.launch_log() if r["kernel"] == "projection_kernel"]


# ----------------------------------------------------------------------------------------------
# Kernel construction: the cuBLAS/cuSOLVER call sites on host BLAS/LAPACK, the dense checks
# ----------------------------------------------------------------------------------------------


def dense_tolerances(n: int, dtype: Any) -> tuple[float, float]:
    """(symmetry_rtol, psd_rtol) of DenseKernel for an n x n input of this dtype."""
    return _dense_tolerances(n, float(np.finfo(dtype).eps))


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_spectra_match_numpy(dtype: Any) -> None:
    B, q, L = lowrank_case(50, 6, dtype, quality=True)
    lowrank = spectrum_of(B, q)
    np.testing.assert_allclose(lowrank.eigenvalues, np.linalg.eigvalsh(L)[-6:], rtol=1e-5)
    Lin = np.ascontiguousarray(L.astype(dtype))
    symmetry, psd = dense_tolerances(50, dtype)
    dense = emu.dense_spectrum(Lin.ctypes.data, str(Lin.dtype), 50, RTOL, psd, 0, 0, symmetry)
    # float32 rounding of L leaves tiny eigenvalues above the cut, as on the CPU.
    np.testing.assert_allclose(dense.eigenvalues[-6:], lowrank.eigenvalues, rtol=1e-4)
    assert np.all(dense.eigenvalues[:-6] < 1e-5 * dense.eigenvalues[-1])
    Bq = (B.astype(np.float64) * q[:, None]).astype(dtype)
    gram = emu.dual_gram_eigenvalues(Bq.ctypes.data, str(Bq.dtype), 50, 6, 0, 0, 0)
    np.testing.assert_allclose(gram, lowrank.eigenvalues, rtol=1e-4)
    for spectrum in (lowrank, dense):  # orthonormal eigenvectors, read back from "the device"
        c_type = ctypes.c_float if spectrum.dtype == "float32" else ctypes.c_double
        raw = (c_type * (50 * spectrum.rank)).from_address(spectrum.eigenvectors_ptr)
        V = np.ctypeslib.as_array(raw).reshape(50, spectrum.rank).astype(np.float64)
        np.testing.assert_allclose(V.T @ V, np.eye(spectrum.rank), atol=1e-5)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda L: L.__setitem__((3, 7), L[3, 7] + 1.0), "must be symmetric"),
        (lambda L: L.__setitem__((2, 2), np.nan), "NaN or Inf"),
        (lambda L: L.__isub__(50.0 * np.eye(len(L))), "positive semidefinite"),
    ],
    ids=["asymmetric", "nan", "indefinite"],
)
def test_dense_checks_raise_like_the_cpu(change: Any, match: str) -> None:
    _, _, L = lowrank_case(20, 4, np.float64)
    change(L)
    with pytest.raises(ValueError, match=match) as cpu:
        ipdpp.DenseKernel(L).eigenvalues()
    symmetry, psd = dense_tolerances(20, np.float64)
    with pytest.raises(ValueError, match=match) as emulated:
        emu.dense_spectrum(L.ctypes.data, "float64", 20, RTOL, psd, 0, 0, symmetry)
    assert str(emulated.value) == str(cpu.value)


def test_every_kernel_runs() -> None:
    # Each __global__ function of csrc/cuda is launched by the calls below, which the tests of
    # this file make as well: a new kernel without an emulated test fails here.
    source = "".join(p.read_text() for p in Path(__file__).parents[1].glob("csrc/cuda/*.cu"))
    kernels = set(
        re.findall(r"__global__\s+void\s+(?:__launch_bounds__\([^)]*\)\s*)?(\w+)", source)
    )
    B, q, L = lowrank_case(40, 6, np.float32, quality=True)
    spectrum = spectrum_of(B, q)
    for method in METHODS:
        sample(spectrum, 3, 2, method)
        sample(spectrum, -1, 2, method)
    L32 = np.ascontiguousarray(L.astype(np.float32))
    symmetry, psd = dense_tolerances(40, np.float32)
    emu.dense_spectrum(L32.ctypes.data, "float32", 40, RTOL, psd, 0, 0, symmetry)
    labels, p = structured_case()
    balanced_subset(labels, p, np.full(8, 5, dtype=np.int64))
    structured_sample(p[:30], 1 / 30, 4, 2)
    launched = {r["kernel"] for r in emu.emulator.launch_log()}
    assert kernels <= launched, sorted(kernels - launched)


# ----------------------------------------------------------------------------------------------
# Exactness
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("method", METHODS)
def test_k_dpp_matches_enumeration(method: str, dtype: Any) -> None:
    B, q, L = lowrank_case(6, 4, dtype, quality=True)
    samples = sample(spectrum_of(B, q), 2, 1500, method)
    assert_valid_samples(samples, 6, 2)
    assert_subset_distribution(
        samples, ref.k_dpp_subset_probabilities(L, 2), label=f"emulated {method} {dtype}"
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("method", METHODS)
def test_dpp_matches_enumeration(method: str, dtype: Any) -> None:
    B, _, L = lowrank_case(5, 3, np.float64)
    # Eigenvalues near 1: every size 0..3 has visible mass.
    B = (B / np.sqrt(4.0)).astype(dtype)
    L = ref.dense_from_lowrank(B.astype(np.float64), None)
    samples = dpp_rows(sample(spectrum_of(B), -1, 1500, method))
    assert_valid_samples(samples, 5)
    assert_subset_distribution(samples, ref.dpp_subset_probabilities(L), label=f"emulated {method}")


def test_sequential_sample_over_several_blocks_marginals() -> None:
    # n = 600: each sample's rows are spread over 2 blocks of a cooperative launch, which race for
    # every step's winner across blocks and repeat the Gram-Schmidt step in each.
    B, _, _ = lowrank_case(600, 12, np.float32)
    spectrum = spectrum_of(B)
    samples = np.concatenate([sample(spectrum, 6, 8, "sequential", 8 * i) for i in range(125)])
    launches = projection_launches()
    assert all(r["cooperative"] and r["grid"][0] == 8 * 2 for r in launches), launches[:1]
    assert_valid_samples(samples, 600, 6)
    exact = ipdpp.inclusion_probabilities(ipdpp.LowRankKernel(B), 6)
    assert_marginals(samples, exact, label="emulated sequential, 2 blocks per sample")


# ----------------------------------------------------------------------------------------------
# Determinism and agreement with the CPU library
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_batch_equals_single_calls(method: str) -> None:
    B, q, _ = lowrank_case(2000, 8, np.float32, quality=True)
    spectrum = spectrum_of(B, q)
    batch = sample(spectrum, 4, 32, method, offset=5)
    np.testing.assert_array_equal(batch[:16], sample(spectrum, 4, 16, method, offset=5))
    if method == "sequential":
        # The 32 co-resident blocks hold one block per sample for 32 samples, two for 16, where a
        # single sample gets four: the cross-block race must not change any draw.
        assert [r["grid"][0] for r in projection_launches()] == [32, 16 * 2]
    for i in range(32):
        emu.emulator.clear_launch_log()
        np.testing.assert_array_equal(batch[i], sample(spectrum, 4, 1, method, offset=5 + i)[0])
        if method == "sequential":
            assert projection_launches()[-1]["grid"][0] == 4
    np.testing.assert_array_equal(batch, sample(spectrum, 4, 32, method, offset=5))
    # DPP samples have random sizes; a batch's largest one sizes the kernel's shared memory and
    # must not change the others.
    small = spectrum_of(B / np.float32(np.sqrt(600.0)), q)
    dpp_batch = dpp_rows(sample(small, -1, 8, method, offset=2))
    assert len({row.size for row in dpp_batch}) > 1
    for i in range(8):
        single = dpp_rows(sample(small, -1, 1, method, offset=2 + i))[0]
        np.testing.assert_array_equal(dpp_batch[i], single)


def structured_case(seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    sizes = (300 * (5 / 300) ** (np.arange(8) / 7)).astype(int)
    labels = rng.permutation(np.repeat(np.arange(8), sizes)).astype(np.int64)
    return labels, rng.beta(8.0, 2.0, labels.size)


def structured_sample(p: np.ndarray, alpha: float, k: int, num_samples: int) -> np.ndarray:
    p = np.ascontiguousarray(p, dtype=np.float64)
    out = np.full((num_samples, k), -7, dtype=np.int64)
    emu.structured_sample(
        p.ctypes.data,
        0,
        np.array([0, p.size], dtype=np.int64),
        np.array([k], dtype=np.int64),
        np.array([alpha]),
        num_samples,
        SEED,
        0,
        out.ctypes.data,
        0,
        0,
    )
    return out


def balanced_subset(labels: np.ndarray, p: np.ndarray, k: np.ndarray) -> np.ndarray:
    out = np.full(labels.size, -7, dtype=np.int64)
    count = emu.balanced_subset(
        labels.ctypes.data, p.ctypes.data, labels.size, k, 1.0, 0.0, SEED, out.ctypes.data, 0, 0
    )
    return out[:count]


def test_structured_equals_cpu_sampler() -> None:
    p = np.random.default_rng(SEED).beta(8.0, 2.0, 300)
    cpu = ipdpp.sample_k_dpp(ipdpp.IPDPPKernel(p), 20, 50, seed=SEED, method="structured")
    np.testing.assert_array_equal(structured_sample(p, 1 / 300, 20, 50), cpu)


def test_structured_k_at_the_shared_memory_edge() -> None:
    # The table kernel keeps 4 (k + 1) doubles per block in dynamic shared memory on top of its
    # static scratch: the largest k it reports must run, the next must be a ValueError (not a
    # failed launch), and both devices must still agree there.
    p = np.random.default_rng(SEED).beta(8.0, 2.0, 8000)
    with pytest.raises(ValueError, match="at most") as info:
        structured_sample(p, 1 / 8000, 7900, 1)
    edge = int(re.search(r"at most (\d+)", str(info.value)).group(1))
    q = p[: edge + 40]
    with pytest.raises(ValueError, match="at most"):
        structured_sample(q, 1 / q.size, edge + 1, 1)
    cpu = ipdpp.sample_k_dpp(ipdpp.IPDPPKernel(q), edge, 1, seed=SEED, method="structured")
    np.testing.assert_array_equal(structured_sample(q, 1 / q.size, edge, 1), cpu)


def test_structured_matches_enumeration() -> None:
    p = np.random.default_rng(SEED).beta(8.0, 2.0, 7)
    samples = structured_sample(p, 1 / 7, 3, 3000)
    assert_valid_samples(samples, 7, 3)
    L = ref.dense_from_ipdpp(p, "paper")
    assert_subset_distribution(samples, ref.k_dpp_subset_probabilities(L, 3), label="structured")


def test_balanced_subset_equals_cpu() -> None:
    labels, p = structured_case()
    k = np.full(8, 20, dtype=np.int64)
    cpu = ipdpp.balanced_subset(labels, p, k, mode="exact", alpha="paper", seed=SEED)
    np.testing.assert_array_equal(balanced_subset(labels, p, k), cpu)


# ----------------------------------------------------------------------------------------------
# Race freedom: the same results whichever order the threads run in
# ----------------------------------------------------------------------------------------------


def test_identical_under_every_thread_order() -> None:
    B, q, _ = lowrank_case(1200, 8, np.float64, quality=True)
    spectrum = spectrum_of(B, q)
    labels, p = structured_case()
    k = np.full(8, 20, dtype=np.int64)
    results = {}
    for order in ORDERS:
        emu.emulator.set_thread_order(order)
        results[order] = (
            sample(spectrum, 5, 3, "sequential"),
            sample(spectrum, 5, 6, "rejection"),
            dpp_rows(sample(spectrum, -1, 3, "sequential")),
            balanced_subset(labels, p, k),
        )
    assert len({r["grid"][0] for r in projection_launches()}) == 1  # same blocks, other orders
    for order in ORDERS[1:]:
        for a, b in zip(results["forward"], results[order]):
            if isinstance(a, list):
                assert len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))
            else:
                np.testing.assert_array_equal(a, b, err_msg=f"thread order {order}")


# ----------------------------------------------------------------------------------------------
# Bad input and limits: exceptions, never a crash or a hang
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_k_above_the_shared_memory_limit(method: str) -> None:
    B, _, _ = lowrank_case(260, 250, np.float64)
    spectrum = spectrum_of(B)
    assert spectrum.rank == 250
    with pytest.raises(ValueError, match="at most"):
        sample(spectrum, 240, 1, method)
    with pytest.raises(ValueError, match="at most"):
        sample(spectrum, -1, 1, method)  # a DPP may draw up to rank = 250 items


def overwrite_eigenvectors(spectrum: Any, values: np.ndarray) -> None:
    """Replaces the spectrum's (n, rank) eigenvectors in place (device memory is host memory)."""
    c_type = ctypes.c_float if spectrum.dtype == "float32" else ctypes.c_double
    buffer = (c_type * (spectrum.n * spectrum.rank)).from_address(spectrum.eigenvectors_ptr)
    view = np.ctypeslib.as_array(buffer).reshape(spectrum.n, spectrum.rank)
    view[...] = values


@pytest.mark.parametrize("method", METHODS)
def test_degenerate_eigenvectors_raise(method: str) -> None:
    # Every row of V the same: after the first item every residual is zero, so no second item
    # can be drawn. Both kernels must report it instead of returning garbage or spinning.
    B, _, _ = lowrank_case(40, 3, np.float64)
    spectrum = spectrum_of(B)
    overwrite_eigenvectors(spectrum, np.full((40, 3), 1 / np.sqrt(40)))
    with pytest.raises(RuntimeError):
        sample(spectrum, 3, 2, method)


def test_bad_arguments_raise() -> None:
    B, _, _ = lowrank_case(30, 4, np.float64)
    spectrum = spectrum_of(B)
    allocations = emu.emulator.live_allocations()
    with pytest.raises(ValueError, match="method"):
        sample(spectrum, 2, 1, "bogus")
    with pytest.raises(ValueError, match="rank"):
        sample(spectrum, 5, 1, "sequential")
    with pytest.raises(TypeError, match="dtype"):
        emu.lowrank_spectrum(B.ctypes.data, "float16", 30, 4, 0, RTOL, 0, 0)
    assert emu.emulator.live_allocations() == allocations  # the error paths free what they took


def test_concurrent_calls_with_different_k() -> None:
    # Host threads launching one kernel with different shared-memory sizes must not change each
    # other's limits (the attribute is per kernel, not per call).
    B, _, _ = lowrank_case(300, 12, np.float32)
    spectrum = spectrum_of(B)
    ks = [2, 6, 10] * 3
    serial = [sample(spectrum, k, 3, method) for k in ks for method in METHODS]
    with ThreadPoolExecutor(3) as pool:
        jobs = [pool.submit(sample, spectrum, k, 3, method) for k in ks for method in METHODS]
        parallel = [job.result() for job in jobs]
    for a, b in zip(serial, parallel):
        np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------------------------------------
# The emulator itself: each check fires on a kernel with that bug (emulator.self_test)
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("split_warp", "deadlock: no thread can proceed"),
        ("divergent_barrier", "divergent __syncthreads"),
        ("early_exit", "exited"),
        ("shuffle_outside_mask", "not in the mask"),
        ("mask_mismatch", "with mask 0x"),
        ("dynamic_overrun", "past the end of its dynamic shared memory"),
        ("static_overrun", "past the end of its static shared memory"),
        ("grid_sync_not_cooperative", "not cooperative"),
        ("cooperative_too_large", "can be resident at once"),
        ("dynamic_above_attribute", "MaxDynamicSharedMemorySize"),
        ("launch_bounds", "__launch_bounds__ allows 64"),
    ],
)
def test_emulator_reports_kernel_bugs(name: str, match: str) -> None:
    with pytest.raises(emu.CudaError, match=match):
        emu.emulator.self_test(name)
    # The failed launch leaves nothing behind: a correct kernel runs next.
    assert emu.emulator.self_test("reduce")[:256] == [sum(range(256))] * 256


def test_emulator_watchdog_stops_endless_kernels() -> None:
    previous = emu.emulator.watchdog()
    emu.emulator.set_watchdog(1000)
    try:
        with pytest.raises(emu.CudaError, match="watchdog"):
            emu.emulator.self_test("endless")
    finally:
        emu.emulator.set_watchdog(previous)


def test_thread_orders_expose_races_and_garbage_exposes_uninitialised_reads() -> None:
    results = {}
    for order in ORDERS:
        emu.emulator.set_thread_order(order)
        results[order] = emu.emulator.self_test("write_race")[:64]
        assert emu.emulator.self_test("reduce") == [sum(range(256))] * 256
    # The last writer wins: thread 2 running after thread 1, or before it.
    assert results["forward"] == [2] * 64 and results["reversed"] == [1] * 64
    first, second = (emu.emulator.self_test("uninitialised_read")[0] for _ in range(2))
    assert first != second  # fresh garbage in every launch
