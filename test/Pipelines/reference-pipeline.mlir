// RUN: bitnet-opt %s --bitnet-reference-pipeline | FileCheck %s --check-prefix=REF \
// RUN:   --implicit-check-not="{{^ *(%[^ ]+ = )?(func|arith|math|memref|scf|cf|linalg|tensor|bitnet|builtin)\.}}"
// RUN: bitnet-opt %s --bitnet-linalg-pipeline | FileCheck %s --check-prefix=LINALG
// RUN: bitnet-opt %s "--bitnet-linalg-pipeline=weight-format=base3" | FileCheck %s --check-prefix=BASE3
// RUN: bitnet-opt %s --bitnet-linalg-pipeline | bitnet-opt --bitnet-bufferize-pipeline | FileCheck %s --check-prefix=BUF
// RUN: bitnet-opt %s --bitnet-linalg-pipeline | bitnet-opt --bitnet-bufferize-pipeline \
// RUN:   | bitnet-opt "--bitnet-llvm-pipeline=producer=lit" | FileCheck %s --check-prefix=LLVM
// RUN: bitnet-opt %s "--bitnet-reference-pipeline=weight-format=int8 producer=lit" | FileCheck %s --check-prefix=INT8
// RUN: not bitnet-opt %s "--bitnet-reference-pipeline=weight-format=foo" 2>&1 | FileCheck %s --check-prefix=BADFORMAT

// Tests, on the bundled example (a BitLinear layer whose latent float
// weights are ternarised and packed at compile time), every stage of the
// reference path and the whole of it.

// The whole path leaves only the llvm dialect (see --implicit-check-not),
// with the private entry function, the descriptor and the run function.
// REF-LABEL: llvm.func @bitlinear
// REF: llvm.intr.roundeven
// REF: llvm.mlir.global private constant @{{__bitnet_str_[0-9]+}}("x\00")
// REF: llvm.mlir.global private constant @{{__bitnet_str_[0-9]+}}("y\00")
// REF: llvm.mlir.global private constant @{{__bitnet_str_[0-9]+}}("bitlinear\00")
// REF: llvm.mlir.global external constant @bitnet_model_info()
// REF: llvm.mlir.constant(256 : i64) : i64
// REF: llvm.mlir.constant(64 : i64) : i64
// REF-LABEL: llvm.func @bitnet_model_run(%{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr) -> i32
// REF: llvm.call @bitlinear
// REF: llvm.return %{{.*}} : i32

// The linalg stage folds ternarize and pack (the scale 14.25 / 32 and the
// i2 bytes are constants) and lowers bitlinear to linalg on tensors.
// LINALG-LABEL: func.func @bitlinear
// LINALG-SAME: (%{{.*}}: tensor<2x8xf32> {bitnet.name = "x"}) -> tensor<2x4xf32> attributes {bitnet.output_names = ["y"]}
// LINALG-DAG: arith.constant dense<0.4453125> : tensor<f32>
// LINALG-DAG: arith.constant dense<{{\[\[}}-110, 24], [41, 101], [85, 85], [10, 34]]> : tensor<4x2xi8>
// LINALG-NOT: bitnet.
// LINALG-NOT: tensor<4x8xf32>
// LINALG: linalg.generic
// LINALG: math.roundeven
// LINALG: arith.extsi
// LINALG: return %{{.*}} : tensor<2x4xf32>

// weight-format=base3 re-encodes the folded weight at compile time.
// BASE3: arith.constant dense<{{\[\[}}65, 113], [106, 124], [121, 121], [-86, 114]]> : tensor<4x2xi8>
// BASE3-NOT: bitnet.

// The bufferize stage turns the result into an out-parameter, lowers linalg
// to loops and places every intermediate buffer in one workspace.
// BUF: memref.global "private" constant @{{.*}} : memref<4x2xi8> = dense<{{\[\[}}-110, 24], [41, 101], [85, 85], [10, 34]]>
// BUF-LABEL: func.func @bitlinear
// BUF-SAME: (%{{.*}}: memref<2x8xf32> {bitnet.name = "x"}, %[[OUT:.*]]: memref<2x4xf32> {bufferize.result}, %[[WS:arg[0-9]+]]: memref<256xi8> {bitnet.workspace})
// BUF-SAME: bitnet.workspace_alignment = 64 : i64, bitnet.workspace_bytes = 256 : i64
// BUF-NOT: memref.alloc
// BUF-NOT: linalg.
// BUF-NOT: tensor.
// BUF: memref.view %[[WS]]
// BUF: scf.for
// BUF-NOT: memref.dealloc
// BUF: return

// The llvm stage adds the ABI symbols with the given producer and target
// strings and lowers everything to the llvm dialect.
// LLVM-LABEL: llvm.func @bitlinear
// LLVM: llvm.mlir.global private constant @{{__bitnet_str_[0-9]+}}("lit\00")
// LLVM: llvm.mlir.global private constant @{{__bitnet_str_[0-9]+}}("test-triple test-cpu\00")
// LLVM: llvm.mlir.global external constant @bitnet_model_info()
// LLVM: llvm.func @bitnet_model_run
// LLVM-NOT: func.func
// LLVM-NOT: builtin.unrealized_conversion_cast

// weight-format=int8 on the whole path stores one byte per weight.
// INT8: llvm.mlir.global private constant @{{.*}}(dense<{{\[\[}}1, -1, 0, 1, -1, 1, 0, -1], [0, 1, 1, -1, 0, 0, 1, 0], [0, 0, 0, 0, 0, 0, 0, 0], [1, 1, -1, -1, 1, -1, 1, -1]]> : tensor<4x8xi8>)
// INT8: llvm.mlir.global private constant @{{__bitnet_str_[0-9]+}}("lit\00")

// An unknown weight format stops the pipeline with the pass's error.
// BADFORMAT: for the --weight-format option: Cannot find option named 'foo'!

module attributes {bitnet.target = #bitnet.target<backend = "cpu",
    triple = "test-triple", chip = "test-cpu">} {
func.func @bitlinear(%x: tensor<2x8xf32> {bitnet.name = "x"}) -> tensor<2x4xf32>
    attributes {bitnet.output_names = ["y"]} {
  %w = arith.constant dense<[[ 0.9, -0.4,  0.0,  1.2, -1.1,  0.3,  0.05, -0.8],
                             [-0.2,  0.7,  0.6, -0.9,  0.0,  0.0,  1.5,  0.1],
                             [ 0.0,  0.0,  0.0,  0.0,  0.0,  0.0,  0.0,  0.0],
                             [ 1.0,  1.0, -1.0, -1.0,  0.5, -0.5,  0.25, -0.25]]> : tensor<4x8xf32>
  %wq, %ws = bitnet.ternarize %w : tensor<4x8xf32> -> tensor<4x8xi8>, tensor<f32>
  %packed = bitnet.pack %wq : tensor<4x8xi8> -> !bitnet.ternary<4x8, i2>
  %y = bitnet.bitlinear %x, %packed scale %ws : tensor<2x8xf32>, !bitnet.ternary<4x8, i2>, tensor<f32> -> tensor<2x4xf32>
  return %y : tensor<2x4xf32>
}
}
