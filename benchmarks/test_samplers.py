"""pytest-benchmark suite: setup, per-sample and batch times of every sampler family.

Run with ``pytest benchmarks --benchmark-only`` (add ``--bench-large`` for n = 1e6). Each
benchmark is parametrised over the sampler (ipdpp CPU/CUDA methods, numpy, torch CPU/CUDA,
DPPy) and the size; on the small sizes the drawn samples are also checked (shape, range, no
repeated item), so the suite fails on a broken sampler and not only on a slow one. Families that
cannot run here (no CUDA, no DPPy) are skipped with the reason. For tables, ratios and plots use
``python -m benchmarks.compare``.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from benchmarks.backends import Family, Sampler, make_families
from benchmarks.runner import check_samples

# (n, d, k): the matrix, trimmed so the default suite takes a few minutes.
SIZES = [(1_000, 64, 10), (10_000, 64, 10), (10_000, 256, 100), (100_000, 256, 100)]
LARGE_SIZES = [(1_000_000, 256, 100)]
# Results are checked up to this n; above it a benchmark only times.
CHECK_UP_TO = 10_000
# DPPy's GS and KuTa12 modes (KuTa12 is O(n k^3)) are timed on the small sizes only.
SLOW_MODES_UP_TO = 10_000
BATCH = {"small": 32, "large": 8}
DPPY_MODES = ("GS_bis", "GS", "KuTa12")


def _sizes(config: pytest.Config) -> list[tuple[int, int, int]]:
    return SIZES + (LARGE_SIZES if config.getoption("--bench-large") else [])


def _size_id(size: tuple[int, int, int]) -> str:
    n, d, k = size
    return f"n{n}-d{d}-k{k}"


def _families(config: pytest.Config) -> list[Family]:
    threads = config.getoption("--bench-threads")
    return make_families("all", threads=threads, dppy_modes=DPPY_MODES)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    sizes = _sizes(metafunc.config)
    families = _families(metafunc.config)
    if "setup_case" in metafunc.fixturenames:
        shapes = sorted({(n, d) for n, d, _ in sizes})
        cases = [(f, n, d) for f in families for n, d in shapes]
        ids = [f"{f.key}-n{n}-d{d}" for f, n, d in cases]
        metafunc.parametrize("setup_case", cases, ids=ids)
    for name, attribute in (("sample_case", "draw"), ("batch_case", "draw_batch")):
        if name in metafunc.fixturenames:
            cases = [
                (f, s, size)
                for f in families
                for s in f.samplers
                for size in sizes
                if getattr(s, attribute) is not None
                and not (s.key in ("dppy-GS", "dppy-KuTa12") and size[0] > SLOW_MODES_UP_TO)
            ]
            ids = [f"{s.key}-{_size_id(size)}" for _, s, size in cases]
            metafunc.parametrize(name, cases, ids=ids)


def _require(family: Family) -> None:
    reason = family.unavailable_reason()
    if reason is not None:
        pytest.skip(reason)


def _rounds(n: int) -> int:
    return 10 if n <= CHECK_UP_TO else 2


def test_setup(benchmark: Any, state_cache: Any, setup_case: tuple[Family, int, int]) -> None:
    """Kernel construction + eigendecomposition."""
    family, n, d = setup_case
    _require(family)
    data = family.load(state_cache.features(n, d))

    def setup() -> Any:
        state = family.setup(data)
        family.synchronize()
        return state

    state = benchmark.pedantic(setup, rounds=3 if n <= CHECK_UP_TO else 1, iterations=1)
    assert state is not None


def test_sample(
    benchmark: Any, state_cache: Any, sample_case: tuple[Family, Sampler, tuple[int, int, int]]
) -> None:
    """One k-DPP sample after setup; the sample is checked on small sizes."""
    family, sampler, (n, d, k) = sample_case
    _require(family)
    state = state_cache.state(family, n, d)
    seeds = itertools.count()
    assert sampler.draw is not None
    draw = sampler.draw

    def one() -> Any:
        out = draw(state, k, next(seeds))
        family.synchronize()
        return out

    sample = benchmark.pedantic(one, rounds=_rounds(n), iterations=1, warmup_rounds=1)
    if n <= CHECK_UP_TO:
        assert check_samples(sample, n, k, None) is None


def test_batch(
    benchmark: Any, state_cache: Any, batch_case: tuple[Family, Sampler, tuple[int, int, int]]
) -> None:
    """A batch of samples in one call; divide by the batch size for per-sample time."""
    family, sampler, (n, d, k) = batch_case
    _require(family)
    state = state_cache.state(family, n, d)
    size = BATCH["small"] if n <= CHECK_UP_TO else BATCH["large"]
    seeds = itertools.count(step=size)
    assert sampler.draw_batch is not None
    draw_batch = sampler.draw_batch

    def batch() -> Any:
        out = draw_batch(state, k, size, next(seeds))
        family.synchronize()
        return out

    benchmark.extra_info["batch_size"] = size
    samples = benchmark.pedantic(batch, rounds=_rounds(n) // 2, iterations=1, warmup_rounds=1)
    if n <= CHECK_UP_TO:
        assert check_samples(samples, n, k, size) is None
