"""Losses: Balanced Negative Sampling (BNS) for stage 1, and the logit-adjusted family.

BNS notation as in the paper (Lin & Yuan 2025, Eq. 12): a batch of B images with labels y; view
1 of image i is the anchor q_i, view 2 the key v_i; both L2-normalised, similarities scaled by
1/tau.

Logit adjustment (Menon et al., ICLR 2021) shifts the logits by ``tau * log prior``: added
inside the training loss (the logit-adjusted loss; balanced softmax, Ren et al. NeurIPS 2020,
is the case tau = 1), or subtracted after training (post-hoc adjustment).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "Criterion",
    "LogitAdjusted",
    "bns_loss",
    "bns_loss_code",
    "log_prior",
    "ldam_drw_loss",
    "logit_adjusted_cross_entropy",
    "make_criterion",
    "same_class_partners",
]

#: A supervised loss: ``criterion(logits, labels, epoch) -> scalar``.
Criterion = Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]
#: LDAM-DRW (Cao et al., NeurIPS 2019): the largest margin, the logit scale, the effective-
#: number beta of the deferred re-weighting, and the fraction of the phase before it starts
#: (160 of 200 epochs in the paper).
LDAM_MAX_MARGIN, LDAM_SCALE, DRW_BETA, DRW_START = 0.5, 30.0, 0.9999, 0.8


def log_prior(
    counts: Sequence[float],
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """log(n_c / sum n), (C,) of ``dtype`` on ``device``: the class prior of a training set.

    Raises ValueError when a count is not positive (log 0 would make a class unpredictable).
    """
    values = torch.tensor([float(n) for n in counts], dtype=torch.float64)
    if values.ndim != 1 or len(values) == 0 or not bool((values > 0).all()):
        raise ValueError(f"counts must be positive class counts; got {list(counts)}")
    return torch.log(values / values.sum()).to(device=device, dtype=dtype)


def logit_adjusted_cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, prior_log: torch.Tensor, tau: float
) -> torch.Tensor:
    """Mean of -log softmax(logits + tau * log prior)[y] (Menon et al. 2021, Eq. 10).

    With ``tau = 1`` this is the balanced softmax; ``tau = 0`` is plain cross-entropy. The
    shift makes head classes win only by a margin ``tau * log(pi_head / pi_tail)`` during
    training, so the raw logits that are used at test time are calibrated for a uniform prior.

    Parameters
    ----------
    logits : torch.Tensor
        float (B, C).
    labels : torch.Tensor
        int64 (B,).
    prior_log : torch.Tensor
        float (C,) log class prior (:func:`log_prior`), on ``logits``' device.
    tau : float
        >= 0.
    """
    if prior_log.shape != (logits.shape[-1],):
        raise ValueError(
            f"prior_log must have shape ({logits.shape[-1]},); got {tuple(prior_log.shape)}"
        )
    return F.cross_entropy(logits + tau * prior_log.to(logits.dtype), labels)


def ldam_drw_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    counts: Sequence[int],
    reweight: bool,
    *,
    max_margin: float = LDAM_MAX_MARGIN,
    scale: float = LDAM_SCALE,
    beta: float = DRW_BETA,
) -> torch.Tensor:
    """The LDAM loss (Cao et al., NeurIPS 2019, Eq. 13), re-weighted when ``reweight`` (DRW).

    ``logits`` are cosine similarities (a :class:`~ipdpp_train.models.NormedLinear` head); the
    true class's logit is lowered by the margin ``Delta_c = max_margin * (n_min / n_c)^(1/4)``
    before scaling by ``scale`` and cross-entropy. With ``reweight``, class c's terms are
    weighted by ``(1 - beta) / (1 - beta^n_c)`` (the inverse effective number of Cui et al.
    2019), normalised to sum to C: the deferred re-weighting of the paper's last epochs.

    Parameters
    ----------
    logits : torch.Tensor
        float (B, C) cosine logits.
    labels : torch.Tensor
        int64 (B,).
    counts : sequence of int
        Training images per class (C,).
    reweight : bool
    """
    n = torch.tensor([float(c) for c in counts], dtype=torch.float64)
    margins = max_margin * (n.min() / n) ** 0.25
    shift = torch.zeros_like(logits)
    shift[torch.arange(len(labels)), labels] = margins.to(logits)[labels]
    weight = None
    if reweight:
        w = (1.0 - beta) / (1.0 - torch.pow(torch.tensor(beta, dtype=torch.float64), n))
        weight = (w * len(counts) / w.sum()).to(logits)
    return F.cross_entropy(scale * (logits - shift), labels, weight=weight)


def make_criterion(
    loss: str, loss_tau: float, counts: Sequence[int], epochs: int, device: torch.device
) -> Criterion:
    """The training loss of a method: ``"ce"``, ``"logit-adjusted"`` (τ ``loss_tau``),
    ``"balanced-softmax"`` (τ 1) or ``"ldam-drw"`` (re-weighted from epoch
    ``ceil(DRW_START * epochs)`` on); ``counts`` is the class size of what the phase trains on."""
    if loss == "ce":
        return lambda logits, labels, epoch: F.cross_entropy(logits, labels)
    if loss in ("logit-adjusted", "balanced-softmax"):
        prior = log_prior(counts, device)
        tau = 1.0 if loss == "balanced-softmax" else loss_tau
        return lambda logits, labels, epoch: logit_adjusted_cross_entropy(
            logits, labels, prior, tau
        )
    if loss == "ldam-drw":
        start = math.ceil(DRW_START * epochs)
        return lambda logits, labels, epoch: ldam_drw_loss(
            logits, labels, counts, reweight=epoch >= start
        )
    raise ValueError(f"unknown loss {loss!r}")


class LogitAdjusted(nn.Module):
    """``model(x) - tau * log prior``: post-hoc logit adjustment of a trained classifier.

    ``model`` is kept as it is (shared, not copied); the shift is a buffer, so the wrapper's
    state dict holds ``model.*`` and ``shift``.
    """

    shift: torch.Tensor

    def __init__(self, model: nn.Module, prior_log: torch.Tensor, tau: float) -> None:
        super().__init__()
        self.model, self.tau = model, float(tau)
        self.register_buffer("shift", tau * prior_log.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) - self.shift


def same_class_partners(labels: torch.Tensor, m: int) -> tuple[torch.Tensor, torch.Tensor]:
    """For each batch position, itself plus up to ``m`` other positions with the same label.

    Partners of i are the next members of i's class in batch order, cyclically, so every
    member of a class acts as a partner equally often and a class with ``c`` members in the
    batch gives each anchor ``min(m, c - 1)`` partners.

    Parameters
    ----------
    labels : torch.Tensor
        int64 (B,), any device.
    m : int
        Partners per anchor (>= 0).

    Returns
    -------
    index : torch.Tensor
        int64 (B, m + 1); column 0 is the anchor itself.
    valid : torch.Tensor
        bool (B, m + 1); False where the class has too few members (index then repeats i).
    """
    if labels.ndim != 1:
        raise ValueError(f"labels must have shape (B,); got {tuple(labels.shape)}")
    if m < 0:
        raise ValueError(f"m must be >= 0; got {m}")
    b = labels.shape[0]
    device = labels.device
    order = torch.argsort(labels, stable=True)  # members of a class are contiguous in `order`
    sorted_labels = labels[order]
    _, counts = torch.unique_consecutive(sorted_labels, return_counts=True)
    starts = torch.cumsum(counts, 0) - counts
    group = torch.repeat_interleave(torch.arange(len(counts), device=device), counts)
    rank = torch.arange(b, device=device) - starts[group]  # position within the class
    steps = torch.arange(m + 1, device=device)
    size = counts[group][:, None]
    partner_sorted = order[starts[group][:, None] + (rank[:, None] + steps) % size]
    valid_sorted = steps[None, :] < size
    index = torch.empty_like(partner_sorted)
    valid = torch.empty_like(valid_sorted)
    index[order] = partner_sorted
    valid[order] = valid_sorted
    index = torch.where(valid, index, torch.arange(b, device=device)[:, None])
    return index, valid


def _check(q: torch.Tensor, v: torch.Tensor, labels: torch.Tensor, temperature: float) -> None:
    if q.ndim != 2 or q.shape != v.shape:
        raise ValueError(
            f"q and v must have the same shape (B, D); got {tuple(q.shape)} and {tuple(v.shape)}"
        )
    if labels.shape != (q.shape[0],):
        raise ValueError(f"labels must have shape ({q.shape[0]},); got {tuple(labels.shape)}")
    if not temperature > 0:
        raise ValueError(f"temperature must be positive; got {temperature!r}")


def bns_loss(
    q: torch.Tensor, v: torch.Tensor, labels: torch.Tensor, m: int, temperature: float
) -> torch.Tensor:
    """BNS loss, paper Eq. 12, averaged over the batch.

    For anchor i with partner set A_i = {i} plus up to m other same-class positions (all of
    which share v_i as their positive) and negatives N_i = {j : y_j != y_i}:

        L_i = -1/|A_i| * sum_{a in A_i} [ log sig(q_a . v_i / tau)
                                          + sum_{j in N_i} log sig(-q_a . v_j / tau) ]

    A same-class key is never a negative, and the negatives are summed (not averaged), as Eq. 12
    writes them. Because every a in A_i has y_a = y_i, N_i is the set of other-class keys of each
    q_a, so the negative term of q_a is computed once per row of the similarity matrix.

    Parameters
    ----------
    q, v : torch.Tensor
        float (B, D) projections of view 1 and view 2 (normalised here).
    labels : torch.Tensor
        int64 (B,).
    m : int
        Extra same-class anchors per anchor.
    temperature : float
        tau > 0.

    Returns
    -------
    torch.Tensor
        Scalar loss.

    Raises
    ------
    ValueError
        For mismatched shapes, m < 0 or a non-positive temperature.
    """
    _check(q, v, labels, temperature)
    q = F.normalize(q, dim=1)
    v = F.normalize(v, dim=1)
    logits = q @ v.T / temperature  # (B, B): row a = anchor q_a, column j = key v_j
    other_class = labels[:, None] != labels[None, :]
    negative = (F.logsigmoid(-logits) * other_class).sum(dim=1)  # (B,) per anchor q_a
    index, valid = same_class_partners(labels, m)
    positive = F.logsigmoid(logits[index, torch.arange(len(labels), device=q.device)[:, None]])
    terms = (positive + negative[index]) * valid
    per_anchor = -terms.sum(dim=1) / valid.sum(dim=1)
    return per_anchor.mean()


def bns_loss_code(
    q: torch.Tensor, v: torch.Tensor, labels: torch.Tensor, temperature: float
) -> torch.Tensor:
    """The variant in the authors' released code, as PAPER.md describes it.

    Cosine similarities between all 2B views (q and v), scaled by 1/tau; P = the in-batch mean
    of exp(sim) over same-label pairs of distinct views, Q = the same mean over different-label
    pairs; loss = -log sig(P) - log sig(-Q). It pulls classes together and pushes them apart
    on average rather than per anchor. We could not read the release itself, so this is our
    reading of that description; it is offered for comparison (``stage1.loss = "code"``), not
    as the method.

    Parameters
    ----------
    q, v : torch.Tensor
        float (B, D).
    labels : torch.Tensor
        int64 (B,).
    temperature : float
        tau > 0.

    Returns
    -------
    torch.Tensor
        Scalar loss.
    """
    _check(q, v, labels, temperature)
    z = F.normalize(torch.cat([q, v]), dim=1)
    y = torch.cat([labels, labels])
    sim = torch.exp(z @ z.T / temperature)
    distinct = ~torch.eye(len(y), dtype=torch.bool, device=z.device)
    same = (y[:, None] == y[None, :]) & distinct
    different = y[:, None] != y[None, :]
    terms = []
    if same.any():
        terms.append(-F.logsigmoid(sim[same].mean()))
    if different.any():
        terms.append(-F.logsigmoid(-sim[different].mean()))
    return torch.stack(terms).sum()
