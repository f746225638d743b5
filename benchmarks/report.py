"""Writes a run's results: ``results.json`` (raw), ``results.md`` (tables) and PNG plots.

Everything here reads the JSON-ready dict of :func:`benchmarks.runner.run`, so the tables and
plots can be redrawn from a saved file: ``python -m benchmarks.report results.json --out DIR``.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["format_ratio", "format_time", "main", "markdown", "write_all", "write_plots"]


def format_time(seconds: float | None) -> str:
    """``1.23 µs`` / ``4.56 ms`` / ``7.89 s`` with three significant digits."""
    if seconds is None or not math.isfinite(seconds):
        return "—"
    for scale, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def format_ratio(ratio: float | None) -> str:
    """``1,234×`` / ``56.7×`` / ``0.89×``: how many times faster."""
    if ratio is None or not math.isfinite(ratio):
        return "—"
    if ratio >= 100:
        return f"{ratio:,.0f}×"
    return f"{ratio:.3g}×"


def _format_rate(rate: float | None) -> str:
    if rate is None or not math.isfinite(rate):
        return "—"
    return f"{rate:,.0f}/s" if rate >= 100 else f"{rate:.3g}/s"


class _Index:
    """Records of a run looked up by (kind, key, n, d, k)."""

    def __init__(self, results: dict[str, Any]) -> None:
        self.results = results
        self.records = {
            (r["kind"], r["key"], r["n"], r["d"], r.get("k")): r for r in results["records"]
        }
        self.settings = results["settings"]
        self.samplers = results["samplers"]
        self.families = results["families"]

    def get(self, kind: str, key: str, n: int, d: int, k: int | None = None) -> dict | None:
        return self.records.get((kind, key, n, d, k))

    def value(self, kind: str, key: str, n: int, d: int, k: int | None, field: str) -> float | None:
        record = self.get(kind, key, n, d, k)
        if record is None or record.get("status") != "ok":
            return None
        return record.get(field)

    def cell(self, kind: str, key: str, n: int, d: int, k: int | None, field: str) -> str:
        record = self.get(kind, key, n, d, k)
        if record is None:
            return "—"
        if record.get("status") != "ok":
            return str(record.get("status"))
        value = record.get(field)
        return _format_rate(value) if field == "samples_per_s" else format_time(value)

    def configs(self) -> list[tuple[int, int, int]]:
        """Every (n, d, k) of the matrix that has a k-DPP (k <= rank = min(n, d))."""
        s = self.settings
        return [
            (n, d, k)
            for d in s["dims"]
            for n in sorted(s["sizes"])
            for k in s["ks"]
            if k <= min(n, d)
        ]

    def impossible(self) -> list[tuple[int, int]]:
        """The (d, k) pairs of the matrix left out because k exceeds the rank d."""
        s = self.settings
        return [(d, k) for d in s["dims"] for k in s["ks"] if k > d]

    def with_kind(self, kind: str) -> list[dict[str, Any]]:
        keys = {r["key"] for r in self.results["records"] if r["kind"] == kind}
        return [sp for sp in self.samplers if sp["key"] in keys]


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], right_from: int = 0) -> str:
    aligns = ["---" if i < right_from else "--:" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(aligns) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _header(results: dict[str, Any]) -> list[str]:
    m, t, s = results["machine"], results["threads"], results["settings"]
    gpu = m.get("gpu")
    gpu_text = (
        f"{gpu['name']} ({gpu['memory_gib']} GiB, CUDA {gpu['cuda_runtime']})" if gpu else "none"
    )
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v)
    pools = "; ".join(
        f"{p['api']} {p['version'] or ''} ({p['library']}): {p['threads']}" for p in t["pools"]
    )
    lines = [
        "# ipdpp sampler benchmarks",
        "",
        f"- Date: {m['date_utc']} (preset `{s['preset']}`, wall time "
        f"{results['wall_seconds'] / 60:.1f} min)",
        f"- CPU: {m['cpu_model']}, {m['usable_cpus']} usable of {m['logical_cpus']} logical "
        f"CPUs, {m['memory']['total_gib']:.0f} GiB memory; GPU: {gpu_text}",
        f"- Threads: {t['requested']} for every library ({t['method']}; torch "
        f"{t['torch_threads']})" + (f"; BLAS pools: {pools}" if pools else ""),
        f"- Load average (1/5/15 min) at start {m['load_average']}, at end "
        f"{m.get('load_average_end')}",
        f"- Versions: Python {m['python']}, {versions}",
        f"- Features: {s['dtype']}, Gaussian with column scales j^-1/2 / sqrt(n), so that L's "
        "eigenvalues lie in about (1/d, 1] at every n (unscaled, DPPy's ESP recursion "
        f"overflows at n = 1e5, k = 100); seed {s['seed']}. "
        f"Medians of {s['repeats']} repeats after a warm-up call, each repeat >= "
        f"{s['min_time']:g} s; budget {s['budget']:g} s per measurement; batches of "
        f"{s['batch_size']}.",
    ]
    if t.get("warning"):
        lines.append(f"- Warning: {t['warning']}")
    if s.get("note"):
        lines.append(f"- Note: {s['note']}")
    return lines


def _per_sample_section(index: _Index) -> list[str]:
    samplers = index.with_kind("sample")
    rows = [
        [f"{n:,}", str(d), str(k)]
        + [index.cell("sample", sp["key"], n, d, k, "per_sample") for sp in samplers]
        for n, d, k in index.configs()
    ]
    left_out = ", ".join(f"d = {d} with k = {k}" for d, k in index.impossible())
    out = [
        "## Per-sample time",
        "",
        "One k-DPP sample, after setup (lower is better). `skipped (>budget)`: predicted from "
        "the next smaller n to take longer than the time budget."
        + (
            f" Not in the tables: {left_out} (a rank-{index.impossible()[0][0]} kernel has no "
            f"k-DPP with k > {index.impossible()[0][0]})."
            if left_out
            else ""
        ),
        "",
        _table(["n", "d", "k"] + [sp["label"] for sp in samplers], rows, right_from=3),
        "",
    ]
    baselines = [sp for sp in samplers if sp["baseline"]]
    for fast in (sp for sp in samplers if not sp["baseline"]):
        ratio_rows = []
        for n, d, k in index.configs():
            mine = index.value("sample", fast["key"], n, d, k, "per_sample")
            cells = []
            for base in baselines:
                theirs = index.value("sample", base["key"], n, d, k, "per_sample")
                cells.append(format_ratio(theirs / mine if mine and theirs else None))
            ratio_rows.append([f"{n:,}", str(d), str(k)] + cells)
        out += [
            f"### Speed-up of {fast['label']} (baseline time / its time, same run)",
            "",
            _table(
                ["n", "d", "k"] + [f"vs {b['label']}" for b in baselines],
                ratio_rows,
                right_from=3,
            ),
            "",
        ]
    return out


def _setup_section(index: _Index) -> list[str]:
    s = index.settings
    families = [f for f in index.families if any(r["key"] == f["key"] for r in _setups(index))]
    rows = [
        [f"{n:,}", str(d)]
        + [index.cell("setup", f["key"], n, d, None, "seconds") for f in families]
        for d in s["dims"]
        for n in sorted(s["sizes"])
    ]
    return [
        "## Setup time",
        "",
        "Kernel construction + eigendecomposition, once per kernel (dual d x d Gram, eigh, "
        "n x d eigenvectors). DPPy's includes a first k = 1 call, which is when it "
        "decomposes.",
        "",
        _table(["n", "d"] + [f["label"] for f in families], rows, right_from=2),
        "",
    ]


def _setups(index: _Index) -> list[dict[str, Any]]:
    return [r for r in index.results["records"] if r["kind"] == "setup"]


def _batch_section(index: _Index) -> list[str]:
    batched = index.with_kind("batch")
    if not batched:
        return []
    singles = [sp for sp in index.with_kind("sample") if sp["baseline"]]
    header = ["n", "d", "k"] + [sp["label"] for sp in batched]
    header += [f"{sp['label']} (one at a time)" for sp in singles]
    rows = []
    for n, d, k in index.configs():
        row = [f"{n:,}", str(d), str(k)]
        row += [index.cell("batch", sp["key"], n, d, k, "samples_per_s") for sp in batched]
        row += [index.cell("sample", sp["key"], n, d, k, "samples_per_s") for sp in singles]
        rows.append(row)
    out = [
        "## Batch throughput",
        "",
        f"Samples per second when {index.settings['batch_size']} samples are drawn in one call "
        "(higher is better); baselines without a batch mode are shown one sample at a time.",
        "",
        _table(header, rows, right_from=3),
        "",
    ]
    fast = [sp for sp in batched if not sp["baseline"]]
    slow = [sp for sp in batched if sp["baseline"]]
    if fast and slow:
        ratio_rows = []
        for n, d, k in index.configs():
            cells = []
            for f in fast:
                for b in slow:
                    mine = index.value("batch", f["key"], n, d, k, "samples_per_s")
                    theirs = index.value("batch", b["key"], n, d, k, "samples_per_s")
                    cells.append(format_ratio(mine / theirs if mine and theirs else None))
            ratio_rows.append([f"{n:,}", str(d), str(k)] + cells)
        header = ["n", "d", "k"] + [f"{f['label']} vs {b['label']}" for f in fast for b in slow]
        out += ["Batch speed-up (throughput ratio):", "", _table(header, ratio_rows, 3), ""]
    return out


def _balanced_section(results: dict[str, Any]) -> list[str]:
    problems = results.get("balanced") or []
    if not problems:
        return []
    modes: list[str] = []
    for problem in problems:
        modes += [m for m in problem["ipdpp"].get("modes", {}) if m not in modes]
    if not modes:  # ipdpp did not run at all: one column with the reason
        modes = ["(all modes)"]
    loops: list[str] = []
    for problem in problems:
        loops += [key for key in problem["loops"] if key not in loops]
    loop_labels = {key: problems[0]["loops"][key]["label"] for key in loops}
    header = ["problem", "classes", "items", "kept"]
    header += [f"ipdpp {m}" for m in modes] + [loop_labels[key] for key in loops]
    header += [f"exact vs {loop_labels[key]}" for key in loops]
    rows = []
    notes = []
    for problem in problems:
        shape = problem["shape"]
        row = [
            f"{shape['name']}: {shape['largest']:,}→{shape['smallest']} per class, "
            f"k = {shape['k']}",
            f"{shape['num_classes']:,}",
            f"{problem['items']:,}",
            f"{problem['kept']:,}",
        ]
        ipdpp_modes = problem["ipdpp"].get("modes", {})
        for mode in modes:
            entry = ipdpp_modes.get(mode)
            if entry is None:
                row.append(problem["ipdpp"].get("status", "—"))
                if "reason" in problem["ipdpp"] and mode == modes[0]:
                    notes.append(f"{shape['name']}, ipdpp: {problem['ipdpp']['reason']}")
            elif entry["status"] == "ok":
                row.append(format_time(entry["seconds"]) + (" (1 call)" if entry["cold"] else ""))
            else:
                row.append(entry["status"])
                notes.append(
                    f"{shape['name']}, ipdpp {mode}: {entry['status']} — {entry['reason']}"
                )
        exact = ipdpp_modes.get("exact", {})
        exact_s = exact.get("seconds") if exact.get("status") == "ok" else None
        ratios = []
        for key in loops:
            loop = problem["loops"].get(key, {})
            if loop.get("status") != "ok":
                row.append(loop.get("status", "—"))
                ratios.append("—")
                if "reason" in loop:
                    notes.append(f"{shape['name']}, {loop['label']}: {loop['reason']}")
                continue
            star = "*" if loop["extrapolated"] else ""
            row.append(format_time(loop["seconds"]) + star)
            ratios.append(format_ratio(loop["seconds"] / exact_s if exact_s else None))
            if loop["extrapolated"]:
                notes.append(
                    f"{shape['name']}, {loop['label']}: {loop['classes_timed']} of "
                    f"{loop['classes_sampled']} classes timed "
                    f"({format_time(loop['measured_seconds'])}), total extrapolated"
                )
        rows.append(row + ratios)
    out = [
        "## balanced_subset on long-tailed label sets",
        "",
        "One `ipdpp.balanced_subset` call (all classes; median of repeats) against a Python loop "
        "over the classes that builds each class's dense IP-DPP kernel (alpha = 1/N_c) and "
        "draws one k-DPP sample with DPPy or the numpy baseline. Classes with N_c <= k are kept "
        "whole. p ~ Beta(8, 2).",
        "",
        _table(header, rows, right_from=1),
        "",
    ]
    if any("extrapolated" in note for note in notes):
        out += [
            "\\* extrapolated: the classes that need sampling are sorted by size and cut into "
            "equal strata; one class per stratum is timed and stands for its stratum.",
            "",
        ]
    if any(
        entry.get("cold")
        for problem in problems
        for entry in problem["ipdpp"].get("modes", {}).values()
    ):
        out += ["(1 call): a single call, no warm-up, as it took over half the budget.", ""]
    out += [f"- {note}" for note in notes] + ([""] if notes else [])
    return out


def _notes_section(results: dict[str, Any]) -> list[str]:
    seen: dict[tuple[str, str], list[str]] = {}
    for r in results["records"]:
        if r.get("status") in ("ok", "n/a"):
            continue
        where = f"n={r['n']:,} d={r['d']}" + (f" k={r['k']}" if r.get("k") is not None else "")
        seen.setdefault((f"{r['label']} ({r['kind']}): {r['status']}", r.get("reason", "")), [])
        seen[(f"{r['label']} ({r['kind']}): {r['status']}", r.get("reason", ""))].append(where)
    if not seen:
        return []
    lines = ["## Skipped and failed measurements", ""]
    for (what, reason), wheres in seen.items():
        lines.append(f"- {what} at {', '.join(wheres)}" + (f" — {reason}" if reason else ""))
    return lines + [""]


def markdown(results: dict[str, Any]) -> str:
    """The Markdown report of a run."""
    index = _Index(results)
    lines = _header(results) + [""]
    lines += _per_sample_section(index)
    lines += _setup_section(index)
    lines += _batch_section(index)
    lines += _balanced_section(results)
    lines += _notes_section(results)
    lines += [
        "## Reproduce",
        "",
        "```",
        results.get("command") or "python -m benchmarks.compare",
        "```",
        "",
    ]
    return "\n".join(lines)


def write_plots(results: dict[str, Any], out: Path) -> list[Path]:
    """Log-log PNG plots: per-sample time vs n and vs k, setup vs n, batch throughput vs n.

    Returns the written paths (none when matplotlib is not installed).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    index = _Index(results)
    s = index.settings
    dims, ks, sizes = s["dims"], s["ks"], sorted(s["sizes"])
    written = []

    def panel_grid(count: int) -> tuple[Any, list[Any]]:
        cols = min(count, 2)
        rows = math.ceil(count / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(6.2 * cols, 4.4 * rows), squeeze=False)
        flat = list(axes.ravel())
        for extra in flat[count:]:
            extra.set_visible(False)
        return fig, flat[:count]

    # One colour per sampler in every figure, so that lines can be compared across figures; a
    # family (setup plot) takes the colour of its first sampler.
    palette = plt.get_cmap("tab10").colors
    colours = {sp["key"]: palette[i % len(palette)] for i, sp in enumerate(index.samplers)}
    for fam in index.families:
        first = next((sp["key"] for sp in index.samplers if sp["family"] == fam["key"]), None)
        if first is not None:
            colours[f"family:{fam['key']}"] = colours[first]

    def line_style(entry: dict[str, Any], family: bool = False) -> dict[str, Any]:
        key = f"family:{entry['key']}" if family else entry["key"]
        return {
            "marker": "o",
            "linestyle": "--" if entry["baseline"] else "-",
            "linewidth": 1.6,
            "color": colours.get(key, colours.get(entry["key"], palette[0])),
        }

    def save(fig: Any, name: str, title: str) -> None:
        fig.suptitle(title)
        fig.tight_layout()
        path = out / name
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

    # Per-sample time against n, one panel per (d, k) with a k-DPP.
    panels = [(d, k) for d in dims for k in ks if k <= d]
    samplers = index.with_kind("sample")
    if panels:
        fig, axes = panel_grid(len(panels))
        for ax, (d, k) in zip(axes, panels):
            for sp in samplers:
                points = [
                    (n, index.value("sample", sp["key"], n, d, k, "per_sample")) for n in sizes
                ]
                points = [(x, y) for x, y in points if y]
                if points:
                    ax.plot(*zip(*points), label=sp["label"], **line_style(sp))
            _decorate(ax, "n (items)", "seconds per sample", f"d = {d}, k = {k}")
        save(fig, "per_sample_vs_n.png", "k-DPP per-sample time vs n (after setup)")

    # Per-sample time against k, one panel per (d, n).
    if len(ks) > 1:
        panels_k = [(d, n) for d in dims for n in sizes]
        fig, axes = panel_grid(len(panels_k))
        for ax, (d, n) in zip(axes, panels_k):
            for sp in samplers:
                points = [(k, index.value("sample", sp["key"], n, d, k, "per_sample")) for k in ks]
                points = [(x, y) for x, y in points if y]
                if points:
                    ax.plot(*zip(*points), label=sp["label"], **line_style(sp))
            _decorate(ax, "k (sample size)", "seconds per sample", f"n = {n:,}, d = {d}")
        save(fig, "per_sample_vs_k.png", "k-DPP per-sample time vs k (after setup)")

    # Setup time against n, one panel per d.
    fig, axes = panel_grid(len(dims))
    for ax, d in zip(axes, dims):
        for fam in index.families:
            points = [(n, index.value("setup", fam["key"], n, d, None, "seconds")) for n in sizes]
            points = [(x, y) for x, y in points if y]
            if points:
                ax.plot(*zip(*points), label=fam["label"], **line_style(fam, family=True))
        _decorate(ax, "n (items)", "setup seconds", f"d = {d}")
    save(fig, "setup_vs_n.png", "Setup: kernel + eigendecomposition")

    # Batch throughput against n.
    batched = index.with_kind("batch")
    if batched and panels:
        singles = [sp for sp in samplers if sp["baseline"]]
        fig, axes = panel_grid(len(panels))
        for ax, (d, k) in zip(axes, panels):
            for sp, kind in [(b, "batch") for b in batched] + [(b, "sample") for b in singles]:
                points = [
                    (n, index.value(kind, sp["key"], n, d, k, "samples_per_s")) for n in sizes
                ]
                points = [(x, y) for x, y in points if y]
                if points:
                    label = sp["label"] + ("" if kind == "batch" else " (one at a time)")
                    style = line_style(sp) | ({} if kind == "batch" else {"linestyle": ":"})
                    ax.plot(*zip(*points), label=label, **style)
            _decorate(ax, "n (items)", "samples per second", f"d = {d}, k = {k}")
        save(fig, "batch_throughput.png", f"Throughput, batches of {s['batch_size']} samples")

    balanced = results.get("balanced") or []
    if balanced:
        fig, axes = panel_grid(len(balanced))
        for ax, problem in zip(axes, balanced):
            bars = []
            for mode, entry in problem["ipdpp"].get("modes", {}).items():
                if entry["status"] == "ok":
                    bars.append((f"ipdpp {mode}", entry["seconds"], False))
            for loop in problem["loops"].values():
                if loop.get("status") == "ok":
                    star = " (extrapolated)" if loop["extrapolated"] else ""
                    bars.append((loop["label"] + star, loop["seconds"], True))
            if bars:
                labels, values, hatched = zip(*bars)
                ax.barh(labels, values, color=["#bbbbbb" if h else "#3b75af" for h in hatched])
                ax.set_xscale("log")
            ax.set_xlabel("seconds for all classes")
            ax.set_title(problem["shape"]["name"], fontsize=10)
            ax.grid(True, which="both", axis="x", alpha=0.3)
        save(fig, "balanced_subset.png", "balanced_subset: one call vs per-class loops")
    return written


def _decorate(ax: Any, xlabel: str, ylabel: str, title: str) -> None:
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)


def write_all(results: dict[str, Any], out: Path) -> dict[str, Path]:
    """Write ``results.json``, ``results.md`` and the plots into ``out`` (created if needed).

    Returns
    -------
    dict
        ``{"json": path, "markdown": path, "plots": [paths]}``.
    """
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "results.json"
    json_path.write_text(json.dumps(results, indent=1, default=_json_default) + "\n")
    md_path = out / "results.md"
    md_path.write_text(markdown(results))
    return {"json": json_path, "markdown": md_path, "plots": write_plots(results, out)}


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def main(argv: Sequence[str] | None = None) -> int:
    """Redraw the tables and plots of a saved ``results.json``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.report", description=main.__doc__)
    parser.add_argument("results", type=Path, help="a results.json written by benchmarks.compare")
    parser.add_argument("--out", type=Path, default=None, help="folder (default: the file's)")
    args = parser.parse_args(argv)
    results = json.loads(args.results.read_text())
    out = args.out or args.results.parent
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.md").write_text(markdown(results))
    for path in write_plots(results, out):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
