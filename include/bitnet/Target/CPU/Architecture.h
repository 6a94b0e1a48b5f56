//===- Architecture.h - What the CPU target knows of an ISA -----*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// The CPU target compiles for any architecture LLVM has; what it knows beyond
// LLVM lives in one CPUArchitecture per architecture (lib/Target/CPU/X86.cpp,
// AArch64.cpp): the CPU features a loader can check, and the kernel families
// of bitnet-lower-to-cpu-kernels the architecture runs, best first. Adding an
// architecture is one such file and one line in getCPUArchitectures().
//
//===----------------------------------------------------------------------===//

#ifndef BITNET_TARGET_CPU_ARCHITECTURE_H
#define BITNET_TARGET_CPU_ARCHITECTURE_H

#include "bitnet/Dialect/BitNet/IR/BitNet.h"

#include "mlir/Support/LLVM.h"
#include "llvm/ADT/StringRef.h"

namespace llvm {
class Triple;
} // namespace llvm

namespace mlir::bitnet {

/// The bitlinear kernels of a build: the pipeline's cpu-kernels and
/// cpu-kernel-family options.
struct KernelSelection {
  KernelISA isa = KernelISA::None;
  KernelFamily family = KernelFamily::MAD;
};

/// A kernel family as `--kernels=<name>` selects it.
struct CPUKernelChoice {
  llvm::StringLiteral name;
  KernelSelection selection;
  /// CPU features (loader names) the kernels need.
  ArrayRef<llvm::StringLiteral> needs;
  /// Where `--kernels=auto` takes this choice, the family it uses then
  /// (a LUT choice leaves the cost model to pick LUT or MAD per layer).
  KernelFamily autoFamily;
};

struct CPUArchitecture {
  llvm::StringLiteral name;
  /// Whether code for `triple` runs on this architecture.
  bool (*matches)(const llvm::Triple &triple);
  /// The CPU features a loader can test on this architecture (GCC's
  /// __builtin_cpu_supports names on x86, hwcaps on AArch64).
  ArrayRef<llvm::StringLiteral> checkableFeatures;
  /// The kernel families, best first.
  ArrayRef<CPUKernelChoice> kernels;
};

const CPUArchitecture &getX86Architecture();
const CPUArchitecture &getAArch64Architecture();

/// Every architecture the CPU target knows.
ArrayRef<const CPUArchitecture *> getCPUArchitectures();

/// The architecture of `triple`, or null for one without kernels.
const CPUArchitecture *lookupCPUArchitecture(const llvm::Triple &triple);

} // namespace mlir::bitnet

#endif // BITNET_TARGET_CPU_ARCHITECTURE_H
