"""Array adapters: what ipdpp does with numpy, torch and CuPy arrays, in one place.

One adapter stands for the arrays of one call: it reads the caller's arrays (:meth:`adopt`),
answers the questions validation asks (dtype, conversion to a contiguous dtype), allocates
results, hands raw memory to the extensions (pointer, stream, view of memory the extension owns),
copies to and from the host, and gives results back as the caller's array type (:meth:`wrap`).

- :class:`HostArrays`: numpy arrays and torch CPU tensors, both read as numpy arrays over the
  same memory. Its "device" is the host: pointers are host addresses and streams are ignored,
  which is what a CPU emulation of the CUDA extension needs.
- :class:`TorchCudaArrays` and :class:`CupyArrays`: arrays on one CUDA device.

Shapes, slicing, ``abs``, comparisons, ``sum`` and ``min``/``max`` followed by ``.item()`` behave
alike in the three frameworks, so code above this layer uses them directly. Recognising arrays is
:mod:`ipdpp._frameworks`; neither torch nor CuPy is imported before an array of theirs arrives.
"""

from __future__ import annotations

import importlib.util
from typing import Any, Literal, Protocol

import numpy as np

from ._frameworks import (
    ArrayInterfaceView,
    as_numpy,
    device_mismatch,
    is_cuda_array,
    is_cupy_array,
    is_torch_tensor,
    numpy_dtype,
    plain_tensor,
    torch_module,
)

__all__ = ["ArrayAdapter", "HostArrays", "TorchCudaArrays", "CupyArrays", "adapter_for"]


class ArrayAdapter(Protocol):
    """What the backends and the validation read from, and do with, the arrays of one call.

    "Working arrays" are the adapter's own type: numpy for :class:`HostArrays`, torch CUDA
    tensors or CuPy arrays on :attr:`device` for the CUDA adapters.
    """

    @property
    def device(self) -> int:
        """CUDA device ordinal of the working arrays (0 for host memory)."""
        ...

    def adopt(self, x: Any, name: str, *, host_ok: bool = False) -> Any:
        """``x`` as a working array, zero-copy where possible (``host_ok``: host input is copied
        to :attr:`device` instead of rejected)."""
        ...

    def dtype(self, x: Any) -> np.dtype:
        """The numpy dtype of a working array."""
        ...

    def astype(self, x: Any, dtype: Any) -> Any:
        """A C-contiguous working array of ``dtype`` (``x`` itself when it already is one)."""
        ...

    def to_host(self, x: Any) -> np.ndarray:
        """A numpy array with the values of the working array ``x`` (a view on the host)."""
        ...

    def from_host(self, x: np.ndarray) -> Any:
        """A working array with the values of ``x`` (``x`` itself on the host)."""
        ...

    def wrap(self, x: Any) -> Any:
        """A working array as the caller's array type (torch for torch input, and so on)."""
        ...

    def empty(self, shape: tuple[int, ...], dtype: Any) -> Any:
        """An uninitialised C-contiguous working array."""
        ...

    def pointer(self, x: Any) -> int:
        """Address of the first element of a C-contiguous working array."""
        ...

    def stream(self) -> int:
        """The caller's current stream on :attr:`device` (0 on the host)."""
        ...

    def view(self, owner: Any, pointer: int, shape: tuple[int, ...], dtype: Any) -> Any:
        """A working array over memory at ``pointer`` that ``owner`` keeps alive (no copy)."""
        ...


