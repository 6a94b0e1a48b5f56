// RUN: bitnet-opt %s -split-input-file --canonicalize --bitnet-lower-to-cpu-kernels="family=lut" | FileCheck %s
// RUN: bitnet-opt %s -split-input-file --canonicalize --bitnet-lower-to-cpu-kernels="family=auto" | FileCheck %s --check-prefix=HOT
// RUN: bitnet-opt %s -split-input-file --canonicalize --bitnet-lower-to-cpu-kernels="family=auto l2-bytes=0 cache-bytes=0" | FileCheck %s --check-prefix=COLD
// RUN: bitnet-opt %s -split-input-file --canonicalize --bitnet-lower-to-cpu-kernels="family=auto l2-bytes=0 cache-bytes=0 tuned=1x1024x240:mad:1500:1800,8x1024x240:lut:9000:8000" | FileCheck %s --check-prefix=TUNED
// RUN: not bitnet-opt %s --bitnet-lower-to-cpu-kernels="family=auto tuned=1x1024:mad:1:2" 2>&1 | FileCheck %s --check-prefix=BADTUNED
// RUN: bitnet-opt %s -split-input-file --canonicalize --bitnet-lower-to-cpu-kernels="family=auto l2-bytes=0 cache-bytes=0 tuned=1x1024x240:lut:1800:1500:2048,8x1024x240:auto:9000:8000:0" | FileCheck %s --check-prefix=TUNEDPF
// RUN: not bitnet-opt %s --bitnet-lower-to-cpu-kernels="family=tables" 2>&1 | FileCheck %s --check-prefix=BADFAMILY
// RUN: not bitnet-opt %s --bitnet-lower-to-cpu-kernels="family=lut isa=avx2" 2>&1 | FileCheck %s --check-prefix=BADISA

// BADTUNED: tuned entry '1x1024:mad:1:2' is not MxNxK:mad|lut|auto:mad_ns:lut_ns[:prefetch]
// BADFAMILY: for the --family option: Cannot find option named 'tables'!
// BADISA: family=lut needs isa=avx512vnni (and AVX-512 VBMI), got avx2

// Tests the LUT layout of one block of 64 rows with one chunk of 12 columns:
// 64 int16 row constants, then 160 bytes. Each three weights are
// v = 9 w0 + 3 w1 + w2, stored as the nibble |v| and a sign bit; rows 0-3
// are positions 0-15 of tile 0 (low nibbles of bytes 0-15):
//   row 0: (1,0,-1) = 8, (1,0,0) = 9, (1,-1,0) = 6, padding 0;
//   row 1: zeros; row 2: 13, 13, (1,1,0) = 12, 0;
//   row 3: (-1,-1,-1) = -13, (-1,0,1) = -8, (0,1,0) = 3, 0: the sign bits
//   of positions 12 and 13 are bits 12-13 of tile 0's mask at byte 128.
// The row constants count +1 per group with v >= 0 and -1 below: 4 for
// every row but row 3 (0).
// CHECK-LABEL: func.func @layout
// CHECK:         arith.constant dense<"0x0400040004000000{{(0400)+}}08090600000000000D0D0C000D080300{{0+}}3000{{0+}}"> : tensor<288xi8>
// CHECK:         call @__bitnet_lut_avx512_2x4x8_memref
// CHECK-SAME:      bitnet.kernel = {cols_per_chunk = 12 : i64, family = "lut", isa = "avx512vbmi", rows_per_block = 64 : i64, weight_bytes = 288 : i64}
// Tables 2 x 128 bytes, codes 2 x 64 bytes, scales 2 x 4 bytes.
// CHECK-SAME:      memref<392xi8>
// CHECK:       llvm.func internal @__bitnet_lut_avx512_2x4x8_prepare
// CHECK:         math.roundeven
// CHECK:         vector.shuffle
// CHECK:       llvm.func internal @__bitnet_lut_avx512_2x4x8_chunk
// CHECK-COUNT-2: llvm.call_intrinsic "llvm.x86.avx512.permvar.qi.512"
// CHECK-COUNT-2: llvm.call_intrinsic "llvm.x86.avx512.vpdpbusd.512"
// CHECK:       llvm.func internal @__bitnet_lut_avx512_2x4x8(
func.func @layout(%x: tensor<2x8xf32>) -> tensor<2x4xf32> {
  %w = bitnet.constant dense<[[1, 0, -1, 1, 0, 0, 1, -1], [0, 0, 0, 0, 0, 0, 0, 0],
                              [1, 1, 1, 1, 1, 1, 1, 1], [-1, -1, -1, -1, 0, 1, 0, 1]]>
      : tensor<4x8xi8> -> !bitnet.ternary<4x8, int8>
  %s = arith.constant dense<0.5> : tensor<f32>
  %y = bitnet.bitlinear %x, %w scale %s : tensor<2x8xf32>, !bitnet.ternary<4x8, int8>, tensor<f32> -> tensor<2x4xf32>
  return %y : tensor<2x4xf32>
}

