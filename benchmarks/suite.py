"""The suite's cases, in the order they run, the state one session shares, and the timing.

For every d and ascending n (budgets are predicted from smaller sizes) each family is set up
once, then its samplers are timed for every k, largest first; only the state being measured is
kept (at n = 10^6, d = 256 an eigenvector matrix is 2 GB). Features have column scales
``j^{-1/2} / sqrt(n)``, so that L's eigenvalues lie in about (1/d, 1] at every n: unscaled,
DPPy's ESP recursion overflows at n = 1e5, k = 100 (k-DPPs do not change when L is scaled).

Timing (:func:`measure`): a warm-up call sizes the measurement: a round loops the call to last
``min_time``, and up to ``repeats`` rounds run as fit in the budget (at least one);
pytest-benchmark reports the median per call. A measurement predicted from a smaller size
(:func:`extrapolate`) not to fit is skipped. On a GPU the rounds are timed with CUDA events: the
device's time, not the host's.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np
import pytest

from .backends import Family, Sampler, make_families
from .balanced import LOOPS, SHAPES, LongTailShape
from .config import Settings
from .machine import describe_machine

__all__ = ["SESSION", "Case", "Session", "balanced_cases", "check_samples", "cuda_event_clock"]
__all__ += ["extrapolate", "matrix_cases", "measure"]


@dataclass(frozen=True)
class Case:
    """A setup, per-sample or batch measurement, or a balanced_subset problem (``shape``, and
    ``key`` "ipdpp-<mode>" or a loop of :data:`benchmarks.balanced.LOOPS`)."""

    kind: str
    family: Family | None = None
    sampler: Sampler | None = None
    n: int = 0
    d: int = 0
    k: int | None = None
    shape: LongTailShape | None = None
    key: str = ""
    where: str = "cpu"

    @property
    def device(self) -> str:
        return self.family.device if self.family is not None else self.where

    @property
    def id(self) -> str:
        if self.shape is not None:
            return f"{self.key}-{self.where}-{self.shape.name.split()[0]}"
        who = self.sampler or self.family
        return f"{self.kind}-{who.key}-n{self.n}-d{self.d}" + (f"-k{self.k}" if self.k else "")  # type: ignore[union-attr]

    def info(self) -> dict[str, Any]:
        """The fields that identify this measurement in the JSON."""
        if self.shape is None:
            who: Any = self.sampler or self.family
            return dict(kind=self.kind, key=who.key, label=who.label, n=self.n, d=self.d, k=self.k)
        label = LOOPS[self.key][0] if self.key in LOOPS else self.key.replace("-", " ", 1)
        return dict(
            kind="balanced", key=self.key, label=label, device=self.where, shape=asdict(self.shape)
        )


def matrix_cases(settings: Settings, families: list[Family]) -> list[Case]:
    """Every setup, per-sample and batch measurement of the matrix, in the order they run."""
    cases = []
    for d in settings.dims:
        for n in sorted(settings.sizes):
            for family in families:
                cases.append(Case("setup", family, n=n, d=d))
                for sampler in family.samplers:
                    for k in sorted(settings.ks, reverse=True):
                        if k > min(n, d):
                            continue  # a rank-min(n, d) kernel has no k-DPP
                        if sampler.draw is not None:
                            cases.append(Case("sample", family, sampler, n, d, k))
                        if sampler.draw_batch is not None and settings.batch_size > 0:
                            cases.append(Case("batch", family, sampler, n, d, k))
    return cases


def balanced_cases(settings: Settings) -> list[Case]:
    """Per problem: every ipdpp mode (on the GPU with device "cuda"), else also the loops."""
    where = "cuda" if settings.device == "cuda" else "cpu"
    keys = [f"ipdpp-{mode}" for mode in settings.balanced_modes]
    keys += list(LOOPS) if where == "cpu" else []
    return [
        Case("balanced", shape=shape, key=key, where=where if key not in LOOPS else "cpu")
        for shape in SHAPES[settings.balanced]
        for key in keys
    ]


def make_features(n: int, d: int, dtype: str, seed: int) -> np.ndarray:
    """Gaussian features with column scales ``j^{-1/2} / sqrt(n)``, C-contiguous, shape (n, d)."""
    features = np.random.default_rng([seed, n, d]).standard_normal((n, d), dtype=np.float64)
    features *= (1.0 + np.arange(d)) ** -0.5 / np.sqrt(n)
    return features.astype(dtype, copy=False)


def check_samples(sample: Any, n: int, k: int, rows: int | None) -> str | None:
    """Why ``sample`` (shape (k,) or (rows, k); numpy, torch, list) is not a valid draw, or None."""
    if hasattr(sample, "detach"):
        sample = sample.detach().cpu().numpy()
    arr = np.asarray(sample)
    expected = (k,) if rows is None else (rows, k)
    if arr.shape != expected:
        return f"shape {arr.shape}, expected {expected}"
    arr = arr.reshape(-1, k)
    if arr.size and (arr.min() < 0 or arr.max() >= n):
        return "index out of range"
    if any(np.unique(row).size != k for row in arr):
        return "repeated item in a sample"
    return None


class Session:
    """What the measurements of one pytest session share.

    ``history``: an operation's ``(size, median seconds)``, for budget predictions;
    ``outcomes``: per measurement without a time, its :meth:`Case.info` with ``status``
    ("unavailable", "skipped (>budget)", "skipped (memory)", "error") and ``reason``.
    """

    def __init__(self, settings: Settings, threads_report: dict[str, Any]) -> None:
        self.settings, self.threads_report = settings, threads_report
        self.families = make_families(
            settings.device,
            threads=settings.threads,
            ipdpp_methods=settings.ipdpp_methods,
            dppy_modes=settings.dppy_modes,
            only=settings.only,
        )
        self.history: dict[tuple[Any, ...], list[tuple[float, float]]] = defaultdict(list)
        self.outcomes: list[dict[str, Any]] = []
        self.machine, self.started = describe_machine(), time.perf_counter()
        self._kept: dict[str, tuple[Any, Any]] = {}

    def _cached(self, slot: str, key: Any, make: Any) -> Any:
        """One value per slot: ``make()`` when the key changed, after the old value is freed."""
        if slot not in self._kept or self._kept[slot][0] != key:
            self._kept.pop(slot, None)
            self._kept[slot] = (key, make())
        return self._kept[slot][1]

    def features(self, n: int, d: int) -> np.ndarray:
        s = self.settings
        return self._cached("features", (n, d), lambda: make_features(n, d, s.dtype, s.seed))

    def problem(self, shape: LongTailShape) -> tuple[np.ndarray, np.ndarray]:
        return self._cached("problem", shape, lambda: shape.problem(self.settings.seed))

    def set_state(self, case: Case, state: Any) -> None:
        """Keep the case's family's state (None frees it; a str says why there is none)."""
        self._kept.pop("state", None)
        if state is not None:
            self._kept["state"] = ((case.family.key, case.n, case.d), state)  # type: ignore[union-attr]

    def state(self, case: Case) -> Any:
        """The prepared state of the case's family; skips the case, saying why, without one."""
        key, state = self._kept.get("state", (None, None))
        if key != (case.family.key, case.n, case.d):  # type: ignore[union-attr]
            state = "error: the family's setup did not run"
        if isinstance(state, str):
            pytest.skip(state)
        return state

    def describe(self) -> dict[str, Any]:
        """The run's context for the JSON: machine, threads, settings, families, outcomes."""
        fields = ("key", "label", "baseline")
        samplers = [dict({k: getattr(s, k) for k in fields}, family=f.key)
                    for f in self.families for s in f.samplers]  # fmt: skip
        return {
            "machine": dict(self.machine, load_average_end=describe_machine()["load_average"]),
            "threads": self.threads_report,
            "settings": {
                k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.settings).items()
            },  # fmt: skip
            "families": [
                dict({k: getattr(f, k) for k in fields}, device=f.device) for f in self.families
            ],  # fmt: skip
            "samplers": samplers,
            "outcomes": self.outcomes,
            "wall_seconds": time.perf_counter() - self.started,
        }


