"""What every training phase shares: devices and processes, seeds, optimisers and schedules,
atomic checkpoints with resume, per-epoch logs and progress bars."""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

__all__ = [
    "EpochCallback",
    "Phase",
    "Runtime",
    "derive_seed",
    "lr_at",
    "make_generator",
    "param_groups",
    "run_phase",
    "save_atomic",
    "setup_runtime",
    "teardown_runtime",
]

#: Called after every finished (and checkpointed) epoch with (phase name, epochs done).
EpochCallback = Callable[[str, int], None]


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


def teardown_runtime(runtime: Runtime) -> None:
    """Leave the process group (if this run joined one)."""
    if runtime.distributed and dist.is_initialized():
        dist.destroy_process_group()


def derive_seed(*keys: int | str) -> int:
    """A 63-bit seed mixed from integers and strings (stable across processes and runs)."""
    words = []
    for key in keys:
        if isinstance(key, str):
            words.extend(key.encode())
        else:
            words.append(int(key) & 0xFFFFFFFF)
    state = np.random.SeedSequence(words).generate_state(2, dtype=np.uint32)
    return int(state[0]) << 31 | int(state[1]) >> 1


def make_generator(runtime: Runtime, *keys: int | str) -> torch.Generator:
    """A torch.Generator on the run's device, seeded by (run seed, rank, keys)."""
    g = torch.Generator(device=runtime.device)
    g.manual_seed(derive_seed(runtime.seed, runtime.rank, *keys))
    return g


