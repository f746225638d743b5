"""What every training phase shares: seeds, optimisers and schedules, resumable epochs with
checkpoints, validation passes, per-epoch logs and progress bars."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import torch
from torch import nn

from .checkpoint import save_atomic, write_logs
from .distributed import Runtime, sync_from_main

if TYPE_CHECKING:
    from .evaluate import Validator

__all__ = [
    "EpochCallback",
    "Phase",
    "PhaseOptions",
    "Schedule",
    "derive_seed",
    "make_generator",
    "make_schedule",
    "param_groups",
    "run_phase",
    "validation",
]

#: Called after every finished epoch with (phase name, epochs done).
EpochCallback = Callable[[str, int], None]


def derive_seed(*keys: int | str) -> int:
    """A 63-bit seed mixed from integers and strings (stable across processes and runs)."""
    words: list[int] = []
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
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for module in modules:
        for param in module.parameters():
            if param.requires_grad:
                (no_decay if param.ndim <= 1 else decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


@dataclass(frozen=True)
class Schedule:
    """Learning rate per optimiser step: linear warm-up, then half-cosine decay to 0.

    A pure function of the global step, so a resumed run follows the same curve. Built by
    :func:`make_schedule`, which fits it to a phase's batches per epoch.
    """

    base_lr: float
    warmup_steps: int
    total_steps: int
    steps_per_epoch: int

    @property
    def epochs(self) -> int:
        return self.total_steps // self.steps_per_epoch

    def lr(self, epoch: int, step: int) -> float:
        """The rate of step ``step`` (0-based) of epoch ``epoch``."""
        s = epoch * self.steps_per_epoch + step
        if s < self.warmup_steps:
            return self.base_lr * (s + 1) / self.warmup_steps
        span = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, (s - self.warmup_steps) / span)
        return 0.5 * self.base_lr * (1 + math.cos(math.pi * progress))


def make_schedule(config: Any, base_lr: float, steps_per_epoch: int) -> Schedule:
    """The schedule of a phase config (``epochs``, ``warmup_epochs``, ``steps``,
    ``warmup_steps``; the last three optional) for ``steps_per_epoch`` batches per epoch.

    With ``steps`` set, the phase runs ``ceil(steps / steps_per_epoch)`` whole epochs (at least
    one) whatever the dataset size, so one config fits a dataset of any size; ``warmup_steps``
    None means ``warmup_epochs`` epochs. The cosine reaches 0 at the last step actually run.
    """
    per_epoch = max(1, steps_per_epoch)
    steps = getattr(config, "steps", None)
    epochs = max(1, math.ceil(steps / per_epoch)) if steps is not None else config.epochs
    total = epochs * per_epoch
    warmup = getattr(config, "warmup_steps", None)
    if warmup is None:
        warmup = getattr(config, "warmup_epochs", 0) * per_epoch
    return Schedule(base_lr, min(int(warmup), total), total, per_epoch)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


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
        shown = {k: v for k, v in record.items() if k in ("loss", "lr", "subset", "val_overall")}
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


@dataclass(frozen=True)
class PhaseOptions:
    """How a phase runs, whatever it trains.

    Attributes
    ----------
    resume : bool
        Continue from the phase's checkpoint when it exists.
    callback : callable, optional
        Called after every epoch (tests use it to interrupt a run).
    save_every : int
        Epochs between checkpoints; the last epoch is always saved.
    val_every : int, optional
        Epochs between validation passes (None: about ten per phase, and the last epoch).
    validator : Validator, optional
        Scores models on the validation split (None, or an empty split: no validation).
    load_only : bool
        Never train: load the phase's finished checkpoint, or raise ValueError where it is
        missing or unfinished (evaluation of an existing run).
    """

    resume: bool = False
    callback: EpochCallback | None = None
    save_every: int = 1
    val_every: int | None = None
    validator: Validator | None = None
    load_only: bool = False


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
    validate : callable, optional
        ``validate() -> dict`` of validation metrics of the current model (rank 0 only; it must
        not draw random numbers or change the model).
    """

    name: str
    directory: Path
    epochs: int
    modules: dict[str, nn.Module]
    optimizer: torch.optim.Optimizer | None
    run_epoch: Callable[[int], dict[str, Any]]
    get_state: Callable[[], dict[str, Any]] = field(default=lambda: {})
    set_state: Callable[[dict[str, Any]], None] = field(default=lambda state: None)
    validate: Callable[[], dict[str, float]] | None = None


