//===- ONNXConv.cpp - ONNX convolution, pooling and resizing --------------===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// Conv, ConvInteger, QLinearConv, ConvTranspose, MaxPool, AveragePool, the
// global pools, MaxUnpool, Resize and Upsample.
//
// Windowed operations read a padded copy of their input through affine maps
// (`o * stride + k * dilation` per spatial dimension) in one linalg.generic
// whose kernel dimensions are reductions. The padded copy is a gather (a
// linalg.generic that reads the input where the position falls inside it and
// yields the padding value elsewhere) rather than tensor.pad or
// tensor.insert_slice: views of tensors bufferize into strided copies that
// need runtime helpers a compiled model does not link. ConvTranspose is a
// convolution with the flipped kernel over its input spread out by the
// stride. Every shape is static, so Resize's source positions and weights
// are computed here, per axis, and applied axis after axis.
//
//===----------------------------------------------------------------------===//

#include "ONNXNode.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

#include <array>
#include <cmath>

using namespace mlir;
using namespace mlir::bitnet::onnx;

namespace {

using Ints = SmallVector<int64_t>;

/// Bound on kernel sizes, strides, dilations and pads: large enough for any
/// real model, small enough that the shape arithmetic cannot overflow.
constexpr int64_t kMaxWindowAttr = int64_t(1) << 24;

/// Largest spatial rank taken (inputs of rank 3 to 2 + kMaxSpatial).
constexpr int64_t kMaxSpatial = 6;

std::string listText(ArrayRef<int64_t> v) {
  std::string s = "[";
  for (auto [k, x] : llvm::enumerate(v))
    s += (k ? ", " : "") + std::to_string(x);
  return s + "]";
}

/// Integer list attribute `name` with `count` values, each in [min,
/// kMaxWindowAttr]; `dflt` repeated when absent.
FailureOr<Ints> listAttr(Node &n, StringRef name, size_t count, int64_t dflt,
                         int64_t min) {
  FailureOr<std::optional<Ints>> a = n.intsAttr(name);
  if (failed(a))
    return failure();
  if (!*a)
    return Ints(count, dflt);
  Ints v = **a;
  if (v.size() != count) {
    InFlightDiagnostic d = n.error() << "attribute '" << name << "' has "
                                     << v.size() << " values " << listText(v);
    d.attachNote() << "expected " << count << " values";
    return d;
  }
  for (int64_t x : v)
    if (x < min || x > kMaxWindowAttr) {
      InFlightDiagnostic d = n.error() << "attribute '" << name
                                       << "' has the value " << x;
      d.attachNote() << "expected values in [" << min << ", " << kMaxWindowAttr
                     << "]";
      return d;
    }
  return v;
}

FailureOr<std::string> stringAttr(Node &n, StringRef name, StringRef dflt) {
  Attribute a = n.attrs.get(name);
  if (!a)
    return dflt.str();
  if (auto s = dyn_cast<StringAttr>(a))
    return s.getValue().str();
  return n.error() << "attribute '" << name << "' must be a string";
}

/// A 0/1 attribute.
FailureOr<bool> flagAttr(Node &n, StringRef name) {
  FailureOr<int64_t> v = n.intAttr(name, 0);
  if (failed(v))
    return failure();
  if (*v != 0 && *v != 1) {
    InFlightDiagnostic d = n.error() << "attribute '" << name << "' is " << *v;
    d.attachNote() << "expected 0 or 1";
    return d;
  }
  return *v == 1;
}

enum class AutoPad { NotSet, SameUpper, SameLower, Valid };

FailureOr<AutoPad> autoPadAttr(Node &n) {
  FailureOr<std::string> s = stringAttr(n, "auto_pad", "NOTSET");
  if (failed(s))
    return failure();
  if (*s == "NOTSET")
    return AutoPad::NotSet;
  if (*s == "SAME_UPPER")
    return AutoPad::SameUpper;
  if (*s == "SAME_LOWER")
    return AutoPad::SameLower;
  if (*s == "VALID")
    return AutoPad::Valid;
  InFlightDiagnostic d = n.error() << "attribute 'auto_pad' is '" << *s << "'";
  d.attachNote() << "expected NOTSET, SAME_UPPER, SAME_LOWER or VALID";
  return d;
}

/// Checks that input `k` is [N, C, spatial...] with 1 to kMaxSpatial
/// spatial dimensions.
LogicalResult spatialInput(Node &n, size_t k, StringRef what) {
  return n.rankIs(k, 3, 2 + kMaxSpatial, what);
}

/// The sliding window of a convolution or pooling over the spatial
/// dimensions: output position o reads padded positions
/// o * stride + k * dilation for k < kernel, where the padded input has
/// padBegin positions before the input.
struct Window {
  Ints kernel, strides, dilations, padBegin, padEnd, out;
  size_t rank() const { return kernel.size(); }
  int64_t extent(size_t i) const { return (kernel[i] - 1) * dilations[i] + 1; }
  /// The padded size every window fits in.
  int64_t padded(size_t i) const {
    return (out[i] - 1) * strides[i] + extent(i);
  }
};

/// The window of a Conv (kernel from the weights) or a pooling (kernel from
/// kernel_shape), with auto_pad, pads and, for pools, ceil_mode.
FailureOr<Window> parseWindow(Node &n, ArrayRef<int64_t> in,
                              std::optional<ArrayRef<int64_t>> weightKernel,
                              bool ceilMode) {
  size_t r = in.size();
  Window w;
  if (weightKernel) {
    w.kernel.assign(weightKernel->begin(), weightKernel->end());
    FailureOr<std::optional<Ints>> ks = n.intsAttr("kernel_shape");
    if (failed(ks))
      return failure();
    if (*ks && **ks != w.kernel) {
      InFlightDiagnostic d = n.error() << "attribute 'kernel_shape' is "
                                       << listText(**ks);
      d.attachNote() << "expected the weights' kernel " << listText(w.kernel);
      return d;
    }
    for (int64_t k : w.kernel)
      if (k < 1)
        return n.error() << "the weights have an empty kernel "
                         << listText(w.kernel);
  } else {
    if (!n.attrs.get("kernel_shape"))
      return n.error() << "attribute 'kernel_shape' is required";
    FailureOr<Ints> ks = listAttr(n, "kernel_shape", r, 1, 1);
    if (failed(ks))
      return failure();
    w.kernel = *ks;
  }
  FailureOr<Ints> strides = listAttr(n, "strides", r, 1, 1);
  if (failed(strides))
    return failure();
  FailureOr<Ints> dilations = listAttr(n, "dilations", r, 1, 1);
  if (failed(dilations))
    return failure();
  FailureOr<Ints> pads = listAttr(n, "pads", 2 * r, 0, 0);
  if (failed(pads))
    return failure();
  FailureOr<AutoPad> autoPad = autoPadAttr(n);
  if (failed(autoPad))
    return failure();
  bool ceil = false;
  if (ceilMode) {
    FailureOr<bool> c = flagAttr(n, "ceil_mode");
    if (failed(c))
      return failure();
    ceil = *c;
  }
  w.strides = *strides;
  w.dilations = *dilations;
  for (size_t i = 0; i < r; ++i) {
    int64_t s = w.strides[i], dk = w.extent(i), pb = 0, pe = 0, out;
    if (*autoPad == AutoPad::SameUpper || *autoPad == AutoPad::SameLower) {
      out = (in[i] + s - 1) / s;
      int64_t total = std::max<int64_t>(0, (out - 1) * s + dk - in[i]);
      pb = *autoPad == AutoPad::SameUpper ? total / 2 : total - total / 2;
      pe = total - pb;
    } else {
      if (*autoPad == AutoPad::NotSet) {
        pb = (*pads)[i];
        pe = (*pads)[i + r];
      }
      int64_t span = in[i] + pb + pe - dk;
      if (span < 0) {
        InFlightDiagnostic d = n.error() << "the window of extent " << dk
                                         << " on spatial dimension " << i
                                         << " is larger than the padded input ("
                                         << in[i] + pb + pe << ")";
        d.attachNote() << "expected (kernel - 1) * dilation + 1 <= input + "
                          "pads";
        return d;
      }
      out = span / s + 1;
      // ceil_mode keeps a last, partial window, unless it would start in
      // the end padding.
      if (ceil && span % s != 0 && out * s < in[i] + pb)
        ++out;
    }
    w.padBegin.push_back(pb);
    w.padEnd.push_back(pe);
    w.out.push_back(out);
  }
  return w;
}

/// [N, C] followed by `spatial`.
Ints withBatch(ArrayRef<int64_t> nc, ArrayRef<int64_t> spatial) {
  Ints s(nc.take_front(2));
  s.append(spatial.begin(), spatial.end());
  return s;
}

/// A tensor of `shape` whose element p is x[(p - begin) / stride] where
/// that is a position of `x` (p - begin divisible by stride) and `fill`
/// elsewhere: padding when stride is 1, spreading out (ConvTranspose) when
/// it is more. Returns `x` itself where that would only crop it: the
/// windows read inside it either way.
Value placeIn(Node &n, Value x, ArrayRef<int64_t> shape,
              ArrayRef<int64_t> begin, ArrayRef<int64_t> stride, Type elem,
              double fill) {
  auto type = cast<RankedTensorType>(x.getType());
  ArrayRef<int64_t> in = type.getShape();
  bool inside = true;
  for (size_t k = 0; k < shape.size(); ++k)
    inside = inside && begin[k] == 0 && stride[k] == 1 && shape[k] <= in[k];
  if (inside)
    return x;
  Ints sh(shape), bg(begin), st(stride), inShape(in);
  return n.generic(
      {}, {}, shape, elem, [&](OpBuilder &b, Location loc, ValueRange) {
        auto cst = [&](int64_t v) -> Value {
          return arith::ConstantIndexOp::create(b, loc, v);
        };
        Value valid;
        auto both = [&](Value c) {
          valid = valid ? Value(arith::AndIOp::create(b, loc, valid, c)) : c;
        };
        SmallVector<Value> at;
        for (size_t k = 0; k < sh.size(); ++k) {
          Value p = linalg::IndexOp::create(b, loc, k);
          if (bg[k] == 0 && st[k] == 1 && sh[k] <= inShape[k]) {
            at.push_back(p);
            continue;
          }
          Value j = arith::SubIOp::create(b, loc, p, cst(bg[k]));
          both(arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sge, j,
                                     cst(0)));
          Value q = j;
          if (st[k] != 1) {
            both(arith::CmpIOp::create(
                b, loc, arith::CmpIPredicate::eq,
                arith::RemSIOp::create(b, loc, j, cst(st[k])), cst(0)));
            q = arith::DivSIOp::create(b, loc, j, cst(st[k]));
          }
          both(arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt, q,
                                     cst(inShape[k])));
          q = arith::MaxSIOp::create(b, loc, q, cst(0));
          q = arith::MinSIOp::create(b, loc, q, cst(inShape[k] - 1));
          at.push_back(q);
        }
        Value v = tensor::ExtractOp::create(b, loc, x, at);
        if (!valid)
          return v;
        return Value(arith::SelectOp::create(
            b, loc, valid, v, Node::scalarIn(b, loc, elem, fill)));
      });
}

