#!/usr/bin/env bash
# Builds the libFuzzer target of the ONNX importer with clang-22 and
# AddressSanitizer into build/fuzz/bitnet-onnx-fuzz, and optionally runs it.
# Separate from the CMake build (which uses the system compiler); it needs
# the normal build's generated headers and the dialect library.
#
#   scripts/build-onnx-fuzzer.sh            build
#   scripts/build-onnx-fuzzer.sh run 300    build, then fuzz for 300 s from
#                                           the importer's test models
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
LLVM=/usr/lib/llvm-22
CXX="$LLVM/bin/clang++"
OUT="$BUILD_DIR/fuzz"
mkdir -p "$OUT/obj"

# Generated pass declarations and the dialect library come from the normal
# build.
ninja -C "$BUILD_DIR" -j1 BitNetImportPassIncGen MLIRBitNet >/dev/null

FLAGS=(-std=c++17 -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address
       -I"$ROOT/include" -I"$BUILD_DIR/include"
       -I"$ROOT/dialects/include" -I"$BUILD_DIR/dialects/include"
       -isystem "$LLVM/include" -DONNX_NAMESPACE=onnx -DONNX_ML=1)
objs=()
compile() { # source [extra flags...]
  local src="$1"; shift
  local obj="$OUT/obj/$(basename "${src%.cpp}").o"
  if [[ ! -f "$obj" || "$src" -nt "$obj" ]]; then
    echo "fuzz: compiling $(realpath --relative-to="$ROOT" "$src")"
    "$CXX" "${FLAGS[@]}" "$@" -c "$src" -o "$obj"
  fi
  objs+=("$obj")
}
compile "$ROOT/lib/Import/ONNX/ONNXImporter.cpp" -fexceptions
for f in "$ROOT"/lib/Import/Transforms/*.cpp; do compile "$f"; done
compile "$ROOT/tools/bitnet-onnx-fuzz/bitnet-onnx-fuzz.cpp"

"$CXX" -fsanitize=fuzzer,address "${objs[@]}" \
  "$BUILD_DIR/dialects/lib/Dialect/BitNet/IR/libMLIRBitNet.a" \
  -L"$LLVM/lib" -Wl,-rpath,"$LLVM/lib" -lMLIR -lLLVM \
  -lonnx -lonnx_proto -lprotobuf -o "$OUT/bitnet-onnx-fuzz"
echo "fuzz: built $OUT/bitnet-onnx-fuzz"

if [[ "${1:-}" == run ]]; then
  seconds="${2:-300}"
  corpus="$OUT/corpus"
  mkdir -p "$corpus"
  # Seeds: every test model of the importer.
  find "$ROOT/test/Import/ONNX" -name '*.onnx' -size -200k \
    -exec cp -n {} "$corpus/" \; 2>/dev/null || true
  i=0
  for m in "$ROOT"/test/Import/ONNX/Inputs/models/*/model.onnx \
           "$ROOT"/test/Import/ONNX/torch/*/model.onnx; do
    cp "$m" "$corpus/seed_$i.onnx"; i=$((i + 1))
  done
  # And ONNX's own node tests, for the variety of operators.
  data=/usr/share/libonnx-testdata/data/node
  if [[ -d "$data" ]]; then
    for m in "$data"/*/model.onnx; do
      cp "$m" "$corpus/$(basename "$(dirname "$m")").onnx"
    done
  fi
  cd "$OUT"
  ASAN_OPTIONS=detect_leaks=1 "$OUT/bitnet-onnx-fuzz" "$corpus" \
    -max_total_time="$seconds" -max_len=65536 -timeout=20 -rss_limit_mb=4096 \
    -print_final_stats=1
fi
