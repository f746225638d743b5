"""Shared fixtures and helpers: dtypes, devices, seeds, small kernels with their dense references.
(Stand-ins for CUDA arrays and a host-memory double of the CUDA extension: tests/_cuda_double.py.)

Devices (the ``device`` fixture): "cpu" (numpy inputs, the CPU backend), "cuda" (torch CUDA
tensors, the CUDA backend; skipped without a GPU) and "emulated" (numpy inputs run through the
CUDA backend over the CPU emulation of the CUDA kernels, ``ipdpp._cuda_emulated``; skipped where
it was not built). Tests too slow for the emulator carry ``@pytest.mark.emulator_heavy``: their
"emulated" cases are deselected at collection, so that ``-m emulated`` runs with nothing skipped.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pytest

import ipdpp
from ipdpp import _reference as ref
from ipdpp._adapters import HostArrays
from ipdpp._cpu import CpuBackend
from ipdpp._dispatch import forced_backend
from ipdpp._gpu import CudaBackend

# The seed of every statistical test. Fixed, so a test passes or fails deterministically; when a
# correct sampler lands near a threshold the test needs more samples, not another seed.
SEED = 20261126


def cuda_unavailable_reason() -> str | None:
    """Why the CUDA backend can not be tested here, or None when it can."""
    if importlib.util.find_spec("ipdpp._cuda") is None:
        return "ipdpp was built without its CUDA extension (ipdpp._cuda)"
    try:
        import torch
    except ImportError:
        return "torch is not installed (the CUDA tests move data with torch)"
    if not torch.cuda.is_available():
        return "no CUDA device is visible"
    return None


def emulated_unavailable_reason() -> str | None:
    """Why the CUDA backend can not run under the CPU emulator here, or None when it can.

    Where the environment sets IPDPP_REQUIRE_EMULATOR (CI does), a missing emulator is a failure,
    so that a build without it cannot pass silently.
    """
    if importlib.util.find_spec("ipdpp._cuda_emulated") is None:
        reason = (
            "ipdpp was built without the CPU emulator of its CUDA kernels (ipdpp._cuda_emulated)"
        )
        if os.environ.get("IPDPP_REQUIRE_EMULATOR"):
            pytest.fail(f"{reason}, and IPDPP_REQUIRE_EMULATOR is set")
        return reason
    return None


def emulated_backend() -> CudaBackend:
    """The CUDA backend over the CPU emulator, on numpy arrays (host addresses, no streams)."""
    return CudaBackend(importlib.import_module("ipdpp._cuda_emulated"), HostArrays("numpy"))


@contextmanager
def on_the_cpu() -> Iterator[None]:
    """Within the block, calls run on the CPU backend whatever the test's device: the reference
    a device's result is compared with."""
    with forced_backend(CpuBackend(HostArrays("numpy"))):
        yield


@pytest.fixture(params=[np.float32, np.float64], ids=["float32", "float64"])
def dtype(request: pytest.FixtureRequest) -> type[np.floating]:
    """Every floating dtype the kernels accept."""
    return request.param


@pytest.fixture(
    params=[
        "cpu",
        pytest.param("cuda", marks=pytest.mark.gpu),
        pytest.param("emulated", marks=pytest.mark.emulated),
    ]
)
def device(request: pytest.FixtureRequest) -> Iterator[str]:
    """The device the inputs live on; "cuda" and "emulated" are skipped with a reason where they
    can not run. On "emulated" every call in the test goes through the emulated CUDA backend."""
    if request.param == "cuda":
        reason = cuda_unavailable_reason()
        if reason is not None:
            pytest.skip(reason)
    if request.param == "emulated":
        reason = emulated_unavailable_reason()
        if reason is not None:
            pytest.skip(reason)
        with forced_backend(emulated_backend()):
            yield request.param
        return
    yield request.param


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the "emulated" cases of tests marked ``emulator_heavy`` (too slow there)."""
    heavy = [
        item
        for item in items
        if item.get_closest_marker("emulator_heavy") is not None
        and getattr(getattr(item, "callspec", None), "params", {}).get("device") == "emulated"
    ]
    if heavy:
        ids = {id(item) for item in heavy}
        items[:] = [item for item in items if id(item) not in ids]
        config.hook.pytest_deselected(items=heavy)


@pytest.fixture
def seed() -> int:
    """The fixed seed of the statistical tests."""
    return SEED


def to_device(x: Any, device: str) -> Any:
    """The numpy array ``x`` as an input on ``device`` (torch CUDA tensor for "cuda").

    Anything else (None, scalars, strings, object arrays, which no GPU array can hold) is
    passed as given, so bad-input tests see the same argument on every device.
    """
    if device != "cuda" or not isinstance(x, np.ndarray) or x.dtype.kind not in "biufc":
        return x
    import torch

    return torch.from_numpy(np.ascontiguousarray(x)).to("cuda")


@pytest.fixture
def on_device(device: str) -> Callable[[Any], Any]:
    """``on_device(x)``: the numpy array ``x`` as an input on the test's ``device``."""
    return lambda x: to_device(x, device)