/// The convolution y[n, g * Mg + m, o] = bias[g * Mg + m] +
/// sum over c < Cg and kernel positions k of
///   xp[n, g * Cg + c, o * stride + offset + k * dilation] * w(g, m, c, k)
/// where w is [G * Mg, Cg, K...] (Conv), or, `transposed`, [G * Cg, Mg, K...]
/// with the kernel flipped (ConvTranspose). `xp` is [N, G * Cg, P...].
Value convCore(Node &n, Value xp, Value w, bool transposed, int64_t groups,
               ArrayRef<int64_t> strides, ArrayRef<int64_t> offsets,
               ArrayRef<int64_t> dilations, ArrayRef<int64_t> out, Value bias,
               Type elem) {
  MLIRContext *ctx = n.ctx();
  ArrayRef<int64_t> xs = cast<RankedTensorType>(xp.getType()).getShape();
  ArrayRef<int64_t> ws = cast<RankedTensorType>(w.getType()).getShape();
  int64_t r = out.size();
  int64_t cg = xs[1] / groups;
  int64_t mg = transposed ? ws[1] : ws[0] / groups;
  ArrayRef<int64_t> kernel = ws.drop_front(2);
  Ints xShape = {xs[0], groups, cg};
  xShape.append(xs.begin() + 2, xs.end());
  Ints wShape = transposed ? Ints{groups, cg, mg} : Ints{groups, mg, cg};
  wShape.append(kernel.begin(), kernel.end());
  Ints yShape = {xs[0], groups, mg};
  yShape.append(out.begin(), out.end());
  if (transposed) {
    // The kernel flipped first: the convolution's maps must name every
    // loop plainly somewhere for linalg to derive the loop bounds.
    SmallVector<AffineExpr> fe = {getAffineDimExpr(0, ctx),
                                  getAffineDimExpr(1, ctx)};
    for (size_t i = 0; i < kernel.size(); ++i)
      fe.push_back((kernel[i] - 1) - getAffineDimExpr(2 + i, ctx));
    w = n.generic({w}, {AffineMap::get(ws.size(), 0, fe, ctx)}, ws, elem,
                  [](OpBuilder &, Location, ValueRange a) { return a[0]; });
  }
  Value x4 = n.reshape(xp, xShape), w4 = n.reshape(w, wShape);

  // Loops: n, g, m, o..., c, k...
  auto d = [&](int64_t k) { return getAffineDimExpr(k, ctx); };
  int64_t loops = 4 + 2 * r;
  SmallVector<AffineExpr> xe = {d(0), d(1), d(3 + r)};
  SmallVector<AffineExpr> we =
      transposed ? SmallVector<AffineExpr>{d(1), d(3 + r), d(2)}
                 : SmallVector<AffineExpr>{d(1), d(2), d(3 + r)};
  SmallVector<AffineExpr> ye = {d(0), d(1), d(2)};
  for (int64_t i = 0; i < r; ++i) {
    xe.push_back(d(3 + i) * strides[i] + offsets[i] +
                 d(4 + r + i) * dilations[i]);
    we.push_back(d(4 + r + i));
    ye.push_back(d(3 + i));
  }
  Value init;
  if (bias) {
    Value b2 = n.reshape(bias, {groups, mg});
    SmallVector<AffineExpr> be = {getAffineDimExpr(1, ctx),
                                  getAffineDimExpr(2, ctx)};
    init = n.generic({b2}, {AffineMap::get(yShape.size(), 0, be, ctx)}, yShape,
                     elem,
                     [](OpBuilder &, Location, ValueRange a) { return a[0]; });
  } else {
    init = n.filled(yShape, elem, n.scalar(elem, 0));
  }
  SmallVector<AffineMap> maps = {AffineMap::get(loops, 0, xe, ctx),
                                 AffineMap::get(loops, 0, we, ctx),
                                 AffineMap::get(loops, 0, ye, ctx)};
  SmallVector<utils::IteratorType> iters(3 + r, utils::IteratorType::parallel);
  iters.append(1 + r, utils::IteratorType::reduction);
  bool isFloat = isa<FloatType>(elem);
  auto g = linalg::GenericOp::create(
      n.b, n.loc, TypeRange{init.getType()}, ValueRange{x4, w4},
      ValueRange{init}, maps, iters,
      [&](OpBuilder &b, Location loc, ValueRange a) {
        Value r =
            isFloat
                ? Value(arith::AddFOp::create(
                      b, loc, a[2], arith::MulFOp::create(b, loc, a[0], a[1])))
                : Value(arith::AddIOp::create(
                      b, loc, a[2], arith::MulIOp::create(b, loc, a[0], a[1])));
        linalg::YieldOp::create(b, loc, r);
      });
  Ints result = {xs[0], groups * mg};
  result.append(out.begin(), out.end());
  return n.reshape(g.getResult(0), result);
}

