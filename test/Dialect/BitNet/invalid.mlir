// RUN: bitnet-opt %s -split-input-file -verify-diagnostics

//===----------------------------------------------------------------------===//
// !bitnet.ternary
//===----------------------------------------------------------------------===//

// Tests that a ternary matrix of three dimensions is rejected.
// expected-error @below {{expected a 2-D shape ROWSxCOLS, got 3 dimension(s)}}
func.func private @ternary_3d(!bitnet.ternary<2x3x4, i2>)

// -----

// Tests that a ternary matrix of one dimension is rejected.
// expected-error @below {{expected a 2-D shape ROWSxCOLS, got 1 dimension(s)}}
func.func private @ternary_1d(!bitnet.ternary<8, i2>)

// -----

// Tests that a dynamic extent is rejected: a ternary matrix is static.
// expected-error @below {{expected static shape}}
func.func private @ternary_dynamic(!bitnet.ternary<?x8, i2>)

// -----

// Tests that a zero extent is rejected by the type verifier.
// expected-error @below {{ternary matrix extents must be positive, got 0x8}}
func.func private @ternary_zero_rows(!bitnet.ternary<0x8, i2>)

// -----

// Tests that a zero number of columns is rejected by the type verifier.
// expected-error @below {{ternary matrix extents must be positive, got 4x0}}
func.func private @ternary_zero_cols(!bitnet.ternary<4x0, int8>)

// -----

// Tests that an unknown storage format is rejected with the known ones listed.
// expected-error @below {{expected one of [int8, i2, base3] for storage format of ternary values, got: i4}}
func.func private @ternary_unknown_format(!bitnet.ternary<4x8, i4>)

// -----

// Tests that an unknown layout is rejected with the known ones listed.
// expected-error @below {{expected one of [row_major] for arrangement of packed ternary bytes, got: col_major}}
func.func private @ternary_unknown_layout(!bitnet.ternary<4x8, i2, col_major>)

// -----

// Tests that the format must follow the shape after a comma.
// expected-error @below {{expected ','}}
func.func private @ternary_missing_comma(!bitnet.ternary<4x8 i2>)

// -----

// Tests that a tensor-like element type suffix is not a ternary shape.
// expected-error @below {{invalid dimension}}
func.func private @ternary_element_suffix(!bitnet.ternary<4x8xi2>)

// -----

// Tests that at most one layout follows the format.
// expected-error @below {{expected '>'}}
func.func private @ternary_two_layouts(!bitnet.ternary<4x8, int8, row_major, row_major>)

//===----------------------------------------------------------------------===//
// bitnet.quantize_activations
//===----------------------------------------------------------------------===//

// -----

// Tests that a scalar has no token to quantise.
func.func @quantize_scalar(%x: tensor<f32>) {
  // expected-error @below {{'bitnet.quantize_activations' op input must have rank >= 1, got a scalar}}
  %q, %s = bitnet.quantize_activations %x : tensor<f32> -> tensor<i8>, tensor<f32>
  return
}

// -----

// Tests that the quantised tensor must have the input's shape.
func.func @quantize_shape(%x: tensor<4x256xf32>) {
  // expected-error @below {{'bitnet.quantize_activations' op quantized shape 4x128 must equal the input shape 4x256}}
  %q, %s = bitnet.quantize_activations %x : tensor<4x256xf32> -> tensor<4x128xi8>, tensor<4xf32>
  return
}

// -----

// Tests that the scale has one value per token.
func.func @quantize_scale_shape(%x: tensor<?x256xf32>) {
  // expected-error @below {{'bitnet.quantize_activations' op scale shape 4x256 must be the input shape without its last dimension (?)}}
  %q, %s = bitnet.quantize_activations %x : tensor<?x256xf32> -> tensor<?x256xi8>, tensor<4x256xf32>
  return
}

// -----

// Tests that only f32 activations are accepted.
func.func @quantize_f16(%x: tensor<4x256xf16>) {
  // expected-error @below {{'bitnet.quantize_activations' op operand #0 must be ranked tensor of 32-bit float values, but got 'tensor<4x256xf16>'}}
  %q, %s = bitnet.quantize_activations %x : tensor<4x256xf16> -> tensor<4x256xi8>, tensor<4xf32>
  return
}

// -----

// Tests that the quantised tensor is int8.
func.func @quantize_i32_result(%x: tensor<4x256xf32>) {
  // expected-error @below {{'bitnet.quantize_activations' op result #0 must be ranked tensor of 8-bit signless integer values, but got 'tensor<4x256xi32>'}}
  %q, %s = bitnet.quantize_activations %x : tensor<4x256xf32> -> tensor<4x256xi32>, tensor<4xf32>
  return
}

//===----------------------------------------------------------------------===//
// bitnet.ternarize
//===----------------------------------------------------------------------===//

// -----

// Tests that the ternary tensor must have the input's shape.
func.func @ternarize_shape(%w: tensor<4x8xf32>) {
  // expected-error @below {{'bitnet.ternarize' op ternary shape 8x4 must equal the input shape 4x8}}
  %q, %s = bitnet.ternarize %w : tensor<4x8xf32> -> tensor<8x4xi8>, tensor<f32>
  return
}

// -----

// Tests that the weight scale is one value for the whole tensor.
func.func @ternarize_scale_rank(%w: tensor<4x8xf32>) {
  // expected-error @below {{'bitnet.ternarize' op result #1 must be 0D tensor of 32-bit float values, but got 'tensor<4xf32>'}}
  %q, %s = bitnet.ternarize %w : tensor<4x8xf32> -> tensor<4x8xi8>, tensor<4xf32>
  return
}

// -----

// Tests that only f32 weights are ternarised.
func.func @ternarize_bf16(%w: tensor<4x8xbf16>) {
  // expected-error @below {{'bitnet.ternarize' op operand #0 must be ranked tensor of 32-bit float values, but got 'tensor<4x8xbf16>'}}
  %q, %s = bitnet.ternarize %w : tensor<4x8xbf16> -> tensor<4x8xi8>, tensor<f32>
  return
}

//===----------------------------------------------------------------------===//
// bitnet.pack / bitnet.unpack
//===----------------------------------------------------------------------===//

// -----

// Tests that a constant pack input must be ternary: int8 codes that were
// never ternarised are refused, not clamped, and a splat too.
func.func @pack_not_ternary() -> !bitnet.ternary<2x3, int8> {
  %w = arith.constant dense<[[1, 0, -1], [0, 5, 0]]> : tensor<2x3xi8>
  // expected-error @below {{'bitnet.pack' op input holds 5 at [1, 1]; a ternary matrix holds only -1, 0 and 1}}
  %p = bitnet.pack %w : tensor<2x3xi8> -> !bitnet.ternary<2x3, int8>
  return %p : !bitnet.ternary<2x3, int8>
}

// -----

