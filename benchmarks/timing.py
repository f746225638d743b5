"""How every measurement is taken: pytest-benchmark rounds under a time budget.

One warm-up call (first-call costs: lazy tables, page faults, kernel loads) sizes the
measurement: a round loops the call to last at least ``min_time`` (microsecond calls are not
timer noise), and up to ``repeats`` rounds run as fit in the budget (at least one).
pytest-benchmark times the rounds and reports the median per call; a measurement predicted from
a smaller size (:func:`extrapolate`) not to fit is skipped. On a GPU the rounds are timed with
CUDA events (:data:`cuda_event_clock`): the device's time, not the host's.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any, Callable

__all__ = ["cuda_event_clock", "extrapolate", "measure"]


def measure(
    benchmark: Any,
    call: Callable[[], Any],
    *,
    repeats: int,
    min_time: float,
    budget: float,
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
