// RUN: bitnet-opt --allow-unregistered-dialect %s -split-input-file --pass-pipeline='builtin.module(func.func(bitnet-recognize-bitlinear))' | FileCheck %s
// RUN: bitnet-opt --allow-unregistered-dialect %s -split-input-file --pass-pipeline='builtin.module(func.func(bitnet-recognize-bitlinear{strict-float=true}))' | FileCheck %s --check-prefix=STRICT
// RUN: bitnet-opt --allow-unregistered-dialect %s -split-input-file --pass-pipeline='builtin.module(func.func(bitnet-recognize-bitlinear{explain=true}))' -o /dev/null 2>&1 | FileCheck %s --check-prefix=EXPLAIN

// Tests that the contract's activation chain (scale 127 / m) and a weight
// whose values are {-c, 0, c} become bitnet.bitlinear with the weight as a
// ternary constant and c as its scale, and that the chain is removed.
// CHECK-LABEL: func.func @exact_scale
// CHECK-DAG: %[[W:.*]] = bitnet.constant dense<{{\[\[}}1, 0, -1, 1], [-1, 1, 0, 1]]> : tensor<2x4xi8> -> {{(!bitnet.ternary)?}}<2x4, int8>
// CHECK-DAG: %[[S:.*]] = arith.constant dense<5.000000e-01> : tensor<f32>
// CHECK: %[[Y:.*]] = bitnet.bitlinear %arg0, %[[W]] scale %[[S]] : tensor<2x4xf32>, {{(!bitnet.ternary)?}}<2x4, int8>, tensor<f32> -> tensor<2x2xf32>
// CHECK-NOT: onnx.Round
// CHECK: return %[[Y]]
func.func @exact_scale(%x: tensor<2x4xf32>) -> tensor<2x2xf32> {
  %none = "onnx.None"() : () -> none
  %eps = "onnx.Constant"() {value = dense<1.0e-05> : tensor<f32>, onnx.version = 13 : i64} : () -> tensor<f32>
  %c127 = "onnx.Constant"() {value = dense<127.0> : tensor<f32>, onnx.version = 13 : i64} : () -> tensor<f32>
  %lo = "onnx.Constant"() {value = dense<-128.0> : tensor<f32>, onnx.version = 13 : i64} : () -> tensor<f32>
  %hi = "onnx.Constant"() {value = dense<127.0> : tensor<f32>, onnx.version = 13 : i64} : () -> tensor<f32>
  %a = "onnx.Abs"(%x) {onnx.version = 13 : i64} : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %mx = "onnx.ReduceMax"(%a) {axes = array<i64: -1>, keepdims = 1 : i64, onnx.version = 13 : i64} : (tensor<2x4xf32>) -> tensor<2x1xf32>
  %m = "onnx.Clip"(%mx, %eps, %none) {onnx.version = 13 : i64} : (tensor<2x1xf32>, tensor<f32>, none) -> tensor<2x1xf32>
  %s = "onnx.Div"(%c127, %m) {onnx.version = 14 : i64} : (tensor<f32>, tensor<2x1xf32>) -> tensor<2x1xf32>
  %xs = "onnx.Mul"(%x, %s) {onnx.version = 14 : i64} : (tensor<2x4xf32>, tensor<2x1xf32>) -> tensor<2x4xf32>
  %r = "onnx.Round"(%xs) {onnx.version = 11 : i64} : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %q = "onnx.Clip"(%r, %lo, %hi) {onnx.version = 13 : i64} : (tensor<2x4xf32>, tensor<f32>, tensor<f32>) -> tensor<2x4xf32>
  %xq = "onnx.Div"(%q, %s) {onnx.version = 14 : i64} : (tensor<2x4xf32>, tensor<2x1xf32>) -> tensor<2x4xf32>
  %w = "onnx.Constant"() {value = dense<[[0.5, -0.5], [0.0, 0.5], [-0.5, 0.0], [0.5, 0.5]]> : tensor<4x2xf32>, onnx.version = 13 : i64} : () -> tensor<4x2xf32>
  %y = "onnx.MatMul"(%xq, %w) {onnx.version = 13 : i64} : (tensor<2x4xf32>, tensor<4x2xf32>) -> tensor<2x2xf32>
  return %y : tensor<2x2xf32>
}

// -----

