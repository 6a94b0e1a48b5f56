// RUN: bitnet-opt %s -split-input-file -canonicalize | FileCheck %s

//===----------------------------------------------------------------------===//
// bitnet.ternarize
//===----------------------------------------------------------------------===//

// Tests that ternarize of a constant folds to absmean ternary values and the
// scale, rounding ties half to even: mean|W| = 1, so 0.5 and -0.5 become 0
// (not +-1), while 1.5, -1.5 and 2.0 are clamped to +-1.
// CHECK-LABEL: func.func @ternarize_ties
// CHECK-DAG: %[[Q:.*]] = arith.constant dense<{{\[\[}}0, 0, 1, -1], [0, 1, -1, 1]]> : tensor<2x4xi8>
// CHECK-DAG: %[[S:.*]] = arith.constant dense<1.000000e+00> : tensor<f32>
// CHECK-NOT: bitnet.ternarize
// CHECK: return %[[Q]], %[[S]]
func.func @ternarize_ties() -> (tensor<2x4xi8>, tensor<f32>) {
  %w = arith.constant dense<[[0.5, -0.5, 1.5, -1.5], [0.0, 2.0, -1.0, 1.0]]> : tensor<2x4xf32>
  %q, %s = bitnet.ternarize %w : tensor<2x4xf32> -> tensor<2x4xi8>, tensor<f32>
  return %q, %s : tensor<2x4xi8>, tensor<f32>
}

// -----

// Tests that the folded scale is mean|W| (14.25 / 32) and every value is
// round(W / scale) clamped to [-1, 1].
// CHECK-LABEL: func.func @ternarize_absmean
// CHECK-DAG: %[[Q:.*]] = arith.constant dense<{{\[\[}}1, -1, 0, 1, -1, 1, 0, -1], [0, 1, 1, -1, 0, 0, 1, 0], [0, 0, 0, 0, 0, 0, 0, 0], [1, 1, -1, -1, 1, -1, 1, -1]]> : tensor<4x8xi8>
// CHECK-DAG: %[[S:.*]] = arith.constant dense<0.4453125> : tensor<f32>
// CHECK-NOT: bitnet.ternarize
// CHECK: return %[[Q]], %[[S]]
func.func @ternarize_absmean() -> (tensor<4x8xi8>, tensor<f32>) {
  %w = arith.constant dense<[[ 0.9, -0.4,  0.0,  1.2, -1.1,  0.3,  0.05, -0.8],
                             [-0.2,  0.7,  0.6, -0.9,  0.0,  0.0,  1.5,  0.1],
                             [ 0.0,  0.0,  0.0,  0.0,  0.0,  0.0,  0.0,  0.0],
                             [ 1.0,  1.0, -1.0, -1.0,  0.5, -0.5,  0.25, -0.25]]> : tensor<4x8xf32>
  %q, %s = bitnet.ternarize %w : tensor<4x8xf32> -> tensor<4x8xi8>, tensor<f32>
  return %q, %s : tensor<4x8xi8>, tensor<f32>
}

// -----

// Tests that all-zero weights fold to all-zero values and the floor scale
// 1e-5 (as f32), never to a division by zero.
// CHECK-LABEL: func.func @ternarize_zero
// CHECK-DAG: %[[Q:.*]] = arith.constant dense<0> : tensor<2x3xi8>
// CHECK-DAG: %[[S:.*]] = arith.constant dense<9.99999974E-6> : tensor<f32>
// CHECK-NOT: bitnet.ternarize
// CHECK: return %[[Q]], %[[S]]
func.func @ternarize_zero() -> (tensor<2x3xi8>, tensor<f32>) {
  %w = arith.constant dense<0.0> : tensor<2x3xf32>
  %q, %s = bitnet.ternarize %w : tensor<2x3xf32> -> tensor<2x3xi8>, tensor<f32>
  return %q, %s : tensor<2x3xi8>, tensor<f32>
}

// -----

