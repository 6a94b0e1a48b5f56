//===- ONNXReduction.cpp - ONNX reductions and softmax --------------------===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// ReduceMean, ReduceMax, ReduceMin, ReduceSum, ReduceProd, ReduceL1,
// ReduceL2, ReduceSumSquare, ReduceLogSum, ReduceLogSumExp, Softmax and
// LogSoftmax.
//
//===----------------------------------------------------------------------===//

#include "ONNXNode.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"

using namespace mlir;
using namespace mlir::bitnet::onnx;

namespace {

/// Reduction axes of the Reduce* operations (attribute `axes` before
/// opset 18, an input of ReduceSum from 13).
FailureOr<SmallVector<bool>> reductionAxes(Node &n) {
  FailureOr<std::optional<SmallVector<int64_t>>> axes =
      std::optional<SmallVector<int64_t>>();
  if (n.opType == "ReduceSum" && n.version >= 13) {
    // ReduceSum-13 takes the axes as an optional constant input; none (or
    // an empty list) reduces everything unless noop_with_empty_axes is set.
    FailureOr<int64_t> noop = n.intAttr("noop_with_empty_axes", 0);
    if (failed(noop))
      return failure();
    SmallVector<int64_t> list;
    if (n.input(1)) {
      FailureOr<SmallVector<int64_t>> a = n.constInts(1, "axes");
      if (failed(a))
        return failure();
      list = *a;
    }
    if (list.empty() && *noop)
      return SmallVector<bool>(n.in[0].rank(), false);
    if (!list.empty())
      axes = std::optional<SmallVector<int64_t>>(list);
  } else {
    axes = n.intsAttr("axes");
  }
  if (failed(axes))
    return failure();
  int64_t rank = n.in[0].rank();
  // No axes, or an empty list, reduces every dimension (ONNX's shape
  // inference reads an empty `axes` attribute so too).
  bool all = !*axes || (*axes)->empty();
  SmallVector<bool> reduce(rank, all);
  if (!all) {
    for (int64_t a : **axes) {
      auto k = normalizeAxis(a, rank);
      if (!k) {
        InFlightDiagnostic d = n.error()
                               << "axis " << a << " is out of range for "
                               << describe(n.in[0]);
        d.attachNote() << "expected axes in [-rank, rank)";
        return d;
      }
      reduce[*k] = true;
    }
  }
  return reduce;
}

FailureOr<Results> lowerReduce(Node &n) {
  StringRef op = n.opType;
  bool mean = op == "ReduceMean";
  bool isMin = op == "ReduceMin", isMax = op == "ReduceMax";
  bool prod = op == "ReduceProd";
  bool l1 = op == "ReduceL1", l2 = op == "ReduceL2";
  bool squares = l2 || op == "ReduceSumSquare";
  bool logSum = op == "ReduceLogSum", logSumExp = op == "ReduceLogSumExp";
  // The reductions whose result goes through a division, sqrt, log or exp
  // take floats only.
  bool floatOnly = mean || l2 || logSum || logSumExp;
  bool axesInput = op == "ReduceSum" && n.version >= 13;
  if (failed(n.arity(1, axesInput ? 2 : 1)) ||
      failed(n.elemIn(0, floatOnly ? n.floats() : n.numbers(), "data")))
    return failure();
  FailureOr<SmallVector<bool>> reduceDims = reductionAxes(n);
  FailureOr<int64_t> keep = n.intAttr("keepdims", 1);
  if (failed(reduceDims) || failed(keep))
    return failure();
  Type elem = n.in[0].elem;
  bool isFloat = isa<FloatType>(elem);
  int64_t count = 1;
  // The result's shape, and the shape with the reduced dimensions kept as 1
  // (to broadcast a partial result back over the input).
  SmallVector<int64_t> keptShape, onesShape;
  for (int64_t k = 0; k < n.in[0].rank(); ++k) {
    if ((*reduceDims)[k]) {
      count *= n.in[0].shape()[k];
      if (*keep)
        keptShape.push_back(1);
      onesShape.push_back(1);
    } else {
      keptShape.push_back(n.in[0].shape()[k]);
      onesShape.push_back(n.in[0].shape()[k]);
    }
  }
  auto maxComb = [&](OpBuilder &b, Location loc, Value acc, Value v) {
    return maxOf(b, loc, acc, v, elem);
  };
  Value x = n.in[0].value;
  // log(sum(exp(x - m))) + m with m the largest element, so that exp cannot
  // overflow; an infinite (or NaN) maximum shifts by 0 instead, which gives
  // the unshifted result.
  Value shift;
  if (logSumExp) {
    Value mx =
        n.reduce(x, *reduceDims, elem, n.scalar(elem, -INFINITY), maxComb);
    FailureOr<Value> s = n.elementwise(
        {{mx, elem}}, elem,
        [&](OpBuilder &b, Location loc, ValueRange a) -> Value {
          Value finite = arith::CmpFOp::create(
              b, loc, arith::CmpFPredicate::OLT,
              math::AbsFOp::create(b, loc, a[0]),
              Node::scalarIn(b, loc, elem, INFINITY));
          return arith::SelectOp::create(b, loc, finite, a[0],
                                         Node::scalarIn(b, loc, elem, 0));
        });
    if (failed(s))
      return failure();
    shift = *s;
    FailureOr<Value> e = n.elementwise(
        {n.in[0], {n.reshape(shift, onesShape), elem}}, elem,
        [&](OpBuilder &b, Location loc, ValueRange a) -> Value {
          return math::ExpOp::create(
              b, loc, arith::SubFOp::create(b, loc, a[0], a[1]));
        });
    if (failed(e))
      return failure();
    x = *e;
  }
  Value init;
  if (isMin || isMax) {
    if (isFloat) {
      init = n.scalar(elem, isMin ? INFINITY : -INFINITY);
    } else {
      unsigned w = elem.getIntOrFloatBitWidth();
      APInt bound =
          isUnsigned(elem)
              ? (isMin ? APInt::getMaxValue(w) : APInt::getMinValue(w))
              : (isMin ? APInt::getSignedMaxValue(w)
                       : APInt::getSignedMinValue(w));
      Type s = signlessType(elem);
      init = arith::ConstantOp::create(n.b, n.loc, s,
                                       n.b.getIntegerAttr(s, bound));
    }
  } else {
    init = n.scalar(elem, prod ? 1 : 0);
  }
  Value r = n.reduce(
      x, *reduceDims, elem, init,
      [&](OpBuilder &b, Location loc, Value acc, Value v) -> Value {
        if (isMin)
          return minOf(b, loc, acc, v, elem);
        if (isMax)
          return maxOf(b, loc, acc, v, elem);
        if (prod)
          return isFloat ? Value(arith::MulFOp::create(b, loc, acc, v))
                         : Value(arith::MulIOp::create(b, loc, acc, v));
        if (l1) {
          if (isFloat)
            v = math::AbsFOp::create(b, loc, v);
          else if (!isUnsigned(elem))
            v = math::AbsIOp::create(b, loc, v);
        } else if (squares) {
          v = isFloat ? Value(arith::MulFOp::create(b, loc, v, v))
                      : Value(arith::MulIOp::create(b, loc, v, v));
        }
        return isFloat ? Value(arith::AddFOp::create(b, loc, acc, v))
                       : Value(arith::AddIOp::create(b, loc, acc, v));
      });
  if (mean || l2 || logSum || logSumExp) {
    SmallVector<Operand> ops = {{r, elem}};
    if (logSumExp)
      ops.push_back({shift, elem});
    double c = double(count);
    FailureOr<Value> m = n.elementwise(
        ops, elem, [&](OpBuilder &b, Location loc, ValueRange a) -> Value {
          if (mean)
            return arith::DivFOp::create(b, loc, a[0],
                                         Node::scalarIn(b, loc, elem, c));
          if (l2)
            return math::SqrtOp::create(b, loc, a[0]);
          Value lg = math::LogOp::create(b, loc, a[0]);
          if (logSumExp)
            return arith::AddFOp::create(b, loc, lg, a[1]);
          return lg;
        });
    if (failed(m))
      return failure();
    r = *m;
  }
  return Results{{n.reshape(r, keptShape), elem}};
}

FailureOr<Results> lowerSoftmax(Node &n) {
  if (failed(n.arity(1, 1)) || failed(n.elemIn(0, n.floats(), "input")))
    return failure();
  FailureOr<int64_t> axisAttr = n.intAttr("axis", -1);
  if (failed(axisAttr))
    return failure();
  int64_t rank = n.in[0].rank();
  auto axis = normalizeAxis(*axisAttr, rank);
  if (!axis) {
    InFlightDiagnostic d = n.error()
                           << "axis " << *axisAttr << " is out of range for "
                           << describe(n.in[0]);
    d.attachNote() << "expected an axis in [-rank, rank)";
    return d;
  }
  Type elem = n.in[0].elem;
  SmallVector<bool> dims(rank, false);
  dims[*axis] = true;
  SmallVector<int64_t> kept(n.in[0].shape());
  kept[*axis] = 1;
  Value mx = n.reduce(n.in[0].value, dims, elem, n.scalar(elem, -INFINITY),
                      [&](OpBuilder &b, Location loc, Value acc, Value v) {
                        return maxOf(b, loc, acc, v, elem);
                      });
  mx = n.reshape(mx, kept);
  FailureOr<Value> e =
      n.elementwise({n.in[0], {mx, elem}}, elem,
                    [&](OpBuilder &b, Location loc, ValueRange a) -> Value {
                      return math::ExpOp::create(
                          b, loc, arith::SubFOp::create(b, loc, a[0], a[1]));
                    });
  if (failed(e))
    return failure();
  Value sum = n.reduce(*e, dims, elem, n.scalar(elem, 0),
                       [&](OpBuilder &b, Location loc, Value acc, Value v) {
                         return Value(arith::AddFOp::create(b, loc, acc, v));
                       });
  sum = n.reshape(sum, kept);
  if (n.opType == "LogSoftmax") {
    // x - max - log(sum(exp(x - max)))
    FailureOr<Value> r =
        n.elementwise({n.in[0], {mx, elem}, {sum, elem}}, elem,
                      [&](OpBuilder &b, Location loc, ValueRange a) -> Value {
                        Value d = arith::SubFOp::create(b, loc, a[0], a[1]);
                        return arith::SubFOp::create(
                            b, loc, d, math::LogOp::create(b, loc, a[2]));
                      });
    if (failed(r))
      return failure();
    return Results{{*r, elem}};
  }
  FailureOr<Value> r =
      n.elementwise({{*e, elem}, {sum, elem}}, elem,
                    [&](OpBuilder &b, Location loc, ValueRange a) -> Value {
                      return arith::DivFOp::create(b, loc, a[0], a[1]);
                    });
  if (failed(r))
    return failure();
  return Results{{*r, elem}};
}

} // namespace

/// Reductions over axes and (Log)Softmax.
ArrayRef<Lowering> mlir::bitnet::onnx::reductionLowerings() {
  static const Lowering lowerings[] = {
      {"ReduceMean", {1, 11, 13}, lowerReduce, kFoldable},
      {"ReduceMax", {1, 11, 12, 13}, lowerReduce, kFoldable},
      {"ReduceMin", {1, 11, 12, 13}, lowerReduce},
      {"ReduceSum", {1, 11, 13}, lowerReduce},
      {"ReduceProd", {1, 11, 13}, lowerReduce},
      {"ReduceL1", {1, 11, 13}, lowerReduce},
      {"ReduceL2", {1, 11, 13}, lowerReduce},
      {"ReduceSumSquare", {1, 11, 13}, lowerReduce},
      {"ReduceLogSum", {1, 11, 13}, lowerReduce},
      {"ReduceLogSumExp", {1, 11, 13}, lowerReduce},
      {"Softmax", {13}, lowerSoftmax},
      {"LogSoftmax", {13}, lowerSoftmax},
  };
  return lowerings;
}
