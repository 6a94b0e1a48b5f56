// bitnet-compile --tune: the kernel families and prefetch distances timed on
// this machine, per layer shape, and the block shapes of a dense layer,
// replace the compiler's defaults where they measured clearly faster; the
// times are kept in a cache file and reused.
// REQUIRES: host-avx512-lut
// RUN: rm -rf %t && mkdir -p %t
// RUN: bitnet-compile %s --tune --tune-threads=1 --tuning-cache=%t/cache.json --emit=mlir --mlir-stage=linalg -o %t/first.mlir 2> %t/first.err
// RUN: FileCheck %s --input-file=%t/first.mlir
// RUN: FileCheck %s --check-prefix=FIRST --input-file=%t/first.err
// RUN: FileCheck %s --check-prefix=CACHE --input-file=%t/cache.json
// A second compile takes the cache's times and measures nothing.
// RUN: bitnet-compile %s --tune --tune-threads=1 --tuning-cache=%t/cache.json -v --emit=mlir --mlir-stage=linalg -o %t/second.mlir 2> %t/second.err
// RUN: FileCheck %s --check-prefix=SECOND --input-file=%t/second.err
// RUN: FileCheck %s --input-file=%t/second.mlir
// --retune measures again.
// RUN: bitnet-compile %s --tune --tune-threads=1 --tuning-cache=%t/cache.json --retune -o %t/m.so 2> %t/third.err
// RUN: FileCheck %s --check-prefix=FIRST --input-file=%t/third.err
// A cache this compiler did not write is started again, with a warning.
// RUN: echo '{"version": 7}' > %t/bad.json
// RUN: bitnet-compile %s --tune --tune-threads=1 --tuning-cache=%t/bad.json -o %t/m.so 2>&1 | FileCheck %s --check-prefix=DAMAGED
// RUN: FileCheck %s --check-prefix=CACHE --input-file=%t/bad.json
// A cache that cannot be written leaves the compile to finish, with a warning.
// RUN: touch %t/file
// RUN: bitnet-compile %s --tune --tune-threads=1 --tuning-cache=%t/file/cache.json -o %t/m.so 2>&1 | FileCheck %s --check-prefix=UNWRITABLE
// RUN: test -s %t/m.so
// Forced kernels leave nothing to time.
// RUN: bitnet-compile %s --tune --kernels=avx2 --tuning-cache=%t/none.json -o %t/m.so 2>&1 | FileCheck %s --check-prefix=FORCED
// RUN: not ls %t/none.json
// Timing needs code for this machine.
// RUN: not bitnet-compile %s --tune --target=aarch64-linux-gnu --emit=obj -o %t/m.o 2>&1 | FileCheck %s --check-prefix=CROSS
// RUN: not bitnet-compile %s --tune --cpu=x86-64-v3 -o %t/m.so 2>&1 | FileCheck %s --check-prefix=CROSS
// RUN: not bitnet-compile %s --tuning-cache=%t/c.json -o %t/m.so 2>&1 | FileCheck %s --check-prefix=NOTUNE
// RUN: not bitnet-compile %s --tune --tune-threads=0 -o %t/m.so 2>&1 | FileCheck %s --check-prefix=THREADS

// A shape takes the family that measured at least 10% faster (its times are
// recorded), or else the cost model's choice (its estimates are); and the
// prefetch distance that measured 10% faster than the default, if one did.
// The dense layer takes the block shape that measured 10% faster than the
// default one (both times recorded), or else the default.
// CHECK-LABEL: func.func @two_layers
// CHECK:         call @__bitnet_{{mad_avx512vnni|lut_avx512}}_1x64x128_memref
// CHECK-SAME:      {{(lut_ns = [1-9][0-9]* : i64, mad_ns = [1-9][0-9]* : i64, .*tuned)|(lut_cycles = [0-9]+ : i64, mad_cycles)}}
// CHECK:         call @__bitnet_{{mad_avx512vnni|lut_avx512}}_1x128x64_memref
// CHECK-SAME:      {{(lut_ns = [1-9][0-9]* : i64, mad_ns = [1-9][0-9]* : i64, .*tuned)|(lut_cycles = [0-9]+ : i64, mad_cycles)}}
// CHECK:         call @__bitnet_dense_f16_1x96x128_memref
// CHECK-SAME:      bitnet.kernel = {{{(default_ns = [1-9][0-9]* : i64, )?}}family = "dense"