// Tests that torch's activation scale, 127 * (1 / m), which differs from the
// contract's 127 / m in the last bit, is read as the contract's: the layer
// becomes bitnet.bitlinear. Read strictly, the graph's quantisation is kept
// and only the product is replaced by an exact integer one.
// CHECK-LABEL: func.func @torch_scale
// CHECK: bitnet.bitlinear %arg0
// CHECK-NOT: onnx.Round
// EXPLAIN: remark: BitLinear layer (2x4 ternary weight, scale 0.5): bitnet.bitlinear, with the contract's scale 127 / m for the exported 127 * (1 / m)
// STRICT-LABEL: func.func @torch_scale
// STRICT: %[[Q:.*]] = "onnx.Clip"{{.*}} -> tensor<2x4xf32>
// STRICT: %[[QI:.*]] = "onnx.Cast"(%[[Q]]) {onnx.version = 13 : i64, to = 3 : i64} : (tensor<2x4xf32>) -> tensor<2x4xi8>
// STRICT: %[[ACC:.*]] = bitnet.ternary_matmul %[[QI]], %{{.*}} : tensor<2x4xi8>, {{(!bitnet.ternary)?}}<2x4, int8> -> tensor<2x2xi32>
// STRICT: "onnx.Cast"(%[[ACC]])
// STRICT: "onnx.Mul"
// STRICT: "onnx.Div"
// STRICT-NOT: bitnet.bitlinear
func.func @torch_scale(%x: tensor<2x4xf32>) -> tensor<2x2xf32> {
  %none = "onnx.None"() : () -> none
  %eps = "onnx.Constant"() {value = dense<1.0e-05> : tensor<f32>, onnx.version = 13 : i64} : () -> tensor<f32>
  %c127 = "onnx.Constant"() {value = dense<127.0> : tensor<f32>, onnx.version = 13 : i64} : () -> tensor<f32>
  %lo = "onnx.Constant"() {value = dense<-128.0> : tensor<f32>, onnx.version = 13 : i64} : () -> tensor<f32>
  %hi = "onnx.Constant"() {value = dense<127.0> : tensor<f32>, onnx.version = 13 : i64} : () -> tensor<f32>
  %a = "onnx.Abs"(%x) {onnx.version = 13 : i64} : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %mx = "onnx.ReduceMax"(%a) {axes = array<i64: -1>, keepdims = 1 : i64, onnx.version = 13 : i64} : (tensor<2x4xf32>) -> tensor<2x1xf32>
  %m = "onnx.Clip"(%mx, %eps, %none) {onnx.version = 13 : i64} : (tensor<2x1xf32>, tensor<f32>, none) -> tensor<2x1xf32>
  %rm = "onnx.Reciprocal"(%m) {onnx.version = 13 : i64} : (tensor<2x1xf32>) -> tensor<2x1xf32>
  %s = "onnx.Mul"(%rm, %c127) {onnx.version = 14 : i64} : (tensor<2x1xf32>, tensor<f32>) -> tensor<2x1xf32>
  %xs = "onnx.Mul"(%x, %s) {onnx.version = 14 : i64} : (tensor<2x4xf32>, tensor<2x1xf32>) -> tensor<2x4xf32>
  %r = "onnx.Round"(%xs) {onnx.version = 11 : i64} : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %q = "onnx.Clip"(%r, %lo, %hi) {onnx.version = 13 : i64} : (tensor<2x4xf32>, tensor<f32>, tensor<f32>) -> tensor<2x4xf32>
  %xq = "onnx.Div"(%q, %s) {onnx.version = 14 : i64} : (tensor<2x4xf32>, tensor<2x1xf32>) -> tensor<2x4xf32>
  %w = "onnx.Constant"() {value = dense<[[0.5, -0.5], [0.0, 0.5], [-0.5, 0.0], [0.5, 0.5]]> : tensor<4x2xf32>, onnx.version = 13 : i64} : () -> tensor<4x2xf32>
  %y = "onnx.MatMul"(%xq, %w) {onnx.version = 13 : i64} : (tensor<2x4xf32>, tensor<4x2xf32>) -> tensor<2x2xf32>
  return %y : tensor<2x2xf32>
}

// -----

