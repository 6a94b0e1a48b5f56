//===- RecognizeBitLinear.cpp - Quantised MatMuls to bitnet ops -----------===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// Works on the generic `onnx.*` form. A layer is recognised from the graph's
// structure (the exact activation-quantisation chain) and the weight's
// values (evaluated at compile time), never from names. Layers are only
// rewritten when what the graph computes is what the replacement computes:
// see the pass description in include/bitnet/Import/Passes.td.
//
//===----------------------------------------------------------------------===//

#include "bitnet/Import/Passes.h"

#include "HostEval.h"

#include "mlir/IR/Builders.h"
#include "llvm/ADT/DenseMap.h"

#include <cmath>
#include <cstdio>
#include <map>
#include <memory>

namespace mlir::bitnet {
#define GEN_PASS_DEF_BITNETRECOGNIZEBITLINEAR
#include "bitnet/Import/Passes.h.inc"
} // namespace mlir::bitnet

using namespace mlir;
using namespace mlir::bitnet;
using namespace mlir::bitnet::onnx;

namespace {

/// The ONNX op type of `v`'s defining generic operation, or "".
StringRef typeOf(Value v) {
  Operation *op = v ? v.getDefiningOp() : nullptr;
  if (!op)
    return "";
  StringRef name = op->getName().getStringRef();
  if (!name.consume_front("onnx."))
    return "";
  return name;
}

/// The defining operation of `v` if it has op type `type` and, when
/// `numOperands` is given, exactly that many operands (malformed graphs may
/// have any number).
Operation *defOf(Value v, StringRef type, int numOperands = -1) {
  if (typeOf(v) != type)
    return nullptr;
  Operation *op = v.getDefiningOp();
  if (numOperands >= 0 && op->getNumOperands() != unsigned(numOperands))
    return nullptr;
  return op;
}

bool isNone(Value v) { return v && isa<NoneType>(v.getType()); }

/// `v` for a message, shortest form ("0.25", "1e-05").
std::string number(double v) {
  char text[32];
  std::snprintf(text, sizeof(text), "%g", v);
  return text;
}

/// `a + (b - a)`, the straight-through estimator of training code
/// (`x + (q - x).detach()`: the value of `q`, the gradient of `x`), returns
/// `b`; else null.
Value straightThroughValue(Value v) {
  Operation *add = defOf(v, "Add", 2);
  if (!add)
    return {};
  for (int k = 0; k < 2; ++k) {
    Value a = add->getOperand(k);
    Operation *sub = defOf(add->getOperand(1 - k), "Sub", 2);
    if (sub && sub->getOperand(1) == a)
      return sub->getOperand(0);
  }
  return {};
}

/// Compile-time values of generic ONNX operations, memoised. Unless
/// `strict`, a straight-through sum `a + (b - a)` has the value of `b`.
class Evaluator {
public:
  bool strict = false;

  const HostTensor *get(Value v, int depth = 0) {
    auto it = cache.find(v);
    if (it != cache.end())
      return it->second.get();
    std::shared_ptr<HostTensor> r = compute(v, depth);
    cache[v] = r;
    return r.get();
  }

  /// A scalar (any rank, one element) float constant.
  std::optional<double> scalar(Value v) {
    const HostTensor *t = get(v);
    if (!t || t->size() != 1)
      return std::nullopt;
    return t->asDouble(0);
  }

private:
  DenseMap<Value, std::shared_ptr<HostTensor>> cache;

