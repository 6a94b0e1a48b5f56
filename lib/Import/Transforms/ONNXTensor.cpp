//===- ONNXTensor.cpp - Shape and tensor ONNX operations ------------------===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// Constant, the shape computations (Shape, Size, ConstantOfShape, Range) and
// the operations that move elements without computing on them (Reshape,
// Expand, Transpose, Squeeze/Unsqueeze, Concat, Slice, Split, Gather,
// Trilu). Results have static shapes, so shape inputs must be constants
// (after folding).
//
//===----------------------------------------------------------------------===//

#include "ONNXNode.h"

#include "bitnet/Dialect/BitNet/IR/BitNet.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Matchers.h"

using namespace mlir;
using namespace mlir::bitnet;
using namespace mlir::bitnet::onnx;

namespace {

FailureOr<Results> lowerConstant(Node &n) {
  if (failed(n.arity(0, 0)))
    return failure();
  Attribute a;
  for (StringRef name :
       {"value", "value_float", "value_floats", "value_int", "value_ints",
        "sparse_value", "value_string", "value_strings"}) {
    if (Attribute v = n.attrs.get(name)) {
      if (a)
        return n.error() << "has more than one value attribute";
      a = v;
      if (name.starts_with("value_string") || name == "sparse_value")
        return n.error() << "attribute '" << name << "' is not supported";
    }
  }
  if (!a) {
    InFlightDiagnostic d = n.error() << "has no value";
    d.attachNote() << "expected one of the attributes value, value_float, "
                      "value_floats, value_int, value_ints";
    return d;
  }
  if (auto f = dyn_cast<FloatAttr>(a))
    return Results{
        {arith::ConstantOp::create(
             n.b, n.loc,
             DenseElementsAttr::get(RankedTensorType::get({}, n.f32()),
                                    {float(f.getValueAsDouble())})),
         n.f32()}};
  if (auto i = dyn_cast<IntegerAttr>(a))
    return Results{{arith::ConstantOp::create(
                        n.b, n.loc,
                        DenseElementsAttr::get(
                            RankedTensorType::get({}, n.i64()), {i.getInt()})),
                    n.i64()}};
  if (auto fs = dyn_cast<DenseF32ArrayAttr>(a))
    return Results{
        {arith::ConstantOp::create(
             n.b, n.loc,
             DenseElementsAttr::get(
                 RankedTensorType::get({int64_t(fs.size())}, n.f32()),
                 fs.asArrayRef())),
         n.f32()}};
  if (auto is = dyn_cast<DenseI64ArrayAttr>(a))
    return Results{
        {arith::ConstantOp::create(
             n.b, n.loc,
             DenseElementsAttr::get(
                 RankedTensorType::get({int64_t(is.size())}, n.i64()),
                 is.asArrayRef())),
         n.i64()}};
  auto dense = dyn_cast<DenseElementsAttr>(a);
  if (!dense)
    return n.error() << "attribute 'value' must be a tensor";
  Type elem = dense.getElementType();
  if (!llvm::is_contained(n.allTypes(), elem)) {
    InFlightDiagnostic d = n.error()
                           << "constant of type " << describeType(elem)
                           << " is not supported";
    d.attachNote() << "expected float, double, bool or an 8- to 64-bit integer";
    return d;
  }
  Type storage = signlessType(elem);
  if (storage != elem)
    dense = dense.bitcast(storage);
  return Results{{arith::ConstantOp::create(n.b, n.loc, dense), elem}};
}

FailureOr<Results> lowerShape(Node &n) {
  if (failed(n.arity(1, 1)))
    return failure();
  HostTensor x;
  x.elem = n.in[0].elem;
  x.shape.assign(n.in[0].shape().begin(), n.in[0].shape().end());
  // Shape only reads the input's (static) type.
  FailureOr<int64_t> start = n.intAttr("start", 0);
  FailureOr<int64_t> end = n.intAttr("end", x.shape.size());
  if (failed(start) || failed(end))
    return failure();
  int64_t rank = x.shape.size();
  int64_t s = *start < 0 ? *start + rank : *start;
  int64_t e = *end < 0 ? *end + rank : *end;
  s = std::clamp<int64_t>(s, 0, rank);
  e = std::clamp<int64_t>(e, 0, rank);
  HostTensor r;
  r.elem = n.i64();
  r.shape = {std::max<int64_t>(e - s, 0)};
  for (int64_t k = s; k < e; ++k)
    r.i.push_back(x.shape[k]);
  return Results{n.constantOf(r)};
}

FailureOr<Results> lowerSize(Node &n) {
  if (failed(n.arity(1, 1)))
    return failure();
  HostTensor r;
  r.elem = n.i64();
  r.i = {numElements(n.in[0].shape())};
  return Results{n.constantOf(r)};
}

FailureOr<Results> lowerConstantOfShape(Node &n) {
  if (failed(n.arity(1, 1)) || failed(n.elemIn(0, {n.i64()}, "input")))
    return failure();
  FailureOr<SmallVector<int64_t>> shape = n.constInts(0, "input");
  if (failed(shape))
    return failure();
  if (numElements(*shape) < 0) {
    InFlightDiagnostic d = n.error() << "shape has a negative or absurd "
                                        "dimension";
    d.attachNote() << "expected dimensions in [0, " << kMaxDim << "]";
    return d;
  }
  Type elem = n.f32();
  Attribute value = FloatAttr::get(n.f32(), 0.0);
  if (Attribute a = n.attrs.get("value")) {
    auto dense = dyn_cast<DenseElementsAttr>(a);
    if (!dense || dense.getNumElements() != 1 ||
        !llvm::is_contained(n.allTypes(), dense.getElementType()))
      return n.error() << "attribute 'value' must be a one-element tensor of "
                          "a supported type";
    elem = dense.getElementType();
    Type storage = signlessType(elem);
    if (storage != elem)
      dense = dense.bitcast(storage);
    value = dense.getSplatValue<Attribute>();
  }
  auto type = RankedTensorType::get(*shape, signlessType(elem));
  return Results{{arith::ConstantOp::create(
                      n.b, n.loc, DenseElementsAttr::get(type, value)),
                  elem}};
}

FailureOr<Results> lowerRange(Node &n) {
  if (failed(n.arity(3, 3)) ||
      failed(n.elemIn(
          0, {n.f32(), n.f64(), n.b.getIntegerType(16), n.i32(), n.i64()},
          "start")) ||
      failed(n.sameElem(0, 1)) || failed(n.sameElem(0, 2)))
    return failure();
  // Folded before lowering when the inputs are constants.
  InFlightDiagnostic d = n.error() << "start, limit and delta are not "
                                      "constants (or delta is 0)";
  d.attachNote() << "expected constant scalars: the result's size must be "
                    "known at compile time";
  return d;
}

FailureOr<Results> lowerReshape(Node &n) {
  if (failed(n.arity(2, 2)) || failed(n.elemIn(1, {n.i64()}, "shape")))
    return failure();
  FailureOr<SmallVector<int64_t>> target = n.constInts(1, "shape");
  FailureOr<int64_t> allowZero = n.intAttr("allowzero", 0);
  if (failed(target) || failed(allowZero))
    return failure();
  std::string error;
  auto shape = reshapeShape(n.in[0].shape(), *target, *allowZero, error);
  if (!shape) {
    InFlightDiagnostic d = n.error() << "cannot reshape " << describe(n.in[0])
                                     << ": " << error;
    d.attachNote() << "expected a shape with as many elements as the input";
    return d;
  }
  return Results{{n.reshape(n.in[0].value, *shape), n.in[0].elem}};
}

FailureOr<Results> lowerExpand(Node &n) {
  if (failed(n.arity(2, 2)) || failed(n.elemIn(1, {n.i64()}, "shape")))
    return failure();
  FailureOr<SmallVector<int64_t>> target = n.constInts(1, "shape");
  if (failed(target))
    return failure();
  auto shape = broadcastShapes(n.in[0].shape(), *target);
  if (!shape || numElements(*shape) < 0) {
    InFlightDiagnostic d = n.error() << "cannot expand " << describe(n.in[0])
                                     << " to the given shape";
    d.attachNote() << "expected a shape the input broadcasts to";
    return d;
  }
  Type elem = n.in[0].elem;
  Value v = n.generic({n.in[0].value},
                      {n.broadcastMap(n.in[0].shape(), *shape)}, *shape, elem,
                      [](OpBuilder &, Location, ValueRange a) { return a[0]; });
  return Results{{v, elem}};
}

FailureOr<Results> lowerTranspose(Node &n) {
  if (failed(n.arity(1, 1)))
    return failure();
  auto permAttr = n.intsAttr("perm");
  if (failed(permAttr))
    return failure();
  int64_t rank = n.in[0].rank();
  SmallVector<int64_t> perm;
  if (*permAttr)
    perm = **permAttr;
  else
    for (int64_t k = rank - 1; k >= 0; --k)
      perm.push_back(k);
  SmallVector<bool> seen(rank, false);
  bool ok = int64_t(perm.size()) == rank;
  SmallVector<int64_t> shape;
  for (int64_t p : perm) {
    if (!ok || p < 0 || p >= rank || seen[p]) {
      ok = false;
      break;
    }
    seen[p] = true;
    shape.push_back(n.in[0].shape()[p]);
  }
  if (!ok) {
    InFlightDiagnostic d = n.error() << "attribute 'perm' is not a "
                                        "permutation of the input's "
                                     << rank << " dimensions";
    d.attachNote() << "expected a permutation of 0.." << rank - 1;
    return d;
  }
  Value init = n.empty(shape, n.in[0].elem);
  auto t = linalg::TransposeOp::create(n.b, n.loc, n.in[0].value, init, perm);
  return Results{{t->getResult(0), n.in[0].elem}};
}

FailureOr<Results> lowerSqueezeUnsqueeze(Node &n) {
  bool unsqueeze = n.opType == "Unsqueeze";
  std::optional<SmallVector<int64_t>> axes;
  if (n.version >= 13) {
    if (failed(n.arity(unsqueeze ? 2 : 1, 2)))
      return failure();
    if (n.input(1)) {
      FailureOr<SmallVector<int64_t>> a = n.constInts(1, "axes");
      if (failed(a))
        return failure();
      axes = *a;
    }
  } else {
    if (failed(n.arity(1, 1)))
      return failure();
    auto a = n.intsAttr("axes");
    if (failed(a))
      return failure();
    axes = *a;
    if (unsqueeze && !axes)
      return n.error() << "has no attribute 'axes'";
  }
  ArrayRef<int64_t> in = n.in[0].shape();
  SmallVector<int64_t> shape;
  auto bad = [&](StringRef why) -> FailureOr<Results> {
    InFlightDiagnostic d = n.error() << "invalid axes for " << describe(n.in[0])
                                     << ": " << why;
    d.attachNote() << "expected distinct axes in range"
                   << (unsqueeze ? "" : " that name dimensions of size 1");
    return d;
  };
  if (unsqueeze) {
    int64_t rank = in.size() + axes->size();
    SmallVector<bool> mark(rank, false);
    for (int64_t a : *axes) {
      auto k = normalizeAxis(a, rank);
      if (!k || mark[*k])
        return bad(k ? "repeated axis" : "axis out of range");
      mark[*k] = true;
    }
    size_t j = 0;
    for (int64_t k = 0; k < rank; ++k)
      shape.push_back(mark[k] ? 1 : in[j++]);
  } else {
    int64_t rank = in.size();
    SmallVector<bool> mark(rank, false);
    if (axes) {
      for (int64_t a : *axes) {
        auto k = normalizeAxis(a, rank);
        if (!k)
          return bad("axis out of range");
        if (in[*k] != 1)
          return bad("dimension is not 1");
        mark[*k] = true;
      }
    } else {
      for (int64_t k = 0; k < rank; ++k)
        mark[k] = in[k] == 1;
    }
    for (int64_t k = 0; k < rank; ++k)
      if (!mark[k])
        shape.push_back(in[k]);
  }
  return Results{{n.reshape(n.in[0].value, shape), n.in[0].elem}};
}

FailureOr<Results> lowerConcat(Node &n) {
  if (n.in.empty())
    return n.error() << "has no inputs";
  for (size_t k = 0; k < n.in.size(); ++k) {
    if (!n.in[k])
      return n.error() << "input " << k << " is omitted";
    if (failed(n.sameElem(0, k)))
      return failure();
  }
  FailureOr<int64_t> axisAttr = n.intAttr("axis", INT64_MIN);
  if (failed(axisAttr))
    return failure();
  if (*axisAttr == INT64_MIN)
    return n.error() << "has no attribute 'axis'";
  int64_t rank = n.in[0].rank();
  auto axis = normalizeAxis(*axisAttr, rank);
  if (!axis || rank == 0) {
    InFlightDiagnostic d = n.error() << "axis " << *axisAttr
                                     << " is out of range for rank " << rank;
    d.attachNote() << "expected an axis in [-rank, rank) of inputs of rank "
                      ">= 1";
    return d;
  }
  SmallVector<int64_t> shape(n.in[0].shape());
  shape[*axis] = 0;
  for (const Operand &o : n.in) {
    bool ok = o.rank() == rank;
    for (int64_t k = 0; ok && k < rank; ++k)
      ok = k == *axis || o.shape()[k] == n.in[0].shape()[k];
    if (!ok) {
      InFlightDiagnostic d = n.error()
                             << "input " << describe(o) << " does not match "
                             << describe(n.in[0]);
      d.attachNote() << "expected equal shapes except along axis " << *axis;
      return d;
    }
    shape[*axis] += o.shape()[*axis];
  }
  if (numElements(shape) < 0)
    return n.error() << "result has too many elements";
  // Each output element reads the input whose range along the axis holds
  // it (a select over all inputs; indices are clamped so every read is in
  // bounds). Inputs that are empty along the axis contribute nothing.
  SmallVector<std::pair<Value, int64_t>> parts; // input, end offset
  int64_t offset = 0;
  for (const Operand &o : n.in) {
    if (o.shape()[*axis] == 0)
      continue;
    offset += o.shape()[*axis];
    parts.push_back({o.value, offset});
  }
  int64_t ax = *axis;
  if (parts.empty())
    return Results{{n.empty(shape, n.in[0].elem), n.in[0].elem}};
  Value dest = n.generic(
      {}, {}, shape, n.in[0].elem,
      [&](OpBuilder &b, Location loc, ValueRange) -> Value {
        SmallVector<Value> idx;
        for (int64_t k = 0; k < rank; ++k)
          idx.push_back(linalg::IndexOp::create(b, loc, k));
        Value a = idx[ax];
        Value result;
        int64_t begin = 0;
        for (auto [value, end] : parts) {
          int64_t size = end - begin;
          Value local = arith::SubIOp::create(
              b, loc, a, arith::ConstantIndexOp::create(b, loc, begin));
          local = arith::MaxSIOp::create(
              b, loc, local, arith::ConstantIndexOp::create(b, loc, 0));
          local = arith::MinSIOp::create(
              b, loc, local, arith::ConstantIndexOp::create(b, loc, size - 1));
          SmallVector<Value> at(idx);
          at[ax] = local;
          Value v = tensor::ExtractOp::create(b, loc, value, at);
          if (!result) {
            result = v;
          } else {
            Value inRange = arith::CmpIOp::create(
                b, loc, arith::CmpIPredicate::sge, a,
                arith::ConstantIndexOp::create(b, loc, begin));
            result = arith::SelectOp::create(b, loc, inRange, v, result);
          }
          begin = end;
        }
        return result;
      });
  return Results{{dest, n.in[0].elem}};
}

/// Element i of every dimension of the result is element
/// start + i * step of `src` (a gather rather than a strided view: views of
/// tensors bufferize into strided copies that need runtime helpers a
/// compiled model does not link).
Value sliceOf(Node &n, Value src, ArrayRef<SliceDim> dims) {
  auto type = cast<RankedTensorType>(src.getType());
  SmallVector<int64_t> shape;
  for (const SliceDim &d : dims)
    shape.push_back(d.count);
  SmallVector<SliceDim> params(dims);
  return n.generic({}, {}, shape, type.getElementType(),
                   [&](OpBuilder &b, Location loc, ValueRange) -> Value {
                     SmallVector<Value> idx;
                     for (size_t k = 0; k < params.size(); ++k) {
                       const SliceDim &d = params[k];
                       Value i = linalg::IndexOp::create(b, loc, k);
                       Value s = arith::ConstantIndexOp::create(b, loc, d.step);
                       Value o =
                           arith::ConstantIndexOp::create(b, loc, d.start);
                       idx.push_back(arith::AddIOp::create(
                           b, loc, o, arith::MulIOp::create(b, loc, i, s)));
                     }
                     return tensor::ExtractOp::create(b, loc, src, idx);
                   });
}

FailureOr<Results> lowerSlice(Node &n) {
  if (failed(n.arity(3, 5)))
    return failure();
  FailureOr<SmallVector<int64_t>> starts = n.constInts(1, "starts"),
                                  ends = n.constInts(2, "ends");
  if (failed(starts) || failed(ends))
    return failure();
  SmallVector<int64_t> axes, steps;
  if (n.input(3)) {
    auto a = n.constInts(3, "axes");
    if (failed(a))
      return failure();
    axes = *a;
  }
  if (n.input(4)) {
    auto s = n.constInts(4, "steps");
    if (failed(s))
      return failure();
    steps = *s;
  }
  std::string error;
  auto dims = sliceParams(n.in[0].shape(), *starts, *ends, axes, steps, error);
  if (!dims) {
    InFlightDiagnostic d = n.error() << "invalid slice of " << describe(n.in[0])
                                     << ": " << error;
    d.attachNote() << "expected starts/ends/axes/steps of equal length, "
                      "distinct axes in range and non-zero steps";
    return d;
  }
  return Results{{sliceOf(n, n.in[0].value, *dims), n.in[0].elem}};
}

FailureOr<Results> lowerSplit(Node &n) {
  if (failed(n.arity(1, 2)))
    return failure();
  FailureOr<int64_t> axisAttr = n.intAttr("axis", 0);
  if (failed(axisAttr))
    return failure();
  const Operand &x = n.in[0];
  auto axis = normalizeAxis(*axisAttr, x.rank());
  if (!axis) {
    InFlightDiagnostic d = n.error() << "axis " << *axisAttr
                                     << " is out of range for " << describe(x);
    d.attachNote() << "expected an axis in [-rank, rank)";
    return d;
  }
  int64_t dim = x.shape()[*axis];
  int64_t outputs = n.op->getNumResults();
  SmallVector<int64_t> sizes;
  if (n.version >= 13 && n.input(1)) {
    FailureOr<SmallVector<int64_t>> s = n.constInts(1, "split");
    if (failed(s))
      return failure();
    sizes = *s;
  } else if (n.version < 13) {
    auto s = n.intsAttr("split");
    if (failed(s))
      return failure();
    if (*s)
      sizes = **s;
  }
  if (sizes.empty()) {
    if (outputs <= 0 || dim % outputs != 0) {
      InFlightDiagnostic d = n.error() << "cannot split dimension " << dim
                                       << " into " << outputs << " equal parts";
      d.attachNote() << "expected a dimension divisible by the number of "
                        "outputs, or a 'split' input";
      return d;
    }
    sizes.assign(outputs, dim / outputs);
  }
  int64_t total = 0;
  bool ok = int64_t(sizes.size()) == outputs;
  for (int64_t v : sizes) {
    ok &= v >= 0 && v <= dim;
    total += ok ? v : 0;
  }
  if (!ok || total != dim) {
    InFlightDiagnostic d = n.error() << "split sizes do not add up to "
                                        "dimension "
                                     << dim << " in " << outputs << " outputs";
    d.attachNote() << "expected one non-negative size per output, summing "
                      "to the dimension";
    return d;
  }
  Results results;
  int64_t offset = 0;
  for (int64_t size : sizes) {
    SmallVector<SliceDim> dims;
    for (int64_t k = 0; k < x.rank(); ++k)
      dims.push_back(k == *axis ? SliceDim{offset, 1, size}
                                : SliceDim{0, 1, x.shape()[k]});
    results.push_back({sliceOf(n, x.value, dims), x.elem});
    offset += size;
  }
  return results;
}

FailureOr<Results> lowerGather(Node &n) {
  if (failed(n.arity(2, 2)) ||
      failed(n.elemIn(1, {n.i32(), n.i64()}, "indices")))
    return failure();
  FailureOr<int64_t> axisAttr = n.intAttr("axis", 0);
  if (failed(axisAttr))
    return failure();
  const Operand &data = n.in[0], &indices = n.in[1];
  int64_t rank = data.rank();
  auto axis = normalizeAxis(*axisAttr, rank);
  if (!axis) {
    InFlightDiagnostic d = n.error()
                           << "axis " << *axisAttr << " is out of range for "
                           << describe(data);
    d.attachNote() << "expected data of rank >= 1 and an axis in [-rank, rank)";
    return d;
  }
  int64_t dim = data.shape()[*axis];
  int64_t ir = indices.rank();
  // Rows of a constant float table chosen at run time: an embedding, which
  // keeps its table in whatever precision the compiler picks for it.
  if (*axis == 0 && rank == 2 && data.elem == n.f32() && !n.constant(1) &&
      matchPattern(data.value, m_Constant())) {
    SmallVector<int64_t> outShape(indices.shape());
    outShape.push_back(data.shape()[1]);
    Value y = EmbeddingOp::create(n.b, n.loc,
                                  RankedTensorType::get(outShape, n.f32()),
                                  data.value, indices.value, Value(),
                                  /*blocked=*/nullptr);
    return Results{{y, n.f32()}};
  }
  SmallVector<int64_t> shape(data.shape().take_front(*axis));
  shape.append(indices.shape().begin(), indices.shape().end());
  shape.append(data.shape().begin() + *axis + 1, data.shape().end());
  if (numElements(shape) < 0)
    return n.error() << "result has too many elements";
  if (dim == 0 && numElements(shape) != 0)
    return n.error() << "gathers from an empty dimension";
  // Constant indices are checked here; indices only known at run time are
  // clamped into range (ONNX leaves out-of-range indices undefined), so a bad
  // index can never read outside the tensor.
  if (std::optional<HostTensor> idx = n.constant(1))
    for (int64_t i : idx->i)
      if (i < -dim || i >= dim) {
        InFlightDiagnostic d = n.error() << "index " << i
                                         << " is out of range for dimension "
                                         << *axis << " of " << describe(data);
        d.attachNote() << "expected indices in [" << -dim << ", " << dim << ")";
        return d;
      }
  SmallVector<AffineExpr> idxExprs;
  for (int64_t k = 0; k < ir; ++k)
    idxExprs.push_back(getAffineDimExpr(*axis + k, n.ctx()));
  AffineMap idxMap = AffineMap::get(shape.size(), 0, idxExprs, n.ctx());
  Value src = data.value;
  Type idxElem = signlessType(indices.elem);
  int64_t outer = *axis;
  Value v = n.generic(
      {indices.value}, {idxMap}, shape, data.elem,
      [&](OpBuilder &b, Location loc, ValueRange a) -> Value {
        // Negative indices count from the end; out-of-range indices are
        // clamped so a bad index can never read outside the tensor.
        Value i = a[0];
        Value dimV = arith::ConstantOp::create(b, loc, idxElem,
                                               b.getIntegerAttr(idxElem, dim));
        Value zero = arith::ConstantOp::create(b, loc, idxElem,
                                               b.getIntegerAttr(idxElem, 0));
        Value neg =
            arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt, i, zero);
        i = arith::SelectOp::create(b, loc, neg,
                                    arith::AddIOp::create(b, loc, i, dimV), i);
        Value hi = arith::ConstantOp::create(
            b, loc, idxElem,
            b.getIntegerAttr(idxElem, std::max<int64_t>(dim - 1, 0)));
        i = arith::MaxSIOp::create(b, loc, i, zero);
        i = arith::MinSIOp::create(b, loc, i, hi);
        Value ii = arith::IndexCastOp::create(b, loc, b.getIndexType(), i);
        SmallVector<Value> idx;
        for (int64_t k = 0; k < outer; ++k)
          idx.push_back(linalg::IndexOp::create(b, loc, k));
        idx.push_back(ii);
        for (int64_t k = outer + ir; k < int64_t(shape.size()); ++k)
          idx.push_back(linalg::IndexOp::create(b, loc, k));
        return tensor::ExtractOp::create(b, loc, src, idx);
      });
  return Results{{v, data.elem}};
}

