// RUN: bitnet-opt %s -split-input-file -bitnet-lower-to-linalg | FileCheck %s

// Tests that a ternary constant becomes an arith.constant of its storage bytes.
// CHECK-LABEL: func.func @constant
// CHECK-SAME: () -> tensor<2x2xi8>
// CHECK: %[[C:.*]] = arith.constant dense<{{\[\[}}36, 1], [-111, 2]]> : tensor<2x2xi8>
// CHECK-NOT: bitnet.
// CHECK: return %[[C]] : tensor<2x2xi8>
func.func @constant() -> !bitnet.ternary<2x8, i2> {
  %c = bitnet.constant dense<[[36, 1], [145, 2]]> : tensor<2x2xi8> -> !bitnet.ternary<2x8, i2>
  return %c : !bitnet.ternary<2x8, i2>
}

// -----

// Tests that ternary arguments and results of functions, declarations and
// calls become their storage tensors (N x ceildiv(K, 4) for i2, N x
// ceildiv(K, 5) for base3, N x K for int8).
// CHECK-LABEL: func.func private @external
// CHECK-SAME: (tensor<4x2xi8>) -> tensor<4x8xi8>
// CHECK-LABEL: func.func @signature
// CHECK-SAME: (%[[A:.*]]: tensor<4x2xi8>, %[[B:.*]]: tensor<3x3xi8>) -> (tensor<3x3xi8>, tensor<4x8xi8>)
// CHECK: %[[R:.*]] = call @external(%[[A]]) : (tensor<4x2xi8>) -> tensor<4x8xi8>
// CHECK: return %[[B]], %[[R]] : tensor<3x3xi8>, tensor<4x8xi8>
func.func private @external(!bitnet.ternary<4x8, i2>) -> !bitnet.ternary<4x8, int8>
func.func @signature(%a: !bitnet.ternary<4x8, i2>, %b: !bitnet.ternary<3x11, base3, row_major>) -> (!bitnet.ternary<3x11, base3>, !bitnet.ternary<4x8, int8>) {
  %r = call @external(%a) : (!bitnet.ternary<4x8, i2>) -> !bitnet.ternary<4x8, int8>
  return %b, %r : !bitnet.ternary<3x11, base3>, !bitnet.ternary<4x8, int8>
}

// -----

// Tests that packing to i2 accumulates code << 2 * slot over a reduction loop
// of 4 slots, padding columns past K with zero weights.
// CHECK-LABEL: func.func @pack_i2
// CHECK-SAME: (%[[W:.*]]: tensor<2x7xi8>) -> tensor<2x2xi8>
// CHECK: %[[INIT:.*]] = linalg.fill ins(%{{.*}} : i8) outs(%{{.*}} : tensor<2x2xi8>)
// CHECK: %[[SLOTS:.*]] = tensor.empty() : tensor<4xi8>
// CHECK: %[[P:.*]] = linalg.generic
// CHECK-SAME: iterator_types = ["parallel", "parallel", "reduction"]
// CHECK-SAME: ins(%[[SLOTS]] : tensor<4xi8>) outs(%[[INIT]] : tensor<2x2xi8>)
// CHECK:   %[[COL:.*]] = arith.addi
// CHECK:   %[[IN:.*]] = arith.cmpi ult, %[[COL]], %c7
// CHECK:   tensor.extract %[[W]]
// CHECK:   arith.maxsi
// CHECK:   arith.minsi
// CHECK:   arith.select %[[IN]]
// CHECK:   arith.shli
// CHECK:   arith.muli
// CHECK:   arith.addi
// CHECK: return %[[P]] : tensor<2x2xi8>
func.func @pack_i2(%w: tensor<2x7xi8>) -> !bitnet.ternary<2x7, i2> {
  %p = bitnet.pack %w : tensor<2x7xi8> -> !bitnet.ternary<2x7, i2>
  return %p : !bitnet.ternary<2x7, i2>
}

// -----

// Tests that packing to base3 weighs each code by 3^slot (1, 3, 9, 27, 81)
// over a reduction loop of 5 slots.
// CHECK-LABEL: func.func @pack_base3
// CHECK-SAME: (%{{.*}}: tensor<2x7xi8>) -> tensor<2x2xi8>
// CHECK: tensor.empty() : tensor<5xi8>
// CHECK: %[[P:.*]] = linalg.generic
// CHECK-SAME: iterator_types = ["parallel", "parallel", "reduction"]
// CHECK-DAG: arith.constant 3 : i8
// CHECK-DAG: arith.constant 9 : i8
// CHECK-DAG: arith.constant 27 : i8
// CHECK-DAG: arith.constant 81 : i8
// CHECK: arith.muli %{{.*}}, %{{.*}} : i8
// CHECK: arith.addi %{{.*}}, %{{.*}} : i8
// CHECK: return %[[P]] : tensor<2x2xi8>
func.func @pack_base3(%w: tensor<2x7xi8>) -> !bitnet.ternary<2x7, base3> {
  %p = bitnet.pack %w : tensor<2x7xi8> -> !bitnet.ternary<2x7, base3>
  return %p : !bitnet.ternary<2x7, base3>
}

