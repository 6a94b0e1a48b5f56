//===- DecoderBuilder.h - A BitNet decoder from its weights -----*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// Builds one step of a BitNet b1.58 decoder in the bitnet dialect, the same
// function the ONNX importer gives for the decoder's ONNX form
// (models/README.md): inputs `tokens` [S] i32, `position` i32 and per layer
// `cache.<l>.key` / `cache.<l>.value` [C, Hkv, D] f32; outputs `logits`
// [S, V] and the updated caches. The checkpoint readers (GGUF, Hugging Face)
// describe the architecture in a `DecoderConfig` and hand the weights over
// layer by layer through `DecoderWeights`, so that only one layer's decoded
// weights are in memory besides the module.
//
//===----------------------------------------------------------------------===//

#ifndef BITNET_IMPORT_CHECKPOINT_DECODERBUILDER_H
#define BITNET_IMPORT_CHECKPOINT_DECODERBUILDER_H

#include "bitnet/Import/Checkpoint/TensorData.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"
#include "mlir/Support/LLVM.h"

#include "llvm/Support/Error.h"

#include <functional>
#include <map>
#include <optional>
#include <string>

namespace mlir::bitnet {

/// The feed-forward block of a layer: act(gate(x)) * up(x), then down.
enum class FFNActivation {
  SquaredRelu, ///< relu(g)^2 (bitnet-b1.58-2B-4T)
  Silu,        ///< g * sigmoid(g) (the 1bitLLM BitNet models)
};

/// The shape of a decoder.
struct DecoderConfig {
  /// Architecture name, for messages and metadata ("bitnet-b1.58").
  std::string architecture;
  int64_t vocab = 0, hidden = 0, layers = 0, heads = 0, kvHeads = 0,
          headDim = 0, ffn = 0, context = 0;
  float rmsEpsilon = 1e-5f;
  float ropeTheta = 10000.0f;
  /// Rotary pairs: i with i + D/2 (true, Hugging Face's rotate_half) or 2i
  /// with 2i + 1.
  bool ropeHalf = true;
  FFNActivation activation = FFNActivation::SquaredRelu;
  /// RMSNorms on the attention output (before o) and on the FFN's hidden
  /// activations (before down).
  bool attnSubNorm = true, ffnSubNorm = true;
};

/// Linear layers and norms of one decoder layer.
enum class LinearKind { Q, K, V, O, Gate, Up, Down };
enum class NormKind { Attn, AttnSub, FFN, FFNSub };
StringRef stringifyLinearKind(LinearKind kind);
StringRef stringifyNormKind(NormKind kind);
/// "<source>: tensor '<name>' is [a, b], expected [c, d]".
std::string describeShapeMismatch(StringRef source, StringRef name,
                                  ArrayRef<int64_t> shape,
                                  ArrayRef<int64_t> expected);

/// The weights of a decoder, read on demand. Errors name the file and
/// tensor.
class DecoderWeights {
public:
  virtual ~DecoderWeights();
  /// The token embedding [V, D].
  virtual llvm::Expected<FloatTensor> embedding() = 0;
  /// The final norm [D].
  virtual llvm::Expected<FloatTensor> outputNorm() = 0;
  /// The head [V, D]; nothing when it is the embedding (tied).
  virtual llvm::Expected<std::optional<FloatTensor>> head() = 0;
  virtual llvm::Expected<FloatTensor> norm(NormKind kind, int64_t layer) = 0;
  /// The ternary weight of a linear layer, which must be `rows x cols`
  /// (outputs x inputs): a stored tensor of another shape is an error naming
  /// it, found before its data is decoded.
  virtual llvm::Expected<TernaryMatrix> linear(LinearKind kind, int64_t layer,
                                               int64_t rows, int64_t cols) = 0;
};

struct DecoderBuildOptions {
  /// Tokens per step (S); 0: one, or one per sequence with `sequences`.
  int64_t tokens = 0;
  /// KV-cache capacity (C); 0 takes the config's context.
  int64_t cacheCapacity = 0;
  /// Sequences a step may carry (B, `--max-sequences`); 0 builds the step of
  /// one sequence (inputs `tokens`, `position`, caches [C, Hkv, D]). With B,
  /// the inputs are `tokens`, `positions` and `slots` [S], the caches
  /// [B, C, Hkv, D], and attention is `bitnet.batched_attention`.
  int64_t sequences = 0;
  /// Name of the function.
  std::string entry = "main";
  /// Labels locations (the checkpoint's path).
  std::string source;
  /// Entries of the module's `bitnet.metadata` (tokenizer, chat template,
  /// architecture).
  std::map<std::string, std::string> metadata;
  /// Called after each layer (progress output); may be empty.
  std::function<void(int64_t layer, int64_t layers)> progress;
};

/// How a checkpoint (GGUF file, Hugging Face directory) is imported.
struct CheckpointImportOptions {
  /// Tokens per step (`--input-shape=tokens:S`); 0: one, or one per
  /// sequence with `sequences`.
  int64_t tokens = 0;
  /// KV-cache capacity (`--max-context`); 0 takes the model's context length.
  int64_t cacheCapacity = 0;
  /// Sequences a step may carry (`--max-sequences`); 0: one, the classic
  /// step (DecoderBuildOptions::sequences).
  int64_t sequences = 0;
  std::string entry = "main";
  /// Print progress (layers read) to stderr.
  bool verbose = false;
};

/// Parses `tokens:S` into `options.tokens`; an error message otherwise.
[[nodiscard]] std::string addCheckpointInputShape(StringRef spec,
                                                  CheckpointImportOptions &options);

/// Builds the decoder step. Errors (a tensor of the wrong shape, a read
/// failure) are returned, not reported.
llvm::Expected<OwningOpRef<ModuleOp>>
buildDecoder(MLIRContext &context, const DecoderConfig &config,
             DecoderWeights &weights, const DecoderBuildOptions &options);

} // namespace mlir::bitnet

#endif // BITNET_IMPORT_CHECKPOINT_DECODERBUILDER_H
