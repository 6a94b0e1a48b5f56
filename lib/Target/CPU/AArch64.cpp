//===- AArch64.cpp - The CPU target on AArch64 -------------------*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#include "bitnet/Target/CPU/Architecture.h"

#include "llvm/TargetParser/Triple.h"

using namespace mlir;
using namespace mlir::bitnet;

namespace {
// LLVM's names; the runtime reads them from the kernel's hwcaps.
constexpr llvm::StringLiteral kCheckable[] = {"dotprod"};

constexpr llvm::StringLiteral kNEONNeeds[] = {"dotprod"};

const CPUKernelChoice kKernels[] = {
    {"neon", {KernelISA::NEON, KernelFamily::MAD}, kNEONNeeds,
     KernelFamily::MAD},
};
} // namespace

const CPUArchitecture &mlir::bitnet::getAArch64Architecture() {
  static const CPUArchitecture arch{
      "aarch64", [](const llvm::Triple &t) { return t.isAArch64(); },
      kCheckable, kKernels};
  return arch;
}
