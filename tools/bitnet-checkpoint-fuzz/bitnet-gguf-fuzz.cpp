//===- bitnet-gguf-fuzz.cpp - libFuzzer target of the GGUF importer -------===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// Feeds arbitrary bytes to the GGUF importer: the reader, the tensor
// decoders, the tokenizer's conversion, the architecture mapping and the
// decoder builder, and decodes every tensor of a file that parses. Any crash,
// sanitizer report or leak is a bug: every input must end in a module or in
// an error. Built by scripts/build-checkpoint-fuzzers.sh with clang and
// -fsanitize=fuzzer,address; not part of the normal build.
//
//===----------------------------------------------------------------------===//

#include "bitnet/Import/GGUF/GGUFImporter.h"
#include "bitnet/Import/GGUF/GGUFTensors.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  llvm::StringRef bytes(reinterpret_cast<const char *>(data), size);
  llvm::MemoryBufferRef buffer(bytes, "fuzz.gguf");
  if (auto file = mlir::bitnet::gguf::File::parse(buffer)) {
    for (const auto &tensor : (*file)->getTensors()) {
      if (tensor.numElements() > (1 << 22))
        continue;
      llvm::consumeError(mlir::bitnet::gguf::decodeFloat(**file, tensor)
                             .takeError());
      llvm::consumeError(mlir::bitnet::gguf::decodeTernary(**file, tensor)
                             .takeError());
    }
    llvm::consumeError(
        mlir::bitnet::tokenizerJSONFromGGUF(**file).takeError());
  } else {
    llvm::consumeError(file.takeError());
  }
  mlir::MLIRContext context(mlir::MLIRContext::Threading::DISABLED);
  mlir::ScopedDiagnosticHandler quiet(
      &context, [](mlir::Diagnostic &) { return mlir::success(); });
  (void)mlir::bitnet::importGGUFBuffer(buffer, context);
  return 0;
}
