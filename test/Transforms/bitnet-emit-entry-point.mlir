// RUN: bitnet-opt %s -split-input-file -verify-diagnostics -bitnet-emit-entry-point="producer=test-producer" | FileCheck %s
// RUN: not bitnet-opt %s -split-input-file -bitnet-emit-entry-point=entry=missing 2>&1 | FileCheck %s --check-prefix=MISSING

// Tests that a named entry that does not exist is reported.
// MISSING: error: entry function 'missing' not found

// Tests the whole descriptor of a model with two inputs, two outputs and a
// workspace: names from bitnet.name, from bitnet.output_names and the
// defaults input<i>/output<i> (also when bitnet.output_names holds a
// non-string), element types, ranks and shapes, the counts, the workspace
// size and alignment, the producer string, the target string and CPU
// features from the module's #bitnet.target, and the magic 0x4d4e5442 and
// ABI version 6.
// CHECK-LABEL: func.func private @model
// CHECK-SAME: (%{{.*}}: memref<2x8xf32> {bitnet.name = "x"}, %{{.*}}: memref<3xi32>, %{{.*}}: memref<2x4xf32> {bufferize.result}, %{{.*}}: memref<i8> {bufferize.result}, %{{.*}}: memref<128xi8> {bitnet.workspace})
// CHECK: llvm.mlir.global private constant @[[X:__bitnet_str_[0-9]+]]("x\00")
// CHECK: llvm.mlir.global private constant @[[XSHAPE:__bitnet_shape_[0-9]+]](dense<[2, 8]> : tensor<2xi64>) {{.*}} : !llvm.array<2 x i64>
// CHECK: llvm.mlir.global private constant @[[IN1:__bitnet_str_[0-9]+]]("input1\00")
// CHECK: llvm.mlir.global private constant @[[IN1SHAPE:__bitnet_shape_[0-9]+]](dense<3> : tensor<1xi64>)
// CHECK: llvm.mlir.global private constant @[[INPUTS:__bitnet_tensors_[0-9]+]]() {{.*}} : !llvm.array<2 x struct<(ptr, i32, i32, ptr, i32, i64, i64)>> {
// CHECK:   llvm.mlir.addressof @[[X]]
// CHECK:   %[[F32:.*]] = llvm.mlir.constant(1 : i32) : i32
// CHECK:   llvm.insertvalue %[[F32]], %{{.*}}[0, 1]
// CHECK:   %[[RANK2:.*]] = llvm.mlir.constant(2 : i32) : i32
// CHECK:   llvm.insertvalue %[[RANK2]], %{{.*}}[0, 2]
// CHECK:   llvm.mlir.addressof @[[XSHAPE]]
// CHECK:   llvm.mlir.addressof @[[IN1]]
// CHECK:   %[[I32:.*]] = llvm.mlir.constant(7 : i32) : i32
// CHECK:   llvm.insertvalue %[[I32]], %{{.*}}[1, 1]
// CHECK:   llvm.mlir.addressof @[[IN1SHAPE]]
// CHECK: llvm.mlir.global private constant @[[Y:__bitnet_str_[0-9]+]]("y\00")
// CHECK: llvm.mlir.global private constant @{{__bitnet_shape_[0-9]+}}(dense<[2, 4]> : tensor<2xi64>)
// CHECK: llvm.mlir.global private constant @[[OUT1:__bitnet_str_[0-9]+]]("output1\00")
// CHECK: llvm.mlir.global private constant @{{__bitnet_shape_[0-9]+}}(dense<0> : tensor<1xi64>)
// CHECK: llvm.mlir.global private constant @[[OUTPUTS:__bitnet_tensors_[0-9]+]]() {{.*}} : !llvm.array<2 x struct<(ptr, i32, i32, ptr, i32, i64, i64)>> {
// CHECK:   llvm.mlir.addressof @[[Y]]
// CHECK:   llvm.mlir.addressof @[[OUT1]]
// CHECK:   %[[I8:.*]] = llvm.mlir.constant(5 : i32) : i32
// CHECK:   llvm.insertvalue %[[I8]], %{{.*}}[1, 1]
// CHECK:   %[[RANK0:.*]] = llvm.mlir.constant(0 : i32) : i32
// CHECK:   llvm.insertvalue %[[RANK0]], %{{.*}}[1, 2]
// CHECK: llvm.mlir.global private constant @[[NAME:__bitnet_str_[0-9]+]]("model\00")
// CHECK: llvm.mlir.global private constant @[[PRODUCER:__bitnet_str_[0-9]+]]("test-producer\00")
// CHECK: llvm.mlir.global private constant @[[TARGET:__bitnet_str_[0-9]+]]("test-triple test-cpu\00")
// CHECK: llvm.mlir.global private constant @[[FEATURES:__bitnet_str_[0-9]+]]("avx2,fma\00")
// CHECK: llvm.mlir.global external constant @bitnet_model_info() {{.*}} : !llvm.struct<(i32, i32, ptr, ptr, ptr, i32, i32, ptr, ptr, i64, i64, ptr, i32, ptr, ptr, i32, ptr, i64, i32, ptr)> {
// CHECK:   %[[MAGIC:.*]] = llvm.mlir.constant(1296979010 : i32) : i32
// CHECK:   %[[VERSION:.*]] = llvm.mlir.constant(7 : i32) : i32
// CHECK:   %[[NAMEP:.*]] = llvm.mlir.addressof @[[NAME]]
// CHECK:   %[[PRODP:.*]] = llvm.mlir.addressof @[[PRODUCER]]
// CHECK:   %[[TARGP:.*]] = llvm.mlir.addressof @[[TARGET]]
// CHECK:   %[[NIN:.*]] = llvm.mlir.constant(2 : i32) : i32
// CHECK:   %[[NOUT:.*]] = llvm.mlir.constant(2 : i32) : i32
// CHECK:   %[[INP:.*]] = llvm.mlir.addressof @[[INPUTS]]
// CHECK:   %[[OUTP:.*]] = llvm.mlir.addressof @[[OUTPUTS]]
// CHECK:   %[[WSB:.*]] = llvm.mlir.constant(128 : i64) : i64
// CHECK:   %[[WSA:.*]] = llvm.mlir.constant(32 : i64) : i64
// CHECK:   %[[FEATP:.*]] = llvm.mlir.addressof @[[FEATURES]]
// CHECK:   %[[STACK:.*]] = llvm.mlir.constant(0 : i64) : i64
// CHECK:   llvm.insertvalue %[[MAGIC]], %{{.*}}[0]
// CHECK:   llvm.insertvalue %[[VERSION]], %{{.*}}[1]
// CHECK:   llvm.insertvalue %[[NAMEP]], %{{.*}}[2]
// CHECK:   llvm.insertvalue %[[PRODP]], %{{.*}}[3]
// CHECK:   llvm.insertvalue %[[TARGP]], %{{.*}}[4]
// CHECK:   llvm.insertvalue %[[NIN]], %{{.*}}[5]
// CHECK:   llvm.insertvalue %[[NOUT]], %{{.*}}[6]
// CHECK:   llvm.insertvalue %[[INP]], %{{.*}}[7]
// CHECK:   llvm.insertvalue %[[OUTP]], %{{.*}}[8]
// CHECK:   llvm.insertvalue %[[WSB]], %{{.*}}[9]
// CHECK:   llvm.insertvalue %[[WSA]], %{{.*}}[10]
// CHECK:   llvm.insertvalue %[[FEATP]], %{{.*}}[11]
// No kernel keeps a buffer on the stack.
// CHECK:   llvm.insertvalue %[[STACK]], %{{.*}}[17]
// CHECK: func.func @bitnet_model_run(%[[BUFS:arg[0-9]+]]: !llvm.ptr, %[[WS:arg[0-9]+]]: !llvm.ptr, %{{.*}}: !llvm.ptr) -> i32 {
// CHECK:   %[[G0:.*]] = llvm.getelementptr %[[BUFS]][0] : (!llvm.ptr) -> !llvm.ptr, !llvm.ptr
// CHECK:   %[[P0:.*]] = llvm.load %[[G0]] : !llvm.ptr -> !llvm.ptr
// CHECK:   llvm.insertvalue %[[P0]], %{{.*}}[0] : !llvm.struct<(ptr, ptr, i64, array<2 x i64>, array<2 x i64>)>
// CHECK:   llvm.insertvalue %[[P0]], %{{.*}}[1] : !llvm.struct<(ptr, ptr, i64, array<2 x i64>, array<2 x i64>)>
// CHECK:   %[[A0:.*]] = builtin.unrealized_conversion_cast %{{.*}} : !llvm.struct<(ptr, ptr, i64, array<2 x i64>, array<2 x i64>)> to memref<2x8xf32>
// CHECK:   llvm.getelementptr %[[BUFS]][1]
// CHECK:   %[[A1:.*]] = builtin.unrealized_conversion_cast %{{.*}} to memref<3xi32>
// CHECK:   llvm.getelementptr %[[BUFS]][2]
// CHECK:   %[[A2:.*]] = builtin.unrealized_conversion_cast %{{.*}} to memref<2x4xf32>
// CHECK:   llvm.getelementptr %[[BUFS]][3]
// CHECK:   %[[A3:.*]] = builtin.unrealized_conversion_cast %{{.*}} : !llvm.struct<(ptr, ptr, i64)> to memref<i8>
// CHECK:   llvm.insertvalue %[[WS]], %{{.*}}[0] : !llvm.struct<(ptr, ptr, i64, array<1 x i64>, array<1 x i64>)>
// CHECK:   %[[A4:.*]] = builtin.unrealized_conversion_cast %{{.*}} to memref<128xi8>
// CHECK:   call @model(%[[A0]], %[[A1]], %[[A2]], %[[A3]], %[[A4]])
// CHECK:   %[[OK:.*]] = llvm.mlir.constant(0 : i32) : i32
// CHECK:   return %[[OK]] : i32
module attributes {bitnet.target = #bitnet.target<backend = "cpu",
    triple = "test-triple", chip = "test-cpu", features = "avx2,fma">} {
func.func @model(%x: memref<2x8xf32> {bitnet.name = "x"}, %t: memref<3xi32>,
                 %y: memref<2x4xf32> {bufferize.result}, %z: memref<i8> {bufferize.result},
                 %ws: memref<128xi8> {bitnet.workspace})
    attributes {bitnet.output_names = ["y", 7], bitnet.workspace_bytes = 128 : i64,
                bitnet.workspace_alignment = 32 : i64} {
  return
}
}

