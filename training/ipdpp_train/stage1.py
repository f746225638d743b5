"""Stage 1: Balanced Negative Sampling (BNS) pre-training of the encoder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from .augment import contrastive_view
from .config import AugmentConfig, Stage1Config
from .data import DeviceData
from .distributed import Runtime, gather_with_grad
from .engine import (
    Phase,
    PhaseOptions,
    iterate,
    make_generator,
    make_schedule,
    param_groups,
    run_phase,
    set_lr,
    validation,
)
from .losses import bns_loss, bns_loss_code
from .models import Encoder, ProjectionHead
from .samplers import class_group_batches, shard

__all__ = ["bns_objective", "train_stage1"]

#: The release scales the learning rate linearly with the batch, lr = base * batch / 256.
LR_REFERENCE_BATCH = 256


class _Projected(nn.Module):
    """Encoder + projection head as one module, so one DDP wrapper covers both."""

    def __init__(self, encoder: Encoder, head: ProjectionHead) -> None:
        super().__init__()
        self.encoder, self.head = encoder, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))


def train_stage1(
    config: Stage1Config,
    augment: AugmentConfig,
    encoder: Encoder,
    head: ProjectionHead,
    data: DeviceData,
    runtime: Runtime,
    directory: Path,
    options: PhaseOptions | None = None,
) -> list[dict[str, Any]]:
    """Pre-train ``encoder`` (in place) with the BNS loss; returns the per-epoch log.

    Each step takes a batch of same-class groups (:func:`ipdpp_train.samplers.class_group_batches`,
    ``config.partners + 1`` images per group), makes two contrastive views of every image,
    projects both through ``head`` and minimises :func:`ipdpp_train.losses.bns_loss` (or the
    released code's variant, ``config.loss = "code"``). AdamW without decay on biases and norm
    scales; the learning rate ``config.lr * global_batch / 256`` warms up linearly for
    ``config.warmup_epochs`` and then follows a cosine to zero.

    Parameters
    ----------
    config, augment : Stage1Config, AugmentConfig
    encoder, head : nn.Module
        On ``runtime.device``; trained in place.
    data : DeviceData
    runtime : Runtime
        Under DDP each process takes every ``world_size``-th batch; ``config.batch_size`` is per
        process, and the loss of every process sees the keys (and partner anchors) of all
        processes' batches (:func:`bns_objective`), so W processes optimise the loss of one
        process holding the W batches.
    directory : pathlib.Path
        Checkpoint and logs.
    options : PhaseOptions, optional
        Resume, checkpoint interval, validation.

    Notes
    -----
    Batches and augmentations are deterministic functions of (seed, rank, epoch), so an
    interrupted and resumed run reproduces the uninterrupted one.
    """
    net = _Projected(encoder, head)
    model: nn.Module = DistributedDataParallel(net) if runtime.distributed else net
    optimizer = torch.optim.AdamW(
        param_groups([net], config.weight_decay), lr=config.lr, betas=config.betas
    )
    options = options or PhaseOptions()
    base_lr = config.lr * config.batch_size * runtime.world_size / LR_REFERENCE_BATCH
    labels = data.host.y_train

    def batches_of(epoch: int) -> list:
        groups = class_group_batches(
            labels, config.batch_size, config.partners, runtime.seed, epoch
        )
        return shard(groups, runtime.rank, runtime.world_size)

    # The number of batches is the same every epoch (whole same-class groups per class).
    schedule = make_schedule(config, base_lr, len(batches_of(0)))

    def run_epoch(epoch: int) -> dict[str, Any]:
        model.train()
        batches = batches_of(epoch)
        g = make_generator(runtime, "stage1", epoch)
        total, count, lr = 0.0, 0, base_lr
        for step, idx in iterate(batches, runtime.device):
            lr = schedule.lr(epoch, step)
            set_lr(optimizer, lr)
            x, y = data.x_train[idx], data.y_train[idx]
            views = torch.cat([contrastive_view(x, augment, g), contrastive_view(x, augment, g)])
            q, v = model(views).chunk(2)
            loss = bns_objective(q, v, y, config, runtime)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(idx)
            count += len(idx)
        return {"loss": total / max(1, count), "lr": lr}

    phase = Phase(
        name="stage1 (BNS)",
        directory=directory,
        epochs=schedule.epochs,
        modules={"encoder": encoder, "head": head},
        optimizer=optimizer,
        run_epoch=run_epoch,
        validate=validation(options, lambda v: v.knn(encoder)),
    )
    return run_phase(phase, runtime, options)


def bns_objective(
    q: torch.Tensor, v: torch.Tensor, labels: torch.Tensor, config: Stage1Config, runtime: Runtime
) -> torch.Tensor:
    """The BNS loss of this step over the batches of all processes.

    Under DDP every process gathers the anchors q, keys v and labels of all processes
    (gradients kept, :func:`ipdpp_train.distributed.gather_with_grad`) and computes the loss of
    the whole global batch: negatives and same-class partners then come from every process,
    and after DDP's gradient averaging the update equals one process's on the concatenated
    batch. Without a process group this is the loss of the local batch.
    """
    if runtime.distributed:
        q, v = gather_with_grad(q, runtime), gather_with_grad(v, runtime)
        labels = gather_with_grad(labels, runtime)
    if config.loss == "paper":
        return bns_loss(q, v, labels, config.partners, config.temperature)
    return bns_loss_code(q, v, labels, config.temperature)
