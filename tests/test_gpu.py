"""GPU tests of the CUDA backend (ipdpp._cuda through ipdpp._cuda_backend).

Skipped as a whole, with the reason, where ipdpp._cuda was not built or no CUDA device is
visible. Exactness is judged like on the CPU (tests/_stats.py against ipdpp._reference):
chi-square against enumeration for tiny kernels, inclusion frequencies against exact marginals
for larger ones; plus determinism (batch == one by one), the structured IP-DPP sampler against
the CPU one, and array interop for torch and CuPy.
"""

from __future__ import annotations

import importlib.util
from typing import Any, Callable

import numpy as np
import pytest
from _stats import (
    assert_marginals,
    assert_subset_distribution,
    assert_valid_samples,
)
from conftest import SEED, cuda_unavailable_reason

_REASON = cuda_unavailable_reason()
if _REASON is not None:
    pytest.skip(_REASON, allow_module_level=True)

import torch  # noqa: E402  (only after the skip: the module needs torch with CUDA)

import ipdpp  # noqa: E402
from ipdpp import _cuda_backend as gpu  # noqa: E402
from ipdpp import _reference as ref  # noqa: E402

pytestmark = pytest.mark.gpu
RTOL = ipdpp.EIGENVALUE_RTOL
METHODS = ["sequential", "rejection"]
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


def lowrank_case(n: int, d: int, dtype: type, *, quality: bool = False, seed: int = SEED):
    rng = np.random.default_rng(seed)
    B = rng.standard_normal((n, d)).astype(dtype)
    q = rng.uniform(0.3, 2.0, n) if quality else None
    return B, q, ref.dense_from_lowrank(B.astype(np.float64), q)


def spectrum_of(B: np.ndarray, q: np.ndarray | None, framework: str = "torch") -> gpu.CudaSpectrum:
    return gpu.lowrank_spectrum(
        on_device(B, framework), None if q is None else on_device(q, framework), RTOL
    )


# ----------------------------------------------------------------------------------------------
# Kernel construction
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lowrank_spectrum_matches_dense(framework: str, dtype: type) -> None:
    B, q, L = lowrank_case(300, 24, dtype, quality=True)
    spectrum = spectrum_of(B, q, framework)
    lam, V = spectrum.eigh()
    lam, V = to_host(lam), to_host(V).astype(np.float64)
    assert V.dtype == np.float64 and to_host(spectrum.eigenvectors()).dtype == dtype
    expected = np.linalg.eigvalsh(L)[-24:]
    np.testing.assert_allclose(lam, expected, rtol=1e-9, atol=1e-9 * expected.max())
    tol = 1e-5 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(V.T @ V, np.eye(24), atol=tol)
    np.testing.assert_allclose((V * lam) @ V.T, L, atol=tol * 10 * np.abs(L).max())


def test_dense_spectrum_matches_numpy() -> None:
    _, _, L = lowrank_case(40, 10, np.float64)
    spectrum = gpu.dense_spectrum(on_device(L, "torch"), RTOL)
    lam, V = (to_host(a) for a in spectrum.eigh())
    assert spectrum.rank == 10
    np.testing.assert_allclose(lam, np.linalg.eigvalsh(L)[-10:], rtol=1e-10)
    np.testing.assert_allclose((V * lam) @ V.T, L, atol=1e-9 * np.abs(L).max())


def test_dense_kernel_accepts_what_the_cpu_accepts() -> None:
    # A rank-deficient float32 L: rounding its entries leaves eigenvalues ~ -n eps32 max|L|,
    # which both devices must accept with the same (float32) tolerances and the same rank.
    rng = np.random.default_rng(SEED)
    A = rng.standard_normal((80, 5))
    L = (A @ A.T).astype(np.float32)
    L = (L + L.T) / 2
    cpu = ipdpp.DenseKernel(L)
    dev = ipdpp.DenseKernel(on_device(L, "torch"))
    assert dev.rank == cpu.rank
    # Both decompose the same float64 values; the float32 rounding noise among the eigenvalues
    # only agrees to the solvers' absolute accuracy.
    np.testing.assert_allclose(to_host(dev.eigh()[0]), cpu.eigh()[0], atol=1e-12 * np.abs(L).max())
    asymmetric = L.copy()
    asymmetric[0, 1] += 1e-2 * np.abs(L).max()
    for make in (lambda x: x, lambda x: on_device(x, "torch")):
        with pytest.raises(ValueError, match="symmetric"):
            ipdpp.DenseKernel(make(asymmetric))


