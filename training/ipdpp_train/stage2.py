"""Stage 2: classifier re-training on class-balanced subsets drawn by ``ipdpp.balanced_subset``.

Every R epochs the current model scores the whole long-tailed training set (p_i = softmax
probability of item i's true label), ``ipdpp.balanced_subset`` draws ``min(k, N_c)`` items of
every class c — by exact IP-DPP (``"exact"``), the paper's Algorithm 1 (``"paper"``) or
uniformly (``"random"``) — and the next R epochs train on that subset with cross-entropy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

import ipdpp

from .augment import weak_augment
from .config import AugmentConfig, Stage2Config
from .data import DeviceData
from .distributed import Runtime, broadcast_object
from .engine import (
    Phase,
    PhaseOptions,
    Schedule,
    derive_seed,
    iterate,
    make_generator,
    make_schedule,
    param_groups,
    run_phase,
    set_lr,
    validation,
)
from .evaluate import predict
from .models import Classifier
from .samplers import shard, shuffled_batches

__all__ = ["default_k_per_class", "steps_per_epoch", "supervised_epoch", "train_stage2"]

#: The paper's subset size: k = 10 * N_min items per class (PAPER.md, stage 2).
K_PER_MIN_CLASS = 10
#: Upper clip of p_i. A confident softmax rounds to exactly 1 even in float64 (logit margin
#: above ~37); a class whose items all have p_i = 1 makes S_c = 11^T / N_c rank one, and no
#: k-DPP with k >= 2 exists. The cap keeps d_i = 1 - p_i * mean(p) >= ~2e-6 > 0.
P_MAX = 1.0 - 1e-6
#: Scoring batch (inference only, so larger than training batches).
SCORE_BATCH = 1024


def default_k_per_class(train_counts: tuple[int, ...]) -> int:
    """10 x the smallest class size (500 on CIFAR-10-LT at IF 100)."""
    return K_PER_MIN_CLASS * min(train_counts)


def steps_per_epoch(n: int, batch_size: int, runtime: Runtime) -> int:
    """Optimiser steps of one :func:`supervised_epoch` over ``n`` images on each process."""
    batches = -(-n // batch_size)
    return batches if runtime.world_size == 1 else batches // runtime.world_size


def supervised_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: DeviceData,
    indices: np.ndarray,
    batch_size: int,
    augment: AugmentConfig | None,
    runtime: Runtime,
    schedule: Schedule,
    epoch: int,
    purpose: str,
) -> dict[str, float]:
    """One cross-entropy epoch over ``data.x_train[indices]`` (shared with the CE baseline).

    ``augment`` None trains on the raw images; ``schedule`` gives the rate of every step.
    """
    model.train()
    order = shuffled_batches(len(indices), batch_size, derive_seed(runtime.seed, purpose), epoch)
    batches = shard([indices[b] for b in order], runtime.rank, runtime.world_size)
    g = make_generator(runtime, purpose, epoch)
    loss_sum, correct, count, lr = 0.0, 0, 0, schedule.base_lr
    for step, idx in iterate(batches, runtime.device):
        lr = schedule.lr(epoch, step)
        set_lr(optimizer, lr)
        x, y = data.x_train[idx], data.y_train[idx]
        if augment is not None:
            x = weak_augment(x, augment, g)
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum += float(loss.detach()) * len(idx)
        correct += int((logits.argmax(1) == y).sum())
        count += len(idx)
    return {
        "loss": loss_sum / max(1, count),
        "train_acc": 100.0 * correct / max(1, count),
        "lr": lr,
    }


class _FrozenEncoder(nn.Module):
    """Wraps an encoder so that it stays in eval mode (BatchNorm statistics frozen)."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.inner = encoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x)

    def train(self, mode: bool = True) -> _FrozenEncoder:
        super().train(mode)
        self.inner.eval()
        return self


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else float("nan")


