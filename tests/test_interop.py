"""Array interop: numpy in -> numpy out, torch CPU in -> torch out, zero-copy inputs. (GPU arrays
without the CUDA build: tests/test_cuda_build.py.)

Zero-copy is checked through the arrays the kernels keep (documented attributes):
``LowRankKernel.features`` (the features as given, float32 or float64), ``DenseKernel.L`` and
``IPDPPKernel.p`` (float64 input only; float32 is widened, a copy).
"""

from __future__ import annotations

import numpy as np
import pytest
from _stats import assert_valid_samples
from conftest import SEED

import ipdpp

torch = pytest.importorskip("torch")


def features(dtype: type = np.float64) -> np.ndarray:
    return np.random.default_rng(SEED).standard_normal((40, 6)).astype(dtype)


def test_numpy_in_numpy_out(dtype: type) -> None:
    K = ipdpp.LowRankKernel(features(dtype))
    samples = ipdpp.sample_k_dpp(K, 4, 5, seed=SEED)
    assert type(samples) is np.ndarray and samples.dtype == np.int64 and samples.shape == (5, 4)
    dpp = ipdpp.sample_dpp(K, 3, seed=SEED)
    assert all(type(s) is np.ndarray and s.dtype == np.int64 for s in dpp)


@pytest.mark.parametrize("torch_dtype", ["float32", "float64"])
def test_torch_in_torch_out(torch_dtype: str) -> None:
    B = features(np.float64)
    tensor = torch.from_numpy(B).to(getattr(torch, torch_dtype))
    K = ipdpp.LowRankKernel(tensor)
    samples = ipdpp.sample_k_dpp(K, 4, 5, seed=SEED)
    assert isinstance(samples, torch.Tensor)
    assert samples.dtype == torch.int64 and samples.device.type == "cpu"
    assert tuple(samples.shape) == (5, 4)
    assert_valid_samples(samples, 40, 4)
    dpp = ipdpp.sample_dpp(K, 3, seed=SEED)
    assert all(isinstance(s, torch.Tensor) and s.dtype == torch.int64 for s in dpp)
    # Same values, same seed: the same samples as from the numpy array.
    K_np = ipdpp.LowRankKernel(tensor.numpy())
    np.testing.assert_array_equal(samples.numpy(), ipdpp.sample_k_dpp(K_np, 4, 5, seed=SEED))
    for a, b in zip(dpp, ipdpp.sample_dpp(K_np, 3, seed=SEED)):
        np.testing.assert_array_equal(a.numpy(), b)


def test_torch_quality_dense_and_ipdpp() -> None:
    B = torch.from_numpy(features())
    q = torch.linspace(0.5, 2.0, 40, dtype=torch.float64)
    K = ipdpp.LowRankKernel(B, quality=q)
    K_np = ipdpp.LowRankKernel(B.numpy(), quality=q.numpy())
    np.testing.assert_array_equal(
        ipdpp.sample_k_dpp(K, 3, 4, seed=SEED).numpy(), ipdpp.sample_k_dpp(K_np, 3, 4, seed=SEED)
    )
    D = ipdpp.DenseKernel(B @ B.T + torch.eye(40, dtype=torch.float64))
    assert isinstance(ipdpp.sample_k_dpp(D, 3, 2, seed=SEED), torch.Tensor)
    p = torch.linspace(0.05, 0.95, 40, dtype=torch.float32)
    P = ipdpp.IPDPPKernel(p)
    for method in ("auto", "spectral"):
        out = ipdpp.sample_k_dpp(P, 5, 2, seed=SEED, method=method)
        assert isinstance(out, torch.Tensor) and out.dtype == torch.int64


def test_torch_requires_grad_is_accepted() -> None:
    tensor = torch.from_numpy(features()).requires_grad_(True)
    K = ipdpp.LowRankKernel(tensor)
    assert isinstance(ipdpp.sample_k_dpp(K, 2, 1, seed=SEED), torch.Tensor)


@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
def test_zero_copy_numpy(dtype_name: str) -> None:
    B = features(np.dtype(dtype_name).type)
    K = ipdpp.LowRankKernel(B)
    assert K.features.dtype == B.dtype
    assert np.shares_memory(K.features, B), "contiguous features were copied"
    L = B.astype(np.float64) @ B.astype(np.float64).T + np.eye(40)
    D = ipdpp.DenseKernel(L)
    assert np.shares_memory(D.L, L), "contiguous float64 L was copied"
    p = np.linspace(0.1, 0.9, 40)
    assert np.shares_memory(ipdpp.IPDPPKernel(p).p, p), "contiguous float64 p was copied"


@pytest.mark.parametrize("torch_dtype", ["float32", "float64"])
def test_zero_copy_torch(torch_dtype: str) -> None:
    tensor = torch.from_numpy(features()).to(getattr(torch, torch_dtype))
    K = ipdpp.LowRankKernel(tensor)
    assert K.features.ctypes.data == tensor.data_ptr(), "contiguous tensor was copied"
    # The view really is the tensor's memory: a write through the tensor shows up in it.
    with torch.no_grad():
        tensor[0, 0] = 123.0
    assert K.features[0, 0] == 123.0


def test_non_contiguous_input_is_copied_and_correct() -> None:
    wide = np.random.default_rng(SEED).standard_normal((40, 12))
    strided = wide[:, ::2]
    assert not strided.flags.c_contiguous
    K = ipdpp.LowRankKernel(strided)
    K_copy = ipdpp.LowRankKernel(np.ascontiguousarray(strided))
    np.testing.assert_array_equal(
        ipdpp.sample_k_dpp(K, 3, 5, seed=SEED), ipdpp.sample_k_dpp(K_copy, 3, 5, seed=SEED)
    )
    # Fortran order and a transposed torch tensor work too.
    K_f = ipdpp.LowRankKernel(np.asfortranarray(strided))
    np.testing.assert_array_equal(
        ipdpp.sample_k_dpp(K_f, 3, 5, seed=SEED), ipdpp.sample_k_dpp(K_copy, 3, 5, seed=SEED)
    )
    tensor = torch.from_numpy(np.ascontiguousarray(strided.T)).T
    assert not tensor.is_contiguous()
    np.testing.assert_array_equal(
        ipdpp.sample_k_dpp(ipdpp.LowRankKernel(tensor), 3, 5, seed=SEED).numpy(),
        ipdpp.sample_k_dpp(K_copy, 3, 5, seed=SEED),
    )
