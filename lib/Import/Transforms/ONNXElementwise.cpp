//===- ONNXElementwise.cpp - Elementwise ONNX operations ------------------===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// Add, Sub, Mul, Div, Pow, Mod, BitShift, Max, Min, Sum, Mean, the
// comparisons and logical operations, the unary math functions, Clip, Cast,
// CastLike, Where and Dropout: one linalg.generic each over numpy-broadcast
// operands.
//
//===----------------------------------------------------------------------===//

#include "ONNXNode.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"

#include <cmath>

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
          auto pred = op == "Equal"            ? arith::CmpFPredicate::OEQ
                      : op == "Less"           ? arith::CmpFPredicate::OLT
                      : op == "LessOrEqual"    ? arith::CmpFPredicate::OLE
                      : op == "GreaterOrEqual" ? arith::CmpFPredicate::OGE
                                               : arith::CmpFPredicate::OGT;
          return arith::CmpFOp::create(b, loc, pred, a[0], a[1]);
        }
        bool uns = isUnsigned(elem);
        using P = arith::CmpIPredicate;
        auto pred = op == "Equal"         ? P::eq
                    : op == "Less"        ? (uns ? P::ult : P::slt)
                    : op == "LessOrEqual" ? (uns ? P::ule : P::sle)
                    : op == "GreaterOrEqual" ? (uns ? P::uge : P::sge)
                                             : (uns ? P::ugt : P::sgt);
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