// Tests that the mean is accumulated in double: 1000 copies of 0.1f average
// to exactly 0.1f (a float accumulator would drift to 0.0999990).
// CHECK-LABEL: func.func @ternarize_splat
// CHECK-DAG: %[[Q:.*]] = arith.constant dense<1> : tensor<1000xi8>
// CHECK-DAG: %[[S:.*]] = arith.constant dense<1.000000e-01> : tensor<f32>
// CHECK: return %[[Q]], %[[S]]
func.func @ternarize_splat() -> (tensor<1000xi8>, tensor<f32>) {
  %w = arith.constant dense<0.1> : tensor<1000xf32>
  %q, %s = bitnet.ternarize %w : tensor<1000xf32> -> tensor<1000xi8>, tensor<f32>
  return %q, %s : tensor<1000xi8>, tensor<f32>
}

// -----

// Tests that a NaN weight makes the scale NaN and, as in the lowering
// (maxnumf/minnumf), sends every NaN quotient to the lower bound -1.
// CHECK-LABEL: func.func @ternarize_nan
// CHECK-DAG: %[[Q:.*]] = arith.constant dense<-1> : tensor<4xi8>
// CHECK-DAG: %[[S:.*]] = arith.constant dense<0x7FC00000> : tensor<f32>
// CHECK: return %[[Q]], %[[S]]
func.func @ternarize_nan() -> (tensor<4xi8>, tensor<f32>) {
  %w = arith.constant dense<[1.0, 0x7FC00000, -1.0, 0.0]> : tensor<4xf32>
  %q, %s = bitnet.ternarize %w : tensor<4xf32> -> tensor<4xi8>, tensor<f32>
  return %q, %s : tensor<4xi8>, tensor<f32>
}

// -----

// Tests that ternarize of a function argument does not fold.
// CHECK-LABEL: func.func @ternarize_argument
// CHECK-SAME: (%[[W:.*]]: tensor<4x8xf32>)
// CHECK: %[[Q:.*]], %[[S:.*]] = bitnet.ternarize %[[W]]
// CHECK: return %[[Q]], %[[S]]
func.func @ternarize_argument(%w: tensor<4x8xf32>) -> (tensor<4x8xi8>, tensor<f32>) {
  %q, %s = bitnet.ternarize %w : tensor<4x8xf32> -> tensor<4x8xi8>, tensor<f32>
  return %q, %s : tensor<4x8xi8>, tensor<f32>
}

// -----

// Tests that ternarize of a constant into a dynamically shaped result does
// not fold: the folded value would need a static type.
// CHECK-LABEL: func.func @ternarize_dynamic_result
// CHECK: bitnet.ternarize %{{.*}} : tensor<2x2xf32> -> tensor<?x2xi8>, tensor<f32>
func.func @ternarize_dynamic_result() -> (tensor<?x2xi8>, tensor<f32>) {
  %w = arith.constant dense<1.0> : tensor<2x2xf32>
  %q, %s = bitnet.ternarize %w : tensor<2x2xf32> -> tensor<?x2xi8>, tensor<f32>
  return %q, %s : tensor<?x2xi8>, tensor<f32>
}

//===----------------------------------------------------------------------===//
// bitnet.pack
//===----------------------------------------------------------------------===//

// -----

// Tests that pack of a constant folds to i2 bytes: value t of a group of four
// is the code w + 1 at bits [2t, 2t + 2), e.g. [1, 0, -1, 0] -> 2 + 4 + 0 + 64.
// CHECK-LABEL: func.func @pack_i2
// CHECK: %[[P:.*]] = bitnet.constant dense<{{\[\[}}70, 10], [0, 85]]> : tensor<2x2xi8> -> !bitnet.ternary<2x8, i2>
// CHECK-NOT: bitnet.pack
// CHECK: return %[[P]]
func.func @pack_i2() -> !bitnet.ternary<2x8, i2> {
  %w = arith.constant dense<[[1, 0, -1, 0, 1, 1, -1, -1], [-1, -1, -1, -1, 0, 0, 0, 0]]> : tensor<2x8xi8>
  %p = bitnet.pack %w : tensor<2x8xi8> -> !bitnet.ternary<2x8, i2>
  return %p : !bitnet.ternary<2x8, i2>
}

// -----

