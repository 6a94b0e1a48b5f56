#!/usr/bin/env bash
# Prepares the GPU check on a machine with the compiler (no GPU needed):
# compiles every model the GPU cases and the GPU benchmark run, for the GPU,
# and writes their inputs and the values the scalar reference (or, for the
# bundled decoder, its CPU build) gives, into one folder that a machine with
# a GPU but no LLVM runs with bench/gpu/check.sh (see README.md here).
#
#   bench/gpu/prepare.sh [DIR]        # DIR defaults to build-gpu-carry
#
# Environment: BUILD_DIR (the compiler's build, default build), GPU_ARCH
# (default sm_90), CUDA_HOME (default /usr/local/cuda), TARGET=cpu (the cases
# compiled for this CPU instead, no benchmark layers: tries the case files
# and bitnet-gpu-check without a GPU), EMULATION=1 (the GPU models also hold
# host builds of their kernels: bitnet-gpu-check runs them through the CUDA
# driver emulator, see README.md here).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DIR="${1:-$ROOT/build-gpu-carry}"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
GPU_ARCH="${GPU_ARCH:-sm_90}"
CUDA_HOME="${CUDA_HOME:-/usr/local/cuda}"
TARGET="${TARGET:-nvptx}"
EMULATION="${EMULATION:-0}"
# What may travel to the GPU machine in all: this folder and the working tree.
LIMIT_MIB=64

die() {
  printf 'bench/gpu/prepare.sh: %s\n' "$1" >&2
  exit 1
}

[[ -f "$BUILD_DIR/build.ninja" || -f "$BUILD_DIR/Makefile" ]] ||
  die "no build of the compiler in $BUILD_DIR: run scripts/setup.sh (or set BUILD_DIR)"
if [[ $TARGET == nvptx && ! -x "$CUDA_HOME/bin/ptxas" ]]; then
  die "no CUDA toolkit at $CUDA_HOME (ptxas, libdevice): set CUDA_HOME"
fi
cmake --build "$BUILD_DIR" --target bitnet-gpu-prepare >/dev/null ||
  die "bitnet-gpu-prepare did not build in $BUILD_DIR"

# Only what this script writes is replaced.
mkdir -p "$DIR"
rm -rf "$DIR/cases" "$DIR/bench" "$DIR/source.txt"
echo "preparing the GPU check in $DIR (target $TARGET, $GPU_ARCH)"
extra=()
[[ $EMULATION == 1 ]] && extra+=(--emulation)
"$BUILD_DIR/bench/gpu/bitnet-gpu-prepare" --out="$DIR" --arch="$GPU_ARCH" \
  --cuda-path="$CUDA_HOME" --target="$TARGET" "${extra[@]}"

# Where the models came from, printed by check.sh on the GPU machine.
{
  echo "prepared $(date -u +%Y-%m-%dT%H:%M:%SZ) for $TARGET $GPU_ARCH$([[ $EMULATION == 1 ]] && echo ", with host builds for the emulator")"
  if commit="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)"; then
    git -C "$ROOT" diff --quiet HEAD 2>/dev/null || commit+=" with uncommitted changes"
    echo "from commit $commit"
  fi
} >"$DIR/source.txt"

bytes="$(du -sb "$DIR" | cut -f1)"
mib="$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1048576 }')"
echo "prepared: $DIR, $mib MiB in $(find "$DIR" -type f | wc -l) files"
if ((bytes > (LIMIT_MIB - 16) * 1048576)); then
  die "$DIR holds $mib MiB: with the working tree it must stay under $LIMIT_MIB MiB"
fi
