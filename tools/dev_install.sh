#!/usr/bin/env bash
# Private development build, so that several people can build from one work tree at once.
#   tools/dev_install.sh NAME      builds into /tmp/ipdpp-dev/NAME (incremental)
#   IPDPP_CUDA_EMULATOR=ON tools/dev_install.sh NAME   adds ipdpp._cuda_emulated (CPU emulator)
#   export PYTHONPATH=/tmp/ipdpp-dev/NAME/site   then run `pytest` (not `python -m pytest`,
#   which would put the source tree, without the compiled extension, first on sys.path).
set -euo pipefail
name=${1:?usage: tools/dev_install.sh NAME}
root=/tmp/ipdpp-dev/$name
cd "$(dirname "$0")/.."
python3 -m pip install --no-build-isolation --no-deps -q --upgrade --target "$root/site" \
  -Cbuild-dir="$root/build" -Ccmake.define.IPDPP_CUDA="${IPDPP_CUDA:-OFF}" \
  -Ccmake.define.IPDPP_CUDA_EMULATOR="${IPDPP_CUDA_EMULATOR:-OFF}" . 2>&1 | grep -v -E "WARNING: (Running pip|Target directory)" || true
test -n "$(ls "$root"/site/ipdpp/_core*.so 2>/dev/null)" || { echo "build failed" >&2; exit 1; }
echo "PYTHONPATH=$root/site"
