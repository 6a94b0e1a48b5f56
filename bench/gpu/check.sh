#!/usr/bin/env bash
# The GPU check, in one command on a machine with an NVIDIA GPU and the CUDA
# toolkit but neither LLVM nor this project's packages. It runs what
# bench/gpu/prepare.sh compiled elsewhere (README.md here):
#
#   1. checks the prepared folder (models, inputs, reference values);
#   2. builds what needs no LLVM (-DBITNET_ENABLE_COMPILER=OFF): libbitnet_rt,
#      bitnet-gpu-check and bitnet-gpu-bench (CUDA runtime and cuBLAS);
#   3. runs the GPU cases (bitnet-gpu-check: every case of the GPU tests,
#      and each benchmark layer once, against the scalar reference), none
#      allowed to skip;
#   4. runs the GPU benchmark (ternary GEMV/GEMM against cuBLAS fp16, weight
#      GB/s against the card's bandwidth, every layer checked bit for bit);
#   5. prints one summary table.
#
#   bench/gpu/check.sh [DIR]     # DIR: the prepared folder, default build-gpu-carry
#
# Environment: BUILD_DIR (default build-gpu), CUDA_HOME (default: nvcc's
# toolkit, else /usr/local/cuda), BENCH_ARGS (e.g. "--runs=500"),
# CHECK_SECONDS (the time allowed, default 450).
#
# Exit status: 0 when everything passed, 1 when something failed, 2 when
# there is no usable NVIDIA GPU (said at the first step that needs one).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DIR="${1:-$ROOT/build-gpu-carry}"
BUILD_DIR="${BUILD_DIR:-$ROOT/build-gpu}"
if [[ -z "${CUDA_HOME:-}" ]]; then
  if nvcc="$(command -v nvcc)"; then
    CUDA_HOME="$(dirname "$(dirname "$(readlink -f "$nvcc")")")"
  else
    CUDA_HOME=/usr/local/cuda
  fi
fi
DEADLINE=$((SECONDS + ${CHECK_SECONDS:-450}))
LOGS="$(mktemp -d /tmp/bitnet-gpu-check-XXXXXX)"

say() { printf '\n== %s\n' "$*"; }
die() {
  printf 'bench/gpu/check.sh: %s\n' "$1" >&2
  exit "${2:-1}"
}
# Runs "$@" within the time left; a stage that runs out fails the check.
within() {
  local budget=$((DEADLINE - SECONDS))
  ((budget > 5)) || die "out of time before: $*"
  timeout --kill-after=10 "$budget" "$@"
}

# 1. The prepared folder.
say "prepared models ($DIR)"
for f in cases/cases.txt cases/cases.bin bench; do
  [[ -e "$DIR/$f" ]] ||
    die "$DIR/$f is missing: run bench/gpu/prepare.sh on a machine with the compiler, and carry the folder here"
done
cat "$DIR/source.txt" 2>/dev/null || true
du -sh "$DIR" | cut -f1

# 2. The runtime-only build.
say "build ($BUILD_DIR, runtime only, CUDA at $CUDA_HOME)"
build_start=$SECONDS
[[ -x "$CUDA_HOME/bin/nvcc" ]] ||
  die "no CUDA toolkit at $CUDA_HOME (nvcc is missing): set CUDA_HOME"
generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
within cmake -S "$ROOT" -B "$BUILD_DIR" "${generator[@]}" \
  -DCMAKE_BUILD_TYPE=Release -DBITNET_ENABLE_COMPILER=OFF \
  -DBITNET_RT_BUILD_TESTS=OFF -DBITNET_RT_BUILD_BENCHMARKS=OFF \
  -DCUDAToolkit_ROOT="$CUDA_HOME" >"$LOGS/configure.log" 2>&1 ||
  { cat "$LOGS/configure.log"; die "the runtime-only configure failed"; }
grep -q 'bench/gpu: no CUDA toolkit' "$LOGS/configure.log" &&
  die "CMake found no CUDA runtime with cuBLAS under $CUDA_HOME: the benchmark compares with it"
within cmake --build "$BUILD_DIR" -j "$(nproc)" \
  --target bitnet-gpu-check bitnet-gpu-bench >"$LOGS/build.log" 2>&1 ||
  { tail -40 "$LOGS/build.log"; die "the build failed"; }
build_s=$((SECONDS - build_start))
echo "built in $build_s s"

# 3. The GPU cases; bitnet-gpu-check says first whether there is a GPU.
say "GPU"
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,compute_cap,memory.total,driver_version \
    --format=csv,noheader 2>&1 || true
else
  echo "nvidia-smi is not installed"
fi
say "GPU cases (bitnet-gpu-check)"
cases_start=$SECONDS
set +e
within "$BUILD_DIR/bench/gpu/bitnet-gpu-check" "$DIR" --bench-layers 2>&1 | tee "$LOGS/cases.log"
cases_rc=${PIPESTATUS[0]}
set -e
((cases_rc == 2)) && die "no usable NVIDIA GPU (see above)" 2
cases_s=$((SECONDS - cases_start))
cases_result="$(grep -Eo '^[0-9]+ of [0-9]+ GPU cases passed' "$LOGS/cases.log" || echo "did not finish (exit $cases_rc)")"

# 4. The benchmark.
say "GPU benchmark (bitnet-gpu-bench)"
bench_start=$SECONDS
set +e
# shellcheck disable=SC2086 # BENCH_ARGS is a list of flags
within "$BUILD_DIR/bench/gpu/bitnet-gpu-bench" "$DIR" ${BENCH_ARGS:-} 2>&1 |
  tee "$LOGS/bench.log"
bench_rc=${PIPESTATUS[0]}
set -e
bench_s=$((SECONDS - bench_start))
bench_result="$(grep -Eo '^target, .*' "$LOGS/bench.log" | sed 's/^target, //' || true)"

say "summary"
status() { (($1 == 0)) && echo passed || echo "FAILED"; }
printf '%-44s %-7s %5s  %s\n' "stage" "result" "s" "detail"
printf '%-44s %-7s %5d  %s\n' "build (runtime only, no LLVM)" "done" "$build_s" ""
printf '%-44s %-7s %5d  %s\n' "GPU cases against the reference" \
  "$(status "$cases_rc")" "$cases_s" "$cases_result"
printf '%-44s %-7s %5d  %s\n' "benchmark (bit for bit, cuBLAS fp16, GB/s)" \
  "$(status "$bench_rc")" "$bench_s" "${bench_result:-no target line}"
printf 'total %d s on %s\n' "$SECONDS" \
  "$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 || echo "an unnamed GPU")"
rm -rf "$LOGS"
((cases_rc == 0 && bench_rc == 0))
