// RUN: bitnet-opt %s -split-input-file --canonicalize --bitnet-lower-to-cpu-kernels | FileCheck %s
// RUN: bitnet-opt %s -split-input-file --bitnet-lower-to-cpu-kernels="isa=none" | FileCheck %s --check-prefix=NONE
// RUN: not bitnet-opt %s --bitnet-lower-to-cpu-kernels="isa=sse2" 2>&1 | FileCheck %s --check-prefix=BADISA

// BADISA: for the --isa option: Cannot find option named 'sse2'!

// Tests that a bitlinear with a constant weight becomes a call to a kernel
// generated for its shape, with the weight laid out at compile time (one
// 64x16 group of 2-bit codes: 256 bytes) and the choice recorded on the call.
// CHECK-LABEL: func.func @constant_weight
// CHECK-DAG:     %[[W:.*]] = arith.constant dense<{{.*}}> : tensor<256xi8>
// CHECK-DAG:     %[[WB:.*]] = bufferization.to_buffer %[[W]] read_only
// CHECK-DAG:     %[[Y:.*]] = memref.alloc() {alignment = 64 : i64} : memref<2x4xf32>
// CHECK-DAG:     %[[S:.*]] = memref.alloc() {alignment = 64 : i64} : memref<48xi8>
// CHECK:         call @__bitnet_mad_avx512vnni_2x4x8_memref({{.*}}, %[[WB]], {{.*}}, %[[Y]], %[[S]])
// CHECK-SAME:      bitnet.kernel = {cols_per_block = 16 : i64, family = "mad", isa = "avx512vnni", rows_per_group = 64 : i64, weight_bytes = 256 : i64}
// CHECK:         %[[R:.*]] = bufferization.to_tensor %[[Y]] restrict writable
// CHECK:         return %[[R]]
// CHECK:       llvm.func internal @__bitnet_mad_avx512vnni_2x4x8_quantize
// CHECK:         math.roundeven
// CHECK:       llvm.func internal @__bitnet_mad_avx512vnni_2x4x8_chunk
// CHECK:         llvm.call_intrinsic "llvm.x86.avx512.vpdpbusd.512"
// CHECK:       llvm.func internal @__bitnet_mad_avx512vnni_2x4x8(
// CHECK:         llvm.mlir.addressof @__bitnet_exec_ctx
// CHECK:       func.func private @__bitnet_mad_avx512vnni_2x4x8_memref
// NONE-LABEL:  func.func @constant_weight
// NONE:          bitnet.bitlinear
func.func @constant_weight(%x: tensor<2x8xf32>) -> tensor<2x4xf32> {
  %w = bitnet.constant dense<[[1, 0, -1, 1, 0, 0, 1, -1], [0, 0, 0, 0, 0, 0, 0, 0],
                              [1, 1, 1, 1, 1, 1, 1, 1], [-1, -1, -1, -1, 0, 1, 0, 1]]>
      : tensor<4x8xi8> -> !bitnet.ternary<4x8, int8>
  %s = arith.constant dense<0.5> : tensor<f32>
  %y = bitnet.bitlinear %x, %w scale %s : tensor<2x8xf32>, !bitnet.ternary<4x8, int8>, tensor<f32> -> tensor<2x4xf32>
  return %y : tensor<2x4xf32>
}

// -----

// Tests that weights known only at run time are left to the reference
// lowering.
// CHECK-LABEL: func.func @runtime_weight
// CHECK:         bitnet.bitlinear
// CHECK-NOT:     call @__bitnet_mad
func.func @runtime_weight(%x: tensor<2x8xf32>, %w: !bitnet.ternary<4x8, i2>, %s: tensor<f32>) -> tensor<2x4xf32> {
  %y = bitnet.bitlinear %x, %w scale %s : tensor<2x8xf32>, !bitnet.ternary<4x8, i2>, tensor<f32> -> tensor<2x4xf32>
  return %y : tensor<2x4xf32>
}

// -----

// Tests that two layers of one shape share one kernel, and that the scratch
// holds 3 quantised tokens padded to 32 columns plus their sums and scales.
// CHECK-LABEL: func.func @shared_kernel
// CHECK-COUNT-2: call @__bitnet_mad_avx512vnni_3x70x20_memref
// CHECK:         memref<120xi8>
// CHECK-COUNT-1: llvm.func internal @__bitnet_mad_avx512vnni_3x70x20_chunk
func.func @shared_kernel(%x: tensor<3x20xf32>) -> tensor<3x70xf32> {
  %w = arith.constant dense<0.25> : tensor<70x20xf32>
  %wq, %ws = bitnet.ternarize %w : tensor<70x20xf32> -> tensor<70x20xi8>, tensor<f32>
  %p = bitnet.pack %wq : tensor<70x20xi8> -> !bitnet.ternary<70x20, i2>
  %y = bitnet.bitlinear %x, %p scale %ws : tensor<3x20xf32>, !bitnet.ternary<70x20, i2>, tensor<f32> -> tensor<3x70xf32>
  %w2 = arith.constant dense<-0.5> : tensor<70x20xf32>
  %wq2, %ws2 = bitnet.ternarize %w2 : tensor<70x20xf32> -> tensor<70x20xi8>, tensor<f32>
  %p2 = bitnet.pack %wq2 : tensor<70x20xi8> -> !bitnet.ternary<70x20, i2>
  %y2 = bitnet.bitlinear %x, %p2 scale %ws2 : tensor<3x20xf32>, !bitnet.ternary<70x20, i2>, tensor<f32> -> tensor<3x70xf32>
  %r = arith.addf %y, %y2 : tensor<3x70xf32>
  return %r : tensor<3x70xf32>
}

