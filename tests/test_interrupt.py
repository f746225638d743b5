"""Ctrl-C stops long C++ calls: SIGINT to a subprocess in the middle of a call that would run for
minutes must raise KeyboardInterrupt there, stop the worker threads and leave the library usable.

Each case runs a child Python that prints "ready", starts a call far longer than the test waits,
and reports how the call ended; the parent sends SIGINT once the call is under way. How quickly
the call stops is measured outside the tests (timings never decide a test); here the call only has
to end by KeyboardInterrupt long before it could have finished.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

# What each child sets up (quickly) and then calls (for minutes when not interrupted).
CALLS = {
    # Many samples over two threads: the workers must stop too (parallel_for).
    "sample_k_dpp_threads": (
        "K = ipdpp.LowRankKernel(np.random.default_rng(0).standard_normal((20_000, 64)))\nK.eigh()",
        "ipdpp.sample_k_dpp(K, 64, 20_000, method='sequential', threads=2)",
    ),
    # One long table build on the calling thread (the structured IP-DPP sampler, N = 10^7).
    "ipdpp_structured": (
        "p = np.random.default_rng(0).beta(8.0, 2.0, 10_000_000)",
        "ipdpp.sample_k_dpp(ipdpp.IPDPPKernel(p), 2_000, 1, method='structured')",
    ),
    # The paper's Algorithm 1 over many classes (the training re-sampling's call).
    "balanced_subset_paper": (
        "labels = np.repeat(np.arange(2_000), 4_000)\n"
        "p = np.random.default_rng(0).beta(8.0, 2.0, labels.size)",
        "ipdpp.balanced_subset(labels, p, 20, mode='paper', threads=2)",
    ),
}

CHILD = """
import os, signal, sys, time
import numpy as np
import ipdpp

signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
def threads():
    return len(os.listdir("/proc/self/task"))
{setup}
before = threads()
print("ready", flush=True)
start = time.perf_counter()
try:
    {call}
    print("finished", flush=True)
except KeyboardInterrupt:
    print("interrupted", flush=True)
# Usable afterwards, and no thread of the interrupted call is left behind.
assert ipdpp.sample_k_dpp(ipdpp.LowRankKernel(np.eye(6, 3)), 2, 4, threads=2).shape == (4, 2)
print("threads", before, threads(), flush=True)
"""

# The parent waits this long after "ready" before it sends SIGINT (the call is then running),
# and gives the child this long to react before the test fails.
DELAY_S = 1.0
DEADLINE_S = 60.0


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads in /proc")
@pytest.mark.parametrize("case", sorted(CALLS))
def test_sigint_interrupts_the_call(case: str, tmp_path: Path) -> None:
    setup, call = CALLS[case]
    source = CHILD.format(setup=setup, call=call)
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(source)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,  # not the checkout: `-c` puts the working directory first on sys.path
        env=os.environ | {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"},
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready", child.stderr.read()
        time.sleep(DELAY_S)
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=DEADLINE_S)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    lines = out.split("\n")
    assert lines[0] == "interrupted", (out, err)
    assert child.returncode == 0, err
    _, before, after = lines[1].split()
    assert int(after) == int(before), "threads of the interrupted call are still alive"