// -----

// Tests that the row-major strides of a buffer's descriptor are the suffix
// products of its shape (2x3x4: 12, 4, 1), and that outputs are numbered
// after the inputs in the buffer array even when they come first in the
// signature.
// CHECK-LABEL: func.func private @strides
// CHECK: func.func @bitnet_model_run(%[[BUFS:arg[0-9]+]]: !llvm.ptr
// CHECK:   llvm.getelementptr %[[BUFS]][0]
// CHECK:   %[[D2:.*]] = llvm.mlir.constant(4 : i64) : i64
// CHECK:   llvm.insertvalue %[[D2]], %{{.*}}[3, 2]
// CHECK:   %[[S2:.*]] = llvm.mlir.constant(1 : i64) : i64
// CHECK:   llvm.insertvalue %[[S2]], %{{.*}}[4, 2]
// CHECK:   %[[D1:.*]] = llvm.mlir.constant(3 : i64) : i64
// CHECK:   llvm.insertvalue %[[D1]], %{{.*}}[3, 1]
// CHECK:   %[[S1:.*]] = llvm.mlir.constant(4 : i64) : i64
// CHECK:   llvm.insertvalue %[[S1]], %{{.*}}[4, 1]
// CHECK:   %[[D0:.*]] = llvm.mlir.constant(2 : i64) : i64
// CHECK:   llvm.insertvalue %[[D0]], %{{.*}}[3, 0]
// CHECK:   %[[S0:.*]] = llvm.mlir.constant(12 : i64) : i64
// CHECK:   llvm.insertvalue %[[S0]], %{{.*}}[4, 0]
// CHECK:   %[[IN:.*]] = builtin.unrealized_conversion_cast %{{.*}} to memref<2x3x4xf32>
// CHECK:   llvm.getelementptr %[[BUFS]][1]
// CHECK:   %[[OUT:.*]] = builtin.unrealized_conversion_cast %{{.*}} to memref<5xf32>
// CHECK:   call @strides(%[[OUT]], %[[IN]]) : (memref<5xf32>, memref<2x3x4xf32>) -> ()
func.func @strides(%out: memref<5xf32> {bufferize.result}, %in: memref<2x3x4xf32>) {
  return
}

