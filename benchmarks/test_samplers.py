"""The suite: setup, per-sample and batch times over the (n, d, k) matrix, and balanced_subset.

Every result is checked (shape, range and distinct items of a sample; items kept per class), so
the suite fails on a broken sampler, not only on a slow one; ``--benchmark-disable`` runs each
call once, unmeasured, to check results alone. What cannot run here is skipped with the reason.
"""

from __future__ import annotations

import importlib.util
import itertools
from typing import Any

import numpy as np
import pytest

from benchmarks import suite
from benchmarks.backends import cuda_unavailable_reason
from benchmarks.balanced import LOOPS, class_loop
from benchmarks.machine import available_memory_bytes
from benchmarks.suite import SESSION, Case, Session, cuda_event_clock, extrapolate, measure

MEMORY_SHARE = 0.7  # of the available memory a family may need: swapping would time the disk


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    session = metafunc.config.stash[SESSION]
    if metafunc.function is test_kdpp:
        cases = suite.matrix_cases(session.settings, session.families)
    else:
        cases = suite.balanced_cases(session.settings)
    # On a GPU, pytest-benchmark times the rounds with CUDA events.
    on_gpu = [pytest.mark.benchmark(timer=cuda_event_clock)]
    params = [pytest.param(c, id=c.id, marks=on_gpu if c.device == "cuda" else ()) for c in cases]
    metafunc.parametrize("case", params)


def test_kdpp(benchmark: Any, session: Session, case: Case) -> None:
    """One setup, per-sample or batch measurement of the matrix."""
    (_setup if case.kind == "setup" else _draw)(benchmark, session, case)


