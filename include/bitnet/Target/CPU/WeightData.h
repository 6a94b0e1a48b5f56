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

#include <string>
#include <unordered_map>

namespace mlir::bitnet {

/// What `outlineWeightData` moved.
struct OutlinedWeights {
  int64_t globals = 0;
  int64_t bytes = 0;
  /// Of them, constants an earlier build wrote (SharedWeights).
  int64_t sharedGlobals = 0;
  int64_t sharedBytes = 0;
};

/// The constants that earlier calls of `outlineWeightData` in one
/// compilation wrote, by content: the builds of a model's entries (a
/// one-token step, an S-token step) hold the same packed weights, which the
/// shared object then carries once.
class SharedWeights {
public:
  struct Written {
    std::string symbol;
    std::string dataPath;
    uint64_t offset = 0;
    uint64_t size = 0;
    uint64_t alignment = 1;
  };

  /// The constant written before with exactly these bytes and at least this
  /// alignment, or null. The bytes are compared, not only their hash.
  const Written *find(ArrayRef<char> bytes, uint64_t alignment) const;
  void add(ArrayRef<char> bytes, Written written);

private:
  std::unordered_multimap<uint64_t, Written> byHash;
};

/// Moves the initializers of constant `llvm.mlir.global`s of at least
/// `minBytes` bytes (dense data of byte-sized elements) into `dataPath` and
/// writes `asmPath`, which defines each as `<symbolPrefix><n>` (hidden, in
/// `.rodata`, its alignment kept) from that file. The globals become
/// external declarations of those names.
///
/// With `shared`, a constant whose bytes an earlier call wrote becomes a
/// declaration of that call's symbol and is not written again; the
/// constants this call writes are added to it.
llvm::Expected<OutlinedWeights>
outlineWeightData(ModuleOp module, StringRef symbolPrefix, StringRef dataPath,
                  StringRef asmPath, int64_t minBytes = 64 * 1024,
                  SharedWeights *shared = nullptr);

} // namespace mlir::bitnet

#endif // BITNET_TARGET_CPU_WEIGHTDATA_H
