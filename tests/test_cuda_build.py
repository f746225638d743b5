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
from pathlib import Path

import numpy as np
import pytest

from ipdpp import _cuda_backend as gpu

ROOT = Path(__file__).resolve().parents[1]
CUDA_CMAKE = ROOT / "csrc" / "cuda" / "cuda.cmake"


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
    "n, size, num_samples, method, expected",
    [
        (100_000, 50, 1, "auto", "sequential"),  # 20 MB of V_J: one sample, whole device
        (100_000, 50, 2, "auto", "rejection"),  # batches: a block per sample
        (1_000_000, 50, 1, "auto", "rejection"),  # 200 MB of V_J: n-independent sampler
        (1_000_000, 50, 1, "sequential", "sequential"),
        (100, 5, 10, "rejection", "rejection"),
    ],
)
def test_choose_method(n: int, size: int, num_samples: int, method: str, expected: str) -> None:
    assert gpu.choose_method(_spectrum(n), size, num_samples, method) == expected


def test_choose_method_rejects_unknown() -> None:
    with pytest.raises(ValueError, match="method must be"):
        gpu.choose_method(_spectrum(10), 2, 1, "structured")


def _cmake_list(name: str) -> set[str]:
    text = CUDA_CMAKE.read_text()
    body = re.search(rf"set\({name}\n(.*?)\)", text, re.S)
    assert body is not None, f"{name} not found in {CUDA_CMAKE}"
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
