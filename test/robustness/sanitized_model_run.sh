#!/usr/bin/env bash
# Runs compiled models under the runtime's sanitizer builds (those that
# scripts/test.sh makes in BUILD/sanitizers before ctest): the bundled
# decoder, a decode and a 16-token prefill build, through bitnet-run on two
# threads and through bitnet-generate, under AddressSanitizer+UBSan and
# under ThreadSanitizer. The runtime is instrumented, the model's code is
# not, so this checks what passes between them: the buffers, the workspace,
# the thread pool, and the registers the model's code relies on across calls
# into the C library.
#
#   sanitized_model_run.sh BITNET_COMPILE SANITIZERS_DIR MODEL.onnx
#
# Exit status 77 (skipped) when SANITIZERS_DIR has no sanitizer build.
set -euo pipefail
compiler="$1" sanitizers="$2" model="$3"
if [[ ! -x "$sanitizers/address/bitnet-run" ]]; then
  echo "no sanitizer build in $sanitizers (scripts/test.sh makes one): skipped"
  exit 77
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$compiler" "$model" --input-shape=tokens:1 -q -o "$work/decode.so"
"$compiler" "$model" --input-shape=tokens:16 --last-token-logits -q \
  -o "$work/prefill.so"

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
for kind in address thread; do
  bin="$sanitizers/$kind"
  [[ -x "$bin/bitnet-run" ]] || continue
  for so in decode prefill; do
    echo "== $kind: bitnet-run $so.so"
    "$bin/bitnet-run" "$work/$so.so" --random --threads 2 --warmup 1 \
      --repeat 3 --quiet
  done
  echo "== $kind: bitnet-generate"
  out="$("$bin/bitnet-generate" "$work/decode.so" --prefill "$work/prefill.so" \
    --prompt "The computer is a machine that " -n 24 --temperature 0 \
    --threads 2 --quiet)"
  # The prompt and 24 more characters.
  if (( ${#out} < 31 + 24 )); then
    echo "bitnet-generate under $kind printed too little: '$out'"
    exit 1
  fi
done
echo "compiled models ran clean under the sanitizers"
