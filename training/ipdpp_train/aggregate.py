"""Statistics over the seeds of a sweep: mean ± standard error, and paired differences.

:func:`aggregate` is a pure function of the per-seed ``metrics.json`` payloads (one per seed
and method, as :func:`ipdpp_train.pipeline.run_experiment` writes them); :func:`load_sweep`
reads them from a sweep folder (``seed-S/<method>/metrics.json``). Seeds pair the methods:
every method of seed S saw the same data, stage-1 encoder and stage-2 random streams, so the
difference of two methods is taken seed by seed, and its mean gets a Student-t interval with
n − 1 degrees of freedom. A difference is *resolved* when that interval excludes 0.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

__all__ = ["GROUPS", "SEED_PREFIX", "aggregate", "load_sweep", "mean_se", "paired_difference"]

#: The accuracies aggregated besides the per-class ones, in table order.
GROUPS = ("overall", "many", "medium", "few")
#: A sweep's run folders are SEED_PREFIX + seed.
SEED_PREFIX = "seed-"


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def mean_se(values: Sequence[float] | np.ndarray) -> dict[str, Any]:
    """Mean and standard error (sample standard deviation / sqrt(n)) of per-seed values.

    Returns ``{"mean", "se", "values"}``; NaN (a group without classes, or a single seed's
    standard error) becomes None.
    """
    x = np.asarray(values, dtype=np.float64)
    mean = float(x.mean()) if x.size else math.nan
    se = float(x.std(ddof=1) / math.sqrt(x.size)) if x.size > 1 else math.nan
    return {"mean": _finite(mean), "se": _finite(se), "values": [_finite(v) for v in x]}


def paired_difference(
    values: Sequence[float] | np.ndarray,
    reference: Sequence[float] | np.ndarray,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Per-seed differences ``values - reference``, their mean and t-interval.

    Returns ``{"mean", "se", "low", "high", "resolved", "values"}``: ``mean ± t * se`` with
    ``t`` the ``(1 + confidence) / 2`` quantile of Student's t with n − 1 degrees of freedom;
    ``resolved`` is True when the interval excludes 0 (undefined bounds, from one seed or a
    group without classes, are None and never resolved).
    """
    d = np.asarray(values, dtype=np.float64) - np.asarray(reference, dtype=np.float64)
    out = mean_se(d)
    low = high = math.nan
    if d.size > 1 and out["se"] is not None:
        half = float(stats.t.ppf((1 + confidence) / 2, d.size - 1)) * out["se"]
        low, high = out["mean"] - half, out["mean"] + half
    resolved = bool(not math.isnan(low) and (low > 0 or high < 0))
    return {**out, "low": _finite(low), "high": _finite(high), "resolved": resolved}


def _check_complete(
    runs: Mapping[int, Mapping[str, Mapping[str, Any]]], methods: Sequence[str]
) -> None:
    if not runs:
        raise ValueError("aggregate: no seeds to aggregate")
    for seed, by_method in runs.items():
        missing = [m for m in methods if m not in by_method]
        if missing:
            raise ValueError(
                f"aggregate: seed {seed} has no metrics for {', '.join(missing)}; rerun the "
                "sweep (it resumes) or leave the method(s) out"
            )
    first = next(iter(runs.values()))[methods[0]]
    for seed, by_method in runs.items():
        for method in methods:
            if list(by_method[method]["groups"]) != list(first["groups"]):
                raise ValueError(
                    f"aggregate: seed {seed}, {method}: other classes or shot groups than the "
                    "first seed's; every seed of a sweep must use the same data"
                )


