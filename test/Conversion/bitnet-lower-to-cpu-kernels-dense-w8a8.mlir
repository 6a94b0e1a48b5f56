// RUN: bitnet-opt %s -split-input-file --bitnet-lower-to-cpu-kernels | FileCheck %s
// RUN: bitnet-opt %s -split-input-file --bitnet-lower-to-cpu-kernels="isa=avx2" | FileCheck %s --check-prefix=AVX2
// RUN: bitnet-opt %s -split-input-file --bitnet-lower-to-cpu-kernels --bitnet-lower-to-linalg | FileCheck %s --check-prefix=LINALG
// RUN: bitnet-opt %s -split-input-file --bitnet-lower-to-linalg | FileCheck %s --check-prefix=REF

// Tests that a W8A8 dense layer with K a multiple of 64 becomes a call to
// the vpdpbusd kernel on its own int8 weight, with each row's sum of weights
// (2 * 64 and -64) as a constant, the codes and scales in its scratch; other
// instruction sets keep the op for the reference lowering.
// CHECK-LABEL: func.func @aligned
// CHECK-DAG:     %[[SUMS:.*]] = arith.constant dense<[128, -64]> : tensor<2xi32>
// CHECK-DAG:     %[[W:.*]] = arith.constant dense<{{.*}}> : tensor<2x64xi8>
// CHECK-DAG:     %[[WB:.*]] = bufferization.to_buffer %[[W]] read_only
// CHECK-DAG:     %[[SB:.*]] = bufferization.to_buffer %[[SUMS]] read_only
// CHECK-DAG:     %[[SCRATCH:.*]] = memref.alloc() {alignment = 64 : i64} : memref<136xi8>
// CHECK:         call @__bitnet_dense_w8a8_2x2x64_memref(%{{[0-9a-z_]+}}, %[[WB]], %[[SB]], %{{[0-9a-z_]+}}, %{{[0-9a-z_]+}}, %[[SCRATCH]])
// CHECK-SAME:      bitnet.kernel = {family = "dense_w8a8", isa = "avx512vnni", prefetch_bytes = {{[0-9]+}} : i64, rows_per_block = 16 : i64, weight_bytes = 128 : i64}
// CHECK:       llvm.func internal @__bitnet_dense_w8a8_2x2x64_quantize
// CHECK:         arith.xori
// CHECK:       llvm.func internal @__bitnet_dense_w8a8_2x2x64_chunk
// CHECK:         llvm.call_intrinsic "llvm.x86.avx512.vpdpbusd.512"
// CHECK:         arith.sitofp
// CHECK:         arith.mulf
// CHECK:         arith.divf
// AVX2-LABEL:  func.func @aligned
// AVX2:          bitnet.dense_matmul {{.*}} {quantize_input}
// LINALG-LABEL: func.func @aligned
// LINALG:        call @__bitnet_dense_w8a8_2x2x64_memref
// REF-LABEL:   func.func @aligned
func.func @aligned(%x: tensor<2x64xf32>) -> tensor<2x2xf32> {
  %w = arith.constant dense<[[2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2], [-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1]]> : tensor<2x64xi8>
  %s = arith.constant dense<[0.5, 0.25]> : tensor<2xf32>
  %y = bitnet.dense_matmul %x, %w scales %s {quantize_input} : tensor<2x64xf32>, tensor<2x64xi8>, tensor<2xf32> -> tensor<2x2xf32>
  return %y : tensor<2x2xf32>
}

// -----

// Tests that K = 70 takes a copy of the weight with rows padded to 128
// columns (zeros), and that an embedding sharing the weight keeps it.
// CHECK-LABEL: func.func @padded
// CHECK:         bitnet.embedding %{{.*}} : tensor<3x70xi8>
// CHECK-DAG:     arith.constant dense<{{.*}}> : tensor<3x128xi8>
// CHECK-DAG:     arith.constant dense<210> : tensor<3xi32>
// CHECK-DAG:     memref.alloc() {alignment = 64 : i64} : memref<132xi8>
// CHECK:         call @__bitnet_dense_w8a8_1x3x70_memref
// CHECK-SAME:      weight_bytes = 384 : i64
// LINALG-LABEL: func.func @padded
// LINALG:        call @__bitnet_dense_w8a8_1x3x70_memref
func.func @padded(%x: tensor<1x70xf32>, %ids: tensor<1xi32>) -> (tensor<1x3xf32>, tensor<1x70xf32>) {
  %w = arith.constant dense<3> : tensor<3x70xi8>
  %s = arith.constant dense<[0.5, 0.25, 1.0]> : tensor<3xf32>
  %e = bitnet.embedding %w, %ids scales %s : tensor<3x70xi8>, tensor<1xi32>, tensor<3xf32> -> tensor<1x70xf32>
  %y = bitnet.dense_matmul %x, %w scales %s {quantize_input} : tensor<1x70xf32>, tensor<3x70xi8>, tensor<3xf32> -> tensor<1x3xf32>
  return %y, %e : tensor<1x3xf32>, tensor<1x70xf32>
}

// -----

// Tests the reference lowering of W8A8 (other instruction sets, and
// --kernels=reference): the input quantised, int32 sums, then
// (float(acc) * scale) / s_x.
// AVX2-LABEL:  func.func @reference
// AVX2:          bitnet.dense_matmul {{.*}} {quantize_input}
// REF-LABEL:   func.func @reference
// REF:           math.roundeven
// REF:           linalg.generic
// REF:             arith.extsi
// REF:             arith.muli
// REF:             arith.addi
// REF:           linalg.generic
// REF:             arith.sitofp
// REF:             arith.mulf
// REF:             arith.divf
func.func @reference(%x: tensor<1x8xf32>, %w: tensor<3x8xi8>, %s: tensor<3xf32>) -> tensor<1x3xf32> {
  %y = bitnet.dense_matmul %x, %w scales %s {quantize_input} : tensor<1x8xf32>, tensor<3x8xi8>, tensor<3xf32> -> tensor<1x3xf32>
  return %y : tensor<1x3xf32>
}
