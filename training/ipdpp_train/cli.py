"""Command line: a TOML config plus a few flags mapped onto it.

Examples
--------
One run (train, evaluate, report)::

    ipdpp-train --config configs/digits.toml
    ipdpp-train --config configs/fashion_mnist.toml --device cuda --set stage1.epochs=1000
    torchrun --nproc_per_node 2 -m ipdpp_train --config configs/digits.toml

Composing runs: stage 2 from an earlier run's BNS encoder (or its CE model's, ``RUN/ce``),
stage-2 methods alone, or evaluation alone of a finished run::

    ipdpp-train --config C --from-stage1 runs/bns --stage stage2 --methods exact,random
    ipdpp-train --config runs/bns/config.toml --stage eval

Seeds: every method under seeds 0..4 (two seeds at a time), then mean ± standard error and
paired differences against CE with 95 % intervals; ``aggregate`` rewrites that report from
existing seed folders without training::

    ipdpp-train sweep --config C --seeds 0-4 --jobs 2 --name fmnist
    ipdpp-train aggregate runs/fmnist --reference ce
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence

from .config import METHODS, RUN_STAGES, Config
from .config_io import apply_overrides, load_config

__all__ = [
    "add_run_arguments",
    "aggregate_main",
    "build_parser",
    "config_from_args",
    "main",
    "sweep_main",
]

#: Sub-commands; without one, ``ipdpp-train`` does one run.
SUBCOMMANDS = ("sweep", "aggregate")


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags that describe one run (shared by a plain run and ``sweep``)."""
    parser.add_argument("--config", help="TOML config file (defaults for every missing key)")
    parser.add_argument(
        "--methods",
        help=f"comma-separated subset of {','.join(METHODS)} (default: the config's run.methods)",
    )
    parser.add_argument("--device", help="cpu, cuda or cuda:N (run.device)")
    parser.add_argument("--data-dir", help="dataset folder, or the .npz file (data.data_dir)")
    parser.add_argument("--out", help="output root (run.out_dir)")
    parser.add_argument("--name", help="run name, a folder under the output root (run.name)")
    parser.add_argument("--threads", type=int, help="torch CPU threads per process (run.threads)")
    parser.add_argument(
        "--from-stage1",
        metavar="PATH",
        help="reuse an encoder instead of training stage 1 (the encoder of every encoder = "
        '"bns" method): a finished run folder (its stage1/), a phase folder (RUN/stage1 for '
        "BNS, RUN/ce for the CE model's encoder) or a checkpoint.pt; its data and model "
        "settings must match (run.from_stage1)",
    )
    parser.add_argument(
        "--stage",
        choices=RUN_STAGES,
        help="all: train what is missing and evaluate (default); stage2: only methods that "
        "start from a trained encoder: stage 1 is loaded (--from-stage1, else this run's own "
        "stage1/) and the CE model is this run's ce/, neither trained; eval: train nothing, "
        "re-evaluate the run's finished checkpoints and rewrite its report (run.stage)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override any config value, TOML syntax (e.g. --set stage1.epochs=50); repeatable",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ipdpp-train",
        description=(
            "Long-tailed recognition with BNS pre-training and IP-DPP re-training: trains the "
            "requested methods, prints a comparison table and writes logs, checkpoints, "
            "results.md/json and plots to OUT/NAME."
        ),
        epilog=(
            "Sub-commands: 'ipdpp-train sweep --config C --seeds 0-4' trains every method "
            "per seed and aggregates them (mean ± SE, paired differences with intervals); "
            "'ipdpp-train aggregate SWEEP_DIR' re-aggregates existing seeds. See "
            "'ipdpp-train sweep --help'."
        ),
    )
    add_run_arguments(parser)
    parser.add_argument("--seed", type=int, help="training seed (run.seed)")
    parser.add_argument(
        "--resume", action="store_true", help="continue an interrupted run in OUT/NAME"
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
        ("from_stage1", "run.from_stage1"),
        ("stage", "run.stage"),
    ):
        value = getattr(args, flag)
        if value is not None:
            assignments.append(f"{key}={json.dumps(value)}")  # a JSON string is valid TOML
    if getattr(args, "seed", None) is not None:
        assignments.append(f"run.seed={args.seed}")
    if args.threads is not None:
        assignments.append(f"run.threads={args.threads}")
    if getattr(args, "resume", False):
        assignments.append("run.resume=true")
    if args.no_progress:
        assignments.append("run.progress=false")
    return apply_overrides(config, assignments + list(args.set))