def train_stage2(
    config: Stage2Config,
    augment: AugmentConfig,
    model: Classifier,
    data: DeviceData,
    mode: str,
    runtime: Runtime,
    directory: Path,
    options: PhaseOptions | None = None,
) -> list[dict[str, Any]]:
    """Re-train ``model`` (in place) on class-balanced subsets; returns the per-epoch log.

    Parameters
    ----------
    config : Stage2Config
        Epochs (or ``steps``), R (``resample_every``, in epochs), k (``k_per_class``; None:
        10 x the smallest class), IP-DPP ``alpha``, and ``finetune``: ``"full"`` trains encoder
        and head, ``"classifier"`` only the head (the encoder then stays in eval mode).
    augment : AugmentConfig
        Random crop (+ flip) on the subset's images.
    model : Classifier
        Pre-trained encoder with a fresh head, on ``runtime.device``.
    data : DeviceData
    mode : str
        ``ipdpp.balanced_subset`` mode: "exact", "paper" or "random".
    runtime : Runtime
    directory : pathlib.Path
        Checkpoint and logs; for every re-sampling round the log records the subset size, the
        mean p of the whole set, and, over the classes larger than k (the only ones sampled),
        the class-averaged mean p of all items (``mean_p_sampled_classes``) and of the chosen
        ones (``mean_p_chosen``): IP-DPP should choose below the class mean, random at it.
    options : PhaseOptions, optional
        Resume, checkpoint interval, validation.

    Notes
    -----
    Round 0 scores with the freshly initialised head, as "the current model" of the paper
    implies, so its p carry little information and the first R epochs train on a subset close to
    a uniform one whatever the mode; later rounds use the re-trained model. Classes with at most
    k items are kept whole by every mode. Round r draws with seed
    ``derive_seed(run seed, "stage2-subset", r)``; rank 0 scores and draws, and broadcasts the
    subset, so every DDP rank trains on the same items. Batch order and augmentation are keyed
    by the run seed and the epoch, never by ``mode``: comparisons between modes are paired,
    and two modes that draw the same subsets end with the same weights.
    """
    if config.finetune == "classifier":
        for param in model.encoder.parameters():
            param.requires_grad_(False)
        model.encoder = _FrozenEncoder(model.encoder)  # type: ignore[assignment]
    trainable: nn.Module = model if config.finetune == "full" else model.head
    wrapped: nn.Module = DistributedDataParallel(model) if runtime.distributed else model
    optimizer = torch.optim.AdamW(param_groups([trainable], config.weight_decay), lr=config.lr)
    options = options or PhaseOptions()
    labels = data.host.y_train
    k = config.k_per_class or default_k_per_class(data.host.train_counts)
    state: dict[str, Any] = {"subset": None}
    # Every subset holds min(k, N_c) items of each class c, so every epoch has as many steps.
    subset_size = sum(min(k, n) for n in data.host.train_counts)
    schedule = make_schedule(
        config, config.lr, steps_per_epoch(subset_size, config.batch_size, runtime)
    )

    def draw(round_index: int) -> tuple[np.ndarray, dict[str, float]]:
        p = predict(model, data.x_train, SCORE_BATCH, probabilities_of=data.y_train)
        p_host = np.clip(p.cpu().numpy(), 0.0, P_MAX)
        seed = derive_seed(runtime.seed, "stage2-subset", round_index) & 0xFFFFFFFF
        subset = np.asarray(
            ipdpp.balanced_subset(labels, p_host, k, mode=mode, alpha=config.alpha, seed=seed),
            dtype=np.int64,
        )
        # Only classes with more than k items are sub-sampled (the rest are kept whole), so the
        # sampler's preference shows in those classes: mean p of the chosen items against the
        # mean p of all their items (IP-DPP favours low p, random undersampling matches them).
        # Both are averaged per class first, so that the largest class does not dominate one
        # side only.
        chosen = np.zeros(len(labels), dtype=bool)
        chosen[subset] = True
        sampled = [labels == c for c, n in enumerate(np.bincount(labels)) if n > k]
        stats = {
            "subset": int(len(subset)),
            "mean_p_all": float(p_host.mean()),
            "mean_p_sampled_classes": _mean(np.array([p_host[m].mean() for m in sampled])),
            "mean_p_chosen": _mean(np.array([p_host[m & chosen].mean() for m in sampled])),
        }
        return subset, stats

    def run_epoch(epoch: int) -> dict[str, Any]:
        record: dict[str, Any] = {}
        if epoch % config.resample_every == 0 or state["subset"] is None:
            drawn = draw(epoch // config.resample_every) if runtime.is_main else None
            subset, stats = broadcast_object(drawn, runtime)
            state["subset"] = subset
            record.update(stats)
        record.update(
            supervised_epoch(
                wrapped,
                optimizer,
                data,
                state["subset"],
                config.batch_size,
                augment,
                runtime,
                schedule,
                epoch,
                "stage2",  # batch order and augmentation: the same for every mode
            )
        )
        return record

    phase = Phase(
        name=f"stage2 ({mode})",
        directory=directory,
        epochs=schedule.epochs,
        modules={"model": model},
        optimizer=optimizer,
        run_epoch=run_epoch,
        get_state=lambda: {"subset": state["subset"]},
        set_state=lambda saved: state.update(subset=saved["subset"]),
        validate=validation(options, lambda v: v.classifier(model)),
    )
    return run_phase(phase, runtime, options)
