//===- LegalizeONNX.cpp - ONNX operations to upstream dialects ------------===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// Each generic `onnx.<OpType>` operation is replaced, in graph order, by the
// lowering registered for its op type and operator version (the ONNX
// `since_version` the importer resolved). Every lowering computes its
// result's static shape from its operands, checks types and ranks, and
// reports what it expected at the node. Operations whose inputs are all
// constant and that the host evaluator knows (shape arithmetic above all)
// are folded to constants first.
//
//===----------------------------------------------------------------------===//

#include "bitnet/Import/Passes.h"

#include "HostEval.h"
#include "bitnet/Dialect/BitNet/IR/BitNet.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/Verifier.h"
#include "llvm/ADT/StringMap.h"

#include <cmath>

namespace mlir::bitnet {
#define GEN_PASS_DEF_BITNETLEGALIZEONNX
#include "bitnet/Import/Passes.h.inc"
} // namespace mlir::bitnet

using namespace mlir;
using namespace mlir::bitnet;
using namespace mlir::bitnet::onnx;

namespace {

/// An operand of an ONNX node after legalisation: a statically shaped tensor
/// with a signless element type, and its ONNX element type (signedness
/// included). `value` is null for an omitted optional input.
struct Operand {
  Value value;
  Type elem;
  explicit operator bool() const { return static_cast<bool>(value); }
  RankedTensorType type() const {
    return cast<RankedTensorType>(value.getType());
  }
  ArrayRef<int64_t> shape() const { return type().getShape(); }
  int64_t rank() const { return type().getRank(); }
};

struct Result {
  Value value;
  Type elem;
};
using Results = SmallVector<Result>;

std::string describeType(Type elem) {
  if (!elem)
    return "none";
  std::string s;
  llvm::raw_string_ostream os(s);
  if (elem.isInteger(1))
    os << "bool";
  else
    os << elem;
  return s;
}

std::string describe(const Operand &o) {
  if (!o)
    return "nothing";
  std::string s;
  llvm::raw_string_ostream os(s);
  os << "tensor<";
  for (int64_t d : o.shape())
    os << d << "x";
  os << describeType(o.elem) << ">";
  return s;
}

/// Everything a lowering needs about the node it lowers.
class Node {
public:
  Node(Operation *op, OpBuilder &b, StringRef opType, int64_t version,
       SmallVector<Operand> in)
      : op(op), b(b), loc(op->getLoc()), opType(opType), version(version),
        in(std::move(in)), attrs(op->getAttrDictionary()) {}

  Operation *op;
  OpBuilder &b;
  Location loc;
  StringRef opType;
  int64_t version;
  SmallVector<Operand> in;
  DictionaryAttr attrs;

  MLIRContext *ctx() { return b.getContext(); }

  /// "node 'name' (OpType): " and the message.
  InFlightDiagnostic error() {
    return emitError(loc) << nodeDescription(op) << ": ";
  }
  static std::string nodeDescription(Operation *op) {
    std::string name;
    if (auto nl = dyn_cast<NameLoc>(op->getLoc()))
      name = nl.getName().str();
    StringRef type = op->getName().getStringRef();
    type.consume_front("onnx.");
    return "node '" + name + "' (" + type.str() + ")";
  }

  const Operand &input(size_t k) {
    static Operand none;
    return k < in.size() ? in[k] : none;
  }

  /// Checks the number of inputs.
  LogicalResult arity(size_t min, size_t max) {
    size_t n = in.size();
    // Trailing omitted inputs do not count.
    while (n > 0 && !in[n - 1])
      --n;
    if (n < min || n > max) {
      InFlightDiagnostic d = error() << "has " << n << " inputs";
      d.attachNote() << "expected " << min
                     << (min == max ? "" : (" to " + std::to_string(max)))
                     << " inputs";
      return d;
    }
    for (size_t k = 0; k < min; ++k)
      if (!in[k])
        return error() << "input " << k << " is required but omitted";
    return success();
  }

  /// Checks that input `k` has one of the element types `allowed`.
  LogicalResult elemIn(size_t k, ArrayRef<Type> allowed, StringRef what) {
    const Operand &o = input(k);
    if (!o)
      return success();
    if (llvm::is_contained(allowed, o.elem))
      return success();
    InFlightDiagnostic d = error() << "input " << k << " (" << what
                                   << ") has type " << describe(o);
    std::string list;
    for (Type t : allowed)
      list += (list.empty() ? "" : ", ") + describeType(t);
    d.attachNote() << "expected element type " << list;
    return d;
  }

  LogicalResult sameElem(size_t a, size_t bIdx) {
    if (input(a) && input(bIdx) && input(a).elem != input(bIdx).elem) {
      InFlightDiagnostic d = error()
                             << "inputs " << a << " and " << bIdx
                             << " have different types: " << describe(input(a))
                             << " and " << describe(input(bIdx));
      d.attachNote() << "expected the same element type";
      return d;
    }
    return success();
  }

  LogicalResult rankIs(size_t k, int64_t lo, int64_t hi, StringRef what) {
    const Operand &o = input(k);
    if (!o || (o.rank() >= lo && o.rank() <= hi))
      return success();
    InFlightDiagnostic d = error() << "input " << k << " (" << what
                                   << ") has rank " << o.rank() << ": "
                                   << describe(o);
    if (lo == hi)
      d.attachNote() << "expected rank " << lo;
    else if (hi > 1000)
      d.attachNote() << "expected rank " << lo << " or more";
    else
      d.attachNote() << "expected rank " << lo << " to " << hi;
    return d;
  }

  FailureOr<int64_t> intAttr(StringRef name, int64_t dflt) {
    Attribute a = attrs.get(name);
    if (!a)
      return dflt;
    if (auto i = dyn_cast<IntegerAttr>(a))
      return i.getInt();
    return error() << "attribute '" << name << "' must be an int";
  }
  FailureOr<float> floatAttr(StringRef name, float dflt) {
    Attribute a = attrs.get(name);
    if (!a)
      return dflt;
    if (auto f = dyn_cast<FloatAttr>(a))
      return float(f.getValueAsDouble());
    return error() << "attribute '" << name << "' must be a float";
  }
  FailureOr<std::optional<SmallVector<int64_t>>> intsAttr(StringRef name) {
    Attribute a = attrs.get(name);
    if (!a)
      return std::optional<SmallVector<int64_t>>();
    if (auto i = dyn_cast<DenseI64ArrayAttr>(a))
      return std::optional<SmallVector<int64_t>>(
          SmallVector<int64_t>(i.asArrayRef()));
    return error() << "attribute '" << name << "' must be a list of ints";
  }

  /// The constant value of input `k`, if it is one.
  std::optional<HostTensor> constant(size_t k) {
    const Operand &o = input(k);
    DenseElementsAttr attr;
    if (!o || !matchPattern(o.value, m_Constant(&attr)))
      return std::nullopt;
    return fromAttr(cast<ElementsAttr>(attr), o.elem);
  }

  /// The integer values of constant input `k`.
  FailureOr<SmallVector<int64_t>> constInts(size_t k, StringRef what) {
    std::optional<HostTensor> t = constant(k);
    if (!t || t->isFloat() || t->shape.size() > 1) {
      InFlightDiagnostic d = error() << "input " << k << " (" << what
                                     << ") is not a constant";
      if (t)
        d << " 1-D integer tensor";
      d.attachNote() << "expected a constant 1-D integer tensor (compiled "
                        "models need static shapes)";
      return d;
    }
    return SmallVector<int64_t>(t->i.begin(), t->i.end());
  }

  //===--------------------------------------------------------------------===//
  // Builders
  //===--------------------------------------------------------------------===//

  Type f32() { return b.getF32Type(); }
  Type i1() { return b.getI1Type(); }
  Type i8() { return b.getIntegerType(8); }
  Type u8() { return IntegerType::get(ctx(), 8, IntegerType::Unsigned); }
  Type i32() { return b.getI32Type(); }
  Type i64() { return b.getI64Type(); }
  Type f64() { return b.getF64Type(); }
  SmallVector<Type> floats() { return {f32(), f64()}; }
  SmallVector<Type> numbers() {
    return {f32(), f64(), i8(), u8(), b.getIntegerType(16), i32(), i64()};
  }
  SmallVector<Type> allTypes() {
    SmallVector<Type> t = numbers();
    t.push_back(i1());
    return t;
  }

