# ruff: noqa: UP007, UP045  (get_type_hints must evaluate these annotations on Python 3.9)
"""The method registry: every method a run can train is a named :class:`MethodSpec`.

The built-in methods (:data:`BUILTIN_METHODS`) cover the paper's stage 2 and the baselines a
long-tailed comparison needs; a config adds its own as ``[[variants]]`` tables with the same
keys, e.g.::

    [[variants]]
    name = "exact-kmin"
    sampler = "exact"
    k = "min"
    finetune = "classifier"

A spec says where the encoder comes from, which subset every re-sampling round trains on, how
many items per class, what is trained, with which loss, and whether the logits are shifted
after training. Which optimiser and schedule train it follows from the spec:

- ``encoder = "scratch"``: a new network trained on the whole long-tailed set with the ``[ce]``
  section's SGD schedule (``sampler = "all"``, ``finetune = "full"``);
- ``sampler = "all"`` with ``finetune = "classifier"``: a linear probe, the ``[linear_probe]``
  section (a head on frozen features of the un-augmented images);
- ``finetune = "none"``: the ``ce`` model itself, unchanged (for post-hoc adjustment);
- anything else: stage 2 (``[stage2]``): a new head on a copy of the BNS or CE encoder,
  re-trained on the sampler's subsets.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional, Union

__all__ = [
    "BUILTIN_METHODS",
    "DEFAULT_METHODS",
    "ENCODERS",
    "FINETUNES",
    "LOSSES",
    "METHOD_LABELS",
    "MethodSpec",
    "SAMPLERS",
    "k_per_class_for",
    "resolved",
    "trainer_of",
    "validate_spec",
]

ENCODERS = ("scratch", "bns", "ce")
#: Subset samplers; the first four draw with ``ipdpp.balanced_subset`` (exact, paper, random,
#: greedy), "features" with its ``features=`` quality-diversity kernel.
SAMPLERS = (
    "all",
    "class-balanced",
    "random",
    "fixed-random",
    "exact",
    "features",
    "greedy",
    "paper",
)
#: The ``ipdpp.balanced_subset`` mode of each subset sampler.
SUBSET_MODES = {
    "random": "random",
    "fixed-random": "random",
    "exact": "exact",
    "features": "exact",
    "greedy": "greedy",
    "paper": "paper",
}
FINETUNES = ("full", "classifier", "none")
LOSSES = ("ce", "logit-adjusted", "balanced-softmax", "ldam-drw")
K_RULES = ("10x-min", "min")
#: How stage 2 computes p (see :mod:`ipdpp_train.scores`).
SCORES = ("augmented", "clean", "out-of-fold")


@dataclass(frozen=True)
class MethodSpec:
    """One method: a ``[[variants]]`` table of the config, or a built-in.

    Attributes
    ----------
    name : str
        The name ``run.methods`` selects it by, and its output folder.
    encoder : str
        ``"bns"`` (stage 1), ``"ce"`` (the encoder of the ``ce`` method's model) or
        ``"scratch"`` (a new network trained from scratch on the long-tailed set).
    sampler : str
        ``"all"`` (every item, no subset), ``"class-balanced"`` (every epoch, as many draws as
        a k-subset has items, each a uniform class then a uniform item of it, with
        replacement: the class-balanced sampling of cRT, Kang et al. ICLR 2020),
        ``"random"`` (a uniform k-subset per class, re-drawn every round), ``"fixed-random"``
        (one such subset drawn in round 0 and kept: the authors' release in effect),
        ``"exact"`` (exact IP-DPP k-DPP), ``"features"`` (exact k-DPP with the
        quality-diversity kernel of the current features), ``"greedy"`` (greedy MAP of the
        IP-DPP kernel) or ``"paper"`` (the paper's Algorithm 1).
    k : str, int or None
        Items per class: ``"10x-min"`` (10 x the smallest class, the paper), ``"min"`` (the
        smallest class size), an int, or None for ``stage2.k_per_class``.
    finetune : str or None
        ``"full"`` (encoder and new head), ``"classifier"`` (the head only), ``"none"``
        (the ``ce`` model unchanged); None for ``stage2.finetune``.
    loss : str
        ``"ce"``, ``"logit-adjusted"`` (cross-entropy of ``logits + loss_tau * log prior``,
        Menon et al. ICLR 2021) or ``"balanced-softmax"`` (the same with ``loss_tau = 1``,
        Ren et al. NeurIPS 2020), or ``"ldam-drw"`` (label-distribution-aware margins on a
        cosine head with deferred re-weighting, Cao et al. NeurIPS 2019; from scratch only).
        The prior (class sizes) is that of what the phase trains on (the long-tailed set, or
        ``min(k, N_c)`` per class for a subset).
    loss_tau : float
        τ of the logit-adjusted loss (at the default 1 it is the balanced softmax: the
        built-ins ``la-loss`` and ``balanced-softmax`` then train the same model, as the two
        papers' losses coincide; a variant with another τ differs).
    scores : str or None
        How stage 2 computes p: ``"augmented"``, ``"clean"`` or ``"out-of-fold"`` (see
        :mod:`ipdpp_train.scores`); None for ``stage2.scores``.
    posthoc_tau : float or str
        Post-hoc logit adjustment: predict ``argmax(logits - τ log prior)``; 0 is off, a
        number fixes τ, ``"validation"`` chooses it on the validation split from
        ``eval.posthoc_tau_grid`` (highest class-averaged accuracy; ties: the smallest τ).

    Reports name a built-in by its :data:`METHOD_LABELS` entry and a variant by its name.
    """

    name: str = ""  # required; a default only so that a missing name gets a clear message
    encoder: str = "bns"
    sampler: str = "exact"
    k: Union[int, str, None] = None
    finetune: Optional[str] = None
    loss: str = "ce"
    loss_tau: float = 1.0
    scores: Optional[str] = None
    posthoc_tau: Union[float, str] = 0.0


_LABELS: dict[str, str] = {}


def _builtin(name: str, label: str, **keys: object) -> MethodSpec:
    _LABELS[name] = label
    return MethodSpec(name=name, **keys)  # type: ignore[arg-type]


_SCRATCH = {"encoder": "scratch", "sampler": "all", "finetune": "full"}
#: The built-in methods, in the order a report lists them.
BUILTIN_METHODS: dict[str, MethodSpec] = {
    spec.name: spec
    for spec in (
        _builtin("ce", "CE on the full LT set", **_SCRATCH),
        _builtin(
            "ce+crt",
            "CE + classifier re-training (cRT)",
            encoder="ce",
            sampler="class-balanced",
            finetune="classifier",
        ),
        _builtin(
            "ce+la",
            "CE + post-hoc logit adjustment",
            encoder="ce",
            sampler="all",
            finetune="none",
            posthoc_tau="validation",
        ),
        _builtin("la-loss", "logit-adjusted loss", loss="logit-adjusted", **_SCRATCH),
        _builtin("balanced-softmax", "balanced softmax", loss="balanced-softmax", **_SCRATCH),
        _builtin("ldam-drw", "LDAM-DRW", loss="ldam-drw", **_SCRATCH),
        _builtin("random", "BNS + random class-balanced undersampling", sampler="random"),
        _builtin("fixed-random", "BNS + one fixed random subset", sampler="fixed-random"),
        _builtin("exact", "BNS + IP-DPP, exact k-DPP", sampler="exact"),
        _builtin("features", "BNS + k-DPP, feature kernel", sampler="features"),
        _builtin("greedy", "BNS + IP-DPP, greedy MAP", sampler="greedy"),
        _builtin("paper", "BNS + IP-DPP, paper's Algorithm 1", sampler="paper"),
        _builtin(
            "linear_probe", "BNS linear probe", encoder="bns", sampler="all", finetune="classifier"
        ),
    )
}
#: What ``run.methods`` runs by default.
DEFAULT_METHODS = ("ce", "random", "paper", "exact", "linear_probe")
#: Report labels of the built-in methods.
METHOD_LABELS = dict(_LABELS)


def _one_of(where: str, key: str, value: object, options: tuple[str, ...]) -> None:
    if value not in options:
        raise ValueError(f"{where}.{key} must be one of {', '.join(options)}; got {value!r}")


def validate_spec(spec: MethodSpec, where: str) -> None:
    """Check one spec; ``where`` (e.g. ``variants[0]``) starts every message, with the key."""
    if not spec.name or not isinstance(spec.name, str):
        raise ValueError(f"{where}.name is required (the name run.methods selects it by)")
    if "/" in spec.name or "\\" in spec.name or spec.name in (".", "..", "stage1"):
        raise ValueError(f"{where}.name {spec.name!r} cannot name an output folder")
    _one_of(where, "encoder", spec.encoder, ENCODERS)
    _one_of(where, "sampler", spec.sampler, SAMPLERS)
    if spec.finetune is not None:
        _one_of(where, "finetune", spec.finetune, FINETUNES)
    _one_of(where, "loss", spec.loss, LOSSES)
    if spec.scores is not None:
        _one_of(where, "scores", spec.scores, SCORES)
    if isinstance(spec.k, str):
        _one_of(where, "k", spec.k, K_RULES)
    elif spec.k is not None and not spec.k > 0:
        raise ValueError(f'{where}.k must be positive, "10x-min" or "min"; got {spec.k!r}')
    if not spec.loss_tau > 0:
        raise ValueError(f"{where}.loss_tau must be positive; got {spec.loss_tau!r}")
    if isinstance(spec.posthoc_tau, str):
        if spec.posthoc_tau != "validation":
            raise ValueError(
                f'{where}.posthoc_tau must be a number or "validation"; got {spec.posthoc_tau!r}'
            )
    elif not spec.posthoc_tau >= 0:
        raise ValueError(f"{where}.posthoc_tau must be >= 0; got {spec.posthoc_tau!r}")
    if spec.encoder == "scratch" and (spec.sampler != "all" or spec.finetune not in ("full", None)):
        raise ValueError(
            f'{where}: encoder = "scratch" trains a new network on the whole set; it needs '
            f'sampler = "all" and finetune = "full" (got {spec.sampler!r}, {spec.finetune!r})'
        )
    if spec.finetune == "none" and spec.encoder != "ce":
        raise ValueError(
            f'{where}.finetune = "none" reuses the ce model as it is; it needs encoder = "ce"'
        )
    if spec.loss == "ldam-drw" and spec.encoder != "scratch":
        raise ValueError(
            f'{where}.loss = "ldam-drw" trains from scratch; it needs encoder = "scratch"'
        )
    if spec.finetune == "none" and spec.loss != "ce":
        raise ValueError(f'{where}.loss has no effect with finetune = "none"; leave it "ce"')
    if trainer_of(spec) == "linear-probe" and spec.loss != "ce":
        raise ValueError(
            f'{where}.loss: a linear probe (sampler = "all", finetune = "classifier") trains '
            'with cross-entropy only; use sampler = "class-balanced" for a re-balanced head'
        )


def trainer_of(spec: MethodSpec, finetune: Optional[str] = None) -> str:
    """``"scratch"``, ``"linear-probe"``, ``"reuse"`` or ``"stage2"`` (see the module notes);
    ``finetune`` resolves a spec whose ``finetune`` is None."""
    mode = spec.finetune or finetune or "full"
    if spec.encoder == "scratch":
        return "scratch"
    if mode == "none":
        return "reuse"
    if spec.sampler == "all" and mode == "classifier":
        return "linear-probe"
    return "stage2"


def resolved(
    spec: MethodSpec, k_per_class: Optional[int], finetune: str, scores: str
) -> MethodSpec:
    """``spec`` with ``k``, ``finetune`` and ``scores`` filled in from ``[stage2]`` where they
    are None."""
    return replace(
        spec,
        k=spec.k if spec.k is not None else (k_per_class or "10x-min"),
        finetune=spec.finetune or finetune,
        scores=spec.scores or scores,
    )


def k_per_class_for(rule: Union[int, str, None], train_counts: tuple[int, ...]) -> int:
    """Items per class of a k rule: ``"10x-min"`` (None too), ``"min"`` or an int."""
    if rule is None or rule == "10x-min":
        return 10 * min(train_counts)
    if rule == "min":
        return min(train_counts)
    return int(rule)
