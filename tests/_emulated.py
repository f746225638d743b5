"""Shared helpers of the tests that run the CUDA kernels on the CPU emulator.

``ipdpp._cuda_emulated`` (built with IPDPP_CUDA_EMULATOR=ON) is compiled from the same kernel and
binding sources as ``ipdpp._cuda`` and has its API; a device address is the address of a numpy
array's data and the stream is 0. Its ``emulator`` submodule sets the thread order and the fake
device's limits and keeps a log of the launches.
"""

from __future__ import annotations

import ctypes
import importlib
import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from conftest import SEED

import ipdpp
from ipdpp import _reference as ref
from ipdpp.kernels import _dense_tolerances

RTOL = ipdpp.EIGENVALUE_RTOL
METHODS = ["sequential", "rejection"]
DTYPES = [np.float32, np.float64]
ORDERS = ["forward", "reversed", "shuffled"]


def load_emulator() -> Any:
    """``ipdpp._cuda_emulated``; skips the calling test module where it was not built, except
    where the environment sets IPDPP_REQUIRE_EMULATOR (CI does), so that a build without it
    cannot pass silently."""
    try:
        return importlib.import_module("ipdpp._cuda_emulated")
    except ImportError:
        if os.environ.get("IPDPP_REQUIRE_EMULATOR"):
            raise
        pytest.skip(
            "ipdpp was built without the CUDA emulator (build with IPDPP_CUDA_EMULATOR=ON)",
            allow_module_level=True,
        )


emu = load_emulator()


@pytest.fixture(autouse=True)
def forward_order() -> Iterator[None]:
    """Every test starts in forward thread order and with an empty launch log."""
    previous = emu.emulator.thread_order()
    emu.emulator.set_thread_order("forward")
    emu.emulator.clear_launch_log()
    yield
    emu.emulator.set_thread_order(previous)


def lowrank_case(n: int, d: int, dtype: Any, *, quality: bool = False, seed: int = SEED):
    rng = np.random.default_rng(seed)
    B = rng.standard_normal((n, d)).astype(dtype)
    q = rng.uniform(0.3, 2.0, n) if quality else None
    return B, q, ref.dense_from_lowrank(B.astype(np.float64), q)


def spectrum_of(B: np.ndarray, q: np.ndarray | None = None) -> Any:
    B = np.ascontiguousarray(B)
    q64 = None if q is None else np.ascontiguousarray(q, dtype=np.float64)
    quality = 0 if q64 is None else q64.ctypes.data
    n, d = B.shape
    return emu.lowrank_spectrum(B.ctypes.data, str(B.dtype), n, d, quality, RTOL, 0, 0)


def sample(spectrum: Any, k: int, num_samples: int, method: str, offset: int = 0) -> np.ndarray:
    """(num_samples, k) for a k-DPP, (num_samples, rank) with -1 padding for a DPP (k = -1)."""
    width = k if k >= 0 else spectrum.rank
    out = np.full((num_samples, width), -7, dtype=np.int64)
    emu.sample(spectrum, k, num_samples, SEED, offset, method, out.ctypes.data, 0)
    return out


def dpp_rows(out: np.ndarray) -> list[np.ndarray]:
    rows = [row[row >= 0] for row in out]
    for row in out:  # items first, then padding
        assert (row[len(row[row >= 0]) :] == -1).all()
    return rows


def projection_launches() -> list[dict[str, Any]]:
    return [r for r in emu.emulator.launch_log() if r["kernel"] == "projection_kernel"]


def dense_tolerances(n: int, dtype: Any) -> tuple[float, float]:
    """(symmetry_rtol, psd_rtol) of DenseKernel for an n x n input of this dtype."""
    return _dense_tolerances(n, float(np.finfo(dtype).eps))


def structured_case(seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    sizes = (300 * (5 / 300) ** (np.arange(8) / 7)).astype(int)
    labels = rng.permutation(np.repeat(np.arange(8), sizes)).astype(np.int64)
    return labels, rng.beta(8.0, 2.0, labels.size)


def structured_sample(p: np.ndarray, alpha: float, k: int, num_samples: int) -> np.ndarray:
    p = np.ascontiguousarray(p, dtype=np.float64)
    out = np.full((num_samples, k), -7, dtype=np.int64)
    emu.structured_sample(
        p.ctypes.data,
        0,
        np.array([0, p.size], dtype=np.int64),
        np.array([k], dtype=np.int64),
        np.array([alpha]),
        num_samples,
        SEED,
        0,
        out.ctypes.data,
        0,
        0,
    )
    return out


def balanced_subset(labels: np.ndarray, p: np.ndarray, k: np.ndarray) -> np.ndarray:
    out = np.full(labels.size, -7, dtype=np.int64)
    count = emu.balanced_subset(
        labels.ctypes.data, p.ctypes.data, labels.size, k, 1.0, 0.0, SEED, out.ctypes.data, 0, 0
    )
    return out[:count]


def eigenvectors(spectrum: Any) -> np.ndarray:
    """A writable (n, rank) view of the spectrum's eigenvectors (device memory is host memory)."""
    c_type = ctypes.c_float if spectrum.dtype == "float32" else ctypes.c_double
    buffer = (c_type * (spectrum.n * spectrum.rank)).from_address(spectrum.eigenvectors_ptr)
    return np.ctypeslib.as_array(buffer).reshape(spectrum.n, spectrum.rank)
