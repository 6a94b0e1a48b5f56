// REQUIRES: ptxas
// RUN: bitnet-compile %s --target=nvptx --gpu-arch=sm_90 --cuda-path=%cuda_path --emit=ptx -o %t.sm90.ptx
// RUN: FileCheck %s --check-prefix=PTX < %t.sm90.ptx
// RUN: %ptxas -arch=sm_90 %t.sm90.ptx -o %t.sm90.cubin
// RUN: bitnet-compile %s --target=nvptx --gpu-arch=sm_80 --cuda-path=%cuda_path --emit=ptx -o %t.sm80.ptx
// RUN: FileCheck %s --check-prefix=SM80 < %t.sm80.ptx
// RUN: %ptxas -arch=sm_80 %t.sm80.ptx -o %t.sm80.cubin
// RUN: bitnet-compile %s --target=nvptx --gpu-arch=sm_80 --cuda-path=%cuda_path --kv-cache=f32 --emit=ptx -o %t.f32.ptx
// RUN: FileCheck %s --check-prefix=F32 < %t.f32.ptx
// RUN: %ptxas -arch=sm_80 %t.f32.ptx -o %t.f32.cubin
// RUN: bitnet-compile %s --target=nvptx --gpu-arch=sm_90 --cuda-path=%cuda_path --emit=mlir --mlir-stage=llvm | FileCheck %s --check-prefix=PROGRAM
// RUN: bitnet-compile %s --target=nvptx --gpu-arch=sm_90 --cuda-path=%cuda_path -o %t.so
// RUN: bitnet-run %t.so --random > %t.out 2>&1 || true
// RUN: FileCheck %s --check-prefix=LOAD --input-file %t.out

// Tests that the attention half of a decoder step (RoPE on the query and
// key, attention over KV caches held in GPU memory) compiles to PTX that
// ptxas accepts for sm_90 and sm_80: sine and cosine from libdevice (no
// unresolved __nv_ calls), f16 caches by default (rounded when written,
// widened when read), barriers and warp shuffles for the scores (a warp per
// key row) and the softmax. The query's and key's ropes and the cache update
// are one kernel: the rotated keys go straight into the cache.
// PTX: .version 8.0
// PTX: .target sm_90
// PTX-NOT: .extern .func __nv_
// PTX-NOT: .entry bitnet_rope_1x
// PTX-NOT: .entry bitnet_kv_update_1x
// PTX-LABEL: .entry bitnet_rope_kv_update_1x4x2x16_c32_f16_i32_q1x4x16_half_i32_k1x2x16_half_i32
// PTX: cvt.rn.f16.f32
// PTX-LABEL: .entry bitnet_attention_1x4x2x16_c32_f16_i32
// PTX: .shared .align 4 .b8
// PTX: bar.sync
// PTX-DAG: cvt.f32.f16
// PTX-DAG: shfl.sync.bfly.b32
// PTX-DAG: ex2.approx
// PTX-DAG: div.rn.f32
// SM80: .target sm_80
// SM80-LABEL: .entry bitnet_attention_1x4x2x16_c32_f16_i32
// F32-LABEL: .entry bitnet_rope_kv_update_1x4x2x16_c32_f32_i32_q
// F32-NOT: cvt.rn.f16.f32
// F32-LABEL: .entry bitnet_attention_1x4x2x16_c32_f32_i32

// Tests that the model carries its launch list and descriptor (the state
// flags of the caches are checked by bitnet-gpu-test).
// PROGRAM: llvm.mlir.global internal constant @__bitnet_gpu_program()
// PROGRAM: llvm.mlir.global external constant @bitnet_model_info()

// Tests that the runtime refuses the model clearly without a usable GPU (or,
// with one, runs it).
// LOAD-NOT: Segmentation
// LOAD: {{cannot load GPU model|o}}
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
