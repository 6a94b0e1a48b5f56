//===- PackWeights.cpp - Re-encode ternary weights --------------*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#include "bitnet/Dialect/BitNet/IR/BitNet.h"
#include "bitnet/Transforms/Passes.h"

#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::bitnet {
#define GEN_PASS_DEF_BITNETPACKWEIGHTS
#include "bitnet/Transforms/Passes.h.inc"
} // namespace mlir::bitnet

using namespace mlir;
using namespace mlir::bitnet;

namespace {
/// Re-encodes the weight operand of a linear layer in `format`.
template <typename LinearOp>
struct ReencodeWeight : OpRewritePattern<LinearOp> {
  ReencodeWeight(MLIRContext *ctx, TernaryFormat format)
      : OpRewritePattern<LinearOp>(ctx), format(format) {}

  LogicalResult matchAndRewrite(LinearOp op,
                                PatternRewriter &rewriter) const override {
    TernaryType from = op.getWeight().getType();
    if (from.getFormat() == format)
      return rewriter.notifyMatchFailure(op, "weight already in the format");
    auto to = TernaryType::get(op.getContext(), from.getRows(), from.getCols(),
                               format, from.getLayout());
    Location loc = op.getWeight().getLoc();
    auto int8 = RankedTensorType::get({from.getRows(), from.getCols()},
                                      rewriter.getI8Type());
    // Folded by the driver when the weight is a constant.
    Value unpacked = rewriter.createOrFold<UnpackOp>(loc, int8, op.getWeight());
    Value packed = rewriter.createOrFold<PackOp>(loc, to, unpacked);
    rewriter.modifyOpInPlace(
        op, [&] { op.getWeightMutable().assign(packed); });
    return success();
  }

  TernaryFormat format;
};

struct BitNetPackWeightsPass
    : bitnet::impl::BitNetPackWeightsBase<BitNetPackWeightsPass> {
  using Base::Base;

  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<ReencodeWeight<BitLinearOp>, ReencodeWeight<TernaryMatmulOp>>(
        &getContext(), format);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};
} // namespace