// FIRST: --tune: timing the kernels of 3 layer shape(s) on 1 thread(s), weights in cache
// FIRST: 1x64x128 mad {{ *[0-9.]+}} us lut {{ *[0-9.]+}} us -> {{mad|lut|within 10%: the cost model's}}; prefetch default:{{[0-9.]+}} 0:{{[0-9.]+}} 1024:{{[0-9.]+}} 4096:{{[0-9.]+}} 16384:{{[0-9.]+}} us -> {{0 bytes|1024 bytes|4096 bytes|16384 bytes|the default \(within 10%\)}}
// FIRST: 1x128x64
// FIRST: dense 1x96x128 f16: default {{[0-9.]+}} us, 8x2x1024:{{[0-9.]+}} 8x2x256:{{[0-9.]+}} 16x1x256:{{[0-9.]+}} 16x1x1024:{{[0-9.]+}} 16x1x0:{{[0-9.]+}} 32x1x256:{{[0-9.]+}} 16x2x512:{{[0-9.]+}} 16x2x0:{{[0-9.]+}} 4x4x1024:{{[0-9.]+}} -> {{[0-9x]+|the default \(within 10%\)}}
// FIRST: --tune: kept in {{.*}}cache.json

// SECOND-NOT: timing
// SECOND: 1x64x128 {{.*}} (cached)
// SECOND: dense 1x96x128 f16: {{.*}} (cached)
// SECOND: --tune: 3 layer shape(s) from {{.*}}cache.json

// CACHE: "1x128x64/cache/t1": {
// CACHE-NEXT: "lut_ns": {{[1-9][0-9]*}},
// CACHE-NEXT: "mad_ns": {{[1-9][0-9]*}},
// CACHE-NEXT: "prefetch_ns": {
// CACHE-NEXT: "0": {{[1-9][0-9]*}},
// CACHE-NEXT: "1024": {{[1-9][0-9]*}},
// CACHE-NEXT: "16384": {{[1-9][0-9]*}},
// CACHE-NEXT: "4096": {{[1-9][0-9]*}},
// CACHE-NEXT: "default": {{[1-9][0-9]*}}
// CACHE-NEXT: },
// CACHE-NEXT: "prefetch_of": "{{mad|lut|auto}}"
// CACHE: "1x64x128/cache/t1"
// CACHE: "dense/1x96x128/f16/cache/t1": {
// CACHE-NEXT: "default_ns": {{[1-9][0-9]*}},
// CACHE-NEXT: "shapes_ns": {
// CACHE-NEXT: "16x1x0": {{[1-9][0-9]*}},
// CACHE-NEXT: "16x1x1024": {{[1-9][0-9]*}},
// CACHE: "version": 3

// DAMAGED: warning: the tuning cache {{.*}}bad.json is not one this compiler wrote; it is started again

// UNWRITABLE: warning: --tune: cannot {{create|write}} {{.*}}file{{(/cache.json)?}}: {{.*}}; the times are not kept

// FORCED: --tune: --kernels=avx2 leaves no choice to time

// CROSS: error: --tune times kernels on this machine: it needs code for this machine's CPU (no --target, --cpu or --features)
// NOTUNE: error: --tuning-cache, --tune-threads and --retune need --tune
// THREADS: error: --tune-threads must be between 1 and 1024

func.func @two_layers(%x: tensor<1x128xf32>) -> tensor<1x96xf32> {
  %w1 = bitnet.constant dense<1> : tensor<64x32xi8> -> !bitnet.ternary<64x128, i2>
  %w2 = bitnet.constant dense<9> : tensor<128x16xi8> -> !bitnet.ternary<128x64, i2>
  %s = arith.constant dense<0.5> : tensor<f32>
  %h = bitnet.bitlinear %x, %w1 scale %s : tensor<1x128xf32>, !bitnet.ternary<64x128, i2>, tensor<f32> -> tensor<1x64xf32>
  %y = bitnet.bitlinear %h, %w2 scale %s : tensor<1x64xf32>, !bitnet.ternary<128x64, i2>, tensor<f32> -> tensor<1x128xf32>
  %h16 = arith.constant dense<0.5> : tensor<96x128xf16>
  %z = bitnet.dense_matmul %y, %h16 : tensor<1x128xf32>, tensor<96x128xf16> -> tensor<1x96xf32>
  return %z : tensor<1x96xf32>
}
