// RUN: bitnet-opt %s -split-input-file -verify-diagnostics -bitnet-plan-workspace | FileCheck %s
// RUN: bitnet-opt %s -split-input-file -verify-diagnostics -bitnet-plan-workspace=alignment=16 | FileCheck %s --check-prefix=ALIGN16
// RUN: not bitnet-opt %s -split-input-file -bitnet-plan-workspace=entry=helper 2>/dev/null | FileCheck %s --check-prefix=NAMED
// RUN: not bitnet-opt %s -split-input-file -bitnet-plan-workspace=entry=missing 2>&1 | FileCheck %s --check-prefix=MISSING
// RUN: not bitnet-opt %s -split-input-file -bitnet-plan-workspace=alignment=3 2>&1 | FileCheck %s --check-prefix=BADALIGN
// RUN: not bitnet-opt %s -split-input-file -bitnet-plan-workspace=alignment=0 2>&1 | FileCheck %s --check-prefix=ZEROALIGN

// Tests that an alignment that is not a power of 2 is rejected, and that the
// message shows the number.
// BADALIGN: error: bitnet-plan-workspace: alignment must be a power of 2, got 3{{$}}
// ZEROALIGN: error: bitnet-plan-workspace: alignment must be a power of 2, got 0{{$}}

// Tests that a named entry that does not exist is reported.
// MISSING: error: entry function 'missing' not found

// Tests that buffers become views into one workspace argument: %b is alive
// while %a is, so it goes after it; %c is allocated after %a's last use and
// reuses offset 0; %d overlaps %b and %c (all read at the end) and lands at
// the next free aligned offset. The size is rounded up to the alignment and
// recorded, and the deallocations are gone.
// CHECK-LABEL: func.func @main
// CHECK-SAME: (%[[IN:.*]]: memref<2x8xf32>, %[[OUT:.*]]: memref<2x8xf32> {bufferize.result}, %[[WS:arg[0-9]+]]: memref<256xi8> {bitnet.workspace})
// CHECK-SAME: attributes {bitnet.workspace_alignment = 64 : i64, bitnet.workspace_bytes = 256 : i64}
// CHECK: %[[O0:.*]] = arith.constant 0 : index
// CHECK: %[[A:.*]] = memref.view %[[WS]][%[[O0]]][] : memref<256xi8> to memref<2x8xf32>
// CHECK: %[[O64:.*]] = arith.constant 64 : index
// CHECK: %[[B:.*]] = memref.view %[[WS]][%[[O64]]][] : memref<256xi8> to memref<4xf32>
// CHECK: memref.copy %[[IN]], %[[A]]
// CHECK: %[[O0B:.*]] = arith.constant 0 : index
// CHECK: %[[C:.*]] = memref.view %[[WS]][%[[O0B]]][] : memref<256xi8> to memref<3xi8>
// CHECK: %[[O128:.*]] = arith.constant 128 : index
// CHECK: %[[D:.*]] = memref.view %[[WS]][%[[O128]]][] : memref<256xi8> to memref<100xi8>
// CHECK: memref.load %[[B]]
// CHECK-NOT: memref.alloc
// CHECK-NOT: memref.dealloc
// CHECK: return
// ALIGN16-LABEL: func.func @main
// ALIGN16-SAME: memref<128xi8> {bitnet.workspace}
// ALIGN16-SAME: attributes {bitnet.workspace_alignment = 16 : i64, bitnet.workspace_bytes = 128 : i64}
// ALIGN16: memref.alloc() {alignment = 64 : i64} : memref<2x8xf32>
// ALIGN16: memref.alloc() {alignment = 64 : i64} : memref<4xf32>
// ALIGN16: %[[O0:.*]] = arith.constant 0 : index
// ALIGN16: memref.view %{{.*}}[%[[O0]]][] : memref<128xi8> to memref<3xi8>
// ALIGN16: %[[O16:.*]] = arith.constant 16 : index
// ALIGN16: memref.view %{{.*}}[%[[O16]]][] : memref<128xi8> to memref<100xi8>
func.func @main(%in: memref<2x8xf32>, %out: memref<2x8xf32> {bufferize.result}) {
  %a = memref.alloc() {alignment = 64 : i64} : memref<2x8xf32>
  %b = memref.alloc() {alignment = 64 : i64} : memref<4xf32>
  memref.copy %in, %a : memref<2x8xf32> to memref<2x8xf32>
  memref.dealloc %a : memref<2x8xf32>
  %c = memref.alloc() : memref<3xi8>
  %d = memref.alloc() : memref<100xi8>
  memref.copy %in, %out : memref<2x8xf32> to memref<2x8xf32>
  %i = arith.constant 0 : index
  %vb = memref.load %b[%i] : memref<4xf32>
  %vc = memref.load %c[%i] : memref<3xi8>
  %vd = memref.load %d[%i] : memref<100xi8>
  memref.dealloc %c : memref<3xi8>
  memref.dealloc %b : memref<4xf32>
  return
}

