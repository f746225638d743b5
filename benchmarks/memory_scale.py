"""Memory and scale: a k-DPP sample from float32 features in a memory-mapped file.

Writes Gaussian features (n, d) float32 with the column scales of the other tables
(``j^{-1/2} / sqrt(n)``) to a file block by block, then measures, in a fresh process that opens
the file as a ``numpy.memmap``: building ``ipdpp.LowRankKernel(features, memory=...)`` (the input
checks read the file once), the eigendecomposition (``rank``: the dual Gram, one more pass), the
first k-DPP sample (leverage scores, one more pass, the alias table and the sample) and then
``--samples`` samples in one call. Memory is the process's anonymous resident memory (RssAnon of
/proc/self/status, polled every 5 ms): the features' file pages belong to the page cache, not to
the process, so the extra memory is the peak RssAnon minus RssAnon before the kernel was built.
The file is deleted afterwards unless ``--keep``.

    python -m benchmarks.memory_scale --n 2e7 --d 128 --k 100
    python -m benchmarks.memory_scale --n 1e8 --d 64 --k 50 --dir /var/tmp
    python -m benchmarks.memory_scale --n 2e6 --d 128 --k 100 --memory full   # stored eigenvectors

``--out FILE.json`` appends the result to a JSON list; every run also prints it and a Markdown
row. Generation runs at lower priority (``nice``) and in blocks of 2**20 rows.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

BLOCK_ROWS = 1 << 20
POLL_SECONDS = 0.005


def write_features(path: Path, n: int, d: int, seed: int) -> float:
    """Write the (n, d) float32 features to ``path`` in blocks; returns the seconds it took."""
    start = time.perf_counter()
    scales = ((1.0 + np.arange(d)) ** -0.5 / np.sqrt(n)).astype(np.float32)
    with open(path, "wb") as handle:
        for block, row0 in enumerate(range(0, n, BLOCK_ROWS)):
            rows = min(BLOCK_ROWS, n - row0)
            rng = np.random.default_rng([seed, n, d, block])
            chunk = rng.standard_normal((rows, d), dtype=np.float32)
            chunk *= scales
            chunk.tofile(handle)
    return time.perf_counter() - start


def _rss_anon() -> int:
    """Anonymous resident memory of this process in bytes (RssAnon of /proc/self/status)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("/proc/self/status has no RssAnon (not Linux?)")


class PeakAnon:
    """Polls RssAnon on a thread (the samplers release the GIL) and keeps its maximum."""

    def __init__(self) -> None:
        self.peak = _rss_anon()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            self.peak = max(self.peak, _rss_anon())

    def __enter__(self) -> PeakAnon:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_anon())


def measure(path: Path, n: int, d: int, k: int, samples: int, memory: str, threads: int) -> dict:
    """Run in the child process: build, decompose and sample; times and memory as a dict."""
    import ipdpp

    features = np.memmap(path, dtype=np.float32, mode="r", shape=(n, d))
    memory_option: Any = int(memory) if memory.isdigit() else memory
    baseline = _rss_anon()
    times: dict[str, float] = {}
    with PeakAnon() as peak:
        start = time.perf_counter()
        kernel = ipdpp.LowRankKernel(features, memory=memory_option)
        times["construct_s"] = time.perf_counter() - start
        start = time.perf_counter()
        rank = kernel.rank
        times["eigendecomposition_s"] = time.perf_counter() - start
        start = time.perf_counter()
        first = ipdpp.sample_k_dpp(kernel, k, 1, seed=0, threads=threads)
        times["first_sample_s"] = time.perf_counter() - start
        start = time.perf_counter()
        more = ipdpp.sample_k_dpp(kernel, k, samples, seed=1, threads=threads)
        elapsed = time.perf_counter() - start
        times["per_sample_s"] = elapsed / max(samples, 1)
    for row in np.vstack([first, more]):
        if len(np.unique(row)) != k or row.min() < 0 or row.max() >= n:
            raise RuntimeError(f"invalid sample {row}")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "n": n,
        "d": d,
        "k": k,
        "rank": rank,
        "memory": memory,
        "low_memory": kernel.low_memory,
        "threads": threads,
        "samples": samples,
        "file_gb": n * d * 4 / 1e9,
        **{key: round(value, 4) for key, value in times.items()},
        "setup_total_s": round(
            times["construct_s"] + times["eigendecomposition_s"] + times["first_sample_s"], 3
        ),
        "extra_anon_gib": round((peak.peak - baseline) / 2**30, 3),
        "peak_anon_gib": round(peak.peak / 2**30, 3),
        "max_rss_gib_incl_file_pages": round(usage.ru_maxrss * 1024 / 2**30, 3),
        "eigenvectors_would_take_gib": round(8 * n * rank / 2**30, 3),
        "available_memory_gib": round((ipdpp.available_memory() or 0) / 2**30, 2),
    }


