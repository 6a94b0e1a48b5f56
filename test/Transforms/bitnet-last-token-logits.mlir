// RUN: bitnet-opt %s -split-input-file -bitnet-last-token-logits | FileCheck %s

// Tests that a returned head computes the last row's logits only, and that
// the signature follows.
// CHECK-LABEL: func.func @prefill
// CHECK-SAME: -> (tensor<1x5xf32>, tensor<4x3xf32>)
// CHECK: %[[LAST:.*]] = tensor.extract_slice %{{.*}}[3, 0] [1, 3] [1, 1] : tensor<4x3xf32> to tensor<1x3xf32>
// CHECK: %[[Y:.*]] = bitnet.dense_matmul %[[LAST]], %{{.*}} : tensor<1x3xf32>, tensor<5x3xf32> -> tensor<1x5xf32>
// CHECK: return %[[Y]], %{{.*}} : tensor<1x5xf32>, tensor<4x3xf32>
func.func @prefill(%x: tensor<4x3xf32>, %w: tensor<5x3xf32>) -> (tensor<4x5xf32>, tensor<4x3xf32>) {
  %y = bitnet.dense_matmul %x, %w : tensor<4x3xf32>, tensor<5x3xf32> -> tensor<4x5xf32>
  return %y, %x : tensor<4x5xf32>, tensor<4x3xf32>
}

// -----

// Tests that a one-token step is left alone.
// CHECK-LABEL: func.func @decode
// CHECK-NOT: extract_slice
func.func @decode(%x: tensor<1x3xf32>, %w: tensor<5x3xf32>) -> tensor<1x5xf32> {
  %y = bitnet.dense_matmul %x, %w : tensor<1x3xf32>, tensor<5x3xf32> -> tensor<1x5xf32>
  return %y : tensor<1x5xf32>
}
