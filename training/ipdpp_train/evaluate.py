"""Top-1 accuracy: overall, per class, and over many-, medium- and few-shot classes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from .config import EvalConfig

__all__ = ["Metrics", "ShotThresholds", "evaluate_predictions", "predict", "shot_thresholds"]

#: The standard many/few thresholds (training images) and the head size they were set for
#: (CIFAR-100-LT, n_max = 500), used to scale them to other head sizes.
STANDARD_MANY, STANDARD_FEW, STANDARD_N_MAX = 100.0, 20.0, 500.0


@dataclass(frozen=True)
class ShotThresholds:
    """many: n > ``many``; medium: ``few`` <= n <= ``many``; few: n < ``few``."""

    many: float
    few: float
    note: str

    def group(self, count: int) -> str:
        if count > self.many:
            return "many"
        if count < self.few:
            return "few"
        return "medium"

    def describe(self) -> str:
        return (
            f"many-shot: > {self.many:g} training images, medium: {self.few:g}–{self.many:g}, "
            f"few: < {self.few:g} ({self.note})"
        )


def shot_thresholds(config: EvalConfig, n_max: int) -> ShotThresholds:
    """The configured thresholds, or the standard 100 / 20 scaled by ``n_max / 500``."""
    if config.many_threshold is not None and config.few_threshold is not None:
        return ShotThresholds(config.many_threshold, config.few_threshold, "as configured")
    scale = n_max / STANDARD_N_MAX
    return ShotThresholds(
        STANDARD_MANY * scale,
        STANDARD_FEW * scale,
        f"the standard 100 / 20 scaled by n_max / 500 = {scale:g}",
    )


@dataclass(frozen=True)
class Metrics:
    """Accuracies in percent; a group with no classes has accuracy NaN.

    Group accuracies average the per-class accuracies of the group's classes (equal to the
    pooled accuracy on a balanced test set, and the usual convention otherwise).
    """

    overall: float
    many: float
    medium: float
    few: float
    per_class: tuple[float, ...]
    groups: tuple[str, ...]

    def to_dict(self) -> dict:
        out = asdict(self)
        out["per_class"] = list(self.per_class)
        out["groups"] = list(self.groups)
        return out

    @classmethod
    def from_dict(cls, table: dict) -> Metrics:
        return cls(
            overall=table["overall"],
            many=table["many"],
            medium=table["medium"],
            few=table["few"],
            per_class=tuple(table["per_class"]),
            groups=tuple(table["groups"]),
        )


def evaluate_predictions(
    predictions: np.ndarray,
    labels: np.ndarray,
    train_counts: Sequence[int],
    thresholds: ShotThresholds,
) -> Metrics:
    """Accuracy metrics of predicted against true labels.

    Parameters
    ----------
    predictions, labels : numpy.ndarray
        int (N,) predicted and true classes in [0, C).
    train_counts : sequence of int
        Training images per class (C,), which decide each class's shot group.
    thresholds : ShotThresholds

    Returns
    -------
    Metrics

    Raises
    ------
    ValueError
        For mismatched shapes or labels outside [0, C).
    """
    predictions = np.asarray(predictions)
    labels = np.asarray(labels)
    num_classes = len(train_counts)
    if predictions.shape != labels.shape or labels.ndim != 1:
        raise ValueError(
            f"predictions and labels must have the same shape (N,); got {predictions.shape} "
            f"and {labels.shape}"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes})")
    correct = predictions == labels
    per_class = []
    for c in range(num_classes):
        mask = labels == c
        per_class.append(100.0 * float(correct[mask].mean()) if mask.any() else math.nan)
    groups = tuple(thresholds.group(int(n)) for n in train_counts)

    def group_mean(name: str) -> float:
        values = [a for a, g in zip(per_class, groups) if g == name and not math.isnan(a)]
        return float(np.mean(values)) if values else math.nan

    return Metrics(
        overall=100.0 * float(correct.mean()) if correct.size else math.nan,
        many=group_mean("many"),
        medium=group_mean("medium"),
        few=group_mean("few"),
        per_class=tuple(per_class),
        groups=groups,
    )


@torch.no_grad()
def predict(
    model: nn.Module,
    x: torch.Tensor,
    batch_size: int,
    probabilities_of: torch.Tensor | None = None,
) -> torch.Tensor:
    """Evaluate ``model`` in eval mode on ``x`` in batches (training mode restored after).

    Returns argmax classes, int64 (N,); or, when ``probabilities_of`` (int64 (N,) labels) is
    given, the softmax probability of those labels, float64 (N,) — stage 2's p_i.
    """
    was_training = model.training
    model.eval()
    outputs = []
    try:
        for start in range(0, len(x), batch_size):
            logits = model(x[start : start + batch_size])
            if probabilities_of is None:
                outputs.append(logits.argmax(dim=1))
            else:
                labels = probabilities_of[start : start + batch_size]
                # float64 softmax, so that p_i = 1 - 1e-9 is not rounded to exactly 1.
                probs = torch.softmax(logits.double(), dim=1)
                outputs.append(probs.gather(1, labels[:, None]).squeeze(1))
    finally:
        model.train(was_training)
    return torch.cat(outputs) if outputs else torch.empty(0, dtype=torch.int64, device=x.device)
