//===- CostModel.h - Choosing a CPU kernel family per layer ----*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// Estimates, in core cycles, what the MAD and LUT kernels of one bitlinear
// shape cost on an AVX-512 core, so that the lowering can pick one per layer.
// A kernel costs the larger of its compute and, when the weights stream from
// memory, of its weight traffic. The rates were measured on an Emerald
// Rapids core (2.1 GHz) with the kernel benchmark (bench/kernel_benchmark.cc):
// what matters is their ratio, not the clock.
//
//===----------------------------------------------------------------------===//

#ifndef BITNET_CONVERSION_BITNETTOCPU_COSTMODEL_H
#define BITNET_CONVERSION_BITNETTOCPU_COSTMODEL_H

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

/// The estimate for `m` tokens times an `n x k` ternary weight whose bytes
/// come from memory (`cold`) or from cache.
KernelCostEstimate estimateBitLinear(int64_t m, int64_t n, int64_t k,
                                     bool cold);

} // namespace mlir::bitnet

#endif // BITNET_CONVERSION_BITNETTOCPU_COSTMODEL_H