// -----

// Tests the cost model's choice: for one token, the MAD kernel computes
// faster when the weights stay in L2, and the LUT kernel's 13% fewer bytes
// win when they stream from memory; for eight tokens MAD wins either way.
// The estimates are recorded on the call.
// HOT-LABEL:  func.func @choice
// HOT:          call @__bitnet_mad_avx512vnni_1x1024x240_memref
// HOT-SAME:       family = "mad"
// HOT-SAME:       lut_cycles = {{[0-9]+}} : i64, mad_cycles = {{[0-9]+}} : i64
// HOT-SAME:       weights_in = "l2"
// HOT:          call @__bitnet_mad_avx512vnni_8x1024x240_memref
// COLD-LABEL: func.func @choice
// COLD:         call @__bitnet_lut_avx512_1x1024x240_memref
// COLD-SAME:      family = "lut"
// COLD-SAME:      weight_bytes = 53248 : i64, weights_in = "memory"
// COLD:         call @__bitnet_mad_avx512vnni_8x1024x240_memref
// COLD-SAME:      family = "mad"
// COLD-SAME:      weight_bytes = 61440 : i64, weights_in = "memory"
// One token: each thread builds its own tables on its stack (the kernel's
// scratch size, 2820 bytes here) for its part of the rows, split in as
// many parts as the caller has threads (num_threads, at byte 4 of the exec
// ctx) but no more than the 16 blocks.
// Measured choices replace the cost model's, the other way round here.
// TUNED-LABEL: func.func @choice
// TUNED:         call @__bitnet_mad_avx512vnni_1x1024x240_memref
// TUNED-SAME:      family = "mad"
// TUNED-SAME:      lut_ns = 1800 : i64, mad_ns = 1500 : i64
// TUNED-SAME:      tuned
// TUNED:         call @__bitnet_lut_avx512_8x1024x240_memref
// TUNED-SAME:      family = "lut"
// TUNED-SAME:      lut_ns = 8000 : i64, mad_ns = 9000 : i64
// TUNED-SAME:      tuned
// A measured prefetch distance replaces the pass's (4096 bytes) for its
// shape, in the kernel and on the call; with the family "auto" the cost
// model still chooses the family.
// TUNEDPF-LABEL: func.func @choice
// TUNEDPF:         call @__bitnet_lut_avx512_1x1024x240_memref
// TUNEDPF-SAME:      family = "lut"
// TUNEDPF-SAME:      mad_ns = 1800 : i64, prefetch_bytes = 2048 : i64
// TUNEDPF-SAME:      tuned
// TUNEDPF:         call @__bitnet_mad_avx512vnni_8x1024x240_memref
// TUNEDPF-SAME:      family = "mad"
// TUNEDPF-SAME:      lut_cycles = {{[0-9]+}} : i64, mad_cycles = {{[0-9]+}} : i64, prefetch_bytes = 0 : i64
// TUNEDPF-SAME:      weights_in = "memory"
// TUNEDPF-LABEL: llvm.func internal @__bitnet_lut_avx512_1x1024x240_chunk
// TUNEDPF:         %[[D:.*]] = arith.constant 2048 : i64
// TUNEDPF:         %[[P:.*]] = llvm.getelementptr %{{.*}}[%[[D]]]
// TUNEDPF:         "llvm.intr.prefetch"(%[[P]])
// TUNEDPF-LABEL: llvm.func internal @__bitnet_mad_avx512vnni_8x1024x240_chunk
// TUNEDPF-NOT:     llvm.intr.prefetch
// TUNEDPF:       llvm.func internal @__bitnet_mad_avx512vnni_8x1024x240(
// COLD:       llvm.func internal @__bitnet_lut_avx512_1x1024x240_one_token
// COLD:         %[[B:.*]] = arith.constant 2820 : i64
// COLD:         llvm.alloca %[[B]] x i8 {alignment = 64 : i64}
// COLD:         llvm.call @__bitnet_lut_avx512_1x1024x240_prepare
// COLD:         llvm.call @__bitnet_lut_avx512_1x1024x240_chunk
// COLD:       llvm.func internal @__bitnet_lut_avx512_1x1024x240(
// COLD:         %[[T:.*]] = scf.if %{{.*}} -> (i32)
// COLD:           llvm.load %{{.*}} {alignment = 1 : i64} : !llvm.ptr -> i32
// COLD:         %[[T64:.*]] = arith.extsi %[[T]] : i32 to i64
// COLD:         %[[P:.*]] = arith.minsi %{{.*}}, %{{.*}} : i64
// COLD:         llvm.call @__bitnet_lut_avx512_1x1024x240_one_token(%{{.*}}, %{{.*}}, %[[P]])
func.func @choice(%x: tensor<1x240xf32>, %x8: tensor<8x240xf32>) -> (tensor<1x1024xf32>, tensor<8x1024xf32>) {
  %w = arith.constant dense<0.25> : tensor<1024x240xf32>
  %wq, %ws = bitnet.ternarize %w : tensor<1024x240xf32> -> tensor<1024x240xi8>, tensor<f32>
  %p = bitnet.pack %wq : tensor<1024x240xi8> -> !bitnet.ternary<1024x240, i2>
  %y = bitnet.bitlinear %x, %p scale %ws : tensor<1x240xf32>, !bitnet.ternary<1024x240, i2>, tensor<f32> -> tensor<1x1024xf32>
  %y8 = bitnet.bitlinear %x8, %p scale %ws : tensor<8x240xf32>, !bitnet.ternary<1024x240, i2>, tensor<f32> -> tensor<8x1024xf32>
  return %y, %y8 : tensor<1x1024xf32>, tensor<8x1024xf32>
}

