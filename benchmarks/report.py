"""Markdown tables of a run, rendered from the suite's pytest-benchmark JSON.

Every speed-up is a ratio of two medians of the same run. Redraw a saved run with
``python -m benchmarks.report results.json [DIR]``.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Callable

__all__ = ["format_ratio", "format_time", "load", "main", "markdown"]


def format_time(seconds: float | None) -> str:
    """``1.23 µs`` / ``4.56 ms`` / ``7.89 s`` with three significant digits."""
    if seconds is None or not math.isfinite(seconds):
        return "—"
    for scale, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def format_ratio(ratio: float | None, unit: str = "×") -> str:
    """``1,234×`` / ``56.7×`` / ``0.89×`` (how many times faster), or a rate with unit "/s"."""
    if ratio is None or not math.isfinite(ratio):
        return "—"
    return f"{ratio:,.0f}{unit}" if ratio >= 100 else f"{ratio:.3g}{unit}"


def load(path: Path) -> dict[str, Any]:
    """The JSON's ``ipdpp`` section with ``timer``, ``version``, ``records`` and ``balanced``.

    A record (kind "setup", "sample" or "batch") has key, label, n, d, k, status and, when
    "ok", seconds, per_sample, samples_per_s; ``balanced`` has one dict per problem: shape,
    items, kept, and the ``modes`` and ``loops`` entries by key.
    """
    raw = json.loads(Path(path).read_text())
    run = dict(raw["ipdpp"], version=raw.get("version"), records=[], balanced=[])
    timers = {b["options"].get("timer") for b in raw["benchmarks"]}
    run["timer"] = ", ".join(sorted(str(t) for t in timers if t))
    problems: dict[str, dict[str, Any]] = {}
    entries = [
        dict(b["extra_info"], status="ok", seconds=b["stats"]["median"]) for b in raw["benchmarks"]
    ]
    for entry in entries + list(run["outcomes"]):
        if entry["kind"] != "balanced":
            if entry["status"] == "ok":
                entry["per_sample"] = entry["seconds"] / (entry.get("batch") or 1)
                entry["samples_per_s"] = 1.0 / entry["per_sample"]
            run["records"].append(dict(entry, k=entry.get("k")))
            continue
        shape = entry["shape"]
        problem = problems.setdefault(shape["name"], _problem(shape))
        if "scale" in entry:  # a loop over a subset of the classes, extrapolated
            entry["measured_seconds"] = entry["seconds"]
            entry["seconds"] = entry["seconds"] * entry["scale"]
        where = "modes" if entry["key"].startswith("ipdpp-") else "loops"
        problem[where][entry["key"]] = entry
    run["balanced"] = list(problems.values())
    return run


def _problem(shape: dict[str, Any]) -> dict[str, Any]:
    from .balanced import LongTailShape, class_sizes

    sizes = class_sizes(LongTailShape(**shape))
    kept = int(sizes.clip(max=shape["k"]).sum())
    return {"shape": shape, "items": int(sizes.sum()), "kept": kept, "modes": {}, "loops": {}}


class _Index:
    """Records of a run looked up by (kind, key, n, d, k)."""

    def __init__(self, run: dict[str, Any]) -> None:
        self.run, self.settings = run, run["settings"]
        self.records = {(r["kind"], r["key"], r["n"], r["d"], r["k"]): r for r in run["records"]}

    def value(self, kind: str, key: str, n: int, d: int, k: int | None, field: str) -> float | None:
        record = self.records.get((kind, key, n, d, k))
        return record.get(field) if record is not None and record["status"] == "ok" else None

    def cell(self, kind: str, key: str, n: int, d: int, k: int | None, field: str) -> str:
        record = self.records.get((kind, key, n, d, k))
        if record is None or record["status"] != "ok":
            return "—" if record is None else str(record["status"])
        value = record[field]
        return format_ratio(value, "/s") if field == "samples_per_s" else format_time(value)

    def configs(self) -> list[tuple[int, int, int]]:
        """Every (n, d, k) of the matrix that has a k-DPP (k <= rank = min(n, d))."""
        s = self.settings
        triples = [(n, d, k) for d in s["dims"] for n in sorted(s["sizes"]) for k in s["ks"]]
        return [(n, d, k) for n, d, k in triples if k <= min(n, d)]

    def with_kind(self, kind: str, entries: str = "samplers") -> list[dict[str, Any]]:
        """The samplers (or families) with a record of this kind, in the run's order."""
        keys = {key for kind_, key, *_ in self.records if kind_ == kind}
        return [entry for entry in self.run[entries] if entry["key"] in keys]

    def table(self, columns: list[tuple[str, Callable[[int, int, int], str]]]) -> str:
        """One row per (n, d, k) of the matrix, one column per (title, cell of (n, d, k))."""
        rows = [
            [f"{n:,}", str(d), str(k)] + [cell(n, d, k) for _, cell in columns]
            for n, d, k in self.configs()
        ]
        return _table(["n", "d", "k"] + [title for title, _ in columns], rows, right_from=3)

    def ratio(self, kind: str, field: str, top: str, bottom: str) -> Callable[[int, int, int], str]:
        """Cells of ``top``'s value over ``bottom``'s (for times: the baseline on top)."""

        def cell(n: int, d: int, k: int) -> str:
            a, b = (self.value(kind, key, n, d, k, field) for key in (top, bottom))
            return format_ratio(a / b if a and b else None)

        return cell

    def cells(self, kind: str, key: str, field: str) -> Callable[[int, int, int], str]:
        return lambda n, d, k: self.cell(kind, key, n, d, k, field)


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], right_from: int = 0) -> str:
    aligns = ["---" if i < right_from else "--:" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(aligns) + " |"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def _header(run: dict[str, Any]) -> str:
    m, t, s = run["machine"], run["threads"], run["settings"]
    gpu = m.get("gpu")
    gpu = f"{gpu['name']} ({gpu['memory_gib']} GiB, CUDA {gpu['cuda_runtime']})" if gpu else "none"
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v)
    pools = "; ".join(
        f"{p['api']} {p['version'] or ''} ({p['library']}): {p['threads']}" for p in t["pools"]
    )
    extra = "".join(
        f"\n- {what}: {text}"
        for what, text in (("Warning", t.get("warning")), ("Note", s.get("note")))
        if text
    )
    return f"""# ipdpp sampler benchmarks

- Date: {m["date_utc"]} (preset `{s["preset"]}`, wall time {run["wall_seconds"] / 60:.1f} min)
- CPU: {m["cpu_model"]}, {m["usable_cpus"]} usable of {m["logical_cpus"]} logical CPUs, \
{m["memory"]["total_gib"]:.0f} GiB memory; GPU: {gpu}
- Threads: {t["requested"]} for every library ({t["method"]}; torch {t["torch_threads"]})\
{f"; BLAS pools: {pools}" if pools else ""}
- Load average (1/5/15 min) at start {m["load_average"]}, at end {m.get("load_average_end")}
- Versions: Python {m["python"]}, {versions}
- Features: {s["dtype"]}, Gaussian with column scales j^-1/2 / sqrt(n), so that L's eigenvalues \
lie in about (1/d, 1] at every n (unscaled, DPPy's ESP recursion overflows at n = 1e5, \
k = 100); seed {s["seed"]}.
- Timing: pytest-benchmark {run["version"]}, timer {run["timer"]}: medians of up to \
{s["repeats"]} rounds after a warm-up call, each round >= {s["min_time"]:g} s; budget \
{s["budget"]:g} s per measurement; batches of {s["batch_size"]}.{extra}
"""