// -----

// Tests that buffers alive at the same time never overlap, even when each
// is smaller than the alignment.
// CHECK-LABEL: func.func @all_alive
// CHECK-SAME: %[[WS:arg[0-9]+]]: memref<192xi8> {bitnet.workspace}
// CHECK-SAME: bitnet.workspace_bytes = 192 : i64
// CHECK: memref.view %[[WS]][%c0{{.*}}][] : memref<192xi8> to memref<1xf32>
// CHECK: memref.view %[[WS]][%c64{{.*}}][] : memref<192xi8> to memref<1xf32>
// CHECK: memref.view %[[WS]][%c128{{.*}}][] : memref<192xi8> to memref<1xf32>
func.func @all_alive(%out: memref<f32> {bufferize.result}) {
  %a = memref.alloc() : memref<1xf32>
  %b = memref.alloc() : memref<1xf32>
  %c = memref.alloc() : memref<1xf32>
  %i = arith.constant 0 : index
  %va = memref.load %a[%i] : memref<1xf32>
  %vb = memref.load %b[%i] : memref<1xf32>
  %vc = memref.load %c[%i] : memref<1xf32>
  return
}

// -----

// Tests that a buffer is dead after its last use, its own or a view's, even
// when bufferization frees everything at the end: %b takes %a's offset, %v
// too, and %c goes after %v, whose view is read after %c is allocated.
// CHECK-LABEL: func.func @last_use
// CHECK-SAME: bitnet.workspace_bytes = 128 : i64
// CHECK: memref.view %{{.*}}[%c0{{.*}}][] : memref<128xi8> to memref<16xf32>
// CHECK: memref.view %{{.*}}[%c0{{.*}}][] : memref<128xi8> to memref<16xf32>
// CHECK: memref.view %{{.*}}[%c0{{.*}}][] : memref<128xi8> to memref<16xf32>
// CHECK: memref.view %{{.*}}[%c64{{.*}}][] : memref<128xi8> to memref<16xf32>
func.func @last_use(%in: memref<16xf32>, %out: memref<16xf32> {bufferize.result}) {
  %a = memref.alloc() : memref<16xf32>
  memref.copy %in, %a : memref<16xf32> to memref<16xf32>
  memref.copy %a, %out : memref<16xf32> to memref<16xf32>
  %b = memref.alloc() : memref<16xf32>
  memref.copy %in, %b : memref<16xf32> to memref<16xf32>
  memref.copy %b, %out : memref<16xf32> to memref<16xf32>
  %v = memref.alloc() : memref<16xf32>
  %s = memref.subview %v[0] [8] [1] : memref<16xf32> to memref<8xf32, strided<[1]>>
  memref.copy %in, %v : memref<16xf32> to memref<16xf32>
  %c = memref.alloc() : memref<16xf32>
  memref.copy %in, %c : memref<16xf32> to memref<16xf32>
  %i = arith.constant 0 : index
  %x = memref.load %s[%i] : memref<8xf32, strided<[1]>>
  memref.copy %c, %out : memref<16xf32> to memref<16xf32>
  memref.dealloc %a : memref<16xf32>
  memref.dealloc %b : memref<16xf32>
  memref.dealloc %v : memref<16xf32>
  memref.dealloc %c : memref<16xf32>
  return
}

// -----

