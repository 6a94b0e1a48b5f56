//===- bitnet-safetensors-fuzz.cpp - libFuzzer target of safetensors ------===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// Feeds arbitrary bytes to the safetensors reader and decodes every float
// tensor of a file that parses. Any crash, sanitizer report or leak is a bug.
// Built by scripts/build-checkpoint-fuzzers.sh; not part of the normal build.
//
//===----------------------------------------------------------------------===//

#include "bitnet/Import/HF/SafeTensors.h"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  llvm::StringRef bytes(reinterpret_cast<const char *>(data), size);
  llvm::MemoryBufferRef buffer(bytes, "fuzz.safetensors");
  auto file = mlir::bitnet::safetensors::File::parse(buffer);
  if (!file) {
    llvm::consumeError(file.takeError());
    return 0;
  }
  for (const auto &tensor : (*file)->getTensors())
    if (tensor.numElements() <= (1 << 22))
      llvm::consumeError(
          mlir::bitnet::safetensors::decodeFloat(tensor).takeError());
  return 0;
}
