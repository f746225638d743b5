"""Property tests of the samplers, the exact probabilities and greedy MAP.

Kernels are small and valid (low rank with and without quality, dense of any rank, IP-DPP with
both alpha rules, some with all-zero or duplicate items, numpy or torch); every other argument is
drawn from valid values, edges (k = 0, k = rank, k > n, seeds next to 2**64, offsets that overflow
the stream counter, huge sample counts and thread numbers) and wrong types (bools, floats, None,
strings, arrays). The outcome must follow ``_properties.expect``; valid results are checked for
shape, dtype, type, range, distinctness, order, reproducibility and (k-)DPP support.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np
import torch
from _properties import SETTINGS, Arg, check_index_result, expect, int_arg, to_numpy
from hypothesis import given
from hypothesis import strategies as st

import ipdpp
from ipdpp.sampling import METHODS

#: Sample counts that no machine can hold (k >= 1) or that overflow a signed 64-bit count.
HUGE_COUNTS = (2**40, 2**62, 2**63 - 1, 2**63, 2**64, 2**70)
#: Objects passed where a kernel is expected.
NOT_KERNELS: tuple[Any, ...] = (None, np.eye(3), "kernel", 3, [[1.0]])


@dataclass
class KernelCase:
    kernel: Any
    n: int
    rank: int  # numerical rank (spectral methods)
    structural: int | None  # IPDPPKernel.structural_rank() ("auto"/"structured" methods)
    torch: bool

    def __repr__(self) -> str:
        return f"{self.kernel!r} rank={self.rank} structural={self.structural} torch={self.torch}"


@st.composite
def kernels(draw: st.DrawFn) -> KernelCase:
    """A small valid kernel; sometimes rank-deficient, empty-ranked or built from torch."""
    # Mostly tiny; sometimes big enough next to the rank for "auto" to pick the rejection sampler.
    n = draw(
        st.one_of(st.integers(1, 7), st.integers(1, 7), st.integers(1, 7), st.integers(20, 60))
    )
    kind = draw(st.sampled_from(["lowrank", "quality", "dense", "ipdpp"]))
    as_torch = draw(st.booleans())
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))

    def arr(x: np.ndarray) -> Any:
        return torch.from_numpy(x) if as_torch else x

    if kind in ("lowrank", "quality"):
        B = rng.standard_normal((n, draw(st.integers(1, 5))))
        B[rng.random(n) < draw(st.sampled_from([0.0, 0.3, 1.0]))] = 0.0  # zero items
        if n > 1 and draw(st.booleans()):
            B[-1] = B[0]  # a duplicate item
        q = rng.uniform(0.0, 2.0, n) if kind == "quality" else None
        kernel = ipdpp.LowRankKernel(arr(B), None if q is None else arr(q))
    elif kind == "dense":
        A = rng.standard_normal((n, draw(st.integers(0, n))))
        kernel = ipdpp.DenseKernel(arr((A @ A.T + (A @ A.T).T) / 2))
    else:
        p = rng.uniform(0.0, 1.0, n)
        p[rng.random(n) < draw(st.sampled_from([0.0, 0.3, 1.0]))] = draw(st.sampled_from([0, 1]))
        kernel = ipdpp.IPDPPKernel(arr(p), draw(st.sampled_from(["paper", "code", 0.5 / n])))
    structural = kernel.structural_rank() if kind == "ipdpp" else None
    return KernelCase(kernel, n, kernel.rank, structural, as_torch)


def _kernel_arg(draw: st.DrawFn) -> tuple[Any, KernelCase | None]:
    if draw(st.integers(0, 15)) == 0:
        return draw(st.sampled_from(NOT_KERNELS)), None
    case = draw(kernels(), label="kernel")
    return case.kernel, case


def _int_problem(arg: Arg, low: int, high: int | None = None) -> bool:
    return arg.value is None or arg.value < low or (high is not None and arg.value > high)


THREADS = st.one_of(st.just(Arg(None, None)), int_arg(1, 3, extremes=(0, -1, 64, 2**31, 2**40)))
SEEDS = int_arg(0, 5, extremes=(2**32, 2**63, 2**64 - 1, 2**64, -1, 2**100))
OFFSETS = int_arg(0, 3, extremes=(2**63, 2**64 - 5, 2**64 - 1, 2**64, -1))


def _common_problems(
    case: KernelCase | None, num: Arg, seed: Arg, offset: Arg, threads: Arg
) -> list[str]:
    """Invalid arguments among kernel, num_samples, seed, sample_offset and threads."""
    bad = ["kernel"] if case is None else []
    # A count whose samples (8 bytes or more each) can not fit in any memory is refused.
    if _int_problem(num, 0) or num.value >= 2**40:
        bad.append("num_samples")
    if _int_problem(seed, 0, 2**64 - 1):
        bad.append("seed")
    if _int_problem(offset, 0, 2**64 - 1):
        bad.append("sample_offset")
    elif num.value is not None and num.value >= 0 and offset.value + num.value > 2**64:
        bad += ["sample_offset", "num_samples"]
    if threads.obj is not None and _int_problem(threads, 1, 2**31 - 1):
        bad.append("threads")
    return bad


def _threads(arg: Arg) -> Any:
    return arg.obj


@SETTINGS
@given(data=st.data())
def test_sample_k_dpp(data: st.DataObject) -> None:
    kernel, case = _kernel_arg(data.draw)
    n = case.n if case else 3
    k = data.draw(int_arg(-1, n + 1, extremes=(2**31, 2**63, 2**64, 2**70)), label="k")
    num = data.draw(int_arg(0, 4, extremes=(-1, *HUGE_COUNTS)), label="num_samples")
    seed, offset = data.draw(SEEDS, label="seed"), data.draw(OFFSETS, label="sample_offset")
    threads = data.draw(THREADS, label="threads")
    method = data.draw(st.sampled_from(METHODS + ("", "Auto", None, 0)), label="method")
    bad = _common_problems(case, num, seed, offset, threads)
    if _int_problem(k, 0):
        bad.append("k")
    if method not in METHODS:
        bad.append("method")
    elif case is not None and "k" not in bad:
        structured = case.structural is not None and method in ("auto", "structured")
        if method == "structured" and case.structural is None:
            bad.append("method")
        elif k.value > (case.structural if structured else case.rank):
            bad.append("k")

    def call(**changes: Any) -> Any:
        args = {"num_samples": num.obj, "seed": seed.obj, "sample_offset": offset.obj}
        args.update(changes)
        return ipdpp.sample_k_dpp(
            kernel, k.obj, args["num_samples"], args["seed"], method=method,
            sample_offset=args["sample_offset"], threads=_threads(threads),
        )  # fmt: skip

    result = expect(call, bad)
    if result is None:
        return
    assert case is not None
    assert isinstance(result, torch.Tensor if case.torch else np.ndarray), type(result)
    samples = to_numpy(result)
    assert samples.dtype == np.int64 and samples.shape == (num.value, k.value), samples.shape
    for row in samples:
        check_index_result(row, k.value, n, as_torch=False, sorted_=True)
        assert np.isfinite(ipdpp.log_prob(kernel, row, k=k.value)), row  # in the support
    if num.value:  # sample i is sample 0 of the stream (seed, offset + i), whatever the threads
        last = call(num_samples=1, sample_offset=offset.value + num.value - 1)
        np.testing.assert_array_equal(to_numpy(last)[0], samples[-1])
        np.testing.assert_array_equal(to_numpy(call()), samples)


@SETTINGS
@given(data=st.data())
def test_sample_dpp(data: st.DataObject) -> None:
    kernel, case = _kernel_arg(data.draw)
    num = data.draw(int_arg(0, 4, extremes=(-1, *HUGE_COUNTS)), label="num_samples")
    seed, offset = data.draw(SEEDS, label="seed"), data.draw(OFFSETS, label="sample_offset")
    threads = data.draw(THREADS, label="threads")
    method = data.draw(st.sampled_from(METHODS + ("", None)), label="method")
    bad = _common_problems(case, num, seed, offset, threads)
    if method not in METHODS or method == "structured":
        bad.append("method")

    def call() -> Any:
        return ipdpp.sample_dpp(
            kernel, num.obj, seed.obj, method=method, sample_offset=offset.obj,
            threads=_threads(threads),
        )  # fmt: skip

    result = expect(call, bad)
    if result is None:
        return
    assert case is not None and isinstance(result, list) and len(result) == num.value
    for sample in result:
        assert isinstance(sample, torch.Tensor if case.torch else np.ndarray), type(sample)
        size = int(to_numpy(sample).size)
        assert size <= case.rank, (size, case.rank)
        check_index_result(sample, size, case.n, as_torch=case.torch, sorted_=True)
        assert np.isfinite(ipdpp.log_prob(kernel, sample)), sample
    again = call()
    assert all(np.array_equal(to_numpy(a), to_numpy(b)) for a, b in zip(result, again))


def _optional_k(n: int) -> st.SearchStrategy[Arg]:
    return st.one_of(st.just(Arg(None, None)), int_arg(-1, n + 1, extremes=(2**63, 2**64)))


@SETTINGS
@given(data=st.data())
def test_inclusion_probabilities(data: st.DataObject) -> None:
    kernel, case = _kernel_arg(data.draw)
    k = data.draw(_optional_k(case.n if case else 3), label="k")
    bad = ["kernel"] if case is None else []
    if k.obj is not None and (_int_problem(k, 0) or (case and k.value > case.rank)):
        bad.append("k")
    result = expect(lambda: ipdpp.inclusion_probabilities(kernel, k=k.obj), bad)
    if result is None:
        return
    assert case is not None and isinstance(result, np.ndarray), type(result)
    assert result.dtype == np.float64 and result.shape == (case.n,)
    assert np.all(result >= -1e-12) and np.all(result <= 1 + 1e-9), result
    values, _ = case.kernel.eigh()
    expected = float((values / (1 + values)).sum()) if k.obj is None else k.value
    np.testing.assert_allclose(result.sum(), expected, rtol=1e-9, atol=1e-9)


#: Forms of Y: index lists of every flavour, and things that are not index vectors.
@st.composite
def _subset(draw: st.DrawFn, n: int) -> tuple[Any, bool, int]:
    """(Y, valid, size): a random index vector, valid or not, in a random container."""
    size = draw(st.integers(0, n + 1))
    items = draw(st.lists(st.integers(-1, n), min_size=size, max_size=size))
    form = draw(st.sampled_from(["list", "int64", "int8", "uint8", "torch", "float", "bool", "2d"]))
    valid = len(set(items)) == size and all(0 <= i < n for i in items)
    array = np.array(items, dtype=np.int64)
    Y: Any = items
    if form in ("int8", "int64"):
        Y = array.astype(form)
    elif form == "uint8":
        Y = array.astype(np.uint8)  # -1 wraps to 255: out of range, as it should read
        valid = len(set(Y.tolist())) == size and all(0 <= i < n for i in Y.tolist())
    elif form == "torch":
        Y = torch.from_numpy(array)
    elif form == "float":
        Y, valid = array.astype(np.float64), valid and size == 0  # empty: nothing to misread
    elif form == "bool":
        Y, valid = array.astype(bool), valid and size == 0
    elif form == "2d":
        Y, valid = array[None, :], False
    return Y, valid, size


@SETTINGS
@given(data=st.data())
def test_log_prob(data: st.DataObject) -> None:
    kernel, case = _kernel_arg(data.draw)
    n = case.n if case else 3
    Y, Y_valid, size = data.draw(_subset(n), label="Y")
    k = data.draw(_optional_k(n), label="k")
    bad = ["kernel"] if case is None else []
    if not Y_valid:
        bad.append("Y")
    if k.obj is not None:
        if _int_problem(k, 0) or (case and k.value > case.rank):
            bad.append("k")
        elif k.value != size:
            bad += ["Y", "k"]
    result = expect(lambda: ipdpp.log_prob(kernel, Y, k=k.obj), bad)
    if result is None:
        return
    assert case is not None and isinstance(result, float), type(result)
    assert result <= 1e-9 and not np.isnan(result), result
    if case.n <= 5:  # the probabilities of all subsets (of size k) sum to one
        sizes = range(case.n + 1) if k.obj is None else [k.value]
        total = sum(
            np.exp(ipdpp.log_prob(kernel, list(c), k=k.obj))
            for m in sizes
            for c in combinations(range(case.n), m)
        )
        np.testing.assert_allclose(total, 1.0, rtol=1e-9)


@SETTINGS
@given(data=st.data())
def test_greedy_map(data: st.DataObject) -> None:
    kernel, case = _kernel_arg(data.draw)
    k = data.draw(int_arg(-1, (case.n if case else 3) + 1, extremes=(2**63, 2**64)), label="k")
    bad = ["kernel"] if case is None else []
    if _int_problem(k, 0):
        bad.append("k")
    elif case is not None:
        if k.value > (case.rank if case.structural is None else case.structural):
            bad.append("k")
    result = expect(lambda: ipdpp.greedy_map(kernel, k.obj), bad)
    if result is None:
        return
    assert case is not None
    check_index_result(result, k.value, case.n, as_torch=case.torch, sorted_=False)
    assert np.array_equal(to_numpy(ipdpp.greedy_map(kernel, k.obj)), to_numpy(result))
