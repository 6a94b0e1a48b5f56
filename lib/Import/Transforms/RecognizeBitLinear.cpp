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

/// Compile-time values of generic ONNX operations, memoised.
class Evaluator {
public:
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

/// The per-token activation quantisation feeding a MatMul.
struct ActivationChain {
  Value x;         ///< the float input
  Value quantized; ///< clamp(round(x * s), -128, 127), still float
  Value scale;     ///< s
  bool exact;      ///< s is computed as 127 / m, as the contract says
};

/// A ternary weight: `values` [N, K] in {-1, 0, 1} and one scale.
struct TernaryWeight {
  std::vector<int8_t> values;
  int64_t rows = 0, cols = 0;
  float scale = 0;
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
  Value matchAbsMax(Value m) {
    Value clamped;
    if (Operation *clip = defOf(m, "Clip")) {
      if (clip->getNumOperands() < 2 || !isScalar(clip->getOperand(1),
                                                  double(float(1e-5))))
        return {};
      if (clip->getNumOperands() > 2 && !isNone(clip->getOperand(2)))
        return {};
      clamped = clip->getOperand(0);
    } else if (Operation *mx = defOf(m, "Max")) {
      if (mx->getNumOperands() != 2)
        return {};
      if (isScalar(mx->getOperand(1), double(float(1e-5))))
        clamped = mx->getOperand(0);
      else if (isScalar(mx->getOperand(0), double(float(1e-5))))
        clamped = mx->getOperand(1);
      else
        return {};
    } else {
      return {};
    }
    Operation *reduce = defOf(clamped, "ReduceMax");
    if (!reduce || reduce->getNumOperands() != 1)
      return {};
    Operation *abs = defOf(reduce->getOperand(0), "Abs", 1);
    if (!abs)
      return {};
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
    if (!lastAxis || (keep && keep.getInt() != 1))
      return {};
    return x;
  }

  /// s computed from m: 127 / m (exact) or 127 * (1 / m).
  std::optional<std::pair<Value, bool>> matchScale(Value s) {
    if (Operation *div = defOf(s, "Div", 2)) {
      if (isScalar(div->getOperand(0), 127.0))
        if (Value x = matchAbsMax(div->getOperand(1)))
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
          if (Value x = matchAbsMax(m))
            return std::make_pair(x, false);
      }
    }
    return std::nullopt;
  }

  /// a = clamp(round(x * s), -128, 127) / s with s the scale of x.
  std::optional<ActivationChain> matchActivation(Value a) {
    Operation *div = defOf(a, "Div", 2);
    if (!div)
      return std::nullopt;
    Value q = div->getOperand(0), s = div->getOperand(1);
    Operation *clip = defOf(q, "Clip");
    if (!clip || clip->getNumOperands() != 3 ||
        !isScalar(clip->getOperand(1), -128.0) ||
        !isScalar(clip->getOperand(2), 127.0))
      return std::nullopt;
    Operation *round = defOf(clip->getOperand(0), "Round", 1);
    if (!round)
      return std::nullopt;
    Operation *mul = defOf(round->getOperand(0), "Mul", 2);
    if (!mul)
      return std::nullopt;
    Value x;
    if (mul->getOperand(1) == s)
      x = mul->getOperand(0);
    else if (mul->getOperand(0) == s)
      x = mul->getOperand(1);
    else
      return std::nullopt;
    auto scale = matchScale(s);
    if (!scale || scale->first != x || !isF32(x) || !isF32(q))
      return std::nullopt;
    return ActivationChain{x, q, s, scale->second};
  }

  /// A float [K, N] weight whose values are all in {-c, 0, c}.
  std::optional<TernaryWeight> ternaryFromFloat(const HostTensor &w) {
    if (!w.elem.isF32() || w.shape.size() != 2)
      return std::nullopt;
    double c = 0;
    for (double v : w.f)
      if (v != 0) {
        c = std::fabs(v);
        break;
      }
    if (!(c > 0) || !std::isfinite(c))
      return std::nullopt;
    TernaryWeight t;
    int64_t K = w.shape[0], N = w.shape[1];
    t.rows = N;
    t.cols = K;
    t.scale = float(c);
    t.values.assign(N * K, 0);
    for (int64_t k = 0; k < K; ++k)
      for (int64_t n = 0; n < N; ++n) {
        double v = w.f[k * N + n];
        if (v == c)
          t.values[n * K + k] = 1;
        else if (v == -c)
          t.values[n * K + k] = -1;
        else if (v != 0)
          return std::nullopt;
      }
    return t;
  }

