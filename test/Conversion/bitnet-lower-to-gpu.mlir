// RUN: bitnet-opt %s --split-input-file --canonicalize --bitnet-lower-to-gpu --verify-diagnostics | FileCheck %s

// Tests that a decode-shaped bitlinear becomes a quantisation kernel and a
// W2A8 GEMV whose weight is a constant in the GPU layout, with every operand
// a flat view of an argument, the workspace or a global.
// CHECK-LABEL: func.func @decode
// CHECK-SAME: %[[X:.*]]: memref<1x512xf32>, %[[Y:.*]]: memref<1x256xf32> {bufferize.result}, %[[WS:.*]]: memref<{{[0-9]+}}xi8> {bitnet.gpu_workspace}
// CHECK: gpu.launch_func @bitnet_kernels::@bitnet_quantize_1x512_1x512
// CHECK-SAME: args(%{{.*}} : memref<512xf32>, %{{.*}} : memref<512xi8>, %{{.*}} : memref<1xi32>, %{{.*}} : memref<1xf32>)
// CHECK: memref.get_global @__bitnet_gpu_const_{{[0-9]+}} : memref<32768xi8>
// CHECK: gpu.launch_func @bitnet_kernels::@bitnet_gemv_w2a8_1x256x512_r4
// CHECK-SAME: blocks in (%{{.*}}, %{{.*}}, %{{.*}}) threads in
// CHECK-SAME: {bitnet.bytes = {{[0-9]+}} : i64, bitnet.flops = 262144 : i64}
// CHECK: gpu.module @bitnet_kernels
// CHECK: gpu.func @bitnet_quantize_1x512_1x512
// CHECK: math.roundeven
// CHECK: gpu.func @bitnet_gemv_w2a8_1x256x512_r4
// CHECK: vector.load %{{.*}} {alignment = 16 : i64} : memref<32768xi8>, vector<16xi8>
// CHECK: nvvm.dot.accumulate.4way %{{.*}} <unsigned>, %{{.*}} <signed>
// CHECK: gpu.shuffle xor
// CHECK: arith.sitofp
// CHECK: arith.mulf
// CHECK: arith.divf
func.func @decode(%x: tensor<1x512xf32>) -> tensor<1x256xf32> {
  %w = arith.constant dense<0.5> : tensor<256x512xf32>
  %wq, %s = bitnet.ternarize %w : tensor<256x512xf32> -> tensor<256x512xi8>, tensor<f32>
  %p = bitnet.pack %wq : tensor<256x512xi8> -> !bitnet.ternary<256x512, i2>
  %y = bitnet.bitlinear %x, %p scale %s : tensor<1x512xf32>, !bitnet.ternary<256x512, i2>, tensor<f32> -> tensor<1x256xf32>
  return %y : tensor<1x256xf32>
}

// -----

// Tests that prefill (more than 8 tokens) becomes a GEMM of 8-token blocks
// (grid y = 3 for 20 tokens) over activations padded to 24 tokens.
// CHECK-LABEL: func.func @prefill
// CHECK: @bitnet_quantize_20x512_24x512
// CHECK: %[[C3:.*]] = arith.constant 3 : index
// CHECK: gpu.launch_func @bitnet_kernels::@bitnet_gemm_w2a8_20x64x512_r4 blocks in (%{{.*}}, %[[C3]], %{{.*}})
func.func @prefill(%x: tensor<20x512xf32>) -> tensor<20x64xf32> {
  %w = arith.constant dense<-0.5> : tensor<64x512xf32>
  %wq, %s = bitnet.ternarize %w : tensor<64x512xf32> -> tensor<64x512xi8>, tensor<f32>
  %p = bitnet.pack %wq : tensor<64x512xi8> -> !bitnet.ternary<64x512, i2>
  %y = bitnet.bitlinear %x, %p scale %s : tensor<20x512xf32>, !bitnet.ternary<64x512, i2>, tensor<f32> -> tensor<20x64xf32>
  return %y : tensor<20x64xf32>
}

// -----

// Tests that RMSNorm, squared ReLU and a residual add chain on the GPU, the
// intermediates in the workspace and the last result written to the output.
// CHECK-LABEL: func.func @block
// CHECK: gpu.launch_func @bitnet_kernels::@bitnet_rmsnorm_2x64_
// CHECK: gpu.launch_func @bitnet_kernels::@bitnet_squared_relu_128
// CHECK: gpu.launch_func @bitnet_kernels::@bitnet_add_128 {{.*}} args(%{{.*}} : memref<128xf32>, %{{.*}} : memref<128xf32>, %[[OUT:.*]] : memref<128xf32>)
// CHECK: math.sqrt
func.func @block(%x: tensor<2x64xf32>, %g: tensor<64xf32>) -> tensor<2x64xf32> {
  %n = bitnet.rmsnorm %x, %g : tensor<2x64xf32>, tensor<64xf32> -> tensor<2x64xf32>
  %r = bitnet.squared_relu %n : tensor<2x64xf32>
  %y = arith.addf %r, %x : tensor<2x64xf32>
  return %y : tensor<2x64xf32>
}

// -----

// Tests that an op without a GPU kernel is reported where it is.
func.func @unsupported(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  // expected-error @+1 {{bitnet-lower-to-gpu: 'math.exp' has no GPU kernel yet}}
  %y = math.exp %x : tensor<4x8xf32>
  return %y : tensor<4x8xf32>
}

// -----

// Tests that a weight known only at run time is refused.
// expected-error @+1 {{every argument and result must be a statically shaped tensor, got '!bitnet.ternary<4x8, i2>'}}
func.func @runtime_weight(%x: tensor<1x8xf32>, %w: !bitnet.ternary<4x8, i2>, %s: tensor<f32>) -> tensor<1x4xf32> {
  %y = bitnet.bitlinear %x, %w scale %s : tensor<1x8xf32>, !bitnet.ternary<4x8, i2>, tensor<f32> -> tensor<1x4xf32>
  return %y : tensor<1x4xf32>
}