FailureOr<Results> lowerTrilu(Node &n) {
  if (failed(n.arity(1, 2)) || failed(n.rankIs(0, 2, INT64_MAX, "input")) ||
      failed(n.elemIn(1, {n.i64()}, "k")))
    return failure();
  FailureOr<int64_t> upper = n.intAttr("upper", 1);
  if (failed(upper))
    return failure();
  SmallVector<Operand> ops = {n.in[0]};
  bool hasK = static_cast<bool>(n.input(1));
  if (hasK) {
    FailureOr<Value> k = scalarOperand(n, 1, "k");
    if (failed(k))
      return failure();
    ops.push_back({*k, n.i64()});
  }
  Type elem = n.in[0].elem;
  int64_t rank = n.in[0].rank();
  bool up = *upper != 0;
  FailureOr<Value> r = n.elementwise(
      ops, elem, [&](OpBuilder &b, Location loc, ValueRange a) -> Value {
        Value i = arith::IndexCastOp::create(
            b, loc, b.getI64Type(), linalg::IndexOp::create(b, loc, rank - 2));
        Value j = arith::IndexCastOp::create(
            b, loc, b.getI64Type(), linalg::IndexOp::create(b, loc, rank - 1));
        Value k = hasK ? a[1]
                       : arith::ConstantOp::create(b, loc, b.getI64Type(),
                                                   b.getI64IntegerAttr(0));
        Value diff = arith::SubIOp::create(b, loc, j, i);
        Value keep = arith::CmpIOp::create(
            b, loc, up ? arith::CmpIPredicate::sge : arith::CmpIPredicate::sle,
            diff, k);
        return arith::SelectOp::create(b, loc, keep, a[0],
                                       Node::scalarIn(b, loc, elem, 0));
      });
  if (failed(r))
    return failure();
  return Results{{*r, elem}};
}

} // namespace

/// Constants, shape computations and data movement.
ArrayRef<Lowering> mlir::bitnet::onnx::tensorLowerings() {
  static const Lowering lowerings[] = {
      {"Constant", {1, 9, 11, 12, 13}, lowerConstant},
      {"Shape", {13, 15}, lowerShape},
      {"ConstantOfShape", {9}, lowerConstantOfShape, kFoldable},
      {"Range", {11}, lowerRange, kFoldable},
      {"Reshape", {13, 14}, lowerReshape, kFoldable},
      {"Expand", {13}, lowerExpand, kFoldable},
      {"Transpose", {13}, lowerTranspose, kFoldable},
      {"Unsqueeze", {11, 13}, lowerSqueezeUnsqueeze, kFoldable},
      {"Squeeze", {11, 13}, lowerSqueezeUnsqueeze, kFoldable},
      {"Concat", {11, 13}, lowerConcat, kFoldable},
      {"Slice", {13}, lowerSlice, kFoldable},
      {"Gather", {11, 13}, lowerGather, kFoldable},
      {"Split", {11, 13}, lowerSplit},
      {"Trilu", {14}, lowerTrilu},
      {"Size", {13}, lowerSize},
  };
  return lowerings;
}
