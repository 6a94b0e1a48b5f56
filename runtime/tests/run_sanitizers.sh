#!/usr/bin/env bash
# Builds the runtime twice, with ASan+UBSan and with TSan, in two separate
# build directories, and runs the test suite in each.
#
# usage: runtime/tests/run_sanitizers.sh [BUILD_ROOT]   (default /tmp/bitnet-rt-san)
# Environment: JOBS (default 2), CC/CXX (default gcc/g++).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
root=${1:-/tmp/bitnet-rt-san}
jobs=${JOBS:-2}
export CC=${CC:-gcc} CXX=${CXX:-g++}

# Every report fails the test that produced it.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}

status=0
for kind in address thread; do
  dir="$root/$kind"
  echo "== $kind: building in $dir"
  cmake -S "$here" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
    -DBITNET_RT_SANITIZE="$kind" -DBITNET_RT_BUILD_BENCHMARKS=OFF >/dev/null
  ninja -C "$dir" -j "$jobs"
  echo "== $kind: testing"
  if ! ctest --test-dir "$dir" -j "$jobs" --output-on-failure; then
    status=1
  fi
done
exit $status