// Tests that a weight with more than one magnitude stays a float MatMul.
// CHECK-LABEL: func.func @not_ternary
// EXPLAIN: remark: stays a float MatMul, not a BitLinear layer: the weight is not ternary: it holds -0.25 beside +-0.5
// CHECK: "onnx.MatMul"
// CHECK-NOT: bitnet.
func.func @not_ternary(%x: tensor<2x4xf32>) -> tensor<2x2xf32> {
  %none = "onnx.None"() : () -> none
  %eps = "onnx.Constant"() {value = dense<1.0e-05> : tensor<f32>, onnx.version = 13 : i64} : () -> tensor<f32>
  %c127 = "onnx.Constant"() {value = dense<127.0> : tensor<f32>, onnx.version = 13 : i64} : () -> tensor<f32>
  %lo = "onnx.Constant"() {value = dense<-128.0> : tensor<f32>, onnx.version = 13 : i64} : () -> tensor<f32>
  %hi = "onnx.Constant"() {value = dense<127.0> : tensor<f32>, onnx.version = 13 : i64} : () -> tensor<f32>
  %a = "onnx.Abs"(%x) {onnx.version = 13 : i64} : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %mx = "onnx.ReduceMax"(%a) {axes = array<i64: -1>, keepdims = 1 : i64, onnx.version = 13 : i64} : (tensor<2x4xf32>) -> tensor<2x1xf32>
  %m = "onnx.Clip"(%mx, %eps, %none) {onnx.version = 13 : i64} : (tensor<2x1xf32>, tensor<f32>, none) -> tensor<2x1xf32>
  %s = "onnx.Div"(%c127, %m) {onnx.version = 14 : i64} : (tensor<f32>, tensor<2x1xf32>) -> tensor<2x1xf32>
  %xs = "onnx.Mul"(%x, %s) {onnx.version = 14 : i64} : (tensor<2x4xf32>, tensor<2x1xf32>) -> tensor<2x4xf32>
  %r = "onnx.Round"(%xs) {onnx.version = 11 : i64} : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %q = "onnx.Clip"(%r, %lo, %hi) {onnx.version = 13 : i64} : (tensor<2x4xf32>, tensor<f32>, tensor<f32>) -> tensor<2x4xf32>
  %xq = "onnx.Div"(%q, %s) {onnx.version = 14 : i64} : (tensor<2x4xf32>, tensor<2x1xf32>) -> tensor<2x4xf32>
  %w = "onnx.Constant"() {value = dense<[[0.5, -0.25], [0.0, 0.5], [-0.5, 0.0], [0.5, 0.5]]> : tensor<4x2xf32>, onnx.version = 13 : i64} : () -> tensor<4x2xf32>
  %y = "onnx.MatMul"(%xq, %w) {onnx.version = 13 : i64} : (tensor<2x4xf32>, tensor<4x2xf32>) -> tensor<2x2xf32>
  return %y : tensor<2x2xf32>
}

// -----

// Tests that a chain that clamps to [-127, 127] (not the contract's
// [-128, 127]) is not taken for the contract's quantisation.
// CHECK-LABEL: func.func @wrong_clamp
// EXPLAIN: remark: stays a float MatMul, not a BitLinear layer: the activations are clamped to [-127, 127], not to int8's [-128, 127]
// CHECK: "onnx.MatMul"
// CHECK-NOT: bitnet.bitlinear
func.func @wrong_clamp(%x: tensor<2x4xf32>) -> tensor<2x2xf32> {
  %none = "onnx.None"() : () -> none
  %eps = "onnx.Constant"() {value = dense<1.0e-05> : tensor<f32>, onnx.version = 13 : i64} : () -> tensor<f32>
  %c127 = "onnx.Constant"() {value = dense<127.0> : tensor<f32>, onnx.version = 13 : i64} : () -> tensor<f32>
  %lo = "onnx.Constant"() {value = dense<-127.0> : tensor<f32>, onnx.version = 13 : i64} : () -> tensor<f32>
  %hi = "onnx.Constant"() {value = dense<127.0> : tensor<f32>, onnx.version = 13 : i64} : () -> tensor<f32>
  %a = "onnx.Abs"(%x) {onnx.version = 13 : i64} : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %mx = "onnx.ReduceMax"(%a) {axes = array<i64: -1>, keepdims = 1 : i64, onnx.version = 13 : i64} : (tensor<2x4xf32>) -> tensor<2x1xf32>
  %m = "onnx.Clip"(%mx, %eps, %none) {onnx.version = 13 : i64} : (tensor<2x1xf32>, tensor<f32>, none) -> tensor<2x1xf32>
  %s = "onnx.Div"(%c127, %m) {onnx.version = 14 : i64} : (tensor<f32>, tensor<2x1xf32>) -> tensor<2x1xf32>
  %xs = "onnx.Mul"(%x, %s) {onnx.version = 14 : i64} : (tensor<2x4xf32>, tensor<2x1xf32>) -> tensor<2x4xf32>
  %r = "onnx.Round"(%xs) {onnx.version = 11 : i64} : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %q = "onnx.Clip"(%r, %lo, %hi) {onnx.version = 13 : i64} : (tensor<2x4xf32>, tensor<f32>, tensor<f32>) -> tensor<2x4xf32>
  %xq = "onnx.Div"(%q, %s) {onnx.version = 14 : i64} : (tensor<2x4xf32>, tensor<2x1xf32>) -> tensor<2x4xf32>
  %w = "onnx.Constant"() {value = dense<[[0.5, -0.5], [0.0, 0.5], [-0.5, 0.0], [0.5, 0.5]]> : tensor<4x2xf32>, onnx.version = 13 : i64} : () -> tensor<4x2xf32>
  %y = "onnx.MatMul"(%xq, %w) {onnx.version = 13 : i64} : (tensor<2x4xf32>, tensor<4x2xf32>) -> tensor<2x2xf32>
  return %y : tensor<2x2xf32>
}

