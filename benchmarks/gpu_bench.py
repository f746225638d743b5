"""GPU benchmark of the CUDA backend against plain PyTorch implementations of the same algorithms.

Measures (issue 4), each in this process on the same GPU, with CUDA events after warm-up
(median of several runs; see /work/.library/device/METHOD.md):

- ``bandwidth``: a 1 GiB device-to-device copy (bytes read + written per second): the memory
  ceiling used for the floors below.
- ``single_sample``: one k-DPP sample, n = 100,000, d = 256, k = 50, float32, sequential phase
  (ipdpp's fused kernel vs a plain torch loop of the same projection chain), and the floor: the
  time to read V_J (n x k) k times, k * n * k * 4 bytes / measured bandwidth.
- ``batched``: samples per second at n = 100,000, d = 256, k = 100 (ipdpp's rejection kernel,
  one block per sample, vs a batched torch loop of the projection chain using bmm).
- ``setup``: Gram + eigendecomposition at n = 1,000,000, d = 256 (ipdpp: float64 dual on the
  GPU, cuSOLVER syevd) vs torch ``B.T @ B`` + ``torch.linalg.eigh`` (float32), plus ipdpp's full
  spectrum (with the n x r eigenvectors) for reference.
- ``balanced_imagenet_lt`` / ``balanced_inaturalist``: one ``balanced_subset`` call on the GPU
  (all classes in one launch) vs the CPU library on the same problem; the two must agree.

Usage::

    python3 -P benchmarks/gpu_bench.py --out bench.json [--quick]

The JSON is rewritten after every benchmark, so a crash or timeout keeps what was measured.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

import ipdpp
from ipdpp import _cuda_backend as gpu

RTOL = ipdpp.EIGENVALUE_RTOL


# ----------------------------------------------------------------------------------------------
# Timing
# ----------------------------------------------------------------------------------------------


def cuda_time_ms(fn: Callable[[int], Any], *, warmup: int = 2, repeat: int = 10) -> dict:
    """Median / min milliseconds of ``fn(i)`` between CUDA events (i = run number, for seeds)."""
    for i in range(warmup):
        fn(-1 - i)
    torch.cuda.synchronize()
    times = []
    for i in range(repeat):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn(i)
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    return {"median_ms": statistics.median(times), "min_ms": min(times), "repeat": repeat}


def wall_time_s(fn: Callable[[], Any], *, repeat: int = 3) -> dict:
    """Median / min wall seconds of ``fn()`` including a final device synchronisation."""
    times = []
    for _ in range(repeat):
        torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return {"median_s": statistics.median(times), "min_s": min(times), "repeat": repeat}


# ----------------------------------------------------------------------------------------------
# Plain torch implementations of the same algorithms (the baselines)
# ----------------------------------------------------------------------------------------------


def torch_sequential(VJ: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The projection chain on V_J (n, k): pick j ∝ residual, Gram-Schmidt, update residuals."""
    n, k = VJ.shape
    residual = (VJ * VJ).sum(1)
    W = torch.zeros(k, k, dtype=VJ.dtype, device=VJ.device)
    items = torch.empty(k, dtype=torch.int64, device=VJ.device)
    for t in range(k):
        j = torch.multinomial(residual.clamp_min(0), 1, generator=generator)
        items[t : t + 1] = j
        v = VJ.index_select(0, j).squeeze(0)
        v = v - W.T @ (W @ v)  # rows t.. of W are still zero
        w = v / torch.linalg.vector_norm(v)
        W[t] = w
        u = VJ @ w
        residual = residual - u * u
        residual.index_fill_(0, j, 0.0)
    return items.sort().values


