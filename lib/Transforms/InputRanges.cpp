//===- InputRanges.cpp - The values integer arguments may hold --*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#include "bitnet/Dialect/BitNet/IR/BitNet.h"
#include "bitnet/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

#include <algorithm>
#include <optional>

namespace mlir::bitnet {
#define GEN_PASS_DEF_BITNETINPUTRANGES
#include "bitnet/Transforms/Passes.h.inc"
} // namespace mlir::bitnet

using namespace mlir;
using namespace mlir::bitnet;

namespace {
/// A closed interval of values.
struct Range {
  int64_t lo, hi;
};

/// The values the op that uses `use` accepts in that operand without
/// clamping, if it constrains them.
std::optional<Range> acceptedRange(OpOperand &use) {
  Operation *user = use.getOwner();
  if (auto embedding = dyn_cast<EmbeddingOp>(user)) {
    if (use.get() != embedding.getTokens())
      return std::nullopt;
    int64_t rows = embedding.getVocabulary();
    return Range{-rows, rows - 1};
  }
  if (auto attention = dyn_cast<AttentionOp>(user)) {
    if (use.get() != attention.getPosition())
      return std::nullopt;
    int64_t capacity = attention.getKCache().getType().getDimSize(0);
    int64_t tokens = attention.getQuery().getType().getDimSize(0);
    return Range{0, capacity - tokens};
  }
  if (auto batched = dyn_cast<BatchedAttentionOp>(user)) {
    // A slot outside [0, B) is a padding token, not a clamped value.
    if (use.get() != batched.getPositions())
      return std::nullopt;
    return Range{0, batched.getKCache().getType().getDimSize(1) - 1};
  }
  return std::nullopt;
}

/// Whether `op` passes its source's values through unchanged (a reshape).
bool keepsValues(Operation *op) {
  return isa<tensor::CastOp, tensor::ReshapeOp, tensor::ExpandShapeOp,
             tensor::CollapseShapeOp>(op);
}

/// Intersects `range` with what every use of `value` accepts, following
/// reshapes. Every range holds 0, so the intersection is never empty.
void constrain(Value value, std::optional<Range> &range) {
  for (OpOperand &use : value.getUses()) {
    Operation *user = use.getOwner();
    if (keepsValues(user) && use.getOperandNumber() == 0) {
      constrain(user->getResult(0), range);
      continue;
    }
    std::optional<Range> accepted = acceptedRange(use);
    if (!accepted)
      continue;
    if (!range)
      range = accepted;
    else
      range = Range{std::max(range->lo, accepted->lo),
                    std::min(range->hi, accepted->hi)};
  }
}

struct BitNetInputRangesPass
    : bitnet::impl::BitNetInputRangesBase<BitNetInputRangesPass> {
  void runOnOperation() override {
    func::FuncOp func = getOperation();
    if (func.isExternal())
      return;
    for (BlockArgument arg : func.getArguments()) {
      auto type = dyn_cast<RankedTensorType>(arg.getType());
      if (!type || !type.getElementType().isSignlessInteger())
        continue;
      std::optional<Range> range;
      constrain(arg, range);
      if (!range)
        continue;
      func.setArgAttr(arg.getArgNumber(), "bitnet.range",
                      DenseI64ArrayAttr::get(&getContext(),
                                             {range->lo, range->hi}));
    }
  }
};
} // namespace
