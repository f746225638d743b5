#!/usr/bin/env bash
# One-shot GPU check of the CUDA backend (issue 4), for a fresh H100/H200 machine with CUDA 13,
# PyTorch, CuPy, pybind11 and scikit-build-core installed and no internet access:
#
#     bash benchmarks/gpu_check.sh OUTDIR
#
# 1. builds and installs ipdpp with IPDPP_CUDA=ON (pip, no build isolation, no dependencies),
# 2. runs tests/test_gpu.py (and the CPU-side tests/test_cuda_build.py),
# 3. runs benchmarks/gpu_bench.py,
# 4. runs the device-parametrised library tests on CUDA inputs (tests/test_sampling.py and
#    tests/test_marginals.py, their "cuda" cases: the CPU chi-square and marginal tests on GPU),
# and writes OUTDIR/summary.json (+ build.log, tests.log, junit.xml, bench.log, bench.json,
# device_tests.log, device_junit.xml). Each phase has its own time limit so the whole run stays
# within about 8 minutes; a failed phase is recorded and the next ones still run when they can,
# and summary.json is always written.
set -uo pipefail

out=${1:?usage: bash benchmarks/gpu_check.sh OUTDIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$(dirname "$0")/.."
start=$(date +%s)
python=${PYTHON:-python3}

# Time limits (seconds): build 200, tests 110, benchmark 120, device tests 80 -> at most 510 s
# plus bookkeeping.
build_limit=${IPDPP_CHECK_BUILD_S:-200}
test_limit=${IPDPP_CHECK_TEST_S:-110}
bench_limit=${IPDPP_CHECK_BENCH_S:-120}
device_test_limit=${IPDPP_CHECK_DEVICE_TEST_S:-80}

{
  echo "date: $(date -u +%FT%TZ)"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1
  nvcc --version 2>&1 | tail -2
  "$python" -c "import torch; print('torch', torch.__version__, torch.version.cuda)" 2>&1
  "$python" -c "import cupy; print('cupy', cupy.__version__)" 2>&1
} > "$out/env.log"

# 1. Build. CMAKE_BUILD_PARALLEL_LEVEL uses every core; the install replaces any earlier ipdpp.
build_start=$(date +%s)
IPDPP_CUDA=ON CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) timeout "$build_limit" \
  "$python" -m pip install --no-build-isolation --no-deps -v . > "$out/build.log" 2>&1
build_rc=$?
build_s=$(( $(date +%s) - build_start ))

# Run from outside the source tree (-P as well) so `import ipdpp` finds the installed package
# with its compiled extensions, not the sources.
cuda_import_rc=1
if [ "$build_rc" -eq 0 ]; then
  (cd /tmp && "$python" -P -c "import ipdpp._cuda, ipdpp; print(ipdpp.__file__)") \
    >> "$out/build.log" 2>&1
  cuda_import_rc=$?
fi

# 2. Tests (GPU tests plus the CPU-side build tests), with a JUnit report for the summary.
tests_rc=-1
tests_s=0
if [ "$cuda_import_rc" -eq 0 ]; then
  tests_start=$(date +%s)
  repo=$(pwd)
  (cd /tmp && timeout "$test_limit" "$python" -P -m pytest -p no:cacheprovider -rA \
    --rootdir "$repo" -c "$repo/pyproject.toml" --junitxml "$out/junit.xml" \
    "$repo/tests/test_gpu.py" "$repo/tests/test_cuda_build.py") > "$out/tests.log" 2>&1
  tests_rc=$?
  tests_s=$(( $(date +%s) - tests_start ))
fi

# 3. Benchmark (writes bench.json after every measurement, so a timeout keeps the earlier ones).
bench_rc=-1
bench_s=0
if [ "$cuda_import_rc" -eq 0 ]; then
  bench_start=$(date +%s)
  repo=$(pwd)
  (cd /tmp && PYTHONUNBUFFERED=1 timeout "$bench_limit" "$python" -P \
    "$repo/benchmarks/gpu_bench.py" --out "$out/bench.json") > "$out/bench.log" 2>&1
  bench_rc=$?
  bench_s=$(( $(date +%s) - bench_start ))
fi