/// Group count and the checks that tie channels, groups and weights.
FailureOr<int64_t> groupsOf(Node &n, size_t wk, int64_t channels,
                            int64_t weightIn, int64_t outChannels,
                            bool transposed) {
  if (channels < 1) {
    InFlightDiagnostic d = n.error() << "input 0 (X) " << describe(n.in[0])
                                     << " has no channels";
    d.attachNote() << "expected at least one input channel";
    return d;
  }
  FailureOr<int64_t> g = n.intAttr("group", 1);
  if (failed(g))
    return failure();
  if (*g < 1 || *g > channels) {
    InFlightDiagnostic d = n.error() << "attribute 'group' is " << *g;
    d.attachNote() << "expected a group count in [1, " << channels
                   << "] (the input channels)";
    return d;
  }
  if (channels % *g != 0 || (!transposed && weightIn * *g != channels) ||
      (transposed && weightIn != channels) ||
      (!transposed && outChannels % *g != 0)) {
    InFlightDiagnostic d = n.error()
                           << "the weights " << describe(n.in[wk])
                           << " do not match the input " << describe(n.in[0])
                           << " with group " << *g;
    if (transposed)
      d.attachNote() << "expected W of shape [C, M / group, kernel...] with C "
                        "a multiple of group";
    else
      d.attachNote() << "expected W of shape [M, C / group, kernel...] with C "
                        "and M multiples of group";
    return d;
  }
  return *g;
}

LogicalResult checkBias(Node &n, size_t k, int64_t m) {
  const Operand &bias = n.input(k);
  if (!bias)
    return success();
  if (bias.rank() != 1 || bias.shape()[0] != m) {
    InFlightDiagnostic d = n.error()
                           << "input " << k << " (B) is " << describe(bias);
    d.attachNote() << "expected a 1-D tensor of the " << m
                   << " output channels";
    return d;
  }
  return success();
}

LogicalResult checkWeightsRank(Node &n, size_t wk) {
  if (n.in[wk].rank() != n.in[0].rank()) {
    InFlightDiagnostic d = n.error() << "the weights " << describe(n.in[wk])
                                     << " and the input " << describe(n.in[0])
                                     << " have different ranks";
    d.attachNote() << "expected weights of the input's rank";
    return d;
  }
  return success();
}

/// `o` - zero point (input `zpIndex`, a scalar or, for per-channel weights,
/// one per output channel) as i32.
FailureOr<Value> shiftedToI32(Node &n, const Operand &o, size_t zpIndex,
                              StringRef what, bool perChannel) {
  SmallVector<Operand> ops = {o};
  const Operand &zp = n.input(zpIndex);
  if (zp) {
    bool scalar = numElements(zp.shape()) == 1 && zp.rank() <= 1;
    if (scalar) {
      ops.push_back({n.reshape(zp.value, {}), zp.elem});
    } else if (perChannel && zp.rank() == 1 && zp.shape()[0] == o.shape()[0]) {
      Ints s(o.rank(), 1);
      s[0] = zp.shape()[0];
      ops.push_back({n.reshape(zp.value, s), zp.elem});
    } else {
      InFlightDiagnostic d = n.error() << "input " << zpIndex << " (" << what
                                       << ") is " << describe(zp);
      d.attachNote() << "expected a scalar"
                     << (perChannel ? " or one value per output channel" : "");
      return d;
    }
  }
  Type e = o.elem, i32 = n.i32();
  return n.elementwise(ops, i32,
                       [&](OpBuilder &b, Location loc, ValueRange a) -> Value {
                         Value x = convertScalar(b, loc, a[0], e, i32);
                         if (a.size() > 1)
                           x = arith::SubIOp::create(
                               b, loc, x, convertScalar(b, loc, a[1], e, i32));
                         return x;
                       });
}

/// A scale of QLinearConv: a float scalar or, for the weights, one per
/// output channel (shaped to broadcast over [N, M, O...]).
FailureOr<Value> quantScale(Node &n, size_t k, StringRef what, int64_t m,
                            int64_t rank) {
  const Operand &o = n.input(k);
  if (failed(n.elemIn(k, {n.f32()}, what)))
    return failure();
  if (numElements(o.shape()) == 1 && o.rank() <= 1)
    return n.reshape(o.value, {});
  if (m > 0 && o.rank() == 1 && o.shape()[0] == m) {
    Ints s(rank - 1, 1);
    s[0] = m;
    return n.reshape(o.value, s);
  }
  InFlightDiagnostic d = n.error() << "input " << k << " (" << what << ") is "
                                   << describe(o);
  d.attachNote() << "expected a scalar"
                 << (m > 0 ? " or one value per output channel" : "");
  return d;
}

FailureOr<Results> lowerConv(Node &n) {
  bool quant = n.opType == "QLinearConv";
  bool integer = quant || n.opType == "ConvInteger";
  // Inputs: x, w, their zero points and the bias, by operator.
  size_t wk = quant ? 3 : 1, xzk = 2, wzk = quant ? 5 : 3;
  size_t bk = quant ? 8 : 2;
  if (quant) {
    SmallVector<Type> types = {n.i8(), n.u8()};
    if (failed(n.arity(8, 9)) || failed(n.elemIn(0, types, "x")) ||
        failed(n.elemIn(3, types, "w")) || failed(n.elemIn(7, types, "y")) ||
        failed(n.sameElem(0, 2)) || failed(n.sameElem(3, 5)) ||
        failed(n.elemIn(8, {n.i32()}, "B")))
      return failure();
  } else if (integer) {
    SmallVector<Type> types = {n.i8(), n.u8()};
    if (failed(n.arity(2, 4)) || failed(n.elemIn(0, types, "x")) ||
        failed(n.elemIn(1, types, "w")) || failed(n.sameElem(0, 2)) ||
        failed(n.sameElem(1, 3)))
      return failure();
  } else {
    if (failed(n.arity(2, 3)) || failed(n.elemIn(0, n.floats(), "X")) ||
        failed(n.sameElem(0, 1)) || failed(n.sameElem(0, 2)))
      return failure();
  }
  if (failed(spatialInput(n, 0, "X")) || failed(checkWeightsRank(n, wk)))
    return failure();
  ArrayRef<int64_t> xs = n.in[0].shape(), ws = n.in[wk].shape();
  FailureOr<int64_t> groups = groupsOf(n, wk, xs[1], ws[1], ws[0], false);
  if (failed(groups) ||
      ((!integer || quant) && failed(checkBias(n, bk, ws[0]))))
    return failure();
  FailureOr<Window> w =
      parseWindow(n, xs.drop_front(2), ws.drop_front(2), /*ceilMode=*/false);
  if (failed(w))
    return failure();
  Ints outShape = withBatch(xs, w->out);
  outShape[1] = ws[0];
  if (numElements(outShape) < 0)
    return n.error() << "result has too many elements";

  Type elem = integer ? n.i32() : n.in[0].elem;
  Value x = n.in[0].value, weights = n.in[wk].value;
  if (integer) {
    // Zero points first, so that padding (zero) contributes nothing.
    FailureOr<Value> sx = shiftedToI32(n, n.in[0], xzk, "x_zero_point", false);
    if (failed(sx))
      return failure();
    FailureOr<Value> sw = shiftedToI32(n, n.in[wk], wzk, "w_zero_point", true);
    if (failed(sw))
      return failure();
    x = *sx;
    weights = *sw;
  }
  Ints padded = {xs[0], xs[1]}, begin = {0, 0}, ones(xs.size(), 1);
  for (size_t i = 0; i < w->rank(); ++i) {
    padded.push_back(w->padded(i));
    begin.push_back(w->padBegin[i]);
  }
  if (numElements(padded) < 0)
    return n.error() << "the padded input has too many elements";
  Value xp = placeIn(n, x, padded, begin, ones, elem, 0);
  Value bias = integer && !quant ? Value() : n.input(bk).value;
  Ints zeros(w->rank(), 0);
  Value y = convCore(n, xp, weights, false, *groups, w->strides, zeros,
                     w->dilations, w->out, bias, elem);
  if (!quant)
    return Results{{y, elem}};

  // QLinearConv: y = saturate(round(acc * x_scale * w_scale / y_scale) +
  // y_zero_point), in float as ONNX Runtime computes it, rounding half to
  // even.
  int64_t rank = outShape.size();
  FailureOr<Value> xScale = quantScale(n, 1, "x_scale", 0, rank);
  FailureOr<Value> wScale = quantScale(n, 4, "w_scale", ws[0], rank);
  FailureOr<Value> yScale = quantScale(n, 6, "y_scale", 0, rank);
  if (failed(xScale) || failed(wScale) || failed(yScale))
    return failure();
  SmallVector<Operand> ops = {
      {y, n.i32()}, {*xScale, n.f32()}, {*wScale, n.f32()}, {*yScale, n.f32()}};
  Type out = n.in[7].elem;
  if (n.input(7)) {
    FailureOr<Value> yz = scalarOperand(n, 7, "y_zero_point");
    if (failed(yz))
      return failure();
    ops.push_back({*yz, out});
  }
  bool isUnsignedOut = isUnsigned(out);
  FailureOr<Value> q = n.elementwise(
      ops, out, [&](OpBuilder &b, Location loc, ValueRange a) -> Value {
        Value f32 = convertScalar(b, loc, a[0], b.getI32Type(), b.getF32Type());
        Value m = arith::DivFOp::create(
            b, loc, arith::MulFOp::create(b, loc, a[1], a[2]), a[3]);
        Value v = math::RoundEvenOp::create(
            b, loc, arith::MulFOp::create(b, loc, f32, m));
        if (a.size() > 4)
          v = arith::AddFOp::create(
              b, loc, v, convertScalar(b, loc, a[4], out, b.getF32Type()));
        v = arith::MaximumFOp::create(
            b, loc, v,
            Node::scalarIn(b, loc, n.f32(), isUnsignedOut ? 0 : -128));
        v = arith::MinimumFOp::create(
            b, loc, v,
            Node::scalarIn(b, loc, n.f32(), isUnsignedOut ? 255 : 127));
        return convertScalar(b, loc, v, b.getF32Type(), out);
      });
  if (failed(q))
    return failure();
  return Results{{*q, out}};
}