// -----

// Tests that packing to int8 only clamps each value to [-1, 1], and that a
// dynamically shaped input is cast to the static storage shape.
// CHECK-LABEL: func.func @pack_int8
// CHECK-SAME: (%[[W:.*]]: tensor<?x8xi8>) -> tensor<4x8xi8>
// CHECK: %[[CAST:.*]] = tensor.cast %[[W]] : tensor<?x8xi8> to tensor<4x8xi8>
// CHECK: %[[P:.*]] = linalg.generic
// CHECK-SAME: ins(%[[CAST]] : tensor<4x8xi8>)
// CHECK:   arith.maxsi %{{.*}}, %c-1_i8
// CHECK:   arith.minsi %{{.*}}, %c1_i8
// CHECK: return %[[P]] : tensor<4x8xi8>
func.func @pack_int8(%w: tensor<?x8xi8>) -> !bitnet.ternary<4x8, int8> {
  %p = bitnet.pack %w : tensor<?x8xi8> -> !bitnet.ternary<4x8, int8>
  return %p : !bitnet.ternary<4x8, int8>
}

// -----

// Tests that unpacking i2 extracts byte k / 4 and takes (byte >> 2 * (k % 4))
// & 3 minus 1.
// CHECK-LABEL: func.func @unpack_i2
// CHECK-SAME: (%[[S:.*]]: tensor<4x2xi8>) -> tensor<4x8xi8>
// CHECK: %[[U:.*]] = linalg.generic
// CHECK-SAME: outs(%{{.*}} : tensor<4x8xi8>)
// CHECK:   %[[N:.*]] = linalg.index 0
// CHECK:   %[[K:.*]] = linalg.index 1
// CHECK:   %[[BYTE:.*]] = arith.divui %[[K]], %c4
// CHECK:   %[[SLOT:.*]] = arith.remui %[[K]], %c4
// CHECK:   %[[B:.*]] = tensor.extract %[[S]][%[[N]], %[[BYTE]]] : tensor<4x2xi8>
// CHECK:   %[[B32:.*]] = arith.extui %[[B]] : i8 to i32
// CHECK:   %[[SH:.*]] = arith.shrui %[[B32]]
// CHECK:   %[[CODE:.*]] = arith.andi %[[SH]], %c3_i32
// CHECK:   %[[V:.*]] = arith.subi %[[CODE]], %c1_i32
// CHECK:   arith.trunci %[[V]] : i32 to i8
// CHECK: return %[[U]] : tensor<4x8xi8>
func.func @unpack_i2(%w: !bitnet.ternary<4x8, i2>) -> tensor<4x8xi8> {
  %u = bitnet.unpack %w : !bitnet.ternary<4x8, i2> -> tensor<4x8xi8>
  return %u : tensor<4x8xi8>
}

// -----

// Tests that unpacking base3 divides the byte by 3^(k % 5) and keeps the
// remainder modulo 3.
// CHECK-LABEL: func.func @unpack_base3
// CHECK-SAME: (%[[S:.*]]: tensor<2x2xi8>) -> tensor<2x7xi8>
// CHECK: %[[U:.*]] = linalg.generic
// CHECK:   arith.divui %{{.*}}, %c5 : index
// CHECK:   arith.remui %{{.*}}, %c5 : index
// CHECK:   tensor.extract %[[S]]
// CHECK:   %[[POW:.*]] = arith.select %{{.*}}, %c81_i32, %{{.*}} : i32
// CHECK:   %[[DIGIT:.*]] = arith.divui %{{.*}}, %[[POW]] : i32
// CHECK:   %[[CODE:.*]] = arith.remui %[[DIGIT]], %c3_i32{{.*}} : i32
// CHECK:   arith.subi %[[CODE]], %c1_i32
// CHECK: return %[[U]] : tensor<2x7xi8>
func.func @unpack_base3(%w: !bitnet.ternary<2x7, base3>) -> tensor<2x7xi8> {
  %u = bitnet.unpack %w : !bitnet.ternary<2x7, base3> -> tensor<2x7xi8>
  return %u : tensor<2x7xi8>
}

// -----

