#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test: the lit suite, the
# GoogleTest unit and end-to-end tests and the runtime's tests (ctest).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup.sh"

ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$(nproc)"