FailureOr<Results> lowerConvTranspose(Node &n) {
  if (failed(n.arity(2, 3)) || failed(n.elemIn(0, n.floats(), "X")) ||
      failed(n.sameElem(0, 1)) || failed(n.sameElem(0, 2)) ||
      failed(spatialInput(n, 0, "X")) || failed(checkWeightsRank(n, 1)))
    return failure();
  ArrayRef<int64_t> xs = n.in[0].shape(), ws = n.in[1].shape();
  FailureOr<int64_t> groups = groupsOf(n, 1, xs[1], ws[0], 0, true);
  if (failed(groups))
    return failure();
  int64_t m = ws[1] * *groups;
  if (failed(checkBias(n, 2, m)))
    return failure();
  size_t r = xs.size() - 2;
  ArrayRef<int64_t> kernel = ws.drop_front(2);
  for (int64_t k : kernel)
    if (k < 1)
      return n.error() << "the weights have an empty kernel "
                       << listText(kernel);
  FailureOr<std::optional<Ints>> ks = n.intsAttr("kernel_shape");
  if (failed(ks))
    return failure();
  if (*ks && ArrayRef<int64_t>(**ks) != kernel) {
    InFlightDiagnostic d = n.error()
                           << "attribute 'kernel_shape' is " << listText(**ks);
    d.attachNote() << "expected the weights' kernel " << listText(kernel);
    return d;
  }
  FailureOr<Ints> strides = listAttr(n, "strides", r, 1, 1);
  if (failed(strides))
    return failure();
  FailureOr<Ints> dilations = listAttr(n, "dilations", r, 1, 1);
  if (failed(dilations))
    return failure();
  FailureOr<Ints> pads = listAttr(n, "pads", 2 * r, 0, 0);
  if (failed(pads))
    return failure();
  FailureOr<Ints> outPadding = listAttr(n, "output_padding", r, 0, 0);
  if (failed(outPadding))
    return failure();
  FailureOr<AutoPad> autoPad = autoPadAttr(n);
  if (failed(autoPad))
    return failure();
  FailureOr<std::optional<Ints>> outputShape = n.intsAttr("output_shape");
  if (failed(outputShape))
    return failure();
  Ints requested;
  if (*outputShape) {
    requested = **outputShape;
    // The spatial sizes, or the whole shape.
    if (requested.size() == r + 2)
      requested.erase(requested.begin(), requested.begin() + 2);
    if (requested.size() != r) {
      InFlightDiagnostic d = n.error() << "attribute 'output_shape' is "
                                       << listText(**outputShape);
      d.attachNote() << "expected " << r << " spatial sizes";
      return d;
    }
    for (int64_t v : requested)
      if (v < 1 || v > kMaxWindowAttr) {
        InFlightDiagnostic d = n.error() << "attribute 'output_shape' is "
                                         << listText(**outputShape);
        d.attachNote() << "expected sizes in [1, " << kMaxWindowAttr << "]";
        return d;
      }
  }
  // Output position o is position o + padBegin of the full transposed
  // convolution, which reads the input spread out by the stride and padded
  // with extent - 1 on each side, with the kernel flipped.
  Ints out, padBegin;
  for (size_t i = 0; i < r; ++i) {
    int64_t s = (*strides)[i], dk = (kernel[i] - 1) * (*dilations)[i] + 1;
    int64_t full = s * (xs[2 + i] - 1) + (*outPadding)[i] + dk;
    int64_t o, pb;
    bool same =
        *autoPad == AutoPad::SameUpper || *autoPad == AutoPad::SameLower;
    if (*outputShape || same) {
      o = *outputShape ? requested[i] : xs[2 + i] * s;
      int64_t total = std::max<int64_t>(0, full - o);
      pb = *autoPad == AutoPad::SameUpper ? total / 2 : total - total / 2;
    } else {
      pb = *autoPad == AutoPad::Valid ? 0 : (*pads)[i];
      int64_t pe = *autoPad == AutoPad::Valid ? 0 : (*pads)[i + r];
      o = full - pb - pe;
      if (o < 1) {
        InFlightDiagnostic d = n.error() << "the pads " << listText(*pads)
                                         << " leave no output on spatial "
                                            "dimension "
                                         << i;
        d.attachNote() << "expected pads smaller than the full output (" << full
                       << ")";
        return d;
      }
    }
    out.push_back(o);
    padBegin.push_back(pb);
  }
  Ints outShape = {xs[0], m};
  outShape.append(out.begin(), out.end());
  if (numElements(outShape) < 0)
    return n.error() << "result has too many elements";
  Ints spread = {xs[0], xs[1]}, begin = {0, 0}, step = {1, 1};
  for (size_t i = 0; i < r; ++i) {
    int64_t dk = (kernel[i] - 1) * (*dilations)[i] + 1;
    spread.push_back(out[i] + padBegin[i] + dk - 1);
    begin.push_back(dk - 1);
    step.push_back((*strides)[i]);
  }
  if (numElements(spread) < 0)
    return n.error() << "the spread input has too many elements";
  Type elem = n.in[0].elem;
  Value xp = placeIn(n, n.in[0].value, spread, begin, step, elem, 0);
  Ints ones(r, 1);
  Value y = convCore(n, xp, n.in[1].value, true, *groups, ones, padBegin,
                     *dilations, out, n.input(2).value, elem);
  return Results{{y, elem}};
}

/// The lowest value of `elem` (the padding of max pooling).
double lowestOf(Type elem) {
  if (isa<FloatType>(elem))
    return -INFINITY;
  unsigned w = elem.getIntOrFloatBitWidth();
  if (isUnsigned(elem))
    return 0;
  return -std::ldexp(1.0, w - 1);
}

