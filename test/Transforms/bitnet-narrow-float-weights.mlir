// RUN: bitnet-opt %s -split-input-file -bitnet-narrow-float-weights | FileCheck %s

// Tests that a table shared by an embedding and a head becomes one f16
// constant (0.1 rounds to the nearest f16, 0.0999755859375), used by both.
// CHECK-LABEL: func.func @tied
// CHECK: %[[T:.*]] = arith.constant dense<{{\[}}[1.000000e+00, 9.997550e-02], [-2.000000e+00, 6.550400e+04]]> : tensor<2x2xf16>
// CHECK: bitnet.embedding %[[T]], %{{.*}} : tensor<2x2xf16>
// CHECK: bitnet.dense_matmul %{{.*}}, %[[T]] : tensor<1x2xf32>, tensor<2x2xf16>
func.func @tied(%ids: tensor<1xi32>) -> tensor<1x2xf32> {
  %t = arith.constant dense<[[1.0, 0.1], [-2.0, 65504.0]]> : tensor<2x2xf32>
  %x = bitnet.embedding %t, %ids : tensor<2x2xf32>, tensor<1xi32> -> tensor<1x2xf32>
  %y = bitnet.dense_matmul %x, %t : tensor<1x2xf32>, tensor<2x2xf32> -> tensor<1x2xf32>
  return %y : tensor<1x2xf32>
}

// -----

// Tests that a constant with another use stays f32.
// CHECK-LABEL: func.func @shared_with_other_use
// CHECK: arith.constant dense<{{.*}}> : tensor<2x2xf32>
// CHECK-NOT: f16
// CHECK: return
func.func @shared_with_other_use(%x: tensor<1x2xf32>) -> (tensor<1x2xf32>, tensor<2x2xf32>) {
  %t = arith.constant dense<[[1.0, 0.1], [-2.0, 3.0]]> : tensor<2x2xf32>
  %y = bitnet.dense_matmul %x, %t : tensor<1x2xf32>, tensor<2x2xf32> -> tensor<1x2xf32>
  return %y, %t : tensor<1x2xf32>, tensor<2x2xf32>
}

// -----

// Tests precision=int8: one scale per row (absmax / 127; 1 for a zero row),
// codes rounded half to even, and the scales passed to both users.
// RUN: bitnet-opt %s -split-input-file -bitnet-narrow-float-weights=precision=int8 | FileCheck %s --check-prefix=INT8
// INT8-LABEL: func.func @tied_int8
// INT8-DAG: %[[Q:.*]] = arith.constant dense<{{\[}}[127, -64], [0, 0]]> : tensor<2x2xi8>
// INT8-DAG: %[[S:.*]] = arith.constant dense<[0.0157480314, 1.000000e+00]> : tensor<2xf32>
// INT8: bitnet.embedding %[[Q]], %{{.*}} scales %[[S]] : tensor<2x2xi8>, tensor<1xi32>, tensor<2xf32> -> tensor<1x2xf32>
// INT8: bitnet.dense_matmul %{{.*}}, %[[Q]] scales %[[S]] : tensor<1x2xf32>, tensor<2x2xi8>, tensor<2xf32> -> tensor<1x2xf32>
func.func @tied_int8(%ids: tensor<1xi32>) -> tensor<1x2xf32> {
  %t = arith.constant dense<[[2.0, -1.0], [0.0, 0.0]]> : tensor<2x2xf32>
  %x = bitnet.embedding %t, %ids : tensor<2x2xf32>, tensor<1xi32> -> tensor<1x2xf32>
  %y = bitnet.dense_matmul %x, %t : tensor<1x2xf32>, tensor<2x2xf32> -> tensor<1x2xf32>
  return %y : tensor<1x2xf32>
}

// -----

// Tests precision=int8 on an f16 table (a checkpoint's embedding): quantised
// per row like an f32 one; precision=f16 leaves it as it is.
// INT8-LABEL: func.func @f16_table_int8
// INT8-DAG: %[[Q:.*]] = arith.constant dense<{{\[}}[127, -64], [0, 0]]> : tensor<2x2xi8>
// INT8-DAG: %[[S:.*]] = arith.constant dense<[0.0157480314, 1.000000e+00]> : tensor<2xf32>
// INT8: bitnet.embedding %[[Q]], %{{.*}} scales %[[S]] : tensor<2x2xi8>, tensor<1xi32>, tensor<2xf32> -> tensor<1x2xf32>
// CHECK-LABEL: func.func @f16_table_int8
// CHECK: arith.constant dense<{{.*}}> : tensor<2x2xf16>
// CHECK: bitnet.embedding %{{.*}} : tensor<2x2xf16>
func.func @f16_table_int8(%ids: tensor<1xi32>) -> tensor<1x2xf32> {
  %t = arith.constant dense<[[2.0, -1.0], [0.0, 0.0]]> : tensor<2x2xf16>
  %x = bitnet.embedding %t, %ids : tensor<2x2xf16>, tensor<1xi32> -> tensor<1x2xf32>
  return %x : tensor<1x2xf32>
}

// -----

