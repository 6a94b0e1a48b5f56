// RUN: bitnet-compile %s --kernels=reference --emit=mlir --mlir-stage=linalg | sed -e 's/bitnet.target = #bitnet.target<[^>]*>//' -e 's/module attributes {} {/module {/' > %t.compile.ref
// RUN: bitnet-opt %s --bitnet-linalg-pipeline | sed -e 's/bitnet.target = #bitnet.target<[^>]*>//' -e 's/module attributes {} {/module {/' > %t.opt.ref
// RUN: diff %t.compile.ref %t.opt.ref
// RUN: bitnet-compile %s --target=x86_64-linux-gnu --cpu=sapphirerapids --kernels=avx512vnni --float-weights=f16 --kv-cache=f32 --weight-format=base3 --emit=mlir --mlir-stage=linalg | sed -e 's/bitnet.target = #bitnet.target<[^>]*>//' -e 's/module attributes {} {/module {/' > %t.compile.vnni
// RUN: bitnet-opt %s "--bitnet-linalg-pipeline=cpu-kernels=avx512vnni float-weights=f16 kv-cache=f32 weight-format=base3" | sed -e 's/bitnet.target = #bitnet.target<[^>]*>//' -e 's/module attributes {} {/module {/' > %t.opt.vnni
// RUN: diff %t.compile.vnni %t.opt.vnni
// RUN: bitnet-compile %s --kernels=reference --emit=mlir --mlir-stage=bufferized | sed -e 's/bitnet.target = #bitnet.target<[^>]*>//' -e 's/module attributes {} {/module {/' > %t.compile.buf
// RUN: bitnet-opt %s --bitnet-linalg-pipeline --bitnet-bufferize-pipeline | sed -e 's/bitnet.target = #bitnet.target<[^>]*>//' -e 's/module attributes {} {/module {/' > %t.opt.buf
// RUN: diff %t.compile.buf %t.opt.buf
// RUN: FileCheck %s --input-file %t.opt.ref
// RUN: bitnet-compile %s --kernels=reference --emit=mlir | FileCheck %s --check-prefix=TARGET
// RUN: not bitnet-opt %s "--bitnet-linalg-pipeline=kv-cache=f8" 2>&1 | FileCheck %s --check-prefix=BADKV
// RUN: not bitnet-compile %s --kv-cache=f8 2>&1 | FileCheck %s --check-prefix=BADKV-COMPILE

// Tests that bitnet-compile and bitnet-opt's named pipelines, given the same
// options, give the same IR at each stage, with the same defaults (here the
// KV-cache type, f16 unless asked otherwise), apart from the #bitnet.target
// that bitnet-compile attaches.

// The default KV cache is f16 in both.
// CHECK-LABEL: func.func @step
// CHECK-SAME: tensor<32x2x16xf16>

// bitnet-compile attaches the target to the module.
// TARGET: module attributes {bitnet.target = #bitnet.target<backend = "cpu", triple = "{{.*}}", chip = "{{.*}}"

// An option value outside the enum is refused by both, naming the value.
// BADKV: for the --kv-cache option: Cannot find option named 'f8'!
// BADKV-COMPILE: for the --kv-cache option: unknown value 'f8' (expected f16 or f32)

func.func @step(%x: tensor<1x4x16xf32> {bitnet.name = "q"}, %xk: tensor<1x2x16xf32> {bitnet.name = "k"},
                %v: tensor<1x2x16xf32> {bitnet.name = "v"},
                %kc: tensor<32x2x16xf32> {bitnet.name = "k_cache"}, %vc: tensor<32x2x16xf32> {bitnet.name = "v_cache"},
                %pos: tensor<i32> {bitnet.name = "position"}, %p: tensor<1xi32> {bitnet.name = "positions"})
    -> (tensor<1x4x16xf32>, tensor<32x2x16xf32>, tensor<32x2x16xf32>)
    attributes {bitnet.output_names = ["o", "k_cache_out", "v_cache_out"]} {
  %q = bitnet.rope %x, %p {theta = 10000.0 : f32} : tensor<1x4x16xf32>, tensor<1xi32> -> tensor<1x4x16xf32>
  %k = bitnet.rope %xk, %p {theta = 10000.0 : f32} : tensor<1x2x16xf32>, tensor<1xi32> -> tensor<1x2x16xf32>
  %o, %kc1, %vc1 = bitnet.attention %q, %k, %v, %kc, %vc, %pos
      : tensor<1x4x16xf32>, tensor<1x2x16xf32>, tensor<1x2x16xf32>, tensor<32x2x16xf32>, tensor<32x2x16xf32>, tensor<i32>
      -> tensor<1x4x16xf32>, tensor<32x2x16xf32>, tensor<32x2x16xf32>
  return %o, %kc1, %vc1 : tensor<1x4x16xf32>, tensor<32x2x16xf32>, tensor<32x2x16xf32>
}
