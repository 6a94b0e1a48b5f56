//===- KernelSupport.cpp - Shared pieces of generated CPU kernels -*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#include "KernelSupport.h"

#include "bitnet/Transforms/ModelABI.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

using namespace mlir;
using namespace mlir::bitnet;
using namespace mlir::bitnet::abi;

void mlir::bitnet::ensureExecCtxGlobal(ModuleOp module) {
  if (module.lookupSymbol(kExecCtxGlobal))
    return;
  OpBuilder b(module.getContext());
  Location loc = module.getLoc();
  auto ptr = LLVM::LLVMPointerType::get(module.getContext());
  b.setInsertionPointToStart(module.getBody());
  auto global = LLVM::GlobalOp::create(
      b, loc, ptr, /*isConstant=*/false, LLVM::Linkage::Internal,
      kExecCtxGlobal, Attribute(), /*alignment=*/8, /*addrSpace=*/0,
      /*dsoLocal=*/true, /*threadLocal=*/true);
  Block *init = b.createBlock(&global.getInitializerRegion());
  b.setInsertionPointToStart(init);
  LLVM::ReturnOp::create(b, loc, LLVM::ZeroOp::create(b, loc, ptr));
}

LLVM::GlobalOp mlir::bitnet::getOrCreateKernelName(ModuleOp module,
                                                   StringRef symbol,
                                                   StringRef text) {
  if (auto existing = module.lookupSymbol<LLVM::GlobalOp>(symbol))
    return existing;
  std::string data = text.str() + '\0';
  OpBuilder b(module.getContext());
  b.setInsertionPointToStart(module.getBody());
  return LLVM::GlobalOp::create(
      b, module.getLoc(),
      LLVM::LLVMArrayType::get(b.getI8Type(), data.size()),
      /*isConstant=*/true, LLVM::Linkage::Internal, symbol,
      b.getStringAttr(data));
}

ExecCtxCalls::ExecCtxCalls(OpBuilder &b, Location loc) : b(b), loc(loc) {
  ptr = LLVM::LLVMPointerType::get(b.getContext());
  i64 = b.getI64Type();
  Value ctxAddr = LLVM::AddressOfOp::create(b, loc, ptr, kExecCtxGlobal);
  execCtx = LLVM::LoadOp::create(b, loc, ptr, ctxAddr, /*alignment=*/1);
  null = LLVM::ZeroOp::create(b, loc, ptr);
  hasCtx = LLVM::ICmpOp::create(b, loc, LLVM::ICmpPredicate::ne, execCtx, null);
  user = field(kCtxUserOffset);
  parallelFor = field(kCtxParallelForOffset);
}

Value ExecCtxCalls::constant(int64_t v) {
  return arith::ConstantOp::create(b, loc, b.getI64IntegerAttr(v));
}

// A pointer field of the exec ctx, or null without one.
Value ExecCtxCalls::field(int64_t offset) {
  auto ifCtx = scf::IfOp::create(b, loc, TypeRange{ptr}, hasCtx, true);
  OpBuilder::InsertionGuard g(b);
  b.setInsertionPointToStart(ifCtx.thenBlock());
  Value address = LLVM::GEPOp::create(b, loc, ptr, b.getI8Type(), execCtx,
                                      ValueRange{constant(offset)});
  scf::YieldOp::create(
      b, loc, LLVM::LoadOp::create(b, loc, ptr, address, /*alignment=*/1)
                  .getResult());
  b.setInsertionPointToStart(ifCtx.elseBlock());
  scf::YieldOp::create(b, loc, null);
  return ifCtx.getResult(0);
}

void ExecCtxCalls::kernelBegin(Value name, int64_t bytes, int64_t flops) {
  Value fn = field(kCtxKernelBeginOffset);
  Value set = LLVM::ICmpOp::create(b, loc, LLVM::ICmpPredicate::ne, fn, null);
  auto ifSet = scf::IfOp::create(b, loc, set, false);
  OpBuilder::InsertionGuard g(b);
  b.setInsertionPointToStart(ifSet.thenBlock());
  auto voidTy = LLVM::LLVMVoidType::get(b.getContext());
  LLVM::CallOp::create(
      b, loc, LLVM::LLVMFunctionType::get(voidTy, {ptr, ptr, i64, i64}),
      ValueRange{fn, user, name, constant(bytes), constant(flops)});
}

void ExecCtxCalls::kernelEnd(Value name) {
  Value fn = field(kCtxKernelEndOffset);
  Value set = LLVM::ICmpOp::create(b, loc, LLVM::ICmpPredicate::ne, fn, null);
  auto ifSet = scf::IfOp::create(b, loc, set, false);
  OpBuilder::InsertionGuard g(b);
  b.setInsertionPointToStart(ifSet.thenBlock());
  auto voidTy = LLVM::LLVMVoidType::get(b.getContext());
  LLVM::CallOp::create(b, loc, LLVM::LLVMFunctionType::get(voidTy, {ptr, ptr}),
                       ValueRange{fn, user, name});
}

