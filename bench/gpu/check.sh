#!/usr/bin/env bash
# The GPU check in one command, for a machine with an NVIDIA GPU: builds what
# it needs (scripts/setup.sh: packages, configure, build), runs the GPU tests
# (ctest -L gpu, every GPU test required to run, none skipped), the lit tests
# of the GPU lowering (PTX through ptxas), and the GPU benchmark
# (build/bench/gpu/bitnet-gpu-bench: ternary GEMV/GEMM against cuBLAS fp16),
# then prints a summary. It stops within 8 minutes.
#
#   bench/gpu/check.sh                  # BUILD_DIR, CUDA_HOME, GPU_ARCH override
#   BENCH_ARGS="--runs=500" bench/gpu/check.sh
#
# Without a GPU or an NVIDIA driver it fails at once (exit 2) and says why.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
CUDA_HOME="${CUDA_HOME:-/usr/local/cuda}"
LIT="${LIT:-/usr/lib/llvm-22/bin/lit}"
DEADLINE=$((SECONDS + ${CHECK_SECONDS:-470}))

say() { printf '\n== %s\n' "$*"; }
die() {
  printf 'bench/gpu/check.sh: %s\n' "$1" >&2
  exit "${2:-1}"
}
no_gpu() { die "no usable NVIDIA GPU: $*" 2; }
left() { echo $((DEADLINE - SECONDS)); }
# Runs "$@" within the time left; a stage that runs out fails the check.
within() {
  local budget
  budget=$(left)
  ((budget > 5)) || die "out of time before: $*"
  timeout --kill-after=10 "$budget" "$@"
}

# 1. The GPU and its driver, before any minutes are spent on building.
say "GPU"
ldconfig="$(command -v ldconfig || echo /sbin/ldconfig)"
if ! "$ldconfig" -p 2>/dev/null | grep -q 'libcuda\.so\.1 '; then
  no_gpu "the NVIDIA driver library libcuda.so.1 is not installed"
fi
if ! command -v nvidia-smi >/dev/null 2>&1; then
  no_gpu "nvidia-smi is not installed, so the driver is incomplete"
fi
if ! gpus="$(nvidia-smi --query-gpu=name,compute_cap,memory.total,driver_version --format=csv,noheader 2>&1)" ||
    [[ -z "$gpus" ]]; then
  no_gpu "nvidia-smi sees no GPU: ${gpus:-no output}"
fi
echo "$gpus"
cap="$(head -1 <<<"$gpus" | awk -F', ' '{print $2}')"
GPU_ARCH="${GPU_ARCH:-sm_${cap//./}}"
[[ "$GPU_ARCH" =~ ^sm_[0-9]+$ ]] || die "cannot tell the GPU architecture (compute capability '$cap'); set GPU_ARCH=sm_XY"
echo "architecture: $GPU_ARCH"
[[ -x "$CUDA_HOME/bin/ptxas" ]] ||
  die "no CUDA toolkit at $CUDA_HOME (ptxas is missing); set CUDA_HOME"
compgen -G "$CUDA_HOME/lib64/libcublas.so*" >/dev/null ||
  die "no cuBLAS in $CUDA_HOME/lib64: the benchmark compares with it"

# 2. Build: the packages and configuration of scripts/setup.sh, then the GPU
# targets with the toolkit found.
say "build ($BUILD_DIR)"
build_start=$SECONDS
within env SETUP_TARGETS="bitnet-compile bitnet-run" "$ROOT/scripts/setup.sh"
within cmake -S "$ROOT" -B "$BUILD_DIR" -DCUDAToolkit_ROOT="$CUDA_HOME" >/dev/null
within cmake --build "$BUILD_DIR" -j "$(nproc)" --target bitnet-opt bitnet-gpu-test
if ! within cmake --build "$BUILD_DIR" -j "$(nproc)" --target bitnet-gpu-bench; then
  die "the GPU benchmark did not build: CMake found no CUDA toolkit with cuBLAS under $CUDA_HOME (see bench/CMakeLists.txt)"
fi
build_s=$((SECONDS - build_start))

# 3. The GPU tests: compiled for this GPU, none allowed to skip.
say "GPU tests (ctest -L gpu)"
tests_start=$SECONDS
tests_status=passed
if ! within env BITNET_TEST_GPU_ARCH="$GPU_ARCH" BITNET_TEST_REQUIRE_GPU=1 \
    ctest --test-dir "$BUILD_DIR" -L gpu --output-on-failure -j "$(nproc)"; then
  tests_status=FAILED
fi
lit_status=passed
if ! within /usr/bin/python3 "$LIT" -q --filter 'gpu|nvptx' "$BUILD_DIR/test"; then
  lit_status=FAILED
fi
tests_s=$((SECONDS - tests_start))

# 4. The benchmark.
say "GPU benchmark"
bench_start=$SECONDS
bench_status=passed
# shellcheck disable=SC2086 # BENCH_ARGS is a list of flags
if ! within "$BUILD_DIR/bench/gpu/bitnet-gpu-bench" --arch="$GPU_ARCH" \
    --cuda-path="$CUDA_HOME" --work="$BUILD_DIR/gpu-bench" ${BENCH_ARGS:-}; then
  bench_status=FAILED
fi
bench_s=$((SECONDS - bench_start))

say "summary"
printf '%-34s %-8s %6s\n' "stage" "result" "s"
printf '%-34s %-8s %6d\n' "build" "done" "$build_s"
printf '%-34s %-8s %6d\n' "GPU tests (GoogleTest, ctest -L gpu)" "$tests_status" "$tests_s"
printf '%-34s %-8s %6s\n' "GPU lowering and ptxas (lit)" "$lit_status" ""
printf '%-34s %-8s %6d\n' "benchmark" "$bench_status" "$bench_s"
printf 'total %d s on %s\n' "$SECONDS" "$(head -1 <<<"$gpus" | cut -d, -f1)"
[[ $tests_status == passed && $lit_status == passed && $bench_status == passed ]]
