"""ipdpp.balanced_subset: per-class selection for stage 2 of long-tailed learning, on every device
(labels and p on the device; mode "exact" runs there, the other modes on host copies)."""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable

import numpy as np
import pytest
from _stats import all_k_subsets, assert_subset_distribution, count_subsets
from conftest import on_the_cpu, to_numpy

import ipdpp
from ipdpp import _reference as ref

MODES = ["exact", "paper", "random", "greedy"]
# Calls (one seed each) behind the per-class chi-square tests: each call draws one sample per
# class, so this is the sample size of every per-class test.
NUM_CALLS = 20_000
Device = Callable[[Any], Any]


def long_tailed_labels(n_max: int, n_min: int, num_classes: int, seed: int) -> np.ndarray:
    """Labels of the standard exponential profile n_c = n_max (n_min/n_max)^(c/(C-1)), shuffled."""
    sizes = (n_max * (n_min / n_max) ** (np.arange(num_classes) / (num_classes - 1))).astype(int)
    labels = np.repeat(np.arange(num_classes), sizes)
    return np.random.default_rng(seed).permutation(labels)


def check_balanced(kept: np.ndarray, labels: np.ndarray, k: np.ndarray) -> None:
    """Sorted, distinct, and exactly min(k_c, N_c) items of every class c (all of small ones)."""
    assert kept.dtype == np.int64 and kept.ndim == 1
    assert np.all(np.diff(kept) > 0), "indices must be strictly increasing (sorted, no repeats)"
    assert kept.size == 0 or (kept[0] >= 0 and kept[-1] < labels.size)
    sizes = np.bincount(labels, minlength=k.size)
    got = np.bincount(labels[kept], minlength=k.size)
    np.testing.assert_array_equal(got, np.minimum(k, sizes))
    for c in np.flatnonzero(sizes <= k):  # small classes are kept whole
        assert np.all(np.isin(np.flatnonzero(labels == c), kept))


@pytest.fixture(scope="module")
def long_tail() -> tuple[np.ndarray, np.ndarray]:
    """10 classes from 5,000 down to 50 items, p ~ Beta(8, 2)."""
    labels = long_tailed_labels(5000, 50, 10, seed=7)
    p = np.random.default_rng(8).beta(8.0, 2.0, labels.size)
    return labels, p


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_keeps_min_k_per_class(
    long_tail: tuple[np.ndarray, np.ndarray], mode: str, seed: int, on_device: Device
) -> None:
    labels, p = long_tail
    k = 100
    labels_in, p_in = on_device(labels), on_device(p)
    kept = to_numpy(ipdpp.balanced_subset(labels_in, p_in, k, mode=mode, seed=seed))
    check_balanced(kept, labels, np.full(10, k))
    again = ipdpp.balanced_subset(labels_in, p_in, k, mode=mode, seed=seed, threads=1)
    np.testing.assert_array_equal(kept, to_numpy(again))  # whatever the thread count


def test_per_class_k_array(
    long_tail: tuple[np.ndarray, np.ndarray], seed: int, on_device: Device
) -> None:
    labels, p = long_tail
    k = np.array([0, 3000, 10, 200, 0, 1, 57, 500, 80, 1000])
    for mode in ("exact", "random", "greedy"):
        kept = ipdpp.balanced_subset(on_device(labels), on_device(p), k, mode=mode, seed=seed)
        check_balanced(to_numpy(kept), labels, k)


def test_missing_classes_and_float32(seed: int, on_device: Device) -> None:
    labels = np.array([4, 4, 1, 4, 1, 4, 4, 4])  # classes 0, 2, 3 are empty
    p = np.linspace(0.1, 0.9, labels.size).astype(np.float32)
    kept = ipdpp.balanced_subset(on_device(labels), on_device(p), [5, 1, 5, 5, 3], seed=seed)
    check_balanced(to_numpy(kept), labels, np.array([5, 1, 5, 5, 3]))
    empty = ipdpp.balanced_subset(on_device(np.zeros(0, dtype=np.int64)), on_device(np.zeros(0)), 3)
    assert to_numpy(empty).shape == (0,) and to_numpy(empty).dtype == np.int64


