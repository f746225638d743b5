# ruff: noqa: UP007, UP045  (get_type_hints must evaluate these annotations on Python 3.9)
"""Run configuration: one frozen dataclass per concern, loaded from TOML, overridable by flags.

A config file has one table per section (``[data]``, ``[model]``, ``[augment]``, ``[stage1]``,
``[stage2]``, ``[ce]``, ``[linear_probe]``, ``[eval]``, ``[run]``); every key is optional and
defaults to the field's default below. Unknown sections or keys are errors, so that a typo never
silently falls back to a default. The resolved config is written beside every run's logs.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, Optional, Union, get_args, get_origin, get_type_hints

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on Python < 3.11
    import tomli as tomllib

__all__ = [
    "AugmentConfig",
    "CEConfig",
    "Config",
    "DataConfig",
    "EvalConfig",
    "LinearProbeConfig",
    "METHODS",
    "ModelConfig",
    "RunConfig",
    "Stage1Config",
    "Stage2Config",
    "apply_overrides",
    "config_to_dict",
    "load_config",
    "to_toml",
]

#: Methods one run can compare, in the order they are run and reported.
METHODS = ("ce", "random", "paper", "exact", "linear_probe")
#: Stage-2 methods and the ``ipdpp.balanced_subset`` mode each one uses.
STAGE2_MODES = {"random": "random", "paper": "paper", "exact": "exact"}


@dataclass(frozen=True)
class DataConfig:
    """Which dataset, and how its long-tailed training split is built.

    ``n_max`` is the head-class size (None: the smallest class size of the source's training
    pool, so that every class can supply its quota); class ``c`` of the chosen ``class_order``
    gets ``floor(n_max * imbalance_factor ** (-c / (C - 1)))`` images.
    """

    source: str = "digits"  # digits | fashion-mnist | cifar10 | cifar100 | npz
    data_dir: Optional[str] = None  # None: the source's default location
    imbalance_factor: float = 100.0
    n_max: Optional[int] = None
    class_order: Union[str, list[int]] = "index"  # "index" | "hard-tail" | explicit permutation
    data_seed: int = 0  # per-class shuffles; separate from the training seed
    test_per_class: int = 50  # digits only: images per class held out for the balanced test set


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
    resample_every: int = 10  # R: re-score the training set and draw a new subset every R epochs
    k_per_class: Optional[int] = None  # None: 10 * (smallest class size), as in the paper
    alpha: Union[str, float] = "paper"  # "paper" (1/N) | "code" (1/N^2) | float
    finetune: str = "full"  # "full" (encoder + new head) | "classifier" (head only)


@dataclass(frozen=True)
class CEConfig:
    """The cross-entropy baseline: the same backbone trained from scratch on the full LT set."""

    epochs: int = 30
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_epochs: int = 2


@dataclass(frozen=True)
class LinearProbeConfig:
    """A linear classifier on frozen BNS features, trained on the full LT set."""

    epochs: int = 100
    batch_size: int = 256
    lr: float = 1e-2
    weight_decay: float = 1e-4


@dataclass(frozen=True)
class EvalConfig:
    """Many/medium/few split: many > ``many_threshold`` >= medium >= ``few_threshold`` > few.

    None: the standard 100 / 20 training images, scaled by ``n_max / 500`` (the CIFAR-100-LT
    head size the standard thresholds were set for), so that small datasets get a split too.
    The thresholds used are stated in every report.
    """

    many_threshold: Optional[float] = None
    few_threshold: Optional[float] = None
    batch_size: int = 1024


@dataclass(frozen=True)
class RunConfig:
    """What to run and where."""

    name: str = "run"
    methods: tuple[str, ...] = METHODS
    seed: int = 0
    device: str = "cpu"  # cpu | cuda | cuda:N
    out_dir: str = "runs"  # the run writes into out_dir/name
    threads: Optional[int] = None  # torch intra-op threads (None: torch's default)
    progress: bool = True
    resume: bool = False


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

    def __post_init__(self) -> None:
        validate(self)


def _coerce(value: Any, hint: Any, name: str) -> Any:
    """Convert a TOML value to the field type ``hint``; raise naming ``name`` when it cannot."""
    origin = get_origin(hint)
    if origin is Union:
        options = get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, name)
            except (TypeError, ValueError) as exc:
                errors.append(str(exc))
        raise TypeError(f"{name} has an unsupported value {value!r} ({'; '.join(errors)})")
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{name} must be a list; got {value!r}")
        args = get_args(hint)
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], name) for v in value)
        if origin is tuple:
            if len(value) != len(args):
                raise ValueError(f"{name} must have {len(args)} entries; got {value!r}")
            return tuple(_coerce(v, a, name) for v, a in zip(value, args))
        return [_coerce(v, args[0], name) for v in value]
    if hint is bool:
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be true or false; got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an integer; got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{name} must be a number; got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a string; got {value!r}")
        return value
    raise TypeError(f"{name}: unsupported field type {hint!r}")  # pragma: no cover


def _build(cls: type, table: dict[str, Any], prefix: str) -> Any:
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ValueError(
            f"unknown key(s) {', '.join(prefix + k for k in unknown)}; "
            f"valid keys in [{prefix.rstrip('.')}]: {', '.join(sorted(known))}"
        )
    kwargs = {}
    for key, value in table.items():
        hint = hints[key]
        if is_dataclass(hint):
            if not isinstance(value, dict):
                raise TypeError(f"[{prefix}{key}] must be a table; got {value!r}")
            kwargs[key] = _build(hint, value, f"{prefix}{key}.")  # type: ignore[arg-type]
        else:
            kwargs[key] = _coerce(value, hint, prefix + key)
    return cls(**kwargs)


def config_from_dict(table: dict[str, Any]) -> Config:
    """Build a :class:`Config` from nested dicts (TOML tables); unknown keys raise ValueError."""
    return _build(Config, table, "")


def config_to_dict(config: Any) -> dict[str, Any]:
    """Nested plain dicts (tuples become lists, None entries are dropped for TOML)."""
    out: dict[str, Any] = {}
    for f in fields(config):
        value = getattr(config, f.name)
        if is_dataclass(value):
            out[f.name] = config_to_dict(value)
        elif isinstance(value, tuple):
            out[f.name] = list(value)
        else:
            out[f.name] = value
    return out


def load_config(path: Optional[Union[str, Path]] = None) -> Config:
    """Read a TOML config file (None: all defaults).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError, TypeError
        For unknown keys or values of the wrong type (the message names the key).
    """
    if path is None:
        return Config()
    with open(path, "rb") as fh:
        table = tomllib.load(fh)
    return config_from_dict(table)


def _parse_value(text: str) -> Any:
    """A flag value as TOML (``3``, ``0.5``, ``true``, ``[1, 2]``, ``"x"``), else a bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(config: Config, assignments: list[str]) -> Config:
    """Apply ``section.key=value`` assignments (values in TOML syntax) to a config.

    Raises
    ------
    ValueError
        For a malformed assignment or an unknown section/key.
    """
    table = config_to_dict(config)
    for item in assignments:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise ValueError(f"--set expects section.key=value; got {item!r}")
        path, text = item.split("=", 1)
        section, key = path.strip().split(".", 1)
        if section not in table:
            raise ValueError(f"--set {item!r}: unknown section {section!r}")
        table[section][key.strip()] = _parse_value(text.strip())
    return config_from_dict(_drop_none(table))


