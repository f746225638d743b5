"""Stage 1 under DistributedDataParallel: two processes optimise the loss of one process that
holds both batches (negatives and partners gathered across ranks, gradients kept)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import ipdpp
import ipdpp_train
from ipdpp_train.config import Stage1Config
from ipdpp_train.distributed import Runtime
from ipdpp_train.losses import bns_loss
from ipdpp_train.stage1 import bns_objective

# Each rank wraps the same small projection network in DDP, projects its share of one global
# batch (both views in one forward pass, as stage 1 does) and back-propagates bns_objective;
# it saves its loss and its (DDP-averaged) gradients.
_WORKER = r"""
import sys
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from ipdpp_train.config import Stage1Config
from ipdpp_train.distributed import Runtime
from ipdpp_train.stage1 import bns_objective

rank, rendezvous, data_path, out_path = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
torch.set_num_threads(1)
dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=2)
data = torch.load(data_path, weights_only=False)
runtime = Runtime(torch.device("cpu"), rank, 2)
results = {}
for loss in ("paper", "code"):
    net = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 5))
    net.load_state_dict(data["state"])
    model = DistributedDataParallel(net)
    rows = data["split"][rank]
    x1, x2, y = data["x1"][rows], data["x2"][rows], data["y"][rows]
    q, v = model(torch.cat([x1, x2])).chunk(2)
    value = bns_objective(q, v, y, Stage1Config(partners=2, temperature=0.5, loss=loss), runtime)
    value.backward()
    results[loss] = (value.detach(), [p.grad.clone() for p in net.parameters()])
torch.save(results, out_path)
dist.destroy_process_group()
"""


def _network() -> torch.nn.Module:
    """The workers build the same architecture and load this network's initial weights."""
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 5))


def _batch() -> dict:
    g = torch.Generator().manual_seed(1)
    labels = torch.tensor([0, 0, 0, 1, 1, 2, 0, 1, 1, 2, 2, 2, 3])  # classes on both ranks
    return {
        "x1": torch.randn(len(labels), 6, generator=g),
        "x2": torch.randn(len(labels), 6, generator=g),
        "y": labels,
        # Unequal shares (7 and 6 rows) exercise the padding of the exchange.
        "split": [torch.arange(0, 7), torch.arange(7, 13)],
    }


def _single_process(batch: dict, loss: str) -> tuple[torch.Tensor, list[torch.Tensor]]:
    net = _network()
    q, v = net(torch.cat([batch["x1"], batch["x2"]])).chunk(2)
    config = Stage1Config(partners=2, temperature=0.5, loss=loss)
    value = bns_objective(q, v, batch["y"], config, Runtime(torch.device("cpu")))
    value.backward()
    return value.detach(), [p.grad.clone() for p in net.parameters()]


def test_two_processes_optimise_the_loss_of_the_doubled_batch(tmp_path):
    batch = _batch()
    torch.save({**batch, "state": _network().state_dict()}, tmp_path / "data.pt")
    script = tmp_path / "worker.py"
    script.write_text(_WORKER)
    roots = dict.fromkeys(str(Path(m.__file__).parents[1]) for m in (ipdpp_train, ipdpp))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*roots, os.environ.get("PYTHONPATH", "")])}
    env["OMP_NUM_THREADS"] = "1"
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                str(script),
                str(rank),
                str(tmp_path / "rendezvous"),
                str(tmp_path / "data.pt"),
                str(tmp_path / f"rank{rank}.pt"),
            ],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for rank in range(2)
    ]
    for worker in workers:
        _, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err[-3000:]
    for loss in ("paper", "code"):
        expected_value, expected_grads = _single_process(batch, loss)
        for rank in range(2):
            value, grads = torch.load(tmp_path / f"rank{rank}.pt", weights_only=False)[loss]
            torch.testing.assert_close(value, expected_value, rtol=1e-5, atol=1e-6)
            for got, want in zip(grads, expected_grads):
                torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)
    # What each process would compute from its own batch alone is a different loss (so the test
    # can tell the two apart): rank 0 alone sees no class-3 image and few of classes 1 and 2.
    net = _network()
    own = batch["split"][0]
    q, v = net(torch.cat([batch["x1"][own], batch["x2"][own]])).chunk(2)
    local = bns_loss(q, v, batch["y"][own], 2, 0.5)
    assert not torch.isclose(local.detach(), _single_process(batch, "paper")[0], rtol=1e-3)


@pytest.mark.parametrize("rows", [0, 3])
def test_gather_is_the_identity_without_a_process_group(rows):
    from ipdpp_train.distributed import gather_with_grad

    x = torch.randn(rows, 4, requires_grad=True)
    assert gather_with_grad(x, Runtime(torch.device("cpu"))) is x
