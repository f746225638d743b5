"""Presets and the options that change them, declared once for the comparison command (``--n``)
and the pytest suite (``--bench-n``). Nothing heavy is imported (see compare.py).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Callable

__all__ = ["PRESETS", "Settings", "add_options", "pytest_args", "settings_from"]


@dataclass(frozen=True)
class Settings:
    """One benchmark run (every field is an option; see :data:`OPTIONS` for what each means).

    Every (n, d, k) of ``sizes x dims x ks`` with ``k <= min(n, d)`` is measured (a rank-d
    kernel has no k-DPP with k > d). A measurement predicted to take longer than ``budget``
    seconds is skipped; ``repeats`` timed rounds, each at least ``min_time`` long, give a median.
    """

    sizes: tuple[int, ...]
    dims: tuple[int, ...]
    ks: tuple[int, ...]
    repeats: int
    min_time: float
    budget: float
    batch_size: int
    balanced: str
    balanced_loop_classes: int
    balanced_modes: tuple[str, ...]
    dppy_modes: tuple[str, ...] = ("GS_bis",)
    ipdpp_methods: tuple[str, ...] = ("sequential", "rejection", "columns", "auto")
    threads: int = 1
    device: str = "cpu"
    dtype: str = ""  # "" = float64 on the CPU, float32 on CUDA
    seed: int = 0
    only: tuple[str, ...] = ()
    note: str = ""
    preset: str = "full"

    def __post_init__(self) -> None:
        if self.repeats < 1 or self.budget <= 0 or self.min_time < 0 or self.batch_size < 0:
            raise ValueError("repeats must be >= 1, budget > 0, min_time and batch_size >= 0")
        if not self.dtype:
            object.__setattr__(self, "dtype", "float32" if self.device == "cuda" else "float64")


_MODES = ("exact", "paper", "random", "greedy")
_PRESET_FIELDS = ("sizes", "dims", "ks", "repeats", "min_time", "budget", "batch_size",
                  "balanced", "balanced_loop_classes", "balanced_modes")  # fmt: skip
# full: n in {1e3, 1e4, 1e5, 1e6}, d in {64, 256}, k in {10, 100}, about 15 minutes on 2 cores.
# quick: about a minute ("paper" decomposes every class's dense kernel, O(N_c^3): not quick).
# gpu: a GPU's share of a short device lease, at the sizes the GPU goals name.
# tiny: seconds, for the tests, so that the harness cannot rot.
# setup: the setup table alone at n = 1e6, d = 256 (run once per --dtype and --threads).
PRESETS: dict[str, dict[str, Any]] = {
    name: dict(zip(_PRESET_FIELDS, values))
    for name, values in {
        "full": ((1_000, 10_000, 100_000, 1_000_000), (64, 256), (10, 100), 5, 0.05, 70.0, 64,
                 "full", 60, _MODES),
        "quick": ((1_000, 10_000, 100_000), (64,), (10, 50), 3, 0.02, 3.0, 16, "quick", 10,
                  ("exact", "random", "greedy")),
        "gpu": ((10_000, 100_000, 1_000_000), (256,), (10, 50, 100), 5, 0.02, 8.0, 64, "full", 1,
                ("exact",)),
        "tiny": ((200, 600), (16,), (4,), 2, 0.0, 2.0, 8, "tiny", 3, _MODES),
        "setup": ((1_000_000,), (256,), (), 5, 0.0, 600.0, 0, "off", 1, ()),
    }.items()
}  # fmt: skip


def _count(text: str) -> int:
    """A positive integer that may be written as 1e5 or 100_000 (argparse reports ValueError)."""
    value = float(text.replace("_", ""))
    if not value.is_integer() or value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {text!r}")
    return int(value)


# (flag without prefix, Settings field, argparse keywords). None as a value means "the preset's".
OPTIONS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("preset", "preset", dict(choices=sorted(PRESETS), help="sizes and budgets (default full)")),
    ("n", "sizes", dict(type=_count, nargs="+", help="ground-set sizes")),
    ("d", "dims", dict(type=_count, nargs="+", help="feature dimensions")),
    ("k", "ks", dict(type=_count, nargs="+", help="sample sizes")),
    ("device", "device", dict(choices=("cpu", "cuda", "all"), help="default cpu")),
    ("dtype", "dtype", dict(choices=("float32", "float64"), help="default: f64 CPU, f32 CUDA")),
    ("threads", "threads", dict(type=_count, help="threads for every library (default 1)")),
    ("budget", "budget", dict(type=float, help="seconds per measurement before skipping")),
    ("repeats", "repeats", dict(type=_count, help="timed rounds (median reported)")),
    ("min-time", "min_time", dict(type=float, help="seconds each round lasts at least")),
    ("batch-size", "batch_size", dict(type=int, help="samples per batch call (0: no batches)")),
    ("balanced", "balanced", dict(choices=("full", "quick", "tiny", "off"))),
    ("balanced-loop-classes", "balanced_loop_classes", dict(type=_count)),
    ("balanced-modes", "balanced_modes", dict(nargs="+", choices=_MODES)),
    ("dppy-modes", "dppy_modes", dict(nargs="*", choices=("GS_bis", "GS", "KuTa12"))),
    (
        "methods",
        "ipdpp_methods",
        dict(nargs="+", choices=("sequential", "rejection", "columns", "auto")),
    ),
    ("only", "only", dict(nargs="+", metavar="KEY", help="only these families or samplers")),
    ("seed", "seed", dict(type=int)),
    ("note", "note", dict(help="text for the report header")),
)


def add_options(add: Callable[..., Any], prefix: str, dest_prefix: str = "") -> None:
    """Declare every option with ``add`` (``ArgumentParser.add_argument`` or pytest's)."""
    for flag, field, kwargs in OPTIONS:
        add(f"{prefix}{flag}", dest=f"{dest_prefix}{field}", default=None, **kwargs)


def settings_from(values: Mapping[str, Any], default_preset: str) -> Settings:
    """The preset named in ``values`` (or ``default_preset``), with the given options over it."""
    preset = values.get("preset") or default_preset
    merged = {**PRESETS[preset], "preset": preset}
    known = {f.name for f in fields(Settings)}
    merged.update({k: v for k, v in values.items() if k in known and v is not None})
    return Settings(**{k: tuple(v) if isinstance(v, list) else v for k, v in merged.items()})


def pytest_args(values: Mapping[str, Any]) -> list[str]:
    """The suite's ``--bench-*`` options that reproduce the given option values."""
    args: list[str] = []
    for flag, field, _ in OPTIONS:
        value = values.get(field)
        if value is not None:
            args += [f"--bench-{flag}", *map(str, value if isinstance(value, list) else [value])]
    return args
