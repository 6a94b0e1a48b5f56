// RUN: bitnet-opt --allow-unregistered-dialect %s -split-input-file -verify-diagnostics --pass-pipeline='builtin.module(func.func(bitnet-legalize-onnx))'

// Tests that BatchNormalization in training mode (batch statistics, running
// statistics updated) is refused: compiled models run inference.
func.func @batchnorm_training(%x: tensor<2x3x4xf32>, %s: tensor<3xf32>, %b: tensor<3xf32>, %m: tensor<3xf32>, %v: tensor<3xf32>) -> tensor<*xf32> {
  // expected-error @below {{node '' (BatchNormalization): training_mode=1 is not supported}}
  // expected-note @below {{expected inference mode (training_mode=0)}}
  %y = "onnx.BatchNormalization"(%x, %s, %b, %m, %v) {training_mode = 1 : i64, onnx.version = 15 : i64} : (tensor<2x3x4xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}

// -----

// Tests that BatchNormalization-7 with statistics per element (spatial=0)
// is refused.
func.func @batchnorm_not_spatial(%x: tensor<2x3x4xf32>, %s: tensor<3xf32>, %b: tensor<3xf32>, %m: tensor<3xf32>, %v: tensor<3xf32>) -> tensor<*xf32> {
  // expected-error @below {{node '' (BatchNormalization): spatial=0 is not supported}}
  // expected-note @below {{expected statistics per channel (spatial=1)}}
  %y = "onnx.BatchNormalization"(%x, %s, %b, %m, %v) {spatial = 0 : i64, onnx.version = 7 : i64} : (tensor<2x3x4xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}

// -----

// Tests that a BatchNormalization parameter that is not one value per
// channel is reported with the shape expected.
func.func @batchnorm_param_shape(%x: tensor<2x3x4xf32>, %s: tensor<4xf32>, %b: tensor<3xf32>, %m: tensor<3xf32>, %v: tensor<3xf32>) -> tensor<*xf32> {
  // expected-error @below {{node '' (BatchNormalization): input 1 (scale) is tensor<4xf32>}}
  // expected-note @below {{expected a tensor<3x...> (one value per channel of tensor<2x3x4xf32>)}}
  %y = "onnx.BatchNormalization"(%x, %s, %b, %m, %v) {onnx.version = 15 : i64} : (tensor<2x3x4xf32>, tensor<4xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}

// -----

// Tests that LayerNormalization with statistics in another type than float
// is refused.
func.func @layernorm_stash_type(%x: tensor<2x3xf32>, %s: tensor<3xf32>) -> tensor<*xf32> {
  // expected-error @below {{node '' (LayerNormalization): stash_type 11 is not supported}}
  // expected-note @below {{expected 1 (FLOAT)}}
  %y = "onnx.LayerNormalization"(%x, %s) {stash_type = 11 : i64, onnx.version = 17 : i64} : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}

// -----

// Tests that a LayerNormalization scale that does not broadcast to X is
// reported.
func.func @layernorm_scale_shape(%x: tensor<2x3xf32>, %s: tensor<2xf32>) -> tensor<*xf32> {
  // expected-error @below {{node '' (LayerNormalization): input 1 (Scale) is tensor<2xf32>}}
  // expected-note @below {{expected a shape that broadcasts to tensor<2x3xf32>}}
  %y = "onnx.LayerNormalization"(%x, %s) {onnx.version = 17 : i64} : (tensor<2x3xf32>, tensor<2xf32>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}

// -----

// Tests that a loss reduction other than none, sum and mean is refused.
func.func @nll_reduction(%x: tensor<2x3xf32>, %t: tensor<2xi64>) -> tensor<*xf32> {
  // expected-error @below {{node '' (NegativeLogLikelihoodLoss): reduction 'max' is not supported}}
  // expected-note @below {{expected none, sum or mean}}
  %y = "onnx.NegativeLogLikelihoodLoss"(%x, %t) {reduction = "max", onnx.version = 13 : i64} : (tensor<2x3xf32>, tensor<2xi64>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}

// -----

// Tests that a loss target whose shape is not the input's without the
// class dimension is reported.
func.func @sce_target_shape(%x: tensor<2x3x4xf32>, %t: tensor<2x3xi64>) -> tensor<*xf32> {
  // expected-error @below {{node '' (SoftmaxCrossEntropyLoss): input 1 (target) is tensor<2x3xi64>}}
  // expected-note @below {{expected the shape of tensor<2x3x4xf32> without its class dimension (1)}}
  %y = "onnx.SoftmaxCrossEntropyLoss"(%x, %t) {onnx.version = 13 : i64} : (tensor<2x3x4xf32>, tensor<2x3xi64>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}

// -----

// Tests that LRN without a window size is reported.
func.func @lrn_size(%x: tensor<1x3x2x2xf32>) -> tensor<*xf32> {
  // expected-error @below {{node '' (LRN): attribute 'size' is 0}}
  // expected-note @below {{expected a window size of 1 or more}}
  %y = "onnx.LRN"(%x) {onnx.version = 13 : i64} : (tensor<1x3x2x2xf32>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}
