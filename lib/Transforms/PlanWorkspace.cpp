//===- PlanWorkspace.cpp - One workspace for all buffers --------*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#include "bitnet/Transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Interfaces/ViewLikeInterface.h"
#include "mlir/IR/Builders.h"
#include "llvm/Support/MathExtras.h"

namespace mlir::bitnet {
#define GEN_PASS_DEF_BITNETPLANWORKSPACE
#include "bitnet/Transforms/Passes.h.inc"
} // namespace mlir::bitnet

using namespace mlir;
using namespace mlir::bitnet;

namespace {
/// A buffer to place: its alloc, size, lifetime [start, end) in op order.
struct Buffer {
  memref::AllocOp alloc;
  memref::DeallocOp dealloc; // null when the buffer lives to the end
  int64_t bytes;
  int64_t start, end;
  int64_t offset = -1;
};

/// Bytes of a statically shaped, identity-layout memref of int or float
/// elements; std::nullopt for anything else.
static std::optional<int64_t> staticBytes(MemRefType type) {
  if (!type.hasStaticShape() || !type.getLayout().isIdentity() ||
      type.getMemorySpace())
    return std::nullopt;
  Type element = type.getElementType();
  if (!element.isIntOrFloat())
    return std::nullopt;
  int64_t bits = element.getIntOrFloatBitWidth();
  if (bits % 8 != 0)
    return std::nullopt;
  return type.getNumElements() * (bits / 8);
}

/// A call may take a buffer of the workspace when its callee is defined here
/// and frees nothing (the kernels the compiler generates).
static bool calleeKeepsBuffers(ModuleOp module, func::CallOp call) {
  auto callee = module.lookupSymbol<func::FuncOp>(call.getCallee());
  if (!callee || callee.isExternal())
    return false;
  WalkResult result = callee.walk([](Operation *op) {
    return isa<memref::DeallocOp, func::CallOp>(op) ? WalkResult::interrupt()
                                                    : WalkResult::advance();
  });
  return !result.wasInterrupted();
}

/// One past the position (in `body`) of the last op that uses `root` or a
/// view of it (deallocs aside), counting an op nested in a region as its
/// ancestor in `body`;
/// std::nullopt when the buffer may outlive its uses there (it is yielded,
/// returned, turned into a pointer, or aliased by an op this does not know).
static std::optional<int64_t>
pastLastUse(Value root, Block &body,
            const DenseMap<Operation *, int64_t> &position) {
  SmallVector<Value> work{root};
  int64_t last = -1;
  while (!work.empty()) {
    Value v = work.pop_back_val();
    for (OpOperand &use : v.getUses()) {
      Operation *user = use.getOwner();
      if (isa<memref::DeallocOp>(user))
        continue;
      if (isa<ViewLikeOpInterface, memref::CastOp, memref::CollapseShapeOp,
              memref::ExpandShapeOp, memref::ReinterpretCastOp>(user)) {
        for (Value result : user->getResults())
          if (isa<BaseMemRefType>(result.getType()))
            work.push_back(result);
      } else if (llvm::any_of(user->getResultTypes(),
                              llvm::IsaPred<BaseMemRefType>) ||
                 isa<RegionBranchTerminatorOpInterface, func::ReturnOp,
                     memref::ExtractAlignedPointerAsIndexOp,
                     memref::ExtractStridedMetadataOp>(user)) {
        return std::nullopt;
      }
      Operation *top = user;
      while (top && top->getBlock() != &body)
        top = top->getParentOp();
      auto it = top ? position.find(top) : position.end();
      if (it == position.end())
        return std::nullopt;
      last = std::max(last, it->second);
    }
  }
  // A buffer nothing uses is alive at its allocation only.
  return std::max(last, position.lookup(root.getDefiningOp())) + 1;
}

struct BitNetPlanWorkspacePass
    : bitnet::impl::BitNetPlanWorkspaceBase<BitNetPlanWorkspacePass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (alignment <= 0 || !llvm::isPowerOf2_64(alignment)) {
      module.emitError("bitnet-plan-workspace: alignment must be a power of "
                       "2, got ")
          << static_cast<int64_t>(alignment);
      return signalPassFailure();
    }
    func::FuncOp func = lookupEntryFunction(module, entry);
    if (!func)
      return signalPassFailure();