def test_dual_gram_eigenvalues() -> None:
    B, q, L = lowrank_case(500, 16, np.float32, quality=True)
    w = gpu.dual_gram_eigenvalues(on_device(B, "torch"), on_device(q, "torch"))
    np.testing.assert_allclose(w, np.linalg.eigvalsh(L)[-16:], rtol=1e-9, atol=1e-9 * w.max())


# ----------------------------------------------------------------------------------------------
# Exactness: chi-square against enumeration, marginals against exact inclusion probabilities
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_k_dpp_matches_enumeration(method: str, dtype: type) -> None:
    B, q, L = lowrank_case(8, 5, dtype, quality=True)
    spectrum = spectrum_of(B, q)
    samples = to_host(gpu.sample_k_dpp(spectrum, 3, 20_000, seed=SEED, method=method))
    assert_valid_samples(samples, 8, 3)
    assert_subset_distribution(
        samples, ref.k_dpp_subset_probabilities(L, 3), label=f"{method} {np.dtype(dtype)}"
    )


@pytest.mark.parametrize("method", METHODS)
def test_dpp_matches_enumeration(method: str) -> None:
    B, _, L = lowrank_case(7, 4, np.float64)
    L = L / 3.0  # moderate eigenvalues: every size 0..4 has visible mass
    spectrum = spectrum_of(B / np.sqrt(3.0), None)
    samples = [to_host(s) for s in gpu.sample_dpp(spectrum, 20_000, seed=SEED, method=method)]
    assert_valid_samples(samples, 7)
    assert_subset_distribution(samples, ref.dpp_subset_probabilities(L), label=method)


@pytest.mark.parametrize("method", METHODS)
def test_k_dpp_marginals_larger_kernel(method: str) -> None:
    B, q, L = lowrank_case(400, 30, np.float32, quality=True)
    spectrum = spectrum_of(B, q)
    samples = to_host(gpu.sample_k_dpp(spectrum, 12, 4_000, seed=SEED, method=method))
    assert_valid_samples(samples, 400, 12)
    assert_marginals(samples, ref.k_dpp_inclusion_probabilities(L, 12), label=method)


def test_sequential_many_blocks_per_sample_marginals() -> None:
    # n large enough that one sample is spread over many blocks: exercises the cross-block race
    # and the per-block Gram-Schmidt copies; compared with the CPU library's exact marginals.
    B, _, _ = lowrank_case(20_000, 16, np.float32)
    spectrum = spectrum_of(B, None)
    samples = np.concatenate(
        [
            to_host(
                gpu.sample_k_dpp(
                    spectrum, 8, 4, seed=SEED, sample_offset=4 * i, method="sequential"
                )
            )
            for i in range(150)
        ]
    )
    assert_valid_samples(samples, 20_000, 8)
    exact = ipdpp.inclusion_probabilities(ipdpp.LowRankKernel(B), 8)
    assert_marginals(samples, exact, label="sequential, many blocks")


def test_zero_quality_items_never_selected() -> None:
    B, _, _ = lowrank_case(60, 6, np.float64)
    q = np.ones(60)
    q[::3] = 0.0
    spectrum = spectrum_of(B, q)
    for method in METHODS:
        samples = to_host(gpu.sample_k_dpp(spectrum, 6, 500, seed=SEED, method=method))
        assert_valid_samples(samples, 60, 6)
        assert not np.isin(samples, np.arange(0, 60, 3)).any()


def test_k_equals_rank_and_duplicate_rows() -> None:
    rng = np.random.default_rng(SEED)
    base = rng.standard_normal((10, 4))
    B = np.concatenate([base, base])  # every item has a twin: a sample never holds both
    spectrum = spectrum_of(B, None)
    assert spectrum.rank == 4
    for method in METHODS:
        samples = to_host(gpu.sample_k_dpp(spectrum, 4, 300, seed=SEED, method=method))
        assert_valid_samples(samples, 20, 4)
        assert all(len(set((row % 10).tolist())) == 4 for row in samples)


