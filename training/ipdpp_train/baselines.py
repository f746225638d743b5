"""Baselines: cross-entropy on the full long-tailed set, and the BNS linear probe."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from .config import AugmentConfig, CEConfig, LinearProbeConfig
from .data import DeviceData
from .engine import EpochCallback, Phase, Runtime, derive_seed, iterate, param_groups, run_phase
from .models import Classifier, Encoder
from .samplers import shuffled_batches
from .stage2 import supervised_epoch

__all__ = ["encode", "train_cross_entropy", "train_linear_probe"]


def train_cross_entropy(
    config: CEConfig,
    augment: AugmentConfig,
    model: Classifier,
    data: DeviceData,
    runtime: Runtime,
    directory: Path,
    *,
    resume: bool = False,
    callback: EpochCallback | None = None,
) -> list[dict[str, Any]]:
    """Train ``model`` from scratch on the whole long-tailed training set (in place).

    SGD with momentum and weight decay (none on biases and norm scales), linear warm-up then
    cosine, random crop (+ flip): the plain baseline every long-tailed method is measured
    against. Returns the per-epoch log.
    """
    wrapped: nn.Module = DistributedDataParallel(model) if runtime.distributed else model
    optimizer = torch.optim.SGD(
        param_groups([model], config.weight_decay), lr=config.lr, momentum=config.momentum
    )
    everything = np.arange(len(data.host.y_train))

    def run_epoch(epoch: int) -> dict[str, Any]:
        return supervised_epoch(
            wrapped,
            optimizer,
            data,
            everything,
            config.batch_size,
            augment,
            runtime,
            (config.lr, epoch, config.warmup_epochs, config.epochs),
            "ce",
        )

    phase = Phase("cross-entropy", directory, config.epochs, {"model": model}, optimizer, run_epoch)
    return run_phase(phase, runtime, resume, callback)


@torch.no_grad()
def encode(encoder: Encoder, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Features of ``x`` (float32 (N, feature_dim)) with the encoder in eval mode."""
    was_training = encoder.training
    encoder.eval()
    try:
        parts = [encoder(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
    finally:
        encoder.train(was_training)
    return torch.cat(parts) if parts else x.new_zeros((0, encoder.feature_dim))


def train_linear_probe(
    config: LinearProbeConfig,
    encoder: Encoder,
    head: nn.Linear,
    data: DeviceData,
    runtime: Runtime,
    directory: Path,
    *,
    feature_batch: int = 1024,
    resume: bool = False,
    callback: EpochCallback | None = None,
) -> list[dict[str, Any]]:
    """Fit ``head`` (in place) on frozen ``encoder`` features of the full long-tailed set.

    The standard linear evaluation of a self-supervised encoder: features of the un-augmented
    training images are computed once, then a linear layer is trained with cross-entropy and
    AdamW at a constant learning rate. Every process fits the same head on all features (the
    problem is tiny), so no gradient exchange is needed under DDP.
    """
    features = encode(encoder, data.x_train, feature_batch)
    labels = data.y_train
    optimizer = torch.optim.AdamW(head.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    seed = derive_seed(runtime.seed, "linear_probe")

    def run_epoch(epoch: int) -> dict[str, Any]:
        batches = shuffled_batches(len(labels), config.batch_size, seed, epoch)
        loss_sum, count = 0.0, 0
        for _, idx in iterate(batches, runtime.device):
            loss = F.cross_entropy(head(features[idx]), labels[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += float(loss.detach()) * len(idx)
            count += len(idx)
        return {"loss": loss_sum / max(1, count), "lr": config.lr}

    phase = Phase("linear probe", directory, config.epochs, {"head": head}, optimizer, run_epoch)
    return run_phase(phase, runtime, resume, callback)
