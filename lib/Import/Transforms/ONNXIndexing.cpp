//===- ONNXIndexing.cpp - Indexing and rearranging ONNX operations --------===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// The operations that pick, place or rearrange elements by index: Flatten,
// the gathers (GatherElements, GatherND, Compress, OneHot, EyeLike), the
// scatters (Scatter, ScatterElements, ScatterND), Tile, Pad, the block
// rearrangements (DepthToSpace, SpaceToDepth), ReverseSequence, the
// searches along an axis (ArgMax, ArgMin, TopK), CumSum, Einsum and NonZero.
//
// Gathers are linalg.generic ops over the result that read their source with
// tensor.extract at computed positions. Index values only known at run time
// are wrapped (negative counts from the end) and clamped into range, so a
// bad index can never read or write outside a tensor; constant indices are
// checked here. A scatter is a generic over the result whose reduction loops
// visit the updates in ONNX order, each result element taking the updates
// that target it: later updates overwrite earlier ones (or combine with them
// for reduction add/mul) exactly as the reference applies them.
//
//===----------------------------------------------------------------------===//

#include "ONNXNode.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

#include "llvm/ADT/StringExtras.h"

#include <limits>
#include <map>

using namespace mlir;
using namespace mlir::bitnet;
using namespace mlir::bitnet::onnx;

namespace {

//===----------------------------------------------------------------------===//
// Helpers
//===----------------------------------------------------------------------===//

Value loopIndex(OpBuilder &b, Location loc, int64_t k) {
  return linalg::IndexOp::create(b, loc, k);
}

Value indexConst(OpBuilder &b, Location loc, int64_t v) {
  return arith::ConstantIndexOp::create(b, loc, v);
}

/// An index element `i` (i32 or i64) into a dimension of size `dim` as an
/// `index`: negative values count from the end, values still out of range
/// are clamped, so a bad index never reaches outside the tensor (ONNX leaves
/// such indices undefined).
Value indexInto(OpBuilder &b, Location loc, Value i, int64_t dim) {
  Value v = arith::IndexCastOp::create(b, loc, b.getIndexType(), i);
  Value zero = indexConst(b, loc, 0);
  Value neg = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt, v, zero);
  v = arith::SelectOp::create(
      b, loc, neg, arith::AddIOp::create(b, loc, v, indexConst(b, loc, dim)),
      v);
  v = arith::MaxSIOp::create(b, loc, v, zero);
  return arith::MinSIOp::create(b, loc, v,
                                indexConst(b, loc, std::max<int64_t>(dim - 1, 0)));
}

/// `v` clamped into [0, hi] (all `index`).
Value clampIndex(OpBuilder &b, Location loc, Value v, int64_t hi) {
  v = arith::MaxSIOp::create(b, loc, v, indexConst(b, loc, 0));
  return arith::MinSIOp::create(b, loc, v,
                                indexConst(b, loc, std::max<int64_t>(hi, 0)));
}

Value andOf(OpBuilder &b, Location loc, Value x, Value y) {
  if (!x)
    return y;
  return arith::AndIOp::create(b, loc, x, y);
}

Value isNaN(OpBuilder &b, Location loc, Value x) {
  return arith::CmpFOp::create(b, loc, arith::CmpFPredicate::UNO, x, x);
}

/// Whether `x` comes before `y` when ordering by decreasing (`largest`) or
/// increasing value; NaN orders after every number (as numpy sorts it) and
/// equal to NaN.
Value ordersBefore(OpBuilder &b, Location loc, Value x, Value y, Type elem,
                   bool largest) {
  if (isa<FloatType>(elem)) {
    Value cmp = arith::CmpFOp::create(
        b, loc, largest ? arith::CmpFPredicate::OGT : arith::CmpFPredicate::OLT,
        x, y);
    Value nanLast = arith::AndIOp::create(
        b, loc,
        arith::XOrIOp::create(b, loc, isNaN(b, loc, x),
                              arith::ConstantIntOp::create(b, loc, 1, 1)),
        isNaN(b, loc, y));
    return arith::OrIOp::create(b, loc, cmp, nanLast);
  }
  bool u = isUnsigned(elem);
  auto pred = largest ? (u ? arith::CmpIPredicate::ugt : arith::CmpIPredicate::sgt)
                      : (u ? arith::CmpIPredicate::ult : arith::CmpIPredicate::slt);
  return arith::CmpIOp::create(b, loc, pred, x, y);
}

/// `x == y`, NaN equal to NaN.
Value sameValue(OpBuilder &b, Location loc, Value x, Value y, Type elem) {
  if (isa<FloatType>(elem))
    return arith::OrIOp::create(
        b, loc,
        arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OEQ, x, y),
        arith::AndIOp::create(b, loc, isNaN(b, loc, x), isNaN(b, loc, y)));
  return arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, x, y);
}

Value addOf(OpBuilder &b, Location loc, Value x, Value y, Type elem) {
  if (isa<FloatType>(elem))
    return arith::AddFOp::create(b, loc, x, y);
  return arith::AddIOp::create(b, loc, x, y);
}

Value mulOf(OpBuilder &b, Location loc, Value x, Value y, Type elem) {
  if (isa<FloatType>(elem))
    return arith::MulFOp::create(b, loc, x, y);
  return arith::MulIOp::create(b, loc, x, y);
}

/// A string attribute, or `dflt` if absent.
FailureOr<std::string> strAttr(Node &n, StringRef name, StringRef dflt) {
  Attribute a = n.attrs.get(name);
  if (!a)
    return dflt.str();
  if (auto s = dyn_cast<StringAttr>(a))
    return s.getValue().str();
  return n.error() << "attribute '" << name << "' must be a string";
}

/// Attribute `name` as an axis of a tensor of rank `rank`.
FailureOr<int64_t> axisAttr(Node &n, StringRef name, int64_t dflt,
                            int64_t rank, const Operand &of) {
  FailureOr<int64_t> a = n.intAttr(name, dflt);
  if (failed(a))
    return failure();
  auto axis = normalizeAxis(*a, rank);
  if (!axis) {
    InFlightDiagnostic d = n.error() << "axis " << *a << " is out of range for "
                                     << describe(of);
    d.attachNote() << "expected an axis in [-rank, rank)";
    return d;
  }
  return *axis;
}

/// Checks the values of input `k` (indices into a dimension of size `dim`)
/// when it is a constant.
LogicalResult checkIndices(Node &n, size_t k, int64_t dim, StringRef what) {
  std::optional<HostTensor> idx = n.constant(k);
  if (!idx)
    return success();
  for (int64_t i : idx->i)
    if (i < -dim || i >= dim) {
      InFlightDiagnostic d = n.error() << what << " index " << i
                                       << " is out of range for a dimension "
                                          "of size "
                                       << dim;
      d.attachNote() << "expected indices in [" << -dim << ", " << dim << ")";
      return d;
    }
  return success();
}

LogicalResult tooBig(Node &n, ArrayRef<int64_t> shape) {
  if (numElements(shape) >= 0)
    return success();
  return n.error() << "result has too many elements";
}

/// A linalg.generic with several results and any iterators.
SmallVector<Value>
genericOp(Node &n, ValueRange inputs, ArrayRef<AffineMap> inMaps,
          ValueRange inits, ArrayRef<AffineMap> outMaps,
          ArrayRef<utils::IteratorType> iters,
          function_ref<SmallVector<Value>(OpBuilder &, Location, ValueRange,
                                          ValueRange)>
              body) {
  SmallVector<AffineMap> maps(inMaps.begin(), inMaps.end());
  maps.append(outMaps.begin(), outMaps.end());
  SmallVector<Type> types;
  for (Value v : inits)
    types.push_back(v.getType());
  size_t nIn = inputs.size();
  auto g = linalg::GenericOp::create(
      n.b, n.loc, types, inputs, inits, maps, iters,
      [&](OpBuilder &nb, Location nl, ValueRange args) {
        linalg::YieldOp::create(
            nb, nl, body(nb, nl, args.take_front(nIn), args.drop_front(nIn)));
      });
  return SmallVector<Value>(g.getResults());
}

//===----------------------------------------------------------------------===//
// Flatten
//===----------------------------------------------------------------------===//

