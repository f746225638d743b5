"""Stage 2: re-training on class-balanced subsets drawn by ``ipdpp.balanced_subset``.

Every R epochs (a round) the current model scores the whole long-tailed training set (p_i =
softmax probability of item i's true label, see :mod:`ipdpp_train.scores`), the method's
sampler keeps ``min(k, N_c)`` items of every class c — by exact IP-DPP, the paper's Algorithm 1,
greedy MAP, the ``features=`` kernel or uniformly (see :mod:`ipdpp_train.methods`) — and the
next R epochs train on that subset. Samplers ``"all"`` (every item) and ``"class-balanced"``
(cRT's class-balanced sampling with replacement, re-drawn every epoch) have no rounds.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import torch
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
from .losses import Criterion, make_criterion
from .methods import SUBSET_MODES, MethodSpec, k_per_class_for
from .models import Classifier
from .samplers import shard, shuffled_batches
from .scores import diversity_features, fold_of, score_pass, scoring_view

__all__ = [
    "default_k_per_class",
    "steps_per_epoch",
    "supervised_epoch",
    "train_stage2",
    "trained_counts",
]

#: Upper clip of p_i. A confident softmax rounds to exactly 1 even in float64 (logit margin
#: above ~37); a class whose items all have p_i = 1 makes S_c = 11^T / N_c rank one, and no
#: k-DPP with k >= 2 exists. The cap keeps d_i = 1 - p_i * mean(p) >= ~2e-6 > 0.
P_MAX = 1.0 - 1e-6


def default_k_per_class(train_counts: tuple[int, ...]) -> int:
    """10 x the smallest class size (500 on CIFAR-10-LT at IF 100), the paper's k."""
    return k_per_class_for("10x-min", train_counts)


def trained_counts(sampler: str, k: int, train_counts: tuple[int, ...]) -> tuple[int, ...]:
    """Items per class of what a stage-2 sampler trains on in an epoch (the prior of its
    logit-adjusted loss and post-hoc adjustment): every item for ``"all"``, ``min(k, N_c)``
    for a subset, equal counts for class-balanced sampling."""
    if sampler == "all":
        return tuple(train_counts)
    if sampler == "class-balanced":
        return tuple(1 for _ in train_counts)
    return tuple(min(k, n) for n in train_counts)


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
    criterion: Criterion | None = None,
) -> dict[str, float]:
    """One epoch over ``data.x_train[indices]`` (shared with the from-scratch baselines).

    ``augment`` None trains on the raw images; ``schedule`` gives the rate of every step; the
    loss is ``criterion(logits, labels, epoch)`` (None: cross-entropy).
    Batch order and augmentation are keyed by (run seed, ``purpose``, epoch).
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
        if criterion is None:
            loss = torch.nn.functional.cross_entropy(logits, y)
        else:
            loss = criterion(logits, y, epoch)
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


def _freeze_encoder(model: Classifier) -> None:
    for param in model.encoder.parameters():
        param.requires_grad_(False)
    model.encoder = _FrozenEncoder(model.encoder)  # type: ignore[assignment]


class _Trainee:
    """A model with its optimiser (and DDP wrapper) that stage 2's epochs step."""

    def __init__(self, model: Classifier, config: Stage2Config, finetune: str, rt: Runtime):
        self.model = model
        trainable: nn.Module = model if finetune == "full" else model.head
        self.wrapped: nn.Module = DistributedDataParallel(model) if rt.distributed else model
        self.optimizer = torch.optim.AdamW(
            param_groups([trainable], config.weight_decay), lr=config.lr
        )


def class_balanced_draws(labels: np.ndarray, size: int, seed: int, epoch: int) -> np.ndarray:
    """``size`` items drawn with replacement, each a uniform class then a uniform item of it
    (class-balanced sampling, Kang et al. ICLR 2020); int64 (size,), keyed by (seed, epoch)."""
    rng = np.random.default_rng([seed, epoch, 3])
    members = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    classes = rng.integers(0, len(members), size)
    return np.array([members[c][rng.integers(0, len(members[c]))] for c in classes], np.int64)


