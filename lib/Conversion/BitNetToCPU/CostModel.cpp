//===- CostModel.cpp - Choosing a CPU kernel family per layer ---*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#include "CostModel.h"
#include "KernelLowerings.h"

#include "llvm/Support/MathExtras.h"

#include <algorithm>

using namespace mlir::bitnet;

namespace {
/// Multiply-accumulates per cycle of the MAD kernel with its weights in L2:
/// one token at a time, with six tokens sharing each unpacked tile, and
/// with the codes unpacked once per call (the prefill loop). Cycles are
/// counted at the 2.1 GHz base clock.
constexpr double kMadMacsPerCycleOneToken = 87.0;
constexpr double kMadMacsPerCycleBatched = 118.0;
constexpr double kMadMacsPerCyclePrefill = 135.0;
constexpr int64_t kMadTokensPerPass = 6;
/// The LUT kernel, and its per-token quantisation and tables per 12 columns.
constexpr double kLutMacsPerCycle = 66.0;
constexpr double kLutTableCyclesPerChunk = 24.0;
/// The LUT layout's prefill loop (codes decoded once per call, then the MAD
/// prefill loop's dot products): a little below the MAD loop, whose codes
/// cost less to unpack.
constexpr double kLutUnpackedMacsPerCycle = 130.0;

/// Weight bytes per cycle one core reads from where they stay.
double bytesPerCycle(WeightResidency residency) {
  switch (residency) {
  case WeightResidency::L2:
    return 64.0;
  case WeightResidency::LastLevelCache:
    return 14.0; // about 30 GB/s at 2.1 GHz
  case WeightResidency::Memory:
    return 6.7; // about 14 GB/s
  }
  return 6.7;
}
} // namespace

KernelCostEstimate
mlir::bitnet::estimateBitLinear(int64_t m, int64_t n, int64_t k,
                                WeightResidency residency) {
  KernelCostEstimate e;
  e.madBytes = llvm::divideCeil(n, 64) * llvm::divideCeil(k, 16) * 256;
  e.lutBytes = lutWeightBytes(n, k);
  double perToken = static_cast<double>(n) * k;
  int64_t batched = m / kMadTokensPerPass * kMadTokensPerPass;
  double madCompute = batched * perToken / kMadMacsPerCycleBatched +
                      (m - batched) * perToken / kMadMacsPerCycleOneToken;
  if (madUsesPrefillLoop(m, k))
    madCompute = m * perToken / kMadMacsPerCyclePrefill;
  double lutCompute = m * perToken / kLutMacsPerCycle;
  double lutTables =
      static_cast<double>(m) * llvm::divideCeil(k, 12) * kLutTableCyclesPerChunk;
  if (lutUsesUnpackLoop(m, k)) {
    lutCompute = m * perToken / kLutUnpackedMacsPerCycle;
    lutTables = 0;
  }
  double rate = bytesPerCycle(residency);
  e.madCycles = std::max(madCompute, e.madBytes / rate);
  e.lutCycles = std::max(lutCompute, e.lutBytes / rate) + lutTables;
  return e;
}
