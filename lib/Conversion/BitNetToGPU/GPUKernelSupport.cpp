//===- GPUKernelSupport.cpp - Shared pieces of the GPU kernels --*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#include "GPUKernelSupport.h"

#include "mlir/Dialect/SCF/IR/SCF.h"
#include "llvm/Support/ErrorHandling.h"

using namespace mlir;
using namespace mlir::bitnet;

MemRefType mlir::bitnet::flatMemRef(int64_t n, Type element) {
  return MemRefType::get({n}, element);
}

MemRefType mlir::bitnet::workgroupMemRef(int64_t n, Type element) {
  MLIRContext *ctx = element.getContext();
  return MemRefType::get(
      {n}, element, MemRefLayoutAttrInterface(),
      gpu::AddressSpaceAttr::get(ctx, gpu::AddressSpace::Workgroup));
}

Type mlir::bitnet::elementType(MLIRContext *ctx, StringRef name) {
  Builder b(ctx);
  if (name == "f32")
    return b.getF32Type();
  if (name == "f16")
    return b.getF16Type();
  if (name == "bf16")
    return b.getBF16Type();
  if (name == "f64")
    return b.getF64Type();
  if (name == "index")
    return b.getIndexType();
  unsigned width = 0;
  if (!name.consume_front("i") || name.getAsInteger(10, width) || width == 0)
    llvm::report_fatal_error("unknown GPU kernel element type");
  return b.getIntegerType(width);
}

bool mlir::bitnet::createKernel(gpu::GPUModuleOp module, GPUKernel &kernel,
                                TypeRange args, TypeRange workgroup) {
  kernel.func = module.lookupSymbol<gpu::GPUFuncOp>(kernel.name);
  if (kernel.func)
    return false;
  auto b = OpBuilder::atBlockEnd(module.getBody());
  kernel.func = gpu::GPUFuncOp::create(b, module.getLoc(), kernel.name,
                                       b.getFunctionType(args, {}), workgroup);
  kernel.func->setAttr(gpu::GPUDialect::getKernelFuncAttrName(),
                       b.getUnitAttr());
  kernel.func.setKnownBlockSizeAttr(
      b.getDenseI32ArrayAttr({static_cast<int32_t>(kernel.block[0]), 1, 1}));
  b.setInsertionPointToEnd(&kernel.func.getBody().front());
  gpu::ReturnOp::create(b, module.getLoc());
  return true;
}

GPUKernelBuilder::GPUKernelBuilder(gpu::GPUFuncOp func)
    : ImplicitLocOpBuilder(func.getLoc(), func.getContext()), func(func) {
  setInsertionPoint(func.getBody().front().getTerminator());
}

Value GPUKernelBuilder::idx(int64_t v) {
  return arith::ConstantIndexOp::create(*this, v);
}

Value GPUKernelBuilder::i32(int64_t v) {
  return arith::ConstantOp::create(*this, getI32IntegerAttr(v));
}

Value GPUKernelBuilder::f32(float v) {
  return arith::ConstantOp::create(*this, getF32FloatAttr(v));
}

Value GPUKernelBuilder::splatI32x4(int32_t v) {
  auto type = VectorType::get({4}, getI32Type());
  return arith::ConstantOp::create(*this, DenseElementsAttr::get(type, v));
}

Value GPUKernelBuilder::threadId() {
  return gpu::ThreadIdOp::create(*this, gpu::Dimension::x);
}

Value GPUKernelBuilder::blockId(gpu::Dimension dim) {
  return gpu::BlockIdOp::create(*this, dim);
}

Value GPUKernelBuilder::globalIndex(int64_t threads) {
  Value tid = threadId(), bx = blockId();
  return addi(muli(bx, idx(threads)), tid);
}

std::pair<Value, Value> GPUKernelBuilder::laneAndWarp(Value tid) {
  Value c32 = idx(32);
  Value lane = remui(tid, c32);
  return {lane, divui(tid, c32)};
}

Value GPUKernelBuilder::clampedPosition(Value pos, int64_t lo, int64_t hi) {
  Value v = load(pos, idx(0));
  Value p = arith::IndexCastOp::create(*this, getIndexType(), v);
  p = arith::MaxSIOp::create(*this, p, idx(lo));
  return arith::MinSIOp::create(*this, p, idx(hi));
}

