"""Property tests of ``balanced_subset``: every mode, alpha rule and keyword, with valid, edge and
wrong labels, confidences, per-class sizes, seeds, thread counts and features.

A valid call keeps exactly ``min(k_c, N_c)`` items of every class (small classes whole), sorted
and distinct, as the labels' array type, the same with one thread as with several.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from _properties import SETTINGS, Arg, ArrayInput, array_input, expect, int_arg, to_numpy
from hypothesis import given
from hypothesis import strategies as st

import ipdpp
from ipdpp.balanced import BALANCED_MODES

MODES = BALANCED_MODES + ("", "Exact", None)
ALPHAS: tuple[Any, ...] = ("paper", "code", "papers", 1e-3, 0.05, 0.5, 2.0, 0.0, -1.0, True, None)


@st.composite
def _labels(draw: st.DrawFn) -> tuple[Any, np.ndarray | None, bool]:
    """(labels as passed, their int64 values or None if not integer 1-D, torch?)."""
    n = draw(st.integers(0, 12))
    classes = draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    values = rng.integers(0, classes, n)
    if n and draw(st.integers(0, 9)) == 0:
        values[draw(st.integers(0, n - 1))] = draw(st.sampled_from([-1, 10**6, 2**40, 2**62]))
    forms = ["int64", "int8", "uint8", "uint64", "list", "torch", "float", "bool", "2d"]
    form = draw(st.sampled_from(forms))
    if form == "uint64":  # -1 reads as 2**64 - 1: a label no per-class table can reach
        return values.astype(np.uint64), values if values.min(initial=0) >= 0 else None, False
    if form == "int8" or form == "uint8":
        if values.size and (values.max() > 127 or (form == "uint8" and values.min() < 0)):
            form = "int64"  # a value the dtype can not hold would read as another label
        labels: Any = values.astype(form)
    elif form == "list":
        labels = values.tolist()
    elif form == "torch":
        labels = torch.from_numpy(values)
    elif form == "float":
        labels = values.astype(np.float64)
    elif form == "bool":
        labels = values.astype(bool)
    elif form == "2d":
        labels = values[:, None]
    else:
        labels = values
    integer = form not in ("float", "bool", "2d") and not (form == "list" and n == 0)
    return labels, values if integer else None, form == "torch"


@st.composite
def _k_per_class(draw: st.DrawFn, classes: int) -> tuple[Any, np.ndarray | None]:
    """(k_per_class as passed, its per-class values or None if it must be refused)."""
    if classes > 16 or draw(st.booleans()):  # (a huge label leaves only the scalar form)
        arg: Arg = draw(int_arg(0, 5, extremes=(-1, 2**62, 2**63 - 1)))
        if arg.value is None or arg.value < 0:
            return arg.obj, None
        # Huge labels (which the call may refuse) get no per-class table here either.
        return arg.obj, np.full(min(classes, 2**20), arg.value, dtype=np.int64)
    length = draw(st.sampled_from([classes, classes, classes, classes + 1, max(classes - 1, 0)]))
    values = np.asarray(draw(st.lists(st.integers(-1, 6), min_size=length, max_size=length)))
    form = draw(st.sampled_from(["int64", "int32", "torch", "float", "list"]))
    passed: Any = values.astype(np.int32 if form == "int32" else np.int64)
    if form == "torch":
        passed = torch.from_numpy(values.astype(np.int64))
    elif form == "float":
        passed = values.astype(np.float64)
    elif form == "list":
        passed = values.tolist()
    ok = length == classes and form != "float" and (values >= 0).all()
    ok = ok and not (form == "list" and length == 0)  # [] reads as float64
    return passed, values.astype(np.int64) if ok else None


def _class_rank_short(
    labels: np.ndarray, p: np.ndarray, k: np.ndarray, alpha: Any
) -> tuple[bool, bool]:
    """(alpha too large for a class, some sampled class with k_c above its IP-DPP rank)."""
    too_large = short = False
    for c in range(k.size):
        pc = p[labels == c]
        if pc.size <= k[c] or k[c] == 0:  # kept whole or not at all: nothing is sampled
            continue
        a = {"paper": 1.0 / pc.size, "code": 1.0 / pc.size**2}.get(alpha, alpha)
        d = 1.0 - a * pc * pc.sum()
        too_large |= bool(d.min() < -1e-9)
        positive = d > 1e-12
        short |= bool(k[c] > positive.sum() + np.any(pc[~positive] > 0))
    return too_large, short


@SETTINGS
@given(data=st.data())
def test_balanced_subset(data: st.DataObject) -> None:
    labels, values, labels_torch = data.draw(_labels(), label="labels")
    n = int(np.shape(labels)[0])
    bad: list[str] = []
    maybe: list[str] = []
    # 2**40 classes (labels 0 .. max) need per-class tables that no machine holds.
    if values is None or (values.size and (values.min() < 0 or values.max() >= 2**40)):
        bad.append("labels")
    classes = int(values.max()) + 1 if values is not None and values.size and not bad else 0
    p_shape = data.draw(st.sampled_from([(n,), (n,), (n,), (n + 1,), (n, 1)]), label="p shape")
    p: ArrayInput = data.draw(array_input(p_shape, unit=True), label="p")
    # Empty labels leave p no values to check, only its shape.
    p_values_ok = p.real and p.finite and np.all((0 <= p.values) & (p.values <= 1))
    if p.shape != (n,) or not (p_values_ok or n == 0):
        bad.append("p")
    k_obj, k_values = data.draw(_k_per_class(classes), label="k_per_class")
    if k_values is None:
        bad.append("k_per_class")
    mode = data.draw(st.sampled_from(MODES), label="mode")
    if mode not in BALANCED_MODES:
        bad.append("mode")
    alpha = data.draw(st.sampled_from(ALPHAS), label="alpha")
    if not (alpha in ("paper", "code") or (isinstance(alpha, float) and alpha > 0)):
        bad.append("alpha")
    seed = data.draw(int_arg(0, 9, extremes=(2**64 - 1, 2**64, -1)), label="seed")
    if seed.value is None or not 0 <= seed.value < 2**64:
        bad.append("seed")
    threads = data.draw(
        st.one_of(st.just(Arg(None, None)), int_arg(1, 3, extremes=(0,))), label="threads"
    )
    if threads.obj is not None and (threads.value is None or threads.value < 1):
        bad.append("threads")
    features: ArrayInput | None = None
    if data.draw(st.integers(0, 3), label="with features") == 0:
        shape = data.draw(st.sampled_from([(n, 2), (n, 3), (n + 1, 2), (n,)]), label="f shape")
        features = data.draw(array_input(shape, real_only=True), label="features")
        if not (features.shape[:1] == (n,) and len(shape) == 2 and (features.finite or not n)):
            bad.append("features")
        if mode not in ("exact", "greedy"):
            bad += ["features", "mode"]
        maybe += ["features", "k_per_class"]  # a class's features may have rank below k_c
    if not bad and not maybe and features is None and mode == "exact":
        too_large, short = _class_rank_short(values, p.values, k_values, alpha)
        bad += ["alpha"] * too_large
        if short:
            maybe += ["k_per_class", "p"]
    elif not bad and mode != "random":
        maybe += ["alpha", "k_per_class", "p"]

    def call(threads_obj: Any) -> Any:
        return ipdpp.balanced_subset(
            labels, p.obj, k_obj, mode, alpha, seed.obj,
            features=None if features is None else features.obj, threads=threads_obj,
        )  # fmt: skip

    result = expect(lambda: call(threads.obj), bad, may_fail=maybe)
    if result is None:
        return
    assert isinstance(result, torch.Tensor if labels_torch else np.ndarray), type(result)
    kept = to_numpy(result)
    assert kept.dtype == np.int64 and kept.ndim == 1, (kept.dtype, kept.shape)
    assert np.all(np.diff(kept) > 0) and (kept.size == 0 or 0 <= kept[0] <= kept[-1] < n), kept
    if n:
        sizes = np.bincount(values, minlength=classes)
        got = np.bincount(values[kept], minlength=classes)
        np.testing.assert_array_equal(got, np.minimum(k_values, sizes))
    np.testing.assert_array_equal(to_numpy(call(1)), kept)
