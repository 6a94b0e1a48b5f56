// RUN: bitnet-opt %s -split-input-file --pass-pipeline="builtin.module(func.func(bitnet-state-arguments))" | FileCheck %s

// Tests that a result that is an argument's buffer (through a memref.cast
// too) is dropped, the argument marked bitnet.state and its name removed from
// bitnet.output_names, while other results stay.
// CHECK-LABEL: func.func @step
// CHECK-SAME: (%{{.*}}: memref<1xi32>, %[[K:.*]]: memref<8x4xf32> {bitnet.state}, %[[V:.*]]: memref<8x4xf32> {bitnet.state}) -> memref<1x2xf32>
// CHECK-SAME: bitnet.output_names = ["logits"]
// CHECK:   return %{{.*}} : memref<1x2xf32>
func.func @step(%t: memref<1xi32>, %k: memref<8x4xf32>, %v: memref<8x4xf32>)
    -> (memref<8x4xf32>, memref<1x2xf32>, memref<8x4xf32>)
    attributes {bitnet.output_names = ["k.out", "logits", "v.out"]} {
  %y = memref.alloc() : memref<1x2xf32>
  %c = memref.cast %v : memref<8x4xf32> to memref<8x4xf32, strided<[4, 1]>>
  %d = memref.cast %c : memref<8x4xf32, strided<[4, 1]>> to memref<8x4xf32>
  return %k, %y, %d : memref<8x4xf32>, memref<1x2xf32>, memref<8x4xf32>
}

// -----

// Tests that a function returning fresh buffers only is left alone.
// CHECK-LABEL: func.func @fresh
// CHECK-SAME: (%{{.*}}: memref<4xf32>) -> memref<4xf32>
// CHECK-NOT: bitnet.state
func.func @fresh(%x: memref<4xf32>) -> memref<4xf32> {
  %y = memref.alloc() : memref<4xf32>
  memref.copy %x, %y : memref<4xf32> to memref<4xf32>
  return %y : memref<4xf32>
}