// -----

// Tests the straight-through form of training code, x + (q - x) for the
// activations and w + (t - w) for the weight: read as q and t, the layer
// is a bitnet.bitlinear; read strictly (neither sum is exactly q or t), it
// stays a float MatMul.
// CHECK-LABEL: func.func @straight_through
// CHECK: bitnet.constant dense<{{\[\[}}1, 0, -1, 1], [-1, 1, 0, 1]]>
// CHECK: bitnet.bitlinear %arg0
// CHECK-NOT: onnx.MatMul
// EXPLAIN: remark: BitLinear layer (2x4 ternary weight
// STRICT-LABEL: func.func @straight_through
// STRICT-NOT: bitnet.
// STRICT: "onnx.MatMul"
func.func @straight_through(%x: tensor<2x4xf32>) -> tensor<2x2xf32> {
  %none = "onnx.None"() : () -> none
  %eps = "onnx.Constant"() {value = dense<1.0e-05> : tensor<f32>, onnx.version = 13 : i64} : () -> tensor<f32>
  %c127 = "onnx.Constant"() {value = dense<127.0> : tensor<f32>, onnx.version = 13 : i64} : () -> tensor<f32>
  %lo = "onnx.Constant"() {value = dense<-128.0> : tensor<f32>, onnx.version = 13 : i64} : () -> tensor<f32>
  %hi = "onnx.Constant"() {value = dense<127.0> : tensor<f32>, onnx.version = 13 : i64} : () -> tensor<f32>
  %a = "onnx.Abs"(%x) {onnx.version = 13 : i64} : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %mx = "onnx.ReduceMax"(%a) {axes = array<i64: -1>, keepdims = 1 : i64, onnx.version = 13 : i64} : (tensor<2x4xf32>) -> tensor<2x1xf32>
  %m = "onnx.Clip"(%mx, %eps, %none) {onnx.version = 13 : i64} : (tensor<2x1xf32>, tensor<f32>, none) -> tensor<2x1xf32>
  %rm = "onnx.Reciprocal"(%m) {onnx.version = 13 : i64} : (tensor<2x1xf32>) -> tensor<2x1xf32>
  %s = "onnx.Mul"(%rm, %c127) {onnx.version = 14 : i64} : (tensor<2x1xf32>, tensor<f32>) -> tensor<2x1xf32>
  %xs = "onnx.Mul"(%x, %s) {onnx.version = 14 : i64} : (tensor<2x4xf32>, tensor<2x1xf32>) -> tensor<2x4xf32>
  %r = "onnx.Round"(%xs) {onnx.version = 11 : i64} : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %q = "onnx.Clip"(%r, %lo, %hi) {onnx.version = 13 : i64} : (tensor<2x4xf32>, tensor<f32>, tensor<f32>) -> tensor<2x4xf32>
  %w0 = "onnx.Constant"() {value = dense<[[0.3, -0.7], [0.01, 0.45], [-0.52, 0.02], [0.61, 0.9]]> : tensor<4x2xf32>, onnx.version = 13 : i64} : () -> tensor<4x2xf32>
  %wa = "onnx.Abs"(%w0) {onnx.version = 13 : i64} : (tensor<4x2xf32>) -> tensor<4x2xf32>
  %wm = "onnx.ReduceMean"(%wa) {keepdims = 0 : i64, onnx.version = 13 : i64} : (tensor<4x2xf32>) -> tensor<f32>
  %wc = "onnx.Clip"(%wm, %eps, %none) {onnx.version = 13 : i64} : (tensor<f32>, tensor<f32>, none) -> tensor<f32>
  %ws = "onnx.Reciprocal"(%wc) {onnx.version = 13 : i64} : (tensor<f32>) -> tensor<f32>
  %wx = "onnx.Mul"(%w0, %ws) {onnx.version = 14 : i64} : (tensor<4x2xf32>, tensor<f32>) -> tensor<4x2xf32>
  %wr = "onnx.Round"(%wx) {onnx.version = 11 : i64} : (tensor<4x2xf32>) -> tensor<4x2xf32>
  %one = "onnx.Constant"() {value = dense<1.0> : tensor<f32>, onnx.version = 13 : i64} : () -> tensor<f32>
  %mone = "onnx.Constant"() {value = dense<-1.0> : tensor<f32>, onnx.version = 13 : i64} : () -> tensor<f32>
  %wq0 = "onnx.Clip"(%wr, %mone, %one) {onnx.version = 13 : i64} : (tensor<4x2xf32>, tensor<f32>, tensor<f32>) -> tensor<4x2xf32>
  %wq = "onnx.Div"(%wq0, %ws) {onnx.version = 14 : i64} : (tensor<4x2xf32>, tensor<f32>) -> tensor<4x2xf32>
  %wd = "onnx.Sub"(%wq, %w0) {onnx.version = 14 : i64} : (tensor<4x2xf32>, tensor<4x2xf32>) -> tensor<4x2xf32>
  %w = "onnx.Add"(%w0, %wd) {onnx.version = 14 : i64} : (tensor<4x2xf32>, tensor<4x2xf32>) -> tensor<4x2xf32>
  %xq = "onnx.Div"(%q, %s) {onnx.version = 14 : i64} : (tensor<2x4xf32>, tensor<2x1xf32>) -> tensor<2x4xf32>
  %xd = "onnx.Sub"(%xq, %x) {onnx.version = 14 : i64} : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
  %xste = "onnx.Add"(%x, %xd) {onnx.version = 14 : i64} : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
  %y = "onnx.MatMul"(%xste, %w) {onnx.version = 13 : i64} : (tensor<2x4xf32>, tensor<4x2xf32>) -> tensor<2x2xf32>
  return %y : tensor<2x2xf32>
}

