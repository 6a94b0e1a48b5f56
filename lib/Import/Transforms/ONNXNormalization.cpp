//===- ONNXNormalization.cpp - ONNX normalisations and losses -------------===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// LayerNormalization, BatchNormalization (inference), InstanceNormalization,
// MeanVarianceNormalization and LRN; the losses NegativeLogLikelihoodLoss and
// SoftmaxCrossEntropyLoss. Statistics are computed in the input's own float
// type (f32 or f64).
//
//===----------------------------------------------------------------------===//

#include "ONNXNode.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

using namespace mlir;
using namespace mlir::bitnet::onnx;

namespace {

using ScalarFn = function_ref<Value(OpBuilder &, Location, ValueRange)>;

Value addF(OpBuilder &b, Location loc, Value x, Value y) {
  return arith::AddFOp::create(b, loc, x, y);
}
Value subF(OpBuilder &b, Location loc, Value x, Value y) {
  return arith::SubFOp::create(b, loc, x, y);
}
Value mulF(OpBuilder &b, Location loc, Value x, Value y) {
  return arith::MulFOp::create(b, loc, x, y);
}

/// `fn` applied elementwise to values of one and the same shape.
Value map(Node &n, ArrayRef<Value> xs, Type elem, ScalarFn fn) {
  auto shape = cast<RankedTensorType>(xs[0].getType()).getShape();
  SmallVector<AffineMap> maps(xs.size(),
                              n.b.getMultiDimIdentityMap(shape.size()));
  return n.generic(xs, maps, shape, elem, fn);
}

/// `shape` with the dimensions marked in `dims` set to 1.
SmallVector<int64_t> onesAt(ArrayRef<int64_t> shape, ArrayRef<bool> dims) {
  SmallVector<int64_t> r(shape);
  for (size_t k = 0; k < r.size(); ++k)
    if (dims[k])
      r[k] = 1;
  return r;
}

/// The mean of `x` (or of its squares) over `dims`, shaped with 1s in the
/// reduced dimensions so that it broadcasts back over `x`.
Value meanOver(Node &n, Value x, ArrayRef<bool> dims, Type elem, bool squares) {
  auto shape = cast<RankedTensorType>(x.getType()).getShape();
  int64_t count = 1;
  for (size_t k = 0; k < shape.size(); ++k)
    if (dims[k])
      count *= shape[k];
  Value s =
      n.reduce(x, dims, elem, n.scalar(elem, 0),
               [&](OpBuilder &b, Location loc, Value acc, Value v) {
                 return addF(b, loc, acc, squares ? mulF(b, loc, v, v) : v);
               });
  double c = double(count);
  s = map(n, {s}, elem, [&](OpBuilder &b, Location loc, ValueRange a) {
    return Value(
        arith::DivFOp::create(b, loc, a[0], Node::scalarIn(b, loc, elem, c)));
  });
  return n.reshape(s, onesAt(shape, dims));
}

/// 1 / sqrt(v + eps) of a float tensor `v`.
Value invStdDev(Node &n, Value var, Type elem, double eps) {
  return map(n, {var}, elem, [&](OpBuilder &b, Location loc, ValueRange a) {
    Value s = math::SqrtOp::create(
        b, loc, addF(b, loc, a[0], Node::scalarIn(b, loc, elem, eps)));
    return Value(
        arith::DivFOp::create(b, loc, Node::scalarIn(b, loc, elem, 1), s));
  });
}

/// Checks that input `k` broadcasts (numpy rules) to `shape` without
/// growing it.
LogicalResult broadcastsTo(Node &n, size_t k, ArrayRef<int64_t> shape,
                           StringRef what) {
  const Operand &o = n.input(k);
  if (!o)
    return success();
  auto s = broadcastShapes(shape, o.shape());
  if (s && ArrayRef<int64_t>(*s) == shape)
    return success();
  InFlightDiagnostic d = n.error() << "input " << k << " (" << what << ") is "
                                   << describe(o);
  d.attachNote() << "expected a shape that broadcasts to " << describe(n.in[0]);
  return d;
}

/// Checks that input `k` is a vector of `c` elements (per channel).
LogicalResult perChannel(Node &n, size_t k, int64_t c, StringRef what) {
  const Operand &o = n.input(k);
  if (o.rank() == 1 && o.shape()[0] == c)
    return success();
  InFlightDiagnostic d = n.error() << "input " << k << " (" << what << ") is "
                                   << describe(o);
  d.attachNote() << "expected a tensor<" << c << "x...> (one value per "
                 << "channel of " << describe(n.in[0]) << ")";
  return d;
}

/// The ONNX element type of result `k` as shape inference gave it, or
/// `dflt`.
Type resultElem(Node &n, unsigned k, Type dflt) {
  if (k < n.op->getNumResults())
    if (auto t = dyn_cast<ShapedType>(n.op->getResult(k).getType()))
      if (isa<FloatType>(t.getElementType()))
        return t.getElementType();
  return dflt;
}

FailureOr<Results> lowerLayerNormalization(Node &n) {
  if (failed(n.arity(2, 3)) || failed(n.elemIn(0, n.floats(), "X")) ||
      failed(n.sameElem(0, 1)) || failed(n.sameElem(0, 2)))
    return failure();
  FailureOr<int64_t> axisAttr = n.intAttr("axis", -1);
  FailureOr<float> eps = n.floatAttr("epsilon", 1e-5f);
  FailureOr<int64_t> stash = n.intAttr("stash_type", 1);
  if (failed(axisAttr) || failed(eps) || failed(stash))
    return failure();
  const Operand &x = n.in[0];
  int64_t rank = x.rank();
  auto axis = normalizeAxis(*axisAttr, rank);
  if (!axis) {
    InFlightDiagnostic d = n.error() << "axis " << *axisAttr
                                     << " is out of range for " << describe(x);
    d.attachNote() << "expected an axis in [-rank, rank)";
    return d;
  }
  // Statistics in float (stash_type 1) is what every exporter writes; the
  // other types would change the precision of Mean and InvStdDev.
  if (*stash != 1) {
    InFlightDiagnostic d = n.error()
                           << "stash_type " << *stash << " is not supported";
    d.attachNote() << "expected 1 (FLOAT)";
    return d;
  }
  if (failed(broadcastsTo(n, 1, x.shape(), "Scale")) ||
      failed(broadcastsTo(n, 2, x.shape(), "B")))
    return failure();
  Type elem = x.elem;
  SmallVector<bool> dims(rank, false);
  for (int64_t k = *axis; k < rank; ++k)
    dims[k] = true;
  Value mean = meanOver(n, x.value, dims, elem, /*squares=*/false);
  FailureOr<Value> diff =
      n.elementwise({x, {mean, elem}}, elem,
                    [&](OpBuilder &b, Location loc, ValueRange a) -> Value {
                      return subF(b, loc, a[0], a[1]);
                    });
  if (failed(diff))
    return failure();
  Value var = meanOver(n, *diff, dims, elem, /*squares=*/true);
  Value inv = invStdDev(n, var, elem, *eps);
  SmallVector<Operand> ops = {{*diff, elem}, {inv, elem}, n.in[1]};
  bool hasBias = static_cast<bool>(n.input(2));
  if (hasBias)
    ops.push_back(n.in[2]);
  FailureOr<Value> y = n.elementwise(
      ops, elem, [&](OpBuilder &b, Location loc, ValueRange a) -> Value {
        Value r = mulF(b, loc, mulF(b, loc, a[0], a[1]), a[2]);
        return hasBias ? addF(b, loc, r, a[3]) : r;
      });
  if (failed(y))
    return failure();
  // Mean and InvStdDev have the stash type (float), whatever X's type.
  Results results = {{*y, elem}};
  SmallVector<Value, 2> stats = {mean, inv};
  for (auto [k, v] : llvm::enumerate(stats)) {
    Type out = resultElem(n, k + 1, n.f32());
    Value r = v;
    if (out != elem)
      r = map(n, {v}, out, [&](OpBuilder &b, Location loc, ValueRange a) {
        return convertScalar(b, loc, a[0], elem, out);
      });
    results.push_back({r, out});
  }
  return results;
}

FailureOr<Results> lowerBatchNormalization(Node &n) {
  if (failed(n.arity(5, 5)) || failed(n.elemIn(0, n.floats(), "X")) ||
      failed(n.rankIs(0, 2, INT64_MAX, "X")))
    return failure();
  static const char *names[] = {"X", "scale", "B", "input_mean", "input_var"};
  for (size_t k = 1; k < 5; ++k)
    if (failed(n.elemIn(k, n.floats(), names[k])))
      return failure();
  FailureOr<float> eps = n.floatAttr("epsilon", 1e-5f);
  FailureOr<int64_t> training = n.intAttr("training_mode", 0);
  FailureOr<int64_t> spatial = n.intAttr("spatial", 1);
  if (failed(eps) || failed(training) || failed(spatial))
    return failure();
  // Training mode normalises with the batch's own statistics and updates
  // the running ones: not an inference computation.
  if (*training != 0) {
    InFlightDiagnostic d = n.error() << "training_mode=" << *training
                                     << " is not supported";
    d.attachNote() << "expected inference mode (training_mode=0)";
    return d;
  }
  if (*spatial != 1) {
    InFlightDiagnostic d = n.error()
                           << "spatial=" << *spatial << " is not supported";
    d.attachNote() << "expected statistics per channel (spatial=1)";
    return d;
  }
  const Operand &x = n.in[0];
  int64_t c = x.shape()[1];
  for (size_t k = 1; k < 5; ++k)
    if (failed(perChannel(n, k, c, names[k])))
      return failure();
  Type elem = x.elem;
  SmallVector<Type> types;
  SmallVector<Value> values;
  for (const Operand &o : n.in) {
    values.push_back(o.value);
    types.push_back(o.elem);
  }
  AffineMap channel =
      AffineMap::get(x.rank(), 0, getAffineDimExpr(1, n.ctx()), n.ctx());
  SmallVector<AffineMap> maps = {n.b.getMultiDimIdentityMap(x.rank()), channel,
                                 channel, channel, channel};
  double e = *eps;
  Value y = n.generic(
      values, maps, x.shape(), elem,
      [&](OpBuilder &b, Location loc, ValueRange a) -> Value {
        SmallVector<Value> v;
        for (size_t k = 0; k < 5; ++k)
          v.push_back(convertScalar(b, loc, a[k], types[k], elem));
        // scale * (x - mean) / sqrt(var + eps) + B
        Value sd = math::SqrtOp::create(
            b, loc, addF(b, loc, v[4], Node::scalarIn(b, loc, elem, e)));
        Value norm =
            arith::DivFOp::create(b, loc, subF(b, loc, v[0], v[3]), sd);
        return addF(b, loc, mulF(b, loc, v[1], norm), v[2]);
      });
  return Results{{y, elem}};
}

FailureOr<Results> lowerInstanceNormalization(Node &n) {
  if (failed(n.arity(3, 3)) || failed(n.elemIn(0, n.floats(), "input")) ||
      failed(n.rankIs(0, 2, INT64_MAX, "input")) || failed(n.sameElem(0, 1)) ||
      failed(n.sameElem(0, 2)))
    return failure();
  FailureOr<float> eps = n.floatAttr("epsilon", 1e-5f);
  if (failed(eps))
    return failure();
  const Operand &x = n.in[0];
  int64_t rank = x.rank();
  if (failed(perChannel(n, 1, x.shape()[1], "scale")) ||
      failed(perChannel(n, 2, x.shape()[1], "B")))
    return failure();
  Type elem = x.elem;
  // Statistics over the spatial dimensions of each (sample, channel).
  SmallVector<bool> dims(rank, false);
  for (int64_t k = 2; k < rank; ++k)
    dims[k] = true;
  Value mean = meanOver(n, x.value, dims, elem, /*squares=*/false);
  FailureOr<Value> diff =
      n.elementwise({x, {mean, elem}}, elem,
                    [&](OpBuilder &b, Location loc, ValueRange a) -> Value {
                      return subF(b, loc, a[0], a[1]);
                    });
  if (failed(diff))
    return failure();
  Value var = meanOver(n, *diff, dims, elem, /*squares=*/true);
  Value inv = invStdDev(n, var, elem, *eps);
  AffineMap id = n.b.getMultiDimIdentityMap(rank);
  AffineMap channel =
      AffineMap::get(rank, 0, getAffineDimExpr(1, n.ctx()), n.ctx());
  Value y = n.generic({*diff, inv, n.in[1].value, n.in[2].value},
                      {id, n.broadcastMap(onesAt(x.shape(), dims), x.shape()),
                       channel, channel},
                      x.shape(), elem,
                      [&](OpBuilder &b, Location loc, ValueRange a) -> Value {
                        Value r = mulF(b, loc, mulF(b, loc, a[0], a[1]), a[2]);
                        return addF(b, loc, r, a[3]);
                      });
  return Results{{y, elem}};
}

FailureOr<Results> lowerMeanVarianceNormalization(Node &n) {
  if (failed(n.arity(1, 1)) || failed(n.elemIn(0, n.floats(), "X")))
    return failure();
  FailureOr<std::optional<SmallVector<int64_t>>> axesAttr = n.intsAttr("axes");
  if (failed(axesAttr))
    return failure();
  const Operand &x = n.in[0];
  int64_t rank = x.rank();
  SmallVector<int64_t> axes = axesAttr->value_or(SmallVector<int64_t>{0, 2, 3});
  SmallVector<bool> dims(rank, false);
  for (int64_t a : axes) {
    auto k = normalizeAxis(a, rank);
    if (!k) {
      InFlightDiagnostic d =
          n.error() << "axis " << a << " is out of range for " << describe(x);
      d.attachNote() << "expected axes in [-rank, rank) (the default axes "
                        "0, 2, 3 need rank 4 or more)";
      return d;
    }
    dims[*k] = true;
  }
  Type elem = x.elem;
  Value mean = meanOver(n, x.value, dims, elem, /*squares=*/false);
  FailureOr<Value> diff =
      n.elementwise({x, {mean, elem}}, elem,
                    [&](OpBuilder &b, Location loc, ValueRange a) -> Value {
                      return subF(b, loc, a[0], a[1]);
                    });
  if (failed(diff))
    return failure();
  Value var = meanOver(n, *diff, dims, elem, /*squares=*/true);
  // (X - mean) / (sqrt(var) + 1e-9), the constant of ONNX's definition.
  FailureOr<Value> y =
      n.elementwise({{*diff, elem}, {var, elem}}, elem,
                    [&](OpBuilder &b, Location loc, ValueRange a) -> Value {
                      Value sd =
                          addF(b, loc, math::SqrtOp::create(b, loc, a[1]),
                               Node::scalarIn(b, loc, elem, 1e-9));
                      return arith::DivFOp::create(b, loc, a[0], sd);
                    });
  if (failed(y))
    return failure();
  return Results{{*y, elem}};
}

FailureOr<Results> lowerLRN(Node &n) {
  if (failed(n.arity(1, 1)) || failed(n.elemIn(0, n.floats(), "X")) ||
      failed(n.rankIs(0, 2, INT64_MAX, "X")))
    return failure();
  FailureOr<int64_t> size = n.intAttr("size", 0);
  FailureOr<float> alpha = n.floatAttr("alpha", 1e-4f);
  FailureOr<float> beta = n.floatAttr("beta", 0.75f);
  FailureOr<float> bias = n.floatAttr("bias", 1.0f);
  if (failed(size) || failed(alpha) || failed(beta) || failed(bias))
    return failure();
  if (*size < 1) {
    InFlightDiagnostic d = n.error() << "attribute 'size' is " << *size;
    d.attachNote() << "expected a window size of 1 or more";
    return d;
  }
  const Operand &x = n.in[0];
  Type elem = x.elem;
  int64_t c = x.shape()[1];
  // The window over channels is [c - floor((size-1)/2), c + ceil((size-1)/2)],
  // cut at the tensor's edges; offsets past C - 1 never fall inside.
  int64_t lo = std::min((*size - 1) / 2, c - 1);
  int64_t hi = std::min(*size - 1 - (*size - 1) / 2, c - 1);
  double scale = double(*alpha) / double(*size);
  double be = *beta, bi = *bias;
  Value src = x.value;
  int64_t rank = x.rank();
  Value y = n.generic(
      {src}, {n.b.getMultiDimIdentityMap(rank)}, x.shape(), elem,
      [&](OpBuilder &b, Location loc, ValueRange a) -> Value {
        SmallVector<Value> idx;
        for (int64_t k = 0; k < rank; ++k)
          idx.push_back(linalg::IndexOp::create(b, loc, k));
        Value ch = idx[1];
        Value zero = Node::scalarIn(b, loc, elem, 0);
        Value sum = zero;
        for (int64_t off = -lo; off <= hi; ++off) {
          // Channel ch + off, clamped into range and counted only if it was
          // in range, so no read leaves the tensor.
          Value cc = arith::AddIOp::create(
              b, loc, ch, arith::ConstantIndexOp::create(b, loc, off));
          Value inside = arith::AndIOp::create(
              b, loc,
              arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sge, cc,
                                    arith::ConstantIndexOp::create(b, loc, 0)),
              arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt, cc,
                                    arith::ConstantIndexOp::create(b, loc, c)));
          Value clamped = arith::MinSIOp::create(
              b, loc,
              arith::MaxSIOp::create(b, loc, cc,
                                     arith::ConstantIndexOp::create(b, loc, 0)),
              arith::ConstantIndexOp::create(b, loc, c - 1));
          SmallVector<Value> at(idx);
          at[1] = clamped;
          Value v = tensor::ExtractOp::create(b, loc, src, at);
          Value sq =
              arith::SelectOp::create(b, loc, inside, mulF(b, loc, v, v), zero);
          sum = addF(b, loc, sum, sq);
        }
        // x / (bias + alpha / size * sum) ^ beta
        Value base =
            addF(b, loc, Node::scalarIn(b, loc, elem, bi),
                 mulF(b, loc, Node::scalarIn(b, loc, elem, scale), sum));
        Value p = math::PowFOp::create(b, loc, base,
                                       Node::scalarIn(b, loc, elem, be));
        return arith::DivFOp::create(b, loc, a[0], p);
      });
  return Results{{y, elem}};
}

