// RUN: bitnet-opt %s -bitnet-emit-entry-point | FileCheck %s
// RUN: sed "s/bitnet.entries =/other.entries =/" %s | bitnet-opt -bitnet-emit-entry-point="run-symbol=bitnet_model_run__prefill info-symbol=bitnet_model_info__prefill" | FileCheck %s --check-prefix=ENTRY
// RUN: sed 's/stack_bytes = 200000}/stack_bytes = "many"}/' %s | not bitnet-opt -bitnet-emit-entry-point 2>&1 | FileCheck %s --check-prefix=BAD
// RUN: not bitnet-opt %s -bitnet-emit-entry-point="run-symbol=bitnet_model_run__prefill" 2>&1 | FileCheck %s --check-prefix=SAME

// Tests that the main descriptor lists the model's other entries (bitnet.entries)
// with their names, descriptors and run functions, which other objects
// define, counts them, and takes the most stack of all the builds.
// CHECK-DAG: llvm.mlir.global external constant @bitnet_model_info__prefill() {{.*}} : !llvm.struct<(i32, i32, ptr, ptr, ptr, i32, i32, ptr, ptr, i64, i64, ptr, i32, ptr, ptr, i32, ptr, i64, i32, ptr)>
// CHECK-DAG: llvm.func @bitnet_model_run__prefill(!llvm.ptr, !llvm.ptr, !llvm.ptr) -> i32
// CHECK-DAG: llvm.mlir.global private constant @[[NAME:.*]]("prefill\00")
// CHECK-DAG: llvm.mlir.global private constant @{{.*}}("a tokenizer\00")
// CHECK:     llvm.mlir.global private constant @[[TABLE:__bitnet_entries_[0-9]+]]() {{.*}} : !llvm.array<1 x struct<(ptr, ptr, ptr)>>
// CHECK:       llvm.mlir.addressof @[[NAME]]
// CHECK:       llvm.mlir.addressof @bitnet_model_info__prefill
// CHECK:       llvm.mlir.addressof @bitnet_model_run__prefill
// CHECK:     llvm.mlir.global external constant @bitnet_model_info()
// CHECK:       %[[STACK:.*]] = llvm.mlir.constant(200000 : i64) : i64
// CHECK:       %[[COUNT:.*]] = llvm.mlir.constant(1 : i32) : i32
// CHECK:       %[[ADDR:.*]] = llvm.mlir.addressof @[[TABLE]]
// CHECK:       llvm.insertvalue %[[STACK]], %{{.*}}[17]
// CHECK:       llvm.insertvalue %[[COUNT]], %{{.*}}[18]
// CHECK:       llvm.insertvalue %[[ADDR]], %{{.*}}[19]
// CHECK:     func.func @bitnet_model_run(

// Tests that an entry's own build renames its descriptor and run function,
// and leaves the metadata to the main descriptor.
// ENTRY-NOT: ("a tokenizer
// ENTRY:     llvm.mlir.global external constant @bitnet_model_info__prefill()
// ENTRY-NOT: ("a tokenizer
// ENTRY:     func.func @bitnet_model_run__prefill(

// BAD: bitnet.entries must be an array of {name, info, run, stack_bytes} dictionaries
// SAME: entry 'prefill' reuses this build's symbols

module attributes {
    bitnet.metadata = {bitnet.tokenizer = "a tokenizer"},
    bitnet.entries = [{name = "prefill", info = @bitnet_model_info__prefill,
                       run = @bitnet_model_run__prefill, stack_bytes = 200000}]} {
func.func @model(%x: memref<4xf32>, %y: memref<4xf32> {bufferize.result}) {
  memref.copy %x, %y : memref<4xf32> to memref<4xf32>
  return
}
}