// -----

// Tests bitnet.cpp's form: the integers times {-1, 0, 1}, divided by the
// activation scale afterwards, times the weight scale: a bitnet.bitlinear
// (scale 1) and the float multiply. Read strictly, the product alone
// becomes an exact integer one and the division stays.
// CHECK-LABEL: func.func @divide_after
// CHECK: %[[Y:.*]] = bitnet.bitlinear %arg0, %{{.*}} scale %{{.*}}
// CHECK: "onnx.Mul"(%[[Y]]
// STRICT-LABEL: func.func @divide_after
// STRICT: bitnet.ternary_matmul
// STRICT: "onnx.Div"
// STRICT-NOT: bitnet.bitlinear
func.func @divide_after(%x: tensor<2x4xf32>) -> tensor<2x2xf32> {
  %none = "onnx.None"() : () -> none
  %eps = "onnx.Constant"() {value = dense<1.0e-05> : tensor<f32>, onnx.version = 13 : i64} : () -> tensor<f32>
  %c127 = "onnx.Constant"() {value = dense<127.0> : tensor<f32>, onnx.version = 13 : i64} : () -> tensor<f32>
  %lo = "onnx.Constant"() {value = dense<-128.0> : tensor<f32>, onnx.version = 13 : i64} : () -> tensor<f32>
  %hi = "onnx.Constant"() {value = dense<127.0> : tensor<f32>, onnx.version = 13 : i64} : () -> tensor<f32>
  %a = "onnx.Abs"(%x) {onnx.version = 13 : i64} : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %mx = "onnx.ReduceMax"(%a) {axes = array<i64: -1>, keepdims = 1 : i64, onnx.version = 13 : i64} : (tensor<2x4xf32>) -> tensor<2x1xf32>
  %m = "onnx.Clip"(%mx, %eps, %none) {onnx.version = 13 : i64} : (tensor<2x1xf32>, tensor<f32>, none) -> tensor<2x1xf32>
  %rm = "onnx.Reciprocal"(%m) {onnx.version = 13 : i64} : (tensor<2x1xf32>) -> tensor<2x1xf32>
  %s = "onnx.Mul"(%rm, %c127) {onnx.version = 14 : i64} : (tensor<2x1xf32>, tensor<f32>) -> tensor<2x1xf32>
  %xs = "onnx.Mul"(%x, %s) {onnx.version = 14 : i64} : (tensor<2x4xf32>, tensor<2x1xf32>) -> tensor<2x4xf32>
  %r = "onnx.Round"(%xs) {onnx.version = 11 : i64} : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %q = "onnx.Clip"(%r, %lo, %hi) {onnx.version = 13 : i64} : (tensor<2x4xf32>, tensor<f32>, tensor<f32>) -> tensor<2x4xf32>
  %w = "onnx.Constant"() {value = dense<[[1.0, -1.0], [0.0, 1.0], [-1.0, 0.0], [1.0, 1.0]]> : tensor<4x2xf32>, onnx.version = 13 : i64} : () -> tensor<4x2xf32>
  %p = "onnx.MatMul"(%q, %w) {onnx.version = 13 : i64} : (tensor<2x4xf32>, tensor<4x2xf32>) -> tensor<2x2xf32>
  %d = "onnx.Div"(%p, %s) {onnx.version = 14 : i64} : (tensor<2x2xf32>, tensor<2x1xf32>) -> tensor<2x2xf32>
  %sw = "onnx.Constant"() {value = dense<0.04> : tensor<f32>, onnx.version = 13 : i64} : () -> tensor<f32>
  %y = "onnx.Mul"(%d, %sw) {onnx.version = 14 : i64} : (tensor<2x2xf32>, tensor<f32>) -> tensor<2x2xf32>
  return %y : tensor<2x2xf32>
}

