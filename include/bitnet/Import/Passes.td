//===- Passes.td - Passes of the model importers -----------*- tablegen -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// The ONNX importer reads a model into one `func.func` whose body holds one
// generic operation per ONNX node: `onnx.<OpType>` (`onnx.<domain>.<OpType>`
// outside the default domain), with the node's attributes, the resolved
// operator version in `onnx.version`, `onnx.None` for omitted optional inputs
// and `onnx.Constant` for initialisers. These passes turn that into the
// bitnet and upstream dialects.
//
//===----------------------------------------------------------------------===//

#ifndef BITNET_IMPORT_PASSES_TD
#define BITNET_IMPORT_PASSES_TD

include "mlir/Pass/PassBase.td"

def BitNetRecognizeBitLinear
    : Pass<"bitnet-recognize-bitlinear", "::mlir::func::FuncOp"> {
  let summary = "Turns quantised ONNX MatMuls into bitnet.bitlinear";
  let description = [{
    Runs on imported ONNX graphs (generic `onnx.*` operations). A `MatMul`
    (or `com.microsoft.MatMulNBits`) becomes a BitLinear layer when both
    sides are proven, by the graph's structure and the weight's values (never
    by names), to be what the numerics contract computes:

    * the activation side is the per-token absmax chain
      `Abs -> ReduceMax(axes=[-1], keepdims) -> Clip(min=1e-5) -> 127 / m ->
      Mul x -> Round -> Clip(-128, 127) -> Div s` on the same `x` (one chain
      may feed several MatMuls);
    * the weight side evaluates at compile time to a 2-D matrix whose values
      are all in `{-c, 0, +c}` for one `c > 0`: the online chain
      `Abs -> ReduceMean -> Clip -> Reciprocal -> Mul -> Round -> Clip(-1, 1)
      -> Div` on a float initialiser, a `{-1, 0, 1}` initialiser times a scale,
      int8 ternary values through `DequantizeLinear`, or 2-bit codes of
      `MatMulNBits` with zero point 1 and one scale.

    The weight is stored once as a `bitnet.constant` of `!bitnet.ternary`
    type (shared by every layer that uses it) with scale `c`.

    Exported training code differs from the contract in ways that only move
    the last bit of a float, and the pass reads them as what the model
    deploys: the straight-through sums `x + (q - x)` (of
    `x + (q - x).detach()`, for activations and weights) as `q`; the
    activation scale `127 * (1 / m)` (what `torch` exports for `127.0 / m`)
    as the contract's `127 / m`; a weight whose nonzero values are within
    2^-16 of one magnitude `c` (a straight-through sum folded by the
    exporter) as ternary with scale `c`. Such layers become
    `bitnet.bitlinear`. With `strict-float` the graph's float arithmetic is
    followed to the last bit instead: a straight-through layer stays a float
    MatMul; a `127 * (1 / m)` scale keeps the graph's own quantisation, and
    only the integer product is replaced, by `bitnet.ternary_matmul` on the
    graph's int8 values followed by `* c / s`.

    The quantised integers may also meet the weight before the division by
    `s` (`matmul(q, w) / s * s_w`, as bitnet.cpp computes): that becomes
    `bitnet.bitlinear` too (the trailing `* s_w` stays a float multiply), or,
    under `strict-float` with a `127 * (1 / m)` scale, an exact
    `bitnet.ternary_matmul` for the MatMul alone. `Gemm` (what a 2-D
    `F.linear` with a bias exports) is recognised like MatMul, its bias
    added after the layer. `MatMulInteger` on int8 activations and an int8
    ternary initialiser becomes `bitnet.ternary_matmul`. A MatMul that
    matches nothing is left alone; with `explain`, one that looked like a
    layer gets a remark saying why it stays float (per-tensor or wrong-axis
    absmax, activations clamped to other bounds than int8's, a weight with
    more than three values, ...), and each recognised layer a remark saying
    what it became.

    Before:

    ```mlir
    %s = "onnx.Div"(%c127, %m) ...        // per-token scale of %x
    %xq = "onnx.Div"(%clipped, %s) ...
    %y = "onnx.MatMul"(%xq, %w) ...       // %w: {-0.02, 0, 0.02} values
    ```

    After:

    ```mlir
    %wt = bitnet.constant dense<...> : tensor<4x8xi8> -> !bitnet.ternary<4x8, int8>
    %y = bitnet.bitlinear %x, %wt scale %c : tensor<2x8xf32>, !bitnet.ternary<4x8, int8>, tensor<f32> -> tensor<2x4xf32>
    ```
  }];
  let options = [
    Option<"strictFloat", "strict-float", "bool", /*default=*/"false",
           "Follow the graph's float arithmetic to the last bit: no "
           "straight-through or 127 * (1 / m) reading as the contract">,
    Option<"explain", "explain", "bool", /*default=*/"false",
           "Remark at each layer what it became, and at each near miss why "
           "it stays float">,
  ];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::bitnet::BitNetDialect"];
}

def BitNetLegalizeONNX : Pass<"bitnet-legalize-onnx", "::mlir::func::FuncOp"> {
  let summary = "Lowers imported ONNX operations to linalg/tensor/arith/math";
  let description = [{
    Replaces every generic `onnx.*` operation by upstream operations on
    statically shaped tensors, in graph order, with the lowering registered
    for its op type and operator version. Result shapes are computed here
    (ONNX shape inference only supplies hints), and operations whose inputs
    are all constants and that compute shapes or integers (`Shape`, `Range`,
    `ConstantOfShape`, `Gather` of a shape, ...) are evaluated at compile
    time, so `Reshape`, `Expand` and friends see constant shapes. An
    operation without a lowering for its version, or with inputs of the wrong
    type or rank, is reported at its node with what was expected.

    Before:

    ```mlir
    %0 = "onnx.Add"(%a, %b) {onnx.version = 14 : i64} : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
    ```

    After:

    ```mlir
    %0 = linalg.generic {indexing_maps = [(d0, d1) -> (d0, d1), (d0, d1) -> (d1), ...]} ...
    ```
  }];
  let dependentDialects = [
    "::mlir::arith::ArithDialect",
    "::mlir::linalg::LinalgDialect",
    "::mlir::math::MathDialect",
    "::mlir::tensor::TensorDialect",
    "::mlir::bitnet::BitNetDialect",
  ];
}

#endif // BITNET_IMPORT_PASSES_TD
