"""CPU-side checks of the CUDA backend: the build gate, lazy imports, the dispatch rules, and the
CUDA code path run end to end on host memory.

These run on machines without a GPU (CI). The end-to-end tests put :class:`ipdpp._gpu.CudaBackend`
over ``FakeCudaExtension`` (tests/conftest.py), which implements the extension's API with the CPU
library on host addresses: they check what the backend does around the kernels (addresses,
shapes, output allocation, DPP padding, class grouping, the symmetry check, method choice), and
that it returns what the CPU backend returns. tests/test_gpu.py and the device-parametrised
suite run the real kernels.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from conftest import SEED, FakeCudaArray, FakeCudaExtension

import ipdpp
from ipdpp import _core, _dispatch
from ipdpp._adapters import HostArrays
from ipdpp._cpu import CpuBackend
from ipdpp._dispatch import backend_for, forced_backend
from ipdpp._frameworks import is_cuda_array
from ipdpp._gpu import CudaBackend
from ipdpp._validation import host_array
from ipdpp.kernels import _dense_tolerances

ROOT = Path(__file__).resolve().parents[1]
# The source lists, shared by the CUDA build and the CPU emulator's (csrc/emulator/emulator.cmake).
CUDA_SOURCES = ROOT / "csrc" / "cuda" / "sources.cmake"
CUDA_BUILT = importlib.util.find_spec("ipdpp._cuda") is not None


def test_backend_import_is_lazy(tmp_path: Path) -> None:
    # import ipdpp (and the dispatch module) must not load the extension, torch or cupy.
    code = (
        "import sys, ipdpp, ipdpp._dispatch as d; "
        "print('ipdpp._cuda' in sys.modules, 'torch' in sys.modules, 'cupy' in sys.modules, "
        "d.cuda_available())"
    )
    out = subprocess.run(
        # cwd outside the source tree, so the installed package (with _core) is imported
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    ).stdout.split()
    assert out[:3] == ["False", "False", "False"]
    assert out[3] == str(CUDA_BUILT)


# ----------------------------------------------------------------------------------------------
# The dispatch: one place picks the backend, one place says that CUDA is missing
# ----------------------------------------------------------------------------------------------

NO_CUDA_CALLS = [
    (lambda: ipdpp.LowRankKernel(FakeCudaArray((10, 3))), "features"),
    (
        lambda: ipdpp.LowRankKernel(np.ones((40, 6)), quality=FakeCudaArray((40,), "<f8")),
        "quality",
    ),
    (lambda: ipdpp.DenseKernel(FakeCudaArray((4, 4), "<f8")), "L"),
    (lambda: ipdpp.IPDPPKernel(FakeCudaArray((5,))), "p"),
    (
        lambda: ipdpp.balanced_subset(
            FakeCudaArray((5,), "<i8"), FakeCudaArray((5,), "<f8"), 2, "exact", "paper", 0
        ),
        "labels",
    ),
    (lambda: ipdpp.balanced_subset(np.zeros(5, int), FakeCudaArray((5,), "<f8"), 2), "p"),
    (
        lambda: ipdpp.balanced_subset(np.zeros(5, int), np.ones(5) / 2, FakeCudaArray((1,), "<i8")),
        "k_per_class",
    ),
]


@pytest.mark.skipif(CUDA_BUILT, reason="ipdpp was built with CUDA")
@pytest.mark.parametrize("call, name", NO_CUDA_CALLS)
def test_cuda_arrays_without_the_extension(call, name: str) -> None:
    with pytest.raises(
        ValueError, match=f"{name} is a CUDA array but ipdpp was built without CUDA"
    ):
        call()


def test_the_missing_extension_is_reported_by_the_dispatch(monkeypatch: pytest.MonkeyPatch) -> None:
    # Whatever the build, a missing extension is reported where the backend is picked.
    monkeypatch.setattr(_dispatch, "cuda_extension", lambda: None)
    for call, name in NO_CUDA_CALLS:
        with pytest.raises(ValueError, match=f"{name} is a CUDA array but ipdpp was built"):
            call()


def test_fake_cuda_array_is_recognised() -> None:
    assert is_cuda_array(FakeCudaArray((3,)))
    assert not is_cuda_array([1.0, 2.0])
    assert not is_cuda_array(np.ones(3))


def test_dispatch_picks_the_first_gpu_argument(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeCudaExtension()
    read: list[str] = []

    def adapter_for(x: object, name: str) -> HostArrays:
        read.append(name)
        return HostArrays()

    monkeypatch.setattr(_dispatch, "cuda_extension", lambda: fake)
    monkeypatch.setattr(_dispatch, "adapter_for", adapter_for)
    backend = backend_for(
        ("labels", np.zeros(3, int)), ("p", FakeCudaArray((3,))), ("features", None)
    )
    assert isinstance(backend, CudaBackend) and backend.extension is fake
    assert read == ["p"]


def test_dispatch_on_the_host_follows_the_first_argument() -> None:
    torch = pytest.importorskip("torch")
    backend = backend_for(("labels", torch.zeros(3)), ("p", np.ones(3)))
    assert isinstance(backend, CpuBackend) and backend.arrays.kind == "torch"
    backend = backend_for(("features", None), ("p", [0.5]), ("q", torch.zeros(1)))
    assert isinstance(backend, CpuBackend) and backend.arrays.kind == "numpy"


def test_forced_backend_is_scoped() -> None:
    forced = CudaBackend(FakeCudaExtension(), HostArrays())
    with forced_backend(forced):
        assert backend_for(("x", np.ones(2))) is forced
    assert isinstance(backend_for(("x", np.ones(2))), CpuBackend)


def test_host_array_reads_any_array_back() -> None:
    x = np.arange(3.0)
    assert host_array(x, "x") is x
    np.testing.assert_array_equal(host_array([1, 2], "x"), np.array([1, 2]))


def test_host_array_converts_half_precision_and_names_unsupported_dtypes() -> None:
    # As for every torch input: float16/bfloat16 become float32; a dtype numpy cannot hold is a
    # TypeError naming the argument.
    torch = pytest.importorskip("torch")
    host = host_array(torch.tensor([0.5, 2.0], dtype=torch.bfloat16), "p")
    assert host.dtype == np.float32
    np.testing.assert_array_equal(host, [0.5, 2.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "ComplexHalf support is experimental"
        complex_half = torch.zeros(2, dtype=torch.complex32)
    with pytest.raises(TypeError, match="p has dtype torch.complex32"):
        host_array(complex_half, "p")
    with pytest.raises(TypeError, match="features has dtype torch.complex32"):
        ipdpp.LowRankKernel(complex_half.reshape(1, 2))


# ----------------------------------------------------------------------------------------------
# The GPU "auto" rule (in the C++ library, readable without a GPU)
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "n, size, expected",
    [
        (100_000, 50, "sequential"),  # 20 MB of V_J (float32): stays in L2
        (100_000, 100, "rejection"),  # 40 MB: every step would stream V_J from HBM
        (1_000_000, 50, "rejection"),  # 200 MB of V_J: n-independent sampler
    ],
)
def test_gpu_auto_rule(n: int, size: int, expected: str) -> None:
    assert _core.auto_method("cuda", n, 256, size, 4) == expected


def test_gpu_auto_rule_depends_on_n_k_and_dtype() -> None:
    # A sample must not depend on the batch it was drawn in (sampling.py's contract), so "auto"
    # sees no num_samples; float64 halves the size that stays sequential.
    assert _core.auto_method("cuda", 60_000, 256, 100, 4) == "sequential"
    assert _core.auto_method("cuda", 60_000, 256, 100, 8) == "rejection"


# ----------------------------------------------------------------------------------------------
# The CMake gate
# ----------------------------------------------------------------------------------------------


def _cmake_list(name: str) -> set[str]:
    text = CUDA_SOURCES.read_text()
    body = re.search(rf"set\({name}\n(.*?)\)", text, re.S)
    assert body is not None, f"{name} not found in {CUDA_SOURCES}"
    return {line.strip() for line in body.group(1).splitlines() if line.strip()}


def test_every_cuda_source_is_listed_once() -> None:
    # CMake source lists are explicit (no globs): a new kernel file must be added by hand.
    kernels = _cmake_list("IPDPP_CUDA_KERNEL_SOURCES") | _cmake_list("IPDPP_CUDA_LIBRARY_SOURCES")
    on_disk = {str(p.relative_to(ROOT)) for p in (ROOT / "csrc" / "cuda").glob("*.cu")}
    assert kernels == on_disk
    bindings = _cmake_list("IPDPP_CUDA_BINDING_SOURCES")
    assert bindings == {
        str(p.relative_to(ROOT)) for p in (ROOT / "csrc" / "bindings").glob("cuda_*.cpp")
    }
    # Only spectrum.cu may include the cuBLAS/cuSOLVER headers (the others are compile-checked
    # on machines that lack them).
    for source in _cmake_list("IPDPP_CUDA_KERNEL_SOURCES"):
        assert "library_check.h" not in (ROOT / source).read_text(), source


@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake is not installed")
@pytest.mark.skipif(
    importlib.util.find_spec("pybind11") is None,
    reason="pybind11 is not installed in this environment (it only lived in the build's)",
)
def test_cmake_gate_auto_and_on_agree(tmp_path: Path) -> None:
    # AUTO either builds _cuda, and then ON configures too, or says what is missing, and then
    # ON fails naming the same thing. (Configure only: nothing is compiled.)
    def configure(mode: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                "cmake",
                "-S",
                str(ROOT),
                "-B",
                str(tmp_path / mode),
                f"-DIPDPP_CUDA={mode}",
                f"-DPython_EXECUTABLE={sys.executable}",
            ],
            capture_output=True,
            text=True,
        )

    auto = configure("AUTO")
    assert auto.returncode == 0, auto.stdout + auto.stderr
    on = configure("ON")
    if "ipdpp: building _cuda" in auto.stdout:
        assert on.returncode == 0, on.stdout + on.stderr
        return
    skipped = re.search(r"ipdpp: skipping _cuda: (.*)", auto.stdout)
    assert skipped is not None, auto.stdout
    assert on.returncode != 0
    message = " ".join((on.stdout + on.stderr).split())
    assert "IPDPP_CUDA=ON but" in message
    assert " ".join(skipped.group(1).split()) in message


# ----------------------------------------------------------------------------------------------
# The CUDA code path end to end, on host memory (FakeCudaExtension)
# ----------------------------------------------------------------------------------------------


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
        # The backend checks symmetry itself, with the CPU library's rule and message.
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
            spectral, ipdpp.sample_k_dpp(cpu, 5, 20, seed=SEED, method=method)
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