FailureOr<Results> lowerPool(Node &n) {
  bool isMax = n.opType == "MaxPool";
  SmallVector<Type> types = n.floats();
  if (isMax) {
    types.push_back(n.i8());
    types.push_back(n.u8());
  }
  if (failed(n.arity(1, 1)) || failed(n.elemIn(0, types, "X")) ||
      failed(spatialInput(n, 0, "X")))
    return failure();
  ArrayRef<int64_t> xs = n.in[0].shape();
  FailureOr<Window> w = parseWindow(n, xs.drop_front(2), std::nullopt,
                                    /*ceilMode=*/true);
  if (failed(w))
    return failure();
  bool columnMajor = false, includePad = false;
  if (isMax) {
    FailureOr<bool> so = flagAttr(n, "storage_order");
    if (failed(so))
      return failure();
    columnMajor = *so;
  } else {
    FailureOr<bool> cip = flagAttr(n, "count_include_pad");
    if (failed(cip))
      return failure();
    includePad = *cip;
  }
  size_t r = w->rank();
  Ints outShape = withBatch(xs, w->out);
  if (numElements(outShape) < 0)
    return n.error() << "result has too many elements";
  Type elem = n.in[0].elem;
  double fill = isMax ? lowestOf(elem) : 0;
  Ints padded = {xs[0], xs[1]}, begin = {0, 0}, ones(xs.size(), 1);
  for (size_t i = 0; i < r; ++i) {
    padded.push_back(w->padded(i));
    begin.push_back(w->padBegin[i]);
  }
  if (numElements(padded) < 0)
    return n.error() << "the padded input has too many elements";
  Value xp = placeIn(n, n.in[0].value, padded, begin, ones, elem, fill);

  // Loops: n, c, o..., k...
  MLIRContext *ctx = n.ctx();
  auto d = [&](int64_t k) { return getAffineDimExpr(k, ctx); };
  int64_t loops = 2 + 2 * r;
  SmallVector<AffineExpr> xe = {d(0), d(1)}, ye = {d(0), d(1)};
  for (size_t i = 0; i < r; ++i) {
    xe.push_back(d(2 + i) * w->strides[i] + d(2 + r + i) * w->dilations[i]);
    ye.push_back(d(2 + i));
  }
  AffineMap xMap = AffineMap::get(loops, 0, xe, ctx);
  AffineMap yMap = AffineMap::get(loops, 0, ye, ctx);
  // The kernel loops appear only in sums in the input's map; a tensor of
  // the kernel's shape (read by no one) names them, as the window operand
  // of linalg's pooling ops does, so that linalg can derive their bounds.
  SmallVector<AffineExpr> ke;
  for (size_t i = 0; i < r; ++i)
    ke.push_back(d(2 + r + i));
  Value window = n.empty(w->kernel, n.i8());
  AffineMap kMap = AffineMap::get(loops, 0, ke, ctx);
  SmallVector<utils::IteratorType> iters(2 + r, utils::IteratorType::parallel);
  iters.append(r, utils::IteratorType::reduction);
  bool withIndices =
      isMax && n.op->getNumResults() > 1 && !n.op->getResult(1).use_empty();
  bool isFloat = isa<FloatType>(elem);

  if (isMax) {
    Value acc = n.filled(outShape, elem, n.scalar(elem, fill));
    if (!withIndices) {
      auto g = linalg::GenericOp::create(
          n.b, n.loc, TypeRange{acc.getType()}, ValueRange{xp, window},
          ValueRange{acc}, SmallVector<AffineMap>{xMap, kMap, yMap}, iters,
          [&](OpBuilder &b, Location loc, ValueRange a) {
            linalg::YieldOp::create(b, loc, maxOf(b, loc, a[2], a[0], elem));
          });
      return Results{{g.getResult(0), elem}};
    }
    // Indices: the first maximum of each window, as an index into the
    // flattened (unpadded) input, row-major or, with storage_order 1,
    // column-major over the spatial dimensions.
    Value idx0 = n.filled(outShape, n.i64(), n.scalar(n.i64(), 0));
    Ints in(xs), strides(w->strides), dil(w->dilations), pb(w->padBegin);
    auto g = linalg::GenericOp::create(
        n.b, n.loc, TypeRange{acc.getType(), idx0.getType()},
        ValueRange{xp, window}, ValueRange{acc, idx0},
        SmallVector<AffineMap>{xMap, kMap, yMap, yMap}, iters,
        [&](OpBuilder &b, Location loc, ValueRange a) {
          auto cst = [&](int64_t v) -> Value {
            return arith::ConstantIndexOp::create(b, loc, v);
          };
          Value nc = arith::AddIOp::create(
              b, loc,
              arith::MulIOp::create(b, loc, linalg::IndexOp::create(b, loc, 0),
                                    cst(in[1])),
              linalg::IndexOp::create(b, loc, 1));
          SmallVector<Value> h;
          for (size_t i = 0; i < r; ++i) {
            Value o = arith::MulIOp::create(
                b, loc, linalg::IndexOp::create(b, loc, 2 + i),
                cst(strides[i]));
            Value k = arith::MulIOp::create(
                b, loc, linalg::IndexOp::create(b, loc, 2 + r + i),
                cst(dil[i]));
            h.push_back(arith::SubIOp::create(
                b, loc, arith::AddIOp::create(b, loc, o, k), cst(pb[i])));
          }
          Value flat = nc;
          if (!columnMajor) {
            for (size_t i = 0; i < r; ++i)
              flat = arith::AddIOp::create(
                  b, loc, arith::MulIOp::create(b, loc, flat, cst(in[2 + i])),
                  h[i]);
          } else {
            Value spatial = cst(0);
            int64_t scale = 1, total = 1;
            for (size_t i = 0; i < r; ++i) {
              spatial = arith::AddIOp::create(
                  b, loc, spatial,
                  arith::MulIOp::create(b, loc, h[i], cst(scale)));
              scale *= in[2 + i];
            }
            total = scale;
            flat = arith::AddIOp::create(
                b, loc, arith::MulIOp::create(b, loc, nc, cst(total)), spatial);
          }
          Value flat64 =
              arith::IndexCastOp::create(b, loc, b.getI64Type(), flat);
          Value greater;
          if (isFloat)
            greater = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OGT,
                                            a[0], a[2]);
          else
            greater = arith::CmpIOp::create(b, loc,
                                            isUnsigned(elem)
                                                ? arith::CmpIPredicate::ugt
                                                : arith::CmpIPredicate::sgt,
                                            a[0], a[2]);
          Value v = arith::SelectOp::create(b, loc, greater, a[0], a[2]);
          Value i = arith::SelectOp::create(b, loc, greater, flat64, a[3]);
          linalg::YieldOp::create(b, loc, ValueRange{v, i});
        });
    return Results{{g.getResult(0), elem}, {g.getResult(1), n.i64()}};
  }

  // AveragePool: the sum, divided by the number of positions counted in
  // each window (the input's, or also the pads' with count_include_pad;
  // never the positions past the end padding that ceil_mode adds).
  Value acc = n.filled(outShape, elem, n.scalar(elem, 0));
  auto g = linalg::GenericOp::create(
      n.b, n.loc, TypeRange{acc.getType()}, ValueRange{xp, window},
      ValueRange{acc}, SmallVector<AffineMap>{xMap, kMap, yMap}, iters,
      [&](OpBuilder &b, Location loc, ValueRange a) {
        linalg::YieldOp::create(
            b, loc, Value(arith::AddFOp::create(b, loc, a[2], a[0])));
      });
  HostTensor counts;
  counts.elem = elem;
  counts.shape = w->out;
  counts.f.assign(numElements(w->out), 1.0);
  int64_t inner = counts.f.size();
  for (size_t i = 0; i < r; ++i) {
    int64_t lo = includePad ? -w->padBegin[i] : 0;
    int64_t hi = xs[2 + i] + (includePad ? w->padEnd[i] : 0);
    std::vector<double> along(w->out[i], 0.0);
    // Kernel positions k with lo <= o * stride + k * dilation - padBegin
    // < hi, counted without a loop over the kernel.
    int64_t s = w->strides[i], dl = w->dilations[i], kn = w->kernel[i];
    auto floorDiv = [](int64_t a, int64_t b) {
      return a >= 0 ? a / b : -((-a + b - 1) / b);
    };
    for (int64_t o = 0; o < w->out[i]; ++o) {
      int64_t base = o * s - w->padBegin[i];
      int64_t first = std::max<int64_t>(0, -floorDiv(base - lo, dl));
      int64_t last = std::min<int64_t>(kn - 1, floorDiv(hi - 1 - base, dl));
      along[o] = double(std::max<int64_t>(0, last - first + 1));
    }
    inner /= w->out[i];
    for (int64_t e = 0; e < int64_t(counts.f.size()); ++e)
      counts.f[e] *= along[(e / inner) % w->out[i]];
  }
  Value cnt = n.constantOf(counts).value;
  FailureOr<Value> y =
      n.elementwise({{g.getResult(0), elem}, {cnt, elem}}, elem,
                    [&](OpBuilder &b, Location loc, ValueRange a) -> Value {
                      return arith::DivFOp::create(b, loc, a[0], a[1]);
                    });
  if (failed(y))
    return failure();
  return Results{{*y, elem}};
}