// Tests that a row whose K is not a multiple of 4 is padded with zero-weight
// codes: [-1, -1] + padding is 0 + 0 + (1 << 4) + (1 << 6) = 80.
// CHECK-LABEL: func.func @pack_i2_padded
// CHECK: %[[P:.*]] = bitnet.constant dense<{{\[\[}}-86, 80], [85, 89]]> : tensor<2x2xi8> -> !bitnet.ternary<2x6, i2>
// CHECK: return %[[P]]
func.func @pack_i2_padded() -> !bitnet.ternary<2x6, i2> {
  %w = arith.constant dense<[[1, 1, 1, 1, -1, -1], [0, 0, 0, 0, 0, 1]]> : tensor<2x6xi8>
  %p = bitnet.pack %w : tensor<2x6xi8> -> !bitnet.ternary<2x6, i2>
  return %p : !bitnet.ternary<2x6, i2>
}

// -----

// Tests that pack of a constant folds to base3 bytes, sum_t (w_t + 1) * 3^t,
// with the short last group padded with zero weights (code 1):
// [1, 0, -1, 0, 1] -> 2 + 3 + 0 + 27 + 162 = 194 (-62 as i8) and
// [1, -1] + padding -> 2 + 0 + 9 + 27 + 81 = 119.
// CHECK-LABEL: func.func @pack_base3_padded
// CHECK: %[[P:.*]] = bitnet.constant dense<{{\[\[}}-62, 119], [-14, 117]]> : tensor<2x2xi8> -> !bitnet.ternary<2x7, base3>
// CHECK: return %[[P]]
func.func @pack_base3_padded() -> !bitnet.ternary<2x7, base3> {
  %w = arith.constant dense<[[1, 0, -1, 0, 1, 1, -1], [1, 1, 1, 1, 1, -1, -1]]> : tensor<2x7xi8>
  %p = bitnet.pack %w : tensor<2x7xi8> -> !bitnet.ternary<2x7, base3>
  return %p : !bitnet.ternary<2x7, base3>
}

// -----

// Tests that a splat of +1 packs to the largest base3 byte, 242 (-14 as i8).
// CHECK-LABEL: func.func @pack_base3_splat
// CHECK: %[[P:.*]] = bitnet.constant dense<-14> : tensor<2x2xi8> -> !bitnet.ternary<2x10, base3>
// CHECK: return %[[P]]
func.func @pack_base3_splat() -> !bitnet.ternary<2x10, base3> {
  %w = arith.constant dense<1> : tensor<2x10xi8>
  %p = bitnet.pack %w : tensor<2x10xi8> -> !bitnet.ternary<2x10, base3>
  return %p : !bitnet.ternary<2x10, base3>
}

// -----

// -----

// Tests that pack of a function argument does not fold.
// CHECK-LABEL: func.func @pack_argument
// CHECK-SAME: (%[[W:.*]]: tensor<2x8xi8>)
// CHECK: %[[P:.*]] = bitnet.pack %[[W]]
// CHECK: return %[[P]]
func.func @pack_argument(%w: tensor<2x8xi8>) -> !bitnet.ternary<2x8, i2> {
  %p = bitnet.pack %w : tensor<2x8xi8> -> !bitnet.ternary<2x8, i2>
  return %p : !bitnet.ternary<2x8, i2>
}

// -----

// Tests that pack(unpack(x)) folds to x when both have the same type.
// CHECK-LABEL: func.func @pack_of_unpack
// CHECK-SAME: (%[[X:.*]]: !bitnet.ternary<4x8, base3>)
// CHECK-NOT: bitnet.unpack
// CHECK-NOT: bitnet.pack
// CHECK: return %[[X]]
func.func @pack_of_unpack(%x: !bitnet.ternary<4x8, base3>) -> !bitnet.ternary<4x8, base3> {
  %u = bitnet.unpack %x : !bitnet.ternary<4x8, base3> -> tensor<4x8xi8>
  %p = bitnet.pack %u : tensor<4x8xi8> -> !bitnet.ternary<4x8, base3>
  return %p : !bitnet.ternary<4x8, base3>
}

// -----

