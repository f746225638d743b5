"""The samplers under comparison: a :class:`Family` is one setup (kernel + eigendecomposition)
shared by :class:`Sampler` s (per sample or per batch). ipdpp on CUDA gets a torch CUDA tensor,
so its public functions run on that device.
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


@dataclass(frozen=True)
class Sampler:
    """One way of drawing samples from a family's prepared state.

    ``key`` names it in the JSON and on the command line (``"ipdpp-rejection"``), ``label`` in
    tables and plots; ``baseline`` marks what ipdpp is compared against. ``draw(state, k, seed)``
    returns one sample (k,), ``draw_batch(state, k, num_samples, seed)`` (num_samples, k).
    """

    key: str
    label: str
    baseline: bool
    draw: Callable[[Any, int, int], Any] | None = None
    draw_batch: Callable[[Any, int, int, int], Any] | None = None


class Family:
    """A setup shared by samplers (``key`` "dppy", ``label`` "DPPy", ``device`` "cpu" or "cuda")."""

    key = label = ""
    device = "cpu"
    baseline = True

    def __init__(self, samplers: tuple[Sampler, ...]) -> None:
        self.samplers = samplers

    def unavailable_reason(self) -> str | None:
        """Why this family cannot run here, or None when it can."""
        return None

    def load(self, features: np.ndarray) -> Any:
        """The features as a user would already hold them (untimed): on the GPU, a tensor."""
        if self.device == "cpu":
            return features
        import torch

        return torch.from_numpy(features).to(self.device)

    def setup(self, data: Any) -> Any:
        """Build the kernel and its eigendecomposition (timed as "setup")."""
        raise NotImplementedError

    def steady_state(self, state: Any) -> None:
        """Bring a setup's state to where repeated draws run (untimed, before per-sample and
        batch measurements); most families are there after setup."""

    def synchronize(self) -> None:
        """Wait for queued device work (no-op on the CPU)."""
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()


class IpdppFamily(Family):
    """ipdpp's low-rank kernel and its methods."""

    baseline = False

    def __init__(self, device: str, methods: tuple[str, ...], threads: int) -> None:
        self.device, self.threads, self.methods = device, threads, methods
        self.key = "ipdpp" if device == "cpu" else "ipdpp-cuda"
        self.label = "ipdpp" if device == "cpu" else "ipdpp CUDA"
        super().__init__(
            tuple(
                Sampler(
                    f"{self.key}-{method}",
                    f"{self.label} {method}",
                    False,
                    draw=lambda K, k, seed, m=method: self._sample(K, k, 1, seed, m)[0],
                    draw_batch=lambda K, k, s, seed, m=method: self._sample(K, k, s, seed, m),
                )
                for method in methods
            )
        )

    def _sample(self, kernel: Any, k: int, num_samples: int, seed: int, method: str) -> Any:
        sample_k_dpp = importlib.import_module("ipdpp").sample_k_dpp
        return sample_k_dpp(kernel, k, num_samples, seed, method=method, threads=self.threads)

    def unavailable_reason(self) -> str | None:
        if importlib.util.find_spec("ipdpp._core") is None:
            return "ipdpp is not built: install it, or put a build on PYTHONPATH"
        return cuda_unavailable_reason(needs_ipdpp=True) if self.device == "cuda" else None

    def setup(self, data: Any) -> Any:
        # Kernel, eigendecomposition and a first (k = 1) sample on the run's threads: what a user
        # waits for before the samples, whatever ipdpp defers from eigh() to the first draw.
        ipdpp = importlib.import_module("ipdpp")
        kernel = ipdpp.LowRankKernel(data)
        ipdpp.sample_k_dpp(kernel, 1, seed=0, threads=self.threads)
        return kernel

    def steady_state(self, state: Any) -> None:
        # A fresh kernel serves its first samples from rows computed from the features and forms
        # its eigenvectors only once those samples have cost as much as forming them (after ~90
        # samples at n = 1e5, d = 256, k = 100): per-sample and batch times are the cost after
        # that, what a user drawing many samples pays; the setup table has the first sample's.
        if not state.low_memory:
            state.eigh()
        if "columns" in self.methods and not state.low_memory:  # its tables, from its first call
            self._sample(state, 1, 1, 0, "columns")


class NumpyFamily(Family):
    """The plain numpy baseline."""

    key = label = "numpy"

    def __init__(self) -> None:
        super().__init__((Sampler("numpy", "numpy", True, draw=self._draw),))

    @staticmethod
    def _draw(state: NumpyKDPP, k: int, seed: int) -> np.ndarray:
        return state.sample(k, np.random.default_rng(seed))

    def setup(self, data: np.ndarray) -> Any:
        return NumpyKDPP(data)


