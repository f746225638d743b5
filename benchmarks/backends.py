"""The samplers under comparison, behind one small interface.

A :class:`Family` is one setup (what a user computes once per kernel: kernel construction and
eigendecomposition) shared by one or more :class:`Sampler` s (what a user calls per sample or
per batch). For example ipdpp's CPU kernel serves the "sequential", "rejection" and "auto"
methods, and one DPPy ``FiniteDPP`` serves its ``GS_bis``, ``GS`` and ``KuTa12`` modes.

Families:

- ``ipdpp`` / ``ipdpp-cuda``: ``ipdpp.LowRankKernel(B)`` + ``.eigh()``, then
  ``ipdpp.sample_k_dpp(K, k, num_samples, seed, method=...)``. The CUDA family exists only when
  ``ipdpp._cuda`` was built and a device is visible.
- ``numpy``: :class:`benchmarks.baselines.NumpyKDPP`.
- ``torch`` / ``torch-cuda``: :class:`benchmarks.baselines.TorchKDPP`, single samples and batches.
- ``dppy``: DPPy 0.3.3, ``FiniteDPP("likelihood", L_gram_factor=B.T)``.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .baselines import NumpyKDPP, TorchKDPP

__all__ = ["Family", "Sampler", "cuda_unavailable_reason", "make_families"]

DrawOne = Callable[[Any, int, int], Any]  # (state, k, seed) -> one sample
DrawMany = Callable[[Any, int, int, int], Any]  # (state, k, num_samples, seed) -> (S, k)


@dataclass(frozen=True)
class Sampler:
    """One way of drawing samples from a family's prepared state.

    Attributes
    ----------
    key : str
        Identifier in the JSON and on the command line, e.g. ``"ipdpp-rejection"``.
    label : str
        Column title in tables and legend entry in plots, e.g. ``"ipdpp rejection"``.
    baseline : bool
        True for the alternatives ipdpp is compared against.
    draw : callable or None
        ``draw(state, k, seed)`` draws one sample.
    draw_batch : callable or None
        ``draw_batch(state, k, num_samples, seed)`` draws a batch in one call.
    """

    key: str
    label: str
    baseline: bool
    draw: DrawOne | None = None
    draw_batch: DrawMany | None = None


class Family:
    """A setup shared by samplers. Subclasses fill in the hooks.

    Attributes
    ----------
    key, label : str
        Identifier and display name of the setup (``"dppy"``, ``"DPPy"``).
    device : str
        ``"cpu"`` or ``"cuda"``.
    samplers : tuple of Sampler
    """

    key = ""
    label = ""
    device = "cpu"
    baseline = True
    # Working memory in units of n * itemsize, beyond the features: eigenvectors (n x d) plus
    # per-sample buffers (n x k each). Used to skip sizes that would not fit in free memory.
    eigvec_copies = 1.0
    k_buffers = 2.0

    def __init__(self, samplers: tuple[Sampler, ...]) -> None:
        self.samplers = samplers

    def unavailable_reason(self) -> str | None:
        """Why this family cannot run here, or None when it can."""
        return None

    def load(self, features: np.ndarray) -> Any:
        """Bring the features into the form a user would already hold (untimed)."""
        return features

    def setup(self, data: Any) -> Any:
        """Build the kernel and its eigendecomposition (timed as "setup")."""
        raise NotImplementedError

    def synchronize(self) -> None:
        """Wait for queued device work (no-op on the CPU)."""

    def working_bytes(self, n: int, d: int, k: int, batch: int, itemsize: int) -> int:
        """Rough peak memory of setup plus sampling, for the free-memory check."""
        per_row = self.eigvec_copies * d + self.k_buffers * k + 2 * batch
        return int(n * per_row * itemsize)


class IpdppFamily(Family):
    """ipdpp's kernel and its methods ("sequential", "rejection", "auto")."""

    eigvec_copies = 1.0
    k_buffers = 1.0

    def __init__(self, device: str, methods: tuple[str, ...], threads: int) -> None:
        self.device = device
        self.key = "ipdpp" if device == "cpu" else "ipdpp-cuda"
        self.label = "ipdpp" if device == "cpu" else "ipdpp CUDA"
        self.baseline = False
        self.threads = threads
        suffix = "" if device == "cpu" else " CUDA"
        super().__init__(
            tuple(
                Sampler(
                    key=f"{self.key}-{method}",
                    label=f"ipdpp{suffix} {method}",
                    baseline=False,
                    draw=self._drawer(method),
                    draw_batch=self._batch_drawer(method),
                )
                for method in methods
            )
        )

    def _module(self) -> Any:
        return importlib.import_module("ipdpp")

    def unavailable_reason(self) -> str | None:
        try:
            ipdpp = self._module()
        except ImportError as exc:
            hint = ""
            if "_core" in str(exc):
                hint = (
                    "; a source checkout without the compiled extension is first on sys.path: "
                    "install ipdpp editable, or run pytest with --import-mode=importlib"
                )
            return f"ipdpp is not importable ({exc}){hint}"
        missing = [name for name in ("LowRankKernel", "sample_k_dpp") if not hasattr(ipdpp, name)]
        if missing:
            return f"ipdpp has no {', '.join(missing)} yet"
        if self.device == "cuda":
            return cuda_unavailable_reason(needs_ipdpp=True)
        return None

    def load(self, features: np.ndarray) -> Any:
        if self.device == "cuda":
            import torch

            return torch.from_numpy(features).to("cuda")
        return features

    def setup(self, data: Any) -> Any:
        kernel = self._module().LowRankKernel(data)
        kernel.eigh()
        return kernel

    def synchronize(self) -> None:
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()

    def _drawer(self, method: str) -> DrawOne:
        def draw(kernel: Any, k: int, seed: int) -> Any:
            sample_k_dpp = self._module().sample_k_dpp
            return sample_k_dpp(kernel, k, 1, seed, method=method, threads=self.threads)[0]

        return draw

    def _batch_drawer(self, method: str) -> DrawMany:
        def draw_batch(kernel: Any, k: int, num_samples: int, seed: int) -> Any:
            sample_k_dpp = self._module().sample_k_dpp
            return sample_k_dpp(kernel, k, num_samples, seed, method=method, threads=self.threads)

        return draw_batch


