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

// Tests that layers reading one input (q, k and v of a decoder) share one
// quantisation of it: one quantisation kernel for both GEMVs (the emulated
// GPU tests check that the shared buffers give the reference's values).
// CHECK-LABEL: func.func @qkv
// CHECK: gpu.launch_func @bitnet_kernels::@bitnet_quantize_1x512_1x512
// CHECK-NOT: bitnet_quantize
// CHECK: gpu.launch_func @bitnet_kernels::@bitnet_gemv_w2a8_1x256x512_r4
// CHECK-NOT: bitnet_quantize
// CHECK: gpu.launch_func @bitnet_kernels::@bitnet_gemv_w2a8_1x64x512_r4
// CHECK-NOT: launch_func
// CHECK: return
func.func @qkv(%x: tensor<1x512xf32>) -> (tensor<1x256xf32>, tensor<1x64xf32>) {
  %wa = arith.constant dense<0.5> : tensor<256x512xf32>
  %wqa, %sa = bitnet.ternarize %wa : tensor<256x512xf32> -> tensor<256x512xi8>, tensor<f32>
  %pa = bitnet.pack %wqa : tensor<256x512xi8> -> !bitnet.ternary<256x512, i2>
  %wb = arith.constant dense<-0.5> : tensor<64x512xf32>
  %wqb, %sb = bitnet.ternarize %wb : tensor<64x512xf32> -> tensor<64x512xi8>, tensor<f32>
  %pb = bitnet.pack %wqb : tensor<64x512xi8> -> !bitnet.ternary<64x512, i2>
  %ya = bitnet.bitlinear %x, %pa scale %sa : tensor<1x512xf32>, !bitnet.ternary<256x512, i2>, tensor<f32> -> tensor<1x256xf32>
  %yb = bitnet.bitlinear %x, %pb scale %sb : tensor<1x512xf32>, !bitnet.ternary<64x512, i2>, tensor<f32> -> tensor<1x64xf32>
  return %ya, %yb : tensor<1x256xf32>, tensor<1x64xf32>
}

// -----

// Tests that an RMSNorm read by bitlinear layers alone becomes one kernel
// that normalises and quantises, and that layers of different layouts share
// its rows: K 128 is 2 chunks, which 8 rows per warp (N 8) pad to 4 and 16
// rows per warp (N 64) do not, so the rows are 256 bytes and the second
// GEMV, whose own rows would be 128 bytes, says so in its name.
// CHECK-LABEL: func.func @norm_shared
// CHECK: gpu.launch_func @bitnet_kernels::@bitnet_rmsnorm_quantize_1x128_0x{{[0-9a-f]+}}_1x256
// CHECK-SAME: args(%{{.*}} : memref<128xf32>, %{{.*}} : memref<128xf32>, %{{.*}} : memref<256xi8>, %{{.*}} : memref<1xi32>, %{{.*}} : memref<1xf32>)
// CHECK-NOT: bitnet_quantize
// CHECK-NOT: @bitnet_rmsnorm_
// CHECK: gpu.launch_func @bitnet_kernels::@bitnet_gemv_w2a8_1x8x128_r8 
// CHECK: gpu.launch_func @bitnet_kernels::@bitnet_gemv_w2a8_1x64x128_r16_x256 
// CHECK-NOT: launch_func
// CHECK: return
func.func @norm_shared(%x: tensor<1x128xf32>) -> (tensor<1x8xf32>, tensor<1x64xf32>) {
  %g = arith.constant dense<1.5> : tensor<128xf32>
  %n = bitnet.rmsnorm %x, %g : tensor<1x128xf32>, tensor<128xf32> -> tensor<1x128xf32>
  %wa = arith.constant dense<0.5> : tensor<8x128xf32>
  %wqa, %sa = bitnet.ternarize %wa : tensor<8x128xf32> -> tensor<8x128xi8>, tensor<f32>
  %pa = bitnet.pack %wqa : tensor<8x128xi8> -> !bitnet.ternary<8x128, i2>
  %wb = arith.constant dense<-0.5> : tensor<64x128xf32>
  %wqb, %sb = bitnet.ternarize %wb : tensor<64x128xf32> -> tensor<64x128xi8>, tensor<f32>
  %pb = bitnet.pack %wqb : tensor<64x128xi8> -> !bitnet.ternary<64x128, i2>
  %ya = bitnet.bitlinear %n, %pa scale %sa : tensor<1x128xf32>, !bitnet.ternary<8x128, i2>, tensor<f32> -> tensor<1x8xf32>
  %yb = bitnet.bitlinear %n, %pb scale %sb : tensor<1x128xf32>, !bitnet.ternary<64x128, i2>, tensor<f32> -> tensor<1x64xf32>
  return %ya, %yb : tensor<1x8xf32>, tensor<1x64xf32>
}

