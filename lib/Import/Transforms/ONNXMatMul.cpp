//===- ONNXMatMul.cpp - ONNX matrix products and quantisation -------------===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// MatMul, Gemm and MatMulInteger as linalg.generic reductions, and the
// linear quantisation operations (QuantizeLinear, DequantizeLinear,
// DynamicQuantizeLinear).
//
//===----------------------------------------------------------------------===//

#include "ONNXNode.h"

#include "bitnet/Dialect/BitNet/IR/BitNet.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/IR/Matchers.h"

using namespace mlir;
using namespace mlir::bitnet;
using namespace mlir::bitnet::onnx;

FailureOr<Value> mlir::bitnet::onnx::matmul(
    Node &n, const Operand &a, const Operand &b, bool transA, bool transB,
    Type accElem,
    function_ref<Value(OpBuilder &, Location, Value, Value, Value)> body) {
  ArrayRef<int64_t> as = a.shape(), bs = b.shape();
  int64_t m = transA ? as[as.size() - 1] : as[as.size() - 2];
  int64_t ka = transA ? as[as.size() - 2] : as[as.size() - 1];
  int64_t kb = transB ? bs[bs.size() - 1] : bs[bs.size() - 2];
  int64_t nn = transB ? bs[bs.size() - 2] : bs[bs.size() - 1];
  if (ka != kb) {
    InFlightDiagnostic d = n.error()
                           << "inner dimensions differ: " << describe(a)
                           << " and " << describe(b);
    d.attachNote() << "expected A's last dimension (" << ka
                   << ") to equal B's reduction dimension (" << kb << ")";
    return d;
  }
  auto batch = broadcastShapes(as.drop_back(2), bs.drop_back(2));
  if (!batch) {
    InFlightDiagnostic d = n.error() << "batch dimensions do not broadcast: "
                                     << describe(a) << " and " << describe(b);
    d.attachNote() << "expected batch dimensions that broadcast";
    return d;
  }
  int64_t nb = batch->size();
  SmallVector<int64_t> outShape(*batch);
  outShape.push_back(m);
  outShape.push_back(nn);
  if (numElements(outShape) < 0)
    return n.error() << "result has too many elements";
  // Loops: batch..., m, n, k.
  int64_t loops = nb + 3;
  MLIRContext *ctx = n.ctx();
  auto d = [&](int64_t k) { return getAffineDimExpr(k, ctx); };
  auto operandMap = [&](ArrayRef<int64_t> shape, AffineExpr r, AffineExpr c) {
    SmallVector<AffineExpr> e;
    size_t off = nb - (shape.size() - 2);
    for (size_t k = 0; k + 2 < shape.size(); ++k)
      e.push_back(shape[k] == 1 && (*batch)[k + off] != 1
                      ? getAffineConstantExpr(0, ctx)
                      : d(k + off));
    e.push_back(r);
    e.push_back(c);
    return AffineMap::get(loops, 0, e, ctx);
  };
  AffineExpr mi = d(nb), ni = d(nb + 1), ki = d(nb + 2);
  AffineMap aMap = transA ? operandMap(as, ki, mi) : operandMap(as, mi, ki);
  AffineMap bMap = transB ? operandMap(bs, ni, ki) : operandMap(bs, ki, ni);
  SmallVector<AffineExpr> outExprs;
  for (int64_t k = 0; k < nb + 2; ++k)
    outExprs.push_back(d(k));
  AffineMap oMap = AffineMap::get(loops, 0, outExprs, ctx);
  Value acc = n.filled(outShape, accElem, n.scalar(accElem, 0));
  SmallVector<utils::IteratorType> iters(loops - 1,
                                         utils::IteratorType::parallel);
  iters.push_back(utils::IteratorType::reduction);
  auto g = linalg::GenericOp::create(
      n.b, n.loc, TypeRange{acc.getType()}, ValueRange{a.value, b.value},
      ValueRange{acc}, ArrayRef<AffineMap>{aMap, bMap, oMap}, iters,
      [&](OpBuilder &nb2, Location nl, ValueRange args) {
        linalg::YieldOp::create(nb2, nl,
                                body(nb2, nl, args[0], args[1], args[2]));
      });
  return g.getResult(0);
}

