//===- HFImporter.h - Hugging Face BitNet checkpoints -----------*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// Maps a Hugging Face checkpoint directory of `BitNetForCausalLM`
// (`model_type: bitnet`, e.g. microsoft/bitnet-b1.58-2B-4T) onto the decoder
// of DecoderBuilder.h. Projections come in two forms:
//   - packed: a `uint8` tensor `[N/4, K]` whose byte (r, k) holds the codes
//     w + 1 of rows r, r + N/4, r + 2N/4 and r + 3N/4 in bits 0-1, 2-3, 4-5
//     and 6-7, with a `weight_scale` w_s whose meaning follows
//     `quantization_config.linear_class`: transformers' AutoBitLinear
//     (`autobitlinear`, bitnet-b1.58-2B-4T) computes y = (x_q . w) / s_x * w_s,
//     so s_w = w_s; its BitLinear (`bitlinear`, the default) computes
//     y = (x_q . w) / (s_x * w_s), so s_w = 1 / w_s;
//   - latent (the `-bf16` checkpoints): float weights, ternarised with
//     absmean as the numerics contract says.
// RoPE pairs feature i with i + D/2 (rotate_half); the tokenizer
// (`tokenizer.json`) and the chat template (`tokenizer_config.json`) travel
// into the module's `bitnet.metadata`.
//
//===----------------------------------------------------------------------===//

#ifndef BITNET_IMPORT_HF_HFIMPORTER_H
#define BITNET_IMPORT_HF_HFIMPORTER_H

#include "bitnet/Import/Checkpoint/DecoderBuilder.h"

namespace mlir::bitnet {

/// Imports the checkpoint directory `dir`. Errors are reported through the
/// context's diagnostic handler (located at the file at fault) and give
/// null.
[[nodiscard]] OwningOpRef<ModuleOp>
importHFDirectory(StringRef dir, MLIRContext &context,
                  const CheckpointImportOptions &options = {});

/// The tokenizer of a checkpoint (`path` is its directory or its
/// `tokenizer.json`; `tokenizer_config.json` beside it is read when present)
/// in the runtime's canonical JSON form (runtime/README.md).
llvm::Expected<std::string> tokenizerJSONFromHF(StringRef path);

/// The chat template of `tokenizer_config.json` in `dir`, if any.
llvm::Expected<std::optional<std::string>> chatTemplateFromHF(StringRef dir);

} // namespace mlir::bitnet

#endif // BITNET_IMPORT_HF_HFIMPORTER_H
