"""Argument checks at the Python boundary, the same for every array type and device.

Every helper takes the argument's name and raises with one message per condition, e.g.
``features must have shape (n, d); got (3,)``: ``TypeError`` for types and dtypes, ``ValueError``
for shapes, values and devices. Arrays are checked through the array adapter of the call
(:mod:`ipdpp._adapters`), so a numpy array, a torch tensor (CPU or CUDA) and a CuPy array with the
same defect get the same message. The C++ layer repeats the cheap checks as a backstop.
"""

from __future__ import annotations

import math
import numbers
import operator
import os
from typing import Any

import numpy as np

from ._adapters import ArrayAdapter, adapter_for

__all__ = [
    "real_array",
    "check_finite",
    "labels_array",
    "check_unit_interval",
    "host_array",
    "k_per_class_array",
    "index_array",
    "parse_alpha",
    "check_int",
    "check_seed",
    "check_uint64",
    "check_threads",
    "check_sample_count",
    "check_memory",
    "DPP_SAMPLE_OVERHEAD",
    "UINT64_LIMIT",
]

#: Seeds and sample numbers are unsigned 64-bit integers (the Philox key and counter).
UINT64_LIMIT = 2**64


def _shape(x: Any) -> tuple[int, ...]:
    return tuple(int(s) for s in x.shape)


def real_array(
    x: Any,
    name: str,
    arrays: ArrayAdapter,
    *,
    ndim: int,
    shape_doc: str,
    allow_float32: bool = True,
    host_ok: bool = False,
) -> Any:
    """A finite, non-empty, C-contiguous float32/float64 working array of ``arrays``.

    Contiguous float32/float64 inputs are not copied. A non-contiguous input is copied once into
    C order; other floating dtypes (float16, longdouble) are converted to float64 (a copy), and
    so is float32 when ``allow_float32`` is False. torch float16/bfloat16 become float32.

    Raises
    ------
    TypeError
        If the dtype is not a real floating type (integer, bool, complex, object ...).
    ValueError
        If ``x`` does not have ``ndim`` dimensions, has a zero-length axis, holds NaN/Inf, or is
        on another device than the call's other arrays.
    """
    array = arrays.adopt(x, name, host_ok=host_ok)
    dtype = arrays.dtype(array)
    if dtype.kind != "f":
        raise TypeError(f"{name} must be a float32 or float64 array; got dtype {dtype}")
    shape = _shape(array)
    if len(shape) != ndim:
        raise ValueError(f"{name} must have shape {shape_doc}; got {shape}")
    if math.prod(shape) == 0:
        raise ValueError(f"{name} must not be empty; got shape {shape}")
    keep = dtype == np.float64 or (dtype == np.float32 and allow_float32)
    array = arrays.astype(array, dtype if keep else np.float64)
    check_finite(array, name)
    return array


#: Elements per slice of a large host array in :func:`check_finite` (4 MiB of float32): both
#: reductions of a slice read it from the cache, so a memory-mapped file is read from disk once.
_FINITE_SLICE = 1 << 20


def _finite_extremes(array: Any) -> bool:
    return math.isfinite(array.min().item()) and math.isfinite(array.max().item())


