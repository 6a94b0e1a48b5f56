//===- DistinctResults.cpp - One tensor per returned value ------*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#include "bitnet/Transforms/Passes.h"

#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"

namespace mlir::bitnet {
#define GEN_PASS_DEF_BITNETDISTINCTRESULTS
#include "bitnet/Transforms/Passes.h.inc"
} // namespace mlir::bitnet

using namespace mlir;

namespace {
struct BitNetDistinctResultsPass
    : bitnet::impl::BitNetDistinctResultsBase<BitNetDistinctResultsPass> {
  void runOnOperation() override {
    getOperation().walk([](func::ReturnOp ret) {
      llvm::SmallPtrSet<Value, 8> seen;
      OpBuilder b(ret);
      for (OpOperand &operand : ret->getOpOperands()) {
        Value value = operand.get();
        auto type = dyn_cast<RankedTensorType>(value.getType());
        // An argument returned as it is also gets a copy: results that are
        // arguments mean state updated in place (bitnet-state-arguments).
        if (!type || (seen.insert(value).second && !isa<BlockArgument>(value)))
          continue;
        Location loc = ret.getLoc();
        SmallVector<OpFoldResult> sizes = tensor::getMixedSizes(b, loc, value);
        Value empty = tensor::EmptyOp::create(b, loc, sizes,
                                              type.getElementType());
        operand.set(linalg::CopyOp::create(b, loc, value, empty).getResult(0));
      }
    });
  }
};
} // namespace
