//===- ONNXActivation.cpp - Activation and transcendental ONNX operations -===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// The activations (Elu, Selu, Celu, LeakyRelu, PRelu, HardSigmoid,
// HardSwish, Softplus, Softsign, Shrink, ThresholdedRelu, Hardmax), Erf and
// the inverse and hyperbolic trigonometric functions: one linalg.generic
// each.
//
// f16 inputs are computed in f32 and rounded once at the end. The functions
// the CPU pipeline has no LLVM lowering for (math.erf, math.acosh, ...) are
// built here from ones it has: inverse hyperbolic functions from log and
// sqrt in f64, erf from MLIR's f32 polynomial approximation.
//
//===----------------------------------------------------------------------===//

#include "ONNXNode.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Math/Transforms/Approximation.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#include <cmath>

using namespace mlir;
using namespace mlir::bitnet::onnx;

namespace {

using ScalarFn = function_ref<Value(OpBuilder &, Location, Value, Type)>;

/// `fn(x, work)` elementwise over float input 0, computed in `work`: f32 for
/// f16 inputs (or for all inputs when `work` is given), the input's type
/// otherwise.
FailureOr<Results> mapFloat(Node &n, ScalarFn fn, Type work = {},
                            ArrayRef<Type> types = {}) {
  SmallVector<Type> allowed =
      types.empty() ? n.floats() : SmallVector<Type>(types);
  if (failed(n.arity(1, 1)) || failed(n.elemIn(0, allowed, "X")))
    return failure();
  Type elem = n.in[0].elem;
  Type w = work ? work : elem.isF16() ? n.f32() : elem;
  FailureOr<Value> r = n.elementwise(
      n.in, elem, [&](OpBuilder &b, Location loc, ValueRange a) -> Value {
        Value x = convertScalar(b, loc, a[0], elem, w);
        return convertScalar(b, loc, fn(b, loc, x, w), w, elem);
      });
  if (failed(r))
    return failure();
  return Results{{*r, elem}};
}

Value cst(OpBuilder &b, Location loc, Type t, double v) {
  return Node::scalarIn(b, loc, t, v);
}
Value add(OpBuilder &b, Location loc, Value x, Value y) {
  return arith::AddFOp::create(b, loc, x, y);
}
Value sub(OpBuilder &b, Location loc, Value x, Value y) {
  return arith::SubFOp::create(b, loc, x, y);
}
Value mul(OpBuilder &b, Location loc, Value x, Value y) {
  return arith::MulFOp::create(b, loc, x, y);
}
Value lessThan(OpBuilder &b, Location loc, Value x, Value y) {
  return arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OLT, x, y);
}
Value select(OpBuilder &b, Location loc, Value c, Value x, Value y) {
  return arith::SelectOp::create(b, loc, c, x, y);
}
/// max(x, y) and min(x, y), NaN propagating.
Value fmax(OpBuilder &b, Location loc, Value x, Value y) {
  return arith::MaximumFOp::create(b, loc, x, y);
}
Value fmin(OpBuilder &b, Location loc, Value x, Value y) {
  return arith::MinimumFOp::create(b, loc, x, y);
}

FailureOr<float> attrOr(Node &n, StringRef name, float dflt) {
  return n.floatAttr(name, dflt);
}

//===----------------------------------------------------------------------===//
// Transcendental functions
//===----------------------------------------------------------------------===//

/// Acos, Asin, Atan, Tan, Cosh, Sinh: libm through LLVM intrinsics.
FailureOr<Results> lowerTrig(Node &n) {
  StringRef op = n.opType;
  return mapFloat(n, [&](OpBuilder &b, Location loc, Value x, Type) -> Value {
    if (op == "Acos")
      return math::AcosOp::create(b, loc, x);
    if (op == "Asin")
      return math::AsinOp::create(b, loc, x);
    if (op == "Atan")
      return math::AtanOp::create(b, loc, x);
    if (op == "Tan")
      return math::TanOp::create(b, loc, x);
    if (op == "Cosh")
      return math::CoshOp::create(b, loc, x);
    return math::SinhOp::create(b, loc, x);
  });
}

