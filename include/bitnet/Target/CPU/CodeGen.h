//===- CodeGen.h - Machine code for CPU targets -----------------*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// From a module in the LLVM dialect to LLVM IR, an object file and a shared
// object, through LLVM's TargetMachine.
//
//===----------------------------------------------------------------------===//

#ifndef BITNET_TARGET_CPU_CODEGEN_H
#define BITNET_TARGET_CPU_CODEGEN_H

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/Error.h"

#include <memory>
#include <string>

namespace llvm {
class LLVMContext;
class Module;
class TargetMachine;
class raw_pwrite_stream;
} // namespace llvm

namespace mlir::bitnet {

/// What machine to generate code for.
struct CPUTarget {
  /// Target triple; empty means the host's.
  std::string triple;
  /// CPU name; empty means the host CPU when the triple is the host's, and
  /// "generic" otherwise.
  std::string cpu;
  /// Extra target features, e.g. "+avx512vnni,-amx-int8"; when empty and the
  /// CPU is the host's, the host's features.
  std::string features;
  /// LLVM optimisation level, 0 to 3.
  unsigned optLevel = 2;
};

/// The triple, CPU and feature string `target` resolves to.
struct ResolvedTarget {
  std::string triple, cpu, features;
  bool isHost;
};
ResolvedTarget resolveTarget(const CPUTarget &target);

/// The CPU features that code for `target` (its CPU and explicit features)
/// may use and that a loader can test, comma-separated: on x86 those of GCC's
/// __builtin_cpu_supports, on AArch64 the dot product extension (`dotprod`,
/// a Linux hwcap); empty for other architectures.
std::string getCheckableFeatures(const ResolvedTarget &target);

/// Creates a TargetMachine for `target`, or an error naming what is unknown.
llvm::Expected<std::unique_ptr<llvm::TargetMachine>>
createTargetMachine(const CPUTarget &target);

/// Translates `module` (LLVM dialect) to LLVM IR for `machine`, keeps only
/// the symbols of the model ABI external, and optimises it.
llvm::Expected<std::unique_ptr<llvm::Module>>
translateAndOptimize(ModuleOp module, llvm::LLVMContext &context,
                     llvm::TargetMachine &machine, unsigned optLevel);

/// Writes `module` as an object file.
llvm::Error emitObject(llvm::Module &module, llvm::TargetMachine &machine,
                       llvm::raw_pwrite_stream &os);

/// Links the object files `objectPaths` into the shared object `outputPath`.
/// `linker` is a compiler driver (cc, clang) or empty to pick one: `cc` for
/// the host, clang with lld for other triples.
llvm::Error linkSharedObject(ArrayRef<std::string> objectPaths,
                             llvm::StringRef outputPath,
                             const ResolvedTarget &target,
                             llvm::StringRef linker);

/// Ends the model file `path` with the integrity trailer of model_abi.h: the
/// XXH64 checksum of every byte before it, which bitnet_model_verify()
/// checks.
llvm::Error appendChecksumTrailer(llvm::StringRef path);

} // namespace mlir::bitnet

#endif // BITNET_TARGET_CPU_CODEGEN_H
