"""Runs that survive being killed or a full disk: atomic files and bit-identical resume."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from _training import tiny_table, write_tiny_npz

import ipdpp
import ipdpp_train
from ipdpp_train import checkpoint as checkpoint_module
from ipdpp_train.checkpoint import CheckpointWriteError, save_atomic
from ipdpp_train.cli import main
from ipdpp_train.config_io import config_from_dict, to_toml
from ipdpp_train.pipeline import run_experiment

# The child replaces os.write / os.replace (which every file of a run goes through, see
# ipdpp_train.checkpoint) by versions that SIGKILL the process at the chosen call: after writing
# a fraction of the bytes of that write, or just before or just after that rename.
_CHILD = r"""
import os, signal, sys
config_path, kind, target, fraction = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
real_write, real_replace, calls = os.write, os.replace, {"write": 0, "replace": 0}

def write(fd, data):
    calls["write"] += 1
    if kind == "write" and calls["write"] == target:
        real_write(fd, bytes(data[: int(len(data) * fraction)]))
        os.kill(os.getpid(), signal.SIGKILL)
    return real_write(fd, data)

def replace(src, dst):
    calls["replace"] += 1
    hit = calls["replace"] == target
    if kind == "before-rename" and hit:
        os.kill(os.getpid(), signal.SIGKILL)
    real_replace(src, dst)
    if kind == "after-rename" and hit:
        os.kill(os.getpid(), signal.SIGKILL)

