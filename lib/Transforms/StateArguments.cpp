//===- StateArguments.cpp - Results updated in place become state -*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#include "bitnet/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "llvm/ADT/BitVector.h"

namespace mlir::bitnet {
#define GEN_PASS_DEF_BITNETSTATEARGUMENTS
#include "bitnet/Transforms/Passes.h.inc"
} // namespace mlir::bitnet

using namespace mlir;

namespace {
/// The buffer `v` is, seen through casts and through loops and branches that
/// yield it unchanged (a cache updated in place inside `scf.for` / `scf.if`,
/// as batched attention's per-token update bufferizes).
Value sourceBuffer(Value v) {
  for (;;) {
    if (auto cast = v.getDefiningOp<memref::CastOp>()) {
      v = cast.getSource();
      continue;
    }
    auto result = dyn_cast<OpResult>(v);
    if (!result)
      return v;
    unsigned i = result.getResultNumber();
    if (auto loop = dyn_cast<scf::ForOp>(result.getOwner())) {
      if (sourceBuffer(loop.getYieldedValues()[i]) !=
          loop.getRegionIterArgs()[i])
        return v;
      v = loop.getInitArgs()[i];
      continue;
    }
    if (auto branch = dyn_cast<scf::IfOp>(result.getOwner())) {
      if (!branch.elseBlock())
        return v;
      Value then = sourceBuffer(branch.thenYield().getOperand(i));
      if (then != sourceBuffer(branch.elseYield().getOperand(i)))
        return v;
      v = then;
      continue;
    }
    return v;
  }
}

struct BitNetStateArgumentsPass
    : bitnet::impl::BitNetStateArgumentsBase<BitNetStateArgumentsPass> {
  void runOnOperation() override {
    func::FuncOp func = getOperation();
    if (func.isExternal() || !func.getBody().hasOneBlock())
      return;
    auto ret = dyn_cast<func::ReturnOp>(func.getBody().front().getTerminator());
    if (!ret)
      return;
    llvm::BitVector drop(ret.getNumOperands());
    for (OpOperand &operand : ret->getOpOperands()) {
      auto arg = dyn_cast<BlockArgument>(sourceBuffer(operand.get()));
      if (!arg || arg.getOwner()->getParentOp() != func ||
          arg.getType() != operand.get().getType())
        continue;
      func.setArgAttr(arg.getArgNumber(), "bitnet.state",
                      UnitAttr::get(&getContext()));
      drop.set(operand.getOperandNumber());
    }
    if (drop.none())
      return;
    if (auto names = func->getAttrOfType<ArrayAttr>("bitnet.output_names")) {
      SmallVector<Attribute> kept;
      for (auto [k, name] : llvm::enumerate(names.getValue()))
        if (k >= drop.size() || !drop.test(k))
          kept.push_back(name);
      func->setAttr("bitnet.output_names", ArrayAttr::get(&getContext(), kept));
    }
    if (failed(func.eraseResults(drop)))
      return signalPassFailure();
    ret->eraseOperands(drop);
  }
};
} // namespace