# ----------------------------------------------------------------------------------------------
# Determinism: batches equal single calls; seeds reproduce
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", [*METHODS, "auto"])
def test_batch_equals_single_calls(method: str) -> None:
    B, q, _ = lowrank_case(3_000, 20, np.float32, quality=True)
    spectrum = spectrum_of(B, q)
    batch = to_host(gpu.sample_k_dpp(spectrum, 10, 6, seed=SEED, sample_offset=5, method=method))
    for i in range(6):
        single = gpu.sample_k_dpp(spectrum, 10, 1, seed=SEED, sample_offset=5 + i, method=method)
        np.testing.assert_array_equal(batch[i], to_host(single)[0])
    again = gpu.sample_k_dpp(spectrum, 10, 6, seed=SEED, sample_offset=5, method=method)
    np.testing.assert_array_equal(batch, to_host(again))
    # DPP samples have random sizes: a batch's largest one (which sizes the sequential kernel's
    # buffers) must not change the others. Eigenvalues ~ 1 spread the sizes.
    spectrum = spectrum_of(B / np.float32(np.sqrt(3_000)), q)
    dpp_batch = gpu.sample_dpp(spectrum, 8, seed=SEED, sample_offset=2, method=method)
    assert len({int(row.shape[0]) for row in dpp_batch}) > 1
    for i in range(8):
        single = gpu.sample_dpp(spectrum, 1, seed=SEED, sample_offset=2 + i, method=method)[0]
        np.testing.assert_array_equal(to_host(dpp_batch[i]), to_host(single))


# ----------------------------------------------------------------------------------------------
# Structured IP-DPP sampler and the grouped balanced_subset
# ----------------------------------------------------------------------------------------------


def test_structured_matches_enumeration() -> None:
    rng = np.random.default_rng(SEED)
    p = rng.beta(8.0, 2.0, 8)
    samples = to_host(gpu.ipdpp_sample_k(on_device(p, "torch"), 1 / 8, 3, 20_000, seed=SEED))
    assert_valid_samples(samples, 8, 3)
    L = ref.dense_from_ipdpp(p, "paper")
    assert_subset_distribution(samples, ref.k_dpp_subset_probabilities(L, 3), label="structured")


def test_structured_equals_cpu_sampler() -> None:
    # Same tables, same walk, same Philox stream as csrc/cpu/ipdpp_sampler.cpp: the draws agree
    # (a disagreement needs a uniform within ~1e-16 of a branch boundary).
    rng = np.random.default_rng(SEED)
    p = rng.beta(8.0, 2.0, 300)
    cpu = ipdpp.sample_k_dpp(ipdpp.IPDPPKernel(p), 20, 50, seed=SEED, method="structured")
    dev = to_host(gpu.ipdpp_sample_k(on_device(p, "torch"), 1 / 300, 20, 50, seed=SEED))
    np.testing.assert_array_equal(dev, cpu)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_balanced_subset_equals_cpu_and_single_calls(framework: str) -> None:
    rng = np.random.default_rng(SEED)
    sizes = (500 * (5 / 500) ** (np.arange(10) / 9)).astype(int)
    labels = rng.permutation(np.repeat(np.arange(10), sizes))
    p = rng.beta(8.0, 2.0, labels.size)
    result = to_host(
        gpu.balanced_subset(on_device(labels, framework), on_device(p, framework), 20, "paper", 7)
    )
    expected = ipdpp.balanced_subset(labels, p, 20, mode="exact", seed=7)
    np.testing.assert_array_equal(result, expected)
    counts = np.bincount(labels[result], minlength=10)
    np.testing.assert_array_equal(counts, np.minimum(sizes, 20))
    # Grouped == single: class c's items are the structured draw with sample_offset = c.
    for c in (0, 4, 9):
        members = np.flatnonzero(labels == c)
        if members.size <= 20:
            continue
        single = to_host(
            gpu.ipdpp_sample_k(
                on_device(p[members], framework), 1 / members.size, 20, 1, seed=7, sample_offset=c
            )
        )[0]
        np.testing.assert_array_equal(members[single], result[labels[result] == c])


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_balanced_subset_empty_input_like_cpu(framework: str) -> None:
    labels, p = np.empty(0, dtype=np.int64), np.empty(0)
    expected = ipdpp.balanced_subset(labels, p, 3)
    result = ipdpp.balanced_subset(on_device(labels, framework), on_device(p, framework), 3)
    assert expected.shape == (0,) and to_host(result).shape == (0,)
    assert to_host(result).dtype == np.int64


def test_balanced_subset_rank_error_names_class() -> None:
    labels = np.repeat(np.arange(3), 6)
    p = np.full(18, 0.5)
    p[6:12] = 1.0  # class 1: S_1 has rank one with alpha = 1/N
    with pytest.raises(ValueError, match="class 1"):
        gpu.balanced_subset(on_device(labels, "torch"), on_device(p, "torch"), 3, "paper", 0)


