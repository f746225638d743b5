"""The benchmark harness at tiny sizes, so that it cannot rot, and its baselines' exactness.

No timing is asserted: a benchmark's numbers depend on the machine. What is asserted is that the
comparison command runs the pytest-benchmark suite end to end (every sample it draws checked)
and renders its JSON into tables and plots, that the harness's budget rules size the rounds as
documented, and that the numpy and PyTorch baselines ipdpp is compared with are exact k-DPP
samplers (chi-square against enumeration), so that the comparison is between correct
implementations.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from _stats import assert_subset_distribution, assert_valid_samples

from ipdpp import _reference as ref

# benchmarks/ is a development tool run from the checkout, not installed. Appended, not
# prepended: the checkout's ipdpp/ (sources without the compiled extension) must not shadow the
# built package.
ROOT = Path(__file__).resolve().parents[1]
sys.path.append(str(ROOT))

from benchmarks import compare, report  # noqa: E402
from benchmarks.backends import make_families  # noqa: E402
from benchmarks.balanced import LongTailShape, class_loop, class_sizes, ipdpp_kernel_dense  # noqa: E402
from benchmarks.baselines import NumpyKDPP, TorchKDPP, esp_acceptance_table  # noqa: E402
from benchmarks.suite import check_samples, extrapolate, measure  # noqa: E402

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


def test_long_tailed_class_sizes_and_loop_subset() -> None:
    shape = LongTailShape("ImageNet-LT-shaped", 1000, 1280, 5, 50)
    sizes = class_sizes(shape)
    assert sizes[0] == 1280 and sizes[-1] == 5 and np.all(np.diff(sizes) <= 0)
    labels, p = shape.problem(seed=0)
    assert np.array_equal(np.bincount(labels), sizes) and np.all((p > 0) & (p < 1))
    # 581 classes need sampling; 10 of them stand for 58.1 classes each.
    _, info = class_loop(labels, p, shape.k, "numpy", max_classes=10, seed=0)
    assert info == {
        "scale": 58.1,
        "classes_timed": 10,
        "classes_sampled": 581,
        "extrapolated": True,
    }


def test_check_samples_rejects_invalid_draws() -> None:
    assert check_samples(np.array([0, 3, 5]), 6, 3, None) is None
    assert check_samples(np.array([[0, 3], [1, 2]]), 4, 2, 2) is None
    assert check_samples(np.array([0, 3, 3]), 6, 3, None) == "repeated item in a sample"
    assert check_samples(np.array([0, 6, 3]), 6, 3, None) == "index out of range"
    assert check_samples(np.array([0, 1]), 6, 3, None) == "shape (2,), expected (3,)"


class _FakeBenchmark:
    """The part of pytest-benchmark's fixture that :func:`measure` uses, recording the plan."""

    disabled = False

    def pedantic(self, target: Callable[[], Any], rounds: int = 1, iterations: int = 1) -> Any:
        self.plan = (rounds, iterations)
        results = [target() for _ in range(rounds * iterations)]
        self.stats = type("Metadata", (), {"stats": type("Stats", (), {"median": 0.5})})
        return results[-1]


def test_measure_sizes_rounds_by_budget_and_min_time() -> None:
    calls = iter(range(100))
    fake = _FakeBenchmark()
    result, median = measure(fake, lambda: next(calls), repeats=3, min_time=0.0, budget=60.0)
    assert fake.plan == (3, 1) and result == 3 and median == 0.5  # warm-up call 0, then 1..3
    # Predicted 10 s per call with a 25 s budget: two rounds fit; no warm-up was asked for.
    measure(fake, lambda: None, repeats=5, min_time=0.0, budget=25.0, warmup=False, predicted=10)
    assert fake.plan == (2, 1)
    # Calls of 1 ms looped to last 10 ms per round.
    measure(fake, lambda: None, repeats=5, min_time=0.01, budget=60, warmup=False, predicted=1e-3)
    assert fake.plan == (5, 10)
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


def test_compare_tiny_writes_table_json_and_plots(tmp_path: Path) -> None:
    out = tmp_path / "results"
    # A process of its own, as from the command line: the thread variables are set before numpy
    # loads, and the checkout's place on sys.path is the command's own.
    command = [sys.executable, "-m", "benchmarks.compare", "--tiny", "--out", str(out)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    raw = json.loads((out / "results.json").read_text())
    assert raw["benchmarks"] and raw["ipdpp"]["settings"]["preset"] == "tiny"
    run = report.load(out / "results.json")
    statuses = {(r["key"], r["kind"], r.get("k")): r["status"] for r in run["records"]}
    assert not [r for r in run["records"] if r["status"] == "error"]
    assert statuses[("numpy", "sample", 4)] == "ok"
    assert run["machine"]["cpu_model"] and run["threads"]["requested"] == 1
    if importlib.util.find_spec("dppy") is not None:
        assert statuses[("dppy-GS_bis", "sample", 4)] in ("ok", "skipped (>budget)")
    if importlib.util.find_spec("torch") is not None:
        assert statuses[("torch-batched", "batch", 4)] == "ok"
    for method in ("sequential", "rejection", "columns", "auto"):
        assert statuses[(f"ipdpp-{method}", "sample", 4)] == "ok"
        assert statuses[(f"ipdpp-{method}", "batch", 4)] == "ok"
    modes = run["balanced"][0]["modes"]
    assert {key: entry["status"] for key, entry in modes.items()} == {
        f"ipdpp-{mode}": "ok" for mode in ("exact", "paper", "random", "greedy")
    }
    assert run["balanced"][0]["loops"]["numpy"]["status"] == "ok"
    table = (out / "results.md").read_text()
    assert "## Per-sample time" in table and "| numpy |" in table
    assert "### Speed-up of ipdpp rejection" in table and "## balanced_subset" in table
    if importlib.util.find_spec("matplotlib") is not None:
        for name in ("per_sample_vs_n.png", "setup_vs_n.png", "batch_throughput.png"):
            assert (out / name).stat().st_size > 0

    # The report can be redrawn from the JSON alone.
    redraw = tmp_path / "redraw"
    assert report.main([str(out / "results.json"), str(redraw)]) == 0
    assert (redraw / "results.md").read_text() == table


def test_compare_rejects_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    # argparse exits with status 2 and names the offending option on stderr.
    for argv, option in ((["--n", "0"], "--n"), (["--device", "tpu"], "--device")):
        with pytest.raises(SystemExit) as exit_info:
            compare.main(argv)
        assert exit_info.value.code == 2
        assert f"argument {option}" in capsys.readouterr().err


def test_rejection_batches_reports_per_sample_times() -> None:
    from benchmarks import rejection_batches

    for method in ("rejection", "columns"):
        args = ["--n", "500", "--d", "8", "--k", "3", "--method", method, "--first-k1"]
        result = rejection_batches.main([*args, "--warmup", "2", "--batch", "4", "--rounds", "2"])
        assert result["method"] == method and result["k"] == 3
        assert 0 < result["per_sample_ms_min"] <= result["per_sample_ms_median"]