class TorchFamily(Family):
    """The plain PyTorch baseline on the CPU or a CUDA device, single samples and batches."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.key = "torch" if device == "cpu" else "torch-cuda"
        self.label = "torch" if device == "cpu" else "torch CUDA"
        super().__init__(
            (
                Sampler(self.key, self.label, True, draw=lambda s, k, seed: s.sample(k, seed)),
                Sampler(
                    f"{self.key}-batched",
                    f"{self.label} batched",
                    True,
                    draw_batch=lambda s, k, num, seed: s.sample_batch(k, num, seed),
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


@dataclass
class _DppyState:
    dpp: Any
    size: int  # the k whose ESP table DPPy holds


class DppyFamily(Family):
    """DPPy 0.3.3's exact k-DPP samplers on ``L = B B^T`` given by its Gram factor ``B^T``.

    What DPPy caches (read from its source): the constructor forms the d x d dual; the first
    ``sample_exact_k_dpp`` call computes its ``eigh`` and the n x d eigenvectors of ``L`` and
    keeps them. It keeps the ESP table too, but 0.3.3 reuses it even when a later call asks for
    a larger k (it records the new k before comparing), so the table is reset whenever k
    changes. Setup is the constructor plus a first call with k = 1, which triggers the
    eigendecomposition and costs O(n) beyond it.
    """

    key, label = "dppy", "DPPy"

    def __init__(self, modes: tuple[str, ...]) -> None:
        super().__init__(
            tuple(
                Sampler(f"dppy-{mode}", f"DPPy {mode}", True, draw=self._drawer(mode))
                for mode in modes
            )
        )

    def unavailable_reason(self) -> str | None:
        return "DPPy is not installed" if importlib.util.find_spec("dppy") is None else None

    def load(self, features: np.ndarray) -> np.ndarray:
        importlib.import_module("dppy.finite_dpps")  # so that setup does not time the import
        return features

    def setup(self, data: np.ndarray) -> _DppyState:
        from dppy.finite_dpps import FiniteDPP

        with contextlib.redirect_stdout(io.StringIO()):  # DPPy prints what it computes
            dpp = FiniteDPP("likelihood", L_gram_factor=data.T)
            dpp.sample_exact_k_dpp(1, mode="GS_bis", random_state=np.random.RandomState(0))
        dpp.flush_samples()
        return _DppyState(dpp, 1)

    @staticmethod
    def _drawer(mode: str) -> Callable[[_DppyState, int, int], Any]:
        def draw(state: _DppyState, k: int, seed: int) -> Any:
            if state.size != k:
                state.dpp.E_poly = None  # see the class docstring
                state.size = k
            rng = np.random.RandomState(seed)
            sample = state.dpp.sample_exact_k_dpp(k, mode=mode, random_state=rng)
            state.dpp.flush_samples()
            return sample

        return draw


def cuda_unavailable_reason(*, needs_ipdpp: bool) -> str | None:
    """Why CUDA work cannot run here (no torch, no device, ipdpp without CUDA), or None."""
    if importlib.util.find_spec("torch") is None:
        return "torch is not installed (CUDA arrays are made with torch)"
    import torch

    if not torch.cuda.is_available():
        return "no CUDA device is visible"
    if needs_ipdpp and importlib.util.find_spec("ipdpp._cuda") is None:
        return "ipdpp was built without its CUDA extension"
    return None


def make_families(
    device: str,
    *,
    threads: int,
    ipdpp_methods: tuple[str, ...] = ("sequential", "rejection", "columns", "auto"),
    dppy_modes: tuple[str, ...] = ("GS_bis",),
    only: tuple[str, ...] = (),
) -> list[Family]:
    """The families on ``device`` ("cpu", "cuda", "all"), ipdpp first; ``only`` keeps some keys."""
    if device not in ("cpu", "cuda", "all"):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'all'; got {device!r}")
    families: list[Family] = []
    if device in ("cpu", "all"):
        families += [IpdppFamily("cpu", ipdpp_methods, threads), NumpyFamily(), TorchFamily("cpu")]
        if dppy_modes:
            families.append(DppyFamily(dppy_modes))
    if device in ("cuda", "all"):
        on_gpu = tuple(m for m in ipdpp_methods if m != "columns")  # a CPU-only method
        families += [IpdppFamily("cuda", on_gpu, threads), TorchFamily("cuda")]
    if not only:
        return families
    chosen = []
    for family in families:
        if family.key not in only:
            family.samplers = tuple(s for s in family.samplers if s.key in only)
        if family.samplers:
            chosen.append(family)
    return chosen
