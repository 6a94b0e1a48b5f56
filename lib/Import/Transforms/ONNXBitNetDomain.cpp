//===- ONNXBitNetDomain.cpp - The bitnet ONNX domain ----------------------===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// ONNX forms of the bitnet dialect's ops (BitLinear, RMSNorm, Rope,
// Attention, SquaredRelu), as the model exporters write them: each becomes
// the bitnet op of the same name.
//
//===----------------------------------------------------------------------===//

#include "ONNXNode.h"

#include "bitnet/Dialect/BitNet/IR/BitNet.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/Verifier.h"

using namespace mlir;
using namespace mlir::bitnet;
using namespace mlir::bitnet::onnx;

namespace {

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
    InFlightDiagnostic d = n.error()
                           << "weight " << describe(n.in[1])
                           << " does not match x " << describe(n.in[0]);
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
      InFlightDiagnostic d = n.error() << "weight element " << index << " (row "
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
  Value y = BitLinearOp::create(
      n.b, n.loc, RankedTensorType::get(shape, n.f32()), n.in[0].value, w, s);
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
        tensor::YieldOp::create(
            b, loc, arith::AddIOp::create(b, loc, start, s).getResult());
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
  Value y = RopeOp::create(n.b, n.loc, n.in[0].type(), n.in[0].value, positions,
                           n.b.getF32FloatAttr(*theta),
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
      n.b, n.loc, TypeRange{n.in[0].type(), n.in[3].type(), n.in[4].type()},
      n.in[0].value, n.in[1].value, n.in[2].value, n.in[3].value, n.in[4].value,
      *pos, scale);
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

} // namespace

/// The bitnet domain.
ArrayRef<Lowering> mlir::bitnet::onnx::bitnetLowerings() {
  static const Lowering lowerings[] = {
      {"bitnet.BitLinear", {1}, lowerBitnetBitLinear},
      {"bitnet.RMSNorm", {1}, lowerBitnetRMSNorm},
      {"bitnet.Rope", {1}, lowerBitnetRope},
      {"bitnet.Attention", {1}, lowerBitnetAttention},
      {"bitnet.SquaredRelu", {1}, lowerBitnetSquaredRelu},
  };
  return lowerings;
}