def _setup(benchmark: Any, session: Session, case: Case) -> None:
    """Kernel construction + eigendecomposition, repeated while cheap; the last state is kept."""
    s, family = session.settings, case.family
    assert family is not None
    session.set_state(case, None)
    history = session.history[("setup", family.key, case.d)]
    predicted = extrapolate(history, case.n)
    skip = _setup_skip(s, case, predicted)
    if skip is not None:
        session.set_state(case, skip)
        pytest.skip(skip)
    data = family.load(session.features(case.n, case.d))
    states: list[Any] = []

    def build() -> None:
        states.append(family.setup(data))
        family.synchronize()

    rounds = s.repeats if predicted is None else int(s.budget / 4 // predicted)
    try:  # states.clear runs untimed before each round: the previous state is freed first
        benchmark.pedantic(build, setup=states.clear, rounds=max(1, min(s.repeats, rounds)))
    except Exception as exc:
        session.set_state(case, f"error: setup failed ({exc})")
        raise
    session.set_state(case, states[-1])
    if benchmark.stats is not None:
        history.append((case.n, benchmark.stats.stats.median))
    benchmark.extra_info.update(case.info())


def _setup_skip(s: Any, case: Case, predicted: float | None) -> str | None:
    """Why the family's setup (and so its samplers) does not run at this size, or None."""
    assert case.family is not None
    reason = case.family.unavailable_reason()
    if reason is not None:
        return f"unavailable: {reason}"
    # Features, eigenvectors and a few n x k working vectors per sample of a batch.
    itemsize = 4 if s.dtype == "float32" else 8
    needed = case.n * (2 * case.d + 4 * max(s.ks, default=1) + 2 * s.batch_size) * itemsize
    free = None if case.device == "cuda" else available_memory_bytes()
    if free is not None and needed > MEMORY_SHARE * free:
        return f"skipped (memory): needs ~{needed / 2**30:.1f} GiB, {free / 2**30:.1f} available"
    if predicted is not None and predicted > s.budget:
        return f"skipped (>budget): setup predicted {predicted:.1f} s > budget {s.budget:g} s"
    return None


def _draw(benchmark: Any, session: Session, case: Case) -> None:
    """One sample per call, or a batch of ``batch_size`` per call."""
    s, family, sampler, n, k = session.settings, case.family, case.sampler, case.n, case.k
    assert family is not None and sampler is not None and k is not None
    state = session.state(case)
    family.steady_state(state)
    history = session.history[(case.kind, sampler.key, case.d, k)]
    predicted = extrapolate(history, n)
    if predicted is not None and 2 * predicted > s.budget:  # warm-up + one timed call
        pytest.skip(f"skipped (>budget): predicted {predicted:.3g} s a call, budget {s.budget:g} s")
    rows = s.batch_size if case.kind == "batch" else None
    seeds = itertools.count(s.seed, rows or 1)
    draw, draw_batch = sampler.draw, sampler.draw_batch

    def call() -> Any:
        if rows is None:
            return draw(state, k, next(seeds))  # type: ignore[misc]
        return draw_batch(state, k, rows, next(seeds))  # type: ignore[misc]

    timing = (s.repeats, s.min_time, s.budget)
    sample, median = measure(benchmark, call, *timing, sync=family.synchronize)
    problem = suite.check_samples(sample, n, k, rows)
    assert problem is None, f"invalid sample: {problem}"
    if median is not None:
        history.append((n, median))
    benchmark.extra_info.update(case.info(), batch=rows)


def _work(sizes: np.ndarray, k: int, mode: str) -> float:
    """Operations of ``balanced_subset`` up to a constant, for predictions: per class with
    N_c > k, "exact" O(N_c k), "greedy" O(N_c k^2), "paper" O(N_c^3) (dense eigh), "random" O(N_c).
    """
    big = sizes[sizes > k].astype(np.float64)
    per_class = {"exact": big * k, "greedy": big * k * k, "paper": big**3, "random": big}
    return float(per_class[mode].sum()) + float(sizes.size)


def test_balanced(benchmark: Any, session: Session, case: Case) -> None:
    """One balanced_subset call per mode, or one pass of a per-class loop."""
    s, shape = session.settings, case.shape
    assert shape is not None
    labels, p = session.problem(shape)
    sizes = np.bincount(labels)
    expected = int(np.minimum(sizes, shape.k).sum())
    info = case.info()
    if case.key in LOOPS:
        if importlib.util.find_spec(LOOPS[case.key][2].split(".")[0]) is None:
            pytest.skip(f"unavailable: {LOOPS[case.key][2].split('.')[0]} is not installed")
        call, loop = class_loop(labels, p, shape.k, case.key, s.balanced_loop_classes, s.seed)
        benchmark.pedantic(call)
        benchmark.extra_info.update(info, **loop)
        return

    import ipdpp

    mode, device = case.key.removeprefix("ipdpp-"), case.where
    args: tuple[Any, Any] = (labels, p)
    sync = lambda: None  # noqa: E731
    if device == "cuda":
        reason = cuda_unavailable_reason(needs_ipdpp=True)
        if reason is not None:
            pytest.skip(f"unavailable: {reason}")
        import torch

        args = (torch.from_numpy(labels).cuda(), torch.from_numpy(p).cuda())
        sync = torch.cuda.synchronize
    work = _work(sizes, shape.k, mode)
    history = session.history[("balanced", mode, device)]
    predicted = extrapolate(history, work)  # from the previous problem, scaled by the work
    if predicted is not None and predicted > s.budget:
        pytest.skip(f"skipped (>budget): predicted {predicted:.3g} s; budget {s.budget:g} s")
    # A call predicted to take over half the budget is timed once, without a warm-up.
    cold = predicted is not None and predicted > s.budget / 2
    seeds = itertools.count(s.seed)

    def call() -> Any:
        return ipdpp.balanced_subset(*args, shape.k, mode=mode, seed=next(seeds), threads=s.threads)

    kept, median = measure(
        benchmark, call, s.repeats, 0.0, s.budget, warmup=not cold, predicted=predicted, sync=sync
    )
    assert kept.shape[0] == expected, f"kept {kept.shape[0]} items, expected {expected}"
    if median is not None:
        history.append((work, median))
    benchmark.extra_info.update(info, cold=cold)
