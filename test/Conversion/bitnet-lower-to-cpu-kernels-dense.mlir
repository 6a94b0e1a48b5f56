// RUN: bitnet-opt %s -split-input-file --bitnet-lower-to-cpu-kernels | FileCheck %s
// RUN: bitnet-opt %s -split-input-file --bitnet-lower-to-cpu-kernels="tuned=dense:1x40x64:32:1:512:900:1500,dense:1x3x64:4:4:0:80:100" | FileCheck %s --check-prefix=TUNED
// RUN: bitnet-opt %s -split-input-file --bitnet-lower-to-cpu-kernels="isa=avx2 tuned=dense:1x40x64:2:4:2048:900:1500" | FileCheck %s --check-prefix=AVX2
// RUN: not bitnet-opt %s --bitnet-lower-to-cpu-kernels="tuned=dense:1x40x64:0:1:512:900:1500" 2>&1 | FileCheck %s --check-prefix=BAD
// RUN: not bitnet-opt %s --bitnet-lower-to-cpu-kernels="tuned=dense:1x40:8:1:512:900:1500" 2>&1 | FileCheck %s --check-prefix=BAD
// RUN: not bitnet-opt %s --bitnet-lower-to-cpu-kernels="tuned=dense:1x40x64:8:1:100000:900:1500" 2>&1 | FileCheck %s --check-prefix=BAD
// RUN: not bitnet-opt %s --bitnet-lower-to-cpu-kernels="tuned=1x40x64:mad:1:2:-5" 2>&1 | FileCheck %s --check-prefix=BADPF
// From bitnet-compile (--tuned-kernels), a bad entry is one error line: the
// module is not printed after it.
// RUN: not bitnet-compile %s --tuned-kernels=dense:1x40x64:0:1:512:900:1500 -o %t.so 2>&1 | FileCheck %s --check-prefix=BADCLI
// BADCLI: error: bitnet-lower-to-cpu-kernels: tuned entry 'dense:1x40x64:0:1:512:900:1500' is not dense:MxNxK
// BADCLI-NOT: see current operation
// BADCLI-NOT: func.func

// BAD: is not dense:MxNxK:rows:vectors:prefetch:ns:default_ns (rows 1-64, vectors 1-8, prefetch 0-65536 bytes)
// BADPF: is not MxNxK:mad|lut|auto:mad_ns:lut_ns[:prefetch] (prefetch 0-65536 bytes)

// Tests the block shape of the dense kernels: the target CPU's where none
// was measured (8 rows x 2 vectors, 1 KiB ahead; 16 x 1 and 256 bytes on a
// Zen 4; 4 x 2 with AVX2's 8 lanes), and the one bitnet-compile --tune
// measured for the shape where one was, with both times on the call.
// CHECK-LABEL: func.func @f16
// CHECK:         call @__bitnet_dense_f16_1x40x64_memref
// CHECK-SAME:      bitnet.kernel = {family = "dense", lanes = 16 : i64, prefetch_bytes = 1024 : i64, rows_per_block = 8 : i64, vectors_per_step = 2 : i64, weight_type = f16}
// CHECK:         call @__bitnet_dense_f16_2x40x64_memref
// CHECK-SAME:      rows_per_block = 8 : i64, vectors_per_step = 2 : i64
// TUNED-LABEL: func.func @f16
// TUNED:         call @__bitnet_dense_f16_1x40x64_memref
// TUNED-SAME:      bitnet.kernel = {default_ns = 1500 : i64, family = "dense", lanes = 16 : i64, prefetch_bytes = 512 : i64, rows_per_block = 32 : i64, tuned, tuned_ns = 900 : i64, vectors_per_step = 1 : i64, weight_type = f16}
// Another step size is another shape: it keeps the default.
// TUNED:         call @__bitnet_dense_f16_2x40x64_memref
// TUNED-SAME:      bitnet.kernel = {family = "dense", lanes = 16 : i64, prefetch_bytes = 1024 : i64, rows_per_block = 8 : i64, vectors_per_step = 2 : i64, weight_type = f16}
// AVX2-LABEL:  func.func @f16
// AVX2:          call @__bitnet_dense_f16_1x40x64_memref
// AVX2-SAME:       bitnet.kernel = {default_ns = 1500 : i64, family = "dense", lanes = 8 : i64, prefetch_bytes = 2048 : i64, rows_per_block = 2 : i64, tuned, tuned_ns = 900 : i64, vectors_per_step = 4 : i64, weight_type = f16}
// AVX2:          call @__bitnet_dense_f16_2x40x64_memref
// AVX2-SAME:       lanes = 8 : i64, prefetch_bytes = 1024 : i64, rows_per_block = 4 : i64, vectors_per_step = 2 : i64
func.func @f16(%x: tensor<1x64xf32>, %x2: tensor<2x64xf32>) -> (tensor<1x40xf32>, tensor<2x40xf32>) {
  %w = arith.constant dense<0.5> : tensor<40x64xf16>
  %y = bitnet.dense_matmul %x, %w : tensor<1x64xf32>, tensor<40x64xf16> -> tensor<1x40xf32>
  %y2 = bitnet.dense_matmul %x2, %w : tensor<2x64xf32>, tensor<40x64xf16> -> tensor<2x40xf32>
  return %y, %y2 : tensor<1x40xf32>, tensor<2x40xf32>
}