// -----

// Tests that a model without a workspace records 0 bytes, alignment 1, and
// that the element type codes follow bitnet_dtype (f16 2, bf16 3, f64 4,
// i8 and si8 5, i16 6, i64 8, ui8 9, i1 10).
// CHECK-LABEL: func.func private @types
// CHECK: @{{__bitnet_tensors_[0-9]+}}() {{.*}} : !llvm.array<9 x struct<(ptr, i32, i32, ptr, i32, i64, i64)>>
// CHECK: %[[T0:.*]] = llvm.mlir.constant(2 : i32) : i32
// CHECK-NEXT: llvm.insertvalue %[[T0]], %{{.*}}[0, 1]
// CHECK: %[[T1:.*]] = llvm.mlir.constant(3 : i32) : i32
// CHECK-NEXT: llvm.insertvalue %[[T1]], %{{.*}}[1, 1]
// CHECK: %[[T2:.*]] = llvm.mlir.constant(4 : i32) : i32
// CHECK-NEXT: llvm.insertvalue %[[T2]], %{{.*}}[2, 1]
// CHECK: %[[T3:.*]] = llvm.mlir.constant(5 : i32) : i32
// CHECK-NEXT: llvm.insertvalue %[[T3]], %{{.*}}[3, 1]
// CHECK: %[[T4:.*]] = llvm.mlir.constant(5 : i32) : i32
// CHECK-NEXT: llvm.insertvalue %[[T4]], %{{.*}}[4, 1]
// CHECK: %[[T5:.*]] = llvm.mlir.constant(6 : i32) : i32
// CHECK-NEXT: llvm.insertvalue %[[T5]], %{{.*}}[5, 1]
// CHECK: %[[T6:.*]] = llvm.mlir.constant(8 : i32) : i32
// CHECK-NEXT: llvm.insertvalue %[[T6]], %{{.*}}[6, 1]
// CHECK: %[[T7:.*]] = llvm.mlir.constant(9 : i32) : i32
// CHECK-NEXT: llvm.insertvalue %[[T7]], %{{.*}}[7, 1]
// CHECK: %[[T8:.*]] = llvm.mlir.constant(10 : i32) : i32
// CHECK-NEXT: llvm.insertvalue %[[T8]], %{{.*}}[8, 1]
// CHECK: llvm.mlir.global private constant @{{__bitnet_str_[0-9]+}}("output0\00")
// CHECK: llvm.mlir.global external constant @bitnet_model_info()
// CHECK:   %[[NIN:.*]] = llvm.mlir.constant(9 : i32) : i32
// CHECK:   %[[NOUT:.*]] = llvm.mlir.constant(1 : i32) : i32
// CHECK:   %[[WSB:.*]] = llvm.mlir.constant(0 : i64) : i64
// CHECK:   %[[WSA:.*]] = llvm.mlir.constant(1 : i64) : i64
// CHECK:   llvm.insertvalue %[[NIN]], %{{.*}}[5]
// CHECK:   llvm.insertvalue %[[NOUT]], %{{.*}}[6]
// CHECK:   llvm.insertvalue %[[WSB]], %{{.*}}[9]
// CHECK:   llvm.insertvalue %[[WSA]], %{{.*}}[10]
// CHECK: func.func @bitnet_model_run
// CHECK:   call @types({{.*}}) : (memref<1xf16>, memref<1xbf16>, memref<1xf64>, memref<1xi8>, memref<1xsi8>, memref<1xi16>, memref<1xi64>, memref<1xui8>, memref<1xi1>, memref<f32>) -> ()
func.func @types(%a: memref<1xf16>, %b: memref<1xbf16>, %c: memref<1xf64>, %d: memref<1xi8>,
                 %e: memref<1xsi8>, %f: memref<1xi16>, %h: memref<1xi64>, %i: memref<1xui8>,
                 %j: memref<1xi1>, %out: memref<f32> {bufferize.result}) {
  return
}

