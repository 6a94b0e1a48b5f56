// RUN: bitnet-opt --allow-unregistered-dialect %s -split-input-file -verify-diagnostics --pass-pipeline='builtin.module(func.func(bitnet-legalize-onnx))'

// Tests that the window attributes of convolutions and pools are checked
// and reported at the node (ONNX's own shape inference divided by a zero
// stride and read past a rank-2 ConvTranspose input).

func.func @maxpool_zero_stride(%x: tensor<1x1x4x4xf32>) -> tensor<*xf32> {
  // expected-error @below {{node '' (MaxPool): attribute 'strides' has the value 0}}
  // expected-note @below {{expected values in [1, 16777216]}}
  %y = "onnx.MaxPool"(%x) {kernel_shape = array<i64: 2, 2>, strides = array<i64: 1, 0>, onnx.version = 12 : i64} : (tensor<1x1x4x4xf32>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}

// -----

func.func @avgpool_negative_pad(%x: tensor<1x1x4x4xf32>) -> tensor<*xf32> {
  // expected-error @below {{node '' (AveragePool): attribute 'pads' has the value -1}}
  // expected-note @below {{expected values in [0, 16777216]}}
  %y = "onnx.AveragePool"(%x) {kernel_shape = array<i64: 2, 2>, pads = array<i64: 0, -1, 0, 0>, onnx.version = 11 : i64} : (tensor<1x1x4x4xf32>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}

// -----

func.func @maxpool_no_kernel(%x: tensor<1x1x4x4xf32>) -> tensor<*xf32> {
  // expected-error @below {{node '' (MaxPool): attribute 'kernel_shape' is required}}
  %y = "onnx.MaxPool"(%x) {onnx.version = 12 : i64} : (tensor<1x1x4x4xf32>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}

// -----

func.func @maxpool_kernel_rank(%x: tensor<1x1x4x4xf32>) -> tensor<*xf32> {
  // expected-error @below {{node '' (MaxPool): attribute 'kernel_shape' has 1 values [2]}}
  // expected-note @below {{expected 2 values}}
  %y = "onnx.MaxPool"(%x) {kernel_shape = array<i64: 2>, onnx.version = 12 : i64} : (tensor<1x1x4x4xf32>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}

// -----

func.func @maxpool_storage_order(%x: tensor<1x1x4x4xf32>) -> tensor<*xf32> {
  // expected-error @below {{node '' (MaxPool): attribute 'storage_order' is 2}}
  // expected-note @below {{expected 0 or 1}}
  %y = "onnx.MaxPool"(%x) {kernel_shape = array<i64: 2, 2>, storage_order = 2 : i64, onnx.version = 12 : i64} : (tensor<1x1x4x4xf32>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}

// -----

func.func @pool_rank(%x: tensor<4x4xf32>) -> tensor<*xf32> {
  // expected-error @below {{node '' (AveragePool): input 0 (X) has rank 2: tensor<4x4xf32>}}
  // expected-note @below {{expected rank 3 to 8}}
  %y = "onnx.AveragePool"(%x) {kernel_shape = array<i64: 2>, onnx.version = 11 : i64} : (tensor<4x4xf32>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}

// -----

func.func @conv_window_too_large(%x: tensor<1x1x3x3xf32>, %w: tensor<1x1x5x1xf32>) -> tensor<*xf32> {
  // expected-error @below {{node '' (Conv): the window of extent 5 on spatial dimension 0 is larger than the padded input (3)}}
  // expected-note @below {{expected (kernel - 1) * dilation + 1 <= input + pads}}
  %y = "onnx.Conv"(%x, %w) {onnx.version = 11 : i64} : (tensor<1x1x3x3xf32>, tensor<1x1x5x1xf32>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}

// -----

func.func @conv_group_mismatch(%x: tensor<1x4x3x3xf32>, %w: tensor<2x4x1x1xf32>) -> tensor<*xf32> {
  // expected-error @below {{node '' (Conv): the weights tensor<2x4x1x1xf32> do not match the input tensor<1x4x3x3xf32> with group 2}}
  // expected-note @below {{expected W of shape [M, C / group, kernel...] with C and M multiples of group}}
  %y = "onnx.Conv"(%x, %w) {group = 2 : i64, onnx.version = 11 : i64} : (tensor<1x4x3x3xf32>, tensor<2x4x1x1xf32>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}

// -----

func.func @conv_zero_group(%x: tensor<1x4x3x3xf32>, %w: tensor<2x4x1x1xf32>) -> tensor<*xf32> {
  // expected-error @below {{node '' (Conv): attribute 'group' is 0}}
  // expected-note @below {{expected a group count in [1, 4] (the input channels)}}
  %y = "onnx.Conv"(%x, %w) {group = 0 : i64, onnx.version = 11 : i64} : (tensor<1x4x3x3xf32>, tensor<2x4x1x1xf32>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}

// -----

func.func @conv_bias(%x: tensor<1x4x3x3xf32>, %w: tensor<2x4x1x1xf32>, %b: tensor<3xf32>) -> tensor<*xf32> {
  // expected-error @below {{node '' (Conv): input 2 (B) is tensor<3xf32>}}
  // expected-note @below {{expected a 1-D tensor of the 2 output channels}}
  %y = "onnx.Conv"(%x, %w, %b) {onnx.version = 11 : i64} : (tensor<1x4x3x3xf32>, tensor<2x4x1x1xf32>, tensor<3xf32>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}

// -----

func.func @conv_kernel_shape(%x: tensor<1x4x3x3xf32>, %w: tensor<2x4x1x1xf32>) -> tensor<*xf32> {
  // expected-error @below {{node '' (Conv): attribute 'kernel_shape' is [3, 3]}}
  // expected-note @below {{expected the weights' kernel [1, 1]}}
  %y = "onnx.Conv"(%x, %w) {kernel_shape = array<i64: 3, 3>, onnx.version = 11 : i64} : (tensor<1x4x3x3xf32>, tensor<2x4x1x1xf32>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}

// -----

func.func @conv_auto_pad(%x: tensor<1x4x3x3xf32>, %w: tensor<2x4x1x1xf32>) -> tensor<*xf32> {
  // expected-error @below {{node '' (Conv): attribute 'auto_pad' is 'SAME'}}
  // expected-note @below {{expected NOTSET, SAME_UPPER, SAME_LOWER or VALID}}
  %y = "onnx.Conv"(%x, %w) {auto_pad = "SAME", onnx.version = 11 : i64} : (tensor<1x4x3x3xf32>, tensor<2x4x1x1xf32>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}

// -----

func.func @conv_weights_rank(%x: tensor<1x4x3x3xf32>, %w: tensor<2x4x1xf32>) -> tensor<*xf32> {
  // expected-error @below {{node '' (Conv): the weights tensor<2x4x1xf32> and the input tensor<1x4x3x3xf32> have different ranks}}
  // expected-note @below {{expected weights of the input's rank}}
  %y = "onnx.Conv"(%x, %w) {onnx.version = 11 : i64} : (tensor<1x4x3x3xf32>, tensor<2x4x1xf32>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}

// -----

func.func @convtranspose_rank2(%x: tensor<1x1xf32>, %w: tensor<1x2x3xf32>) -> tensor<*xf32> {
  // expected-error @below {{node '' (ConvTranspose): input 0 (X) has rank 2: tensor<1x1xf32>}}
  // expected-note @below {{expected rank 3 to 8}}
  %y = "onnx.ConvTranspose"(%x, %w) {onnx.version = 11 : i64} : (tensor<1x1xf32>, tensor<1x2x3xf32>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}

// -----

func.func @convtranspose_pads(%x: tensor<1x1x3xf32>, %w: tensor<1x2x3xf32>) -> tensor<*xf32> {
  // expected-error @below {{node '' (ConvTranspose): the pads [3, 2] leave no output on spatial dimension 0}}
  // expected-note @below {{expected pads smaller than the full output (5)}}
  %y = "onnx.ConvTranspose"(%x, %w) {pads = array<i64: 3, 2>, onnx.version = 11 : i64} : (tensor<1x1x3xf32>, tensor<1x2x3xf32>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}

// -----

func.func @convtranspose_output_shape(%x: tensor<1x1x3xf32>, %w: tensor<1x2x3xf32>) -> tensor<*xf32> {
  // expected-error @below {{node '' (ConvTranspose): attribute 'output_shape' is [4, 4]}}
  // expected-note @below {{expected 1 spatial sizes}}
  %y = "onnx.ConvTranspose"(%x, %w) {output_shape = array<i64: 4, 4>, onnx.version = 11 : i64} : (tensor<1x1x3xf32>, tensor<1x2x3xf32>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}

// -----

// Tests that Resize rejects what it does not implement and needs its
// scales as constants.

func.func @resize_mode(%x: tensor<1x1x2x2xf32>) -> tensor<*xf32> {
  %none = "onnx.None"() : () -> none
  %s = "onnx.Constant"() {value = dense<[1.0, 1.0, 2.0, 2.0]> : tensor<4xf32>, onnx.version = 13 : i64} : () -> tensor<4xf32>
  // expected-error @below {{node '' (Resize): mode 'area' is not supported}}
  // expected-note @below {{supported modes: nearest, linear, cubic}}
  %y = "onnx.Resize"(%x, %none, %s) {mode = "area", onnx.version = 13 : i64} : (tensor<1x1x2x2xf32>, none, tensor<4xf32>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}

// -----

func.func @resize_scales_not_constant(%x: tensor<1x1x2x2xf32>, %s: tensor<4xf32>) -> tensor<*xf32> {
  %none = "onnx.None"() : () -> none
  // expected-error @below {{node '' (Resize): input 2 (scales) is not a constant}}
  // expected-note @below {{expected a constant 1-D float tensor (compiled models need static shapes)}}
  %y = "onnx.Resize"(%x, %none, %s) {onnx.version = 13 : i64} : (tensor<1x1x2x2xf32>, none, tensor<4xf32>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}

// -----

func.func @resize_linear_integers(%x: tensor<1x1x2x2xi32>) -> tensor<*xi32> {
  %none = "onnx.None"() : () -> none
  %s = "onnx.Constant"() {value = dense<[1.0, 1.0, 2.0, 2.0]> : tensor<4xf32>, onnx.version = 13 : i64} : () -> tensor<4xf32>
  // expected-error @below {{node '' (Resize): mode 'linear' on tensor<1x1x2x2xi32> is not supported (integer tensors resize with mode 'nearest' only)}}
  %y = "onnx.Resize"(%x, %none, %s) {mode = "linear", onnx.version = 13 : i64} : (tensor<1x1x2x2xi32>, none, tensor<4xf32>) -> tensor<*xi32>
  return %y : tensor<*xi32>
}

// -----

func.func @resize_scales_count(%x: tensor<1x1x2x2xf32>) -> tensor<*xf32> {
  %none = "onnx.None"() : () -> none
  %s = "onnx.Constant"() {value = dense<[2.0, 2.0]> : tensor<2xf32>, onnx.version = 13 : i64} : () -> tensor<2xf32>
  // expected-error @below {{node '' (Resize): scales has 2 values for tensor<1x1x2x2xf32>}}
  // expected-note @below {{expected one per dimension (4)}}
  %y = "onnx.Resize"(%x, %none, %s) {onnx.version = 13 : i64} : (tensor<1x1x2x2xf32>, none, tensor<2xf32>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}

// -----

func.func @upsample_cubic(%x: tensor<1x1x2x2xf32>) -> tensor<*xf32> {
  %s = "onnx.Constant"() {value = dense<[1.0, 1.0, 2.0, 2.0]> : tensor<4xf32>, onnx.version = 13 : i64} : () -> tensor<4xf32>
  // expected-error @below {{node '' (Upsample): mode 'cubic' is not supported}}
  // expected-note @below {{supported modes: nearest, linear}}
  %y = "onnx.Upsample"(%x, %s) {mode = "cubic", onnx.version = 9 : i64} : (tensor<1x1x2x2xf32>, tensor<4xf32>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}

// -----

func.func @qlinearconv_w_scale(%x: tensor<1x2x3x3xui8>, %w: tensor<3x2x1x1xi8>, %s: tensor<f32>, %ws: tensor<2xf32>, %xz: tensor<ui8>, %wz: tensor<i8>, %yz: tensor<ui8>) -> tensor<*xui8> {
  // expected-error @below {{node '' (QLinearConv): input 4 (w_scale) is tensor<2xf32>}}
  // expected-note @below {{expected a scalar or one value per output channel}}
  %y = "onnx.QLinearConv"(%x, %s, %xz, %w, %ws, %wz, %s, %yz) {onnx.version = 10 : i64} : (tensor<1x2x3x3xui8>, tensor<f32>, tensor<ui8>, tensor<3x2x1x1xi8>, tensor<2xf32>, tensor<i8>, tensor<f32>, tensor<ui8>) -> tensor<*xui8>
  return %y : tensor<*xui8>
}

// -----

func.func @conv_no_channels(%x: tensor<1x0x3x3xf32>, %w: tensor<1x0x1x1xf32>) -> tensor<*xf32> {
  // expected-error @below {{node '' (Conv): input 0 (X) tensor<1x0x3x3xf32> has no channels}}
  // expected-note @below {{expected at least one input channel}}
  %y = "onnx.Conv"(%x, %w) {onnx.version = 11 : i64} : (tensor<1x0x3x3xf32>, tensor<1x0x1x1xf32>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}
