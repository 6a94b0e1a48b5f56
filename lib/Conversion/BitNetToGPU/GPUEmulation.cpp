//===- GPUEmulation.cpp - Host builds of the GPU kernels ---------*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// bitnet-gpu-emulation: next to every kernel of `gpu.module`s, a host
// function that runs one thread of it under the CUDA driver emulator, with
// the ABI of runtime/include/bitnet_rt/gpu_emulation.h. The kernel's body is
// cloned as it is; only what needs the GPU changes:
//
//   gpu.thread_id / block_id / block_dim / grid_dim  loads from the thread
//   gpu.barrier, gpu.shuffle                          calls into the emulator
//   nvvm.dot.accumulate.4way                          arith on vector<4xi32>
//   gpu.return                                        func.return
//   #gpu.address_space<...> memrefs                   plain memrefs
//
// and every memref.load/store and vector.load/store is preceded by a bounds
// check that reports the access (`fault`) instead of making it.
//
//===----------------------------------------------------------------------===//

#include "bitnet/Conversion/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"

namespace mlir::bitnet {
#define GEN_PASS_DEF_BITNETGPUEMULATION
#include "bitnet/Conversion/Passes.h.inc"
} // namespace mlir::bitnet

using namespace mlir;
using namespace mlir::bitnet;

namespace {

// gpu_emulation.h: int32 slots of bitnet_emu_thread, pointer slots of
// bitnet_emu_ops, shuffle modes, info slots.
constexpr int32_t kThreadIdSlot = 0, kBlockIdSlot = 3, kBlockDimSlot = 6,
                  kGridDimSlot = 9;
constexpr int32_t kBarrierSlot = 0, kShuffleSlot = 1, kFaultSlot = 2,
                  kAccessSlot = 3;
constexpr int32_t kShuffleXor = 0, kShuffleDown = 1, kShuffleUp = 2,
                  kShuffleIdx = 3;

struct BitNetGPUEmulationPass
    : bitnet::impl::BitNetGPUEmulationBase<BitNetGPUEmulationPass> {
  using Base::Base;
  void runOnOperation() override;
};

/// Builds the host function of one kernel.
class KernelEmulation {
public:
  KernelEmulation(ModuleOp module, gpu::GPUFuncOp kernel)
      : module(module), kernel(kernel), ctx(module.getContext()),
        ptr(LLVM::LLVMPointerType::get(ctx)), i32(IntegerType::get(ctx, 32)),
        i64(IntegerType::get(ctx, 64)) {}

  LogicalResult build();

private:
  /// A memref of `type` over the pointer in slot `slot` of `args`.
  Value memrefAt(OpBuilder &b, Location loc, Value args, int64_t slot,
                 MemRefType type);
  /// The pointer in slot `slot` of the pointer array `base`.
  Value pointerAt(OpBuilder &b, Location loc, Value base, int64_t slot) {
    Value at = LLVM::GEPOp::create(b, loc, ptr, ptr, base,
                                   ArrayRef<LLVM::GEPArg>{(int32_t)slot});
    return LLVM::LoadOp::create(b, loc, ptr, at);
  }
  Value i32Const(OpBuilder &b, Location loc, int64_t v) {
    return arith::ConstantOp::create(b, loc, b.getI32IntegerAttr(v));
  }
  /// Calls emulator entry `slot` with the thread and `args`.
  Value call(OpBuilder &b, Location loc, int32_t slot, ArrayRef<Value> args,
             Type result);
  LogicalResult rewrite(Operation *op);
  void checkAccess(Operation *op, Value memref, ValueRange indices,
                   int64_t lastDimExtent, int64_t alignment, bool write);
  Value message(OpBuilder &b, Location loc, StringRef text);