FailureOr<Results> lowerFlatten(Node &n) {
  if (failed(n.arity(1, 1)))
    return failure();
  FailureOr<int64_t> axisA = n.intAttr("axis", 1);
  if (failed(axisA))
    return failure();
  const Operand &x = n.in[0];
  int64_t rank = x.rank();
  int64_t axis = *axisA < 0 ? *axisA + rank : *axisA;
  if (axis < 0 || axis > rank) {
    InFlightDiagnostic d = n.error() << "axis " << *axisA
                                     << " is out of range for " << describe(x);
    d.attachNote() << "expected an axis in [-rank, rank]";
    return d;
  }
  int64_t outer = 1, inner = 1;
  for (int64_t k = 0; k < rank; ++k)
    (k < axis ? outer : inner) *= x.shape()[k];
  return Results{{n.reshape(x.value, {outer, inner}), x.elem}};
}

//===----------------------------------------------------------------------===//
// Gathers
//===----------------------------------------------------------------------===//

FailureOr<Results> lowerGatherElements(Node &n) {
  if (failed(n.arity(2, 2)) ||
      failed(n.elemIn(1, {n.i32(), n.i64()}, "indices")))
    return failure();
  const Operand &data = n.in[0], &indices = n.in[1];
  int64_t rank = data.rank();
  if (rank == 0 || indices.rank() != rank) {
    InFlightDiagnostic d = n.error() << "indices " << describe(indices)
                                     << " do not match data "
                                     << describe(data);
    d.attachNote() << "expected data of rank >= 1 and indices of the same rank";
    return d;
  }
  FailureOr<int64_t> axis = axisAttr(n, "axis", 0, rank, data);
  if (failed(axis))
    return failure();
  int64_t dim = data.shape()[*axis];
  for (int64_t k = 0; k < rank; ++k)
    if (k != *axis && indices.shape()[k] > data.shape()[k]) {
      InFlightDiagnostic d = n.error()
                             << "indices " << describe(indices)
                             << " are larger than data " << describe(data);
      d.attachNote() << "expected indices no larger than the data outside "
                        "the axis";
      return d;
    }
  ArrayRef<int64_t> shape = indices.shape();
  if (numElements(shape) == 0)
    return Results{{n.empty(shape, data.elem), data.elem}};
  if (dim == 0)
    return n.error() << "gathers from an empty dimension";
  if (failed(checkIndices(n, 1, dim, "gather")))
    return failure();
  Value src = data.value;
  int64_t ax = *axis;
  Value v = n.generic({indices.value}, {n.b.getMultiDimIdentityMap(rank)},
                      shape, data.elem,
                      [&](OpBuilder &b, Location loc, ValueRange a) -> Value {
                        SmallVector<Value> at;
                        for (int64_t k = 0; k < rank; ++k)
                          at.push_back(k == ax ? indexInto(b, loc, a[0], dim)
                                               : loopIndex(b, loc, k));
                        return tensor::ExtractOp::create(b, loc, src, at);
                      });
  return Results{{v, data.elem}};
}

FailureOr<Results> lowerGatherND(Node &n) {
  if (failed(n.arity(2, 2)) || failed(n.elemIn(1, {n.i64()}, "indices")))
    return failure();
  FailureOr<int64_t> batchA = n.intAttr("batch_dims", 0);
  if (failed(batchA))
    return failure();
  const Operand &data = n.in[0], &indices = n.in[1];
  int64_t r = data.rank(), q = indices.rank(), bd = *batchA;
  int64_t m = q > 0 ? indices.shape().back() : -1;
  bool ok = q >= 1 && r >= 1 && bd >= 0 && bd < std::min(q, r) &&
            m >= 0 && bd + m <= r;
  for (int64_t k = 0; ok && k < bd; ++k)
    ok = data.shape()[k] == indices.shape()[k];
  if (!ok) {
    InFlightDiagnostic d = n.error()
                           << "indices " << describe(indices)
                           << " do not match data " << describe(data)
                           << " with batch_dims " << bd;
    d.attachNote() << "expected equal leading batch dimensions and "
                      "indices.shape[-1] <= rank(data) - batch_dims";
    return d;
  }
  SmallVector<int64_t> shape(indices.shape().drop_back());
  shape.append(data.shape().begin() + bd + m, data.shape().end());
  if (failed(tooBig(n, shape)))
    return failure();
  if (numElements(shape) == 0)
    return Results{{n.empty(shape, data.elem), data.elem}};
  for (int64_t j = 0; j < m; ++j)
    if (data.shape()[bd + j] == 0)
      return n.error() << "gathers from an empty dimension";
  Value src = data.value, idx = indices.value;
  int64_t nb = q - 1; // result dimensions that follow the indices
  Value v = n.generic(
      {}, {}, shape, data.elem,
      [&](OpBuilder &b, Location loc, ValueRange) -> Value {
        SmallVector<Value> at, pos;
        for (int64_t k = 0; k < nb; ++k)
          pos.push_back(loopIndex(b, loc, k));
        for (int64_t k = 0; k < bd; ++k)
          at.push_back(pos[k]);
        for (int64_t j = 0; j < m; ++j) {
          SmallVector<Value> p(pos);
          p.push_back(indexConst(b, loc, j));
          Value i = tensor::ExtractOp::create(b, loc, idx, p);
          at.push_back(indexInto(b, loc, i, data.shape()[bd + j]));
        }
        for (int64_t k = bd + m; k < r; ++k)
          at.push_back(loopIndex(b, loc, nb + k - bd - m));
        return tensor::ExtractOp::create(b, loc, src, at);
      });
  return Results{{v, data.elem}};
}

FailureOr<Results> lowerCompress(Node &n) {
  if (failed(n.arity(2, 2)) || failed(n.elemIn(1, {n.i1()}, "condition")) ||
      failed(n.rankIs(1, 1, 1, "condition")))
    return failure();
  std::optional<HostTensor> cond = n.constant(1);
  if (!cond) {
    InFlightDiagnostic d = n.error() << "Compress with a condition known only "
                                        "at run time is not supported";
    d.attachNote() << "expected a constant condition: the result's size must "
                      "be known at compile time";
    return d;
  }
  Operand x = n.in[0];
  int64_t axis = 0;
  if (n.attrs.get("axis")) {
    FailureOr<int64_t> a = axisAttr(n, "axis", 0, x.rank(), x);
    if (failed(a))
      return failure();
    axis = *a;
  } else {
    x.value = n.reshape(x.value, {numElements(x.shape())});
  }
  int64_t dim = x.shape()[axis];
  SmallVector<int64_t> picked;
  for (auto [k, c] : llvm::enumerate(cond->i)) {
    if (!c)
      continue;
    if (int64_t(k) >= dim) {
      InFlightDiagnostic d = n.error() << "condition selects element " << k
                                       << " of a dimension of size " << dim;
      d.attachNote() << "expected no true condition past the dimension";
      return d;
    }
    picked.push_back(k);
  }
  SmallVector<int64_t> shape(x.shape());
  shape[axis] = picked.size();
  if (picked.empty())
    return Results{{n.empty(shape, x.elem), x.elem}};
  HostTensor sel;
  sel.elem = n.i64();
  sel.shape = {int64_t(picked.size())};
  sel.i.assign(picked.begin(), picked.end());
  Value selV = n.constantOf(sel).value;
  AffineMap selMap =
      AffineMap::get(shape.size(), 0, getAffineDimExpr(axis, n.ctx()));
  Value src = x.value;
  int64_t rank = shape.size();
  Value v = n.generic({selV}, {selMap}, shape, x.elem,
                      [&](OpBuilder &b, Location loc, ValueRange a) -> Value {
                        SmallVector<Value> at;
                        for (int64_t k = 0; k < rank; ++k)
                          at.push_back(k == axis
                                           ? arith::IndexCastOp::create(
                                                 b, loc, b.getIndexType(), a[0])
                                           : loopIndex(b, loc, k));
                        return tensor::ExtractOp::create(b, loc, src, at);
                      });
  return Results{{v, x.elem}};
}