/// Acosh, Asinh, Atanh from log and sqrt, computed in f64 (f32 and f16
/// results are then exact to their precision). Beyond 2^28, x + sqrt(x^2 +-
/// 1) is 2x in f64, so log(x) + log(2) is used rather than overflowing x^2.
FailureOr<Results> lowerInverseHyperbolic(Node &n) {
  StringRef op = n.opType;
  return mapFloat(
      n,
      [&](OpBuilder &b, Location loc, Value x, Type t) -> Value {
        Value one = cst(b, loc, t, 1);
        if (op == "Atanh") {
          // 0.5 * log((1 + x) / (1 - x)); +-inf at +-1, NaN beyond.
          Value q = arith::DivFOp::create(b, loc, add(b, loc, one, x),
                                          sub(b, loc, one, x));
          return mul(b, loc, cst(b, loc, t, 0.5),
                     math::LogOp::create(b, loc, q));
        }
        Value ax = op == "Asinh" ? Value(math::AbsFOp::create(b, loc, x)) : x;
        Value big = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OGT,
                                          ax, cst(b, loc, t, 268435456.0));
        Value root;
        if (op == "Asinh")
          root = math::SqrtOp::create(
              b, loc, add(b, loc, mul(b, loc, ax, ax), one));
        else // sqrt((x - 1)(x + 1)): exact near 1, NaN below it.
          root = math::SqrtOp::create(
              b, loc,
              mul(b, loc, sub(b, loc, ax, one), add(b, loc, ax, one)));
        Value small = math::LogOp::create(b, loc, add(b, loc, ax, root));
        Value large = add(b, loc, math::LogOp::create(b, loc, ax),
                          cst(b, loc, t, M_LN2));
        Value r = select(b, loc, big, large, small);
        if (op == "Asinh")
          r = math::CopySignOp::create(b, loc, r, x);
        return r;
      },
      n.f64());
}

/// Erf: f32 (f16 through f32) with MLIR's polynomial approximation, whose
/// error is a few f32 ulps; double precision has no such expansion here.
FailureOr<Results> lowerErf(Node &n) {
  if (n.in.size() == 1 && n.in[0] && n.in[0].elem.isF64()) {
    InFlightDiagnostic d = n.error() << "Erf of double is not supported";
    d.attachNote() << "expected float or float16 input";
    return d;
  }
  FailureOr<Results> r = mapFloat(
      n,
      [&](OpBuilder &b, Location loc, Value x, Type) -> Value {
        return math::ErfOp::create(b, loc, x);
      },
      {}, {n.f32(), n.f16()});
  if (failed(r))
    return failure();
  // Expand the math.erf just built in place.
  SmallVector<Operation *> erfs;
  (*r)[0].value.getDefiningOp()->walk(
      [&](math::ErfOp op) { erfs.push_back(op); });
  RewritePatternSet patterns(n.ctx());
  patterns.add<math::ErfPolynomialApproximation>(n.ctx());
  GreedyRewriteConfig config;
  config.setStrictness(GreedyRewriteStrictness::ExistingAndNewOps);
  (void)applyOpPatternsGreedily(erfs, std::move(patterns), config);
  bool left = false;
  (*r)[0].value.getDefiningOp()->walk([&](math::ErfOp) { left = true; });
  if (left)
    return n.error() << "Erf could not be expanded (not supported)";
  return r;
}

//===----------------------------------------------------------------------===//
// Activations
//===----------------------------------------------------------------------===//

FailureOr<Results> lowerElu(Node &n) {
  FailureOr<float> alpha = attrOr(n, "alpha", 1.0f);
  if (failed(alpha))
    return failure();
  return mapFloat(n, [&](OpBuilder &b, Location loc, Value x, Type t) -> Value {
    Value em1 =
        sub(b, loc, math::ExpOp::create(b, loc, x), cst(b, loc, t, 1));
    return select(b, loc, lessThan(b, loc, x, cst(b, loc, t, 0)),
                  mul(b, loc, cst(b, loc, t, *alpha), em1), x);
  });
}

FailureOr<Results> lowerSelu(Node &n) {
  FailureOr<float> alpha = attrOr(n, "alpha", 1.67326319217681884765625f);
  FailureOr<float> gamma = attrOr(n, "gamma", 1.05070102214813232421875f);
  if (failed(alpha) || failed(gamma))
    return failure();
  return mapFloat(n, [&](OpBuilder &b, Location loc, Value x, Type t) -> Value {
    Value a = cst(b, loc, t, *alpha);
    Value neg = sub(b, loc, mul(b, loc, a, math::ExpOp::create(b, loc, x)), a);
    Value isNeg = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OLE, x,
                                        cst(b, loc, t, 0));
    return mul(b, loc, cst(b, loc, t, *gamma), select(b, loc, isNeg, neg, x));
  });
}

