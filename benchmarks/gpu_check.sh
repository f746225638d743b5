#!/usr/bin/env bash
# One GPU check of the CUDA backend, for a machine with an NVIDIA GPU, the CUDA toolkit, PyTorch,
# pybind11, scikit-build-core, pytest and pytest-benchmark installed and no network:
#
#     bash benchmarks/gpu_check.sh OUTDIR [all|build|bench]
#
# Two phases, each resumable on its own (a failed one is rerun alone, the other's result kept):
#   build  builds and installs ipdpp with IPDPP_CUDA=ON (pip, offline), runs the GPU tests (the
#          GPU test module, the CUDA cases of the device-parametrised tests, the CPU-side CUDA
#          checks except the CMake gate, which configures CMake twice and needs no GPU), and runs
#          compute-sanitizer racecheck and synccheck on one small case when the toolkit has it;
#   bench  runs the benchmark suite on the GPU (python -m benchmarks.compare --device cuda
#          --preset gpu: CUDA events, ratios against plain torch on the same device).
# OUTDIR gets summary.json (always written: every phase's status, test counts, failures, log
# tails, the GPU benchmark medians), build.log, tests.log, junit.xml, sanitize.log, bench.log,
# bench.md (the tables) and bench.tar.gz (the suite's JSON, tables and plots). A phase's result
# is also kept in IPDPP_CHECK_STATE (default /tmp/ipdpp-gpu-check), so that the summary of a
# rerun phase still shows the other. Each step has a time limit; the defaults keep the whole run
# within 6 minutes on an H200 (override with IPDPP_CHECK_{BUILD,TESTS,SANITIZE,BENCH}_S).
set -uo pipefail

out=${1:?usage: bash benchmarks/gpu_check.sh OUTDIR [all|build|bench]}
phase=${2:-all}
case "$phase" in all | build | bench) ;; *) echo "unknown phase: $phase" >&2; exit 2 ;; esac
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$(dirname "$0")/.." || exit 2
repo=$(pwd)
python=${PYTHON:-python3}
state=${IPDPP_CHECK_STATE:-/tmp/ipdpp-gpu-check}
mkdir -p "$state"
build_limit=${IPDPP_CHECK_BUILD_S:-140}
tests_limit=${IPDPP_CHECK_TESTS_S:-90}
sanitize_limit=${IPDPP_CHECK_SANITIZE_S:-25}
bench_limit=${IPDPP_CHECK_BENCH_S:-80}

# record NAME RC SECONDS [LOG]: one step's outcome, kept for the summary of later runs.
record() {
  printf '{"rc": %d, "seconds": %d, "log": "%s", "at": "%s"}\n' "$2" "$3" "${4:-}" \
    "$(date -u +%FT%TZ)" > "$state/$1.json"
}

# Tests and benchmarks run from outside the source tree with -P, so that `import ipdpp` finds
# the installed package with its compiled extensions, not the sources.
installed() {
  (cd /tmp && "$python" -P -c "import ipdpp._cuda, ipdpp; print(ipdpp.__file__)")
}

summarize() {
  OUT="$out" STATE="$state" PHASE="$phase" "$python" - <<'EOF'
import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

out, state = Path(os.environ["OUT"]), Path(os.environ["STATE"])


def tail(name, lines=40):
    path = out / name
    return path.read_text(errors="replace").splitlines()[-lines:] if path.exists() else []


def junit(path):
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root)
    counts = {key: sum(int(s.get(key, 0)) for s in suites)
              for key in ("tests", "failures", "errors", "skipped")}
    counts["failed_tests"] = [
        {"test": f"{case.get('classname')}::{case.get('name')}", "kind": child.tag,
         "message": (child.get("message") or "")[:2000]}
        for case in root.iter("testcase") for child in case if child.tag in ("failure", "error")
    ]
    return counts


steps = {}
for path in sorted(state.glob("*.json")):  # one file per step
    step = json.loads(path.read_text())
    if step["rc"] != 0 and step["log"]:
        step["log_tail"] = tail(step["log"])
    steps[path.stem] = step
if "tests" in steps and (out / "junit.xml").exists():
    try:
        steps["tests"].update(junit(out / "junit.xml"))
    except ET.ParseError as error:
        steps["tests"]["junit_error"] = str(error)
section = None
for line in tail("sanitize.log", 2000):  # "== TOOL" opens each tool's part of the log
    section = line[3:].strip() if line.startswith("== ") else section
    if section in steps and ("SUMMARY" in line or "rror" in line):
        steps[section].setdefault("report", []).append(line)