// -----

// Tests that the integers times {-1, 0, 1} with the product returned as it
// is (no division after it) become an exact integer product.
// CHECK-LABEL: func.func @integer_product_returned
// CHECK: %[[ACC:.*]] = bitnet.ternary_matmul
// CHECK: %[[Y:.*]] = "onnx.Cast"(%[[ACC]])
// CHECK: return %[[Y]]
func.func @integer_product_returned(%x: tensor<2x4xf32>) -> tensor<2x2xf32> {
  %none = "onnx.None"() : () -> none
  %eps = "onnx.Constant"() {value = dense<1.0e-05> : tensor<f32>, onnx.version = 13 : i64} : () -> tensor<f32>
  %c127 = "onnx.Constant"() {value = dense<127.0> : tensor<f32>, onnx.version = 13 : i64} : () -> tensor<f32>
  %lo = "onnx.Constant"() {value = dense<-128.0> : tensor<f32>, onnx.version = 13 : i64} : () -> tensor<f32>
  %hi = "onnx.Constant"() {value = dense<127.0> : tensor<f32>, onnx.version = 13 : i64} : () -> tensor<f32>
  %a = "onnx.Abs"(%x) {onnx.version = 13 : i64} : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %mx = "onnx.ReduceMax"(%a) {axes = array<i64: -1>, keepdims = 1 : i64, onnx.version = 13 : i64} : (tensor<2x4xf32>) -> tensor<2x1xf32>
  %m = "onnx.Clip"(%mx, %eps, %none) {onnx.version = 13 : i64} : (tensor<2x1xf32>, tensor<f32>, none) -> tensor<2x1xf32>
  %rm = "onnx.Reciprocal"(%m) {onnx.version = 13 : i64} : (tensor<2x1xf32>) -> tensor<2x1xf32>
  %s = "onnx.Mul"(%rm, %c127) {onnx.version = 14 : i64} : (tensor<2x1xf32>, tensor<f32>) -> tensor<2x1xf32>
  %xs = "onnx.Mul"(%x, %s) {onnx.version = 14 : i64} : (tensor<2x4xf32>, tensor<2x1xf32>) -> tensor<2x4xf32>
  %r = "onnx.Round"(%xs) {onnx.version = 11 : i64} : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %q = "onnx.Clip"(%r, %lo, %hi) {onnx.version = 13 : i64} : (tensor<2x4xf32>, tensor<f32>, tensor<f32>) -> tensor<2x4xf32>
  %w = "onnx.Constant"() {value = dense<[[1.0, -1.0], [0.0, 1.0], [-1.0, 0.0], [1.0, 1.0]]> : tensor<4x2xf32>, onnx.version = 13 : i64} : () -> tensor<4x2xf32>
  %p = "onnx.MatMul"(%q, %w) {onnx.version = 13 : i64} : (tensor<2x4xf32>, tensor<4x2xf32>) -> tensor<2x2xf32>
  return %p : tensor<2x2xf32>
}

// -----