/// Input 0 converted to `dst` (Cast, CastLike).
FailureOr<Results> castTo(Node &n, Type dst) {
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

FailureOr<Results> lowerCast(Node &n) {
  if (failed(n.arity(1, 1)) || failed(n.elemIn(0, n.allTypes(), "input")))
    return failure();
  FailureOr<int64_t> to = n.intAttr("to", -1);
  if (failed(to))
    return failure();
  // Strings and complex numbers are refused here, as the importer refuses
  // them for graph inputs.
  Type dst = isSupportedDataType(*to) ? elementTypeOf(n.ctx(), *to) : Type();
  if (!dst) {
    InFlightDiagnostic d = n.error() << "cast to data type " << *to
                                     << " is not supported";
    d.attachNote() << "expected FLOAT (1), UINT8 (2), INT8 (3), UINT16 (4), "
                      "INT16 (5), INT32 (6), INT64 (7), BOOL (9), FLOAT16 "
                      "(10), DOUBLE (11), UINT32 (12), UINT64 (13) or "
                      "BFLOAT16 (16)";
    return d;
  }
  return castTo(n, dst);
}

FailureOr<Results> lowerCastLike(Node &n) {
  if (failed(n.arity(2, 2)) || failed(n.elemIn(0, n.allTypes(), "input")) ||
      failed(n.elemIn(1, n.allTypes(), "target_type")))
    return failure();
  return castTo(n, n.in[1].elem);
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


/// Max, Min, Sum, Mean: one or more operands, broadcast together.
FailureOr<Results> lowerVariadic(Node &n) {
  StringRef op = n.opType;
  bool arith = op == "Sum" || op == "Mean";
  // Sum and Mean take floats; Max and Min any number since version 12.
  SmallVector<Type> types =
      arith || n.version < 12 ? n.floats() : n.numbers();
  if (failed(n.arity(1, n.in.size())) || failed(n.elemIn(0, types, "data_0")))
    return failure();
  for (size_t k = 1; k < n.in.size(); ++k)
    if (failed(n.sameElem(0, k)))
      return failure();
  Type elem = n.in[0].elem;
  double count = double(n.in.size());
  FailureOr<Value> r = n.elementwise(
      n.in, elem, [&](OpBuilder &b, Location loc, ValueRange a) -> Value {
        Value acc = a[0];
        for (Value x : a.drop_front()) {
          if (op == "Max")
            acc = maxOf(b, loc, acc, x, elem);
          else if (op == "Min")
            acc = minOf(b, loc, acc, x, elem);
          else
            acc = arith::AddFOp::create(b, loc, acc, x);
        }
        if (op == "Mean")
          acc = arith::DivFOp::create(b, loc, acc,
                                      Node::scalarIn(b, loc, elem, count));
        return acc;
      });
  if (failed(r))
    return failure();
  return Results{{*r, elem}};
}

FailureOr<Results> lowerMod(Node &n) {
  if (failed(n.arity(2, 2)) || failed(n.elemIn(0, n.numbers(), "A")) ||
      failed(n.sameElem(0, 1)))
    return failure();
  FailureOr<int64_t> fmod = n.intAttr("fmod", 0);
  if (failed(fmod))
    return failure();
  Type elem = n.in[0].elem;
  bool isFloat = isa<FloatType>(elem);
  if (isFloat && *fmod != 1) {
    InFlightDiagnostic d = n.error() << "fmod = " << *fmod
                                     << " on floats is not supported";
    d.attachNote() << "expected fmod = 1 for float inputs (ONNX requires it)";
    return d;
  }
  bool uns = isUnsigned(elem);
  FailureOr<Value> r = n.elementwise(
      n.in, elem, [&](OpBuilder &b, Location loc, ValueRange a) -> Value {
        Value x = a[0], y = a[1];
        if (isFloat)
          return arith::RemFOp::create(b, loc, x, y); // C fmod
        // Integer remainder by zero is undefined in ONNX; give 0 (as numpy)
        // rather than trap. INT_MIN % -1 is 0 either way.
        Value zero = Node::scalarIn(b, loc, elem, 0);
        Value one = Node::scalarIn(b, loc, elem, 1);
        Value byZero =
            arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, y, zero);
        Value minusOne = arith::CmpIOp::create(
            b, loc, arith::CmpIPredicate::eq, y,
            arith::ConstantOp::create(b, loc, y.getType(),
                                      b.getIntegerAttr(y.getType(), -1)));
        Value bad = uns ? byZero
                        : Value(arith::OrIOp::create(b, loc, byZero, minusOne));
        Value safe = arith::SelectOp::create(b, loc, bad, one, y);
        Value rem = uns ? Value(arith::RemUIOp::create(b, loc, x, safe))
                        : Value(arith::RemSIOp::create(b, loc, x, safe));
        if (!uns && !*fmod) {
          // Python's %: the sign of the divisor.
          Value nonZero = arith::CmpIOp::create(
              b, loc, arith::CmpIPredicate::ne, rem, zero);
          Value signsDiffer = arith::CmpIOp::create(
              b, loc, arith::CmpIPredicate::slt,
              arith::XOrIOp::create(b, loc, rem, safe), zero);
          Value fix = arith::AndIOp::create(b, loc, nonZero, signsDiffer);
          rem = arith::SelectOp::create(
              b, loc, fix, arith::AddIOp::create(b, loc, rem, safe), rem);
        }
        return arith::SelectOp::create(b, loc, bad, zero, rem);
      });
  if (failed(r))
    return failure();
  return Results{{*r, elem}};
}

FailureOr<Results> lowerBitShift(Node &n) {
  if (failed(n.arity(2, 2)) ||
      failed(n.elemIn(0, {n.u8(), n.u16(), n.u32(), n.u64()}, "X")) ||
      failed(n.sameElem(0, 1)))
    return failure();
  auto dir = n.attrs.getAs<StringAttr>("direction");
  if (!dir || (dir.getValue() != "LEFT" && dir.getValue() != "RIGHT")) {
    InFlightDiagnostic d = n.error() << "attribute 'direction' is "
                                     << (dir ? dir.getValue() : "missing");
    d.attachNote() << "expected \"LEFT\" or \"RIGHT\"";
    return d;
  }
  bool left = dir.getValue() == "LEFT";
  Type elem = n.in[0].elem;
  unsigned width = elem.getIntOrFloatBitWidth();
  FailureOr<Value> r = n.elementwise(
      n.in, elem, [&](OpBuilder &b, Location loc, ValueRange a) -> Value {
        // Shifting by the width or more gives 0 (as numpy), not poison.
        Value tooFar = arith::CmpIOp::create(
            b, loc, arith::CmpIPredicate::uge, a[1],
            Node::scalarIn(b, loc, elem, width));
        Value s = left ? Value(arith::ShLIOp::create(b, loc, a[0], a[1]))
                       : Value(arith::ShRUIOp::create(b, loc, a[0], a[1]));
        return arith::SelectOp::create(b, loc, tooFar,
                                       Node::scalarIn(b, loc, elem, 0), s);
      });
  if (failed(r))
    return failure();
  return Results{{*r, elem}};
}

/// And, Or, Xor, Not on bool tensors.
FailureOr<Results> lowerLogical(Node &n) {
  StringRef op = n.opType;
  size_t arity = op == "Not" ? 1 : 2;
  if (failed(n.arity(arity, arity)) || failed(n.elemIn(0, {n.i1()}, "A")) ||
      failed(n.elemIn(1, {n.i1()}, "B")))
    return failure();
  FailureOr<Value> r = n.elementwise(
      n.in, n.i1(), [&](OpBuilder &b, Location loc, ValueRange a) -> Value {
        if (op == "Not")
          return arith::XOrIOp::create(b, loc, a[0],
                                       Node::scalarIn(b, loc, b.getI1Type(), 1));
        if (op == "And")
          return arith::AndIOp::create(b, loc, a[0], a[1]);
        if (op == "Or")
          return arith::OrIOp::create(b, loc, a[0], a[1]);
        return arith::XOrIOp::create(b, loc, a[0], a[1]);
      });
  if (failed(r))
    return failure();
  return Results{{*r, n.i1()}};
}

/// IsNaN, IsInf: bool of a float test.
FailureOr<Results> lowerFloatTest(Node &n) {
  if (failed(n.arity(1, 1)) || failed(n.elemIn(0, n.floats(), "X")))
    return failure();
  bool nan = n.opType == "IsNaN";
  FailureOr<int64_t> neg = n.intAttr("detect_negative", 1),
                     pos = n.intAttr("detect_positive", 1);
  if (failed(neg) || failed(pos))
    return failure();
  Type elem = n.in[0].elem;
  FailureOr<Value> r = n.elementwise(
      n.in, n.i1(), [&](OpBuilder &b, Location loc, ValueRange a) -> Value {
        Value x = a[0];
        if (nan)
          return arith::CmpFOp::create(b, loc, arith::CmpFPredicate::UNO, x, x);
        Value inf = Node::scalarIn(b, loc, elem, INFINITY);
        Value isPos =
            arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OEQ, x, inf);
        Value isNeg = arith::CmpFOp::create(
            b, loc, arith::CmpFPredicate::OEQ, x,
            Node::scalarIn(b, loc, elem, -INFINITY));
        Value no = Node::scalarIn(b, loc, b.getI1Type(), 0);
        return arith::OrIOp::create(b, loc, *pos ? isPos : no,
                                    *neg ? isNeg : no);
      });
  if (failed(r))
    return failure();
  return Results{{*r, n.i1()}};
}

