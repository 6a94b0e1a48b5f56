#!/usr/bin/env bash
# Installs the Debian packages bitnet-mlir builds with (as root; idempotent and
# quick when everything is present), then configures and builds the project.
#
#   scripts/setup.sh            install + configure + build into ./build
#   BUILD_DIR=dir scripts/setup.sh
#   SETUP_TARGETS="a b" scripts/setup.sh   build only those targets
#
# Sourced by scripts/example.sh and scripts/test.sh.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
LLVM_PREFIX=/usr/lib/llvm-22

# Every package the build, the tests and the tools use, by name.
PACKAGES=(
  build-essential cmake ninja-build python3       # toolchain; lit runs on python3
  llvm-22-dev libmlir-22-dev mlir-22-tools        # LLVM/MLIR 22: libs, cmake, tblgen
  llvm-22-tools                                   # lit, FileCheck, not, count
  clang-22 lld-22                                 # cross-target linking (aarch64)
  libclang-rt-22-dev                              # libFuzzer/ASan of scripts/build-*fuzzer*.sh
  qemu-user libc6-dev-arm64-cross                 # the aarch64 kernels' test: qemu,
  libgcc-12-dev-arm64-cross                       #   cross libc, crtbegin and libgcc
  libgtest-dev libgmock-dev libbenchmark-dev      # unit tests and benchmarks
  libonnx-dev libprotobuf-dev                     # the ONNX importer
  python3-onnx libonnx-testdata                   # its end-to-end tests
  pybind11-dev python3-dev python3-numpy          # Python bindings (bitnet_mlir)
  python3-pip python3-setuptools python3-venv     #   and their pip install (test/install)
  python3-wheel dpkg-dev                          # the wheel; the .deb's dpkg-shlibdeps
  libopenblas-dev                                 # fp32 baseline of the benchmarks
  python3-matplotlib                              #   and their charts (bench/charts.py)
  pkg-config libpcre2-dev libcjson-dev            # the runtime's tokenizer: regexes, JSON
  python3-regex python3-sentencepiece             #   and its Python references in tests
  python3-torch                                   # the bundled model's training and agreement test
  libcpp-httplib-dev nlohmann-json3-dev           # bitnet-serve: HTTP and JSON
  haproxy                                         #   its replicas' load balancer (deploy/, test/serve)
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: these packages are missing and installing them needs root: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [[ ! -f "$BUILD_DIR/build.ninja" ]]; then
  cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja \
    -DCMAKE_BUILD_TYPE=Release \
    -DMLIR_DIR="$LLVM_PREFIX/lib/cmake/mlir" \
    -DLLVM_EXTERNAL_LIT="$LLVM_PREFIX/bin/lit"
fi
# shellcheck disable=SC2086 # a list of target names
cmake --build "$BUILD_DIR" -j "$(nproc)" ${SETUP_TARGETS:+--target $SETUP_TARGETS}
