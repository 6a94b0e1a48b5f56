//===- CompileOptions.h - What a compilation is asked to do -----*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// The options of one compilation, as bitnet-compile, the Python bindings and
// C++ callers give them, with their defaults (shared with the named pipelines
// through bitnet/Pipelines/Pipelines.h). The targets (bitnet/Target/Target.h)
// read them; validateCompileOptions (bitnet/Compiler/Compiler.h) checks them.
//
//===----------------------------------------------------------------------===//

#ifndef BITNET_COMPILER_COMPILEOPTIONS_H
#define BITNET_COMPILER_COMPILEOPTIONS_H

#include "bitnet/Pipelines/Pipelines.h"
#include "bitnet/Target/CPU/CodeGen.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

#include "llvm/Support/Error.h"

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace mlir::bitnet {

/// The phase whose result the compiler writes.
enum class EmitKind {
  MLIR,         ///< MLIR text, at the stage `CompileOptions::stage`
  LLVM,         ///< LLVM IR text after optimisation
  Object,       ///< a relocatable object file
  SharedObject, ///< a loadable model (the default)
  PTX,          ///< the PTX of a GPU model's kernels (needs gpuArch)
  Tokenizer,    ///< the tokenizer the model carries, in the runtime's JSON
};

/// How far MLIR output is lowered.
enum class MLIRStage {
  Input,      ///< as read (and imported), canonicalised
  Linalg,     ///< after bitnet-linalg-pipeline
  Bufferized, ///< after bitnet-bufferize-pipeline
  LLVM,       ///< after bitnet-llvm-pipeline (LLVM dialect)
};

std::optional<EmitKind> parseEmitKind(StringRef name);
std::optional<MLIRStage> parseMLIRStage(StringRef name);
/// File extension of a phase's output, with the dot.
StringRef getDefaultExtension(EmitKind kind);

/// Another entry of a model, compiled into the same shared object over the
/// same weights: a step of another shape (model_abi.h, bitnet_model_entry).
struct ModelEntry {
  /// Its name in the descriptor: lower-case letters, digits and '_'.
  std::string name;
  /// Its logits are its step's last token's.
  bool lastTokenLogits = false;
  /// Reads the model again with this entry's shapes, in the context of the
  /// main module; null after reporting an error.
  std::function<OwningOpRef<ModuleOp>()> load;
};

struct CompileOptions {
  EmitKind emit = EmitKind::SharedObject;
  MLIRStage stage = MLIRStage::Input;
  /// Entry function; empty for the only public function.
  std::string entry;
  /// Re-encode ternary weights; none keeps each weight's format.
  std::optional<TernaryFormat> weightFormat;
  /// Precision of embedding and head weights.
  FloatPrecision floatWeights = defaults::kFloatWeights;
  /// Element type of a decoder's KV caches.
  KVCacheType kvCache = defaults::kKVCache;
  /// Logits of the last token only (a prefill build for generation).
  bool lastTokenLogits = false;
  /// The registered target that compiles the model (bitnet/Target/Target.h):
  /// "cpu" (the default) or "nvptx".
  std::string backend = "cpu";
  /// The CPU code: the whole model for the CPU target, the host side of a
  /// GPU target.
  CPUTarget target;
  /// NVIDIA GPU architecture ("sm_80", "sm_90") of the nvptx target.
  std::string gpuArch = "sm_90";
  /// CUDA toolkit: libdevice and, when present, ptxas (for a cubin).
  std::string cudaPath = "/usr/local/cuda";
  /// nvptx: also a host build of every kernel, so that the model runs
  /// through the CUDA driver emulator (bitnet_rt/gpu_emulation.h).
  bool gpuEmulation = false;
  /// nvptx: weight rows per warp of every W2A8 kernel (1, 2, 4, 8, 16 or
  /// 32), or 0 to choose per shape.
  int64_t gpuGemvRows = 0;
  /// Kernels for linear layers: "auto" (the best the target has),
  /// "reference" (the reference lowering only) or a kernel family of the
  /// target ("avx512vnni", see the CPU architectures in lib/Target/CPU).
  std::string kernels = "auto";
  /// Kernels timed on this machine (`bitnet-compile --tune`): one
  /// `MxNxK:family:mad_ns:lut_ns[:prefetch]` per bitlinear shape and one
  /// `dense:MxNxK:rows:vectors:prefetch:ns:default_ns` per dense shape (the
  /// `tuned` option of bitnet-lower-to-cpu-kernels); they override the
  /// compiler's choices where kernels are "auto", in builds for this
  /// machine's CPU only.
  std::vector<std::string> tunedKernels;
  /// More builds of the model for other CPUs (LLVM CPU names, or "native"),
  /// best first; the runtime runs the first one the machine supports and
  /// the baseline build (`target`) otherwise. Shared objects only.
  std::vector<std::string> variants;
  /// The model's other entries (CPU target, shared objects only). Their
  /// weights are shared with the main build's where the bytes are the same.
  std::vector<ModelEntry> entries;
  /// Choose the kernel families (kernels "auto") as for a step of this many
  /// tokens, so that the builds of several step sizes (the entries) lay the
  /// weights out alike; 0: each build for its own step.
  int64_t layoutTokens = 0;
  /// Compiler driver used to link shared objects; empty picks one.
  std::string linker;
  /// The largest tensor (constant, argument or result of any op) a model
  /// may hold, in bytes; a larger one is an error at its op before any work.
  int64_t maxTensorBytes = int64_t(32) << 30;
  /// Print each stage and its time to stderr.
  bool verbose = false;
  /// Apply MLIR's pass-manager command-line options (--mlir-timing,
  /// --mlir-print-ir-after-all, ...); only for tools that registered them.
  bool applyPassManagerCLOptions = false;
};

/// The producer string written into every compiled model.
StringRef getProducerString();

/// Prints what `tool --version` says: the project's version and git
/// revision, and the LLVM/MLIR version it is built on.
void printVersion(llvm::raw_ostream &os, StringRef tool);

/// The pipeline options that `options` implies for every target (the
/// target adds its own: kernels, GPU architecture).
void fillPipelineOptions(const CompileOptions &options,
                         PipelineOptions &pipeline);

} // namespace mlir::bitnet

#endif // BITNET_COMPILER_COMPILEOPTIONS_H
