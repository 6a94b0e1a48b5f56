// RUN: bitnet-opt %s --bitnet-lower-to-cpu-kernels | FileCheck %s --check-prefix=CPU
// RUN: bitnet-opt %s --bitnet-lower-to-linalg | FileCheck %s --check-prefix=REF

// Tests that batched attention becomes, on CPUs, one cache insert a token
// (skipped for padding slots, in tensor IR so that bufferization does it in
// place) and a call to the kernel over the caches' slots; and in the
// reference lowering, a loop of one-token attentions on each token's slot.

// CPU-LABEL: func.func @step
// CPU: scf.for {{.*}} iter_args
// CPU:   arith.andi
// CPU:   arith.minsi {{.*}} : index
// CPU:   scf.if {{.*}} -> (tensor<4x16x2x64xf16>, tensor<4x16x2x64xf16>)
// CPU:     tensor.insert_slice {{.*}} : tensor<2x64xf16> into tensor<4x16x2x64xf16>
// CPU: call @__bitnet_batched_attention_3x8x2x64x4x16_f16_memref
// CPU-NOT: bitnet.batched_attention
// CPU: llvm.func internal @__bitnet_batched_attention_3x8x2x64x4x16_f16_chunk

// REF-LABEL: func.func @step
// REF: scf.for {{.*}} iter_args
// REF:   scf.if {{.*}} -> (tensor<1x8x64xf32>, tensor<4x16x2x64xf16>, tensor<4x16x2x64xf16>)
// REF:     tensor.extract_slice {{.*}} : tensor<4x16x2x64xf16> to tensor<16x2x64xf16>
// REF:     linalg.generic
// REF-NOT: bitnet.
func.func @step(%q: tensor<3x8x64xf32>, %k: tensor<3x2x64xf32>,
                %kc: tensor<4x16x2x64xf16>, %vc: tensor<4x16x2x64xf16>,
                %p: tensor<3xi32>, %s: tensor<3xi32>)
    -> (tensor<3x8x64xf32>, tensor<4x16x2x64xf16>, tensor<4x16x2x64xf16>) {
  %o, %kc1, %vc1 = bitnet.batched_attention %q, %k, %k, %kc, %vc, %p, %s
      : tensor<3x8x64xf32>, tensor<3x2x64xf32>, tensor<3x2x64xf32>,
        tensor<4x16x2x64xf16>, tensor<4x16x2x64xf16>, tensor<3xi32>,
        tensor<3xi32>
      -> tensor<3x8x64xf32>, tensor<4x16x2x64xf16>, tensor<4x16x2x64xf16>
  return %o, %kc1, %vc1
      : tensor<3x8x64xf32>, tensor<4x16x2x64xf16>, tensor<4x16x2x64xf16>
}