class HostArrays:
    """numpy arrays and torch CPU tensors: working arrays are numpy arrays on the host.

    Parameters
    ----------
    kind : {"numpy", "torch"}
        What :meth:`wrap` gives back: numpy arrays, or torch tensors over the same memory.
    """

    device = 0

    def __init__(self, kind: Literal["numpy", "torch"] = "numpy") -> None:
        self.kind = kind

    def adopt(self, x: Any, name: str, *, host_ok: bool = False) -> np.ndarray:
        return as_numpy(x, name)

    def dtype(self, x: Any) -> np.dtype:
        return np.dtype(x.dtype)

    def astype(self, x: Any, dtype: Any) -> np.ndarray:
        return np.ascontiguousarray(x, dtype=dtype)

    def to_host(self, x: Any) -> np.ndarray:
        return np.asarray(x)

    def from_host(self, x: np.ndarray) -> np.ndarray:
        return x

    def wrap(self, x: Any) -> Any:
        if self.kind == "torch":
            return torch_module().from_numpy(np.asarray(x))
        return x

    def empty(self, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        return np.empty(shape, dtype=dtype)

    def pointer(self, x: Any) -> int:
        return int(x.ctypes.data)

    def stream(self) -> int:
        return 0

    def view(self, owner: Any, pointer: int, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        return np.asarray(ArrayInterfaceView(owner, pointer, shape, dtype, cuda=False))

    def __repr__(self) -> str:
        return f"HostArrays({self.kind!r})"


class TorchCudaArrays:
    """torch tensors on one CUDA device; work runs on torch's current stream of that device."""

    def __init__(self, device: int) -> None:
        self.device = device

    def _name(self) -> str:
        return f"cuda:{self.device}"

    def adopt(self, x: Any, name: str, *, host_ok: bool = False) -> Any:
        torch = torch_module()
        if not is_torch_tensor(x):
            if is_cuda_array(x):
                x = torch.as_tensor(x)  # a zero-copy view; the device comes from the pointer
            elif host_ok:
                x = torch.as_tensor(as_numpy(x, name))
            else:
                raise device_mismatch(name, self._name(), x)
        if x.device.type != "cuda":
            if not host_ok or x.device.type != "cpu":
                raise device_mismatch(name, self._name(), x)
            x = x.to(self._name())
        elif x.device.index != self.device:
            raise device_mismatch(name, self._name(), x)
        return plain_tensor(x, name)

    def dtype(self, x: Any) -> np.dtype:
        return numpy_dtype(x.dtype, "array")

    def _torch_dtype(self, dtype: Any) -> Any:
        return getattr(torch_module(), np.dtype(dtype).name)

    def astype(self, x: Any, dtype: Any) -> Any:
        return x.to(dtype=self._torch_dtype(dtype)).contiguous()

    def to_host(self, x: Any) -> np.ndarray:
        return np.asarray(x.detach().cpu().numpy())

    def from_host(self, x: np.ndarray) -> Any:
        return torch_module().from_numpy(np.ascontiguousarray(x)).to(self._name())

    def wrap(self, x: Any) -> Any:
        return x

    def empty(self, shape: tuple[int, ...], dtype: Any) -> Any:
        return torch_module().empty(shape, dtype=self._torch_dtype(dtype), device=self._name())

    def pointer(self, x: Any) -> int:
        return int(x.data_ptr())

    def stream(self) -> int:
        return int(torch_module().cuda.current_stream(self.device).cuda_stream)

    def view(self, owner: Any, pointer: int, shape: tuple[int, ...], dtype: Any) -> Any:
        view = ArrayInterfaceView(owner, pointer, shape, dtype, cuda=True)
        return torch_module().as_tensor(view, device=self._name())

    def __repr__(self) -> str:
        return f"TorchCudaArrays({self.device})"


class CupyArrays:
    """CuPy arrays on one CUDA device; work runs on CuPy's current stream of that device."""

    def __init__(self, device: int) -> None:
        self.device = device

    @staticmethod
    def _cupy() -> Any:
        import cupy

        return cupy

    def adopt(self, x: Any, name: str, *, host_ok: bool = False) -> Any:
        cupy = self._cupy()
        with cupy.cuda.Device(self.device):
            if is_torch_tensor(x) and x.device.type == "cuda":
                x = cupy.asarray(x.detach())  # a zero-copy view through the array interface
            elif not is_cupy_array(x) and hasattr(x, "__cuda_array_interface__"):
                x = cupy.asarray(x)
            elif not is_cupy_array(x):
                if not host_ok:
                    raise device_mismatch(name, f"cuda:{self.device}", x)
                return cupy.asarray(as_numpy(x, name))
        if x.device.id != self.device:
            raise device_mismatch(name, f"cuda:{self.device}", x)
        return x

    def dtype(self, x: Any) -> np.dtype:
        return np.dtype(x.dtype)

    def astype(self, x: Any, dtype: Any) -> Any:
        cupy = self._cupy()
        with cupy.cuda.Device(self.device):
            return cupy.ascontiguousarray(x, dtype=dtype)

    def to_host(self, x: Any) -> np.ndarray:
        return np.asarray(x.get())

    def from_host(self, x: np.ndarray) -> Any:
        cupy = self._cupy()
        with cupy.cuda.Device(self.device):
            return cupy.asarray(x)

    def wrap(self, x: Any) -> Any:
        return x

    def empty(self, shape: tuple[int, ...], dtype: Any) -> Any:
        cupy = self._cupy()
        with cupy.cuda.Device(self.device):
            return cupy.empty(shape, dtype=dtype)

    def pointer(self, x: Any) -> int:
        return int(x.data.ptr)

    def stream(self) -> int:
        cupy = self._cupy()
        with cupy.cuda.Device(self.device):
            return int(cupy.cuda.get_current_stream().ptr)

    def view(self, owner: Any, pointer: int, shape: tuple[int, ...], dtype: Any) -> Any:
        cupy = self._cupy()
        with cupy.cuda.Device(self.device):
            return cupy.asarray(ArrayInterfaceView(owner, pointer, shape, dtype, cuda=True))

    def __repr__(self) -> str:
        return f"CupyArrays({self.device})"


def adapter_for(x: Any, name: str) -> ArrayAdapter:
    """The adapter of the array ``x``: host for numpy / torch CPU / array-likes, else its GPU's.

    Objects that only expose ``__cuda_array_interface__`` are read through torch when it is
    installed, else through CuPy.

    Raises
    ------
    ValueError
        For a torch tensor on a device other than the CPU or CUDA, or an interface object when
        neither torch nor CuPy is installed.
    """
    if is_torch_tensor(x):
        if x.device.type == "cuda":
            return TorchCudaArrays(int(x.device.index))
        if x.device.type != "cpu":
            raise ValueError(
                f"{name} is on torch device {x.device}; only CPU and CUDA tensors are supported"
            )
        return HostArrays("torch")
    if is_cupy_array(x):
        return CupyArrays(int(x.device.id))
    if hasattr(x, "__cuda_array_interface__"):
        if importlib.util.find_spec("torch") is not None:
            import torch

            return TorchCudaArrays(int(torch.as_tensor(x).device.index))
        if importlib.util.find_spec("cupy") is not None:
            import cupy

            return CupyArrays(int(cupy.asarray(x).device.id))
        raise ValueError(
            f"{name} exposes __cuda_array_interface__, but neither torch nor cupy is installed "
            "to read it"
        )
    return HostArrays("numpy")