// -----

// Tests that only the public function is the entry and that other
// functions are kept as they are.
// CHECK-LABEL: func.func private @helper
// CHECK-LABEL: func.func private @entry
// CHECK: llvm.mlir.global private constant @{{__bitnet_str_[0-9]+}}("entry\00")
// CHECK: call @entry
func.func private @helper(%a: memref<4xf32>) {
  return
}
func.func @entry(%in: memref<4xf32>, %out: memref<4xf32> {bufferize.result}) {
  return
}

// -----

// Tests that results must have been turned into out-parameters.
// expected-error @below {{the entry function must return its outputs through out-parameters (run buffer-results-to-out-params)}}
func.func @results(%in: memref<4xf32>) -> memref<4xf32> {
  return %in : memref<4xf32>
}

// -----

// Tests that an argument with a dynamic shape cannot be described.
// expected-error @below {{entry argument #0 must be a statically shaped memref with the identity layout, got 'memref<?x8xf32>'}}
func.func @dynamic(%in: memref<?x8xf32>, %out: memref<4xf32> {bufferize.result}) {
  return
}

// -----

// Tests that an argument with a strided layout cannot be described.
// expected-error @below {{entry argument #1 must be a statically shaped memref with the identity layout, got 'memref<4xf32, strided<[2]>>'}}
func.func @strided(%in: memref<4xf32>, %out: memref<4xf32, strided<[2]>> {bufferize.result}) {
  return
}