// -----

// Tests that an RMSNorm whose output is also read by anything else stays a
// kernel of its own, and the quantisation another.
// CHECK-LABEL: func.func @norm_returned
// CHECK: gpu.launch_func @bitnet_kernels::@bitnet_rmsnorm_1x128_
// CHECK: gpu.launch_func @bitnet_kernels::@bitnet_quantize_1x128_1x256
// CHECK: gpu.launch_func @bitnet_kernels::@bitnet_gemv_w2a8_1x8x128_r8 
func.func @norm_returned(%x: tensor<1x128xf32>) -> (tensor<1x8xf32>, tensor<1x128xf32>) {
  %g = arith.constant dense<1.5> : tensor<128xf32>
  %n = bitnet.rmsnorm %x, %g : tensor<1x128xf32>, tensor<128xf32> -> tensor<1x128xf32>
  %wa = arith.constant dense<0.5> : tensor<8x128xf32>
  %wqa, %sa = bitnet.ternarize %wa : tensor<8x128xf32> -> tensor<8x128xi8>, tensor<f32>
  %pa = bitnet.pack %wqa : tensor<8x128xi8> -> !bitnet.ternary<8x128, i2>
  %ya = bitnet.bitlinear %n, %pa scale %sa : tensor<1x128xf32>, !bitnet.ternary<8x128, i2>, tensor<f32> -> tensor<1x8xf32>
  return %ya, %n : tensor<1x8xf32>, tensor<1x128xf32>
}

// -----

// Tests that a residual add of a bitlinear output (r + y here) is the GEMV's
// last step: the GEMV reads r and writes the sum, and no add kernel is left.
// CHECK-LABEL: func.func @residual
// CHECK-SAME: %[[R:[a-z0-9]+]]: memref<1x512xf32>, %[[Y:[a-z0-9]+]]: memref<1x512xf32> {bufferize.result}
// CHECK: %[[RF:.*]] = memref.collapse_shape %[[R]]
// CHECK: %[[YF:.*]] = memref.collapse_shape %[[Y]]
// CHECK: gpu.launch_func @bitnet_kernels::@bitnet_gemv_w2a8_1x512x512_r4_res
// CHECK-SAME: %[[RF]] : memref<512xf32>, %[[YF]] : memref<512xf32>)
// CHECK-NOT: launch_func
// CHECK: return
// CHECK: gpu.func @bitnet_gemv_w2a8_1x512x512_r4_res(
// CHECK-SAME: %[[KR:arg[0-9]+]]: memref<512xf32>, %[[KY:arg[0-9]+]]: memref<512xf32>)
// CHECK: %[[P:.*]] = arith.divf
// CHECK: %[[RV:.*]] = memref.load %[[KR]]
// CHECK-NEXT: %[[SUM:.*]] = arith.addf %[[P]], %[[RV]]
// CHECK-NEXT: memref.store %[[SUM]], %[[KY]]
func.func @residual(%x: tensor<1x512xf32>, %r: tensor<1x512xf32>) -> tensor<1x512xf32> {
  %w = arith.constant dense<0.5> : tensor<512x512xf32>
  %wq, %s = bitnet.ternarize %w : tensor<512x512xf32> -> tensor<512x512xi8>, tensor<f32>
  %p = bitnet.pack %wq : tensor<512x512xi8> -> !bitnet.ternary<512x512, i2>
  %l = bitnet.bitlinear %x, %p scale %s : tensor<1x512xf32>, !bitnet.ternary<512x512, i2>, tensor<f32> -> tensor<1x512xf32>
  %y = arith.addf %r, %l : tensor<1x512xf32>
  return %y : tensor<1x512xf32>
}

// -----

// Tests the same for an ONNX Add (the elementwise linalg.generic form).
// CHECK-LABEL: func.func @residual_generic
// CHECK: gpu.launch_func @bitnet_kernels::@bitnet_gemv_w2a8_1x512x512_r4_res
// CHECK-NOT: launch_func
// CHECK: return
#id = affine_map<(d0, d1) -> (d0, d1)>
func.func @residual_generic(%x: tensor<1x512xf32>, %r: tensor<1x512xf32>) -> tensor<1x512xf32> {
  %w = arith.constant dense<0.5> : tensor<512x512xf32>
  %wq, %s = bitnet.ternarize %w : tensor<512x512xf32> -> tensor<512x512xi8>, tensor<f32>
  %p = bitnet.pack %wq : tensor<512x512xi8> -> !bitnet.ternary<512x512, i2>
  %l = bitnet.bitlinear %x, %p scale %s : tensor<1x512xf32>, !bitnet.ternary<512x512, i2>, tensor<f32> -> tensor<1x512xf32>
  %e = tensor.empty() : tensor<1x512xf32>
  %y = linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%l, %r : tensor<1x512xf32>, tensor<1x512xf32>) outs(%e : tensor<1x512xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %sum = arith.addf %a, %b : f32
    linalg.yield %sum : f32
  } -> tensor<1x512xf32>
  return %y : tensor<1x512xf32>
}