results = state / "bench" / "results.json"
if "bench" in steps and results.exists():
    raw = json.loads(results.read_text())
    steps["bench"]["medians_s"] = {b["name"]: b["stats"]["median"] for b in raw["benchmarks"]}
    steps["bench"]["not_measured"] = raw.get("ipdpp", {}).get("outcomes", [])
summary = {
    "phase": os.environ["PHASE"],
    "environment": tail("env.log"),
    "steps": steps,
    "ok": bool(steps) and all(step["rc"] == 0 for step in steps.values()),
}
(out / "summary.json").write_text(json.dumps(summary, indent=2))
print(json.dumps({name: step["rc"] for name, step in steps.items()}), "ok:", summary["ok"])
raise SystemExit(0 if summary["ok"] else 1)
EOF
  local rc=$?
  rm -f "$out/env.log"
  return "$rc"
}
trap 'summarize; exit $?' EXIT

{
  echo "date: $(date -u +%FT%TZ)"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1
  nvcc --version 2>&1 | tail -2
  "$python" -c "import torch; print('torch', torch.__version__, torch.version.cuda)" 2>&1
  "$python" -c "import pytest_benchmark as b; print('pytest-benchmark', b.__version__)" 2>&1
  command -v compute-sanitizer || echo "compute-sanitizer: not found"
} > "$out/env.log"

if [ "$phase" != bench ]; then
  rm -f "$state"/{build,tests,racecheck,synccheck}.json
  # 1a. Build and install, offline; the build folder (build/ in the checkout) is reused.
  start=$(date +%s)
  IPDPP_CUDA=ON CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) timeout "$build_limit" "$python" -m pip \
    install --no-build-isolation --no-deps --no-index -v . > "$out/build.log" 2>&1 \
    && installed >> "$out/build.log" 2>&1
  build_rc=$?
  record build "$build_rc" $(($(date +%s) - start)) build.log

  # 1b. GPU tests: the GPU module, every CUDA case, the CPU-side CUDA checks but the CMake gate.
  if [ "$build_rc" -eq 0 ]; then
    start=$(date +%s)
    (cd /tmp && timeout "$tests_limit" "$python" -P -m pytest -p no:cacheprovider -q -rfE \
      --rootdir "$repo" -c "$repo/pyproject.toml" -o faulthandler_timeout=60 \
      --junitxml "$out/junit.xml" -k "(cuda or gpu) and not cmake_gate" "$repo/tests") \
      > "$out/tests.log" 2>&1
    record tests $? $(($(date +%s) - start)) tests.log

    # 1c. Races and barrier misuse in the kernels, on one small case of every kernel family.
    if command -v compute-sanitizer > /dev/null; then
      : > "$out/sanitize.log"
      for tool in racecheck synccheck; do
        start=$(date +%s)
        echo "== $tool" >> "$out/sanitize.log"
        (cd /tmp && timeout "$sanitize_limit" compute-sanitizer --tool "$tool" --error-exitcode 9 \
          "$python" -P -c "
import numpy as np, torch, ipdpp
B = torch.randn(3000, 32, device='cuda', generator=torch.Generator('cuda').manual_seed(0))
kernel = ipdpp.LowRankKernel(B)
for method in ('sequential', 'rejection'):
    ipdpp.sample_k_dpp(kernel, 8, 4, 0, method=method)
ipdpp.sample_dpp(kernel, 2, 1)
labels = torch.arange(600, device='cuda') % 7
ipdpp.balanced_subset(labels, torch.rand(600, device='cuda', dtype=torch.float64), 5)
torch.cuda.synchronize()
print('sanitized case done')
") >> "$out/sanitize.log" 2>&1
        record "$tool" $? $(($(date +%s) - start)) sanitize.log
      done
    fi
  fi
fi

if [ "$phase" != build ]; then
  # 2. The benchmark suite on the GPU, from the checkout (benchmarks/ is not installed).
  rm -f "$state/bench.json"
  start=$(date +%s)
  if installed > /dev/null 2>&1; then
    rm -rf "$state/bench"
    PYTHONUNBUFFERED=1 timeout "$bench_limit" "$python" -m benchmarks.compare --device cuda \
      --preset gpu --out "$state/bench" > "$out/bench.log" 2>&1
    rc=$?
    if [ -d "$state/bench" ]; then
      cp "$state/bench/results.md" "$out/bench.md" 2> /dev/null
      tar -czf "$out/bench.tar.gz" -C "$state" bench
    fi
  else
    echo "ipdpp with its CUDA extension is not installed: run the build phase first" \
      > "$out/bench.log"
    rc=1
  fi
  record bench "$rc" $(($(date +%s) - start)) bench.log
fi