def _drop_none(table: dict[str, Any]) -> dict[str, Any]:
    return {
        k: _drop_none(v) if isinstance(v, dict) else v for k, v in table.items() if v is not None
    }


def with_section(config: Config, section: str, **changes: Any) -> Config:
    """A copy of ``config`` with fields of one section replaced (validated again)."""
    return replace(config, **{section: replace(getattr(config, section), **changes)})


def to_toml(config: Config) -> str:
    """The config as TOML text (None values are omitted: they mean "the default")."""
    lines: list[str] = []
    for section, table in config_to_dict(config).items():
        lines.append(f"[{section}]")
        for key, value in table.items():
            if value is not None:
                lines.append(f"{key} = {json.dumps(value)}")
        lines.append("")
    return "\n".join(lines)


def _positive(name: str, value: Union[int, float]) -> None:
    if not value > 0:
        raise ValueError(f"{name} must be positive; got {value!r}")


def validate(config: Config) -> None:
    """Check values that the type system cannot (raises ValueError naming the key)."""
    d, s1, s2 = config.data, config.stage1, config.stage2
    if d.source not in ("digits", "fashion-mnist", "cifar10", "cifar100", "npz"):
        raise ValueError(
            "data.source must be one of digits, fashion-mnist, cifar10, cifar100, npz; "
            f"got {d.source!r}"
        )
    if not d.imbalance_factor >= 1:
        raise ValueError(f"data.imbalance_factor must be >= 1; got {d.imbalance_factor!r}")
    if d.n_max is not None:
        _positive("data.n_max", d.n_max)
    if isinstance(d.class_order, str) and d.class_order not in ("index", "hard-tail"):
        raise ValueError(
            f'data.class_order must be "index", "hard-tail" or a list; got {d.class_order!r}'
        )
    _positive("data.test_per_class", d.test_per_class)
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
    if not r.methods:
        raise ValueError("run.methods must name at least one method")
    bad = [m for m in r.methods if m not in METHODS]
    if bad or len(set(r.methods)) != len(r.methods):
        raise ValueError(
            f"run.methods must be distinct entries of {', '.join(METHODS)}; got {list(r.methods)}"
        )
    if r.device != "cpu" and not r.device.startswith("cuda"):
        raise ValueError(f'run.device must be "cpu", "cuda" or "cuda:N"; got {r.device!r}')
    if r.threads is not None:
        _positive("run.threads", r.threads)


def dumps_json(config: Config) -> str:
    """The config as indented JSON."""
    return json.dumps(dataclasses.asdict(config), indent=2)