def test_exact_mode_equals_the_cpu_library(seed: int, on_device: Device) -> None:
    # Every device draws class c from the stream (seed, c) with the same tables and walk: the
    # same items as the CPU library, and class c's items are the structured draw with
    # sample_offset = c on the same device.
    rng = np.random.default_rng(seed)
    sizes = (500 * (5 / 500) ** (np.arange(10) / 9)).astype(int)
    labels = rng.permutation(np.repeat(np.arange(10), sizes))
    p = rng.beta(8.0, 2.0, labels.size)
    with on_the_cpu():
        expected = ipdpp.balanced_subset(labels, p, 20, mode="exact", seed=7)
    kept = to_numpy(ipdpp.balanced_subset(on_device(labels), on_device(p), 20, seed=7))
    np.testing.assert_array_equal(kept, expected)
    np.testing.assert_array_equal(np.bincount(labels[kept], minlength=10), np.minimum(sizes, 20))
    for c in (0, 4, 9):
        members = np.flatnonzero(labels == c)
        if members.size <= 20:
            continue
        kernel = ipdpp.IPDPPKernel(on_device(p[members]))
        single = ipdpp.sample_k_dpp(kernel, 20, 1, seed=7, sample_offset=c, method="structured")
        np.testing.assert_array_equal(members[to_numpy(single)[0]], kept[labels[kept] == c])


def _class_problems(seed: int) -> tuple[np.ndarray, np.ndarray, dict[int, int]]:
    """Three small classes (7, 6 and 2 items; k = 3) with interleaved indices."""
    labels = np.random.default_rng(seed).permutation(np.repeat([0, 1, 2], [7, 6, 2]))
    p = np.random.default_rng(seed + 1).beta(8.0, 2.0, labels.size)
    p[np.flatnonzero(labels == 1)[:2]] = [0.0, 0.0]  # a tie of zeros in class 1
    return labels, p, {0: 3, 1: 3, 2: 2}


def _per_class_samples(labels: np.ndarray, p: np.ndarray, mode: str) -> dict[int, list]:
    """One balanced_subset call per seed; each class's selection in its local indices."""
    local = {c: np.argsort(np.argsort(np.flatnonzero(labels == c))) for c in range(3)}
    where = {c: np.flatnonzero(labels == c) for c in range(3)}
    samples: dict[int, list] = {c: [] for c in range(3)}
    for s in range(NUM_CALLS):
        kept = ipdpp.balanced_subset(labels, p, 3, mode=mode, seed=s)
        for c in range(2):  # class 2 (2 items) is kept whole
            chosen = np.searchsorted(where[c], kept[labels[kept] == c])
            samples[c].append(np.sort(local[c][chosen]))
    return samples


@pytest.mark.slow
def test_exact_mode_per_class_chi_square(seed: int) -> None:
    labels, p, _ = _class_problems(seed)
    samples = _per_class_samples(labels, p, "exact")
    for c in range(2):
        p_c = p[labels == c]
        probs = ref.k_dpp_subset_probabilities(ref.dense_from_ipdpp(p_c, "paper"), 3)
        assert_subset_distribution(np.array(samples[c]), probs, label=f"exact mode, class {c}")


@pytest.mark.slow
def test_random_mode_is_uniform(seed: int) -> None:
    labels, p, _ = _class_problems(seed)
    samples = _per_class_samples(labels, p, "random")
    for c in range(2):
        n_c = int(np.sum(labels == c))
        counts = count_subsets(np.array(samples[c]))
        subsets = all_k_subsets(n_c, 3)
        uniform = {s: 1.0 / len(subsets) for s in subsets}
        assert set(counts) <= set(uniform)
        assert_subset_distribution(np.array(samples[c]), uniform, label=f"random mode, class {c}")


