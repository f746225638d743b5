"""What a benchmark run measures: the configuration matrix, presets and budgets.

Kept free of heavy imports: ``benchmarks.compare`` builds a :class:`Settings` before numpy is
loaded, so that the thread variables are in place when BLAS starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["PRESETS", "Settings"]


@dataclass(frozen=True)
class Settings:
    """One benchmark run.

    Attributes
    ----------
    sizes, dims, ks : tuple of int
        The matrix: ground-set sizes n, feature dimensions d, sample sizes k. Every (n, d, k)
        with k <= d is measured (a rank-d kernel has no k-DPP with k > d).
    repeats : int
        Timed repeats per measurement; the median is reported.
    min_time : float
        Seconds each repeat lasts at least (fast calls are looped).
    budget : float
        Seconds one measurement (one sampler at one (n, d, k), or one setup) may take; a
        measurement predicted to exceed it is skipped and marked "skipped (>budget)".
    batch_size : int
        Samples per call in the batch-throughput measurement (0 disables it).
    threads : int
        Threads for every library (BLAS, OpenMP, torch, ipdpp).
    device : str
        "cpu", "cuda" or "all".
    dtype : str
        "float32" or "float64" features (default: float64 on the CPU, float32 on CUDA).
    seed : int
        Seed of the features and samplers.
    balanced : str
        "full", "quick", "tiny" or "off": which ``balanced_subset`` problems run.
    balanced_loop_classes : int
        How many classes the per-class DPPy / numpy loops time before extrapolating.
    balanced_modes : tuple of str
        ``mode=`` values of ``ipdpp.balanced_subset`` timed.
    dppy_modes : tuple of str
        DPPy modes compared ("GS_bis", optionally "GS", "KuTa12").
    ipdpp_methods : tuple of str
        ``method=`` values of ``ipdpp.sample_k_dpp`` compared.
    only : tuple of str
        If not empty, only the families or samplers with these keys run.
    out : Path
        Output folder.
    note : str
        Free text for the report header (e.g. "shared machine").
    progress : bool
        Show a progress bar on stderr.
    preset : str
        The preset the run started from ("full", "quick", "tiny"), for the report.
    """

    sizes: tuple[int, ...]
    dims: tuple[int, ...]
    ks: tuple[int, ...]
    repeats: int
    min_time: float
    budget: float
    batch_size: int
    threads: int = 1
    device: str = "cpu"
    dtype: str = "float64"
    seed: int = 0
    balanced: str = "full"
    balanced_loop_classes: int = 60
    balanced_modes: tuple[str, ...] = ("exact", "paper", "random", "greedy")
    dppy_modes: tuple[str, ...] = ("GS_bis",)
    ipdpp_methods: tuple[str, ...] = ("sequential", "rejection", "auto")
    only: tuple[str, ...] = ()
    out: Path = Path("benchmarks/results")
    note: str = ""
    progress: bool = True
    preset: str = "full"

    def __post_init__(self) -> None:
        for name in ("sizes", "dims", "ks"):
            values = getattr(self, name)
            if not values or any(int(v) != v or v < 1 for v in values):
                raise ValueError(f"{name} must be positive integers; got {values!r}")
        if self.repeats < 1:
            raise ValueError(f"repeats must be >= 1; got {self.repeats}")
        if self.budget <= 0 or self.min_time < 0:
            raise ValueError("budget must be > 0 and min_time >= 0")
        if self.batch_size < 0:
            raise ValueError(f"batch_size must be >= 0; got {self.batch_size}")
        if self.device not in ("cpu", "cuda", "all"):
            raise ValueError(f"device must be 'cpu', 'cuda' or 'all'; got {self.device!r}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64'; got {self.dtype!r}")
        if self.balanced not in ("full", "quick", "tiny", "off"):
            raise ValueError(f"balanced must be full, quick, tiny or off; got {self.balanced!r}")


# The matrix: n in {1e3, 1e4, 1e5, 1e6}, d in {64, 256}, k in {10, 100}.
PRESETS: dict[str, dict[str, object]] = {
    "full": dict(
        sizes=(1_000, 10_000, 100_000, 1_000_000),
        dims=(64, 256),
        ks=(10, 100),
        repeats=5,
        min_time=0.05,
        budget=70.0,
        batch_size=64,
        balanced="full",
        balanced_loop_classes=60,
    ),
    # About a minute on a 2-core machine.
    "quick": dict(
        sizes=(1_000, 10_000, 100_000),
        dims=(64,),
        ks=(10, 50),
        repeats=3,
        min_time=0.02,
        budget=3.0,
        batch_size=16,
        balanced="quick",
        balanced_loop_classes=10,
        # "paper" decomposes every class's dense kernel (O(N_c^3)): a minute here, not quick.
        balanced_modes=("exact", "random", "greedy"),
    ),
    # Seconds: for the tests, so that the harness cannot rot.
    "tiny": dict(
        sizes=(200, 600),
        dims=(16,),
        ks=(4,),
        repeats=2,
        min_time=0.0,
        budget=2.0,
        batch_size=8,
        balanced="tiny",
        balanced_loop_classes=3,
    ),
}
