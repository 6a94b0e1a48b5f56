//===- bitnet-onnx-fuzz.cpp - libFuzzer target of the ONNX importer -------===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// Feeds arbitrary bytes to the ONNX importer (reading, shape inference,
// BitLinear recognition, legalisation, verification). Any crash, sanitizer
// report, assertion or leak is a bug: every input must end in a module or in
// diagnostics. Built by scripts/build-onnx-fuzzer.sh with clang and
// -fsanitize=fuzzer,address; not part of the normal build.
//
//   build/fuzz/bitnet-onnx-fuzz CORPUS_DIR -max_total_time=300
//
//===----------------------------------------------------------------------===//

#include "bitnet/Import/ONNX/ONNXImporter.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  mlir::MLIRContext context(mlir::MLIRContext::Threading::DISABLED);
  // Diagnostics are the expected outcome of most inputs; keep them quiet.
  mlir::ScopedDiagnosticHandler quiet(
      &context, [](mlir::Diagnostic &) { return mlir::success(); });
  mlir::bitnet::ONNXImportOptions options;
  llvm::StringRef bytes(reinterpret_cast<const char *>(data), size);
  // No folder: tensors with external data must be rejected, not read.
  (void)mlir::bitnet::importONNXBuffer(bytes, "fuzz.onnx", "", context,
                                       options);
  return 0;
}