def torch_sequential_batched(VJ: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The projection chain for S samples at once: V_J (S, n, k), a step is one bmm."""
    S, n, k = VJ.shape
    residual = (VJ * VJ).sum(2)
    W = torch.zeros(S, k, k, dtype=VJ.dtype, device=VJ.device)
    items = torch.empty(S, k, dtype=torch.int64, device=VJ.device)
    rows = torch.arange(S, device=VJ.device)
    for t in range(k):
        j = torch.multinomial(residual.clamp_min(0), 1, generator=generator).squeeze(1)
        items[:, t] = j
        v = VJ[rows, j]
        v = v - torch.bmm(W.transpose(1, 2), torch.bmm(W, v.unsqueeze(2))).squeeze(2)
        w = v / torch.linalg.vector_norm(v, dim=1, keepdim=True)
        W[:, t] = w
        u = torch.bmm(VJ, w.unsqueeze(2)).squeeze(2)
        residual = residual - u * u
        residual[rows, j] = 0.0
    return items.sort(dim=1).values


def random_columns(rank: int, k: int, count: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` random k-subsets of the eigenvector columns (the phase's cost ignores which)."""
    keys = torch.rand(count, rank, generator=generator, device=generator.device)
    return keys.argsort(dim=1)[:, :k]


# ----------------------------------------------------------------------------------------------
# Benchmarks
# ----------------------------------------------------------------------------------------------


def bench_bandwidth(quick: bool) -> dict:
    elements = 2**24 if quick else 2**28  # 64 MiB / 1 GiB of float32
    x = torch.rand(elements, device="cuda")
    y = torch.empty_like(x)
    t = cuda_time_ms(lambda _: y.copy_(x), warmup=3, repeat=20)
    bytes_moved = 2 * x.numel() * x.element_size()
    return {**t, "bytes": bytes_moved, "bytes_per_s": bytes_moved / (t["median_ms"] * 1e-3)}


def bench_single_sample(quick: bool, bandwidth: float) -> dict:
    n, d, k = (20_000, 64, 20) if quick else (100_000, 256, 50)
    B = torch.randn(n, d, device="cuda")
    spectrum = gpu.lowrank_spectrum(B, None, RTOL)
    ours = cuda_time_ms(
        lambda i: gpu.sample_k_dpp(spectrum, k, 1, seed=1000 + i, method="sequential")
    )
    ours_rejection = cuda_time_ms(
        lambda i: gpu.sample_k_dpp(spectrum, k, 1, seed=2000 + i, method="rejection")
    )
    V = spectrum.eigenvectors()
    generator = torch.Generator(device="cuda").manual_seed(0)

    def plain(_: int) -> torch.Tensor:
        columns = random_columns(spectrum.rank, k, 1, generator)[0]
        return torch_sequential(V[:, columns].contiguous(), generator)

    baseline = cuda_time_ms(plain, repeat=5)
    floor_ms = k * n * k * 4 / bandwidth * 1e3
    return {
        "n": n,
        "d": d,
        "k": k,
        "dtype": "float32",
        "ipdpp_sequential": ours,
        "ipdpp_rejection": ours_rejection,
        "torch_sequential": baseline,
        "floor_ms_read_VJ_k_times": floor_ms,
        "speedup_vs_torch": baseline["median_ms"] / ours["median_ms"],
        "ratio_to_floor": ours["median_ms"] / floor_ms,
        "targets": {"speedup_vs_torch": ">= 50", "ratio_to_floor": "<= 3"},
    }


def bench_batched(quick: bool) -> dict:
    n, d, k = (20_000, 64, 20) if quick else (100_000, 256, 100)
    ours_samples, torch_samples = (256, 8) if quick else (2_000, 32)
    B = torch.randn(n, d, device="cuda")
    spectrum = gpu.lowrank_spectrum(B, None, RTOL)
    ours = cuda_time_ms(
        lambda i: gpu.sample_k_dpp(spectrum, k, ours_samples, seed=3000 + i, method="rejection"),
        repeat=5,
    )
    ours_seq = cuda_time_ms(
        lambda i: gpu.sample_k_dpp(spectrum, k, 64, seed=4000 + i, method="sequential"), repeat=3
    )
    V = spectrum.eigenvectors()
    generator = torch.Generator(device="cuda").manual_seed(0)

    def plain(_: int) -> torch.Tensor:
        columns = random_columns(spectrum.rank, k, torch_samples, generator)
        VJ = V[:, columns].permute(1, 0, 2).contiguous()  # (S, n, k)
        return torch_sequential_batched(VJ, generator)

    baseline = cuda_time_ms(plain, repeat=3)
    ours_rate = ours_samples / (ours["median_ms"] * 1e-3)
    seq_rate = 64 / (ours_seq["median_ms"] * 1e-3)
    torch_rate = torch_samples / (baseline["median_ms"] * 1e-3)
    return {
        "n": n,
        "d": d,
        "k": k,
        "ipdpp_rejection": {**ours, "samples": ours_samples, "samples_per_s": ours_rate},
        "ipdpp_sequential": {**ours_seq, "samples": 64, "samples_per_s": seq_rate},
        "torch_batched": {**baseline, "samples": torch_samples, "samples_per_s": torch_rate},
        "speedup_vs_torch": ours_rate / torch_rate,
        "targets": {"speedup_vs_torch": ">= 100"},
    }


def bench_setup(quick: bool) -> dict:
    n, d = (100_000, 128) if quick else (1_000_000, 256)
    B = torch.randn(n, d, device="cuda")
    gram_eigh = cuda_time_ms(lambda _: gpu.dual_gram_eigenvalues(B), repeat=5)
    full = cuda_time_ms(lambda _: gpu.lowrank_spectrum(B, None, RTOL), repeat=5)

    def plain(_: int) -> Any:
        return torch.linalg.eigh(B.T @ B)

    baseline = cuda_time_ms(plain, repeat=5)
    return {
        "n": n,
        "d": d,
        "ipdpp_gram_eigh_float64": gram_eigh,
        "ipdpp_full_spectrum": full,
        "torch_gram_eigh_float32": baseline,
        "ratio_to_torch": gram_eigh["median_ms"] / baseline["median_ms"],
        "targets": {"ratio_to_torch": "<= 1.5"},
    }


def long_tailed_labels(num_classes: int, largest: int, smallest: int, seed: int) -> np.ndarray:
    """Class sizes n_c = floor(largest * (smallest / largest) ** (c / (C - 1))), shuffled."""
    c = np.arange(num_classes)
    sizes = np.floor(largest * (smallest / largest) ** (c / (num_classes - 1))).astype(np.int64)
    sizes = np.maximum(sizes, smallest)
    return np.random.default_rng(seed).permutation(np.repeat(c, sizes))


def bench_balanced(quick: bool, classes: int, largest: int, smallest: int, k: int) -> dict:
    if quick:
        classes = min(classes, 100)
    labels = long_tailed_labels(classes, largest, smallest, seed=0)
    p = np.random.default_rng(1).beta(8.0, 2.0, labels.size)
    labels_t, p_t = torch.from_numpy(labels).cuda(), torch.from_numpy(p).cuda()
    result: dict = {"classes": classes, "items": int(labels.size), "k": k}
    gpu.balanced_subset(labels_t, p_t, k, "paper", 0)  # warm-up (module load, allocator)
    result["ipdpp_gpu_one_call"] = wall_time_s(
        lambda: gpu.balanced_subset(labels_t, p_t, k, "paper", 0)
    )
    start = time.perf_counter()
    cpu = ipdpp.balanced_subset(labels, p, k, mode="exact", seed=0)
    result["ipdpp_cpu_one_call_s"] = time.perf_counter() - start
    dev = gpu.balanced_subset(labels_t, p_t, k, "paper", 0).cpu().numpy()
    result["gpu_equals_cpu"] = bool(np.array_equal(dev, cpu))
    result["kept"] = int(dev.size)
    return result


# ----------------------------------------------------------------------------------------------
# Driver
# ----------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    report: dict = {
        "device": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "quick": args.quick,
        "results": {},
        "errors": {},
    }

    def run(name: str, fn: Callable[[], dict]) -> None:
        print(f"[gpu_bench] {name} ...", flush=True)
        try:
            report["results"][name] = fn()
        except Exception:  # keep going: the summary must show what did work
            report["errors"][name] = traceback.format_exc()
            print(report["errors"][name], file=sys.stderr, flush=True)
        args.out.write_text(json.dumps(report, indent=2))
        torch.cuda.empty_cache()

    run("bandwidth", lambda: bench_bandwidth(args.quick))
    bandwidth = report["results"].get("bandwidth", {}).get("bytes_per_s", 3.0e12)
    run("single_sample", lambda: bench_single_sample(args.quick, bandwidth))
    run("batched", lambda: bench_batched(args.quick))
    run("setup", lambda: bench_setup(args.quick))
    run("balanced_imagenet_lt", lambda: bench_balanced(args.quick, 1000, 1280, 5, 50))
    run("balanced_inaturalist", lambda: bench_balanced(args.quick, 8142, 1000, 2, 20))

    results = report["results"]
    print("\n[gpu_bench] summary")
    if "single_sample" in results:
        r = results["single_sample"]
        print(
            f"  one sample (n={r['n']}, k={r['k']}): ipdpp {r['ipdpp_sequential']['median_ms']:.3f}"
            f" ms, torch {r['torch_sequential']['median_ms']:.3f} ms "
            f"(x{r['speedup_vs_torch']:.1f}), floor {r['floor_ms_read_VJ_k_times']:.3f} ms "
            f"(x{r['ratio_to_floor']:.2f})"
        )
    if "batched" in results:
        r = results["batched"]
        print(
            f"  batched (k={r['k']}): ipdpp {r['ipdpp_rejection']['samples_per_s']:.0f}/s, "
            f"torch {r['torch_batched']['samples_per_s']:.0f}/s (x{r['speedup_vs_torch']:.1f})"
        )
    if "setup" in results:
        r = results["setup"]
        print(
            f"  setup (n={r['n']}, d={r['d']}): "
            f"ipdpp {r['ipdpp_gram_eigh_float64']['median_ms']:.2f} ms, "
            f"torch {r['torch_gram_eigh_float32']['median_ms']:.2f} ms "
            f"(ratio {r['ratio_to_torch']:.2f})"
        )
    for name in ("balanced_imagenet_lt", "balanced_inaturalist"):
        if name in results:
            r = results[name]
            print(
                f"  {name}: GPU {r['ipdpp_gpu_one_call']['median_s'] * 1e3:.1f} ms, "
                f"CPU {r['ipdpp_cpu_one_call_s'] * 1e3:.1f} ms, equal {r['gpu_equals_cpu']}"
            )
    for name in report["errors"]:
        print(f"  {name}: FAILED (traceback in the JSON)")
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