  ModuleOp module;
  gpu::GPUFuncOp kernel;
  MLIRContext *ctx;
  Type ptr, i32, i64;
  Value ops, thread;
  unsigned messages = 0;
};

/// Whether `op` reads or writes memory (other than allocating it).
bool hasMemoryAccess(Operation *op) {
  auto effects = dyn_cast<MemoryEffectOpInterface>(op);
  if (!effects)
    return false;
  return effects.hasEffect<MemoryEffects::Read>() ||
         effects.hasEffect<MemoryEffects::Write>();
}

/// Bytes of one element of `type`.
int64_t elementBytes(MemRefType type) {
  return (type.getElementTypeBitWidth() + 7) / 8;
}

MemRefType hostType(MemRefType type) {
  return MemRefType::get(type.getShape(), type.getElementType(),
                         type.getLayout(), Attribute());
}

Value KernelEmulation::memrefAt(OpBuilder &b, Location loc, Value args,
                                int64_t slot, MemRefType type) {
  Value p = pointerAt(b, loc, args, slot);
  int64_t rank = type.getRank();
  SmallVector<Type> fields{ptr, ptr, i64};
  if (rank > 0) {
    fields.push_back(LLVM::LLVMArrayType::get(i64, rank));
    fields.push_back(LLVM::LLVMArrayType::get(i64, rank));
  }
  auto structType = LLVM::LLVMStructType::getLiteral(ctx, fields);
  auto cst = [&](int64_t v) -> Value {
    return LLVM::ConstantOp::create(b, loc, i64, b.getI64IntegerAttr(v));
  };
  Value d = LLVM::PoisonOp::create(b, loc, structType);
  d = LLVM::InsertValueOp::create(b, loc, d, p, ArrayRef<int64_t>{0});
  d = LLVM::InsertValueOp::create(b, loc, d, p, ArrayRef<int64_t>{1});
  d = LLVM::InsertValueOp::create(b, loc, d, cst(0), ArrayRef<int64_t>{2});
  int64_t stride = 1;
  for (int64_t dim = rank - 1; dim >= 0; --dim) {
    d = LLVM::InsertValueOp::create(b, loc, d, cst(type.getDimSize(dim)),
                                    ArrayRef<int64_t>{3, dim});
    d = LLVM::InsertValueOp::create(b, loc, d, cst(stride),
                                    ArrayRef<int64_t>{4, dim});
    stride *= type.getDimSize(dim);
  }
  return UnrealizedConversionCastOp::create(b, loc, TypeRange{hostType(type)},
                                            ValueRange{d})
      .getResult(0);
}

Value KernelEmulation::call(OpBuilder &b, Location loc, int32_t slot,
                            ArrayRef<Value> args, Type result) {
  Value fn = pointerAt(b, loc, ops, slot);
  SmallVector<Value> operands{fn, thread};
  SmallVector<Type> argTypes{ptr};
  for (Value a : args) {
    operands.push_back(a);
    argTypes.push_back(a.getType());
  }
  auto type = LLVM::LLVMFunctionType::get(
      result ? result : LLVM::LLVMVoidType::get(ctx), argTypes);
  auto callOp = LLVM::CallOp::create(b, loc, type, operands);
  return result ? callOp.getResult() : Value();
}

Value KernelEmulation::message(OpBuilder &b, Location loc, StringRef text) {
  std::string data = text.str();
  data.push_back('\0');
  std::string name = (kernel.getName() + "__bitnet_emu_msg" +
                      Twine(messages++))
                         .str();
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToEnd(module.getBody());
    LLVM::GlobalOp::create(
        b, loc, LLVM::LLVMArrayType::get(IntegerType::get(ctx, 8), data.size()),
        /*isConstant=*/true, LLVM::Linkage::Private, name,
        b.getStringAttr(data));
  }
  return LLVM::AddressOfOp::create(b, loc, ptr, name);
}

