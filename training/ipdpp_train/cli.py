"""Command line: a TOML config plus a few flags mapped onto it.

Examples
--------
``ipdpp-train --config configs/digits.toml``
``ipdpp-train --config configs/fashion_mnist.toml --device cuda --set stage1.epochs=1000``
``torchrun --nproc_per_node 2 -m ipdpp_train --config configs/digits.toml``
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from .config import METHODS, Config
from .config_io import apply_overrides, load_config

__all__ = ["build_parser", "config_from_args", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ipdpp-train",
        description=(
            "Long-tailed recognition with BNS pre-training and IP-DPP re-training: trains the "
            "requested methods, prints a comparison table and writes logs, checkpoints, "
            "results.md/json and plots to OUT/NAME."
        ),
    )
    parser.add_argument("--config", help="TOML config file (defaults for every missing key)")
    parser.add_argument(
        "--methods",
        help=f"comma-separated subset of {','.join(METHODS)} (default: the config's run.methods)",
    )
    parser.add_argument("--device", help="cpu, cuda or cuda:N (run.device)")
    parser.add_argument("--data-dir", help="dataset folder, or the .npz file (data.data_dir)")
    parser.add_argument("--out", help="output root (run.out_dir)")
    parser.add_argument("--name", help="run name, a folder under the output root (run.name)")
    parser.add_argument("--seed", type=int, help="training seed (run.seed)")
    parser.add_argument("--threads", type=int, help="torch CPU threads per process (run.threads)")
    parser.add_argument(
        "--resume", action="store_true", help="continue an interrupted run in OUT/NAME"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override any config value, TOML syntax (e.g. --set stage1.epochs=50); repeatable",
    )
    return parser


def config_from_args(args: argparse.Namespace) -> Config:
    """The config file, then the named flags, then ``--set`` assignments (last wins)."""
    config = load_config(args.config)
    assignments: list[str] = []
    if args.methods:
        names = [m.strip() for m in args.methods.split(",") if m.strip()]
        assignments.append("run.methods=[" + ", ".join(f'"{m}"' for m in names) + "]")
    for flag, key in (
        ("device", "run.device"),
        ("data_dir", "data.data_dir"),
        ("out", "run.out_dir"),
        ("name", "run.name"),
    ):
        value = getattr(args, flag)
        if value is not None:
            assignments.append(f"{key}={json.dumps(value)}")  # a JSON string is valid TOML
    if args.seed is not None:
        assignments.append(f"run.seed={args.seed}")
    if args.threads is not None:
        assignments.append(f"run.threads={args.threads}")
    if args.resume:
        assignments.append("run.resume=true")
    if args.no_progress:
        assignments.append("run.progress=false")
    return apply_overrides(config, assignments + list(args.set))


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``ipdpp-train`` and ``python -m ipdpp_train``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except (OSError, ValueError, TypeError) as exc:
        parser.error(str(exc))
    # Imported here so that --help and config errors answer without loading torch.
    from .pipeline import run_experiment

    try:
        result = run_experiment(config)
    except (OSError, ImportError, ValueError) as exc:  # OSError: missing files, a full disk
        print(f"ipdpp-train: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    if result.table:
        print()
        print(result.table)
        print(f"Logs, checkpoints, results.md/json and plots: {result.directory}")