// Tests that a chain of buffers, each freed before the next is allocated,
// shares one slot.
// CHECK-LABEL: func.func @chain
// CHECK-SAME: %[[WS:arg[0-9]+]]: memref<512xi8> {bitnet.workspace}
// CHECK-SAME: bitnet.workspace_bytes = 512 : i64
// CHECK-COUNT-3: memref.view %[[WS]][%c0{{.*}}][] : memref<512xi8> to memref<128xf32>
func.func @chain(%out: memref<f32> {bufferize.result}) {
  %a = memref.alloc() : memref<128xf32>
  memref.dealloc %a : memref<128xf32>
  %b = memref.alloc() : memref<128xf32>
  memref.dealloc %b : memref<128xf32>
  %c = memref.alloc() : memref<128xf32>
  memref.dealloc %c : memref<128xf32>
  return
}

// -----

// Tests that buffers the pass cannot own keep their allocations: one passed
// to a call, one returned, one of dynamic size, one of i1 and one of index
// elements, and one freed in a nested region. Only the f64 buffer is placed.
// CHECK-LABEL: func.func @unplaceable
// CHECK-SAME: %[[WS:arg[0-9]+]]: memref<64xi8> {bitnet.workspace}
// CHECK-SAME: bitnet.workspace_bytes = 64 : i64
// CHECK: %[[CALLED:.*]] = memref.alloc() : memref<4xf32>
// CHECK: call @use(%[[CALLED]])
// CHECK: %[[RET:.*]] = memref.alloc() : memref<8xf32>
// CHECK: memref.alloc(%{{.*}}) : memref<?xf32>
// CHECK: memref.alloc() : memref<16xi1>
// CHECK: memref.alloc() : memref<4xindex>
// CHECK: %[[NESTED:.*]] = memref.alloc() : memref<4xf32>
// CHECK: scf.if
// CHECK:   memref.dealloc %[[NESTED]]
// CHECK: memref.view %[[WS]][%{{.*}}][] : memref<64xi8> to memref<2xf64>
// CHECK: return %[[RET]]
func.func private @use(memref<4xf32>)
func.func @unplaceable(%n: index, %cond: i1) -> memref<8xf32> {
  %a = memref.alloc() : memref<4xf32>
  call @use(%a) : (memref<4xf32>) -> ()
  %r = memref.alloc() : memref<8xf32>
  %dyn = memref.alloc(%n) : memref<?xf32>
  %bits = memref.alloc() : memref<16xi1>
  %idx = memref.alloc() : memref<4xindex>
  %nested = memref.alloc() : memref<4xf32>
  scf.if %cond {
    memref.dealloc %nested : memref<4xf32>
  }
  %ok = memref.alloc() : memref<2xf64>
  return %r : memref<8xf32>
}

// -----

// Tests that a function without buffers to place gets no workspace argument
// and a workspace size of 0.
// CHECK-LABEL: func.func @nothing
// CHECK-SAME: (%{{.*}}: memref<4xf32>)
// CHECK-SAME: attributes {bitnet.workspace_bytes = 0 : i64}
func.func @nothing(%out: memref<4xf32>) {
  return
}

// -----

// Tests that only the public function with a body is the entry: private
// functions and declarations are ignored. Tests that entry=helper picks the
// private function instead.
// CHECK-LABEL: func.func private @helper
// CHECK-NOT: bitnet.workspace
// CHECK-LABEL: func.func @entry
// CHECK-SAME: memref<64xi8> {bitnet.workspace}
// NAMED-LABEL: func.func private @helper
// NAMED-SAME: memref<64xi8> {bitnet.workspace}
// NAMED-SAME: bitnet.workspace_bytes = 64 : i64
// NAMED-LABEL: func.func @entry
// NAMED-NOT: bitnet.workspace
func.func private @helper() {
  %a = memref.alloc() : memref<4xf32>
  return
}
func.func private @declaration()
func.func @entry() {
  %a = memref.alloc() : memref<4xf32>
  return
}

// -----

// Tests that two public functions make the entry ambiguous.
// expected-error @below {{more than one public function ('first', 'second'); name the entry function}}
module {
  func.func @first() {
    return
  }
  func.func @second() {
    return
  }
}

// -----

// Tests that a module without a public function with a body has no entry.
// expected-error @below {{no public function with a body to use as the entry}}
module {
  func.func private @private_only() {
    return
  }
  func.func private @declaration_only()
}
