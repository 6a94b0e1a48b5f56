// RUN: bitnet-opt --allow-unregistered-dialect %s -split-input-file --pass-pipeline='builtin.module(func.func(bitnet-recognize-bitlinear))' | FileCheck %s

// Tests that the contract's activation chain (scale 127 / m) and a weight
// whose values are {-c, 0, c} become bitnet.bitlinear with the weight as a
// ternary constant and c as its scale, and that the chain is removed.
// CHECK-LABEL: func.func @exact_scale
// CHECK-DAG: %[[W:.*]] = bitnet.constant dense<{{\[\[}}1, 0, -1, 1], [-1, 1, 0, 1]]> : tensor<2x4xi8> -> {{(!bitnet.ternary)?}}<2x4, int8>
// CHECK-DAG: %[[S:.*]] = arith.constant dense<5.000000e-01> : tensor<f32>
// CHECK: %[[Y:.*]] = bitnet.bitlinear %arg0, %[[W]] scale %[[S]] : tensor<2x4xf32>, {{(!bitnet.ternary)?}}<2x4, int8>, tensor<f32> -> tensor<2x2xf32>
// CHECK-NOT: onnx.Round
// CHECK: return %[[Y]]
func.func @exact_scale(%x: tensor<2x4xf32>) -> tensor<2x2xf32> {
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

// -----

// Tests that torch's activation scale, 127 * (1 / m), which differs from the
// contract's 127 / m in the last bit, keeps the graph's quantisation and
// replaces only the product by an exact integer one.
// CHECK-LABEL: func.func @torch_scale
// CHECK: %[[Q:.*]] = "onnx.Clip"{{.*}} -> tensor<2x4xf32>
// CHECK: %[[QI:.*]] = "onnx.Cast"(%[[Q]]) {onnx.version = 13 : i64, to = 3 : i64} : (tensor<2x4xf32>) -> tensor<2x4xi8>
// CHECK: %[[ACC:.*]] = bitnet.ternary_matmul %[[QI]], %{{.*}} : tensor<2x4xi8>, {{(!bitnet.ternary)?}}<2x4, int8> -> tensor<2x2xi32>
// CHECK: "onnx.Cast"(%[[ACC]])
// CHECK: "onnx.Mul"
// CHECK: "onnx.Div"
// CHECK-NOT: bitnet.bitlinear
func.func @torch_scale(%x: tensor<2x4xf32>) -> tensor<2x2xf32> {
  %none = "onnx.None"() : () -> none
  %eps = "onnx.Constant"() {value = dense<1.0e-05> : tensor<f32>, onnx.version = 13 : i64} : () -> tensor<f32>
  %c127 = "onnx.Constant"() {value = dense<127.0> : tensor<f32>, onnx.version = 13 : i64} : () -> tensor<f32>
  %lo = "onnx.Constant"() {value = dense<-128.0> : tensor<f32>, onnx.version = 13 : i64} : () -> tensor<f32>
  %hi = "onnx.Constant"() {value = dense<127.0> : tensor<f32>, onnx.version = 13 : i64} : () -> tensor<f32>
  %a = "onnx.Abs"(%x) {onnx.version = 13 : i64} : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %mx = "onnx.ReduceMax"(%a) {axes = array<i64: -1>, keepdims = 1 : i64, onnx.version = 13 : i64} : (tensor<2x4xf32>) -> tensor<2x1xf32>
  %m = "onnx.Clip"(%mx, %eps, %none) {onnx.version = 13 : i64} : (tensor<2x1xf32>, tensor<f32>, none) -> tensor<2x1xf32>
  %rm = "onnx.Reciprocal"(%m) {onnx.version = 13 : i64} : (tensor<2x1xf32>) -> tensor<2x1xf32>
  %s = "onnx.Mul"(%rm, %c127) {onnx.version = 14 : i64} : (tensor<2x1xf32>, tensor<f32>) -> tensor<2x1xf32>
  %xs = "onnx.Mul"(%x, %s) {onnx.version = 14 : i64} : (tensor<2x4xf32>, tensor<2x1xf32>) -> tensor<2x4xf32>
  %r = "onnx.Round"(%xs) {onnx.version = 11 : i64} : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %q = "onnx.Clip"(%r, %lo, %hi) {onnx.version = 13 : i64} : (tensor<2x4xf32>, tensor<f32>, tensor<f32>) -> tensor<2x4xf32>
  %xq = "onnx.Div"(%q, %s) {onnx.version = 14 : i64} : (tensor<2x4xf32>, tensor<2x1xf32>) -> tensor<2x4xf32>
  %w = "onnx.Constant"() {value = dense<[[0.5, -0.5], [0.0, 0.5], [-0.5, 0.0], [0.5, 0.5]]> : tensor<4x2xf32>, onnx.version = 13 : i64} : () -> tensor<4x2xf32>
  %y = "onnx.MatMul"(%xq, %w) {onnx.version = 13 : i64} : (tensor<2x4xf32>, tensor<4x2xf32>) -> tensor<2x2xf32>
  return %y : tensor<2x2xf32>
}

// -----

// Tests that a weight with more than one magnitude stays a float MatMul.
// CHECK-LABEL: func.func @not_ternary
// CHECK: "onnx.MatMul"
// CHECK-NOT: bitnet.
func.func @not_ternary(%x: tensor<2x4xf32>) -> tensor<2x2xf32> {
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
  %w = "onnx.Constant"() {value = dense<[[0.5, -0.25], [0.0, 0.5], [-0.5, 0.0], [0.5, 0.5]]> : tensor<4x2xf32>, onnx.version = 13 : i64} : () -> tensor<4x2xf32>
  %y = "onnx.MatMul"(%xq, %w) {onnx.version = 13 : i64} : (tensor<2x4xf32>, tensor<4x2xf32>) -> tensor<2x2xf32>
  return %y : tensor<2x2xf32>
}

// -----

// Tests that a chain that clamps to [-127, 127] (not the contract's
// [-128, 127]) is not taken for the contract's quantisation.
// CHECK-LABEL: func.func @wrong_clamp
// CHECK: "onnx.MatMul"
// CHECK-NOT: bitnet.bitlinear
func.func @wrong_clamp(%x: tensor<2x4xf32>) -> tensor<2x2xf32> {
  %none = "onnx.None"() : () -> none
  %eps = "onnx.Constant"() {value = dense<1.0e-05> : tensor<f32>, onnx.version = 13 : i64} : () -> tensor<f32>
  %c127 = "onnx.Constant"() {value = dense<127.0> : tensor<f32>, onnx.version = 13 : i64} : () -> tensor<f32>
  %lo = "onnx.Constant"() {value = dense<-127.0> : tensor<f32>, onnx.version = 13 : i64} : () -> tensor<f32>
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
