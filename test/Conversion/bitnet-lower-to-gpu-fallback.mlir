// RUN: bitnet-opt %s --split-input-file --bitnet-lower-to-gpu --verify-diagnostics | FileCheck %s

// Tests that scalar constants stay scalars: the fill's 0.0 and the
// multiply's scale are computed in the kernels that read them, and a
// multiply by a scalar scale (a 0-D tensor broadcast) is one thread per
// element of the generic kernel.
// CHECK-LABEL: func.func @scalar_scale
// CHECK-NOT: memref.get_global
// CHECK: gpu.launch_func @bitnet_kernels::@bitnet_linalg_generic_0 blocks in (%{{.*}}, %{{.*}}, %{{.*}}) threads in (%{{.*}}, %{{.*}}, %{{.*}}) args(%{{.*}} : memref<8xf32>, %{{.*}} : memref<1xf32>, %{{.*}} : memref<8xf32>)
// CHECK: gpu.func @bitnet_linalg_generic_0(%[[X:.*]]: memref<8xf32>, %[[S:.*]]: memref<1xf32>, %[[Y:.*]]: memref<8xf32>) kernel
// CHECK: %[[C:.*]] = arith.constant 2.500000e-01 : f32
// CHECK: scf.if
// CHECK: %[[XV:.*]] = memref.load %[[X]]
// CHECK: %[[SV:.*]] = memref.load %[[S]]
// CHECK: %[[P:.*]] = arith.mulf %[[XV]], %[[SV]]
// CHECK: arith.mulf %[[P]], %[[C]]
// CHECK: memref.store %{{.*}}, %[[Y]]
#id = affine_map<(d0, d1) -> (d0, d1)>
#scalar = affine_map<(d0, d1) -> ()>
func.func @scalar_scale(%x: tensor<2x4xf32>, %s: tensor<f32>) -> tensor<2x4xf32> {
  %q = arith.constant 0.25 : f32
  %e = tensor.empty() : tensor<2x4xf32>
  %y = linalg.generic {indexing_maps = [#id, #scalar, #id], iterator_types = ["parallel", "parallel"]}
      ins(%x, %s : tensor<2x4xf32>, tensor<f32>) outs(%e : tensor<2x4xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %p = arith.mulf %a, %b : f32
    %r = arith.mulf %p, %q : f32
    linalg.yield %r : f32
  } -> tensor<2x4xf32>
  return %y : tensor<2x4xf32>
}

// -----

// Tests a causal mask with -inf: a splat constant lives in a global, the
// mask is a generic over linalg.index (the generic kernel, one thread per
// element), and adding it to the scores is the specialised add.
// CHECK-LABEL: func.func @causal_mask
// CHECK: memref.get_global @__bitnet_gpu_const_0 : memref<16xf32>
// CHECK: gpu.launch_func @bitnet_kernels::@bitnet_linalg_generic_0
// CHECK: gpu.launch_func @bitnet_kernels::@bitnet_add_16
// CHECK: gpu.func @bitnet_linalg_generic_0
// CHECK: arith.cmpi ugt
// CHECK: arith.select
#id2 = affine_map<(d0, d1) -> (d0, d1)>
func.func @causal_mask(%scores: tensor<4x4xf32>) -> tensor<4x4xf32> {
  %ninf = arith.constant dense<0xFF800000> : tensor<4x4xf32>
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x4xf32>
  %mask = linalg.generic {indexing_maps = [#id2, #id2], iterator_types = ["parallel", "parallel"]}
      ins(%ninf : tensor<4x4xf32>) outs(%e : tensor<4x4xf32>) {
  ^bb0(%n: f32, %o: f32):
    %i = linalg.index 0 : index
    %j = linalg.index 1 : index
    %future = arith.cmpi ugt, %j, %i : index
    %m = arith.select %future, %n, %zero : f32
    linalg.yield %m : f32
  } -> tensor<4x4xf32>
  %y = linalg.generic {indexing_maps = [#id2, #id2, #id2], iterator_types = ["parallel", "parallel"]}
      ins(%scores, %mask : tensor<4x4xf32>, tensor<4x4xf32>) outs(%e : tensor<4x4xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %s = arith.addf %a, %b : f32
    linalg.yield %s : f32
  } -> tensor<4x4xf32>
  return %y : tensor<4x4xf32>
}

// -----

// Tests a reduction (a matmul on a filled init): the parallel loops are the
// threads, the reduction a loop in each thread that starts from the init.
// CHECK-LABEL: func.func @matmul
// CHECK: gpu.launch_func @bitnet_kernels::@bitnet_linalg_fill_0
// CHECK: gpu.launch_func @bitnet_kernels::@bitnet_linalg_matmul_1
// CHECK: gpu.func @bitnet_linalg_fill_0(%{{.*}}: memref<6xf32>)
// CHECK: gpu.func @bitnet_linalg_matmul_1(%[[A:.*]]: memref<8xf32>, %[[B:.*]]: memref<12xf32>, %[[I:.*]]: memref<6xf32>, %[[C:.*]]: memref<6xf32>)
// CHECK: %[[INIT:.*]] = memref.load %[[I]]
// CHECK: %[[SUM:.*]] = scf.for %{{.*}} = %{{.*}} to %{{.*}} step %{{.*}} iter_args(%[[ACC:.*]] = %[[INIT]]) -> (f32)
// CHECK: arith.mulf
// CHECK: arith.addf %[[ACC]]
// CHECK: memref.store %[[SUM]], %[[C]]
func.func @matmul(%a: tensor<2x4xf32>, %b: tensor<4x3xf32>) -> tensor<2x3xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<2x3xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<2x3xf32>) -> tensor<2x3xf32>
  %c = linalg.matmul ins(%a, %b : tensor<2x4xf32>, tensor<4x3xf32>) outs(%f : tensor<2x3xf32>) -> tensor<2x3xf32>
  return %c : tensor<2x3xf32>
}

// -----

// Tests the tensor ops that move data, each one thread per result element,
// and a copy of an integer output.
// CHECK-LABEL: func.func @moves
// CHECK: @bitnet_tensor_pad_0
// CHECK: @bitnet_tensor_concat_1
// CHECK: @bitnet_tensor_extract_slice_2
// CHECK: @bitnet_tensor_insert_slice_3
// CHECK: @bitnet_copy_4_i64
func.func @moves(%x: tensor<2x3xf32>, %i: tensor<4xi64>) -> (tensor<2x4xf32>, tensor<4xi64>) {
  %zero = arith.constant 0.0 : f32
  %p = tensor.pad %x low[0, 1] high[0, 0] {
  ^bb0(%a: index, %b: index):
    tensor.yield %zero : f32
  } : tensor<2x3xf32> to tensor<2x4xf32>
  %c = tensor.concat dim(0) %p, %p : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<4x4xf32>
  %s = tensor.extract_slice %c[1, 0] [2, 4] [2, 1] : tensor<4x4xf32> to tensor<2x4xf32>
  %r = tensor.insert_slice %x into %s[0, 1] [2, 3] [1, 1] : tensor<2x3xf32> into tensor<2x4xf32>
  return %r, %i : tensor<2x4xf32>, tensor<4xi64>
}

// -----

// Tests that an op the GPU cannot run is refused where it is, with why.
func.func @index_tensor(%x: tensor<4xi32>) -> tensor<4xi32> {
  // expected-error @+1 {{bitnet-lower-to-gpu: 'arith.index_cast' on tensors of 'index' is not supported on the GPU}}
  %i = arith.index_cast %x : tensor<4xi32> to tensor<4xindex>
  %y = arith.index_cast %i : tensor<4xindex> to tensor<4xi32>
  return %y : tensor<4xi32>
}

// -----

// Tests an output map that is no projected permutation (a diagonal): one
// thread runs the whole loop nest over memory, after copying the init.
// CHECK-LABEL: func.func @diagonal
// CHECK: gpu.launch_func @bitnet_kernels::@bitnet_linalg_generic_0
// CHECK: gpu.func @bitnet_linalg_generic_0({{.*}}) kernel attributes {known_block_size = array<i32: 1, 1, 1>}
// CHECK: scf.for
// CHECK: scf.for
// CHECK: memref.load
// CHECK: arith.addf
// CHECK: memref.store
#in = affine_map<(d0) -> (d0)>
#diag = affine_map<(d0) -> (d0, d0)>
func.func @diagonal(%x: tensor<3xf32>, %init: tensor<3x3xf32>) -> tensor<3x3xf32> {
  %y = linalg.generic {indexing_maps = [#in, #diag], iterator_types = ["parallel"]}
      ins(%x : tensor<3xf32>) outs(%init : tensor<3x3xf32>) {
  ^bb0(%a: f32, %o: f32):
    %s = arith.addf %a, %o : f32
    linalg.yield %s : f32
  } -> tensor<3x3xf32>
  return %y : tensor<3x3xf32>
}