// Tests that unpacking int8 storage is the storage itself, cast to a
// dynamically shaped result.
// CHECK-LABEL: func.func @unpack_int8
// CHECK-SAME: (%[[S:.*]]: tensor<2x7xi8>) -> tensor<?x7xi8>
// CHECK-NOT: linalg.generic
// CHECK: %[[C:.*]] = tensor.cast %[[S]] : tensor<2x7xi8> to tensor<?x7xi8>
// CHECK: return %[[C]]
func.func @unpack_int8(%w: !bitnet.ternary<2x7, int8>) -> tensor<?x7xi8> {
  %u = bitnet.unpack %w : !bitnet.ternary<2x7, int8> -> tensor<?x7xi8>
  return %u : tensor<?x7xi8>
}

// -----

// Tests that activations are quantised per token: max |x| reduced over the
// last dimension, s = 127 / max(amax, 1e-5), then roundeven(x * s) clamped to
// [-128, 127] and converted with fptosi.
// CHECK-LABEL: func.func @quantize_activations
// CHECK-SAME: (%[[X:.*]]: tensor<?x8xf32>) -> (tensor<?x8xi8>, tensor<?xf32>)
// CHECK: %[[D:.*]] = tensor.dim %[[X]], %c0
// CHECK: %[[AMAX:.*]] = linalg.generic
// CHECK-SAME: iterator_types = ["parallel", "reduction"]
// CHECK-SAME: ins(%[[X]] : tensor<?x8xf32>) outs(%{{.*}} : tensor<?xf32>)
// CHECK:   math.absf
// CHECK:   arith.maximumf
// CHECK: %[[S:.*]] = linalg.generic
// CHECK-SAME: ins(%[[AMAX]] : tensor<?xf32>)
// CHECK:   %[[M:.*]] = arith.maximumf %{{.*}}, %{{.*}} : f32
// CHECK:   arith.divf %{{.*}}, %[[M]] : f32
// CHECK: %[[Q:.*]] = linalg.generic
// CHECK-SAME: ins(%[[X]], %[[S]] : tensor<?x8xf32>, tensor<?xf32>) outs(%{{.*}} : tensor<?x8xi8>)
// CHECK:   %[[XS:.*]] = arith.mulf
// CHECK:   %[[R:.*]] = math.roundeven %[[XS]] : f32
// CHECK:   %[[LO:.*]] = arith.maxnumf %[[R]], %{{.*}} : f32
// CHECK:   %[[HI:.*]] = arith.minnumf %[[LO]], %{{.*}} : f32
// CHECK:   arith.fptosi %[[HI]] : f32 to i8
// CHECK: return %[[Q]], %[[S]]
func.func @quantize_activations(%x: tensor<?x8xf32>) -> (tensor<?x8xi8>, tensor<?xf32>) {
  %q, %s = bitnet.quantize_activations %x : tensor<?x8xf32> -> tensor<?x8xi8>, tensor<?xf32>
  return %q, %s : tensor<?x8xi8>, tensor<?xf32>
}

// -----

// Tests that the quantisation constants are 127, 1e-5, -128 and 127.
// CHECK-LABEL: func.func @quantize_constants
// CHECK: arith.constant 9.99999974E-6 : f32
// CHECK: arith.constant 1.270000e+02 : f32
// CHECK: math.roundeven
// CHECK: arith.constant -1.280000e+02 : f32
// CHECK: arith.constant 1.270000e+02 : f32
func.func @quantize_constants(%x: tensor<2x8xf32>) -> (tensor<2x8xi8>, tensor<2xf32>) {
  %q, %s = bitnet.quantize_activations %x : tensor<2x8xf32> -> tensor<2x8xi8>, tensor<2xf32>
  return %q, %s : tensor<2x8xi8>, tensor<2xf32>
}

// -----

// Tests that ternarize sums |W| in f64 over all elements, divides by the
// element count in f64, rounds once to f32, floors it at 1e-5, and then
// computes clamp(roundeven(W / s), -1, 1).
// CHECK-LABEL: func.func @ternarize
// CHECK-SAME: (%[[W:.*]]: tensor<4x8xf32>) -> (tensor<4x8xi8>, tensor<f32>)
// CHECK: %[[SUM:.*]] = linalg.generic
// CHECK-SAME: iterator_types = ["reduction", "reduction"]
// CHECK-SAME: ins(%[[W]] : tensor<4x8xf32>) outs(%{{.*}} : tensor<f64>)
// CHECK:   %[[A:.*]] = math.absf %{{.*}} : f32
// CHECK:   %[[E:.*]] = arith.extf %[[A]] : f32 to f64
// CHECK:   arith.addf %{{.*}}, %[[E]] : f64
// CHECK: %[[N:.*]] = arith.uitofp %{{.*}} : i64 to f64
// CHECK: %[[S:.*]] = linalg.generic
// CHECK-SAME: ins(%[[SUM]] : tensor<f64>) outs(%{{.*}} : tensor<f32>)
// CHECK:   %[[MEAN:.*]] = arith.divf %{{.*}}, %[[N]] : f64
// CHECK:   %[[M32:.*]] = arith.truncf %[[MEAN]] : f64 to f32
// CHECK:   arith.maximumf %[[M32]], %{{.*}} : f32
// CHECK: %[[Q:.*]] = linalg.generic
// CHECK-SAME: ins(%[[W]], %[[S]] : tensor<4x8xf32>, tensor<f32>)
// CHECK:   %[[D:.*]] = arith.divf
// CHECK:   %[[R:.*]] = math.roundeven %[[D]]
// CHECK:   arith.constant -1.000000e+00 : f32
// CHECK:   arith.constant 1.000000e+00 : f32
// CHECK:   arith.maxnumf %[[R]]
// CHECK:   arith.minnumf
// CHECK:   arith.fptosi %{{.*}} : f32 to i8
// CHECK: return %[[Q]], %[[S]]
func.func @ternarize(%w: tensor<4x8xf32>) -> (tensor<4x8xi8>, tensor<f32>) {
  %q, %s = bitnet.ternarize %w : tensor<4x8xf32> -> tensor<4x8xi8>, tensor<f32>
  return %q, %s : tensor<4x8xi8>, tensor<f32>
}

