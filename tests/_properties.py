"""Hypothesis profiles, input strategies and the outcome invariant of the property tests.

Every property test calls a public function of ipdpp with inputs that are valid, invalid or at
an edge, computes from the inputs alone whether the call must succeed, and checks one invariant:
a valid call returns a well-formed result; an invalid one raises ``ValueError`` or ``TypeError``
whose message names one of the offending arguments. Anything else (another exception type, a
crash, a hang, a ``MemoryError`` from a silly size) fails the test.

Profiles (``IPDPP_HYPOTHESIS_PROFILE``): ``ci`` (default) runs a fixed, derandomized set of about
100 examples per test so that CI is reproducible; ``long`` explores 2,000 fresh random examples
per test for a local hunt.
"""

from __future__ import annotations

import atexit
import operator
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

settings.register_profile(
    "ci",
    max_examples=100,
    derandomize=True,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "long",
    max_examples=2000,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
#: The settings of every property test (applied per test, so no other test is affected).
SETTINGS = settings.get_profile(os.environ.get("IPDPP_HYPOTHESIS_PROFILE", "ci"))

# Memory-mapped inputs live in one private folder, removed when the interpreter exits.
_MEMMAP_DIR = tempfile.mkdtemp(prefix="ipdpp-properties-")
atexit.register(shutil.rmtree, _MEMMAP_DIR, ignore_errors=True)
_memmap_count = 0

#: Magnitudes of the generated values: zero, tiny (subnormal products), ordinary, huge.
SCALES = (0.0, 1e-300, 1e-20, 1.0, 1e3, 1e20, 1e150, 1e300)
#: Real floating dtypes (accepted by the kernels); "bfloat16" exists only as a torch tensor.
REAL_DTYPES = ("float16", "float32", "float64", "longdouble", "bfloat16")
#: Dtypes that no floating argument accepts.
NON_REAL_DTYPES = ("int8", "int64", "uint8", "uint64", "bool", "complex64", "complex128", "object")
#: How an array reaches the function: memory layout, ownership and container.
LAYOUTS = ("c", "f", "strided", "reversed", "readonly", "memmap", "torch", "torch_t", "list")

_TORCH_DTYPES = {
    "float16": torch.float16,
    "float32": torch.float32,
    "float64": torch.float64,
    "bfloat16": torch.bfloat16,
    "int8": torch.int8,
    "int64": torch.int64,
    "uint8": torch.uint8,
    "bool": torch.bool,
    "complex64": torch.complex64,
    "complex128": torch.complex128,
}


@dataclass
class ArrayInput:
    """A generated array argument and what the function should see of it.

    Attributes
    ----------
    obj : the object passed to the function (numpy array, memmap, torch tensor or nested list).
    values : float64 numpy array of the values as the function reads them (after rounding to the
        dtype), or None when the dtype is not real floating.
    real : whether the dtype is a real floating type.
    torch : whether ``obj`` is a torch tensor (results then come back as tensors).
    label : short description for failure messages.
    """

    obj: Any
    values: np.ndarray | None
    real: bool
    torch: bool
    label: str

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in np.shape(self.obj))

    @property
    def finite(self) -> bool:
        return self.values is not None and bool(np.isfinite(self.values).all())

    def __repr__(self) -> str:
        return f"ArrayInput({self.label})"


def _cast(values: np.ndarray, dtype: str) -> tuple[Any, np.ndarray | None]:
    """(values in ``dtype`` as numpy or torch, their float64 reading or None if not real)."""
    with np.errstate(all="ignore"):
        if dtype == "bfloat16":
            tensor = torch.from_numpy(values.copy()).to(torch.bfloat16)
            return tensor, tensor.to(torch.float64).numpy()
        if dtype == "object":
            return values.astype(object), None
        array = values.astype(dtype)
    real = np.issubdtype(array.dtype, np.floating)
    return array, (array.astype(np.float64) if real else None)


