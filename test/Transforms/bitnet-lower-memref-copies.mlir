// RUN: bitnet-opt %s -split-input-file --pass-pipeline="builtin.module(func.func(bitnet-lower-memref-copies))" | FileCheck %s

// Tests that a copy out of a strided view becomes linalg.copy.
// CHECK-LABEL: func.func @strided
// CHECK-NOT:     memref.copy
// CHECK:         linalg.copy ins(%{{.*}} : memref<2x2x16xf32, strided<[64, 16, 1], offset: 16>>) outs(%{{.*}} : memref<2x2x16xf32>)
func.func @strided(%x: memref<2x4x16xf32>, %out: memref<2x2x16xf32>) {
  %s = memref.subview %x[0, 1, 0] [2, 2, 16] [1, 1, 1] : memref<2x4x16xf32> to memref<2x2x16xf32, strided<[64, 16, 1], offset: 16>>
  memref.copy %s, %out : memref<2x2x16xf32, strided<[64, 16, 1], offset: 16>> to memref<2x2x16xf32>
  return
}

// -----

// Tests that unranked copies are left alone.
// CHECK-LABEL: func.func @unranked
// CHECK:         memref.copy
func.func @unranked(%a: memref<*xf32>, %b: memref<*xf32>) {
  memref.copy %a, %b : memref<*xf32> to memref<*xf32>
  return
}
