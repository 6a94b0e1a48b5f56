// RUN: bitnet-opt %s -split-input-file -bitnet-pack-weights | FileCheck %s --check-prefixes=CHECK,I2
// RUN: bitnet-opt %s -split-input-file -bitnet-pack-weights=format=i2 | FileCheck %s --check-prefixes=CHECK,I2
// RUN: bitnet-opt %s -split-input-file -bitnet-pack-weights=format=base3 | FileCheck %s --check-prefixes=CHECK,BASE3
// RUN: bitnet-opt %s -split-input-file -bitnet-pack-weights=format=int8 | FileCheck %s --check-prefixes=CHECK,INT8
// RUN: not bitnet-opt %s -split-input-file -bitnet-pack-weights=format=foo 2>&1 | FileCheck %s --check-prefix=BADFORMAT

// Tests that an unknown format is rejected with the known ones listed.
// BADFORMAT: for the --format option: Cannot find option named 'foo'!

// Tests that a constant weight of a bitlinear is re-encoded at compile time
// (row 0 is [1, 0, -1, 0, 1, 1, -1, -1]) and that no unpack or pack is left.
// CHECK-LABEL: func.func @constant_weight
// I2: %[[W:.*]] = bitnet.constant dense<{{\[\[}}70, 10], [85, 85], [-86, -86], [0, 0]]> : tensor<4x2xi8> -> !bitnet.ternary<4x8, i2>
// I2: bitnet.bitlinear %{{.*}}, %[[W]] scale %{{.*}} : tensor<2x8xf32>, !bitnet.ternary<4x8, i2>, tensor<f32> -> tensor<2x4xf32>
// BASE3: %[[W:.*]] = bitnet.constant dense<{{\[\[}}-62, 110], [121, 121], [-14, -122], [0, 108]]> : tensor<4x2xi8> -> !bitnet.ternary<4x8, base3>
// BASE3: bitnet.bitlinear %{{.*}}, %[[W]] scale %{{.*}} : tensor<2x8xf32>, !bitnet.ternary<4x8, base3>, tensor<f32> -> tensor<2x4xf32>
// INT8: %[[W:.*]] = bitnet.constant dense<{{\[\[}}1, 0, -1, 0, 1, 1, -1, -1], [0, 0, 0, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1, 1, 1], [-1, -1, -1, -1, -1, -1, -1, -1]]> : tensor<4x8xi8> -> !bitnet.ternary<4x8, int8>
// INT8: bitnet.bitlinear %{{.*}}, %[[W]] scale %{{.*}} : tensor<2x8xf32>, !bitnet.ternary<4x8, int8>, tensor<f32> -> tensor<2x4xf32>
// CHECK-NOT: bitnet.unpack
// CHECK-NOT: bitnet.pack
func.func @constant_weight(%x: tensor<2x8xf32>, %s: tensor<f32>) -> tensor<2x4xf32> {
  %w = bitnet.constant dense<[[1, 0, -1, 0, 1, 1, -1, -1],
                              [0, 0, 0, 0, 0, 0, 0, 0],
                              [1, 1, 1, 1, 1, 1, 1, 1],
                              [-1, -1, -1, -1, -1, -1, -1, -1]]> : tensor<4x8xi8> -> !bitnet.ternary<4x8, int8>
  %y = bitnet.bitlinear %x, %w scale %s : tensor<2x8xf32>, !bitnet.ternary<4x8, int8>, tensor<f32> -> tensor<2x4xf32>
  return %y : tensor<2x4xf32>
}

// -----

// Tests that a non-constant weight of a ternary_matmul is converted at run
// time through unpack and pack, unless it is already in the format.
// CHECK-LABEL: func.func @argument_weight
// CHECK-SAME: (%[[X:.*]]: tensor<2x8xi8>, %[[W:.*]]: !bitnet.ternary<4x8, base3>)
// I2: %[[U:.*]] = bitnet.unpack %[[W]] : !bitnet.ternary<4x8, base3> -> tensor<4x8xi8>
// I2: %[[P:.*]] = bitnet.pack %[[U]] : tensor<4x8xi8> -> !bitnet.ternary<4x8, i2>
// I2: bitnet.ternary_matmul %[[X]], %[[P]] : tensor<2x8xi8>, !bitnet.ternary<4x8, i2> -> tensor<2x4xi32>
// BASE3-NOT: bitnet.unpack
// BASE3: bitnet.ternary_matmul %[[X]], %[[W]] : tensor<2x8xi8>, !bitnet.ternary<4x8, base3> -> tensor<2x4xi32>
// INT8: %[[U:.*]] = bitnet.unpack %[[W]] : !bitnet.ternary<4x8, base3> -> tensor<4x8xi8>
// INT8: %[[P:.*]] = bitnet.pack %[[U]] : tensor<4x8xi8> -> !bitnet.ternary<4x8, int8>
// INT8: bitnet.ternary_matmul %[[X]], %[[P]] : tensor<2x8xi8>, !bitnet.ternary<4x8, int8> -> tensor<2x4xi32>
func.func @argument_weight(%x: tensor<2x8xi8>, %w: !bitnet.ternary<4x8, base3>) -> tensor<2x4xi32> {
  %y = bitnet.ternary_matmul %x, %w : tensor<2x8xi8>, !bitnet.ternary<4x8, base3> -> tensor<2x4xi32>
  return %y : tensor<2x4xi32>
}