// -----

// Tests that ternary_matmul unpacks the weight and reduces
// extsi(x) * extsi(w) in i32 over K, keeping the leading dimensions.
// CHECK-DAG: #[[XMAP:.*]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d3)>
// CHECK-DAG: #[[WMAP:.*]] = affine_map<(d0, d1, d2, d3) -> (d2, d3)>
// CHECK-DAG: #[[OMAP:.*]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>
// CHECK-LABEL: func.func @ternary_matmul
// CHECK-SAME: (%[[X:.*]]: tensor<2x3x8xi8>, %[[S:.*]]: tensor<4x2xi8>) -> tensor<2x3x4xi32>
// CHECK: %[[WQ:.*]] = linalg.generic
// CHECK:   tensor.extract %[[S]]
// CHECK: %[[ZERO:.*]] = linalg.fill ins(%c0_i32 : i32) outs(%{{.*}} : tensor<2x3x4xi32>)
// CHECK: %[[ACC:.*]] = linalg.generic
// CHECK-SAME: indexing_maps = [#[[XMAP]], #[[WMAP]], #[[OMAP]]]
// CHECK-SAME: iterator_types = ["parallel", "parallel", "parallel", "reduction"]
// CHECK-SAME: ins(%[[X]], %[[WQ]] : tensor<2x3x8xi8>, tensor<4x8xi8>) outs(%[[ZERO]] : tensor<2x3x4xi32>)
// CHECK:   ^bb0(%[[A:.*]]: i8, %[[B:.*]]: i8, %[[OUT:.*]]: i32):
// CHECK:   %[[A32:.*]] = arith.extsi %[[A]] : i8 to i32
// CHECK:   %[[B32:.*]] = arith.extsi %[[B]] : i8 to i32
// CHECK:   %[[P:.*]] = arith.muli %[[A32]], %[[B32]] : i32
// CHECK:   %[[SUM:.*]] = arith.addi %[[OUT]], %[[P]] : i32
// CHECK:   linalg.yield %[[SUM]] : i32
// CHECK: return %[[ACC]]
func.func @ternary_matmul(%x: tensor<2x3x8xi8>, %w: !bitnet.ternary<4x8, i2>) -> tensor<2x3x4xi32> {
  %y = bitnet.ternary_matmul %x, %w : tensor<2x3x8xi8>, !bitnet.ternary<4x8, i2> -> tensor<2x3x4xi32>
  return %y : tensor<2x3x4xi32>
}

// -----

// Tests that ternary_matmul on an int8 weight reads the storage directly,
// without an unpacking loop.
// CHECK-LABEL: func.func @ternary_matmul_int8
// CHECK-SAME: (%[[X:.*]]: tensor<8xi8>, %[[S:.*]]: tensor<4x8xi8>) -> tensor<4xi32>
// CHECK-NOT: tensor.extract
// CHECK: linalg.generic
// CHECK-SAME: ins(%[[X]], %[[S]] : tensor<8xi8>, tensor<4x8xi8>)
// CHECK:   arith.extsi
func.func @ternary_matmul_int8(%x: tensor<8xi8>, %w: !bitnet.ternary<4x8, int8>) -> tensor<4xi32> {
  %y = bitnet.ternary_matmul %x, %w : tensor<8xi8>, !bitnet.ternary<4x8, int8> -> tensor<4xi32>
  return %y : tensor<4xi32>
}

// -----

