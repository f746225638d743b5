"""Per-sample CPU time of ipdpp's rejection phases in batches, for comparing builds.

Uses only ``ipdpp.LowRankKernel`` and ``ipdpp.sample_k_dpp(..., method=, threads=)``, so it runs
against any build of the library on the path. That lets alternating processes compare an older
build with the current one on the same (noisy) machine, where ``python -m benchmarks.compare``
needs the current harness's API. Features are those of the other tables
(:func:`benchmarks.suite.make_features`, float64). Prints one JSON line: the first call's time
(for ``columns``, building its tables), then the process time per sample of ``--rounds`` batches
of ``--batch`` samples after ``--warmup`` samples (which let a fresh kernel form its
eigenvectors). ``--first-k1`` draws one k = 1 sample and calls ``eigh()`` before anything else,
the order of a benchmark's setup.

    python -m benchmarks.rejection_batches --n 1e5 --d 256 --k 100 --method rejection
    PYTHONPATH=OTHER_BUILD:. python -m benchmarks.rejection_batches --method rejection
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from benchmarks.suite import make_features


def main(argv: list[str] | None = None) -> dict[str, float | int | str]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=float, default=1e5)
    parser.add_argument("--d", type=int, default=256)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--method", default="rejection")
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--first-k1", action="store_true")
    args = parser.parse_args(argv)
    import ipdpp

    n = int(args.n)
    kernel = ipdpp.LowRankKernel(make_features(n, args.d, "float64", 0))
    if args.first_k1:
        ipdpp.sample_k_dpp(kernel, 1, seed=0, threads=1)
        kernel.eigh()
    start = time.perf_counter()
    ipdpp.sample_k_dpp(kernel, args.k, 1, seed=1, method=args.method, threads=1)
    first = time.perf_counter() - start
    ipdpp.sample_k_dpp(kernel, args.k, args.warmup, seed=2, method=args.method, threads=1)
    per_sample = []
    for r in range(args.rounds):
        start = time.process_time()
        ipdpp.sample_k_dpp(kernel, args.k, args.batch, seed=10 + r, method=args.method, threads=1)
        per_sample.append((time.process_time() - start) / args.batch)
    result = {
        "n": n,
        "d": args.d,
        "k": args.k,
        "method": args.method,
        "first_call_s": round(first, 4),
        "per_sample_ms_min": round(1e3 * min(per_sample), 4),
        "per_sample_ms_median": round(1e3 * float(np.median(per_sample)), 4),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