// -----

// Tests the 256-bit families: groups of 32 rows (one group of 4 tiles of 8
// rows x 16 columns is 128 bytes), VEX vpdpbusd for AVX-VNNI and
// vpmaddubsw + vpmaddwd for AVX2.
// RUN: bitnet-opt %s -split-input-file --canonicalize --bitnet-lower-to-cpu-kernels="isa=avxvnni" | FileCheck %s --check-prefix=VNNI256
// RUN: bitnet-opt %s -split-input-file --canonicalize --bitnet-lower-to-cpu-kernels="isa=avx2" | FileCheck %s --check-prefix=AVX2
// VNNI256-LABEL: func.func @narrow
// VNNI256:         arith.constant dense<{{.*}}> : tensor<128xi8>
// VNNI256:         call @__bitnet_mad_avxvnni_1x20x16_memref
// VNNI256-SAME:      rows_per_group = 32
// VNNI256:       llvm.call_intrinsic "llvm.x86.avx512.vpdpbusd.256"
// AVX2-LABEL:    func.func @narrow
// AVX2:            call @__bitnet_mad_avx2_1x20x16_memref
// AVX2:          llvm.call_intrinsic "llvm.x86.avx2.pmadd.ub.sw"
// AVX2:          llvm.call_intrinsic "llvm.x86.avx2.pmadd.wd"

// Tests the NEON family: 128-bit vectors, groups of 16 rows (4 tiles of 4
// rows x 16 columns: 64 bytes per block, two groups here), sdot on signed
// bytes, so the top code of each byte is shifted down by 6 instead of masked
// in place.
// RUN: bitnet-opt %s -split-input-file --canonicalize --bitnet-lower-to-cpu-kernels="isa=neon" | FileCheck %s --check-prefix=NEON
// NEON-LABEL:    func.func @narrow
// NEON:            arith.constant dense<{{.*}}> : tensor<128xi8>
// NEON:            call @__bitnet_mad_neon_1x20x16_memref
// NEON-SAME:         isa = "neon", rows_per_group = 16
// NEON-LABEL:    llvm.func internal @__bitnet_mad_neon_1x20x16_chunk
// NEON-DAG:        arith.constant dense<48> : vector<16xi8>
// NEON-DAG:        %[[SIX:.*]] = arith.constant dense<6> : vector<16xi8>
// NEON:            arith.shrui %{{.*}}, %[[SIX]] : vector<16xi8>
// NEON:            llvm.call_intrinsic "llvm.aarch64.neon.sdot"(%{{.*}}) : (vector<4xi32>, vector<16xi8>, vector<16xi8>) -> vector<4xi32>
func.func @narrow(%x: tensor<1x16xf32>) -> tensor<1x20xf32> {
  %w = arith.constant dense<0.25> : tensor<20x16xf32>
  %wq, %ws = bitnet.ternarize %w : tensor<20x16xf32> -> tensor<20x16xi8>, tensor<f32>
  %p = bitnet.pack %wq : tensor<20x16xi8> -> !bitnet.ternary<20x16, i2>
  %y = bitnet.bitlinear %x, %p scale %ws : tensor<1x16xf32>, !bitnet.ternary<20x16, i2>, tensor<f32> -> tensor<1x20xf32>
  return %y : tensor<1x20xf32>
}

// -----