// Tests that bitlinear quantises the activations, multiplies in i32 and
// rescales with acc * s_w / s_x.
// CHECK-LABEL: func.func @bitlinear
// CHECK-SAME: (%[[X:.*]]: tensor<2x8xf32>, %[[W:.*]]: tensor<4x2xi8>, %[[SW:.*]]: tensor<f32>) -> tensor<2x4xf32>
// CHECK: %[[AMAX:.*]] = linalg.generic {{.*}} ins(%[[X]] : tensor<2x8xf32>)
// CHECK: %[[SX:.*]] = linalg.generic {{.*}} ins(%[[AMAX]] : tensor<2xf32>)
// CHECK: %[[XQ:.*]] = linalg.generic {{.*}} ins(%[[X]], %[[SX]] : tensor<2x8xf32>, tensor<2xf32>)
// CHECK:   math.roundeven
// CHECK: %[[WQ:.*]] = linalg.generic
// CHECK:   tensor.extract %[[W]]
// CHECK: %[[ACC:.*]] = linalg.generic {{.*}} ins(%[[XQ]], %[[WQ]] : tensor<2x8xi8>, tensor<4x8xi8>) outs(%{{.*}} : tensor<2x4xi32>)
// CHECK:   arith.extsi
// CHECK:   arith.muli
// CHECK:   arith.addi
// CHECK: %[[Y:.*]] = linalg.generic {{.*}} ins(%[[ACC]], %[[SX]], %[[SW]] : tensor<2x4xi32>, tensor<2xf32>, tensor<f32>) outs(%{{.*}} : tensor<2x4xf32>)
// CHECK:   ^bb0(%[[A:.*]]: i32, %[[S:.*]]: f32, %[[SWV:.*]]: f32, %{{.*}}: f32):
// CHECK:   %[[AF:.*]] = arith.sitofp %[[A]] : i32 to f32
// CHECK:   %[[T:.*]] = arith.mulf %[[AF]], %[[SWV]] : f32
// CHECK:   %[[R:.*]] = arith.divf %[[T]], %[[S]] : f32
// CHECK:   linalg.yield %[[R]]
// CHECK: return %[[Y]]
func.func @bitlinear(%x: tensor<2x8xf32>, %w: !bitnet.ternary<4x8, i2>, %s: tensor<f32>) -> tensor<2x4xf32> {
  %y = bitnet.bitlinear %x, %w scale %s : tensor<2x8xf32>, !bitnet.ternary<4x8, i2>, tensor<f32> -> tensor<2x4xf32>
  return %y : tensor<2x4xf32>
}

// -----

// Tests that rmsnorm sums x^2 along each row in order, in a loop-carried
// value, computes rsqrt(sum / D + epsilon) once per row, and multiplies x by
// it and by gamma.
// CHECK-LABEL: func.func @rmsnorm
// CHECK-SAME: (%[[X:.*]]: tensor<?x8xf32>, %[[G:.*]]: tensor<8xf32>) -> tensor<?x8xf32>
// CHECK: %[[D:.*]] = arith.uitofp %{{.*}} : i64 to f32
// CHECK: %[[INV:.*]] = linalg.generic
// CHECK-SAME: iterator_types = ["parallel"]
// CHECK-SAME: outs(%{{.*}} : tensor<?xf32>)
// CHECK:   %[[ROW:.*]] = linalg.index 0 : index
// CHECK:   %[[SUM:.*]] = scf.for %[[K:.*]] = %{{.*}} to %{{.*}} step %{{.*}} iter_args(%[[ACC:.*]] = %{{.*}}) -> (f32)
// CHECK:     %[[E:.*]] = tensor.extract %[[X]][%[[ROW]], %[[K]]] : tensor<?x8xf32>
// CHECK:     %[[X2:.*]] = arith.mulf %[[E]], %[[E]] : f32
// CHECK:     %[[NEXT:.*]] = arith.addf %[[ACC]], %[[X2]] : f32
// CHECK:     scf.yield %[[NEXT]] : f32
// CHECK:   %[[MEAN:.*]] = arith.divf %[[SUM]], %[[D]] : f32
// CHECK:   %[[EPS:.*]] = arith.constant 9.99999997E-7 : f32
// CHECK:   %[[V:.*]] = arith.addf %[[MEAN]], %[[EPS]] : f32
// CHECK:   %[[R:.*]] = math.rsqrt %[[V]] : f32
// CHECK:   linalg.yield %[[R]] : f32
// CHECK: %[[Y:.*]] = linalg.generic
// CHECK-SAME: ins(%[[X]], %[[INV]], %[[G]] : tensor<?x8xf32>, tensor<?xf32>, tensor<8xf32>)
// CHECK:   %[[N:.*]] = arith.mulf %{{.*}}, %{{.*}} : f32
// CHECK:   arith.mulf %{{.*}}, %[[N]] : f32
// CHECK: return %[[Y]]
func.func @rmsnorm(%x: tensor<?x8xf32>, %g: tensor<8xf32>) -> tensor<?x8xf32> {
  %y = bitnet.rmsnorm %x, %g {epsilon = 1.0e-6 : f32} : tensor<?x8xf32>, tensor<8xf32> -> tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}

