// RUN: bitnet-opt %s --split-input-file --bitnet-gpu-emulation --verify-diagnostics | FileCheck %s

// Tests that each kernel gets a host function over (args, ops, thread):
// parameters and workgroup arrays become memrefs over the pointers in
// `args`, ids are loads from the thread, barriers and shuffles calls
// through `ops`, dp4a arithmetic; every access is bounds-checked (fault,
// slot 2) and reported (access, slot 3); the info global describes the
// kernel. The gpu.module is kept.

gpu.module @kernels {
  gpu.func @k(%x: memref<64xi8, #gpu.address_space<global>>, %y: memref<2xf32>)
      workgroup(%red: memref<4xf32, #gpu.address_space<workgroup>>)
      kernel attributes {known_block_size = array<i32: 128, 1, 1>} {
    %tid = gpu.thread_id x
    %bid = gpu.block_id x
    %c16 = arith.constant 16 : index
    %off = arith.muli %tid, %c16 : index
    %v = vector.load %x[%off] {alignment = 16} : memref<64xi8, #gpu.address_space<global>>, vector<4xi8>
    %w = llvm.bitcast %v : vector<4xi8> to i32
    %wv = llvm.bitcast %w : i32 to vector<4xi8>
    %c0i = arith.constant 0 : i32
    %d = nvvm.dot.accumulate.4way %v <unsigned>, %wv <signed>, %c0i : vector<4xi8>, vector<4xi8>
    %f = arith.sitofp %d : i32 to f32
    %c1 = arith.constant 1 : i32
    %c32 = arith.constant 32 : i32
    %s, %ok = gpu.shuffle xor %f, %c1, %c32 : f32
    memref.store %s, %red[%bid] : memref<4xf32, #gpu.address_space<workgroup>>
    gpu.barrier
    %r = memref.load %red[%bid] : memref<4xf32, #gpu.address_space<workgroup>>
    memref.store %r, %y[%bid] : memref<2xf32>
    gpu.return
  }
}

// CHECK: gpu.module @kernels
// CHECK: gpu.func @k
// CHECK-LABEL: func.func private @k__bitnet_emu(
// CHECK-SAME: %[[ARGS:.*]]: !llvm.ptr, %[[OPS:.*]]: !llvm.ptr, %[[T:.*]]: !llvm.ptr)
// CHECK-SAME: llvm.linkage = #llvm.linkage<external>
// CHECK: %[[P0:.*]] = llvm.getelementptr %[[ARGS]][0]
// CHECK: builtin.unrealized_conversion_cast %{{.*}} : !llvm.struct<(ptr, ptr, i64, array<1 x i64>, array<1 x i64>)> to memref<64xi8>
// CHECK: llvm.getelementptr %[[ARGS]][1]
// CHECK: to memref<2xf32>
// CHECK: llvm.getelementptr %[[ARGS]][2]
// CHECK: to memref<4xf32>
// Thread id x is int32 slot 0 of the thread, block id x slot 3.
// CHECK: %[[TIDP:.*]] = llvm.getelementptr %[[T]][0] : (!llvm.ptr) -> !llvm.ptr, i32
// CHECK: llvm.load %[[TIDP]] : !llvm.ptr -> i32
// CHECK: llvm.getelementptr %[[T]][3] : (!llvm.ptr) -> !llvm.ptr, i32
// The vector load: in bounds (index < 64 - 4 + 1) and 16-byte aligned.
// CHECK: arith.constant 61 : index
// CHECK: arith.cmpi uge
// CHECK: arith.remui
// CHECK: scf.if
// CHECK: llvm.getelementptr %[[OPS]][2]
// CHECK: llvm.call %{{.*}}(%[[T]], %{{.*}}) : !llvm.ptr, (!llvm.ptr, !llvm.ptr) -> ()
// CHECK: memref.extract_aligned_pointer_as_index
// CHECK: llvm.getelementptr %[[OPS]][3]
// CHECK: llvm.call %{{.*}}(%[[T]], %{{.*}}, %{{.*}}, %{{.*}}) : !llvm.ptr, (!llvm.ptr, i64, i32, i32) -> ()
// CHECK: vector.load %{{.*}} : memref<64xi8>, vector<4xi8>
// dp4a: unsigned times signed, summed onto the accumulator.
// CHECK: arith.extui %{{.*}} : vector<4xi8> to vector<4xi32>
// CHECK: arith.extsi %{{.*}} : vector<4xi8> to vector<4xi32>
// CHECK: arith.muli
// CHECK: vector.reduction <add>
// The f32 shuffle goes through the i32 call (ops slot 1).
// CHECK: arith.bitcast %{{.*}} : f32 to i32
// CHECK: llvm.getelementptr %[[OPS]][1]
// CHECK: llvm.call %{{.*}}(%[[T]], %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) : !llvm.ptr, (!llvm.ptr, i32, i32, i32, i32) -> i32
// CHECK: arith.bitcast %{{.*}} : i32 to f32
// CHECK: memref.store %{{.*}} : memref<4xf32>
// The barrier (ops slot 0).
// CHECK: llvm.getelementptr %[[OPS]][0]
// CHECK: llvm.call %{{.*}}(%[[T]]) : !llvm.ptr, (!llvm.ptr) -> ()
// CHECK: return
// CHECK-NOT: gpu.
// CHECK: llvm.mlir.global private constant @k__bitnet_emu_msg
// Info: 2 parameters, 1 workgroup array, blocks of (128, 1, 1), 16 bytes of
// workgroup array, parameters of 64 and 8 bytes aligned to 16 and 4.
// CHECK: llvm.mlir.global external constant @k__bitnet_emu_info(dense<[2, 1, 128, 1, 1, 16, 64, 8, 16, 4]> : tensor<10xi64>)

// -----

gpu.module @kernels {
  gpu.func @valid_used(%y: memref<1xi32>) kernel {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : i32
    %c32 = arith.constant 32 : i32
    // expected-error @+1 {{the validity result of gpu.shuffle is not emulated}}
    %s, %ok = gpu.shuffle down %c1, %c1, %c32 : i32
    %v = arith.select %ok, %s, %c1 : i32
    memref.store %v, %y[%c0] : memref<1xi32>
    gpu.return
  }
}

// -----

gpu.module @kernels {
  gpu.func @copy(%x: memref<4xf32>, %y: memref<4xf32>) kernel {
    // expected-error @+1 {{memref.copy accesses memory without the emulator's checks}}
    memref.copy %x, %y : memref<4xf32> to memref<4xf32>
    gpu.return
  }
}

// -----

gpu.module @kernels {
  // expected-error @+1 {{argument #0 is 'memref<?xf32>', not a memref of static shape}}
  gpu.func @dynamic(%x: memref<?xf32>) kernel {
    gpu.return
  }
}
