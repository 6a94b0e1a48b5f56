// RUN: bitnet-opt --allow-unregistered-dialect %s -split-input-file --pass-pipeline='builtin.module(func.func(bitnet-legalize-onnx))' | FileCheck %s

// Tests that LayerNormalization of a double X computes in f64 and returns
// Mean and InvStdDev in float (stash_type 1), shaped with 1s from the axis
// on.
// CHECK-LABEL: func.func @layernorm_f64
// CHECK-SAME: -> (tensor<2x3x4xf64>, tensor<2x1x1xf32>, tensor<2x1x1xf32>)
// CHECK: math.sqrt {{.*}} : f64
// CHECK: arith.truncf {{.*}} : f64 to f32
func.func @layernorm_f64(%x: tensor<2x3x4xf64>, %s: tensor<3x4xf64>, %b: tensor<4xf64>) -> (tensor<*xf64>, tensor<*xf32>, tensor<*xf32>) {
  %y, %m, %i = "onnx.LayerNormalization"(%x, %s, %b) {axis = 1 : i64, onnx.version = 17 : i64} : (tensor<2x3x4xf64>, tensor<3x4xf64>, tensor<4xf64>) -> (tensor<*xf64>, tensor<*xf32>, tensor<*xf32>)
  return %y, %m, %i : tensor<*xf64>, tensor<*xf32>, tensor<*xf32>
}

// -----

// Tests that NegativeLogLikelihoodLoss with int32 targets, an ignored index
// and the mean reduction gives a scalar, divided by the sum of the weights.
// CHECK-LABEL: func.func @nll_i32_mean
// CHECK-SAME: -> tensor<f32>
// CHECK: arith.cmpi eq, {{.*}} : i32
// CHECK: tensor.extract
// CHECK: arith.divf
func.func @nll_i32_mean(%x: tensor<2x3x4xf32>, %t: tensor<2x4xi32>, %w: tensor<3xf32>) -> tensor<*xf32> {
  %y = "onnx.NegativeLogLikelihoodLoss"(%x, %t, %w) {ignore_index = 1 : i64, onnx.version = 13 : i64} : (tensor<2x3x4xf32>, tensor<2x4xi32>, tensor<3xf32>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}
