"""Timing with warm-up, medians of repeats, and a time budget.

A measurement runs one untimed warm-up call (first-call costs: tables built lazily, pages
faulted in, kernels loaded), then ``repeats`` timed repeats. A repeat runs the call enough times
to last at least ``min_time`` (so that microsecond calls are not timer noise) and yields the mean
time per call; the reported value is the median over repeats. Every call gets a fresh index, so
samplers draw a different sample each time instead of replaying one.

Budgets: the harness predicts a measurement's cost from the same sampler at the next smaller
size (:func:`extrapolate`; the algorithms compared are linear in n) and skips it when even a
warm-up plus one call would not fit; inside a measurement, repeats stop once the budget is spent
(at least one timed repeat always runs).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = ["Measurement", "extrapolate", "measure"]


@dataclass
class Measurement:
    """Outcome of :func:`measure`.

    Attributes
    ----------
    per_call : list of float
        Mean seconds per call, one entry per timed repeat.
    calls_per_repeat : list of int
        How many calls each repeat made.
    warmup : float
        Seconds of the untimed warm-up call (the first call).
    elapsed : float
        Wall time of the whole measurement, warm-up included.
    """

    per_call: list[float] = field(default_factory=list)
    calls_per_repeat: list[int] = field(default_factory=list)
    warmup: float = math.nan
    elapsed: float = 0.0

    @property
    def median(self) -> float:
        """Median seconds per call over the repeats."""
        return statistics.median(self.per_call)


def measure(
    call: Callable[[int], Any],
    *,
    repeats: int,
    min_time: float,
    budget: float,
    warmup: bool = True,
) -> Measurement:
    """Time ``call(i)`` (i = 0, 1, 2, ...) with warm-up and medians.

    Parameters
    ----------
    call : callable int -> object
        The operation; it must block until its work is done (synchronise a GPU inside it).
    repeats : int
        Number of timed repeats wanted (>= 1); fewer run if ``budget`` runs out.
    min_time : float
        Seconds each repeat should last at least; 0 means one call per repeat.
    budget : float
        Seconds after which no further repeat starts.
    warmup : bool
        Run one untimed call first (default True).

    Returns
    -------
    Measurement
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1; got {repeats}")
    result = Measurement()
    start = time.perf_counter()
    index = 0
    estimate = math.nan
    if warmup:
        t0 = time.perf_counter()
        call(index)
        index += 1
        result.warmup = estimate = time.perf_counter() - t0
    for repeat in range(repeats):
        calls = 1
        if min_time > 0 and estimate == estimate and estimate > 0:  # estimate is not NaN
            calls = max(1, math.ceil(min_time / estimate))
        spent = time.perf_counter() - start
        if repeat > 0 and spent + calls * estimate > budget:
            break
        t0 = time.perf_counter()
        for _ in range(calls):
            call(index)
            index += 1
        per_call = (time.perf_counter() - t0) / calls
        result.per_call.append(per_call)
        result.calls_per_repeat.append(calls)
        estimate = per_call
    result.elapsed = time.perf_counter() - start
    return result


def extrapolate(history: Sequence[tuple[int, float]], n: int) -> float | None:
    """Predict the seconds of an O(n) operation at size ``n`` from smaller measured sizes.

    Parameters
    ----------
    history : sequence of (size, seconds)
        Earlier measurements of the same operation (same sampler, d and k).
    n : int
        The size to predict.

    Returns
    -------
    float or None
        ``seconds * n / size`` from the largest measured size below ``n``; None when there is
        none (the smallest size always runs).
    """
    below = [(size, seconds) for size, seconds in history if size < n]
    if not below:
        return None
    size, seconds = max(below)
    return seconds * n / size