class NumpyFamily(Family):
    """The plain numpy baseline (:class:`benchmarks.baselines.NumpyKDPP`)."""

    key = "numpy"
    label = "numpy"
    k_buffers = 3.0  # the selected columns, the step's product, the cumulative sums

    def __init__(self) -> None:
        super().__init__((Sampler("numpy", "numpy", True, draw=self._draw),))

    def setup(self, data: np.ndarray) -> Any:
        return NumpyKDPP(data)

    @staticmethod
    def _draw(state: NumpyKDPP, k: int, seed: int) -> np.ndarray:
        return state.sample(k, np.random.default_rng(seed))


class TorchFamily(Family):
    """The plain PyTorch baseline on the CPU or a CUDA device, single samples and batches."""

    k_buffers = 2.0

    def __init__(self, device: str) -> None:
        self.device = device
        self.key = "torch" if device == "cpu" else "torch-cuda"
        self.label = "torch" if device == "cpu" else "torch CUDA"
        super().__init__(
            (
                Sampler(self.key, self.label, True, draw=self._draw),
                Sampler(
                    f"{self.key}-batched", f"{self.label} batched", True, draw_batch=self._batch
                ),
            )
        )

    def unavailable_reason(self) -> str | None:
        if importlib.util.find_spec("torch") is None:
            return "torch is not installed"
        return cuda_unavailable_reason(needs_ipdpp=False) if self.device == "cuda" else None

    def load(self, features: np.ndarray) -> Any:
        import torch

        return torch.from_numpy(features).to(self.device)

    def setup(self, data: Any) -> Any:
        return TorchKDPP(data)

    def synchronize(self) -> None:
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()

    @staticmethod
    def _draw(state: TorchKDPP, k: int, seed: int) -> Any:
        return state.sample(k, seed)

    @staticmethod
    def _batch(state: TorchKDPP, k: int, num_samples: int, seed: int) -> Any:
        return state.sample_batch(k, num_samples, seed)


@dataclass
class _DppyState:
    dpp: Any
    size: int  # the k whose ESP table DPPy holds


