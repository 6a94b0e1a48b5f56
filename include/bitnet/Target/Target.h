//===- Target.h - The targets a model is compiled for -----------*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// A target owns everything that depends on the machine: which kernels its
// models use, the stages from bitnet ops to the LLVM dialect, and how the
// result is written (an object, a shared object, PTX). The compiler driver
// (bitnet/Compiler/Compiler.h) only sequences them:
//
//   validate -> getTargetAttr (set as the module's bitnet.target)
//            -> lower (stopping at a stage for --emit=mlir) -> serialize
//
// Targets register themselves by name (registerTarget); the built-in ones
// are listed in bitnet/Target/InitAllTargets.h. docs/adding-a-target.md says
// what a new target touches.
//
//===----------------------------------------------------------------------===//

#ifndef BITNET_TARGET_TARGET_H
#define BITNET_TARGET_TARGET_H

#include "bitnet/Compiler/CompileOptions.h"
#include "bitnet/Target/CPU/WeightData.h"
#include "bitnet/Dialect/BitNet/IR/BitNet.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Support/LLVM.h"
#include "llvm/ADT/FunctionExtras.h"
#include "llvm/Support/Error.h"

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mlir {
class OpPassManager;
} // namespace mlir

namespace mlir::bitnet {

/// The progress a terminal shows while a long compile runs (bitnet-compile
/// without -v or -q): once the compile has run `after`, the running stage
/// and its time on one line, redrawn a few times a second, and each stage
/// that ends after that as a line of its own with its time. Quick compiles
/// print nothing. A thread redraws the line; it stops with the object.
class ProgressLine {
public:
  explicit ProgressLine(llvm::raw_ostream &os,
                        std::chrono::milliseconds after =
                            std::chrono::milliseconds(1000));
  ~ProgressLine();
  ProgressLine(const ProgressLine &) = delete;
  ProgressLine &operator=(const ProgressLine &) = delete;

  /// The stage `name` starts; stages do not nest (an inner begin is
  /// ignored until its outer stage ends).
  void begin(const llvm::Twine &name);
  void end(bool succeeded);

private:
  struct State;
  std::unique_ptr<State> state;
};

/// The progress line stages report to, or null (the default: libraries and
/// the Python module print nothing).
void setProgressLine(ProgressLine *line);
ProgressLine *getProgressLine();

/// Prints "bitnet-compile: <stage> ... done (12.3 ms)" lines to stderr when
/// enabled (bitnet-compile -v), else reports to the progress line if one is
/// set.
class StageTimer {
public:
  explicit StageTimer(bool enabled) : enabled(enabled) {}

  /// Runs `fn` as the stage `name`.
  LogicalResult step(const Twine &name,
                     llvm::function_ref<LogicalResult()> fn);
  bool isEnabled() const { return enabled; }

private:
  bool enabled;
};

/// What one compilation carries from stage to stage: the stage timer and the
/// files made on the way (objects of variant builds, weight data), which are
/// linked into the shared object and removed when the compilation ends.
class Compilation {
public:
  explicit Compilation(bool verbose);
  ~Compilation();

  /// A new temporary file named *.`suffix`, removed at the end.
  FailureOr<std::string> createTemporaryFile(Location loc, StringRef suffix);

  /// Writes `outputPath` through a temporary file beside it, renamed over
  /// it once `write` succeeds: a failed or interrupted step leaves no
  /// half-written output (a model is loaded by mapping whatever is there).
  LogicalResult writeAtomically(Location loc, StringRef outputPath,
                                function_ref<LogicalResult(StringRef)> write);

  StageTimer timer;
  /// Files to link into the shared object after the module's own object.
  std::vector<std::string> linkInputs;
  /// The weights the builds of this compilation wrote, which later builds
  /// (a model's other entries) refer to instead of writing them again.
  SharedWeights sharedWeights;

private:
  std::vector<std::string> temporaries;
};

/// A code generation target.
class TargetBackend {
public:
  virtual ~TargetBackend();

  /// The name options select it by (CompileOptions::backend).
  virtual StringRef getName() const = 0;

  /// Checks the options that concern this target: its kernels, its own
  /// options, options it does not take.
  virtual llvm::Error validate(const CompileOptions &options) const = 0;

  /// The #bitnet.target of a build with `options`.
  virtual TargetAttr getTargetAttr(MLIRContext *context,
                                   const CompileOptions &options) const = 0;

  /// Lowers `module` (bitnet and upstream ops, with its bitnet.target set)
  /// to the LLVM dialect. With `stopAfter`, stops after that stage (for
  /// --emit=mlir); a target without such a stage stops at its nearest
  /// later one.
  virtual LogicalResult lower(ModuleOp module, const CompileOptions &options,
                              std::optional<MLIRStage> stopAfter,
                              Compilation &compilation) const = 0;

  /// Writes the phase `options.emit` (llvm, obj, so or ptx) of `module` as
  /// lower() left it to `outputPath`.
  virtual LogicalResult serialize(ModuleOp module,
                                  const CompileOptions &options,
                                  StringRef outputPath,
                                  Compilation &compilation) const = 0;

  /// Runs the pipeline `build` on `module` with the pipeline options that
  /// `options` implies, completed by `configure` (kernels, GPU options).
  static LogicalResult
  runPipeline(ModuleOp module, const CompileOptions &options,
              void (*build)(OpPassManager &, const PipelineOptions &),
              llvm::function_ref<void(PipelineOptions &)> configure = {});
};

/// Registers `target` under its name; a second target of the same name
/// replaces the first.
void registerTarget(std::unique_ptr<TargetBackend> target);

/// The target registered as `name`, or null.
const TargetBackend *lookupTarget(StringRef name);

/// The names of the registered targets, sorted.
SmallVector<StringRef> getRegisteredTargetNames();

} // namespace mlir::bitnet

#endif // BITNET_TARGET_TARGET_H
