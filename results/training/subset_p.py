"""What each stage-2 sampler chose: the p of the chosen items against their classes', per round.

For every seed folder of a sweep and every method that drew subsets, reads the rounds kept
in the method's checkpoint (p of every training item and the subset drawn from it) and, over the
classes larger than k (the only ones a sampler chooses in), reports per round:

- ``mean p chosen - mean p class``: negative when the sampler prefers low-confidence items;
- ``hard kept``: the share of each class's hardest decile (lowest p) that made the subset,
  against k / N_c for a uniform draw;
- ``distinct``: the share of a class's items chosen in at least one round (coverage).

Run from the repository root, after the sweep::

    python results/training/subset_p.py runs/fashion-mnist-lt \
        --out results/training/fashion-mnist-lt
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from ipdpp_train.aggregate import seed_directories
from ipdpp_train.checkpoint import write_text_atomic
from ipdpp_train.config_io import load_config
from ipdpp_train.data import load_long_tailed


def round_stats(p: np.ndarray, subset: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Class-averaged statistics of one round over the classes the sampler chose in."""
    chosen = np.zeros(len(labels), dtype=bool)
    chosen[subset] = True
    gaps, hard, uniform = [], [], []
    for c in np.unique(labels):
        members = labels == c
        k = int(chosen[members].sum())
        if k == members.sum():
            continue  # kept whole: no choice was made
        pc = p[members]
        gaps.append(pc[chosen[members]].mean() - pc.mean())
        decile = np.argsort(pc, kind="stable")[: max(1, len(pc) // 10)]
        hard.append(chosen[members][decile].mean())
        uniform.append(k / members.sum())
    return {
        "gap": float(np.mean(gaps)),
        "hard_kept": float(np.mean(hard)),
        "uniform_share": float(np.mean(uniform)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", type=Path, help="the sweep folder (holds seed-S/)")
    parser.add_argument("--out", type=Path, help="where subset_p.md/json go (default: sweep)")
    args = parser.parse_args()
    out = args.out or args.sweep
    seeds = list(seed_directories(args.sweep).values())
    config = load_config(str(seeds[0] / "config.toml"))
    labels = np.asarray(load_long_tailed(config.data).y_train)
    table: dict[str, dict[str, list[dict[str, float]]]] = {}
    for seed_dir in seeds:
        for path in sorted(seed_dir.glob("*/checkpoint.pt")):
            # Stage 2 keeps every round's p and subset; other phases keep no rounds.
            state = torch.load(path, map_location="cpu", weights_only=False).get("state", {})
            rounds, method = state.get("rounds"), path.parent.name
            if not rounds:
                continue
            covered = np.zeros(len(labels), dtype=bool)
            for r in rounds:
                subset = np.asarray(r["subset"], dtype=np.int64)
                covered[subset] = True
                stats = round_stats(np.asarray(r["p"], dtype=np.float64), subset, labels)
                table.setdefault(method, {}).setdefault(str(r["round"]), []).append(stats)
            table[method].setdefault("distinct", []).append({"distinct": float(covered.mean())})
    lines = [
        "| method | round | mean p chosen − class mean | hardest decile kept (uniform) | seeds |",
        "|---|---:|---:|---:|---:|",
    ]
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for method, rounds in table.items():
        for key, stats in rounds.items():
            if key == "distinct":
                continue
            gap = np.array([s["gap"] for s in stats])
            hard = np.array([s["hard_kept"] for s in stats])
            uni = np.mean([s["uniform_share"] for s in stats])
            se = gap.std(ddof=1) / np.sqrt(len(gap)) if len(gap) > 1 else float("nan")
            summary.setdefault(method, {})[key] = {
                "gap_mean": float(gap.mean()), "gap_se": float(se),
                "hard_kept": float(hard.mean()), "uniform_share": float(uni), "seeds": len(gap),
            }  # fmt: skip
            lines.append(
                f"| {method} | {key} | {gap.mean():+.3f} ± {se:.3f} | "
                f"{100 * hard.mean():.0f} % ({100 * uni:.0f} %) | {len(gap)} |"
            )
        coverage = np.mean([s["distinct"] for s in rounds["distinct"]])
        summary[method]["distinct"] = {"share_of_items_ever_chosen": float(coverage)}
    text = "\n".join(lines) + "\n"
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "subset_p.md", text)
    write_text_atomic(out / "subset_p.json", json.dumps(summary, indent=1))
    print(text)


if __name__ == "__main__":
    main()