FailureOr<Results> lowerCelu(Node &n) {
  FailureOr<float> alpha = attrOr(n, "alpha", 1.0f);
  if (failed(alpha))
    return failure();
  return mapFloat(
      n,
      [&](OpBuilder &b, Location loc, Value x, Type t) -> Value {
        Value a = cst(b, loc, t, *alpha), zero = cst(b, loc, t, 0);
        Value e = math::ExpOp::create(b, loc,
                                      arith::DivFOp::create(b, loc, x, a));
        Value neg = mul(b, loc, a, sub(b, loc, e, cst(b, loc, t, 1)));
        return add(b, loc, fmax(b, loc, zero, x), fmin(b, loc, zero, neg));
      },
      {}, {n.f32()});
}

FailureOr<Results> lowerLeakyRelu(Node &n) {
  FailureOr<float> alpha = attrOr(n, "alpha", 0.01f);
  if (failed(alpha))
    return failure();
  return mapFloat(n, [&](OpBuilder &b, Location loc, Value x, Type t) -> Value {
    return select(b, loc, lessThan(b, loc, x, cst(b, loc, t, 0)),
                  mul(b, loc, cst(b, loc, t, *alpha), x), x);
  });
}

/// HardSigmoid, and HardSwish (x times HardSigmoid with alpha 1/6).
FailureOr<Results> lowerHardSigmoid(Node &n) {
  bool swish = n.opType == "HardSwish";
  FailureOr<float> alpha = attrOr(n, "alpha", swish ? 1.0f / 6 : 0.2f);
  FailureOr<float> beta = attrOr(n, "beta", 0.5f);
  if (failed(alpha) || failed(beta))
    return failure();
  return mapFloat(n, [&](OpBuilder &b, Location loc, Value x, Type t) -> Value {
    Value y = add(b, loc, mul(b, loc, cst(b, loc, t, *alpha), x),
                  cst(b, loc, t, *beta));
    y = fmax(b, loc, cst(b, loc, t, 0), fmin(b, loc, cst(b, loc, t, 1), y));
    return swish ? mul(b, loc, x, y) : y;
  });
}

/// Softplus as max(x, 0) + log(1 + exp(-|x|)): log(exp(x) + 1) without its
/// overflow for large x.
FailureOr<Results> lowerSoftplus(Node &n) {
  return mapFloat(n, [&](OpBuilder &b, Location loc, Value x, Type t) -> Value {
    Value zero = cst(b, loc, t, 0);
    Value e = math::ExpOp::create(
        b, loc, arith::NegFOp::create(b, loc, math::AbsFOp::create(b, loc, x)));
    Value l = math::LogOp::create(b, loc, add(b, loc, cst(b, loc, t, 1), e));
    return add(b, loc, fmax(b, loc, x, zero), l);
  });
}

FailureOr<Results> lowerSoftsign(Node &n) {
  return mapFloat(n, [&](OpBuilder &b, Location loc, Value x, Type t) -> Value {
    return arith::DivFOp::create(
        b, loc, x,
        add(b, loc, cst(b, loc, t, 1), math::AbsFOp::create(b, loc, x)));
  });
}

FailureOr<Results> lowerThresholdedRelu(Node &n) {
  FailureOr<float> alpha = attrOr(n, "alpha", 1.0f);
  if (failed(alpha))
    return failure();
  return mapFloat(n, [&](OpBuilder &b, Location loc, Value x, Type t) -> Value {
    return select(b, loc, lessThan(b, loc, cst(b, loc, t, *alpha), x), x,
                  cst(b, loc, t, 0));
  });
}