func.func @pack_splat_not_ternary() -> !bitnet.ternary<4x8, i2> {
  %w = arith.constant dense<-2> : tensor<4x8xi8>
  // expected-error @below {{'bitnet.pack' op input holds -2 at [0, 0]}}
  %p = bitnet.pack %w : tensor<4x8xi8> -> !bitnet.ternary<4x8, i2>
  return %p : !bitnet.ternary<4x8, i2>
}

// -----

// Tests that pack takes a matrix.
func.func @pack_rank(%w: tensor<2x4x8xi8>) {
  // expected-error @below {{'bitnet.pack' op input must be a 2-D matrix, got rank 3}}
  %p = bitnet.pack %w : tensor<2x4x8xi8> -> !bitnet.ternary<4x8, i2>
  return
}

// -----

// Tests that pack's input must have the ternary matrix's shape.
func.func @pack_shape(%w: tensor<?x7xi8>) {
  // expected-error @below {{'bitnet.pack' op input shape ?x7 does not match the ternary matrix 4x8}}
  %p = bitnet.pack %w : tensor<?x7xi8> -> !bitnet.ternary<4x8, i2>
  return
}

// -----

// Tests that pack takes int8 values.
func.func @pack_i32(%w: tensor<4x8xi32>) {
  // expected-error @below {{'bitnet.pack' op operand #0 must be ranked tensor of 8-bit signless integer values, but got 'tensor<4x8xi32>'}}
  %p = bitnet.pack %w : tensor<4x8xi32> -> !bitnet.ternary<4x8, i2>
  return
}

// -----

// Tests that pack produces a ternary matrix, not its storage tensor.
func.func @pack_to_tensor(%w: tensor<4x8xi8>) {
  // expected-error @below {{'bitnet.pack' op result #0 must be a ternary weight matrix and how it is stored, but got 'tensor<4x2xi8>'}}
  %p = "bitnet.pack"(%w) : (tensor<4x8xi8>) -> tensor<4x2xi8>
  return
}

// -----

// Tests that unpack produces a matrix.
func.func @unpack_rank(%p: !bitnet.ternary<4x8, base3>) {
  // expected-error @below {{'bitnet.unpack' op result must be a 2-D matrix, got rank 1}}
  %w = bitnet.unpack %p : !bitnet.ternary<4x8, base3> -> tensor<32xi8>
  return
}

// -----

// Tests that unpack's result must have the ternary matrix's shape.
func.func @unpack_shape(%p: !bitnet.ternary<4x8, base3>) {
  // expected-error @below {{'bitnet.unpack' op result shape 8x4 does not match the ternary matrix 4x8}}
  %w = bitnet.unpack %p : !bitnet.ternary<4x8, base3> -> tensor<8x4xi8>
  return
}

// -----

// Tests that unpack reads a ternary matrix, not a tensor of bytes.
func.func @unpack_from_tensor(%p: tensor<4x2xi8>) {
  // expected-error @below {{'bitnet.unpack' op operand #0 must be a ternary weight matrix and how it is stored, but got 'tensor<4x2xi8>'}}
  %w = "bitnet.unpack"(%p) : (tensor<4x2xi8>) -> tensor<4x8xi8>
  return
}

//===----------------------------------------------------------------------===//
// bitnet.constant
//===----------------------------------------------------------------------===//

// -----

// Tests that i2 storage holds ceildiv(K, 4) bytes per row, not one per value.
func.func @constant_storage_i2() {
  // expected-error @below {{'bitnet.constant' op storage type 'tensor<2x8xi8>' does not match '!bitnet.ternary<2x8, i2>', whose storage is 'tensor<2x2xi8>'}}
  %w = bitnet.constant dense<0> : tensor<2x8xi8> -> !bitnet.ternary<2x8, i2>
  return
}

// -----

// Tests that base3 storage holds ceildiv(K, 5) bytes per row.
func.func @constant_storage_base3() {
  // expected-error @below {{'bitnet.constant' op storage type 'tensor<2x1xi8>' does not match '!bitnet.ternary<2x7, base3>', whose storage is 'tensor<2x2xi8>'}}
  %w = bitnet.constant dense<121> : tensor<2x1xi8> -> !bitnet.ternary<2x7, base3>
  return
}

// -----

// Tests that storage must be bytes, not wider integers.
func.func @constant_storage_i32() {
  // expected-error @below {{'bitnet.constant' op storage type 'tensor<2x3xi32>' does not match '!bitnet.ternary<2x3, int8>', whose storage is 'tensor<2x3xi8>'}}
  %w = bitnet.constant dense<0> : tensor<2x3xi32> -> !bitnet.ternary<2x3, int8>
  return
}

// -----

// Tests that an int8 byte outside [-1, 1] is not a ternary value.
func.func @constant_invalid_int8() {
  // expected-error @below {{'bitnet.constant' op storage holds a byte that is not a valid int8 encoding}}
  %w = bitnet.constant dense<[[1, 0, 2]]> : tensor<1x3xi8> -> !bitnet.ternary<1x3, int8>
  return
}

// -----

// Tests that the i2 code 3 is not a ternary value (0xFF holds four of them).
func.func @constant_invalid_i2() {
  // expected-error @below {{'bitnet.constant' op storage holds a byte that is not a valid i2 encoding}}
  %w = bitnet.constant dense<[[85, -1]]> : tensor<1x2xi8> -> !bitnet.ternary<1x8, i2>
  return
}

// -----

// Tests that a base3 byte above 242 (3^5 - 1) is not a valid encoding.
func.func @constant_invalid_base3() {
  // expected-error @below {{'bitnet.constant' op storage holds a byte that is not a valid base3 encoding}}
  %w = bitnet.constant dense<[[121, -13]]> : tensor<1x2xi8> -> !bitnet.ternary<1x10, base3>
  return
}

// -----

// Tests that the storage must be an elements attribute.
func.func @constant_not_elements() {
  // expected-error @below {{'bitnet.constant' op attribute 'storage' failed to satisfy constraint: constant vector/tensor attribute}}
  %w = "bitnet.constant"() {storage = 1 : i8} : () -> !bitnet.ternary<1x1, int8>
  return
}

//===----------------------------------------------------------------------===//
// bitnet.ternary_matmul
//===----------------------------------------------------------------------===//

// -----

// Tests that ternary_matmul needs at least one feature dimension.
func.func @matmul_scalar(%x: tensor<i8>, %w: !bitnet.ternary<4x8, i2>) {
  // expected-error @below {{'bitnet.ternary_matmul' op input must have rank >= 1, got a scalar}}
  %y = bitnet.ternary_matmul %x, %w : tensor<i8>, !bitnet.ternary<4x8, i2> -> tensor<4xi32>
  return
}

// -----

// Tests that the input's features must be the weight's columns.
func.func @matmul_features(%x: tensor<2x16xi8>, %w: !bitnet.ternary<4x8, i2>) {
  // expected-error @below {{'bitnet.ternary_matmul' op input has 16 features but the weight '!bitnet.ternary<4x8, i2>' expects 8}}
  %y = bitnet.ternary_matmul %x, %w : tensor<2x16xi8>, !bitnet.ternary<4x8, i2> -> tensor<2x4xi32>
  return
}