/// Reports the access of `op` to `memref` at `indices` when an index is
/// outside its dimension (the last one also holding `lastDimExtent`
/// elements from the index on) or, for a 1-D memref, when the address is
/// not a multiple of `alignment` bytes (the memref's base is checked at
/// launch).
void KernelEmulation::checkAccess(Operation *op, Value memref,
                                  ValueRange indices, int64_t lastDimExtent,
                                  int64_t alignment, bool write) {
  auto type = cast<MemRefType>(memref.getType());
  OpBuilder b(op);
  Location loc = op->getLoc();
  Value bad;
  for (auto [dim, index] : llvm::enumerate(indices)) {
    int64_t extent = dim + 1 == indices.size() ? lastDimExtent : 1;
    // Unsigned, so that a negative index is out of bounds too (and every
    // index when the access is longer than the dimension).
    Value limit = arith::ConstantIndexOp::create(
        b, loc, std::max<int64_t>(0, type.getDimSize(dim) - extent + 1));
    Value outside = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::uge,
                                          index, limit);
    bad = bad ? arith::OrIOp::create(b, loc, bad, outside) : outside;
  }
  int64_t eltBytes = elementBytes(type);
  bool checkAlignment = type.getRank() == 1 && alignment > eltBytes;
  if (checkAlignment) {
    Value step = arith::ConstantIndexOp::create(b, loc, alignment / eltBytes);
    Value rem = arith::RemUIOp::create(b, loc, indices.front(), step);
    Value zero = arith::ConstantIndexOp::create(b, loc, 0);
    Value misaligned =
        arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ne, rem, zero);
    bad = bad ? arith::OrIOp::create(b, loc, bad, misaligned) : misaligned;
  }
  if (bad) {
    std::string text;
    llvm::raw_string_ostream os(text);
    os << op->getName() << " of " << type << " out of bounds"
       << (checkAlignment ? " or not " + Twine(alignment) + "-byte aligned"
                          : "")
       << " in kernel " << kernel.getName() << " (" << loc << ")";
    auto check = scf::IfOp::create(b, loc, bad, /*withElseRegion=*/false);
    OpBuilder then = check.getThenBodyBuilder();
    call(then, loc, kFaultSlot, {message(then, loc, text)}, Type());
  }

  // Then the race check: the address and size of the access.
  Value linear = arith::ConstantIndexOp::create(b, loc, 0);
  int64_t stride = 1;
  for (int64_t dim = type.getRank() - 1; dim >= 0; --dim) {
    Value scaled = arith::MulIOp::create(
        b, loc, indices[dim], arith::ConstantIndexOp::create(b, loc, stride));
    linear = arith::AddIOp::create(b, loc, linear, scaled);
    stride *= type.getDimSize(dim);
  }
  Value base = memref::ExtractAlignedPointerAsIndexOp::create(b, loc, memref);
  Value offset = arith::MulIOp::create(
      b, loc, linear, arith::ConstantIndexOp::create(b, loc, eltBytes));
  Value address = arith::IndexCastOp::create(
      b, loc, i64, arith::AddIOp::create(b, loc, base, offset));
  call(b, loc, kAccessSlot,
       {address, i32Const(b, loc, eltBytes * lastDimExtent),
        i32Const(b, loc, write ? 1 : 0)},
       Type());
}

