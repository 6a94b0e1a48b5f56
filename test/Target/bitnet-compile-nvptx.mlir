// REQUIRES: ptxas
// RUN: bitnet-compile %s --target=nvptx --gpu-arch=sm_90 --cuda-path=%cuda_path --emit=ptx -o %t.sm90.ptx
// RUN: FileCheck %s --check-prefix=PTX < %t.sm90.ptx
// RUN: %ptxas -arch=sm_90 %t.sm90.ptx -o %t.sm90.cubin
// RUN: bitnet-compile %s --target=nvptx --gpu-arch=sm_80 --cuda-path=%cuda_path --emit=ptx -o %t.sm80.ptx
// RUN: FileCheck %s --check-prefix=SM80 < %t.sm80.ptx
// RUN: %ptxas -arch=sm_80 %t.sm80.ptx -o %t.sm80.cubin
// RUN: bitnet-compile %s --target=nvptx --gpu-arch=sm_80 --cuda-path=%cuda_path --emit=mlir --mlir-stage=llvm | FileCheck %s --check-prefix=PROGRAM
// RUN: bitnet-compile %s --target=nvptx --gpu-arch=sm_90 --cuda-path=%cuda_path -o %t.so
// RUN: bitnet-run %t.so --random > %t.out 2>&1 || true
// RUN: FileCheck %s --check-prefix=LOAD --input-file %t.out
// RUN: bitnet-compile %s --target=nvptx --gpu-gemv-rows=32 --cuda-path=%cuda_path --emit=ptx -o %t.r32.ptx
// RUN: FileCheck %s --check-prefix=ROWS < %t.r32.ptx
// RUN: %ptxas -arch=sm_90 %t.r32.ptx -o %t.r32.cubin
// RUN: not bitnet-compile %s --target=nvptx --gpu-gemv-rows=3 2>&1 | FileCheck %s --check-prefix=BADROWS
// RUN: not bitnet-compile %s --gpu-gemv-rows=4 2>&1 | FileCheck %s --check-prefix=CPUROWS

// Tests that a decoder-like block (RMSNorm, two bitlinear layers around a
// squared ReLU, a residual add) compiles to PTX that ptxas accepts for sm_90
// and sm_80, with an explicit PTX version and target, dp4a in the GEMV,
// IEEE division and round-half-even.
// PTX: .version 8.0
// PTX: .target sm_90
// PTX: .address_size 64
// The RMSNorm before a bitlinear layer and the layer's activation
// quantisation are one kernel.
// PTX-LABEL: .entry bitnet_rmsnorm_quantize_1x512_{{.*}}_1x512
// PTX: sqrt.{{.*}}f32
// PTX: div.rn.f32
// PTX: cvt.rni.f32.f32
// PTX-NOT: .entry bitnet_rmsnorm
// PTX-NOT: .entry bitnet_quantize_1x512_
// PTX-LABEL: .entry bitnet_gemv_w2a8_1x1024x512_r4
// PTX: ld.global.v4.b32
// PTX: dp4a.u32.s32
// PTX: shfl.sync.bfly.b32
// PTX-LABEL: .entry bitnet_squared_relu_1024
// The residual add is the second GEMV's last step.
// PTX-LABEL: .entry bitnet_gemv_w2a8_1x512x1024_r{{[0-9]+}}_res(
// PTX: dp4a.u32.s32
// PTX: add.rn.f32
// PTX-NOT: .entry bitnet_add
// SM80: .target sm_80

// Tests --gpu-gemv-rows: every W2A8 kernel with the rows per warp it names,
// which ptxas accepts, and its errors.
// ROWS: .entry bitnet_gemv_w2a8_1x1024x512_r32
// ROWS-NOT: shfl.sync
// ROWS: {{^}}}{{$}}
// ROWS: .entry bitnet_gemv_w2a8_1x512x1024_r32_res
// BADROWS: bad --gpu-gemv-rows=3 (expected 1, 2, 4, 8, 16 or 32)
// CPUROWS: --gpu-gemv-rows needs --target=nvptx

// Tests the launch list: kernels in order, weights, the device workspace.
// PROGRAM: llvm.mlir.global internal constant @__bitnet_gpu_program()
// PROGRAM: llvm.mlir.global external constant @bitnet_model_info()

// Tests that the runtime refuses a GPU model clearly on a machine without a
// usable GPU (or, with one, runs it).
// LOAD-NOT: Segmentation
// LOAD: {{cannot load GPU model|y}}
func.func @block(%x: tensor<1x512xf32> {bitnet.name = "x"}) -> tensor<1x512xf32>
    attributes {bitnet.output_names = ["y"]} {
  %g = arith.constant dense<1.5> : tensor<512xf32>
  %n = bitnet.rmsnorm %x, %g : tensor<1x512xf32>, tensor<512xf32> -> tensor<1x512xf32>
  %w1 = arith.constant dense<0.5> : tensor<1024x512xf32>
  %w1q, %s1 = bitnet.ternarize %w1 : tensor<1024x512xf32> -> tensor<1024x512xi8>, tensor<f32>
  %p1 = bitnet.pack %w1q : tensor<1024x512xi8> -> !bitnet.ternary<1024x512, i2>
  %h = bitnet.bitlinear %n, %p1 scale %s1 : tensor<1x512xf32>, !bitnet.ternary<1024x512, i2>, tensor<f32> -> tensor<1x1024xf32>
  %r = bitnet.squared_relu %h : tensor<1x1024xf32>
  %w2 = arith.constant dense<-0.5> : tensor<512x1024xf32>
  %w2q, %s2 = bitnet.ternarize %w2 : tensor<512x1024xf32> -> tensor<512x1024xi8>, tensor<f32>
  %p2 = bitnet.pack %w2q : tensor<512x1024xi8> -> !bitnet.ternary<512x1024, i2>
  %o = bitnet.bitlinear %r, %p2 scale %s2 : tensor<1x1024xf32>, !bitnet.ternary<512x1024, i2>, tensor<f32> -> tensor<1x512xf32>
  %y = arith.addf %o, %x : tensor<1x512xf32>
  return %y : tensor<1x512xf32>
}
