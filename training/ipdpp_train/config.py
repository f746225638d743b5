# ruff: noqa: UP007, UP045  (get_type_hints must evaluate these annotations on Python 3.9)
"""Run configuration: one frozen dataclass per concern, loaded from TOML, overridable by flags.

A config file has one table per section (``[data]``, ``[model]``, ``[augment]``, ``[stage1]``,
``[stage2]``, ``[ce]``, ``[linear_probe]``, ``[eval]``, ``[run]``) and any number of
``[[variants]]`` tables (methods of one's own, see :mod:`ipdpp_train.methods`); every key is
optional and defaults to the field's default below. Unknown sections or keys are errors, so
that a typo never silently falls back to a default (:mod:`ipdpp_train.config_io` reads and
writes them). The resolved config is written beside every run's logs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Union

from .methods import BUILTIN_METHODS, DEFAULT_METHODS, SCORES, MethodSpec, validate_spec

__all__ = [
    "AugmentConfig",
    "CEConfig",
    "Config",
    "DataConfig",
    "EvalConfig",
    "LinearProbeConfig",
    "METHODS",
    "MethodSpec",
    "ModelConfig",
    "RunConfig",
    "Stage1Config",
    "Stage2Config",
    "data_profile",
    "method_specs",
    "validate",
]

#: The built-in methods (``[[variants]]`` add more).
METHODS = tuple(BUILTIN_METHODS)
#: What one invocation does (RunConfig.stage).
RUN_STAGES = ("all", "stage2", "eval")
#: Sources whose data are a user's own, used as given by default.
USER_SOURCES = ("npz", "folder")
SOURCES = ("digits", "fashion-mnist", "cifar10", "cifar100", *USER_SOURCES)


@dataclass(frozen=True)
class DataConfig:
    """Which dataset, how its training split is built, and which images validate.

    ``profile = "exponential"`` cuts the standard long-tailed split out of a (balanced) source:
    class ``c`` of ``class_order`` keeps ``floor(n_max * imbalance_factor ** (-c / (C - 1)))``
    images (``n_max`` None: the smallest class of the source's training pool). ``"as-given"``
    uses every training image as it is (a user's own long-tailed data). None picks
    ``"as-given"`` for the user sources (``npz``, ``folder``) and ``"exponential"`` for the
    benchmarks (digits, fashion-mnist, cifar10, cifar100).

    Validation (never the test set) comes from the source's own validation images when it has
    them; else, under the exponential profile, ``val_per_class`` images of every class that the
    split left unused (fewer where a class has fewer to spare); else ``val_fraction`` of every
    class's training images is held out (at least one of any class with two or more).
    """

    source: str = "digits"  # digits | fashion-mnist | cifar10 | cifar100 | npz | folder
    data_dir: Optional[str] = None  # None: the source's default location
    profile: Optional[str] = None  # "as-given" | "exponential" | None (by source, see above)
    imbalance_factor: float = 100.0
    n_max: Optional[int] = None
    class_order: Union[str, list[int]] = "index"  # "index" | "hard-tail" | explicit permutation
    data_seed: int = 0  # per-class shuffles; separate from the training seed
    test_per_class: int = 50  # digits only: images per class held out for the balanced test set
    val_per_class: int = 20  # exponential profile: balanced validation from unused images
    val_fraction: float = 0.1  # as-given data without validation images of its own
    image_size: Optional[int] = None  # resize (downsample) every image to this square size


@dataclass(frozen=True)
class ModelConfig:
    """Backbone and projection head."""

    arch: str = "small_cnn"  # small_cnn | resnet18 | resnet32
    width: int = 32  # small_cnn only: channels of the first block (doubled twice)
    projection_hidden: int = 512
    projection_dim: int = 128


@dataclass(frozen=True)
class AugmentConfig:
    """Batched on-device augmentations (see training/augment.py)."""

    flip: bool = True  # horizontal flips; off for digits, whose mirror images are other shapes
    crop_padding: Optional[int] = None  # None: image_size // 8 (4 px on 32x32 images)
    # Stage-1 (contrastive) views: random resized crop, photometric jitter, noise.
    min_crop_scale: float = 0.35
    jitter_strength: float = 0.4
    jitter_probability: float = 0.8
    grayscale_probability: float = 0.2  # colour images only
    noise_std: float = 0.05
    noise_probability: float = 0.5


@dataclass(frozen=True)
class Stage1Config:
    """BNS pre-training (paper Eq. 12)."""

    epochs: int = 100
    batch_size: int = 256
    lr: float = 1e-3  # per 256 images; scaled linearly with the global batch size
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.95)
    warmup_epochs: int = 10
    steps: Optional[int] = None  # optimiser steps; when set, replaces epochs (see Schedule)
    warmup_steps: Optional[int] = None  # None: warmup_epochs worth of steps
    temperature: float = 0.5
    partners: int = 2  # m: extra same-class anchors sharing each anchor's positive
    loss: str = "paper"  # "paper" (Eq. 12) | "code" (the released code's mean-exp variant)


@dataclass(frozen=True)
class Stage2Config:
    """Re-training on class-balanced subsets (IP-DPP, the paper's Algorithm 1, or random)."""

    epochs: int = 30
    batch_size: int = 64
    lr: float = 2.5e-4
    weight_decay: float = 0.05
    warmup_epochs: int = 3
    steps: Optional[int] = None
    warmup_steps: Optional[int] = None
    resample_every: int = 10  # R: re-score the training set and draw a new subset every R epochs
    k_per_class: Optional[int] = None  # None: 10 * (smallest class size), as in the paper
    alpha: Union[str, float] = "paper"  # "paper" (1/N) | "code" (1/N^2) | float
    finetune: str = "full"  # "full" (encoder + new head) | "classifier" (head only)
    # p of every item: "augmented" (eval mode on one weak-augmented view of each training image,
    # as the authors' release scores), "clean" (the un-augmented images) or "out-of-fold" (the
    # clean image scored by a copy trained only on the other folds' items; doubles stage 2's cost).
    scores: str = "augmented"
    score_folds: int = 2  # out-of-fold scores: stratified folds of the training set


@dataclass(frozen=True)
class CEConfig:
    """The cross-entropy baseline: the same backbone trained from scratch on the full LT set."""

    epochs: int = 30
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_epochs: int = 2
    steps: Optional[int] = None
    warmup_steps: Optional[int] = None


@dataclass(frozen=True)
class LinearProbeConfig:
    """A linear classifier on frozen BNS features, trained on the full LT set."""

    epochs: int = 100
    batch_size: int = 256
    lr: float = 1e-2
    weight_decay: float = 1e-4
    steps: Optional[int] = None


@dataclass(frozen=True)
class EvalConfig:
    """Many/medium/few split: many > ``many_threshold`` >= medium >= ``few_threshold`` > few.

    None: the standard 100 / 20 training images; where they would leave a group without
    classes, thresholds derived from the class sizes instead (their log range cut in thirds,
    which gives about 100 / 20 on CIFAR-100-LT itself). The thresholds used and why are stated
    in every report.
    """

    many_threshold: Optional[float] = None
    few_threshold: Optional[float] = None
    batch_size: int = 1024
    val_every: Optional[int] = None  # epochs between validation passes (None: ~10 per phase)
    # Post-hoc logit adjustment with posthoc_tau = "validation": the τ tried, on validation only.
    posthoc_tau_grid: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0)


@dataclass(frozen=True)
class RunConfig:
    """What to run and where."""

    name: str = "run"
    methods: tuple[str, ...] = DEFAULT_METHODS  # built-in names and [[variants]] names
    seed: int = 0
    device: str = "cpu"  # cpu | cuda | cuda:N
    out_dir: str = "runs"  # the run writes into out_dir/name
    threads: Optional[int] = None  # torch intra-op threads (None: torch's default)
    progress: bool = True
    resume: bool = False
    save_every: int = 1  # epochs between checkpoints (the last epoch is always saved)
    # Reuse an encoder instead of training stage 1: a run folder (its stage1/), a phase folder
    # of a finished run (stage1/ for the BNS encoder, ce/ for the CE model's) or a checkpoint.
    from_stage1: Optional[str] = None
    stage: str = "all"  # "all" | "stage2" (stage 1 loaded, never trained) | "eval" (no training)


@dataclass(frozen=True)
class Config:
    """The whole run."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    stage1: Stage1Config = field(default_factory=Stage1Config)
    stage2: Stage2Config = field(default_factory=Stage2Config)
    ce: CEConfig = field(default_factory=CEConfig)
    linear_probe: LinearProbeConfig = field(default_factory=LinearProbeConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    run: RunConfig = field(default_factory=RunConfig)
    variants: tuple[MethodSpec, ...] = ()

    def __post_init__(self) -> None:
        validate(self)


def _positive(name: str, value: Union[int, float]) -> None:
    if not value > 0:
        raise ValueError(f"{name} must be positive; got {value!r}")


def validate(config: Config) -> None:
    """Check values that the type system cannot (raises ValueError naming the key)."""
    d, s1, s2 = config.data, config.stage1, config.stage2
    if d.source not in SOURCES:
        raise ValueError(f"data.source must be one of {', '.join(SOURCES)}; got {d.source!r}")
    if d.profile not in (None, "as-given", "exponential"):
        raise ValueError(f'data.profile must be "as-given" or "exponential"; got {d.profile!r}')
    if not d.imbalance_factor >= 1:
        raise ValueError(f"data.imbalance_factor must be >= 1; got {d.imbalance_factor!r}")
    if d.n_max is not None:
        _positive("data.n_max", d.n_max)
    if isinstance(d.class_order, str) and d.class_order not in ("index", "hard-tail"):
        raise ValueError(
            f'data.class_order must be "index", "hard-tail" or a list; got {d.class_order!r}'
        )
    if data_profile(d) == "as-given" and (d.n_max is not None or d.class_order != "index"):
        raise ValueError(
            'data.n_max and data.class_order shape the "exponential" profile only; data '
            f'{d.source!r} is used as given (set data.profile = "exponential" to re-cut it)'
        )
    _positive("data.test_per_class", d.test_per_class)
    if d.val_per_class < 0:
        raise ValueError(f"data.val_per_class must be >= 0; got {d.val_per_class!r}")
    if not 0 <= d.val_fraction < 1:
        raise ValueError(f"data.val_fraction must lie in [0, 1); got {d.val_fraction!r}")
    if d.image_size is not None and d.image_size < 4:
        raise ValueError(f"data.image_size must be >= 4 pixels; got {d.image_size!r}")
    if config.model.arch not in ("small_cnn", "resnet18", "resnet32"):
        raise ValueError(
            f"model.arch must be small_cnn, resnet18 or resnet32; got {config.model.arch!r}"
        )
    for name in ("width", "projection_hidden", "projection_dim"):
        _positive(f"model.{name}", getattr(config.model, name))
    a = config.augment
    if not 0 < a.min_crop_scale <= 1:
        raise ValueError(f"augment.min_crop_scale must lie in (0, 1]; got {a.min_crop_scale!r}")
    for name in ("jitter_probability", "grayscale_probability", "noise_probability"):
        value = getattr(a, name)
        if not 0 <= value <= 1:
            raise ValueError(f"augment.{name} must lie in [0, 1]; got {value!r}")
    for section, cfg in (("stage1", s1), ("stage2", s2), ("ce", config.ce)):
        if cfg.epochs < 0:
            raise ValueError(f"{section}.epochs must be >= 0; got {cfg.epochs!r}")
        _positive(f"{section}.batch_size", cfg.batch_size)
        _positive(f"{section}.lr", cfg.lr)
        if cfg.warmup_epochs < 0:
            raise ValueError(f"{section}.warmup_epochs must be >= 0; got {cfg.warmup_epochs!r}")
        if cfg.warmup_steps is not None and cfg.warmup_steps < 0:
            raise ValueError(f"{section}.warmup_steps must be >= 0; got {cfg.warmup_steps!r}")
    steps = {"stage1": s1.steps, "stage2": s2.steps, "ce": config.ce.steps,
             "linear_probe": config.linear_probe.steps}  # fmt: skip
    for section, value in steps.items():
        if value is not None:
            _positive(f"{section}.steps", value)
    _positive("stage1.temperature", s1.temperature)
    if s1.partners < 0:
        raise ValueError(f"stage1.partners must be >= 0; got {s1.partners!r}")
    if s1.loss not in ("paper", "code"):
        raise ValueError(f'stage1.loss must be "paper" or "code"; got {s1.loss!r}')
    _positive("stage2.resample_every", s2.resample_every)
    if s2.k_per_class is not None:
        _positive("stage2.k_per_class", s2.k_per_class)
    if isinstance(s2.alpha, str) and s2.alpha not in ("paper", "code"):
        raise ValueError(f'stage2.alpha must be "paper", "code" or a number; got {s2.alpha!r}')
    if not isinstance(s2.alpha, str):
        _positive("stage2.alpha", s2.alpha)
    if s2.finetune not in ("full", "classifier"):
        raise ValueError(f'stage2.finetune must be "full" or "classifier"; got {s2.finetune!r}')
    _positive("linear_probe.batch_size", config.linear_probe.batch_size)
    _positive("linear_probe.lr", config.linear_probe.lr)
    e = config.eval
    if (e.many_threshold is None) != (e.few_threshold is None):
        raise ValueError("eval.many_threshold and eval.few_threshold must be given together")
    if e.many_threshold is not None and not e.many_threshold >= e.few_threshold:  # type: ignore[operator]
        raise ValueError("eval.many_threshold must be >= eval.few_threshold")
    r = config.run
    if s2.scores not in SCORES:
        raise ValueError(f"stage2.scores must be one of {', '.join(SCORES)}; got {s2.scores!r}")
    if s2.score_folds < 2:
        raise ValueError(f"stage2.score_folds must be >= 2; got {s2.score_folds!r}")
    if not e.posthoc_tau_grid or any(not t >= 0 for t in e.posthoc_tau_grid):
        raise ValueError(
            f"eval.posthoc_tau_grid must be a non-empty list of τ >= 0; got {e.posthoc_tau_grid!r}"
        )
    known = method_specs(config)
    if not r.methods:
        raise ValueError("run.methods must name at least one method")
    bad = [m for m in r.methods if m not in known]
    if bad or len(set(r.methods)) != len(r.methods):
        raise ValueError(
            f"run.methods must be distinct entries of {', '.join(known)} (built-ins and "
            f"[[variants]]); got {list(r.methods)}"
        )
    if r.device != "cpu" and not r.device.startswith("cuda"):
        raise ValueError(f'run.device must be "cpu", "cuda" or "cuda:N"; got {r.device!r}')
    if r.threads is not None:
        _positive("run.threads", r.threads)
    _positive("run.save_every", r.save_every)
    if r.stage not in RUN_STAGES:
        raise ValueError(f"run.stage must be one of {', '.join(RUN_STAGES)}; got {r.stage!r}")
    if e.val_every is not None:
        _positive("eval.val_every", e.val_every)


def method_specs(config: Config) -> dict[str, MethodSpec]:
    """Every method a config can run, by name: the built-ins, then its ``[[variants]]``
    (validated; a variant may not reuse a built-in's name or another variant's)."""
    specs = dict(BUILTIN_METHODS)
    for i, spec in enumerate(config.variants):
        where = f"variants[{i}]"
        if not isinstance(spec, MethodSpec):
            raise TypeError(f"{where} must be a variant table; got {spec!r}")
        validate_spec(spec, where)
        if spec.name in specs:
            kind = "a built-in method" if spec.name in BUILTIN_METHODS else "an earlier variant"
            raise ValueError(f"{where}.name {spec.name!r} is already {kind}; choose another")
        specs[spec.name] = spec
    return specs


def data_profile(config: DataConfig) -> str:
    """The profile a data config resolves to ("as-given" or "exponential")."""
    if config.profile is not None:
        return config.profile
    return "as-given" if config.source in USER_SOURCES else "exponential"
