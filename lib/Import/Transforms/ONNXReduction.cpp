//===- ONNXReduction.cpp - ONNX reductions and softmax --------------------===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// ReduceMean, ReduceMax, ReduceMin, ReduceSum, Softmax and LogSoftmax.
//
//===----------------------------------------------------------------------===//

#include "ONNXNode.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"

using namespace mlir;
using namespace mlir::bitnet::onnx;

namespace {

/// Reduction axes of ReduceMean/ReduceMax (attribute `axes`, opsets < 18).
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
  SmallVector<bool> reduce(rank, !*axes);
  if (*axes) {
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
  bool mean = n.opType == "ReduceMean";
  bool sum = n.opType == "ReduceSum";
  bool isMin = n.opType == "ReduceMin";
  bool axesInput = sum && n.version >= 13;
  if (failed(n.arity(1, axesInput ? 2 : 1)) ||
      failed(n.elemIn(0, mean ? n.floats() : n.numbers(), "data")))
    return failure();
  FailureOr<SmallVector<bool>> reduceDims = reductionAxes(n);
  FailureOr<int64_t> keep = n.intAttr("keepdims", 1);
  if (failed(reduceDims) || failed(keep))
    return failure();
  Type elem = n.in[0].elem;
  int64_t count = 1;
  SmallVector<int64_t> keptShape;
  for (int64_t k = 0; k < n.in[0].rank(); ++k) {
    if ((*reduceDims)[k]) {
      count *= n.in[0].shape()[k];
      if (*keep)
        keptShape.push_back(1);
    } else {
      keptShape.push_back(n.in[0].shape()[k]);
    }
  }
  Value init;
  if (mean || sum) {
    init = n.scalar(elem, 0);
  } else if (isa<FloatType>(elem)) {
    init = n.scalar(elem, isMin ? INFINITY : -INFINITY);
  } else {
    unsigned w = elem.getIntOrFloatBitWidth();
    APInt bound = isUnsigned(elem)
                      ? (isMin ? APInt::getMaxValue(w) : APInt::getMinValue(w))
                      : (isMin ? APInt::getSignedMaxValue(w)
                               : APInt::getSignedMinValue(w));
    Type s = signlessType(elem);
    init =
        arith::ConstantOp::create(n.b, n.loc, s, n.b.getIntegerAttr(s, bound));
  }
  bool isFloat = isa<FloatType>(elem);
  Value r =
      n.reduce(n.in[0].value, *reduceDims, elem, init,
               [&](OpBuilder &b, Location loc, Value acc, Value v) {
                 if (mean || sum)
                   return isFloat
                              ? Value(arith::AddFOp::create(b, loc, acc, v))
                              : Value(arith::AddIOp::create(b, loc, acc, v));
                 if (isMin)
                   return minOf(b, loc, acc, v, elem);
                 return maxOf(b, loc, acc, v, elem);
               });
  if (mean) {
    double c = double(count);
    Operand o{r, elem};
    FailureOr<Value> m = n.elementwise(
        {o}, elem, [&](OpBuilder &b, Location loc, ValueRange a) -> Value {
          return arith::DivFOp::create(b, loc, a[0],
                                       Node::scalarIn(b, loc, elem, c));
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
      {"ReduceMean", {11, 13}, lowerReduce, kFoldable},
      {"ReduceMax", {11, 12, 13}, lowerReduce, kFoldable},
      {"ReduceMin", {11, 12, 13}, lowerReduce},
      {"ReduceSum", {11, 13}, lowerReduce},
      {"Softmax", {13}, lowerSoftmax},
      {"LogSoftmax", {13}, lowerSoftmax},
  };
  return lowerings;
}