def _per_sample_section(index: _Index) -> str:
    samplers = index.with_kind("sample")
    s = index.settings
    left_out = [(d, k) for d in s["dims"] for k in s["ks"] if k > d]
    note = ", ".join(f"d = {d} with k = {k}" for d, k in left_out)
    if left_out:
        note = f" Not in the tables: {note} (a rank-{left_out[0][0]} kernel has no k-DPP with \
k > {left_out[0][0]})."
    times = index.table(
        [(sp["label"], index.cells("sample", sp["key"], "per_sample")) for sp in samplers]
    )
    text = f"""## Per-sample time

One k-DPP sample, after setup, in the steady state: ipdpp's eigenvectors are formed first, \
untimed (lower is better). `skipped (>budget)`: predicted from the next smaller n to take longer \
than the time budget.{note}

{times}
"""
    baselines = [sp for sp in samplers if sp["baseline"]]
    for fast in (sp for sp in samplers if not sp["baseline"]):
        columns = [
            (f"vs {b['label']}", index.ratio("sample", "per_sample", b["key"], fast["key"]))
            for b in baselines
        ]
        text += f"""
### Speed-up of {fast["label"]} (baseline time / its time, same run)

{index.table(columns)}
"""
    return text


def _setup_section(index: _Index) -> str:
    s, families = index.settings, index.with_kind("setup", "families")
    rows = [
        [f"{n:,}", str(d)]
        + [index.cell("setup", f["key"], n, d, None, "seconds") for f in families]
        for d in s["dims"]
        for n in sorted(s["sizes"])
    ]
    table = _table(["n", "d"] + [f["label"] for f in families], rows, right_from=2)
    return f"""## Setup time

Kernel construction + eigendecomposition, once per kernel, in the features' dtype (numpy, torch: \
dual d x d Gram, eigh, n x d eigenvectors). ipdpp's and DPPy's include a first k = 1 call: what \
ipdpp's first sample needs of the decomposition, and when DPPy decomposes.

{table}
"""


def _batch_section(index: _Index) -> str:
    batched = index.with_kind("batch")
    if not batched:
        return ""
    singles = [sp for sp in index.with_kind("sample") if sp["baseline"]]
    columns = [(sp["label"], index.cells("batch", sp["key"], "samples_per_s")) for sp in batched]
    columns += [
        (f"{sp['label']} (one at a time)", index.cells("sample", sp["key"], "samples_per_s"))
        for sp in singles
    ]
    text = f"""## Batch throughput

Samples per second when {index.settings["batch_size"]} samples are drawn in one call (higher is \
better); baselines without a batch mode are shown one sample at a time.

{index.table(columns)}
"""
    pairs = [(f, b) for f in batched if not f["baseline"] for b in batched if b["baseline"]]
    if pairs:
        columns = [
            (
                f"{f['label']} vs {b['label']}",
                index.ratio("batch", "samples_per_s", f["key"], b["key"]),
            )
            for f, b in pairs
        ]
        text += f"\nBatch speed-up (throughput ratio):\n\n{index.table(columns)}\n"
    return text