FailureOr<Results> lowerSign(Node &n) {
  if (failed(n.arity(1, 1)) || failed(n.elemIn(0, n.numbers(), "input")))
    return failure();
  Type elem = n.in[0].elem;
  bool isFloat = isa<FloatType>(elem);
  FailureOr<Value> r = n.elementwise(
      n.in, elem, [&](OpBuilder &b, Location loc, ValueRange a) -> Value {
        Value x = a[0];
        Value zero = Node::scalarIn(b, loc, elem, 0);
        Value one = Node::scalarIn(b, loc, elem, 1);
        Value minusOne = isFloat ? Node::scalarIn(b, loc, elem, -1)
                                 : Value(arith::ConstantOp::create(
                                       b, loc, x.getType(),
                                       b.getIntegerAttr(x.getType(), -1)));
        Value gt, lt;
        if (isFloat) {
          gt = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OGT, x,
                                     zero);
          lt = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OLT, x,
                                     zero);
        } else {
          gt = arith::CmpIOp::create(b, loc,
                                     isUnsigned(elem) ? arith::CmpIPredicate::ugt
                                                      : arith::CmpIPredicate::sgt,
                                     x, zero);
          lt = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt, x,
                                     zero);
          if (isUnsigned(elem))
            lt = Node::scalarIn(b, loc, b.getI1Type(), 0);
        }
        // 0 stays 0 (and -0 stays -0), NaN stays NaN.
        Value pos = arith::SelectOp::create(b, loc, gt, one, x);
        return arith::SelectOp::create(b, loc, lt, minusOne, pos);
      });
  if (failed(r))
    return failure();
  return Results{{*r, elem}};
}