def _place(array: np.ndarray, layout: str) -> Any:
    """``array`` (numpy) presented with ``layout``; same values, different memory."""
    global _memmap_count
    if layout == "f" and array.ndim:  # (asfortranarray makes a 0-d array 1-d)
        return np.asfortranarray(array)
    if layout == "strided" and array.ndim:
        wide = np.zeros((2 * array.shape[0],) + array.shape[1:], dtype=array.dtype)
        wide[::2] = array
        return wide[::2]
    if layout == "reversed" and array.ndim:
        flipped = np.ascontiguousarray(array[(slice(None, None, -1),) * array.ndim])
        return flipped[(slice(None, None, -1),) * array.ndim]
    if layout == "readonly":
        view = array.copy()
        view.setflags(write=False)
        return view
    if layout == "memmap" and array.ndim and array.size and array.dtype != object:
        _memmap_count += 1
        path = os.path.join(_MEMMAP_DIR, f"input-{_memmap_count}.bin")
        array.tofile(path)
        return np.memmap(path, dtype=array.dtype, mode="r", shape=array.shape)
    if layout in ("torch", "torch_t") and array.dtype.name in _TORCH_DTYPES:
        tensor = torch.from_numpy(array.copy())  # (ascontiguousarray makes 0-d arrays 1-d)
        if layout == "torch_t" and array.ndim == 2:
            tensor = tensor.t().contiguous().t()  # same values, column-major strides
        return tensor
    if layout == "list" and array.dtype != object:
        return array.tolist()
    return array


@st.composite
def present(draw: st.DrawFn, values: np.ndarray, *, real_only: bool = False) -> ArrayInput:
    """The float64 ``values`` in a random dtype (rounded to it) and a random layout."""
    dtypes = REAL_DTYPES if real_only else REAL_DTYPES + NON_REAL_DTYPES
    dtype = draw(st.sampled_from(("float64",) * 4 + ("float32",) * 2 + dtypes))
    layout = draw(st.sampled_from(LAYOUTS))
    cast, read = _cast(values, dtype)
    obj = cast if isinstance(cast, torch.Tensor) else _place(cast, layout)
    if isinstance(obj, list):  # a list has the dtype numpy infers (huge ints read as floats)
        inferred = np.asarray(obj)
        read = inferred.astype(np.float64) if inferred.dtype.kind == "f" else None
    finite = read is not None and bool(np.isfinite(read).all())
    return ArrayInput(
        obj=obj,
        values=read,
        real=read is not None,
        torch=isinstance(obj, torch.Tensor),
        label=f"{dtype} {layout} shape={values.shape} finite={finite}",
    )


def _with_special(draw: st.DrawFn, values: np.ndarray) -> np.ndarray:
    """``values`` with, one time in eight, one entry replaced by NaN, +Inf or -Inf."""
    if values.size and draw(st.integers(0, 7)) == 0:
        values.flat[draw(st.integers(0, values.size - 1))] = draw(
            st.sampled_from([np.nan, np.inf, -np.inf])
        )
    return values