// Tests that the weight stream is prefetched the given distance ahead, and
// not at all with 0; without a distance, and without a target CPU whose
// default differs (bitnet-lower-to-cpu-kernels-zen4.mlir), 4096 bytes.
// RUN: bitnet-opt %s -split-input-file --canonicalize --bitnet-lower-to-cpu-kernels="prefetch-distance=1024" | FileCheck %s --check-prefix=PF
// RUN: bitnet-opt %s -split-input-file --canonicalize --bitnet-lower-to-cpu-kernels | FileCheck %s --check-prefix=DEFPF
// RUN: bitnet-opt %s -split-input-file --canonicalize --bitnet-lower-to-cpu-kernels="prefetch-distance=0" | FileCheck %s --check-prefix=NOPF
// RUN: not bitnet-opt %s --bitnet-lower-to-cpu-kernels="prefetch-distance=-2" 2>&1 | FileCheck %s --check-prefix=BADPF
// PF-LABEL:  llvm.func internal @__bitnet_mad_avx512vnni_1x20x16_chunk
// PF:          %[[D:.*]] = arith.constant 1024 : i64
// PF:          %[[P:.*]] = llvm.getelementptr %{{.*}}[%[[D]]]
// PF:          "llvm.intr.prefetch"(%[[P]])
// DEFPF-LABEL: llvm.func internal @__bitnet_mad_avx512vnni_1x20x16_chunk
// DEFPF:         %[[D:.*]] = arith.constant 4096 : i64
// DEFPF:         %[[P:.*]] = llvm.getelementptr %{{.*}}[%[[D]]]
// DEFPF:         "llvm.intr.prefetch"(%[[P]])
// NOPF-LABEL: llvm.func internal @__bitnet_mad_avx512vnni_1x20x16_chunk
// NOPF-NOT:    llvm.intr.prefetch
// NOPF:        llvm.func internal @__bitnet_mad_avx512vnni_1x20x16(
// BADPF: prefetch-distance must be >= 0 (or -1, the target's default), got -2
func.func @prefetch(%x: tensor<1x16xf32>) -> tensor<1x20xf32> {
  %w = arith.constant dense<0.25> : tensor<20x16xf32>
  %wq, %ws = bitnet.ternarize %w : tensor<20x16xf32> -> tensor<20x16xi8>, tensor<f32>
  %p = bitnet.pack %wq : tensor<20x16xi8> -> !bitnet.ternary<20x16, i2>
  %y = bitnet.bitlinear %x, %p scale %ws : tensor<1x16xf32>, !bitnet.ternary<20x16, i2>, tensor<f32> -> tensor<1x20xf32>
  return %y : tensor<1x20xf32>
}

// -----

// Tests the prefill loop: with 12 tokens or more, the codes of two tiles
// over all of K (3 blocks x 4 x 2 tiles x 64 bytes) are unpacked once into a
// stack buffer that passes of tokens read back; past 256 KiB of codes (K over
// 8192) the kernel keeps the small-batch loop, which needs no buffer.
// CHECK-LABEL: llvm.func internal @__bitnet_mad_avx512vnni_12x70x40_chunk
// CHECK:         %[[N:.*]] = arith.constant 1536 : i64
// CHECK:         llvm.alloca %[[N]] x i8 {alignment = 64 : i64}
// CHECK:         llvm.call_intrinsic "llvm.x86.avx512.vpdpbusd.512"
// CHECK:       llvm.func internal @__bitnet_mad_avx512vnni_12x70x40(
// CHECK-LABEL: llvm.func internal @__bitnet_mad_avx512vnni_12x1x8200_chunk
// CHECK-NOT:     llvm.alloca
// CHECK:       llvm.func internal @__bitnet_mad_avx512vnni_12x1x8200(
func.func @prefill(%x: tensor<12x40xf32>, %x2: tensor<12x8200xf32>) -> (tensor<12x70xf32>, tensor<12x1xf32>) {
  %w = arith.constant dense<0.25> : tensor<70x40xf32>
  %wq, %ws = bitnet.ternarize %w : tensor<70x40xf32> -> tensor<70x40xi8>, tensor<f32>
  %p = bitnet.pack %wq : tensor<70x40xi8> -> !bitnet.ternary<70x40, i2>
  %y = bitnet.bitlinear %x, %p scale %ws : tensor<12x40xf32>, !bitnet.ternary<70x40, i2>, tensor<f32> -> tensor<12x70xf32>
  %w2 = arith.constant dense<-0.5> : tensor<1x8200xf32>
  %wq2, %ws2 = bitnet.ternarize %w2 : tensor<1x8200xf32> -> tensor<1x8200xi8>, tensor<f32>
  %p2 = bitnet.pack %wq2 : tensor<1x8200xi8> -> !bitnet.ternary<1x8200, i2>
  %y2 = bitnet.bitlinear %x2, %p2 scale %ws2 : tensor<12x8200xf32>, !bitnet.ternary<1x8200, i2>, tensor<f32> -> tensor<12x1xf32>
  return %y, %y2 : tensor<12x70xf32>, tensor<12x1xf32>
}

// -----

// Tests that a K past the MAD kernel's exact int32 range (524288 columns)
// keeps the reference lowering, with a warning that says why.
// RUN: bitnet-opt %s -split-input-file --canonicalize --bitnet-lower-to-cpu-kernels -o /dev/null 2>&1 | FileCheck %s --check-prefix=HUGEK
// HUGEK: warning: K = 524304 is past the 524288 columns whose int32 sums the MAD kernel keeps exact; this layer keeps the reference lowering
// CHECK-LABEL: func.func @huge_k
// CHECK:         bitnet.bitlinear
// CHECK-NOT:     call @__bitnet_mad
func.func @huge_k(%x: tensor<1x524304xf32>) -> tensor<1x1xf32> {
  %w = arith.constant dense<0.25> : tensor<1x524304xf32>
  %wq, %ws = bitnet.ternarize %w : tensor<1x524304xf32> -> tensor<1x524304xi8>, tensor<f32>
  %p = bitnet.pack %wq : tensor<1x524304xi8> -> !bitnet.ternary<1x524304, i2>
  %y = bitnet.bitlinear %x, %p scale %ws : tensor<1x524304xf32>, !bitnet.ternary<1x524304, i2>, tensor<f32> -> tensor<1x1xf32>
  return %y : tensor<1x1xf32>
}