# ----------------------------------------------------------------------------------------------
# Interop, streams, errors
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_results_are_framework_arrays_on_the_input_device(framework: str) -> None:
    B, _, _ = lowrank_case(200, 8, np.float32)
    spectrum = spectrum_of(B, None, framework)
    samples = gpu.sample_k_dpp(spectrum, 4, 3, seed=SEED)
    if framework == "torch":
        assert isinstance(samples, torch.Tensor) and samples.is_cuda
        assert samples.dtype == torch.int64
    else:
        import cupy

        assert isinstance(samples, cupy.ndarray) and samples.dtype == np.int64
    assert samples.shape == (3, 4)


def test_zero_copy_and_conversions() -> None:
    B, _, _ = lowrank_case(100, 6, np.float32)
    tensor = torch.from_numpy(B).cuda()
    view = gpu.device_array(tensor, "features", ndim=2, shape_doc="(n, d)")
    assert view.ptr == tensor.data_ptr()  # contiguous float32: no copy
    transposed = torch.from_numpy(np.ascontiguousarray(B.T)).cuda().T
    assert not transposed.is_contiguous()
    assert gpu.device_array(transposed, "features", ndim=2, shape_doc="(n, d)").ptr != 0
    half = gpu.device_array(tensor.half(), "features", ndim=2, shape_doc="(n, d)")
    assert half.dtype == np.float32
    # A spectrum from a non-contiguous tensor equals the one from its contiguous copy.
    a = gpu.lowrank_spectrum(transposed, None, RTOL).eigenvalues
    b = gpu.lowrank_spectrum(tensor, None, RTOL).eigenvalues
    np.testing.assert_allclose(a, b, rtol=1e-12)


def test_runs_on_the_callers_stream() -> None:
    B, _, _ = lowrank_case(2_000, 12, np.float32)
    spectrum = spectrum_of(B, None)
    reference = to_host(gpu.sample_k_dpp(spectrum, 6, 8, seed=SEED))
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        on_stream = gpu.sample_k_dpp(spectrum, 6, 8, seed=SEED)
    stream.synchronize()
    np.testing.assert_array_equal(to_host(on_stream), reference)


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: gpu.sample_k_dpp(spectrum_of(np.eye(5), None), 6), ValueError, "rank"),
        (
            lambda: gpu.lowrank_spectrum(on_device(np.full((4, 2), np.nan), "torch"), None, RTOL),
            ValueError,
            "finite",
        ),
        (
            lambda: gpu.lowrank_spectrum(
                on_device(np.ones((4, 2), dtype=np.int32), "torch"), None, RTOL
            ),
            TypeError,
            "float32 or float64",
        ),
        (
            lambda: gpu.lowrank_spectrum(
                on_device(np.ones((4, 2)), "torch"), on_device(-np.ones(4), "torch"), RTOL
            ),
            ValueError,
            "non-negative",
        ),
        (
            lambda: gpu.ipdpp_sample_k(on_device(np.full(5, 1.5), "torch"), 0.2, 2),
            ValueError,
            r"\[0, 1\]",
        ),
    ],
)
def test_bad_input(make: Callable[[], Any], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        make()


@pytest.mark.parametrize(
    "L, match",
    [
        (np.diag([2.0, -1.0, 1.0]), "positive semidefinite"),
        (np.array([[1.0, 0.5], [0.0, 1.0]]), "symmetric"),
    ],
)
def test_dense_kernel_checks(L: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        gpu.dense_spectrum(on_device(L, "torch"), RTOL)


def test_out_of_memory_is_memory_error() -> None:
    # A 2^18 x 2^18 float64 Gram matrix (512 GiB) does not fit on any current GPU: reported as
    # MemoryError naming the allocation, not as a crash.
    features = torch.zeros(1, dtype=torch.float32, device="cuda")
    ext = gpu._extension()
    stream = torch.cuda.current_stream().cuda_stream
    with pytest.raises(MemoryError, match="out of memory"):
        ext.dual_gram_eigenvalues(
            features.data_ptr(), "float32", 1, 2**18, 0, torch.cuda.current_device(), stream
        )
    # The failed allocation must not linger as the thread's "last error" and fail the next
    # kernel launch check.
    B, _, _ = lowrank_case(50, 4, np.float32)
    assert_valid_samples(to_host(gpu.sample_k_dpp(spectrum_of(B, None), 2, 3, seed=SEED)), 50, 2)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_to_host_and_back(framework: str) -> None:
    x = np.arange(6, dtype=np.int64)
    like = on_device(np.zeros(2), framework)
    back = gpu.to_device_like(x, like)
    assert type(back) is type(like)
    np.testing.assert_array_equal(gpu.to_host(back), x)
