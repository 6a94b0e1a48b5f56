//===- ONNXElementwise.cpp - Elementwise ONNX operations ------------------===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// Add, Sub, Mul, Div, Pow, the comparisons, the unary math functions, Clip,
// Cast and Where: one linalg.generic each over numpy-broadcast operands.
//
//===----------------------------------------------------------------------===//

#include "ONNXNode.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"

using namespace mlir;
using namespace mlir::bitnet::onnx;

namespace {

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
        Value bad =
            arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, y, zero);
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
        auto pred =
            op == "Equal" ? arith::CmpIPredicate::eq
            : op == "Less"
                ? (uns ? arith::CmpIPredicate::ult : arith::CmpIPredicate::slt)
                : (uns ? arith::CmpIPredicate::ugt : arith::CmpIPredicate::sgt);
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
  SmallVector<Type> types = floatOnly          ? n.floats()
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
          Value e =
              math::ExpOp::create(b, loc, arith::NegFOp::create(b, loc, x));
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
          Value lt =
              arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OLT, x, zero);
          return arith::SelectOp::create(b, loc, lt, zero, x);
        }
        return maxOf(b, loc, x, Node::scalarIn(b, loc, elem, 0), elem);
      });
  if (failed(r))
    return failure();
  return Results{{*r, elem}};
}

FailureOr<Results> lowerClip(Node &n) {
  if (failed(n.arity(1, 3)) || failed(n.elemIn(0, n.numbers(), "input")) ||
      failed(n.sameElem(0, 1)) || failed(n.sameElem(0, 2)))
    return failure();
  Type elem = n.in[0].elem;
  SmallVector<Operand> ops = {n.in[0]};
  bool hasLo = static_cast<bool>(n.input(1)),
       hasHi = static_cast<bool>(n.input(2));
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

} // namespace

/// Arithmetic, comparisons, unary functions, Clip, Cast, Where.
ArrayRef<Lowering> mlir::bitnet::onnx::elementwiseLowerings() {
  static const Lowering lowerings[] = {
      {"Add", {7, 13, 14}, lowerArith, kFoldable},
      {"Sub", {7, 13, 14}, lowerArith, kFoldable},
      {"Mul", {7, 13, 14}, lowerArith, kFoldable},
      {"Div", {7, 13, 14}, lowerArith, kFoldable},
      {"Pow", {12, 13, 15}, lowerPow},
      {"Equal", {11, 13}, lowerCompare, kFoldable},
      {"Less", {9, 13}, lowerCompare, kFoldable},
      {"Greater", {9, 13}, lowerCompare, kFoldable},
      {"Sqrt", {6, 13}, lowerUnary, kFoldable},
      {"Reciprocal", {6, 13}, lowerUnary, kFoldable},
      {"Abs", {6, 13}, lowerUnary, kFoldable},
      {"Neg", {6, 13}, lowerUnary, kFoldable},
      {"Round", {11}, lowerUnary, kFoldable},
      {"Relu", {6, 13, 14}, lowerUnary, kFoldable},
      {"Sigmoid", {6, 13}, lowerUnary},
      {"Sin", {7}, lowerUnary},
      {"Cos", {7}, lowerUnary},
      {"Exp", {6, 13}, lowerUnary},
      {"Log", {6, 13}, lowerUnary},
      {"Tanh", {6, 13}, lowerUnary},
      {"Floor", {6, 13}, lowerUnary, kFoldable},
      {"Ceil", {6, 13}, lowerUnary, kFoldable},
      {"Identity", {1, 13, 14, 16}, lowerUnary, kFoldable},
      {"Clip", {11, 12, 13}, lowerClip, kFoldable},
      {"Cast", {6, 9, 13}, lowerCast, kFoldable},
      {"Where", {9, 16}, lowerWhere, kFoldable},
  };
  return lowerings;
}