// -----

// Tests that a scalar argument is not a buffer.
// expected-error @below {{entry argument #0 must be a statically shaped memref with the identity layout, got 'f32'}}
func.func @scalar(%in: f32, %out: memref<4xf32> {bufferize.result}) {
  return
}

// -----

// Tests that unsigned tensors stored signless are described by the type the
// importer recorded: inputs by bitnet.element_type (ui16 11, ui32 12, ui64
// 13), outputs by bitnet.output_element_types; an i32 input without one
// stays i32 (7).
// CHECK-LABEL: func.func private @unsigned_types
// CHECK: @{{__bitnet_tensors_[0-9]+}}() {{.*}} : !llvm.array<4 x struct<(ptr, i32, i32, ptr, i32, i64, i64)>>
// CHECK: %[[U0:.*]] = llvm.mlir.constant(11 : i32) : i32
// CHECK-NEXT: llvm.insertvalue %[[U0]], %{{.*}}[0, 1]
// CHECK: %[[U1:.*]] = llvm.mlir.constant(12 : i32) : i32
// CHECK-NEXT: llvm.insertvalue %[[U1]], %{{.*}}[1, 1]
// CHECK: %[[U2:.*]] = llvm.mlir.constant(13 : i32) : i32
// CHECK-NEXT: llvm.insertvalue %[[U2]], %{{.*}}[2, 1]
// CHECK: %[[U3:.*]] = llvm.mlir.constant(7 : i32) : i32
// CHECK-NEXT: llvm.insertvalue %[[U3]], %{{.*}}[3, 1]
// CHECK: @{{__bitnet_tensors_[0-9]+}}() {{.*}} : !llvm.array<1 x struct<(ptr, i32, i32, ptr, i32, i64, i64)>>
// CHECK: %[[O0:.*]] = llvm.mlir.constant(13 : i32) : i32
// CHECK-NEXT: llvm.insertvalue %[[O0]], %{{.*}}[0, 1]
func.func @unsigned_types(%a: memref<1xi16> {bitnet.element_type = ui16},
                          %b: memref<1xi32> {bitnet.element_type = ui32},
                          %c: memref<1xi64> {bitnet.element_type = ui64},
                          %d: memref<1xi32>,
                          %out: memref<2xi64> {bufferize.result})
    attributes {bitnet.output_element_types = [ui64]} {
  return
}