FailureOr<Results> lowerOneHot(Node &n) {
  if (failed(n.arity(3, 3)) ||
      failed(n.elemIn(0, n.numbers(), "indices")) ||
      failed(n.elemIn(1, n.numbers(), "depth")) ||
      failed(n.rankIs(2, 1, 1, "values")))
    return failure();
  const Operand &indices = n.in[0], &values = n.in[2];
  if (values.shape()[0] != 2) {
    InFlightDiagnostic d = n.error() << "values " << describe(values)
                                     << " are not a pair";
    d.attachNote() << "expected [off_value, on_value]";
    return d;
  }
  std::optional<HostTensor> depthT = n.constant(1);
  if (!depthT || depthT->size() != 1) {
    InFlightDiagnostic d = n.error() << "input 1 (depth) is not a constant";
    d.attachNote() << "expected a constant scalar: the result's size must be "
                      "known at compile time";
    return d;
  }
  int64_t depth = int64_t(depthT->asDouble(0));
  if (depth < 1) {
    InFlightDiagnostic d = n.error() << "depth " << depth << " is not positive";
    d.attachNote() << "expected a depth of 1 or more";
    return d;
  }
  int64_t outRank = indices.rank() + 1;
  FailureOr<int64_t> axisA = n.intAttr("axis", -1);
  if (failed(axisA))
    return failure();
  auto axis = normalizeAxis(*axisA, outRank);
  if (!axis) {
    InFlightDiagnostic d = n.error() << "axis " << *axisA
                                     << " is out of range for a result of rank "
                                     << outRank;
    d.attachNote() << "expected an axis in [-rank - 1, rank]";
    return d;
  }
  SmallVector<int64_t> shape(indices.shape());
  shape.insert(shape.begin() + *axis, depth);
  if (failed(tooBig(n, shape)))
    return failure();
  SmallVector<AffineExpr> idxExprs;
  for (int64_t k = 0; k < outRank; ++k)
    if (k != *axis)
      idxExprs.push_back(getAffineDimExpr(k, n.ctx()));
  AffineMap idxMap = AffineMap::get(outRank, 0, idxExprs, n.ctx());
  AffineMap offMap =
      AffineMap::get(outRank, 0, getAffineConstantExpr(0, n.ctx()));
  AffineMap onMap =
      AffineMap::get(outRank, 0, getAffineConstantExpr(1, n.ctx()));
  Type idxElem = indices.elem;
  int64_t ax = *axis;
  Value v = n.generic(
      {indices.value, values.value, values.value}, {idxMap, offMap, onMap},
      shape, values.elem,
      [&](OpBuilder &b, Location loc, ValueRange a) -> Value {
        // Float indices are truncated as ONNX casts them; negative ones
        // count from the end.
        Value i = convertScalar(b, loc, a[0], idxElem, b.getI64Type());
        Value depthV = arith::ConstantIntOp::create(b, loc, b.getI64Type(),
                                                    depth);
        Value zero = arith::ConstantIntOp::create(b, loc, b.getI64Type(), 0);
        Value neg =
            arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt, i, zero);
        i = arith::SelectOp::create(
            b, loc, neg, arith::AddIOp::create(b, loc, i, depthV), i);
        Value pos = arith::IndexCastOp::create(b, loc, b.getI64Type(),
                                               loopIndex(b, loc, ax));
        Value hit =
            arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, i, pos);
        return arith::SelectOp::create(b, loc, hit, a[2], a[1]);
      });
  return Results{{v, values.elem}};
}

FailureOr<Results> lowerEyeLike(Node &n) {
  if (failed(n.arity(1, 1)) || failed(n.rankIs(0, 2, 2, "input")))
    return failure();
  FailureOr<int64_t> dtype = n.intAttr("dtype", -1);
  FailureOr<int64_t> k = n.intAttr("k", 0);
  if (failed(dtype) || failed(k))
    return failure();
  Type elem = n.in[0].elem;
  if (*dtype != -1) {
    elem = isSupportedDataType(*dtype) ? elementTypeOf(n.ctx(), *dtype) : Type();
    if (!elem) {
      InFlightDiagnostic d = n.error() << "data type " << *dtype
                                       << " is not supported";
      d.attachNote() << "expected FLOAT (1), UINT8 (2), INT8 (3), INT16 (5), "
                        "INT32 (6), INT64 (7), BOOL (9) or DOUBLE (11)";
      return d;
    }
  }
  int64_t diag = *k;
  Value v = n.generic({}, {}, n.in[0].shape(), elem,
                      [&](OpBuilder &b, Location loc, ValueRange) -> Value {
                        Value i = loopIndex(b, loc, 0), j = loopIndex(b, loc, 1);
                        Value on = arith::CmpIOp::create(
                            b, loc, arith::CmpIPredicate::eq,
                            arith::SubIOp::create(b, loc, j, i),
                            indexConst(b, loc, diag));
                        return arith::SelectOp::create(
                            b, loc, on, Node::scalarIn(b, loc, elem, 1),
                            Node::scalarIn(b, loc, elem, 0));
                      });
  return Results{{v, elem}};
}

//===----------------------------------------------------------------------===//
// Scatters
//===----------------------------------------------------------------------===//

enum class Combine { Replace, Add, Mul };

/// The `reduction` attribute of a scatter: none, add or mul.
FailureOr<Combine> reductionAttr(Node &n, Type elem) {
  FailureOr<std::string> r = strAttr(n, "reduction", "none");
  if (failed(r))
    return failure();
  Combine c;
  if (*r == "none")
    return Combine::Replace;
  if (*r == "add")
    c = Combine::Add;
  else if (*r == "mul")
    c = Combine::Mul;
  else {
    InFlightDiagnostic d = n.error() << "reduction '" << *r
                                     << "' is not supported";
    d.attachNote() << "expected none, add or mul";
    return d;
  }
  if (elem.isInteger(1))
    return n.error() << "reduction '" << *r << "' of bool is not supported";
  return c;
}

Value combine(OpBuilder &b, Location loc, Combine c, Value acc, Value u,
              Type elem) {
  switch (c) {
  case Combine::Replace:
    return u;
  case Combine::Add:
    return addOf(b, loc, acc, u, elem);
  case Combine::Mul:
    return mulOf(b, loc, acc, u, elem);
  }
  llvm_unreachable("combine");
}

/// Scatter and ScatterElements: the update at position p goes to p with its
/// axis coordinate replaced by indices[p].
FailureOr<Results> lowerScatterElements(Node &n) {
  if (failed(n.arity(3, 3)) ||
      failed(n.elemIn(1, {n.i32(), n.i64()}, "indices")) ||
      failed(n.sameElem(0, 2)))
    return failure();
  const Operand &data = n.in[0], &indices = n.in[1], &updates = n.in[2];
  int64_t rank = data.rank();
  if (rank == 0 || indices.rank() != rank ||
      indices.shape() != updates.shape()) {
    InFlightDiagnostic d = n.error()
                           << "indices " << describe(indices) << " and updates "
                           << describe(updates) << " do not match data "
                           << describe(data);
    d.attachNote() << "expected indices and updates of one shape and the "
                      "rank of the data";
    return d;
  }
  FailureOr<int64_t> axisV = axisAttr(n, "axis", 0, rank, data);
  if (failed(axisV))
    return failure();
  int64_t axis = *axisV;
  for (int64_t k = 0; k < rank; ++k)
    if (k != axis && updates.shape()[k] > data.shape()[k]) {
      InFlightDiagnostic d = n.error()
                             << "updates " << describe(updates)
                             << " are larger than data " << describe(data);
      d.attachNote() << "expected updates no larger than the data outside "
                        "the axis";
      return d;
    }
  Combine c = Combine::Replace;
  if (n.opType == "ScatterElements" && n.version >= 16) {
    FailureOr<Combine> r = reductionAttr(n, data.elem);
    if (failed(r))
      return failure();
    c = *r;
  }
  int64_t dim = data.shape()[axis];
  if (numElements(updates.shape()) == 0 || numElements(data.shape()) == 0)
    return Results{{data.value, data.elem}};
  if (failed(checkIndices(n, 1, dim, "scatter")))
    return failure();
  // Loops: the data's dimensions (parallel), then the updates along the axis
  // (a reduction, in order). Outside the axis an update lands at its own
  // coordinates, so only the updates of the result element's row are
  // visited. The indices tensor is read through the map only so the
  // reduction loop has a size.
  SmallVector<AffineExpr> rowExprs;
  for (int64_t k = 0; k < rank; ++k)
    rowExprs.push_back(k == axis ? getAffineDimExpr(rank, n.ctx())
                                 : getAffineConstantExpr(0, n.ctx()));
  AffineMap rowMap = AffineMap::get(rank + 1, 0, rowExprs, n.ctx());
  SmallVector<AffineExpr> outExprs;
  for (int64_t k = 0; k < rank; ++k)
    outExprs.push_back(getAffineDimExpr(k, n.ctx()));
  AffineMap outMap = AffineMap::get(rank + 1, 0, outExprs, n.ctx());
  SmallVector<utils::IteratorType> iters(rank, utils::IteratorType::parallel);
  iters.push_back(utils::IteratorType::reduction);
  Value idxT = indices.value, updT = updates.value;
  ArrayRef<int64_t> ushape = updates.shape(), dshape = data.shape();
  Type elem = data.elem;
  // The result is a fresh tensor that starts from the data at the first
  // update: written in place, a graph input would become model state.
  Value init = n.filled(dshape, elem, n.scalar(elem, 0));
  SmallVector<Value> r = genericOp(
      n, {data.value, idxT}, {outMap, rowMap}, {init}, {outMap}, iters,
      [&](OpBuilder &b, Location loc, ValueRange a,
          ValueRange accs) -> SmallVector<Value> {
        Value first = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq,
                                            loopIndex(b, loc, rank),
                                            indexConst(b, loc, 0));
        Value acc = arith::SelectOp::create(b, loc, first, a[0], accs[0]);
        Value inRange;
        SmallVector<Value> at;
        for (int64_t k = 0; k < rank; ++k) {
          if (k == axis) {
            at.push_back(loopIndex(b, loc, rank));
            continue;
          }
          Value d = loopIndex(b, loc, k);
          if (ushape[k] < dshape[k]) {
            inRange = andOf(b, loc, inRange,
                            arith::CmpIOp::create(b, loc,
                                                  arith::CmpIPredicate::slt, d,
                                                  indexConst(b, loc, ushape[k])));
            d = arith::MinSIOp::create(b, loc, d,
                                       indexConst(b, loc, ushape[k] - 1));
          }
          at.push_back(d);
        }
        Value i = tensor::ExtractOp::create(b, loc, idxT, at);
        Value u = tensor::ExtractOp::create(b, loc, updT, at);
        Value hit = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq,
                                          indexInto(b, loc, i, dim),
                                          loopIndex(b, loc, axis));
        hit = andOf(b, loc, inRange, hit);
        return {arith::SelectOp::create(b, loc, hit,
                                        combine(b, loc, c, acc, u, elem), acc)};
      });
  return Results{{r[0], elem}};
}