def check_finite(array: Any, name: str) -> None:
    """Raise ValueError if the (numpy, torch or CuPy) float ``array`` holds NaN or Inf.

    min and max propagate NaN and expose +-Inf, so two reductions check the whole array without
    allocating an n-element boolean temporary (which ``isfinite(a).all()`` would). A large numpy
    array is checked in slices of rows, each read once for both; a large C-contiguous
    float32/float64 one in a single pass by the C++ library (``_core.all_finite``), which reads it
    once where the two reductions cost about twice that.
    """
    shape = _shape(array)
    if not math.prod(shape):
        return
    if (
        isinstance(array, np.ndarray)
        and array.size > _FINITE_SLICE
        and array.dtype in (np.float32, np.float64)
        and array.flags.c_contiguous
    ):
        from . import _core  # here: the extension imports this module's package first

        finite = bool(_core.all_finite(array))
    elif isinstance(array, np.ndarray) and array.size > _FINITE_SLICE and shape[0] > 1:
        rows = max(1, _FINITE_SLICE // (array.size // shape[0]))
        finite = all(_finite_extremes(array[i : i + rows]) for i in range(0, shape[0], rows))
    else:
        finite = _finite_extremes(array)
    if not finite:
        raise ValueError(f"{name} must not contain NaN or Inf")


def check_unit_interval(array: Any, name: str) -> None:
    """Raise ValueError unless every value of the float ``array`` lies in [0, 1]."""
    low, high = array.min().item(), array.max().item()
    if low < 0.0 or high > 1.0:
        raise ValueError(f"{name} must lie in [0, 1]; got values in [{low}, {high}]")


def labels_array(
    x: Any, name: str, arrays: ArrayAdapter, *, host_ok: bool = False
) -> tuple[Any, int]:
    """Non-negative class labels as a C-contiguous int64 working array of shape (n,), and the
    number of classes ``max(labels) + 1`` (0 for no labels).

    Non-integer labels are a ValueError (not a TypeError): float labels usually mean a tensor of
    class scores was passed by mistake, a wrong value rather than a wrong kind of argument.
    """
    array = arrays.adopt(x, name, host_ok=host_ok)
    shape = _shape(array)
    if len(shape) != 1:
        raise ValueError(f"{name} must have shape (n,); got {shape}")
    dtype = arrays.dtype(array)
    if dtype.kind not in "iu":
        raise ValueError(f"{name} must be an integer array; got dtype {dtype}")
    num_classes = 0
    if shape[0]:
        low = array.min().item()
        if low < 0:
            raise ValueError(f"{name} must be >= 0; got {low}")
        # Read before the int64 cast, so that no unsigned label wraps around.
        num_classes = int(array.max().item()) + 1
    return arrays.astype(array, np.int64), num_classes


def host_array(x: Any, name: str) -> np.ndarray:
    """Any array (numpy, torch on any device, CuPy, array-like) as a numpy array on the host."""
    arrays = adapter_for(x, name)
    return arrays.to_host(arrays.adopt(x, name))


def k_per_class_array(k_per_class: Any, num_classes: int) -> np.ndarray:
    """``k_per_class`` (an int, or an integer array of shape (num_classes,)) as host int64."""
    name = "k_per_class"
    if isinstance(k_per_class, (bool, np.bool_)):
        raise TypeError(f"{name} must be an int or an integer array; got {k_per_class!r}")
    if isinstance(k_per_class, (numbers.Integral, np.integer)) or np.ndim(k_per_class) == 0:
        k = check_int(k_per_class, name, minimum=0)
        return np.full(num_classes, k, dtype=np.int64)
    array = host_array(k_per_class, name)
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"{name} must be an int or an integer array; got dtype {array.dtype}")
    if array.shape != (num_classes,):
        raise ValueError(
            f"{name} must be an int or have shape (max(labels) + 1,) = ({num_classes},); "
            f"got {array.shape}"
        )
    if array.size and int(array.min()) < 0:
        raise ValueError(f"{name} must be >= 0; got {int(array.min())}")
    return np.ascontiguousarray(array, dtype=np.int64)


def index_array(x: Any, name: str, n: int) -> np.ndarray:
    """Distinct item indices in [0, n) as a 1-D int64 numpy array (input order kept).

    ``x`` may live anywhere (a row of GPU samples is read back to the host).

    Raises
    ------
    TypeError
        If ``x`` does not hold integers.
    ValueError
        If ``x`` is not 1-D, or an index is out of range or repeated.
    """
    array = host_array(x, name)
    if array.size == 0:
        array = array.astype(np.int64)
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"{name} must hold integer indices; got dtype {array.dtype}")
    if array.ndim != 1:
        raise ValueError(f"{name} must have shape (m,); got {array.shape}")
    array = array.astype(np.int64, copy=False)
    if array.size:
        low, high = int(array.min()), int(array.max())
        if low < 0 or high >= n:
            raise ValueError(f"{name} must hold indices in [0, {n}); got values in [{low}, {high}]")
        if np.unique(array).size != array.size:
            raise ValueError(f"{name} must not repeat an index")
    return array


_ALPHA_DOC = "alpha must be 'paper', 'code' or a finite float > 0"