def _fail(exc: BaseException) -> None:
    print(f"ipdpp-train: error: {exc}", file=sys.stderr)
    raise SystemExit(2) from None


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``ipdpp-train`` and ``python -m ipdpp_train``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "sweep":
        return sweep_main(argv[1:])
    if argv and argv[0] == "aggregate":
        return aggregate_main(argv[1:])
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
        _fail(exc)
    if result.table:
        print()
        print(result.table)
        print(f"Logs, checkpoints, results.md/json and plots: {result.directory}")
    return None


def _reference_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--reference",
        default="ce",
        help="the method every other one is paired with, seed by seed (default: ce)",
    )


def sweep_main(argv: Sequence[str]) -> None:
    """``ipdpp-train sweep``: every method under each seed, then the aggregate."""
    parser = argparse.ArgumentParser(
        prog="ipdpp-train sweep",
        description=(
            "Train every method of the config under each seed (run folders OUT/NAME/seed-S, "
            "always resumed: finished seeds and methods are loaded, not trained again), then "
            "write OUT/NAME/sweep.md, sweep.json and error-bar plots: mean ± standard error "
            "over seeds (overall, many, medium, few, per class), paired differences against "
            "--reference with 95 % t-intervals, training seconds. run.from_stage1 may contain "
            "{seed} (e.g. --from-stage1 'runs/other/seed-{seed}/ce')."
        ),
    )
    add_run_arguments(parser)
    parser.add_argument("--seeds", required=True, help="training seeds, e.g. 0-4 or 0,2,5")
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="seeds trained at once in separate processes, each with run.threads threads "
        "(default 1; with more, run.threads unset means an equal share of the cores)",
    )
    _reference_argument(parser)
    args = parser.parse_args(argv)
    from .sweep import parse_seeds

    try:
        config = config_from_args(args)
        seeds = parse_seeds(args.seeds)
    except (OSError, ValueError, TypeError) as exc:
        parser.error(str(exc))
    from .sweep import run_sweep

    def report(seed: int, seconds: float) -> None:
        print(f"ipdpp-train sweep: seed {seed} done ({seconds:.0f} s)", file=sys.stderr)

    command = shlex.join(["ipdpp-train", "sweep", *argv])
    try:
        result = run_sweep(config, seeds, jobs=args.jobs, reference=args.reference,
                           on_seed=report, command=command)  # fmt: skip
    except (OSError, ImportError, ValueError) as exc:
        _fail(exc)
    print(result.table)
    print(f"Seed run folders, sweep.md/json and plots: {result.directory}")


def aggregate_main(argv: Sequence[str]) -> None:
    """``ipdpp-train aggregate``: rewrite a sweep's report from its seed folders."""
    parser = argparse.ArgumentParser(
        prog="ipdpp-train aggregate",
        description=(
            "Re-aggregate the seed-S run folders of a sweep folder without training: rewrites "
            "sweep.md, sweep.json and the plots there."
        ),
    )
    parser.add_argument("directory", metavar="SWEEP_DIR", help="the sweep folder (OUT/NAME)")
    parser.add_argument("--seeds", help="seeds to include (default: every seed-S folder)")
    parser.add_argument("--methods", help="comma-separated methods (default: all with metrics)")
    _reference_argument(parser)
    args = parser.parse_args(argv)
    from .sweep import aggregate_sweep, parse_seeds

    try:
        seeds = None if args.seeds is None else parse_seeds(args.seeds)
        methods = None
        if args.methods:
            methods = [m.strip() for m in args.methods.split(",") if m.strip()]
        result = aggregate_sweep(args.directory, seeds, methods, reference=args.reference)
    except (OSError, ValueError) as exc:
        _fail(exc)
    print(result.table)
    print(f"sweep.md/json and plots: {result.directory}")