// Tests that pack(unpack(x)) into another format is a real conversion and
// does not fold.
// CHECK-LABEL: func.func @pack_of_unpack_other_format
// CHECK-SAME: (%[[X:.*]]: !bitnet.ternary<4x8, i2>)
// CHECK: %[[U:.*]] = bitnet.unpack %[[X]] : !bitnet.ternary<4x8, i2> -> tensor<4x8xi8>
// CHECK: %[[P:.*]] = bitnet.pack %[[U]] : tensor<4x8xi8> -> !bitnet.ternary<4x8, base3>
// CHECK: return %[[P]]
func.func @pack_of_unpack_other_format(%x: !bitnet.ternary<4x8, i2>) -> !bitnet.ternary<4x8, base3> {
  %u = bitnet.unpack %x : !bitnet.ternary<4x8, i2> -> tensor<4x8xi8>
  %p = bitnet.pack %u : tensor<4x8xi8> -> !bitnet.ternary<4x8, base3>
  return %p : !bitnet.ternary<4x8, base3>
}

//===----------------------------------------------------------------------===//
// bitnet.unpack / bitnet.constant
//===----------------------------------------------------------------------===//

// -----

// Tests that unpack of an i2 constant folds to its values: 36 = 0b00100100
// holds the codes 0, 1, 2, 0, i.e. -1, 0, 1, -1; 145 (-111) holds 1, 0, 1, 2.
// CHECK-LABEL: func.func @unpack_i2
// CHECK: %[[U:.*]] = arith.constant dense<{{\[\[}}-1, 0, 1, -1, 0, -1, -1, -1], [0, -1, 0, 1, 1, -1, -1, -1]]> : tensor<2x8xi8>
// CHECK-NOT: bitnet.unpack
// CHECK: return %[[U]]
func.func @unpack_i2() -> tensor<2x8xi8> {
  %c = bitnet.constant dense<[[36, 1], [145, 2]]> : tensor<2x2xi8> -> !bitnet.ternary<2x8, i2>
  %u = bitnet.unpack %c : !bitnet.ternary<2x8, i2> -> tensor<2x8xi8>
  return %u : tensor<2x8xi8>
}

// -----

// Tests that unpack of a base3 constant folds and ignores the padding of the
// last byte: 194 is [1, 0, -1, 0, 1] and 119 is [1, -1] + padding.
// CHECK-LABEL: func.func @unpack_base3
// CHECK: %[[U:.*]] = arith.constant dense<{{\[\[}}1, 0, -1, 0, 1, 1, -1]]> : tensor<1x7xi8>
// CHECK: return %[[U]]
func.func @unpack_base3() -> tensor<1x7xi8> {
  %c = bitnet.constant dense<[[194, 119]]> : tensor<1x2xi8> -> !bitnet.ternary<1x7, base3>
  %u = bitnet.unpack %c : !bitnet.ternary<1x7, base3> -> tensor<1x7xi8>
  return %u : tensor<1x7xi8>
}

// -----

// Tests that unpack of a splat constant folds (85 is four zero-weight codes).
// CHECK-LABEL: func.func @unpack_splat
// CHECK: %[[U:.*]] = arith.constant dense<0> : tensor<3x7xi8>
// CHECK: return %[[U]]
func.func @unpack_splat() -> tensor<3x7xi8> {
  %c = bitnet.constant dense<85> : tensor<3x2xi8> -> !bitnet.ternary<3x7, i2>
  %u = bitnet.unpack %c : !bitnet.ternary<3x7, i2> -> tensor<3x7xi8>
  return %u : tensor<3x7xi8>
}

// -----

// Tests that unpack(pack(constant)) folds all the way to the values.
// CHECK-LABEL: func.func @unpack_of_pack_constant
// CHECK: %[[U:.*]] = arith.constant dense<{{\[\[}}1, -1, 0, 1, 1]]> : tensor<1x5xi8>
// CHECK-NOT: bitnet.
// CHECK: return %[[U]]
func.func @unpack_of_pack_constant() -> tensor<1x5xi8> {
  %w = arith.constant dense<[[1, -1, 0, 1, 1]]> : tensor<1x5xi8>
  %p = bitnet.pack %w : tensor<1x5xi8> -> !bitnet.ternary<1x5, base3>
  %u = bitnet.unpack %p : !bitnet.ternary<1x5, base3> -> tensor<1x5xi8>
  return %u : tensor<1x5xi8>
}

// -----

