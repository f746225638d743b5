"""``python -m benchmarks.compare``: run the suite, render its JSON into tables and plots.

The options are the suite's (passed on as ``--bench-*``), plus ``--quick``, ``--tiny`` and
``--out``. Thread pools are pinned before numpy is imported, which is why nothing heavy is
imported at the top.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from .config import add_options, pytest_args, settings_from
from .machine import pin_threads

__all__ = ["build_parser", "main"]

SUITE = Path(__file__).resolve().parent


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface: the suite's options, shortcuts and the output folder."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.compare",
        description="k-DPP sampler speed: ipdpp against numpy, PyTorch and DPPy.",
    )
    add_options(parser.add_argument, "--")
    for preset in ("quick", "tiny"):
        parser.add_argument(f"--{preset}", action="store_const", dest="preset", const=preset)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"), help="folder")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the suite on ``argv`` (default ``sys.argv[1:]``) and write the report.

    Returns pytest's exit status (0: every measurement ran or was skipped, none failed).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    values = vars(args)
    values["preset"] = values["preset"] or "full"
    settings = settings_from(values, "full")
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "results.json"
    json_path.unlink(missing_ok=True)
    pin_threads(settings.threads)
    import pytest  # only now: the thread variables must be set before numpy loads

    options = "-p no:cacheprovider -q --benchmark-only --benchmark-sort=fullname"
    options += " --benchmark-columns=median,iqr,rounds,iterations"
    json_option = f"--benchmark-json={json_path}"
    status = pytest.main([str(SUITE), *options.split(), json_option, *pytest_args(values)])
    if not json_path.exists() or not json_path.stat().st_size:  # pytest-benchmark opens it early
        print(f"no measurement ran (pytest exit status {int(status)})", file=sys.stderr)
        return int(status) or 1
    from .plots import write_plots
    from .report import load, markdown

    raw = json.loads(json_path.read_text())
    raw["ipdpp"]["command"] = shlex.join(["python", "-m", "benchmarks.compare", *argv])
    json_path.write_text(json.dumps(raw, indent=1) + "\n")
    run = load(json_path)
    (out / "results.md").write_text(markdown(run))
    plots = write_plots(run, out)
    print(f"wrote {out / 'results.md'}, {json_path} and {len(plots)} plots")
    return int(status)


if __name__ == "__main__":
    raise SystemExit(main())
