//===- GGUFImporter.h - GGUF models into the bitnet dialect -----*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// Maps a GGUF file of a BitNet architecture onto the decoder of
// DecoderBuilder.h:
//   - `bitnet-b1.58` and `bitnet-25` (bitnet-b1.58-2B-4T as bitnet.cpp
//     writes it): relu^2 gated FFN, sub-norms, tied or separate head;
//   - `bitnet` (the 1bitLLM models): SiLU-gated FFN, sub-norms, optional
//     per-tensor `*.scale` tensors multiplying a layer's output.
// Both use rotary pairs (i, i + D/2) (llama.cpp's NEOX rotation), so q and k
// rows are taken as stored. The tokenizer (`tokenizer.ggml.*`) and the chat
// template travel into the module's `bitnet.metadata`.
//
//===----------------------------------------------------------------------===//

#ifndef BITNET_IMPORT_GGUF_GGUFIMPORTER_H
#define BITNET_IMPORT_GGUF_GGUFIMPORTER_H

#include "bitnet/Import/Checkpoint/DecoderBuilder.h"
#include "bitnet/Import/GGUF/GGUFFile.h"

namespace mlir::bitnet {

/// Imports the GGUF model at `path`. Errors are reported through the
/// context's diagnostic handler (located at the file) and give null.
[[nodiscard]] OwningOpRef<ModuleOp>
importGGUFFile(StringRef path, MLIRContext &context,
               const CheckpointImportOptions &options = {});

/// Imports a GGUF file held in memory (its identifier labels diagnostics).
[[nodiscard]] OwningOpRef<ModuleOp>
importGGUFBuffer(llvm::MemoryBufferRef buffer, MLIRContext &context,
                 const CheckpointImportOptions &options = {});

/// The tokenizer of a GGUF file in the runtime's canonical JSON form (the
/// `tokenizer.ggml.*` keys as one object: runtime/README.md).
llvm::Expected<std::string> tokenizerJSONFromGGUF(const gguf::File &file);

} // namespace mlir::bitnet

#endif // BITNET_IMPORT_GGUF_GGUFIMPORTER_H