// -----

// RUN: bitnet-opt %s -split-input-file --canonicalize --bitnet-lower-to-cpu-kernels="family=auto l2-bytes=0 cache-bytes=0 layout-tokens=16" | FileCheck %s --check-prefix=LAYOUT

// Tests the prefill-sized step of the LUT layout (12 tokens or more): no
// tables; per two tiles the codes of every chunk are decoded once per call
// (three vpermb a tile, one per digit, into a stack buffer of 20 chunks x
// 384 bytes), then read by int8 dot products. The scratch holds the tokens'
// codes twice (quantised, and reordered as the decoded digits: 16 x 256
// bytes each), their scales and their sums.
// CHECK-LABEL: func.func @prefill
// CHECK:         call @__bitnet_lut_avx512_unpack_16x1024x240_memref
// CHECK-SAME:      family = "lut"
// CHECK-SAME:      memref<8320xi8>
// CHECK:       llvm.func internal @__bitnet_lut_avx512_unpack_16x1024x240_prepare
// CHECK:         math.roundeven
// CHECK:         vector.shuffle %{{.*}}, %{{.*}} [0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11, 12, 13, 14, 15]
// CHECK:       llvm.func internal @__bitnet_lut_avx512_unpack_16x1024x240_chunk
// CHECK:         %[[BUF:.*]] = arith.constant 7680 : i64
// CHECK:         llvm.alloca %[[BUF]] x i8 {alignment = 64 : i64}
// CHECK-COUNT-6: llvm.call_intrinsic "llvm.x86.avx512.permvar.qi.512"
// CHECK-NOT:     llvm.call_intrinsic "llvm.x86.avx512.permvar.qi.512"
// CHECK:         llvm.call_intrinsic "llvm.x86.avx512.vpdpbusd.512"
// CHECK:       llvm.func internal @__bitnet_lut_avx512_unpack_16x1024x240(
// Without a one-token step beside it, the 16-token step takes the MAD
// layout, whose prefill loop the cost model puts a little ahead.
// COLD-LABEL: func.func @prefill
// COLD:         call @__bitnet_lut_avx512_1x1024x240_memref
// COLD:         call @__bitnet_mad_avx512vnni_16x1024x240_memref
// Laid out for the 16-token step with the one-token step beside it, the
// one-token step chooses for both, since either layout's prefill loop takes
// int8 dot products: weights from memory, the LUT layout.
// LAYOUT-LABEL: func.func @prefill
// LAYOUT:         call @__bitnet_lut_avx512_1x1024x240_memref
// LAYOUT-SAME:      estimated_tokens = 1 : i64
// LAYOUT-SAME:      family = "lut"
// LAYOUT:         call @__bitnet_lut_avx512_unpack_16x1024x240_memref
// LAYOUT-SAME:      estimated_tokens = 1 : i64
// LAYOUT-SAME:      family = "lut"
func.func @prefill(%x: tensor<1x240xf32>, %x16: tensor<16x240xf32>) -> (tensor<1x1024xf32>, tensor<16x1024xf32>) {
  %w = arith.constant dense<0.25> : tensor<1024x240xf32>
  %wq, %ws = bitnet.ternarize %w : tensor<1024x240xf32> -> tensor<1024x240xi8>, tensor<f32>
  %p = bitnet.pack %wq : tensor<1024x240xi8> -> !bitnet.ternary<1024x240, i2>
  %y = bitnet.bitlinear %x, %p scale %ws : tensor<1x240xf32>, !bitnet.ternary<1024x240, i2>, tensor<f32> -> tensor<1x1024xf32>
  %y16 = bitnet.bitlinear %x16, %p scale %ws : tensor<16x240xf32>, !bitnet.ternary<1024x240, i2>, tensor<f32> -> tensor<16x1024xf32>
  return %y, %y16 : tensor<1x1024xf32>, tensor<16x1024xf32>
}