/// Shrink: x + bias below -lambd, x - bias above lambd, else 0. Integer
/// inputs are computed in double and truncated back, as the reference does.
FailureOr<Results> lowerShrink(Node &n) {
  FailureOr<float> lambd = attrOr(n, "lambd", 0.5f);
  FailureOr<float> bias = attrOr(n, "bias", 0.0f);
  if (failed(lambd) || failed(bias))
    return failure();
  Type work;
  if (n.in.size() == 1 && n.in[0] && !isa<FloatType>(n.in[0].elem))
    work = n.f64();
  return mapFloat(
      n,
      [&](OpBuilder &b, Location loc, Value x, Type t) -> Value {
        Value l = cst(b, loc, t, *lambd), bs = cst(b, loc, t, *bias);
        Value below = lessThan(b, loc, x, arith::NegFOp::create(b, loc, l));
        Value above = lessThan(b, loc, l, x);
        Value r = select(b, loc, above, sub(b, loc, x, bs), cst(b, loc, t, 0));
        return select(b, loc, below, add(b, loc, x, bs), r);
      },
      work, n.numbers());
}

/// PRelu: x < 0 ? slope * x : x, the slope broadcast to x's shape.
FailureOr<Results> lowerPRelu(Node &n) {
  SmallVector<Type> types = n.floats();
  if (n.version >= 9)
    types.append({n.i32(), n.i64(), n.u32(), n.u64()});
  if (failed(n.arity(2, 2)) || failed(n.elemIn(0, types, "X")) ||
      failed(n.sameElem(0, 1)))
    return failure();
  const Operand &x = n.in[0], &slope = n.in[1];
  auto shape = broadcastShapes(x.shape(), slope.shape());
  if (!shape || ArrayRef<int64_t>(*shape) != x.shape()) {
    InFlightDiagnostic d = n.error() << "slope " << describe(slope)
                                     << " does not broadcast to X "
                                     << describe(x);
    d.attachNote() << "expected a slope that broadcasts to X's shape";
    return d;
  }
  Type elem = x.elem;
  bool isFloat = isa<FloatType>(elem);
  FailureOr<Value> r = n.elementwise(
      n.in, elem, [&](OpBuilder &b, Location loc, ValueRange a) -> Value {
        Value v = a[0], s = a[1];
        Value zero = Node::scalarIn(b, loc, elem, 0);
        if (isFloat)
          return select(b, loc, lessThan(b, loc, v, zero), mul(b, loc, s, v),
                        v);
        if (isUnsigned(elem))
          return v;
        Value neg =
            arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt, v, zero);
        return select(b, loc, neg, arith::MulIOp::create(b, loc, s, v), v);
      });
  if (failed(r))
    return failure();
  return Results{{*r, elem}};
}