def markdown_row(r: dict) -> str:
    return (
        f"| {r['n']:.0e} | {r['d']} | {r['k']} | {r['file_gb']:.1f} GB | {r['memory']} "
        f"(low: {r['low_memory']}) | {r['construct_s']:.1f} s | {r['eigendecomposition_s']:.1f} s "
        f"| {r['first_sample_s']:.1f} s | {1e3 * r['per_sample_s']:.1f} ms "
        f"| {r['extra_anon_gib']:.2f} GiB | {r['eigenvectors_would_take_gib']:.1f} GiB |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=float, default=2e7)
    parser.add_argument("--d", type=int, default=128)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--samples", type=int, default=10, help="samples timed after the first")
    parser.add_argument("--memory", default="auto", help="LowRankKernel memory= (or bytes)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dir", default=tempfile.gettempdir(), help="where the file goes")
    parser.add_argument("--keep", action="store_true", help="keep (and reuse) the file")
    parser.add_argument("--out", help="append the result to this JSON list")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # the measuring child's file
    parser.add_argument("--generate", help=argparse.SUPPRESS)  # the generating child's file
    args = parser.parse_args(argv)
    n = int(args.n)
    if args.generate:
        print(write_features(Path(args.generate), n, args.d, args.seed))
        return 0
    if args.measure:
        result = measure(
            Path(args.measure), n, args.d, args.k, args.samples, args.memory, args.threads
        )
        print(json.dumps(result))
        return 0

    path = Path(args.dir) / f"ipdpp-features-{n}x{args.d}-f32-seed{args.seed}.bin"
    generated = None
    module = [sys.executable, "-m", "benchmarks.memory_scale"]
    size = ["--n", str(n), "--d", str(args.d), "--seed", str(args.seed)]
    try:
        if not (path.exists() and path.stat().st_size == n * args.d * 4):
            # Not what is measured: at a lower priority, leaving the shared machine to others.
            made = subprocess.run(
                module + ["--generate", str(path)] + size,
                capture_output=True, text=True, check=True, preexec_fn=lambda: os.nice(10),
            )  # fmt: skip
            generated = float(made.stdout.strip())
        child = module + ["--measure", str(path)] + size + ["--k", str(args.k)]
        child += ["--samples", str(args.samples), "--memory", args.memory]
        child += ["--threads", str(args.threads)]
        env = dict(os.environ, OPENBLAS_NUM_THREADS=str(args.threads))
        done = subprocess.run(child, capture_output=True, text=True, env=env, check=False)
        if done.returncode != 0:
            sys.stderr.write(done.stdout + done.stderr)
            return done.returncode
        result = json.loads(done.stdout.strip().splitlines()[-1])
        result["generate_s"] = None if generated is None else round(generated, 1)
    finally:
        if not args.keep:
            path.unlink(missing_ok=True)
    print(json.dumps(result, indent=1))
    print(markdown_row(result))
    if args.out:
        out = Path(args.out)
        runs = json.loads(out.read_text()) if out.exists() else []
        out.write_text(json.dumps(runs + [result], indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
