// RUN: bitnet-opt %s -split-input-file -bitnet-narrow-kv-cache | FileCheck %s

// Tests that caches that are state (an argument read by one attention, its
// update returned) become f16 in the signature, the attention op and the
// return.
// CHECK-LABEL: func.func @step
// CHECK-SAME: %{{.*}}: tensor<8x2x4xf16>, %{{.*}}: tensor<8x2x4xf16>, %{{.*}}: tensor<i32>) -> (tensor<1x4x4xf32>, tensor<8x2x4xf16>, tensor<8x2x4xf16>)
// CHECK: bitnet.attention {{.*}} -> tensor<1x4x4xf32>, tensor<8x2x4xf16>, tensor<8x2x4xf16>
func.func @step(%q: tensor<1x4x4xf32>, %k: tensor<1x2x4xf32>, %kc: tensor<8x2x4xf32>, %vc: tensor<8x2x4xf32>, %p: tensor<i32>)
    -> (tensor<1x4x4xf32>, tensor<8x2x4xf32>, tensor<8x2x4xf32>) {
  %o, %kc1, %vc1 = bitnet.attention %q, %k, %k, %kc, %vc, %p
      : tensor<1x4x4xf32>, tensor<1x2x4xf32>, tensor<1x2x4xf32>, tensor<8x2x4xf32>, tensor<8x2x4xf32>, tensor<i32>
      -> tensor<1x4x4xf32>, tensor<8x2x4xf32>, tensor<8x2x4xf32>
  return %o, %kc1, %vc1 : tensor<1x4x4xf32>, tensor<8x2x4xf32>, tensor<8x2x4xf32>
}

// -----

// Tests that a cache the function also returns as it came, or that is not
// an argument, stays f32.
// CHECK-LABEL: func.func @not_state
// CHECK-NOT: f16
func.func @not_state(%q: tensor<1x4x4xf32>, %k: tensor<1x2x4xf32>, %kc: tensor<8x2x4xf32>, %p: tensor<i32>)
    -> (tensor<1x4x4xf32>, tensor<8x2x4xf32>, tensor<8x2x4xf32>) {
  %vc = arith.constant dense<0.0> : tensor<8x2x4xf32>
  %o, %kc1, %vc1 = bitnet.attention %q, %k, %k, %kc, %vc, %p
      : tensor<1x4x4xf32>, tensor<1x2x4xf32>, tensor<1x2x4xf32>, tensor<8x2x4xf32>, tensor<8x2x4xf32>, tensor<i32>
      -> tensor<1x4x4xf32>, tensor<8x2x4xf32>, tensor<8x2x4xf32>
  return %o, %kc, %vc1 : tensor<1x4x4xf32>, tensor<8x2x4xf32>, tensor<8x2x4xf32>
}

// -----

// Tests that the caches of batched attention, slots and all, become f16.
// CHECK-LABEL: func.func @batched_step
// CHECK-SAME: %{{.*}}: tensor<3x8x2x4xf16>, %{{.*}}: tensor<3x8x2x4xf16>, %{{.*}}: tensor<2xi32>, %{{.*}}: tensor<2xi32>) -> (tensor<2x4x4xf32>, tensor<3x8x2x4xf16>, tensor<3x8x2x4xf16>)
// CHECK: bitnet.batched_attention {{.*}} -> tensor<2x4x4xf32>, tensor<3x8x2x4xf16>, tensor<3x8x2x4xf16>
func.func @batched_step(%q: tensor<2x4x4xf32>, %k: tensor<2x2x4xf32>, %kc: tensor<3x8x2x4xf32>, %vc: tensor<3x8x2x4xf32>, %p: tensor<2xi32>, %s: tensor<2xi32>)
    -> (tensor<2x4x4xf32>, tensor<3x8x2x4xf32>, tensor<3x8x2x4xf32>) {
  %o, %kc1, %vc1 = bitnet.batched_attention %q, %k, %k, %kc, %vc, %p, %s
      : tensor<2x4x4xf32>, tensor<2x2x4xf32>, tensor<2x2x4xf32>, tensor<3x8x2x4xf32>, tensor<3x8x2x4xf32>, tensor<2xi32>, tensor<2xi32>
      -> tensor<2x4x4xf32>, tensor<3x8x2x4xf32>, tensor<3x8x2x4xf32>
  return %o, %kc1, %vc1 : tensor<2x4x4xf32>, tensor<3x8x2x4xf32>, tensor<3x8x2x4xf32>
}
