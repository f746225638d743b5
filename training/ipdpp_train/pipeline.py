"""One comparison run: load data, train every requested method, evaluate, report.

Stage 1 (BNS) is trained once per run and shared by the stage-2 methods and the linear probe.
Everything goes to ``run.out_dir / run.name``::

    config.toml, config.json         the resolved config
    stage1/                          checkpoint.pt, log.csv, log.json
    <method>/                        checkpoint.pt, log.csv, log.json, metrics.json
    results.md, results.json         the comparison
    per_class_accuracy.png, class_counts.png

Runs compose (``run.stage`` and ``run.from_stage1``, flags ``--stage`` and ``--from-stage1``):

- ``from_stage1`` names a finished run folder, phase folder (``RUN/stage1`` for the BNS
  encoder, ``RUN/ce`` for the CE model's encoder) or checkpoint whose encoder replaces stage 1
  (:mod:`ipdpp_train.stage1_source`; its data and model keys must match this config's).
- ``stage = "stage2"`` trains only methods that start from a trained encoder, never one from
  scratch: the stage-1 encoder is loaded (from ``from_stage1``, else from this run folder's own
  ``stage1/``) and the CE model of ``encoder = "ce"`` methods is this run's finished ``ce/``.
- ``stage = "eval"`` trains nothing: every phase is loaded from this run folder's finished
  checkpoints (the config must be the run's own, as for ``--resume``), the test set is scored
  again and metrics.json, results.md/json and the plots are rewritten; config.* stay as they
  were.

A method's ``seconds`` are its phases' logged training seconds (per-epoch, so the same after a
resume or a re-evaluation; validation passes excluded); ``wall_seconds`` is the time this
invocation spent on it.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .baselines import (
    choose_posthoc_tau,
    require_validation,
    train_cross_entropy,
    train_linear_probe,
)
from .checkpoint import logged_seconds, write_text_atomic
from .config import Config, method_specs
from .config_io import config_to_dict, to_toml
from .data import DeviceData, load_long_tailed, to_device
from .distributed import Runtime, broadcast_object, setup_runtime, teardown_runtime
from .engine import EpochCallback, PhaseOptions, derive_seed
from .evaluate import (
    Metrics,
    ShotThresholds,
    Validator,
    evaluate_predictions,
    predict,
    shot_thresholds,
)
from .losses import LogitAdjusted, log_prior
from .methods import SUBSET_MODES, MethodSpec, k_per_class_for, resolved, trainer_of
from .models import Classifier, Encoder, NormedLinear, ProjectionHead, build_encoder
from .report import write_report
from .stage1 import train_stage1
from .stage1_source import Stage1Source, load_encoder_state, stage1_source_of
from .stage2 import default_k_per_class, train_stage2, trained_counts

__all__ = ["ExperimentResult", "run_experiment"]

# Keys that may change between an interrupted run and its --resume without changing results.
# run.methods may grow: finished phases are loaded from their checkpoints, new ones trained, so
# methods trained by separate (even concurrent) invocations end up in one comparison. The run
# folder may have been moved or copied (out_dir, name) since it was written.
_RESUME_FREE = {
    ("run", "out_dir"),
    ("run", "name"),
    ("run", "resume"),
    ("run", "progress"),
    ("run", "threads"),
    ("run", "methods"),
    ("run", "save_every"),
    ("run", "stage"),
}


@dataclass(frozen=True)
class ExperimentResult:
    """What a run produced (on rank 0; other ranks get ``metrics`` empty).

    Attributes
    ----------
    metrics : dict of str to Metrics
        Per method, in the order run.
    table : str
        The Markdown comparison (also in ``directory / "results.md"``).
    directory : pathlib.Path
    thresholds : ShotThresholds
    models : dict of str to nn.Module
        The trained models (for inspection and tests).
    """

    metrics: dict[str, Metrics]
    table: str
    directory: Path
    thresholds: ShotThresholds
    models: dict[str, nn.Module]


def _check_resumable(directory: Path, config: Config) -> None:
    saved_path = directory / "config.json"
    if not saved_path.is_file():
        return
    saved = json.loads(saved_path.read_text())
    current = json.loads(json.dumps(config_to_dict(config)))
    # Variants may be added (like run.methods), but one that already ran must not change.
    variants = current.pop("variants", [])
    old_variants = saved.pop("variants", [])
    diffs = [f"variant {v['name']!r} changed" for v in old_variants if v not in variants]
    diffs += [
        f"{section}.{key}: {saved.get(section, {}).get(key)!r} -> {value!r}"
        for section, table in current.items()
        for key, value in table.items()
        if (section, key) not in _RESUME_FREE and saved.get(section, {}).get(key) != value
    ]
    if diffs:
        raise ValueError(
            f"--resume: the config differs from the one {directory} was started with "
            f"({'; '.join(diffs)}); resume with the same settings or start a new run"
        )


class _Experiment:
    def __init__(
        self,
        config: Config,
        runtime: Runtime,
        callback: EpochCallback | None,
        source: Stage1Source | None,
    ) -> None:
        self.config, self.runtime, self.callback = config, runtime, callback
        self.source = source
        self.directory = Path(config.run.out_dir) / config.run.name
        self.host = load_long_tailed(config.data)
        self.data: DeviceData = to_device(self.host, runtime.device)
        self.mean, self.std = self.data.channel_stats()
        self.thresholds = shot_thresholds(config.eval, self.host.train_counts)
        d = self.data
        self.validator = Validator(
            d.x_val, d.y_val, d.x_train, d.y_train, self.host.train_counts, self.thresholds,
            config.eval.batch_size,
        )  # fmt: skip
        self.options = PhaseOptions(
            resume=config.run.resume,
            callback=callback,
            save_every=config.run.save_every,
            val_every=config.eval.val_every,
            validator=self.validator,
            load_only=config.run.stage == "eval",
        )
        # Under stage = "stage2" the CE model (the encoder of encoder = "ce" methods) is this
        # run's finished one, loaded; it is never trained there.
        self.ce_options = replace(self.options, load_only=config.run.stage != "all")
        self._pretrained: Encoder | None = None
        self._ce: Classifier | None = None
        self.stage1_seconds = 0.0
        self.specs = method_specs(config)
        self.notes: dict[str, dict[str, Any]] = {}  # per method, written to its metrics.json
        if any(self.specs[m].posthoc_tau == "validation" for m in config.run.methods):
            require_validation(self.validator, "posthoc_tau")  # before anything is trained

    def new_encoder(self, purpose: str) -> Encoder:
        # Seeded per purpose, so a method's initial weights do not depend on which other methods
        # ran before it in this process (or were skipped on --resume).
        torch.manual_seed(derive_seed(self.config.run.seed, purpose))
        encoder = build_encoder(self.config.model, self.host.image_shape[0], self.mean, self.std)
        return encoder.to(self.runtime.device)

    def pretrained(self) -> Encoder:
        if self._pretrained is None and self.source is not None:
            encoder = self.new_encoder("stage1-init")
            load_encoder_state(self.source, encoder)
            self._pretrained = encoder
        if self._pretrained is None:
            began = time.perf_counter()
            encoder = self.new_encoder("stage1-init")
            m = self.config.model
            head = ProjectionHead(encoder.feature_dim, m.projection_hidden, m.projection_dim)
            train_stage1(
                self.config.stage1,
                self.config.augment,
                encoder,
                head.to(self.runtime.device),
                self.data,
                self.runtime,
                self.directory / "stage1",
                self.options,
            )
            self._pretrained = encoder
            self.stage1_seconds = time.perf_counter() - began
        return self._pretrained

    def ce_model(self) -> Classifier:
        """The ``ce`` method's model (trained once per run; the CE encoder of other methods)."""
        if self._ce is None:
            self._ce = self.scratch(self.specs["ce"], self.ce_options)
        return self._ce

    def scratch(self, spec: MethodSpec, options: PhaseOptions | None = None) -> Classifier:
        cfg, rt = self.config, self.runtime
        # The same initial encoder, batch order and augmentation whatever the loss ("ce-init",
        # "ce"), so that CE and the long-tailed losses are paired.
        encoder, c = self.new_encoder("ce-init"), self.host.num_classes
        # LDAM's margins are on cosine logits.
        head = NormedLinear(encoder.feature_dim, c) if spec.loss == "ldam-drw" else None
        model = Classifier(encoder, c, head).to(rt.device)
        train_cross_entropy(
            cfg.ce, cfg.augment, model, self.data, rt, self.directory / spec.name,
            options or self.options, loss=spec.loss, loss_tau=spec.loss_tau,
        )  # fmt: skip
        return model

    def train(self, method: str) -> nn.Module:
        """Train (or, on --resume, load) one method; returns the model that is evaluated."""
        cfg = self.config
        s2 = cfg.stage2
        spec = resolved(self.specs[method], s2.k_per_class, s2.finetune, s2.scores)
        trainer = trainer_of(spec)
        counts = self.host.train_counts
        if trainer == "scratch":
            model: nn.Module = self.ce_model() if method == "ce" else self.scratch(spec)
            prior_counts = counts
        elif trainer == "reuse":
            model, prior_counts = self.ce_model(), counts
        else:
            model = self._from_encoder(spec, trainer)
            k = k_per_class_for(spec.k, counts)
            prior_counts = trained_counts(spec.sampler, k, counts)
            if trainer == "stage2":
                self.notes[method] = {"k_per_class": k, "finetune": spec.finetune}
                if spec.sampler in SUBSET_MODES:
                    self.notes[method]["scores"] = spec.scores
        return self._posthoc(spec, model, prior_counts)

    def _from_encoder(self, spec: MethodSpec, trainer: str) -> nn.Module:
        cfg, rt, directory = self.config, self.runtime, self.directory / spec.name
        num_classes = self.host.num_classes
        encoder = self.pretrained() if spec.encoder == "bns" else self.ce_model().encoder
        # Keyed by the training seed and the head's role, never by the method: every stage-2
        # method starts from the same head, so two samplers differ only by their subsets.
        role = "linear-probe-head" if trainer == "linear-probe" else "stage2-head"
        torch.manual_seed(derive_seed(cfg.run.seed, role))
        if trainer == "linear-probe":
            head = nn.Linear(encoder.feature_dim, num_classes).to(rt.device)
            train_linear_probe(
                cfg.linear_probe,
                encoder,
                head,
                self.data,
                rt,
                directory,
                self.options,
                feature_batch=cfg.eval.batch_size,
            )
            return nn.Sequential(encoder, head)
        model = Classifier(copy.deepcopy(encoder), num_classes).to(rt.device)
        train_stage2(cfg.stage2, cfg.augment, model, self.data, spec, rt, directory, self.options)
        return model

    def _posthoc(self, spec: MethodSpec, model: nn.Module, counts: tuple[int, ...]) -> nn.Module:
        """``model``, or its post-hoc logit-adjusted version (τ fixed, or chosen on validation
        only, on rank 0, and shared with the other ranks)."""
        if spec.posthoc_tau == 0:
            return model
        note = self.notes.setdefault(spec.name, {})
        if spec.posthoc_tau == "validation":
            chosen = None
            if self.runtime.is_main:
                chosen = choose_posthoc_tau(
                    model, counts, self.validator, self.config.eval.posthoc_tau_grid
                )
            tau, note["posthoc_validation"] = broadcast_object(chosen, self.runtime)
        else:
            tau = float(spec.posthoc_tau)
        note["posthoc_tau"] = tau
        return LogitAdjusted(model, log_prior(counts, self.runtime.device), tau)

    def evaluate(self, model: nn.Module) -> tuple[Metrics, np.ndarray]:
        predictions = predict(model, self.data.x_test, self.config.eval.batch_size).cpu().numpy()
        c = self.host.num_classes
        confusion = np.bincount(self.host.y_test * c + predictions, minlength=c * c)
        metrics = evaluate_predictions(
            predictions, self.host.y_test, self.host.train_counts, self.thresholds
        )
        return metrics, confusion.reshape(c, c)

    def validate(self, model: nn.Module) -> dict[str, float]:
        """The final model's validation accuracies (empty without validation images)."""
        return {} if self.validator.empty else self.validator.classifier(model)