def param_groups(modules: Iterable[nn.Module], weight_decay: float) -> list[dict[str, Any]]:
    """Trainable parameters in two groups: weights with decay, biases and norm scales without
    (decaying a BatchNorm scale or a bias only shrinks the network's dynamic range)."""
    decay, no_decay = [], []
    for module in modules:
        for param in module.parameters():
            if param.requires_grad:
                (no_decay if param.ndim <= 1 else decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


def lr_at(
    base_lr: float, epoch: int, step: int, steps_per_epoch: int, warmup: int, total: int
) -> float:
    """Linear warm-up over ``warmup`` epochs, then half-cosine decay to 0 at ``total`` epochs
    (evaluated per step, so the schedule is a pure function of the position and resumes)."""
    t = epoch + step / max(1, steps_per_epoch)
    if t < warmup:
        return base_lr * (t + 1 / max(1, steps_per_epoch)) / warmup
    span = max(1e-12, total - warmup)
    return 0.5 * base_lr * (1 + math.cos(math.pi * min(1.0, (t - warmup) / span)))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def _replace_atomic(path: Path, write: Callable[[Path], Any]) -> None:
    """``write`` a temporary file, then rename it to ``path``: a crash never leaves it torn."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    write(tmp)
    os.replace(tmp, path)


def save_atomic(obj: Any, path: Path) -> None:
    """torch.save ``obj`` to ``path`` atomically (a crash never leaves a torn checkpoint)."""
    _replace_atomic(path, lambda tmp: torch.save(obj, tmp))


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    _replace_atomic(path, lambda tmp: tmp.write_text(text))


def write_logs(directory: Path, history: list[dict[str, Any]]) -> None:
    """log.csv (one row per epoch, union of keys) and log.json, both rewritten atomically."""
    keys: list[str] = []
    for record in history:
        keys.extend(k for k in record if k not in keys)
    lines = [",".join(keys)]
    for record in history:
        lines.append(",".join(_csv_cell(record.get(k, "")) for k in keys))
    write_text_atomic(directory / "log.csv", "\n".join(lines) + "\n")
    write_text_atomic(directory / "log.json", json.dumps(history, indent=1) + "\n")


def _csv_cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    text = str(value)
    if any(c in text for c in ',"\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


class _Progress:
    """tqdm when installed, else one line per epoch on stderr."""

    def __init__(self, name: str, start: int, total: int, enabled: bool) -> None:
        self.name, self.total, self.enabled, self.bar = name, total, enabled, None
        if enabled:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self.bar = tqdm(total=total, initial=start, desc=name, unit="epoch", leave=True)

    def update(self, epoch: int, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        shown = {k: v for k, v in record.items() if k in ("loss", "lr", "subset")}
        if self.bar is not None:
            self.bar.set_postfix(
                {k: f"{v:.4g}" if isinstance(v, float) else v for k, v in shown.items()}
            )
            self.bar.update(1)
        else:
            text = " ".join(
                f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in shown.items()
            )
            print(f"{self.name} epoch {epoch}/{self.total} {text}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@dataclass
class Phase:
    """One resumable training loop.

    Attributes
    ----------
    name : str
        Shown in progress bars and passed to callbacks.
    directory : pathlib.Path
        Holds checkpoint.pt, log.csv and log.json.
    epochs : int
        Total epochs.
    modules : dict of str to nn.Module
        Saved and restored by name (the unwrapped modules, not DDP wrappers).
    optimizer : torch.optim.Optimizer or None
    run_epoch : callable
        ``run_epoch(epoch) -> dict`` of metrics; must be a deterministic function of the epoch
        index and the restored state, so that a resumed run equals an uninterrupted one.
    get_state, set_state : callable
        Extra state to checkpoint (e.g. stage 2's current subset).
    """

    name: str
    directory: Path
    epochs: int
    modules: dict[str, nn.Module]
    optimizer: torch.optim.Optimizer | None
    run_epoch: Callable[[int], dict[str, Any]]
    get_state: Callable[[], dict[str, Any]] = field(default=lambda: {})
    set_state: Callable[[dict[str, Any]], None] = field(default=lambda state: None)


def run_phase(
    phase: Phase, runtime: Runtime, resume: bool, callback: EpochCallback | None = None
) -> list[dict[str, Any]]:
    """Run (or finish) a phase, checkpointing after every epoch; returns the per-epoch log.

    With ``resume`` and an existing checkpoint, training continues after the last saved epoch
    (a finished phase is only loaded). Without ``resume`` any old checkpoint is overwritten.
    """
    checkpoint = phase.directory / "checkpoint.pt"
    start, history = 0, []
    if resume and checkpoint.is_file():
        saved = torch.load(checkpoint, map_location=runtime.device, weights_only=False)
        if saved["epochs"] != phase.epochs:
            raise ValueError(
                f"{checkpoint} was written for {saved['epochs']} epochs but the config asks for "
                f"{phase.epochs}; start a fresh run instead of --resume"
            )
        for key, module in phase.modules.items():
            module.load_state_dict(saved["modules"][key])
        if phase.optimizer is not None and saved["optimizer"] is not None:
            phase.optimizer.load_state_dict(saved["optimizer"])
        phase.set_state(saved["state"])
        start, history = saved["epoch"], saved["history"]
    progress = _Progress(phase.name, start, phase.epochs, runtime.progress)
    try:
        for epoch in range(start, phase.epochs):
            began = time.perf_counter()
            record = {"epoch": epoch + 1, **phase.run_epoch(epoch)}
            record["seconds"] = time.perf_counter() - began
            history.append(record)
            if runtime.is_main:
                save_atomic(
                    {
                        "epoch": epoch + 1,
                        "epochs": phase.epochs,
                        "modules": {k: m.state_dict() for k, m in phase.modules.items()},
                        "optimizer": None
                        if phase.optimizer is None
                        else phase.optimizer.state_dict(),
                        "state": phase.get_state(),
                        "history": history,
                    },
                    checkpoint,
                )
                write_logs(phase.directory, history)
            runtime.barrier()
            progress.update(epoch + 1, record)
            if callback is not None:
                callback(phase.name, epoch + 1)
    finally:
        progress.close()
    if runtime.distributed:
        for module in phase.modules.values():
            sync_from_main(module)
    return history


def sync_from_main(module: nn.Module) -> None:
    """Copy rank 0's parameters and buffers to every rank.

    DDP keeps parameters in step, but each rank's last forward pass updates its own BatchNorm
    running statistics; evaluation and stage-2 scoring must see one model on every rank.
    """
    with torch.no_grad():
        for tensor in module.state_dict().values():
            dist.broadcast(tensor, src=0)


def iterate(batches: list[np.ndarray], device: torch.device) -> Iterator[tuple[int, torch.Tensor]]:
    """(step, index tensor on ``device``) for each batch."""
    for step, idx in enumerate(batches):
        yield step, torch.from_numpy(np.ascontiguousarray(idx, dtype=np.int64)).to(device)
