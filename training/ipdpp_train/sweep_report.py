"""A sweep's report: sweep.md (tables), sweep.json (every number) and error-bar plots.

Written from :func:`ipdpp_train.aggregate.aggregate`'s summary alone, so that re-aggregating
existing seed folders rewrites the same files without training.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .aggregate import GROUPS
from .checkpoint import write_text_atomic
from .report import METHOD_LABELS, save_figure

__all__ = ["sweep_markdown", "write_sweep_plots", "write_sweep_report"]


def _estimate(cell: Mapping[str, Any], digits: int = 1) -> str:
    mean, se = cell["mean"], cell["se"]
    if mean is None:
        return "–"
    return f"{mean:.{digits}f}" if se is None else f"{mean:.{digits}f} ± {se:.{digits}f}"


def _difference(cell: Mapping[str, Any]) -> str:
    if cell["mean"] is None:
        return "–"
    text = f"{cell['mean']:+.1f}"
    if cell["low"] is not None:
        text += f" [{cell['low']:+.1f}, {cell['high']:+.1f}]"
    return f"**{text}**" if cell["resolved"] else text


def _label(method: str) -> str:
    label = METHOD_LABELS.get(method)
    return f"`{method}` ({label})" if label else f"`{method}`"


def sweep_markdown(summary: Mapping[str, Any], context: Mapping[str, Any]) -> str:
    """The sweep's tables: accuracy (mean ± SE), paired differences, per-class accuracy.

    ``context`` holds what one seed's results.json says about the data (``class_names``,
    ``train_counts``, ``thresholds``) and ``stage1_seconds`` (:func:`mean_se`), when known.
    """
    seeds, methods, ref = summary["seeds"], summary["methods"], summary["reference"]
    n = len(seeds)
    level = round(100 * summary["confidence"])
    lines = [
        f"Seeds: {', '.join(map(str, seeds))} ({n}); every seed trains every method on the same "
        "data, stage-1 encoder and random streams (paired).",
    ]
    counts = context.get("train_counts")
    if counts:
        lines.append(f"Training images per class (head to tail): {', '.join(map(str, counts))}.")
    thresholds = context.get("thresholds")
    if thresholds:
        lines.append(
            f"Shot groups — many: > {thresholds['many']:g} training images, few: < "
            f"{thresholds['few']:g} ({thresholds['note']})."
        )
    lines += [
        "",
        f"Test accuracy (%), mean ± standard error over {n} seed(s); training seconds: the "
        "logged epochs of the method's own phases (not the stage 1 or CE model it starts from).",
        "",
        "| method | overall | many | medium | few | training s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for m in methods:
        cells = [_estimate(summary["accuracy"][m][g]) for g in GROUPS]
        seconds = _estimate(summary["seconds"][m])
        lines.append(f"| {_label(m)} | {' | '.join(cells)} | {seconds} |")
    stage1 = context.get("stage1_seconds")
    if stage1 and stage1["mean"]:
        lines.append(f"\nStage-1 training seconds per seed: {_estimate(stage1)}.")
    if context.get("sweep_wall_seconds") is not None:
        lines.append(
            f"\nWall time of the sweep: {context['sweep_wall_seconds']:.0f} s, "
            f"{context.get('jobs', 1)} seed(s) at a time."
        )
    lines += [
        "",
        f"Paired differences against `{ref}` (method − {ref}, percentage points): mean over "
        f"seeds and {level} % Student-t interval ({n - 1} degree{'' if n == 2 else 's'} of "
        "freedom); **bold**: "
        "resolved (the interval excludes 0).",
        "",
        f"| method − {ref} | overall | many | medium | few |",
        "|---|---:|---:|---:|---:|",
    ]
    for m in methods:
        if m != ref:
            cells = [_difference(summary["differences"][m][g]) for g in GROUPS]
            lines.append(f"| `{m}` | {' | '.join(cells)} |")
    names = context.get("class_names") or [str(c) for c in range(len(summary["groups"]))]
    counts = counts or [""] * len(names)
    lines += [
        "",
        "Per-class test accuracy (%), mean ± standard error, head to tail:",
        "",
        "| class (training images) | group | " + " | ".join(f"`{m}`" for m in methods) + " |",
        "|---|---|" + "---:|" * len(methods),
    ]
    for c, (name, count, group) in enumerate(zip(names, counts, summary["groups"])):
        cells = [_estimate(summary["accuracy"][m]["per_class"][c]) for m in methods]
        shown = f"{name} ({count})" if count != "" else name
        lines.append(f"| {shown} | {group} | {' | '.join(cells)} |")
    return "\n".join(lines) + "\n"


def _values(cells: list[Mapping[str, Any]], key: str) -> np.ndarray:
    return np.array([np.nan if c[key] is None else c[key] for c in cells], dtype=np.float64)


def _errors(cells: list[Mapping[str, Any]], key: str) -> np.ndarray:
    # An undefined standard error (one seed) draws no bar rather than a NaN one.
    return np.nan_to_num(_values(cells, key))


def write_sweep_plots(
    summary: Mapping[str, Any], context: Mapping[str, Any], directory: Path
) -> list[Path]:
    """sweep_accuracy.png (overall/many/medium/few per method), sweep_per_class.png and
    sweep_differences.png (paired differences with their intervals), all with error bars."""
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    methods, ref = summary["methods"], summary["reference"]
    width = 0.8 / max(1, len(methods))
    offsets = [(i - (len(methods) - 1) / 2) * width for i in range(len(methods))]
    paths = [directory / f"sweep_{n}.png" for n in ("accuracy", "per_class", "differences")]

    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(methods) + 3), 4.5))
    x = np.arange(len(GROUPS))
    for off, m in zip(offsets, methods):
        cells = [summary["accuracy"][m][g] for g in GROUPS]
        ax.bar(x + off, _values(cells, "mean"), width, yerr=_errors(cells, "se"), capsize=3,
               label=m)  # fmt: skip
    ax.set_xticks(x, list(GROUPS))
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 105)
    ax.set_title(f"Mean ± standard error over {len(summary['seeds'])} seed(s)")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=4, frameon=False)
    fig.tight_layout()
    save_figure(fig, paths[0])
    plt.close(fig)

    names = context.get("class_names") or [str(c) for c in range(len(summary["groups"]))]
    counts = context.get("train_counts") or [""] * len(names)
    bars = len(names) * max(1, len(methods))
    fig, ax = plt.subplots(figsize=(min(18.0, max(7.0, 3 + 0.12 * bars)), 4.5))
    x = np.arange(len(names))
    for off, m in zip(offsets, methods):
        cells = summary["accuracy"][m]["per_class"]
        ax.bar(x + off, _values(cells, "mean"), width, yerr=_errors(cells, "se"), capsize=1.5,
               error_kw={"elinewidth": 0.8}, label=m)  # fmt: skip
    ax.set_xticks(x, [f"{n}\n({c})" for n, c in zip(names, counts)], fontsize=7)
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 105)
    ax.set_title("Per-class accuracy (class, training images), head to tail; mean ± SE")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=4, frameon=False)
    fig.tight_layout()
    save_figure(fig, paths[1])
    plt.close(fig)

    others = [m for m in methods if m != ref]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(others) + 3), 4.5))
    x = np.arange(len(GROUPS))
    step = 0.8 / max(1, len(others))
    for i, m in enumerate(others):
        cells = [summary["differences"][m][g] for g in GROUPS]
        mean, low, high = (_values(cells, k) for k in ("mean", "low", "high"))
        ax.errorbar(x + (i - (len(others) - 1) / 2) * step, mean,
                    yerr=np.nan_to_num(np.vstack([mean - low, high - mean])), fmt="o", capsize=3,
                    label=f"{m} − {ref}")  # fmt: skip
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(x, list(GROUPS))
    ax.set_ylabel("accuracy difference (percentage points)")
    level = round(100 * summary["confidence"])
    ax.set_title(f"Paired differences against {ref}, {level} % t-intervals")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=4, frameon=False)
    fig.tight_layout()
    save_figure(fig, paths[2])
    plt.close(fig)
    return paths


def write_sweep_report(
    directory: Path, summary: Mapping[str, Any], context: Mapping[str, Any]
) -> str:
    """Write sweep.md, sweep.json and the plots into ``directory``; return the Markdown."""
    directory.mkdir(parents=True, exist_ok=True)
    table = sweep_markdown(summary, context)
    write_text_atomic(directory / "sweep.md", table)
    payload = {**summary, **{k: v for k, v in context.items() if k not in summary}}
    write_text_atomic(directory / "sweep.json", json.dumps(payload, indent=1) + "\n")
    write_sweep_plots(summary, context, directory)
    return table