/// Hardmax: 1 at the first maximum along the axis (a NaN counts as the
/// maximum, as numpy's argmax has it), 0 elsewhere. Before version 13 the
/// input is seen as a matrix [d0 * ... * d(axis-1), d(axis) * ... * dn] and
/// the maximum taken along its rows.
FailureOr<Results> lowerHardmax(Node &n) {
  if (failed(n.arity(1, 1)) || failed(n.elemIn(0, n.floats(), "input")))
    return failure();
  bool coerce = n.version < 13;
  FailureOr<int64_t> axisAttr = n.intAttr("axis", coerce ? 1 : -1);
  if (failed(axisAttr))
    return failure();
  const Operand &in = n.in[0];
  int64_t rank = in.rank();
  // Version 13 takes the axis in [-r, r); the older ones also accept r.
  std::optional<int64_t> axis =
      coerce && *axisAttr == rank ? std::optional<int64_t>(rank)
                                  : normalizeAxis(*axisAttr, rank);
  if (rank == 0 || !axis) {
    InFlightDiagnostic d = n.error() << "axis " << *axisAttr
                                     << " is out of range for "
                                     << describe(in);
    d.attachNote() << "expected an axis in [" << -rank << ", " << rank << ")";
    return d;
  }
  Type elem = in.elem;
  Value x = in.value;
  SmallVector<int64_t> shape(in.shape());
  if (coerce) {
    int64_t outer = 1, inner = 1;
    for (int64_t k = 0; k < rank; ++k)
      (k < *axis ? outer : inner) *= shape[k];
    shape = {outer, inner};
    x = n.reshape(x, shape);
    axis = 1;
  }
  int64_t r = shape.size();
  MLIRContext *ctx = n.ctx();
  Type st = signlessType(elem);
  Type idx = n.i64();

  // The maximum and its first index along the axis.
  SmallVector<int64_t> keptShape;
  SmallVector<AffineExpr> keptExprs;
  SmallVector<utils::IteratorType> iters;
  for (int64_t k = 0; k < r; ++k) {
    if (k == *axis) {
      iters.push_back(utils::IteratorType::reduction);
      continue;
    }
    iters.push_back(utils::IteratorType::parallel);
    keptShape.push_back(shape[k]);
    keptExprs.push_back(getAffineDimExpr(k, ctx));
  }
  Value maxInit = n.filled(keptShape, elem, n.scalar(elem, -INFINITY));
  Value idxInit = n.filled(keptShape, idx, n.scalar(idx, 0));
  AffineMap keptMap = AffineMap::get(r, 0, keptExprs, ctx);
  int64_t ax = *axis;
  auto arg = linalg::GenericOp::create(
      n.b, n.loc, TypeRange{maxInit.getType(), idxInit.getType()},
      ValueRange{x}, ValueRange{maxInit, idxInit},
      ArrayRef<AffineMap>{n.b.getMultiDimIdentityMap(r), keptMap, keptMap},
      iters, [&](OpBuilder &b, Location loc, ValueRange a) {
        Value v = a[0], cur = a[1], curIdx = a[2];
        Value k = arith::IndexCastOp::create(
            b, loc, idx, linalg::IndexOp::create(b, loc, ax));
        Value curNaN =
            arith::CmpFOp::create(b, loc, arith::CmpFPredicate::UNO, cur, cur);
        Value beats = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::UGT,
                                            v, cur); // greater, or v NaN
        Value take = arith::AndIOp::create(
            b, loc, beats,
            arith::XOrIOp::create(b, loc, curNaN,
                                  Node::scalarIn(b, loc, b.getI1Type(), 1)));
        linalg::YieldOp::create(
            b, loc,
            ValueRange{select(b, loc, take, v, cur),
                       select(b, loc, take, k, curIdx)});
      });
  Value argmax = arg.getResult(1);

  // One-hot along the axis.
  Value init = n.empty(shape, elem);
  auto hot = linalg::GenericOp::create(
      n.b, n.loc, TypeRange{init.getType()}, ValueRange{argmax},
      ValueRange{init},
      ArrayRef<AffineMap>{keptMap, n.b.getMultiDimIdentityMap(r)},
      SmallVector<utils::IteratorType>(r, utils::IteratorType::parallel),
      [&](OpBuilder &b, Location loc, ValueRange a) {
        Value k = arith::IndexCastOp::create(
            b, loc, idx, linalg::IndexOp::create(b, loc, ax));
        Value is =
            arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, k, a[0]);
        linalg::YieldOp::create(
            b, loc,
            select(b, loc, is, Node::scalarIn(b, loc, st, 1),
                   Node::scalarIn(b, loc, st, 0)));
      });
  Value out = hot.getResult(0);
  if (coerce)
    out = n.reshape(out, in.shape());
  return Results{{out, elem}};
}
} // namespace

/// Activations, Erf, inverse and hyperbolic trigonometric functions.
ArrayRef<Lowering> mlir::bitnet::onnx::activationLowerings() {
  static const Lowering lowerings[] = {
      {"Acos", {7}, lowerTrig},
      {"Asin", {7}, lowerTrig},
      {"Atan", {7}, lowerTrig},
      {"Tan", {7}, lowerTrig},
      {"Cosh", {9}, lowerTrig},
      {"Sinh", {9}, lowerTrig},
      {"Acosh", {9}, lowerInverseHyperbolic},
      {"Asinh", {9}, lowerInverseHyperbolic},
      {"Atanh", {9}, lowerInverseHyperbolic},
      {"Erf", {9, 13}, lowerErf},
      {"Elu", {6}, lowerElu},
      {"Selu", {6}, lowerSelu},
      {"Celu", {12}, lowerCelu},
      {"LeakyRelu", {6, 16}, lowerLeakyRelu},
      {"HardSigmoid", {6}, lowerHardSigmoid},
      {"HardSwish", {14}, lowerHardSigmoid},
      {"Softplus", {1}, lowerSoftplus},
      {"Softsign", {1}, lowerSoftsign},
      {"Shrink", {9}, lowerShrink},
      {"ThresholdedRelu", {10}, lowerThresholdedRelu},
      {"PRelu", {7, 9, 16}, lowerPRelu},
      {"Hardmax", {1, 11, 13}, lowerHardmax},
  };
  return lowerings;
}
