"""Array interop: numpy arrays and torch CPU tensors in, the caller's array type out.

Inputs are viewed, not copied: a torch CPU tensor becomes a numpy array over the same memory
(``Tensor.numpy()``), and numpy arrays pass through unchanged. Whether an array must later be made
contiguous or converted to another dtype is decided by the caller (see ``ipdpp._validation``).
GPU arrays (torch CUDA tensors, CuPy arrays, anything with ``__cuda_array_interface__``) go to
``ipdpp._cuda_backend`` when the CUDA extension is built (:func:`use_cuda` decides); without it
they are recognised here so that the error says what happened instead of failing inside numpy.
"""

from __future__ import annotations

import importlib.util
import sys
from typing import Any, Literal

import numpy as np

__all__ = ["ArrayKind", "as_numpy", "wrap", "is_cuda_array", "cuda_available", "use_cuda"]

#: Where an input came from; results are returned as the same kind.
ArrayKind = Literal["numpy", "torch"]


def cuda_available() -> bool:
    """Whether the CUDA extension ``ipdpp._cuda`` was built."""
    return importlib.util.find_spec("ipdpp._cuda") is not None


def _torch_tensor_type() -> Any:
    # torch is optional: only look for tensors when the caller has imported torch already.
    torch = sys.modules.get("torch")
    return None if torch is None else torch.Tensor


def is_cuda_array(x: Any) -> bool:
    """True for torch CUDA tensors, CuPy arrays and other ``__cuda_array_interface__`` objects."""
    tensor_type = _torch_tensor_type()
    if tensor_type is not None and isinstance(x, tensor_type):
        return x.device.type == "cuda"
    return type(x).__module__.split(".", 1)[0] == "cupy" or hasattr(x, "__cuda_array_interface__")


def use_cuda(*arrays: Any) -> bool:
    """Whether a call with these arguments runs on the GPU (through ``ipdpp._cuda_backend``).

    True when one of ``arrays`` is a CUDA array and ``ipdpp._cuda`` is built. Without the
    extension the CPU path runs, and :func:`as_numpy` raises its error naming the argument.
    """
    return any(is_cuda_array(x) for x in arrays) and cuda_available()


def _cuda_error(name: str) -> ValueError:
    if cuda_available():
        return ValueError(
            f"{name} is a CUDA array; this function runs on the CPU only, "
            f"so move {name} to the CPU first (e.g. tensor.cpu())"
        )
    return ValueError(
        f"{name} is a CUDA array but ipdpp was built without CUDA support (ipdpp._cuda is "
        f"missing); move {name} to the CPU (e.g. tensor.cpu()) or install a CUDA build of ipdpp"
    )


def as_numpy(x: Any, name: str) -> tuple[np.ndarray, ArrayKind]:
    """View ``x`` as a numpy array without copying.

    Parameters
    ----------
    x : numpy.ndarray, torch.Tensor (CPU) or array-like
        The input. Torch tensors that require grad are detached (the view shares memory with the
        tensor); lists, tuples and scalars go through ``numpy.asarray``.
    name : str
        The argument's name, used in error messages.

    Returns
    -------
    array : numpy.ndarray
        A view of ``x`` (or ``numpy.asarray(x)`` for other array-likes). Its dtype, shape and
        strides are those of ``x``, except that torch float16/bfloat16 become float32 (a copy, as
        numpy has no bfloat16).
    kind : {"numpy", "torch"}
        What :func:`wrap` should turn results back into.

    Raises
    ------
    ValueError
        If ``x`` lives on a GPU (CUDA tensor, CuPy array) or on another non-CPU torch device.
    """
    tensor_type = _torch_tensor_type()
    if tensor_type is not None and isinstance(x, tensor_type):
        if x.device.type == "cuda":
            raise _cuda_error(name)
        if x.device.type != "cpu":
            raise ValueError(
                f"{name} is on torch device {x.device}; only CPU tensors are supported"
            )
        import torch

        x = x.detach().resolve_conj().resolve_neg()
        if x.dtype in (torch.float16, torch.bfloat16):
            x = x.float()
        return x.numpy(), "torch"
    if is_cuda_array(x):
        raise _cuda_error(name)
    if isinstance(x, np.ndarray):
        return x, "numpy"
    return np.asarray(x), "numpy"


def wrap(result: np.ndarray, kind: ArrayKind) -> Any:
    """Return ``result`` as the array type ``kind`` (zero-copy for torch)."""
    if kind == "torch":
        import torch

        return torch.from_numpy(result)
    return result