// -----

// Tests that squared_relu is max(x, 0) * max(x, 0), elementwise.
// CHECK-LABEL: func.func @squared_relu
// CHECK-SAME: (%[[X:.*]]: tensor<?x4xf32>) -> tensor<?x4xf32>
// CHECK: %[[Y:.*]] = linalg.generic
// CHECK-SAME: iterator_types = ["parallel", "parallel"]
// CHECK-SAME: ins(%[[X]] : tensor<?x4xf32>)
// CHECK:   %[[R:.*]] = arith.maximumf %{{.*}}, %cst{{.*}} : f32
// CHECK:   %[[SQ:.*]] = arith.mulf %[[R]], %[[R]] : f32
// CHECK:   linalg.yield %[[SQ]]
// CHECK: return %[[Y]]
func.func @squared_relu(%x: tensor<?x4xf32>) -> tensor<?x4xf32> {
  %y = bitnet.squared_relu %x : tensor<?x4xf32>
  return %y : tensor<?x4xf32>
}

// -----

// Tests that rope (half style) precomputes theta^(-2i/D), the cos and sin of
// each token's angles (position times frequency, once per token and pair),
// pairs feature d with d +- D/2 and computes a cos - b sin / b cos + a sin.
// CHECK-LABEL: func.func @rope_half
// CHECK-SAME: (%[[X:.*]]: tensor<2x4x8xf32>, %[[P:.*]]: tensor<2xi32>) -> tensor<2x4x8xf32>
// CHECK: %[[F:.*]] = arith.constant dense<[1.000000e+00, 0.316227764, 1.000000e-01, 0.0316227786]> : tensor<4xf32>
// CHECK: %[[COS:.*]] = linalg.generic
// CHECK-SAME: ins(%[[P]], %[[F]] : tensor<2xi32>, tensor<4xf32>) outs(%{{.*}} : tensor<2x4xf32>)
// CHECK:   ^bb0(%[[POS:.*]]: i32, %[[FREQ:.*]]: f32, %{{.*}}: f32):
// CHECK:   %[[PF:.*]] = arith.sitofp %[[POS]] : i32 to f32
// CHECK:   %[[ANGLE:.*]] = arith.mulf %[[PF]], %[[FREQ]]
// CHECK:   math.cos %[[ANGLE]]
// CHECK: %[[SIN:.*]] = linalg.generic
// CHECK-SAME: ins(%[[P]], %[[F]] : tensor<2xi32>, tensor<4xf32>) outs(%{{.*}} : tensor<2x4xf32>)
// CHECK:   %[[PF2:.*]] = arith.sitofp %{{.*}} : i32 to f32
// CHECK:   %[[ANGLE2:.*]] = arith.mulf %[[PF2]], %{{.*}}
// CHECK:   math.sin %[[ANGLE2]]
// CHECK: %[[Y:.*]] = linalg.generic
// CHECK-SAME: ins(%[[X]] : tensor<2x4x8xf32>)
// CHECK:   ^bb0(%[[A:.*]]: f32, %{{.*}}: f32):
// CHECK:   %[[S:.*]] = linalg.index 0
// CHECK:   %[[D:.*]] = linalg.index 2
// CHECK:   %[[FIRST:.*]] = arith.cmpi ult, %[[D]], %c4
// CHECK:   %[[PAIR:.*]] = arith.select %[[FIRST]]
// CHECK:   %[[C:.*]] = tensor.extract %[[COS]][%[[S]], %[[PAIR]]]
// CHECK:   %[[SN:.*]] = tensor.extract %[[SIN]][%[[S]], %[[PAIR]]]
// CHECK:   %[[B:.*]] = tensor.extract %[[X]]
// CHECK:   %[[AC:.*]] = arith.mulf %[[A]], %[[C]]
// CHECK:   %[[BS:.*]] = arith.mulf %[[B]], %[[SN]]
// CHECK:   %[[MINUS:.*]] = arith.subf %[[AC]], %[[BS]]
// CHECK:   %[[PLUS:.*]] = arith.addf %[[AC]], %[[BS]]
// CHECK:   arith.select %[[FIRST]], %[[MINUS]], %[[PLUS]]
// CHECK: return %[[Y]]
func.func @rope_half(%x: tensor<2x4x8xf32>, %p: tensor<2xi32>) -> tensor<2x4x8xf32> {
  %y = bitnet.rope %x, %p {theta = 100.0 : f32} : tensor<2x4x8xf32>, tensor<2xi32> -> tensor<2x4x8xf32>
  return %y : tensor<2x4x8xf32>
}

// -----

