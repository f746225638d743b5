"""The CUDA kernels on the CPU emulator (ipdpp._cuda_emulated, built with IPDPP_CUDA_EMULATOR=ON).

Every CUDA thread runs as a fiber that switches only at barriers, warp shuffles and votes, so
these tests execute the real kernels (cooperative grid syncs, shared memory filled with garbage,
the launch limits of an sm_90 device) and judge their output like the GPU tests do: chi-square
against enumeration, marginals, determinism, agreement with the CPU library, and the errors of
bad input and limits. tests/test_emulator.py checks the emulator itself.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
from _emulated import (
    DTYPES,
    METHODS,
    RTOL,
    balanced_subset,
    dense_tolerances,
    dpp_rows,
    eigenvectors,
    emu,
    forward_order,  # noqa: F401  (the autouse fixture)
    lowrank_case,
    projection_launches,
    sample,
    spectrum_of,
    structured_case,
    structured_sample,
)
from _stats import assert_marginals, assert_subset_distribution, assert_valid_samples
from conftest import SEED

import ipdpp
from ipdpp import _reference as ref

pytestmark = pytest.mark.emulated


# ----------------------------------------------------------------------------------------------
# Kernel construction: the cuBLAS/cuSOLVER call sites on host BLAS/LAPACK, the dense checks
# ----------------------------------------------------------------------------------------------


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
        V = eigenvectors(spectrum).astype(np.float64)
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


@pytest.mark.parametrize("method", METHODS)
def test_degenerate_eigenvectors_raise(method: str) -> None:
    # Every row of V the same: after the first item every residual is zero, so no second item
    # can be drawn. Both kernels must report it instead of returning garbage or spinning.
    B, _, _ = lowrank_case(40, 3, np.float64)
    spectrum = spectrum_of(B)
    eigenvectors(spectrum)[...] = 1 / np.sqrt(40)
    with pytest.raises(RuntimeError):
        sample(spectrum, 3, 2, method)


def test_bad_arguments_raise() -> None:
    B, _, _ = lowrank_case(30, 4, np.float64)
    spectrum = spectrum_of(B)
    allocations = emu.emulator.live_allocations()
    with pytest.raises(ValueError, match="method"):
        sample(spectrum, 2, 1, "bogus")
    with pytest.raises(ValueError, match="^method='columns' runs on the CPU only"):
        sample(spectrum, 2, 1, "columns")
    with pytest.raises(ValueError, match="rank"):
        sample(spectrum, 5, 1, "sequential")
    with pytest.raises(TypeError, match="dtype"):
        emu.lowrank_spectrum(B.ctypes.data, "float16", 30, 4, 0, RTOL, 0, 0)
    assert emu.emulator.live_allocations() == allocations  # the error paths free what they took
