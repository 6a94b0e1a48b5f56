//===- Compiler.h - The compiler as a library -------------------*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// Everything bitnet-compile does, callable from C++ (the tool, the Python
// bindings, tests): load a model, run the named pipelines, and write one of
// the phases (--emit=mlir|llvm|obj|so).
//
//===----------------------------------------------------------------------===//

#ifndef BITNET_COMPILER_COMPILER_H
#define BITNET_COMPILER_COMPILER_H

#include "bitnet/Target/CPU.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/OwningOpRef.h"
#include "mlir/Support/LLVM.h"

#include <optional>
#include <string>
#include <vector>

namespace llvm {
class SourceMgr;
}

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

struct CompileOptions {
  EmitKind emit = EmitKind::SharedObject;
  MLIRStage stage = MLIRStage::Input;
  /// Entry function; empty for the only public function.
  std::string entry;
  /// Re-encode ternary weights (int8, i2, base3); empty keeps them.
  std::string weightFormat;
  /// Precision of embedding and head weights: "f32", "f16" or "int8".
  std::string floatWeights = "f32";
  /// Element type of a decoder's KV caches: "f16" or "f32".
  std::string kvCache = "f16";
  /// Logits of the last token only (a prefill build for generation).
  bool lastTokenLogits = false;
  CPUTarget target;
  /// NVIDIA GPU architecture ("sm_80", "sm_90"): non-empty compiles the
  /// model's kernels for that GPU (`--target=nvptx`); the host side is
  /// still built for `target`.
  std::string gpuArch;
  /// CUDA toolkit: libdevice and, when present, ptxas (for a cubin).
  std::string cudaPath = "/usr/local/cuda";
  /// With gpuArch: also a host build of every kernel, so that the model
  /// runs through the CUDA driver emulator (bitnet_rt/gpu_emulation.h).
  bool gpuEmulation = false;
  /// With gpuArch: weight rows per warp of every W2A8 kernel (1, 2, 4, 8,
  /// 16 or 32), or 0 to choose per shape.
  int64_t gpuGemvRows = 0;
  /// Kernels for linear layers: "auto" (the best the target has),
  /// "reference" (the reference lowering only) or an instruction set
  /// ("avx512vnni").
  std::string kernels = "auto";
  /// More builds of the model for other CPUs (LLVM CPU names, or "native"),
  /// best first; the runtime runs the first one the machine supports and
  /// the baseline build (`target`) otherwise. Shared objects only.
  std::vector<std::string> variants;
  /// Compiler driver used to link shared objects; empty picks one.
  std::string linker;
  /// Print each stage and its time to stderr.
  bool verbose = false;
  /// Apply MLIR's pass-manager command-line options (--mlir-timing,
  /// --mlir-print-ir-after-all, ...); only for tools that registered them.
  bool applyPassManagerCLOptions = false;
};

/// What `--kernels` selects for a target.
struct KernelSelection {
  /// The instruction set of the CPU kernels, or "none" (reference lowering).
  std::string isa;
  /// The bitlinear kernel family: mad, lut or auto (a cost model per layer).
  std::string family = "mad";
};

/// The kernels `options` selects for its target; an error for an unknown or
/// unsupported request.
FailureOr<KernelSelection> selectKernels(const CompileOptions &options,
                                         std::string &error);

/// The producer string written into every compiled model.
StringRef getProducerString();

/// Registers what the compiler needs with `context`.
void prepareContext(MLIRContext &context);

/// Reads a model from `path`: `.mlir` (or `-` for stdin), or `.onnx`,
/// imported into the bitnet and upstream dialects. `inputShapes` pins
/// symbolic input dimensions of ONNX models (`name:1x128` each);
/// `relaxedActivationScale` lets BitLinear recognition accept torch's
/// 127 * (1 / m) activation scale (see bitnet-recognize-bitlinear);
/// `verbose` prints the import and its time to stderr. Errors are reported
/// through the context's diagnostic handler.
OwningOpRef<ModuleOp> loadModel(StringRef path, MLIRContext &context,
                                llvm::SourceMgr &sourceMgr,
                                ArrayRef<std::string> inputShapes = {},
                                bool relaxedActivationScale = false,
                                bool verbose = false);

/// The tokenizer of a checkpoint, in the runtime's JSON form, read without
/// importing its weights: `path` is a GGUF file, a checkpoint directory or a
/// Hugging Face tokenizer.json.
llvm::Expected<std::string> readCheckpointTokenizer(StringRef path);

/// Prints diagnostics as SourceMgrDiagnosticHandler does (location, message,
/// the source line and a caret), except that a source line longer than
/// `maxColumns` is shown as an excerpt around the column: a model's weights
/// written inline as one constant make lines of megabytes.
class CompilerDiagnosticHandler : public SourceMgrDiagnosticHandler {
public:
  CompilerDiagnosticHandler(llvm::SourceMgr &mgr, MLIRContext *context,
                            raw_ostream &os, unsigned maxColumns = 160);
  CompilerDiagnosticHandler(llvm::SourceMgr &mgr, MLIRContext *context);

private:
  /// The line `loc` points into when it is longer than maxColumns.
  std::optional<StringRef> longLine(Location loc);
  void emitWithExcerpt(Location loc, const Twine &message,
                       DiagnosticSeverity severity);

  unsigned maxColumns;
};

/// Compiles `module` and writes the requested phase to `outputPath`
/// (`-` writes text phases to stdout). `module` is lowered in place.
LogicalResult compileModule(ModuleOp module, const CompileOptions &options,
                            StringRef outputPath);

} // namespace mlir::bitnet

#endif // BITNET_COMPILER_COMPILER_H
