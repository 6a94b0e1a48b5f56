//===- Passes.td - Conversion passes of bitnet -------------*- tablegen -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#ifndef BITNET_CONVERSION_PASSES_TD
#define BITNET_CONVERSION_PASSES_TD

include "mlir/Pass/PassBase.td"

def BitNetLowerToLinalg : Pass<"bitnet-lower-to-linalg", "::mlir::ModuleOp"> {
  let summary = "Lowers every bitnet op to linalg/arith/math/tensor (reference path)";
  let description = [{
    The reference lowering: each bitnet op becomes `linalg.generic` ops on
    tensors that compute the dialect's numerics contract literally (round half
    to even, clamps, int32 accumulation, double-precision absmean). It is
    written to be obviously right rather than fast, and is the oracle the
    optimised kernels are checked against. `!bitnet.ternary` values become
    their storage tensors, also across function signatures.

    Before:

    ```mlir
    %y = bitnet.bitlinear %x, %w scale %s : tensor<2x8xf32>, !bitnet.ternary<4x8, i2>, tensor<f32> -> tensor<2x4xf32>
    ```

    After (abridged):

    ```mlir
    %amax = linalg.generic ... ins(%x : tensor<2x8xf32>) outs(... : tensor<2xf32>)  // max |x| per token
    %q = linalg.generic ... -> tensor<2x8xi8>          // clamp(roundeven(x * 127 / amax))
    %wq = linalg.generic ... -> tensor<4x8xi8>         // unpack 2-bit codes
    %acc = linalg.generic ... -> tensor<2x4xi32>       // sum_k extsi(q) * extsi(wq)
    %y = linalg.generic ... -> tensor<2x4xf32>         // acc * s_w / s_x
    ```
  }];
  let dependentDialects = [
    "::mlir::arith::ArithDialect",
    "::mlir::linalg::LinalgDialect",
    "::mlir::math::MathDialect",
    "::mlir::tensor::TensorDialect",
  ];
}

#endif // BITNET_CONVERSION_PASSES_TD
