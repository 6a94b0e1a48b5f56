// RUN: bitnet-opt %s -split-input-file | bitnet-opt -split-input-file | FileCheck %s
// RUN: bitnet-opt %s -split-input-file --mlir-print-op-generic | bitnet-opt -split-input-file | FileCheck %s

// Tests that !bitnet.ternary round-trips in every format, that the default
// row_major layout is accepted explicitly and then not printed.
// CHECK-LABEL: func.func @ternary_types
// CHECK-SAME: !bitnet.ternary<4x8, int8>
// CHECK-SAME: !bitnet.ternary<4x8, i2>
// CHECK-SAME: !bitnet.ternary<4x8, base3>
// CHECK-SAME: !bitnet.ternary<3x7, i2>
// CHECK-SAME: !bitnet.ternary<1x1, base3>)
// CHECK-NOT: row_major
func.func @ternary_types(%a: !bitnet.ternary<4x8, int8>,
                         %b: !bitnet.ternary<4x8, i2>,
                         %c: !bitnet.ternary<4x8, base3>,
                         %d: !bitnet.ternary<3x7, i2, row_major>,
                         %e: !bitnet.ternary<1x1, base3, row_major>) {
  return
}

// -----

// Tests that quantize_activations round-trips with static and dynamic shapes.
// CHECK-LABEL: func.func @quantize_activations
// CHECK-SAME: (%[[X:.*]]: tensor<4x256xf32>, %[[D:.*]]: tensor<?x?x16xf32>,
// CHECK: %{{.*}}, %{{.*}} = bitnet.quantize_activations %[[X]] : tensor<4x256xf32> -> tensor<4x256xi8>, tensor<4xf32>
// CHECK: %{{.*}}, %{{.*}} = bitnet.quantize_activations %[[D]] : tensor<?x?x16xf32> -> tensor<?x?x16xi8>, tensor<?x?xf32>
// CHECK: %{{.*}}, %{{.*}} = bitnet.quantize_activations %{{.*}} : tensor<16xf32> -> tensor<16xi8>, tensor<f32>
func.func @quantize_activations(%x: tensor<4x256xf32>, %d: tensor<?x?x16xf32>, %v: tensor<16xf32>) {
  %q, %s = bitnet.quantize_activations %x : tensor<4x256xf32> -> tensor<4x256xi8>, tensor<4xf32>
  %dq, %ds = bitnet.quantize_activations %d : tensor<?x?x16xf32> -> tensor<?x?x16xi8>, tensor<?x?xf32>
  %vq, %vs = bitnet.quantize_activations %v : tensor<16xf32> -> tensor<16xi8>, tensor<f32>
  return
}

// -----

// Tests that ternarize round-trips, also on a dynamically shaped input.
// CHECK-LABEL: func.func @ternarize
// CHECK-SAME: (%[[W:.*]]: tensor<256x512xf32>, %[[D:.*]]: tensor<?x512xf32>)
// CHECK: %{{.*}}, %{{.*}} = bitnet.ternarize %[[W]] : tensor<256x512xf32> -> tensor<256x512xi8>, tensor<f32>
// CHECK: %{{.*}}, %{{.*}} = bitnet.ternarize %[[D]] : tensor<?x512xf32> -> tensor<?x512xi8>, tensor<f32>
func.func @ternarize(%w: tensor<256x512xf32>, %d: tensor<?x512xf32>) {
  %wq, %ws = bitnet.ternarize %w : tensor<256x512xf32> -> tensor<256x512xi8>, tensor<f32>
  %dq, %ds = bitnet.ternarize %d : tensor<?x512xf32> -> tensor<?x512xi8>, tensor<f32>
  return
}

// -----