//===----------------------------------------------------------------------===//
// Losses
//===----------------------------------------------------------------------===//

/// NegativeLogLikelihoodLoss of `logProb` (N x C x d1 ... x dk, the type of
/// input 0) against the class indices of input `targetIdx` (N x d1 ... x
/// dk), weighted per class by input `targetIdx + 1` if present.
FailureOr<Value> nllLoss(Node &n, Value logProb, size_t targetIdx) {
  const Operand &x = n.in[0];
  const Operand &target = n.in[targetIdx];
  const Operand &weight = n.input(targetIdx + 1);
  Type elem = x.elem;
  auto reductionAttr = n.attrs.getAs<StringAttr>("reduction");
  StringRef reduction = reductionAttr ? reductionAttr.getValue() : "mean";
  if (reduction != "none" && reduction != "sum" && reduction != "mean") {
    InFlightDiagnostic d = n.error() << "reduction '" << reduction
                                     << "' is not supported";
    d.attachNote() << "expected none, sum or mean";
    return d;
  }
  std::optional<int64_t> ignore;
  if (n.attrs.get("ignore_index")) {
    FailureOr<int64_t> ii = n.intAttr("ignore_index", 0);
    if (failed(ii))
      return failure();
    ignore = *ii;
  }
  ArrayRef<int64_t> xs = x.shape();
  SmallVector<int64_t> expected = {xs[0]};
  expected.append(xs.begin() + 2, xs.end());
  if (target.shape() != ArrayRef<int64_t>(expected)) {
    InFlightDiagnostic d = n.error() << "input " << targetIdx << " (target) is "
                                     << describe(target);
    d.attachNote() << "expected the shape of " << describe(x)
                   << " without its class dimension (1)";
    return d;
  }
  int64_t c = xs[1];
  if (weight && failed(perChannel(n, targetIdx + 1, c, "weight")))
    return failure();
  Type idxElem = signlessType(target.elem);
  int64_t rank = target.rank();
  // The weight of each target: weight[t] (1 without weights), 0 for the
  // ignored index. A target outside [0, C) is undefined in ONNX; it is
  // clamped so that no read leaves the tensors.
  auto weightOf = [&](OpBuilder &b, Location loc, Value t,
                      Value &cls) -> Value {
    Value zero = arith::ConstantOp::create(b, loc, idxElem,
                                           b.getIntegerAttr(idxElem, 0));
    Value top = arith::ConstantOp::create(
        b, loc, idxElem,
        b.getIntegerAttr(idxElem, std::max<int64_t>(c - 1, 0)));
    Value ct = arith::MinSIOp::create(
        b, loc, arith::MaxSIOp::create(b, loc, t, zero), top);
    cls = arith::IndexCastOp::create(b, loc, b.getIndexType(), ct);
    Value w = weight ? Value(tensor::ExtractOp::create(b, loc, weight.value,
                                                       ValueRange{cls}))
                     : Node::scalarIn(b, loc, elem, 1);
    if (ignore) {
      Value ii = arith::ConstantOp::create(b, loc, idxElem,
                                           b.getIntegerAttr(idxElem, *ignore));
      Value skip =
          arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, t, ii);
      w = arith::SelectOp::create(b, loc, skip, Node::scalarIn(b, loc, elem, 0),
                                  w);
    }
    return w;
  };
  AffineMap id = n.b.getMultiDimIdentityMap(rank);
  Value loss = n.generic(
      {target.value}, {id}, target.shape(), elem,
      [&](OpBuilder &b, Location loc, ValueRange a) -> Value {
        Value cls;
        Value w = weightOf(b, loc, a[0], cls);
        SmallVector<Value> at = {linalg::IndexOp::create(b, loc, 0), cls};
        for (int64_t k = 1; k < rank; ++k)
          at.push_back(linalg::IndexOp::create(b, loc, k));
        Value v = tensor::ExtractOp::create(b, loc, logProb, at);
        // An ignored target contributes 0, even where its log-probability
        // is infinite.
        Value l = arith::NegFOp::create(b, loc, mulF(b, loc, v, w));
        if (!ignore)
          return l;
        Value none = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OEQ, w,
                                           Node::scalarIn(b, loc, elem, 0));
        return arith::SelectOp::create(b, loc, none,
                                       Node::scalarIn(b, loc, elem, 0), l);
      });
  if (reduction == "none")
    return loss;
  SmallVector<bool> all(rank, true);
  auto sum = [&](Value v) {
    return n.reduce(v, all, elem, n.scalar(elem, 0),
                    [&](OpBuilder &b, Location loc, Value acc, Value e) {
                      return addF(b, loc, acc, e);
                    });
  };
  Value total = sum(loss);
  if (reduction == "sum")
    return total;
  // The mean is weighted: the sum of the losses over the sum of the weights
  // of the targets not ignored.
  Value weights = n.generic({target.value}, {id}, target.shape(), elem,
                            [&](OpBuilder &b, Location loc, ValueRange a) {
                              Value cls;
                              return weightOf(b, loc, a[0], cls);
                            });
  Value wsum = sum(weights);
  return map(n, {total, wsum}, elem,
             [&](OpBuilder &b, Location loc, ValueRange a) {
               return Value(arith::DivFOp::create(b, loc, a[0], a[1]));
             });
}