def validation(
    options: PhaseOptions, score: Callable[[Validator], dict[str, float]]
) -> Callable[[], dict[str, float]] | None:
    """``Phase.validate`` for ``score(options.validator)``; None without validation images."""
    validator = options.validator
    if validator is None or validator.empty:
        return None
    return lambda: score(validator)


def _load(phase: Phase, checkpoint: Path, runtime: Runtime) -> tuple[int, list[dict[str, Any]]]:
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
    return saved["epoch"], saved["history"]


def run_phase(phase: Phase, runtime: Runtime, options: PhaseOptions) -> list[dict[str, Any]]:
    """Run (or finish) a phase, checkpointing every ``options.save_every`` epochs and at the
    end; returns the per-epoch log.

    With ``options.resume`` and an existing checkpoint, training continues after the last saved
    epoch (a finished phase is only loaded); the result equals an uninterrupted run's bit for
    bit. Without it any old checkpoint is overwritten.
    """
    checkpoint = phase.directory / "checkpoint.pt"
    start, history = 0, list[dict[str, Any]]()
    if options.load_only and not checkpoint.is_file():
        raise ValueError(
            f"{checkpoint} is missing: evaluation alone loads every phase it needs and never "
            f"trains one; train {phase.name} first"
        )
    if (options.resume or options.load_only) and checkpoint.is_file():
        start, history = _load(phase, checkpoint, runtime)
        if options.load_only and start < phase.epochs:
            raise ValueError(
                f"{checkpoint} holds {start} of {phase.epochs} epochs of {phase.name}: "
                "evaluation alone needs it finished (continue the run with --resume first)"
            )
        if runtime.is_main:  # a kill between the checkpoint and its logs left them behind
            write_logs(phase.directory, history)
    every = options.val_every or max(1, round(phase.epochs / 10))
    progress = _Progress(phase.name, start, phase.epochs, runtime.progress)
    try:
        for epoch in range(start, phase.epochs):
            began = time.perf_counter()
            record = {"epoch": epoch + 1, **phase.run_epoch(epoch)}
            record["seconds"] = time.perf_counter() - began
            done, last = epoch + 1, epoch + 1 == phase.epochs
            if phase.validate is not None and runtime.is_main and (done % every == 0 or last):
                record.update(phase.validate())
            history.append(record)
            if runtime.is_main and (done % options.save_every == 0 or last):
                state = {
                    "epoch": done,
                    "epochs": phase.epochs,
                    "modules": {k: m.state_dict() for k, m in phase.modules.items()},
                    "optimizer": None if phase.optimizer is None else phase.optimizer.state_dict(),
                    "state": phase.get_state(),
                    "history": history,
                }
                save_atomic(state, checkpoint)
                write_logs(phase.directory, history)
            runtime.barrier()
            progress.update(done, record)
            if options.callback is not None:
                options.callback(phase.name, done)
    finally:
        progress.close()
    if runtime.distributed:
        for module in phase.modules.values():
            sync_from_main(module)
    return history


def iterate(batches: list[np.ndarray], device: torch.device) -> Iterator[tuple[int, torch.Tensor]]:
    """(step, index tensor on ``device``) for each batch."""
    for step, idx in enumerate(batches):
        yield step, torch.from_numpy(np.ascontiguousarray(idx, dtype=np.int64)).to(device)