// -----

// CHECK-LABEL: func.func @zen4
// CHECK:         call @__bitnet_dense_f16_1x40x64_memref
// CHECK-SAME:      prefetch_bytes = 256 : i64, rows_per_block = 16 : i64, vectors_per_step = 1 : i64
module attributes {bitnet.target = #bitnet.target<backend = "cpu",
    triple = "x86_64-unknown-linux-gnu", chip = "znver4">} {
func.func @zen4(%x: tensor<1x64xf32>) -> tensor<1x40xf32> {
  %w = arith.constant dense<0.5> : tensor<40x64xf16>
  %y = bitnet.dense_matmul %x, %w : tensor<1x64xf32>, tensor<40x64xf16> -> tensor<1x40xf32>
  return %y : tensor<1x40xf32>
}
}

// -----

// A W8A8 layer takes as many rows a block as the shape's rows x vectors.
// CHECK-LABEL: func.func @w8a8
// CHECK:         call @__bitnet_dense_w8a8_1x3x64_memref
// CHECK-SAME:      bitnet.kernel = {family = "dense_w8a8", isa = "avx512vnni", prefetch_bytes = 1024 : i64, rows_per_block = 16 : i64, weight_bytes = 192 : i64}
// TUNED-LABEL: func.func @w8a8
// TUNED:         call @__bitnet_dense_w8a8_1x3x64_memref
// TUNED-SAME:      bitnet.kernel = {default_ns = 100 : i64, family = "dense_w8a8", isa = "avx512vnni", prefetch_bytes = 0 : i64, rows_per_block = 16 : i64, tuned, tuned_ns = 80 : i64, weight_bytes = 192 : i64}
func.func @w8a8(%x: tensor<1x64xf32>) -> tensor<1x3xf32> {
  %w = arith.constant dense<3> : tensor<3x64xi8>
  %s = arith.constant dense<[0.5, 0.25, 1.0]> : tensor<3xf32>
  %y = bitnet.dense_matmul %x, %w scales %s {quantize_input} : tensor<1x64xf32>, tensor<3x64xi8>, tensor<3xf32> -> tensor<1x3xf32>
  return %y : tensor<1x3xf32>
}

// -----

// A bf16 weight is widened to f32 (its bits shifted into the top half), on
// every CPU: no vdpbf16ps where the target has AVX512-BF16.
// CHECK-LABEL: func.func @bf16
// CHECK:         call @__bitnet_dense_bf16_1x40x64_memref
// CHECK-SAME:      weight_type = bf16
// CHECK:       llvm.func internal @__bitnet_dense_bf16_1x40x64_chunk
// CHECK-NOT:     dpbf16ps
// CHECK:         arith.bitcast {{.*}} : vector<16xbf16> to vector<16xi16>
// CHECK:         arith.extui {{.*}} : vector<16xi16> to vector<16xi32>
// CHECK:         arith.shli
// CHECK:         arith.bitcast {{.*}} : vector<16xi32> to vector<16xf32>
// CHECK-NOT:     dpbf16ps
// CHECK:       llvm.func internal @__bitnet_dense_bf16_1x40x64(
// AVX2-LABEL:  func.func @bf16
// AVX2:          call @__bitnet_dense_bf16_1x40x64_memref
// AVX2-SAME:       lanes = 8 : i64
module attributes {bitnet.target = #bitnet.target<backend = "cpu",
    triple = "x86_64-unknown-linux-gnu", chip = "znver4",
    features = "avx2,avx512f,avx512bw,avx512vnni,avx512bf16">} {
func.func @bf16(%x: tensor<1x64xf32>) -> tensor<1x40xf32> {
  %w = arith.constant dense<0.5> : tensor<40x64xbf16>
  %y = bitnet.dense_matmul %x, %w : tensor<1x64xf32>, tensor<40x64xbf16> -> tensor<1x40xf32>
  return %y : tensor<1x40xf32>
}
}
