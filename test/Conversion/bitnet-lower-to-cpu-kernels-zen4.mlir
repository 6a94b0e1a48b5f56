// The bitlinear defaults measured on an AMD Zen 4 (#bitnet.target's chip
// "znver4"): the MAD kernels prefetch nothing ahead of the weight stream,
// which the core's own prefetchers follow, the LUT kernels 4096 bytes; and
// a one-token step whose weights stream from memory takes MAD, whose stream
// keeps up there, where the same step takes LUT on other CPUs
// (bitnet-lower-to-cpu-kernels-lut.mlir, COLD). A given distance replaces
// the target's.
// RUN: bitnet-opt %s --canonicalize --bitnet-lower-to-cpu-kernels="family=auto l2-bytes=0 cache-bytes=0" | FileCheck %s --check-prefix=AUTO
// RUN: bitnet-opt %s --canonicalize --bitnet-lower-to-cpu-kernels="family=lut" | FileCheck %s --check-prefix=LUT
// RUN: bitnet-opt %s --canonicalize --bitnet-lower-to-cpu-kernels="family=auto l2-bytes=0 cache-bytes=0 prefetch-distance=512" | FileCheck %s --check-prefix=GIVEN

// AUTO-LABEL: func.func @choice
// AUTO:         call @__bitnet_mad_avx512vnni_1x1024x240_memref
// AUTO-SAME:      family = "mad"
// AUTO-SAME:      weight_bytes = 61440 : i64, weights_in = "memory"
// AUTO:         call @__bitnet_mad_avx512vnni_8x1024x240_memref
// AUTO-LABEL: llvm.func internal @__bitnet_mad_avx512vnni_1x1024x240_chunk
// AUTO-NOT:     llvm.intr.prefetch
// AUTO:       llvm.func internal @__bitnet_mad_avx512vnni_1x1024x240(

// LUT-LABEL: llvm.func internal @__bitnet_lut_avx512_1x1024x240_chunk
// LUT:         %[[D:.*]] = arith.constant 4096 : i64
// LUT:         %[[P:.*]] = llvm.getelementptr %{{.*}}[%[[D]]]
// LUT:         "llvm.intr.prefetch"(%[[P]])

// GIVEN-LABEL: llvm.func internal @__bitnet_mad_avx512vnni_1x1024x240_chunk
// GIVEN:         %[[D:.*]] = arith.constant 512 : i64
// GIVEN:         %[[P:.*]] = llvm.getelementptr %{{.*}}[%[[D]]]
// GIVEN:         "llvm.intr.prefetch"(%[[P]])
module attributes {bitnet.target = #bitnet.target<backend = "cpu",
    triple = "x86_64-unknown-linux-gnu", chip = "znver4">} {
func.func @choice(%x: tensor<1x240xf32>, %x8: tensor<8x240xf32>) -> (tensor<1x1024xf32>, tensor<8x1024xf32>) {
  %w = arith.constant dense<0.25> : tensor<1024x240xf32>
  %wq, %ws = bitnet.ternarize %w : tensor<1024x240xf32> -> tensor<1024x240xi8>, tensor<f32>
  %p = bitnet.pack %wq : tensor<1024x240xi8> -> !bitnet.ternary<1024x240, i2>
  %y = bitnet.bitlinear %x, %p scale %ws : tensor<1x240xf32>, !bitnet.ternary<1024x240, i2>, tensor<f32> -> tensor<1x1024xf32>
  %y8 = bitnet.bitlinear %x8, %p scale %ws : tensor<8x240xf32>, !bitnet.ternary<1024x240, i2>, tensor<f32> -> tensor<8x1024xf32>
  return %y, %y8 : tensor<1x1024xf32>, tensor<8x1024xf32>
}
}
