"""The benchmark harness at tiny sizes, so that it cannot rot, and its baselines' exactness.

No timing is asserted: a benchmark's numbers depend on the machine. What is asserted is that the
harness runs end to end and writes its table, JSON and plots, and that the numpy and PyTorch
baselines ipdpp is compared with are exact k-DPP samplers (chi-square against enumeration), so
that the comparison is between correct implementations.
"""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
from _stats import assert_subset_distribution, assert_valid_samples

from benchmarks import compare, report
from benchmarks.backends import make_families
from benchmarks.balanced import LongTailShape, class_sizes, ipdpp_kernel_dense
from benchmarks.baselines import NumpyKDPP, TorchKDPP, esp_acceptance_table
from benchmarks.timing import extrapolate, measure
from ipdpp import _reference as ref

SEED = 20261126
N, D, K = 7, 4, 3  # every 3-subset of 7 items: 35 cells
NUM_SAMPLES = 10_000

needs_torch = pytest.mark.skipif(
    importlib.util.find_spec("torch") is None, reason="torch is not installed"
)


@pytest.fixture(scope="module")
def tiny_kernel() -> tuple[np.ndarray, dict[tuple[int, ...], float]]:
    """Features with a spread spectrum, and the exact k-DPP law of L = B B^T by enumeration."""
    rng = np.random.default_rng(SEED)
    features = rng.standard_normal((N, D)) * np.array([3.0, 1.0, 0.5, 0.2])
    return features, ref.k_dpp_subset_probabilities(features @ features.T, K)


def _assert_exact(samples: np.ndarray, law: dict[tuple[int, ...], float]) -> None:
    assert_valid_samples(samples, N, K)
    assert_subset_distribution(samples, law)


def test_numpy_baseline_is_exact(tiny_kernel) -> None:
    features, law = tiny_kernel
    sampler = NumpyKDPP(features)
    rng = np.random.default_rng(SEED)
    _assert_exact(np.stack([sampler.sample(K, rng) for _ in range(NUM_SAMPLES)]), law)


def test_numpy_dense_baseline_is_exact(tiny_kernel) -> None:
    features, law = tiny_kernel
    sampler = NumpyKDPP.from_dense(features @ features.T)
    rng = np.random.default_rng(SEED + 1)
    _assert_exact(np.stack([sampler.sample(K, rng) for _ in range(NUM_SAMPLES)]), law)


