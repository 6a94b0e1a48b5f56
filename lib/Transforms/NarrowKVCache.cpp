//===- NarrowKVCache.cpp - f16 KV caches for decoder steps -------*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#include "bitnet/Dialect/BitNet/IR/BitNet.h"
#include "bitnet/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

namespace mlir::bitnet {
#define GEN_PASS_DEF_BITNETNARROWKVCACHE
#include "bitnet/Transforms/Passes.h.inc"
} // namespace mlir::bitnet

using namespace mlir;
using namespace mlir::bitnet;

namespace {
struct BitNetNarrowKVCachePass
    : bitnet::impl::BitNetNarrowKVCacheBase<BitNetNarrowKVCachePass> {
  void runOnOperation() override {
    for (auto func : getOperation().getOps<func::FuncOp>()) {
      if (func.isExternal() || !func.getBody().hasOneBlock())
        continue;
      auto ret = dyn_cast<func::ReturnOp>(func.getBody().front().getTerminator());
      if (!ret)
        continue;
      bool changed = false;
      func.walk([&](Operation *op) {
        SmallVector<std::pair<Value, Value>, 2> caches;
        if (auto one = dyn_cast<AttentionOp>(op))
          caches = {{one.getKCache(), one.getNewKCache()},
                    {one.getVCache(), one.getNewVCache()}};
        else if (auto batched = dyn_cast<BatchedAttentionOp>(op))
          caches = {{batched.getKCache(), batched.getNewKCache()},
                    {batched.getVCache(), batched.getNewVCache()}};
        for (auto [cache, updated] : caches) {
          auto arg = dyn_cast<BlockArgument>(cache);
          auto type = cast<RankedTensorType>(cache.getType());
          // Only state: an argument read by this op alone, whose update is
          // returned and nothing else.
          if (!arg || arg.getOwner() != &func.getBody().front() ||
              !type.getElementType().isF32() || !arg.hasOneUse() ||
              !updated.hasOneUse() || *updated.getUsers().begin() != ret)
            continue;
          auto half = type.clone(Float16Type::get(&getContext()));
          arg.setType(half);
          updated.setType(half);
          changed = true;
        }
      });
      if (changed)
        func.setType(FunctionType::get(&getContext(),
                                       func.getBody().front().getArgumentTypes(),
                                       ret.getOperandTypes()));
    }
  }
};
} // namespace