    Block &body = func.front();
    DenseMap<Operation *, int64_t> position;
    int64_t index = 0;
    for (Operation &op : body)
      position[&op] = index++;

    SmallVector<Buffer> buffers;
    for (auto alloc : body.getOps<memref::AllocOp>()) {
      std::optional<int64_t> bytes = staticBytes(alloc.getType());
      if (!bytes || static_cast<int64_t>(alloc.getAlignment().value_or(1)) > alignment)
        continue;
      Buffer buffer{alloc, nullptr, *bytes, position[alloc], index};
      // A buffer freed in a nested region, returned or handed to a call may
      // be freed by someone else: it keeps its own allocation.
      bool placeable = true;
      for (Operation *user : alloc->getUsers()) {
        if (isa<func::ReturnOp>(user))
          placeable = false;
        if (auto call = dyn_cast<func::CallOp>(user))
          if (!calleeKeepsBuffers(module, call))
            placeable = false;
        auto dealloc = dyn_cast<memref::DeallocOp>(user);
        if (!dealloc)
          continue;
        if (dealloc->getBlock() != &body || buffer.dealloc) {
          placeable = false;
          continue;
        }
        buffer.dealloc = dealloc;
        buffer.end = position[dealloc];
      }
      // The buffer is dead after its last use: bufferization's deallocs all
      // come at the end of the function.
      if (placeable)
        if (std::optional<int64_t> end =
                pastLastUse(alloc.getResult(), body, position))
          buffer.end = std::min(buffer.end, *end);
      if (placeable)
        buffers.push_back(buffer);
    }
    if (buffers.empty()) {
      func->setAttr("bitnet.workspace_bytes",
                    IntegerAttr::get(IntegerType::get(&getContext(), 64), 0));
      return;
    }

    // First fit in order of allocation: the lowest aligned offset that
    // overlaps no buffer alive at the same time.
    int64_t total = 0;
    for (auto [i, buffer] : llvm::enumerate(buffers)) {
      SmallVector<std::pair<int64_t, int64_t>> busy;
      for (const Buffer &other : ArrayRef(buffers).take_front(i))
        if (other.start < buffer.end && buffer.start < other.end)
          busy.push_back({other.offset, other.offset + other.bytes});
      llvm::sort(busy);
      int64_t offset = 0;
      for (auto [lo, hi] : busy) {
        if (offset + buffer.bytes <= lo)
          break;
        offset = std::max<int64_t>(offset, llvm::alignTo(hi, alignment));
      }
      buffer.offset = offset;
      total = std::max(total, offset + buffer.bytes);
    }
    total = static_cast<int64_t>(
        llvm::alignTo(std::max<int64_t>(total, 1), alignment));

    OpBuilder b(&getContext());
    auto wsType = MemRefType::get({total}, b.getI8Type());
    unsigned wsIndex = func.getNumArguments();
    if (failed(func.insertArgument(
            wsIndex, wsType,
            b.getDictionaryAttr(
                b.getNamedAttr("bitnet.workspace", b.getUnitAttr())),
            func.getLoc()))) {
      func.emitError("cannot add the workspace argument");
      return signalPassFailure();
    }
    Value workspace = func.getArgument(wsIndex);
    for (Buffer &buffer : buffers) {
      b.setInsertionPoint(buffer.alloc);
      Location loc = buffer.alloc.getLoc();
      Value offset = arith::ConstantIndexOp::create(b, loc, buffer.offset);
      Value view = memref::ViewOp::create(b, loc, buffer.alloc.getType(),
                                          workspace, offset, ValueRange{});
      if (buffer.dealloc)
        buffer.dealloc.erase();
      buffer.alloc.replaceAllUsesWith(view);
      buffer.alloc.erase();
    }
    func->setAttr("bitnet.workspace_bytes", b.getI64IntegerAttr(total));
    func->setAttr("bitnet.workspace_alignment", b.getI64IntegerAttr(alignment));
  }
};
} // namespace