// Tests that pack round-trips into every format and from a matrix with a
// dynamic extent.
// CHECK-LABEL: func.func @pack
// CHECK-SAME: (%[[W:.*]]: tensor<4x8xi8>, %[[D:.*]]: tensor<?x8xi8>)
// CHECK: bitnet.pack %[[W]] : tensor<4x8xi8> -> !bitnet.ternary<4x8, int8>
// CHECK: bitnet.pack %[[W]] : tensor<4x8xi8> -> !bitnet.ternary<4x8, i2>
// CHECK: bitnet.pack %[[W]] : tensor<4x8xi8> -> !bitnet.ternary<4x8, base3>
// CHECK: bitnet.pack %[[D]] : tensor<?x8xi8> -> !bitnet.ternary<4x8, i2>
func.func @pack(%w: tensor<4x8xi8>, %d: tensor<?x8xi8>) -> (!bitnet.ternary<4x8, int8>, !bitnet.ternary<4x8, i2>, !bitnet.ternary<4x8, base3>, !bitnet.ternary<4x8, i2>) {
  %a = bitnet.pack %w : tensor<4x8xi8> -> !bitnet.ternary<4x8, int8>
  %b = bitnet.pack %w : tensor<4x8xi8> -> !bitnet.ternary<4x8, i2>
  %c = bitnet.pack %w : tensor<4x8xi8> -> !bitnet.ternary<4x8, base3, row_major>
  %d2 = bitnet.pack %d : tensor<?x8xi8> -> !bitnet.ternary<4x8, i2>
  return %a, %b, %c, %d2 : !bitnet.ternary<4x8, int8>, !bitnet.ternary<4x8, i2>, !bitnet.ternary<4x8, base3>, !bitnet.ternary<4x8, i2>
}

// -----

// Tests that unpack round-trips from every format and to a matrix with a
// dynamic extent.
// CHECK-LABEL: func.func @unpack
// CHECK-SAME: (%[[A:.*]]: !bitnet.ternary<4x8, int8>, %[[B:.*]]: !bitnet.ternary<4x8, i2>, %[[C:.*]]: !bitnet.ternary<4x8, base3>)
// CHECK: bitnet.unpack %[[A]] : !bitnet.ternary<4x8, int8> -> tensor<4x8xi8>
// CHECK: bitnet.unpack %[[B]] : !bitnet.ternary<4x8, i2> -> tensor<4x8xi8>
// CHECK: bitnet.unpack %[[C]] : !bitnet.ternary<4x8, base3> -> tensor<4x8xi8>
// CHECK: bitnet.unpack %[[B]] : !bitnet.ternary<4x8, i2> -> tensor<?x?xi8>
func.func @unpack(%a: !bitnet.ternary<4x8, int8>, %b: !bitnet.ternary<4x8, i2>, %c: !bitnet.ternary<4x8, base3>) -> (tensor<4x8xi8>, tensor<4x8xi8>, tensor<4x8xi8>, tensor<?x?xi8>) {
  %0 = bitnet.unpack %a : !bitnet.ternary<4x8, int8> -> tensor<4x8xi8>
  %1 = bitnet.unpack %b : !bitnet.ternary<4x8, i2> -> tensor<4x8xi8>
  %2 = bitnet.unpack %c : !bitnet.ternary<4x8, base3> -> tensor<4x8xi8>
  %3 = bitnet.unpack %b : !bitnet.ternary<4x8, i2> -> tensor<?x?xi8>
  return %0, %1, %2, %3 : tensor<4x8xi8>, tensor<4x8xi8>, tensor<4x8xi8>, tensor<?x?xi8>
}

// -----

