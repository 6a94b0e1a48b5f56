//===- WeightData.h - Large constants outside the LLVM module ---*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// A model's weights are most of its bytes. Translated to LLVM IR, emitted by
// the code generator and assembled, each byte is copied and formatted
// several times, which for a 2B-parameter model takes most of the compile
// and most of its memory. Instead, the data of every large constant global
// of the LLVM dialect goes to a file as it is, and the global becomes a
// declaration; a small assembly file defines the symbols in a read-only
// section with `.incbin`, and the linker puts them in the shared object as
// before.
//
//===----------------------------------------------------------------------===//

#ifndef BITNET_TARGET_CPU_WEIGHTDATA_H
#define BITNET_TARGET_CPU_WEIGHTDATA_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Support/LLVM.h"

#include "llvm/Support/Error.h"

namespace mlir::bitnet {

/// What `outlineWeightData` moved.
struct OutlinedWeights {
  int64_t globals = 0;
  int64_t bytes = 0;
};

/// Moves the initializers of constant `llvm.mlir.global`s of at least
/// `minBytes` bytes (dense data of byte-sized elements) into `dataPath` and
/// writes `asmPath`, which defines each as `<symbolPrefix><n>` (hidden, in
/// `.rodata`, its alignment kept) from that file. The globals become
/// external declarations of those names.
llvm::Expected<OutlinedWeights>
outlineWeightData(ModuleOp module, StringRef symbolPrefix, StringRef dataPath,
                  StringRef asmPath, int64_t minBytes = 64 * 1024);

} // namespace mlir::bitnet

#endif // BITNET_TARGET_CPU_WEIGHTDATA_H