os.write, os.replace = write, replace
from ipdpp_train.config_io import load_config
from ipdpp_train.pipeline import run_experiment
run_experiment(load_config(config_path))
"""

# (kind, call, fraction). A run of _table (below) writes, in order: config.toml, config.json,
# then per epoch checkpoint.pt, log.csv, log.json (stage 1: 2 epochs, stage 2: 3 epochs), then
# metrics.json, results.md, results.json and two plots: 22 files, one write call each.
KILL_POINTS = [
    ("write", 1, 0.5),  # the first config file, half written
    ("write", 3, 0.0),  # the first checkpoint, nothing written yet
    ("write", 6, 0.5),  # stage 1's last checkpoint, half written
    ("before-rename", 9, 0.0),  # stage 2's first checkpoint, complete but not yet in place
    ("write", 13, 0.9),  # a stage-2 log, mostly written
    ("after-rename", 15, 0.0),  # stage 2's last checkpoint in place, its logs not yet written
    ("write", 18, 0.5),  # metrics.json of the finished method
    ("write", 20, 0.3),  # results.json
]


def _table(npz: Path, out: Path, **run) -> dict:
    return tiny_table(npz, out, val_per_class=2, **{"name": "run", "methods": ["exact"], **run})


@pytest.fixture(scope="module")
def tiny_npz(tmp_path_factory) -> Path:
    return write_tiny_npz(tmp_path_factory.mktemp("data") / "tiny.npz")


def _env() -> dict[str, str]:
    roots = dict.fromkeys(str(Path(m.__file__).parents[1]) for m in (ipdpp_train, ipdpp))
    path = os.pathsep.join([*roots, os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}


def _assert_every_file_is_whole(directory: Path) -> None:
    for path in directory.rglob("*"):
        if path.name.startswith(".") or not path.is_file():
            continue
        if path.suffix == ".pt":
            saved = torch.load(path, weights_only=False)
            assert saved["epoch"] >= 1 and saved["history"], path
        elif path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".png":
            assert path.read_bytes().endswith(b"IEND\xaeB`\x82"), path


def test_sigkill_at_any_point_of_a_write_resumes_bit_identically(tiny_npz, tmp_path):
    straight = run_experiment(config_from_dict(_table(tiny_npz, tmp_path / "straight")))
    expected = straight.models["exact"].state_dict()
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    children = []
    for i, (kind, call, fraction) in enumerate(KILL_POINTS):
        config = tmp_path / f"kill{i}.toml"
        config.write_text(to_toml(config_from_dict(_table(tiny_npz, tmp_path / f"kill{i}"))))
        command = [sys.executable, str(script), str(config), kind, str(call), str(fraction)]
        children.append(subprocess.Popen(command, env=_env(), stderr=subprocess.PIPE, text=True))
    for i, child in enumerate(children):
        _, err = child.communicate(timeout=600)
        assert child.returncode == -signal.SIGKILL, (KILL_POINTS[i], err[-2000:])
    for i, point in enumerate(KILL_POINTS):
        run_dir = tmp_path / f"kill{i}" / "run"
        _assert_every_file_is_whole(run_dir)
        resumed = run_experiment(
            config_from_dict(_table(tiny_npz, tmp_path / f"kill{i}", resume=True))
        )
        state = resumed.models["exact"].state_dict()
        assert all(torch.equal(state[k], expected[k]) for k in expected), point
        assert resumed.metrics == straight.metrics, point
        _assert_every_file_is_whole(run_dir)
        for phase in ("stage1", "exact"):  # the logs match the checkpoints again
            saved = torch.load(run_dir / phase / "checkpoint.pt", weights_only=False)
            assert json.loads((run_dir / phase / "log.json").read_text()) == saved["history"]
        leftovers = [p.name for p in run_dir.rglob(".*") if p.is_file()]
        assert not leftovers, (point, leftovers)  # temporaries of the killed run are cleaned up


def _fail_after(limit: int, real=os.write):
    """os.write that fails with ENOSPC once ``limit`` bytes have gone out in this test."""
    sent = [0]

    def write(fd, data):
        if sent[0] + len(data) > limit:
            room = max(0, limit - sent[0])
            if room:
                sent[0] += real(fd, bytes(data[:room]))
                return room
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        sent[0] += len(data)
        return real(fd, data)

    return write


def test_full_disk_keeps_the_previous_checkpoint_and_says_so(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    save_atomic({"epoch": 1, "weights": torch.arange(10.0)}, path)
    before = path.read_bytes()
    monkeypatch.setattr(checkpoint_module.os, "write", _fail_after(100))
    with pytest.raises(CheckpointWriteError, match="No space left on device") as info:
        save_atomic({"epoch": 2, "weights": torch.zeros(10_000)}, path)
    assert info.value.errno == errno.ENOSPC
    assert "previous checkpoint.pt is intact" in str(info.value)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert torch.load(path, weights_only=False)["epoch"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]  # no temporary left


def test_full_disk_during_a_run_is_a_clear_error_and_resume_finishes(
    tiny_npz, tmp_path, monkeypatch, capsys
):
    table = _table(tiny_npz, tmp_path, methods=["ce"])
    config = tmp_path / "ce.toml"
    config.write_text(to_toml(config_from_dict(table)))
    # config.toml, config.json and epoch 1 (checkpoint and two logs) fit; epoch 2's does not.
    calls, real = [0], os.write

    def write(fd, data):
        calls[0] += 1
        if calls[0] == 6:  # epoch 2's checkpoint
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd, data)

    monkeypatch.setattr(checkpoint_module.os, "write", write)
    with pytest.raises(SystemExit) as exc:
        main(["--config", str(config)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "could not write" in err and "No space left on device" in err and "--resume" in err
    monkeypatch.undo()
    saved = torch.load(tmp_path / "run" / "ce" / "checkpoint.pt", weights_only=False)
    assert saved["epoch"] == 1
    resumed = run_experiment(config_from_dict(_table(tiny_npz, tmp_path, methods=["ce"],
                                                      resume=True)))  # fmt: skip
    straight = run_experiment(config_from_dict(_table(tiny_npz, tmp_path / "b", methods=["ce"])))
    a, b = resumed.models["ce"].state_dict(), straight.models["ce"].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_save_every_checkpoints_less_often_and_still_resumes(tiny_npz, tmp_path):
    class Stop(Exception):
        pass

    def stop_after_4(name: str, done: int) -> None:
        if name.startswith("stage2") and done == 3:
            raise Stop

    table = _table(tiny_npz, tmp_path, save_every=2)
    table["stage2"]["epochs"] = 4
    with pytest.raises(Stop):
        run_experiment(config_from_dict(table), callback=stop_after_4)
    saved = torch.load(tmp_path / "run" / "exact" / "checkpoint.pt", weights_only=False)
    assert saved["epoch"] == 2  # epochs 2 and 4 are saved; the interruption came after epoch 3
    table["run"]["resume"] = True
    resumed = run_experiment(config_from_dict(table))
    table["run"].update(resume=False, out_dir=str(tmp_path / "b"))
    straight = run_experiment(config_from_dict(table))
    a, b = resumed.models["exact"].state_dict(), straight.models["exact"].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