LogicalResult KernelEmulation::rewrite(Operation *op) {
  OpBuilder b(op);
  Location loc = op->getLoc();
  auto threadField = [&](int32_t base, gpu::Dimension dim) {
    Value at = LLVM::GEPOp::create(
        b, loc, ptr, i32, thread,
        ArrayRef<LLVM::GEPArg>{base + static_cast<int32_t>(dim)});
    Value v = LLVM::LoadOp::create(b, loc, i32, at);
    return arith::IndexCastOp::create(b, loc, b.getIndexType(), v);
  };
  Value replacement;
  if (auto id = dyn_cast<gpu::ThreadIdOp>(op))
    replacement = threadField(kThreadIdSlot, id.getDimension());
  else if (auto id = dyn_cast<gpu::BlockIdOp>(op))
    replacement = threadField(kBlockIdSlot, id.getDimension());
  else if (auto dim = dyn_cast<gpu::BlockDimOp>(op))
    replacement = threadField(kBlockDimSlot, dim.getDimension());
  else if (auto dim = dyn_cast<gpu::GridDimOp>(op))
    replacement = threadField(kGridDimSlot, dim.getDimension());
  else if (isa<gpu::BarrierOp>(op))
    call(b, loc, kBarrierSlot, {}, Type());
  else if (isa<gpu::ReturnOp>(op))
    func::ReturnOp::create(b, loc);
  else if (auto shuffle = dyn_cast<gpu::ShuffleOp>(op)) {
    if (!shuffle.getValid().use_empty())
      return op->emitError("bitnet-gpu-emulation: the validity result of "
                           "gpu.shuffle is not emulated");
    Type type = shuffle.getValue().getType();
    if (!type.isInteger(32) && !type.isF32())
      return op->emitError("bitnet-gpu-emulation: gpu.shuffle of ")
             << type << " (only i32 and f32 are emulated)";
    int32_t mode = kShuffleXor;
    switch (shuffle.getMode()) {
    case gpu::ShuffleMode::XOR: mode = kShuffleXor; break;
    case gpu::ShuffleMode::DOWN: mode = kShuffleDown; break;
    case gpu::ShuffleMode::UP: mode = kShuffleUp; break;
    case gpu::ShuffleMode::IDX: mode = kShuffleIdx; break;
    }
    Value bits = shuffle.getValue();
    if (type.isF32())
      bits = arith::BitcastOp::create(b, loc, i32, bits);
    Value got = call(b, loc, kShuffleSlot,
                     {i32Const(b, loc, mode), bits, shuffle.getOffset(),
                      shuffle.getWidth()},
                     i32);
    if (type.isF32())
      got = arith::BitcastOp::create(b, loc, type, got);
    shuffle.getShuffleResult().replaceAllUsesWith(got);
    op->erase();
    return success();
  } else if (auto dot = dyn_cast<NVVM::DotAccumulate4WayOp>(op)) {
    auto widen = [&](Value v, NVVM::DotAccumulateType kind) -> Value {
      auto wide = VectorType::get({4}, i32);
      if (kind == NVVM::DotAccumulateType::SIGNED)
        return arith::ExtSIOp::create(b, loc, wide, v);
      return arith::ExtUIOp::create(b, loc, wide, v);
    };
    Value a = widen(dot.getA(), dot.getAType());
    Value bw = widen(dot.getB(), dot.getBType());
    Value products = arith::MulIOp::create(b, loc, a, bw);
    replacement = vector::ReductionOp::create(b, loc, vector::CombiningKind::ADD,
                                              products, dot.getC());
  } else {
    return op->emitError("bitnet-gpu-emulation: ")
           << op->getName() << " has no host emulation";
  }
  if (replacement)
    op->getResult(0).replaceAllUsesWith(replacement);
  op->erase();
  return success();
}

