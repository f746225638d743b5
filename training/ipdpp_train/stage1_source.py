"""Encoders reused from an earlier run instead of training stage 1 again (``run.from_stage1``).

The source is a finished phase checkpoint holding an encoder: the BNS encoder of a run's
``stage1/`` or the encoder inside a cross-entropy model (``ce/``), so that stage 2 can start
from either and BNS features and the sampler can be told apart. It may be named by the run
folder (its ``stage1/`` is used), the phase folder, or the ``checkpoint.pt`` file itself.

An encoder only fits the run that reuses it when both saw the same training images through
the same network: the ``[data]`` (except ``data_dir``, which may move) and ``[model]`` keys of
the producing run's ``config.json`` must equal the current config's, else a ValueError lists
the keys that differ. A bare checkpoint without its run's ``config.json`` can be checked only
by its weights' names and shapes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .checkpoint import logged_seconds
from .config import Config, method_specs
from .config_io import config_to_dict
from .methods import trainer_of

__all__ = ["Stage1Source", "load_encoder_state", "resolve_stage1_source", "stage1_source_of"]

#: Config sections that decide whether an encoder fits a run (data_dir excepted: data move).
MATCHED_SECTIONS = ("data", "model")
CHECKPOINT = "checkpoint.pt"


@dataclass(frozen=True)
class Stage1Source:
    """A finished checkpoint an encoder is taken from.

    Attributes
    ----------
    checkpoint : pathlib.Path
        The phase's ``checkpoint.pt``.
    run_config : dict or None
        The producing run's resolved config (``config.json``), None where the checkpoint has no
        run folder around it.
    """

    checkpoint: Path
    run_config: dict[str, Any] | None

    def describe(self) -> dict[str, Any]:
        """What a report records about the source: its path and how its stage 1 was trained."""
        out: dict[str, Any] = {"checkpoint": str(self.checkpoint)}
        if self.run_config is not None:
            section = "ce" if self.checkpoint.parent.name == "ce" else "stage1"
            out[section] = self.run_config.get(section)
            out["augment"] = self.run_config.get("augment")
            out["seed"] = self.run_config.get("run", {}).get("seed")
        log = self.checkpoint.with_name("log.json")
        if log.is_file():
            out["seconds"] = logged_seconds(self.checkpoint.parent)
        return out


def _checkpoint_of(path: Path) -> Path:
    if path.is_file():
        return path
    for candidate in (path / CHECKPOINT, path / "stage1" / CHECKPOINT):
        if candidate.is_file():
            return candidate
    hint = ""
    if (path / "ce" / CHECKPOINT).is_file():
        hint = f" (its CE model's encoder is {path / 'ce'})"
    raise ValueError(
        f"run.from_stage1: {path} holds no finished stage-1 checkpoint{hint}; name a run folder "
        f"with a trained stage1/, a phase folder such as RUN/stage1 or RUN/ce, or a {CHECKPOINT}"
    )


def _run_config(checkpoint: Path) -> dict[str, Any] | None:
    saved = checkpoint.parent.parent / "config.json"
    return json.loads(saved.read_text()) if saved.is_file() else None


def resolve_stage1_source(path: str | Path, config: Config) -> Stage1Source:
    """Find the checkpoint ``path`` names and check that its encoder fits ``config``.

    Raises
    ------
    ValueError
        When ``path`` holds no checkpoint, the checkpoint's phase is unfinished, or the
        producing run's data or model keys differ from ``config``'s (all of them listed).
    """
    checkpoint = _checkpoint_of(Path(path))
    run_config = _run_config(checkpoint)
    if run_config is not None:
        current = json.loads(json.dumps(config_to_dict(config)))
        diffs = [
            f"{section}.{key}: {run_config.get(section, {}).get(key)!r} there, {value!r} here"
            for section in MATCHED_SECTIONS
            for key, value in current[section].items()
            if (section, key) != ("data", "data_dir")
            and run_config.get(section, {}).get(key) != value
        ]
        if diffs:
            raise ValueError(
                f"run.from_stage1: the encoder in {checkpoint} was trained on other data or "
                f"another network ({'; '.join(diffs)}); use the [data] and [model] settings "
                "of the run that produced it"
            )
    return Stage1Source(checkpoint, run_config)


def _encoder_state(saved: dict[str, Any], checkpoint: Path) -> dict[str, torch.Tensor]:
    modules = saved.get("modules", {})
    if "encoder" in modules:  # stage 1: encoder and projection head saved apart
        return dict(modules["encoder"])
    if "model" in modules:  # a classifier: encoder.* and head.*
        state = {k[len("encoder.") :]: v for k, v in modules["model"].items()
                 if k.startswith("encoder.")}  # fmt: skip
        if all(k.startswith("inner.") for k in state):  # an encoder frozen during training
            state = {k[len("inner.") :]: v for k, v in state.items()}
        if state:
            return state
    raise ValueError(
        f"run.from_stage1: {checkpoint} holds no encoder (modules: {', '.join(modules) or 'none'})"
    )


def load_encoder_state(source: Stage1Source, encoder: nn.Module) -> None:
    """Copy the source's encoder weights (and BatchNorm statistics) into ``encoder``.

    Raises
    ------
    ValueError
        When the phase that wrote the checkpoint did not finish, or the weights do not fit
        ``encoder`` (another architecture or width).
    """
    saved = torch.load(source.checkpoint, map_location="cpu", weights_only=False)
    if saved.get("epoch") != saved.get("epochs"):
        raise ValueError(
            f"run.from_stage1: {source.checkpoint} is unfinished ({saved.get('epoch')} of "
            f"{saved.get('epochs')} epochs); finish that run with --resume first"
        )
    state = _encoder_state(saved, source.checkpoint)
    try:
        encoder.load_state_dict(state)
    except RuntimeError as exc:
        raise ValueError(
            f"run.from_stage1: the encoder in {source.checkpoint} does not fit this config's "
            f"model ({str(exc).splitlines()[0]} ...); use the [model] settings it was trained with"
        ) from None


def stage1_source_of(config: Config, directory: Path) -> Stage1Source | None:
    """Where a run in ``directory`` loads its stage-1 encoder from: ``run.from_stage1``, else,
    under ``run.stage = "stage2"``, the run's own ``stage1/``; None where stage 1 is trained
    (or, under ``"eval"``, loaded as any other phase of the run).

    Raises
    ------
    ValueError
        As :func:`resolve_stage1_source`, and under ``"stage2"`` for a method trained from
        scratch (that stage trains only methods that start from a trained encoder).
    """
    r = config.run
    if r.stage == "stage2":
        specs = method_specs(config)
        scratch = [m for m in r.methods if trainer_of(specs[m]) == "scratch"]
        if scratch:
            raise ValueError(
                'run.stage = "stage2" trains only methods that start from a trained encoder; '
                f"{', '.join(scratch)} {'is' if len(scratch) == 1 else 'are'} trained from "
                "scratch (leave them out of run.methods / --methods)"
            )
    if r.from_stage1 is not None:
        return resolve_stage1_source(r.from_stage1, config)
    if r.stage == "stage2":  # this run's own stage 1, checked before config.json is rewritten
        return resolve_stage1_source(directory / "stage1", config)
    return None
