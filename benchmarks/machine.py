"""Thread pinning and the machine description that goes with every benchmark result.

Every pool the compared libraries use is pinned to one count, for the whole process:
OpenBLAS/MKL/OpenMP through ``threadpoolctl`` (it limits libraries already loaded, so the heavy
imports come first) and the environment variables (libraries loaded later), PyTorch through
``torch.set_num_threads``. Nothing heavy is imported at import time.
"""

from __future__ import annotations

import datetime
import importlib
import importlib.metadata
import os
import platform
import sys
from typing import Any

__all__ = ["THREAD_ENV_VARS", "available_memory_bytes", "describe_machine", "pin_threads"]

# The variables that OpenMP, OpenBLAS, MKL, Apple Accelerate and numexpr read when they load.
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                   "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")  # fmt: skip
# Libraries whose import loads a thread pool; imported before threadpoolctl applies its limits.
_POOL_LOADERS = ("numpy", "scipy.linalg", "torch", "ipdpp")
_VERSIONED = ("numpy", "scipy", "torch", "dppy", "pytest-benchmark", "threadpoolctl", "matplotlib")


def pin_threads(threads: int) -> dict[str, Any]:
    """Pin BLAS, OpenMP and PyTorch thread pools to ``threads`` (>= 1) for the process.

    Returns what was pinned and how. Environment variables only reach libraries not loaded yet:
    when numpy was imported first and ``threadpoolctl`` is missing, BLAS may keep its own
    default, and the report says so.
    """
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be an integer >= 1; got {threads!r}")
    numpy_was_loaded = "numpy" in sys.modules
    os.environ.update(dict.fromkeys(THREAD_ENV_VARS, str(threads)))
    for name in _POOL_LOADERS:
        try:
            importlib.import_module(name)
        except ImportError:
            pass  # an optional library; its pool does not exist then
    report: dict[str, Any] = {"requested": threads, "method": "environment variables", "pools": []}
    try:
        import threadpoolctl

        threadpoolctl.threadpool_limits(limits=threads)
        report["method"] = "threadpoolctl + environment variables"
        keys = {"api": "internal_api", "version": "version", "threads": "num_threads"}
        for info in threadpoolctl.threadpool_info():
            pool = {key: info.get(name) for key, name in keys.items()}
            report["pools"].append(dict(pool, library=os.path.basename(info["filepath"])))
    except ImportError:
        if numpy_was_loaded:
            report["warning"] = "numpy was imported before the thread variables were set and "
            report["warning"] += "threadpoolctl is not installed: BLAS may not be pinned"
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)
    report["torch_threads"] = torch.get_num_threads() if torch is not None else None
    report["env"] = {var: os.environ.get(var) for var in THREAD_ENV_VARS}
    return report


def _proc_fields(path: str, keys: tuple[str, ...]) -> dict[str, str]:
    """``key: value`` lines of a /proc file (empty where it does not exist)."""
    try:
        with open(path, encoding="utf-8") as handle:
            pairs = (line.split(":", 1) for line in handle if ":" in line)
            return {k.strip(): v.strip() for k, v in pairs if k.strip() in keys}
    except OSError:
        return {}


def _memory_gib() -> dict[str, float]:
    fields = _proc_fields("/proc/meminfo", ("MemTotal", "MemAvailable"))
    gib = {key: int(fields[key].split()[0]) / 2**20 if key in fields else float("nan")
           for key in ("MemTotal", "MemAvailable")}  # fmt: skip
    return {"total_gib": gib["MemTotal"], "available_gib": gib["MemAvailable"]}


def available_memory_bytes() -> int | None:
    """Memory the kernel says is available now, or None where that is unknown."""
    gib = _memory_gib()["available_gib"]
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
    return {"name": props.name, "memory_gib": round(props.total_memory / 2**30, 1),
            "compute_capability": f"{props.major}.{props.minor}",
            "cuda_runtime": torch.version.cuda}  # fmt: skip


def describe_machine() -> dict[str, Any]:
    """Hardware, load and library versions, for the JSON and the Markdown header.

    ``usable_cpus`` is the affinity mask, ``load_average`` (1, 5, 15 min) shows a busy shared
    machine, ``gpu`` is None without CUDA, ``versions`` covers the compared libraries.
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
    cpu = _proc_fields("/proc/cpuinfo", ("model name",)).get("model name")
    return {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu_model": cpu or platform.processor() or platform.machine(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable,
        "memory": _memory_gib(),
        "load_average": load,
        "gpu": _gpu(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {
            "ipdpp": getattr(ipdpp, "__version__", None) or _version("ipdpp"),
            **{name: _version(name) for name in _VERSIONED},
        },
    }
