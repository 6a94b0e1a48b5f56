#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test: the runtime's tests
# under ASan+UBSan and TSan, then (ctest) the lit suite, the GoogleTest unit
# and end-to-end tests, the runtime's tests and the Python tests.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup.sh"

# The runtime once more under AddressSanitizer+UBSan and ThreadSanitizer,
# each in a build of its own.
JOBS="$(nproc)" "$ROOT/runtime/tests/run_sanitizers.sh" "$BUILD_DIR/sanitizers"

ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$(nproc)"