@pytest.mark.parametrize("alpha", ["paper", "code", 1e-4])
def test_exact_mode_is_the_structured_sampler_per_class(
    long_tail: tuple[np.ndarray, np.ndarray], seed: int, alpha: str | float, on_device: Device
) -> None:
    """Class c's draw equals sample_k_dpp(IPDPPKernel(p_c), k, seed, sample_offset=c)."""
    labels, p = long_tail
    k = 60
    kept = ipdpp.balanced_subset(on_device(labels), on_device(p), k, alpha=alpha, seed=seed)
    kept = to_numpy(kept)
    for c in (0, 4, 8):
        members = np.flatnonzero(labels == c)
        kernel = ipdpp.IPDPPKernel(on_device(p[members]), alpha=alpha)
        draw = to_numpy(
            ipdpp.sample_k_dpp(kernel, k, 1, seed=seed, sample_offset=c, method="structured")
        )[0]
        np.testing.assert_array_equal(kept[labels[kept] == c], members[draw])


def test_greedy_mode_is_greedy_map_per_class(long_tail: tuple[np.ndarray, np.ndarray]) -> None:
    labels, p = long_tail
    kept = ipdpp.balanced_subset(labels, p, 40, mode="greedy", alpha="code")
    for c in (0, 5, 9):
        members = np.flatnonzero(labels == c)
        greedy = to_numpy(ipdpp.greedy_map(ipdpp.IPDPPKernel(p[members], alpha="code"), 40))
        np.testing.assert_array_equal(kept[labels[kept] == c], np.sort(members[greedy]))
    # deterministic: the seed plays no role
    np.testing.assert_array_equal(
        kept, ipdpp.balanced_subset(labels, p, 40, mode="greedy", alpha="code", seed=123)
    )


def test_paper_mode_fills_when_one_scan_keeps_too_few(seed: int) -> None:
    """k = N_c - 1: a single Bernoulli scan (each kept w.p. <= 1/2) usually keeps fewer than k."""
    labels = np.repeat(np.arange(40), 9)
    p = np.random.default_rng(seed).beta(8.0, 2.0, labels.size)
    kept = ipdpp.balanced_subset(labels, p, 8, mode="paper", seed=seed)
    check_balanced(kept, labels, np.full(40, 8))


def test_paper_mode_is_not_the_exact_distribution(seed: int) -> None:
    """Algorithm 1 as published differs from the k-DPP (why mode="exact" exists)."""
    labels = np.zeros(6, dtype=np.int64)
    p = np.array([0.05, 0.2, 0.4, 0.6, 0.8, 0.95])
    draws = [
        tuple(ipdpp.balanced_subset(labels, p, 2, mode="paper", seed=s).tolist())
        for s in range(3000)
    ]
    exact = ref.k_dpp_subset_probabilities(ref.dense_from_ipdpp(p, "paper"), 2)
    counts = Counter(draws)
    assert len(counts) < len(exact)  # the argmax phase never reaches some subsets


def test_features_mode(long_tail: tuple[np.ndarray, np.ndarray], seed: int) -> None:
    """Quality-diversity kernel per class: equals the spectral sampler on F̂_c with q_c."""
    labels, p = long_tail
    features = np.random.default_rng(seed).standard_normal((labels.size, 32)).astype(np.float32)
    k = 20
    kept = ipdpp.balanced_subset(labels, p, k, seed=seed, features=features)
    check_balanced(kept, labels, np.full(10, k))
    greedy = ipdpp.balanced_subset(labels, p, k, mode="greedy", features=features)
    check_balanced(greedy, labels, np.full(10, k))
    for c in (1, 7):
        members = np.flatnonzero(labels == c)
        f = features[members].astype(np.float64)
        f /= np.linalg.norm(f, axis=1, keepdims=True)
        kernel = ipdpp.LowRankKernel(f, quality=np.sqrt(1.0 - p[members] + 1e-3))
        draw = to_numpy(
            ipdpp.sample_k_dpp(kernel, k, 1, seed=seed, sample_offset=c, method="sequential")
        )[0]
        np.testing.assert_array_equal(kept[labels[kept] == c], members[draw])
        best = to_numpy(ipdpp.greedy_map(kernel, k))
        np.testing.assert_array_equal(greedy[labels[greedy] == c], np.sort(members[best]))


