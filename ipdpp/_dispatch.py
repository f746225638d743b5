"""The one place that picks a backend from the caller's arrays.

Kernel constructors and :func:`ipdpp.balanced_subset` call :func:`backend_for` with their named
array arguments. The first array on a GPU (torch CUDA tensor, CuPy array, any
``__cuda_array_interface__`` object) selects the CUDA backend on its device; without the CUDA
extension that is the error raised here, naming the argument. Otherwise the CPU backend runs and
results come back as the type of the first array given (torch in, torch out).

Neither the extension nor torch nor CuPy is imported before an array of theirs arrives.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from types import ModuleType
from typing import Any, cast

from ._adapters import HostArrays, adapter_for
from ._backend import Backend
from ._cpu import CpuBackend
from ._frameworks import is_cuda_array
from ._gpu import CudaBackend

__all__ = ["backend_for", "cuda_extension", "cuda_available", "forced_backend"]

_forced: ContextVar[Backend[Any] | None] = ContextVar("ipdpp_forced_backend", default=None)


def cuda_available() -> bool:
    """Whether the CUDA extension ``ipdpp._cuda`` was built (says nothing about a device)."""
    return importlib.util.find_spec("ipdpp._cuda") is not None


def cuda_extension() -> ModuleType | None:
    """The compiled ``ipdpp._cuda`` module (imported on first use), or None if not built."""
    if not cuda_available():
        return None
    return importlib.import_module("ipdpp._cuda")


@contextmanager
def forced_backend(backend: Backend[Any]) -> Iterator[Backend[Any]]:
    """Within the block, every dispatch in this context returns ``backend`` (for tests).

    E.g. ``CudaBackend(emulated_extension, HostArrays())`` runs the CUDA code path on numpy
    arrays where no GPU is present.
    """
    token = _forced.set(backend)
    try:
        yield backend
    finally:
        _forced.reset(token)


def _missing_extension(name: str) -> ValueError:
    return ValueError(
        f"{name} is a CUDA array but ipdpp was built without CUDA support (ipdpp._cuda is "
        f"missing); move {name} to the CPU (e.g. tensor.cpu()) or install a CUDA build of ipdpp "
        "(pip install . with IPDPP_CUDA=ON on a machine with the CUDA toolkit)"
    )


def backend_for(*arguments: tuple[str, Any]) -> Backend[Any]:
    """The backend for a call with these ``(name, array)`` arguments (None entries are skipped).

    Raises
    ------
    ValueError
        If an argument is a CUDA array and ipdpp was built without its CUDA extension, or a
        torch tensor lives on a device other than the CPU or CUDA.
    """
    forced = _forced.get()
    if forced is not None:
        return forced
    given = [(name, x) for name, x in arguments if x is not None]
    for name, x in given:
        if is_cuda_array(x):
            extension = cuda_extension()
            if extension is None:
                raise _missing_extension(name)
            return CudaBackend(extension, adapter_for(x, name))
    if not given:
        return CpuBackend(HostArrays("numpy"))
    name, first = given[0]
    # No argument is on a GPU, so the first one's adapter is a host one (numpy or torch).
    return CpuBackend(cast(HostArrays, adapter_for(first, name)))