Value GPUKernelBuilder::combine(Combine kind, Value a, Value b) {
  switch (kind) {
  case Combine::AddI:
    return addi(a, b);
  case Combine::AddF:
    return addf(a, b);
  case Combine::MaximumF:
    return arith::MaximumFOp::create(*this, a, b);
  }
  llvm_unreachable("unknown combination");
}

Value GPUKernelBuilder::widenToF32(Value v) {
  Type type = v.getType();
  if (type.isF32())
    return v;
  if (isa<FloatType>(type))
    return arith::ExtFOp::create(*this, getF32Type(), v);
  return arith::SIToFPOp::create(*this, getF32Type(), v);
}

void GPUKernelBuilder::ifThen(Value cond, function_ref<void()> then) {
  auto op = scf::IfOp::create(*this, cond, /*withElseRegion=*/false);
  InsertionGuard guard(*this);
  setInsertionPoint(op.thenBlock()->getTerminator());
  then();
}

void GPUKernelBuilder::ifThenElse(Value cond, function_ref<void()> then,
                                  function_ref<void()> otherwise) {
  auto op = scf::IfOp::create(*this, cond, /*withElseRegion=*/true);
  InsertionGuard guard(*this);
  setInsertionPoint(op.thenBlock()->getTerminator());
  then();
  setInsertionPoint(op.elseBlock()->getTerminator());
  otherwise();
}

Value GPUKernelBuilder::ifValue(Type type, Value cond,
                                function_ref<Value()> then,
                                function_ref<Value()> otherwise) {
  auto op = scf::IfOp::create(*this, TypeRange{type}, cond,
                              /*addThenBlock=*/true, /*addElseBlock=*/true);
  InsertionGuard guard(*this);
  setInsertionPointToEnd(op.thenBlock());
  scf::YieldOp::create(*this, then());
  setInsertionPointToEnd(op.elseBlock());
  scf::YieldOp::create(*this, otherwise());
  return op.getResult(0);
}

void GPUKernelBuilder::forEach(Value lb, Value ub, Value step,
                               function_ref<void(Value)> body) {
  auto op = scf::ForOp::create(*this, lb, ub, step);
  InsertionGuard guard(*this);
  setInsertionPoint(op.getBody()->getTerminator());
  body(op.getInductionVar());
}

ValueRange GPUKernelBuilder::loop(
    Value lb, Value ub, Value step, ValueRange init,
    function_ref<SmallVector<Value>(Value, ValueRange)> body) {
  auto op = scf::ForOp::create(*this, lb, ub, step, init);
  InsertionGuard guard(*this);
  setInsertionPointToEnd(op.getBody());
  scf::YieldOp::create(*this,
                       body(op.getInductionVar(), op.getRegionIterArgs()));
  return op.getResults();
}

Value GPUKernelBuilder::fold(Value lb, Value ub, Value step, Value init,
                             function_ref<Value(Value, Value)> body) {
  return loop(lb, ub, step, init,
              [&](Value iv, ValueRange carried) {
                return SmallVector<Value>{body(iv, carried.front())};
              })
      .front();
}

Value GPUKernelBuilder::warpReduce(Value v, Combine kind, int64_t from,
                                   int64_t to) {
  Value width = i32(32);
  auto xorMode = gpu::ShuffleModeAttr::get(getContext(), gpu::ShuffleMode::XOR);
  for (int64_t off = from; off >= to; off /= 2) {
    auto shuffle = gpu::ShuffleOp::create(*this, v, i32(off), width, xorMode);
    v = combine(kind, v, shuffle.getShuffleResult());
  }
  return v;
}

Value GPUKernelBuilder::blockReduce(Value v, Combine kind, Value smem,
                                    int64_t warps, Value lane, Value warp) {
  v = warpReduce(v, kind);
  ifThen(eq(lane, idx(0)), [&] { store(v, smem, warp); });
  gpu::BarrierOp::create(*this);
  Value r;
  for (int64_t i = 0; i < warps; ++i) {
    Value x = load(smem, idx(i));
    r = r ? combine(kind, r, x) : x;
  }
  gpu::BarrierOp::create(*this);
  return r;
}
