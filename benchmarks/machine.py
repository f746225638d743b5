"""Thread pinning and the machine description that goes with every benchmark result.

A timing means little without the number of threads behind it, so every thread pool that the
compared libraries use is pinned to the same count and the pinning is reported: OpenBLAS/MKL/
OpenMP through ``threadpoolctl`` when it is installed (it limits libraries that are already
loaded, which is why the heavy imports happen before it is applied), and always through the
usual environment variables, which govern libraries loaded later and child processes. PyTorch's
intra-op pool is set with ``torch.set_num_threads``. Everything is restored on exit, so the
harness can run inside a test session.

This module imports nothing heavy at import time: ``benchmarks.compare`` sets the environment
variables before numpy is first imported.
"""

from __future__ import annotations

import datetime as _dt
import importlib
import importlib.metadata
import os
import platform
import sys
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any

__all__ = ["THREAD_ENV_VARS", "ThreadPinning", "describe_machine"]

# The variables that OpenMP, OpenBLAS, MKL, Apple Accelerate and numexpr read when they load.
THREAD_ENV_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)

# Libraries whose import loads a thread pool; imported before threadpoolctl applies its limits.
_POOL_LOADERS = ("numpy", "scipy.linalg", "torch", "ipdpp")


class ThreadPinning(AbstractContextManager["ThreadPinning"]):
    """Pin BLAS, OpenMP and PyTorch thread pools to ``threads`` for the duration of a block.

    Parameters
    ----------
    threads : int
        Number of threads (>= 1).

    Attributes
    ----------
    report : dict
        What was pinned and how, filled on entry (see :meth:`describe`).

    Notes
    -----
    Environment variables only reach libraries that have not been loaded yet; when numpy was
    imported before this block and ``threadpoolctl`` is missing, BLAS may run with its own
    default and the report says so.
    """

    def __init__(self, threads: int) -> None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ValueError(f"threads must be an integer >= 1; got {threads!r}")
        self.threads = threads
        self.report: dict[str, Any] = {}
        self._saved_env: dict[str, str | None] = {}
        self._limiter: Any = None
        self._torch_threads: int | None = None

    def __enter__(self) -> ThreadPinning:
        numpy_was_loaded = "numpy" in sys.modules
        for var in THREAD_ENV_VARS:
            self._saved_env[var] = os.environ.get(var)
            os.environ[var] = str(self.threads)
        for name in _POOL_LOADERS:
            try:
                importlib.import_module(name)
            except ImportError:
                pass  # an optional library; its pool does not exist then
        method = "environment variables"
        try:
            import threadpoolctl
        except ImportError:
            threadpoolctl = None
        if threadpoolctl is not None:
            self._limiter = threadpoolctl.threadpool_limits(limits=self.threads)
            method = "threadpoolctl + environment variables"
        torch = sys.modules.get("torch")
        if torch is not None:
            self._torch_threads = torch.get_num_threads()
            torch.set_num_threads(self.threads)
        self.report = {
            "requested": self.threads,
            "method": method,
            "pools": _thread_pools(),
            "torch_threads": torch.get_num_threads() if torch is not None else None,
            "env": {var: os.environ.get(var) for var in THREAD_ENV_VARS},
        }
        if numpy_was_loaded and threadpoolctl is None:
            self.report["warning"] = (
                "numpy was imported before the thread variables were set and threadpoolctl is "
                "not installed: BLAS may not be pinned"
            )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._limiter is not None:
            self._limiter.restore_original_limits()
        torch = sys.modules.get("torch")
        if torch is not None and self._torch_threads is not None:
            torch.set_num_threads(self._torch_threads)
        for var, value in self._saved_env.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value


def _thread_pools() -> list[dict[str, Any]]:
    """The native thread pools threadpoolctl sees (empty without threadpoolctl)."""
    try:
        import threadpoolctl
    except ImportError:
        return []
    return [
        {
            "api": info.get("internal_api"),
            "version": info.get("version"),
            "threads": info.get("num_threads"),
            "library": os.path.basename(str(info.get("filepath", ""))),
        }
        for info in threadpoolctl.threadpool_info()
    ]


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> dict[str, float]:
    """Total and available memory from /proc/meminfo (empty where it does not exist)."""
    fields = {}
    try:
        with open("/proc/meminfo", encoding="utf-8") as handle:
            for line in handle:
                key, value = line.split(":", 1)
                if key in ("MemTotal", "MemAvailable"):
                    fields[key] = int(value.split()[0]) / 2**20  # kB -> GiB
    except OSError:
        pass
    return {
        "total_gib": fields.get("MemTotal", float("nan")),
        "available_gib": fields.get("MemAvailable", float("nan")),
    }


def available_memory_bytes() -> int | None:
    """Memory the kernel says is available now, or None where that is unknown."""
    gib = _memory_gib().get("available_gib", float("nan"))
    return None if gib != gib else int(gib * 2**30)  # NaN check without importing math


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _gpu() -> dict[str, Any] | None:
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(torch.cuda.current_device())
    return {
        "name": props.name,
        "memory_gib": round(props.total_memory / 2**30, 1),
        "compute_capability": f"{props.major}.{props.minor}",
        "cuda_runtime": torch.version.cuda,
    }


def describe_machine() -> dict[str, Any]:
    """Hardware, load and library versions, for the JSON and the Markdown header.

    Returns
    -------
    dict
        ``cpu_model``, ``logical_cpus``, ``usable_cpus`` (the affinity mask), ``memory``,
        ``load_average`` (1, 5, 15 min: a busy shared machine shows here), ``gpu`` (None
        without CUDA), ``platform``, ``python`` and ``versions`` of the compared libraries.
    """
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count()
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    ipdpp = sys.modules.get("ipdpp")
    return {
        "date_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "hostname": platform.node(),
        "cpu_model": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable,
        "memory": _memory_gib(),
        "load_average": load,
        "gpu": _gpu(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {
            "ipdpp": getattr(ipdpp, "__version__", None) or _version("ipdpp"),
            "numpy": _version("numpy"),
            "scipy": _version("scipy"),
            "torch": _version("torch"),
            "dppy": _version("dppy"),
            "threadpoolctl": _version("threadpoolctl"),
            "matplotlib": _version("matplotlib"),
        },
    }
