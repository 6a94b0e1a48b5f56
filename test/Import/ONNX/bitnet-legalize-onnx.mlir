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

// Tests that uint8 arithmetic uses unsigned operations on signless storage,
// and that the unsigned types of the inputs and outputs are kept for the
// model's descriptor.
// CHECK-LABEL: func.func @uint8_div
// CHECK-SAME: (%{{.*}}: tensor<4xi8> {bitnet.element_type = ui8, bitnet.name = "a"}, %{{.*}}: tensor<4xi8> {bitnet.element_type = ui8, bitnet.name = "b"}) -> tensor<4xi8>
// CHECK-SAME: attributes {bitnet.output_element_types = [ui8]}
// CHECK: arith.divui
func.func @uint8_div(%a: tensor<4xui8> {bitnet.name = "a"}, %b: tensor<4xui8> {bitnet.name = "b"}) -> tensor<*xui8> {
  %y = "onnx.Div"(%a, %b) {onnx.version = 14 : i64} : (tensor<4xui8>, tensor<4xui8>) -> tensor<*xui8>
  return %y : tensor<*xui8>
}

// -----

// Tests that Clip with scalar bounds and a float-to-int Cast (elementwise
// family) become one linalg.generic each, clamping with maximumf/minimumf.
// CHECK-LABEL: func.func @clip_cast
// CHECK-SAME: -> tensor<4xi32>
// CHECK: linalg.generic
// CHECK: arith.maximumf
// CHECK: arith.minimumf
// CHECK: linalg.generic
// CHECK: arith.fptosi {{.*}} : f32 to i32
func.func @clip_cast(%x: tensor<4xf32>) -> tensor<*xi32> {
  %lo = "onnx.Constant"() {value = dense<-1.0> : tensor<f32>, onnx.version = 13 : i64} : () -> tensor<f32>
  %hi = "onnx.Constant"() {value = dense<1.0> : tensor<f32>, onnx.version = 13 : i64} : () -> tensor<f32>
  %c = "onnx.Clip"(%x, %lo, %hi) {onnx.version = 13 : i64} : (tensor<4xf32>, tensor<f32>, tensor<f32>) -> tensor<*xf32>
  %y = "onnx.Cast"(%c) {to = 6 : i64, onnx.version = 13 : i64} : (tensor<*xf32>) -> tensor<*xi32>
  return %y : tensor<*xi32>
}

// -----

// Tests that Transpose becomes linalg.transpose and a Gather of a
// non-constant tensor reads it with tensor.extract at clamped indices
// (shape and tensor family).
// CHECK-LABEL: func.func @transpose_gather
// CHECK-SAME: -> tensor<2x2xf32>
// CHECK: %[[T:.*]] = linalg.transpose ins(%{{.*}} : tensor<2x3xf32>) outs(%{{.*}} : tensor<3x2xf32>) permutation = [1, 0]
// CHECK: linalg.generic
// CHECK: arith.maxsi
// CHECK: arith.minsi
// CHECK: tensor.extract %[[T]]
func.func @transpose_gather(%x: tensor<2x3xf32>, %i: tensor<2xi64>) -> tensor<*xf32> {
  %t = "onnx.Transpose"(%x) {perm = array<i64: 1, 0>, onnx.version = 13 : i64} : (tensor<2x3xf32>) -> tensor<*xf32>
  %g = "onnx.Gather"(%t, %i) {axis = 0 : i64, onnx.version = 13 : i64} : (tensor<*xf32>, tensor<2xi64>) -> tensor<*xf32>
  return %g : tensor<*xf32>
}

// -----

