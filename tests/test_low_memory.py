"""The low-memory mode of LowRankKernel: eigenvector rows computed from the features on demand.

Exactness against enumeration (features in a memory-mapped file, forced into the mode), the same
samples as the stored eigenvectors for the same seed, the ``memory=`` rule and its errors, and
that memory-mapped float32 features are read in place.
"""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import pytest
from _stats import assert_subset_distribution, assert_valid_samples

import ipdpp
from ipdpp import _core, _memory
from ipdpp import _reference as ref

NUM_SAMPLES = 20_000
RTOL = ipdpp.EIGENVALUE_RTOL


def _features(
    tmp_path: Path, n: int, d: int, dtype: type, seed: int, rank: int | None = None
) -> np.memmap:
    """Gaussian features (n, d) of the given rank (default d) in a read-only memory map."""
    rng = np.random.default_rng(seed)
    B = rng.standard_normal((n, rank or d))
    if rank is not None:
        B = B @ rng.standard_normal((rank, d))
    path = tmp_path / f"features-{n}x{d}.bin"
    B.astype(dtype).tofile(path)
    return np.memmap(path, dtype=dtype, mode="r", shape=(n, d))


# name -> (n, d, rank of B, with quality). "deficient" has rank 3 < d = 5, so W keeps only the
# kept eigenvectors' columns.
CASES = {"plain": (7, 4, None, False), "quality": (7, 4, None, True), "deficient": (8, 5, 3, True)}


def _kernel(tmp_path: Path, name: str, dtype: type, seed: int, memory: object = "low"):
    n, d, rank, with_quality = CASES[name]
    B = _features(tmp_path, n, d, dtype, seed, rank)
    q = np.random.default_rng(seed + 1).uniform(0.3, 2.0, n) if with_quality else None
    K = ipdpp.LowRankKernel(B, quality=q, memory=memory)
    return K, ref.dense_from_lowrank(np.asarray(B, dtype=np.float64), q)


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("k", [2, 3])
def test_k_dpp_exact_distribution(
    tmp_path: Path, dtype: type, seed: int, name: str, k: int
) -> None:
    K, L = _kernel(tmp_path, name, dtype, seed)
    assert K.low_memory
    samples = np.asarray(ipdpp.sample_k_dpp(K, k, NUM_SAMPLES, seed=seed))
    assert_valid_samples(samples, K.n, k)
    assert_subset_distribution(
        samples, ref.k_dpp_subset_probabilities(L, k), label=f"low-memory k-DPP {name} k={k}"
    )


@pytest.mark.parametrize("name", list(CASES))
def test_dpp_exact_distribution(tmp_path: Path, dtype: type, seed: int, name: str) -> None:
    K, L = _kernel(tmp_path, name, dtype, seed)
    samples = ipdpp.sample_dpp(K, NUM_SAMPLES, seed=seed, method="rejection")
    assert_valid_samples(samples, K.n)
    assert_subset_distribution(
        samples, ref.dpp_subset_probabilities(L), label=f"low-memory DPP {name}"
    )


@pytest.mark.parametrize("name", list(CASES))
def test_same_samples_as_stored_eigenvectors(
    tmp_path: Path, dtype: type, seed: int, name: str
) -> None:
    # The rejection sampler draws a fixed stream of proposals whatever is accepted, and the
    # leverage scores come from the same products in both modes, so only a rounding difference
    # of a computed row (~1e-16 relative) flipping an acceptance test could tell them apart.
    low, _ = _kernel(tmp_path, name, dtype, seed, memory="low")
    stored, _ = _kernel(tmp_path, name, dtype, seed, memory="full")
    assert low.low_memory and not stored.low_memory
    for method in ("rejection", "auto"):  # "auto" is rejection in low-memory mode
        np.testing.assert_array_equal(
            ipdpp.sample_k_dpp(low, 3, 500, seed=seed, method=method, threads=2),
            ipdpp.sample_k_dpp(stored, 3, 500, seed=seed, method="rejection"),
        )
    for a, b in zip(
        ipdpp.sample_dpp(low, 300, seed=seed),
        ipdpp.sample_dpp(stored, 300, seed=seed, method="rejection"),
    ):
        np.testing.assert_array_equal(a, b)


def test_batch_and_threads_do_not_change_samples(tmp_path: Path, seed: int) -> None:
    B = _features(tmp_path, 2_000, 12, np.float32, seed)
    K = ipdpp.LowRankKernel(B, memory="low")
    batch = ipdpp.sample_k_dpp(K, 10, 8, seed=seed, threads=1)
    np.testing.assert_array_equal(batch, ipdpp.sample_k_dpp(K, 10, 8, seed=seed, threads=3))
    for i in (0, 5):
        single = ipdpp.sample_k_dpp(K, 10, 1, seed=seed, sample_offset=i)
        np.testing.assert_array_equal(single[0], batch[i])


