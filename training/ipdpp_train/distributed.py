"""Processes and devices: the runtime of one training process, and the few collectives the
pipeline needs under ``torchrun`` (DistributedDataParallel)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

__all__ = [
    "Runtime",
    "broadcast_object",
    "gather_with_grad",
    "setup_runtime",
    "sync_from_main",
    "teardown_runtime",
]


@dataclass(frozen=True)
class Runtime:
    """Where this process runs: device, rank among ``world_size`` processes, base seed."""

    device: torch.device
    rank: int = 0
    world_size: int = 1
    seed: int = 0
    progress: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


def setup_runtime(device: str, seed: int, threads: int | None, progress: bool) -> Runtime:
    """Pick the device, join the process group when started by torchrun, set threads.

    Under ``torchrun`` (``WORLD_SIZE`` > 1 in the environment) the process joins a process
    group: gloo on CPU, NCCL on CUDA, each rank on ``cuda:LOCAL_RANK``.

    Raises
    ------
    ValueError
        If CUDA is requested but not available (a run never silently falls back to the CPU).
    """
    if threads is not None:
        torch.set_num_threads(threads)
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"run.device = {device!r} but torch sees no CUDA device")
        if world_size > 1:
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        torch.cuda.set_device(torch.device(device))
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    return Runtime(torch.device(device), rank, world_size, seed, progress and rank == 0)


#: How long a finished rank waits for the others before leaving the process group anyway.
FINISH_TIMEOUT_S = 600.0
_finished_runs = [0]  # per process: which run's "finished" key to use in the store


def teardown_runtime(runtime: Runtime, *, finished: bool = True) -> None:
    """Leave the process group (if this run joined one).

    A gloo barrier returns on a rank once its peers have *entered* it, not once they have
    *left* it: a rank that closed its connections right after the last barrier could reset
    them while a slower peer (on a loaded machine) was still completing that barrier, and a
    connection failure that gloo meets in its event-loop thread cannot be caught there and
    aborts the process. So a rank that ``finished`` normally first counts itself done in the
    rendezvous store, which uses no gloo connection, and closes its connections only once every
    rank has counted itself (or after ``FINISH_TIMEOUT_S``); a failing run leaves at once.
    """
    if not (runtime.distributed and dist.is_initialized()):
        return
    if finished:
        _finished_runs[0] += 1
        key = f"ipdpp_train/finished/{_finished_runs[0]}"
        store = dist.distributed_c10d._get_default_store()
        store.add(key, 1)
        deadline = time.monotonic() + FINISH_TIMEOUT_S
        while store.add(key, 0) < runtime.world_size and time.monotonic() < deadline:
            time.sleep(0.05)
    dist.destroy_process_group()


def sync_from_main(module: nn.Module) -> None:
    """Copy rank 0's parameters and buffers to every rank.

    DDP keeps parameters in step, but each rank's last forward pass updates its own BatchNorm
    running statistics; evaluation and stage-2 scoring must see one model on every rank.
    """
    with torch.no_grad():
        for tensor in module.state_dict().values():
            dist.broadcast(tensor, src=0)


def broadcast_object(obj: Any, runtime: Runtime) -> Any:
    """Rank 0's ``obj`` (any picklable value) on every rank; identity without a process group."""
    if not runtime.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


class _GatherRows(torch.autograd.Function):
    """All-gather of equally sized row blocks whose backward returns each rank the sum, over
    all ranks, of the gradients that reached its own block (every rank's loss may depend on
    every block)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        ctx.rows = x.shape[0]
        return torch.cat(parts)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        grad = grad.contiguous()
        dist.all_reduce(grad)  # sum over ranks
        start = dist.get_rank() * ctx.rows
        return grad[start : start + ctx.rows]


def gather_with_grad(x: torch.Tensor, runtime: Runtime) -> torch.Tensor:
    """Concatenate every rank's ``x`` (rank order) along dim 0, keeping gradients.

    Ranks may hold different numbers of rows (they are padded for the exchange and cut back).
    A loss computed from the result on every rank, followed by DistributedDataParallel's
    gradient averaging, gives exactly the gradient of that loss on one process holding all
    rows: each rank's block receives the gradient of all W copies of the loss (W times the
    gradient of one), which the average divides by W again.

    Parameters
    ----------
    x : torch.Tensor
        (n_rank, ...) on the run's device.
    runtime : Runtime

    Returns
    -------
    torch.Tensor
        (sum of n_rank, ...); ``x`` itself without a process group.
    """
    if not runtime.distributed:
        return x
    counts = [torch.zeros(1, dtype=torch.int64, device=x.device) for _ in range(runtime.world_size)]
    dist.all_gather(counts, torch.tensor([x.shape[0]], dtype=torch.int64, device=x.device))
    sizes = [int(c.item()) for c in counts]
    most = max(sizes)
    padded = x
    if x.shape[0] < most:
        padded = torch.cat([x, x.new_zeros((most - x.shape[0], *x.shape[1:]))])
    gathered = _GatherRows.apply(padded)
    return torch.cat([gathered[r * most : r * most + n] for r, n in enumerate(sizes)])
