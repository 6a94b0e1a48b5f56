//===- LastTokenLogits.cpp - The head on the last token only ----*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#include "bitnet/Dialect/BitNet/IR/BitNet.h"
#include "bitnet/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

namespace mlir::bitnet {
#define GEN_PASS_DEF_BITNETLASTTOKENLOGITS
#include "bitnet/Transforms/Passes.h.inc"
} // namespace mlir::bitnet

using namespace mlir;
using namespace mlir::bitnet;

namespace {
struct BitNetLastTokenLogitsPass
    : bitnet::impl::BitNetLastTokenLogitsBase<BitNetLastTokenLogitsPass> {
  using Base::Base;

  void runOnOperation() override {
    func::FuncOp func = lookupEntryFunction(getOperation(), entry);
    if (!func)
      return signalPassFailure();
    auto ret = dyn_cast<func::ReturnOp>(func.getBody().front().getTerminator());
    if (!ret)
      return;
    bool changed = false;
    for (OpOperand &operand : ret->getOpOperands()) {
      auto head = operand.get().getDefiningOp<DenseMatmulOp>();
      if (!head)
        continue;
      auto xType = head.getInput().getType();
      if (xType.getRank() != 2 || !xType.hasStaticShape() ||
          xType.getDimSize(0) <= 1)
        continue;
      int64_t rows = xType.getDimSize(0), k = xType.getDimSize(1);
      OpBuilder b(head);
      Location loc = head.getLoc();
      Value last = tensor::ExtractSliceOp::create(
          b, loc, RankedTensorType::get({1, k}, xType.getElementType()),
          head.getInput(), ValueRange{}, ValueRange{}, ValueRange{},
          b.getDenseI64ArrayAttr({rows - 1, 0}),
          b.getDenseI64ArrayAttr({1, k}), b.getDenseI64ArrayAttr({1, 1}));
      auto yType = RankedTensorType::get({1, head.getType().getDimSize(1)},
                                         head.getType().getElementType());
      Value y = DenseMatmulOp::create(b, loc, yType, last, head.getWeight(),
                                      head.getScales(),
                                      head.getQuantizeInput());
      operand.set(y);
      if (head->use_empty())
        head->erase();
      changed = true;
    }
    if (changed)
      func.setType(FunctionType::get(&getContext(),
                                     func.getArgumentTypes(),
                                     ret.getOperandTypes()));
  }
};
} // namespace