// -----

// Tests that a weight packed at run time from int8 values becomes a pack
// straight into the target format: pack(unpack(pack(x))) of one type folds.
// CHECK-LABEL: func.func @packed_at_run_time
// CHECK-SAME: (%[[X:.*]]: tensor<2x8xf32>, %[[V:.*]]: tensor<4x8xi8>, %[[S:.*]]: tensor<f32>)
// I2: %[[P:.*]] = bitnet.pack %[[V]] : tensor<4x8xi8> -> !bitnet.ternary<4x8, i2>
// I2-NOT: bitnet.unpack
// I2: bitnet.bitlinear %[[X]], %[[P]] scale %[[S]]
// BASE3: %[[P0:.*]] = bitnet.pack %[[V]] : tensor<4x8xi8> -> !bitnet.ternary<4x8, i2>
// BASE3: %[[U:.*]] = bitnet.unpack %[[P0]] : !bitnet.ternary<4x8, i2> -> tensor<4x8xi8>
// BASE3: %[[P:.*]] = bitnet.pack %[[U]] : tensor<4x8xi8> -> !bitnet.ternary<4x8, base3>
// BASE3: bitnet.bitlinear %[[X]], %[[P]] scale %[[S]]
func.func @packed_at_run_time(%x: tensor<2x8xf32>, %v: tensor<4x8xi8>, %s: tensor<f32>) -> tensor<2x4xf32> {
  %p = bitnet.pack %v : tensor<4x8xi8> -> !bitnet.ternary<4x8, i2>
  %y = bitnet.bitlinear %x, %p scale %s : tensor<2x8xf32>, !bitnet.ternary<4x8, i2>, tensor<f32> -> tensor<2x4xf32>
  return %y : tensor<2x4xf32>
}

// -----

// Tests that a ternary value that feeds no linear layer is left alone.
// CHECK-LABEL: func.func @not_a_linear_layer
// CHECK-SAME: (%[[W:.*]]: !bitnet.ternary<4x8, base3>)
// CHECK-NEXT: %[[U:.*]] = bitnet.unpack %[[W]] : !bitnet.ternary<4x8, base3> -> tensor<4x8xi8>
// CHECK-NEXT: return %[[U]]
func.func @not_a_linear_layer(%w: !bitnet.ternary<4x8, base3>) -> tensor<4x8xi8> {
  %u = bitnet.unpack %w : !bitnet.ternary<4x8, base3> -> tensor<4x8xi8>
  return %u : tensor<4x8xi8>
}

// -----

// Tests that a constant with a row that is not a multiple of 4 or 5 values
// is re-encoded with zero-weight padding (K = 6: i2 pads two codes, base3
// pads four).
// CHECK-LABEL: func.func @padded_constant
// I2: bitnet.constant dense<{{\[\[}}-86, 80]]> : tensor<1x2xi8> -> !bitnet.ternary<1x6, i2>
// BASE3: bitnet.constant dense<{{\[\[}}80, 120]]> : tensor<1x2xi8> -> !bitnet.ternary<1x6, base3>
// INT8: bitnet.constant dense<{{\[\[}}1, 1, 1, 1, -1, -1]]> : tensor<1x6xi8> -> !bitnet.ternary<1x6, int8>
func.func @padded_constant(%x: tensor<6xi8>) -> tensor<1xi32> {
  %w = bitnet.constant dense<[[1, 1, 1, 1, -1, -1]]> : tensor<1x6xi8> -> !bitnet.ternary<1x6, int8>
  %y = bitnet.ternary_matmul %x, %w : tensor<6xi8>, !bitnet.ternary<1x6, int8> -> tensor<1xi32>
  return %y : tensor<1xi32>
}