def train_stage2(
    config: Stage2Config,
    augment: AugmentConfig,
    model: Classifier,
    data: DeviceData,
    spec: MethodSpec,
    runtime: Runtime,
    directory: Path,
    options: PhaseOptions | None = None,
) -> list[dict[str, Any]]:
    """Re-train ``model`` (in place) as ``spec`` says; returns the per-epoch log.

    Parameters
    ----------
    config : Stage2Config
        Epochs (or ``steps``), R (``resample_every``, in epochs), IP-DPP ``alpha``, the
        optimiser, and ``scores`` (how p is computed, see :mod:`ipdpp_train.scores`) where
        ``spec.scores`` is None.
    augment : AugmentConfig
        Random crop (+ flip) on the training images (and on the augmented scoring views).
    model : Classifier
        Pre-trained encoder with a fresh head, on ``runtime.device``.
    data : DeviceData
    spec : MethodSpec
        The method, with ``k`` and ``finetune`` resolved (:func:`ipdpp_train.methods.resolved`):
        its ``sampler``, ``k`` rule, ``finetune`` (``"full"``: encoder and head;
        ``"classifier"``: the head only, the encoder then stays in eval mode), ``loss`` and
        ``scores``.
    runtime : Runtime
    directory : pathlib.Path
        Checkpoint and logs. For every re-sampling round the log records the subset size, the
        mean p of the whole set and, over the classes larger than k (the only ones sampled),
        the class-averaged mean p of all items (``mean_p_sampled_classes``) and of the chosen
        ones (``mean_p_chosen``): IP-DPP should choose below the class mean, random at it. The
        checkpoint's ``state["rounds"]`` keeps every round's p (float32 (N,)) and subset.
    options : PhaseOptions, optional
        Resume, checkpoint interval, validation.

    Notes
    -----
    Round 0 scores with the freshly initialised head, as "the current model" of the paper
    implies, so its p carry little information and the first R epochs train on a subset close to
    a uniform one whatever the sampler; later rounds use the re-trained model. Classes with at
    most k items are kept whole by every subset sampler. Every random stream is keyed by the
    run seed and the round or epoch, never by the method: round r draws with seed
    ``derive_seed(run seed, "stage2-subset", r)`` (so ``"fixed-random"`` keeps the subset that
    ``"random"`` draws in round 0), the scoring views with ``(run seed, "stage2-score", r)``,
    batch order and augmentation with ``(run seed, "stage2", epoch)``. Two methods that draw the
    same subsets therefore end with the same weights. Rank 0 scores and draws, and broadcasts
    the subset, so every DDP rank trains on the same items.
    """
    finetune = spec.finetune or config.finetune
    if finetune == "classifier":
        _freeze_encoder(model)
    main = _Trainee(model, config, finetune, runtime)
    options = options or PhaseOptions()
    labels, counts = data.host.y_train, data.host.train_counts
    k = k_per_class_for(spec.k, counts)
    sampler = spec.sampler
    rounds = sampler in SUBSET_MODES
    size = len(labels) if sampler == "all" else sum(min(k, n) for n in counts)
    schedule = make_schedule(config, config.lr, steps_per_epoch(size, config.batch_size, runtime))
    criterion = make_criterion(
        spec.loss, spec.loss_tau, trained_counts(sampler, k, counts), schedule.epochs,
        runtime.device,
    )  # fmt: skip
    everything = np.arange(len(labels))
    state: dict[str, Any] = {"subset": None, "rounds": []}
    # Out-of-fold scoring: one copy per fold, trained beside the model on the other folds.
    scorers: list[_Trainee] = []
    folds = np.zeros(len(labels), dtype=np.int64)
    oof_schedule = schedule
    scores = spec.scores or config.scores
    if rounds and scores == "out-of-fold":
        folds = fold_of(labels, config.score_folds, runtime.seed)
        scorers = [
            _Trainee(copy.deepcopy(model), config, finetune, runtime)
            for _ in range(config.score_folds)
        ]
        share = -(-size * (config.score_folds - 1) // config.score_folds)
        oof_schedule = make_schedule(
            config, config.lr, steps_per_epoch(share, config.batch_size, runtime)
        )

    def score(round_index: int) -> tuple[np.ndarray, np.ndarray | None]:
        want = sampler == "features"
        x, y = data.x_train, data.y_train
        if scorers:
            p = torch.zeros(len(labels), dtype=torch.float64, device=x.device)
            for f, scorer in enumerate(scorers):
                idx = torch.from_numpy(np.flatnonzero(folds == f)).to(x.device)
                p[idx] = score_pass(scorer.model, x[idx], y[idx])[0]
            feats = score_pass(model, x, y, with_features=True)[1] if want else None
        else:
            view = None
            if scores == "augmented":
                view = scoring_view(augment, runtime.seed, round_index, x.device)
            p, feats = score_pass(model, x, y, view, with_features=want)
        p_host = np.clip(p.cpu().numpy(), 0.0, P_MAX)
        return p_host, None if feats is None else feats.cpu().numpy()

    def draw(round_index: int) -> tuple[np.ndarray, dict[str, Any]]:
        p_host, feats = score(round_index)
        seed = derive_seed(runtime.seed, "stage2-subset", round_index) & 0xFFFFFFFF
        record: dict[str, Any] = {}
        if sampler == "fixed-random" and state["subset"] is not None:
            subset = state["subset"]  # drawn once, in round 0
        else:
            extra: dict[str, Any] = {}
            if feats is not None:
                extra["features"], record["feature_map"] = diversity_features(
                    feats, labels, k, seed
                )
            subset = np.asarray(
                ipdpp.balanced_subset(
                    labels, p_host, k, mode=SUBSET_MODES[sampler], alpha=config.alpha,
                    seed=seed, **extra,
                ),
                dtype=np.int64,
            )  # fmt: skip
        # Only classes with more than k items are sub-sampled (the rest are kept whole), so the
        # sampler's preference shows in those classes: mean p of the chosen items against the
        # mean p of all their items (IP-DPP favours low p, random undersampling matches them).
        # Both are averaged per class first, so that the largest class does not dominate one
        # side only.
        chosen = np.zeros(len(labels), dtype=bool)
        chosen[subset] = True
        sampled = [labels == c for c, n in enumerate(np.bincount(labels)) if n > k]
        record.update(
            subset=int(len(subset)),
            mean_p_all=float(p_host.mean()),
            mean_p_sampled_classes=_mean(np.array([p_host[m].mean() for m in sampled])),
            mean_p_chosen=_mean(np.array([p_host[m & chosen].mean() for m in sampled])),
        )
        return subset, {"record": record, "p": p_host.astype(np.float32)}

    def indices_of(epoch: int, record: dict[str, Any]) -> np.ndarray:
        if sampler == "all":
            return everything
        if sampler == "class-balanced":
            seed = derive_seed(runtime.seed, "stage2-class-balanced")
            return class_balanced_draws(labels, size, seed, epoch)
        if epoch % config.resample_every == 0 or state["subset"] is None:
            round_index = epoch // config.resample_every
            drawn = draw(round_index) if runtime.is_main else None
            subset, info = broadcast_object(drawn, runtime)
            state["subset"] = subset
            state["rounds"].append({"round": round_index, "p": info["p"], "subset": subset})
            record.update(info["record"])
        return state["subset"]

    def run_epoch(epoch: int) -> dict[str, Any]:
        record: dict[str, Any] = {}
        indices = indices_of(epoch, record)
        # Batch order and augmentation: the same for every method.
        common = (config.batch_size, augment, runtime)
        record.update(
            supervised_epoch(
                main.wrapped, main.optimizer, data, indices, *common, schedule, epoch, "stage2",
                criterion,
            )
        )  # fmt: skip
        for f, scorer in enumerate(scorers):
            part = indices[folds[indices] != f]
            supervised_epoch(
                scorer.wrapped, scorer.optimizer, data, part, *common, oof_schedule, epoch,
                f"stage2-oof{f}", criterion,
            )  # fmt: skip
        return record

    def get_state() -> dict[str, Any]:
        return {**state, "scorer_optimizers": [s.optimizer.state_dict() for s in scorers]}

    def set_state(saved: dict[str, Any]) -> None:
        state.update(subset=saved["subset"], rounds=list(saved.get("rounds", [])))
        for scorer, table in zip(scorers, saved.get("scorer_optimizers", [])):
            scorer.optimizer.load_state_dict(table)

    modules: dict[str, nn.Module] = {"model": model}
    modules.update({f"scorer{f}": s.model for f, s in enumerate(scorers)})
    phase = Phase(
        name=f"stage2 ({spec.name})",
        directory=directory,
        epochs=schedule.epochs,
        modules=modules,
        optimizer=main.optimizer,
        run_epoch=run_epoch,
        get_state=get_state,
        set_state=set_state,
        validate=validation(options, lambda v: v.classifier(model)),
    )
    return run_phase(phase, runtime, options)
