"""The end-of-run summary: a Markdown table comparing the methods, JSON, and PNG plots."""

from __future__ import annotations

import io
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .checkpoint import write_bytes_atomic, write_text_atomic
from .data import LongTailData
from .evaluate import Metrics, ShotThresholds
from .methods import METHOD_LABELS

__all__ = ["METHOD_LABELS", "markdown_table", "save_figure", "write_plots", "write_report"]


def _cell(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.1f}"


def markdown_table(
    results: Mapping[str, Metrics], thresholds: ShotThresholds, data: LongTailData
) -> str:
    """Methods as rows; overall, many, medium and few-shot top-1 accuracy (%) as columns.

    The header states the classes in each group and the thresholds that defined them.
    """
    groups = next(iter(results.values())).groups if results else ()
    members = {
        g: [
            f"{name} ({n})"
            for name, n, grp in zip(data.class_names, data.train_counts, groups)
            if grp == g
        ]
        for g in ("many", "medium", "few")
    }
    lines = [
        f"Training images per class (head to tail): {', '.join(map(str, data.train_counts))}; "
        f"validation images: {len(data.y_val)}; test images: {len(data.y_test)}.",
        f"Data — {'; '.join(data.notes)}." if data.notes else "",
        f"Shot groups — {thresholds.describe()}.",
    ]
    lines = [line for line in lines if line]
    for g in ("many", "medium", "few"):
        lines.append(f"- {g}: {', '.join(members[g]) if members[g] else 'no classes'}")
    lines += [
        "",
        "| method | overall | many | medium | few |",
        "|---|---:|---:|---:|---:|",
    ]
    for method, m in results.items():
        lines.append(
            f"| {METHOD_LABELS.get(method, method)} | {_cell(m.overall)} | {_cell(m.many)} | "
            f"{_cell(m.medium)} | {_cell(m.few)} |"
        )
    return "\n".join(lines) + "\n"


def write_plots(results: Mapping[str, Metrics], data: LongTailData, directory: Path) -> list[Path]:
    """per_class_accuracy.png (grouped bars, one colour per method) and class_counts.png."""
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    names = list(data.class_names)
    x = np.arange(len(names))
    paths = []

    bars = len(names) * max(1, len(results))
    fig, ax = plt.subplots(figsize=(min(14.0, max(7.0, 3 + 0.15 * bars)), 4.5))
    width = 0.8 / max(1, len(results))
    for i, (method, m) in enumerate(results.items()):
        ax.bar(
            x + (i - (len(results) - 1) / 2) * width,
            m.per_class,
            width,
            label=METHOD_LABELS.get(method, method),
        )
    ax.set_xticks(x, [f"{n}\n({c})" for n, c in zip(names, data.train_counts)], fontsize=7)
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title("Per-class accuracy (class, training images), head to tail")
    # Below the axes, so that no bar is hidden behind it.
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, frameon=False)
    fig.tight_layout()
    paths.append(directory / "per_class_accuracy.png")
    save_figure(fig, paths[-1])
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(max(5.0, 0.5 * len(names)), 3))
    ax.bar(x, data.train_counts, color="tab:gray")
    ax.set_yscale("log")
    ax.set_xticks(x, names, rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("training images (log scale)")
    ax.set_title("Long-tailed training set")
    fig.tight_layout()
    paths.append(directory / "class_counts.png")
    save_figure(fig, paths[-1])
    plt.close(fig)
    return paths


def save_figure(fig: Any, path: Path) -> None:
    """A matplotlib figure as a PNG at ``path``, written atomically."""
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=120, format="png")
    write_bytes_atomic(path, buffer.getvalue())


def write_report(
    directory: Path,
    results: Mapping[str, Metrics],
    thresholds: ShotThresholds,
    data: LongTailData,
    extra: Mapping[str, Any],
) -> str:
    """Write results.md, results.json and the plots into ``directory``; return the Markdown."""
    table = markdown_table(results, thresholds, data)
    source = extra.get("stage1_from")
    if source:  # the encoder was reused, not trained here: say from where
        table += f"\nStage 1 not trained here: the encoder is {source['checkpoint']}.\n"
    write_text_atomic(directory / "results.md", table)
    payload = {
        "methods": {k: v.to_dict() for k, v in results.items()},
        "class_names": list(data.class_names),
        "train_counts": list(data.train_counts),
        "thresholds": {"many": thresholds.many, "few": thresholds.few, "note": thresholds.note},
        "data_notes": list(data.notes),
        "validation_images": int(len(data.y_val)),
        **extra,
    }
    write_text_atomic(directory / "results.json", json.dumps(payload, indent=1) + "\n")
    write_plots(results, data, directory)
    return table
