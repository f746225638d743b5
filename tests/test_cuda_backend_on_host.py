"""The CUDA backend's code path end to end on host memory, on machines without a GPU.

``ipdpp._gpu.CudaBackend`` runs over ``FakeCudaExtension`` (tests/_cuda_double.py), which
implements the extension's API with the CPU library on host addresses. These tests check what the
backend does around the kernels (addresses, shapes, output allocation, DPP padding, the tolerances
and the method it passes on, host fallbacks) and that it returns what the CPU backend returns.
tests/test_gpu.py and the device-parametrised suite run the real kernels.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
from _cuda_double import FakeCudaExtension
from conftest import SEED

import ipdpp
from ipdpp import _core
from ipdpp._adapters import HostArrays
from ipdpp._dispatch import forced_backend
from ipdpp._gpu import CudaBackend
from ipdpp.kernels import _dense_tolerances


@contextmanager
def fake_cuda() -> Iterator[FakeCudaExtension]:
    """Within the block, every call runs through CudaBackend(FakeCudaExtension, HostArrays)."""
    fake = FakeCudaExtension()
    with forced_backend(CudaBackend(fake, HostArrays())):
        yield fake


def _features(n: int, d: int, dtype: type = np.float64) -> np.ndarray:
    return np.random.default_rng(SEED).standard_normal((n, d)).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lowrank_kernel_on_the_cuda_path(dtype: type) -> None:
    B = _features(60, 5, dtype)
    q = np.linspace(0.5, 2.0, 60)
    cpu = ipdpp.LowRankKernel(B, quality=q)
    with fake_cuda() as fake:
        K = ipdpp.LowRankKernel(B, quality=q)
        assert fake.calls == []  # the eigendecomposition waits for its first use
        assert (K.n, K.d, K.rank) == (60, 5, 5)
        values, vectors = K.eigh()
        assert vectors.dtype == dtype and not vectors.flags.writeable  # a view of the handle's
        np.testing.assert_array_equal(values, cpu.eigh()[0])
        np.testing.assert_allclose(vectors, cpu.eigh()[1], atol=1e-6)
        for method in ("sequential", "rejection"):
            samples = ipdpp.sample_k_dpp(K, 3, 40, seed=SEED, sample_offset=2, method=method)
            expected = ipdpp.sample_k_dpp(cpu, 3, 40, seed=SEED, sample_offset=2, method=method)
            np.testing.assert_array_equal(samples, expected)
            assert fake.calls[-1] == f"sample {method}"
            dpp = ipdpp.sample_dpp(K, 30, seed=SEED, method=method)  # -1 padded rows, cut
            for got, want in zip(dpp, ipdpp.sample_dpp(cpu, 30, seed=SEED, method=method)):
                np.testing.assert_array_equal(got, want)
        ipdpp.sample_k_dpp(K, 2, 3, method="auto")
        assert fake.calls[-1] == "sample auto"  # resolved by the extension
        calls = len(fake.calls)
        assert ipdpp.sample_k_dpp(K, 0, 4).shape == (4, 0)
        assert ipdpp.sample_k_dpp(K, 3, 0).shape == (0, 3)
        assert ipdpp.sample_dpp(K, 0) == []
        assert len(fake.calls) == calls  # nothing to draw: no launch
        with pytest.raises(ValueError, match="exceeds the kernel's rank 5"):
            ipdpp.sample_k_dpp(K, 6)
        # The host utilities read the spectrum back and answer on the kernel's device.
        np.testing.assert_allclose(
            ipdpp.inclusion_probabilities(K, k=2),
            ipdpp.inclusion_probabilities(cpu, k=2),
            atol=1e-6,
        )
        assert ipdpp.log_prob(K, [1, 4], k=2) == pytest.approx(
            ipdpp.log_prob(cpu, [1, 4], k=2), rel=1e-5
        )
        np.testing.assert_array_equal(ipdpp.greedy_map(K, 3), ipdpp.greedy_map(cpu, 3))


def test_dense_kernel_on_the_cuda_path() -> None:
    A = _features(12, 4)
    L = A @ A.T
    cpu = ipdpp.DenseKernel(L)
    L32 = L.astype(np.float32)
    L32 = (L32 + L32.T) / 2
    cpu32 = ipdpp.DenseKernel(L32)
    with fake_cuda() as fake:
        K = ipdpp.DenseKernel(L)
        assert fake.calls == ["dense_spectrum"] and K.rank == cpu.rank == 4
        np.testing.assert_array_equal(ipdpp.greedy_map(K, 3), ipdpp.greedy_map(cpu, 3))
        asymmetric = L.copy()
        asymmetric[2, 5] += 1e-3 * np.abs(L).max()
        # The extension checks symmetry with the tolerance the backend passes on.
        with pytest.raises(ValueError, match=r"L must be symmetric; \|L\[2, 5\] - L\[5, 2\]\|"):
            ipdpp.DenseKernel(asymmetric)
        with pytest.raises(ValueError, match="L must be positive semidefinite"):
            ipdpp.DenseKernel(np.diag([2.0, -1.0, 1.0]))
        # A float32 input gets the float32 tolerances on every device: its rounding noise
        # passes the PSD check and counts towards the rank as on the CPU.
        K32 = ipdpp.DenseKernel(L32)
        assert K32.rank == cpu32.rank and K32.eigh()[1].dtype == np.float32
    eps32 = float(np.finfo(np.float32).eps)
    assert _dense_tolerances(10, eps32) == (pytest.approx(10 * eps32),) * 2


def test_ipdpp_kernel_on_the_cuda_path() -> None:
    p = np.random.default_rng(SEED).beta(8.0, 2.0, 40)
    cpu = ipdpp.IPDPPKernel(p)
    # The device decomposes the dense S (the CPU solves the secular equation instead).
    dense = ipdpp.DenseKernel(cpu.dense())
    with fake_cuda() as fake:
        S = ipdpp.IPDPPKernel(p)
        assert S.alpha == cpu.alpha and S.structural_rank() == 40
        np.testing.assert_array_equal(
            ipdpp.sample_k_dpp(S, 5, 20, seed=SEED, sample_offset=3),
            ipdpp.sample_k_dpp(cpu, 5, 20, seed=SEED, sample_offset=3),
        )
        assert fake.calls == ["structured_sample"]
        spectral = ipdpp.sample_k_dpp(S, 5, 20, seed=SEED, method="spectral")
        assert fake.calls[-2:] == ["dense_spectrum", "sample auto"]
        method = _core.auto_method("cuda", 40, S.rank, 5, 8)
        np.testing.assert_array_equal(
            spectral, ipdpp.sample_k_dpp(dense, 5, 20, seed=SEED, method=method)
        )
        with pytest.raises(ValueError, match=r"p must lie in \[0, 1\]"):
            ipdpp.IPDPPKernel(np.array([0.5, 1.5]))


def test_balanced_subset_on_the_cuda_path() -> None:
    rng = np.random.default_rng(SEED)
    sizes = np.array([40, 25, 9, 3, 0, 12])
    labels = rng.permutation(np.repeat(np.arange(6), sizes))
    p = rng.uniform(0.05, 0.95, labels.size)
    k = np.array([5, 5, 9, 5, 2, 0])
    for mode in ("exact", "random", "greedy", "paper"):
        expected = ipdpp.balanced_subset(labels, p, k, mode=mode, seed=7)
        with fake_cuda() as fake:
            kept = ipdpp.balanced_subset(labels, p, k, mode=mode, seed=7)
        np.testing.assert_array_equal(kept, expected, err_msg=mode)
        # Only the exact draw runs on the device; the other modes use the CPU library.
        assert fake.calls == (["balanced_subset"] if mode == "exact" else []), mode
    for alpha in ("code", 0.01):
        expected = ipdpp.balanced_subset(labels, p, 4, alpha=alpha, seed=1)
        with fake_cuda():
            kept = ipdpp.balanced_subset(labels, p, 4, alpha=alpha, seed=1)
        np.testing.assert_array_equal(kept, expected, err_msg=str(alpha))
    with fake_cuda() as fake:
        empty = ipdpp.balanced_subset(np.zeros(0, int), np.zeros(0), 3)
        assert empty.shape == (0,) and empty.dtype == np.int64 and fake.calls == []
        assert ipdpp.balanced_subset(labels, p, 0).shape == (0,)
