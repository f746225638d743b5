"""Baselines: training from scratch on the full long-tailed set (cross-entropy, or a logit-
adjusted loss), the BNS linear probe, and post-hoc logit adjustment chosen on validation."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from .config import AugmentConfig, CEConfig, LinearProbeConfig
from .data import DeviceData
from .distributed import Runtime
from .engine import (
    Phase,
    PhaseOptions,
    derive_seed,
    iterate,
    make_schedule,
    param_groups,
    run_phase,
    validation,
)
from .evaluate import Validator, encode
from .losses import LogitAdjusted, log_prior, make_criterion
from .models import Classifier, Encoder
from .samplers import shuffled_batches
from .stage2 import steps_per_epoch, supervised_epoch

__all__ = [
    "choose_posthoc_tau",
    "require_validation",
    "train_cross_entropy",
    "train_linear_probe",
]


def train_cross_entropy(
    config: CEConfig,
    augment: AugmentConfig,
    model: Classifier,
    data: DeviceData,
    runtime: Runtime,
    directory: Path,
    options: PhaseOptions | None = None,
    *,
    loss: str = "ce",
    loss_tau: float = 1.0,
) -> list[dict[str, Any]]:
    """Train ``model`` from scratch on the whole long-tailed training set (in place).

    SGD with momentum and weight decay (none on biases and norm scales), linear warm-up then
    cosine (epochs, or ``config.steps`` whatever the dataset size), random crop (+ flip): the
    plain baseline every long-tailed method is measured against. ``loss`` (with ``loss_tau``)
    swaps cross-entropy for a long-tailed loss of :func:`ipdpp_train.losses.make_criterion`
    ("ldam-drw" needs a :class:`~ipdpp_train.models.NormedLinear` head). Batch order and
    augmentation do not depend on the loss, so the models are paired. Returns the per-epoch
    log.
    """
    options = options or PhaseOptions()
    wrapped: nn.Module = DistributedDataParallel(model) if runtime.distributed else model
    optimizer = torch.optim.SGD(
        param_groups([model], config.weight_decay), lr=config.lr, momentum=config.momentum
    )
    everything = np.arange(len(data.host.y_train))
    per_epoch = steps_per_epoch(len(everything), config.batch_size, runtime)
    schedule = make_schedule(config, config.lr, per_epoch)
    criterion = make_criterion(
        loss, loss_tau, data.host.train_counts, schedule.epochs, runtime.device
    )

    def run_epoch(epoch: int) -> dict[str, Any]:
        return supervised_epoch(
            wrapped, optimizer, data, everything, config.batch_size, augment, runtime,
            schedule, epoch, "ce", criterion,
        )  # fmt: skip

    phase = Phase(
        "cross-entropy" if loss == "ce" else loss,
        directory,
        schedule.epochs,
        {"model": model},
        optimizer,
        run_epoch,
        validate=validation(options, lambda v: v.classifier(model)),
    )
    return run_phase(phase, runtime, options)


def train_linear_probe(
    config: LinearProbeConfig,
    encoder: Encoder,
    head: nn.Linear,
    data: DeviceData,
    runtime: Runtime,
    directory: Path,
    options: PhaseOptions | None = None,
    *,
    feature_batch: int = 1024,
) -> list[dict[str, Any]]:
    """Fit ``head`` (in place) on frozen ``encoder`` features of the full long-tailed set.

    The standard linear evaluation of a self-supervised encoder: features of the un-augmented
    training images are computed once, then a linear layer is trained with cross-entropy and
    AdamW at a constant learning rate (epochs, or ``config.steps``). Every process fits the
    same head on all features (the problem is tiny), so no gradient exchange is needed under
    DDP.
    """
    options = options or PhaseOptions()
    features = encode(encoder, data.x_train, feature_batch)
    labels = data.y_train
    optimizer = torch.optim.AdamW(head.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    seed = derive_seed(runtime.seed, "linear_probe")
    per_epoch = -(-len(labels) // config.batch_size)
    epochs = make_schedule(config, config.lr, per_epoch).epochs

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

    phase = Phase(
        "linear probe",
        directory,
        epochs,
        {"head": head},
        optimizer,
        run_epoch,
        validate=validation(options, lambda v: v.head(encoder, head)),
    )
    return run_phase(phase, runtime, options)


def require_validation(validator: Validator, key: str) -> None:
    """Raise ValueError when a hyperparameter (``key``) is to be chosen on an empty split."""
    if validator.empty:
        raise ValueError(
            f'{key} = "validation" needs validation images; set data.val_per_class or '
            f"data.val_fraction above 0, or give {key} a number"
        )


def choose_posthoc_tau(
    model: nn.Module,
    counts: Sequence[int],
    validator: Validator,
    grid: Sequence[float],
) -> tuple[float, dict[str, float]]:
    """τ of post-hoc logit adjustment, chosen on the validation split only.

    Every τ of ``grid`` shifts the logits by ``-τ log prior`` (prior: ``counts``, what the
    model trained on); the τ with the highest class-averaged validation accuracy wins (ties:
    the first in ``grid``, i.e. the least adjustment when the grid ascends). The test set is
    never looked at.

    Returns
    -------
    tau : float
    scores : dict of str to float
        Validation class-averaged accuracy (%) for every τ tried, keyed by ``f"{tau:g}"``.

    Raises
    ------
    ValueError
        When the validation split is empty.
    """
    require_validation(validator, "posthoc_tau")
    prior = log_prior(counts, next(model.parameters()).device)
    scores: dict[str, float] = {}
    best, best_score = float(grid[0]), -1.0
    for tau in grid:
        score = validator.classifier(LogitAdjusted(model, prior, tau))["val_balanced"]
        scores[f"{tau:g}"] = score
        if score > best_score:
            best, best_score = float(tau), score
    return best, scores
