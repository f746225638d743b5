#!/usr/bin/env bash
# Build the CPU extension ipdpp._core with AddressSanitizer + UndefinedBehaviorSanitizer, in a
# build folder of its own, and run the CPU tests against it with the sanitizer runtime preloaded.
#
#   tools/sanitize.sh                   every CPU test (several times the plain suite's time)
#   tools/sanitize.sh --quick           the subset CI runs (see QUICK below)
#   tools/sanitize.sh [--quick] ARGS    extra pytest arguments, e.g. -k greedy
#
# Any sanitizer report fails the run: UBSan is built with -fno-sanitize-recover, so the first
# undefined behaviour aborts, and ASan stops at the first invalid access. Leak detection is off:
# the interpreter keeps its own allocations (interned objects, module state) until exit, and a
# CPython process is never leak-free by LeakSanitizer's definition; ipdpp's C++ owns its memory
# through RAII containers, which ASan's use-after-free and overflow checks cover.
#
# Environment: IPDPP_SANITIZE_DIR (build and install folder, default $TMPDIR/ipdpp-sanitize),
# CXX (the compiler; its own ASan/UBSan runtimes are preloaded).
set -euo pipefail
cd "$(dirname "$0")/.."

# The CI subset: every test that calls into _core with many inputs or with bad ones (property
# tests, edges, bad input, interop, greedy MAP, the structured sampler, balanced subsets),
# without the tests marked slow (statistical checks with hundreds of thousands of samples) and
# the other files (statistics, training pipeline, benchmarks). Those add many minutes under the
# sanitizers on a two-core machine but no code path of _core that the subset misses.
QUICK=(
  tests/test_properties_kernels.py
  tests/test_properties_sampling.py
  tests/test_properties_balanced.py
  tests/test_bad_input.py
  tests/test_edges.py
  tests/test_interop.py
  tests/test_greedy.py
  tests/test_ipdpp_structured.py
  tests/test_balanced.py
)

quick=0
markers="not gpu and not emulated"
if [ "${1:-}" = "--quick" ]; then
  quick=1
  markers="$markers and not slow"
  shift
fi

root=${IPDPP_SANITIZE_DIR:-${TMPDIR:-/tmp}/ipdpp-sanitize}
cxx=${CXX:-c++}
sanitizers="-fsanitize=address,undefined -fno-sanitize-recover=all"
# -O1: instrumented pybind11 templates take minutes to compile at -O2; -O1 keeps the tests
# fast enough and the reports' stacks exact. Debug, so that NDEBUG does not hide any check.
cxx_flags="$sanitizers -O1 -fno-omit-frame-pointer -g"

# Reuse the build requirements of this environment when they are installed (development
# machines, offline); otherwise pip fetches them into an isolated build environment.
isolation=()
if python3 -c "import scikit_build_core, pybind11" 2>/dev/null; then
  isolation=(--no-build-isolation)
fi
echo "sanitize: building _core with ASan + UBSan into $root"
python3 -m pip install "${isolation[@]}" --no-deps -q --upgrade --target "$root/site" \
  -Cbuild-dir="$root/build" -Ccmake.build-type=Debug \
  -Ccmake.define.IPDPP_CUDA=OFF -Ccmake.define.IPDPP_CUDA_EMULATOR=OFF \
  -Ccmake.define.CMAKE_CXX_COMPILER="$cxx" \
  -Ccmake.define.CMAKE_CXX_FLAGS="$cxx_flags" \
  -Ccmake.define.CMAKE_SHARED_LINKER_FLAGS="$sanitizers" \
  . 2>&1 | grep -v -E "WARNING: (Running pip|Target directory)" || true
core=$(ls "$root"/site/ipdpp/_core*.so 2>/dev/null || true)
test -n "$core" || { echo "sanitize: build failed" >&2; exit 1; }
# A build without the sanitizers would pass vacuously: check that the extension carries them.
# (grep reads all of nm's output: with -q it would stop early, and pipefail would see nm's
# SIGPIPE as a failure.)
if ! nm -D "$core" | grep "__asan_" >/dev/null; then
  echo "sanitize: $core is not instrumented with AddressSanitizer" >&2
  exit 1
fi

# The interpreter itself is not instrumented, so the ASan runtime must be loaded before
# anything else; UBSan's runtime comes with it.
asan=$("$cxx" -print-file-name=libasan.so)
ubsan=$("$cxx" -print-file-name=libubsan.so)
for lib in "$asan" "$ubsan"; do
  test -f "$lib" || { echo "sanitize: $cxx has no runtime $lib" >&2; exit 1; }
done

tests=()
if [ "$quick" = 1 ]; then tests=("${QUICK[@]}"); fi
echo "sanitize: running ${tests[*]:-every CPU test} $*"
# PYTHONMALLOC=malloc: Python objects come from malloc too, so an overrun into one is caught.
# The subprocess tests (packaging, command line) inherit LD_PRELOAD and run sanitized too.
# Only _core is built here: the CUDA emulator's tests are deselected, even where CI requires
# them of its own build (IPDPP_REQUIRE_EMULATOR).
start=$SECONDS
env -u IPDPP_REQUIRE_EMULATOR LD_PRELOAD="$asan $ubsan" \
  ASAN_OPTIONS="detect_leaks=0:abort_on_error=0:halt_on_error=1:detect_stack_use_after_return=1" \
  UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1" \
  PYTHONMALLOC=malloc PYTHONPATH="$root/site" \
  pytest -q -p no:cacheprovider -m "$markers" "${tests[@]}" "$@"
echo "sanitize: clean ($((SECONDS - start)) s of tests)"