// Tests that 4-bit activations ([-8, 7]) are not BitLinear's.
// CHECK-LABEL: func.func @four_bit
// CHECK: "onnx.MatMul"
// CHECK-NOT: bitnet.bitlinear
// EXPLAIN: remark: stays a float MatMul, not a BitLinear layer: the activations are clamped to [-8, 7], not to int8's [-128, 127]
func.func @four_bit(%x: tensor<2x4xf32>) -> tensor<2x2xf32> {
  %none = "onnx.None"() : () -> none
  %eps = "onnx.Constant"() {value = dense<1.0e-05> : tensor<f32>, onnx.version = 13 : i64} : () -> tensor<f32>
  %c127 = "onnx.Constant"() {value = dense<127.0> : tensor<f32>, onnx.version = 13 : i64} : () -> tensor<f32>
  %lo = "onnx.Constant"() {value = dense<-8.0> : tensor<f32>, onnx.version = 13 : i64} : () -> tensor<f32>
  %hi = "onnx.Constant"() {value = dense<7.0> : tensor<f32>, onnx.version = 13 : i64} : () -> tensor<f32>
  %a = "onnx.Abs"(%x) {onnx.version = 13 : i64} : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %mx = "onnx.ReduceMax"(%a) {axes = array<i64: -1>, keepdims = 1 : i64, onnx.version = 13 : i64} : (tensor<2x4xf32>) -> tensor<2x1xf32>
  %m = "onnx.Clip"(%mx, %eps, %none) {onnx.version = 13 : i64} : (tensor<2x1xf32>, tensor<f32>, none) -> tensor<2x1xf32>
  %rm = "onnx.Reciprocal"(%m) {onnx.version = 13 : i64} : (tensor<2x1xf32>) -> tensor<2x1xf32>
  %s = "onnx.Mul"(%rm, %c127) {onnx.version = 14 : i64} : (tensor<2x1xf32>, tensor<f32>) -> tensor<2x1xf32>
  %xs = "onnx.Mul"(%x, %s) {onnx.version = 14 : i64} : (tensor<2x4xf32>, tensor<2x1xf32>) -> tensor<2x4xf32>
  %r = "onnx.Round"(%xs) {onnx.version = 11 : i64} : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %q = "onnx.Clip"(%r, %lo, %hi) {onnx.version = 13 : i64} : (tensor<2x4xf32>, tensor<f32>, tensor<f32>) -> tensor<2x4xf32>
  %xq = "onnx.Div"(%q, %s) {onnx.version = 14 : i64} : (tensor<2x4xf32>, tensor<2x1xf32>) -> tensor<2x4xf32>
  %w = "onnx.Constant"() {value = dense<[[1.0, -1.0], [0.0, 1.0], [-1.0, 0.0], [1.0, 1.0]]> : tensor<4x2xf32>, onnx.version = 13 : i64} : () -> tensor<4x2xf32>
  %y = "onnx.MatMul"(%xq, %w) {onnx.version = 13 : i64} : (tensor<2x4xf32>, tensor<4x2xf32>) -> tensor<2x2xf32>
  return %y : tensor<2x2xf32>
}

// -----

// Tests that a per-tensor absmax (one scale for every token) is not
// BitLinear's per-token scale.
// CHECK-LABEL: func.func @per_tensor
// CHECK: "onnx.MatMul"
// CHECK-NOT: bitnet.bitlinear
// EXPLAIN: remark: stays a float MatMul, not a BitLinear layer: the activation scale is per tensor (absmax over every axis), not per token
func.func @per_tensor(%x: tensor<2x4xf32>) -> tensor<2x2xf32> {
  %none = "onnx.None"() : () -> none
  %eps = "onnx.Constant"() {value = dense<1.0e-05> : tensor<f32>, onnx.version = 13 : i64} : () -> tensor<f32>
  %c127 = "onnx.Constant"() {value = dense<127.0> : tensor<f32>, onnx.version = 13 : i64} : () -> tensor<f32>
  %lo = "onnx.Constant"() {value = dense<-128.0> : tensor<f32>, onnx.version = 13 : i64} : () -> tensor<f32>
  %hi = "onnx.Constant"() {value = dense<127.0> : tensor<f32>, onnx.version = 13 : i64} : () -> tensor<f32>
  %a = "onnx.Abs"(%x) {onnx.version = 13 : i64} : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %mx = "onnx.ReduceMax"(%a) {keepdims = 0 : i64, onnx.version = 13 : i64} : (tensor<2x4xf32>) -> tensor<f32>
  %m = "onnx.Clip"(%mx, %eps, %none) {onnx.version = 13 : i64} : (tensor<f32>, tensor<f32>, none) -> tensor<f32>
  %rm = "onnx.Reciprocal"(%m) {onnx.version = 13 : i64} : (tensor<f32>) -> tensor<f32>
  %s = "onnx.Mul"(%rm, %c127) {onnx.version = 14 : i64} : (tensor<f32>, tensor<f32>) -> tensor<f32>
  %xs = "onnx.Mul"(%x, %s) {onnx.version = 14 : i64} : (tensor<2x4xf32>, tensor<f32>) -> tensor<2x4xf32>
  %r = "onnx.Round"(%xs) {onnx.version = 11 : i64} : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %q = "onnx.Clip"(%r, %lo, %hi) {onnx.version = 13 : i64} : (tensor<2x4xf32>, tensor<f32>, tensor<f32>) -> tensor<2x4xf32>
  %xq = "onnx.Div"(%q, %s) {onnx.version = 14 : i64} : (tensor<2x4xf32>, tensor<f32>) -> tensor<2x4xf32>
  %w = "onnx.Constant"() {value = dense<[[1.0, -1.0], [0.0, 1.0], [-1.0, 0.0], [1.0, 1.0]]> : tensor<4x2xf32>, onnx.version = 13 : i64} : () -> tensor<4x2xf32>
  %y = "onnx.MatMul"(%xq, %w) {onnx.version = 13 : i64} : (tensor<2x4xf32>, tensor<4x2xf32>) -> tensor<2x2xf32>
  return %y : tensor<2x2xf32>
}