  /// The weight operand of a MatMul-like operation as a ternary matrix.
  std::optional<TernaryWeight> matchWeight(Operation *op) {
    StringRef type = op->getName().getStringRef();
    if (type == "onnx.MatMul") {
      const HostTensor *w = eval.get(op->getOperand(1));
      if (!w)
        return std::nullopt;
      return ternaryFromFloat(*w);
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
    return ternaryFromFloat(*w);
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

  DenseMap<Value, Value> weights;
};

} // namespace

void RecognizeBitLinearPass::runOnOperation() {
  func::FuncOp func = getOperation();
  if (func.isExternal())
    return;
  OpBuilder b(&getContext());
  SmallVector<Operation *> candidates;
  func.walk([&](Operation *op) {
    StringRef name = op->getName().getStringRef();
    if (name == "onnx.MatMul" || name == "onnx.com.microsoft.MatMulNBits" ||
        name == "onnx.MatMulInteger")
      candidates.push_back(op);
  });
  bool changed = false;
  for (Operation *op : candidates) {
    Location loc = op->getLoc();
    if (op->getNumOperands() < 2 || op->getNumResults() != 1)
      continue;
    b.setInsertionPoint(op);
    Value result = op->getResult(0);

    if (op->getName().getStringRef() == "onnx.MatMulInteger") {
      // int8 activations times an int8 ternary matrix: exactly the integer
      // core of a BitLinear layer.
      auto a = dyn_cast<RankedTensorType>(op->getOperand(0).getType());
      if (!a || !a.hasStaticShape() || !a.getElementType().isSignlessInteger(8) ||
          a.getRank() < 1)
        continue;
      auto w = matchIntegerWeight(op);
      if (!w || a.getShape().back() != w->cols)
        continue;
      Value wt = weightConstant(b, loc, op->getOperand(1), *w);
      SmallVector<int64_t> shape(a.getShape().drop_back());
      shape.push_back(w->rows);
      Value acc = TernaryMatmulOp::create(
          b, loc, RankedTensorType::get(shape, b.getI32Type()),
          op->getOperand(0), wt);
      result.replaceAllUsesWith(acc);
      op->erase();
      changed = true;
      continue;
    }

    auto act = matchActivation(op->getOperand(0));
    if (!act)
      continue;
    auto w = matchWeight(op);
    auto xType = cast<RankedTensorType>(act->x.getType());
    if (!w || xType.getShape().back() != w->cols)
      continue;
    Value wt = weightConstant(b, loc, op->getOperand(1), *w);
    SmallVector<int64_t> shape(xType.getShape().drop_back());
    shape.push_back(w->rows);
    auto f32 = b.getF32Type();
    auto resultType = RankedTensorType::get(shape, f32);
    Value y;
    if (act->exact || relaxedActivationScale) {
      Value scale = arith::ConstantOp::create(
          b, loc, DenseElementsAttr::get(RankedTensorType::get({}, f32),
                                         {w->scale}));
      y = BitLinearOp::create(b, loc, resultType, act->x, wt, scale);
    } else {
      // The graph's scale 127 * (1 / m) is not the contract's 127 / m: keep
      // the graph's quantised values and scales, replace only the product.
      auto qType = cast<RankedTensorType>(act->quantized.getType());
      Operation *qi8 = generic(
          b, loc, "Cast", {act->quantized},
          RankedTensorType::get(qType.getShape(), b.getI8Type()),
          {b.getNamedAttr("to", b.getI64IntegerAttr(3))}, 13);
      Value acc = TernaryMatmulOp::create(
          b, loc, RankedTensorType::get(shape, b.getI32Type()),
          qi8->getResult(0), wt);
      Operation *accf = generic(b, loc, "Cast", {acc}, resultType,
                                {b.getNamedAttr("to", b.getI64IntegerAttr(1))},
                                13);
      auto scalarType = RankedTensorType::get({}, f32);
      Operation *c = generic(
          b, loc, "Constant", {}, scalarType,
          {b.getNamedAttr("value",
                          DenseElementsAttr::get(scalarType, {w->scale}))},
          13);
      Operation *mul = generic(b, loc, "Mul",
                               {accf->getResult(0), c->getResult(0)},
                               resultType, {}, 14);
      Operation *div = generic(b, loc, "Div", {mul->getResult(0), act->scale},
                               resultType, {}, 14);
      y = div->getResult(0);
    }
    result.replaceAllUsesWith(y);
    op->erase();
    changed = true;
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