  std::shared_ptr<HostTensor> compute(Value v, int depth) {
    Operation *op = v.getDefiningOp();
    StringRef type = typeOf(v);
    if (!op || type.empty() || depth > 64 || op->getNumResults() != 1)
      return nullptr;
    if (type == "Constant") {
      auto attr = op->getAttrOfType<DenseElementsAttr>("value");
      if (!attr)
        return nullptr;
      auto t = fromAttr(cast<ElementsAttr>(attr), attr.getElementType());
      return t ? std::make_shared<HostTensor>(std::move(*t)) : nullptr;
    }
    if (!strict)
      if (Value b = straightThroughValue(v)) {
        const HostTensor *t = get(b, depth + 1);
        return t ? std::make_shared<HostTensor>(*t) : nullptr;
      }
    SmallVector<const HostTensor *> in;
    for (Value operand : op->getOperands()) {
      if (isNone(operand)) {
        in.push_back(nullptr);
        continue;
      }
      const HostTensor *t = get(operand, depth + 1);
      if (!t)
        return nullptr;
      in.push_back(t);
    }
    int64_t version = 0;
    if (auto a = op->getAttrOfType<IntegerAttr>("onnx.version"))
      version = a.getInt();
    auto r = evaluate(type, version, op->getAttrDictionary(), in);
    if (!r || r->size() != 1)
      return nullptr;
    return std::make_shared<HostTensor>(std::move((*r)[0]));
  }
};

/// The per-token activation quantisation `clamp(round(x * s), -128, 127)`
/// (still float), with `s` the scale of `x`.
struct QuantizedChain {
  Value x;         ///< the float input
  Value quantized; ///< clamp(round(x * s), -128, 127)
  Value scale;     ///< s
  bool exact;      ///< s is computed as 127 / m, as the contract says
};

/// A ternary weight: `values` [N, K] in {-1, 0, 1} and one scale.
struct TernaryWeight {
  std::vector<int8_t> values;
  int64_t rows = 0, cols = 0;
  float scale = 0;
};

constexpr const char *kNotAScale = "the activation scale is not 127 / max(|x|)";

/// Why a MatMul that looks like a BitLinear layer stays a float MatMul; the
/// first reason found is kept.
struct Miss {
  std::string reason;
  void operator()(const Twine &why) {
    if (reason.empty())
      reason = why.str();
  }
};

struct RecognizeBitLinearPass
    : public bitnet::impl::BitNetRecognizeBitLinearBase<RecognizeBitLinearPass> {
  using Base::Base;
  void runOnOperation() override;

  Evaluator eval;

  bool isScalar(Value v, double expected) {
    std::optional<double> s = eval.scalar(v);
    return s && *s == expected;
  }
  bool isF32(Value v) {
    auto t = dyn_cast<RankedTensorType>(v.getType());
    return t && t.getElementType().isF32() && t.hasStaticShape();
  }

  /// m = max(max(|x|, axis=-1, keepdims), 1e-5); returns x.
  Value matchAbsMax(Value m, Miss &miss) {
    Value clamped;
    if (Operation *clip = defOf(m, "Clip")) {
      if (clip->getNumOperands() < 2 || !isScalar(clip->getOperand(1),
                                                  double(float(1e-5))))
        return miss("the absmax is not clamped to at least 1e-5"), Value();
      if (clip->getNumOperands() > 2 && !isNone(clip->getOperand(2)))
        return miss("the absmax is clamped from above"), Value();
      clamped = clip->getOperand(0);
    } else if (Operation *mx = defOf(m, "Max")) {
      if (mx->getNumOperands() != 2)
        return {};
      if (isScalar(mx->getOperand(1), double(float(1e-5))))
        clamped = mx->getOperand(0);
      else if (isScalar(mx->getOperand(0), double(float(1e-5))))
        clamped = mx->getOperand(1);
      else
        return miss("the absmax is not clamped to at least 1e-5"), Value();
    } else {
      return miss("the activation scale is not 127 over a clamped absmax"),
             Value();
    }
    Operation *reduce = defOf(clamped, "ReduceMax");
    if (!reduce || reduce->getNumOperands() != 1)
      return miss("the activation scale is not computed from a ReduceMax"),
             Value();
    Operation *abs = defOf(reduce->getOperand(0), "Abs", 1);
    if (!abs)
      return miss("the activation scale is not computed from max(|x|)"),
             Value();
    Value x = abs->getOperand(0);
    auto type = dyn_cast<RankedTensorType>(x.getType());
    if (!type || type.getRank() < 1)
      return {};
    int64_t rank = type.getRank();
    auto axes = reduce->getAttrOfType<DenseI64ArrayAttr>("axes");
    auto keep = reduce->getAttrOfType<IntegerAttr>("keepdims");
    bool lastAxis = axes && axes.size() == 1 &&
                    (axes[0] == -1 || axes[0] == rank - 1);
    if (rank == 1 && !axes)
      lastAxis = true;
    if (!axes)
      return miss("the activation scale is per tensor (absmax over every "
                  "axis), not per token"),
             Value();
    if (!lastAxis) {
      std::string list;
      for (int64_t a : axes.asArrayRef())
        list += (list.empty() ? "" : ", ") + std::to_string(a);
      return miss("the activation absmax is over axes [" + list +
                  "], not per token (the last axis alone)"),
             Value();
    }
    if (keep && keep.getInt() != 1)
      return miss("the activation absmax drops the reduced axis "
                  "(keepdims=0)"),
             Value();
    return x;
  }

  /// s computed from m: 127 / m (exact) or 127 * (1 / m).
  std::optional<std::pair<Value, bool>> matchScale(Value s, Miss &miss) {
    if (Operation *div = defOf(s, "Div", 2)) {
      if (!isScalar(div->getOperand(0), 127.0))
        return miss("the activation scale's numerator is not 127"),
               std::nullopt;
      if (Value x = matchAbsMax(div->getOperand(1), miss))
        return std::make_pair(x, true);
      return std::nullopt;
    }
    if (Operation *mul = defOf(s, "Mul", 2)) {
      for (int k = 0; k < 2; ++k) {
        if (!isScalar(mul->getOperand(k), 127.0))
          continue;
        Value r = mul->getOperand(1 - k);
        Value m;
        if (Operation *rec = defOf(r, "Reciprocal", 1))
          m = rec->getOperand(0);
        else if (Operation *d = defOf(r, "Div", 2))
          if (isScalar(d->getOperand(0), 1.0))
            m = d->getOperand(1);
        if (m)
          if (Value x = matchAbsMax(m, miss))
            return std::make_pair(x, false);
        return std::nullopt;
      }
    }
    miss(kNotAScale);
    return std::nullopt;
  }

  /// q = clamp(round(x * s), -128, 127) with s the scale of x.
  std::optional<QuantizedChain> matchQuantized(Value q, Miss &miss) {
    Operation *clip = defOf(q, "Clip");
    if (!clip)
      return std::nullopt;
    Operation *round = defOf(clip->getOperand(0), "Round", 1);
    if (!round)
      return std::nullopt;
    if (clip->getNumOperands() != 3)
      return miss("the rounded activations are not clamped on both sides"),
             std::nullopt;
    if (!isScalar(clip->getOperand(1), -128.0) ||
        !isScalar(clip->getOperand(2), 127.0)) {
      std::optional<double> lo = eval.scalar(clip->getOperand(1));
      std::optional<double> hi = eval.scalar(clip->getOperand(2));
      if (lo && hi)
        miss("the activations are clamped to [" + std::to_string(int64_t(*lo)) +
             ", " + std::to_string(int64_t(*hi)) +
             "], not to int8's [-128, 127]");
      else
        miss("the activations are not clamped to constant bounds");
      return std::nullopt;
    }
    Operation *mul = defOf(round->getOperand(0), "Mul", 2);
    if (!mul)
      return miss("the rounded value is not x times a scale"), std::nullopt;
    // Either operand may be the scale; the reason kept is that of the
    // operand that came closest to being one.
    Miss reasons[2];
    for (int k = 0; k < 2; ++k) {
      Value x = mul->getOperand(k), s = mul->getOperand(1 - k);
      auto scale = matchScale(s, reasons[k]);
      if (scale && scale->first == x) {
        if (!isF32(x) || !isF32(q))
          return miss("the activations are not f32"), std::nullopt;
        return QuantizedChain{x, q, s, scale->second};
      }
      if (scale)
        reasons[k]("the activation scale is computed from another tensor "
                   "than the one it scales");
    }
    StringRef generic = kNotAScale;
    miss(reasons[0].reason != generic ? reasons[0].reason : reasons[1].reason);
    return std::nullopt;
  }

  /// a = clamp(round(x * s), -128, 127) / s: the dequantised activations,
  /// with the straight-through sum `x + (a - x)` read as `a` unless strict.
  std::optional<QuantizedChain> matchActivation(Value a, Miss &miss) {
    if (Value b = straightThroughValue(a)) {
      if (strictFloat)
        return miss("the activations pass through x + (q - x), which "
                    "--onnx-strict-float reads to the last bit (it is not "
                    "exactly q)"),
               std::nullopt;
      a = b;
    }
    Operation *div = defOf(a, "Div", 2);
    if (!div)
      return std::nullopt;
    Value q = div->getOperand(0), s = div->getOperand(1);
    auto chain = matchQuantized(q, miss);
    if (!chain)
      return std::nullopt;
    if (chain->scale != s)
      return miss("the activations are divided by another scale than the "
                  "one that quantised them"),
             std::nullopt;
    return chain;
  }

  /// A float [K, N] weight (`transposed`: [N, K]) whose values are all in
  /// {-c, 0, c}. Unless strict, values within 2^-16 of c are c: a
  /// straight-through sum `w + (t - w)` folded by the exporter leaves
  /// last-bit noise on the ternary values.
  std::optional<TernaryWeight> ternaryFromFloat(const HostTensor &w,
                                                bool transposed, Miss &miss) {
    if (!w.elem.isF32() || w.shape.size() != 2)
      return miss("the weight is not a 2-D f32 constant"), std::nullopt;
    // c: the most common nonzero magnitude.
    std::map<double, int64_t> counts;
    for (double v : w.f)
      if (v != 0)
        ++counts[std::fabs(v)];
    double c = 0;
    int64_t best = 0;
    for (auto [v, n] : counts)
      if (n > best)
        c = v, best = n;
    if (!(c > 0) || !std::isfinite(c))
      return miss("the weight has no finite nonzero value"), std::nullopt;
    double tolerance = strictFloat ? 0 : c * 0x1p-16;
    TernaryWeight t;
    int64_t K = w.shape[0], N = w.shape[1];
    if (transposed)
      std::swap(K, N);
    t.rows = N;
    t.cols = K;
    t.scale = float(c);
    t.values.assign(N * K, 0);
    for (int64_t k = 0; k < K; ++k)
      for (int64_t n = 0; n < N; ++n) {
        double v = transposed ? w.f[n * K + k] : w.f[k * N + n];
        if (std::fabs(v - c) <= tolerance)
          t.values[n * K + k] = 1;
        else if (std::fabs(v + c) <= tolerance)
          t.values[n * K + k] = -1;
        else if (v != 0) {
          bool near = !strictFloat && std::fabs(std::fabs(v) - c) <= c * 0x1p-10;
          return miss("the weight is not ternary: it holds " + number(v) +
                      " beside +-" + number(c) +
                      (near ? " (within 2^-10 of it, beyond the 2^-16 read "
                              "as equal)"
                            : "")),
                 std::nullopt;
        }
      }
    return t;
  }

  /// The weight operand of a MatMul, Gemm or MatMulNBits as a ternary
  /// matrix.
  std::optional<TernaryWeight> matchWeight(Operation *op, Miss &miss) {
    StringRef type = op->getName().getStringRef();
    if (type == "onnx.MatMul" || type == "onnx.Gemm") {
      const HostTensor *w = eval.get(op->getOperand(1));
      if (!w)
        return miss("the weight is not a compile-time constant"),
               std::nullopt;
      auto transB = op->getAttrOfType<IntegerAttr>("transB");
      return ternaryFromFloat(*w, transB && transB.getInt(), miss);
    }
    // com.microsoft.MatMulNBits: dequantise the packed codes.
    if (op->getNumOperands() < 3 ||
        (op->getNumOperands() > 4 && !isNone(op->getOperand(4))))
      return std::nullopt;
    const HostTensor *b = eval.get(op->getOperand(1));
    const HostTensor *scales = eval.get(op->getOperand(2));
    const HostTensor *zps = nullptr;
    if (op->getNumOperands() > 3 && !isNone(op->getOperand(3))) {
      zps = eval.get(op->getOperand(3));
      if (!zps)
        return std::nullopt;
    }
    auto attr = [&](StringRef name, int64_t dflt) {
      auto a = op->getAttrOfType<IntegerAttr>(name);
      return a ? a.getInt() : dflt;
    };
    if (!b || !scales)
      return std::nullopt;
    std::string error;
    auto w = dequantizeNBits(*b, *scales, zps, attr("K", -1), attr("N", -1),
                             attr("bits", 4), attr("block_size", -1), error);
    if (!w)
      return std::nullopt;
    return ternaryFromFloat(*w, /*transposed=*/false, miss);
  }

  /// The ternary weight of a MatMulInteger: an int8 [K, N] constant in
  /// {-1, 0, 1} with zero points absent or 0.
  std::optional<TernaryWeight> matchIntegerWeight(Operation *op) {
    for (unsigned k = 2; k < op->getNumOperands(); ++k) {
      Value zp = op->getOperand(k);
      if (isNone(zp))
        continue;
      const HostTensor *t = eval.get(zp);
      if (!t || llvm::any_of(t->i, [](int64_t v) { return v != 0; }))
        return std::nullopt;
    }
    const HostTensor *w = eval.get(op->getOperand(1));
    if (!w || !w->elem.isSignlessInteger(8) || w->shape.size() != 2)
      return std::nullopt;
    TernaryWeight t;
    int64_t K = w->shape[0], N = w->shape[1];
    t.rows = N;
    t.cols = K;
    t.scale = 1;
    t.values.assign(N * K, 0);
    for (int64_t k = 0; k < K; ++k)
      for (int64_t n = 0; n < N; ++n) {
        int64_t v = w->i[k * N + n];
        if (v < -1 || v > 1)
          return std::nullopt;
        t.values[n * K + k] = int8_t(v);
      }
    return t;
  }

  /// The bitnet.constant holding `w` (one per weight value).
  Value weightConstant(OpBuilder &b, Location loc, Value key,
                       const TernaryWeight &w) {
    auto it = weights.find(key);
    if (it != weights.end())
      return it->second;
    auto type = TernaryType::get(b.getContext(), w.rows, w.cols,
                                 TernaryFormat::Int8);
    auto storage = DenseElementsAttr::get(
        RankedTensorType::get({w.rows, w.cols}, b.getI8Type()),
        ArrayRef<int8_t>(w.values));
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(&getOperation().getBody().front());
    Value c = bitnet::ConstantOp::create(b, loc, type, storage);
    weights[key] = c;
    return c;
  }

  Operation *generic(OpBuilder &b, Location loc, StringRef type,
                     ValueRange operands, Type result,
                     ArrayRef<NamedAttribute> attrs, int64_t version) {
    OperationState state(loc, ("onnx." + type).str());
    state.addOperands(operands);
    state.addTypes(result);
    state.addAttributes(attrs);
    state.addAttribute("onnx.version", b.getI64IntegerAttr(version));
    return b.create(state);
  }

  Value scalarF32(OpBuilder &b, Location loc, float v) {
    auto type = RankedTensorType::get({}, b.getF32Type());
    return generic(b, loc, "Constant", {}, type,
                   {b.getNamedAttr("value", DenseElementsAttr::get(type, {v}))},
                   13)
        ->getResult(0);
  }

  /// `Cast(ternary_matmul(Cast(q to int8), w) to f32)`: the exact integer
  /// product of the quantised activations `q` (integers held as f32).
  Value integerProduct(OpBuilder &b, Location loc, Value q, Value wt,
                       ArrayRef<int64_t> shape) {
    auto qType = cast<RankedTensorType>(q.getType());
    Operation *qi8 =
        generic(b, loc, "Cast", {q},
                RankedTensorType::get(qType.getShape(), b.getI8Type()),
                {b.getNamedAttr("to", b.getI64IntegerAttr(3))}, 13);
    Value acc = TernaryMatmulOp::create(
        b, loc, RankedTensorType::get(shape, b.getI32Type()),
        qi8->getResult(0), wt);
    return generic(b, loc, "Cast", {acc},
                   RankedTensorType::get(shape, b.getF32Type()),
                   {b.getNamedAttr("to", b.getI64IntegerAttr(1))}, 13)
        ->getResult(0);
  }

  /// `bitnet.bitlinear` of `x` and the ternary constant `wt` with weight
  /// scale `scale`.
  Value bitLinear(OpBuilder &b, Location loc, RankedTensorType type, Value x,
                  Value wt, float scale) {
    Value s = arith::ConstantOp::create(
        b, loc,
        DenseElementsAttr::get(RankedTensorType::get({}, b.getF32Type()),
                               {scale}));
    return BitLinearOp::create(b, loc, type, x, wt, s);
  }

  /// Rewrites one MatMul, Gemm or MatMulNBits; returns whether it did, with
  /// `miss` saying why not when the operation looked like a layer.
  bool rewrite(Operation *op, OpBuilder &b, Miss &miss);

  /// Gemm's extras that the rewrite keeps: `alpha == 1`, no `transA`, and
  /// `beta` 1 (or no C).
  bool plainGemm(Operation *op, Miss &miss) {
    auto attr = [&](StringRef name) -> std::optional<double> {
      if (auto f = op->getAttrOfType<FloatAttr>(name))
        return f.getValueAsDouble();
      return std::nullopt;
    };
    auto transA = op->getAttrOfType<IntegerAttr>("transA");
    if (transA && transA.getInt())
      return miss("Gemm transposes its activations (transA=1)"), false;
    if (attr("alpha").value_or(1.0) != 1.0)
      return miss("Gemm scales the product (alpha != 1)"), false;
    bool hasC = op->getNumOperands() > 2 && !isNone(op->getOperand(2));
    if (hasC && attr("beta").value_or(1.0) != 1.0)
      return miss("Gemm scales its bias (beta != 1)"), false;
    return true;
  }

  DenseMap<Value, Value> weights;
};

bool RecognizeBitLinearPass::rewrite(Operation *op, OpBuilder &b, Miss &miss) {
  Location loc = op->getLoc();
  StringRef name = op->getName().getStringRef();
  Value result = op->getResult(0);
  b.setInsertionPoint(op);

  if (name == "onnx.MatMulInteger") {
    // int8 activations times an int8 ternary matrix: exactly the integer
    // core of a BitLinear layer.
    auto a = dyn_cast<RankedTensorType>(op->getOperand(0).getType());
    if (!a || !a.hasStaticShape() || !a.getElementType().isSignlessInteger(8) ||
        a.getRank() < 1)
      return false;
    auto w = matchIntegerWeight(op);
    if (!w || a.getShape().back() != w->cols)
      return false;
    Value wt = weightConstant(b, loc, op->getOperand(1), *w);
    SmallVector<int64_t> shape(a.getShape().drop_back());
    shape.push_back(w->rows);
    Value acc = TernaryMatmulOp::create(
        b, loc, RankedTensorType::get(shape, b.getI32Type()),
        op->getOperand(0), wt);
    result.replaceAllUsesWith(acc);
    op->erase();
    return true;
  }

  bool isGemm = name == "onnx.Gemm";
  if (isGemm && !plainGemm(op, miss))
    return false;

  // Either dequantised activations (the reference form: the product of
  // q / s and the weight) or the quantised integers themselves (the form
  // that divides the product by s afterwards, as bitnet.cpp does).
  std::optional<QuantizedChain> chain = matchActivation(op->getOperand(0), miss);
  bool dequantized = chain.has_value();
  if (!chain)
    chain = matchQuantized(op->getOperand(0), miss);
  if (!chain)
    return false;
  auto w = matchWeight(op, miss);
  if (!w)
    return false;
  auto xType = cast<RankedTensorType>(chain->x.getType());
  if (xType.getShape().back() != w->cols)
    return miss("the weight's inner size is not the activations' last "
                "dimension"),
           false;
  if (isGemm && xType.getRank() != 2)
    return false;
  SmallVector<int64_t> shape(xType.getShape().drop_back());
  shape.push_back(w->rows);
  auto f32 = b.getF32Type();
  auto resultType = RankedTensorType::get(shape, f32);
  bool contractScale = chain->exact || !strictFloat;

  // What replaces `result` (or, for the integer form divided afterwards,
  // the division's result), before Gemm's bias.
  Value y;
  Operation *replaced = op;
  if (!dequantized) {
    // q times the weight, then (usually) divided by s.
    Operation *div = nullptr;
    if (result.hasOneUse()) {
      Operation *user = *result.getUsers().begin();
      if (user->getNumResults() == 1 &&
          typeOf(user->getResult(0)) == "Div" && user->getNumOperands() == 2 &&
          user->getOperand(0) == result && user->getOperand(1) == chain->scale)
        div = user;
    }
    if (div && !strictFloat && !isGemm) {
      Value wt = weightConstant(b, loc, op->getOperand(1), *w);
      y = bitLinear(b, loc, resultType, chain->x, wt, w->scale);
      replaced = div;
    } else if (w->scale == 1.0f) {
      // Integers times {-1, 0, 1}: the float product is the integer one.
      Value wt = weightConstant(b, loc, op->getOperand(1), *w);
      y = integerProduct(b, loc, chain->quantized, wt, shape);
    } else {
      return miss("the quantised activations multiply a weight scaled by " +
                  number(w->scale) +
                  " whose float product is not exact"),
             false;
    }
  } else {
    Value wt = weightConstant(b, loc, op->getOperand(1), *w);
    if (contractScale) {
      y = bitLinear(b, loc, resultType, chain->x, wt, w->scale);
    } else {
      // The graph's scale 127 * (1 / m) is not the contract's 127 / m and
      // the reading is strict: keep the graph's quantised values and
      // scales, replace only the product.
      Value accf = integerProduct(b, loc, chain->quantized, wt, shape);
      Operation *mul = generic(b, loc, "Mul",
                               {accf, scalarF32(b, loc, w->scale)},
                               resultType, {}, 14);
      y = generic(b, loc, "Div", {mul->getResult(0), chain->scale},
                  resultType, {}, 14)
              ->getResult(0);
    }
  }
  bool asBitLinear = static_cast<bool>(y.getDefiningOp<BitLinearOp>());
  if (isGemm && op->getNumOperands() > 2 && !isNone(op->getOperand(2)))
    y = generic(b, loc, "Add", {y, op->getOperand(2)}, resultType, {}, 14)
            ->getResult(0);
  if (explain) {
    InFlightDiagnostic d = emitRemark(loc);
    d << "BitLinear layer (" << w->rows << "x" << w->cols << " ternary weight, "
      << "scale " << number(w->scale) << "): ";
    if (asBitLinear)
      d << "bitnet.bitlinear";
    else
      d << "bitnet.ternary_matmul on the graph's int8 activations";
    if (!chain->exact)
      d << (asBitLinear ? ", with the contract's scale 127 / m for the "
                          "exported 127 * (1 / m)"
                        : ", keeping the exported scale 127 * (1 / m)");
  }
  replaced->getResult(0).replaceAllUsesWith(y);
  if (replaced != op)
    replaced->erase();
  if (op->use_empty())
    op->erase();
  return true;
}

} // namespace

