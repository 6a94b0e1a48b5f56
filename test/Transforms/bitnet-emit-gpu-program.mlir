// RUN: bitnet-opt %s -split-input-file -verify-diagnostics -bitnet-emit-gpu-program | FileCheck %s
// RUN: not bitnet-opt %s -split-input-file -bitnet-emit-gpu-program=ptxas=/nonexistent/ptxas 2>&1 | FileCheck %s --check-prefix=PTXAS

// Tests that every kernel operand is traced to its buffer (an input, through
// a collapse_shape; an output; the workspace at a view's offset; a constant
// global, whose bytes become a 64-byte aligned weight), that each kernel name
// is listed once, that the launches keep their sizes, bytes and flops, and
// that the host function is left with its inputs and outputs and an empty
// body, without the binary, the weight global or the container attribute.
// CHECK-LABEL: func.func @step(%{{.*}}: memref<2x2xf32>, %{{.*}}: memref<4xf32> {bufferize.result}) {
// CHECK-NEXT:    return
// CHECK-NEXT:  }
// CHECK-NOT:   gpu.binary
// CHECK-NOT:   memref.global
// CHECK:       llvm.mlir.global private constant @[[W:__bitnet_gpu_weight_[0-9]+]]("\01\02\03\04") {{.*}}alignment = 64
// CHECK:       llvm.mlir.global private constant @[[WS:__bitnet_gpu_weights_[0-9]+]]()
// CHECK:         llvm.mlir.addressof @[[W]]
// CHECK:       llvm.mlir.global private constant @[[NAME:__bitnet_gpu_kernel_name_[0-9]+]]("k\00")
// CHECK:       llvm.mlir.global private constant @[[NAMES:__bitnet_gpu_kernel_names_[0-9]+]]() {{.*}} : !llvm.array<1 x ptr>
// CHECK:         llvm.mlir.addressof @[[NAME]]
// The first launch: input 0 (kind 1), weight 0 (kind 3), workspace (kind 2)
// at byte 256.
// CHECK:       llvm.mlir.global private constant @[[ARGS0:__bitnet_gpu_args_[0-9]+]]() {{.*}} : !llvm.array<3 x struct<(i32, i32, i64)>>
// CHECK:         llvm.mlir.constant(1 : i32)
// CHECK-NEXT:    llvm.insertvalue {{.*}}[0, 0]
// CHECK:         llvm.mlir.constant(3 : i32)
// CHECK-NEXT:    llvm.insertvalue {{.*}}[1, 0]
// CHECK:         llvm.mlir.constant(2 : i32)
// CHECK-NEXT:    llvm.insertvalue {{.*}}[2, 0]
// CHECK:         llvm.mlir.constant(256 : i64)
// CHECK-NEXT:    llvm.insertvalue {{.*}}[2, 2]
// The second launch: the workspace, the weight and buffer 1 (the output).
// CHECK:       llvm.mlir.global private constant @[[ARGS1:__bitnet_gpu_args_[0-9]+]]()
// CHECK:         llvm.mlir.constant(2 : i32)
// CHECK-NEXT:    llvm.insertvalue {{.*}}[0, 0]
// CHECK:         llvm.mlir.constant(1 : i32)
// CHECK-NEXT:    llvm.insertvalue {{.*}}[2, 0]
// CHECK-NEXT:    llvm.mlir.constant(1 : i32)
// CHECK-NEXT:    llvm.insertvalue {{.*}}[2, 1]
// CHECK:       llvm.mlir.global private constant @[[LAUNCHES:__bitnet_gpu_launches_[0-9]+]]() {{.*}} : !llvm.array<2 x struct<(i32, array<3 x i32>, array<3 x i32>, i32, i32, ptr, i64, i64)>>
// CHECK:         llvm.mlir.constant(2 : i32)
// CHECK-NEXT:    llvm.insertvalue {{.*}}[0, 1, 0]
// CHECK-NEXT:    llvm.mlir.constant(256 : i32)
// CHECK-NEXT:    llvm.insertvalue {{.*}}[0, 2, 0]
// CHECK:         llvm.mlir.addressof @[[ARGS0]]
// CHECK:         llvm.mlir.constant(24 : i64)
// CHECK-NEXT:    llvm.insertvalue {{.*}}[0, 6]
// CHECK-NEXT:    llvm.mlir.constant(4 : i64)
// CHECK-NEXT:    llvm.insertvalue {{.*}}[0, 7]
// CHECK:         llvm.mlir.addressof @[[ARGS1]]
// CHECK:       llvm.mlir.global private constant @[[PLATFORM:__bitnet_gpu_str_[0-9]+]]("cuda\00")
// CHECK:       llvm.mlir.global private constant @[[ARCH:__bitnet_gpu_str_[0-9]+]]("sm_90\00")
// CHECK:       llvm.mlir.global private constant @[[PTX:__bitnet_gpu_ptx_[0-9]+]]("// ptx\00")
// CHECK:       llvm.mlir.global internal constant @__bitnet_gpu_program()
// CHECK:         llvm.mlir.addressof @[[PLATFORM]]
// CHECK-NEXT:    llvm.mlir.addressof @[[ARCH]]
// CHECK-NEXT:    llvm.mlir.addressof @[[PTX]]
// CHECK-NEXT:    llvm.mlir.zero : !llvm.ptr
// CHECK-NEXT:    llvm.mlir.constant(0 : i64)
// CHECK-NEXT:    llvm.mlir.constant(1 : i32)
// CHECK-NEXT:    llvm.mlir.addressof @[[NAMES]]
// CHECK-NEXT:    llvm.mlir.constant(1 : i32)
// CHECK-NEXT:    llvm.mlir.addressof @[[WS]]
// CHECK-NEXT:    llvm.mlir.constant(2 : i32)
// CHECK-NEXT:    llvm.mlir.addressof @[[LAUNCHES]]
// CHECK-NEXT:    llvm.mlir.constant(512 : i64)
// PTXAS: error: ptxas rejected the generated PTX
// PTXAS: reproduce with: /nonexistent/ptxas -arch=sm_90 -O3
module attributes {gpu.container_module} {
  memref.global "private" constant @w : memref<4xi8> = dense<[1, 2, 3, 4]>
  gpu.binary @bitnet_kernels [#gpu.object<#nvvm.target<chip = "sm_90">, assembly = "// ptx">]
  func.func @step(%x: memref<2x2xf32>, %y: memref<4xf32> {bufferize.result},
                  %ws: memref<512xi8> {bitnet.gpu_workspace}) {
    %c1 = arith.constant 1 : index
    %c2 = arith.constant 2 : index
    %c256 = arith.constant 256 : index
    %flat = memref.collapse_shape %x [[0, 1]] : memref<2x2xf32> into memref<4xf32>
    %t = memref.view %ws[%c256][] : memref<512xi8> to memref<4xf32>
    %w = memref.get_global @w : memref<4xi8>
    gpu.launch_func @bitnet_kernels::@k blocks in (%c2, %c1, %c1)
        threads in (%c256, %c1, %c1)
        args(%flat : memref<4xf32>, %w : memref<4xi8>, %t : memref<4xf32>)
        {bitnet.bytes = 24 : i64, bitnet.flops = 4 : i64}
    gpu.launch_func @bitnet_kernels::@k blocks in (%c1, %c1, %c1)
        threads in (%c256, %c1, %c1)
        args(%t : memref<4xf32>, %w : memref<4xi8>, %y : memref<4xf32>)
    return
  }
}

// -----

// Tests that a module without a GPU host function (no argument is a
// bitnet.gpu_workspace) is left alone.
// CHECK-LABEL: func.func @cpu
// CHECK-NEXT:    return
// CHECK-NOT:   __bitnet_gpu_program
func.func @cpu(%x: memref<4xf32>) {
  return
}

// -----

// Tests that the kernels must have been compiled.
// expected-error @below {{bitnet-emit-gpu-program: expected one compiled gpu.binary @bitnet_kernels (run gpu-module-to-binary)}}
func.func @uncompiled(%ws: memref<4xi8> {bitnet.gpu_workspace}) {
  return
}

// -----

// Tests that the binary must hold PTX, not a cubin.
module attributes {gpu.container_module} {
  // expected-error @below {{bitnet-emit-gpu-program: expected PTX (format=isa)}}
  gpu.binary @bitnet_kernels [#gpu.object<#nvvm.target<chip = "sm_90">, bin = "cubin">]
  func.func @cubin(%ws: memref<4xi8> {bitnet.gpu_workspace}) {
    return
  }
}

// -----

// Tests that the PTX must be for an NVIDIA target.
module attributes {gpu.container_module} {
  // expected-error @below {{bitnet-emit-gpu-program: expected an #nvvm.target}}
  gpu.binary @bitnet_kernels [#gpu.object<#rocdl.target<chip = "gfx90a">, assembly = "">]
  func.func @amd(%ws: memref<4xi8> {bitnet.gpu_workspace}) {
    return
  }
}

// -----

// Tests that launch sizes must be constants.
module attributes {gpu.container_module} {
  gpu.binary @bitnet_kernels [#gpu.object<#nvvm.target<chip = "sm_90">, assembly = "">]
  func.func @sizes(%ws: memref<4xi8> {bitnet.gpu_workspace}) {
    %c1 = arith.constant 1 : index
    %g = arith.addi %c1, %c1 : index
    // expected-error @below {{bitnet-emit-gpu-program: launch sizes must be constants}}
    gpu.launch_func @bitnet_kernels::@k blocks in (%g, %c1, %c1)
        threads in (%c1, %c1, %c1) args(%ws : memref<4xi8>)
    return
  }
}

// -----

// Tests that dynamic shared memory is refused.
module attributes {gpu.container_module} {
  gpu.binary @bitnet_kernels [#gpu.object<#nvvm.target<chip = "sm_90">, assembly = "">]
  func.func @shared(%ws: memref<4xi8> {bitnet.gpu_workspace}) {
    %c1 = arith.constant 1 : index
    %s = arith.constant 64 : i32
    // expected-error @below {{bitnet-emit-gpu-program: dynamic shared memory is not supported}}
    gpu.launch_func @bitnet_kernels::@k blocks in (%c1, %c1, %c1)
        threads in (%c1, %c1, %c1) dynamic_shared_memory_size %s
        args(%ws : memref<4xi8>)
    return
  }
}

// -----

// Tests that an operand that is no argument, workspace view or constant
// global is refused.
module attributes {gpu.container_module} {
  gpu.binary @bitnet_kernels [#gpu.object<#nvvm.target<chip = "sm_90">, assembly = "">]
  func.func @alloc(%ws: memref<4xi8> {bitnet.gpu_workspace}) {
    %c1 = arith.constant 1 : index
    %a = memref.alloc() : memref<4xf32>
    // expected-error @below {{bitnet-emit-gpu-program: cannot tell which buffer a kernel operand is}}
    gpu.launch_func @bitnet_kernels::@k blocks in (%c1, %c1, %c1)
        threads in (%c1, %c1, %c1) args(%a : memref<4xf32>)
    return
  }
}

// -----

// Tests that a weight must be a global with constant contents.
module attributes {gpu.container_module} {
  memref.global "private" @w : memref<4xi8> = uninitialized
  gpu.binary @bitnet_kernels [#gpu.object<#nvvm.target<chip = "sm_90">, assembly = "">]
  // expected-error @below {{bitnet-emit-gpu-program: @w is not a constant global}}
  func.func @uninitialized(%ws: memref<4xi8> {bitnet.gpu_workspace}) {
    %c1 = arith.constant 1 : index
    %w = memref.get_global @w : memref<4xi8>
    gpu.launch_func @bitnet_kernels::@k blocks in (%c1, %c1, %c1)
        threads in (%c1, %c1, %c1) args(%w : memref<4xi8>)
    return
  }
}
