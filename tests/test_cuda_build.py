"""CPU-side checks of the CUDA build: the CMake gate, lazy imports, the dispatch rules and the type
stubs. These run on machines without a GPU (CI); the CUDA code path itself is run on host memory
by tests/test_cuda_backend_on_host.py (the GPU "auto" rule: tests/test_core_rules.py).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from _cuda_double import FakeCudaArray, FakeCudaExtension

import ipdpp
from ipdpp import _dispatch
from ipdpp._adapters import HostArrays
from ipdpp._cpu import CpuBackend
from ipdpp._dispatch import backend_for, forced_backend
from ipdpp._frameworks import is_cuda_array
from ipdpp._gpu import CudaBackend
from ipdpp._validation import host_array

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
# The type stubs say what the extensions hold
# ----------------------------------------------------------------------------------------------


def _stub_names(module: str) -> set[str]:
    """Top-level names a stub of the installed package (ipdpp/<module>.pyi) declares."""
    stub = Path(ipdpp.__file__).with_name(f"{module}.pyi")
    names: set[str] = set()
    for node in ast.parse(stub.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.ImportFrom):
            names.update(alias.asname or alias.name for alias in node.names)
    return names


def _public_names(module: str) -> set[str]:
    extension = importlib.import_module(f"ipdpp.{module}")
    return {name for name in dir(extension) if not name.startswith("_")}


def test_core_stub_matches_the_extension() -> None:
    assert _stub_names("_core") == _public_names("_core")


@pytest.mark.skipif(not CUDA_BUILT, reason="ipdpp was built without its CUDA extension")
def test_cuda_stub_matches_the_extension() -> None:
    assert _stub_names("_cuda") == _public_names("_cuda")


@pytest.mark.skipif(
    importlib.util.find_spec("ipdpp._cuda_emulated") is None,
    reason="ipdpp was built without the CPU emulator of its CUDA kernels",
)
def test_the_emulator_has_the_cuda_api() -> None:
    # The emulated backend is CudaBackend over ipdpp._cuda_emulated: it needs all of _cuda's API.
    assert _stub_names("_cuda") <= _public_names("_cuda_emulated")


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
