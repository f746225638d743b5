"""Runs the benchmark matrix and returns the raw results (written out by ``benchmarks.report``).

For every (d, n) of the matrix, ascending in n so that budgets can be predicted from smaller
sizes, the features are generated once and each family in turn is set up (timed), then each of
its samplers is timed per sample and per batch for every k, and its state is freed before the
next family starts (at n = 10^6, d = 256 one eigenvector matrix is 2 GB).

Features are Gaussian with column scales ``j^{-1/2} / sqrt(n)`` (j = 1..d): the eigenvalues of
``L`` then decay like those of real embeddings and lie in about (1/d, 1] at every n. The scale
matters to DPPy only: its plain ESP recursion overflows (NaN selection probabilities, so wrong
samples) once e_k of the eigenvalues exceeds 1e308, e.g. k = 100 with unscaled features at
n = 1e5. k-DPPs do not change when L is scaled, so this costs nothing in generality.
"""

from __future__ import annotations

import gc
import importlib.util
import sys
import time
import traceback
from collections import defaultdict
from dataclasses import asdict
from typing import Any, Callable

import numpy as np

from . import balanced as bal
from .backends import Family, Sampler, cuda_unavailable_reason, make_families
from .config import Settings
from .machine import available_memory_bytes, describe_machine
from .timing import extrapolate, measure

__all__ = ["check_samples", "make_features", "run"]

# Skip a family when its predicted working memory exceeds this share of the available memory:
# the machine may be shared, and swapping would time the disk.
MEMORY_SHARE = 0.7


def make_features(n: int, d: int, dtype: str, seed: int) -> np.ndarray:
    """Gaussian features with column scales ``j^{-1/2} / sqrt(n)``, C-contiguous, shape (n, d)."""
    rng = np.random.default_rng([seed, n, d])
    features = rng.standard_normal((n, d), dtype=np.float64)
    features *= (1.0 + np.arange(d)) ** -0.5 / np.sqrt(n)
    return features.astype(dtype, copy=False)


def _to_numpy(sample: Any) -> np.ndarray:
    if hasattr(sample, "detach"):
        sample = sample.detach().cpu().numpy()
    return np.asarray(sample)


def check_samples(sample: Any, n: int, k: int, rows: int | None) -> str | None:
    """Why ``sample`` is not a valid k-subset draw (or ``rows`` of them), or None.

    Parameters
    ----------
    sample : array-like (numpy, torch on any device, list)
        Shape (k,) when ``rows`` is None, else (rows, k).
    n, k : int
        Ground-set size and sample size.
    rows : int or None
    """
    arr = _to_numpy(sample)
    expected = (k,) if rows is None else (rows, k)
    if arr.shape != expected:
        return f"shape {arr.shape}, expected {expected}"
    arr = arr.reshape(-1, k)
    if arr.size and (arr.min() < 0 or arr.max() >= n):
        return "index out of range"
    if any(np.unique(row).size != k for row in arr):
        return "repeated item in a sample"
    return None


