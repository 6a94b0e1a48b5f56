//===- CostModel.cpp - Choosing a CPU kernel family per layer ---*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#include "CostModel.h"
#include "KernelLowerings.h"

#include "bitnet/Conversion/Passes.h"

#include "llvm/Support/MathExtras.h"

#include <algorithm>

using namespace mlir::bitnet;

namespace {
/// What one core does per cycle with each family's kernels, measured with
/// the kernel benchmark, cycles counted at the clock it reports.
struct CoreRates {
  /// Multiply-accumulates per cycle of the MAD kernel with its weights in
  /// L2: one token at a time, with six tokens sharing each unpacked tile,
  /// and with the codes unpacked once per call (the prefill loop).
  double madOneToken, madBatched, madPrefill;
  /// The LUT kernel, and its per-token quantisation and tables per 12
  /// columns.
  double lutMacs, lutTableCyclesPerChunk;
  /// The LUT layout's prefill loop (codes decoded once per call, then the
  /// MAD prefill loop's dot products).
  double lutUnpacked;
  /// Weight bytes per cycle one core reads from its L2 and from the
  /// last-level cache, and from memory while each family's kernel runs.
  double l2Bytes, llcBytes, madMemoryBytes, lutMemoryBytes;
};

/// An Emerald Rapids core (2.1 GHz base clock), which stands for every CPU
/// not measured: MAD computes faster, while streaming from memory both
/// families read at about 14 GB/s and the LUT layout's fewer bytes win.
constexpr CoreRates kEmeraldRapids = {
    /*madOneToken=*/87.0,  /*madBatched=*/118.0, /*madPrefill=*/135.0,
    /*lutMacs=*/66.0,      /*lutTableCyclesPerChunk=*/24.0,
    /*lutUnpacked=*/130.0, // a little below the MAD loop: dearer codes
    /*l2Bytes=*/64.0,      /*llcBytes=*/14.0, // about 30 GB/s
    /*madMemoryBytes=*/6.7, /*lutMemoryBytes=*/6.7}; // about 14 GB/s

/// An AMD EPYC Zen 4 core (2.6 GHz as the benchmark reports it), one
/// thread, medians of three repetitions of `bitnet-kernel-bench` for the 2B
/// model's four bitlinear shapes, one token:
///  - weights in cache: MAD 405-432 GOPS, LUT 267-305;
///  - 128 tokens through 2560 x 2560: MAD 422 GOPS, the LUT layout 421;
///  - streaming (the object flushed from the caches before each call): the
///    MAD kernel, nothing prefetched ahead, read 24.1-29.3 GB/s (18.2-24.5
///    4096 bytes ahead), the LUT kernel 13.0-16.4 GB/s, against a 25.5 GB/s
///    read probe. The LUT kernel's table lookups and its loads overlap less
///    on this core: its stream is the slower one, so MAD takes the
///    one-token steps of a model streamed from memory.
/// The six-token pass was not measured there; it takes the one-token rate.
/// L2 and last-level cache rates are the Emerald Rapids core's.
constexpr CoreRates kZen4 = {
    /*madOneToken=*/82.0,  /*madBatched=*/82.0, /*madPrefill=*/81.0,
    /*lutMacs=*/60.0,      /*lutTableCyclesPerChunk=*/24.0,
    /*lutUnpacked=*/81.0,
    /*l2Bytes=*/64.0,      /*llcBytes=*/14.0,
    /*madMemoryBytes=*/10.8, /*lutMemoryBytes=*/6.2}; // 28 and 16 GB/s

constexpr int64_t kMadTokensPerPass = 6;

const CoreRates &ratesOf(llvm::StringRef chip) {
  return chip == "znver4" ? kZen4 : kEmeraldRapids;
}
} // namespace

int64_t mlir::bitnet::defaultPrefetchDistance(llvm::StringRef chip,
                                              KernelFamily family) {
  // On the Zen 4, whole 2B-model decode steps with every bitlinear layer on
  // the MAD kernel, nothing prefetched, ran 1.27x, 1.12x and 1.17x as fast
  // as the default (LUT, 4096 bytes ahead) on one thread, and 1.22x, 0.99x
  // and 1.03x on two; MAD 4096 bytes ahead only 1.10x and 0.96x, and LUT
  // with nothing ahead 0.93x and 1.03x (alternating rounds of bitnet-run).
  if (chip == "znver4" && family == KernelFamily::MAD)
    return 0;
  return 4096;
}

KernelCostEstimate
mlir::bitnet::estimateBitLinear(int64_t m, int64_t n, int64_t k,
                                WeightResidency residency,
                                llvm::StringRef chip) {
  const CoreRates &r = ratesOf(chip);
  KernelCostEstimate e;
  e.madBytes = llvm::divideCeil(n, 64) * llvm::divideCeil(k, 16) * 256;
  e.lutBytes = lutWeightBytes(n, k);
  double perToken = static_cast<double>(n) * k;
  int64_t batched = m / kMadTokensPerPass * kMadTokensPerPass;
  double madCompute = batched * perToken / r.madBatched +
                      (m - batched) * perToken / r.madOneToken;
  if (madUsesPrefillLoop(m, k))
    madCompute = m * perToken / r.madPrefill;
  double lutCompute = m * perToken / r.lutMacs;
  double lutTables =
      static_cast<double>(m) * llvm::divideCeil(k, 12) * r.lutTableCyclesPerChunk;
  if (lutUsesUnpackLoop(m, k)) {
    lutCompute = m * perToken / r.lutUnpacked;
    lutTables = 0;
  }
  double madRate = r.madMemoryBytes, lutRate = r.lutMemoryBytes;
  if (residency == WeightResidency::L2)
    madRate = lutRate = r.l2Bytes;
  else if (residency == WeightResidency::LastLevelCache)
    madRate = lutRate = r.llcBytes;
  e.madCycles = std::max(madCompute, e.madBytes / madRate);
  e.lutCycles = std::max(lutCompute, e.lutBytes / lutRate) + lutTables;
  return e;
}
