//===- CostModel.h - Choosing a CPU kernel family per layer ----*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// Estimates, in core cycles, what the MAD and LUT kernels of one bitlinear
// shape cost on an AVX-512 core, so that the lowering can pick one per layer.
// A kernel costs the larger of its compute and its weight traffic, at the
// rate of where the weights stay between calls: the core's L2, the
// last-level cache, or memory. The MAD kernel computes faster; the LUT
// kernel reads 17% fewer bytes and pays for its tables once per token. The
// rates were measured with the kernel benchmark (bench/kernel_benchmark.cc)
// on the cores named in CostModel.cpp, and an Emerald Rapids core's stand
// for the others: what matters is their ratio.
//
//===----------------------------------------------------------------------===//

#ifndef BITNET_CONVERSION_BITNETTOCPU_COSTMODEL_H
#define BITNET_CONVERSION_BITNETTOCPU_COSTMODEL_H

#include "llvm/ADT/StringRef.h"

#include <cstdint>

namespace mlir::bitnet {

struct KernelCostEstimate {
  /// Cycles of one call on one core, per family.
  double madCycles, lutCycles;
  /// Weight bytes each family reads per call.
  int64_t madBytes, lutBytes;
  /// Whether the LUT kernel is the cheaper one.
  bool preferLUT() const { return lutCycles < madCycles; }
};

/// Where a model's weights stay between calls.
enum class WeightResidency { L2, LastLevelCache, Memory };

/// The estimate for `m` tokens times an `n x k` ternary weight on the CPU
/// `chip` (#bitnet.target's, such as "znver4"; "" for none).
KernelCostEstimate estimateBitLinear(int64_t m, int64_t n, int64_t k,
                                     WeightResidency residency,
                                     llvm::StringRef chip);

} // namespace mlir::bitnet

#endif // BITNET_CONVERSION_BITNETTOCPU_COSTMODEL_H