/// ScatterND: update slice p goes to the data slice indices[p].
FailureOr<Results> lowerScatterND(Node &n) {
  if (failed(n.arity(3, 3)) || failed(n.elemIn(1, {n.i64()}, "indices")) ||
      failed(n.sameElem(0, 2)))
    return failure();
  const Operand &data = n.in[0], &indices = n.in[1], &updates = n.in[2];
  int64_t r = data.rank(), q = indices.rank();
  int64_t m = q >= 1 ? indices.shape().back() : -1;
  if (q >= 1 && m == 0)
    return n.error() << "indices with an empty last dimension are not "
                        "supported";
  if (q < 1 || m < 1 || m > r) {
    InFlightDiagnostic d = n.error() << "indices " << describe(indices)
                                     << " do not index data "
                                     << describe(data);
    d.attachNote() << "expected indices.shape[-1] in [1, rank(data)]";
    return d;
  }
  SmallVector<int64_t> expect(indices.shape().drop_back());
  expect.append(data.shape().begin() + m, data.shape().end());
  if (updates.shape() != ArrayRef<int64_t>(expect)) {
    InFlightDiagnostic d = n.error() << "updates " << describe(updates)
                                     << " do not match indices "
                                     << describe(indices) << " and data "
                                     << describe(data);
    d.attachNote() << "expected updates of shape indices.shape[:-1] + "
                      "data.shape[indices.shape[-1]:]";
    return d;
  }
  Combine c = Combine::Replace;
  if (n.version >= 16) {
    FailureOr<Combine> red = reductionAttr(n, data.elem);
    if (failed(red))
      return failure();
    c = *red;
  }
  if (numElements(updates.shape()) == 0 || numElements(data.shape()) == 0)
    return Results{{data.value, data.elem}};
  // Loops: the data's dimensions (parallel), then the update slices in order
  // (reduction); the indices tensor's map gives those loops their sizes.
  int64_t nb = q - 1;
  SmallVector<AffineExpr> idxExprs;
  for (int64_t k = 0; k < nb; ++k)
    idxExprs.push_back(getAffineDimExpr(r + k, n.ctx()));
  idxExprs.push_back(getAffineConstantExpr(0, n.ctx()));
  AffineMap idxMap = AffineMap::get(r + nb, 0, idxExprs, n.ctx());
  SmallVector<AffineExpr> outExprs;
  for (int64_t k = 0; k < r; ++k)
    outExprs.push_back(getAffineDimExpr(k, n.ctx()));
  AffineMap outMap = AffineMap::get(r + nb, 0, outExprs, n.ctx());
  SmallVector<utils::IteratorType> iters(r, utils::IteratorType::parallel);
  iters.append(nb, utils::IteratorType::reduction);
  Value idxT = indices.value, updT = updates.value;
  ArrayRef<int64_t> dshape = data.shape();
  Type elem = data.elem;
  // A fresh result that starts from the data at the first update (see
  // ScatterElements).
  Value init = n.filled(dshape, elem, n.scalar(elem, 0));
  SmallVector<Value> res = genericOp(
      n, {data.value, idxT}, {outMap, idxMap}, {init}, {outMap}, iters,
      [&](OpBuilder &b, Location loc, ValueRange a,
          ValueRange accs) -> SmallVector<Value> {
        SmallVector<Value> batch;
        Value first;
        for (int64_t k = 0; k < nb; ++k) {
          batch.push_back(loopIndex(b, loc, r + k));
          first = andOf(b, loc, first,
                        arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq,
                                              batch.back(),
                                              indexConst(b, loc, 0)));
        }
        Value acc = first ? arith::SelectOp::create(b, loc, first, a[0],
                                                    accs[0])
                                .getResult()
                          : a[0];
        Value hit;
        for (int64_t j = 0; j < m; ++j) {
          SmallVector<Value> p(batch);
          p.push_back(indexConst(b, loc, j));
          Value i = tensor::ExtractOp::create(b, loc, idxT, p);
          hit = andOf(b, loc, hit,
                      arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq,
                                            indexInto(b, loc, i, dshape[j]),
                                            loopIndex(b, loc, j)));
        }
        SmallVector<Value> at(batch);
        for (int64_t k = m; k < r; ++k)
          at.push_back(loopIndex(b, loc, k));
        Value u = tensor::ExtractOp::create(b, loc, updT, at);
        return {arith::SelectOp::create(b, loc, hit,
                                        combine(b, loc, c, acc, u, elem), acc)};
      });
  return Results{{res[0], elem}};
}

//===----------------------------------------------------------------------===//
// Rearrangements
//===----------------------------------------------------------------------===//

FailureOr<Results> lowerTile(Node &n) {
  if (failed(n.arity(2, 2)) || failed(n.elemIn(1, {n.i64()}, "repeats")))
    return failure();
  FailureOr<SmallVector<int64_t>> repeats = n.constInts(1, "repeats");
  if (failed(repeats))
    return failure();
  const Operand &x = n.in[0];
  int64_t rank = x.rank();
  if (int64_t(repeats->size()) != rank ||
      llvm::any_of(*repeats, [](int64_t v) { return v < 0; })) {
    InFlightDiagnostic d = n.error() << "repeats do not match " << describe(x);
    d.attachNote() << "expected one non-negative repeat count per dimension";
    return d;
  }
  SmallVector<int64_t> shape;
  for (int64_t k = 0; k < rank; ++k)
    shape.push_back(x.shape()[k] * (*repeats)[k]);
  if (failed(tooBig(n, shape)))
    return failure();
  if (numElements(shape) == 0)
    return Results{{n.empty(shape, x.elem), x.elem}};
  Value src = x.value;
  ArrayRef<int64_t> in = x.shape();
  Value v = n.generic({}, {}, shape, x.elem,
                      [&](OpBuilder &b, Location loc, ValueRange) -> Value {
                        SmallVector<Value> at;
                        for (int64_t k = 0; k < rank; ++k)
                          at.push_back(arith::RemUIOp::create(
                              b, loc, loopIndex(b, loc, k),
                              indexConst(b, loc, in[k])));
                        return tensor::ExtractOp::create(b, loc, src, at);
                      });
  return Results{{v, x.elem}};
}