// -----

// Tests that the result keeps the leading dimensions and ends in N.
func.func @matmul_result_shape(%x: tensor<?x3x8xi8>, %w: !bitnet.ternary<4x8, i2>) {
  // expected-error @below {{'bitnet.ternary_matmul' op result shape ?x4 does not match expected ?x3x4}}
  %y = bitnet.ternary_matmul %x, %w : tensor<?x3x8xi8>, !bitnet.ternary<4x8, i2> -> tensor<?x4xi32>
  return
}

// -----

// Tests that the accumulator is int32.
func.func @matmul_i64(%x: tensor<2x8xi8>, %w: !bitnet.ternary<4x8, i2>) {
  // expected-error @below {{'bitnet.ternary_matmul' op result #0 must be ranked tensor of 32-bit signless integer values, but got 'tensor<2x4xi64>'}}
  %y = bitnet.ternary_matmul %x, %w : tensor<2x8xi8>, !bitnet.ternary<4x8, i2> -> tensor<2x4xi64>
  return
}

// -----

// Tests that ternary_matmul takes int8 activations.
func.func @matmul_f32_input(%x: tensor<2x8xf32>, %w: !bitnet.ternary<4x8, i2>) {
  // expected-error @below {{'bitnet.ternary_matmul' op operand #0 must be ranked tensor of 8-bit signless integer values, but got 'tensor<2x8xf32>'}}
  %y = bitnet.ternary_matmul %x, %w : tensor<2x8xf32>, !bitnet.ternary<4x8, i2> -> tensor<2x4xi32>
  return
}

//===----------------------------------------------------------------------===//
// bitnet.bitlinear
//===----------------------------------------------------------------------===//

// -----

// Tests that bitlinear needs at least one feature dimension.
func.func @bitlinear_scalar(%x: tensor<f32>, %w: !bitnet.ternary<4x8, int8>, %s: tensor<f32>) {
  // expected-error @below {{'bitnet.bitlinear' op input must have rank >= 1, got a scalar}}
  %y = bitnet.bitlinear %x, %w scale %s : tensor<f32>, !bitnet.ternary<4x8, int8>, tensor<f32> -> tensor<4xf32>
  return
}

// -----

// Tests that the input's features must be the weight's columns.
func.func @bitlinear_features(%x: tensor<2x7xf32>, %w: !bitnet.ternary<4x8, base3>, %s: tensor<f32>) {
  // expected-error @below {{'bitnet.bitlinear' op input has 7 features but the weight '!bitnet.ternary<4x8, base3>' expects 8}}
  %y = bitnet.bitlinear %x, %w scale %s : tensor<2x7xf32>, !bitnet.ternary<4x8, base3>, tensor<f32> -> tensor<2x4xf32>
  return
}

// -----

// Tests that the result has N outputs per token.
func.func @bitlinear_result_shape(%x: tensor<2x8xf32>, %w: !bitnet.ternary<4x8, i2>, %s: tensor<f32>) {
  // expected-error @below {{'bitnet.bitlinear' op result shape 2x8 does not match expected 2x4}}
  %y = bitnet.bitlinear %x, %w scale %s : tensor<2x8xf32>, !bitnet.ternary<4x8, i2>, tensor<f32> -> tensor<2x8xf32>
  return
}

// -----

// Tests that bitlinear takes f32 activations, not f16.
func.func @bitlinear_f16(%x: tensor<2x8xf16>, %w: !bitnet.ternary<4x8, i2>, %s: tensor<f32>) {
  // expected-error @below {{'bitnet.bitlinear' op operand #0 must be ranked tensor of 32-bit float values, but got 'tensor<2x8xf16>'}}
  %y = bitnet.bitlinear %x, %w scale %s : tensor<2x8xf16>, !bitnet.ternary<4x8, i2>, tensor<f32> -> tensor<2x4xf32>
  return
}

// -----

// Tests that the weight scale is per tensor, a rank-0 tensor.
func.func @bitlinear_scale_rank(%x: tensor<2x8xf32>, %w: !bitnet.ternary<4x8, i2>, %s: tensor<4xf32>) {
  // expected-error @below {{'bitnet.bitlinear' op operand #2 must be 0D tensor of 32-bit float values, but got 'tensor<4xf32>'}}
  %y = bitnet.bitlinear %x, %w scale %s : tensor<2x8xf32>, !bitnet.ternary<4x8, i2>, tensor<4xf32> -> tensor<2x4xf32>
  return
}

// -----

// Tests that the weight must be a ternary matrix, not its storage.
func.func @bitlinear_tensor_weight(%x: tensor<2x8xf32>, %w: tensor<4x8xi8>, %s: tensor<f32>) {
  // expected-error @below {{'bitnet.bitlinear' op operand #1 must be a ternary weight matrix and how it is stored, but got 'tensor<4x8xi8>'}}
  %y = "bitnet.bitlinear"(%x, %w, %s) : (tensor<2x8xf32>, tensor<4x8xi8>, tensor<f32>) -> tensor<2x4xf32>
  return
}

//===----------------------------------------------------------------------===//
// bitnet.rmsnorm
//===----------------------------------------------------------------------===//

// -----

// Tests that rmsnorm needs a dimension to normalise over.
func.func @rmsnorm_scalar(%x: tensor<f32>, %g: tensor<1xf32>) {
  // expected-error @below {{'bitnet.rmsnorm' op input must have rank >= 1, got a scalar}}
  %y = bitnet.rmsnorm %x, %g : tensor<f32>, tensor<1xf32> -> tensor<f32>
  return
}

// -----

// Tests that gamma is a vector.
func.func @rmsnorm_gamma_rank(%x: tensor<4x256xf32>, %g: tensor<4x256xf32>) {
  // expected-error @below {{'bitnet.rmsnorm' op gamma must have shape [256], got [4x256]}}
  %y = bitnet.rmsnorm %x, %g : tensor<4x256xf32>, tensor<4x256xf32> -> tensor<4x256xf32>
  return
}

// -----

// Tests that gamma has one value per feature.
func.func @rmsnorm_gamma_size(%x: tensor<4x256xf32>, %g: tensor<128xf32>) {
  // expected-error @below {{'bitnet.rmsnorm' op gamma must have shape [256], got [128]}}
  %y = bitnet.rmsnorm %x, %g : tensor<4x256xf32>, tensor<128xf32> -> tensor<4x256xf32>
  return
}

// -----

// Tests that the result has the input's shape.
func.func @rmsnorm_result_shape(%x: tensor<4x256xf32>, %g: tensor<256xf32>) {
  // expected-error @below {{'bitnet.rmsnorm' op result shape 2x256 must equal the input shape 4x256}}
  %y = bitnet.rmsnorm %x, %g : tensor<4x256xf32>, tensor<256xf32> -> tensor<2x256xf32>
  return
}