def _entry_cell(entry: dict[str, Any] | None, notes: list[str], where: str) -> str:
    """A balanced_subset time (marked when extrapolated or a single call), or its status."""
    if entry is None:
        return "—"
    if entry["status"] != "ok":
        notes.append(f"{where}: {entry['status']} — {entry.get('reason', '')}")
        return str(entry["status"])
    if entry.get("extrapolated"):
        notes.append(
            f"{where}: {entry['classes_timed']} of {entry['classes_sampled']} classes "
            f"timed ({format_time(entry['measured_seconds'])}), total extrapolated"
        )
    mark = " (1 call)" if entry.get("cold") else "*" if entry.get("extrapolated") else ""
    return format_time(entry["seconds"]) + mark


def _balanced_section(run: dict[str, Any]) -> str:
    problems = run["balanced"]
    labels = {
        key: e["label"] for pr in problems for key, e in {**pr["modes"], **pr["loops"]}.items()
    }
    modes = [key for key in labels if key.startswith("ipdpp-")]
    loops = [key for key in labels if key not in modes]
    rows, notes = [], []
    for pr in problems:
        shape, entries = pr["shape"], {**pr["modes"], **pr["loops"]}
        row = [
            f"{shape['name']}: {shape['largest']:,}→{shape['smallest']} per class, "
            f"k = {shape['k']}",
            f"{shape['num_classes']:,}",
            f"{pr['items']:,}",
            f"{pr['kept']:,}",
        ]
        row += [
            _entry_cell(entries.get(key), notes, f"{shape['name']}, {labels[key]}")
            for key in modes + loops
        ]
        exact = pr["modes"].get("ipdpp-exact", {})
        for key in loops:
            loop = pr["loops"].get(key, {})
            ok = exact.get("status") == loop.get("status") == "ok"
            row.append(format_ratio(loop["seconds"] / exact["seconds"] if ok else None))
        rows.append(row)
    if not rows:
        return ""
    header = ["problem", "classes", "items", "kept"] + [labels[key] for key in modes + loops]
    table = _table(header + [f"exact vs {labels[key]}" for key in loops], rows, right_from=1)
    text = f"""## balanced_subset on long-tailed label sets

One `ipdpp.balanced_subset` call (all classes; median of rounds) against a Python loop over the \
classes that builds each class's dense IP-DPP kernel (alpha = 1/N_c) and draws one k-DPP sample \
with DPPy or the numpy baseline. Classes with N_c <= k are kept whole. p ~ Beta(8, 2).

{table}
"""
    if any("extrapolated" in note for note in notes):
        text += """
\\* extrapolated: the classes that need sampling are sorted by size and the class at the middle \
of each of equal quantile bins is timed; the total is scaled by classes / classes timed.
"""
    if any(e.get("cold") for pr in problems for e in pr["modes"].values()):
        text += (
            "\n(1 call): one call, no warm-up, as it was predicted to take over half the budget.\n"
        )
    return text + ("\n" + "\n".join(f"- {note}" for note in notes) + "\n" if notes else "")


def _notes_section(run: dict[str, Any]) -> str:
    seen: dict[tuple[str, str], list[str]] = {}
    for r in run["records"]:
        if r["status"] != "ok":
            where = f"n={r['n']:,} d={r['d']}" + (f" k={r['k']}" if r["k"] else "")
            what = (f"{r['label']} ({r['kind']}): {r['status']}", r.get("reason", ""))
            seen.setdefault(what, []).append(where)
    lines = [
        f"- {what} at {', '.join(wheres)}" + (f" — {reason}" if reason else "")
        for (what, reason), wheres in seen.items()
    ]
    return "## Skipped and failed measurements\n\n" + "\n".join(lines) + "\n" if lines else ""


def markdown(run: dict[str, Any]) -> str:
    """The Markdown report of a run (see :func:`load`)."""
    index = _Index(run)
    sections = [_header(run), _per_sample_section(index), _setup_section(index)]
    sections += [_batch_section(index), _balanced_section(run), _notes_section(run)]
    command = run.get("command") or "python -m benchmarks.compare"
    sections.append(f"## Reproduce\n\n```\n{command}\n```\n")
    return "\n".join(section for section in sections if section)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m benchmarks.report RESULTS.json [OUT]``: redraw a run's tables and plots."""
    from .plots import write_plots

    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) not in (1, 2):
        raise SystemExit(main.__doc__)
    run = load(Path(args[0]))
    out = Path(args[-1] if len(args) == 2 else Path(args[0]).parent)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.md").write_text(markdown(run))
    for path in write_plots(run, out):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