FailureOr<Results> lowerPad(Node &n) {
  if (failed(n.version < 11 ? n.arity(1, 1) : n.arity(2, 3)))
    return failure();
  const Operand &x = n.in[0];
  int64_t rank = x.rank();
  SmallVector<int64_t> pads;
  Value padValue;
  FailureOr<std::string> mode = strAttr(n, "mode", "constant");
  if (failed(mode))
    return failure();
  if (n.version < 11) {
    auto p = n.intsAttr("pads");
    FailureOr<float> value = n.floatAttr("value", 0.0f);
    if (failed(p) || failed(value))
      return failure();
    if (!*p)
      return n.error() << "has no attribute 'pads'";
    pads = **p;
    padValue = n.filled({}, x.elem, n.scalar(x.elem, *value));
  } else {
    if (failed(n.elemIn(1, {n.i64()}, "pads")) || failed(n.sameElem(0, 2)))
      return failure();
    FailureOr<SmallVector<int64_t>> p = n.constInts(1, "pads");
    if (failed(p))
      return failure();
    pads = *p;
    if (n.input(2)) {
      FailureOr<Value> v = scalarOperand(n, 2, "constant_value");
      if (failed(v))
        return failure();
      padValue = *v;
    } else {
      padValue = n.filled({}, x.elem, n.scalar(x.elem, 0));
    }
  }
  if (*mode != "constant" && *mode != "reflect" && *mode != "edge") {
    InFlightDiagnostic d = n.error() << "mode '" << *mode
                                     << "' is not supported";
    d.attachNote() << "expected constant, reflect or edge";
    return d;
  }
  if (int64_t(pads.size()) != 2 * rank) {
    InFlightDiagnostic d = n.error() << "has " << pads.size()
                                     << " pads for " << describe(x);
    d.attachNote() << "expected 2 * rank pads (all begins, then all ends)";
    return d;
  }
  SmallVector<int64_t> shape;
  for (int64_t k = 0; k < rank; ++k) {
    int64_t d = x.shape()[k] + pads[k] + pads[rank + k];
    if (d < 0) {
      InFlightDiagnostic diag = n.error() << "pads remove more than "
                                             "dimension "
                                          << k << " of " << describe(x);
      diag.attachNote() << "expected pads that leave a dimension of size >= 0";
      return diag;
    }
    shape.push_back(d);
  }
  if (failed(tooBig(n, shape)))
    return failure();
  if (numElements(shape) == 0)
    return Results{{n.empty(shape, x.elem), x.elem}};
  bool isConst = *mode == "constant";
  bool reflect = *mode == "reflect";
  // Negative pads crop first; edge and reflect then work on what is left
  // (reading the original tensor past the crop would be wrong).
  for (int64_t k = 0; k < rank; ++k) {
    int64_t begin = pads[k], end = pads[rank + k];
    int64_t left =
        x.shape()[k] + std::min<int64_t>(begin, 0) + std::min<int64_t>(end, 0);
    if (isConst || (begin <= 0 && end <= 0))
      continue;
    if (left <= 0)
      return n.error() << *mode << " padding of an empty dimension is not "
                                   "supported";
    if (reflect && std::max(begin, end) > left - 1)
      return n.error() << "reflect padding wider than the dimension less one "
                          "is not supported";
  }
  AffineMap scalarMap = AffineMap::get(rank, 0, n.ctx());
  if (isConst && numElements(x.shape()) == 0) {
    Value v = n.generic({padValue}, {scalarMap}, shape, x.elem,
                        [](OpBuilder &, Location, ValueRange a) { return a[0]; });
    return Results{{v, x.elem}};
  }
  Value src = x.value;
  ArrayRef<int64_t> in = x.shape();
  Value v = n.generic(
      {padValue}, {scalarMap}, shape, x.elem,
      [&](OpBuilder &b, Location loc, ValueRange a) -> Value {
        SmallVector<Value> at;
        Value inside;
        for (int64_t k = 0; k < rank; ++k) {
          int64_t d = in[k];
          Value i = arith::SubIOp::create(b, loc, loopIndex(b, loc, k),
                                          indexConst(b, loc, pads[k]));
          if (pads[k] <= 0 && pads[rank + k] <= 0) {
            at.push_back(i);
            continue;
          }
          if (isConst) {
            Value ge = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sge,
                                             i, indexConst(b, loc, 0));
            Value lt = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt,
                                             i, indexConst(b, loc, d));
            inside = andOf(b, loc, inside, arith::AndIOp::create(b, loc, ge, lt));
            at.push_back(clampIndex(b, loc, i, d - 1));
          } else if (reflect) {
            // -i before the start, 2 (d - 1) - i past the end.
            Value neg = arith::CmpIOp::create(
                b, loc, arith::CmpIPredicate::slt, i, indexConst(b, loc, 0));
            i = arith::SelectOp::create(
                b, loc, neg,
                arith::SubIOp::create(b, loc, indexConst(b, loc, 0), i), i);
            Value past = arith::CmpIOp::create(
                b, loc, arith::CmpIPredicate::sge, i, indexConst(b, loc, d));
            i = arith::SelectOp::create(
                b, loc, past,
                arith::SubIOp::create(b, loc, indexConst(b, loc, 2 * (d - 1)),
                                      i),
                i);
            at.push_back(clampIndex(b, loc, i, d - 1));
          } else {
            at.push_back(clampIndex(b, loc, i, d - 1));
          }
        }
        Value e = tensor::ExtractOp::create(b, loc, src, at);
        if (!inside)
          return e;
        return arith::SelectOp::create(b, loc, inside, e, a[0]);
      });
  return Results{{v, x.elem}};
}

/// DepthToSpace and SpaceToDepth on NCHW tensors.
FailureOr<Results> lowerDepthSpace(Node &n) {
  if (failed(n.arity(1, 1)) || failed(n.rankIs(0, 4, 4, "input")))
    return failure();
  bool toSpace = n.opType == "DepthToSpace";
  FailureOr<int64_t> bsA = n.intAttr("blocksize", 0);
  FailureOr<std::string> mode = strAttr(n, "mode", "DCR");
  if (failed(bsA) || failed(mode))
    return failure();
  int64_t bs = *bsA;
  const Operand &x = n.in[0];
  int64_t N = x.shape()[0], C = x.shape()[1], H = x.shape()[2],
          W = x.shape()[3];
  if (bs < 1 || (toSpace ? C % (bs * bs) : H % bs + W % bs) != 0) {
    InFlightDiagnostic d = n.error() << "blocksize " << bs << " does not divide "
                                     << describe(x);
    d.attachNote() << (toSpace ? "expected channels divisible by blocksize^2"
                               : "expected height and width divisible by "
                                 "blocksize");
    return d;
  }
  if (toSpace && *mode != "DCR" && *mode != "CRD") {
    InFlightDiagnostic d = n.error() << "mode '" << *mode
                                     << "' is not supported";
    d.attachNote() << "expected DCR or CRD";
    return d;
  }
  bool crd = *mode == "CRD";
  SmallVector<int64_t> shape =
      toSpace ? SmallVector<int64_t>{N, C / (bs * bs), H * bs, W * bs}
              : SmallVector<int64_t>{N, C * bs * bs, H / bs, W / bs};
  if (numElements(shape) == 0)
    return Results{{n.empty(shape, x.elem), x.elem}};
  int64_t outC = shape[1];
  Value src = x.value;
  Value v = n.generic(
      {}, {}, shape, x.elem,
      [&](OpBuilder &b, Location loc, ValueRange) -> Value {
        auto c = [&](int64_t v) { return indexConst(b, loc, v); };
        auto div = [&](Value a, int64_t d) {
          return arith::DivUIOp::create(b, loc, a, c(d));
        };
        auto rem = [&](Value a, int64_t d) {
          return arith::RemUIOp::create(b, loc, a, c(d));
        };
        auto add = [&](Value a, Value d) {
          return arith::AddIOp::create(b, loc, a, d);
        };
        auto mul = [&](Value a, int64_t d) {
          return arith::MulIOp::create(b, loc, a, c(d));
        };
        Value on = loopIndex(b, loc, 0), oc = loopIndex(b, loc, 1),
              oh = loopIndex(b, loc, 2), ow = loopIndex(b, loc, 3);
        SmallVector<Value> at;
        if (toSpace) {
          Value i = rem(oh, bs), j = rem(ow, bs);
          Value ij = add(mul(i, bs), j);
          // DCR: channel (i * bs + j) * C' + c; CRD: c * bs^2 + i * bs + j.
          Value ic = crd ? add(mul(oc, bs * bs), ij) : add(mul(ij, outC), oc);
          at = {on, ic, div(oh, bs), div(ow, bs)};
        } else {
          Value c0 = rem(oc, C), ij = div(oc, C);
          Value ih = add(mul(oh, bs), div(ij, bs));
          Value iw = add(mul(ow, bs), rem(ij, bs));
          at = {on, c0, ih, iw};
        }
        return tensor::ExtractOp::create(b, loc, src, at);
      });
  return Results{{v, x.elem}};
}