FailureOr<Results> lowerGlobalPool(Node &n) {
  bool isMax = n.opType == "GlobalMaxPool";
  if (failed(n.arity(1, 1)) || failed(n.elemIn(0, n.floats(), "X")) ||
      failed(spatialInput(n, 0, "X")))
    return failure();
  const Operand &x = n.in[0];
  Type elem = x.elem;
  SmallVector<bool> dims(x.rank(), true);
  dims[0] = dims[1] = false;
  Value r = n.reduce(x.value, dims, elem, n.scalar(elem, isMax ? -INFINITY : 0),
                     [&](OpBuilder &b, Location loc, Value acc, Value v) {
                       if (isMax)
                         return maxOf(b, loc, acc, v, elem);
                       return Value(arith::AddFOp::create(b, loc, acc, v));
                     });
  if (!isMax) {
    double count = double(numElements(x.shape().drop_front(2)));
    FailureOr<Value> m = n.elementwise(
        {{r, elem}}, elem, [&](OpBuilder &b, Location loc, ValueRange a) {
          return Value(arith::DivFOp::create(
              b, loc, a[0], Node::scalarIn(b, loc, elem, count)));
        });
    if (failed(m))
      return failure();
    r = *m;
  }
  Ints shape(x.rank(), 1);
  shape[0] = x.shape()[0];
  shape[1] = x.shape()[1];
  return Results{{n.reshape(r, shape), elem}};
}

/// MaxUnpool: each output position takes the value of the pooled element
/// whose index names it, or 0. The indices are MaxPool's (same kernel,
/// strides and pads): each names a position inside its own window, so only
/// the windows that cover a position can name it, and the lowering looks
/// through those (kernel-many per position) rather than scattering.
FailureOr<Results> lowerMaxUnpool(Node &n) {
  if (failed(n.arity(2, 3)) || failed(n.elemIn(0, n.floats(), "X")) ||
      failed(n.elemIn(1, {n.i64()}, "I")) || failed(spatialInput(n, 0, "X")))
    return failure();
  ArrayRef<int64_t> xs = n.in[0].shape();
  if (n.in[1].shape() != xs) {
    InFlightDiagnostic d = n.error() << "input 1 (I) is " << describe(n.in[1]);
    d.attachNote() << "expected the shape of X, " << describe(n.in[0]);
    return d;
  }
  size_t r = xs.size() - 2;
  if (!n.attrs.get("kernel_shape"))
    return n.error() << "attribute 'kernel_shape' is required";
  FailureOr<Ints> kernel = listAttr(n, "kernel_shape", r, 1, 1);
  if (failed(kernel))
    return failure();
  FailureOr<Ints> strides = listAttr(n, "strides", r, 1, 1);
  if (failed(strides))
    return failure();
  FailureOr<Ints> pads = listAttr(n, "pads", 2 * r, 0, 0);
  if (failed(pads))
    return failure();
  Ints outShape = {xs[0], xs[1]};
  for (size_t i = 0; i < r; ++i)
    outShape.push_back((xs[2 + i] - 1) * (*strides)[i] + (*kernel)[i] -
                       (*pads)[i] - (*pads)[i + r]);
  if (n.input(2)) {
    FailureOr<Ints> s = n.constInts(2, "output_shape");
    if (failed(s))
      return failure();
    if (s->size() != xs.size() || (*s)[0] != xs[0] || (*s)[1] != xs[1]) {
      InFlightDiagnostic d = n.error() << "output_shape is " << listText(*s);
      d.attachNote() << "expected " << xs.size() << " sizes starting with "
                     << xs[0] << ", " << xs[1];
      return d;
    }
    if (*s != outShape) {
      // Where the values of a larger output go is disputed: ONNX's own
      // test reads the indices in the unpooled shape, ONNX Runtime and
      // PyTorch in the requested one (onnx/onnx#2398).
      InFlightDiagnostic d = n.error()
                             << "output_shape " << listText(*s)
                             << " other than the unpooled shape "
                             << listText(outShape) << " is not supported";
      d.attachNote() << "expected no output_shape or " << listText(outShape);
      return d;
    }
  }
  for (size_t i = 0; i < r; ++i)
    if (outShape[2 + i] < 1) {
      InFlightDiagnostic d = n.error() << "the output shape "
                                       << listText(outShape) << " is empty";
      d.attachNote() << "expected pads smaller than the unpooled size";
      return d;
    }
  if (numElements(outShape) < 0)
    return n.error() << "result has too many elements";
  Type elem = n.in[0].elem;
  Value x = n.in[0].value, idx = n.in[1].value;
  Value acc = n.filled(outShape, elem, n.scalar(elem, 0));
  // Loops: n, c, h..., k...; the window o = (h + pad - k) / stride covers h.
  int64_t loops = 2 + 2 * r;
  SmallVector<utils::IteratorType> iters(2 + r, utils::IteratorType::parallel);
  iters.append(r, utils::IteratorType::reduction);
  SmallVector<AffineExpr> ye;
  for (size_t k = 0; k < 2 + r; ++k)
    ye.push_back(getAffineDimExpr(k, n.ctx()));
  // The kernel loops read nothing; a constant of the kernel's shape gives
  // them their bounds.
  Ints kShape(*kernel);
  Value kernelDomain = n.empty(kShape, n.i8());
  SmallVector<AffineExpr> ke;
  for (size_t k = 0; k < r; ++k)
    ke.push_back(getAffineDimExpr(2 + r + k, n.ctx()));
  Ints st(*strides), pd(*pads), os(outShape), in(xs);
  auto g = linalg::GenericOp::create(
      n.b, n.loc, TypeRange{acc.getType()}, ValueRange{kernelDomain},
      ValueRange{acc},
      SmallVector<AffineMap>{AffineMap::get(loops, 0, ke, n.ctx()),
                             AffineMap::get(loops, 0, ye, n.ctx())},
      iters, [&](OpBuilder &b, Location loc, ValueRange a) {
        auto cst = [&](int64_t v) -> Value {
          return arith::ConstantIndexOp::create(b, loc, v);
        };
        Value valid;
        auto both = [&](Value c) {
          valid = valid ? Value(arith::AndIOp::create(b, loc, valid, c)) : c;
        };
        SmallVector<Value> at = {linalg::IndexOp::create(b, loc, 0),
                                 linalg::IndexOp::create(b, loc, 1)};
        Value flat = arith::AddIOp::create(
            b, loc, arith::MulIOp::create(b, loc, at[0], cst(os[1])), at[1]);
        for (size_t i = 0; i < r; ++i) {
          Value h = linalg::IndexOp::create(b, loc, 2 + i);
          flat = arith::AddIOp::create(
              b, loc, arith::MulIOp::create(b, loc, flat, cst(os[2 + i])), h);
          Value j = arith::SubIOp::create(
              b, loc, arith::AddIOp::create(b, loc, h, cst(pd[i])),
              linalg::IndexOp::create(b, loc, 2 + r + i));
          both(arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sge, j,
                                     cst(0)));
          both(arith::CmpIOp::create(
              b, loc, arith::CmpIPredicate::eq,
              arith::RemSIOp::create(b, loc, j, cst(st[i])), cst(0)));
          Value o = arith::DivSIOp::create(b, loc, j, cst(st[i]));
          both(arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt, o,
                                     cst(in[2 + i])));
          o = arith::MaxSIOp::create(b, loc, o, cst(0));
          o = arith::MinSIOp::create(b, loc, o, cst(in[2 + i] - 1));
          at.push_back(o);
        }
        Value v = tensor::ExtractOp::create(b, loc, x, at);
        Value named = tensor::ExtractOp::create(b, loc, idx, at);
        both(arith::CmpIOp::create(
            b, loc, arith::CmpIPredicate::eq, named,
            arith::IndexCastOp::create(b, loc, b.getI64Type(), flat)));
        linalg::YieldOp::create(
            b, loc, Value(arith::SelectOp::create(b, loc, valid, v, a[1])));
      });
  return Results{{g.getResult(0), elem}};
}

