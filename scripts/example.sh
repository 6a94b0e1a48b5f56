#!/usr/bin/env bash
# The main job on the bundled model: compile models/fortunes/fortunes.onnx (a
# character-level BitNet b1.58 decoder trained on Debian's fortune cookies:
# ternary weights, int8 activations) into a shared object, then generate text
# from a prompt with it. Also compiles and runs the one-layer example
# examples/bitlinear.mlir.
#
#   scripts/example.sh                      # the default prompt
#   scripts/example.sh "Q: Why is the sky"  # another prompt
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup.sh"

PROMPT="${1:-The computer }"
OUT="$BUILD_DIR/example"
mkdir -p "$OUT"
echo "== bitnet-compile models/fortunes/fortunes.onnx --input-shape=tokens:1 -o $OUT/fortunes.so"
"$BUILD_DIR/bin/bitnet-compile" -v "$ROOT/models/fortunes/fortunes.onnx" \
  --input-shape=tokens:1 -o "$OUT/fortunes.so"
echo "== bitnet-generate $OUT/fortunes.so --prompt \"$PROMPT\" -n 240 --seed 7"
"$BUILD_DIR/bin/bitnet-generate" "$OUT/fortunes.so" --prompt "$PROMPT" \
  -n 240 --seed 7 --temperature 0.7 --stop $'\n%\n'
echo
echo "== bitnet-compile examples/bitlinear.mlir -o $OUT/bitlinear.so"
"$BUILD_DIR/bin/bitnet-compile" "$ROOT/examples/bitlinear.mlir" -o "$OUT/bitlinear.so"
echo "== bitnet-run $OUT/bitlinear.so --input x=examples/bitlinear_x.npy --print"
"$BUILD_DIR/bin/bitnet-run" "$OUT/bitlinear.so" \
  --input "x=$ROOT/examples/bitlinear_x.npy" --output-dir "$OUT" --print