// -----

// Tests that an addend computed after the bitlinear layer, or an output that
// something else reads too, leaves the add a kernel of its own.
// CHECK-LABEL: func.func @late_residual
// CHECK: gpu.launch_func @bitnet_kernels::@bitnet_gemv_w2a8_1x512x512_r4 
// CHECK: gpu.launch_func @bitnet_kernels::@bitnet_mul_512
// CHECK: gpu.launch_func @bitnet_kernels::@bitnet_add_512
// CHECK: gpu.launch_func @bitnet_kernels::@bitnet_gemv_w2a8_1x512x512_r4 
// CHECK: gpu.launch_func @bitnet_kernels::@bitnet_add_512
// CHECK-NOT: _res
func.func @late_residual(%x: tensor<1x512xf32>, %r: tensor<1x512xf32>) -> (tensor<1x512xf32>, tensor<1x512xf32>, tensor<1x512xf32>) {
  %w = arith.constant dense<0.5> : tensor<512x512xf32>
  %wq, %s = bitnet.ternarize %w : tensor<512x512xf32> -> tensor<512x512xi8>, tensor<f32>
  %p = bitnet.pack %wq : tensor<512x512xi8> -> !bitnet.ternary<512x512, i2>
  %l = bitnet.bitlinear %x, %p scale %s : tensor<1x512xf32>, !bitnet.ternary<512x512, i2>, tensor<f32> -> tensor<1x512xf32>
  %r2 = arith.mulf %r, %r : tensor<1x512xf32>
  %y = arith.addf %l, %r2 : tensor<1x512xf32>
  %l2 = bitnet.bitlinear %x, %p scale %s : tensor<1x512xf32>, !bitnet.ternary<512x512, i2>, tensor<f32> -> tensor<1x512xf32>
  %y2 = arith.addf %l2, %r : tensor<1x512xf32>
  return %y, %y2, %l2 : tensor<1x512xf32>, tensor<1x512xf32>, tensor<1x512xf32>
}

// -----