//===----------------------------------------------------------------------===//
// Resize and Upsample
//===----------------------------------------------------------------------===//

/// One axis of a resize: output element o along the axis is
/// sum over taps t of weight[t][o] * x[index[t][o]], or the extrapolation
/// value where outside[o] (tf_crop_and_resize).
struct AxisTaps {
  int64_t axis = 0, out = 0;
  SmallVector<Ints> index;
  SmallVector<std::vector<double>> weight;
  Ints outside;
  bool anyOutside = false;

  /// Whether the axis is left as it is: each output element reads its own
  /// position only, with weight 1.
  bool identity(int64_t in) const {
    if (out != in || anyOutside)
      return false;
    for (int64_t o = 0; o < out; ++o) {
      double own = 0;
      for (size_t t = 0; t < index.size(); ++t) {
        if (index[t][o] == o)
          own += weight[t][o];
        else if (weight[t][o] != 0)
          return false;
      }
      if (own != 1.0)
        return false;
    }
    return true;
  }
};

/// The scales of Resize/Upsample (constant input `k`, or the attribute of
/// Upsample-7); empty when the input is omitted or empty.
FailureOr<std::vector<double>> resizeScales(Node &n, size_t k) {
  std::vector<double> scales;
  if (n.opType == "Upsample" && n.version < 9) {
    Attribute a = n.attrs.get("scales");
    auto f = dyn_cast_or_null<DenseF32ArrayAttr>(a);
    if (!f)
      return n.error() << "attribute 'scales' is required (a list of floats)";
    for (float v : f.asArrayRef())
      scales.push_back(v);
    return scales;
  }
  const Operand &o = n.input(k);
  if (!o || numElements(o.shape()) == 0)
    return scales;
  std::optional<HostTensor> t = n.constant(k);
  if (!t || !t->isFloat() || t->shape.size() != 1) {
    InFlightDiagnostic d = n.error()
                           << "input " << k << " (scales) is not a constant";
    if (t)
      d << " 1-D float tensor";
    d.attachNote() << "expected a constant 1-D float tensor (compiled models "
                      "need static shapes)";
    return d;
  }
  for (double v : t->f)
    scales.push_back(double(float(v)));
  return scales;
}

/// ONNX's cubic convolution coefficients for the four neighbours of a
/// position `ratio` past the second.
std::array<double, 4> cubicCoeffs(double r, double a) {
  auto near = [&](double x) { return ((a + 2) * x - (a + 3)) * x * x + 1; };
  auto far = [&](double x) {
    return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
  };
  return {far(r + 1), near(r), near(1 - r), far(2 - r)};
}