FailureOr<Results> mlir::bitnet::onnx::matmulLike(
    Node &n, Operand a, Operand b, Type accElem,
    function_ref<Value(OpBuilder &, Location, Value, Value, Value)> body) {
  if (a.rank() == 0 || b.rank() == 0) {
    InFlightDiagnostic d = n.error() << "has a scalar operand: " << describe(a)
                                     << ", " << describe(b);
    d.attachNote() << "expected operands of rank 1 or more";
    return d;
  }
  bool aVec = a.rank() == 1, bVec = b.rank() == 1;
  if (aVec)
    a.value = n.reshape(a.value, {1, a.shape()[0]});
  if (bVec)
    b.value = n.reshape(b.value, {b.shape()[0], 1});
  FailureOr<Value> r = matmul(n, a, b, false, false, accElem, body);
  if (failed(r))
    return failure();
  auto type = cast<RankedTensorType>(r->getType());
  SmallVector<int64_t> shape(type.getShape().drop_back(2));
  if (!aVec)
    shape.push_back(type.getShape()[type.getRank() - 2]);
  if (!bVec)
    shape.push_back(type.getShape()[type.getRank() - 1]);
  return Results{{n.reshape(*r, shape), accElem}};
}

namespace {

/// Round half to even, then clamp to [lo, hi], then convert to `to`.
Value saturate(OpBuilder &b, Location loc, Value f, double lo, double hi,
               Type to) {
  Type ft = f.getType();
  Value r = math::RoundEvenOp::create(b, loc, f);
  r = arith::MaximumFOp::create(b, loc, r, Node::scalarIn(b, loc, ft, lo));
  r = arith::MinimumFOp::create(b, loc, r, Node::scalarIn(b, loc, ft, hi));
  return convertScalar(b, loc, r, ft, to);
}

FailureOr<Results> lowerMatMul(Node &n) {
  SmallVector<Type> types = {n.f32(), n.f64(), n.i32(), n.i64()};
  if (failed(n.arity(2, 2)) || failed(n.elemIn(0, types, "A")) ||
      failed(n.sameElem(0, 1)))
    return failure();
  Type elem = n.in[0].elem;
  bool isFloat = isa<FloatType>(elem);
  return matmulLike(
      n, n.in[0], n.in[1], elem,
      [&](OpBuilder &b, Location loc, Value x, Value y, Value acc) -> Value {
        if (isFloat)
          return arith::AddFOp::create(b, loc, acc,
                                       arith::MulFOp::create(b, loc, x, y));
        return arith::AddIOp::create(b, loc, acc,
                                     arith::MulIOp::create(b, loc, x, y));
      });
}

FailureOr<Results> lowerGemm(Node &n) {
  if (failed(n.arity(2, 3)) || failed(n.elemIn(0, n.floats(), "A")) ||
      failed(n.sameElem(0, 1)) || failed(n.sameElem(0, 2)) ||
      failed(n.rankIs(0, 2, 2, "A")) || failed(n.rankIs(1, 2, 2, "B")))
    return failure();
  FailureOr<float> alpha = n.floatAttr("alpha", 1.0f),
                   beta = n.floatAttr("beta", 1.0f);
  FailureOr<int64_t> transA = n.intAttr("transA", 0),
                     transB = n.intAttr("transB", 0);
  if (failed(alpha) || failed(beta) || failed(transA) || failed(transB))
    return failure();
  Type elem = n.in[0].elem;
  // x times a constant float weight stored [N, K]: a dense layer (the head
  // of a decoder), which gets the compiler's float kernels.
  if (elem == n.f32() && !*transA && *transB && *alpha == 1.0f && !n.input(2) &&
      n.in[0].shape().back() == n.in[1].shape()[1] &&
      matchPattern(n.in[1].value, m_Constant())) {
    Value y = DenseMatmulOp::create(
        n.b, n.loc,
        RankedTensorType::get({n.in[0].shape()[0], n.in[1].shape()[0]},
                              n.f32()),
        n.in[0].value, n.in[1].value, Value());
    return Results{{y, n.f32()}};
  }
  FailureOr<Value> prod =
      matmul(n, n.in[0], n.in[1], *transA, *transB, elem,
             [](OpBuilder &b, Location loc, Value x, Value y, Value acc) {
               return Value(arith::AddFOp::create(
                   b, loc, acc, arith::MulFOp::create(b, loc, x, y)));
             });
  if (failed(prod))
    return failure();
  SmallVector<Operand> ops = {{*prod, elem}};
  bool hasC = static_cast<bool>(n.input(2));
  if (hasC) {
    auto outShape = cast<RankedTensorType>(prod->getType()).getShape();
    auto s = broadcastShapes(outShape, n.in[2].shape());
    if (!s || ArrayRef<int64_t>(*s) != outShape || n.in[2].rank() > 2) {
      InFlightDiagnostic d = n.error() << "C " << describe(n.in[2])
                                       << " does not broadcast to the "
                                          "product";
      d.attachNote() << "expected C to broadcast to [M, N]";
      return d;
    }
    ops.push_back(n.in[2]);
  }
  float al = *alpha, be = *beta;
  FailureOr<Value> r = n.elementwise(
      ops, elem, [&](OpBuilder &b, Location loc, ValueRange a) -> Value {
        Value y = a[0];
        if (al != 1.0f)
          y = arith::MulFOp::create(b, loc, Node::scalarIn(b, loc, elem, al),
                                    y);
        if (hasC) {
          Value c = a[1];
          if (be != 1.0f)
            c = arith::MulFOp::create(b, loc, Node::scalarIn(b, loc, elem, be),
                                      c);
          y = arith::AddFOp::create(b, loc, y, c);
        }
        return y;
      });
  if (failed(r))
    return failure();
  return Results{{*r, elem}};
}

FailureOr<Results> lowerMatMulInteger(Node &n) {
  SmallVector<Type> types = {n.i8(), n.u8()};
  if (failed(n.arity(2, 4)) || failed(n.elemIn(0, types, "A")) ||
      failed(n.elemIn(1, types, "B")) || failed(n.sameElem(0, 2)) ||
      failed(n.sameElem(1, 3)))
    return failure();
  // Zero points: scalars (per-row / per-column zero points are not
  // supported).
  Value zps[2];
  for (size_t k = 0; k < 2; ++k) {
    if (!n.input(2 + k))
      continue;
    FailureOr<Value> z =
        scalarOperand(n, 2 + k, k == 0 ? "a_zero_point" : "b_zero_point");
    if (failed(z))
      return failure();
    zps[k] = *z;
  }
  Type ae = n.in[0].elem, be = n.in[1].elem;
  Type i32 = n.i32();
  // Subtract the zero points first (in int32), then multiply.
  auto shifted = [&](const Operand &o, Value zp) -> FailureOr<Operand> {
    SmallVector<Operand> ops = {o};
    if (zp)
      ops.push_back({zp, o.elem});
    Type e = o.elem;
    FailureOr<Value> v = n.elementwise(
        ops, i32, [&](OpBuilder &b, Location loc, ValueRange a) -> Value {
          Value x = convertScalar(b, loc, a[0], e, i32);
          if (a.size() > 1)
            x = arith::SubIOp::create(b, loc, x,
                                      convertScalar(b, loc, a[1], e, i32));
          return x;
        });
    if (failed(v))
      return failure();
    return Operand{*v, i32};
  };
  FailureOr<Operand> a = shifted(n.in[0], zps[0]), b = shifted(n.in[1], zps[1]);
  (void)ae;
  (void)be;
  if (failed(a) || failed(b))
    return failure();
  return matmulLike(
      n, *a, *b, i32,
      [](OpBuilder &bb, Location loc, Value x, Value y, Value acc) -> Value {
        return arith::AddIOp::create(bb, loc, acc,
                                     arith::MulIOp::create(bb, loc, x, y));
      });
}

/// The map of a per-axis (1-D) or per-tensor (scalar) quantisation
/// parameter, and the parameter reshaped accordingly.
FailureOr<std::pair<Value, AffineMap>>
quantParam(Node &n, size_t k, StringRef what, const Operand &x, int64_t axis) {
  const Operand &p = n.input(k);
  if (p.rank() == 0 || (p.rank() == 1 && p.shape()[0] == 1)) {
    return std::make_pair(n.reshape(p.value, {}),
                          AffineMap::get(x.rank(), 0, {}, n.ctx()));
  }
  auto ax = normalizeAxis(axis, x.rank());
  if (p.rank() != 1 || !ax || x.shape()[*ax] != p.shape()[0]) {
    InFlightDiagnostic d = n.error() << "input " << k << " (" << what << ") "
                                     << describe(p) << " does not match "
                                     << describe(x) << " along axis " << axis;
    d.attachNote() << "expected a scalar or a 1-D tensor as long as the "
                      "input's dimension 'axis'";
    return d;
  }
  return std::make_pair(
      p.value,
      AffineMap::get(x.rank(), 0, {getAffineDimExpr(*ax, n.ctx())}, n.ctx()));
}

/// The inputs of a (de)quantisation's linalg.generic and their maps: x
/// (input 0), its scale (input 1) and, when given, its zero point (input 2).
LogicalResult quantInputs(Node &n, int64_t axis, StringRef scaleName,
                          StringRef zeroPointName, SmallVectorImpl<Value> &ins,
                          SmallVectorImpl<AffineMap> &maps) {
  const Operand &x = n.in[0];
  auto scale = quantParam(n, 1, scaleName, x, axis);
  if (failed(scale))
    return failure();
  ins.assign({x.value, scale->first});
  maps.assign({n.b.getMultiDimIdentityMap(x.rank()), scale->second});
  if (n.input(2)) {
    auto zp = quantParam(n, 2, zeroPointName, x, axis);
    if (failed(zp))
      return failure();
    ins.push_back(zp->first);
    maps.push_back(zp->second);
  }
  return success();
}

FailureOr<Results> lowerQuantizeLinear(Node &n) {
  if (failed(n.arity(2, 3)) || failed(n.elemIn(0, {n.f32(), n.i32()}, "x")) ||
      failed(n.elemIn(1, {n.f32()}, "y_scale")) ||
      failed(n.elemIn(2, {n.i8(), n.u8()}, "y_zero_point")))
    return failure();
  FailureOr<int64_t> axis = n.intAttr("axis", 1);
  if (failed(axis))
    return failure();
  const Operand &x = n.in[0];
  Type out = n.input(2) ? n.in[2].elem : n.u8();
  SmallVector<Value> ins;
  SmallVector<AffineMap> maps;
  if (failed(quantInputs(n, *axis, "y_scale", "y_zero_point", ins, maps)))
    return failure();
  bool uns = isUnsigned(out);
  Type xe = x.elem;
  Value v = n.generic(ins, maps, x.shape(), out,
                      [&](OpBuilder &b, Location loc, ValueRange a) -> Value {
                        Type f = b.getF32Type();
                        Value xv = convertScalar(b, loc, a[0], xe, f);
                        Value q = arith::DivFOp::create(b, loc, xv, a[1]);
                        q = math::RoundEvenOp::create(b, loc, q);
                        if (a.size() > 2)
                          q = arith::AddFOp::create(
                              b, loc, q, convertScalar(b, loc, a[2], out, f));
                        return saturate(b, loc, q, uns ? 0 : -128,
                                        uns ? 255 : 127, out);
                      });
  return Results{{v, out}};
}

FailureOr<Results> lowerDequantizeLinear(Node &n) {
  if (failed(n.arity(2, 3)) ||
      failed(n.elemIn(0, {n.i8(), n.u8(), n.i32()}, "x")) ||
      failed(n.elemIn(1, {n.f32()}, "x_scale")) || failed(n.sameElem(0, 2)))
    return failure();
  FailureOr<int64_t> axis = n.intAttr("axis", 1);
  if (failed(axis))
    return failure();
  const Operand &x = n.in[0];
  SmallVector<Value> ins;
  SmallVector<AffineMap> maps;
  if (failed(quantInputs(n, *axis, "x_scale", "x_zero_point", ins, maps)))
    return failure();
  Type xe = x.elem;
  Value v = n.generic(ins, maps, x.shape(), n.f32(),
                      [&](OpBuilder &b, Location loc, ValueRange a) -> Value {
                        Type i32 = b.getI32Type();
                        Value q = convertScalar(b, loc, a[0], xe, i32);
                        if (a.size() > 2)
                          q = arith::SubIOp::create(
                              b, loc, q, convertScalar(b, loc, a[2], xe, i32));
                        Value f =
                            arith::SIToFPOp::create(b, loc, b.getF32Type(), q);
                        return arith::MulFOp::create(b, loc, f, a[1]);
                      });
  return Results{{v, n.f32()}};
}

FailureOr<Results> lowerDynamicQuantizeLinear(Node &n) {
  if (failed(n.arity(1, 1)) || failed(n.elemIn(0, {n.f32()}, "x")))
    return failure();
  const Operand &x = n.in[0];
  Type f = n.f32(), u8 = n.u8();
  SmallVector<bool> all(x.rank(), true);
  Value mx = n.reduce(x.value, all, f, n.scalar(f, 0),
                      [&](OpBuilder &b, Location loc, Value acc, Value v) {
                        return maxOf(b, loc, acc, v, f);
                      });
  Value mn = n.reduce(x.value, all, f, n.scalar(f, 0),
                      [&](OpBuilder &b, Location loc, Value acc, Value v) {
                        return minOf(b, loc, acc, v, f);
                      });
  // scale = (max(0, max x) - min(0, min x)) / 255
  Value scale = n.generic(
      {mx, mn}, {AffineMap::get(n.ctx()), AffineMap::get(n.ctx())}, {}, f,
      [&](OpBuilder &b, Location loc, ValueRange a) -> Value {
        Value d = arith::SubFOp::create(b, loc, a[0], a[1]);
        return arith::DivFOp::create(b, loc, d, Node::scalarIn(b, loc, f, 255));
      });
  // zero point = round(clip(0 - min / scale, 0, 255))
  Value zpf = n.generic(
      {mn, scale}, {AffineMap::get(n.ctx()), AffineMap::get(n.ctx())}, {}, f,
      [&](OpBuilder &b, Location loc, ValueRange a) -> Value {
        Value q = arith::DivFOp::create(b, loc, a[0], a[1]);
        q = arith::SubFOp::create(b, loc, Node::scalarIn(b, loc, f, 0), q);
        q = arith::MaximumFOp::create(b, loc, q, Node::scalarIn(b, loc, f, 0));
        q = arith::MinimumFOp::create(b, loc, q,
                                      Node::scalarIn(b, loc, f, 255));
        return math::RoundEvenOp::create(b, loc, q);
      });
  Value zp = n.generic({zpf}, {AffineMap::get(n.ctx())}, {}, u8,
                       [&](OpBuilder &b, Location loc, ValueRange a) -> Value {
                         return convertScalar(b, loc, a[0], f, u8);
                       });
  AffineMap scalarMap = AffineMap::get(x.rank(), 0, {}, n.ctx());
  Value y = n.generic(
      {x.value, scale, zpf},
      {n.b.getMultiDimIdentityMap(x.rank()), scalarMap, scalarMap}, x.shape(),
      u8, [&](OpBuilder &b, Location loc, ValueRange a) -> Value {
        Value q = arith::DivFOp::create(b, loc, a[0], a[1]);
        q = math::RoundEvenOp::create(b, loc, q);
        q = arith::AddFOp::create(b, loc, q, a[2]);
        return saturate(b, loc, q, 0, 255, u8);
      });
  return Results{{y, u8}, {scale, f}, {zp, u8}};
}

} // namespace

/// Matrix products and linear quantisation.
ArrayRef<Lowering> mlir::bitnet::onnx::matmulLowerings() {
  static const Lowering lowerings[] = {
      {"MatMul", {9, 13}, lowerMatMul},
      {"Gemm", {11, 13}, lowerGemm},
      {"MatMulInteger", {10}, lowerMatMulInteger},
      {"QuantizeLinear", {10, 13}, lowerQuantizeLinear},
      {"DequantizeLinear", {10, 13}, lowerDequantizeLinear, kFoldable},
      {"DynamicQuantizeLinear", {11}, lowerDynamicQuantizeLinear},
  };
  return lowerings;
}
