"""Compare ipdpp's k-DPP samplers with the alternatives, side by side.

Usage::

    python -m benchmarks.compare                  # the full CPU matrix (about 15 minutes)
    python -m benchmarks.compare --quick          # about a minute
    python -m benchmarks.compare --device cuda    # GPU families only (ipdpp CUDA, torch CUDA)
    python -m benchmarks.compare --n 100000 --d 256 --k 100 --only ipdpp-rejection numpy dppy

Measures, for n in {1e3, 1e4, 1e5, 1e6}, d in {64, 256}, k in {10, 100}: setup time (kernel +
eigendecomposition), per-sample time and batch throughput of ipdpp ("sequential", "rejection",
"auto"), plain numpy, plain PyTorch (CPU; CUDA with ``--device cuda``) and DPPy 0.3.3, plus
``ipdpp.balanced_subset`` on ImageNet-LT- and iNaturalist-shaped label sets against per-class
loops. Writes ``results.md`` (tables with speed-ups against every baseline of the same run),
``results.json`` (raw numbers, machine, versions) and PNG plots into ``--out``.

All libraries run with the same thread count (``--threads``, default 1): BLAS pools, OpenMP,
torch and ipdpp's ``threads=``. The thread variables are set before numpy is imported, which is
why this module imports nothing heavy at the top.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path

from .config import PRESETS, Settings
from .machine import ThreadPinning

__all__ = ["build_parser", "main", "settings_from_args"]


def _count(text: str) -> int:
    """An integer that may be written as 1e5 or 100_000."""
    value = float(text.replace("_", ""))
    if value != int(value) or value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {text!r}")
    return int(value)


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface ."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.compare",
        description="k-DPP sampler throughput: ipdpp against numpy, PyTorch and DPPy.",
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--preset", choices=sorted(PRESETS), default="full", help="default: full")
    size.add_argument(
        "--quick",
        action="store_const",
        dest="preset",
        const="quick",
        help="a one-minute run (small n, d = 64)",
    )
    size.add_argument(
        "--tiny", action="store_const", dest="preset", const="tiny", help="a few seconds, for tests"
    )
    parser.add_argument("--n", type=_count, nargs="+", help="ground-set sizes (override)")
    parser.add_argument("--d", type=_count, nargs="+", help="feature dimensions (override)")
    parser.add_argument("--k", type=_count, nargs="+", help="sample sizes (override)")
    parser.add_argument("--device", choices=("cpu", "cuda", "all"), default="cpu")
    parser.add_argument(
        "--dtype",
        choices=("float32", "float64"),
        default=None,
        help="features dtype (default float64 on cpu, float32 on cuda)",
    )
    parser.add_argument(
        "--threads", type=_count, default=1, help="threads for every library (default 1)"
    )
    parser.add_argument("--budget", type=float, help="seconds per measurement before skipping")
    parser.add_argument("--repeats", type=_count, help="timed repeats (median reported)")
    parser.add_argument("--min-time", type=float, help="seconds each repeat lasts at least")
    parser.add_argument("--batch-size", type=int, help="samples per batch call (0: no batches)")
    parser.add_argument(
        "--balanced", choices=("full", "quick", "tiny", "off"), help="balanced_subset problems"
    )
    parser.add_argument(
        "--balanced-loop-classes",
        type=_count,
        help="classes the per-class loops time before extrapolating",
    )
    parser.add_argument(
        "--dppy-modes",
        nargs="*",
        choices=("GS_bis", "GS", "KuTa12"),
        help="DPPy modes (default GS_bis; none to leave DPPy out)",
    )
    parser.add_argument(
        "--balanced-modes",
        nargs="+",
        choices=("exact", "paper", "random", "greedy"),
        help="ipdpp.balanced_subset modes (default all four; --quick leaves out paper)",
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        choices=("sequential", "rejection", "auto"),
        help="ipdpp methods (default all three)",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        default=(),
        metavar="KEY",
        help="only these families/samplers (e.g. ipdpp numpy dppy-GS_bis)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--note", default="", help="text for the report header")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("benchmarks/results"),
        help="output folder (default benchmarks/results)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def settings_from_args(args: argparse.Namespace) -> Settings:
    """The preset, with every option given on the command line applied over it."""
    values = dict(PRESETS[args.preset])
    overrides = {
        "sizes": args.n,
        "dims": args.d,
        "ks": args.k,
        "budget": args.budget,
        "repeats": args.repeats,
        "min_time": args.min_time,
        "batch_size": args.batch_size,
        "balanced": args.balanced,
        "balanced_loop_classes": args.balanced_loop_classes,
        "dppy_modes": args.dppy_modes,
        "ipdpp_methods": args.methods,
        "balanced_modes": args.balanced_modes,
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    dtype = args.dtype or ("float32" if args.device == "cuda" else "float64")
    known = {f.name for f in fields(Settings)}
    tuples = {k: tuple(v) for k, v in values.items() if isinstance(v, (list, tuple))}
    values.update(tuples)
    return Settings(
        **{k: v for k, v in values.items() if k in known},
        threads=args.threads,
        device=args.device,
        dtype=dtype,
        seed=args.seed,
        only=tuple(args.only),
        out=args.out,
        note=args.note,
        progress=not args.no_progress,
        preset=args.preset,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the comparison and write the report; returns the process exit status.

    Parameters
    ----------
    argv : sequence of str, optional
        Command-line arguments (default ``sys.argv[1:]``), e.g. ``["--tiny", "--out", dir]``.

    Returns
    -------
    int
        0 on success.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    settings = settings_from_args(args)
    with ThreadPinning(settings.threads) as pinning:
        # Imported only now: the thread variables must be set before numpy loads its BLAS.
        from .report import write_all
        from .runner import run

        results = run(settings, pinning.report)
        results["command"] = shlex.join(["python", "-m", "benchmarks.compare", *argv])
        paths = write_all(results, settings.out)
    print(f"wrote {paths['markdown']}, {paths['json']} and {len(paths['plots'])} plots")
    if settings.progress:
        print(paths["markdown"].read_text(), file=sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
