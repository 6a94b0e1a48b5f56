//===- NarrowFloatWeights.cpp - 16-bit and int8 float weights ---*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#include "bitnet/Dialect/BitNet/IR/BitNet.h"
#include "bitnet/Transforms/Passes.h"

#include "bitnet/Reference/Numerics.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "llvm/ADT/APFloat.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace mlir::bitnet {
#define GEN_PASS_DEF_BITNETNARROWFLOATWEIGHTS
#include "bitnet/Transforms/Passes.h.inc"
} // namespace mlir::bitnet

using namespace mlir;
using namespace mlir::bitnet;

namespace {
/// Whether `use` reads its value as a float weight some kernel widens.
bool isWeightUse(OpOperand &use) {
  Operation *user = use.getOwner();
  if (isa<EmbeddingOp>(user))
    return use.getOperandNumber() == 0; // the table
  if (isa<DenseMatmulOp>(user))
    return use.getOperandNumber() == 1; // the weight
  return false;
}

/// Round half to even, as the numerics contract rounds.
float roundHalfEven(float v) { return std::nearbyint(v); }

struct BitNetNarrowFloatWeightsPass
    : mlir::bitnet::impl::BitNetNarrowFloatWeightsBase<
          BitNetNarrowFloatWeightsPass> {
  using Base::Base;

  void runOnOperation() override {
    if (precision == FloatPrecision::F32)
      return; // nothing to narrow
    bool toInt8Rows = precision == FloatPrecision::Int8 ||
                      precision == FloatPrecision::W8A8;
    SmallVector<arith::ConstantOp> candidates;
    getOperation().walk([&](arith::ConstantOp c) {
      auto type = dyn_cast<RankedTensorType>(c.getType());
      // f32 weights narrow to f16, bf16 or int8; 16-bit ones (a
      // checkpoint's embedding, stored so) to int8 only.
      if (!type || c->use_empty() ||
          !(type.getElementType().isF32() ||
            (toInt8Rows && (type.getElementType().isF16() ||
                            type.getElementType().isBF16()))) ||
          (toInt8Rows && type.getRank() != 2))
        return;
      if (llvm::all_of(c->getUses(), isWeightUse))
        candidates.push_back(c);
    });
    for (arith::ConstantOp c : candidates) {
      auto attr = dyn_cast<DenseElementsAttr>(c.getValue());
      if (!attr)
        continue;
      if (!toInt8Rows)
        toHalf(c, attr, precision == FloatPrecision::BF16);
      else
        toInt8(c, attr);
    }
    // W8A8: every dense layer with int8 weights (narrowed here or stored so)
    // quantises its input too.
    if (precision == FloatPrecision::W8A8)
      getOperation().walk([](DenseMatmulOp op) {
        if (op.getWeight().getType().getElementType().isInteger(8))
          op.setQuantizeInput(true);
      });
  }

  /// f32 to f16, or to bf16 with `brain`.
  void toHalf(arith::ConstantOp c, DenseElementsAttr attr, bool brain) {
    auto type = cast<RankedTensorType>(c.getType());
    Type halfElem = brain ? Type(BFloat16Type::get(&getContext()))
                          : Type(Float16Type::get(&getContext()));
    auto halfType = type.clone(halfElem);
    const llvm::fltSemantics &semantics =
        brain ? APFloat::BFloat() : APFloat::IEEEhalf();
    std::vector<uint16_t> bits;
    bits.reserve(type.getNumElements());
    for (APFloat v : attr.getValues<APFloat>()) {
      bool lost;
      v.convert(semantics, APFloat::rmNearestTiesToEven, &lost);
      bits.push_back(static_cast<uint16_t>(v.bitcastToAPInt().getZExtValue()));
    }
    if (attr.isSplat())
      bits.resize(1);
    auto half = DenseElementsAttr::getFromRawBuffer(
        halfType, ArrayRef<char>(reinterpret_cast<const char *>(bits.data()),
                                 bits.size() * sizeof(uint16_t)));
    OpBuilder b(c);
    auto narrowed = arith::ConstantOp::create(b, c.getLoc(), half);
    for (OpOperand &use : llvm::make_early_inc_range(c->getUses()))
      use.set(narrowed);
    c.erase();
  }

  void toInt8(arith::ConstantOp c, DenseElementsAttr attr) {
    auto type = cast<RankedTensorType>(c.getType());
    int64_t rows = type.getDimSize(0), cols = type.getDimSize(1);
    // Row by row from the raw data (a 2B model's table is 328M values):
    // f32 as stored, f16 and bf16 widened exactly.
    bool isF16 = type.getElementType().isF16();
    bool isBF16 = type.getElementType().isBF16();
    ArrayRef<char> raw = attr.getRawData();
    auto value = [&](int64_t i) -> float {
      if (attr.isSplat())
        i = 0;
      if (isF16 || isBF16) {
        uint16_t h;
        std::memcpy(&h, raw.data() + 2 * i, 2);
        return isBF16 ? ::bitnet::ref::bf16ToFloat(h)
                      : ::bitnet::ref::halfToFloat(h);
      }
      float f;
      std::memcpy(&f, raw.data() + 4 * i, 4);
      return f;
    };
    std::vector<int8_t> q(rows * cols);
    std::vector<float> scales(rows);
    std::vector<float> row(cols);
    for (int64_t r = 0; r < rows; ++r) {
      float max = 0;
      for (int64_t k = 0; k < cols; ++k) {
        row[k] = value(r * cols + k);
        max = std::max(max, std::fabs(row[k]));
      }
      float scale = max > 0 ? max / 127.0f : 1.0f;
      scales[r] = scale;
      for (int64_t k = 0; k < cols; ++k)
        q[r * cols + k] = static_cast<int8_t>(
            std::clamp(roundHalfEven(row[k] / scale), -127.0f, 127.0f));
    }
    OpBuilder b(c);
    Location loc = c.getLoc();
    Value weights = arith::ConstantOp::create(
        b, loc,
        DenseElementsAttr::get(type.clone(b.getI8Type()), ArrayRef(q)));
    Value rowScales = arith::ConstantOp::create(
        b, loc,
        DenseElementsAttr::get(RankedTensorType::get({rows}, b.getF32Type()),
                               ArrayRef(scales)));
    for (OpOperand &use : llvm::make_early_inc_range(c->getUses())) {
      Operation *user = use.getOwner();
      use.set(weights);
      // The optional scales operand is the last one.
      user->insertOperands(user->getNumOperands(), rowScales);
    }
    c.erase();
  }
};
} // namespace
