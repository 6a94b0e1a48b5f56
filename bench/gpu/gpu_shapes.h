//===- gpu_shapes.h - The layers of the GPU benchmark -----------*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// The bitlinear layers the GPU benchmark times, and the files
// bitnet-gpu-prepare writes for each into the prepared folder's bench/:
// <stem>.so (compiled for the GPU), <stem>.x (the input, f32, M x K) and
// <stem>.y (the scalar reference's output, f32, M x N).
//
//===----------------------------------------------------------------------===//

#ifndef BITNET_BENCH_GPU_GPU_SHAPES_H
#define BITNET_BENCH_GPU_GPU_SHAPES_H

#include <cstdint>
#include <string>

namespace bitnet::bench {

struct GPUShape {
  const char *name;
  int64_t m, n, k;
  /// File stem in the prepared folder's bench/, e.g. "linear_1x2560x2560".
  std::string stem() const {
    return "linear_" + std::to_string(m) + "x" + std::to_string(n) + "x" +
           std::to_string(k);
  }
};

// bitnet-b1.58-2B-4T: q/o projection, gate/up, down at batch 1, and q/o for a
// 128-token prefill.
constexpr GPUShape kGPUShapes[] = {{"qo", 1, 2560, 2560},
                                   {"gate_up", 1, 6912, 2560},
                                   {"down", 1, 2560, 6912},
                                   {"qo prefill", 128, 2560, 2560}};

/// The weight scale of every benchmark layer.
constexpr float kGPUWeightScale = 0.0125f;

} // namespace bitnet::bench

#endif // BITNET_BENCH_GPU_GPU_SHAPES_H
