"""Whether a low-rank kernel stores its eigenvectors: the ``memory=`` option and its default rule.

A :class:`ipdpp.LowRankKernel` of n items and rank r has n x r float64 eigenvectors, which the
samplers read row by row, and the rejection sampler a bfloat16 copy of them that it reads first:
10 n r bytes in all. When they would not fit, the kernel keeps only the d x r
matrix ``W = U Lambda^{-1/2}`` and computes any row ``V_i = q_i B_i W`` from the features when a
sampler reads it (the low-memory mode); the extra memory is then O(n), the leverage scores and
their alias table (about 32 bytes per item). The rule, applied when the eigendecomposition runs
(at the first ``rank``, ``eigh`` or sample):

- ``memory="auto"`` (default): low memory when the eigenvectors and their copy would take more
  than half of the memory available then (:func:`available_memory`);
- ``memory=<int>``: a budget in bytes for them; low memory when they exceed it;
- ``memory="full"``: always store them (the behaviour of a kernel that fits);
- ``memory="low"``: never store them.
"""

from __future__ import annotations

import numbers
import os
from pathlib import Path
from typing import Literal, Union

import numpy as np

__all__ = ["MEMORY_MODES", "MemoryOption", "available_memory", "check_memory_option", "budget"]

#: The named values of ``memory=``; an int is a budget in bytes.
MEMORY_MODES = ("auto", "full", "low")

MemoryOption = Union[Literal["auto", "full", "low"], int]

_CGROUP = Path("/sys/fs/cgroup")


def _meminfo_available(path: Path = Path("/proc/meminfo")) -> int | None:
    """``MemAvailable`` of /proc/meminfo in bytes: free memory plus the page cache and other
    memory the kernel can reclaim without swapping (Linux >= 3.14)."""
    try:
        for line in path.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024  # the value is in kB
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_available(root: Path = _CGROUP) -> int | None:
    """What the process's cgroup (v2) still allows: ``memory.max - memory.current``, or None
    without a limit."""
    try:
        limit = (root / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return max(int(limit) - int((root / "memory.current").read_text().strip()), 0)
    except (OSError, ValueError):
        return None


def available_memory() -> int | None:
    """Bytes of memory this process can still use without swapping, or None where unknown.

    Linux: ``MemAvailable`` of /proc/meminfo, capped by the cgroup v2 limit (``memory.max`` minus
    ``memory.current``) when the process runs under one (a container). Elsewhere: the free
    physical pages of ``os.sysconf`` (``SC_AVPHYS_PAGES * SC_PAGE_SIZE``), when the OS has them.
    """
    candidates = [_meminfo_available(), _cgroup_available()]
    if candidates[0] is None:
        try:
            candidates.append(int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE")))
        except (AttributeError, OSError, ValueError):
            pass
    known = [c for c in candidates if c is not None]
    return min(known) if known else None


_MEMORY_DOC = "memory must be 'auto', 'full', 'low' or a budget in bytes (an int >= 0)"


def check_memory_option(memory: object, *, low_memory_supported: bool = True) -> MemoryOption:
    """``memory`` validated: one of :data:`MEMORY_MODES` (None means "auto") or an int >= 0.

    Raises
    ------
    TypeError
        If ``memory`` is neither a string, None nor an integer (a float budget, a bool).
    ValueError
        If it is an unknown string or a negative budget, or asks for the low-memory mode where
        it does not exist (``low_memory_supported`` False: a kernel on a GPU).
    """
    if memory is None:
        return "auto"
    if isinstance(memory, str):
        if memory not in MEMORY_MODES:
            raise ValueError(f"{_MEMORY_DOC}; got {memory!r}")
        option: MemoryOption = memory  # type: ignore[assignment]
    elif isinstance(memory, (bool, np.bool_)) or not isinstance(memory, numbers.Integral):
        raise TypeError(f"{_MEMORY_DOC}; got {type(memory).__name__} {memory!r}")
    else:
        option = int(memory)
        if option < 0:
            raise ValueError(f"{_MEMORY_DOC}; got {option}")
    if not low_memory_supported and option not in ("auto", "full"):
        raise ValueError(
            f"memory={option!r}: the low-memory mode (eigenvector rows computed from the "
            "features) runs on the CPU; a kernel on a GPU keeps its eigenvectors in device "
            "memory, so memory must be 'auto' or 'full' there"
        )
    return option


def budget(memory: MemoryOption) -> int:
    """Bytes the eigenvectors may take under ``memory`` (validated), -1 for no limit.

    "auto" is half of :func:`available_memory` at the time of the call (no limit where unknown).
    """
    if memory == "full":
        return -1
    if memory == "low":
        return 0
    if memory == "auto":
        available = available_memory()
        return -1 if available is None else available // 2
    return min(int(memory), _INT64_MAX)  # the C++ budget is signed 64-bit


_INT64_MAX = 2**63 - 1
