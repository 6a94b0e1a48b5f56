// The life of a model, stage by stage.
//
// This page follows one BitNet b1.58 linear layer from the bitnet dialect to
// a shared object. Every listing below is checked by lit against what the
// compiler prints today, so the page cannot drift from the compiler.
//
// Each stage is one command; `bitnet-compile --emit=mlir --mlir-stage=...`
// shows the same IR as the named pipeline run by `bitnet-opt`.
//
// RUN: bitnet-opt %s --canonicalize | FileCheck %s --check-prefix=INPUT
// RUN: bitnet-opt %s --bitnet-linalg-pipeline | FileCheck %s --check-prefix=LINALG
// RUN: bitnet-opt %s --bitnet-linalg-pipeline --bitnet-bufferize-pipeline | FileCheck %s --check-prefix=BUFFERS
// RUN: bitnet-opt %s --bitnet-reference-pipeline | FileCheck %s --check-prefix=LLVM
// RUN: bitnet-opt %s --canonicalize --bitnet-lower-to-cpu-kernels | FileCheck %s --check-prefix=KERNEL
// RUN: bitnet-compile %s --kernels=reference -o %t.so && llvm-nm -D --defined-only %t.so | FileCheck %s --check-prefix=SO

// ## 1. The model
//
// A layer with latent float weights: `bitnet.ternarize` is the absmean
// quantisation of the weights, `bitnet.pack` stores them 4 to a byte, and
// `bitnet.bitlinear` quantises each token of x to int8, multiplies exactly in
// int32 and rescales.
func.func @layer(%x: tensor<2x8xf32> {bitnet.name = "x"}) -> tensor<2x4xf32>
    attributes {bitnet.output_names = ["y"]} {
  %w = arith.constant dense<[[ 0.9, -0.4,  0.0,  1.2, -1.1,  0.3,  0.05, -0.8],
                             [-0.2,  0.7,  0.6, -0.9,  0.0,  0.0,  1.5,  0.1],
                             [ 0.0,  0.0,  0.0,  0.0,  0.0,  0.0,  0.0,  0.0],
                             [ 1.0,  1.0, -1.0, -1.0,  0.5, -0.5,  0.25, -0.25]]> : tensor<4x8xf32>
  %wq, %ws = bitnet.ternarize %w : tensor<4x8xf32> -> tensor<4x8xi8>, tensor<f32>
  %p = bitnet.pack %wq : tensor<4x8xi8> -> !bitnet.ternary<4x8, i2>
  %y = bitnet.bitlinear %x, %p scale %ws : tensor<2x8xf32>, !bitnet.ternary<4x8, i2>, tensor<f32> -> tensor<2x4xf32>
  return %y : tensor<2x4xf32>
}

// ## 2. Folded at compile time
//
// The float weights never reach the artifact: ternarisation folds to the
// scale s_w = mean|W| (0.4453125) and packing folds to 2-bit bytes, so only
// the packed constant remains.
//
// INPUT-LABEL: func.func @layer
// INPUT-DAG:     %[[S:.*]] = arith.constant dense<0.4453125> : tensor<f32>
// INPUT-DAG:     %[[W:.*]] = bitnet.constant dense<{{\[\[}}-110, 24], [41, 101], [85, 85], [10, 34]]> : tensor<4x2xi8> -> !bitnet.ternary<4x8, i2>
// INPUT:         bitnet.bitlinear %{{.*}}, %[[W]] scale %[[S]]
// INPUT-NOT:     bitnet.ternarize

// ## 3. The reference lowering (bitnet-linalg-pipeline)
//
// Each op becomes linalg.generic ops that spell out the numerics contract:
// max |x| per token, x * 127 / max rounded half to even and clamped, the
// 2-bit codes unpacked, an exact int32 dot product, then acc * s_w / s_x.
//
// LINALG-LABEL: func.func @layer
// LINALG:         math.absf
// LINALG:         arith.maximumf
// LINALG:         math.roundeven
// LINALG:         arith.fptosi %{{.*}} : f32 to i8
// LINALG:         arith.shrui %{{.*}} : i32
// LINALG:         arith.extsi %{{.*}} : i8 to i32
// LINALG:         arith.muli %{{.*}} : i32
// LINALG:         arith.sitofp %{{.*}} : i32 to f32
// LINALG:         arith.divf
// LINALG-NOT:     bitnet.

// ## 4. Buffers (bitnet-bufferize-pipeline)
//
// Tensors become buffers, the output an out-parameter, and every
// intermediate buffer a view into one 256-byte workspace, planned by
// lifetime: a run allocates nothing.
//
// BUFFERS-LABEL: func.func @layer(
// BUFFERS-SAME:    %{{.*}}: memref<2x8xf32> {bitnet.name = "x"}, %{{.*}}: memref<2x4xf32> {bufferize.result}, %[[WS:.*]]: memref<256xi8> {bitnet.workspace}
// BUFFERS-SAME:    bitnet.workspace_bytes = 256
// BUFFERS:         memref.view %[[WS]]
// BUFFERS-NOT:     memref.alloc(
// BUFFERS:         return

// ## 5. The C entry point and LLVM (bitnet-llvm-pipeline)
//
// The descriptor and the stable entry of runtime/include/bitnet_rt/model_abi.h
// are added, and everything is in the LLVM dialect.
//
// LLVM-DAG: llvm.mlir.global external constant @bitnet_model_info()
// LLVM-DAG: llvm.func @bitnet_model_run(%{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr) -> i32
// LLVM-DAG: llvm.func @layer(

// ## 6. Or a kernel for the machine (bitnet-lower-to-cpu-kernels)
//
// With AVX-512 VNNI (bitnet-compile's default there), the layer becomes a
// call to a kernel generated for its shape; the weight is laid out for
// vpdpbusd at compile time (one 64-row group: 256 bytes).
//
// KERNEL-LABEL: func.func @layer
// KERNEL:         arith.constant dense<{{.*}}> : tensor<256xi8>
// KERNEL:         call @__bitnet_mad_avx512vnni_2x4x8_memref
// KERNEL-SAME:      bitnet.kernel = {cols_per_block = 16 : i64, family = "mad", isa = "avx512vnni"

// ## 7. The shared object
//
// `bitnet-compile` runs the stages, LLVM's optimiser and code generator, and
// the linker: the object exports the two symbols of the model ABI and
// nothing else. Run it with `bitnet-run`, libbitnet_rt or dlopen.
//
// SO:     D bitnet_model_info
// SO-NEXT: T bitnet_model_run
// SO-NOT: layer
