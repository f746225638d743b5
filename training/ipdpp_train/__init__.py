"""Two-stage long-tailed recognition with ipdpp: BNS pre-training, then IP-DPP re-training.

The pipeline of Lin & Yuan, "Long-Tailed Recognition via Information-Preservable Two-Stage
Learning" (NeurIPS 2025), with its baselines, in plain PyTorch. Run it with
``ipdpp-train --config configs/digits.toml`` (or ``python -m ipdpp_train``); use it from Python
with :func:`run_experiment` and :func:`load_config`.
"""

from __future__ import annotations

from typing import Any

from .config import Config
from .config_io import load_config

__all__ = ["Config", "ExperimentResult", "load_config", "run_experiment"]


def __getattr__(name: str) -> Any:
    # The pipeline pulls in torch and ipdpp; importing it lazily keeps `ipdpp-train --help` and
    # config errors instant.
    if name in ("ExperimentResult", "run_experiment"):
        from . import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'training' has no attribute {name!r}")