class _Progress:
    """tqdm when installed, else one line per finished task on stderr."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.done, self.enabled = total, 0, enabled
        self._bar: Any = None
        if enabled and importlib.util.find_spec("tqdm") is not None:
            from tqdm import tqdm

            self._bar = tqdm(total=total, unit="task", dynamic_ncols=True, file=sys.stderr)

    def step(self, description: str) -> None:
        self.done += 1
        if self._bar is not None:
            self._bar.set_postfix_str(description, refresh=False)
            self._bar.update(1)
        elif self.enabled:
            print(f"[{self.done}/{self.total}] {description}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _record(kind: str, who: str, label: str, **fields: Any) -> dict[str, Any]:
    return {"kind": kind, "key": who, "label": label, **fields}


class _Run:
    """State of one run: settings, history for budget predictions, records, progress."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.records: list[dict[str, Any]] = []
        self.history: dict[tuple[Any, ...], list[tuple[int, float]]] = defaultdict(list)
        families = make_families(
            settings.device,
            threads=settings.threads,
            ipdpp_methods=settings.ipdpp_methods,
            dppy_modes=settings.dppy_modes,
        )
        if settings.only:
            families = self._select(families, settings.only)
        self.families = families
        self.progress = _Progress(self._count_tasks(), settings.progress)

    @staticmethod
    def _select(families: list[Family], only: tuple[str, ...]) -> list[Family]:
        chosen = []
        for family in families:
            if family.key in only:
                chosen.append(family)
                continue
            samplers = tuple(s for s in family.samplers if s.key in only)
            if samplers:
                family.samplers = samplers
                chosen.append(family)
        return chosen

    def _count_tasks(self) -> int:
        s = self.settings
        per_family = 0
        for family in self.families:
            per_family += 1
            for sampler in family.samplers:
                kinds = (sampler.draw is not None) + (
                    sampler.draw_batch is not None and s.batch_size > 0
                )
                per_family += kinds * len(s.ks)
        shapes = bal.SHAPES[s.balanced] if s.balanced != "off" else ()
        return len(s.dims) * len(s.sizes) * per_family + len(shapes)

    # ----------------------------------------------------------------------------------------

    def run_matrix(self) -> None:
        s = self.settings
        for d in s.dims:
            for n in sorted(s.sizes):
                features: np.ndarray | None = None
                for family in self.families:
                    reason = family.unavailable_reason()
                    if reason is None and features is None:
                        features = make_features(n, d, s.dtype, s.seed)
                    self._run_family(family, features, n, d, reason)
                    gc.collect()
                del features
                gc.collect()

    def _skip_family(self, family: Family, n: int, d: int, status: str, reason: str) -> None:
        self.records.append(
            _record("setup", family.key, family.label, n=n, d=d, status=status, reason=reason)
        )
        self.progress.step(f"{family.label} n={n} d={d}: {status}")
        for sampler in family.samplers:
            for k in self.settings.ks:
                for kind in self._kinds(sampler):
                    record = _record(kind, sampler.key, sampler.label, n=n, d=d, k=k)
                    record.update(_invalid_k(n, d, k) or {"status": status, "reason": reason})
                    self.records.append(record)
                    self.progress.step(_describe(record))

    def _kinds(self, sampler: Sampler) -> list[str]:
        kinds = []
        if sampler.draw is not None:
            kinds.append("sample")
        if sampler.draw_batch is not None and self.settings.batch_size > 0:
            kinds.append("batch")
        return kinds

    def _run_family(
        self, family: Family, features: np.ndarray | None, n: int, d: int, reason: str | None
    ) -> None:
        s = self.settings
        if reason is not None:
            self._skip_family(family, n, d, "unavailable", reason)
            return
        assert features is not None
        needed = family.working_bytes(n, d, max(s.ks), s.batch_size, features.itemsize)
        free = available_memory_bytes()
        if free is not None and needed > MEMORY_SHARE * free:
            self._skip_family(
                family,
                n,
                d,
                "skipped (memory)",
                f"needs ~{needed / 2**30:.1f} GiB, {free / 2**30:.1f} GiB available",
            )
            return
        predicted = extrapolate(self.history[("setup", family.key, d)], n)
        if predicted is not None and predicted > s.budget:
            self._skip_family(
                family,
                n,
                d,
                "skipped (>budget)",
                f"setup predicted {predicted:.1f} s > budget {s.budget:g} s",
            )
            return
        try:
            data = family.load(features)
            state, setup = self._time_setup(family, data)
        except Exception as exc:  # a failing library must not stop the comparison
            self._skip_family(family, n, d, "error", _describe_error(exc))
            return
        self.history[("setup", family.key, d)].append((n, setup["seconds"]))
        self.records.append(
            _record("setup", family.key, family.label, n=n, d=d, status="ok", **setup)
        )
        self.progress.step(f"{family.label} setup n={n} d={d}: {setup['seconds']:.3g} s")
        for sampler in family.samplers:
            # Descending k: the costly configuration first, so a budget skip is found early.
            for k in sorted(s.ks, reverse=True):
                for kind in self._kinds(sampler):
                    record = _record(kind, sampler.key, sampler.label, n=n, d=d, k=k)
                    record.update(
                        _invalid_k(n, d, k)
                        or self._time_sampler(family, sampler, kind, state, n, d, k)
                    )
                    self.records.append(record)
                    self.progress.step(_describe(record))
        del state, data

    def _time_setup(self, family: Family, data: Any) -> tuple[Any, dict[str, Any]]:
        """Time setup; repeat it (keeping the last state) while it is cheap."""
        s = self.settings
        times: list[float] = []
        state = None
        start = time.perf_counter()
        while True:
            state = None  # free the previous state before building the next
            t0 = time.perf_counter()
            state = family.setup(data)
            family.synchronize()
            times.append(time.perf_counter() - t0)
            spent = time.perf_counter() - start
            if len(times) >= s.repeats or spent + times[-1] > s.budget / 4:
                break
        return state, {"seconds": float(np.median(times)), "repeats": times}

    def _time_sampler(
        self, family: Family, sampler: Sampler, kind: str, state: Any, n: int, d: int, k: int
    ) -> dict[str, Any]:
        s = self.settings
        history = self.history[(kind, sampler.key, d, k)]
        predicted = extrapolate(history, n)
        if predicted is not None and 2 * predicted > s.budget:  # warm-up + one timed call
            return {
                "status": "skipped (>budget)",
                "reason": f"predicted {predicted:.3g} s per call; budget {s.budget:g} s",
            }
        first: dict[str, Any] = {}
        rows = s.batch_size if kind == "batch" else None
        call: Callable[[int], Any]
        if kind == "batch":
            assert sampler.draw_batch is not None
            draw_batch = sampler.draw_batch

            def call(i: int) -> None:
                out = draw_batch(state, k, s.batch_size, s.seed + i * s.batch_size)
                family.synchronize()
                first.setdefault("out", out)

        else:
            assert sampler.draw is not None
            draw = sampler.draw

            def call(i: int) -> None:
                out = draw(state, k, s.seed + i)
                family.synchronize()
                first.setdefault("out", out)

        try:
            result = measure(call, repeats=s.repeats, min_time=s.min_time, budget=s.budget)
        except Exception as exc:
            return {"status": "error", "reason": _describe_error(exc)}
        problem = check_samples(first["out"], n, k, rows)
        if problem is not None:
            return {"status": "error", "reason": f"invalid sample: {problem}"}
        seconds = result.median
        history.append((n, seconds))
        per_sample = seconds / rows if rows else seconds
        return {
            "status": "ok",
            "seconds": seconds,
            "per_sample": per_sample,
            "samples_per_s": 1.0 / per_sample,
            "batch": rows,
            "repeats": result.per_call,
            "calls_per_repeat": result.calls_per_repeat,
            "warmup": result.warmup,
        }

    # ----------------------------------------------------------------------------------------

    def run_balanced(self) -> list[dict[str, Any]]:
        s = self.settings
        rows: list[dict[str, Any]] = []
        for shape in bal.SHAPES[s.balanced]:
            labels, p = bal.make_problem(shape, s.seed)
            sizes = np.bincount(labels)
            row: dict[str, Any] = {
                "shape": asdict(shape),
                "items": int(labels.size),
                "classes_sampled": int(np.count_nonzero(sizes > shape.k)),
                "kept": int(np.minimum(sizes, shape.k).sum()),
                "ipdpp": self._time_ipdpp_balanced(labels, p, shape.k),
                "loops": {},
            }
            for loop, (label, _) in bal.LOOPS.items():
                reason = bal.loop_available(loop)
                if s.device == "cuda":
                    reason = "CPU loops run with --device cpu or all"
                if reason is not None:
                    row["loops"][loop] = {"label": label, "status": "unavailable", "reason": reason}
                    continue
                try:
                    timing = bal.time_class_loop(
                        labels, p, shape.k, loop, s.balanced_loop_classes, s.seed
                    )
                    row["loops"][loop] = {"label": label, "status": "ok", **timing}
                except Exception as exc:
                    row["loops"][loop] = {
                        "label": label,
                        "status": "error",
                        "reason": _describe_error(exc),
                    }
            rows.append(row)
            self.progress.step(f"balanced_subset {shape.name}")
        return rows

    def _time_ipdpp_balanced(self, labels: np.ndarray, p: np.ndarray, k: int) -> dict[str, Any]:
        """One ``ipdpp.balanced_subset`` call per mode: warm-up, then the median of repeats.

        The first call is timed too: when it takes more than half the budget it is the result
        (marked ``cold``). A mode predicted to exceed the budget from the previous problem
        (scaled by :func:`_balanced_work`) is skipped.
        """
        s = self.settings
        try:
            import ipdpp

            balanced_subset = ipdpp.balanced_subset
        except (ImportError, AttributeError) as exc:
            return {"status": "unavailable", "reason": f"ipdpp.balanced_subset: {exc}"}
        on_gpu = s.device == "cuda"
        args: tuple[Any, Any] = (labels, p)
        if on_gpu:
            reason = cuda_unavailable_reason(needs_ipdpp=True)
            if reason is not None:
                return {"status": "unavailable", "reason": reason}
            import torch

            args = (torch.from_numpy(labels).cuda(), torch.from_numpy(p).cuda())
        sizes = np.bincount(labels)
        expected = int(np.minimum(sizes, k).sum())
        modes: dict[str, Any] = {}
        for mode in s.balanced_modes:

            def call(i: int, mode: str = mode) -> Any:
                out = balanced_subset(*args, k, mode=mode, seed=s.seed + i, threads=s.threads)
                if on_gpu:
                    import torch

                    torch.cuda.synchronize()
                return out

            work = _balanced_work(sizes, k, mode)
            history = self.history[("balanced", mode)]
            if history:
                previous_work, previous_seconds = history[-1]
                predicted = previous_seconds * work / previous_work
                if predicted > s.budget:
                    modes[mode] = {
                        "status": "skipped (>budget)",
                        "reason": f"predicted {predicted:.3g} s; budget {s.budget:g} s",
                    }
                    continue
            try:
                t0 = time.perf_counter()
                kept = _to_numpy(call(0))
                first = time.perf_counter() - t0
                cold = first > s.budget / 2
                if cold:
                    times = [first]
                else:
                    result = measure(
                        lambda i: call(i + 1),
                        repeats=s.repeats,
                        min_time=0.0,
                        budget=s.budget - first,
                        warmup=False,
                    )
                    times = result.per_call
            except Exception as exc:
                modes[mode] = {"status": "error", "reason": _describe_error(exc)}
                continue
            seconds = float(np.median(times))
            history.append((work, seconds))
            modes[mode] = {
                "status": "ok" if kept.size == expected else "error",
                "seconds": seconds,
                "repeats": times,
                "first_call": first,
                "cold": cold,
                "kept": int(kept.size),
            }
            if kept.size != expected:
                modes[mode]["reason"] = f"kept {kept.size} items, expected {expected}"
        return {"status": "ok", "modes": modes}