// Tests that Softmax (reduction family) subtracts the row maximum before
// exponentiating, and divides by the row sum.
// CHECK-LABEL: func.func @softmax
// CHECK-SAME: -> tensor<2x3xf32>
// CHECK: iterator_types = ["parallel", "reduction"]
// CHECK: arith.maximumf
// CHECK: arith.subf
// CHECK: math.exp
// CHECK: iterator_types = ["parallel", "reduction"]
// CHECK: arith.addf
// CHECK: arith.divf
func.func @softmax(%x: tensor<2x3xf32>) -> tensor<*xf32> {
  %y = "onnx.Softmax"(%x) {axis = -1 : i64, onnx.version = 13 : i64} : (tensor<2x3xf32>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}

// -----

// Tests that ReduceMean with keepdims sums over the axis, divides by the
// count and restores the reduced dimension.
// CHECK-LABEL: func.func @reduce_mean
// CHECK-SAME: -> tensor<2x1xf32>
// CHECK: iterator_types = ["parallel", "reduction"]
// CHECK: arith.addf
// CHECK: arith.constant 3.000000e+00 : f32
// CHECK: arith.divf
// CHECK: tensor.expand_shape {{.*}} into tensor<2x1xf32>
func.func @reduce_mean(%x: tensor<2x3xf32>) -> tensor<*xf32> {
  %y = "onnx.ReduceMean"(%x) {axes = array<i64: -1>, keepdims = 1 : i64, onnx.version = 13 : i64} : (tensor<2x3xf32>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}

// -----

// Tests that MatMul (matmul family) becomes a linalg.generic with a
// reduction over the inner dimension, accumulating from zero.
// CHECK-DAG: #[[A:.*]] = affine_map<(d0, d1, d2) -> (d0, d2)>
// CHECK-DAG: #[[B:.*]] = affine_map<(d0, d1, d2) -> (d2, d1)>
// CHECK-DAG: #[[C:.*]] = affine_map<(d0, d1, d2) -> (d0, d1)>
// CHECK-LABEL: func.func @matmul
// CHECK-SAME: -> tensor<2x4xf32>
// CHECK: linalg.fill
// CHECK: linalg.generic {indexing_maps = [#[[A]], #[[B]], #[[C]]], iterator_types = ["parallel", "parallel", "reduction"]}
// CHECK: arith.mulf
// CHECK: arith.addf
func.func @matmul(%a: tensor<2x3xf32>, %b: tensor<3x4xf32>) -> tensor<*xf32> {
  %y = "onnx.MatMul"(%a, %b) {onnx.version = 13 : i64} : (tensor<2x3xf32>, tensor<3x4xf32>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}

// -----

// Tests that QuantizeLinear to int8 rounds half to even and saturates to
// [-128, 127].
// CHECK-LABEL: func.func @quantize
// CHECK-SAME: -> tensor<4xi8>
// CHECK: arith.divf
// CHECK: math.roundeven
// CHECK: arith.constant -1.280000e+02 : f32
// CHECK: arith.constant 1.270000e+02 : f32
// CHECK: arith.fptosi {{.*}} : f32 to i8
func.func @quantize(%x: tensor<4xf32>) -> tensor<*xi8> {
  %s = "onnx.Constant"() {value = dense<0.5> : tensor<f32>, onnx.version = 13 : i64} : () -> tensor<f32>
  %z = "onnx.Constant"() {value = dense<0> : tensor<i8>, onnx.version = 13 : i64} : () -> tensor<i8>
  %y = "onnx.QuantizeLinear"(%x, %s, %z) {onnx.version = 13 : i64} : (tensor<4xf32>, tensor<f32>, tensor<i8>) -> tensor<*xi8>
  return %y : tensor<*xi8>
}

// -----

// Tests that operations of the bitnet domain become the bitnet ops of the
// same name.
// CHECK-LABEL: func.func @bitnet_domain
// CHECK: %[[N:.*]] = bitnet.rmsnorm %{{.*}}, %{{.*}} : tensor<2x8xf32>, tensor<8xf32> -> tensor<2x8xf32>
// CHECK: bitnet.squared_relu %[[N]] : tensor<2x8xf32>
func.func @bitnet_domain(%x: tensor<2x8xf32>, %g: tensor<8xf32>) -> tensor<*xf32> {
  %n = "onnx.bitnet.RMSNorm"(%x, %g) {epsilon = 1.0e-05 : f32, onnx.version = 1 : i64} : (tensor<2x8xf32>, tensor<8xf32>) -> tensor<*xf32>
  %y = "onnx.bitnet.SquaredRelu"(%n) {onnx.version = 1 : i64} : (tensor<*xf32>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}

// -----

// Tests that com.microsoft MatMulNBits with constant 2-bit codes is
// dequantised at compile time ((code 1 - zero point 2) * scale) into a float
// MatMul.
// CHECK-LABEL: func.func @matmul_nbits
// CHECK-SAME: -> tensor<1x2xf32>
// CHECK: %[[W:.*]] = arith.constant dense<{{\[}}[-5.000000e-01, -2.500000e-01],
// CHECK: linalg.generic
// CHECK-SAME: ins(%{{.*}}, %[[W]] : tensor<1x16xf32>, tensor<16x2xf32>)
// CHECK: arith.mulf
func.func @matmul_nbits(%a: tensor<1x16xf32>) -> tensor<*xf32> {
  %b = "onnx.Constant"() {value = dense<85> : tensor<2x1x4xui8>, onnx.version = 13 : i64} : () -> tensor<2x1x4xui8>
  %s = "onnx.Constant"() {value = dense<[0.5, 0.25]> : tensor<2xf32>, onnx.version = 13 : i64} : () -> tensor<2xf32>
  %y = "onnx.com.microsoft.MatMulNBits"(%a, %b, %s) {K = 16 : i64, N = 2 : i64, bits = 2 : i64, block_size = 16 : i64, onnx.version = 1 : i64} : (tensor<1x16xf32>, tensor<2x1x4xui8>, tensor<2xf32>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}