void ExecCtxCalls::dispatch(LLVM::LLVMFuncOp fn, Value args, int64_t count,
                            bool spread) {
  Value zero = constant(0);
  if (!spread) {
    LLVM::CallOp::create(b, loc, fn, ValueRange{args, zero, constant(count)});
    return;
  }
  Value parallel =
      LLVM::ICmpOp::create(b, loc, LLVM::ICmpPredicate::ne, parallelFor, null);
  auto ifPar = scf::IfOp::create(b, loc, parallel, true);
  OpBuilder::InsertionGuard g(b);
  b.setInsertionPointToStart(ifPar.thenBlock());
  Value fnAddr = LLVM::AddressOfOp::create(b, loc, fn);
  auto pfType = LLVM::LLVMFunctionType::get(
      LLVM::LLVMVoidType::get(b.getContext()), {ptr, i64, ptr, ptr});
  LLVM::CallOp::create(
      b, loc, pfType,
      ValueRange{parallelFor, user, constant(count), fnAddr, args});
  b.setInsertionPointToStart(ifPar.elseBlock());
  LLVM::CallOp::create(b, loc, fn, ValueRange{args, zero, constant(count)});
}

func::FuncOp mlir::bitnet::createMemRefWrapper(ModuleOp module, StringRef name,
                                               ArrayRef<Type> memrefTypes,
                                               LLVM::LLVMFuncOp kernel) {
  OpBuilder b(module.getContext());
  Location loc = module.getLoc();
  b.setInsertionPointToEnd(module.getBody());
  auto wrapper = func::FuncOp::create(b, loc, name,
                                      b.getFunctionType(memrefTypes, {}));
  wrapper.setPrivate();
  Block *entry = wrapper.addEntryBlock();
  b.setInsertionPointToStart(entry);
  auto ptr = LLVM::LLVMPointerType::get(b.getContext());
  SmallVector<Value> ptrs;
  for (Value arg : entry->getArguments()) {
    Value index = memref::ExtractAlignedPointerAsIndexOp::create(b, loc, arg);
    Value asInt = arith::IndexCastOp::create(b, loc, b.getI64Type(), index);
    ptrs.push_back(LLVM::IntToPtrOp::create(b, loc, ptr, asInt));
  }
  LLVM::CallOp::create(b, loc, kernel, ptrs);
  func::ReturnOp::create(b, loc);
  return wrapper;
}

KernelEmitterBase::KernelEmitterBase(ModuleOp module)
    : module(module), ctx(module.getContext()), b(ctx), loc(module.getLoc()) {
  ptr = LLVM::LLVMPointerType::get(ctx);
  i64 = b.getI64Type();
  f32 = b.getF32Type();
}

Value KernelEmitterBase::cI64(OpBuilder &ob, int64_t v) {
  return arith::ConstantOp::create(ob, loc, ob.getI64IntegerAttr(v));
}

Value KernelEmitterBase::gep(OpBuilder &ob, Value base, Value byteOffset) {
  return LLVM::GEPOp::create(ob, loc, ptr, ob.getI8Type(), base,
                             ValueRange{byteOffset});
}

Value KernelEmitterBase::load(OpBuilder &ob, Type type, Value address) {
  return LLVM::LoadOp::create(ob, loc, type, address, /*alignment=*/1);
}

void KernelEmitterBase::store(OpBuilder &ob, Value value, Value address) {
  LLVM::StoreOp::create(ob, loc, value, address, /*alignment=*/1);
}

Value KernelEmitterBase::mul(OpBuilder &ob, Value a, int64_t c) {
  return arith::MulIOp::create(ob, loc, a, cI64(ob, c));
}

Value KernelEmitterBase::add(OpBuilder &ob, Value a, Value c) {
  return arith::AddIOp::create(ob, loc, a, c);
}

Value KernelEmitterBase::field(OpBuilder &ob, Value args, int64_t index) {
  return load(ob, ptr, gep(ob, args, cI64(ob, 8 * index)));
}

scf::ForOp KernelEmitterBase::loop(
    OpBuilder &ob, Value lo, Value hi, int64_t step, ValueRange init,
    function_ref<SmallVector<Value>(OpBuilder &, Value, ValueRange)> body) {
  return scf::ForOp::create(
      ob, loc, lo, hi, cI64(ob, step), init,
      [&](OpBuilder &lb, Location, Value i, ValueRange carried) {
        scf::YieldOp::create(lb, loc, body(lb, i, carried));
      });
}

LLVM::LLVMFuncOp KernelEmitterBase::beginChunk(StringRef name) {
  b.setInsertionPointToEnd(module.getBody());
  auto type = LLVM::LLVMFunctionType::get(LLVM::LLVMVoidType::get(ctx),
                                          {ptr, i64, i64});
  auto func =
      LLVM::LLVMFuncOp::create(b, loc, name, type, LLVM::Linkage::Internal);
  Block *entry = func.addEntryBlock(b);
  b.setInsertionPointToStart(entry);
  return func;
}

LLVM::LLVMFuncOp KernelEmitterBase::beginKernel(StringRef name,
                                                int64_t numArgs) {
  b.setInsertionPointToEnd(module.getBody());
  SmallVector<Type> params(numArgs, ptr);
  auto type =
      LLVM::LLVMFunctionType::get(LLVM::LLVMVoidType::get(ctx), params);
  auto func =
      LLVM::LLVMFuncOp::create(b, loc, name, type, LLVM::Linkage::Internal);
  Block *entry = func.addEntryBlock(b);
  b.setInsertionPointToStart(entry);
  return func;
}

Value mlir::bitnet::toReadOnlyBuffer(OpBuilder &b, Location loc, Value tensor) {
  auto type = cast<RankedTensorType>(tensor.getType());
  return bufferization::ToBufferOp::create(
      b, loc, MemRefType::get(type.getShape(), type.getElementType()), tensor,
      /*read_only=*/true);
}