@needs_torch
def test_torch_baseline_is_exact(tiny_kernel) -> None:
    features, law = tiny_kernel
    sampler = TorchKDPP(features)
    # One sample per call is slow in torch (per-op overhead), so fewer samples; cells with a
    # small expected count are pooled by chisquare_subsets.
    samples = np.stack([sampler.sample(K, seed).numpy() for seed in range(NUM_SAMPLES // 4)])
    _assert_exact(samples, law)


@needs_torch
def test_torch_batched_baseline_is_exact(tiny_kernel) -> None:
    features, law = tiny_kernel
    sampler = TorchKDPP(features)
    _assert_exact(sampler.sample_batch(K, NUM_SAMPLES, seed=SEED).numpy(), law)


def test_esp_table_handles_extreme_spectra() -> None:
    """Eigenvalues from 1e-12 to 1e12: no overflow or NaN; k = rank keeps every eigenvector."""
    lam = np.logspace(-12, 12, 25)
    table = esp_acceptance_table(lam, lam.size)
    assert np.all(np.isfinite(table)) and np.all((table >= 0) & (table <= 1))
    # With k = r every eigenvector must be kept: the last one with probability 1.
    assert table[lam.size, lam.size - 1] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="k must be in"):
        esp_acceptance_table(lam, lam.size + 1)


def test_ipdpp_kernel_dense_matches_the_paper() -> None:
    """S_ii = 1 - alpha p_i (P - p_i), S_ij = alpha p_i p_j, alpha = 1/N (paper Eq. 16)."""
    p = np.array([0.9, 0.5, 0.2, 1.0])
    s = ipdpp_kernel_dense(p)
    alpha, total = 1 / p.size, p.sum()
    assert s[0, 1] == pytest.approx(alpha * 0.9 * 0.5)
    assert s[2, 2] == pytest.approx(1 - alpha * 0.2 * (total - 0.2))
    assert np.linalg.eigvalsh(s).min() > -1e-12


def test_long_tailed_class_sizes() -> None:
    sizes = class_sizes(LongTailShape("ImageNet-LT-shaped", 1000, 1280, 5, 50))
    assert sizes[0] == 1280 and sizes[-1] == 5 and np.all(np.diff(sizes) <= 0)


def test_timing_helpers() -> None:
    calls: list[int] = []
    result = measure(calls.append, repeats=3, min_time=0.0, budget=60.0)
    assert len(result.per_call) == 3 and calls == [0, 1, 2, 3]  # warm-up, then 3 fresh indices
    assert extrapolate([(1_000, 0.5)], 10_000) == pytest.approx(5.0)
    assert extrapolate([(1_000, 0.5)], 1_000) is None


def test_cuda_families_skip_cleanly_without_a_device() -> None:
    cuda = make_families("cuda", threads=1)
    assert {f.key for f in cuda} == {"ipdpp-cuda", "torch-cuda"}
    if importlib.util.find_spec("torch") is None:
        assert all(f.unavailable_reason() for f in cuda)
        return
    import torch

    if not torch.cuda.is_available():
        assert all("no CUDA device" in (f.unavailable_reason() or "") for f in cuda)


def test_compare_tiny_writes_table_json_and_plots(tmp_path) -> None:
    out = tmp_path / "results"
    assert compare.main(["--tiny", "--out", str(out), "--no-progress"]) == 0
    results = json.loads((out / "results.json").read_text())
    statuses = {(r["key"], r["kind"], r.get("k")): r["status"] for r in results["records"]}
    errors = [r for r in results["records"] if r["status"] == "error"]
    assert not errors, errors
    assert statuses[("numpy", "sample", 4)] == "ok"
    assert results["machine"]["cpu_model"] and results["threads"]["requested"] == 1
    if importlib.util.find_spec("dppy") is not None:
        assert statuses[("dppy-GS_bis", "sample", 4)] in ("ok", "skipped (>budget)")
    if importlib.util.find_spec("torch") is not None:
        assert statuses[("torch-batched", "batch", 4)] == "ok"
    # ipdpp itself: measured wherever its extension is built (always, after `pip install .`).
    expected = "ok" if importlib.util.find_spec("ipdpp._core") is not None else "unavailable"
    for method in ("sequential", "rejection", "auto"):
        assert statuses[(f"ipdpp-{method}", "sample", 4)] == expected
        assert statuses[(f"ipdpp-{method}", "batch", 4)] == expected
    if expected == "ok":
        modes = results["balanced"][0]["ipdpp"]["modes"]
        assert {mode: modes[mode]["status"] for mode in modes} == dict.fromkeys(modes, "ok")
    table = (out / "results.md").read_text()
    assert "## Per-sample time" in table and "| numpy |" in table
    assert "## balanced_subset" in table
    if importlib.util.find_spec("matplotlib") is not None:
        for name in ("per_sample_vs_n.png", "setup_vs_n.png", "batch_throughput.png"):
            assert (out / name).stat().st_size > 0

    # The report can be redrawn from the JSON alone.
    redraw = tmp_path / "redraw"
    assert report.main([str(out / "results.json"), "--out", str(redraw)]) == 0
    assert (redraw / "results.md").read_text() == table


def test_compare_rejects_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    # argparse exits with status 2 and names the offending option on stderr.
    for argv, option in ((["--n", "0"], "--n"), (["--device", "tpu"], "--device")):
        with pytest.raises(SystemExit) as exit_info:
            compare.main(argv)
        assert exit_info.value.code == 2
        assert f"argument {option}" in capsys.readouterr().err
