//===- ONNXNode.cpp - One ONNX node as its lowering sees it ---------------===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#include "ONNXNode.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Matchers.h"

using namespace mlir;
using namespace mlir::bitnet::onnx;

std::string mlir::bitnet::onnx::describeType(Type elem) {
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

std::string mlir::bitnet::onnx::describe(const Operand &o) {
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

//===----------------------------------------------------------------------===//
// Node
//===----------------------------------------------------------------------===//

std::string Node::nodeDescription(Operation *op) {
  std::string name;
  if (auto nl = dyn_cast<NameLoc>(op->getLoc()))
    name = nl.getName().str();
  StringRef type = op->getName().getStringRef();
  type.consume_front("onnx.");
  return "node '" + name + "' (" + type.str() + ")";
}

const Operand &Node::input(size_t k) {
  static Operand none;
  return k < in.size() ? in[k] : none;
}

LogicalResult Node::arity(size_t min, size_t max) {
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

LogicalResult Node::elemIn(size_t k, ArrayRef<Type> allowed, StringRef what) {
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

LogicalResult Node::sameElem(size_t a, size_t bIdx) {
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

LogicalResult Node::rankIs(size_t k, int64_t lo, int64_t hi, StringRef what) {
  const Operand &o = input(k);
  if (!o || (o.rank() >= lo && o.rank() <= hi))
    return success();
  InFlightDiagnostic d = error()
                         << "input " << k << " (" << what << ") has rank "
                         << o.rank() << ": " << describe(o);
  if (lo == hi)
    d.attachNote() << "expected rank " << lo;
  else if (hi > 1000)
    d.attachNote() << "expected rank " << lo << " or more";
  else
    d.attachNote() << "expected rank " << lo << " to " << hi;
  return d;
}

FailureOr<int64_t> Node::intAttr(StringRef name, int64_t dflt) {
  Attribute a = attrs.get(name);
  if (!a)
    return dflt;
  if (auto i = dyn_cast<IntegerAttr>(a))
    return i.getInt();
  return error() << "attribute '" << name << "' must be an int";
}

FailureOr<float> Node::floatAttr(StringRef name, float dflt) {
  Attribute a = attrs.get(name);
  if (!a)
    return dflt;
  if (auto f = dyn_cast<FloatAttr>(a))
    return float(f.getValueAsDouble());
  return error() << "attribute '" << name << "' must be a float";
}

FailureOr<std::optional<SmallVector<int64_t>>> Node::intsAttr(StringRef name) {
  Attribute a = attrs.get(name);
  if (!a)
    return std::optional<SmallVector<int64_t>>();
  if (auto i = dyn_cast<DenseI64ArrayAttr>(a))
    return std::optional<SmallVector<int64_t>>(
        SmallVector<int64_t>(i.asArrayRef()));
  return error() << "attribute '" << name << "' must be a list of ints";
}

std::optional<HostTensor> Node::constant(size_t k) {
  const Operand &o = input(k);
  DenseElementsAttr attr;
  if (!o || !matchPattern(o.value, m_Constant(&attr)))
    return std::nullopt;
  return fromAttr(cast<ElementsAttr>(attr), o.elem);
}

FailureOr<SmallVector<int64_t>> Node::constInts(size_t k, StringRef what) {
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

Value Node::scalarIn(OpBuilder &nb, Location nl, Type elem, double v) {
  Type s = signlessType(elem);
  if (isa<FloatType>(s))
    return arith::ConstantOp::create(nb, nl, s, nb.getFloatAttr(s, v));
  return arith::ConstantOp::create(nb, nl, s, nb.getIntegerAttr(s, int64_t(v)));
}

Value Node::empty(ArrayRef<int64_t> shape, Type elem) {
  return tensor::EmptyOp::create(b, loc, shape, signlessType(elem));
}

Value Node::filled(ArrayRef<int64_t> shape, Type elem, Value v) {
  return linalg::FillOp::create(b, loc, ValueRange{v},
                                ValueRange{empty(shape, elem)})
      .getResult(0);
}

AffineMap Node::broadcastMap(ArrayRef<int64_t> inShape,
                             ArrayRef<int64_t> outShape) {
  SmallVector<AffineExpr> exprs;
  size_t off = outShape.size() - inShape.size();
  for (size_t k = 0; k < inShape.size(); ++k)
    exprs.push_back(inShape[k] == 1 && outShape[k + off] != 1
                        ? getAffineConstantExpr(0, ctx())
                        : getAffineDimExpr(k + off, ctx()));
  return AffineMap::get(outShape.size(), 0, exprs, ctx());
}

Value Node::generic(ArrayRef<Value> inputs, ArrayRef<AffineMap> maps,
                    ArrayRef<int64_t> outShape, Type outElem, Body body) {
  Value init = empty(outShape, outElem);
  SmallVector<AffineMap> all(maps.begin(), maps.end());
  all.push_back(b.getMultiDimIdentityMap(outShape.size()));
  SmallVector<utils::IteratorType> iters(outShape.size(),
                                         utils::IteratorType::parallel);
  auto g = linalg::GenericOp::create(
      b, loc, TypeRange{init.getType()}, inputs, ValueRange{init}, all, iters,
      [&](OpBuilder &nb, Location nl, ValueRange args) {
        Value r = body(nb, nl, args.drop_back());
        linalg::YieldOp::create(nb, nl, r);
      });
  return g.getResult(0);
}

FailureOr<Value> Node::elementwise(ArrayRef<Operand> ops, Type outElem,
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

Value Node::reduce(
    Value x, ArrayRef<bool> reduceDims, Type elem, Value init,
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

Value Node::reshape(Value v, ArrayRef<int64_t> shape) {
  auto type = cast<RankedTensorType>(v.getType());
  if (type.getShape() == shape)
    return v;
  Type elem = type.getElementType();
  int64_t n = numElements(shape);
  Value flat = v;
  if (type.getRank() == 0) {
    flat =
        tensor::ExpandShapeOp::create(b, loc, RankedTensorType::get({1}, elem),
                                      v, ArrayRef<ReassociationIndices>{});
  } else if (type.getRank() > 1) {
    ReassociationIndices all;
    for (int64_t k = 0; k < type.getRank(); ++k)
      all.push_back(k);
    flat = tensor::CollapseShapeOp::create(b, loc,
                                           RankedTensorType::get({n}, elem), v,
                                           ArrayRef<ReassociationIndices>{all});
  }
  if (shape.empty())
    return tensor::CollapseShapeOp::create(
        b, loc, RankedTensorType::get({}, elem), flat,
        ArrayRef<ReassociationIndices>{});
  if (shape.size() == 1)
    return flat;
  ReassociationIndices all;
  for (size_t k = 0; k < shape.size(); ++k)
    all.push_back(k);
  return tensor::ExpandShapeOp::create(b, loc,
                                       RankedTensorType::get(shape, elem), flat,
                                       ArrayRef<ReassociationIndices>{all});
}

Result Node::constantOf(const HostTensor &t) {
  return {arith::ConstantOp::create(b, loc, toAttr(t)), t.elem};
}

//===----------------------------------------------------------------------===//
// Scalar helpers
//===----------------------------------------------------------------------===//

Value mlir::bitnet::onnx::convertScalar(OpBuilder &b, Location loc, Value v,
                                        Type from, Type to) {
  Type dst = signlessType(to);
  Type src = signlessType(from);
  if (from == to || (src == dst && !to.isInteger(1)))
    return v;
  // bf16 goes through f32: the C runtime has no bf16 conversions, so none
  // may be left to LLVM. f32 to bf16 keeps the high half of the bits (ONNX's
  // reference truncates), a NaN stays a quiet NaN.
  Type f32 = b.getF32Type();
  if (src.isBF16() && !dst.isF32())
    return convertScalar(b, loc, convertScalar(b, loc, v, from, f32), f32, to);
  if (dst.isBF16()) {
    if (!src.isF32())
      v = convertScalar(b, loc, v, from, f32);
    Type i32 = b.getI32Type(), i16 = b.getIntegerType(16);
    Value bits = arith::BitcastOp::create(b, loc, i32, v);
    Value high = arith::ShRUIOp::create(
        b, loc, bits,
        arith::ConstantOp::create(b, loc, i32, b.getI32IntegerAttr(16)));
    Value isNaN =
        arith::CmpFOp::create(b, loc, arith::CmpFPredicate::UNO, v, v);
    Value quiet = arith::OrIOp::create(
        b, loc, high,
        arith::ConstantOp::create(b, loc, i32, b.getI32IntegerAttr(0x40)));
    Value r = arith::SelectOp::create(b, loc, isNaN, quiet, high);
    return arith::BitcastOp::create(
        b, loc, dst, arith::TruncIOp::create(b, loc, i16, r));
  }
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

Value mlir::bitnet::onnx::maxOf(OpBuilder &b, Location loc, Value x, Value y,
                                Type elem) {
  if (isa<FloatType>(elem))
    return arith::MaximumFOp::create(b, loc, x, y);
  if (isUnsigned(elem))
    return arith::MaxUIOp::create(b, loc, x, y);
  return arith::MaxSIOp::create(b, loc, x, y);
}
Value mlir::bitnet::onnx::minOf(OpBuilder &b, Location loc, Value x, Value y,
                                Type elem) {
  if (isa<FloatType>(elem))
    return arith::MinimumFOp::create(b, loc, x, y);
  if (isUnsigned(elem))
    return arith::MinUIOp::create(b, loc, x, y);
  return arith::MinSIOp::create(b, loc, x, y);
}

FailureOr<Value> mlir::bitnet::onnx::scalarOperand(Node &n, size_t k,
                                                   StringRef what) {
  const Operand &o = n.input(k);
  if (numElements(o.shape()) != 1 || o.rank() > 1) {
    InFlightDiagnostic d = n.error() << "input " << k << " (" << what << ") is "
                                     << describe(o);
    d.attachNote() << "expected a scalar";
    return d;
  }
  return n.reshape(o.value, {});
}
