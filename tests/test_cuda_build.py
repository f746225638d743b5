"""CPU-side checks of the CUDA backend: the build gate, lazy imports and dispatch rules.

These run on machines without a GPU (CI). Passing a CUDA array to the public constructors
without the extension is covered by tests/test_interop.py; here the backend's own entry points
and the CMake gate are checked.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
import types
import warnings
from pathlib import Path

import numpy as np
import pytest

from ipdpp import _cuda_backend as gpu

ROOT = Path(__file__).resolve().parents[1]
CUDA_CMAKE = ROOT / "csrc" / "cuda" / "cuda.cmake"
# The source lists, shared by the CUDA build and the CPU emulator's (csrc/emulator/emulator.cmake).
CUDA_SOURCES = ROOT / "csrc" / "cuda" / "sources.cmake"


class FakeCudaArray:
    """Exposes only ``__cuda_array_interface__`` (stands in for a CuPy array)."""

    def __init__(self, shape: tuple[int, ...], typestr: str = "<f4") -> None:
        self.__cuda_array_interface__ = {
            "shape": shape,
            "typestr": typestr,
            "data": (0xDEAD0000, False),
            "strides": None,
            "version": 3,
        }


def test_backend_import_is_lazy(tmp_path: Path) -> None:
    # import ipdpp (and the dispatch module) must not load the extension, torch or cupy.
    code = (
        "import sys, ipdpp, ipdpp._cuda_backend as b; "
        "print('ipdpp._cuda' in sys.modules, 'cupy' in sys.modules, b.available())"
    )
    out = subprocess.run(
        # cwd outside the source tree, so the installed package (with _core) is imported
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    ).stdout.split()
    assert out[:2] == ["False", "False"]
    assert out[2] == str(importlib.util.find_spec("ipdpp._cuda") is not None)


@pytest.mark.skipif(gpu.available(), reason="ipdpp was built with CUDA")
@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: gpu.lowrank_spectrum(FakeCudaArray((10, 3)), None, 1e-10), "features"),
        (lambda: gpu.dense_spectrum(FakeCudaArray((4, 4), "<f8"), 1e-10), "L"),
        (lambda: gpu.dual_gram_eigenvalues(FakeCudaArray((10, 3))), "features"),
        (lambda: gpu.ipdpp_sample_k(FakeCudaArray((5,), "<f8"), 0.2, 2), "p"),
        (
            lambda: gpu.balanced_subset(
                FakeCudaArray((5,), "<i8"), FakeCudaArray((5,), "<f8"), 2, "paper", 0
            ),
            "labels",
        ),
    ],
)
def test_entry_points_without_extension(call, name: str) -> None:
    with pytest.raises(
        ValueError, match=f"{name} is a CUDA array but ipdpp was built without CUDA"
    ):
        call()


def test_fake_cuda_array_is_recognised() -> None:
    assert gpu.is_cuda_array(FakeCudaArray((3,)))
    assert not gpu.is_cuda_array([1.0, 2.0])


def _spectrum(n: int, dtype: str = "float32") -> types.SimpleNamespace:
    return types.SimpleNamespace(n=n, rank=256, dtype=dtype)


@pytest.mark.parametrize(
    "n, size, method, expected",
    [
        (100_000, 50, "auto", "sequential"),  # 20 MB of V_J (float32): stays in L2
        (100_000, 100, "auto", "rejection"),  # 40 MB: every step would stream V_J from HBM
        (100_000, 50, "rejection", "rejection"),
        (1_000_000, 50, "auto", "rejection"),  # 200 MB of V_J: n-independent sampler
        (1_000_000, 50, "sequential", "sequential"),
    ],
)
def test_choose_method(n: int, size: int, method: str, expected: str) -> None:
    assert gpu.choose_method(_spectrum(n), size, method) == expected


def test_choose_method_depends_on_n_k_and_dtype() -> None:
    # A sample must not depend on the batch it was drawn in (sampling.py's contract), so "auto"
    # sees no num_samples; float64 halves the size that stays sequential.
    assert gpu.choose_method(_spectrum(60_000, "float32"), 100, "auto") == "sequential"
    assert gpu.choose_method(_spectrum(60_000, "float64"), 100, "auto") == "rejection"


def test_choose_method_rejects_unknown() -> None:
    with pytest.raises(ValueError, match="method must be"):
        gpu.choose_method(_spectrum(10), 2, "structured")


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


def test_to_host_passes_host_arrays() -> None:
    x = np.arange(3.0)
    assert gpu.to_host(x) is x
    np.testing.assert_array_equal(gpu.to_host([1, 2]), np.array([1, 2]))


# ----------------------------------------------------------------------------------------------
# Dispatch of the public API to the backend, with the backend's entry points replaced by fakes:
# proves that CUDA inputs reach ipdpp._cuda_backend (and host-side work comes back to the
# device) on machines without a GPU. tests/test_gpu.py runs the real thing.
# ----------------------------------------------------------------------------------------------


class DeviceStandIn:
    """A "device array" holding ``host``: recognised as CUDA by ``__cuda_array_interface__``."""

    def __init__(self, host: np.ndarray) -> None:
        self.host = np.asarray(host)
        self.shape = self.host.shape
        self.__cuda_array_interface__ = {
            "shape": self.shape,
            "typestr": self.host.dtype.str,
            "data": (0xDEAD0000, False),
            "strides": None,
            "version": 3,
        }


def fake_spectrum(n: int, eigenvalues: np.ndarray, eigenvectors: np.ndarray) -> gpu.CudaSpectrum:
    handle = types.SimpleNamespace(
        n=n, rank=eigenvalues.size, device=0, dtype="float64", eigenvalues=eigenvalues
    )
    spectrum = gpu.CudaSpectrum(handle, "torch")
    spectrum.eigenvectors = lambda: DeviceStandIn(eigenvectors)  # type: ignore[method-assign]
    return spectrum


@pytest.fixture
def backend(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple, dict]]:
    """Pretend ipdpp._cuda is built; record every call that reaches a backend entry point."""
    import ipdpp._arrays

    calls: list[tuple[str, tuple, dict]] = []
    rng = np.random.default_rng(0)
    V = np.linalg.qr(rng.standard_normal((6, 3)))[0]
    spectrum = fake_spectrum(6, np.array([0.5, 1.0, 2.0]), V)

    def entry(name: str, result: object):
        def call(*args: object, **kwargs: object) -> object:
            calls.append((name, args, kwargs))
            return result

        return call

    monkeypatch.setattr(ipdpp._arrays, "cuda_available", lambda: True)
    for name in ("lowrank_spectrum", "dense_spectrum"):
        monkeypatch.setattr(gpu, name, entry(name, spectrum))
    for name in ("sample_k_dpp", "sample_dpp", "ipdpp_sample_k", "balanced_subset"):
        monkeypatch.setattr(gpu, name, entry(name, f"{name} result"))
    monkeypatch.setattr(gpu, "to_host", lambda x, name="array": x.host)
    monkeypatch.setattr(gpu, "to_device_like", lambda x, like: DeviceStandIn(x))
    return calls


def test_lowrank_kernel_dispatches_to_backend(backend: list) -> None:
    import ipdpp

    features = DeviceStandIn(np.ones((6, 4), dtype=np.float32))
    K = ipdpp.LowRankKernel(features)
    assert backend == [("lowrank_spectrum", (features, None, ipdpp.EIGENVALUE_RTOL), {})]
    assert (K.n, K.d, K.rank) == (6, 4, 3)
    assert ipdpp.sample_k_dpp(K, 2, 5, seed=7, sample_offset=3) == "sample_k_dpp result"
    name, args, kwargs = backend[-1]
    assert (name, args[1:]) == ("sample_k_dpp", (2, 5, 7))
    assert kwargs == {"sample_offset": 3, "method": "auto"}
    ipdpp.sample_dpp(K, 4, seed=1, method="spectral", threads=2)
    assert backend[-1][0] == "sample_dpp" and backend[-1][2]["method"] == "auto"
    with pytest.raises(ValueError, match="exceeds the kernel's rank 3"):
        ipdpp.sample_k_dpp(K, 4)
    # Host-side utilities compute on host copies and return on the input's device.
    pi = ipdpp.inclusion_probabilities(K, k=2)
    assert isinstance(pi, DeviceStandIn) and pi.host.sum() == pytest.approx(2.0)
    assert isinstance(ipdpp.greedy_map(K, 2), DeviceStandIn)
    assert np.isfinite(ipdpp.log_prob(K, DeviceStandIn(np.array([1, 4])), k=2))


def test_dense_and_ipdpp_kernels_dispatch_to_backend(backend: list) -> None:
    import ipdpp

    L = DeviceStandIn(np.eye(6))
    K = ipdpp.DenseKernel(L)
    # The GPU checks symmetry / PSD with the CPU path's tolerance rule.
    assert backend[-1] == (
        "dense_spectrum",
        (L, ipdpp.EIGENVALUE_RTOL, ipdpp.kernels._dense_tolerances),
        {},
    )
    assert (
        ipdpp.kernels._dense_tolerances(10, float(np.finfo(np.float32).eps))
        == (pytest.approx(10 * float(np.finfo(np.float32).eps)),) * 2
    )
    selected = ipdpp.greedy_map(K, 2)  # on a host copy of L; ties go to the smallest index
    assert isinstance(selected, DeviceStandIn) and selected.host.tolist() == [0, 1]

    p = DeviceStandIn(np.array([0.9, 0.5, 0.2, 0.7]))
    S = ipdpp.IPDPPKernel(p)
    np.testing.assert_array_equal(S.p, p.host)  # validated on the host copy
    assert ipdpp.sample_k_dpp(S, 2, 3, seed=5, sample_offset=1) == "ipdpp_sample_k result"
    assert backend[-1] == ("ipdpp_sample_k", (p, 0.25, 2, 3, 5), {"sample_offset": 1})
    ipdpp.sample_k_dpp(S, 2, method="spectral")  # dense S built on the host, decomposed on GPU
    (_, (dense, _), _), (name, _, kwargs) = backend[-2:]
    np.testing.assert_array_equal(dense.host, S.dense())
    assert name == "sample_k_dpp" and kwargs["method"] == "auto"
    with pytest.raises(ValueError, match=r"p must lie in \[0, 1\]"):
        ipdpp.IPDPPKernel(DeviceStandIn(np.array([0.5, 1.5])))


def test_balanced_subset_dispatches_to_backend(backend: list) -> None:
    import ipdpp

    labels = np.repeat([0, 1, 2], [8, 5, 2])
    p = np.linspace(0.1, 0.9, labels.size)
    device_labels, device_p = DeviceStandIn(labels), DeviceStandIn(p)
    result = ipdpp.balanced_subset(device_labels, device_p, 3, seed=4)
    assert result == "balanced_subset result"
    assert backend[-1] == ("balanced_subset", (device_labels, device_p, 3, "paper", 4), {})
    # Other modes run on host copies and come back to the device.
    kept = ipdpp.balanced_subset(device_labels, device_p, 3, mode="random", seed=4)
    assert isinstance(kept, DeviceStandIn)
    expected = ipdpp.balanced_subset(labels, p, 3, mode="random", seed=4)
    np.testing.assert_array_equal(kept.host, expected)
    with pytest.raises(ValueError, match=r"seed must be < 2\*\*64"):
        ipdpp.balanced_subset(device_labels, device_p, 3, seed=2**64)


def test_to_host_converts_half_precision_and_names_unsupported_dtypes() -> None:
    # Like the CPU path (ipdpp._arrays.as_numpy): float16/bfloat16 become float32; a dtype numpy
    # cannot hold is a TypeError naming the argument. (torch CPU tensors take the same branch as
    # CUDA ones here.)
    torch = pytest.importorskip("torch")
    host = gpu.to_host(torch.tensor([0.5, 2.0], dtype=torch.bfloat16), "p")
    assert host.dtype == np.float32
    np.testing.assert_array_equal(host, [0.5, 2.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "ComplexHalf support is experimental"
        complex_half = torch.zeros(2, dtype=torch.complex32)
    with pytest.raises(TypeError, match="p has dtype torch.complex32"):
        gpu.to_host(complex_half, "p")