// Tests that the sub-norm of a gated FFN over relu(gate)^2 * up, read by the
// down projection alone, is one kernel that also computes its input from
// gate and up (either operand order of the multiply), and that a product
// something else reads stays kernels of its own.
// CHECK-LABEL: func.func @gated
// CHECK-SAME: %[[G:[a-z0-9]+]]: memref<1x384xf32>, %[[U:[a-z0-9]+]]: memref<1x384xf32>
// CHECK: %[[GF:.*]] = memref.collapse_shape %[[G]]
// CHECK: %[[UF:.*]] = memref.collapse_shape %[[U]]
// CHECK: gpu.launch_func @bitnet_kernels::@bitnet_gated_rmsnorm_quantize_1x384_{{.*}} args(%[[GF]] : memref<384xf32>, %[[UF]] : memref<384xf32>,
// CHECK: gpu.launch_func @bitnet_kernels::@bitnet_gemv_w2a8_1x128x384_
// CHECK: %[[U2:.*]] = memref.collapse_shape %[[U]]
// CHECK: %[[G2:.*]] = memref.collapse_shape %[[G]]
// CHECK: gpu.launch_func @bitnet_kernels::@bitnet_gated_rmsnorm_quantize_1x384_{{.*}} args(%[[U2]] : memref<384xf32>, %[[G2]] : memref<384xf32>,
// CHECK: gpu.launch_func @bitnet_kernels::@bitnet_gemv_w2a8_1x128x384_
// CHECK: gpu.launch_func @bitnet_kernels::@bitnet_squared_relu_384
// CHECK: gpu.launch_func @bitnet_kernels::@bitnet_mul_384
// CHECK: gpu.launch_func @bitnet_kernels::@bitnet_rmsnorm_quantize_1x384_
// CHECK: gpu.launch_func @bitnet_kernels::@bitnet_gemv_w2a8_1x128x384_
// CHECK-NOT: launch_func
// CHECK: return
// CHECK: gpu.func @bitnet_gated_rmsnorm_quantize_1x384_
// CHECK: arith.maxnumf
// CHECK-NEXT: arith.mulf
// CHECK-NEXT: arith.mulf
func.func @gated(%gate: tensor<1x384xf32>, %up: tensor<1x384xf32>) -> (tensor<1x128xf32>, tensor<1x128xf32>, tensor<1x128xf32>, tensor<1x384xf32>) {
  %g = arith.constant dense<1.5> : tensor<384xf32>
  %w = arith.constant dense<0.5> : tensor<128x384xf32>
  %wq, %s = bitnet.ternarize %w : tensor<128x384xf32> -> tensor<128x384xi8>, tensor<f32>
  %p = bitnet.pack %wq : tensor<128x384xi8> -> !bitnet.ternary<128x384, i2>
  %h = bitnet.squared_relu %gate : tensor<1x384xf32>
  %a = arith.mulf %h, %up : tensor<1x384xf32>
  %n = bitnet.rmsnorm %a, %g : tensor<1x384xf32>, tensor<384xf32> -> tensor<1x384xf32>
  %y = bitnet.bitlinear %n, %p scale %s : tensor<1x384xf32>, !bitnet.ternary<128x384, i2>, tensor<f32> -> tensor<1x128xf32>
  %h2 = bitnet.squared_relu %up : tensor<1x384xf32>
  %a2 = arith.mulf %gate, %h2 : tensor<1x384xf32>
  %n2 = bitnet.rmsnorm %a2, %g : tensor<1x384xf32>, tensor<384xf32> -> tensor<1x384xf32>
  %y2 = bitnet.bitlinear %n2, %p scale %s : tensor<1x384xf32>, !bitnet.ternary<128x384, i2>, tensor<f32> -> tensor<1x128xf32>
  %h3 = bitnet.squared_relu %gate : tensor<1x384xf32>
  %a3 = arith.mulf %h3, %up : tensor<1x384xf32>
  %n3 = bitnet.rmsnorm %a3, %g : tensor<1x384xf32>, tensor<384xf32> -> tensor<1x384xf32>
  %y3 = bitnet.bitlinear %n3, %p scale %s : tensor<1x384xf32>, !bitnet.ternary<128x384, i2>, tensor<f32> -> tensor<1x128xf32>
  return %y, %y2, %y3, %a3 : tensor<1x128xf32>, tensor<1x128xf32>, tensor<1x128xf32>, tensor<1x384xf32>
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
// The epsilon is exact (its f32 bits, 0x35a5b36e, not 6 digits that would
// round to a neighbour).
// CHECK: gpu.func @bitnet_rmsnorm_2x64_0x35a5b36e
// CHECK-DAG: arith.constant 6.400000e+01 : f32
// CHECK-DAG: arith.constant 1.23456789E-6 : f32
// CHECK: math.sqrt
func.func @block(%x: tensor<2x64xf32>, %g: tensor<64xf32>) -> tensor<2x64xf32> {
  %n = bitnet.rmsnorm %x, %g {epsilon = 1.23456791e-06 : f32} : tensor<2x64xf32>, tensor<64xf32> -> tensor<2x64xf32>
  %r = bitnet.squared_relu %n : tensor<2x64xf32>
  %y = arith.addf %r, %x : tensor<2x64xf32>
  return %y : tensor<2x64xf32>
}

// -----

// Tests that an elementwise op on tensors without a specialised kernel runs
// as the generic kernel, its scalar op per element.
// CHECK-LABEL: func.func @elementwise_fallback
// CHECK: gpu.launch_func @bitnet_kernels::@bitnet_math_exp_0
// CHECK: gpu.func @bitnet_math_exp_0
// CHECK: math.exp %{{.*}} : f32
func.func @elementwise_fallback(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
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

// -----

// Tests that RoPE becomes one kernel with a thread per rotated pair, its
// inverse frequencies a constant global, and that interleaved pairs and i64
// positions get a kernel of their own.
// CHECK-LABEL: func.func @rope
// CHECK: memref.get_global @[[FREQ:__bitnet_gpu_const_[0-9]+]] : memref<4xf32>
// CHECK: gpu.launch_func @bitnet_kernels::@bitnet_rope_3x2x8_half_i32
// CHECK-SAME: args(%{{.*}} : memref<48xf32>, %{{.*}} : memref<3xi32>, %{{.*}} : memref<4xf32>, %{{.*}} : memref<48xf32>)
// CHECK: gpu.launch_func @bitnet_kernels::@bitnet_rope_3x2x8_interleaved_i64
// CHECK: gpu.func @bitnet_rope_3x2x8_half_i32
// CHECK: arith.sitofp %{{.*}} : i32 to f32
// CHECK: math.cos
// CHECK: math.sin
// CHECK: arith.subf
// CHECK: arith.addf
// CHECK: gpu.func @bitnet_rope_3x2x8_interleaved_i64
// CHECK: arith.sitofp %{{.*}} : i64 to f32
func.func @rope(%x: tensor<3x2x8xf32>, %p: tensor<3xi32>, %p64: tensor<3xi64>) -> (tensor<3x2x8xf32>, tensor<3x2x8xf32>) {
  %y = bitnet.rope %x, %p {theta = 10000.0 : f32} : tensor<3x2x8xf32>, tensor<3xi32> -> tensor<3x2x8xf32>
  %z = bitnet.rope %x, %p64 {theta = 500000.0 : f32, style = #bitnet.rope_style<interleaved>} : tensor<3x2x8xf32>, tensor<3xi64> -> tensor<3x2x8xf32>
  return %y, %z : tensor<3x2x8xf32>, tensor<3x2x8xf32>
}

// -----

// Tests that attention over f16 KV caches becomes a cache-update kernel and
// an attention kernel (one block per token and query head) that update the
// caches in place: the cache arguments become state and the updated caches
// returned are no outputs of their own (nor output names).
// CHECK-LABEL: func.func @decode_step
// CHECK-SAME: %{{.*}}: memref<16x2x8xf16> {bitnet.name = "k_cache", bitnet.state}, %{{.*}}: memref<16x2x8xf16> {bitnet.state}, %[[POS:.*]]: memref<i32>,
// CHECK-SAME: %{{.*}}: memref<1x4x8xf32> {bufferize.result}, %{{.*}}: memref<{{[0-9]+}}xi8> {bitnet.gpu_workspace})
// CHECK-SAME: attributes {bitnet.output_names = ["o"]}
// CHECK: %[[P:.*]] = memref.expand_shape %[[POS]] [] output_shape [1] : memref<i32> into memref<1xi32>
// CHECK: gpu.launch_func @bitnet_kernels::@bitnet_kv_update_1x4x2x8_c16_f16_i32
// CHECK-SAME: args(%{{.*}} : memref<16xf32>, %{{.*}} : memref<16xf32>, %{{.*}} : memref<256xf16>, %{{.*}} : memref<256xf16>, %[[P]] : memref<1xi32>)
// CHECK: gpu.launch_func @bitnet_kernels::@bitnet_attention_1x4x2x8_c16_f16_i32
// CHECK-SAME: args(%{{[^ ]*}} : memref<32xf32>, %{{[^ ]*}} : memref<256xf16>, %{{[^ ]*}} : memref<256xf16>, %{{[^ ]*}} : memref<1xi32>, %{{[^ ]*}} : memref<64xf32>, %{{[^ ]*}} : memref<32xf32>)
// CHECK-NEXT: return
// CHECK: gpu.func @bitnet_kv_update_1x4x2x8_c16_f16_i32
// CHECK: arith.maxsi
// CHECK: arith.minsi
// CHECK: arith.truncf %{{.*}} : f32 to f16
// CHECK: gpu.func @bitnet_attention_1x4x2x8_c16_f16_i32
// CHECK-SAME: workgroup(%{{.*}} : memref<8xf32, #gpu.address_space<workgroup>>, %{{.*}} : memref<4xf32, #gpu.address_space<workgroup>>)
// CHECK-SAME: known_block_size = array<i32: 128, 1, 1>
// CHECK: arith.extf %{{.*}} : f16 to f32
// CHECK: gpu.shuffle xor
// CHECK: math.exp
// CHECK: arith.divf
func.func @decode_step(%q: tensor<1x4x8xf32>, %k: tensor<1x2x8xf32>, %v: tensor<1x2x8xf32>,
                       %kc: tensor<16x2x8xf16> {bitnet.name = "k_cache"}, %vc: tensor<16x2x8xf16>, %pos: tensor<i32>)
    -> (tensor<1x4x8xf32>, tensor<16x2x8xf16>, tensor<16x2x8xf16>)
    attributes {bitnet.output_names = ["o", "k_cache_out", "v_cache_out"]} {
  %o, %kc1, %vc1 = bitnet.attention %q, %k, %v, %kc, %vc, %pos
      : tensor<1x4x8xf32>, tensor<1x2x8xf32>, tensor<1x2x8xf32>, tensor<16x2x8xf16>, tensor<16x2x8xf16>, tensor<i32>
      -> tensor<1x4x8xf32>, tensor<16x2x8xf16>, tensor<16x2x8xf16>
  return %o, %kc1, %vc1 : tensor<1x4x8xf32>, tensor<16x2x8xf16>, tensor<16x2x8xf16>
}

// -----

// Tests that the ropes of an attention's query and key, read by it alone,
// and the cache update are one kernel that writes the rotated query for the
// attention kernel and the rotated keys straight into the cache; a rotated
// key that something else reads leaves the three kernels apart.
// CHECK-LABEL: func.func @roped
// CHECK: gpu.launch_func @bitnet_kernels::@bitnet_rope_kv_update_1x4x2x8_c16_f16_i32_q1x4x8_half_i32_k1x2x8_interleaved_i32
// CHECK-SAME: args(%{{[^ ]*}} : memref<32xf32>, %{{[^ ]*}} : memref<16xf32>, %{{[^ ]*}} : memref<16xf32>, %{{[^ ]*}} : memref<1xi32>, %{{[^ ]*}} : memref<1xi32>, %{{[^ ]*}} : memref<4xf32>, %{{[^ ]*}} : memref<4xf32>, %{{[^ ]*}} : memref<32xf32>, %{{[^ ]*}} : memref<256xf16>, %{{[^ ]*}} : memref<256xf16>, %{{[^ ]*}} : memref<1xi32>)
// CHECK-NOT: launch_func
// CHECK: gpu.launch_func @bitnet_kernels::@bitnet_attention_1x4x2x8_c16_f16_i32
// CHECK-SAME: args(%view{{[^ ]*}} : memref<32xf32>,
// CHECK-NEXT: return
// CHECK: gpu.func @bitnet_rope_kv_update_1x4x2x8_c16_f16_i32_q1x4x8_half_i32_k1x2x8_interleaved_i32
// CHECK: math.cos
// CHECK: memref.store %{{.*}}, %{{.*}} : memref<32xf32>
// CHECK: math.cos
// CHECK: arith.truncf %{{.*}} : f32 to f16
// CHECK: arith.truncf %{{.*}} : f32 to f16
// CHECK: arith.truncf %{{.*}} : f32 to f16
func.func @roped(%q: tensor<1x4x8xf32>, %k: tensor<1x2x8xf32>, %v: tensor<1x2x8xf32>,
                 %kc: tensor<16x2x8xf16>, %vc: tensor<16x2x8xf16>, %pos: tensor<i32>, %p: tensor<1xi32>)
    -> (tensor<1x4x8xf32>, tensor<16x2x8xf16>, tensor<16x2x8xf16>) {
  %qr = bitnet.rope %q, %p {theta = 10000.0 : f32} : tensor<1x4x8xf32>, tensor<1xi32> -> tensor<1x4x8xf32>
  %kr = bitnet.rope %k, %p {theta = 10000.0 : f32, style = #bitnet.rope_style<interleaved>} : tensor<1x2x8xf32>, tensor<1xi32> -> tensor<1x2x8xf32>
  %o, %kc1, %vc1 = bitnet.attention %qr, %kr, %v, %kc, %vc, %pos
      : tensor<1x4x8xf32>, tensor<1x2x8xf32>, tensor<1x2x8xf32>, tensor<16x2x8xf16>, tensor<16x2x8xf16>, tensor<i32>
      -> tensor<1x4x8xf32>, tensor<16x2x8xf16>, tensor<16x2x8xf16>
  return %o, %kc1, %vc1 : tensor<1x4x8xf32>, tensor<16x2x8xf16>, tensor<16x2x8xf16>
}

// -----

// CHECK-LABEL: func.func @roped_key_returned
// CHECK: gpu.launch_func @bitnet_kernels::@bitnet_rope_1x4x8_half_i32
// CHECK: gpu.launch_func @bitnet_kernels::@bitnet_rope_1x2x8_half_i32
// CHECK: gpu.launch_func @bitnet_kernels::@bitnet_kv_update_1x4x2x8_c16_f16_i32
// CHECK: gpu.launch_func @bitnet_kernels::@bitnet_attention_1x4x2x8_c16_f16_i32
// CHECK-NOT: rope_kv_update
func.func @roped_key_returned(%q: tensor<1x4x8xf32>, %k: tensor<1x2x8xf32>, %v: tensor<1x2x8xf32>,
                              %kc: tensor<16x2x8xf16>, %vc: tensor<16x2x8xf16>, %pos: tensor<i32>, %p: tensor<1xi32>)
    -> (tensor<1x4x8xf32>, tensor<16x2x8xf16>, tensor<16x2x8xf16>, tensor<1x2x8xf32>) {
  %qr = bitnet.rope %q, %p {theta = 10000.0 : f32} : tensor<1x4x8xf32>, tensor<1xi32> -> tensor<1x4x8xf32>
  %kr = bitnet.rope %k, %p {theta = 10000.0 : f32} : tensor<1x2x8xf32>, tensor<1xi32> -> tensor<1x2x8xf32>
  %o, %kc1, %vc1 = bitnet.attention %qr, %kr, %v, %kc, %vc, %pos
      : tensor<1x4x8xf32>, tensor<1x2x8xf32>, tensor<1x2x8xf32>, tensor<16x2x8xf16>, tensor<16x2x8xf16>, tensor<i32>
      -> tensor<1x4x8xf32>, tensor<16x2x8xf16>, tensor<16x2x8xf16>
  return %o, %kc1, %vc1, %kr : tensor<1x4x8xf32>, tensor<16x2x8xf16>, tensor<16x2x8xf16>, tensor<1x2x8xf32>
}

// -----

// Tests that a KV cache that is not an argument of the entry function is
// refused: the GPU kernels update caches in place.
func.func @constant_cache(%q: tensor<1x2x4xf32>, %k: tensor<1x2x4xf32>, %pos: tensor<i32>) -> tensor<1x2x4xf32> {
  %c = arith.constant dense<0.0> : tensor<8x2x4xf32>
  // expected-error @+1 {{bitnet-lower-to-gpu: the KV caches must be arguments of the entry function that only this attention reads (the GPU updates them in place)}}
  %o, %kc1, %vc1 = bitnet.attention %q, %k, %k, %c, %c, %pos
      : tensor<1x2x4xf32>, tensor<1x2x4xf32>, tensor<1x2x4xf32>, tensor<8x2x4xf32>, tensor<8x2x4xf32>, tensor<i32>
      -> tensor<1x2x4xf32>, tensor<8x2x4xf32>, tensor<8x2x4xf32>
  return %o : tensor<1x2x4xf32>
}

// -----

// Tests that a cache argument read by another op as well is refused.
func.func @shared_cache(%q: tensor<1x2x4xf32>, %k: tensor<1x2x4xf32>, %kc: tensor<8x2x4xf32>, %vc: tensor<8x2x4xf32>, %pos: tensor<i32>) -> (tensor<1x2x4xf32>, tensor<8x2x4xf32>) {
  // expected-error @+1 {{the KV caches must be arguments of the entry function that only this attention reads}}
  %o, %kc1, %vc1 = bitnet.attention %q, %k, %k, %kc, %vc, %pos
      : tensor<1x2x4xf32>, tensor<1x2x4xf32>, tensor<1x2x4xf32>, tensor<8x2x4xf32>, tensor<8x2x4xf32>, tensor<i32>
      -> tensor<1x2x4xf32>, tensor<8x2x4xf32>, tensor<8x2x4xf32>
  %d = arith.addf %kc, %kc : tensor<8x2x4xf32>
  return %o, %d : tensor<1x2x4xf32>, tensor<8x2x4xf32>
}

// -----

// Tests the rest of a decoder step: the embedding of the tokens, the
// positions of the step's tokens (start + index, as the ONNX import makes
// them), an elementwise linalg.generic add (ONNX Add) and the head
// (dense_matmul with an i8 weight and a scale per row).
// CHECK-LABEL: func.func @decoder_ends
// CHECK: gpu.launch_func @bitnet_kernels::@bitnet_embedding_2x16x8_f16_i32
// CHECK: gpu.launch_func @bitnet_kernels::@bitnet_position_range_2_i32
// CHECK-SAME: args(%{{[^ ]*}} : memref<1xi32>, %{{[^ ]*}} : memref<2xi32>)
// CHECK: gpu.launch_func @bitnet_kernels::@bitnet_add_16
// CHECK: gpu.launch_func @bitnet_kernels::@bitnet_dense_2x16x8_i8
// CHECK-SAME: args(%{{[^ ]*}} : memref<16xf32>, %{{[^ ]*}} : memref<128xi8>, %{{[^ ]*}} : memref<16xf32>, %{{[^ ]*}} : memref<32xf32>)
// CHECK: gpu.func @bitnet_embedding_2x16x8_f16_i32
// CHECK: arith.select
// CHECK: arith.extf %{{.*}} : f16 to f32
// CHECK: gpu.func @bitnet_position_range_2_i32
// CHECK: arith.index_cast %{{.*}} : index to i32
// CHECK: gpu.func @bitnet_dense_2x16x8_i8
// CHECK: arith.sitofp %{{.*}} : i8 to f32
// CHECK: gpu.shuffle xor
#id = affine_map<(d0, d1) -> (d0, d1)>
func.func @decoder_ends(%tokens: tensor<2xi32>, %pos: tensor<i32>, %table: tensor<16x8xf16>,
                        %w: tensor<16x8xi8>, %s: tensor<16xf32>) -> (tensor<2x16xf32>, tensor<2xi32>) {
  %x = bitnet.embedding %table, %tokens : tensor<16x8xf16>, tensor<2xi32> -> tensor<2x8xf32>
  %start = tensor.extract %pos[] : tensor<i32>
  %p = tensor.generate {
  ^bb0(%i: index):
    %c = arith.index_cast %i : index to i32
    %v = arith.addi %start, %c : i32
    tensor.yield %v : i32
  } : tensor<2xi32>
  %e = tensor.empty() : tensor<2x8xf32>
  %x2 = linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%x, %x : tensor<2x8xf32>, tensor<2x8xf32>) outs(%e : tensor<2x8xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %r = arith.addf %a, %b : f32
    linalg.yield %r : f32
  } -> tensor<2x8xf32>
  %y = bitnet.dense_matmul %x2, %w scales %s : tensor<2x8xf32>, tensor<16x8xi8>, tensor<16xf32> -> tensor<2x16xf32>
  return %y, %p : tensor<2x16xf32>, tensor<2xi32>
}

// -----

// Tests that a linalg.generic other than an elementwise add or multiply
// runs as the generic kernel.
// CHECK-LABEL: func.func @other_generic
// CHECK: gpu.launch_func @bitnet_kernels::@bitnet_linalg_generic_0
#id1 = affine_map<(d0) -> (d0)>
func.func @other_generic(%x: tensor<4xf32>) -> tensor<4xf32> {
  %e = tensor.empty() : tensor<4xf32>
  %y = linalg.generic {indexing_maps = [#id1, #id1], iterator_types = ["parallel"]}
      ins(%x : tensor<4xf32>) outs(%e : tensor<4xf32>) {
  ^bb0(%a: f32, %o: f32):
    %r = math.exp %a : f32
    linalg.yield %r : f32
  } -> tensor<4xf32>
  return %y : tensor<4xf32>
}

// -----

// Tests that a tensor.generate other than a range of positions runs as the
// generic kernel, which reads the scalar of the 0-D tensor itself.
// CHECK-LABEL: func.func @other_generate
// CHECK: gpu.launch_func @bitnet_kernels::@bitnet_tensor_generate_0
// CHECK-SAME: args(%{{.*}} : memref<1xi32>, %{{.*}} : memref<3xi32>)
func.func @other_generate(%pos: tensor<i32>) -> tensor<3xi32> {
  %start = tensor.extract %pos[] : tensor<i32>
  %p = tensor.generate {
  ^bb0(%i: index):
    %c = arith.index_cast %i : index to i32
    %v = arith.muli %start, %c : i32
    tensor.yield %v : i32
  } : tensor<3xi32>
  return %p : tensor<3xi32>
}

// -----

// Tests that whole rows sliced out of an intermediate (the last token, for
// the head) are a view into the workspace at that row (2 rows of 64 floats,
// 512 bytes, past the rmsnorm result at offset 0), copied to the output.
// CHECK-LABEL: func.func @last_row
// CHECK: gpu.launch_func @bitnet_kernels::@bitnet_rmsnorm_3x64_
// CHECK: %[[AT:.*]] = arith.constant 512 : index
// CHECK: memref.view %{{.*}}[%[[AT]]][] : memref<{{[0-9]+}}xi8> to memref<64xf32>
// CHECK: gpu.launch_func @bitnet_kernels::@bitnet_copy_64
func.func @last_row(%x: tensor<3x64xf32>, %g: tensor<64xf32>) -> tensor<1x64xf32> {
  %n = bitnet.rmsnorm %x, %g : tensor<3x64xf32>, tensor<64xf32> -> tensor<3x64xf32>
  %r = tensor.extract_slice %n[2, 0] [1, 64] [1, 1] : tensor<3x64xf32> to tensor<1x64xf32>
  return %r : tensor<1x64xf32>
}

// -----

// Tests that a slice of an argument (no workspace view) is a kernel that
// copies it.
// CHECK-LABEL: func.func @argument_slice
// CHECK: gpu.launch_func @bitnet_kernels::@bitnet_tensor_extract_slice_0
func.func @argument_slice(%x: tensor<3x64xf32>) -> tensor<1x64xf32> {
  %r = tensor.extract_slice %x[2, 0] [1, 64] [1, 1] : tensor<3x64xf32> to tensor<1x64xf32>
  return %r : tensor<1x64xf32>
}