FailureOr<Results> lowerReverseSequence(Node &n) {
  if (failed(n.arity(2, 2)) ||
      failed(n.elemIn(1, {n.i64()}, "sequence_lens")) ||
      failed(n.rankIs(0, 2, INT64_MAX, "input")) ||
      failed(n.rankIs(1, 1, 1, "sequence_lens")))
    return failure();
  FailureOr<int64_t> batchA = n.intAttr("batch_axis", 1);
  FailureOr<int64_t> timeA = n.intAttr("time_axis", 0);
  if (failed(batchA) || failed(timeA))
    return failure();
  const Operand &x = n.in[0], &lens = n.in[1];
  int64_t ba = *batchA, ta = *timeA;
  if (!((ba == 0 && ta == 1) || (ba == 1 && ta == 0))) {
    InFlightDiagnostic d = n.error() << "batch_axis " << ba << " and time_axis "
                                     << ta << " are not 0 and 1";
    d.attachNote() << "expected batch_axis and time_axis to be 0 and 1";
    return d;
  }
  if (lens.shape()[0] != x.shape()[ba]) {
    InFlightDiagnostic d = n.error() << "sequence_lens " << describe(lens)
                                     << " does not match " << describe(x);
    d.attachNote() << "expected one length per batch element";
    return d;
  }
  int64_t rank = x.rank();
  if (numElements(x.shape()) == 0)
    return Results{{x.value, x.elem}};
  int64_t T = x.shape()[ta];
  AffineMap lenMap = AffineMap::get(rank, 0, getAffineDimExpr(ba, n.ctx()));
  Value src = x.value;
  Value v = n.generic(
      {lens.value}, {lenMap}, x.shape(), x.elem,
      [&](OpBuilder &b, Location loc, ValueRange a) -> Value {
        Value len = clampIndex(
            b, loc, arith::IndexCastOp::create(b, loc, b.getIndexType(), a[0]),
            T);
        Value t = loopIndex(b, loc, ta);
        Value rev = arith::SubIOp::create(
            b, loc, arith::SubIOp::create(b, loc, len, indexConst(b, loc, 1)),
            t);
        Value inSeq =
            arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt, t, len);
        SmallVector<Value> at;
        for (int64_t k = 0; k < rank; ++k)
          at.push_back(k == ta ? arith::SelectOp::create(b, loc, inSeq, rev, t)
                                     .getResult()
                               : loopIndex(b, loc, k));
        return tensor::ExtractOp::create(b, loc, src, at);
      });
  return Results{{v, x.elem}};
}

//===----------------------------------------------------------------------===//
// Searches and scans along an axis
//===----------------------------------------------------------------------===//

FailureOr<Results> lowerArgMaxMin(Node &n) {
  if (failed(n.arity(1, 1)) || failed(n.elemIn(0, n.numbers(), "data")))
    return failure();
  bool isMax = n.opType == "ArgMax";
  const Operand &x = n.in[0];
  int64_t rank = x.rank();
  if (rank == 0)
    return n.error() << "input " << describe(x) << " has no axis";
  FailureOr<int64_t> axisV = axisAttr(n, "axis", 0, rank, x);
  FailureOr<int64_t> keep = n.intAttr("keepdims", 1);
  FailureOr<int64_t> last = n.intAttr("select_last_index", 0);
  if (failed(axisV) || failed(keep) || failed(last))
    return failure();
  int64_t axis = *axisV;
  if (x.shape()[axis] == 0)
    return n.error() << "searches an empty axis of " << describe(x);
  // The reduced shape; keepdims puts the axis back as a 1 afterwards.
  SmallVector<int64_t> shape, kept(x.shape());
  kept[axis] = 1;
  SmallVector<AffineExpr> outExprs;
  SmallVector<utils::IteratorType> iters;
  for (int64_t k = 0; k < rank; ++k) {
    if (k == axis) {
      iters.push_back(utils::IteratorType::reduction);
      continue;
    }
    iters.push_back(utils::IteratorType::parallel);
    shape.push_back(x.shape()[k]);
    outExprs.push_back(getAffineDimExpr(k, n.ctx()));
  }
  AffineMap outMap = AffineMap::get(rank, 0, outExprs, n.ctx());
  Type elem = x.elem;
  Type storage = signlessType(elem);
  // The best value so far starts below (above) every number, so the first
  // element always takes it.
  Value init;
  if (isa<FloatType>(storage)) {
    init = arith::ConstantOp::create(
        n.b, n.loc, storage,
        n.b.getFloatAttr(storage, isMax
                                      ? -std::numeric_limits<double>::infinity()
                                      : std::numeric_limits<double>::infinity()));
  } else {
    unsigned w = storage.getIntOrFloatBitWidth();
    APInt v = isUnsigned(elem)
                  ? (isMax ? APInt::getMinValue(w) : APInt::getMaxValue(w))
                  : (isMax ? APInt::getSignedMinValue(w)
                           : APInt::getSignedMaxValue(w));
    init = arith::ConstantOp::create(n.b, n.loc, storage,
                                     n.b.getIntegerAttr(storage, v));
  }
  Value bestV = n.filled(shape, elem, init);
  Value bestI = n.filled(shape, n.i64(), n.scalar(n.i64(), 0));
  bool selectLast = *last != 0;
  SmallVector<Value> r = genericOp(
      n, {x.value}, {n.b.getMultiDimIdentityMap(rank)}, {bestV, bestI},
      {outMap, outMap}, iters,
      [&](OpBuilder &b, Location loc, ValueRange a,
          ValueRange acc) -> SmallVector<Value> {
        Value v = a[0];
        // numpy's argmax and argmin both stop at the first NaN.
        Value better;
        if (isa<FloatType>(storage)) {
          Value cmp = arith::CmpFOp::create(
              b, loc,
              isMax ? (selectLast ? arith::CmpFPredicate::OGE
                                  : arith::CmpFPredicate::OGT)
                    : (selectLast ? arith::CmpFPredicate::OLE
                                  : arith::CmpFPredicate::OLT),
              v, acc[0]);
          Value nan = isNaN(b, loc, v);
          if (!selectLast)
            nan = arith::AndIOp::create(
                b, loc, nan,
                arith::XOrIOp::create(b, loc, isNaN(b, loc, acc[0]),
                                      arith::ConstantIntOp::create(b, loc, 1,
                                                                   1)));
          better = arith::OrIOp::create(b, loc, cmp, nan);
        } else {
          bool u = isUnsigned(elem);
          arith::CmpIPredicate p =
              isMax ? (selectLast ? (u ? arith::CmpIPredicate::uge
                                       : arith::CmpIPredicate::sge)
                                  : (u ? arith::CmpIPredicate::ugt
                                       : arith::CmpIPredicate::sgt))
                    : (selectLast ? (u ? arith::CmpIPredicate::ule
                                       : arith::CmpIPredicate::sle)
                                  : (u ? arith::CmpIPredicate::ult
                                       : arith::CmpIPredicate::slt));
          better = arith::CmpIOp::create(b, loc, p, v, acc[0]);
        }
        Value i = arith::IndexCastOp::create(b, loc, b.getI64Type(),
                                             loopIndex(b, loc, axis));
        return {arith::SelectOp::create(b, loc, better, v, acc[0]),
                arith::SelectOp::create(b, loc, better, i, acc[1])};
      });
  Value idx = *keep ? n.reshape(r[1], kept) : r[1];
  return Results{{idx, n.i64()}};
}