def _balanced_work(sizes: np.ndarray, k: int, mode: str) -> float:
    """Operation count of ``balanced_subset`` in ``mode``, up to a constant, for predictions.

    Per class with N_c > k: "exact" O(N_c k) (structured sampler), "greedy" O(N_c k^2),
    "paper" O(N_c^3) (dense eigendecomposition), "random" O(N_c).
    """
    big = sizes[sizes > k].astype(np.float64)
    per_class = {"exact": big * k, "greedy": big * k * k, "paper": big**3, "random": big}
    return float(per_class.get(mode, big * k).sum()) + float(sizes.size)


def _invalid_k(n: int, d: int, k: int) -> dict[str, Any] | None:
    """The record fields of a configuration with no k-DPP, or None when k is admissible."""
    rank = min(n, d)  # Gaussian features have full rank
    if k > rank:
        return {"status": "n/a", "reason": f"k > rank = {rank}: no k-DPP exists"}
    return None


def _describe(record: dict[str, Any]) -> str:
    where = f"n={record['n']} d={record['d']} k={record.get('k')}"
    if record.get("status") == "ok":
        return f"{record['label']} {record['kind']} {where}: {record['per_sample']:.3g} s/sample"
    return f"{record['label']} {record['kind']} {where}: {record.get('status')}"