// -----

// Tests that a negative epsilon is rejected.
func.func @rmsnorm_negative_epsilon(%x: tensor<4x256xf32>, %g: tensor<256xf32>) {
  // expected-error @below {{'bitnet.rmsnorm' op epsilon must be a finite value >= 0, got -1.000000e+00}}
  %y = bitnet.rmsnorm %x, %g {epsilon = -1.0 : f32} : tensor<4x256xf32>, tensor<256xf32> -> tensor<4x256xf32>
  return
}

// -----

// Tests that an infinite epsilon is rejected.
func.func @rmsnorm_inf_epsilon(%x: tensor<4x256xf32>, %g: tensor<256xf32>) {
  // expected-error @below {{'bitnet.rmsnorm' op epsilon must be a finite value >= 0, got INF}}
  %y = bitnet.rmsnorm %x, %g {epsilon = 0x7F800000 : f32} : tensor<4x256xf32>, tensor<256xf32> -> tensor<4x256xf32>
  return
}

// -----

// Tests that a NaN epsilon is rejected.
func.func @rmsnorm_nan_epsilon(%x: tensor<4x256xf32>, %g: tensor<256xf32>) {
  // expected-error @below {{'bitnet.rmsnorm' op epsilon must be a finite value >= 0, got nan}}
  %y = bitnet.rmsnorm %x, %g {epsilon = 0x7FC00000 : f32} : tensor<4x256xf32>, tensor<256xf32> -> tensor<4x256xf32>
  return
}

// -----

// Tests that epsilon is an f32 attribute.
func.func @rmsnorm_f64_epsilon(%x: tensor<4x256xf32>, %g: tensor<256xf32>) {
  // expected-error @below {{'bitnet.rmsnorm' op attribute 'epsilon' failed to satisfy constraint: 32-bit float attribute}}
  %y = bitnet.rmsnorm %x, %g {epsilon = 1.0e-5 : f64} : tensor<4x256xf32>, tensor<256xf32> -> tensor<4x256xf32>
  return
}

//===----------------------------------------------------------------------===//
// bitnet.squared_relu
//===----------------------------------------------------------------------===//

// -----

// Tests that squared_relu keeps the type of its operand.
func.func @squared_relu_type(%x: tensor<4xf32>) {
  // expected-error @below {{'bitnet.squared_relu' op all non-scalar operands/results must have the same shape and base type}}
  %y = "bitnet.squared_relu"(%x) : (tensor<4xf32>) -> tensor<8xf32>
  return
}

// -----

// Tests that squared_relu takes f32 tensors.
func.func @squared_relu_f16(%x: tensor<4xf16>) {
  // expected-error @below {{'bitnet.squared_relu' op operand #0 must be ranked tensor of 32-bit float values, but got 'tensor<4xf16>'}}
  %y = bitnet.squared_relu %x : tensor<4xf16>
  return
}

//===----------------------------------------------------------------------===//
// bitnet.rope
//===----------------------------------------------------------------------===//

// -----

// Tests that rope's input is [tokens, heads, head_dim].
func.func @rope_rank(%x: tensor<4x64xf32>, %p: tensor<4xi32>) {
  // expected-error @below {{'bitnet.rope' op input must be [tokens, heads, head_dim], got rank 2}}
  %y = bitnet.rope %x, %p : tensor<4x64xf32>, tensor<4xi32> -> tensor<4x64xf32>
  return
}

// -----

// Tests that head_dim must be even: features are rotated in pairs.
func.func @rope_odd_head_dim(%x: tensor<4x8x63xf32>, %p: tensor<4xi32>) {
  // expected-error @below {{'bitnet.rope' op head_dim must be static and even, got 63}}
  %y = bitnet.rope %x, %p : tensor<4x8x63xf32>, tensor<4xi32> -> tensor<4x8x63xf32>
  return
}

// -----

// Tests that head_dim must be static.
func.func @rope_dynamic_head_dim(%x: tensor<4x8x?xf32>, %p: tensor<4xi32>) {
  // expected-error @below {{'bitnet.rope' op head_dim must be static and even, got ?}}
  %y = bitnet.rope %x, %p : tensor<4x8x?xf32>, tensor<4xi32> -> tensor<4x8x?xf32>
  return
}

// -----

// Tests that there is one position per token.
func.func @rope_positions_size(%x: tensor<4x8x64xf32>, %p: tensor<3xi32>) {
  // expected-error @below {{'bitnet.rope' op positions must have shape [4], got [3]}}
  %y = bitnet.rope %x, %p : tensor<4x8x64xf32>, tensor<3xi32> -> tensor<4x8x64xf32>
  return
}

// -----

// Tests that positions are a vector.
func.func @rope_positions_rank(%x: tensor<?x8x64xf32>, %p: tensor<4x1xi32>) {
  // expected-error @below {{'bitnet.rope' op positions must have shape [?], got [4x1]}}
  %y = bitnet.rope %x, %p : tensor<?x8x64xf32>, tensor<4x1xi32> -> tensor<?x8x64xf32>
  return
}

// -----

// Tests that the result has the input's shape.
func.func @rope_result_shape(%x: tensor<4x8x64xf32>, %p: tensor<4xi32>) {
  // expected-error @below {{'bitnet.rope' op result shape 4x8x32 must equal the input shape 4x8x64}}
  %y = bitnet.rope %x, %p : tensor<4x8x64xf32>, tensor<4xi32> -> tensor<4x8x32xf32>
  return
}

// -----

// Tests that theta must be positive.
func.func @rope_zero_theta(%x: tensor<4x8x64xf32>, %p: tensor<4xi32>) {
  // expected-error @below {{'bitnet.rope' op theta must be finite and > 0, got 0.000000e+00}}
  %y = bitnet.rope %x, %p {theta = 0.0 : f32} : tensor<4x8x64xf32>, tensor<4xi32> -> tensor<4x8x64xf32>
  return
}

// -----

// Tests that theta must be finite.
func.func @rope_inf_theta(%x: tensor<4x8x64xf32>, %p: tensor<4xi32>) {
  // expected-error @below {{'bitnet.rope' op theta must be finite and > 0, got INF}}
  %y = bitnet.rope %x, %p {theta = 0x7F800000 : f32} : tensor<4x8x64xf32>, tensor<4xi32> -> tensor<4x8x64xf32>
  return
}

// -----

// Tests that positions are i32 or i64 integers.
func.func @rope_i16_positions(%x: tensor<4x8x64xf32>, %p: tensor<4xi16>) {
  // expected-error @below {{'bitnet.rope' op operand #1 must be ranked tensor of 32-bit signless integer or 64-bit signless integer values, but got 'tensor<4xi16>'}}
  %y = bitnet.rope %x, %p : tensor<4x8x64xf32>, tensor<4xi16> -> tensor<4x8x64xf32>
  return
}

// -----

