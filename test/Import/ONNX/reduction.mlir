// RUN: bitnet-opt --allow-unregistered-dialect %s -split-input-file --pass-pipeline='builtin.module(func.func(bitnet-legalize-onnx))' | FileCheck %s

// Tests that an empty `axes` attribute reduces every dimension, as no
// `axes` does.
// CHECK-LABEL: func.func @reduce_l1_empty_axes
// CHECK-SAME: -> tensor<1x1xf32>
// CHECK: iterator_types = ["reduction", "reduction"]
// CHECK: math.absf
func.func @reduce_l1_empty_axes(%x: tensor<2x3xf32>) -> tensor<*xf32> {
  %y = "onnx.ReduceL1"(%x) {axes = array<i64>, keepdims = 1 : i64, onnx.version = 13 : i64} : (tensor<2x3xf32>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}

// -----

// Tests that ReduceLogSumExp subtracts the largest element before exp and
// adds it back after log.
// CHECK-LABEL: func.func @reduce_log_sum_exp
// CHECK-SAME: -> tensor<2xf32>
// CHECK: arith.maximumf
// CHECK: arith.subf
// CHECK: math.exp
// CHECK: math.log
// CHECK: arith.addf
func.func @reduce_log_sum_exp(%x: tensor<2x3xf32>) -> tensor<*xf32> {
  %y = "onnx.ReduceLogSumExp"(%x) {axes = array<i64: 1>, keepdims = 0 : i64, onnx.version = 13 : i64} : (tensor<2x3xf32>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}