def _describe_error(exc: BaseException) -> str:
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f" (at {frame.filename.rsplit('/', 1)[-1]}:{frame.lineno})" if frame else ""
    return f"{type(exc).__name__}: {exc}{where}"


def run(settings: Settings, threads_report: dict[str, Any]) -> dict[str, Any]:
    """Run every measurement ``settings`` asks for.

    Parameters
    ----------
    settings : Settings
    threads_report : dict
        What :class:`benchmarks.machine.ThreadPinning` pinned, stored with the results.

    Returns
    -------
    dict
        JSON-ready: ``machine`` (hardware, load, versions), ``threads``, ``settings``,
        ``records`` (one per setup / per-sample / batch measurement, with a ``status`` of "ok",
        "skipped (>budget)", "skipped (memory)", "unavailable", "n/a" or "error"), and
        ``balanced`` (one entry per long-tailed shape).
    """
    started = time.perf_counter()
    machine = describe_machine()
    current = _Run(settings)
    try:
        current.run_matrix()
        balanced = current.run_balanced() if settings.balanced != "off" else []
    finally:
        current.progress.close()
    machine["load_average_end"] = describe_machine()["load_average"]
    config = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(settings).items()}
    config["out"] = str(settings.out)
    return {
        "schema": 1,
        "machine": machine,
        "threads": threads_report,
        "settings": config,
        "families": [
            {"key": f.key, "label": f.label, "device": f.device, "baseline": f.baseline}
            for f in current.families
        ],
        "samplers": [
            {"key": sp.key, "label": sp.label, "family": f.key, "baseline": sp.baseline}
            for f in current.families
            for sp in f.samplers
        ],
        "records": current.records,
        "balanced": balanced,
        "wall_seconds": time.perf_counter() - started,
    }
