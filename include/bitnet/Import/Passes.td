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

    When the activation scale is computed exactly as the contract says
    (`Div(127, m)`), the layer becomes `bitnet.bitlinear`. When it is
    computed as `127 * (1 / m)` (what `torch` does for `127.0 / m`, which
    rounds differently in the last place), the graph's own quantisation is
    kept and only the integer product is replaced, by
    `bitnet.ternary_matmul` on the graph's int8 values followed by
    `* c / s`; with `relaxed-activation-scale` such layers become
    `bitnet.bitlinear` too. `MatMulInteger` on int8 activations and an int8
    ternary initialiser becomes `bitnet.ternary_matmul`. A MatMul that
    matches nothing is left alone.

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
    Option<"relaxedActivationScale", "relaxed-activation-scale", "bool",
           /*default=*/"false",
           "Also accept 127 * (1 / m) as the activation scale (differs from "
           "the contract's 127 / m in the last bit)">,
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
