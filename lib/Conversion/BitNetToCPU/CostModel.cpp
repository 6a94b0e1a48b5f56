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
/// Multiply-accumulates per cycle of the MAD kernel: one token at a time
/// (16 vpdpbusd and 16 ANDs per 1024 on two ports, at the measured 84% of
/// that), and with six tokens sharing each unpacked tile.
constexpr double kMadMacsPerCycleOneToken = 54.0;
constexpr double kMadMacsPerCycleBatched = 100.0;
constexpr int64_t kMadTokensPerPass = 6;
/// The LUT kernel: two vpermi2b and two vpdpbusd per 192, plus the index
/// arithmetic; and its per-token tables, per 12 columns.
constexpr double kLutMacsPerCycle = 50.0;
constexpr double kLutTableCyclesPerChunk = 24.0;
/// Bytes per cycle one core streams from memory (about 14 GB/s at 2.1 GHz).
constexpr double kMemoryBytesPerCycle = 6.7;
} // namespace

KernelCostEstimate mlir::bitnet::estimateBitLinear(int64_t m, int64_t n,
                                                   int64_t k, bool cold) {
  KernelCostEstimate e;
  double macs = static_cast<double>(m) * n * k;
  e.madBytes = llvm::divideCeil(n, 64) * llvm::divideCeil(k, 16) * 256;
  e.lutBytes = lutWeightBytes(n, k);
  int64_t batched = m / kMadTokensPerPass * kMadTokensPerPass;
  double madCompute =
      static_cast<double>(batched) * n * k / kMadMacsPerCycleBatched +
      static_cast<double>(m - batched) * n * k / kMadMacsPerCycleOneToken;
  double lutCompute = macs / kLutMacsPerCycle +
                      static_cast<double>(m) * llvm::divideCeil(k, 12) *
                          kLutTableCyclesPerChunk;
  e.madCycles = madCompute;
  e.lutCycles = lutCompute;
  if (cold) {
    e.madCycles = std::max(madCompute, e.madBytes / kMemoryBytesPerCycle);
    e.lutCycles = std::max(lutCompute, e.lutBytes / kMemoryBytesPerCycle);
  }
  return e;
}
