"""Stage 2's scores: p_i (the probability of item i's true label) and the features of the
items, as the re-sampling rounds need them.

- ``"augmented"`` (the default, as the authors' release scores): the model in eval mode on one
  weak-augmented view (random crop, plus flip where enabled) of every training image; the views
  come from a stream keyed by (training seed, round), the same for every method.
- ``"clean"``: the model in eval mode on the un-augmented images. Items trained on in the
  previous round are then close to memorised (p ~ 1), which flattens the IP-DPP kernel.
- ``"out-of-fold"``: the training set is cut into ``F`` class-stratified folds once (keyed by
  the training seed); copy ``f`` of the model starts from the same weights as the model and
  trains alongside it, in every epoch, on the items of the current subset that are *not* in
  fold ``f`` (same optimiser, learning-rate curve and augmentation); p of an item in fold ``f``
  is copy ``f``'s score of its clean image. So no stage-2 gradient step behind an item's p has
  seen that item (stage 1 and, for a CE encoder, the CE training did see it: p is out-of-fold
  for stage 2, which is where memorisation of the subset happens). It costs one extra
  stage-2 training in total (the copies train on (F-1)/F of the subset each; F = 2 by
  default: half each). The ``"features"`` sampler then takes the features from the model
  itself (clean images); only p is out-of-fold.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .augment import weak_augment
from .config import AugmentConfig
from .engine import derive_seed
from .models import Classifier

__all__ = ["diversity_features", "fold_of", "score_pass", "scoring_view"]

#: Scoring batch (inference only, so larger than training batches).
SCORE_BATCH = 1024
#: Singular values below this fraction of the largest count as zero when deciding whether the
#: features have rank >= k in a class (conservative against the sampler's own cut-off).
RANK_RTOL = 1e-6


def scoring_view(
    augment: AugmentConfig, seed: int, round_index: int, device: torch.device
) -> Callable[[torch.Tensor], torch.Tensor]:
    """The augmented scoring view of a round: ``view(batch)`` applied to consecutive batches
    draws from one generator keyed by (seed, "stage2-score", round), never by the method."""
    g = torch.Generator(device=device)
    g.manual_seed(derive_seed(seed, "stage2-score", round_index))
    return lambda x: weak_augment(x, augment, g)


@torch.no_grad()
def score_pass(
    model: Classifier,
    x: torch.Tensor,
    y: torch.Tensor,
    view: Callable[[torch.Tensor], torch.Tensor] | None = None,
    *,
    with_features: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """p and (optionally) the encoder features of ``x``, with ``model`` in eval mode.

    Parameters
    ----------
    model : Classifier
        Its mode is restored after.
    x, y : torch.Tensor
        float32 (N, C, H, W) images and int64 (N,) labels, on the model's device.
    view : callable, optional
        Applied to every batch of :data:`SCORE_BATCH` images first (None: the clean images).
    with_features : bool
        Also return the features that gave the logits.

    Returns
    -------
    p : torch.Tensor
        float64 (N,): softmax probability of ``y`` (computed in float64, so a confident
        p = 1 - 1e-9 is not rounded to 1).
    features : torch.Tensor or None
        float32 (N, feature_dim) when ``with_features``.
    """
    was_training = model.training
    model.eval()
    ps, feats = [], []
    try:
        for start in range(0, len(x), SCORE_BATCH):
            xb = x[start : start + SCORE_BATCH]
            if view is not None:
                xb = view(xb)
            f = model.encoder(xb)
            probs = torch.softmax(model.head(f).double(), dim=1)
            ps.append(probs.gather(1, y[start : start + SCORE_BATCH, None]).squeeze(1))
            if with_features:
                feats.append(f)
    finally:
        model.train(was_training)
    p = torch.cat(ps) if ps else torch.empty(0, dtype=torch.float64, device=x.device)
    return p, (torch.cat(feats) if with_features and feats else None)


def fold_of(labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """int64 (N,): the fold of every item, class-stratified (each class is shuffled and dealt
    round-robin), keyed by ``seed`` only."""
    rng = np.random.default_rng(derive_seed(seed, "stage2-folds"))
    out = np.zeros(len(labels), dtype=np.int64)
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        out[members] = np.arange(len(members)) % folds
    return out


def _numerical_rank(rows: np.ndarray) -> int:
    if len(rows) == 0:
        return 0
    s = np.linalg.svd(rows, compute_uv=False)
    return int((s > RANK_RTOL * s[0]).sum()) if s[0] > 0 else 0


def diversity_features(
    features: np.ndarray, labels: np.ndarray, k: int, seed: int
) -> tuple[np.ndarray, str]:
    """The rows behind the ``features=`` kernel of ``ipdpp.balanced_subset``, and which map.

    The sampler's kernel ``diag(q) F̂ F̂^T diag(q)`` has rank at most the features' rank, and a
    k-DPP needs rank >= k in every class it samples. Where the L2-normalised features have that
    rank in every class with more than ``k`` items they are used as they are (``"linear"``:
    cosine similarity). Otherwise (e.g. k = 500 with 32-d features) they are lifted by random
    Fourier features (``"random-fourier"``, Rahimi & Recht 2007) of dimension D = 2k,
    approximating the Gaussian kernel ``exp(-|x - y|^2 / (2 s_c^2))`` of the normalised
    features, whose rank is full; the bandwidth s_c^2 of class c is the mean squared distance
    between its (normalised) items, ``2 - 2 |mean|^2`` times N_c / (N_c - 1). The random
    frequencies come from ``seed``.

    Parameters
    ----------
    features : numpy.ndarray
        float (N, d).
    labels : numpy.ndarray
        int (N,).
    k : int
        Items per class.
    seed : int

    Returns
    -------
    rows : numpy.ndarray
        float64 (N, d) or (N, 2k).
    kind : str
        ``"linear"`` or ``"random-fourier"``.
    """
    x = np.asarray(features, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    x = x / np.where(norms > 0, norms, 1.0)
    sampled = [c for c, n in enumerate(np.bincount(labels)) if n > k]
    if all(_numerical_rank(x[labels == c]) >= k for c in sampled):
        return x, "linear"
    rng = np.random.default_rng(derive_seed(seed, "stage2-fourier"))
    dim = 2 * k
    w = rng.standard_normal((x.shape[1], dim))
    b = rng.uniform(0.0, 2 * np.pi, dim)
    out = np.zeros((len(x), dim))
    for c in np.unique(labels):
        members = labels == c
        xc = x[members]
        n = len(xc)
        spread = (2.0 - 2.0 * float(np.sum(xc.mean(axis=0) ** 2))) * n / max(1, n - 1)
        scale = np.sqrt(max(spread, 1e-6))
        out[members] = np.sqrt(2.0 / dim) * np.cos(xc @ w / scale + b)
    return out, "random-fourier"
