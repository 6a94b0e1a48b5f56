// RUN: bitnet-opt --allow-unregistered-dialect %s -split-input-file -verify-diagnostics --pass-pipeline='builtin.module(func.func(bitnet-legalize-onnx))'

// Diagnostics of the elementwise and activation lowerings for the attribute
// values and operands they do not implement.

// Tests that Mod of floats without fmod = 1 (which ONNX forbids) is refused.
func.func @mod_float_not_fmod(%a: tensor<3xf32>, %b: tensor<3xf32>) -> tensor<*xf32> {
  // expected-error @below {{node '' (Mod): fmod = 0 on floats is not supported}}
  // expected-note @below {{expected fmod = 1 for float inputs (ONNX requires it)}}
  %y = "onnx.Mod"(%a, %b) {onnx.version = 13 : i64} : (tensor<3xf32>, tensor<3xf32>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}

// -----

// Tests that BitShift names its direction.
func.func @bitshift_direction(%a: tensor<3xui8>, %b: tensor<3xui8>) -> tensor<*xui8> {
  // expected-error @below {{node '' (BitShift): attribute 'direction' is UP}}
  // expected-note @below {{expected "LEFT" or "RIGHT"}}
  %y = "onnx.BitShift"(%a, %b) {direction = "UP", onnx.version = 11 : i64} : (tensor<3xui8>, tensor<3xui8>) -> tensor<*xui8>
  return %y : tensor<*xui8>
}

// -----

// Tests that BitShift takes unsigned integers only.
func.func @bitshift_signed(%a: tensor<3xi32>, %b: tensor<3xi32>) -> tensor<*xi32> {
  // expected-error @below {{node '' (BitShift): input 0 (X) has type tensor<3xi32>}}
  // expected-note @below {{expected element type ui8, ui16, ui32, ui64}}
  %y = "onnx.BitShift"(%a, %b) {direction = "LEFT", onnx.version = 11 : i64} : (tensor<3xi32>, tensor<3xi32>) -> tensor<*xi32>
  return %y : tensor<*xi32>
}

// -----

// Tests that Dropout in training mode with a ratio above 0 (random) is
// refused.
func.func @dropout_training(%x: tensor<3xf32>) -> tensor<*xf32> {
  %r = "onnx.Constant"() {value = dense<0.5> : tensor<f32>, onnx.version = 13 : i64} : () -> tensor<f32>
  %t = "onnx.Constant"() {value = dense<true> : tensor<i1>, onnx.version = 13 : i64} : () -> tensor<i1>
  // expected-error @below {{node '' (Dropout): training mode (random dropout) is not supported}}
  // expected-note @below {{expected training_mode false, or a constant ratio 0}}
  %y = "onnx.Dropout"(%x, %r, %t) {onnx.version = 13 : i64} : (tensor<3xf32>, tensor<f32>, tensor<i1>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}

// -----

// Tests that a training mode known only at run time is refused.
func.func @dropout_runtime_mode(%x: tensor<3xf32>, %t: tensor<i1>) -> tensor<*xf32> {
  %r = "onnx.None"() : () -> none
  // expected-error @below {{node '' (Dropout): input 2 (training_mode) is not a constant; a training mode known only at run time is not supported}}
  // expected-note @below {{expected a constant bool scalar}}
  %y = "onnx.Dropout"(%x, %r, %t) {onnx.version = 13 : i64} : (tensor<3xf32>, none, tensor<i1>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}

// -----

// Tests that Erf of double (no f64 expansion) is refused.
func.func @erf_double(%x: tensor<3xf64>) -> tensor<*xf64> {
  // expected-error @below {{node '' (Erf): Erf of double is not supported}}
  // expected-note @below {{expected float or float16 input}}
  %y = "onnx.Erf"(%x) {onnx.version = 13 : i64} : (tensor<3xf64>) -> tensor<*xf64>
  return %y : tensor<*xf64>
}

// -----

// Tests that PRelu's slope must broadcast to X (not X to the slope).
func.func @prelu_slope(%x: tensor<3xf32>, %s: tensor<2x3xf32>) -> tensor<*xf32> {
  // expected-error @below {{node '' (PRelu): slope tensor<2x3xf32> does not broadcast to X tensor<3xf32>}}
  // expected-note @below {{expected a slope that broadcasts to X's shape}}
  %y = "onnx.PRelu"(%x, %s) {onnx.version = 16 : i64} : (tensor<3xf32>, tensor<2x3xf32>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}

// -----

// Tests that Hardmax's axis is checked against the rank.
func.func @hardmax_axis(%x: tensor<2x3xf32>) -> tensor<*xf32> {
  // expected-error @below {{node '' (Hardmax): axis 2 is out of range for tensor<2x3xf32>}}
  // expected-note @below {{expected an axis in [-2, 2)}}
  %y = "onnx.Hardmax"(%x) {axis = 2 : i64, onnx.version = 13 : i64} : (tensor<2x3xf32>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}

// -----

// Tests that bf16, which is only moved, compared and converted, is refused
// by arithmetic.
func.func @bf16_arith(%x: tensor<3xbf16>) -> tensor<*xbf16> {
  // expected-error @below {{node '' (Elu): input 0 (X) has type tensor<3xbf16>}}
  // expected-note @below {{expected element type f32, f64, f16}}
  %y = "onnx.Elu"(%x) {onnx.version = 6 : i64} : (tensor<3xbf16>) -> tensor<*xbf16>
  return %y : tensor<*xbf16>
}
