"""Sweep statistics on synthetic per-seed metrics, every expected number worked out by hand."""

from __future__ import annotations

import json
import math

import pytest

from ipdpp_train.aggregate import aggregate, load_sweep, mean_se, paired_difference
from ipdpp_train.config import Config, RunConfig
from ipdpp_train.sweep import aggregate_sweep, parse_seeds, seed_config

#: Student's t, 97.5 % quantile, 2 degrees of freedom (from a printed table).
T_975_2 = 4.302652729749462
GROUPS = ["many", "medium", "few"]


def _metrics(overall: float, per_class: list[float], seconds: float = 1.0) -> dict:
    many, medium, few = per_class
    return {"overall": overall, "many": many, "medium": medium, "few": few,
            "per_class": per_class, "groups": GROUPS, "seconds": seconds}  # fmt: skip


# Three seeds. ce: overall 50, 52, 54. "better": 55, 56, 60, differences 5, 4, 6 (mean 5,
# sd 1). "noisy": 49, 55, 55, differences -1, 3, 1 (mean 1, sd 2).
RUNS = {
    0: {"ce": _metrics(50, [90, 50, 10], 10), "better": _metrics(55, [90, 50, 25], 20),
        "noisy": _metrics(49, [80, 50, 17])},
    1: {"ce": _metrics(52, [92, 52, 12], 12), "better": _metrics(56, [90, 52, 26], 22),
        "noisy": _metrics(55, [95, 52, 18])},
    2: {"ce": _metrics(54, [94, 54, 14], 14), "better": _metrics(60, [94, 54, 32], 24),
        "noisy": _metrics(55, [95, 54, 16])},
}  # fmt: skip


def test_mean_and_standard_error_by_hand():
    s = aggregate(RUNS, "ce")
    assert s["seeds"] == [0, 1, 2] and s["methods"] == ["ce", "better", "noisy"]
    ce = s["accuracy"]["ce"]
    assert ce["overall"]["mean"] == pytest.approx(52.0)
    assert ce["overall"]["se"] == pytest.approx(2 / math.sqrt(3))  # sd 2 over 3 seeds
    assert ce["overall"]["values"] == [50, 52, 54]
    assert ce["per_class"][2]["mean"] == pytest.approx(12.0)
    assert ce["few"]["se"] == pytest.approx(2 / math.sqrt(3))
    assert s["seconds"]["better"]["mean"] == pytest.approx(22.0)
    assert s["seconds"]["better"]["se"] == pytest.approx(2 / math.sqrt(3))
    assert s["groups"] == GROUPS and "ce" not in s["differences"]


def test_a_resolved_and_an_unresolved_difference():
    s = aggregate(RUNS, "ce")
    better = s["differences"]["better"]["overall"]
    half = T_975_2 * 1 / math.sqrt(3)  # sd 1 over 3 seeds
    assert better["values"] == [5, 4, 6]
    assert better["mean"] == pytest.approx(5.0)
    assert (better["low"], better["high"]) == (pytest.approx(5 - half), pytest.approx(5 + half))
    assert better["resolved"] and better["low"] > 0
    noisy = s["differences"]["noisy"]["overall"]
    half = T_975_2 * 2 / math.sqrt(3)
    assert noisy["mean"] == pytest.approx(1.0)
    assert (noisy["low"], noisy["high"]) == (pytest.approx(1 - half), pytest.approx(1 + half))
    assert not noisy["resolved"] and noisy["low"] < 0 < noisy["high"]
    # Few-shot differences 15, 14, 18 (mean 47/3, sd 2.0817): resolved; per class likewise.
    few = s["differences"]["better"]["few"]
    assert few["mean"] == pytest.approx(47 / 3) and few["resolved"]
    assert s["differences"]["better"]["per_class"][2] == few
    # An identical class (many-shot of "better" and ce differ by 0, -2, 0) is not resolved.
    assert not s["differences"]["better"]["many"]["resolved"]


def test_the_interval_at_another_confidence_and_from_one_seed():
    d = paired_difference([55, 56, 60], [50, 52, 54], confidence=0.5)
    # 75 % quantile of t with 2 degrees of freedom: 0.8164966 (= sqrt(2/3)).
    assert d["high"] - d["mean"] == pytest.approx(math.sqrt(2 / 3) / math.sqrt(3))
    one = paired_difference([3.0], [1.0])
    assert one["mean"] == 2.0 and one["se"] is None and one["low"] is None
    assert not one["resolved"]
    assert mean_se([float("nan"), float("nan")])["mean"] is None  # a group without classes


def test_missing_methods_seeds_and_references_are_named():
    partial = {s: dict(m) for s, m in RUNS.items()}
    del partial[1]["noisy"]
    with pytest.raises(ValueError, match="seed 1 has no metrics for noisy"):
        aggregate(partial, "ce")
    with pytest.raises(ValueError, match="reference method 'lr'"):
        aggregate(RUNS, "lr")
    with pytest.raises(ValueError, match="confidence"):
        aggregate(RUNS, "ce", confidence=95)
    with pytest.raises(ValueError, match="no seeds"):
        aggregate({}, "ce", ["ce"])


def _write_sweep(directory, runs) -> None:
    for seed, by_method in runs.items():
        for method, payload in by_method.items():
            path = directory / f"seed-{seed}" / method / "metrics.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(payload))


def test_a_sweep_folder_is_aggregated_and_gaps_are_named(tmp_path):
    _write_sweep(tmp_path, RUNS)
    result = aggregate_sweep(tmp_path, reference="ce", methods=["ce", "better", "noisy"])
    assert result.summary == aggregate(RUNS, "ce")
    for name in ("sweep.md", "sweep.json", "sweep_accuracy.png", "sweep_per_class.png",
                 "sweep_differences.png"):  # fmt: skip
        assert (tmp_path / name).is_file(), name
    assert "| `better` | **+5.0 [+2.5, +7.5]** |" in result.table
    assert "| `noisy` | +1.0 [-4.0, +6.0] |" in result.table
    assert json.loads((tmp_path / "sweep.json").read_text())["reference"] == "ce"
    (tmp_path / "seed-2" / "noisy" / "metrics.json").unlink()
    with pytest.raises(ValueError, match=r"seed 2 has no metrics for noisy \(.*is missing\)"):
        load_sweep(tmp_path)
    with pytest.raises(ValueError, match="no run folder for seed"):
        load_sweep(tmp_path, seeds=[0, 7])
    with pytest.raises(ValueError, match="holds no seed-S"):
        load_sweep(tmp_path / "seed-0")


def test_seed_lists():
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert parse_seeds("3,0-1, 7") == [0, 1, 3, 7]
    for bad in ("", "a", "4-2", "-1", "1-"):
        with pytest.raises(ValueError, match="--seeds"):
            parse_seeds(bad)


def test_each_seed_gets_its_own_resumed_run_folder(tmp_path):
    base = Config(run=RunConfig(name="s", from_stage1="old/seed-{seed}/ce", threads=None))
    one = seed_config(base, 3, tmp_path / "s", jobs=2).run
    assert (one.out_dir, one.name, one.seed) == (str(tmp_path / "s"), "seed-3", 3)
    assert one.resume and one.from_stage1 == "old/seed-3/ce"
    assert not one.progress and one.threads is not None and one.threads >= 1
    assert seed_config(base, 3, tmp_path, jobs=1).run.threads is None
