//===- Compiler.h - The compiler as a library -------------------*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// Everything bitnet-compile does, callable from C++ (the tool, the Python
// bindings, tests): load a model, hand it to its target, and write one of
// the phases (--emit=mlir|llvm|obj|so|ptx|tokenizer).
//
//===----------------------------------------------------------------------===//

#ifndef BITNET_COMPILER_COMPILER_H
#define BITNET_COMPILER_COMPILER_H

#include "bitnet/Compiler/CompileOptions.h"

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

/// Sets the target of `options` from what a user writes after --target: a
/// target triple (the cpu target; empty for this machine) or "nvptx" (also
/// "nvptx64", "cuda": NVIDIA GPUs, with host code for this machine).
void setTarget(CompileOptions &options, StringRef target);

/// Checks that `outputPath` can be written (its directory exists and is
/// writable, and it is not itself a directory); `-` is standard output.
/// compileModule() checks it before any work, and a tool can before reading
/// the model: otherwise a bad path fails only at the end, at the link.
llvm::Error checkOutputPath(StringRef outputPath);

/// Checks `options` as a whole: the values, how they combine, and what the
/// chosen target accepts (TargetBackend::validate). bitnet-compile, the
/// Python bindings and compileModule() all call it, so every front end
/// refuses the same things with the same words.
llvm::Error validateCompileOptions(const CompileOptions &options);

/// Registers what the compiler needs with `context`.
void prepareContext(MLIRContext &context);

/// Reads a model from `path`: `.mlir` (or `-` for stdin), or `.onnx`,
/// imported into the bitnet and upstream dialects. `inputShapes` pins
/// symbolic input dimensions of ONNX models (`name:1x128` each);
/// `strictFloat` makes BitLinear recognition follow an ONNX graph's float
/// arithmetic to the last bit (see bitnet-recognize-bitlinear); `verbose`
/// prints the import and its time to stderr, and for ONNX models what each
/// BitLinear layer became and why a near miss stays float. Errors are reported
/// through the context's diagnostic handler.
/// What shapes a checkpoint's decoder step (GGUF, Hugging Face directory)
/// beyond `--input-shape=tokens:S`: the sequences a step may carry
/// (`--max-sequences`, 0: one) and the KV cache's capacity (`--max-context`,
/// 0: the model's context length). Other models refuse them.
struct DecoderShape {
  int64_t sequences = 0;
  int64_t context = 0;
};
OwningOpRef<ModuleOp> loadModel(StringRef path, MLIRContext &context,
                                llvm::SourceMgr &sourceMgr,
                                ArrayRef<std::string> inputShapes = {},
                                bool strictFloat = false,
                                bool verbose = false,
                                DecoderShape decoder = {});

/// The tokenizer of a checkpoint, in the runtime's JSON form, read without
/// importing its weights: `path` is a GGUF file, a checkpoint directory or a
/// Hugging Face tokenizer.json.
llvm::Expected<std::string> readCheckpointTokenizer(StringRef path);

/// Whether loadModel reads `path` as a checkpoint: a GGUF file or a Hugging
/// Face directory.
bool isCheckpointPath(StringRef path);

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
/// (`-` writes text phases to stdout). `module` is lowered in place: it gets
/// the #bitnet.target of its target (bitnet/Target/Target.h), which then
/// lowers and writes it.
LogicalResult compileModule(ModuleOp module, const CompileOptions &options,
                            StringRef outputPath);

} // namespace mlir::bitnet

#endif // BITNET_COMPILER_COMPILER_H