// Tests that an unknown rotary style is rejected.
func.func @rope_unknown_style(%x: tensor<4x8x64xf32>, %p: tensor<4xi32>) {
  // expected-error @below {{expected ::mlir::bitnet::RopeStyle to be one of: half, interleaved}}
  // expected-error @below {{failed to parse BitNet_RopeStyleAttr parameter 'value'}}
  %y = bitnet.rope %x, %p {style = #bitnet.rope_style<adjacent>} : tensor<4x8x64xf32>, tensor<4xi32> -> tensor<4x8x64xf32>
  return
}

//===----------------------------------------------------------------------===//
// bitnet.attention
//===----------------------------------------------------------------------===//

// -----

// Tests that the query has rank 3.
func.func @attention_query_rank(%q: tensor<8x64xf32>, %k: tensor<1x2x64xf32>, %c: tensor<16x2x64xf32>, %p: tensor<i32>) {
  // expected-error @below {{'bitnet.attention' op query must have rank 3, got 2}}
  %o, %kc, %vc = bitnet.attention %q, %k, %k, %c, %c, %p : tensor<8x64xf32>, tensor<1x2x64xf32>, tensor<1x2x64xf32>, tensor<16x2x64xf32>, tensor<16x2x64xf32>, tensor<i32> -> tensor<8x64xf32>, tensor<16x2x64xf32>, tensor<16x2x64xf32>
  return
}

// -----

// Tests that the key has rank 3.
func.func @attention_key_rank(%q: tensor<1x8x64xf32>, %k: tensor<2x64xf32>, %v: tensor<1x2x64xf32>, %c: tensor<16x2x64xf32>, %p: tensor<i32>) {
  // expected-error @below {{'bitnet.attention' op key must have rank 3, got 2}}
  %o, %kc, %vc = bitnet.attention %q, %k, %v, %c, %c, %p : tensor<1x8x64xf32>, tensor<2x64xf32>, tensor<1x2x64xf32>, tensor<16x2x64xf32>, tensor<16x2x64xf32>, tensor<i32> -> tensor<1x8x64xf32>, tensor<16x2x64xf32>, tensor<16x2x64xf32>
  return
}

// -----

// Tests that the value has rank 3.
func.func @attention_value_rank(%q: tensor<1x8x64xf32>, %k: tensor<1x2x64xf32>, %v: tensor<1x2x1x64xf32>, %c: tensor<16x2x64xf32>, %p: tensor<i32>) {
  // expected-error @below {{'bitnet.attention' op value must have rank 3, got 4}}
  %o, %kc, %vc = bitnet.attention %q, %k, %v, %c, %c, %p : tensor<1x8x64xf32>, tensor<1x2x64xf32>, tensor<1x2x1x64xf32>, tensor<16x2x64xf32>, tensor<16x2x64xf32>, tensor<i32> -> tensor<1x8x64xf32>, tensor<16x2x64xf32>, tensor<16x2x64xf32>
  return
}

// -----

// Tests that the key cache has rank 3.
func.func @attention_k_cache_rank(%q: tensor<1x8x64xf32>, %k: tensor<1x2x64xf32>, %kc: tensor<16x128xf32>, %vc: tensor<16x2x64xf32>, %p: tensor<i32>) {
  // expected-error @below {{'bitnet.attention' op k_cache must have rank 3, got 2}}
  %o, %kc1, %vc1 = bitnet.attention %q, %k, %k, %kc, %vc, %p : tensor<1x8x64xf32>, tensor<1x2x64xf32>, tensor<1x2x64xf32>, tensor<16x128xf32>, tensor<16x2x64xf32>, tensor<i32> -> tensor<1x8x64xf32>, tensor<16x128xf32>, tensor<16x2x64xf32>
  return
}

// -----

// Tests that the value cache has rank 3.
func.func @attention_v_cache_rank(%q: tensor<1x8x64xf32>, %k: tensor<1x2x64xf32>, %kc: tensor<16x2x64xf32>, %vc: tensor<16x128xf32>, %p: tensor<i32>) {
  // expected-error @below {{'bitnet.attention' op v_cache must have rank 3, got 2}}
  %o, %kc1, %vc1 = bitnet.attention %q, %k, %k, %kc, %vc, %p : tensor<1x8x64xf32>, tensor<1x2x64xf32>, tensor<1x2x64xf32>, tensor<16x2x64xf32>, tensor<16x128xf32>, tensor<i32> -> tensor<1x8x64xf32>, tensor<16x2x64xf32>, tensor<16x128xf32>
  return
}

// -----

// Tests that attention needs static shapes.
func.func @attention_dynamic(%q: tensor<?x8x64xf32>, %k: tensor<1x2x64xf32>, %c: tensor<16x2x64xf32>, %p: tensor<i32>) {
  // expected-error @below {{'bitnet.attention' op query must have a static shape, got 'tensor<?x8x64xf32>'}}
  %o, %kc, %vc = bitnet.attention %q, %k, %k, %c, %c, %p : tensor<?x8x64xf32>, tensor<1x2x64xf32>, tensor<1x2x64xf32>, tensor<16x2x64xf32>, tensor<16x2x64xf32>, tensor<i32> -> tensor<?x8x64xf32>, tensor<16x2x64xf32>, tensor<16x2x64xf32>
  return
}

// -----

// Tests that a dynamic cache is rejected too.
func.func @attention_dynamic_cache(%q: tensor<1x8x64xf32>, %k: tensor<1x2x64xf32>, %c: tensor<?x2x64xf32>, %p: tensor<i32>) {
  // expected-error @below {{'bitnet.attention' op k_cache must have a static shape, got 'tensor<?x2x64xf32>'}}
  %o, %kc, %vc = bitnet.attention %q, %k, %k, %c, %c, %p : tensor<1x8x64xf32>, tensor<1x2x64xf32>, tensor<1x2x64xf32>, tensor<?x2x64xf32>, tensor<?x2x64xf32>, tensor<i32> -> tensor<1x8x64xf32>, tensor<?x2x64xf32>, tensor<?x2x64xf32>
  return
}

// -----

// Tests that values and keys have one shape.
func.func @attention_value_shape(%q: tensor<1x8x64xf32>, %k: tensor<1x2x64xf32>, %v: tensor<1x4x64xf32>, %c: tensor<16x2x64xf32>, %p: tensor<i32>) {
  // expected-error @below {{'bitnet.attention' op value shape 1x4x64 must equal the key shape 1x2x64}}
  %o, %kc, %vc = bitnet.attention %q, %k, %v, %c, %c, %p : tensor<1x8x64xf32>, tensor<1x2x64xf32>, tensor<1x4x64xf32>, tensor<16x2x64xf32>, tensor<16x2x64xf32>, tensor<i32> -> tensor<1x8x64xf32>, tensor<16x2x64xf32>, tensor<16x2x64xf32>
  return
}

// -----

// Tests that both caches have one shape.
func.func @attention_v_cache_shape(%q: tensor<1x8x64xf32>, %k: tensor<1x2x64xf32>, %kc: tensor<16x2x64xf32>, %vc: tensor<32x2x64xf32>, %p: tensor<i32>) {
  // expected-error @below {{'bitnet.attention' op v_cache shape 32x2x64 must equal the k_cache shape 16x2x64}}
  %o, %kc1, %vc1 = bitnet.attention %q, %k, %k, %kc, %vc, %p : tensor<1x8x64xf32>, tensor<1x2x64xf32>, tensor<1x2x64xf32>, tensor<16x2x64xf32>, tensor<32x2x64xf32>, tensor<i32> -> tensor<1x8x64xf32>, tensor<16x2x64xf32>, tensor<32x2x64xf32>
  return
}

// -----

// Tests that keys come for exactly the query's tokens.
func.func @attention_tokens(%q: tensor<2x8x64xf32>, %k: tensor<1x2x64xf32>, %c: tensor<16x2x64xf32>, %p: tensor<i32>) {
  // expected-error @below {{'bitnet.attention' op key has 1 tokens but query has 2}}
  %o, %kc, %vc = bitnet.attention %q, %k, %k, %c, %c, %p : tensor<2x8x64xf32>, tensor<1x2x64xf32>, tensor<1x2x64xf32>, tensor<16x2x64xf32>, tensor<16x2x64xf32>, tensor<i32> -> tensor<2x8x64xf32>, tensor<16x2x64xf32>, tensor<16x2x64xf32>
  return
}

// -----

// Tests that the key's head_dim must be the query's.
func.func @attention_key_head_dim(%q: tensor<1x8x64xf32>, %k: tensor<1x2x32xf32>, %c: tensor<16x2x64xf32>, %p: tensor<i32>) {
  // expected-error @below {{'bitnet.attention' op head_dim differs: query 64, key 32, cache 64}}
  %o, %kc, %vc = bitnet.attention %q, %k, %k, %c, %c, %p : tensor<1x8x64xf32>, tensor<1x2x32xf32>, tensor<1x2x32xf32>, tensor<16x2x64xf32>, tensor<16x2x64xf32>, tensor<i32> -> tensor<1x8x64xf32>, tensor<16x2x64xf32>, tensor<16x2x64xf32>
  return
}

// -----

// Tests that the cache's head_dim must be the query's.
func.func @attention_cache_head_dim(%q: tensor<1x8x64xf32>, %k: tensor<1x2x64xf32>, %c: tensor<16x2x128xf32>, %p: tensor<i32>) {
  // expected-error @below {{'bitnet.attention' op head_dim differs: query 64, key 64, cache 128}}
  %o, %kc, %vc = bitnet.attention %q, %k, %k, %c, %c, %p : tensor<1x8x64xf32>, tensor<1x2x64xf32>, tensor<1x2x64xf32>, tensor<16x2x128xf32>, tensor<16x2x128xf32>, tensor<i32> -> tensor<1x8x64xf32>, tensor<16x2x128xf32>, tensor<16x2x128xf32>
  return
}

// -----

// Tests that the caches hold the key's kv heads.
func.func @attention_cache_heads(%q: tensor<1x8x64xf32>, %k: tensor<1x2x64xf32>, %c: tensor<16x4x64xf32>, %p: tensor<i32>) {
  // expected-error @below {{'bitnet.attention' op cache has 4 kv heads but key has 2}}
  %o, %kc, %vc = bitnet.attention %q, %k, %k, %c, %c, %p : tensor<1x8x64xf32>, tensor<1x2x64xf32>, tensor<1x2x64xf32>, tensor<16x4x64xf32>, tensor<16x4x64xf32>, tensor<i32> -> tensor<1x8x64xf32>, tensor<16x4x64xf32>, tensor<16x4x64xf32>
  return
}

// -----

// Tests that query heads are grouped evenly over kv heads.
func.func @attention_groups(%q: tensor<1x6x64xf32>, %k: tensor<1x4x64xf32>, %c: tensor<16x4x64xf32>, %p: tensor<i32>) {
  // expected-error @below {{'bitnet.attention' op query heads (6) must be a multiple of kv heads (4)}}
  %o, %kc, %vc = bitnet.attention %q, %k, %k, %c, %c, %p : tensor<1x6x64xf32>, tensor<1x4x64xf32>, tensor<1x4x64xf32>, tensor<16x4x64xf32>, tensor<16x4x64xf32>, tensor<i32> -> tensor<1x6x64xf32>, tensor<16x4x64xf32>, tensor<16x4x64xf32>
  return
}

// -----

// Tests that zero kv heads are rejected rather than divided by.
func.func @attention_zero_kv_heads(%q: tensor<1x8x64xf32>, %k: tensor<1x0x64xf32>, %c: tensor<16x0x64xf32>, %p: tensor<i32>) {
  // expected-error @below {{'bitnet.attention' op query heads (8) must be a multiple of kv heads (0)}}
  %o, %kc, %vc = bitnet.attention %q, %k, %k, %c, %c, %p : tensor<1x8x64xf32>, tensor<1x0x64xf32>, tensor<1x0x64xf32>, tensor<16x0x64xf32>, tensor<16x0x64xf32>, tensor<i32> -> tensor<1x8x64xf32>, tensor<16x0x64xf32>, tensor<16x0x64xf32>
  return
}

// -----

// Tests that more new tokens than the cache holds are rejected.
func.func @attention_capacity(%q: tensor<8x2x16xf32>, %c: tensor<4x2x16xf32>, %p: tensor<i32>) {
  // expected-error @below {{'bitnet.attention' op cannot append 8 tokens to a cache of capacity 4}}
  %o, %kc, %vc = bitnet.attention %q, %q, %q, %c, %c, %p : tensor<8x2x16xf32>, tensor<8x2x16xf32>, tensor<8x2x16xf32>, tensor<4x2x16xf32>, tensor<4x2x16xf32>, tensor<i32> -> tensor<8x2x16xf32>, tensor<4x2x16xf32>, tensor<4x2x16xf32>
  return
}

// -----

// Tests that the output has the query's type.
func.func @attention_result_type(%q: tensor<1x8x64xf32>, %k: tensor<1x2x64xf32>, %c: tensor<16x2x64xf32>, %p: tensor<i32>) {
  // expected-error @below {{'bitnet.attention' op result type 'tensor<1x2x64xf32>' must equal the query type 'tensor<1x8x64xf32>'}}
  %o, %kc, %vc = bitnet.attention %q, %k, %k, %c, %c, %p : tensor<1x8x64xf32>, tensor<1x2x64xf32>, tensor<1x2x64xf32>, tensor<16x2x64xf32>, tensor<16x2x64xf32>, tensor<i32> -> tensor<1x2x64xf32>, tensor<16x2x64xf32>, tensor<16x2x64xf32>
  return
}

// -----

// Tests that the updated key cache has the cache's type.
func.func @attention_new_k_cache(%q: tensor<1x8x64xf32>, %k: tensor<1x2x64xf32>, %c: tensor<16x2x64xf32>, %p: tensor<i32>) {
  // expected-error @below {{'bitnet.attention' op updated caches must have the types of the caches}}
  %o, %kc, %vc = bitnet.attention %q, %k, %k, %c, %c, %p : tensor<1x8x64xf32>, tensor<1x2x64xf32>, tensor<1x2x64xf32>, tensor<16x2x64xf32>, tensor<16x2x64xf32>, tensor<i32> -> tensor<1x8x64xf32>, tensor<17x2x64xf32>, tensor<16x2x64xf32>
  return
}

// -----

// Tests that the updated value cache has the cache's type.
func.func @attention_new_v_cache(%q: tensor<1x8x64xf32>, %k: tensor<1x2x64xf32>, %c: tensor<16x2x64xf32>, %p: tensor<i32>) {
  // expected-error @below {{'bitnet.attention' op updated caches must have the types of the caches}}
  %o, %kc, %vc = bitnet.attention %q, %k, %k, %c, %c, %p : tensor<1x8x64xf32>, tensor<1x2x64xf32>, tensor<1x2x64xf32>, tensor<16x2x64xf32>, tensor<16x2x64xf32>, tensor<i32> -> tensor<1x8x64xf32>, tensor<16x2x64xf32>, tensor<16x2x32xf32>
  return
}

// -----

// Tests that a zero scale is rejected.
func.func @attention_zero_scale(%q: tensor<1x8x64xf32>, %k: tensor<1x2x64xf32>, %c: tensor<16x2x64xf32>, %p: tensor<i32>) {
  // expected-error @below {{'bitnet.attention' op scale must be finite and > 0, got 0.000000e+00}}
  %o, %kc, %vc = bitnet.attention %q, %k, %k, %c, %c, %p {scale = 0.0 : f32} : tensor<1x8x64xf32>, tensor<1x2x64xf32>, tensor<1x2x64xf32>, tensor<16x2x64xf32>, tensor<16x2x64xf32>, tensor<i32> -> tensor<1x8x64xf32>, tensor<16x2x64xf32>, tensor<16x2x64xf32>
  return
}

// -----

// Tests that a NaN scale is rejected.
func.func @attention_nan_scale(%q: tensor<1x8x64xf32>, %k: tensor<1x2x64xf32>, %c: tensor<16x2x64xf32>, %p: tensor<i32>) {
  // expected-error @below {{'bitnet.attention' op scale must be finite and > 0, got nan}}
  %o, %kc, %vc = bitnet.attention %q, %k, %k, %c, %c, %p {scale = 0x7FC00000 : f32} : tensor<1x8x64xf32>, tensor<1x2x64xf32>, tensor<1x2x64xf32>, tensor<16x2x64xf32>, tensor<16x2x64xf32>, tensor<i32> -> tensor<1x8x64xf32>, tensor<16x2x64xf32>, tensor<16x2x64xf32>
  return
}

// -----

// Tests that an infinite scale is rejected.
func.func @attention_inf_scale(%q: tensor<1x8x64xf32>, %k: tensor<1x2x64xf32>, %c: tensor<16x2x64xf32>, %p: tensor<i32>) {
  // expected-error @below {{'bitnet.attention' op scale must be finite and > 0, got INF}}
  %o, %kc, %vc = bitnet.attention %q, %k, %k, %c, %c, %p {scale = 0x7F800000 : f32} : tensor<1x8x64xf32>, tensor<1x2x64xf32>, tensor<1x2x64xf32>, tensor<16x2x64xf32>, tensor<16x2x64xf32>, tensor<i32> -> tensor<1x8x64xf32>, tensor<16x2x64xf32>, tensor<16x2x64xf32>
  return
}

// -----

// Tests that the position is a rank-0 tensor.
func.func @attention_position_rank(%q: tensor<1x8x64xf32>, %k: tensor<1x2x64xf32>, %c: tensor<16x2x64xf32>, %p: tensor<1xi32>) {
  // expected-error @below {{'bitnet.attention' op operand #5 must be 0D tensor of 32-bit signless integer or 64-bit signless integer values, but got 'tensor<1xi32>'}}
  %o, %kc, %vc = bitnet.attention %q, %k, %k, %c, %c, %p : tensor<1x8x64xf32>, tensor<1x2x64xf32>, tensor<1x2x64xf32>, tensor<16x2x64xf32>, tensor<16x2x64xf32>, tensor<1xi32> -> tensor<1x8x64xf32>, tensor<16x2x64xf32>, tensor<16x2x64xf32>
  return
}

// -----

// Tests that the position is an integer.
func.func @attention_position_f32(%q: tensor<1x8x64xf32>, %k: tensor<1x2x64xf32>, %c: tensor<16x2x64xf32>, %p: tensor<f32>) {
  // expected-error @below {{'bitnet.attention' op operand #5 must be 0D tensor of 32-bit signless integer or 64-bit signless integer values, but got 'tensor<f32>'}}
  %o, %kc, %vc = bitnet.attention %q, %k, %k, %c, %c, %p : tensor<1x8x64xf32>, tensor<1x2x64xf32>, tensor<1x2x64xf32>, tensor<16x2x64xf32>, tensor<16x2x64xf32>, tensor<f32> -> tensor<1x8x64xf32>, tensor<16x2x64xf32>, tensor<16x2x64xf32>
  return
}

// -----

// Tests that an embedding's result is the token shape and the row length.
func.func @embedding_shape(%t: tensor<128x64xf32>, %ids: tensor<4xi32>) {
  // expected-error @below {{'bitnet.embedding' op result shape 4x32 must be the token shape followed by the table's row length, 4x64}}
  %x = bitnet.embedding %t, %ids : tensor<128x64xf32>, tensor<4xi32> -> tensor<4x32xf32>
  return
}

// -----

// Tests that an embedding table is a matrix.
func.func @embedding_rank(%t: tensor<128xf32>, %ids: tensor<4xi32>) {
  // expected-error @below {{'bitnet.embedding' op table must be [vocabulary, dim], got rank 1}}
  %x = bitnet.embedding %t, %ids : tensor<128xf32>, tensor<4xi32> -> tensor<4x64xf32>
  return
}

// -----

// Tests that dense_matmul checks K.
func.func @dense_k(%x: tensor<4x64xf32>, %w: tensor<10x32xf32>) {
  // expected-error @below {{'bitnet.dense_matmul' op input ends in K = 64, the weight has K = 32}}
  %y = bitnet.dense_matmul %x, %w : tensor<4x64xf32>, tensor<10x32xf32> -> tensor<4x10xf32>
  return
}

// -----

// Tests that dense_matmul checks the result shape.
func.func @dense_result(%x: tensor<4x64xf32>, %w: tensor<10x64xf32>) {
  // expected-error @below {{'bitnet.dense_matmul' op result shape 4x9 must be 4x10}}
  %y = bitnet.dense_matmul %x, %w : tensor<4x64xf32>, tensor<10x64xf32> -> tensor<4x9xf32>
  return
}

// -----

// Tests that quantize_input (W8A8) needs an i8 weight.
func.func @dense_quantize_f16(%x: tensor<4x64xf32>, %w: tensor<10x64xf16>) {
  // expected-error @below {{'bitnet.dense_matmul' op quantize_input needs an i8 weight (with its row scales), got 'f16'}}
  %y = bitnet.dense_matmul %x, %w {quantize_input} : tensor<4x64xf32>, tensor<10x64xf16> -> tensor<4x10xf32>
  return
}

// -----

// Tests that an i8 weight needs its row scales.
func.func @dense_i8_no_scales(%x: tensor<4x64xf32>, %w: tensor<10x64xi8>) {
  // expected-error @below {{'bitnet.dense_matmul' op an i8 weight needs scales, one per row}}
  %y = bitnet.dense_matmul %x, %w : tensor<4x64xf32>, tensor<10x64xi8> -> tensor<4x10xf32>
  return
}

// -----

// Tests that scales have one entry per row.
func.func @embedding_scales_shape(%t: tensor<128x64xi8>, %ids: tensor<4xi32>, %s: tensor<64xf32>) {
  // expected-error @below {{'bitnet.embedding' op scales must have shape [128], got [64]}}
  %x = bitnet.embedding %t, %ids scales %s : tensor<128x64xi8>, tensor<4xi32>, tensor<64xf32> -> tensor<4x64xf32>
  return
}

//===----------------------------------------------------------------------===//
// bitnet.batched_attention
//===----------------------------------------------------------------------===//

// -----

// Tests that the caches have a slot dimension.
func.func @batched_attention_cache_rank(%q: tensor<2x8x64xf32>, %k: tensor<2x2x64xf32>, %c: tensor<16x2x64xf32>, %p: tensor<2xi32>) {
  // expected-error @below {{'bitnet.batched_attention' op k_cache must have rank 4, got 3}}
  %o, %kc, %vc = bitnet.batched_attention %q, %k, %k, %c, %c, %p, %p : tensor<2x8x64xf32>, tensor<2x2x64xf32>, tensor<2x2x64xf32>, tensor<16x2x64xf32>, tensor<16x2x64xf32>, tensor<2xi32>, tensor<2xi32> -> tensor<2x8x64xf32>, tensor<16x2x64xf32>, tensor<16x2x64xf32>
  return
}

// -----

// Tests that every token has a slot.
func.func @batched_attention_slots(%q: tensor<2x8x64xf32>, %k: tensor<2x2x64xf32>, %c: tensor<3x16x2x64xf32>, %p: tensor<2xi32>, %s: tensor<3xi32>) {
  // expected-error @below {{'bitnet.batched_attention' op slots has 3 entries but query has 2 tokens}}
  %o, %kc, %vc = bitnet.batched_attention %q, %k, %k, %c, %c, %p, %s : tensor<2x8x64xf32>, tensor<2x2x64xf32>, tensor<2x2x64xf32>, tensor<3x16x2x64xf32>, tensor<3x16x2x64xf32>, tensor<2xi32>, tensor<3xi32> -> tensor<2x8x64xf32>, tensor<3x16x2x64xf32>, tensor<3x16x2x64xf32>
  return
}

// -----

// Tests that the caches' KV heads are the key's.
func.func @batched_attention_kv_heads(%q: tensor<2x8x64xf32>, %k: tensor<2x2x64xf32>, %c: tensor<3x16x4x64xf32>, %p: tensor<2xi32>) {
  // expected-error @below {{'bitnet.batched_attention' op cache has 4 kv heads but key has 2}}
  %o, %kc, %vc = bitnet.batched_attention %q, %k, %k, %c, %c, %p, %p : tensor<2x8x64xf32>, tensor<2x2x64xf32>, tensor<2x2x64xf32>, tensor<3x16x4x64xf32>, tensor<3x16x4x64xf32>, tensor<2xi32>, tensor<2xi32> -> tensor<2x8x64xf32>, tensor<3x16x4x64xf32>, tensor<3x16x4x64xf32>
  return
}

// -----

// Tests that the caches hold at least one slot.
func.func @batched_attention_no_slot(%q: tensor<2x8x64xf32>, %k: tensor<2x2x64xf32>, %c: tensor<0x16x2x64xf32>, %p: tensor<2xi32>) {
  // expected-error @below {{'bitnet.batched_attention' op the caches need at least one slot of one row, got 0x16x2x64}}
  %o, %kc, %vc = bitnet.batched_attention %q, %k, %k, %c, %c, %p, %p : tensor<2x8x64xf32>, tensor<2x2x64xf32>, tensor<2x2x64xf32>, tensor<0x16x2x64xf32>, tensor<0x16x2x64xf32>, tensor<2xi32>, tensor<2xi32> -> tensor<2x8x64xf32>, tensor<0x16x2x64xf32>, tensor<0x16x2x64xf32>
  return
}

// -----

// Tests that a blocked table is [V / B, D / C, B, C].
func.func @embedding_blocked_shape(%t: tensor<8x2x16x16xf16>, %ids: tensor<4xi32>) {
  // expected-error @below {{'bitnet.embedding' op a blocked table must be [V / 16, D / 32, 16, 32], got 8x2x16x16}}
  %x = bitnet.embedding %t, %ids {blocked = array<i64: 16, 32>} : tensor<8x2x16x16xf16>, tensor<4xi32> -> tensor<4x64xf32>
  return
}

// -----

// Tests that a block is two positive sizes.
func.func @embedding_blocked_sizes(%t: tensor<8x2x16x16xf16>, %ids: tensor<4xi32>) {
  // expected-error @below {{'bitnet.embedding' op blocked must be [rows, columns] of a block, both positive}}
  %x = bitnet.embedding %t, %ids {blocked = array<i64: 16>} : tensor<8x2x16x16xf16>, tensor<4xi32> -> tensor<4x32xf32>
  return
}

// -----

// Tests that a blocked table's rows are D = K / C x C long.
func.func @embedding_blocked_row(%t: tensor<8x2x16x16xf16>, %ids: tensor<4xi32>) {
  // expected-error @below {{'bitnet.embedding' op result shape 4x16 must be the token shape followed by the table's row length, 4x32}}
  %x = bitnet.embedding %t, %ids {blocked = array<i64: 16, 16>} : tensor<8x2x16x16xf16>, tensor<4xi32> -> tensor<4x16xf32>
  return
}

// -----

// Tests that a blocked i8 table has a scale for each of its V rows.
func.func @embedding_blocked_scales(%t: tensor<8x2x16x16xi8>, %ids: tensor<4xi32>, %s: tensor<8xf32>) {
  // expected-error @below {{'bitnet.embedding' op scales must have shape [128], got [8]}}
  %x = bitnet.embedding %t, %ids scales %s {blocked = array<i64: 16, 16>} : tensor<8x2x16x16xi8>, tensor<4xi32>, tensor<8xf32> -> tensor<4x32xf32>
  return
}
