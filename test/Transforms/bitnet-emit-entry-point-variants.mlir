// RUN: bitnet-opt %s -bitnet-emit-entry-point | FileCheck %s
// RUN: bitnet-opt %s -bitnet-emit-entry-point="run-symbol=bitnet_model_run__znver4 emit-info=false" | FileCheck %s --check-prefix=VARIANT
// RUN: sed 's/bitnet.variants =/other.variants =/' %s | bitnet-opt -bitnet-emit-entry-point | FileCheck %s --check-prefix=OWN
// RUN: sed 's/workspace_alignment = 64, features = "avx2",/workspace_alignment = 48, features = "avx2",/' %s | not bitnet-opt -bitnet-emit-entry-point 2>&1 | FileCheck %s --check-prefix=BAD

// Tests that the baseline's descriptor lists the variant builds, best first,
// with their names, features, run functions (declared, defined in other
// objects) and workspaces, and counts them.
// CHECK-DAG: llvm.func @bitnet_model_run__znver4(!llvm.ptr, !llvm.ptr, !llvm.ptr) -> i32
// CHECK-DAG: llvm.func @bitnet_model_run__x86_64_v3(!llvm.ptr, !llvm.ptr, !llvm.ptr) -> i32
// CHECK-DAG: llvm.mlir.global private constant @[[ZN:.*]]("znver4\00")
// CHECK-DAG: llvm.mlir.global private constant @[[ZNF:.*]]("avx2,avx512f\00")
// CHECK:     llvm.mlir.global private constant @[[TABLE:__bitnet_variants_[0-9]+]]() {{.*}} : !llvm.array<2 x struct<(ptr, ptr, ptr, i64, i64)>>
// CHECK:       llvm.mlir.addressof @[[ZN]]
// CHECK:       llvm.mlir.addressof @[[ZNF]]
// CHECK:       llvm.mlir.addressof @bitnet_model_run__znver4
// CHECK:       llvm.mlir.constant(4096 : i64)
// CHECK:       llvm.mlir.addressof @bitnet_model_run__x86_64_v3
// CHECK:       llvm.mlir.constant(128 : i64)
// CHECK:     llvm.mlir.global external constant @bitnet_model_info()
// CHECK:       llvm.mlir.constant(1296979010 : i32)
// CHECK:       llvm.mlir.constant(7 : i32)
// CHECK:       %[[COUNT:.*]] = llvm.mlir.constant(2 : i32) : i32
// CHECK:       %[[ADDR:.*]] = llvm.mlir.addressof @[[TABLE]]
// The stack the kernels need: the most of this build (a 4 KiB alloca) and
// of the variants (znver4's 300000 bytes, x86-64-v3's unsaid: 0).
// CHECK:       %[[STACK:.*]] = llvm.mlir.constant(300000 : i64) : i64
// CHECK:       llvm.insertvalue %[[COUNT]], %{{.*}}[12]
// CHECK:       llvm.insertvalue %[[ADDR]], %{{.*}}[13]
// CHECK:       llvm.insertvalue %[[STACK]], %{{.*}}[17]
// CHECK:     func.func @bitnet_model_run(

// Without variants, the stack is this build's: its 1024-float alloca.
// OWN: llvm.mlir.global external constant @bitnet_model_info()
// OWN:   %[[STACK:.*]] = llvm.mlir.constant(4096 : i64) : i64
// OWN:   llvm.insertvalue %[[STACK]], %{{.*}}[17]

// Tests that a variant build renames its run function and emits no
// descriptor.
// VARIANT-NOT: bitnet_model_info
// VARIANT:     func.func @bitnet_model_run__znver4(
// VARIANT-NOT: bitnet_model_info

// Tests that a variant's attribute is checked.
// BAD: a variant's workspace alignment must be a power of two, got 48

module attributes {bitnet.variants = [
    #bitnet.variant<chip = "znver4", run = @bitnet_model_run__znver4,
        workspace_bytes = 4096, workspace_alignment = 64,
        features = "avx2,avx512f", stack_bytes = 300000>,
    #bitnet.variant<chip = "x86-64-v3", run = @bitnet_model_run__x86_64_v3,
        workspace_bytes = 128, workspace_alignment = 64, features = "avx2",
        stack_bytes = 0>]} {
func.func @model(%x: memref<4xf32>, %y: memref<4xf32> {bufferize.result}) {
  %scratch = memref.alloca() : memref<1024xf32>
  memref.copy %x, %y : memref<4xf32> to memref<4xf32>
  return
}
}