// -----

// Tests that an absmax over the first axis (per feature, not per token) is
// not BitLinear's.
// CHECK-LABEL: func.func @wrong_axis
// CHECK: "onnx.MatMul"
// CHECK-NOT: bitnet.bitlinear
// EXPLAIN: remark: stays a float MatMul, not a BitLinear layer: the activation absmax is over axes [0], not per token (the last axis alone)
func.func @wrong_axis(%x: tensor<2x4xf32>) -> tensor<2x2xf32> {
  %none = "onnx.None"() : () -> none
  %eps = "onnx.Constant"() {value = dense<1.0e-05> : tensor<f32>, onnx.version = 13 : i64} : () -> tensor<f32>
  %c127 = "onnx.Constant"() {value = dense<127.0> : tensor<f32>, onnx.version = 13 : i64} : () -> tensor<f32>
  %lo = "onnx.Constant"() {value = dense<-128.0> : tensor<f32>, onnx.version = 13 : i64} : () -> tensor<f32>
  %hi = "onnx.Constant"() {value = dense<127.0> : tensor<f32>, onnx.version = 13 : i64} : () -> tensor<f32>
  %a = "onnx.Abs"(%x) {onnx.version = 13 : i64} : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %mx = "onnx.ReduceMax"(%a) {axes = array<i64: 0>, keepdims = 1 : i64, onnx.version = 13 : i64} : (tensor<2x4xf32>) -> tensor<1x4xf32>
  %m = "onnx.Clip"(%mx, %eps, %none) {onnx.version = 13 : i64} : (tensor<1x4xf32>, tensor<f32>, none) -> tensor<1x4xf32>
  %rm = "onnx.Reciprocal"(%m) {onnx.version = 13 : i64} : (tensor<1x4xf32>) -> tensor<1x4xf32>
  %s = "onnx.Mul"(%rm, %c127) {onnx.version = 14 : i64} : (tensor<1x4xf32>, tensor<f32>) -> tensor<1x4xf32>
  %xs = "onnx.Mul"(%x, %s) {onnx.version = 14 : i64} : (tensor<2x4xf32>, tensor<1x4xf32>) -> tensor<2x4xf32>
  %r = "onnx.Round"(%xs) {onnx.version = 11 : i64} : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %q = "onnx.Clip"(%r, %lo, %hi) {onnx.version = 13 : i64} : (tensor<2x4xf32>, tensor<f32>, tensor<f32>) -> tensor<2x4xf32>
  %xq = "onnx.Div"(%q, %s) {onnx.version = 14 : i64} : (tensor<2x4xf32>, tensor<1x4xf32>) -> tensor<2x4xf32>
  %w = "onnx.Constant"() {value = dense<[[1.0, -1.0], [0.0, 1.0], [-1.0, 0.0], [1.0, 1.0]]> : tensor<4x2xf32>, onnx.version = 13 : i64} : () -> tensor<4x2xf32>
  %y = "onnx.MatMul"(%xq, %w) {onnx.version = 13 : i64} : (tensor<2x4xf32>, tensor<4x2xf32>) -> tensor<2x2xf32>
  return %y : tensor<2x2xf32>
}