@st.composite
def array_input(
    draw: st.DrawFn,
    shape: tuple[int, ...],
    *,
    real_only: bool = False,
    nonnegative: bool = False,
    unit: bool = False,
) -> ArrayInput:
    """An array argument of ``shape``: Gaussian values of a random magnitude (absolute values
    with ``nonnegative``; in [0, 1] with ``unit``, sometimes one just outside), sometimes NaN or
    Inf, in a random dtype and layout."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if unit:
        values = np.asarray(rng.uniform(0.0, 1.0, shape))
        values[rng.random(shape) < 0.2] = draw(st.sampled_from([0.0, 1.0]))
        if values.size and draw(st.integers(0, 9)) == 0:
            values.flat[draw(st.integers(0, values.size - 1))] = draw(
                st.sampled_from([-1e-12, 1.0 + 1e-9, 2.0, -3.0])
            )
    else:
        values = np.asarray(rng.standard_normal(shape) * draw(st.sampled_from(SCALES)))
        if nonnegative:
            values = np.asarray(np.abs(values))
    return draw(present(_with_special(draw, values), real_only=real_only))


@dataclass
class Arg:
    """A generated scalar argument: the object, its integer value (None when not an integer)."""

    obj: Any
    value: int | None

    def __repr__(self) -> str:
        return f"{type(self.obj).__name__}({self.obj!r})"


def _as_int(x: Any) -> int | None:
    if isinstance(x, (bool, np.bool_)):
        return None
    try:
        return operator.index(x)
    except TypeError:
        return None


def _int_forms(value: int) -> st.SearchStrategy[Any]:
    """``value`` as a Python int, a numpy integer scalar that holds it, or a 0-d array."""
    forms: list[Any] = [value]
    for dtype in (np.int8, np.int32, np.int64, np.uint8, np.uint64):
        info = np.iinfo(dtype)
        if info.min <= value <= info.max:
            forms.append(dtype(value))
    if -(2**63) <= value < 2**63:
        forms.append(np.array(value))
    return st.sampled_from(forms)


#: Objects that are not integers, for arguments that want one.
NOT_INTS: tuple[Any, ...] = (
    True,
    False,
    np.bool_(True),
    1.0,
    2.5,
    float("nan"),
    float("inf"),
    None,
    "2",
    1j,
    [1],
    np.float64(1.0),
    np.array([1]),
)


def int_arg(low: int, high: int, *, extremes: tuple[int, ...] = ()) -> st.SearchStrategy[Arg]:
    """An integer argument: mostly in [low, high], sometimes an extreme or a non-integer."""
    ordinary = st.integers(low, high).flatmap(_int_forms)
    edges = st.sampled_from(extremes).flatmap(_int_forms) if extremes else st.nothing()
    return st.one_of(ordinary, ordinary, ordinary, edges, st.sampled_from(NOT_INTS)).map(
        lambda x: Arg(x, _as_int(x))
    )


def names(message: str, candidates: list[str]) -> bool:
    """Whether ``message`` names one of ``candidates`` as a word."""
    return any(re.search(rf"(?<![\w]){re.escape(c)}(?![\w])", message) for c in candidates)


def expect(call: Callable[[], Any], bad: list[str], may_fail: Sequence[str] = ()) -> Any:
    """Run ``call`` and enforce the invariant.

    ``bad`` names the arguments that are invalid: the call must raise ValueError or TypeError
    naming one of them. With ``bad`` empty the call must succeed, unless ``may_fail`` lists
    arguments at an edge of their documented range (e.g. a PSD tolerance), which the call may
    then reject by name. Returns the result, or None when the call raised.
    """
    if not bad and not may_fail:
        return call()
    try:
        result = call()
    except (ValueError, TypeError) as error:
        allowed = list(bad or may_fail)
        assert names(str(error), allowed), f"message does not name one of {allowed}: {error!r}"
        return None
    assert not bad, f"invalid {bad} accepted; returned {result!r}"
    return result


def to_numpy(result: Any) -> np.ndarray:
    """The numpy array behind a result (numpy array or CPU torch tensor)."""
    if isinstance(result, torch.Tensor):
        return result.numpy()
    return np.asarray(result)


def check_index_result(
    result: Any, length: int, n: int, *, as_torch: bool, sorted_: bool
) -> np.ndarray:
    """A 1-D int64 index result: type, length, range, distinct, sorted when documented."""
    assert isinstance(result, torch.Tensor if as_torch else np.ndarray), type(result)
    array = to_numpy(result)
    assert array.dtype == np.int64 and array.shape == (length,), (array.dtype, array.shape)
    if length:
        assert 0 <= array.min() and array.max() < n, array
    assert np.unique(array).size == length, array
    if sorted_:
        assert np.all(np.diff(array) > 0), array
    return array
