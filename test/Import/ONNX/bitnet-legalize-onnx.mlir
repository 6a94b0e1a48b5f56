// RUN: bitnet-opt --allow-unregistered-dialect %s -split-input-file --pass-pipeline='builtin.module(func.func(bitnet-legalize-onnx))' | FileCheck %s

// Tests that a broadcasting Add becomes one linalg.generic reading the
// smaller operand through a broadcast map.
// CHECK-DAG: #[[ID:.*]] = affine_map<(d0, d1) -> (d0, d1)>
// CHECK-DAG: #[[ROW:.*]] = affine_map<(d0, d1) -> (d1)>
// CHECK-LABEL: func.func @add_broadcast
// CHECK: linalg.generic {indexing_maps = [#[[ID]], #[[ROW]], #[[ID]]]
// CHECK: arith.addf
func.func @add_broadcast(%a: tensor<2x3xf32>, %b: tensor<3xf32>) -> tensor<*xf32> {
  %y = "onnx.Add"(%a, %b) {onnx.version = 14 : i64} : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}

// -----

// Tests that Shape -> Gather -> Unsqueeze -> Concat folds at compile time so
// Reshape sees a constant shape, and the signature takes the computed type.
// CHECK-LABEL: func.func @shape_arithmetic
// CHECK-SAME: -> tensor<6x4xf32>
// CHECK-NOT: onnx.
// CHECK: tensor.collapse_shape
// CHECK: tensor.expand_shape
func.func @shape_arithmetic(%x: tensor<2x3x4xf32>) -> tensor<*xf32> {
  %shape = "onnx.Shape"(%x) {onnx.version = 15 : i64} : (tensor<2x3x4xf32>) -> tensor<*xi64>
  %i2 = "onnx.Constant"() {value = dense<2> : tensor<i64>, onnx.version = 13 : i64} : () -> tensor<i64>
  %last = "onnx.Gather"(%shape, %i2) {axis = 0 : i64, onnx.version = 13 : i64} : (tensor<*xi64>, tensor<i64>) -> tensor<*xi64>
  %axes = "onnx.Constant"() {value = dense<0> : tensor<1xi64>, onnx.version = 13 : i64} : () -> tensor<1xi64>
  %last1 = "onnx.Unsqueeze"(%last, %axes) {onnx.version = 13 : i64} : (tensor<*xi64>, tensor<1xi64>) -> tensor<*xi64>
  %minus1 = "onnx.Constant"() {value = dense<-1> : tensor<1xi64>, onnx.version = 13 : i64} : () -> tensor<1xi64>
  %target = "onnx.Concat"(%minus1, %last1) {axis = 0 : i64, onnx.version = 13 : i64} : (tensor<1xi64>, tensor<*xi64>) -> tensor<*xi64>
  %y = "onnx.Reshape"(%x, %target) {onnx.version = 14 : i64} : (tensor<2x3x4xf32>, tensor<*xi64>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}

// -----

// Tests that Range and ConstantOfShape on constants fold to constants.
// CHECK-LABEL: func.func @range_fill
// CHECK-DAG: arith.constant dense<[0, 2, 4]> : tensor<3xi64>
// CHECK-DAG: arith.constant dense<1.500000e+00> : tensor<2x2xf32>
func.func @range_fill() -> (tensor<*xi64>, tensor<*xf32>) {
  %s = "onnx.Constant"() {value = dense<0> : tensor<i64>, onnx.version = 13 : i64} : () -> tensor<i64>
  %l = "onnx.Constant"() {value = dense<5> : tensor<i64>, onnx.version = 13 : i64} : () -> tensor<i64>
  %d = "onnx.Constant"() {value = dense<2> : tensor<i64>, onnx.version = 13 : i64} : () -> tensor<i64>
  %r = "onnx.Range"(%s, %l, %d) {onnx.version = 11 : i64} : (tensor<i64>, tensor<i64>, tensor<i64>) -> tensor<*xi64>
  %shape = "onnx.Constant"() {value = dense<2> : tensor<2xi64>, onnx.version = 13 : i64} : () -> tensor<2xi64>
  %f = "onnx.ConstantOfShape"(%shape) {value = dense<1.5> : tensor<1xf32>, onnx.version = 9 : i64} : (tensor<2xi64>) -> tensor<*xf32>
  return %r, %f : tensor<*xi64>, tensor<*xf32>
}

// -----

// Tests that uint8 arithmetic uses unsigned operations on signless storage.
// CHECK-LABEL: func.func @uint8_div
// CHECK-SAME: (%{{.*}}: tensor<4xi8> {bitnet.name = "a"}, %{{.*}}: tensor<4xi8> {bitnet.name = "b"}) -> tensor<4xi8>
// CHECK: arith.divui
func.func @uint8_div(%a: tensor<4xui8> {bitnet.name = "a"}, %b: tensor<4xui8> {bitnet.name = "b"}) -> tensor<*xui8> {
  %y = "onnx.Div"(%a, %b) {onnx.version = 14 : i64} : (tensor<4xui8>, tensor<4xui8>) -> tensor<*xui8>
  return %y : tensor<*xui8>
}