// Tests that unpack of a function argument does not fold.
// CHECK-LABEL: func.func @unpack_argument
// CHECK-SAME: (%[[X:.*]]: !bitnet.ternary<2x8, i2>)
// CHECK: %[[U:.*]] = bitnet.unpack %[[X]]
// CHECK: return %[[U]]
func.func @unpack_argument(%x: !bitnet.ternary<2x8, i2>) -> tensor<2x8xi8> {
  %u = bitnet.unpack %x : !bitnet.ternary<2x8, i2> -> tensor<2x8xi8>
  return %u : tensor<2x8xi8>
}

// -----

// Tests that unpack of a constant into a dynamically shaped result does not
// fold.
// CHECK-LABEL: func.func @unpack_dynamic_result
// CHECK: %[[C:.*]] = bitnet.constant
// CHECK: bitnet.unpack %[[C]] : !bitnet.ternary<2x8, i2> -> tensor<?x8xi8>
func.func @unpack_dynamic_result() -> tensor<?x8xi8> {
  %c = bitnet.constant dense<85> : tensor<2x2xi8> -> !bitnet.ternary<2x8, i2>
  %u = bitnet.unpack %c : !bitnet.ternary<2x8, i2> -> tensor<?x8xi8>
  return %u : tensor<?x8xi8>
}

//===----------------------------------------------------------------------===//
// bitnet.squared_relu
//===----------------------------------------------------------------------===//

// -----

// Tests that squared_relu of a constant folds to relu(x)^2.
// CHECK-LABEL: func.func @squared_relu_constant
// CHECK: %[[Y:.*]] = arith.constant dense<[0.000000e+00, 0.000000e+00, 2.500000e-01, 9.000000e+00]> : tensor<4xf32>
// CHECK-NOT: bitnet.squared_relu
// CHECK: return %[[Y]]
func.func @squared_relu_constant() -> tensor<4xf32> {
  %x = arith.constant dense<[-2.0, 0.0, 0.5, 3.0]> : tensor<4xf32>
  %y = bitnet.squared_relu %x : tensor<4xf32>
  return %y : tensor<4xf32>
}

// -----

// Tests that squared_relu of a splat constant folds to a splat.
// CHECK-LABEL: func.func @squared_relu_splat
// CHECK: %[[Y:.*]] = arith.constant dense<1.600000e+01> : tensor<2x3xf32>
// CHECK: return %[[Y]]
func.func @squared_relu_splat() -> tensor<2x3xf32> {
  %x = arith.constant dense<-4.0> : tensor<2x3xf32>
  %n = arith.negf %x : tensor<2x3xf32>
  %y = bitnet.squared_relu %n : tensor<2x3xf32>
  return %y : tensor<2x3xf32>
}

// -----

// Tests that squared_relu of a function argument does not fold.
// CHECK-LABEL: func.func @squared_relu_argument
// CHECK-SAME: (%[[X:.*]]: tensor<4xf32>)
// CHECK: %[[Y:.*]] = bitnet.squared_relu %[[X]]
// CHECK: return %[[Y]]
func.func @squared_relu_argument(%x: tensor<4xf32>) -> tensor<4xf32> {
  %y = bitnet.squared_relu %x : tensor<4xf32>
  return %y : tensor<4xf32>
}

//===----------------------------------------------------------------------===//
// Ops without folds
//===----------------------------------------------------------------------===//

// -----

// Tests that a linear layer on a constant weight keeps its bitnet.constant
// operand and is not folded away.
// CHECK-LABEL: func.func @bitlinear_constant_weight
// CHECK-DAG: %[[W:.*]] = bitnet.constant dense<85> : tensor<4x2xi8> -> !bitnet.ternary<4x8, i2>
// CHECK-DAG: %[[S:.*]] = arith.constant dense<1.000000e+00> : tensor<f32>
// CHECK: %[[Y:.*]] = bitnet.bitlinear %{{.*}}, %[[W]] scale %[[S]]
// CHECK: return %[[Y]]
func.func @bitlinear_constant_weight(%x: tensor<2x8xf32>) -> tensor<2x4xf32> {
  %w = bitnet.constant dense<85> : tensor<4x2xi8> -> !bitnet.ternary<4x8, i2>
  %s = arith.constant dense<1.0> : tensor<f32>
  %y = bitnet.bitlinear %x, %w scale %s : tensor<2x8xf32>, !bitnet.ternary<4x8, i2>, tensor<f32> -> tensor<2x4xf32>
  return %y : tensor<2x4xf32>
}