// -----

// Tests that an element type without a bitnet_dtype is rejected.
// expected-error @below {{entry argument #1 has element type 'complex<f32>', which the model ABI cannot describe}}
func.func @complex(%in: memref<4xf32>, %out: memref<4xcomplex<f32>> {bufferize.result}) {
  return
}

// -----

// Tests that index elements, whose width depends on the target, are rejected.
// expected-error @below {{entry argument #0 has element type 'index', which the model ABI cannot describe}}
func.func @index(%in: memref<4xindex>, %out: memref<4xf32> {bufferize.result}) {
  return
}

// -----

// Tests that a model must have at least one output.
// expected-error @below {{the entry function has no outputs}}
func.func @no_outputs(%in: memref<4xf32>) {
  return
}

// -----

// Tests that a module that already defines bitnet_model_info is rejected.
// expected-error @below {{the module already defines 'bitnet_model_info'}}
module {
  llvm.mlir.global external constant @bitnet_model_info(0 : i32) : i32
  func.func @model(%out: memref<4xf32> {bufferize.result}) {
    return
  }
}

// -----

// Tests that a module that already defines bitnet_model_run is rejected.
// expected-error @below {{the module already defines 'bitnet_model_run'}}
module {
  func.func private @bitnet_model_run(!llvm.ptr, !llvm.ptr, !llvm.ptr) -> i32
  func.func @model(%out: memref<4xf32> {bufferize.result}) {
    return
  }
}

// -----

// Tests that two public functions make the entry ambiguous.
// expected-error @below {{more than one public function ('first', 'second'); name the entry function}}
module {
  func.func @first(%out: memref<4xf32> {bufferize.result}) {
    return
  }
  func.func @second(%out: memref<4xf32> {bufferize.result}) {
    return
  }
}

// -----