def run_experiment(config: Config, *, callback: EpochCallback | None = None) -> ExperimentResult:
    """Train and compare the methods in ``config.run.methods``; write and print nothing but files.

    Parameters
    ----------
    config : Config
    callback : callable, optional
        ``callback(phase_name, epochs_done)`` after every checkpointed epoch (tests use it to
        interrupt a run).

    Returns
    -------
    ExperimentResult

    Raises
    ------
    FileNotFoundError
        When the dataset's files are missing.
    ValueError
        For an inconsistent config, CUDA requested without a CUDA device, ``--resume`` (or
        ``run.stage = "eval"``) with a config that differs from the run's, a stage-1 source
        that does not fit (:func:`ipdpp_train.stage1_source.stage1_source_of`), or a phase
        that ``run.stage`` needs finished but is not.

    Notes
    -----
    Under ``torchrun`` every process runs this function; rank 0 writes files and the others
    return empty metrics. Results depend on ``run.seed`` and ``data.data_seed`` only (for a
    fixed device and thread count), and a resumed run ends with the same weights as an
    uninterrupted one; so does a run whose stage 1 is reused from a run with the same seed.
    """
    if config.run.stage == "eval":  # the run's own config, every phase loaded
        config = replace(config, run=replace(config.run, resume=True))
    r = config.run
    directory = Path(r.out_dir) / r.name
    source = stage1_source_of(config, directory)
    runtime = setup_runtime(r.device, r.seed, r.threads, r.progress)
    finished = False
    try:
        if runtime.is_main:
            directory.mkdir(parents=True, exist_ok=True)
            if r.resume:
                _check_resumable(directory, config)
            if r.stage != "eval":  # the config that trained the checkpoints stays on record
                write_text_atomic(directory / "config.toml", to_toml(config))
                text = json.dumps(config_to_dict(config), indent=1)
                write_text_atomic(directory / "config.json", text)
        runtime.barrier()
        experiment = _Experiment(config, runtime, callback, source)
        metrics: dict[str, Metrics] = {}
        models: dict[str, nn.Module] = {}
        seconds: dict[str, float] = {}
        wall: dict[str, float] = {}
        validation: dict[str, dict[str, float]] = {}
        for method in r.methods:
            began, stage1_before = time.perf_counter(), experiment.stage1_seconds
            models[method] = experiment.train(method)
            # Stage 1 is shared: its time is reported once, not charged to the first method.
            stage1_share = experiment.stage1_seconds - stage1_before
            wall[method] = time.perf_counter() - began - stage1_share
            if runtime.is_main:
                seconds[method] = logged_seconds(directory / method)
                metrics[method], confusion = experiment.evaluate(models[method])
                validation[method] = experiment.validate(models[method])
                payload = {
                    **metrics[method].to_dict(),
                    "validation": validation[method],
                    **experiment.notes.get(method, {}),
                    "seconds": seconds[method],
                    "wall_seconds": wall[method],
                    "confusion": confusion.tolist(),  # rows: true class, columns: predicted
                }
                write_text_atomic(directory / method / "metrics.json", json.dumps(payload))
            runtime.barrier()
        table = ""
        if runtime.is_main:
            k = config.stage2.k_per_class or default_k_per_class(experiment.host.train_counts)
            stage1_dir = directory / "stage1" if source is None else source.checkpoint.parent
            extra: dict[str, Any] = {
                "seconds": seconds,
                "wall_seconds": wall,
                "stage1_seconds": logged_seconds(stage1_dir),
                "stage1_from": None if source is None else source.describe(),
                "k_per_class": k,
                "device": str(runtime.device),
                "world_size": runtime.world_size,
                "threads": torch.get_num_threads(),
                "validation": validation,
                "method_notes": experiment.notes,
            }
            table = write_report(directory, metrics, experiment.thresholds, experiment.host, extra)
        runtime.barrier()
        finished = True
        return ExperimentResult(metrics, table, directory, experiment.thresholds, models)
    finally:
        teardown_runtime(runtime, finished=finished)
