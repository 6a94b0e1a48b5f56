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
  /// Weight rows per warp of the W2A8 kernel (bitnet-compile
  /// --gpu-gemv-rows), or 0 for the layout the compiler chooses.
  int64_t rows = 0;
  /// File stem in the prepared folder's bench/, e.g. "linear_1x2560x2560",
  /// or "linear_1x6912x2560_r8" for a forced layout.
  std::string stem() const {
    return "linear_" + std::to_string(m) + "x" + std::to_string(n) + "x" +
           std::to_string(k) + (rows ? "_r" + std::to_string(rows) : "");
  }
};

// bitnet-b1.58-2B-4T: q/o projection, gate/up, down at batch 1, and q/o for a
// 128-token prefill, in the layouts the compiler chooses; then other layouts
// of gate/up (chosen: 4 rows per warp) and of down (chosen: 2), so that the
// benchmark shows whether the chooser's model (padding and bytes in flight)
// picks the fastest.
constexpr GPUShape kGPUShapes[] = {{"qo", 1, 2560, 2560},
                                   {"gate_up", 1, 6912, 2560},
                                   {"down", 1, 2560, 6912},
                                   {"qo prefill", 128, 2560, 2560},
                                   {"gate_up", 1, 6912, 2560, 2},
                                   {"gate_up", 1, 6912, 2560, 8},
                                   {"down", 1, 2560, 6912, 8}};

/// The weight scale of every benchmark layer.
constexpr float kGPUWeightScale = 0.0125f;

} // namespace bitnet::bench

#endif // BITNET_BENCH_GPU_GPU_SHAPES_H
