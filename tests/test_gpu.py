"""What only a GPU has: framework arrays on the input's device, zero-copy reads, the caller's
stream, device mismatches, and running out of device memory.

Skipped as a whole (by a skip mark), with the reason, where ipdpp._cuda was not built or no CUDA
device is visible. Exactness on the GPU is checked by the device-parametrised suite (the "cuda"
device of tests/conftest.py): the same tests, assertions and thresholds as on the CPU.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np
import pytest
from _stats import assert_valid_samples
from conftest import SEED, cuda_unavailable_reason

import ipdpp
from ipdpp._adapters import adapter_for
from ipdpp._dispatch import cuda_extension

_REASON = cuda_unavailable_reason()
# A skip mark rather than a module-level skip, so that a run selecting other markers (e.g.
# `-m emulated`) deselects these tests instead of reporting them as skipped.
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(_REASON is not None, reason=str(_REASON))]
if _REASON is None:
    import torch  # only where a CUDA device is usable: every test here needs one
HAS_CUPY = importlib.util.find_spec("cupy") is not None
FRAMEWORKS = [
    "torch",
    pytest.param("cupy", marks=pytest.mark.skipif(not HAS_CUPY, reason="no cupy")),
]


def on_device(x: np.ndarray, framework: str) -> Any:
    """A copy of the numpy array ``x`` on the current CUDA device, as torch or cupy."""
    if framework == "torch":
        return torch.from_numpy(np.ascontiguousarray(x)).cuda()
    import cupy

    return cupy.asarray(x)


def to_host(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.cpu().numpy()
    return x.get()


def features(n: int, d: int, dtype: type = np.float32) -> np.ndarray:
    return np.random.default_rng(SEED).standard_normal((n, d)).astype(dtype)


def assert_framework_array(x: Any, framework: str, dtype: Any) -> None:
    if framework == "torch":
        assert isinstance(x, torch.Tensor) and x.is_cuda
        assert x.dtype == getattr(torch, np.dtype(dtype).name)
    else:
        import cupy

        assert isinstance(x, cupy.ndarray) and x.dtype == dtype


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_results_are_framework_arrays_on_the_input_device(framework: str) -> None:
    K = ipdpp.LowRankKernel(on_device(features(200, 8), framework))
    samples = ipdpp.sample_k_dpp(K, 4, 3, seed=SEED)
    assert_framework_array(samples, framework, np.int64)
    assert tuple(samples.shape) == (3, 4)
    for sample in ipdpp.sample_dpp(K, 3, seed=SEED):
        assert_framework_array(sample, framework, np.int64)
    values, vectors = K.eigh()
    assert_framework_array(values, framework, np.float64)
    assert_framework_array(vectors, framework, np.float32)  # the input's dtype
    assert_framework_array(ipdpp.inclusion_probabilities(K, k=2), framework, np.float64)
    assert_framework_array(ipdpp.greedy_map(K, 3), framework, np.int64)
    labels = np.repeat([0, 1], [30, 10])
    p = np.linspace(0.1, 0.9, 40)
    for mode in ("exact", "random"):
        kept = ipdpp.balanced_subset(on_device(labels, framework), on_device(p, framework), 5, mode)
        assert_framework_array(kept, framework, np.int64)


def test_zero_copy_and_conversions() -> None:
    B = features(100, 6)
    tensor = torch.from_numpy(B).cuda()
    K = ipdpp.LowRankKernel(tensor)
    assert K.features.data_ptr() == tensor.data_ptr()  # contiguous float32: no copy
    transposed = torch.from_numpy(np.ascontiguousarray(B.T)).cuda().T
    assert not transposed.is_contiguous()
    copied = ipdpp.LowRankKernel(transposed)
    assert copied.features.is_contiguous() and copied.features.data_ptr() != transposed.data_ptr()
    assert ipdpp.LowRankKernel(tensor.half()).features.dtype == torch.float32
    # A spectrum from a non-contiguous tensor equals the one from its contiguous copy.
    a, b = to_host(copied.eigh()[0]), to_host(K.eigh()[0])
    np.testing.assert_allclose(a, b, rtol=1e-12)
    # The eigenvectors are a view of the cached spectrum, not a copy per call.
    assert K.eigh()[1].data_ptr() == K.eigh()[1].data_ptr()


def test_runs_on_the_callers_stream() -> None:
    K = ipdpp.LowRankKernel(torch.from_numpy(features(2_000, 12)).cuda())
    reference = to_host(ipdpp.sample_k_dpp(K, 6, 8, seed=SEED))
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        on_stream = ipdpp.sample_k_dpp(K, 6, 8, seed=SEED)
    stream.synchronize()
    np.testing.assert_array_equal(to_host(on_stream), reference)


def test_arrays_on_another_device_are_rejected() -> None:
    B = torch.from_numpy(features(10, 3)).cuda()
    with pytest.raises(ValueError, match="quality must be on cuda:0 like the other inputs"):
        ipdpp.LowRankKernel(B, quality=np.ones(10))
    # balanced_subset copies host labels and p to the GPU argument's device.
    labels, p = np.repeat([0, 1], [6, 4]), np.linspace(0.1, 0.9, 10)
    kept = ipdpp.balanced_subset(labels, torch.from_numpy(p).cuda(), 3, seed=1)
    np.testing.assert_array_equal(to_host(kept), ipdpp.balanced_subset(labels, p, 3, seed=1))


def test_columns_method_is_cpu_only() -> None:
    K = ipdpp.LowRankKernel(torch.from_numpy(features(200, 8)).cuda())
    with pytest.raises(ValueError, match="^method='columns' runs on the CPU only"):
        ipdpp.sample_k_dpp(K, 3, method="columns")


def test_dual_gram_eigenvalues() -> None:
    # The benchmarks' Gram + eigendecomposition entry point of the extension.
    rng = np.random.default_rng(SEED)
    B = rng.standard_normal((500, 16)).astype(np.float32)
    q = rng.uniform(0.3, 2.0, 500)
    L = (q[:, None] * B.astype(np.float64)) @ (q[:, None] * B.astype(np.float64)).T
    B_t, q_t = torch.from_numpy(B).cuda(), torch.from_numpy(q).cuda()
    extension = cuda_extension()
    assert extension is not None
    w = extension.dual_gram_eigenvalues(
        B_t.data_ptr(),
        "float32",
        500,
        16,
        q_t.data_ptr(),
        0,
        torch.cuda.current_stream().cuda_stream,
    )
    np.testing.assert_allclose(w, np.linalg.eigvalsh(L)[-16:], rtol=1e-9, atol=1e-9 * w.max())


def test_out_of_memory_is_memory_error() -> None:
    # A 2^18 x 2^18 float64 Gram matrix (512 GiB) does not fit on any current GPU: reported as
    # MemoryError naming the allocation, not as a crash.
    features_t = torch.zeros(1, dtype=torch.float32, device="cuda")
    extension = cuda_extension()
    assert extension is not None
    stream = torch.cuda.current_stream().cuda_stream
    with pytest.raises(MemoryError, match="out of memory"):
        extension.dual_gram_eigenvalues(
            features_t.data_ptr(), "float32", 1, 2**18, 0, torch.cuda.current_device(), stream
        )
    # The failed allocation must not linger as the thread's "last error" and fail the next
    # kernel launch check.
    K = ipdpp.LowRankKernel(torch.from_numpy(features(50, 4)).cuda())
    assert_valid_samples(to_host(ipdpp.sample_k_dpp(K, 2, 3, seed=SEED)), 50, 2)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_to_host_and_back(framework: str) -> None:
    x = np.arange(6, dtype=np.int64)
    like = on_device(np.zeros(2), framework)
    arrays = adapter_for(like, "like")
    back = arrays.from_host(x)
    assert type(back) is type(like)
    np.testing.assert_array_equal(arrays.to_host(back), x)