LogicalResult KernelEmulation::build() {
  Location loc = kernel.getLoc();
  if (kernel.getNumPrivateAttributions() != 0)
    return kernel.emitError("bitnet-gpu-emulation: private attributions are "
                            "not emulated");
  if (!kernel.getBody().hasOneBlock())
    return kernel.emitError("bitnet-gpu-emulation: a kernel of one block "
                            "(structured control flow) is expected");
  Block &body = kernel.getBody().front();
  int64_t params = kernel.getNumArguments();
  int64_t workgroup = kernel.getNumWorkgroupAttributions();
  SmallVector<MemRefType> types;
  for (BlockArgument arg : body.getArguments()) {
    auto type = dyn_cast<MemRefType>(arg.getType());
    if (!type || !type.hasStaticShape() || !type.getLayout().isIdentity())
      return kernel.emitError("bitnet-gpu-emulation: argument #")
             << arg.getArgNumber() << " is " << arg.getType()
             << ", not a memref of static shape";
    types.push_back(type);
  }

  OpBuilder b(ctx);
  b.setInsertionPointToEnd(module.getBody());
  std::string name = (kernel.getName() + "__bitnet_emu").str();
  auto fn = func::FuncOp::create(b, loc, name,
                                 b.getFunctionType({ptr, ptr, ptr}, {}));
  // Private to the module's symbols (not an entry candidate), exported from
  // the shared object.
  fn.setPrivate();
  fn->setAttr("llvm.linkage", LLVM::LinkageAttr::get(ctx, LLVM::Linkage::External));
  Block *entry = fn.addEntryBlock();
  b.setInsertionPointToStart(entry);
  Value args = entry->getArgument(0);
  ops = entry->getArgument(1);
  thread = entry->getArgument(2);
  IRMapping mapping;
  llvm::DenseMap<Value, int64_t> slotOf;
  for (auto [slot, arg] : llvm::enumerate(body.getArguments())) {
    Value m = memrefAt(b, loc, args, slot, types[slot]);
    mapping.map(arg, m);
    slotOf[m] = slot;
  }
  // The prologue (reading the arguments) is not the kernel's.
  llvm::SmallPtrSet<Operation *, 32> prologue;
  for (Operation &op : *entry)
    prologue.insert(&op);
  for (Operation &op : body.getOperations())
    b.clone(op, mapping);

  // The alignment each parameter's base needs: its element's, or more for
  // an aligned vector access.
  SmallVector<int64_t> paramAlignment;
  for (int64_t i = 0; i < params; ++i)
    paramAlignment.push_back(elementBytes(types[i]));
  auto access = [&](Operation *op, Value memref, ValueRange indices,
                    int64_t extent, int64_t alignment, bool write) {
    auto it = slotOf.find(memref);
    if (it != slotOf.end() && it->second < params)
      paramAlignment[it->second] =
          std::max(paramAlignment[it->second], alignment);
    checkAccess(op, memref, indices, extent, alignment, write);
  };

  // Plain memrefs, then the GPU ops.
  SmallVector<Operation *> toRewrite;
  Operation *unchecked = nullptr;
  fn.walk([&](Operation *op) {
    for (Value v : op->getResults())
      if (auto type = dyn_cast<MemRefType>(v.getType()))
        v.setType(hostType(type));
    for (Region &region : op->getRegions())
      for (Block &block : region)
        for (BlockArgument arg : block.getArguments())
          if (auto type = dyn_cast<MemRefType>(arg.getType()))
            arg.setType(hostType(type));
    if (isa<gpu::GPUDialect, NVVM::NVVMDialect>(op->getDialect()))
      toRewrite.push_back(op);
    else if (!isa<memref::LoadOp, memref::StoreOp, vector::LoadOp,
                  vector::StoreOp>(op) &&
             !prologue.contains(op) && hasMemoryAccess(op))
      unchecked = unchecked ? unchecked : op;
    else if (auto load = dyn_cast<memref::LoadOp>(op))
      access(op, load.getMemRef(), load.getIndices(), 1, 0, false);
    else if (auto store = dyn_cast<memref::StoreOp>(op))
      access(op, store.getMemRef(), store.getIndices(), 1, 0, true);
    else if (auto load = dyn_cast<vector::LoadOp>(op))
      access(op, load.getBase(), load.getIndices(),
             load.getVectorType().getShape().back(),
             load.getAlignment().value_or(0), false);
    else if (auto store = dyn_cast<vector::StoreOp>(op))
      access(op, store.getBase(), store.getIndices(),
             store.getVectorType().getShape().back(),
             store.getAlignment().value_or(0), true);
  });
  if (unchecked) {
    InFlightDiagnostic diag =
        unchecked->emitError("bitnet-gpu-emulation: ")
        << unchecked->getName()
        << " accesses memory without the emulator's checks";
    fn.erase();
    return diag;
  }
  for (Operation *op : toRewrite)
    if (failed(rewrite(op)))
      return failure();

  // NAME__bitnet_emu_info.
  SmallVector<int64_t> info{params, workgroup, 0, 0, 0};
  if (std::optional<ArrayRef<int32_t>> known = kernel.getKnownBlockSize())
    for (auto [i, size] : llvm::enumerate(*known))
      info[2 + i] = size;
  auto bytes = [](MemRefType type) {
    return type.getNumElements() * elementBytes(type);
  };
  for (int64_t i = 0; i < workgroup; ++i)
    info.push_back(bytes(types[params + i]));
  for (int64_t i = 0; i < params; ++i)
    info.push_back(bytes(types[i]));
  info.append(paramAlignment);
  b.setInsertionPointToEnd(module.getBody());
  auto infoType = RankedTensorType::get({(int64_t)info.size()}, i64);
  LLVM::GlobalOp::create(b, loc, LLVM::LLVMArrayType::get(i64, info.size()),
                         /*isConstant=*/true, LLVM::Linkage::External,
                         name + "_info",
                         DenseElementsAttr::get(infoType, ArrayRef(info)));
  return success();
}

void BitNetGPUEmulationPass::runOnOperation() {
  ModuleOp module = getOperation();
  SmallVector<gpu::GPUFuncOp> kernels;
  for (auto gpuModule : module.getOps<gpu::GPUModuleOp>())
    for (auto func : gpuModule.getOps<gpu::GPUFuncOp>())
      if (func.isKernel())
        kernels.push_back(func);
  for (gpu::GPUFuncOp kernel : kernels)
    if (failed(KernelEmulation(module, kernel).build()))
      return signalPassFailure();
}

} // namespace