def parse_alpha(alpha: Any) -> tuple[float, float]:
    """The IP-DPP coupling ``alpha`` as the C++ library's ``(alpha_power, alpha_value)``.

    "paper" -> (1, 0) and "code" -> (2, 0), i.e. ``alpha = N**-power`` for a kernel (or class)
    of N items; a float > 0 -> (0, value), a fixed alpha. The formula itself is the C++
    library's (``_core.ipdpp_alpha``), shared by every backend.

    Raises
    ------
    TypeError
        If ``alpha`` is neither a string nor a real number.
    ValueError
        If ``alpha`` is an unknown string, not finite or not positive.
    """
    if isinstance(alpha, str):
        if alpha == "paper":
            return 1.0, 0.0
        if alpha == "code":
            return 2.0, 0.0
        raise ValueError(f"{_ALPHA_DOC}; got {alpha!r}")
    if isinstance(alpha, (bool, np.bool_)) or not isinstance(alpha, numbers.Real):
        raise TypeError(f"{_ALPHA_DOC}; got {alpha!r}")
    value = float(alpha)
    if not (math.isfinite(value) and value > 0.0):
        raise ValueError(f"{_ALPHA_DOC}; got {alpha!r}")
    return 0.0, value


def check_int(x: Any, name: str, *, minimum: int | None = None) -> int:
    """``x`` as a Python int (ints, numpy integers, 0-d integer arrays; not bool, not float).

    Raises
    ------
    TypeError
        If ``x`` is not an integer.
    ValueError
        If ``x < minimum``.
    """
    if isinstance(x, (bool, np.bool_)):
        raise TypeError(f"{name} must be an integer; got {x!r}")
    try:
        value = operator.index(x)
    except TypeError:
        raise TypeError(f"{name} must be an integer; got {type(x).__name__} {x!r}") from None
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}")
    return value


def check_uint64(x: Any, name: str) -> int:
    """``x`` as a Python int in ``[0, 2**64)`` (a Philox seed).

    Raises
    ------
    TypeError
        If ``x`` is not an integer.
    ValueError
        If ``x`` is negative or at least ``2**64``.
    """
    value = check_int(x, name, minimum=0)
    if value >= UINT64_LIMIT:
        raise ValueError(f"{name} must be < 2**64; got {value}")
    return value


def check_seed(seed: Any, sample_offset: Any, num_samples: int) -> tuple[int, int]:
    """Validated (seed, sample_offset): both unsigned 64-bit, offset + count within range."""
    seed = check_uint64(seed, "seed")
    sample_offset = check_uint64(sample_offset, "sample_offset")
    if sample_offset + num_samples > UINT64_LIMIT:
        raise ValueError(
            f"sample_offset + num_samples must be <= 2**64; got {sample_offset} + {num_samples}"
        )
    return seed, sample_offset


def check_threads(threads: Any) -> int:
    """``threads`` for the C++ layer: None -> 0 (all hardware threads), else an int >= 1.

    The C++ thread count is a C ``int``; a larger request is an error here rather than an
    unnamed overflow in the bindings (no machine runs 2**31 threads).
    """
    if threads is None:
        return 0
    value = check_int(threads, "threads", minimum=1)
    if value > _MAX_THREADS:
        raise ValueError(f"threads must be <= {_MAX_THREADS}; got {value}")
    return value


_MAX_THREADS = 2**31 - 1

#: Bytes of one sample of :func:`ipdpp.sample_dpp` besides its indices: the list slot and the
#: header of its own int64 array (``sys.getsizeof(numpy.empty(0, numpy.int64))`` is 112).
DPP_SAMPLE_OVERHEAD = 120


def _physical_memory() -> int | None:
    """Bytes of physical memory of this machine, or None where the OS does not say."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, OSError, ValueError):
        return None


def check_memory(needed: int, name: str, what: str) -> None:
    """Raise ValueError naming ``name`` if ``what`` needs more bytes than the machine has.

    Sizes that no machine can hold are refused up front: the allocation would otherwise fail
    late (MemoryError, possibly after minutes of work), or succeed lazily and get the process
    killed when the memory is touched.
    """
    memory = _physical_memory()
    if memory is not None and needed > memory:
        raise ValueError(
            f"{name}: {what} need at least {needed / 2**30:.4g} GiB, more than the "
            f"{memory / 2**30:.4g} GiB of memory of this machine"
        )


def check_sample_count(num_samples: Any, bytes_per_sample: int) -> int:
    """``num_samples`` as an int whose samples, ``bytes_per_sample`` each, fit in memory.

    Raises
    ------
    TypeError
        If ``num_samples`` is not an integer.
    ValueError
        If ``num_samples`` is negative, at least ``2**63`` (the C++ count is signed 64-bit), or
        its samples need more bytes than the machine has.
    """
    value = check_int(num_samples, "num_samples", minimum=0)
    if value >= 2**63:
        raise ValueError(f"num_samples must be < 2**63; got {value}")
    check_memory(value * bytes_per_sample, "num_samples", f"{value} samples")
    return value