// Tests that constant round-trips in every format with its storage bytes,
// including a short last byte (K = 7 in i2 is 2 bytes, K = 7 in base3 is 2).
// CHECK-LABEL: func.func @constant
// CHECK: bitnet.constant dense<{{\[\[}}1, 0, -1], [0, 0, 1]]> : tensor<2x3xi8> -> !bitnet.ternary<2x3, int8>
// CHECK: bitnet.constant dense<{{\[\[}}36, 1], [-111, 2]]> : tensor<2x2xi8> -> !bitnet.ternary<2x8, i2>
// CHECK: bitnet.constant dense<{{\[\[}}121, 4]]> : tensor<1x2xi8> -> !bitnet.ternary<1x7, base3>
// CHECK: bitnet.constant dense<85> : tensor<3x2xi8> -> !bitnet.ternary<3x7, i2>
func.func @constant() -> (!bitnet.ternary<2x3, int8>, !bitnet.ternary<2x8, i2>, !bitnet.ternary<1x7, base3>, !bitnet.ternary<3x7, i2>) {
  %a = bitnet.constant dense<[[1, 0, -1], [0, 0, 1]]> : tensor<2x3xi8> -> !bitnet.ternary<2x3, int8>
  %b = bitnet.constant dense<[[36, 1], [145, 2]]> : tensor<2x2xi8> -> !bitnet.ternary<2x8, i2>
  %c = bitnet.constant dense<[[121, 4]]> : tensor<1x2xi8> -> !bitnet.ternary<1x7, base3, row_major>
  %d = bitnet.constant dense<85> : tensor<3x2xi8> -> !bitnet.ternary<3x7, i2>
  return %a, %b, %c, %d : !bitnet.ternary<2x3, int8>, !bitnet.ternary<2x8, i2>, !bitnet.ternary<1x7, base3>, !bitnet.ternary<3x7, i2>
}

// -----

// Tests that ternary_matmul round-trips with 1-D, 2-D and dynamic 3-D inputs.
// CHECK-LABEL: func.func @ternary_matmul
// CHECK-SAME: (%[[X:.*]]: tensor<4x512xi8>, %[[V:.*]]: tensor<512xi8>, %[[D:.*]]: tensor<?x?x512xi8>, %[[W:.*]]: !bitnet.ternary<256x512, i2>)
// CHECK: bitnet.ternary_matmul %[[X]], %[[W]] : tensor<4x512xi8>, !bitnet.ternary<256x512, i2> -> tensor<4x256xi32>
// CHECK: bitnet.ternary_matmul %[[V]], %[[W]] : tensor<512xi8>, !bitnet.ternary<256x512, i2> -> tensor<256xi32>
// CHECK: bitnet.ternary_matmul %[[D]], %[[W]] : tensor<?x?x512xi8>, !bitnet.ternary<256x512, i2> -> tensor<?x?x256xi32>
func.func @ternary_matmul(%x: tensor<4x512xi8>, %v: tensor<512xi8>, %d: tensor<?x?x512xi8>, %w: !bitnet.ternary<256x512, i2>) {
  %0 = bitnet.ternary_matmul %x, %w : tensor<4x512xi8>, !bitnet.ternary<256x512, i2> -> tensor<4x256xi32>
  %1 = bitnet.ternary_matmul %v, %w : tensor<512xi8>, !bitnet.ternary<256x512, i2> -> tensor<256xi32>
  %2 = bitnet.ternary_matmul %d, %w : tensor<?x?x512xi8>, !bitnet.ternary<256x512, i2> -> tensor<?x?x256xi32>
  return
}

// -----

// Tests that bitlinear round-trips with weights in every format and with a
// dynamic number of tokens.
// CHECK-LABEL: func.func @bitlinear
// CHECK-SAME: (%[[X:.*]]: tensor<4x512xf32>, %[[D:.*]]: tensor<?x512xf32>, %[[A:.*]]: !bitnet.ternary<256x512, int8>, %[[B:.*]]: !bitnet.ternary<256x512, i2>, %[[C:.*]]: !bitnet.ternary<256x512, base3>, %[[S:.*]]: tensor<f32>)
// CHECK: bitnet.bitlinear %[[X]], %[[A]] scale %[[S]] : tensor<4x512xf32>, !bitnet.ternary<256x512, int8>, tensor<f32> -> tensor<4x256xf32>
// CHECK: bitnet.bitlinear %[[X]], %[[B]] scale %[[S]] : tensor<4x512xf32>, !bitnet.ternary<256x512, i2>, tensor<f32> -> tensor<4x256xf32>
// CHECK: bitnet.bitlinear %[[X]], %[[C]] scale %[[S]] : tensor<4x512xf32>, !bitnet.ternary<256x512, base3>, tensor<f32> -> tensor<4x256xf32>
// CHECK: bitnet.bitlinear %[[D]], %[[B]] scale %[[S]] : tensor<?x512xf32>, !bitnet.ternary<256x512, i2>, tensor<f32> -> tensor<?x256xf32>
func.func @bitlinear(%x: tensor<4x512xf32>, %d: tensor<?x512xf32>,
                     %a: !bitnet.ternary<256x512, int8>,
                     %b: !bitnet.ternary<256x512, i2>,
                     %c: !bitnet.ternary<256x512, base3>, %s: tensor<f32>) {
  %0 = bitnet.bitlinear %x, %a scale %s : tensor<4x512xf32>, !bitnet.ternary<256x512, int8>, tensor<f32> -> tensor<4x256xf32>
  %1 = bitnet.bitlinear %x, %b scale %s : tensor<4x512xf32>, !bitnet.ternary<256x512, i2>, tensor<f32> -> tensor<4x256xf32>
  %2 = bitnet.bitlinear %x, %c scale %s : tensor<4x512xf32>, !bitnet.ternary<256x512, base3>, tensor<f32> -> tensor<4x256xf32>
  %3 = bitnet.bitlinear %d, %b scale %s : tensor<?x512xf32>, !bitnet.ternary<256x512, i2>, tensor<f32> -> tensor<?x256xf32>
  return
}