def to_numpy(result: Any) -> Any:
    """The numpy view of a result: arrays and tensors -> np.ndarray, lists element-wise."""
    if isinstance(result, (list, tuple)):
        return [to_numpy(r) for r in result]
    if hasattr(result, "detach"):
        return result.detach().cpu().numpy()
    if type(result).__module__.split(".", 1)[0] == "cupy":
        return result.get()
    return np.asarray(result)


@dataclass
class KernelCase:
    """A kernel under test together with what the reference needs to judge it.

    Attributes
    ----------
    kernel : ipdpp kernel object
    L : float64 (n, n) dense L-ensemble matrix built by ipdpp._reference from the very same input
        values (a float32 input is widened, not regenerated, so both describe the same kernel).
    inputs : dict of the numpy arrays the constructor's inputs were made from.
    name : short id for messages.
    """

    kernel: Any
    L: np.ndarray
    inputs: dict[str, Any]
    name: str

    @property
    def n(self) -> int:
        return self.L.shape[0]


def build_kernel(
    kind: str,
    n: int,
    *,
    dtype: type[np.floating] = np.float64,
    seed: int = SEED,
    rank: int | None = None,
    device: str = "cpu",
) -> KernelCase:
    """Build a small random kernel of the given kind.

    Parameters
    ----------
    kind : {"lowrank", "lowrank_quality", "dense", "ipdpp"}
        "lowrank": Gaussian features B (n, rank); "lowrank_quality": the same with quality
        q ~ Uniform(0.3, 2) (well spread, so ignoring it is detectable); "dense": L = A A^T with A
        (n, rank) Gaussian, passed as a dense matrix; "ipdpp": p ~ Beta(8, 2) as in the paper's
        setting (confident but imperfect predictions), alpha="paper".
    n : int
        Ground set size.
    dtype : numpy floating dtype of the input arrays.
    seed : int
        Seed of the random inputs.
    rank : int, optional
        Feature dimension of the low-rank / dense kernels (default n // 2 + 1, so that k-DPPs up
        to about n / 2 exist and some subsets have probability 0).
    device : "cpu", "cuda" (inputs as torch CUDA tensors) or "emulated" (numpy inputs; the
        caller has forced the emulated backend).
    """
    rng = np.random.default_rng(seed)
    d = rank if rank is not None else n // 2 + 1
    kernel: Any
    if kind in ("lowrank", "lowrank_quality"):
        B = rng.standard_normal((n, d)).astype(dtype)
        q = rng.uniform(0.3, 2.0, n).astype(np.float64) if kind == "lowrank_quality" else None
        kernel = ipdpp.LowRankKernel(to_device(B, device), quality=to_device(q, device))
        L = ref.dense_from_lowrank(B.astype(np.float64), q)
        inputs: dict[str, Any] = {"features": B, "quality": q}
    elif kind == "dense":
        A = rng.standard_normal((n, d))
        L_in = (A @ A.T).astype(dtype)
        L_in = (L_in + L_in.T) / 2  # exactly symmetric after rounding to dtype
        kernel = ipdpp.DenseKernel(to_device(L_in, device))
        L = L_in.astype(np.float64)
        inputs = {"L": L_in}
    elif kind == "ipdpp":
        p = rng.beta(8.0, 2.0, n).astype(dtype)
        kernel = ipdpp.IPDPPKernel(to_device(p, device))
        L = ref.dense_from_ipdpp(p.astype(np.float64), "paper")
        inputs = {"p": p}
    else:
        raise ValueError(f"unknown kernel kind {kind!r}")
    return KernelCase(kernel=kernel, L=L, inputs=inputs, name=f"{kind}-n{n}-{np.dtype(dtype)}")


@pytest.fixture
def make_kernel(device: str) -> Callable[..., KernelCase]:
    """Factory fixture: ``make_kernel(kind, n, dtype=..., seed=..., rank=...)`` on ``device``."""

    def make(kind: str, n: int, **kwargs: Any) -> KernelCase:
        return build_kernel(kind, n, device=device, **kwargs)

    return make