FailureOr<Results> lowerTopK(Node &n) {
  int64_t k = 0;
  if (n.version < 10) {
    if (failed(n.arity(1, 1)))
      return failure();
    FailureOr<int64_t> kA = n.intAttr("k", -1);
    if (failed(kA))
      return failure();
    k = *kA;
  } else {
    if (failed(n.arity(2, 2)) || failed(n.elemIn(1, {n.i64()}, "K")))
      return failure();
    FailureOr<SmallVector<int64_t>> kV = n.constInts(1, "K");
    if (failed(kV))
      return failure();
    if (kV->size() != 1)
      return n.error() << "input 1 (K) has " << kV->size()
                       << " elements, expected 1";
    k = (*kV)[0];
  }
  if (failed(n.elemIn(0, n.numbers(), "X")))
    return failure();
  const Operand &x = n.in[0];
  int64_t rank = x.rank();
  if (rank == 0)
    return n.error() << "input " << describe(x) << " has no axis";
  FailureOr<int64_t> axisV = axisAttr(n, "axis", -1, rank, x);
  FailureOr<int64_t> largestA = n.intAttr("largest", 1);
  if (failed(axisV) || failed(largestA))
    return failure();
  int64_t axis = *axisV;
  int64_t L = x.shape()[axis];
  if (k < 0 || k > L) {
    InFlightDiagnostic d = n.error() << "K " << k << " is out of range for "
                                     << describe(x);
    d.attachNote() << "expected K in [0, " << L << "]";
    return d;
  }
  bool largest = *largestA != 0;
  SmallVector<int64_t> shape(x.shape());
  shape[axis] = k;
  if (numElements(shape) == 0)
    return Results{{n.empty(shape, x.elem), x.elem},
                   {n.empty(shape, n.i64()), n.i64()}};
  Type elem = x.elem;
  // The rank of every element along the axis: how many elements order
  // before it (by value, then by position, so ranks are distinct). Element
  // of rank j goes to output position j. Both steps are reductions in
  // linalg, quadratic in the axis length.
  SmallVector<AffineExpr> firstExprs, otherExprs;
  for (int64_t d = 0; d < rank; ++d) {
    firstExprs.push_back(getAffineDimExpr(d, n.ctx()));
    otherExprs.push_back(getAffineDimExpr(d == axis ? rank : d, n.ctx()));
  }
  AffineMap firstMap = AffineMap::get(rank + 1, 0, firstExprs, n.ctx());
  AffineMap otherMap = AffineMap::get(rank + 1, 0, otherExprs, n.ctx());
  SmallVector<utils::IteratorType> iters(rank, utils::IteratorType::parallel);
  iters.push_back(utils::IteratorType::reduction);
  Value zeroRanks = n.filled(x.shape(), n.i64(), n.scalar(n.i64(), 0));
  Value ranks = genericOp(
      n, {x.value, x.value}, {firstMap, otherMap}, {zeroRanks}, {firstMap},
      iters,
      [&](OpBuilder &b, Location loc, ValueRange a,
          ValueRange acc) -> SmallVector<Value> {
        Value self = a[0], other = a[1];
        Value before = ordersBefore(b, loc, other, self, elem, largest);
        Value tie = arith::AndIOp::create(
            b, loc, sameValue(b, loc, other, self, elem),
            arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult,
                                  loopIndex(b, loc, rank),
                                  loopIndex(b, loc, axis)));
        before = arith::OrIOp::create(b, loc, before, tie);
        Value one = arith::ExtUIOp::create(b, loc, b.getI64Type(), before);
        return {arith::AddIOp::create(b, loc, acc[0], one)};
      })[0];
  Value initV = n.filled(shape, elem, n.scalar(elem, 0));
  Value initI = n.filled(shape, n.i64(), n.scalar(n.i64(), 0));
  SmallVector<Value> r = genericOp(
      n, {x.value, ranks}, {otherMap, otherMap}, {initV, initI},
      {firstMap, firstMap}, iters,
      [&](OpBuilder &b, Location loc, ValueRange a,
          ValueRange acc) -> SmallVector<Value> {
        Value j = arith::IndexCastOp::create(b, loc, b.getI64Type(),
                                             loopIndex(b, loc, axis));
        Value hit =
            arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, a[1], j);
        Value i = arith::IndexCastOp::create(b, loc, b.getI64Type(),
                                             loopIndex(b, loc, rank));
        return {arith::SelectOp::create(b, loc, hit, a[0], acc[0]),
                arith::SelectOp::create(b, loc, hit, i, acc[1])};
      });
  return Results{{r[0], elem}, {r[1], n.i64()}};
}

FailureOr<Results> lowerCumSum(Node &n) {
  if (failed(n.arity(2, 2)) ||
      failed(n.elemIn(0, {n.f32(), n.f64(), n.i32(), n.i64()}, "x")) ||
      failed(n.elemIn(1, {n.i32(), n.i64()}, "axis")))
    return failure();
  std::optional<HostTensor> axisT = n.constant(1);
  if (!axisT || axisT->size() != 1) {
    InFlightDiagnostic d = n.error() << "input 1 (axis) is not a constant";
    d.attachNote() << "expected a constant scalar";
    return d;
  }
  const Operand &x = n.in[0];
  int64_t rank = x.rank();
  auto axis = normalizeAxis(axisT->i[0], rank);
  if (!axis) {
    InFlightDiagnostic d = n.error() << "axis " << axisT->i[0]
                                     << " is out of range for " << describe(x);
    d.attachNote() << "expected an axis in [-rank, rank)";
    return d;
  }
  FailureOr<int64_t> exclusive = n.intAttr("exclusive", 0);
  FailureOr<int64_t> reverse = n.intAttr("reverse", 0);
  if (failed(exclusive) || failed(reverse))
    return failure();
  if (numElements(x.shape()) == 0)
    return Results{{x.value, x.elem}};
  int64_t ax = *axis, L = x.shape()[ax];
  bool excl = *exclusive != 0, rev = *reverse != 0;
  // Element i sums the elements j <= i (j >= i when reversed; strictly when
  // exclusive), added in the order the reference scans them: a reduction
  // loop over the axis, read backwards when reversed.
  // The reduction loop must also appear alone in some map for linalg to
  // size it: x is passed a second time, read forwards and unused.
  SmallVector<AffineExpr> inExprs, fwdExprs, outExprs;
  for (int64_t d = 0; d < rank; ++d) {
    AffineExpr j = getAffineDimExpr(rank, n.ctx());
    inExprs.push_back(d == ax ? (rev ? getAffineConstantExpr(L - 1, n.ctx()) - j
                                     : j)
                              : getAffineDimExpr(d, n.ctx()));
    fwdExprs.push_back(d == ax ? j : getAffineDimExpr(d, n.ctx()));
    outExprs.push_back(getAffineDimExpr(d, n.ctx()));
  }
  AffineMap inMap = AffineMap::get(rank + 1, 0, inExprs, n.ctx());
  AffineMap fwdMap = AffineMap::get(rank + 1, 0, fwdExprs, n.ctx());
  SmallVector<Value> ins = {x.value};
  SmallVector<AffineMap> inMaps = {inMap};
  if (rev) {
    ins.push_back(x.value);
    inMaps.push_back(fwdMap);
  }
  AffineMap outMap = AffineMap::get(rank + 1, 0, outExprs, n.ctx());
  SmallVector<utils::IteratorType> iters(rank, utils::IteratorType::parallel);
  iters.push_back(utils::IteratorType::reduction);
  Type elem = x.elem;
  Value init = n.filled(x.shape(), elem, n.scalar(elem, 0));
  Value r = genericOp(
      n, ins, inMaps, {init}, {outMap}, iters,
      [&](OpBuilder &b, Location loc, ValueRange a,
          ValueRange acc) -> SmallVector<Value> {
        Value i = loopIndex(b, loc, ax), j = loopIndex(b, loc, rank);
        if (rev)
          j = arith::SubIOp::create(b, loc, indexConst(b, loc, L - 1), j);
        arith::CmpIPredicate p =
            rev ? (excl ? arith::CmpIPredicate::sgt : arith::CmpIPredicate::sge)
                : (excl ? arith::CmpIPredicate::slt
                        : arith::CmpIPredicate::sle);
        Value take = arith::CmpIOp::create(b, loc, p, j, i);
        return {arith::SelectOp::create(b, loc, take,
                                        addOf(b, loc, acc[0], a[0], elem),
                                        acc[0])};
      })[0];
  return Results{{r, elem}};
}

//===----------------------------------------------------------------------===//
// Einsum
//===----------------------------------------------------------------------===//

/// One term of an Einsum equation: its labels, with '.' standing for the
/// ellipsis (at most once).
struct EinsumTerm {
  std::string labels;
  bool ellipsis = false;
};

std::optional<EinsumTerm> parseTerm(StringRef s) {
  EinsumTerm t;
  for (size_t k = 0; k < s.size(); ++k) {
    char c = s[k];
    if (c == '.') {
      if (t.ellipsis || s.substr(k, 3) != "...")
        return std::nullopt;
      t.ellipsis = true;
      t.labels.push_back('.');
      k += 2;
    } else if (llvm::isAlpha(c)) {
      t.labels.push_back(c);
    } else {
      return std::nullopt;
    }
  }
  return t;
}