  Value scalar(Type elem, double v) {
    Type s = signlessType(elem);
    if (isa<FloatType>(s))
      return arith::ConstantOp::create(b, loc, s, b.getFloatAttr(s, v));
    return arith::ConstantOp::create(b, loc, s,
                                     b.getIntegerAttr(s, int64_t(v)));
  }
  static Value scalarIn(OpBuilder &nb, Location nl, Type elem, double v) {
    Type s = signlessType(elem);
    if (isa<FloatType>(s))
      return arith::ConstantOp::create(nb, nl, s, nb.getFloatAttr(s, v));
    return arith::ConstantOp::create(nb, nl, s,
                                     nb.getIntegerAttr(s, int64_t(v)));
  }

  Value empty(ArrayRef<int64_t> shape, Type elem) {
    return tensor::EmptyOp::create(b, loc, shape, signlessType(elem));
  }

  Value filled(ArrayRef<int64_t> shape, Type elem, Value v) {
    return linalg::FillOp::create(b, loc, ValueRange{v},
                                  ValueRange{empty(shape, elem)})
        .getResult(0);
  }

  /// The map that reads an operand of `inShape` broadcast (numpy style,
  /// aligned at the end) to a loop nest over `outShape`.
  AffineMap broadcastMap(ArrayRef<int64_t> inShape,
                         ArrayRef<int64_t> outShape) {
    SmallVector<AffineExpr> exprs;
    size_t off = outShape.size() - inShape.size();
    for (size_t k = 0; k < inShape.size(); ++k)
      exprs.push_back(inShape[k] == 1 && outShape[k + off] != 1
                          ? getAffineConstantExpr(0, ctx())
                          : getAffineDimExpr(k + off, ctx()));
    return AffineMap::get(outShape.size(), 0, exprs, ctx());
  }

  using Body = function_ref<Value(OpBuilder &, Location, ValueRange)>;

  /// A parallel linalg.generic over `outShape` reading `inputs` with `maps`.
  Value generic(ArrayRef<Value> inputs, ArrayRef<AffineMap> maps,
                ArrayRef<int64_t> outShape, Type outElem, Body body) {
    Value init = empty(outShape, outElem);
    SmallVector<AffineMap> all(maps.begin(), maps.end());
    all.push_back(b.getMultiDimIdentityMap(outShape.size()));
    SmallVector<utils::IteratorType> iters(outShape.size(),
                                           utils::IteratorType::parallel);
    auto g = linalg::GenericOp::create(
        b, loc, TypeRange{init.getType()}, inputs, ValueRange{init}, all,
        iters, [&](OpBuilder &nb, Location nl, ValueRange args) {
          Value r = body(nb, nl, args.drop_back());
          linalg::YieldOp::create(nb, nl, r);
        });
    return g.getResult(0);
  }

  /// Elementwise over numpy-broadcast operands.
  FailureOr<Value> elementwise(ArrayRef<Operand> ops, Type outElem,
                               Body body) {
    SmallVector<int64_t> shape;
    for (const Operand &o : ops) {
      auto s = broadcastShapes(shape, o.shape());
      if (!s) {
        InFlightDiagnostic d = error() << "input shapes do not broadcast:";
        for (const Operand &p : ops)
          d << " " << describe(p);
        d.attachNote() << "expected shapes that broadcast (numpy rules)";
        return d;
      }
      shape = *s;
    }
    if (numElements(shape) < 0)
      return error() << "result has too many elements";
    SmallVector<Value> values;
    SmallVector<AffineMap> maps;
    for (const Operand &o : ops) {
      values.push_back(o.value);
      maps.push_back(broadcastMap(o.shape(), shape));
    }
    return generic(values, maps, shape, outElem, body);
  }

  /// A reduction of `x` over the dimensions marked in `reduce`; the result
  /// keeps the other dimensions (not the reduced ones).
  Value reduce(Value x, ArrayRef<bool> reduceDims, Type elem, Value init,
               function_ref<Value(OpBuilder &, Location, Value, Value)> comb) {
    auto type = cast<RankedTensorType>(x.getType());
    SmallVector<int64_t> outShape;
    SmallVector<AffineExpr> outExprs;
    SmallVector<utils::IteratorType> iters;
    for (int64_t k = 0; k < type.getRank(); ++k) {
      if (reduceDims[k]) {
        iters.push_back(utils::IteratorType::reduction);
      } else {
        iters.push_back(utils::IteratorType::parallel);
        outShape.push_back(type.getDimSize(k));
        outExprs.push_back(getAffineDimExpr(k, ctx()));
      }
    }
    Value acc = filled(outShape, elem, init);
    SmallVector<AffineMap> maps = {
        b.getMultiDimIdentityMap(type.getRank()),
        AffineMap::get(type.getRank(), 0, outExprs, ctx())};
    auto g = linalg::GenericOp::create(
        b, loc, TypeRange{acc.getType()}, ValueRange{x}, ValueRange{acc}, maps,
        iters, [&](OpBuilder &nb, Location nl, ValueRange args) {
          linalg::YieldOp::create(nb, nl, comb(nb, nl, args[1], args[0]));
        });
    return g.getResult(0);
  }

  /// `v` with the same elements in `shape` (row-major order kept).
  Value reshape(Value v, ArrayRef<int64_t> shape) {
    auto type = cast<RankedTensorType>(v.getType());
    if (type.getShape() == shape)
      return v;
    Type elem = type.getElementType();
    int64_t n = numElements(shape);
    Value flat = v;
    if (type.getRank() == 0) {
      flat = tensor::ExpandShapeOp::create(
          b, loc, RankedTensorType::get({1}, elem), v,
          ArrayRef<ReassociationIndices>{});
    } else if (type.getRank() > 1) {
      ReassociationIndices all;
      for (int64_t k = 0; k < type.getRank(); ++k)
        all.push_back(k);
      flat = tensor::CollapseShapeOp::create(
          b, loc, RankedTensorType::get({n}, elem), v,
          ArrayRef<ReassociationIndices>{all});
    }
    if (shape.empty())
      return tensor::CollapseShapeOp::create(b, loc,
                                             RankedTensorType::get({}, elem),
                                             flat,
                                             ArrayRef<ReassociationIndices>{});
    if (shape.size() == 1)
      return flat;
    ReassociationIndices all;
    for (size_t k = 0; k < shape.size(); ++k)
      all.push_back(k);
    return tensor::ExpandShapeOp::create(b, loc,
                                         RankedTensorType::get(shape, elem),
                                         flat,
                                         ArrayRef<ReassociationIndices>{all});
  }

  /// A constant tensor.
  Result constantOf(const HostTensor &t) {
    return {arith::ConstantOp::create(b, loc, toAttr(t)), t.elem};
  }
};

//===----------------------------------------------------------------------===//
// Scalar helpers used inside linalg bodies
//===----------------------------------------------------------------------===//

bool isUnsigned(Type t) { return t.isUnsignedInteger() || t.isInteger(1); }

/// Converts scalar `v` of ONNX type `from` to ONNX type `to` (Cast).
Value convertScalar(OpBuilder &b, Location loc, Value v, Type from, Type to) {
  Type dst = signlessType(to);
  Type src = signlessType(from);
  if (from == to || (src == dst && !to.isInteger(1)))
    return v;
  bool srcFloat = isa<FloatType>(src), dstFloat = isa<FloatType>(dst);
  if (srcFloat && dstFloat) {
    if (cast<FloatType>(src).getWidth() < cast<FloatType>(dst).getWidth())
      return arith::ExtFOp::create(b, loc, dst, v);
    return arith::TruncFOp::create(b, loc, dst, v);
  }
  if (!srcFloat && dstFloat) {
    if (isUnsigned(from))
      return arith::UIToFPOp::create(b, loc, dst, v);
    return arith::SIToFPOp::create(b, loc, dst, v);
  }
  if (to.isInteger(1)) {
    if (srcFloat)
      return arith::CmpFOp::create(b, loc, arith::CmpFPredicate::UNE, v,
                                   Node::scalarIn(b, loc, from, 0));
    return arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ne, v,
                                 Node::scalarIn(b, loc, from, 0));
  }
  if (srcFloat) {
    if (isUnsigned(to))
      return arith::FPToUIOp::create(b, loc, dst, v);
    return arith::FPToSIOp::create(b, loc, dst, v);
  }
  unsigned sw = src.getIntOrFloatBitWidth(), dw = dst.getIntOrFloatBitWidth();
  if (sw < dw) {
    if (isUnsigned(from))
      return arith::ExtUIOp::create(b, loc, dst, v);
    return arith::ExtSIOp::create(b, loc, dst, v);
  }
  if (sw > dw)
    return arith::TruncIOp::create(b, loc, dst, v);
  return v;
}