LogicalResult checkLossOperands(Node &n, StringRef what) {
  if (failed(n.arity(2, 3)) || failed(n.elemIn(0, n.floats(), what)) ||
      failed(n.rankIs(0, 2, INT64_MAX, what)) ||
      failed(n.elemIn(1, {n.i32(), n.i64()}, "target")) ||
      failed(n.sameElem(0, 2)))
    return failure();
  return success();
}

FailureOr<Results> lowerNegativeLogLikelihoodLoss(Node &n) {
  if (failed(checkLossOperands(n, "input")))
    return failure();
  FailureOr<Value> loss = nllLoss(n, n.in[0].value, 1);
  if (failed(loss))
    return failure();
  return Results{{*loss, n.in[0].elem}};
}

FailureOr<Results> lowerSoftmaxCrossEntropyLoss(Node &n) {
  if (failed(checkLossOperands(n, "scores")))
    return failure();
  const Operand &x = n.in[0];
  Type elem = x.elem;
  // log_prob = LogSoftmax(scores) over the classes (dimension 1):
  // x - max - log(sum(exp(x - max))).
  SmallVector<bool> dims(x.rank(), false);
  dims[1] = true;
  SmallVector<int64_t> kept = onesAt(x.shape(), dims);
  Value mx =
      n.reshape(n.reduce(x.value, dims, elem, n.scalar(elem, -INFINITY),
                         [&](OpBuilder &b, Location loc, Value acc, Value v) {
                           return maxOf(b, loc, acc, v, elem);
                         }),
                kept);
  FailureOr<Value> shifted =
      n.elementwise({x, {mx, elem}}, elem,
                    [&](OpBuilder &b, Location loc, ValueRange a) -> Value {
                      return subF(b, loc, a[0], a[1]);
                    });
  if (failed(shifted))
    return failure();
  Value s = n.reduce(*shifted, dims, elem, n.scalar(elem, 0),
                     [&](OpBuilder &b, Location loc, Value acc, Value v) {
                       return addF(b, loc, acc, math::ExpOp::create(b, loc, v));
                     });
  s = n.reshape(s, kept);
  FailureOr<Value> logProb = n.elementwise(
      {{*shifted, elem}, {s, elem}}, elem,
      [&](OpBuilder &b, Location loc, ValueRange a) -> Value {
        return subF(b, loc, a[0], math::LogOp::create(b, loc, a[1]));
      });
  if (failed(logProb))
    return failure();
  FailureOr<Value> loss = nllLoss(n, *logProb, 1);
  if (failed(loss))
    return failure();
  return Results{{*loss, elem}, {*logProb, elem}};
}

} // namespace

/// Normalisations and losses.
ArrayRef<Lowering> mlir::bitnet::onnx::normalizationLowerings() {
  static const Lowering lowerings[] = {
      {"LayerNormalization", {17}, lowerLayerNormalization},
      {"BatchNormalization", {7, 9, 14, 15}, lowerBatchNormalization},
      {"InstanceNormalization", {6}, lowerInstanceNormalization},
      {"MeanVarianceNormalization", {9, 13}, lowerMeanVarianceNormalization},
      {"LRN", {1, 13}, lowerLRN},
      {"NegativeLogLikelihoodLoss", {12, 13}, lowerNegativeLogLikelihoodLoss},
      {"SoftmaxCrossEntropyLoss", {12, 13}, lowerSoftmaxCrossEntropyLoss},
  };
  return lowerings;
}