void RecognizeBitLinearPass::runOnOperation() {
  func::FuncOp func = getOperation();
  if (func.isExternal())
    return;
  eval.strict = strictFloat;
  OpBuilder b(&getContext());
  SmallVector<Operation *> candidates;
  func.walk([&](Operation *op) {
    StringRef name = op->getName().getStringRef();
    if (name == "onnx.MatMul" || name == "onnx.Gemm" ||
        name == "onnx.com.microsoft.MatMulNBits" ||
        name == "onnx.MatMulInteger")
      candidates.push_back(op);
  });
  bool changed = false;
  for (Operation *op : candidates) {
    if (op->getNumOperands() < 2 || op->getNumResults() != 1)
      continue;
    Miss miss;
    if (rewrite(op, b, miss)) {
      changed = true;
      continue;
    }
    if (explain && !miss.reason.empty())
      emitRemark(op->getLoc())
          << "stays a float " << op->getName().getStringRef().drop_front(5)
          << ", not a BitLinear layer: " << miss.reason;
  }
  if (!changed)
    return;
  // The quantisation chains and float weights now unused.
  Block &body = func.getBody().front();
  bool erased = true;
  while (erased) {
    erased = false;
    for (Operation &op : llvm::make_early_inc_range(llvm::reverse(body))) {
      if (op.getName().getStringRef().starts_with("onnx.") &&
          op.getName().getStringRef() != "onnx.None" && op.use_empty()) {
        op.erase();
        erased = true;
      }
    }
  }
}
