//===- NarrowFloatWeights.cpp - f16 embeddings and dense weights -*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#include "bitnet/Dialect/BitNet/IR/BitNet.h"
#include "bitnet/Transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "llvm/ADT/APFloat.h"

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
  if (auto e = dyn_cast<EmbeddingOp>(user))
    return use.get() == e.getTable() && use.getOperandNumber() == 0;
  if (auto d = dyn_cast<DenseMatmulOp>(user))
    return use.getOperandNumber() == 1;
  return false;
}

struct BitNetNarrowFloatWeightsPass
    : bitnet::impl::BitNetNarrowFloatWeightsBase<BitNetNarrowFloatWeightsPass> {
  void runOnOperation() override {
    SmallVector<arith::ConstantOp> candidates;
    getOperation().walk([&](arith::ConstantOp c) {
      auto type = dyn_cast<RankedTensorType>(c.getType());
      if (!type || !type.getElementType().isF32() || c->use_empty())
        return;
      if (llvm::all_of(c->getUses(), isWeightUse))
        candidates.push_back(c);
    });
    for (arith::ConstantOp c : candidates) {
      auto attr = dyn_cast<DenseElementsAttr>(c.getValue());
      if (!attr)
        continue;
      auto type = cast<RankedTensorType>(c.getType());
      auto halfType = type.clone(Float16Type::get(&getContext()));
      std::vector<uint16_t> bits;
      bits.reserve(type.getNumElements());
      for (APFloat v : attr.getValues<APFloat>()) {
        bool lost;
        v.convert(APFloat::IEEEhalf(), APFloat::rmNearestTiesToEven, &lost);
        bits.push_back(
            static_cast<uint16_t>(v.bitcastToAPInt().getZExtValue()));
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
  }
};
} // namespace
