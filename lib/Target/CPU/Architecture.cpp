//===- Architecture.cpp - What the CPU target knows of an ISA ---*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#include "bitnet/Target/CPU/Architecture.h"

#include "llvm/TargetParser/Triple.h"

using namespace mlir;
using namespace mlir::bitnet;

ArrayRef<const CPUArchitecture *> mlir::bitnet::getCPUArchitectures() {
  static const CPUArchitecture *const architectures[] = {
      &getX86Architecture(),
      &getAArch64Architecture(),
  };
  return architectures;
}

const CPUArchitecture *
mlir::bitnet::lookupCPUArchitecture(const llvm::Triple &triple) {
  for (const CPUArchitecture *arch : getCPUArchitectures())
    if (arch->matches(triple))
      return arch;
  return nullptr;
}
