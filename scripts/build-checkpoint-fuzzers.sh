#!/usr/bin/env bash
# Builds the libFuzzer targets of the checkpoint readers (GGUF: the whole
# importer; safetensors: the reader and decoders) with clang-22 and
# AddressSanitizer into build/fuzz/, and optionally runs one.
#
#   scripts/build-checkpoint-fuzzers.sh                  build both
#   scripts/build-checkpoint-fuzzers.sh run gguf 1800    build, then fuzz the
#   scripts/build-checkpoint-fuzzers.sh run safetensors 1800   GGUF importer or
#                                       the safetensors reader for 1800 s
#
# Seeds are small well-formed files written by models/checkpoint_files.py
# and the malformed files of test/Import/Checkpoint/make_files.py; crashes
# land in build/fuzz/<target>-crashes/.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
LLVM=/usr/lib/llvm-22
CXX="$LLVM/bin/clang++"
OUT="$BUILD_DIR/fuzz"
mkdir -p "$OUT/obj"

ninja -C "$BUILD_DIR" -j1 MLIRBitNet >/dev/null

FLAGS=(-std=c++17 -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address
       -I"$ROOT/include" -I"$BUILD_DIR/include"
       -I"$ROOT/dialects/include" -I"$BUILD_DIR/dialects/include"
       -isystem "$LLVM/include")
compile() { # source -> object path on stdout
  local src="$1"
  local obj="$OUT/obj/$(basename "${src%.cpp}").o"
  if [[ ! -f "$obj" || "$src" -nt "$obj" ]]; then
    echo "fuzz: compiling $(realpath --relative-to="$ROOT" "$src")" >&2
    "$CXX" "${FLAGS[@]}" -c "$src" -o "$obj"
  fi
  echo "$obj"
}
common=()
for f in "$ROOT"/lib/Import/Checkpoint/*.cpp "$ROOT"/lib/Import/GGUF/*.cpp \
         "$ROOT"/lib/Import/HF/*.cpp "$ROOT"/lib/Reference/Numerics.cpp; do
  common+=("$(compile "$f")")
done
for target in gguf safetensors; do
  obj="$(compile "$ROOT/tools/bitnet-checkpoint-fuzz/bitnet-$target-fuzz.cpp")"
  "$CXX" -fsanitize=fuzzer,address "$obj" "${common[@]}" \
    "$BUILD_DIR/dialects/lib/Dialect/BitNet/IR/libMLIRBitNet.a" \
    -L"$LLVM/lib" -Wl,-rpath,"$LLVM/lib" -lMLIR -lLLVM \
    -o "$OUT/bitnet-$target-fuzz"
  echo "fuzz: built $OUT/bitnet-$target-fuzz"
done

if [[ "${1:-}" == run ]]; then
  target="${2:?gguf or safetensors}"
  seconds="${3:-300}"
  corpus="$OUT/$target-corpus"
  crashes="$OUT/$target-crashes"
  mkdir -p "$corpus" "$crashes"
  seeds="$OUT/seeds"
  if [[ ! -d "$seeds" ]]; then
    /usr/bin/python3 "$ROOT/test/Import/Checkpoint/make_files.py" "$seeds"
    /usr/bin/python3 - "$ROOT" "$seeds" <<'PY'
import os, sys
sys.path.insert(0, os.path.join(sys.argv[1], "models"))
import checkpoint_files as cf, tiny_vocab
out = sys.argv[2]
small = cf.random_bitnet(seed=3, vocab=64, hidden=128, heads=2, kv_heads=1, ffn=256)
cf.gguf_bitnet(small, cf.T_I2_S).write(os.path.join(out, "small_i2_s.gguf"))
cf.gguf_bitnet(small, cf.T_F16, arch="bitnet").write(os.path.join(out, "small_f16.gguf"))
tq = cf.random_bitnet(seed=4, vocab=32, hidden=256, heads=4, kv_heads=2, ffn=256)
cf.gguf_bitnet(tq, cf.T_TQ1_0).write(os.path.join(out, "small_tq1_0.gguf"))
v = tiny_vocab.from_merges([(b"i", b"n"), (b" ", b"t"), (b"e", b"r"), (b"o", b"n")], num_specials=4)
cf.gguf_bitnet(cf.random_bitnet(seed=5, vocab=v.size, hidden=128, heads=2, kv_heads=1, ffn=128),
               cf.T_I2_S, vocab=v).write(os.path.join(out, "small_vocab.gguf"))
PY
  fi
  if [[ "$target" == gguf ]]; then
    find "$seeds" -maxdepth 1 -name '*.gguf' -size -200k -exec cp -n {} "$corpus/" \;
  else
    find "$seeds" -name '*.safetensors' -size -400k -exec sh -c \
      'cp -n "$1" "$2/$(echo "$1" | md5sum | cut -c1-12).safetensors"' _ {} "$corpus" \;
  fi
  cd "$crashes"
  ASAN_OPTIONS=detect_leaks=1 "$OUT/bitnet-$target-fuzz" "$corpus" \
    -max_total_time="$seconds" -max_len=262144 -timeout=20 -rss_limit_mb=4096 \
    -print_final_stats=1
fi