def test_torch_in_torch_out(seed: int) -> None:
    torch = pytest.importorskip("torch")
    labels = torch.from_numpy(long_tailed_labels(200, 10, 5, seed=seed))
    p = torch.rand(labels.shape[0], dtype=torch.float32, generator=torch.Generator().manual_seed(0))
    kept = ipdpp.balanced_subset(labels, p, 20, seed=seed)
    assert isinstance(kept, torch.Tensor) and kept.dtype == torch.int64
    check_balanced(kept.numpy(), labels.numpy(), np.full(5, 20))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"p": np.full(9, 0.5)}, ValueError, "p must have the length of labels"),
        ({"labels": np.arange(10) * 0.5}, ValueError, "labels must be an integer"),
        ({"labels": np.zeros((2, 5), dtype=np.int64)}, ValueError, "labels must have shape"),
        ({"labels": np.arange(10) - 1}, ValueError, "labels must be >= 0"),
        ({"k_per_class": -1}, ValueError, "k_per_class must be >= 0"),
        ({"k_per_class": 2.5}, TypeError, "k_per_class"),
        ({"k_per_class": np.array([1, 2, 3])}, ValueError, "k_per_class must be an int or have"),
        ({"k_per_class": np.full(2, -2)}, ValueError, "k_per_class must be >= 0"),
        ({"p": np.full(10, 1.5)}, ValueError, r"p must lie in \[0, 1\]"),
        ({"p": np.full(10, np.nan)}, ValueError, "p must not contain NaN"),
        ({"p": np.arange(10)}, TypeError, "p must be a float"),
        ({"mode": "fast"}, ValueError, "mode must be one of"),
        ({"alpha": "both"}, ValueError, "alpha must be"),
        ({"alpha": -1.0}, ValueError, "alpha must be"),
        ({"alpha": 0.5}, ValueError, "alpha = 0.5.* too large"),
        ({"seed": -1}, ValueError, "seed must be >= 0"),
        ({"threads": 0}, ValueError, "threads must be >= 1"),
        ({"features": np.ones((9, 3))}, ValueError, "features must have shape"),
        ({"features": np.ones((10, 3)), "mode": "random"}, ValueError, "features are used by"),
    ],
)
def test_bad_input(kwargs: dict, error: type, match: str, on_device: Device) -> None:
    # One message per condition, whatever the device of labels, p and features.
    args = {"labels": np.repeat([0, 1], 5), "p": np.linspace(0.1, 0.9, 10), "k_per_class": 2}
    args.update(kwargs)
    for name in ("labels", "p", "features"):
        if name in args:
            args[name] = on_device(args[name])
    with pytest.raises(error, match=match):
        ipdpp.balanced_subset(args.pop("labels"), args.pop("p"), args.pop("k_per_class"), **args)


def test_class_without_k_items_names_the_class(on_device: Device) -> None:
    labels = on_device(np.repeat([0, 1], [4, 6]))
    p = np.concatenate([np.linspace(0.2, 0.8, 4), np.ones(6)])  # class 1: S = 11^T / 6, rank 1
    for mode in ("exact", "paper"):
        with pytest.raises(ValueError, match="class 1"):
            ipdpp.balanced_subset(labels, on_device(p), 2, mode=mode)
    features = on_device(np.ones((10, 3)))  # rank-one quality-diversity kernels
    with pytest.raises(ValueError, match="class 0.*rank"):
        ipdpp.balanced_subset(labels, on_device(np.full(10, 0.5)), 2, features=features)
