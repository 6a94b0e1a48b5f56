// RUN: bitnet-opt %s -split-input-file --bitnet-lower-to-cpu-kernels | FileCheck %s
// RUN: bitnet-opt %s -split-input-file --bitnet-lower-to-cpu-kernels="isa=avx2" | FileCheck %s
// RUN: bitnet-opt %s -split-input-file --bitnet-lower-to-cpu-kernels="isa=none" | FileCheck %s --check-prefix=NONE

// Tests that an RMSNorm of a static shape becomes a call to a kernel
// generated for its shape (rows x D and epsilon in its name), the same on
// every vector width, and the profiler's name for it.
// CHECK-LABEL: func.func @plain
// CHECK:         %[[Y:.*]] = memref.alloc() {alignment = 64 : i64} : memref<2x37xf32>
// CHECK:         call @__bitnet_rmsnorm_2x37_0x3727c5ac_memref(%{{[0-9a-z_]+}}, %{{[0-9a-z_]+}}, %[[Y]])
// CHECK-SAME:      bitnet.kernel = {family = "rmsnorm", fused = "none", lanes = 16 : i64}
// CHECK:         bufferization.to_tensor %[[Y]] restrict writable
// CHECK-NOT:     bitnet.rmsnorm
// CHECK:       llvm.func internal @__bitnet_rmsnorm_2x37_0x3727c5ac_chunk
// CHECK:         vector.reduction <add>
// CHECK-NOT:     fastmath
// CHECK:         math.rsqrt
// CHECK:       llvm.func internal @__bitnet_rmsnorm_2x37_0x3727c5ac(
// CHECK:         llvm.mlir.addressof @__bitnet_exec_ctx
// NONE-LABEL:  func.func @plain
// NONE:          bitnet.rmsnorm
func.func @plain(%x: tensor<2x37xf32>, %gamma: tensor<37xf32>) -> tensor<2x37xf32> {
  %y = bitnet.rmsnorm %x, %gamma {epsilon = 1.0e-05 : f32} : tensor<2x37xf32>, tensor<37xf32> -> tensor<2x37xf32>
  return %y : tensor<2x37xf32>
}

// -----

// Tests that relu(g)^2 * u before the norm is formed by the kernel: it reads
// g and u, and the squared ReLU and the product leave the IR.
#id = affine_map<(i, j) -> (i, j)>
// CHECK:     llvm.mlir.global internal constant @__bitnet_rmsnorm_gated_4x64_0x3727c5ac_name("rmsnorm relu2*up 4x64\00")
// CHECK-LABEL: func.func @gated
// CHECK-SAME:    (%[[G:.*]]: tensor<4x64xf32>, %[[U:.*]]: tensor<4x64xf32>,
// CHECK-NOT:     bitnet.squared_relu
// CHECK-NOT:     linalg.generic
// CHECK-DAG:     %[[GB:.*]] = bufferization.to_buffer %[[G]] read_only
// CHECK-DAG:     %[[UB:.*]] = bufferization.to_buffer %[[U]] read_only
// CHECK:         call @__bitnet_rmsnorm_gated_4x64_0x3727c5ac_memref(%[[GB]], %[[UB]], %{{[0-9a-z_]+}}, %{{[0-9a-z_]+}})
// CHECK-SAME:      fused = "relu2_mul"
// CHECK:       llvm.func internal @__bitnet_rmsnorm_gated_4x64_0x3727c5ac_chunk
// CHECK:         arith.maximumf
func.func @gated(%g: tensor<4x64xf32>, %u: tensor<4x64xf32>, %gamma: tensor<64xf32>) -> tensor<4x64xf32> {
  %r = bitnet.squared_relu %g : tensor<4x64xf32>
  %e = tensor.empty() : tensor<4x64xf32>
  %h = linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel", "parallel"]} ins(%u, %r : tensor<4x64xf32>, tensor<4x64xf32>) outs(%e : tensor<4x64xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %p = arith.mulf %a, %b : f32
    linalg.yield %p : f32
  } -> tensor<4x64xf32>
  %z = bitnet.rmsnorm %h, %gamma {epsilon = 1.0e-05 : f32} : tensor<4x64xf32>, tensor<64xf32> -> tensor<4x64xf32>
  return %z : tensor<4x64xf32>
}

// -----

// Tests that a product used elsewhere too is left in the IR and the norm
// reads it (no fusion), as when the body is not a plain multiply.
#id = affine_map<(i, j) -> (i, j)>
// CHECK-LABEL: func.func @product_used_twice
// CHECK:         bitnet.squared_relu
// CHECK:         linalg.generic
// CHECK:         call @__bitnet_rmsnorm_4x64_0x3727c5ac_memref
// CHECK-SAME:      fused = "none"
// CHECK-LABEL: func.func @not_a_product
// CHECK:         linalg.generic
// CHECK:           arith.addf
// CHECK:         call @__bitnet_rmsnorm_4x64_0x3727c5ac_memref
// CHECK-SAME:      fused = "none"
func.func @product_used_twice(%g: tensor<4x64xf32>, %u: tensor<4x64xf32>, %gamma: tensor<64xf32>) -> (tensor<4x64xf32>, tensor<4x64xf32>) {
  %r = bitnet.squared_relu %g : tensor<4x64xf32>
  %e = tensor.empty() : tensor<4x64xf32>
  %h = linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel", "parallel"]} ins(%r, %u : tensor<4x64xf32>, tensor<4x64xf32>) outs(%e : tensor<4x64xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %p = arith.mulf %a, %b : f32
    linalg.yield %p : f32
  } -> tensor<4x64xf32>
  %z = bitnet.rmsnorm %h, %gamma {epsilon = 1.0e-05 : f32} : tensor<4x64xf32>, tensor<64xf32> -> tensor<4x64xf32>
  return %z, %h : tensor<4x64xf32>, tensor<4x64xf32>
}
func.func @not_a_product(%g: tensor<4x64xf32>, %u: tensor<4x64xf32>, %gamma: tensor<64xf32>) -> tensor<4x64xf32> {
  %r = bitnet.squared_relu %g : tensor<4x64xf32>
  %e = tensor.empty() : tensor<4x64xf32>
  %h = linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel", "parallel"]} ins(%r, %u : tensor<4x64xf32>, tensor<4x64xf32>) outs(%e : tensor<4x64xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %p = arith.addf %a, %b : f32
    linalg.yield %p : f32
  } -> tensor<4x64xf32>
  %z = bitnet.rmsnorm %h, %gamma {epsilon = 1.0e-05 : f32} : tensor<4x64xf32>, tensor<64xf32> -> tensor<4x64xf32>
  return %z : tensor<4x64xf32>
}

// -----

// Tests that a dynamic shape keeps the reference lowering.
// CHECK-LABEL: func.func @dynamic
// CHECK:         bitnet.rmsnorm
func.func @dynamic(%x: tensor<?x64xf32>, %gamma: tensor<64xf32>) -> tensor<?x64xf32> {
  %y = bitnet.rmsnorm %x, %gamma {epsilon = 1.0e-05 : f32} : tensor<?x64xf32>, tensor<64xf32> -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}