def test_memory_mapped_float32_features_are_read_in_place(tmp_path: Path, seed: int) -> None:
    B = _features(tmp_path, 500, 6, np.float32, seed)
    K = ipdpp.LowRankKernel(B, memory="low")
    assert K.features.dtype == np.float32
    assert np.shares_memory(K.features, B)


@pytest.mark.parametrize("row", [0, 150_001, 299_999])
def test_non_finite_memory_mapped_features_are_refused(tmp_path: Path, row: int) -> None:
    # Large enough (1.2e6 values) to be checked in slices: a NaN in any slice is found.
    path = tmp_path / "nan.bin"
    B = np.memmap(path, dtype=np.float32, mode="w+", shape=(300_000, 4))
    B[:] = 1.0
    B[row, 2] = np.nan
    B.flush()
    with pytest.raises(ValueError, match="^features must not contain NaN or Inf"):
        ipdpp.LowRankKernel(np.memmap(path, dtype=np.float32, mode="r", shape=(300_000, 4)))


def test_spectrum_keeps_its_features_alive(seed: int) -> None:
    B = np.random.default_rng(seed).standard_normal((300, 5))
    spectrum = _core.lowrank_spectrum(B.copy(), None, RTOL, 0)  # the only reference to the copy
    gc.collect()
    reference = _core.lowrank_spectrum(B, None, RTOL, -1)
    np.testing.assert_array_equal(
        _core.sample_k_dpp(spectrum, 4, 50, seed, 0, "rejection", 1),
        _core.sample_k_dpp(reference, 4, 50, seed, 0, "rejection", 1),
    )


# --- the memory= rule ----------------------------------------------------------------------------


def test_budget_in_bytes_decides_the_storage(seed: int) -> None:
    B = np.random.default_rng(seed).standard_normal((100, 4))
    needed = 10 * 100 * 4  # n x rank float64 and their bfloat16 copy
    assert not ipdpp.LowRankKernel(B, memory=needed).low_memory
    assert ipdpp.LowRankKernel(B, memory=needed - 1).low_memory
    assert ipdpp.LowRankKernel(B, memory=np.int64(0)).low_memory
    assert not ipdpp.LowRankKernel(B, memory=2**70).low_memory  # beyond int64: no limit


