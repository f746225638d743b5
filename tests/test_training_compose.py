"""Composed runs: stage 2 from an earlier run's encoder, evaluation alone, seed sweeps."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from _training import tiny_table, write_tiny_npz

from ipdpp_train.aggregate import aggregate, load_sweep
from ipdpp_train.cli import main
from ipdpp_train.config_io import config_from_dict, to_toml
from ipdpp_train.pipeline import run_experiment
from ipdpp_train.sweep import run_sweep


@pytest.fixture(scope="module")
def tiny_npz(tmp_path_factory) -> Path:
    return write_tiny_npz(tmp_path_factory.mktemp("data") / "tiny.npz")


@pytest.fixture(scope="module")
def trained(tiny_npz, tmp_path_factory):
    """A finished run of CE and exact IP-DPP (stage 1 trained in it); never modified."""
    out = tmp_path_factory.mktemp("trained")
    return run_experiment(config_from_dict(tiny_table(tiny_npz, out, methods=["ce", "exact"])))


def _equal_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _mtimes(directory: Path) -> dict[str, int]:
    return {str(p.relative_to(directory)): p.stat().st_mtime_ns
            for p in directory.rglob("checkpoint.pt")}  # fmt: skip


def test_stage2_from_a_reused_encoder_equals_training_it(tiny_npz, tmp_path, trained):
    table = tiny_table(tiny_npz, tmp_path, methods=["exact"], stage="stage2",
                       from_stage1=str(trained.directory))  # fmt: skip
    table["stage1"]["epochs"] = 7  # stage-1 settings belong to the run that trained it
    reused = run_experiment(config_from_dict(table))
    assert _equal_weights(reused.models["exact"], trained.models["exact"])
    assert reused.metrics["exact"] == trained.metrics["exact"]
    assert not (reused.directory / "stage1").exists()
    results = json.loads((reused.directory / "results.json").read_text())
    source = results["stage1_from"]
    assert source["checkpoint"] == str(trained.directory / "stage1" / "checkpoint.pt")
    assert source["stage1"]["epochs"] == 2 and results["stage1_seconds"] > 0
    assert "Stage 1 not trained here" in reused.table
    # The CE model's encoder, named by its phase folder: a linear probe on CE features.
    table = tiny_table(tiny_npz, tmp_path, name="on-ce", methods=["linear_probe"],
                       from_stage1=str(trained.directory / "ce"))  # fmt: skip
    probe = run_experiment(config_from_dict(table)).models["linear_probe"]
    assert _equal_weights(probe[0], trained.models["ce"].encoder)


def test_a_stage1_source_that_does_not_fit_is_refused(tiny_npz, tmp_path, trained):
    def run(**changes):
        table = tiny_table(tiny_npz, tmp_path, methods=["exact"], **changes)
        table["model"]["width"] = 8
        table["data"]["imbalance_factor"] = 2.0
        run_experiment(config_from_dict(table))

    with pytest.raises(ValueError, match=r"data\.imbalance_factor: 4\.0 there, 2\.0 here; "
                                         r"model\.width: 4 there, 8 here"):  # fmt: skip
        run(from_stage1=str(trained.directory))
    with pytest.raises(ValueError, match="holds no finished stage-1 checkpoint"):
        run(from_stage1=str(tmp_path))
    # --stage stage2 never trains stage 1: without a source it needs this run's own.
    with pytest.raises(ValueError, match="holds no finished stage-1 checkpoint"):
        run(stage="stage2")
    with pytest.raises(ValueError, match="ce is trained from scratch"):
        run_experiment(config_from_dict(tiny_table(tiny_npz, tmp_path, stage="stage2")))
    assert not (tmp_path / "tiny").exists()  # refused before anything was written


def test_eval_alone_loads_every_phase_and_rewrites_the_report(tiny_npz, tmp_path, trained, capsys):
    run_dir = tmp_path / "tiny"
    shutil.copytree(trained.directory, run_dir)
    before = _mtimes(run_dir)
    (run_dir / "results.md").unlink()
    config = run_dir / "config.toml"

    def no_training(phase: str, epoch: int) -> None:
        raise AssertionError(f"{phase} trained epoch {epoch}")

    table = tiny_table(tiny_npz, tmp_path, methods=["ce", "exact"], stage="eval")
    result = run_experiment(config_from_dict(table), callback=no_training)
    assert result.metrics == trained.metrics
    assert _mtimes(run_dir) == before
    assert (run_dir / "results.md").read_text() == trained.table
    assert json.loads((run_dir / "config.json").read_text())["run"]["stage"] == "all"
    # A method never trained in the run is an error, not a silent training.
    with pytest.raises(SystemExit):
        main(["--config", str(config), "--out", str(tmp_path), "--name", "tiny",
              "--stage", "eval", "--methods", "random"])  # fmt: skip
    assert "random/checkpoint.pt is missing: evaluation alone" in capsys.readouterr().err
    assert _mtimes(run_dir) == before
    # Stage 2 alone on the same run: cRT on the run's own CE model, which is loaded, not trained.
    table = tiny_table(tiny_npz, tmp_path, methods=["ce+crt"], stage="stage2")
    phases: set[str] = set()
    crt = run_experiment(config_from_dict(table), callback=lambda phase, _: phases.add(phase))
    assert len(phases) == 1 and "cross-entropy" not in phases and "stage1 (BNS)" not in phases
    assert _equal_weights(crt.models["ce+crt"].encoder.inner, trained.models["ce"].encoder)
    after = _mtimes(run_dir)
    assert {k: after[k] for k in before} == before and "ce+crt/checkpoint.pt" in after


def test_a_sweep_aggregates_its_seeds_and_resumes(tiny_npz, tmp_path, capsys):
    table = tiny_table(tiny_npz, tmp_path, name="sweep", methods=["ce", "exact"])
    result = run_sweep(config_from_dict(table), [0, 1])
    sweep_dir = tmp_path / "sweep"
    runs, _ = load_sweep(sweep_dir)
    assert result.summary == aggregate(runs, "ce")
    assert result.summary["seeds"] == [0, 1] and list(runs[1]) == ["ce", "exact"]
    for name in ("sweep.md", "sweep.json", "sweep_accuracy.png", "sweep_per_class.png",
                 "sweep_differences.png", "seed-1/exact/checkpoint.pt"):  # fmt: skip
        assert (sweep_dir / name).is_file(), name
    seed_configs = [json.loads((sweep_dir / f"seed-{s}" / "config.json").read_text())["run"]
                    for s in (0, 1)]  # fmt: skip
    assert [c["seed"] for c in seed_configs] == [0, 1]
    assert runs[0]["exact"] != runs[1]["exact"]  # the seeds differ
    # Resumed with one more method, two seeds at once in worker processes: only the new
    # method trains (every finished checkpoint stays as it was), and the report grows.
    before = _mtimes(sweep_dir)
    config = tmp_path / "sweep.toml"
    config.write_text(to_toml(config_from_dict(table)))
    main(["sweep", "--config", str(config), "--seeds", "0-1", "--jobs", "2",
          "--methods", "ce,exact,random"])  # fmt: skip
    after = _mtimes(sweep_dir)
    assert {k: after[k] for k in before} == before
    assert sorted(set(after) - set(before)) == ["seed-0/random/checkpoint.pt",
                                                 "seed-1/random/checkpoint.pt"]  # fmt: skip
    out = capsys.readouterr().out
    assert "| method − ce | overall | many | medium | few |" in out and "| `random` |" in out
    summary = json.loads((sweep_dir / "sweep.json").read_text())
    assert summary["methods"] == ["ce", "exact", "random"] and summary["jobs"] == 2
    assert (
        summary["differences"]["exact"]["overall"]
        == result.summary["differences"]["exact"]["overall"]
    )
    main(["aggregate", str(sweep_dir), "--methods", "ce,random", "--reference", "random"])
    out = capsys.readouterr().out
    assert "| method − random |" in out and "2 seed(s) at a time" in out
    again = json.loads((sweep_dir / "sweep.json").read_text())
    assert again["methods"] == ["ce", "random"] and again["command"] == summary["command"]