FailureOr<Results> lowerEinsum(Node &n) {
  if (n.in.empty())
    return n.error() << "has no inputs";
  FailureOr<std::string> eqA = strAttr(n, "equation", "");
  if (failed(eqA))
    return failure();
  for (size_t k = 0; k < n.in.size(); ++k) {
    if (!n.in[k])
      return n.error() << "input " << k << " is omitted";
    if (failed(n.elemIn(k, {n.f32(), n.f64(), n.i32(), n.i64()}, "input")) ||
        failed(n.sameElem(0, k)))
      return failure();
  }
  std::string eq;
  for (char c : *eqA)
    if (c != ' ')
      eq.push_back(c);
  auto bad = [&](StringRef why) -> FailureOr<Results> {
    InFlightDiagnostic d = n.error() << "equation '" << *eqA << "' " << why;
    d.attachNote() << "expected terms of letters and at most one '...', one "
                      "per input, and an output of distinct input letters";
    return d;
  };
  StringRef lhs = eq, rhs;
  bool explicitOut = false;
  if (size_t arrow = StringRef(eq).find("->"); arrow != StringRef::npos) {
    lhs = StringRef(eq).take_front(arrow);
    rhs = StringRef(eq).drop_front(arrow + 2);
    explicitOut = true;
  }
  SmallVector<StringRef> termStrs;
  lhs.split(termStrs, ',');
  if (termStrs.size() != n.in.size())
    return bad("does not have one term per input");
  SmallVector<EinsumTerm> terms;
  for (StringRef s : termStrs) {
    auto t = parseTerm(s);
    if (!t)
      return bad("has a malformed term");
    terms.push_back(*t);
  }
  // Sizes of the letters and the broadcast shape of the ellipsis.
  std::map<char, int64_t> size;
  std::map<char, int> count;
  SmallVector<int64_t> ell;
  bool anyEllipsis = false;
  for (auto [t, o] : llvm::zip(terms, n.in)) {
    int64_t letters = t.labels.size() - (t.ellipsis ? 1 : 0);
    int64_t ellRank = o.rank() - letters;
    if (ellRank < 0 || (!t.ellipsis && ellRank != 0))
      return bad("does not match the rank of " + describe(o));
    int64_t pos = 0;
    for (char c : t.labels) {
      if (c == '.') {
        auto s = broadcastShapes(ell, o.shape().slice(pos, ellRank));
        if (!s)
          return bad("has ellipsis dimensions that do not broadcast");
        ell = *s;
        anyEllipsis = true;
        pos += ellRank;
        continue;
      }
      int64_t d = o.shape()[pos++];
      auto [it, fresh] = size.try_emplace(c, d);
      if (!fresh && it->second != d)
        return bad(std::string("gives letter '") + c + "' two sizes");
      ++count[c];
    }
  }
  EinsumTerm out;
  if (explicitOut) {
    auto t = parseTerm(rhs);
    if (!t)
      return bad("has a malformed output");
    out = *t;
    for (char c : out.labels)
      if (c != '.' && (!size.count(c) ||
                       llvm::count(out.labels, c) != 1))
        return bad("has an output letter that is repeated or not an input's");
  } else {
    if (anyEllipsis) {
      out.labels.push_back('.');
      out.ellipsis = true;
    }
    // Letters that appear once, in alphabetical order (std::map's order).
    for (auto [c, k] : count)
      if (k == 1)
        out.labels.push_back(c);
  }
  // Loops: the output's dimensions, then the summed letters (and the
  // ellipsis when the output drops it).
  SmallVector<int64_t> outShape, loopSize;
  std::map<char, int64_t> loopOf;
  int64_t ellLoop = -1;
  for (char c : out.labels) {
    if (c == '.') {
      ellLoop = loopSize.size();
      loopSize.append(ell.begin(), ell.end());
      outShape.append(ell.begin(), ell.end());
      continue;
    }
    loopOf[c] = loopSize.size();
    loopSize.push_back(size[c]);
    outShape.push_back(size[c]);
  }
  int64_t nOut = loopSize.size();
  if (anyEllipsis && ellLoop < 0) {
    ellLoop = loopSize.size();
    loopSize.append(ell.begin(), ell.end());
  }
  for (auto [c, s] : size)
    if (!loopOf.count(c)) {
      loopOf[c] = loopSize.size();
      loopSize.push_back(s);
    }
  if (failed(tooBig(n, outShape)))
    return failure();
  int64_t nLoops = loopSize.size();
  SmallVector<AffineMap> maps;
  for (auto [t, o] : llvm::zip(terms, n.in)) {
    SmallVector<AffineExpr> exprs;
    int64_t letters = t.labels.size() - (t.ellipsis ? 1 : 0);
    int64_t ellRank = o.rank() - letters;
    int64_t pos = 0;
    for (char c : t.labels) {
      if (c != '.') {
        exprs.push_back(getAffineDimExpr(loopOf[c], n.ctx()));
        ++pos;
        continue;
      }
      // Aligned at the end of the broadcast ellipsis; size-1 dimensions
      // broadcast.
      int64_t off = ell.size() - ellRank;
      for (int64_t k = 0; k < ellRank; ++k, ++pos) {
        int64_t e = off + k;
        exprs.push_back(o.shape()[pos] == 1 && ell[e] != 1
                            ? getAffineConstantExpr(0, n.ctx())
                            : getAffineDimExpr(ellLoop + e, n.ctx()));
      }
    }
    maps.push_back(AffineMap::get(nLoops, 0, exprs, n.ctx()));
  }
  SmallVector<AffineExpr> outExprs;
  for (int64_t k = 0; k < nOut; ++k)
    outExprs.push_back(getAffineDimExpr(k, n.ctx()));
  AffineMap outMap = AffineMap::get(nLoops, 0, outExprs, n.ctx());
  SmallVector<utils::IteratorType> iters(nOut, utils::IteratorType::parallel);
  iters.append(nLoops - nOut, utils::IteratorType::reduction);
  Type elem = n.in[0].elem;
  Value init = n.filled(outShape, elem, n.scalar(elem, 0));
  if (numElements(outShape) == 0)
    return Results{{init, elem}};
  if (llvm::is_contained(loopSize, 0))
    return Results{{init, elem}};
  SmallVector<Value> inputs;
  for (const Operand &o : n.in)
    inputs.push_back(o.value);
  Value r = genericOp(
      n, inputs, maps, {init}, {outMap}, iters,
      [&](OpBuilder &b, Location loc, ValueRange a,
          ValueRange acc) -> SmallVector<Value> {
        Value p = a[0];
        for (Value v : a.drop_front())
          p = mulOf(b, loc, p, v, elem);
        return {addOf(b, loc, acc[0], p, elem)};
      })[0];
  return Results{{r, elem}};
}

//===----------------------------------------------------------------------===//
// NonZero
//===----------------------------------------------------------------------===//

FailureOr<Results> lowerNonZero(Node &n) {
  if (failed(n.arity(1, 1)))
    return failure();
  std::optional<HostTensor> x = n.constant(0);
  if (!x) {
    InFlightDiagnostic d = n.error() << "NonZero of an input known only at "
                                        "run time is not supported";
    d.attachNote() << "expected a constant input: the result's size must be "
                      "known at compile time";
    return d;
  }
  int64_t rank = x->shape.size();
  SmallVector<int64_t> hits;
  for (int64_t k = 0; k < x->size(); ++k)
    if (x->isFloat() ? x->f[k] != 0.0 : x->i[k] != 0)
      hits.push_back(k);
  int64_t count = hits.size();
  HostTensor r;
  r.elem = n.i64();
  r.shape = {rank, count};
  r.i.assign(rank * count, 0);
  // Coordinates of each hit, row-major, one row per dimension.
  for (int64_t h = 0; h < count; ++h) {
    int64_t flat = hits[h];
    for (int64_t d = rank - 1; d >= 0; --d) {
      int64_t dim = x->shape[d];
      r.i[d * count + h] = flat % dim;
      flat /= dim;
    }
  }
  return Results{n.constantOf(r)};
}

} // namespace

/// Indexing, scatters, rearrangements and searches along an axis.
ArrayRef<Lowering> mlir::bitnet::onnx::indexingLowerings() {
  static const Lowering lowerings[] = {
      {"Flatten", {1, 9, 11, 13}, lowerFlatten},
      {"GatherElements", {11, 13}, lowerGatherElements},
      {"GatherND", {11, 12, 13}, lowerGatherND},
      {"Compress", {9, 11}, lowerCompress},
      {"OneHot", {9, 11}, lowerOneHot},
      {"EyeLike", {9}, lowerEyeLike},
      {"Scatter", {9, 11}, lowerScatterElements},
      {"ScatterElements", {11, 13, 16}, lowerScatterElements},
      {"ScatterND", {11, 13, 16}, lowerScatterND},
      {"Tile", {6, 13}, lowerTile},
      {"Pad", {2, 11, 13}, lowerPad},
      {"DepthToSpace", {1, 11, 13}, lowerDepthSpace},
      {"SpaceToDepth", {1, 13}, lowerDepthSpace},
      {"ReverseSequence", {10}, lowerReverseSequence},
      {"ArgMax", {1, 11, 12, 13}, lowerArgMaxMin},
      {"ArgMin", {1, 11, 12, 13}, lowerArgMaxMin},
      {"TopK", {1, 10, 11}, lowerTopK},
      {"CumSum", {11, 14}, lowerCumSum},
      {"Einsum", {12}, lowerEinsum},
      {"NonZero", {9, 13}, lowerNonZero},
  };
  return lowerings;
}
