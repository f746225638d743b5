"""End-to-end runs of training/: every method, resume, DDP under torchrun, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from _training import K_PER_CLASS, tiny_table, write_tiny_npz

import ipdpp
import ipdpp_train
from ipdpp_train.cli import main
from ipdpp_train.config import Config
from ipdpp_train.config_io import config_from_dict, to_toml
from ipdpp_train.pipeline import run_experiment

COUNTS = (16, 10, 6, 4)  # n_max 16, imbalance factor 4, four classes


@pytest.fixture(scope="module")
def tiny_npz(tmp_path_factory) -> Path:
    return write_tiny_npz(tmp_path_factory.mktemp("data") / "tiny.npz")


def tiny_config(npz: Path, out: Path, **run) -> Config:
    return config_from_dict(tiny_table(npz, out, **run))


def test_every_method_end_to_end(tiny_npz, tmp_path):
    result = run_experiment(tiny_config(tiny_npz, tmp_path))
    assert list(result.metrics) == ["ce", "random", "paper", "exact", "linear_probe"]
    for metrics in result.metrics.values():
        assert 0 <= metrics.overall <= 100 and len(metrics.per_class) == 4
    # Sizes 16, 10, 6, 4: the standard 100 / 20 would make all four few-shot, so thresholds are
    # derived (16 ... 4 cut in thirds on a log scale: many > 10, few < 6) and the table says so.
    assert result.metrics["ce"].groups == ("many", "medium", "medium", "few")
    assert "would leave the many and medium group(s) empty" in result.table
    assert "| BNS + IP-DPP, exact k-DPP |" in result.table
    run_dir = tmp_path / "tiny"
    expected_files = (
        "results.md",
        "results.json",
        "per_class_accuracy.png",
        "class_counts.png",
        "config.toml",
        "stage1/log.csv",
        "exact/checkpoint.pt",
        "ce/metrics.json",
    )
    for name in expected_files:
        assert (run_dir / name).is_file(), name
    expected_subset = sum(min(K_PER_CLASS, n) for n in COUNTS)
    for method in ("random", "paper", "exact"):
        log = json.loads((run_dir / method / "log.json").read_text())
        rounds = [r for r in log if "subset" in r]
        assert [r["epoch"] for r in rounds] == [1, 3]  # re-sampled every 2 epochs
        assert all(r["subset"] == expected_subset for r in rounds)
    # Validation (4 unused images per class, never the test set) is scored during training:
    # every epoch of these short phases (about ten passes per phase), and in results.json.
    for method, key in (("ce", "val_overall"), ("stage1", "val_knn_overall"),
                        ("exact", "val_few"), ("linear_probe", "val_overall")):  # fmt: skip
        log = json.loads((run_dir / method / "log.json").read_text())
        assert all(0 <= r[key] <= 100 for r in log), (method, key)
    results = json.loads((run_dir / "results.json").read_text())
    assert results["validation_images"] == 16
    assert set(results["validation"]) == set(result.metrics)
    assert "validation: 4 unused training images per class" in result.table
    # The logged resolved config reads back to the same config.
    assert (run_dir / "config.toml").read_text() == to_toml(tiny_config(tiny_npz, tmp_path))


class _Interrupt(Exception):
    pass


def _interrupt_at(phase: str, epoch: int):
    def callback(name: str, done: int) -> None:
        if name == phase and done == epoch:
            raise _Interrupt(f"{name} after epoch {done}")

    return callback


def test_resume_after_interruption_gives_the_same_weights(tiny_npz, tmp_path):
    methods = {"methods": ["exact", "linear_probe"]}
    straight = run_experiment(tiny_config(tiny_npz, tmp_path / "a", **methods))
    interrupted = tiny_config(tiny_npz, tmp_path / "b", **methods)
    with pytest.raises(_Interrupt):
        run_experiment(interrupted, callback=_interrupt_at("stage1 (BNS)", 1))
    resumed_cfg = tiny_config(tiny_npz, tmp_path / "b", resume=True, **methods)
    # Second interruption inside stage 2, between two re-sampling rounds, so the saved subset
    # (not a fresh draw) must carry the next epoch.
    with pytest.raises(_Interrupt):
        run_experiment(resumed_cfg, callback=_interrupt_at("stage2 (exact)", 1))
    resumed = run_experiment(resumed_cfg)
    for method in ("exact", "linear_probe"):
        a = straight.models[method].state_dict()
        b = resumed.models[method].state_dict()
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), (method, key)
    assert straight.metrics["exact"] == resumed.metrics["exact"]


def test_resume_refuses_a_changed_config(tiny_npz, tmp_path):
    run_experiment(tiny_config(tiny_npz, tmp_path, methods=["ce"]))
    changed = tiny_table(tiny_npz, tmp_path, methods=["ce"], resume=True)
    changed["ce"]["lr"] = 0.5
    with pytest.raises(ValueError, match="ce.lr"):
        run_experiment(config_from_dict(changed))


def test_ddp_two_processes_under_torchrun(tiny_npz, tmp_path):
    config_path = tmp_path / "tiny.toml"
    table = tiny_table(tiny_npz, tmp_path, methods=["ce", "exact", "linear_probe"])
    config_path.write_text(to_toml(config_from_dict(table)))
    # The children must import the same training and ipdpp packages as this test process.
    # (In this order: the pipeline's root first, so that a checkout shadows an installed copy.)
    roots = dict.fromkeys(str(Path(m.__file__).parents[1]) for m in (ipdpp_train, ipdpp))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*roots, os.environ.get("PYTHONPATH", "")])}
    env.update(OMP_NUM_THREADS="1", MASTER_ADDR="127.0.0.1")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", "2", "-m", "ipdpp_train",
               "--config", str(config_path)]  # fmt: skip
    done = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| CE on the full LT set |" in done.stdout
    results = json.loads((tmp_path / "tiny" / "results.json").read_text())
    assert results["world_size"] == 2
    assert set(results["methods"]) == {"ce", "exact", "linear_probe"}


def test_cli_prints_the_table(tiny_npz, tmp_path, capsys):
    config_path = tmp_path / "tiny.toml"
    config_path.write_text(to_toml(tiny_config(tiny_npz, tmp_path)))
    main(["--config", str(config_path), "--methods", "ce,random", "--name", "cli",
          "--set", "ce.epochs=1", "--set", "stage2.epochs=1"])  # fmt: skip
    out = capsys.readouterr().out
    assert "| method | overall | many | medium | few |" in out
    assert "| BNS + random class-balanced undersampling |" in out
    assert json.loads((tmp_path / "cli" / "config.json").read_text())["ce"]["epochs"] == 1


def test_cli_errors_name_the_problem(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--set", "stage1.nope=1"])
    assert exc.value.code == 2
    assert "stage1.nope" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--methods", "ce,magic"])
    assert "run.methods" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["--set", "data.source=\"fashion-mnist\"", "--data-dir", str(tmp_path),
              "--out", str(tmp_path), "--no-progress"])  # fmt: skip
    assert exc.value.code == 2
    assert "dataset-fashion-mnist" in capsys.readouterr().err


def test_classifier_only_finetune_keeps_the_encoder(tiny_npz, tmp_path):
    table = tiny_table(tiny_npz, tmp_path, methods=["exact"])
    table["stage2"]["finetune"] = "classifier"
    result = run_experiment(config_from_dict(table))
    stage1 = torch.load(tmp_path / "tiny" / "stage1" / "checkpoint.pt", weights_only=False)
    trained = result.models["exact"].encoder.inner.state_dict()  # frozen, BatchNorm included
    for key, value in stage1["modules"]["encoder"].items():
        assert torch.equal(trained[key], value), key


def test_stage2_methods_are_paired_by_seed_and_round(tiny_npz, tmp_path, monkeypatch):
    # Every random stream of stage 2 (head, batch order, augmentation, subset seed) is keyed by
    # the training seed and the round, never by the method: given the same subsets, the random,
    # paper and exact methods must end with identical weights.
    def same_subset(labels, p, k, *, mode, alpha, seed):
        rng = np.random.default_rng(seed)  # depends on the round's seed only, not on mode
        return np.concatenate(
            [rng.permutation(np.flatnonzero(labels == c))[:k] for c in np.unique(labels)]
        )

    monkeypatch.setattr(ipdpp, "balanced_subset", same_subset)
    result = run_experiment(tiny_config(tiny_npz, tmp_path, methods=["random", "paper", "exact"]))
    weights = [result.models[m].state_dict() for m in ("random", "paper", "exact")]
    for other in weights[1:]:
        assert all(torch.equal(weights[0][k], other[k]) for k in weights[0])
    assert result.metrics["random"] == result.metrics["exact"]


def test_own_data_config_uses_the_users_npz_as_given(tiny_npz, tmp_path, capsys):
    config = Path(__file__).parents[1] / "configs" / "own_data.toml"
    short = [f"{s}.steps=2" for s in ("stage1", "stage2", "ce", "linear_probe")]
    main(["--config", str(config), "--data-dir", str(tiny_npz), "--out", str(tmp_path),
          "--no-progress", *[a for s in short for a in ("--set", s)]])  # fmt: skip
    out = capsys.readouterr().out
    # 24 images per class as given: 2 (10 %) held out for validation, none re-cut.
    assert "Training images per class (head to tail): 22, 22, 22, 22" in out
    assert "as given: 96 training images" in out and "images resized to 16x16" in out
    results = json.loads((tmp_path / "own-data" / "results.json").read_text())
    assert results["validation_images"] == 8 and results["threads"] == 1
