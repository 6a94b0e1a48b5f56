#!/usr/bin/env bash
# The main job on the bundled example: compile examples/bitlinear.mlir (a
# BitNet b1.58 linear layer whose weights are ternarised and packed at compile
# time) into a shared object, run it on examples/bitlinear_x.npy, print y.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup.sh"

OUT="$BUILD_DIR/example"
mkdir -p "$OUT"
echo "== bitnet-compile examples/bitlinear.mlir -o $OUT/bitlinear.so"
"$BUILD_DIR/bin/bitnet-compile" -v "$ROOT/examples/bitlinear.mlir" -o "$OUT/bitlinear.so"
echo "== bitnet-run $OUT/bitlinear.so --input x=examples/bitlinear_x.npy --print"
"$BUILD_DIR/bin/bitnet-run" "$OUT/bitlinear.so" \
  --input "x=$ROOT/examples/bitlinear_x.npy" --output-dir "$OUT" --print
