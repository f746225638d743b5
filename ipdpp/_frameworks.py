"""Recognising the caller's arrays: numpy, torch (CPU or CUDA), CuPy and array-interface objects.

The framework-specific facts every array adapter (:mod:`ipdpp._adapters`) shares: which arrays
live on a GPU, how a torch tensor becomes a plain numpy-compatible one, which numpy dtype it has,
where an array lives (for messages), and the machine epsilon of the caller's dtype. Neither torch
nor CuPy is imported here: a torch tensor can only arrive once the caller has imported torch.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

__all__ = [
    "is_cuda_array",
    "is_torch_tensor",
    "is_cupy_array",
    "as_numpy",
    "plain_tensor",
    "numpy_dtype",
    "device_mismatch",
    "source_eps",
    "ArrayInterfaceView",
    "torch_module",
]


def torch_module() -> Any:
    """The torch module if the caller has imported it (ipdpp never imports it on its own)."""
    return sys.modules.get("torch")


def is_torch_tensor(x: Any) -> bool:
    torch = torch_module()
    return torch is not None and isinstance(x, torch.Tensor)


def is_cupy_array(x: Any) -> bool:
    return type(x).__module__.split(".", 1)[0] == "cupy"


def is_cuda_array(x: Any) -> bool:
    """True for torch CUDA tensors, CuPy arrays and other ``__cuda_array_interface__`` objects."""
    if is_torch_tensor(x):
        return bool(x.device.type == "cuda")
    return is_cupy_array(x) or hasattr(x, "__cuda_array_interface__")


def _where(x: Any) -> str:
    """Where an array lives, as the messages say it: "the host", "cuda:1", "torch device mps"."""
    if is_torch_tensor(x):
        return "the host" if x.device.type == "cpu" else str(x.device)
    if is_cupy_array(x):
        return f"cuda:{x.device.id}"
    if hasattr(x, "__cuda_array_interface__"):
        return "a CUDA device"
    return "the host"


def device_mismatch(name: str, expected: str, x: Any) -> ValueError:
    return ValueError(f"{name} must be on {expected} like the other inputs; got {_where(x)}")


def numpy_dtype(torch_dtype: Any, name: str) -> np.dtype:
    """The numpy dtype of a torch dtype; a TypeError naming the argument if numpy has none."""
    try:
        return np.dtype(str(torch_dtype).removeprefix("torch."))
    except TypeError:
        raise TypeError(
            f"{name} has dtype {torch_dtype}, which numpy cannot represent; convert it "
            "(e.g. to float32 or int64) first"
        ) from None


def plain_tensor(x: Any, name: str) -> Any:
    """A torch tensor without autograd, lazy conjugation or negation; float16/bfloat16 -> float32.

    numpy has no bfloat16, so reduced-precision tensors are widened to float32 on every device.
    """
    torch = torch_module()
    x = x.detach().resolve_conj().resolve_neg()
    if x.dtype in (torch.float16, torch.bfloat16):
        x = x.float()
    numpy_dtype(x.dtype, name)  # reject dtypes without a numpy equivalent, naming the argument
    return x


def as_numpy(x: Any, name: str) -> np.ndarray:
    """A host array or array-like as a numpy array without copying where possible.

    Raises
    ------
    ValueError
        If ``x`` lives on a GPU or on another non-CPU torch device.
    TypeError
        If ``x`` is a torch tensor of a dtype numpy cannot represent.
    """
    if is_torch_tensor(x):
        if x.device.type != "cpu":
            raise device_mismatch(name, "the host", x)
        return np.asarray(plain_tensor(x, name).numpy())
    if is_cuda_array(x):
        raise device_mismatch(name, "the host", x)
    if isinstance(x, np.ndarray):
        return x
    return np.asarray(x)


def source_eps(x: Any) -> float:
    """Machine epsilon of the caller's floating dtype, before ipdpp converts anything.

    A float16 tensor widened to float32 still only carries float16 precision; tolerances on its
    values use this.
    """
    dtype = getattr(x, "dtype", None)
    if dtype is not None and type(dtype).__module__ == "torch":
        return float(torch_module().finfo(dtype).eps)
    if dtype is None and hasattr(x, "__cuda_array_interface__"):
        dtype = x.__cuda_array_interface__["typestr"]
    dtype = np.asarray(x).dtype if dtype is None else np.dtype(dtype)
    return float(np.finfo(dtype).eps)


class ArrayInterfaceView:
    """Memory owned by ``owner``, exposed through the numpy or the CUDA array interface (v3)."""

    def __init__(
        self, owner: Any, pointer: int, shape: tuple[int, ...], dtype: Any, *, cuda: bool
    ) -> None:
        self._owner = owner  # numpy / torch / CuPy keep this object, hence the memory, alive
        interface = {
            "shape": shape,
            "typestr": np.dtype(dtype).str,
            "data": (pointer, True),
            "strides": None,
            "version": 3,
        }
        if cuda:
            # The extension returned the owner complete (synchronised): no stream to wait on.
            interface["stream"] = None
            self.__cuda_array_interface__ = interface
        else:
            self.__array_interface__ = interface