def test_auto_uses_half_the_available_memory(monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    B = np.random.default_rng(seed).standard_normal((100, 4))
    needed = 10 * 100 * 4
    monkeypatch.setattr(_memory, "available_memory", lambda: 2 * needed)
    assert not ipdpp.LowRankKernel(B).low_memory
    monkeypatch.setattr(_memory, "available_memory", lambda: 2 * needed - 2)
    assert ipdpp.LowRankKernel(B).low_memory
    assert not ipdpp.LowRankKernel(B, memory="full").low_memory
    monkeypatch.setattr(_memory, "available_memory", lambda: None)
    assert not ipdpp.LowRankKernel(B, memory=None).low_memory  # unknown: stored


def test_available_memory_reads_meminfo_and_the_cgroup(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:  1000 kB\nMemFree:  10 kB\nMemAvailable:   300 kB\n")
    assert _memory._meminfo_available(meminfo) == 300 * 1024
    assert _memory._meminfo_available(tmp_path / "missing") is None
    (tmp_path / "memory.max").write_text("max\n")
    assert _memory._cgroup_available(tmp_path) is None
    (tmp_path / "memory.max").write_text("5000\n")
    (tmp_path / "memory.current").write_text("1200\n")
    assert _memory._cgroup_available(tmp_path) == 3800
    available = ipdpp.available_memory()
    assert available is None or available > 0


def test_more_features_than_items_always_stores(seed: int) -> None:
    # n <= d: the eigenvectors come from the n x n primal Gram and are no larger than B.
    B = np.random.default_rng(seed).standard_normal((5, 9))
    K = ipdpp.LowRankKernel(B, memory="low")
    assert not K.low_memory
    assert K.eigh()[1].shape == (5, 5)
    assert ipdpp.sample_k_dpp(K, 3, 2, seed=seed, method="sequential").shape == (2, 3)


@pytest.mark.parametrize(
    ("memory", "error"),
    [("lo", ValueError), (-1, ValueError), (1.5, TypeError), (True, TypeError), ([], TypeError)],
)
def test_bad_memory_option_names_the_argument(memory: object, error: type) -> None:
    with pytest.raises(error, match="^memory must be 'auto', 'full', 'low' or a budget"):
        ipdpp.LowRankKernel(np.ones((4, 2)), memory=memory)


def test_no_low_memory_mode_on_a_gpu() -> None:
    assert _memory.check_memory_option("full", low_memory_supported=False) == "full"
    for memory in ("low", 10):
        with pytest.raises(ValueError, match="low-memory mode .* runs on the CPU"):
            _memory.check_memory_option(memory, low_memory_supported=False)


def test_what_needs_stored_eigenvectors_says_so(tmp_path: Path, seed: int) -> None:
    K, _ = _kernel(tmp_path, "quality", np.float32, seed)
    with pytest.raises(ValueError, match="^method='sequential' reads whole columns"):
        ipdpp.sample_k_dpp(K, 2, method="sequential")
    with pytest.raises(ValueError, match="^method='sequential' reads whole columns"):
        ipdpp.sample_dpp(K, method="sequential")
    for call in (K.eigh, lambda: ipdpp.greedy_map(K, 2)):
        with pytest.raises(ValueError, match="^the eigenvectors of a low-memory kernel"):
            call()
    assert K.rank == 4  # the kernel itself still works
    assert ipdpp.sample_k_dpp(K, 2, seed=seed).shape == (1, 2)


@pytest.mark.parametrize("name", list(CASES))
def test_exact_probabilities_from_computed_rows(
    tmp_path: Path, dtype: type, seed: int, name: str
) -> None:
    # log_prob reads the rows of Y, inclusion_probabilities one weighted pass over all rows.
    low, L = _kernel(tmp_path, name, dtype, seed, memory="low")
    stored, _ = _kernel(tmp_path, name, dtype, seed, memory="full")
    for k in (None, 2):
        np.testing.assert_allclose(
            ipdpp.inclusion_probabilities(low, k),
            ipdpp.inclusion_probabilities(stored, k),
            rtol=1e-10,
            atol=1e-12,
        )
        for Y in ([0, 3], [1, 5]):
            np.testing.assert_allclose(
                ipdpp.log_prob(low, Y, k), ipdpp.log_prob(stored, Y, k), rtol=1e-9
            )
    # Against float64 arithmetic on the same values: the dual Gram of float32 features is summed
    # from float32 products (about 1e-7 of the largest eigenvalue), of float64 ones in float64.
    exact = np.diag(L @ np.linalg.inv(L + np.eye(L.shape[0])))
    atol = 1e-9 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(ipdpp.inclusion_probabilities(low), exact, atol=atol)


def test_stored_eigenvectors_are_formed_once_they_repay(seed: int) -> None:
    # n = 20,000, d = rank = 8, k = 4: forming V costs n d rank = 1.28e6 multiply-adds, a sample
    # from computed rows H_4 rank d k kComputedRowCost ~ 1.1e3 more than one from stored rows, so
    # V repays itself after about 1,200 samples (csrc/cpu/spectral_sampler.h).
    B = np.random.default_rng(seed).standard_normal((20_000, 8))
    stored = ipdpp.LowRankKernel(B, memory="full")
    low = ipdpp.LowRankKernel(B, memory="low")
    spectrum = stored._spectrum()

    def same(num: int, offset: int) -> None:
        np.testing.assert_array_equal(
            ipdpp.sample_k_dpp(stored, 4, num, seed=seed, sample_offset=offset),
            ipdpp.sample_k_dpp(low, 4, num, seed=seed, sample_offset=offset),
        )

    for offset in range(0, 50, 10):  # small calls: computed rows, the same samples
        same(10, offset)
    assert not spectrum.eigenvectors_formed
    np.testing.assert_allclose(  # rows and norms are computed too, without forming V
        ipdpp.log_prob(stored, [3, 7, 11, 19], 4), ipdpp.log_prob(low, [3, 7, 11, 19], 4)
    )
    assert not spectrum.eigenvectors_formed
    same(2_000, 50)  # one call that repays forming V
    assert spectrum.eigenvectors_formed
    same(10, 7)  # stored rows now, still the same samples


def test_many_small_calls_form_the_eigenvectors_in_the_end(seed: int) -> None:
    B = np.random.default_rng(seed).standard_normal((20_000, 8))
    K = ipdpp.LowRankKernel(B, memory="full")
    for offset in range(0, 2_000, 100):
        ipdpp.sample_k_dpp(K, 4, 100, seed=seed, sample_offset=offset)
    assert K._spectrum().eigenvectors_formed
    # The sequential sampler needs the eigenvectors at once.
    K2 = ipdpp.LowRankKernel(B, memory="full")
    ipdpp.sample_k_dpp(K2, 4, 1, seed=seed, method="sequential")
    assert K2._spectrum().eigenvectors_formed


def test_stored_eigenvectors_are_formed_on_first_use(seed: int) -> None:
    B = np.random.default_rng(seed).standard_normal((50, 3))
    K = ipdpp.LowRankKernel(B, memory="full")
    assert K.rank == 3  # eigenvalues only
    values, vectors = K.eigh()
    np.testing.assert_allclose(vectors.T @ vectors, np.eye(3), atol=1e-12)
    np.testing.assert_allclose((vectors * values) @ vectors.T, B @ B.T, atol=1e-10)