def aggregate(
    runs: Mapping[int, Mapping[str, Mapping[str, Any]]],
    reference: str,
    methods: Sequence[str] | None = None,
    *,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Aggregate per-seed metrics of every method, and pair each with ``reference``.

    Parameters
    ----------
    runs : mapping of int to mapping of str to dict
        ``runs[seed][method]``: a ``metrics.json`` payload (``overall``, ``many``, ``medium``,
        ``few`` in percent, ``per_class``, ``groups``; ``seconds`` optional).
    reference : str
        The method every other one is compared with (it must be among ``methods``).
    methods : sequence of str, optional
        Methods in table order (default: those of the first seed, in its order).
    confidence : float
        Coverage of the difference intervals.

    Returns
    -------
    dict
        ``seeds``, ``methods``, ``reference``, ``confidence``, ``groups`` (each class's shot
        group); ``accuracy[method][g]`` (:func:`mean_se`, ``g`` in :data:`GROUPS`) and
        ``accuracy[method]["per_class"]`` (a list of them); ``differences[method]`` the same
        keys with :func:`paired_difference` against ``reference`` (not for ``reference``
        itself); ``seconds[method]`` (:func:`mean_se` of the logged training seconds).

    Raises
    ------
    ValueError
        When a seed lacks a method, ``reference`` is not a method, the seeds disagree on the
        classes, or ``confidence`` is not in (0, 1).
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1); got {confidence!r}")
    seeds = sorted(runs)
    if methods is None:
        methods = list(runs[seeds[0]]) if seeds else []
    methods = list(methods)
    if reference not in methods:
        raise ValueError(
            f"reference method {reference!r} is not among the methods ({', '.join(methods)})"
        )
    _check_complete(runs, methods)

    def series(method: str, key: str) -> list[float]:
        return [math.nan if (v := runs[s][method][key]) is None else float(v) for s in seeds]

    def per_class(method: str) -> np.ndarray:
        rows = [runs[s][method]["per_class"] for s in seeds]
        table = [[math.nan if v is None else v for v in row] for row in rows]
        return np.asarray(table, dtype=np.float64)  # (seeds, classes)

    accuracy: dict[str, Any] = {}
    differences: dict[str, Any] = {}
    seconds: dict[str, Any] = {}
    ref_classes = per_class(reference)
    for method in methods:
        classes = per_class(method)
        accuracy[method] = {g: mean_se(series(method, g)) for g in GROUPS}
        accuracy[method]["per_class"] = [mean_se(c) for c in classes.T]
        seconds[method] = mean_se([float(runs[s][method].get("seconds", math.nan)) for s in seeds])
        if method != reference:
            differences[method] = {
                g: paired_difference(series(method, g), series(reference, g), confidence)
                for g in GROUPS
            }
            differences[method]["per_class"] = [
                paired_difference(c, r, confidence) for c, r in zip(classes.T, ref_classes.T)
            ]
    return {
        "seeds": seeds,
        "methods": methods,
        "reference": reference,
        "confidence": confidence,
        "groups": list(runs[seeds[0]][methods[0]]["groups"]),
        "accuracy": accuracy,
        "differences": differences,
        "seconds": seconds,
    }


def seed_directories(directory: Path) -> dict[int, Path]:
    """The ``seed-S`` run folders of a sweep folder, by seed."""
    found = {}
    for child in Path(directory).glob(f"{SEED_PREFIX}*"):
        tail = child.name[len(SEED_PREFIX) :]
        if child.is_dir() and tail.isdigit():
            found[int(tail)] = child
    return dict(sorted(found.items()))


def load_sweep(
    directory: Path, seeds: Sequence[int] | None = None, methods: Sequence[str] | None = None
) -> tuple[dict[int, dict[str, dict[str, Any]]], dict[int, dict[str, Any]]]:
    """Read the per-seed metrics of a sweep folder.

    Parameters
    ----------
    directory : pathlib.Path
        Holds ``seed-S/`` run folders.
    seeds : sequence of int, optional
        Seeds to read (default: every ``seed-S`` folder).
    methods : sequence of str, optional
        Methods to read (default: every method folder with a ``metrics.json`` in any seed).

    Returns
    -------
    runs : dict
        ``runs[seed][method]``, the ``metrics.json`` payloads (input of :func:`aggregate`).
    results : dict
        ``results[seed]``: each seed's ``results.json`` (class names, counts, thresholds,
        stage-1 seconds), ``{}`` where it has none.

    Raises
    ------
    ValueError
        When a requested seed has no folder, or a seed lacks a method's ``metrics.json``.
    """
    directory = Path(directory)
    found = seed_directories(directory)
    if seeds is None:
        seeds = list(found)
    if not seeds:
        raise ValueError(f"aggregate: {directory} holds no {SEED_PREFIX}S run folders")
    missing = [s for s in seeds if s not in found]
    if missing:
        raise ValueError(
            f"aggregate: no run folder for seed(s) {', '.join(map(str, missing))} in {directory}"
        )
    if methods is None:  # in the order the runs trained them, then any others
        ordered: dict[str, None] = {}
        for s in seeds:
            summary = found[s] / "results.json"
            if summary.is_file():
                ordered.update(dict.fromkeys(json.loads(summary.read_text()).get("methods", {})))
        names = {p.parent.name for s in seeds for p in found[s].glob("*/metrics.json")}
        methods = [m for m in ordered if m in names] + sorted(names - set(ordered))
    runs: dict[int, dict[str, dict[str, Any]]] = {}
    results: dict[int, dict[str, Any]] = {}
    for s in seeds:
        runs[s] = {}
        for method in methods:
            path = found[s] / method / "metrics.json"
            if not path.is_file():
                raise ValueError(
                    f"aggregate: seed {s} has no metrics for {method} ({path} is missing); "
                    "rerun the sweep (it resumes) or leave the method out"
                )
            runs[s][method] = json.loads(path.read_text())
        summary = found[s] / "results.json"
        results[s] = json.loads(summary.read_text()) if summary.is_file() else {}
    return runs, results