Value maxOf(OpBuilder &b, Location loc, Value x, Value y, Type elem) {
  if (isa<FloatType>(elem))
    return arith::MaximumFOp::create(b, loc, x, y);
  if (isUnsigned(elem))
    return arith::MaxUIOp::create(b, loc, x, y);
  return arith::MaxSIOp::create(b, loc, x, y);
}
Value minOf(OpBuilder &b, Location loc, Value x, Value y, Type elem) {
  if (isa<FloatType>(elem))
    return arith::MinimumFOp::create(b, loc, x, y);
  if (isUnsigned(elem))
    return arith::MinUIOp::create(b, loc, x, y);
  return arith::MinSIOp::create(b, loc, x, y);
}

/// Round half to even, then clamp to [lo, hi], then convert to `to`.
Value saturate(OpBuilder &b, Location loc, Value f, double lo, double hi,
               Type to) {
  Type ft = f.getType();
  Value r = math::RoundEvenOp::create(b, loc, f);
  r = arith::MaximumFOp::create(b, loc, r,
                                Node::scalarIn(b, loc, ft, lo));
  r = arith::MinimumFOp::create(b, loc, r,
                                Node::scalarIn(b, loc, ft, hi));
  return convertScalar(b, loc, r, ft, to);
}

//===----------------------------------------------------------------------===//
// The lowerings
//===----------------------------------------------------------------------===//

using LowerFn = FailureOr<Results> (*)(Node &);