class DppyFamily(Family):
    """DPPy 0.3.3's exact k-DPP samplers on ``L = B B^T`` given by its Gram factor ``B^T``.

    What DPPy caches (read from its source): the constructor forms the d x d dual ``Phi Phi^T``;
    the first ``sample_exact_k_dpp`` call computes ``eigh`` of it and the n x d eigenvectors of
    ``L`` and keeps them; the ESP table is kept too, but DPPy 0.3.3 reuses it even when a later
    call asks for a larger k (it records the new k before comparing), so this family resets it
    whenever k changes. Setup is the constructor plus a first call with k = 1, which triggers
    the eigendecomposition and costs O(n) beyond it; per-sample times are later calls.
    """

    key = "dppy"
    label = "DPPy"
    eigvec_copies = 1.0
    k_buffers = 4.0  # its copy of the selected eigenvectors, contributions, masked copies

    def __init__(self, modes: tuple[str, ...]) -> None:
        super().__init__(
            tuple(
                Sampler(f"dppy-{mode}", f"DPPy {mode}", True, draw=self._drawer(mode))
                for mode in modes
            )
        )

    def unavailable_reason(self) -> str | None:
        if importlib.util.find_spec("dppy") is None:
            return "DPPy is not installed"
        return None

    def load(self, features: np.ndarray) -> np.ndarray:
        importlib.import_module("dppy.finite_dpps")  # so that setup does not time the import
        return features

    def setup(self, data: np.ndarray) -> _DppyState:
        from dppy.finite_dpps import FiniteDPP

        # DPPy prints what it computes; keep the progress display clean.
        with contextlib.redirect_stdout(io.StringIO()):
            dpp = FiniteDPP("likelihood", L_gram_factor=data.T)
            dpp.sample_exact_k_dpp(1, mode="GS_bis", random_state=np.random.RandomState(0))
        dpp.flush_samples()
        return _DppyState(dpp, 1)

    @staticmethod
    def _drawer(mode: str) -> DrawOne:
        def draw(state: _DppyState, k: int, seed: int) -> list[int]:
            if state.size != k:
                state.dpp.E_poly = None  # see the class docstring
                state.size = k
            sample = state.dpp.sample_exact_k_dpp(
                k, mode=mode, random_state=np.random.RandomState(seed)
            )
            state.dpp.flush_samples()
            return sample

        return draw


def cuda_unavailable_reason(*, needs_ipdpp: bool) -> str | None:
    """Why CUDA work cannot run here (no torch, no device, no ipdpp._cuda), or None."""
    if importlib.util.find_spec("torch") is None:
        return "torch is not installed (CUDA arrays are made with torch)"
    import torch

    if not torch.cuda.is_available():
        return "no CUDA device is visible"
    if needs_ipdpp and importlib.util.find_spec("ipdpp._cuda") is None:
        return "ipdpp was built without its CUDA extension (ipdpp._cuda)"
    return None


def make_families(
    device: str,
    *,
    threads: int,
    ipdpp_methods: tuple[str, ...] = ("sequential", "rejection", "auto"),
    dppy_modes: tuple[str, ...] = ("GS_bis",),
) -> list[Family]:
    """The families compared on ``device`` ("cpu", "cuda" or "all"), ipdpp first.

    Parameters
    ----------
    device : {"cpu", "cuda", "all"}
    threads : int
        Threads for ipdpp's ``threads=`` argument (BLAS pools are pinned separately).
    ipdpp_methods : tuple of str
        ``method=`` values of :func:`ipdpp.sample_k_dpp` to time.
    dppy_modes : tuple of str
        DPPy ``sample_exact_k_dpp`` modes (``"GS_bis"``, ``"GS"``, ``"KuTa12"``).

    Returns
    -------
    list of Family
    """
    if device not in ("cpu", "cuda", "all"):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'all'; got {device!r}")
    families: list[Family] = []
    if device in ("cpu", "all"):
        families += [
            IpdppFamily("cpu", ipdpp_methods, threads),
            NumpyFamily(),
            TorchFamily("cpu"),
        ]
        if dppy_modes:
            families.append(DppyFamily(dppy_modes))
    if device in ("cuda", "all"):
        families += [IpdppFamily("cuda", ipdpp_methods, threads), TorchFamily("cuda")]
    return families
