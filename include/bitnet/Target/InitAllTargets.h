//===- InitAllTargets.h - Registers the built-in targets --------*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// One line per target: a new target adds its registration function here.
//
//===----------------------------------------------------------------------===//

#ifndef BITNET_TARGET_INITALLTARGETS_H
#define BITNET_TARGET_INITALLTARGETS_H

namespace mlir::bitnet {

/// CPUs through LLVM's TargetMachine (lib/Target/CPU).
void registerCPUTarget();
/// NVIDIA GPUs through NVVM and PTX (lib/Target/NVPTX).
void registerNVPTXTarget();

/// Registers every built-in target (once; later calls do nothing).
inline void registerAllTargets() {
  static bool registered = [] {
    registerCPUTarget();
    registerNVPTXTarget();
    return true;
  }();
  (void)registered;
}

} // namespace mlir::bitnet

#endif // BITNET_TARGET_INITALLTARGETS_H
