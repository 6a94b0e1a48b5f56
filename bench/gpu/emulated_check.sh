#!/usr/bin/env bash
# The GPU check without a GPU: prepares every GPU case and benchmark layer
# with host builds of their kernels (bitnet-gpu-prepare --emulation) and runs
# them all with bitnet-gpu-check --bench-layers through the CUDA driver
# emulator, as bench/gpu/check.sh runs them on a GPU. Run by ctest
# (GPUCheck.Emulated):
#
#   emulated_check.sh BITNET_GPU_PREPARE BITNET_GPU_CHECK EMULATOR_LIBRARY
#
# Environment: CUDA_HOME (default /usr/local/cuda; without its libdevice the
# check is skipped, exit 77), GPU_ARCH (default sm_90).
set -euo pipefail

(($# == 3)) || { echo "usage: $0 BITNET_GPU_PREPARE BITNET_GPU_CHECK EMULATOR_LIBRARY" >&2; exit 1; }
prepare=$1 check=$2 emulator=$3
CUDA_HOME="${CUDA_HOME:-/usr/local/cuda}"
if ! compgen -G "$CUDA_HOME/nvvm/libdevice/libdevice*.bc" >/dev/null; then
  echo "skipped: no CUDA toolkit with libdevice at $CUDA_HOME (set CUDA_HOME)"
  exit 77
fi

dir="$(mktemp -d /tmp/bitnet-gpu-emulated-XXXXXX)"
trap 'rm -rf "$dir"' EXIT
"$prepare" --out="$dir" --arch="${GPU_ARCH:-sm_90}" --cuda-path="$CUDA_HOME" --emulation
BITNET_CUDA_DRIVER="$emulator" "$check" "$dir" --bench-layers
