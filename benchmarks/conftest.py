"""Fixtures of the pytest-benchmark suite (``pytest benchmarks --benchmark-only``).

Prepared states (kernel + eigendecomposition) are cached for the session, a few at a time, so
that the per-sample benchmarks of one size share one setup per family, as a user's code would.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from benchmarks.backends import Family
from benchmarks.machine import ThreadPinning
from benchmarks.runner import make_features

# States kept alive at once: enough for the families of one size, small enough for the memory
# of a laptop at n = 1e6 (one state holds an n x d float64 eigenvector matrix).
_CACHED_STATES = 6


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--bench-large",
        action="store_true",
        default=False,
        help="also benchmark n = 1e6 (several minutes; baselines become slow)",
    )
    parser.addoption(
        "--bench-threads",
        type=int,
        default=1,
        help="threads for every library: BLAS, OpenMP, torch, ipdpp (default 1)",
    )


@pytest.fixture(scope="session", autouse=True)
def pinned_threads(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """Every thread pool pinned to ``--bench-threads`` for the whole session."""
    with ThreadPinning(request.config.getoption("--bench-threads")) as pinning:
        yield pinning.report


class StateCache:
    """Features and prepared family states keyed by size, least recently used evicted."""

    def __init__(self) -> None:
        self._features: dict[tuple[int, int], np.ndarray] = {}
        self._states: OrderedDict[tuple[str, int, int], Any] = OrderedDict()

    def features(self, n: int, d: int) -> np.ndarray:
        if (n, d) not in self._features:
            self._features.clear()  # one feature matrix at a time
            self._features[(n, d)] = make_features(n, d, "float64", seed=0)
        return self._features[(n, d)]

    def state(self, family: Family, n: int, d: int) -> Any:
        key = (family.key, n, d)
        if key not in self._states:
            while len(self._states) >= _CACHED_STATES:
                self._states.popitem(last=False)
            self._states[key] = family.setup(family.load(self.features(n, d)))
        self._states.move_to_end(key)
        return self._states[key]


@pytest.fixture(scope="session")
def state_cache() -> StateCache:
    """The session's cache of features and prepared states."""
    return StateCache()