FailureOr<Results> lowerConstant(Node &n) {
  if (failed(n.arity(0, 0)))
    return failure();
  Attribute a;
  for (StringRef name : {"value", "value_float", "value_floats", "value_int",
                         "value_ints", "sparse_value", "value_string",
                         "value_strings"}) {
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
    return Results{{arith::ConstantOp::create(
                        n.b, n.loc, DenseElementsAttr::get(
                                        RankedTensorType::get({}, n.f32()),
                                        {float(f.getValueAsDouble())})),
                    n.f32()}};
  if (auto i = dyn_cast<IntegerAttr>(a))
    return Results{{arith::ConstantOp::create(
                        n.b, n.loc,
                        DenseElementsAttr::get(
                            RankedTensorType::get({}, n.i64()), {i.getInt()})),
                    n.i64()}};
  if (auto fs = dyn_cast<DenseF32ArrayAttr>(a))
    return Results{{arith::ConstantOp::create(
                        n.b, n.loc,
                        DenseElementsAttr::get(
                            RankedTensorType::get({int64_t(fs.size())}, n.f32()),
                            fs.asArrayRef())),
                    n.f32()}};
  if (auto is = dyn_cast<DenseI64ArrayAttr>(a))
    return Results{{arith::ConstantOp::create(
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

/// Add, Sub, Mul, Div.
FailureOr<Results> lowerArith(Node &n) {
  if (failed(n.arity(2, 2)) || failed(n.elemIn(0, n.numbers(), "A")) ||
      failed(n.sameElem(0, 1)))
    return failure();
  Type elem = n.in[0].elem;
  StringRef op = n.opType;
  bool isFloat = isa<FloatType>(elem);
  bool uns = isUnsigned(elem);
  FailureOr<Value> r = n.elementwise(
      n.in, elem, [&](OpBuilder &b, Location loc, ValueRange a) -> Value {
        Value x = a[0], y = a[1];
        if (isFloat) {
          if (op == "Add")
            return arith::AddFOp::create(b, loc, x, y);
          if (op == "Sub")
            return arith::SubFOp::create(b, loc, x, y);
          if (op == "Mul")
            return arith::MulFOp::create(b, loc, x, y);
          return arith::DivFOp::create(b, loc, x, y);
        }
        if (op == "Add")
          return arith::AddIOp::create(b, loc, x, y);
        if (op == "Sub")
          return arith::SubIOp::create(b, loc, x, y);
        if (op == "Mul")
          return arith::MulIOp::create(b, loc, x, y);
        // Integer division by zero (and INT_MIN / -1) is undefined in ONNX;
        // give 0 rather than trap.
        Value zero = Node::scalarIn(b, loc, elem, 0);
        Value one = Node::scalarIn(b, loc, elem, 1);
        Value bad = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, y,
                                          zero);
        if (!uns) {
          unsigned w = elem.getIntOrFloatBitWidth();
          Value minusOne = arith::ConstantOp::create(
              b, loc, x.getType(), b.getIntegerAttr(x.getType(), -1));
          Value minInt = arith::ConstantOp::create(
              b, loc, x.getType(),
              b.getIntegerAttr(x.getType(), APInt::getSignedMinValue(w)));
          Value ovf = arith::AndIOp::create(
              b, loc,
              arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, y,
                                    minusOne),
              arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, x,
                                    minInt));
          bad = arith::OrIOp::create(b, loc, bad, ovf);
        }
        Value safe = arith::SelectOp::create(b, loc, bad, one, y);
        Value q = uns ? Value(arith::DivUIOp::create(b, loc, x, safe))
                      : Value(arith::DivSIOp::create(b, loc, x, safe));
        return arith::SelectOp::create(b, loc, bad, zero, q);
      });
  if (failed(r))
    return failure();
  return Results{{*r, elem}};
}

FailureOr<Results> lowerPow(Node &n) {
  SmallVector<Type> types = n.numbers();
  if (failed(n.arity(2, 2)) || failed(n.elemIn(0, types, "X")) ||
      failed(n.elemIn(1, types, "Y")))
    return failure();
  Type elem = n.in[0].elem, expElem = n.in[1].elem;
  FailureOr<Value> r = n.elementwise(
      n.in, elem, [&](OpBuilder &b, Location loc, ValueRange a) -> Value {
        // Integer bases are raised in double precision and converted back.
        Type work = isa<FloatType>(elem) ? elem : Type(b.getF64Type());
        Value x = convertScalar(b, loc, a[0], elem, work);
        Value y = convertScalar(b, loc, a[1], expElem, work);
        Value p = math::PowFOp::create(b, loc, x, y);
        return convertScalar(b, loc, p, work, elem);
      });
  if (failed(r))
    return failure();
  return Results{{*r, elem}};
}

FailureOr<Results> lowerCompare(Node &n) {
  if (failed(n.arity(2, 2)) || failed(n.elemIn(0, n.allTypes(), "A")) ||
      failed(n.sameElem(0, 1)))
    return failure();
  Type elem = n.in[0].elem;
  StringRef op = n.opType;
  FailureOr<Value> r = n.elementwise(
      n.in, n.i1(), [&](OpBuilder &b, Location loc, ValueRange a) -> Value {
        if (isa<FloatType>(elem)) {
          auto pred = op == "Equal"  ? arith::CmpFPredicate::OEQ
                      : op == "Less" ? arith::CmpFPredicate::OLT
                                     : arith::CmpFPredicate::OGT;
          return arith::CmpFOp::create(b, loc, pred, a[0], a[1]);
        }
        bool uns = isUnsigned(elem);
        auto pred = op == "Equal" ? arith::CmpIPredicate::eq
                    : op == "Less"
                        ? (uns ? arith::CmpIPredicate::ult
                               : arith::CmpIPredicate::slt)
                        : (uns ? arith::CmpIPredicate::ugt
                               : arith::CmpIPredicate::sgt);
        return arith::CmpIOp::create(b, loc, pred, a[0], a[1]);
      });
  if (failed(r))
    return failure();
  return Results{{*r, n.i1()}};
}

/// Sqrt, Reciprocal, Abs, Neg, Round, Relu, Sigmoid, Sin, Cos, Identity.
FailureOr<Results> lowerUnary(Node &n) {
  StringRef op = n.opType;
  bool floatOnly = op == "Sqrt" || op == "Reciprocal" || op == "Round" ||
                   op == "Sigmoid" || op == "Sin" || op == "Cos" ||
                   op == "Exp" || op == "Log" || op == "Tanh" ||
                   op == "Floor" || op == "Ceil";
  SmallVector<Type> types = floatOnly ? n.floats()
                            : op == "Identity" ? n.allTypes()
                                               : n.numbers();
  if (failed(n.arity(1, 1)) || failed(n.elemIn(0, types, "X")))
    return failure();
  Type elem = n.in[0].elem;
  bool isFloat = isa<FloatType>(elem);
  if (op == "Identity")
    return Results{{n.in[0].value, elem}};
  FailureOr<Value> r = n.elementwise(
      n.in, elem, [&](OpBuilder &b, Location loc, ValueRange a) -> Value {
        Value x = a[0];
        if (op == "Sqrt")
          return math::SqrtOp::create(b, loc, x);
        if (op == "Reciprocal")
          return arith::DivFOp::create(b, loc, Node::scalarIn(b, loc, elem, 1),
                                       x);
        if (op == "Round")
          return math::RoundEvenOp::create(b, loc, x);
        if (op == "Sin")
          return math::SinOp::create(b, loc, x);
        if (op == "Cos")
          return math::CosOp::create(b, loc, x);
        if (op == "Exp")
          return math::ExpOp::create(b, loc, x);
        if (op == "Log")
          return math::LogOp::create(b, loc, x);
        if (op == "Tanh")
          return math::TanhOp::create(b, loc, x);
        if (op == "Floor")
          return math::FloorOp::create(b, loc, x);
        if (op == "Ceil")
          return math::CeilOp::create(b, loc, x);
        if (op == "Sigmoid") {
          Value one = Node::scalarIn(b, loc, elem, 1);
          Value e = math::ExpOp::create(b, loc,
                                        arith::NegFOp::create(b, loc, x));
          return arith::DivFOp::create(b, loc, one,
                                       arith::AddFOp::create(b, loc, one, e));
        }
        if (op == "Abs") {
          if (isFloat)
            return math::AbsFOp::create(b, loc, x);
          if (isUnsigned(elem))
            return x;
          return math::AbsIOp::create(b, loc, x);
        }
        if (op == "Neg") {
          if (isFloat)
            return arith::NegFOp::create(b, loc, x);
          return arith::SubIOp::create(b, loc, Node::scalarIn(b, loc, elem, 0),
                                       x);
        }
        // Relu.
        if (isFloat) {
          // max(x, 0), NaN propagating, -0 stays -0 like numpy.
          Value zero = Node::scalarIn(b, loc, elem, 0);
          Value lt = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OLT,
                                           x, zero);
          return arith::SelectOp::create(b, loc, lt, zero, x);
        }
        return maxOf(b, loc, x, Node::scalarIn(b, loc, elem, 0), elem);
      });
  if (failed(r))
    return failure();
  return Results{{*r, elem}};
}

/// A scalar bound of Clip or a zero point: rank 0, or one element.
FailureOr<Value> scalarOperand(Node &n, size_t k, StringRef what) {
  const Operand &o = n.input(k);
  if (numElements(o.shape()) != 1 || o.rank() > 1) {
    InFlightDiagnostic d = n.error() << "input " << k << " (" << what
                                     << ") is " << describe(o);
    d.attachNote() << "expected a scalar";
    return d;
  }
  return n.reshape(o.value, {});
}

FailureOr<Results> lowerClip(Node &n) {
  if (failed(n.arity(1, 3)) || failed(n.elemIn(0, n.numbers(), "input")) ||
      failed(n.sameElem(0, 1)) || failed(n.sameElem(0, 2)))
    return failure();
  Type elem = n.in[0].elem;
  SmallVector<Operand> ops = {n.in[0]};
  bool hasLo = static_cast<bool>(n.input(1)), hasHi = static_cast<bool>(n.input(2));
  for (size_t k = 1; k <= 2; ++k) {
    if (!n.input(k))
      continue;
    FailureOr<Value> s = scalarOperand(n, k, k == 1 ? "min" : "max");
    if (failed(s))
      return failure();
    ops.push_back({*s, elem});
  }
  FailureOr<Value> r = n.elementwise(
      ops, elem, [&](OpBuilder &b, Location loc, ValueRange a) -> Value {
        Value x = a[0];
        size_t k = 1;
        if (hasLo)
          x = maxOf(b, loc, x, a[k++], elem);
        if (hasHi)
          x = minOf(b, loc, x, a[k++], elem);
        return x;
      });
  if (failed(r))
    return failure();
  return Results{{*r, elem}};
}

FailureOr<Results> lowerCast(Node &n) {
  if (failed(n.arity(1, 1)) || failed(n.elemIn(0, n.allTypes(), "input")))
    return failure();
  FailureOr<int64_t> to = n.intAttr("to", -1);
  if (failed(to))
    return failure();
  // UINT16 and the other types a compiled model does not compute with are
  // refused here, as the importer refuses them for graph inputs.
  Type dst = isSupportedDataType(*to) ? elementTypeOf(n.ctx(), *to) : Type();
  if (!dst) {
    InFlightDiagnostic d = n.error() << "cast to data type " << *to
                                     << " is not supported";
    d.attachNote() << "expected FLOAT (1), UINT8 (2), INT8 (3), INT16 (5), "
                      "INT32 (6), INT64 (7), BOOL (9) or DOUBLE (11)";
    return d;
  }
  Type src = n.in[0].elem;
  if (signlessType(src) == signlessType(dst) && !dst.isInteger(1) &&
      src != n.i1())
    return Results{{n.in[0].value, dst}};
  FailureOr<Value> r = n.elementwise(
      n.in, dst, [&](OpBuilder &b, Location loc, ValueRange a) -> Value {
        return convertScalar(b, loc, a[0], src, dst);
      });
  if (failed(r))
    return failure();
  return Results{{*r, dst}};
}

FailureOr<Results> lowerWhere(Node &n) {
  if (failed(n.arity(3, 3)) || failed(n.elemIn(0, {n.i1()}, "condition")) ||
      failed(n.elemIn(1, n.allTypes(), "X")) || failed(n.sameElem(1, 2)))
    return failure();
  Type elem = n.in[1].elem;
  FailureOr<Value> r = n.elementwise(
      n.in, elem, [&](OpBuilder &b, Location loc, ValueRange a) -> Value {
        return arith::SelectOp::create(b, loc, a[0], a[1], a[2]);
      });
  if (failed(r))
    return failure();
  return Results{{*r, elem}};
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
      failed(n.elemIn(0, {n.f32(), n.f64(), n.b.getIntegerType(16), n.i32(),
                          n.i64()},
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
    InFlightDiagnostic d = n.error() << "cannot reshape "
                                     << describe(n.in[0]) << ": " << error;
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
  Value v = n.generic({n.in[0].value}, {n.broadcastMap(n.in[0].shape(), *shape)},
                      *shape, elem,
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
    InFlightDiagnostic d = n.error() << "invalid axes for "
                                     << describe(n.in[0]) << ": " << why;
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
      InFlightDiagnostic d = n.error() << "input " << describe(o)
                                       << " does not match "
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
                       Value o = arith::ConstantIndexOp::create(b, loc,
                                                                d.start);
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
    InFlightDiagnostic d = n.error() << "invalid slice of "
                                     << describe(n.in[0]) << ": " << error;
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
                                       << " into " << outputs
                                       << " equal parts";
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
                                     << dim << " in " << outputs
                                     << " outputs";
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
    InFlightDiagnostic d = n.error() << "axis " << *axisAttr
                                     << " is out of range for "
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
                                  data.value, indices.value, Value());
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
        d.attachNote() << "expected indices in [" << -dim << ", " << dim
                       << ")";
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
        Value dimV = arith::ConstantOp::create(
            b, loc, idxElem, b.getIntegerAttr(idxElem, dim));
        Value zero = arith::ConstantOp::create(b, loc, idxElem,
                                               b.getIntegerAttr(idxElem, 0));
        Value neg = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt, i,
                                          zero);
        i = arith::SelectOp::create(b, loc, neg,
                                    arith::AddIOp::create(b, loc, i, dimV), i);
        Value hi = arith::ConstantOp::create(
            b, loc, idxElem, b.getIntegerAttr(idxElem, std::max<int64_t>(dim - 1, 0)));
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
        InFlightDiagnostic d = n.error() << "axis " << a
                                         << " is out of range for "
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
  Value r = n.reduce(n.in[0].value, *reduceDims, elem, init,
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
    InFlightDiagnostic d = n.error() << "axis " << *axisAttr
                                     << " is out of range for "
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
  FailureOr<Value> e = n.elementwise(
      {n.in[0], {mx, elem}}, elem,
      [&](OpBuilder &b, Location loc, ValueRange a) -> Value {
        return math::ExpOp::create(b, loc,
                                   arith::SubFOp::create(b, loc, a[0], a[1]));
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
    FailureOr<Value> r = n.elementwise(
        {n.in[0], {mx, elem}, {sum, elem}}, elem,
        [&](OpBuilder &b, Location loc, ValueRange a) -> Value {
          Value d = arith::SubFOp::create(b, loc, a[0], a[1]);
          return arith::SubFOp::create(b, loc, d,
                                       math::LogOp::create(b, loc, a[2]));
        });
    if (failed(r))
      return failure();
    return Results{{*r, elem}};
  }
  FailureOr<Value> r = n.elementwise(
      {{*e, elem}, {sum, elem}}, elem,
      [&](OpBuilder &b, Location loc, ValueRange a) -> Value {
        return arith::DivFOp::create(b, loc, a[0], a[1]);
      });
  if (failed(r))
    return failure();
  return Results{{*r, elem}};
}

/// A batched matrix product `sum_k f(a[.., m, k], b[.., k, n])` with numpy
/// batch broadcasting; `a`, `b` have rank >= 2. `transA`/`transB` read the
/// last two dimensions swapped.
FailureOr<Value> matmul(Node &n, const Operand &a, const Operand &b,
                        bool transA, bool transB, Type accElem,
                        function_ref<Value(OpBuilder &, Location, Value, Value,
                                           Value)>
                            body) {
  ArrayRef<int64_t> as = a.shape(), bs = b.shape();
  int64_t m = transA ? as[as.size() - 1] : as[as.size() - 2];
  int64_t ka = transA ? as[as.size() - 2] : as[as.size() - 1];
  int64_t kb = transB ? bs[bs.size() - 1] : bs[bs.size() - 2];
  int64_t nn = transB ? bs[bs.size() - 2] : bs[bs.size() - 1];
  if (ka != kb) {
    InFlightDiagnostic d = n.error() << "inner dimensions differ: "
                                     << describe(a) << " and " << describe(b);
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

/// Promotes 1-D MatMul operands to matrices; returns the result shape to
/// reshape to afterwards.
FailureOr<Results> matmulLike(Node &n, Operand a, Operand b, Type accElem,
                              function_ref<Value(OpBuilder &, Location, Value,
                                                 Value, Value)>
                                  body) {
  if (a.rank() == 0 || b.rank() == 0) {
    InFlightDiagnostic d = n.error() << "has a scalar operand: "
                                     << describe(a) << ", " << describe(b);
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

FailureOr<Results> lowerMatMul(Node &n) {
  SmallVector<Type> types = {n.f32(), n.f64(), n.i32(), n.i64()};
  if (failed(n.arity(2, 2)) || failed(n.elemIn(0, types, "A")) ||
      failed(n.sameElem(0, 1)))
    return failure();
  Type elem = n.in[0].elem;
  bool isFloat = isa<FloatType>(elem);
  return matmulLike(n, n.in[0], n.in[1], elem,
                    [&](OpBuilder &b, Location loc, Value x, Value y,
                        Value acc) -> Value {
                      if (isFloat)
                        return arith::AddFOp::create(
                            b, loc, acc, arith::MulFOp::create(b, loc, x, y));
                      return arith::AddIOp::create(
                          b, loc, acc, arith::MulIOp::create(b, loc, x, y));
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
  if (elem == n.f32() && !*transA && *transB && *alpha == 1.0f &&
      !n.input(2) && n.in[0].shape().back() == n.in[1].shape()[1] &&
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
            c = arith::MulFOp::create(b, loc,
                                      Node::scalarIn(b, loc, elem, be), c);
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
  return matmulLike(n, *a, *b, i32,
                    [](OpBuilder &bb, Location loc, Value x, Value y,
                       Value acc) -> Value {
                      return arith::AddIOp::create(
                          bb, loc, acc, arith::MulIOp::create(bb, loc, x, y));
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
    InFlightDiagnostic d = n.error() << "input " << k << " (" << what
                                     << ") " << describe(p)
                                     << " does not match " << describe(x)
                                     << " along axis " << axis;
    d.attachNote() << "expected a scalar or a 1-D tensor as long as the "
                      "input's dimension 'axis'";
    return d;
  }
  return std::make_pair(
      p.value, AffineMap::get(x.rank(), 0, {getAffineDimExpr(*ax, n.ctx())},
                              n.ctx()));
}

FailureOr<Results> lowerQuantizeLinear(Node &n) {
  if (failed(n.arity(2, 3)) ||
      failed(n.elemIn(0, {n.f32(), n.i32()}, "x")) ||
      failed(n.elemIn(1, {n.f32()}, "y_scale")) ||
      failed(n.elemIn(2, {n.i8(), n.u8()}, "y_zero_point")))
    return failure();
  FailureOr<int64_t> axis = n.intAttr("axis", 1);
  if (failed(axis))
    return failure();
  const Operand &x = n.in[0];
  Type out = n.input(2) ? n.in[2].elem : n.u8();
  auto scale = quantParam(n, 1, "y_scale", x, *axis);
  if (failed(scale))
    return failure();
  SmallVector<Value> ins = {x.value, scale->first};
  SmallVector<AffineMap> maps = {n.b.getMultiDimIdentityMap(x.rank()),
                                 scale->second};
  if (n.input(2)) {
    auto zp = quantParam(n, 2, "y_zero_point", x, *axis);
    if (failed(zp))
      return failure();
    ins.push_back(zp->first);
    maps.push_back(zp->second);
  }
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
  auto scale = quantParam(n, 1, "x_scale", x, *axis);
  if (failed(scale))
    return failure();
  SmallVector<Value> ins = {x.value, scale->first};
  SmallVector<AffineMap> maps = {n.b.getMultiDimIdentityMap(x.rank()),
                                 scale->second};
  if (n.input(2)) {
    auto zp = quantParam(n, 2, "x_zero_point", x, *axis);
    if (failed(zp))
      return failure();
    ins.push_back(zp->first);
    maps.push_back(zp->second);
  }
  Type xe = x.elem;
  Value v = n.generic(ins, maps, x.shape(), n.f32(),
                      [&](OpBuilder &b, Location loc, ValueRange a) -> Value {
                        Type i32 = b.getI32Type();
                        Value q = convertScalar(b, loc, a[0], xe, i32);
                        if (a.size() > 2)
                          q = arith::SubIOp::create(
                              b, loc, q, convertScalar(b, loc, a[2], xe, i32));
                        Value f = arith::SIToFPOp::create(b, loc, b.getF32Type(),
                                                          q);
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
  Value scale = n.generic({mx, mn}, {AffineMap::get(n.ctx()), AffineMap::get(n.ctx())}, {}, f,
                          [&](OpBuilder &b, Location loc, ValueRange a) -> Value {
                            Value d = arith::SubFOp::create(b, loc, a[0], a[1]);
                            return arith::DivFOp::create(
                                b, loc, d, Node::scalarIn(b, loc, f, 255));
                          });
  // zero point = round(clip(0 - min / scale, 0, 255))
  Value zpf = n.generic({mn, scale}, {AffineMap::get(n.ctx()), AffineMap::get(n.ctx())}, {}, f,
                        [&](OpBuilder &b, Location loc, ValueRange a) -> Value {
                          Value q = arith::DivFOp::create(b, loc, a[0], a[1]);
                          q = arith::SubFOp::create(
                              b, loc, Node::scalarIn(b, loc, f, 0), q);
                          q = arith::MaximumFOp::create(
                              b, loc, q, Node::scalarIn(b, loc, f, 0));
                          q = arith::MinimumFOp::create(
                              b, loc, q, Node::scalarIn(b, loc, f, 255));
                          return math::RoundEvenOp::create(b, loc, q);
                        });
  Value zp = n.generic({zpf}, {AffineMap::get(n.ctx())}, {}, u8,
                       [&](OpBuilder &b, Location loc, ValueRange a) -> Value {
                         return convertScalar(b, loc, a[0], f, u8);
                       });
  AffineMap scalarMap = AffineMap::get(x.rank(), 0, {}, n.ctx());
  Value y = n.generic({x.value, scale, zpf},
                      {n.b.getMultiDimIdentityMap(x.rank()), scalarMap,
                       scalarMap},
                      x.shape(), u8,
                      [&](OpBuilder &b, Location loc, ValueRange a) -> Value {
                        Value q = arith::DivFOp::create(b, loc, a[0], a[1]);
                        q = math::RoundEvenOp::create(b, loc, q);
                        q = arith::AddFOp::create(b, loc, q, a[2]);
                        return saturate(b, loc, q, 0, 255, u8);
                      });
  return Results{{y, u8}, {scale, f}, {zp, u8}};
}

/// com.microsoft MatMulNBits with a constant weight: dequantised at compile
/// time into a float MatMul.
FailureOr<Results> lowerMatMulNBits(Node &n) {
  if (failed(n.arity(3, 4)) || failed(n.elemIn(0, {n.f32()}, "A")) ||
      failed(n.elemIn(1, {n.u8()}, "B")) ||
      failed(n.elemIn(2, {n.f32()}, "scales")) ||
      failed(n.elemIn(3, {n.u8()}, "zero_points")))
    return failure();
  FailureOr<int64_t> K = n.intAttr("K", -1), N = n.intAttr("N", -1),
                     bits = n.intAttr("bits", 4),
                     block = n.intAttr("block_size", -1);
  if (failed(K) || failed(N) || failed(bits) || failed(block))
    return failure();
  std::optional<HostTensor> b = n.constant(1), scales = n.constant(2);
  std::optional<HostTensor> zps;
  if (n.input(3))
    zps = n.constant(3);
  if (!b || !scales || (n.input(3) && !zps))
    return n.error() << "B, scales and zero_points must be constants";
  if (n.in[0].rank() < 1 || n.in[0].shape().back() != *K)
    return n.error() << "A " << describe(n.in[0]) << " does not end in K = "
                     << *K;
  std::string error;
  std::optional<HostTensor> w = dequantizeNBits(
      *b, *scales, zps ? &*zps : nullptr, *K, *N, *bits, *block, error);
  if (!w) {
    InFlightDiagnostic d = n.error() << "invalid packed weight: " << error;
    d.attachNote() << "expected B [N, ceil(K / block_size), block_size * "
                      "bits / 8], scales [N * blocks], packed zero points";
    return d;
  }
  Operand wOp{n.constantOf(*w).value, n.f32()};
  return matmulLike(n, n.in[0], wOp, n.f32(),
                    [](OpBuilder &bb, Location loc, Value x, Value y,
                       Value acc) -> Value {
                      return arith::AddFOp::create(
                          bb, loc, acc, arith::MulFOp::create(bb, loc, x, y));
                    });
}

//===----------------------------------------------------------------------===//
// The bitnet domain: ONNX forms of the bitnet dialect's ops
//===----------------------------------------------------------------------===//

/// A constant float scalar (rank 0, or one element) of input `k`.
FailureOr<float> scalarConstant(Node &n, size_t k, StringRef what) {
  std::optional<HostTensor> t = n.constant(k);
  if (!t || !t->isFloat() || t->size() != 1) {
    InFlightDiagnostic d = n.error() << "input " << k << " (" << what
                                     << ") is not a constant float scalar";
    d.attachNote() << "expected a float initializer with one element";
    return d;
  }
  return float(t->f[0]);
}

/// bitnet.BitLinear(x, weight, scale): weight int8 codes [N, K], or with
/// bits = 2 uint8 [N, ceil(K / 4)] holding the codes w + 1 two bits each
/// (the i2 format of !bitnet.ternary).
FailureOr<Results> lowerBitnetBitLinear(Node &n) {
  if (failed(n.arity(3, 3)) || failed(n.elemIn(0, {n.f32()}, "x")) ||
      failed(n.elemIn(1, {n.i8(), n.u8()}, "weight")) ||
      failed(n.rankIs(0, 1, INT64_MAX, "x")) ||
      failed(n.rankIs(1, 2, 2, "weight")))
    return failure();
  FailureOr<int64_t> bits = n.intAttr("bits", 8);
  FailureOr<float> scale = scalarConstant(n, 2, "scale");
  if (failed(bits) || failed(scale))
    return failure();
  if (*bits != 8 && *bits != 2)
    return n.error() << "attribute 'bits' is " << *bits
                     << "; expected 8 (int8 codes) or 2 (packed codes)";
  DenseElementsAttr attr;
  if (!matchPattern(n.in[1].value, m_Constant(&attr)))
    return n.error() << "input 1 (weight) is not an initializer; compiled "
                        "ternary weights must be constants";
  int64_t K = n.in[0].shape().back();
  int64_t N = n.in[1].shape()[0], bytesPerRow = n.in[1].shape()[1];
  TernaryFormat format = *bits == 2 ? TernaryFormat::I2 : TernaryFormat::Int8;
  int64_t expected = *bits == 2 ? (K + 3) / 4 : K;
  if (bytesPerRow != expected) {
    InFlightDiagnostic d = n.error() << "weight " << describe(n.in[1])
                                     << " does not match x "
                                     << describe(n.in[0]);
    d.attachNote() << "expected a weight of " << expected
                   << " bytes per row for K = " << K;
    return d;
  }
  // Validate every code; the bytes become the constant's storage as they are.
  int64_t index = 0;
  for (int8_t v : attr.getValues<int8_t>()) {
    bool ok;
    if (*bits == 8) {
      ok = v >= -1 && v <= 1;
    } else {
      uint8_t u = uint8_t(v);
      ok = (u & 3) != 3 && ((u >> 2) & 3) != 3 && ((u >> 4) & 3) != 3 &&
           (u >> 6) != 3;
    }
    if (!ok) {
      InFlightDiagnostic d = n.error()
                             << "weight element " << index << " (row "
                             << index / bytesPerRow << ") is "
                             << int(*bits == 8 ? v : uint8_t(v))
                             << ", not a ternary code";
      d.attachNote() << (*bits == 8 ? "expected -1, 0 or 1"
                                    : "expected bytes whose 2-bit fields are "
                                      "0, 1 or 2 (the codes w + 1)");
      return d;
    }
    ++index;
  }
  auto storageType = RankedTensorType::get({N, bytesPerRow}, n.b.getI8Type());
  if (attr.getType() != storageType)
    attr = attr.reshape(storageType);
  auto type = TernaryType::get(n.ctx(), N, K, format);
  Value w = bitnet::ConstantOp::create(n.b, n.loc, type, attr);
  auto scalarType = RankedTensorType::get({}, n.f32());
  Value s = arith::ConstantOp::create(
      n.b, n.loc, DenseElementsAttr::get(scalarType, {*scale}));
  SmallVector<int64_t> shape(n.in[0].shape());
  shape.back() = N;
  Value y = BitLinearOp::create(n.b, n.loc,
                                RankedTensorType::get(shape, n.f32()),
                                n.in[0].value, w, s);
  return Results{{y, n.f32()}};
}

/// bitnet.RMSNorm(x, gamma; epsilon).
FailureOr<Results> lowerBitnetRMSNorm(Node &n) {
  if (failed(n.arity(2, 2)) || failed(n.elemIn(0, {n.f32()}, "x")) ||
      failed(n.elemIn(1, {n.f32()}, "gamma")) ||
      failed(n.rankIs(0, 1, INT64_MAX, "x")) ||
      failed(n.rankIs(1, 1, 1, "gamma")))
    return failure();
  FailureOr<float> eps = n.floatAttr("epsilon", 1e-5f);
  if (failed(eps))
    return failure();
  if (n.in[1].shape()[0] != n.in[0].shape().back())
    return n.error() << "gamma " << describe(n.in[1])
                     << " does not match the last dimension of x "
                     << describe(n.in[0]);
  Value y = RMSNormOp::create(n.b, n.loc, n.in[0].type(), n.in[0].value,
                              n.in[1].value, n.b.getF32FloatAttr(*eps));
  return Results{{y, n.f32()}};
}

/// The positions position + [0, S) of S tokens, as tensor<S x i32>.
Value consecutivePositions(Node &n, Value position, int64_t tokens) {
  Type i32 = n.i32();
  Value start = tensor::ExtractOp::create(n.b, n.loc, position, ValueRange{});
  auto type = RankedTensorType::get({tokens}, i32);
  auto gen = tensor::GenerateOp::create(
      n.b, n.loc, type, ValueRange{},
      [&](OpBuilder &b, Location loc, ValueRange idx) {
        Value s = arith::IndexCastOp::create(b, loc, i32, idx[0]);
        tensor::YieldOp::create(b, loc,
                                arith::AddIOp::create(b, loc, start, s)
                                    .getResult());
      });
  return gen.getResult();
}

/// Position inputs: an int32 scalar (rank 0 or one element), as rank 0.
FailureOr<Value> positionScalar(Node &n, size_t k) {
  if (failed(n.elemIn(k, {n.i32()}, "position")))
    return failure();
  const Operand &p = n.input(k);
  if (numElements(p.shape()) != 1)
    return n.error() << "input " << k << " (position) is " << describe(p)
                     << "; expected an int32 scalar";
  if (p.rank() == 0)
    return p.value;
  return tensor::CollapseShapeOp::create(
             n.b, n.loc, RankedTensorType::get({}, n.i32()), p.value,
             ArrayRef<ReassociationIndices>{})
      .getResult();
}

/// bitnet.Rope(x [S, H, D], position []; theta, style).
FailureOr<Results> lowerBitnetRope(Node &n) {
  if (failed(n.arity(2, 2)) || failed(n.elemIn(0, {n.f32()}, "x")) ||
      failed(n.rankIs(0, 3, 3, "x")))
    return failure();
  FailureOr<float> theta = n.floatAttr("theta", 10000.0f);
  FailureOr<Value> pos = positionScalar(n, 1);
  if (failed(theta) || failed(pos))
    return failure();
  RopeStyle style = RopeStyle::Half;
  if (Attribute a = n.attrs.get("style")) {
    auto str = dyn_cast<StringAttr>(a);
    if (!str || (str.getValue() != "half" && str.getValue() != "interleaved"))
      return n.error() << "attribute 'style' must be \"half\" or "
                          "\"interleaved\"";
    if (str.getValue() == "interleaved")
      style = RopeStyle::Interleaved;
  }
  if (n.in[0].shape()[2] % 2 != 0)
    return n.error() << "x " << describe(n.in[0])
                     << " has an odd head dimension; expected an even one";
  Value positions = consecutivePositions(n, *pos, n.in[0].shape()[0]);
  Value y = RopeOp::create(n.b, n.loc, n.in[0].type(), n.in[0].value,
                           positions, n.b.getF32FloatAttr(*theta),
                           RopeStyleAttr::get(n.ctx(), style));
  return Results{{y, n.f32()}};
}

/// bitnet.Attention(q, k, v, k_cache, v_cache, position) -> out, k', v'.
FailureOr<Results> lowerBitnetAttention(Node &n) {
  if (failed(n.arity(6, 6)))
    return failure();
  const char *names[] = {"q", "k", "v", "k_cache", "v_cache"};
  for (size_t k = 0; k < 5; ++k)
    if (failed(n.elemIn(k, {n.f32()}, names[k])) ||
        failed(n.rankIs(k, 3, 3, names[k])))
      return failure();
  FailureOr<Value> pos = positionScalar(n, 5);
  if (failed(pos))
    return failure();
  FloatAttr scale;
  if (n.attrs.get("scale")) {
    FailureOr<float> s = n.floatAttr("scale", 0.0f);
    if (failed(s))
      return failure();
    scale = n.b.getF32FloatAttr(*s);
  }
  auto op = AttentionOp::create(
      n.b, n.loc,
      TypeRange{n.in[0].type(), n.in[3].type(), n.in[4].type()},
      n.in[0].value, n.in[1].value, n.in[2].value, n.in[3].value,
      n.in[4].value, *pos, scale);
  // The verifier states the shape rules; report them at the node.
  if (failed(mlir::verify(op, /*verifyRecursively=*/false))) {
    op.erase();
    return n.error() << "inputs " << describe(n.in[0]) << ", "
                     << describe(n.in[1]) << ", " << describe(n.in[2]) << ", "
                     << describe(n.in[3]) << ", " << describe(n.in[4])
                     << " do not form a grouped-query attention";
  }
  return Results{{op.getResult(), n.f32()},
                 {op.getNewKCache(), n.f32()},
                 {op.getNewVCache(), n.f32()}};
}

/// bitnet.SquaredRelu(x).
FailureOr<Results> lowerBitnetSquaredRelu(Node &n) {
  if (failed(n.arity(1, 1)) || failed(n.elemIn(0, {n.f32()}, "x")))
    return failure();
  Value y = SquaredReluOp::create(n.b, n.loc, n.in[0].type(), n.in[0].value);
  return Results{{y, n.f32()}};
}

//===----------------------------------------------------------------------===//
// The table
//===----------------------------------------------------------------------===//

struct Lowering {
  const char *opType;
  /// Operator versions (ONNX since_version) this lowering implements.
  std::initializer_list<int64_t> versions;
  LowerFn fn;
};

const Lowering kLowerings[] = {
    {"Constant", {1, 9, 11, 12, 13}, lowerConstant},
    {"Add", {7, 13, 14}, lowerArith},
    {"Sub", {7, 13, 14}, lowerArith},
    {"Mul", {7, 13, 14}, lowerArith},
    {"Div", {7, 13, 14}, lowerArith},
    {"Pow", {12, 13, 15}, lowerPow},
    {"Equal", {11, 13}, lowerCompare},
    {"Less", {9, 13}, lowerCompare},
    {"Greater", {9, 13}, lowerCompare},
    {"Sqrt", {6, 13}, lowerUnary},
    {"Reciprocal", {6, 13}, lowerUnary},
    {"Abs", {6, 13}, lowerUnary},
    {"Neg", {6, 13}, lowerUnary},
    {"Round", {11}, lowerUnary},
    {"Relu", {6, 13, 14}, lowerUnary},
    {"Sigmoid", {6, 13}, lowerUnary},
    {"Sin", {7}, lowerUnary},
    {"Cos", {7}, lowerUnary},
    {"Exp", {6, 13}, lowerUnary},
    {"Log", {6, 13}, lowerUnary},
    {"Tanh", {6, 13}, lowerUnary},
    {"Floor", {6, 13}, lowerUnary},
    {"Ceil", {6, 13}, lowerUnary},
    {"Identity", {1, 13, 14, 16}, lowerUnary},
    {"Clip", {11, 12, 13}, lowerClip},
    {"Cast", {6, 9, 13}, lowerCast},
    {"Where", {9, 16}, lowerWhere},
    {"Shape", {13, 15}, lowerShape},
    {"ConstantOfShape", {9}, lowerConstantOfShape},
    {"Range", {11}, lowerRange},
    {"Reshape", {13, 14}, lowerReshape},
    {"Expand", {13}, lowerExpand},
    {"Transpose", {13}, lowerTranspose},
    {"Unsqueeze", {11, 13}, lowerSqueezeUnsqueeze},
    {"Squeeze", {11, 13}, lowerSqueezeUnsqueeze},
    {"Concat", {11, 13}, lowerConcat},
    {"Slice", {13}, lowerSlice},
    {"Gather", {11, 13}, lowerGather},
    {"Split", {11, 13}, lowerSplit},
    {"Trilu", {14}, lowerTrilu},
    {"ReduceMean", {11, 13}, lowerReduce},
    {"ReduceMax", {11, 12, 13}, lowerReduce},
    {"ReduceMin", {11, 12, 13}, lowerReduce},
    {"ReduceSum", {11, 13}, lowerReduce},
    {"Softmax", {13}, lowerSoftmax},
    {"LogSoftmax", {13}, lowerSoftmax},
    {"Size", {13}, lowerSize},
    {"MatMul", {9, 13}, lowerMatMul},
    {"Gemm", {11, 13}, lowerGemm},
    {"MatMulInteger", {10}, lowerMatMulInteger},
    {"QuantizeLinear", {10, 13}, lowerQuantizeLinear},
    {"DequantizeLinear", {10, 13}, lowerDequantizeLinear},
    {"DynamicQuantizeLinear", {11}, lowerDynamicQuantizeLinear},
    {"com.microsoft.MatMulNBits", {1}, lowerMatMulNBits},
    {"bitnet.BitLinear", {1}, lowerBitnetBitLinear},
    {"bitnet.RMSNorm", {1}, lowerBitnetRMSNorm},
    {"bitnet.Rope", {1}, lowerBitnetRope},
    {"bitnet.Attention", {1}, lowerBitnetAttention},
    {"bitnet.SquaredRelu", {1}, lowerBitnetSquaredRelu},
};

/// Operations evaluated on the host when all their inputs are constant.
bool isFoldable(StringRef opType) {
  return llvm::is_contained(
      {"Add", "Sub", "Mul", "Div", "Equal", "Less", "Greater", "Neg", "Abs",
       "Sqrt", "Reciprocal", "Round", "Relu", "Floor", "Ceil", "Identity",
       "Cast", "Clip", "Where", "Gather", "Concat", "Unsqueeze", "Squeeze",
       "Reshape", "Expand", "Transpose", "Slice", "ConstantOfShape", "Range",
       "ReduceMean", "ReduceMax", "DequantizeLinear"},
      opType);
}

struct LegalizeONNXPass
    : public bitnet::impl::BitNetLegalizeONNXBase<LegalizeONNXPass> {
  void runOnOperation() override;
};

} // namespace

void LegalizeONNXPass::runOnOperation() {
  func::FuncOp func = getOperation();
  if (func.isExternal())
    return;
  MLIRContext *ctx = &getContext();
  DenseMap<Value, Type> elemOf;

  // Arguments: signless storage types, the ONNX type remembered.
  Block &entry = func.getBody().front();
  for (BlockArgument arg : entry.getArguments()) {
    auto type = dyn_cast<RankedTensorType>(arg.getType());
    if (!type || !type.hasStaticShape()) {
      emitError(func.getLoc()) << "input #" << arg.getArgNumber()
                               << " has no static shape: " << arg.getType();
      return signalPassFailure();
    }
    elemOf[arg] = type.getElementType();
    arg.setType(type.clone(signlessType(type.getElementType())));
  }
  auto elemFor = [&](Value v) -> Type {
    auto it = elemOf.find(v);
    if (it != elemOf.end())
      return it->second;
    if (auto t = dyn_cast<ShapedType>(v.getType()))
      return t.getElementType();
    return {};
  };

  OpBuilder b(ctx);
  for (Operation &opRef : llvm::make_early_inc_range(entry)) {
    Operation *op = &opRef;
    StringRef name = op->getName().getStringRef();
    if (!name.starts_with("onnx."))
      continue;
    StringRef opType = name.drop_front(5);
    if (opType == "None") {
      continue; // erased once its users are gone
    }
    SmallVector<Operand> in;
    for (Value v : op->getOperands()) {
      if (isa<NoneType>(v.getType())) {
        in.push_back({});
        continue;
      }
      auto t = dyn_cast<RankedTensorType>(v.getType());
      if (!t || !t.hasStaticShape()) {
        emitError(op->getLoc()) << Node::nodeDescription(op)
                                << ": an input has no static shape ("
                                << v.getType() << ")";
        return signalPassFailure();
      }
      in.push_back({v, elemFor(v)});
    }
    int64_t version = 0;
    if (auto v = op->getAttrOfType<IntegerAttr>("onnx.version"))
      version = v.getInt();
    b.setInsertionPoint(op);
    Node node(op, b, opType, version, in);

    std::optional<Results> results;
    // Fold when every input is a constant and the host knows the op.
    if (isFoldable(opType) && !in.empty()) {
      SmallVector<std::optional<HostTensor>> consts;
      bool allConst = true;
      for (size_t k = 0; k < in.size() && allConst; ++k) {
        if (!in[k]) {
          consts.emplace_back();
          continue;
        }
        consts.push_back(node.constant(k));
        allConst = consts.back().has_value();
      }
      if (allConst) {
        SmallVector<const HostTensor *> ptrs;
        for (auto &c : consts)
          ptrs.push_back(c ? &*c : nullptr);
        if (auto folded = evaluate(opType, version, node.attrs, ptrs)) {
          results.emplace();
          for (HostTensor &t : *folded)
            results->push_back(node.constantOf(t));
        }
      }
    }
    if (!results) {
      const Lowering *found = nullptr;
      const Lowering *anyVersion = nullptr;
      for (const Lowering &l : kLowerings) {
        if (opType != l.opType)
          continue;
        anyVersion = &l;
        if (llvm::is_contained(l.versions, version))
          found = &l;
      }
      if (!found) {
        InFlightDiagnostic d = emitError(op->getLoc())
                               << Node::nodeDescription(op) << ": operator "
                               << opType << " version " << version
                               << " is not supported";
        if (anyVersion) {
          std::string list;
          for (int64_t v : anyVersion->versions)
            list += (list.empty() ? "" : ", ") + std::to_string(v);
          d.attachNote() << "supported versions of " << opType << ": " << list;
        } else {
          d.attachNote() << "the ONNX importer supports: Abs, Add, Cast, Ceil, "
                            "Clip, Concat, Constant, ConstantOfShape, Cos, "
                            "DequantizeLinear, Div, DynamicQuantizeLinear, "
                            "Equal, Exp, Expand, Floor, Gather, Gemm, Greater, "
                            "Identity, Less, Log, LogSoftmax, MatMul, MatMulInteger, Mul, "
                            "Neg, Pow, QuantizeLinear, Range, Reciprocal, "
                            "ReduceMax, ReduceMean, ReduceMin, ReduceSum, Relu, Reshape, "
                            "Round, Size, "
                            "Shape, Sigmoid, Sin, Slice, Softmax, Split, Sqrt, "
                            "Squeeze, Sub, Tanh, Transpose, Trilu, Unsqueeze, "
                            "Where, com.microsoft.MatMulNBits, and of the "
                            "bitnet domain Attention, BitLinear, RMSNorm, "
                            "Rope, SquaredRelu";
        }
        return signalPassFailure();
      }
      FailureOr<Results> r = found->fn(node);
      if (failed(r))
        return signalPassFailure();
      results = std::move(*r);
    }
    if (results->size() < op->getNumResults()) {
      // Optional outputs the lowering does not produce must be unused.
      for (unsigned k = results->size(); k < op->getNumResults(); ++k)
        if (!op->getResult(k).use_empty()) {
          emitError(op->getLoc()) << Node::nodeDescription(op) << ": output "
                                  << k << " is not supported";
          return signalPassFailure();
        }
    }
    if (results->size() > op->getNumResults())
      results->resize(op->getNumResults());
    for (auto [k, r] : llvm::enumerate(*results)) {
      Value old = op->getResult(k);
      // Users that are not ONNX operations (bitnet ops made by BitLinear
      // recognition) were built for the type ONNX inferred; it must agree.
      for (OpOperand &use : old.getUses()) {
        Operation *user = use.getOwner();
        if (user->getName().getStringRef().starts_with("onnx.") ||
            isa<func::ReturnOp>(user))
          continue;
        if (user->getOperand(use.getOperandNumber()).getType() !=
                r.value.getType() &&
            old.getType() != r.value.getType()) {
          emitError(op->getLoc())
              << Node::nodeDescription(op) << ": result " << k << " has type "
              << r.value.getType() << " but ONNX shape inference said "
              << old.getType();
          return signalPassFailure();
        }
      }
      elemOf[r.value] = r.elem;
      old.replaceAllUsesWith(r.value);
    }
    op->erase();
  }
  // Omitted-input placeholders.
  for (Operation &op : llvm::make_early_inc_range(entry))
    if (op.getName().getStringRef() == "onnx.None" && op.use_empty())
      op.erase();

  // The signature follows the legalised values.
  auto ret = cast<func::ReturnOp>(entry.getTerminator());
  SmallVector<Type> results;
  for (Value v : ret.getOperands()) {
    if (isa<NoneType>(v.getType())) {
      ret.emitError("a graph output is an omitted value");
      return signalPassFailure();
    }
    results.push_back(v.getType());
  }
  func.setFunctionType(
      FunctionType::get(ctx, entry.getArgumentTypes(), results));
}