// -----

// Tests that rmsnorm round-trips, that the default epsilon is not printed and
// that another one is.
// CHECK-LABEL: func.func @rmsnorm
// CHECK-SAME: (%[[X:.*]]: tensor<4x256xf32>, %[[D:.*]]: tensor<?x?x256xf32>, %[[G:.*]]: tensor<256xf32>)
// CHECK: bitnet.rmsnorm %[[X]], %[[G]] : tensor<4x256xf32>, tensor<256xf32> -> tensor<4x256xf32>
// CHECK: bitnet.rmsnorm %[[X]], %[[G]] : tensor<4x256xf32>, tensor<256xf32> -> tensor<4x256xf32>
// CHECK: bitnet.rmsnorm %[[D]], %[[G]] {epsilon = 9.99999997E-7 : f32} : tensor<?x?x256xf32>, tensor<256xf32> -> tensor<?x?x256xf32>
func.func @rmsnorm(%x: tensor<4x256xf32>, %d: tensor<?x?x256xf32>, %g: tensor<256xf32>) {
  %0 = bitnet.rmsnorm %x, %g : tensor<4x256xf32>, tensor<256xf32> -> tensor<4x256xf32>
  %1 = bitnet.rmsnorm %x, %g {epsilon = 1.0e-5 : f32} : tensor<4x256xf32>, tensor<256xf32> -> tensor<4x256xf32>
  %2 = bitnet.rmsnorm %d, %g {epsilon = 1.0e-6 : f32} : tensor<?x?x256xf32>, tensor<256xf32> -> tensor<?x?x256xf32>
  return
}

// -----

// Tests that squared_relu round-trips with static and dynamic shapes.
// CHECK-LABEL: func.func @squared_relu
// CHECK-SAME: (%[[X:.*]]: tensor<4x1024xf32>, %[[D:.*]]: tensor<?xf32>)
// CHECK: bitnet.squared_relu %[[X]] : tensor<4x1024xf32>
// CHECK: bitnet.squared_relu %[[D]] : tensor<?xf32>
func.func @squared_relu(%x: tensor<4x1024xf32>, %d: tensor<?xf32>) {
  %0 = bitnet.squared_relu %x : tensor<4x1024xf32>
  %1 = bitnet.squared_relu %d : tensor<?xf32>
  return
}

// -----