#: Where the pytest config keeps the run's :class:`Session`.
SESSION = pytest.StashKey[Session]()


def measure(
    benchmark: Any,
    call: Callable[[], Any],
    repeats: int,
    min_time: float,
    budget: float,
    *,
    warmup: bool = True,
    predicted: float | None = None,
    sync: Callable[[], None] = lambda: None,
) -> tuple[Any, float | None]:
    """Time ``call()`` (its work may stay queued on a device) with the ``benchmark`` fixture.

    At most ``repeats`` rounds, each at least ``min_time`` seconds (0: one call), within
    ``budget`` seconds, warm-up included. Without ``warmup``, ``predicted`` (seconds per call)
    sizes the rounds; ``sync`` waits for queued device work after the warm-up call. Returns what
    the last call returned and the median seconds per call, None with ``--benchmark-disable``
    (each call then runs once, unmeasured, so that only results are checked).
    """
    if benchmark.disabled:
        return benchmark.pedantic(call), None
    start = time.perf_counter()
    estimate = predicted
    if warmup:
        call()
        sync()
        estimate = time.perf_counter() - start
    iterations = max(1, math.ceil(min_time / estimate)) if min_time > 0 and estimate else 1
    rounds = repeats
    if estimate:
        left = budget - (time.perf_counter() - start)
        rounds = max(1, min(repeats, int(left // (iterations * estimate))))
    result = benchmark.pedantic(call, rounds=rounds, iterations=iterations)
    return result, float(benchmark.stats.stats.median)


def extrapolate(history: Sequence[tuple[float, float]], size: float) -> float | None:
    """Seconds at ``size`` of an operation linear in it, from ``(size, seconds)`` measured below.

    Scaled from the largest measured size below ``size``; None when there is none (the
    smallest size always runs).
    """
    below = [(measured, seconds) for measured, seconds in history if measured < size]
    if not below:
        return None
    measured, seconds = max(below)
    return seconds * size / measured


class _CudaEventClock:
    """Seconds on the GPU's clock since an origin event, read by recording an event.

    ``cudaEventElapsedTime`` is single precision, so the origin moves on every second (the
    seconds before it carried in double precision): sub-microsecond resolution throughout.
    """

    __name__ = "cuda_event_clock"

    def __init__(self) -> None:
        self._origin: Any = None
        self._carried = 0.0

    def __call__(self) -> float:
        import torch

        event = torch.cuda.Event(enable_timing=True)
        event.record()
        event.synchronize()
        if self._origin is None:
            self._origin = event
        elapsed = self._origin.elapsed_time(event) / 1e3
        if elapsed > 1.0:
            self._origin, self._carried = event, self._carried + elapsed
            elapsed = 0.0
        return self._carried + elapsed


#: The timer of the benchmarks on a CUDA device (``pytest.mark.benchmark(timer=...)``).
cuda_event_clock = _CudaEventClock()
