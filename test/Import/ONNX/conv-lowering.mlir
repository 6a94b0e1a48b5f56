// RUN: bitnet-opt --allow-unregistered-dialect %s -split-input-file --pass-pipeline='builtin.module(func.func(bitnet-legalize-onnx))' | FileCheck %s

// Tests that a grouped, strided, padded Conv with a bias is a padding
// gather, the bias broadcast over [N, G, M / G, O...], and one
// linalg.generic that reads the padded input at o * stride + k with the
// channels and kernel positions as reductions.
// CHECK-DAG: #[[X:.*]] = affine_map<(d0, d1, d2, d3, d4, d5, d6, d7) -> (d0, d1, d5, d3 * 2 + d6, d4 * 2 + d7)>
// CHECK-DAG: #[[W:.*]] = affine_map<(d0, d1, d2, d3, d4, d5, d6, d7) -> (d1, d2, d5, d6, d7)>
// CHECK-LABEL: func.func @conv_grouped
// CHECK-SAME: -> tensor<1x6x3x3xf32>
// CHECK: tensor.extract %arg0
// CHECK: arith.select
// CHECK: } -> tensor<1x4x7x7xf32>
// CHECK: linalg.generic {indexing_maps = [#[[X]], #[[W]], #{{.*}}], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel", "reduction", "reduction", "reduction"]}
// CHECK-SAME: ins(%{{.*}}, %{{.*}} : tensor<1x2x2x7x7xf32>, tensor<2x3x2x3x3xf32>) outs(%{{.*}} : tensor<1x2x3x3x3xf32>)
// CHECK: arith.mulf
// CHECK: arith.addf
func.func @conv_grouped(%x: tensor<1x4x5x5xf32>, %w: tensor<6x2x3x3xf32>, %b: tensor<6xf32>) -> tensor<*xf32> {
  %y = "onnx.Conv"(%x, %w, %b) {group = 2 : i64, pads = array<i64: 1, 1, 1, 1>, strides = array<i64: 2, 2>, onnx.version = 11 : i64} : (tensor<1x4x5x5xf32>, tensor<6x2x3x3xf32>, tensor<6xf32>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}

// -----

// Tests that MaxPool with its Indices output in use computes both in one
// reduction (the first maximum wins: a strict comparison), reading the
// input itself where the windows need no padding, and a tensor of the
// kernel's shape giving the kernel loops their bounds.
// CHECK-LABEL: func.func @maxpool_indices
// CHECK-SAME: -> (tensor<1x1x2x2xf32>, tensor<1x1x2x2xi64>)
// CHECK: %[[K:.*]] = tensor.empty() : tensor<2x2xi8>
// CHECK: linalg.generic {{.*}} iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction", "reduction"]
// CHECK-SAME: ins(%arg0, %[[K]] : tensor<1x1x5x5xf32>, tensor<2x2xi8>)
// CHECK: arith.cmpf ogt
// CHECK: arith.select
// CHECK: arith.select
func.func @maxpool_indices(%x: tensor<1x1x5x5xf32>) -> (tensor<*xf32>, tensor<*xi64>) {
  %y, %i = "onnx.MaxPool"(%x) {kernel_shape = array<i64: 2, 2>, strides = array<i64: 2, 2>, onnx.version = 12 : i64} : (tensor<1x1x5x5xf32>) -> (tensor<*xf32>, tensor<*xi64>)
  return %y, %i : tensor<*xf32>, tensor<*xi64>
}

// -----

// Tests that AveragePool divides by a constant of per-window counts: with
// pads and count_include_pad = 0 the corner windows count 4 positions, the
// edges 6 and the middle 9.
// CHECK-LABEL: func.func @avgpool_counts
// CHECK: arith.constant dense<{{\[\[}}4.000000e+00, 6.000000e+00, 4.000000e+00], [6.000000e+00, 9.000000e+00, 6.000000e+00], [4.000000e+00, 6.000000e+00, 4.000000e+00]]> : tensor<3x3xf32>
// CHECK: arith.divf
func.func @avgpool_counts(%x: tensor<1x1x3x3xf32>) -> tensor<*xf32> {
  %y = "onnx.AveragePool"(%x) {kernel_shape = array<i64: 3, 3>, pads = array<i64: 1, 1, 1, 1>, onnx.version = 11 : i64} : (tensor<1x1x3x3xf32>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}

// -----

// Tests that Resize applies one pass per axis that changes, with the
// source positions and weights as constants: linear upsampling by 2 of the
// last axis only (half_pixel: sources -0.25, 0.25, 0.75, 1.25, the edge
// repeated) reads positions [0, 0, 0, 1] and [0, 1, 1, 1] with weights
// [0.25, 0.75, 0.25, 0.75] and [0.75, 0.25, 0.75, 0.25].
// CHECK-LABEL: func.func @resize_linear_one_axis
// CHECK-DAG: arith.constant dense<[0, 0, 0, 1]> : tensor<4xi64>
// CHECK-DAG: arith.constant dense<[0, 1, 1, 1]> : tensor<4xi64>
// CHECK-DAG: arith.constant dense<[2.500000e-01, 7.500000e-01, 2.500000e-01, 7.500000e-01]> : tensor<4xf32>
// CHECK-DAG: arith.constant dense<[7.500000e-01, 2.500000e-01, 7.500000e-01, 2.500000e-01]> : tensor<4xf32>
// CHECK-COUNT-1: linalg.generic
// CHECK-NOT: linalg.generic
func.func @resize_linear_one_axis(%x: tensor<1x2x2xf32>) -> tensor<*xf32> {
  %none = "onnx.None"() : () -> none
  %s = "onnx.Constant"() {value = dense<[1.0, 1.0, 2.0]> : tensor<3xf32>, onnx.version = 13 : i64} : () -> tensor<3xf32>
  %y = "onnx.Resize"(%x, %none, %s) {mode = "linear", onnx.version = 13 : i64} : (tensor<1x2x2xf32>, none, tensor<3xf32>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}

// -----

// Tests Upsample-7 (scales as an attribute) and Resize-10: asymmetric
// coordinates, nearest rounded down (x / scale), integers too.
// CHECK-LABEL: func.func @upsample7
// CHECK-SAME: -> tensor<1x1x4x6xf32>
// CHECK: arith.constant dense<[0, 0, 1, 1]> : tensor<4xi64>
// CHECK: arith.constant dense<[0, 0, 0, 1, 1, 1]> : tensor<6xi64>
func.func @upsample7(%x: tensor<1x1x2x2xf32>) -> tensor<*xf32> {
  %y = "onnx.Upsample"(%x) {mode = "nearest", scales = array<f32: 1.0, 1.0, 2.0, 3.0>, onnx.version = 7 : i64} : (tensor<1x1x2x2xf32>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}

// CHECK-LABEL: func.func @resize10
// CHECK-SAME: -> tensor<1x1x3x4xi64>
// CHECK: arith.constant dense<[0, 0, 1]> : tensor<3xi64>
// CHECK: tensor.extract %arg0
func.func @resize10(%x: tensor<1x1x2x2xi64>) -> tensor<*xi64> {
  %s = "onnx.Constant"() {value = dense<[1.0, 1.0, 1.5, 2.0]> : tensor<4xf32>, onnx.version = 9 : i64} : () -> tensor<4xf32>
  %y = "onnx.Resize"(%x, %s) {mode = "nearest", onnx.version = 10 : i64} : (tensor<1x1x2x2xi64>, tensor<4xf32>) -> tensor<*xi64>
  return %y : tensor<*xi64>
}