/// Dropout at inference: the data unchanged, the mask all true. A training
/// mode that is on (with a ratio above 0) would need random numbers.
FailureOr<Results> lowerDropout(Node &n) {
  if (failed(n.arity(1, 3)) || failed(n.elemIn(0, n.allTypes(), "data")))
    return failure();
  bool training = false;
  if (n.input(2)) {
    std::optional<HostTensor> t = n.constant(2);
    if (!t || t->size() != 1 || t->isFloat()) {
      InFlightDiagnostic d = n.error()
                             << "input 2 (training_mode) is not a constant; "
                                "a training mode known only at run time is "
                                "not supported";
      d.attachNote() << "expected a constant bool scalar";
      return d;
    }
    training = t->i[0] != 0;
  }
  if (training) {
    double ratio = 0.5;
    if (n.input(1)) {
      std::optional<HostTensor> t = n.constant(1);
      ratio = t && t->size() == 1 ? t->asDouble(0) : -1;
    } else if (Attribute a = n.attrs.get("ratio")) {
      ratio = isa<FloatAttr>(a) ? cast<FloatAttr>(a).getValueAsDouble() : -1;
    }
    if (ratio != 0) {
      InFlightDiagnostic d = n.error() << "training mode (random dropout) is "
                                          "not supported";
      d.attachNote() << "expected training_mode false, or a constant ratio 0";
      return d;
    }
  }
  Type elem = n.in[0].elem;
  Results r{{n.in[0].value, elem}};
  if (n.op->getNumResults() > 1 && !n.op->getResult(1).use_empty()) {
    // Version 7's mask has the data's type, later ones are bool.
    Type maskElem = n.version < 10 ? elem : n.i1();
    r.push_back({n.filled(n.in[0].shape(), maskElem,
                          n.scalar(maskElem, 1)),
                 maskElem});
  }
  return r;
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
      {"CastLike", {15}, lowerCastLike},
      {"GreaterOrEqual", {12, 16}, lowerCompare},
      {"LessOrEqual", {12, 16}, lowerCompare},
      {"Max", {6, 8, 12, 13}, lowerVariadic, kFoldable},
      {"Min", {6, 8, 12, 13}, lowerVariadic, kFoldable},
      {"Sum", {6, 8, 13}, lowerVariadic},
      {"Mean", {6, 8, 13}, lowerVariadic},
      {"Mod", {10, 13}, lowerMod},
      {"BitShift", {11}, lowerBitShift},
      {"And", {7}, lowerLogical},
      {"Or", {7}, lowerLogical},
      {"Xor", {7}, lowerLogical},
      {"Not", {1}, lowerLogical, kFoldable},
      {"IsNaN", {9, 13}, lowerFloatTest},
      {"IsInf", {10}, lowerFloatTest},
      {"Sign", {9, 13}, lowerSign},
      {"Dropout", {7, 10, 12, 13}, lowerDropout},
  };
  return lowerings;
}