// Tests precision=w8a8: stored as with int8, and the dense layer (not the
// embedding) quantises its input; so does one whose weight was int8 already.
// RUN: bitnet-opt %s -split-input-file -bitnet-narrow-float-weights=precision=w8a8 | FileCheck %s --check-prefix=W8A8
// W8A8-LABEL: func.func @tied_w8a8
// W8A8-DAG: %[[Q:.*]] = arith.constant dense<{{\[}}[127, -64], [0, 0]]> : tensor<2x2xi8>
// W8A8-DAG: %[[S:.*]] = arith.constant dense<[0.0157480314, 1.000000e+00]> : tensor<2xf32>
// W8A8: bitnet.embedding %[[Q]], %{{.*}} scales %[[S]] : tensor<2x2xi8>
// W8A8: bitnet.dense_matmul %{{.*}}, %[[Q]] scales %[[S]] {quantize_input} : tensor<1x2xf32>, tensor<2x2xi8>
// W8A8: bitnet.dense_matmul %{{.*}} scales %{{.*}} {quantize_input} : tensor<1x2xf32>, tensor<3x2xi8>
// INT8-LABEL: func.func @tied_w8a8
// INT8-NOT: quantize_input
func.func @tied_w8a8(%ids: tensor<1xi32>) -> (tensor<1x2xf32>, tensor<1x3xf32>) {
  %t = arith.constant dense<[[2.0, -1.0], [0.0, 0.0]]> : tensor<2x2xf32>
  %x = bitnet.embedding %t, %ids : tensor<2x2xf32>, tensor<1xi32> -> tensor<1x2xf32>
  %y = bitnet.dense_matmul %x, %t : tensor<1x2xf32>, tensor<2x2xf32> -> tensor<1x2xf32>
  %w = arith.constant dense<[[1, 2], [3, 4], [5, 6]]> : tensor<3x2xi8>
  %s = arith.constant dense<[1.0, 2.0, 3.0]> : tensor<3xf32>
  %z = bitnet.dense_matmul %x, %w scales %s : tensor<1x2xf32>, tensor<3x2xi8>, tensor<3xf32> -> tensor<1x3xf32>
  return %y, %z : tensor<1x2xf32>, tensor<1x3xf32>
}

// -----

// Tests precision=bf16: a tied f32 table becomes one bf16 constant (0.1
// rounds to the nearest bf16, 0.10009765625; 65504 to 65536, past f16's
// range); an f16 table stays f16; int8 quantises a bf16 table per row.
// RUN: bitnet-opt %s -split-input-file -bitnet-narrow-float-weights=precision=bf16 | FileCheck %s --check-prefix=BF16
// BF16-LABEL: func.func @tied_bf16
// BF16: %[[T:.*]] = arith.constant dense<{{\[}}[1.000000e+00, 1.000980e-01], [-2.000000e+00, 6.553600e+04]]> : tensor<2x2xbf16>
// BF16: bitnet.embedding %[[T]], %{{.*}} : tensor<2x2xbf16>
// BF16: bitnet.dense_matmul %{{.*}}, %[[T]] : tensor<1x2xf32>, tensor<2x2xbf16>
// BF16: arith.constant dense<{{.*}}> : tensor<2x2xf16>
// INT8-LABEL: func.func @tied_bf16
// INT8: arith.constant dense<{{\[}}[127, 13], [0, 127]]> : tensor<2x2xi8>
// INT8: arith.constant dense<{{\[}}[127, -64], [0, 0]]> : tensor<2x2xi8>
func.func @tied_bf16(%ids: tensor<1xi32>) -> (tensor<1x2xf32>, tensor<1x2xf32>) {
  %t = arith.constant dense<[[1.0, 0.1], [-2.0, 65504.0]]> : tensor<2x2xf32>
  %x = bitnet.embedding %t, %ids : tensor<2x2xf32>, tensor<1xi32> -> tensor<1x2xf32>
  %y = bitnet.dense_matmul %x, %t : tensor<1x2xf32>, tensor<2x2xf32> -> tensor<1x2xf32>
  %h = arith.constant dense<[[2.0, -1.0], [0.0, 0.0]]> : tensor<2x2xf16>
  %z = bitnet.dense_matmul %x, %h : tensor<1x2xf32>, tensor<2x2xf16> -> tensor<1x2xf32>
  return %y, %z : tensor<1x2xf32>, tensor<1x2xf32>
}

// -----

// INT8-LABEL: func.func @bf16_table_int8
// INT8-DAG: %[[Q:.*]] = arith.constant dense<{{\[}}[127, -64], [0, 0]]> : tensor<2x2xi8>
// INT8-DAG: %[[S:.*]] = arith.constant dense<[0.0157480314, 1.000000e+00]> : tensor<2xf32>
// INT8: bitnet.embedding %[[Q]], %{{.*}} scales %[[S]] : tensor<2x2xi8>
func.func @bf16_table_int8(%ids: tensor<1xi32>) -> tensor<1x2xf32> {
  %t = arith.constant dense<[[2.0, -1.0], [0.0, 0.0]]> : tensor<2x2xbf16>
  %x = bitnet.embedding %t, %ids : tensor<2x2xbf16>, tensor<1xi32> -> tensor<1x2xf32>
  return %x : tensor<1x2xf32>
}
