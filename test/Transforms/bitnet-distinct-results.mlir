// RUN: bitnet-opt %s -split-input-file --pass-pipeline="builtin.module(func.func(bitnet-distinct-results))" | FileCheck %s

// Tests that a tensor returned twice gets a copy for its second use.
// CHECK-LABEL: func.func @twice
// CHECK:         %[[Y:.*]] = bitnet.squared_relu
// CHECK:         %[[E:.*]] = tensor.empty() : tensor<4xf32>
// CHECK:         %[[C:.*]] = linalg.copy ins(%[[Y]] : tensor<4xf32>) outs(%[[E]] : tensor<4xf32>) -> tensor<4xf32>
// CHECK:         return %[[Y]], %[[C]]
func.func @twice(%x: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>) {
  %y = bitnet.squared_relu %x : tensor<4xf32>
  return %y, %y : tensor<4xf32>, tensor<4xf32>
}

// -----

// Tests that returned arguments get a copy each (a result that is an
// argument would mean state updated in place, see bitnet-state-arguments),
// and that non-tensor results are left alone.
// CHECK-LABEL: func.func @arguments
// CHECK:         %[[CA:.*]] = linalg.copy ins(%arg0
// CHECK:         %[[CB:.*]] = linalg.copy ins(%arg1
// CHECK:         return %[[CA]], %[[CB]], %arg2, %arg2
func.func @arguments(%a: tensor<4xf32>, %b: tensor<4xf32>, %i: index) -> (tensor<4xf32>, tensor<4xf32>, index, index) {
  return %a, %b, %i, %i : tensor<4xf32>, tensor<4xf32>, index, index
}

// -----

// Tests that distinct computed results are left alone.
// CHECK-LABEL: func.func @distinct
// CHECK-NOT:     linalg.copy
// CHECK:         return %[[Y:.*]], %[[Z:.*]] :
func.func @distinct(%x: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>) {
  %y = bitnet.squared_relu %x : tensor<4xf32>
  %z = bitnet.squared_relu %y : tensor<4xf32>
  return %y, %z : tensor<4xf32>, tensor<4xf32>
}