# 4. The library's device-parametrised tests, their CUDA cases only (ids contain "cuda").
device_tests_rc=-1
device_tests_s=0
if [ "$cuda_import_rc" -eq 0 ]; then
  device_tests_start=$(date +%s)
  repo=$(pwd)
  (cd /tmp && timeout "$device_test_limit" "$python" -P -m pytest -p no:cacheprovider -q \
    --rootdir "$repo" -c "$repo/pyproject.toml" --junitxml "$out/device_junit.xml" -k cuda \
    "$repo/tests/test_sampling.py" "$repo/tests/test_marginals.py") > "$out/device_tests.log" 2>&1
  device_tests_rc=$?
  device_tests_s=$(( $(date +%s) - device_tests_start ))
fi

# Summary (plain python3 + stdlib only, so it works whatever failed above).
total_s=$(( $(date +%s) - start ))
OUT="$out" BUILD_RC=$build_rc BUILD_S=$build_s CUDA_IMPORT_RC=$cuda_import_rc TESTS_RC=$tests_rc \
TESTS_S=$tests_s BENCH_RC=$bench_rc BENCH_S=$bench_s DEVICE_TESTS_RC=$device_tests_rc \
DEVICE_TESTS_S=$device_tests_s TOTAL_S=$total_s "$python" - <<'EOF'
import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

out = Path(os.environ["OUT"])
env = {k: int(os.environ[k]) for k in
       ("BUILD_RC", "BUILD_S", "CUDA_IMPORT_RC", "TESTS_RC", "TESTS_S", "BENCH_RC", "BENCH_S",
        "DEVICE_TESTS_RC", "DEVICE_TESTS_S", "TOTAL_S")}


def tail(name, lines=40):
    path = out / name
    return path.read_text(errors="replace").splitlines()[-lines:] if path.exists() else []


def test_report(rc, seconds, junit_name, log_name):
    tests = {"rc": rc, "seconds": seconds}
    junit = out / junit_name
    if not junit.exists():
        tests["log_tail"] = tail(log_name)
        return tests
    try:
        root = ET.parse(junit).getroot()
        suites = [root] if root.tag == "testsuite" else list(root)
        for key in ("tests", "failures", "errors", "skipped"):
            tests[key] = sum(int(s.get(key, 0)) for s in suites)
        tests["passed"] = tests["tests"] - tests["failures"] - tests["errors"] - tests["skipped"]
        failed = []
        for case in root.iter("testcase"):
            for child in case:
                if child.tag in ("failure", "error"):
                    failed.append({
                        "test": f"{case.get('classname')}::{case.get('name')}",
                        "kind": child.tag,
                        "message": (child.get("message") or "")[:2000],
                    })
        tests["failed_tests"] = failed
    except ET.ParseError as error:
        tests["junit_error"] = str(error)
    return tests


tests = test_report(env["TESTS_RC"], env["TESTS_S"], "junit.xml", "tests.log")
device_tests = test_report(
    env["DEVICE_TESTS_RC"], env["DEVICE_TESTS_S"], "device_junit.xml", "device_tests.log"
)

bench = {"rc": env["BENCH_RC"], "seconds": env["BENCH_S"]}
bench_json = out / "bench.json"
if bench_json.exists():
    try:
        bench.update(json.loads(bench_json.read_text()))
    except json.JSONDecodeError as error:
        bench["json_error"] = str(error)
if env["BENCH_RC"] != 0:
    bench["log_tail"] = tail("bench.log")

summary = {
    "environment": (out / "env.log").read_text(errors="replace").splitlines(),
    "build": {
        "rc": env["BUILD_RC"],
        "seconds": env["BUILD_S"],
        "cuda_module_imports": env["CUDA_IMPORT_RC"] == 0,
        **({} if env["BUILD_RC"] == 0 and env["CUDA_IMPORT_RC"] == 0
           else {"log_tail": tail("build.log", 60)}),
    },
    "tests": tests,
    "bench": bench,
    "device_tests": device_tests,
    "total_seconds": env["TOTAL_S"],
    "ok": env["BUILD_RC"] == 0 and env["CUDA_IMPORT_RC"] == 0 and env["TESTS_RC"] == 0
          and env["BENCH_RC"] == 0 and env["DEVICE_TESTS_RC"] == 0,
}
(out / "summary.json").write_text(json.dumps(summary, indent=2))
print(json.dumps({k: summary[k] for k in ("ok", "total_seconds")}))
counts = ("passed", "failures", "errors", "skipped")
print("build rc", env["BUILD_RC"], "| tests", {k: tests.get(k) for k in counts},
      "| bench rc", env["BENCH_RC"], "| device tests", {k: device_tests.get(k) for k in counts})
EOF
