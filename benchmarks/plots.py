"""PNG plots of a run (see :func:`benchmarks.report.load`). One colour per sampler in every
figure; baselines are dashed, one-at-a-time throughputs dotted.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .report import _Index

__all__ = ["write_plots"]


def write_plots(run: dict[str, Any], out: Path) -> list[Path]:
    """Write per_sample_vs_n, per_sample_vs_k, setup_vs_n, batch_throughput, balanced_subset.

    Returns the written paths (none when matplotlib is not installed).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    index, s, written = _Index(run), run["settings"], []
    dims, ks, sizes = s["dims"], s["ks"], sorted(s["sizes"])
    palette = plt.get_cmap("tab10").colors
    colours = {sp["key"]: palette[i % len(palette)] for i, sp in enumerate(run["samplers"])}
    for family in run["families"]:
        first = next((sp["key"] for sp in run["samplers"] if sp["family"] == family["key"]), "")
        colours[family["key"]] = colours.get(first, palette[0])

    def figure(name: str, title: str, count: int) -> tuple[Any, list[Any]]:
        cols = min(count, 2)
        fig, axes = plt.subplots(
            math.ceil(count / cols), cols, figsize=(6.2 * cols, 4.4 * math.ceil(count / cols))
        )
        axes = list(getattr(axes, "ravel", lambda: [axes])())
        for extra in axes[count:]:
            extra.set_visible(False)
        fig.suptitle(title)
        written.append(out / name)
        return fig, axes[:count]

    def save(fig: Any) -> None:
        fig.tight_layout()
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)

    def draw(ax: Any, entry: dict[str, Any], kind: str, field: str, at: list[Any], **style: Any):
        """One curve: ``entry``'s ``field`` at the (x, (n, d, k)) of ``at``."""
        points = [(x, index.value(kind, entry["key"], *where, field)) for x, where in at]
        points = [(x, y) for x, y in points if y]
        if points:
            style = {
                "label": entry["label"],
                "linestyle": "--" if entry["baseline"] else "-",
            } | style
            ax.plot(*zip(*points), marker="o", linewidth=1.6, color=colours[entry["key"]], **style)

    def decorate(ax: Any, xlabel: str, ylabel: str, title: str) -> None:
        ax.set(xscale="log", yscale="log", xlabel=xlabel, ylabel=ylabel)
        ax.set_title(title, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)

    samplers, batched = index.with_kind("sample"), index.with_kind("batch")
    families = index.with_kind("setup", "families")
    panels = [(d, k) for d in dims for k in ks if k <= d]
    if panels and samplers:
        fig, axes = figure(
            "per_sample_vs_n.png", "k-DPP per-sample time vs n (after setup)", len(panels)
        )
        for ax, (d, k) in zip(axes, panels):
            for sp in samplers:
                draw(ax, sp, "sample", "per_sample", [(n, (n, d, k)) for n in sizes])
            decorate(ax, "n (items)", "seconds per sample", f"d = {d}, k = {k}")
        save(fig)
    if len(ks) > 1 and samplers:
        fig, axes = figure(
            "per_sample_vs_k.png",
            "k-DPP per-sample time vs k (after setup)",
            len(dims) * len(sizes),
        )
        for ax, (d, n) in zip(axes, [(d, n) for d in dims for n in sizes]):
            for sp in samplers:
                draw(ax, sp, "sample", "per_sample", [(k, (n, d, k)) for k in ks])
            decorate(ax, "k (sample size)", "seconds per sample", f"n = {n:,}, d = {d}")
        save(fig)
    if families:
        fig, axes = figure("setup_vs_n.png", "Setup: kernel + eigendecomposition", len(dims))
        for ax, d in zip(axes, dims):
            for fam in families:
                draw(ax, fam, "setup", "seconds", [(n, (n, d, None)) for n in sizes])
            decorate(ax, "n (items)", "setup seconds", f"d = {d}")
        save(fig)
    if batched and panels:
        title = f"Throughput, batches of {s['batch_size']} samples"
        fig, axes = figure("batch_throughput.png", title, len(panels))
        for ax, (d, k) in zip(axes, panels):
            at = [(n, (n, d, k)) for n in sizes]
            for sp in batched:
                draw(ax, sp, "batch", "samples_per_s", at)
            for sp in (sp for sp in samplers if sp["baseline"]):
                label = f"{sp['label']} (one at a time)"
                draw(ax, sp, "sample", "samples_per_s", at, linestyle=":", label=label)
            decorate(ax, "n (items)", "samples per second", f"d = {d}, k = {k}")
        save(fig)
    if run["balanced"]:
        title = "balanced_subset: one call vs per-class loops"
        fig, axes = figure("balanced_subset.png", title, len(run["balanced"]))
        for ax, problem in zip(axes, run["balanced"]):
            entries = [
                e for e in {**problem["modes"], **problem["loops"]}.values() if e["status"] == "ok"
            ]
            if entries:
                labels = [
                    e["label"] + (" (extrapolated)" if e.get("extrapolated") else "")
                    for e in entries
                ]
                colors = ["#bbbbbb" if "scale" in e else "#3b75af" for e in entries]
                ax.barh(labels, [e["seconds"] for e in entries], color=colors)
                ax.set_xscale("log")
            ax.set_xlabel("seconds for all classes")
            ax.set_title(problem["shape"]["name"], fontsize=10)
            ax.grid(True, which="both", axis="x", alpha=0.3)
        save(fig)
    return written
