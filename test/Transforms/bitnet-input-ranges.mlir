// RUN: bitnet-opt %s -split-input-file -verify-diagnostics -pass-pipeline='builtin.module(func.func(bitnet-input-ranges))' | FileCheck %s

// Tests the ranges of a decoder step's integer arguments: token ids of a
// 97-row table [-97, 96] (through a reshape), a position of a 256-row cache
// taking 2 tokens [0, 254], and none for an argument whose values no op
// constrains (RoPE takes any position) or a float argument.
// CHECK-LABEL: func.func @step
// CHECK-SAME: %{{.*}}: tensor<1x2xi32> {bitnet.range = array<i64: -97, 96>}
// CHECK-SAME: %{{.*}}: tensor<i64> {bitnet.range = array<i64: 0, 254>}
// CHECK-SAME: %{{.*}}: tensor<2xi32>,
// CHECK-SAME: %{{.*}}: tensor<256x2x8xf32>,
func.func @step(%tokens: tensor<1x2xi32>, %pos: tensor<i64>, %p: tensor<2xi32>,
                %kc: tensor<256x2x8xf32>, %vc: tensor<256x2x8xf32>,
                %table: tensor<97x32xf32>)
    -> (tensor<2x32xf32>, tensor<256x2x8xf32>, tensor<256x2x8xf32>) {
  %flat = tensor.collapse_shape %tokens [[0, 1]] : tensor<1x2xi32> into tensor<2xi32>
  %x = bitnet.embedding %table, %flat : tensor<97x32xf32>, tensor<2xi32> -> tensor<2x32xf32>
  %q = tensor.expand_shape %x [[0], [1, 2]] output_shape [2, 4, 8] : tensor<2x32xf32> into tensor<2x4x8xf32>
  %kv = tensor.extract_slice %x[0, 0] [2, 16] [1, 1] : tensor<2x32xf32> to tensor<2x16xf32>
  %k = tensor.expand_shape %kv [[0], [1, 2]] output_shape [2, 2, 8] : tensor<2x16xf32> into tensor<2x2x8xf32>
  %qr = bitnet.rope %q, %p : tensor<2x4x8xf32>, tensor<2xi32> -> tensor<2x4x8xf32>
  %o, %kc1, %vc1 = bitnet.attention %qr, %k, %k, %kc, %vc, %pos
      : tensor<2x4x8xf32>, tensor<2x2x8xf32>, tensor<2x2x8xf32>,
        tensor<256x2x8xf32>, tensor<256x2x8xf32>, tensor<i64>
      -> tensor<2x4x8xf32>, tensor<256x2x8xf32>, tensor<256x2x8xf32>
  %y = tensor.collapse_shape %o [[0], [1, 2]] : tensor<2x4x8xf32> into tensor<2x32xf32>
  return %y, %kc1, %vc1 : tensor<2x32xf32>, tensor<256x2x8xf32>, tensor<256x2x8xf32>
}

// -----

// Tests that one argument used as token ids of two tables takes the
// intersection of their ranges.
// CHECK-LABEL: func.func @two_tables
// CHECK-SAME: tensor<3xi32> {bitnet.range = array<i64: -10, 9>}
func.func @two_tables(%ids: tensor<3xi32>, %a: tensor<10x4xf32>, %b: tensor<50x4xf32>)
    -> (tensor<3x4xf32>, tensor<3x4xf32>) {
  %x = bitnet.embedding %a, %ids : tensor<10x4xf32>, tensor<3xi32> -> tensor<3x4xf32>
  %y = bitnet.embedding %b, %ids : tensor<50x4xf32>, tensor<3xi32> -> tensor<3x4xf32>
  return %x, %y : tensor<3x4xf32>, tensor<3x4xf32>
}
