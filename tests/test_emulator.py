"""The CPU emulator of the CUDA kernels itself: every kernel of csrc/cuda runs under it, results
do not depend on the thread order, and each of its checks fires on a kernel with that bug
(emulator.self_test: a check never seen to fire proves nothing).
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from _emulated import (
    METHODS,
    ORDERS,
    RTOL,
    balanced_subset,
    dense_tolerances,
    dpp_rows,
    emu,
    forward_order,  # noqa: F401  (the autouse fixture)
    lowrank_case,
    projection_launches,
    sample,
    spectrum_of,
    structured_case,
    structured_sample,
)

pytestmark = pytest.mark.emulated


# ----------------------------------------------------------------------------------------------
# Coverage and race freedom of the real kernels
# ----------------------------------------------------------------------------------------------


def test_every_kernel_runs() -> None:
    # Each __global__ function of csrc/cuda is launched by the calls below, which the tests of
    # this file make as well: a new kernel without an emulated test fails here.
    source = "".join(p.read_text() for p in Path(__file__).parents[1].glob("csrc/cuda/*.cu"))
    kernels = set(
        re.findall(r"__global__\s+void\s+(?:__launch_bounds__\([^)]*\)\s*)?(\w+)", source)
    )
    B, q, L = lowrank_case(40, 6, np.float32, quality=True)
    spectrum = spectrum_of(B, q)
    for method in METHODS:
        sample(spectrum, 3, 2, method)
        sample(spectrum, -1, 2, method)
    L32 = np.ascontiguousarray(L.astype(np.float32))
    symmetry, psd = dense_tolerances(40, np.float32)
    emu.dense_spectrum(L32.ctypes.data, "float32", 40, RTOL, psd, 0, 0, symmetry)
    labels, p = structured_case()
    balanced_subset(labels, p, np.full(8, 5, dtype=np.int64))
    structured_sample(p[:30], 1 / 30, 4, 2)
    launched = {r["kernel"] for r in emu.emulator.launch_log()}
    assert kernels <= launched, sorted(kernels - launched)


def test_identical_under_every_thread_order() -> None:
    B, q, _ = lowrank_case(1200, 8, np.float64, quality=True)
    spectrum = spectrum_of(B, q)
    labels, p = structured_case()
    k = np.full(8, 20, dtype=np.int64)
    results = {}
    for order in ORDERS:
        emu.emulator.set_thread_order(order)
        results[order] = (
            sample(spectrum, 5, 3, "sequential"),
            sample(spectrum, 5, 6, "rejection"),
            dpp_rows(sample(spectrum, -1, 3, "sequential")),
            balanced_subset(labels, p, k),
        )
    assert len({r["grid"][0] for r in projection_launches()}) == 1  # same blocks, other orders
    for order in ORDERS[1:]:
        for a, b in zip(results["forward"], results[order]):
            if isinstance(a, list):
                assert len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))
            else:
                np.testing.assert_array_equal(a, b, err_msg=f"thread order {order}")


def test_concurrent_calls_with_different_k() -> None:
    # Host threads launching one kernel with different shared-memory sizes must not change each
    # other's limits (the attribute is per kernel, not per call).
    B, _, _ = lowrank_case(300, 12, np.float32)
    spectrum = spectrum_of(B)
    ks = [2, 6, 10] * 3
    serial = [sample(spectrum, k, 3, method) for k in ks for method in METHODS]
    with ThreadPoolExecutor(3) as pool:
        jobs = [pool.submit(sample, spectrum, k, 3, method) for k in ks for method in METHODS]
        parallel = [job.result() for job in jobs]
    for a, b in zip(serial, parallel):
        np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------------------------------------
# The emulator's checks: each fires on a kernel with that bug
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("split_warp", "deadlock: no thread can proceed"),
        ("divergent_barrier", "divergent __syncthreads"),
        ("early_exit", "exited"),
        ("shuffle_outside_mask", "not in the mask"),
        ("mask_mismatch", "with mask 0x"),
        ("dynamic_overrun", "past the end of its dynamic shared memory"),
        ("static_overrun", "past the end of its static shared memory"),
        ("grid_sync_not_cooperative", "not cooperative"),
        ("cooperative_too_large", "can be resident at once"),
        ("dynamic_above_attribute", "MaxDynamicSharedMemorySize"),
        ("launch_bounds", "__launch_bounds__ allows 64"),
    ],
)
def test_emulator_reports_kernel_bugs(name: str, match: str) -> None:
    with pytest.raises(emu.CudaError, match=match):
        emu.emulator.self_test(name)
    # The failed launch leaves nothing behind: a correct kernel runs next.
    assert emu.emulator.self_test("reduce")[:256] == [sum(range(256))] * 256


def test_emulator_watchdog_stops_endless_kernels() -> None:
    previous = emu.emulator.watchdog()
    emu.emulator.set_watchdog(1000)
    try:
        with pytest.raises(emu.CudaError, match="watchdog"):
            emu.emulator.self_test("endless")
    finally:
        emu.emulator.set_watchdog(previous)


def test_thread_orders_expose_races_and_garbage_exposes_uninitialised_reads() -> None:
    results = {}
    for order in ORDERS:
        emu.emulator.set_thread_order(order)
        results[order] = emu.emulator.self_test("write_race")[:64]
        assert emu.emulator.self_test("reduce") == [sum(range(256))] * 256
    # The last writer wins: thread 2 running after thread 1, or before it.
    assert results["forward"] == [2] * 64 and results["reversed"] == [1] * 64
    first, second = (emu.emulator.self_test("uninitialised_read")[0] for _ in range(2))
    assert first != second  # fresh garbage in every launch
