// RUN: bitnet-opt --allow-unregistered-dialect %s -split-input-file --bitnet-import-onnx-pipeline | FileCheck %s
// RUN: bitnet-opt --allow-unregistered-dialect %s -split-input-file --bitnet-import-onnx-pipeline=recognize-bitlinear=false | FileCheck %s --check-prefix=NO-RECOGNIZE

// Tests that the pipeline legalises the graph and cleans it up: the two
// identical Adds become one value, returned twice (bitnet-distinct-results
// copies it later, before bufferization).
// CHECK-LABEL: func.func @repeated_result
// CHECK-SAME: -> (tensor<2x3xf32>, tensor<2x3xf32>)
// CHECK-NOT: onnx.
// CHECK: %[[Y:.*]] = linalg.generic
// CHECK: arith.addf
// CHECK-NOT: linalg.generic
// CHECK: return %[[Y]], %[[Y]]
func.func @repeated_result(%a: tensor<2x3xf32>, %b: tensor<2x3xf32>) -> (tensor<*xf32>, tensor<*xf32>) {
  %y = "onnx.Add"(%a, %b) {onnx.version = 14 : i64} : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<*xf32>
  %z = "onnx.Add"(%a, %b) {onnx.version = 14 : i64} : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<*xf32>
  return %y, %z : tensor<*xf32>, tensor<*xf32>
}

// -----

// Tests that BitLinear recognition runs first: a MatMul by a constant
// {-1, 0, 1} weight times a scale, fed by the contract's per-token
// quantisation of x, becomes bitnet.bitlinear unless recognize-bitlinear is
// off.
// CHECK-LABEL: func.func @bitlinear
// CHECK: bitnet.constant
// CHECK: bitnet.bitlinear
// CHECK-NOT: onnx.
// NO-RECOGNIZE-LABEL: func.func @bitlinear
// NO-RECOGNIZE-NOT: bitnet.
// NO-RECOGNIZE: return
func.func @bitlinear(%x: tensor<2x4xf32>) -> tensor<2x2xf32> {
  %none = "onnx.None"() : () -> none
  %eps = "onnx.Constant"() {value = dense<1.0e-05> : tensor<f32>, onnx.version = 13 : i64} : () -> tensor<f32>
  %c127 = "onnx.Constant"() {value = dense<127.0> : tensor<f32>, onnx.version = 13 : i64} : () -> tensor<f32>
  %lo = "onnx.Constant"() {value = dense<-128.0> : tensor<f32>, onnx.version = 13 : i64} : () -> tensor<f32>
  %hi = "onnx.Constant"() {value = dense<127.0> : tensor<f32>, onnx.version = 13 : i64} : () -> tensor<f32>
  %a = "onnx.Abs"(%x) {onnx.version = 13 : i64} : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %mx = "onnx.ReduceMax"(%a) {axes = array<i64: -1>, keepdims = 1 : i64, onnx.version = 13 : i64} : (tensor<2x4xf32>) -> tensor<2x1xf32>
  %m = "onnx.Clip"(%mx, %eps, %none) {onnx.version = 13 : i64} : (tensor<2x1xf32>, tensor<f32>, none) -> tensor<2x1xf32>
  %s = "onnx.Div"(%c127, %m) {onnx.version = 14 : i64} : (tensor<f32>, tensor<2x1xf32>) -> tensor<2x1xf32>
  %xs = "onnx.Mul"(%x, %s) {onnx.version = 14 : i64} : (tensor<2x4xf32>, tensor<2x1xf32>) -> tensor<2x4xf32>
  %r = "onnx.Round"(%xs) {onnx.version = 11 : i64} : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %q = "onnx.Clip"(%r, %lo, %hi) {onnx.version = 13 : i64} : (tensor<2x4xf32>, tensor<f32>, tensor<f32>) -> tensor<2x4xf32>
  %xq = "onnx.Div"(%q, %s) {onnx.version = 14 : i64} : (tensor<2x4xf32>, tensor<2x1xf32>) -> tensor<2x4xf32>
  %w = "onnx.Constant"() {value = dense<[[0.5, -0.5], [0.0, 0.5], [-0.5, 0.0], [0.5, 0.5]]> : tensor<4x2xf32>, onnx.version = 13 : i64} : () -> tensor<4x2xf32>
  %y = "onnx.MatMul"(%xq, %w) {onnx.version = 13 : i64} : (tensor<2x4xf32>, tensor<4x2xf32>) -> tensor<2x2xf32>
  return %y : tensor<2x2xf32>
}

