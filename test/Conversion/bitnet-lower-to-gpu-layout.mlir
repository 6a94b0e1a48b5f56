// RUN: bitnet-opt %s --split-input-file --canonicalize --bitnet-lower-to-gpu --mlir-elide-elementsattrs-if-larger=16 | FileCheck %s
// RUN: bitnet-opt %s --split-input-file --canonicalize --bitnet-lower-to-gpu=gemv-rows=32 --mlir-elide-elementsattrs-if-larger=16 | FileCheck %s --check-prefix=ROWS32
// RUN: not bitnet-opt %s --split-input-file --canonicalize --bitnet-lower-to-gpu=gemv-rows=3 2>&1 | FileCheck %s --check-prefix=BAD

// The rows of W2A8 kernels per warp (the _rN of their names), chosen per
// shape: the fewest rows whose weights, padding included, take the least
// time at the share of the memory pipe (4 MiB in flight) that their warps
// fill. Every lane keeps up to 8 loads of 16 bytes in flight.
//
// The decoder's gate/up (N 6912, K 2560): K is 40 chunks of 64 values, a
// multiple of 8 lanes per row, so 4 rows per warp, 5 loads per lane, 1728
// warps.
// CHECK-LABEL: func.func @gate_up
// CHECK: gpu.func @bitnet_gemv_w2a8_1x6912x2560_r4
// ROWS32-LABEL: func.func @gate_up
// ROWS32: gpu.func @bitnet_gemv_w2a8_1x6912x2560_r32
// BAD: error: bitnet-lower-to-gpu: gemv-rows=3 is not 1, 2, 4, 8, 16 or 32
func.func @gate_up(%x: tensor<1x2560xf32>) -> tensor<1x6912xf32> {
  %w = arith.constant dense<0.5> : tensor<6912x2560xf32>
  %wq, %s = bitnet.ternarize %w : tensor<6912x2560xf32> -> tensor<6912x2560xi8>, tensor<f32>
  %p = bitnet.pack %wq : tensor<6912x2560xi8> -> !bitnet.ternary<6912x2560, i2>
  %y = bitnet.bitlinear %x, %p scale %s : tensor<1x2560xf32>, !bitnet.ternary<6912x2560, i2>, tensor<f32> -> tensor<1x6912xf32>
  return %y : tensor<1x6912xf32>
}

// -----

// The down projection (N 2560, K 6912): K is 108 chunks. 8 rows per warp
// would pad nothing but make 320 warps with 1.3 MB in flight; 2 rows per
// warp pad K to 112 chunks (3.6%) and make 1280 warps with 4.6 MB in flight.
// CHECK-LABEL: func.func @down
// CHECK: gpu.func @bitnet_gemv_w2a8_1x2560x6912_r2
func.func @down(%x: tensor<1x6912xf32>) -> tensor<1x2560xf32> {
  %w = arith.constant dense<0.5> : tensor<2560x6912xf32>
  %wq, %s = bitnet.ternarize %w : tensor<2560x6912xf32> -> tensor<2560x6912xi8>, tensor<f32>
  %p = bitnet.pack %wq : tensor<2560x6912xi8> -> !bitnet.ternary<2560x6912, i2>
  %y = bitnet.bitlinear %x, %p scale %s : tensor<1x6912xf32>, !bitnet.ternary<2560x6912, i2>, tensor<f32> -> tensor<1x2560xf32>
  return %y : tensor<1x2560xf32>
}

// -----

// A small matrix is in flight whole whatever the layout: the rows per warp
// that pad least (K 1088 is 17 chunks; 8 rows per warp pad it to 20).
// CHECK-LABEL: func.func @small
// CHECK: gpu.func @bitnet_gemv_w2a8_1x32x1088_r8
//
// Forced to 32 rows per warp, each lane has a row of its own (no shuffles)
// and 17 steps of one 16-byte load: a loop of 2 batches whose 8 loads come
// before their dot products, then 1 load.
// ROWS32-LABEL: gpu.func @bitnet_gemv_w2a8_1x32x1088_r32
// ROWS32: scf.for
// ROWS32-NOT: nvvm.dot.accumulate.4way
// ROWS32: vector.load {{.*}} : memref<8704xi8>, vector<16xi8>
// ROWS32-NOT: nvvm.dot.accumulate.4way
// ROWS32: vector.load {{.*}} : memref<8704xi8>, vector<16xi8>
// ROWS32-NOT: nvvm.dot.accumulate.4way
// ROWS32: vector.load {{.*}} : memref<8704xi8>, vector<16xi8>
// ROWS32-NOT: nvvm.dot.accumulate.4way
// ROWS32: vector.load {{.*}} : memref<8704xi8>, vector<16xi8>
// ROWS32-NOT: nvvm.dot.accumulate.4way
// ROWS32: vector.load {{.*}} : memref<8704xi8>, vector<16xi8>
// ROWS32-NOT: nvvm.dot.accumulate.4way
// ROWS32: vector.load {{.*}} : memref<8704xi8>, vector<16xi8>
// ROWS32-NOT: nvvm.dot.accumulate.4way
// ROWS32: vector.load {{.*}} : memref<8704xi8>, vector<16xi8>
// ROWS32-NOT: nvvm.dot.accumulate.4way
// ROWS32: vector.load {{.*}} : memref<8704xi8>, vector<16xi8>
// ROWS32-NOT: vector.load {{.*}} : memref<8704xi8>
// ROWS32-COUNT-16: nvvm.dot.accumulate.4way
// ROWS32-NOT: vector.load {{.*}} : memref<8704xi8>
// ROWS32: scf.yield
// ROWS32-NOT: nvvm.dot.accumulate.4way
// ROWS32: vector.load {{.*}} : memref<8704xi8>, vector<16xi8>
// ROWS32-NOT: vector.load {{.*}} : memref<8704xi8>
// ROWS32: nvvm.dot.accumulate.4way
// ROWS32-NOT: gpu.shuffle
// ROWS32: arith.sitofp
func.func @small(%x: tensor<1x1088xf32>) -> tensor<1x32xf32> {
  %w = arith.constant dense<0.5> : tensor<32x1088xf32>
  %wq, %s = bitnet.ternarize %w : tensor<32x1088xf32> -> tensor<32x1088xi8>, tensor<f32>
  %p = bitnet.pack %wq : tensor<32x1088xi8> -> !bitnet.ternary<32x1088, i2>
  %y = bitnet.bitlinear %x, %p scale %s : tensor<1x1088xf32>, !bitnet.ternary<32x1088, i2>, tensor<f32> -> tensor<1x32xf32>
  return %y : tensor<1x32xf32>
}
