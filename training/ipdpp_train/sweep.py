"""Sweeps: every method of one config trained under several training seeds, then aggregated.

A sweep folder ``run.out_dir / run.name`` holds::

    seed-S/                          one run folder per seed (see ipdpp_train.pipeline)
    seed-S.toml, seed-S.log          with --jobs > 1: each seed's config and its process's output
    config.toml, config.json         the sweep's config (run.seed is replaced per seed)
    sweep.md, sweep.json             mean ± SE per method, paired differences, wall times
    sweep_accuracy.png, sweep_per_class.png, sweep_differences.png

Seed S trains with ``run.seed = S`` and the config's data split (``data.data_seed`` is not
varied, so that every seed and method sees the same images). Seeds always run with
``--resume``: a finished phase is loaded, not trained again, so an interrupted sweep, or one
given more seeds or methods, trains only what is missing (and a config that changed is
refused, naming the keys). ``run.from_stage1`` may contain ``{seed}``, replaced by each seed,
to reuse every seed's own encoder from an earlier sweep (``OTHER/seed-{seed}/ce``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from .aggregate import SEED_PREFIX, aggregate, load_sweep, mean_se
from .checkpoint import write_text_atomic
from .config import Config
from .config_io import config_to_dict, to_toml
from .sweep_report import write_sweep_report

__all__ = ["SweepResult", "aggregate_sweep", "parse_seeds", "run_sweep", "seed_config"]


#: What sweep.json records about the sweep's own run, kept when it is re-aggregated.
_RUN_KEYS = ("jobs", "sweep_wall_seconds", "seed_wall_seconds", "command")


@dataclass(frozen=True)
class SweepResult:
    """What a sweep or a re-aggregation wrote.

    Attributes
    ----------
    directory : pathlib.Path
        The sweep folder.
    summary : dict
        :func:`ipdpp_train.aggregate.aggregate`'s result (also in sweep.json).
    table : str
        The Markdown report (sweep.md).
    """

    directory: Path
    summary: dict[str, Any]
    table: str


def parse_seeds(text: str) -> list[int]:
    """``"0-4"``, ``"0,2,7"`` or ``"0-2,9"`` as a sorted list of distinct seeds.

    Raises
    ------
    ValueError
        For anything else (the message names ``--seeds``).
    """
    seeds: set[int] = set()
    for part in (p.strip() for p in str(text).split(",")):
        low, sep, high = part.partition("-")
        if not (low.isdigit() and (not sep or high.isdigit())):
            raise ValueError(f"--seeds expects e.g. 0-4 or 0,2,5 (seeds >= 0); got {text!r}")
        first, last = int(low), int(high) if sep else int(low)
        if last < first:
            raise ValueError(f"--seeds: the range {part!r} is empty")
        seeds.update(range(first, last + 1))
    return sorted(seeds)


def seed_config(config: Config, seed: int, directory: Path, *, jobs: int = 1) -> Config:
    """The run config of one seed of a sweep in ``directory`` (see the module docstring).

    With ``jobs`` > 1 processes at once, progress bars are off and ``run.threads`` None
    becomes an equal share of the CPU cores, so that the processes do not oversubscribe them.
    """
    r = config.run
    source = None if r.from_stage1 is None else r.from_stage1.replace("{seed}", str(seed))
    threads, progress = r.threads, r.progress
    if jobs > 1:
        progress = False
        if threads is None:
            threads = max(1, (os.cpu_count() or 1) // jobs)
    run = replace(r, out_dir=str(directory), name=f"{SEED_PREFIX}{seed}", seed=seed,
                  resume=True, from_stage1=source, threads=threads, progress=progress)  # fmt: skip
    return replace(config, run=run)


def _run_seed(config: Config) -> tuple[int, float]:
    from .pipeline import run_experiment

    began = time.perf_counter()
    run_experiment(config)
    return config.run.seed, time.perf_counter() - began


#: A worker's program: the CLI, with the current folder dropped from the import path (where
#: that is a checkout, its ipdpp/ lacks the compiled extension); the path is the parent's.
_WORKER = (
    "import sys; sys.path[:] = [p for p in sys.path if p]; from ipdpp_train.cli import main; main()"
)


def _child_environment() -> dict[str, str]:
    # The worker imports exactly what this process imports: its import path, in its order.
    path = [os.path.abspath(p) for p in sys.path if p]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path)}


def _run_seed_process(config: Config, directory: Path, env: dict[str, str]) -> tuple[int, float]:
    """One seed in a fresh ``ipdpp-train`` process: its config is written to
    ``directory/seed-S.toml`` (rerunning ``ipdpp-train --config`` on it redoes that seed) and its
    output to ``seed-S.log``."""
    seed = config.run.seed
    path = directory / f"{SEED_PREFIX}{seed}.toml"
    write_text_atomic(path, to_toml(config))
    began = time.perf_counter()
    with open(directory / f"{SEED_PREFIX}{seed}.log", "w") as log:
        done = subprocess.run(
            [sys.executable, "-c", _WORKER, "--config", str(path)],
            stdout=log, stderr=subprocess.STDOUT, env=env, check=False,
        )  # fmt: skip
    if done.returncode != 0:
        lines = (directory / f"{SEED_PREFIX}{seed}.log").read_text().strip().splitlines()
        raise ValueError(
            f"seed {seed}: {lines[-1] if lines else f'exit status {done.returncode}'} "
            f"(all its output: {directory / f'{SEED_PREFIX}{seed}.log'})"
        )
    return seed, time.perf_counter() - began


def run_sweep(
    config: Config,
    seeds: Sequence[int],
    *,
    jobs: int = 1,
    reference: str = "ce",
    on_seed: Callable[[int, float], None] | None = None,
    command: str | None = None,
) -> SweepResult:
    """Train every method of ``config`` for each seed, then aggregate (:func:`aggregate_sweep`).

    Parameters
    ----------
    config : Config
        ``run.out_dir / run.name`` is the sweep folder; ``run.seed`` is ignored.
    seeds : sequence of int
    jobs : int
        Seeds trained at once, each in its own ``ipdpp-train`` process (1: one
        after the other, in this process).
    reference : str
        The method the others are paired with; must be in ``run.methods``.
    on_seed : callable, optional
        ``on_seed(seed, seconds)`` when a seed's run has finished.
    command : str, optional
        The command line, recorded in sweep.json.

    Raises
    ------
    ValueError
        For no seeds, ``jobs`` < 1, a reference outside ``run.methods``, or a seed whose run
        failed (after the other seeds finished; their work is kept).
    """
    if not seeds:
        raise ValueError("--seeds must name at least one seed")
    if jobs < 1:
        raise ValueError(f"--jobs must be >= 1; got {jobs!r}")
    methods = list(config.run.methods)
    if reference not in methods:
        raise ValueError(
            f"--reference {reference!r} must be one of the swept methods ({', '.join(methods)})"
        )
    directory = Path(config.run.out_dir) / config.run.name
    configs = [seed_config(config, s, directory, jobs=jobs) for s in seeds]
    began = time.perf_counter()
    walls: dict[int, float] = {}
    if jobs == 1:
        for seed_run in configs:
            seed, seconds = _run_seed(seed_run)
            walls[seed] = seconds
            if on_seed is not None:
                on_seed(seed, seconds)
    else:
        directory.mkdir(parents=True, exist_ok=True)
        env = _child_environment()
        failures: list[str] = []
        with ThreadPoolExecutor(max_workers=min(jobs, len(configs))) as pool:
            futures = [pool.submit(_run_seed_process, c, directory, env) for c in configs]
            for future in futures:
                try:
                    seed, seconds = future.result()
                except ValueError as exc:  # reported below, once every seed has finished
                    failures.append(str(exc))
                    continue
                walls[seed] = seconds
                if on_seed is not None:
                    on_seed(seed, seconds)
        if failures:
            raise ValueError(
                f"sweep: {len(failures)} seed run(s) failed (the others are kept; rerun to "
                f"resume): {'; '.join(failures)}"
            )
    write_text_atomic(directory / "config.toml", to_toml(config))
    write_text_atomic(directory / "config.json", json.dumps(config_to_dict(config), indent=1))
    timing = {"jobs": jobs, "sweep_wall_seconds": time.perf_counter() - began,
              "seed_wall_seconds": {str(s): walls[s] for s in sorted(walls)}}  # fmt: skip
    if command is not None:
        timing["command"] = command
    return aggregate_sweep(directory, seeds, methods, reference=reference, extra=timing)


def aggregate_sweep(
    directory: Path,
    seeds: Sequence[int] | None = None,
    methods: Sequence[str] | None = None,
    *,
    reference: str = "ce",
    extra: dict[str, Any] | None = None,
) -> SweepResult:
    """Aggregate the seed folders of ``directory`` (no training) and write the sweep report.

    ``seeds`` and ``methods`` default to every ``seed-S`` folder and every method with metrics
    (:func:`ipdpp_train.aggregate.load_sweep`); ``extra`` entries go into sweep.json (None:
    the sweep's own timing and command from the sweep.json already there, if any).

    Raises
    ------
    ValueError
        When a seed or a method's metrics are missing, or ``reference`` is not a method.
    """
    directory = Path(directory)
    runs, results = load_sweep(directory, seeds, methods)
    previous = directory / "sweep.json"
    if extra is None and previous.is_file():  # re-aggregated: keep how the sweep itself ran
        extra = {k: v for k, v in json.loads(previous.read_text()).items() if k in _RUN_KEYS}
    summary = aggregate(runs, reference, methods)
    first = results[summary["seeds"][0]]
    seeds_run = summary["seeds"]
    stage1 = [results[s]["stage1_seconds"] for s in seeds_run if "stage1_seconds" in results[s]]
    context: dict[str, Any] = {
        "class_names": first.get("class_names"),
        "train_counts": first.get("train_counts"),
        "thresholds": first.get("thresholds"),
        "stage1_seconds": mean_se(stage1) if stage1 else None,
        **(extra or {}),
    }
    table = write_sweep_report(directory, summary, context)
    return SweepResult(directory, summary, table)