FailureOr<Results> lowerResize(Node &n) {
  bool upsample = n.opType == "Upsample";
  // Resize-10 and Upsample: X and scales; the asymmetric coordinate
  // transformation, nearest neighbours rounded down.
  bool legacy = upsample || n.version == 10;
  size_t maxIn = upsample ? (n.version < 9 ? 1 : 2) : (legacy ? 2 : 4);
  if (failed(n.arity(1, maxIn)) || failed(n.elemIn(0, n.numbers(), "X")))
    return failure();
  const Operand &x = n.in[0];
  int64_t rank = x.rank();
  if (rank < 1)
    return n.error() << "input 0 (X) is a scalar; expected a tensor";
  Type elem = x.elem;

  FailureOr<std::string> mode = stringAttr(n, "mode", "nearest");
  if (failed(mode))
    return failure();
  // Resize-10 and Upsample know nearest and linear only.
  if (*mode != "nearest" && *mode != "linear" && (legacy || *mode != "cubic")) {
    InFlightDiagnostic d = n.error()
                           << "mode '" << *mode << "' is not supported";
    d.attachNote() << "supported modes: nearest, linear"
                   << (legacy ? "" : ", cubic");
    return d;
  }
  if (*mode != "nearest" && !isa<FloatType>(elem))
    return n.error() << "mode '" << *mode << "' on " << describe(x)
                     << " is not supported (integer tensors resize with "
                        "mode 'nearest' only)";
  std::string coord = "asymmetric", nearestMode = "floor";
  double cubicA = -0.75, extrapolation = 0;
  bool excludeOutside = false;
  if (!legacy) {
    FailureOr<std::string> c =
        stringAttr(n, "coordinate_transformation_mode", "half_pixel");
    FailureOr<std::string> nm =
        stringAttr(n, "nearest_mode", "round_prefer_floor");
    FailureOr<float> a = n.floatAttr("cubic_coeff_a", -0.75f);
    FailureOr<float> e = n.floatAttr("extrapolation_value", 0.0f);
    FailureOr<bool> ex = flagAttr(n, "exclude_outside");
    if (failed(c) || failed(nm) || failed(a) || failed(e) || failed(ex))
      return failure();
    coord = *c;
    nearestMode = *nm;
    cubicA = *a;
    extrapolation = *e;
    excludeOutside = *ex;
    static const char *const coords[] = {
        "half_pixel", "pytorch_half_pixel",   "align_corners",
        "asymmetric", "tf_half_pixel_for_nn", "tf_crop_and_resize"};
    if (!llvm::is_contained(coords, coord)) {
      InFlightDiagnostic d = n.error() << "coordinate_transformation_mode '"
                                       << coord << "' is not supported";
      d.attachNote() << "supported: half_pixel, pytorch_half_pixel, "
                        "align_corners, asymmetric, tf_half_pixel_for_nn, "
                        "tf_crop_and_resize";
      return d;
    }
    static const char *const nearests[] = {
        "round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
    if (!llvm::is_contained(nearests, nearestMode)) {
      InFlightDiagnostic d = n.error() << "nearest_mode '" << nearestMode
                                       << "' is not supported";
      d.attachNote() << "supported: round_prefer_floor, round_prefer_ceil, "
                        "floor, ceil";
      return d;
    }
  }

  // Output sizes and scales, from the scales or the sizes.
  size_t scalesIndex = legacy ? 1 : 2;
  FailureOr<std::vector<double>> scales = resizeScales(n, scalesIndex);
  if (failed(scales))
    return failure();
  Ints sizes;
  if (!legacy && n.input(3) && numElements(n.input(3).shape()) != 0) {
    FailureOr<Ints> s = n.constInts(3, "sizes");
    if (failed(s))
      return failure();
    sizes = *s;
  }
  if (scales->empty() == sizes.empty()) {
    InFlightDiagnostic d =
        n.error() << (sizes.empty() ? "neither scales nor sizes is given"
                                    : "both scales and sizes are given");
    d.attachNote() << "expected exactly one of scales and sizes";
    return d;
  }
  size_t given = sizes.empty() ? scales->size() : sizes.size();
  if (int64_t(given) != rank) {
    InFlightDiagnostic d = n.error()
                           << (sizes.empty() ? "scales" : "sizes") << " has "
                           << given << " values for " << describe(x);
    d.attachNote() << "expected one per dimension (" << rank << ")";
    return d;
  }
  std::vector<double> roi;
  if (coord == "tf_crop_and_resize") {
    std::optional<HostTensor> t = n.constant(1);
    if (!t || t->size() != 2 * rank) {
      InFlightDiagnostic d = n.error() << "input 1 (roi) is "
                                       << (t ? describe(n.input(1))
                                             : std::string("not a constant"));
      d.attachNote() << "expected a constant of " << 2 * rank
                     << " values (starts, then ends) for tf_crop_and_resize";
      return d;
    }
    for (int64_t k = 0; k < t->size(); ++k)
      roi.push_back(t->asDouble(k));
  }

  Ints outShape;
  std::vector<double> scale;
  for (int64_t a = 0; a < rank; ++a) {
    int64_t in = x.shape()[a];
    if (!sizes.empty()) {
      if (sizes[a] < 1 || sizes[a] > kMaxDim) {
        InFlightDiagnostic d = n.error() << "sizes has the value " << sizes[a];
        d.attachNote() << "expected sizes >= 1";
        return d;
      }
      outShape.push_back(sizes[a]);
      scale.push_back(in ? double(sizes[a]) / double(in) : 1.0);
    } else {
      double s = (*scales)[a];
      if (!(s > 0) || !std::isfinite(s) || s * double(in) >= double(kMaxDim)) {
        InFlightDiagnostic d = n.error() << "scales has the value " << s;
        d.attachNote() << "expected positive scales";
        return d;
      }
      outShape.push_back(int64_t(std::floor(s * double(in))));
      scale.push_back(s);
    }
  }
  if (numElements(outShape) < 0)
    return n.error() << "result has too many elements";
  if (numElements(outShape) == 0 || numElements(x.shape()) == 0)
    return n.error() << "an empty input or result (" << listText(outShape)
                     << ") is not supported";

  // Source positions and weights, per axis (as ONNX's reference computes
  // them, in double precision).
  SmallVector<AxisTaps> passes;
  for (int64_t a = 0; a < rank; ++a) {
    int64_t in = x.shape()[a], out = outShape[a];
    double s = scale[a], width = s * double(in);
    size_t taps = *mode == "cubic" ? 4 : *mode == "linear" ? 2 : 1;
    AxisTaps p;
    p.axis = a;
    p.out = out;
    p.index.assign(taps, Ints(out));
    p.weight.assign(taps, std::vector<double>(out, 0.0));
    p.outside.assign(out, 0);
    for (int64_t o = 0; o < out; ++o) {
      double xo = double(o), xi;
      if (coord == "half_pixel")
        xi = (xo + 0.5) / s - 0.5;
      else if (coord == "pytorch_half_pixel")
        xi = out > 1 ? (xo + 0.5) / s - 0.5 : 0.0;
      else if (coord == "align_corners")
        xi = width == 1 ? 0.0 : xo * double(in - 1) / (width - 1);
      else if (coord == "asymmetric")
        xi = xo / s;
      else if (coord == "tf_half_pixel_for_nn")
        xi = (xo + 0.5) / s;
      else { // tf_crop_and_resize
        double start = roi[a], end = roi[a + rank];
        xi = width == 1 ? (end - start) * double(in - 1) / 2
                        : xo * (end - start) * double(in - 1) / (width - 1);
        xi += start * double(in - 1);
        if (xi < 0 || xi > double(in - 1)) {
          p.outside[o] = 1;
          p.anyOutside = true;
        }
      }
      auto clampIdx = [&](int64_t i) {
        return std::min<int64_t>(std::max<int64_t>(i, 0), in - 1);
      };
      // The neighbour below with the position's fraction in (0, 1].
      int64_t base = int64_t(std::ceil(xi)) - 1;
      double ratio = xi - double(base);
      if (*mode == "nearest") {
        int64_t pick;
        if (legacy)
          pick = s >= 1 ? int64_t(std::floor(xi)) : int64_t(std::ceil(xi));
        else if (ratio == 1.0 || nearestMode == "ceil")
          pick = base + 1;
        else if (nearestMode == "floor")
          pick = base;
        else if (nearestMode == "round_prefer_floor")
          pick = ratio <= 0.5 ? base : base + 1;
        else
          pick = ratio < 0.5 ? base : base + 1;
        p.index[0][o] = clampIdx(pick);
        p.weight[0][o] = 1.0;
        continue;
      }
      if (*mode == "linear") {
        p.index[0][o] = clampIdx(base);
        p.index[1][o] = clampIdx(base + 1);
        p.weight[0][o] = 1.0 - ratio;
        p.weight[1][o] = ratio;
        continue;
      }
      std::array<double, 4> c = cubicCoeffs(ratio, cubicA);
      double sum = 0;
      for (int64_t t = 0; t < 4; ++t) {
        int64_t i = base - 1 + t;
        if (excludeOutside && (i < 0 || i >= in))
          c[t] = 0;
        sum += c[t];
      }
      for (int64_t t = 0; t < 4; ++t) {
        p.index[t][o] = clampIdx(base - 1 + t);
        p.weight[t][o] = excludeOutside && sum != 0 ? c[t] / sum : c[t];
      }
    }
    if (!p.identity(in))
      passes.push_back(std::move(p));
  }

  // One gather (nearest) or weighted sum per axis that changes.
  Value cur = x.value;
  Ints curShape(x.shape());
  bool isFloat = isa<FloatType>(elem);
  for (AxisTaps &p : passes) {
    curShape[p.axis] = p.out;
    SmallVector<Value> tables;
    SmallVector<AffineMap> maps;
    AffineMap along =
        AffineMap::get(rank, 0, getAffineDimExpr(p.axis, n.ctx()));
    auto table = [&](Type e, ArrayRef<int64_t> ints, ArrayRef<double> floats) {
      HostTensor t;
      t.elem = e;
      t.shape = {p.out};
      t.i.assign(ints.begin(), ints.end());
      t.f.assign(floats.begin(), floats.end());
      tables.push_back(n.constantOf(t).value);
      maps.push_back(along);
    };
    size_t taps = p.index.size();
    for (size_t t = 0; t < taps; ++t)
      table(n.i64(), p.index[t], {});
    if (isFloat && *mode != "nearest")
      for (size_t t = 0; t < taps; ++t)
        table(elem, {}, p.weight[t]);
    if (p.anyOutside)
      table(n.i64(), p.outside, {});
    Value src = cur;
    int64_t axis = p.axis;
    bool weighted = isFloat && *mode != "nearest";
    bool masked = p.anyOutside;
    cur = n.generic(
        tables, maps, curShape, elem,
        [&](OpBuilder &b, Location loc, ValueRange args) -> Value {
          SmallVector<Value> at;
          for (int64_t k = 0; k < rank; ++k)
            at.push_back(linalg::IndexOp::create(b, loc, k));
          Value acc;
          for (size_t t = 0; t < taps; ++t) {
            at[axis] =
                arith::IndexCastOp::create(b, loc, b.getIndexType(), args[t]);
            Value v = tensor::ExtractOp::create(b, loc, src, at);
            if (weighted)
              v = arith::MulFOp::create(b, loc, v, args[taps + t]);
            acc = acc ? Value(arith::AddFOp::create(b, loc, acc, v)) : v;
          }
          if (masked) {
            Value out = arith::CmpIOp::create(
                b, loc, arith::CmpIPredicate::ne, args.back(),
                Node::scalarIn(b, loc, n.i64(), 0));
            acc = arith::SelectOp::create(
                b, loc, out, Node::scalarIn(b, loc, elem, extrapolation), acc);
          }
          return acc;
        });
  }
  return Results{{cur, elem}};
}

} // namespace

/// Convolutions, pooling and resizing.
ArrayRef<Lowering> mlir::bitnet::onnx::convLowerings() {
  static const Lowering lowerings[] = {
      {"Conv", {1, 11}, lowerConv},
      {"ConvInteger", {10}, lowerConv},
      {"QLinearConv", {10}, lowerConv},
      {"ConvTranspose", {1, 11}, lowerConvTranspose},
      {"MaxPool", {1, 8, 10, 11, 12}, lowerPool},
      {"AveragePool", {1, 7, 10, 11}, lowerPool},
      {"GlobalAveragePool", {1}, lowerGlobalPool},
      {"GlobalMaxPool", {1}, lowerGlobalPool},
      {"MaxUnpool", {9, 11}, lowerMaxUnpool},
      {"Resize", {10, 11, 13}, lowerResize},
      {"Upsample", {7, 9}, lowerResize},
  };
  return lowerings;
}
