// RUN: bitnet-opt --allow-unregistered-dialect %s -split-input-file -verify-diagnostics --pass-pipeline='builtin.module(func.func(bitnet-legalize-onnx))'

// Tests that the indexing operations refuse, at the node, what a compiled
// model cannot do: results whose size depends on run-time values, and the
// attribute values that have no lowering.

// Tests that Compress needs its condition at compile time.
func.func @compress_runtime_condition(%x: tensor<3x2xf32>, %c: tensor<3xi1>) -> tensor<*xf32> {
  // expected-error @below {{node '' (Compress): Compress with a condition known only at run time is not supported}}
  // expected-note @below {{expected a constant condition: the result's size must be known at compile time}}
  %y = "onnx.Compress"(%x, %c) {axis = 0 : i64, onnx.version = 11 : i64} : (tensor<3x2xf32>, tensor<3xi1>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}

// -----

// Tests that NonZero is only folded: its result's size depends on the data.
func.func @nonzero_runtime(%x: tensor<2x2xi1>) -> tensor<*xi64> {
  // expected-error @below {{node '' (NonZero): NonZero of an input known only at run time is not supported}}
  // expected-note @below {{expected a constant input: the result's size must be known at compile time}}
  %y = "onnx.NonZero"(%x) {onnx.version = 13 : i64} : (tensor<2x2xi1>) -> tensor<*xi64>
  return %y : tensor<*xi64>
}

// -----

// Tests that a scatter reduction other than none, add and mul is refused.
func.func @scatter_elements_max(%d: tensor<1x5xf32>, %i: tensor<1x2xi64>, %u: tensor<1x2xf32>) -> tensor<*xf32> {
  // expected-error @below {{node '' (ScatterElements): reduction 'max' is not supported}}
  // expected-note @below {{expected none, add or mul}}
  %y = "onnx.ScatterElements"(%d, %i, %u) {axis = 1 : i64, reduction = "max", onnx.version = 16 : i64} : (tensor<1x5xf32>, tensor<1x2xi64>, tensor<1x2xf32>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}

// -----

// Tests that adding or multiplying booleans in a scatter is refused.
func.func @scatternd_bool_add(%d: tensor<4xi1>, %i: tensor<2x1xi64>, %u: tensor<2xi1>) -> tensor<*xi1> {
  // expected-error @below {{node '' (ScatterND): reduction 'add' of bool is not supported}}
  %y = "onnx.ScatterND"(%d, %i, %u) {reduction = "add", onnx.version = 16 : i64} : (tensor<4xi1>, tensor<2x1xi64>, tensor<2xi1>) -> tensor<*xi1>
  return %y : tensor<*xi1>
}

// -----

// Tests that ScatterND indices that name no coordinate (whole-tensor
// updates) are refused.
func.func @scatternd_empty_index(%d: tensor<4xf32>, %i: tensor<2x0xi64>, %u: tensor<2x4xf32>) -> tensor<*xf32> {
  // expected-error @below {{node '' (ScatterND): indices with an empty last dimension are not supported}}
  %y = "onnx.ScatterND"(%d, %i, %u) {onnx.version = 13 : i64} : (tensor<4xf32>, tensor<2x0xi64>, tensor<2x4xf32>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}

// -----

// Tests that EyeLike refuses a data type compiled models do not compute with.
func.func @eyelike_complex(%x: tensor<3x3xf32>) -> tensor<*xcomplex<f32>> {
  // expected-error @below {{node '' (EyeLike): data type 14 is not supported}}
  // expected-note @below {{expected FLOAT (1)}}
  %y = "onnx.EyeLike"(%x) {dtype = 14 : i64, onnx.version = 9 : i64} : (tensor<3x3xf32>) -> tensor<*xcomplex<f32>>
  return %y : tensor<*xcomplex<f32>>
}

// -----

// Tests that Pad's wrap mode (of later opsets) is refused.
func.func @pad_wrap(%x: tensor<3x4xf32>) -> tensor<*xf32> {
  %p = "onnx.Constant"() {value = dense<[0, 1, 0, 1]> : tensor<4xi64>, onnx.version = 13 : i64} : () -> tensor<4xi64>
  // expected-error @below {{node '' (Pad): mode 'wrap' is not supported}}
  // expected-note @below {{expected constant, reflect or edge}}
  %y = "onnx.Pad"(%x, %p) {mode = "wrap", onnx.version = 13 : i64} : (tensor<3x4xf32>, tensor<4xi64>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}

// -----

// Tests that reflect padding wider than the dimension less one (numpy
// reflects again; ONNX leaves it open) is refused.
func.func @pad_reflect_wide(%x: tensor<3x4xf32>) -> tensor<*xf32> {
  %p = "onnx.Constant"() {value = dense<[0, 4, 0, 0]> : tensor<4xi64>, onnx.version = 13 : i64} : () -> tensor<4xi64>
  // expected-error @below {{node '' (Pad): reflect padding wider than the dimension less one is not supported}}
  %y = "onnx.Pad"(%x, %p) {mode = "reflect", onnx.version = 13 : i64} : (tensor<3x4xf32>, tensor<4xi64>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}

// -----

// Tests that edge padding of a dimension the pads crop away entirely is
// refused (there is no edge to repeat).
func.func @pad_edge_empty(%x: tensor<3x2xf32>) -> tensor<*xf32> {
  %p = "onnx.Constant"() {value = dense<[0, -2, 0, 1]> : tensor<4xi64>, onnx.version = 13 : i64} : () -> tensor<4xi64>
  // expected-error @below {{node '' (Pad): edge padding of an empty dimension is not supported}}
  %y = "onnx.Pad"(%x, %p) {mode = "edge", onnx.version = 13 : i64} : (tensor<3x2xf32>, tensor<4xi64>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}

// -----

// Tests that DepthToSpace refuses a mode other than DCR and CRD.
func.func @depth_to_space_mode(%x: tensor<1x8x2x3xf32>) -> tensor<*xf32> {
  // expected-error @below {{node '' (DepthToSpace): mode 'XYZ' is not supported}}
  // expected-note @below {{expected DCR or CRD}}
  %y = "onnx.DepthToSpace"(%x) {blocksize = 2 : i64, mode = "XYZ", onnx.version = 13 : i64} : (tensor<1x8x2x3xf32>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}

// -----

// Tests that Einsum refuses an equation it cannot read.
func.func @einsum_bad_equation(%x: tensor<3x4xf64>) -> tensor<*xf64> {
  // expected-error @below {{node '' (Einsum): equation 'ij,jk->ik' does not have one term per input}}
  // expected-note @below {{expected terms of letters and at most one '...', one per input, and an output of distinct input letters}}
  %y = "onnx.Einsum"(%x) {equation = "ij,jk->ik", onnx.version = 12 : i64} : (tensor<3x4xf64>) -> tensor<*xf64>
  return %y : tensor<*xf64>
}

// -----

// Tests that a constant index out of range is reported rather than clamped.
func.func @gather_elements_bad_index(%x: tensor<2x3xf32>) -> tensor<*xf32> {
  %i = "onnx.Constant"() {value = dense<[[0, 3]]> : tensor<1x2xi64>, onnx.version = 13 : i64} : () -> tensor<1x2xi64>
  // expected-error @below {{node '' (GatherElements): gather index 3 is out of range for a dimension of size 3}}
  // expected-note @below {{expected indices in [-3, 3)}}
  %y = "onnx.GatherElements"(%x, %i) {axis = 1 : i64, onnx.version = 13 : i64} : (tensor<2x3xf32>, tensor<1x2xi64>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}
