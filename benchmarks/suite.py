"""The suite's cases, in the order they run, and the state one pytest session shares.

For every d and ascending n (budgets are predicted from smaller sizes), each family is set up
once (timed), then its samplers are timed per sample and per batch for every k, largest first
(a budget skip is found early); only the state being measured is kept (at n = 10^6, d = 256 an
eigenvector matrix is 2 GB). Features have column scales ``j^{-1/2} / sqrt(n)``, so that L's
eigenvalues lie in about (1/d, 1] at every n: unscaled, DPPy's plain ESP recursion overflows
(wrong samples) at n = 1e5, k = 100. k-DPPs do not change when L is scaled.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pytest

from .backends import Family, Sampler, make_families
from .balanced import LOOPS, SHAPES, LongTailShape
from .config import Settings
from .machine import describe_machine

__all__ = ["SESSION", "Case", "Session", "Skip", "balanced_cases", "check_samples", "matrix_cases"]


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
    def who(self) -> Any:
        return self.sampler if self.sampler is not None else self.family

    @property
    def id(self) -> str:
        if self.shape is not None:
            return f"{self.key}-{self.where}-{self.shape.name.split()[0]}"
        return f"{self.kind}-{self.who.key}-n{self.n}-d{self.d}" + (f"-k{self.k}" if self.k else "")

    def info(self) -> dict[str, Any]:
        """The fields that identify this measurement in the JSON."""
        if self.shape is None:
            who = self.who
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


class Skip(Exception):
    """Why a family's state could not be prepared; its samplers are skipped with it."""


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
        """Keep ``state`` (None to free it; a :class:`Skip` for none) as the case's family's."""
        self._kept.pop("state", None)
        if state is not None:
            self._kept["state"] = ((case.family.key, case.n, case.d), state)  # type: ignore[union-attr]

    def state(self, case: Case) -> Any:
        """The prepared state of the case's family; raises :class:`Skip` when there is none."""
        key, state = self._kept.get("state", (None, None))
        if key != (case.family.key, case.n, case.d):  # type: ignore[union-attr]
            raise Skip("error: the family's setup did not run")
        if isinstance(state, Skip):
            raise state
        return state

    def describe(self) -> dict[str, Any]:
        """The run's context for the JSON: machine, threads, settings, families, outcomes."""
        settings = {
            k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.settings).items()
        }
        families = [
            dict(key=f.key, label=f.label, device=f.device, baseline=f.baseline)
            for f in self.families
        ]
        samplers = [
            dict(key=s.key, label=s.label, family=f.key, baseline=s.baseline)
            for f in self.families
            for s in f.samplers
        ]
        return dict(
            machine=dict(self.machine, load_average_end=describe_machine()["load_average"]),
            threads=self.threads_report,
            settings=settings,
            families=families,
            samplers=samplers,
            outcomes=self.outcomes,
            wall_seconds=time.perf_counter() - self.started,
        )


#: Where the pytest config keeps the run's :class:`Session`.
SESSION = pytest.StashKey[Session]()
