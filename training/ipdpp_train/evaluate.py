"""Top-1 accuracy: overall, per class, and over many-, medium- and few-shot classes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from .config import EvalConfig

__all__ = [
    "Metrics",
    "ShotThresholds",
    "Validator",
    "encode",
    "evaluate_predictions",
    "knn_predict",
    "predict",
    "shot_thresholds",
]

#: The standard many/few thresholds (training images), set for CIFAR-100-LT (500 ... 5 images).
STANDARD_MANY, STANDARD_FEW = 100.0, 20.0


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


def shot_thresholds(config: EvalConfig, train_counts: Sequence[int]) -> ShotThresholds:
    """The configured thresholds; else the standard 100 / 20 when every group gets a class;
    else thresholds derived from the class sizes (see :class:`EvalConfig`), with the reason."""
    if config.many_threshold is not None and config.few_threshold is not None:
        return ShotThresholds(config.many_threshold, config.few_threshold, "as configured")
    counts = [int(n) for n in train_counts]
    standard = ShotThresholds(STANDARD_MANY, STANDARD_FEW, "the standard thresholds")
    empty = [g for g in ("many", "medium", "few") if all(standard.group(n) != g for n in counts)]
    if not empty or len(counts) < 3:
        return standard
    # Cut [log n_min, log n_max] in thirds, rounded down to whole images: on CIFAR-100-LT IF 100
    # (500 ... 5 images) this gives 107 / 23, close to the standard 100 / 20 chosen for it; on an
    # exponential profile the classes at the cuts then fall in the medium group.
    low, high = math.log(min(counts)), math.log(max(counts))
    many = float(math.floor(math.exp(low + 2 * (high - low) / 3) + 1e-9))
    few = float(math.floor(math.exp(low + (high - low) / 3) + 1e-9))
    note = (
        f"the standard 100 / 20 would leave the {' and '.join(empty)} group(s) empty, so the "
        f"range of class sizes {min(counts)}–{max(counts)} is cut in thirds on a log scale"
    )
    return ShotThresholds(many, few, note)


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


@torch.no_grad()
def encode(encoder: nn.Module, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Features of ``x`` (float32 (N, feature_dim)) with the encoder in eval mode (its mode is
    restored after)."""
    was_training = encoder.training
    encoder.eval()
    try:
        parts = [encoder(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
        if not parts:
            parts.append(encoder(x[:0]))
    finally:
        encoder.train(was_training)
    return torch.cat(parts)


@torch.no_grad()
def knn_predict(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    features: torch.Tensor,
    num_classes: int,
    k: int = 20,
    temperature: float = 0.07,
) -> torch.Tensor:
    """Weighted k-nearest-neighbour classes (cosine similarity, weights exp(sim / T)), the
    usual label-free check of a contrastive encoder; int64 (N,)."""
    a = torch.nn.functional.normalize(train_features, dim=1)
    b = torch.nn.functional.normalize(features, dim=1)
    k = min(k, len(a))
    out = []
    for start in range(0, len(b), 1024):
        sim, idx = (b[start : start + 1024] @ a.T).topk(k, dim=1)
        votes = torch.zeros((len(sim), num_classes), dtype=sim.dtype, device=sim.device)
        votes.scatter_add_(1, train_labels[idx], torch.exp(sim / temperature))
        out.append(votes.argmax(dim=1))
    return torch.cat(out) if out else torch.empty(0, dtype=torch.int64, device=features.device)


class Validator:
    """Accuracy on the validation split during training (the test set is kept for the end).

    Parameters
    ----------
    x_val, y_val : torch.Tensor
        float32 (N, C, H, W) and int64 (N,) validation images and labels, on the run's device.
    x_train, y_train : torch.Tensor
        The training images and labels (the k-NN check of stage 1 votes with them).
    train_counts : sequence of int
        Training images per class (they decide each class's shot group).
    thresholds : ShotThresholds
    batch_size : int
        Inference batch.
    """

    def __init__(
        self,
        x_val: torch.Tensor,
        y_val: torch.Tensor,
        x_train: torch.Tensor,
        y_train: torch.Tensor,
        train_counts: Sequence[int],
        thresholds: ShotThresholds,
        batch_size: int,
    ) -> None:
        self.x_val, self.y_val, self.x_train, self.y_train = x_val, y_val, x_train, y_train
        self.train_counts, self.thresholds, self.batch_size = train_counts, thresholds, batch_size
        self.labels = y_val.cpu().numpy()

    @property
    def empty(self) -> bool:
        return len(self.labels) == 0

    def _record(self, predictions: torch.Tensor, prefix: str) -> dict[str, float]:
        m = evaluate_predictions(
            predictions.cpu().numpy(), self.labels, self.train_counts, self.thresholds
        )
        record = {f"{prefix}_{g}": getattr(m, g) for g in ("overall", "many", "medium", "few")}
        # The mean of the per-class accuracies: what "overall" means on a balanced test set, and
        # the figure to tune on when the validation split is as long-tailed as the training set.
        present = [a for a in m.per_class if not math.isnan(a)]
        record[f"{prefix}_balanced"] = float(np.mean(present)) if present else math.nan
        return record

    def classifier(self, model: nn.Module) -> dict[str, float]:
        """val_overall/many/medium/few/balanced of a classifier (logits model)."""
        return self._record(predict(model, self.x_val, self.batch_size), "val")

    def head(self, encoder: nn.Module, head: nn.Module) -> dict[str, float]:
        """The same for a linear head on (frozen) encoder features."""
        with torch.no_grad():
            logits = head(encode(encoder, self.x_val, self.batch_size))
        return self._record(logits.argmax(dim=1), "val")

    def knn(self, encoder: nn.Module) -> dict[str, float]:
        """val_knn_overall/many/medium/few/balanced: k-NN on the encoder's features (stage 1)."""
        bank = encode(encoder, self.x_train, self.batch_size)
        queries = encode(encoder, self.x_val, self.batch_size)
        num_classes = len(self.train_counts)
        return self._record(knn_predict(bank, self.y_train, queries, num_classes), "val_knn")
