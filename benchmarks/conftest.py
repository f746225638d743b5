"""The suite's options (every ``--bench-*`` of :mod:`benchmarks.config`, default preset quick),
thread pinning, and the ``ipdpp`` section of ``--benchmark-json``:
machine, threads, settings, families, and every measurement that yielded no time, with why.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from benchmarks.config import OPTIONS, add_options, settings_from
from benchmarks.machine import pin_threads
from benchmarks.suite import SESSION, Case, Session


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser.getgroup("ipdpp benchmarks").addoption, "--bench-", "bench_")


def pytest_configure(config: pytest.Config) -> None:
    settings = settings_from(
        {field: config.getoption(f"bench_{field}") for _, field, _ in OPTIONS}, "quick"
    )
    config.stash[SESSION] = Session(settings, pin_threads(settings.threads))


@pytest.fixture(scope="session")
def session(request: pytest.FixtureRequest) -> Session:
    """The state the measurements of this run share."""
    return request.config.stash[SESSION]


def _case(item: pytest.Item) -> Case | None:
    # An empty parameter set (e.g. no batch measurements) gives pytest's NOTSET, not a Case.
    callspec = getattr(item, "callspec", None)
    case = callspec.params.get("case") if callspec is not None else None
    return case if isinstance(case, Case) else None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    case = _case(item)
    if case is None or call.excinfo is None or not (report.skipped or report.failed):
        return
    if report.skipped:
        status, _, reason = str(getattr(call.excinfo.value, "msg", "")).partition(": ")
    else:
        status, reason = "error", call.excinfo.exconly().splitlines()[-1][:500]
    entry = dict(case.info(), status=status, reason=reason)
    item.config.stash[SESSION].outcomes.append(entry)


def pytest_benchmark_update_json(
    config: pytest.Config, benchmarks: Any, output_json: dict[str, Any]
) -> None:
    output_json["ipdpp"] = config.stash[SESSION].describe()