// Tests that rope round-trips with i32 and i64 positions, both styles, a
// non-default theta and dynamic token and head counts.
// CHECK-LABEL: func.func @rope
// CHECK-SAME: (%[[Q:.*]]: tensor<4x8x64xf32>, %[[P:.*]]: tensor<4xi32>, %[[D:.*]]: tensor<?x?x64xf32>, %[[P64:.*]]: tensor<?xi64>)
// CHECK: bitnet.rope %[[Q]], %[[P]] : tensor<4x8x64xf32>, tensor<4xi32> -> tensor<4x8x64xf32>
// CHECK: bitnet.rope %[[Q]], %[[P]] {theta = 5.000000e+05 : f32} : tensor<4x8x64xf32>, tensor<4xi32> -> tensor<4x8x64xf32>
// CHECK: bitnet.rope %[[D]], %[[P64]] {style = #bitnet.rope_style<interleaved>} : tensor<?x?x64xf32>, tensor<?xi64> -> tensor<?x?x64xf32>
// CHECK: bitnet.rope %[[Q]], %[[P]] : tensor<4x8x64xf32>, tensor<4xi32> -> tensor<4x8x64xf32>
func.func @rope(%q: tensor<4x8x64xf32>, %p: tensor<4xi32>, %d: tensor<?x?x64xf32>, %p64: tensor<?xi64>) {
  %0 = bitnet.rope %q, %p : tensor<4x8x64xf32>, tensor<4xi32> -> tensor<4x8x64xf32>
  %1 = bitnet.rope %q, %p {theta = 500000.0 : f32} : tensor<4x8x64xf32>, tensor<4xi32> -> tensor<4x8x64xf32>
  %2 = bitnet.rope %d, %p64 {style = #bitnet.rope_style<interleaved>} : tensor<?x?x64xf32>, tensor<?xi64> -> tensor<?x?x64xf32>
  %3 = bitnet.rope %q, %p {style = #bitnet.rope_style<half>, theta = 10000.0 : f32} : tensor<4x8x64xf32>, tensor<4xi32> -> tensor<4x8x64xf32>
  return
}

// -----

// Tests that attention round-trips for grouped-query attention with an i32
// position and the default scale.
// CHECK-LABEL: func.func @attention_gqa
// CHECK-SAME: (%[[Q:.*]]: tensor<1x8x64xf32>, %[[K:.*]]: tensor<1x2x64xf32>, %[[V:.*]]: tensor<1x2x64xf32>, %[[KC:.*]]: tensor<128x2x64xf32>, %[[VC:.*]]: tensor<128x2x64xf32>, %[[P:.*]]: tensor<i32>)
// CHECK: %{{.*}}, %{{.*}}, %{{.*}} = bitnet.attention %[[Q]], %[[K]], %[[V]], %[[KC]], %[[VC]], %[[P]] : tensor<1x8x64xf32>, tensor<1x2x64xf32>, tensor<1x2x64xf32>, tensor<128x2x64xf32>, tensor<128x2x64xf32>, tensor<i32> -> tensor<1x8x64xf32>, tensor<128x2x64xf32>, tensor<128x2x64xf32>
func.func @attention_gqa(%q: tensor<1x8x64xf32>, %k: tensor<1x2x64xf32>, %v: tensor<1x2x64xf32>,
                         %kc: tensor<128x2x64xf32>, %vc: tensor<128x2x64xf32>, %p: tensor<i32>) {
  %o, %kc1, %vc1 = bitnet.attention %q, %k, %v, %kc, %vc, %p
      : tensor<1x8x64xf32>, tensor<1x2x64xf32>, tensor<1x2x64xf32>,
        tensor<128x2x64xf32>, tensor<128x2x64xf32>, tensor<i32>
      -> tensor<1x8x64xf32>, tensor<128x2x64xf32>, tensor<128x2x64xf32>
  return
}

// -----

// Tests that attention round-trips for multi-head attention with an i64
// position and an explicit scale.
// CHECK-LABEL: func.func @attention_mha
// CHECK: %{{.*}}, %{{.*}}, %{{.*}} = bitnet.attention %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} {scale = 1.250000e-01 : f32} : tensor<4x2x16xf32>, tensor<4x2x16xf32>, tensor<4x2x16xf32>, tensor<4x2x16xf32>, tensor<4x2x16xf32>, tensor<i64> -> tensor<4x2x16xf32>, tensor<4x2x16xf32>, tensor<4x2x16xf32>
func.func @attention_mha(%q: tensor<4x2x16xf32>, %kc: tensor<4x2x16xf32>, %p: tensor<i64>) {
  %o, %kc1, %vc1 = bitnet.attention %q, %q, %q, %kc, %kc, %p {scale = 0.125 : f32}
      : tensor<4x2x16xf32>, tensor<4x2x16xf32>, tensor<4x2x16xf32>,
        tensor<4x2x16xf32>, tensor<4x2x16xf32>, tensor<i64>
      -> tensor<4x2x16xf32>, tensor<4x2x16xf32>, tensor<4x2x16xf32>
  return
}

// -----

// Tests that embedding and dense_matmul round-trip with f32 and f16 weights.
// CHECK-LABEL: func.func @embedding_and_head
// CHECK: bitnet.embedding %{{.*}}, %{{.*}} : tensor<128x64xf16>, tensor<4xi32> -> tensor<4x64xf32>
// CHECK: bitnet.dense_matmul %{{.*}}, %{{.*}} : tensor<4x64xf32>, tensor<128x64xf16> -> tensor<4x128xf32>
// CHECK: bitnet.dense_matmul %{{.*}}, %{{.*}} : tensor<2x4x64xf32>, tensor<10x64xf32> -> tensor<2x4x10xf32>
func.func @embedding_and_head(%t: tensor<128x64xf16>, %ids: tensor<4xi32>, %w: tensor<10x64xf32>, %x3: tensor<2x4x64xf32>) -> (tensor<4x128xf32>, tensor<2x4x10xf32>) {
  %x = bitnet.embedding %t, %ids : tensor<128x64xf16>, tensor<4xi32> -> tensor<4x64xf32>
  %y = bitnet.dense_matmul %x, %t : tensor<4x64xf32>, tensor<128x64xf16> -> tensor<4x128xf32>
  %z = bitnet.dense_matmul %x3, %w : tensor<2x4x64xf32>, tensor<10x64xf32> -> tensor<2x4x10xf32>
  return %y, %z : tensor<4x128xf32>, tensor<2x4x10xf32>
}

// -----

// Tests that an embedding of a blocked table round-trips.
// CHECK-LABEL: func.func @embedding_blocked
// CHECK: bitnet.embedding %{{.*}}, %{{.*}} {blocked = array<i64: 16, 32>} : tensor<8x2x16x32xf16>, tensor<4xi32> -> tensor<4x64xf32>
func.func @embedding_blocked(%t: tensor<8x2x16x32xf16>, %ids: tensor<4xi32>) -> tensor<4x64xf32> {
  %x = bitnet.embedding %t, %ids {blocked = array<i64: 16, 32>} : tensor<8x2x16x32xf16>, tensor<4xi32> -> tensor<4x64xf32>
  return %x : tensor<4x64xf32>
}

// -----

// Tests that batched attention round-trips with f16 caches of 4 slots.
// CHECK-LABEL: func.func @batched_attention
// CHECK: %{{.*}}, %{{.*}}, %{{.*}} = bitnet.batched_attention %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} : tensor<3x8x64xf32>, tensor<3x2x64xf32>, tensor<3x2x64xf32>, tensor<4x128x2x64xf16>, tensor<4x128x2x64xf16>, tensor<3xi32>, tensor<3xi32> -> tensor<3x8x64xf32>, tensor<4x128x2x64xf16>, tensor<4x128x2x64xf16>
func.func @batched_attention(%q: tensor<3x8x64xf32>, %k: tensor<3x2x64xf32>,
                             %kc: tensor<4x128x2x64xf16>, %p: tensor<3xi32>,
                             %s: tensor<3xi32>) {
  %o, %kc1, %vc1 = bitnet.batched_attention %q, %k, %k, %kc, %kc, %p, %s
      : tensor<3x8x64xf32>, tensor<3x2x64xf32>, tensor<3x2x64xf32>,
        tensor<4x128x2x64xf16>, tensor<4x128x2x64xf16>, tensor<3xi32>,
        tensor<3xi32>
      -> tensor<3x8x64xf32>, tensor<4x128x2x64xf16>, tensor<4x128x2x64xf16>
  return
}
