// RUN: bitnet-opt --allow-unregistered-dialect %s -split-input-file -verify-diagnostics --pass-pipeline='builtin.module(func.func(bitnet-legalize-onnx))'

// Tests that an operation without a lowering is reported at the node with
// the list of supported operations, built from the op table (sorted, the
// default domain first, then each other domain).
func.func @unknown_op(%x: tensor<2x3xf32>) -> tensor<*xf32> {
  // expected-error @below {{node '' (LpNormalization): operator LpNormalization version 1 is not supported}}
  // expected-note @below {{the ONNX importer supports: Abs, }}
  %y = "onnx.LpNormalization"(%x) {onnx.version = 1 : i64} : (tensor<2x3xf32>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}

// -----

// Tests that an operator version without a lowering is reported with the
// versions that have one.
func.func @unsupported_version(%x: tensor<2x3xf32>) -> tensor<*xf32> {
  // expected-error @below {{node '' (Softmax): operator Softmax version 11 is not supported}}
  // expected-note @below {{supported versions of Softmax: 13}}
  %y = "onnx.Softmax"(%x) {onnx.version = 11 : i64} : (tensor<2x3xf32>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}

// -----

// Tests that a bad attribute is reported at the node with what was expected.
func.func @softmax_axis(%x: tensor<2x3xf32>) -> tensor<*xf32> {
  // expected-error @below {{node '' (Softmax): axis 2 is out of range for tensor<2x3xf32>}}
  // expected-note @below {{expected an axis in [-rank, rank)}}
  %y = "onnx.Softmax"(%x) {axis = 2 : i64, onnx.version = 13 : i64} : (tensor<2x3xf32>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}

// -----

// Tests that a Cast to a type compiled models do not compute with
// (COMPLEX64) is refused with the list of supported targets.
func.func @cast_complex(%x: tensor<4xi32>) -> tensor<*xcomplex<f32>> {
  // expected-error @below {{node '' (Cast): cast to data type 14 is not supported}}
  // expected-note @below {{expected FLOAT (1), UINT8 (2), INT8 (3), UINT16 (4), INT16 (5), INT32 (6), INT64 (7), BOOL (9), FLOAT16 (10), DOUBLE (11), UINT32 (12), UINT64 (13) or BFLOAT16 (16)}}
  %y = "onnx.Cast"(%x) {to = 14 : i64, onnx.version = 13 : i64} : (tensor<4xi32>) -> tensor<*xcomplex<f32>>
  return %y : tensor<*xcomplex<f32>>
}

// -----

// Tests that a Cast to STRING of a constant is refused the same way rather
// than folded on the host.
func.func @cast_string_constant() -> tensor<*xf32> {
  %c = "onnx.Constant"() {value = dense<[1, 2]> : tensor<2xi32>, onnx.version = 13 : i64} : () -> tensor<2xi32>
  // expected-error @below {{node '' (Cast): cast to data type 8 is not supported}}
  // expected-note @below {{expected FLOAT (1), UINT8 (2), INT8 (3), UINT16 (4), INT16 (5), INT32 (6), INT64 (7), BOOL (9), FLOAT16 (10), DOUBLE (11), UINT32 (12), UINT64 (13) or BFLOAT16 (16)}}
  %y = "onnx.Cast"(%c) {to = 8 : i64, onnx.version = 13 : i64} : (tensor<2xi32>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}