// Tests that an argument marked bitnet.state (a KV cache the run updates in
// place) is an input with flags BITNET_TENSOR_STATE (1), other tensors have
// flags 0, and that the module's bitnet.metadata becomes the key, value
// string table with its count.
// CHECK-LABEL: func.func private @step
// CHECK: llvm.mlir.global private constant @{{__bitnet_tensors_[0-9]+}}() {{.*}} : !llvm.array<2 x struct<(ptr, i32, i32, ptr, i32, i64, i64)>> {
// CHECK:   llvm.insertvalue %{{.*}}, %{{.*}}[0, 3]
// CHECK-NEXT: %[[PLAIN:.*]] = llvm.mlir.constant(0 : i32) : i32
// CHECK-NEXT: llvm.insertvalue %[[PLAIN]], %{{.*}}[0, 4]
// CHECK:   llvm.insertvalue %{{.*}}, %{{.*}}[1, 3]
// CHECK-NEXT: %[[STATE:.*]] = llvm.mlir.constant(1 : i32) : i32
// CHECK-NEXT: llvm.insertvalue %[[STATE]], %{{.*}}[1, 4]
// CHECK: llvm.mlir.global private constant @[[KEY:__bitnet_str_[0-9]+]]("bitnet.vocab\00")
// CHECK: llvm.mlir.global private constant @[[VALUE:__bitnet_str_[0-9]+]]("[\22a\22, \22b\22]\00")
// CHECK: llvm.mlir.global private constant @[[META:__bitnet_metadata_[0-9]+]]() {{.*}} : !llvm.array<2 x ptr> {
// CHECK:   llvm.mlir.addressof @[[KEY]]
// CHECK:   llvm.mlir.addressof @[[VALUE]]
// CHECK: llvm.mlir.global external constant @bitnet_model_info()
// CHECK:   llvm.mlir.zero : !llvm.ptr
// CHECK-NEXT: llvm.mlir.zero : !llvm.ptr
// CHECK-NEXT: %[[COUNT:.*]] = llvm.mlir.constant(1 : i32) : i32
// CHECK-NEXT: %[[TABLE:.*]] = llvm.mlir.addressof @[[META]]
// CHECK:   llvm.insertvalue %[[COUNT]], %{{.*}}[15]
// CHECK:   llvm.insertvalue %[[TABLE]], %{{.*}}[16]
module attributes {bitnet.metadata = {"bitnet.vocab" = "[\"a\", \"b\"]"}} {
  func.func @step(%t: memref<1xi32>, %cache: memref<8x4xf32> {bitnet.state},
                  %y: memref<1x2xf32> {bufferize.result}) {
    return
  }
}

// -----

// Tests that an argument with bitnet.range (token ids, a position) is an input
// with flags BITNET_TENSOR_RANGE (2) and its min_value and max_value, and that
// one without has flags 0 and zeros there.
// CHECK-LABEL: func.func private @ranged
// CHECK: llvm.mlir.global private constant @{{__bitnet_tensors_[0-9]+}}() {{.*}} : !llvm.array<2 x struct<(ptr, i32, i32, ptr, i32, i64, i64)>> {
// CHECK:      %[[RANGE:.*]] = llvm.mlir.constant(2 : i32) : i32
// CHECK-NEXT: llvm.insertvalue %[[RANGE]], %{{.*}}[0, 4]
// CHECK-NEXT: %[[MIN:.*]] = llvm.mlir.constant(-97 : i64) : i64
// CHECK-NEXT: llvm.insertvalue %[[MIN]], %{{.*}}[0, 5]
// CHECK-NEXT: %[[MAX:.*]] = llvm.mlir.constant(96 : i64) : i64
// CHECK-NEXT: llvm.insertvalue %[[MAX]], %{{.*}}[0, 6]
// CHECK:      %[[PLAIN:.*]] = llvm.mlir.constant(0 : i32) : i32
// CHECK-NEXT: llvm.insertvalue %[[PLAIN]], %{{.*}}[1, 4]
// CHECK-NEXT: %[[ZERO:.*]] = llvm.mlir.constant(0 : i64) : i64
// CHECK-NEXT: llvm.insertvalue %[[ZERO]], %{{.*}}[1, 5]
func.func @ranged(%t: memref<1xi32> {bitnet.range = array<i64: -97, 96>},
                  %x: memref<4xf32>, %y: memref<1x2xf32> {bufferize.result}) {
  return
}

// -----

// Tests that a bitnet.target that is not a #bitnet.target is an error.
// expected-error @+1 {{bitnet.target must be a #bitnet.target}}
module attributes {bitnet.target = "x86_64"} {
func.func @bad_target(%in: memref<4xf32>, %out: memref<4xf32> {bufferize.result}) {
  return
}
}

// -----

// Tests that bitnet.variants must list #bitnet.variant attributes.
// expected-error @+1 {{bitnet.variants must be an array of #bitnet.variant}}
module attributes {bitnet.variants = ["znver4"]} {
func.func @bad_variants(%in: memref<4xf32>, %out: memref<4xf32> {bufferize.result}) {
  return
}
}