// Tests that rope (interleaved style) pairs feature d with d + 1 when d is
// even and d - 1 when odd, and converts i64 positions to f32.
// CHECK-LABEL: func.func @rope_interleaved
// CHECK: %[[F:.*]] = arith.constant dense<[1.000000e+00, 1.000000e-01]> : tensor<2xf32>
// CHECK: linalg.generic
// CHECK:   arith.sitofp %{{.*}} : i64 to f32
// CHECK:   math.cos
// CHECK: linalg.generic
// CHECK:   math.sin
// CHECK: linalg.generic
// CHECK:   %[[D:.*]] = linalg.index 2
// CHECK:   %[[PAIR:.*]] = arith.divui %[[D]], %c2
// CHECK:   %[[ODD:.*]] = arith.remui %[[D]], %c2
// CHECK:   %[[FIRST:.*]] = arith.cmpi eq, %[[ODD]], %c0
// CHECK:   %[[PREV:.*]] = arith.subi %[[D]], %c1
// CHECK:   %[[NEXT:.*]] = arith.addi %[[D]], %c1
// CHECK:   arith.select %[[FIRST]], %[[NEXT]], %[[PREV]]
// CHECK:   tensor.extract %{{.*}}[%{{.*}}, %[[PAIR]]]
// CHECK:   tensor.extract %{{.*}}[%{{.*}}, %[[PAIR]]]
func.func @rope_interleaved(%x: tensor<1x1x4xf32>, %p: tensor<1xi64>) -> tensor<1x1x4xf32> {
  %y = bitnet.rope %x, %p {theta = 100.0 : f32, style = #bitnet.rope_style<interleaved>} : tensor<1x1x4xf32>, tensor<1xi64> -> tensor<1x1x4xf32>
  return %y : tensor<1x1x4xf32>
}

// -----

// Tests that attention clamps the position to [0, C - S], inserts the new
// keys and values into the caches there, scales the scores by 1/sqrt(D),
// masks keys after each query's own position with -inf, and normalises with
// exp(x - max) / sum.
// CHECK-LABEL: func.func @attention
// CHECK-SAME: (%[[Q:.*]]: tensor<2x4x16xf32>, %[[K:.*]]: tensor<2x2x16xf32>, %[[V:.*]]: tensor<2x2x16xf32>, %[[KC:.*]]: tensor<8x2x16xf32>, %[[VC:.*]]: tensor<8x2x16xf32>, %[[POS:.*]]: tensor<i32>)
// CHECK: %[[P0:.*]] = tensor.extract %[[POS]][] : tensor<i32>
// CHECK: %[[P1:.*]] = arith.index_cast %[[P0]] : i32 to index
// CHECK: %[[P2:.*]] = arith.maxsi %[[P1]], %c0
// CHECK: %[[P:.*]] = arith.minsi %[[P2]], %c6
// CHECK: %[[KN:.*]] = tensor.insert_slice %[[K]] into %[[KC]][%[[P]], 0, 0] [2, 2, 16] [1, 1, 1] : tensor<2x2x16xf32> into tensor<8x2x16xf32>
// CHECK: %[[VN:.*]] = tensor.insert_slice %[[V]] into %[[VC]][%[[P]], 0, 0] [2, 2, 16] [1, 1, 1] : tensor<2x2x16xf32> into tensor<8x2x16xf32>
// CHECK: %[[QG:.*]] = tensor.expand_shape %[[Q]] {{\[\[}}0], [1, 2], [3]] output_shape [2, 2, 2, 16] : tensor<2x4x16xf32> into tensor<2x2x2x16xf32>
// CHECK: %[[SCORES:.*]] = linalg.generic
// CHECK-SAME: ins(%[[QG]], %[[KN]] : tensor<2x2x2x16xf32>, tensor<8x2x16xf32>) outs(%{{.*}} : tensor<2x2x2x8xf32>)
// CHECK: %[[MASKED:.*]] = linalg.generic
// CHECK-SAME: ins(%[[SCORES]] : tensor<2x2x2x8xf32>)
// CHECK:   %[[S:.*]] = linalg.index 0
// CHECK:   %[[J:.*]] = linalg.index 3
// CHECK:   %[[LIMIT:.*]] = arith.addi %[[P]], %[[S]]
// CHECK:   %[[VISIBLE:.*]] = arith.cmpi ule, %[[J]], %[[LIMIT]]
// CHECK:   %[[SCALE:.*]] = arith.constant 2.500000e-01 : f32
// CHECK:   %[[SCALED:.*]] = arith.mulf %{{.*}}, %[[SCALE]]
// CHECK:   %[[NEGINF:.*]] = arith.constant 0xFF800000 : f32
// CHECK:   arith.select %[[VISIBLE]], %[[SCALED]], %[[NEGINF]]
// CHECK: %[[MAX:.*]] = linalg.generic {{.*}} ins(%[[MASKED]] : tensor<2x2x2x8xf32>) outs(%{{.*}} : tensor<2x2x2xf32>)
// CHECK:   arith.maximumf
// CHECK: %[[EXP:.*]] = linalg.generic {{.*}} ins(%[[MASKED]], %[[MAX]] : tensor<2x2x2x8xf32>, tensor<2x2x2xf32>)
// CHECK:   %[[DIFF:.*]] = arith.subf
// CHECK:   math.exp %[[DIFF]]
// CHECK: %[[SUM:.*]] = linalg.generic {{.*}} ins(%[[EXP]] : tensor<2x2x2x8xf32>) outs(%{{.*}} : tensor<2x2x2xf32>)
// CHECK: %[[W:.*]] = linalg.generic {{.*}} ins(%[[EXP]], %[[VN]] : tensor<2x2x2x8xf32>, tensor<8x2x16xf32>) outs(%{{.*}} : tensor<2x2x2x16xf32>)
// CHECK: %[[NORM:.*]] = linalg.generic {{.*}} ins(%[[W]], %[[SUM]] : tensor<2x2x2x16xf32>, tensor<2x2x2xf32>)
// CHECK:   arith.divf
// CHECK: %[[OUT:.*]] = tensor.collapse_shape %[[NORM]] {{\[\[}}0], [1, 2], [3]] : tensor<2x2x2x16xf32> into tensor<2x4x16xf32>
// CHECK: return %[[OUT]], %[[KN]], %[[VN]]
func.func @attention(%q: tensor<2x4x16xf32>, %k: tensor<2x2x16xf32>, %v: tensor<2x2x16xf32>,
                     %kc: tensor<8x2x16xf32>, %vc: tensor<8x2x16xf32>, %p: tensor<i32>)
    -> (tensor<2x4x16xf32>, tensor<8x2x16xf32>, tensor<8x2x16xf32>) {
  %o, %kc1, %vc1 = bitnet.attention %q, %k, %v, %kc, %vc, %p
      : tensor<2x4x16xf32>, tensor<2x2x16xf32>, tensor<2x2x16xf32>,
        tensor<8x2x16xf32>, tensor<8x2x16xf32>, tensor<i32>
      -> tensor<2x4x16xf32>, tensor<8x2x16xf32>, tensor<8x2x16xf32>
  return %o, %kc1, %vc1 : tensor<2x4x16xf32>, tensor<8x2x16xf32>, tensor<8x2x16xf32>
}

// -----

// Tests that an explicit attention scale replaces 1/sqrt(D).
// CHECK-LABEL: func.func @attention_scale
// CHECK: arith.constant 5.000000e-01 : f32
// CHECK-NOT: arith.constant 2.500000e-01 : f32
func.func @attention_scale(%q: tensor<1x1x16xf32>, %c: tensor<4x1x16xf32>, %p: tensor<i64>)
    -> (tensor<1x1x16xf32>, tensor<4x1x16xf32>, tensor<4x1x16xf32>) {
  %o, %kc1, %vc1 = bitnet.attention %q, %q, %q, %c, %c, %p {scale = 0.5 : f32}
      : tensor<1x1x16xf32>, tensor<1x1x16xf32>, tensor<1x1x16xf32>,
        tensor<4x1x16xf32>, tensor<4x1x16xf32>, tensor<i64>
      -> tensor<1x1x16xf32>, tensor<4x1x16xf32>, tensor<4x1x16xf32>
  return %o, %kc1, %vc1 : tensor<1x1x16xf32>, tensor<4x1x16xf32>, tensor<4x1x16xf32>
}

// -----

// Tests that an embedding of a blocked table reads element (id, d) at
// [id / B, d / C, id % B, d % C], V = 128 rows clamped as ever.
// CHECK-LABEL: func.func @embedding_blocked
// CHECK:         linalg.generic
// CHECK:           arith.minsi %{{.*}}, %c127
// CHECK:           %[[D:.*]] = linalg.index 1 : index
// CHECK-DAG:       %[[B:.*]] = arith.divui %[[ID:.*]], %c16
// CHECK-DAG:       %[[C:.*]] = arith.divui %[[D]], %c32
// CHECK-DAG:       %[[R:.*]] = arith.remui %[[ID]], %c16
// CHECK-DAG:       %[[J:.*]] = arith.remui %[[D]], %c32
// CHECK:           tensor.extract %{{.*}}[%[[B]], %[[C]], %[[R]], %[[J]]] : tensor<8x2x16x32xf16>
// CHECK:           arith.extf
func.func @embedding_blocked(%t: tensor<8x2x16x32xf16>, %ids: tensor<4xi32>) -> tensor<4x64xf32> {
  %x = bitnet.embedding %t, %ids {blocked = array<i64: 16, 32>} : tensor<8x2x16x32xf16>, tensor<4xi32> -> tensor<4x64xf32>
  return %x : tensor<4x64xf32>
}
