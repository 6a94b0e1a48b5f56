//===- KernelSupport.cpp - Shared pieces of generated CPU kernels -*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#include "KernelSupport.h"

#include "bitnet/Transforms/ModelABI.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
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

// A field of the exec ctx of the given type (a pointer by default), or
// zero (null) without one.
Value ExecCtxCalls::field(int64_t offset, Type type) {
  if (!type)
    type = ptr;
  auto ifCtx = scf::IfOp::create(b, loc, TypeRange{type}, hasCtx, true);
  OpBuilder::InsertionGuard g(b);
  b.setInsertionPointToStart(ifCtx.thenBlock());
  Value address = LLVM::GEPOp::create(b, loc, ptr, b.getI8Type(), execCtx,
                                      ValueRange{constant(offset)});
  scf::YieldOp::create(
      b, loc, LLVM::LoadOp::create(b, loc, type, address, /*alignment=*/1)
                  .getResult());
  b.setInsertionPointToStart(ifCtx.elseBlock());
  scf::YieldOp::create(b, loc, LLVM::ZeroOp::create(b, loc, type).getResult());
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
  if (!spread) {
    LLVM::CallOp::create(b, loc, fn,
                         ValueRange{args, constant(0), constant(count)});
    return;
  }
  dispatch(fn, args, constant(count));
}

void ExecCtxCalls::dispatch(LLVM::LLVMFuncOp fn, Value args, Value count) {
  Value zero = constant(0);
  Value parallel =
      LLVM::ICmpOp::create(b, loc, LLVM::ICmpPredicate::ne, parallelFor, null);
  auto ifPar = scf::IfOp::create(b, loc, parallel, true);
  OpBuilder::InsertionGuard g(b);
  b.setInsertionPointToStart(ifPar.thenBlock());
  Value fnAddr = LLVM::AddressOfOp::create(b, loc, fn);
  auto pfType = LLVM::LLVMFunctionType::get(
      LLVM::LLVMVoidType::get(b.getContext()), {ptr, i64, ptr, ptr});
  LLVM::CallOp::create(b, loc, pfType,
                       ValueRange{parallelFor, user, count, fnAddr, args});
  b.setInsertionPointToStart(ifPar.elseBlock());
  LLVM::CallOp::create(b, loc, fn, ValueRange{args, zero, count});
}

Value ExecCtxCalls::numThreads() {
  Value threads = arith::ExtSIOp::create(
      b, loc, i64, field(kCtxNumThreadsOffset, b.getI32Type()));
  return arith::MaxSIOp::create(b, loc, threads, constant(1));
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

void mlir::bitnet::replaceByBitLinearKernel(
    BitLinearOp op, ArrayRef<int8_t> layout, int64_t scratchBytes,
    function_ref<func::FuncOp(ArrayRef<Type> memrefTypes)> getKernel,
    ArrayRef<NamedAttribute> choice) {
  OpBuilder b(op);
  Location loc = op.getLoc();
  RankedTensorType yType = op.getType();
  auto layoutType = RankedTensorType::get(
      {static_cast<int64_t>(layout.size())}, b.getI8Type());
  Value packed = arith::ConstantOp::create(
      b, loc, DenseElementsAttr::get(layoutType, layout));
  Value xBuf = toReadOnlyBuffer(b, loc, op.getInput());
  Value wBuf = toReadOnlyBuffer(b, loc, packed);
  Value wsBuf = toReadOnlyBuffer(b, loc, op.getWeightScale());
  auto alloc = [&](MemRefType type) -> Value {
    return memref::AllocOp::create(b, loc, type, b.getI64IntegerAttr(64));
  };
  Value yBuf =
      alloc(MemRefType::get(yType.getShape(), yType.getElementType()));
  Value scratch = alloc(MemRefType::get({scratchBytes}, b.getI8Type()));
  Value operands[] = {xBuf, wBuf, wsBuf, yBuf, scratch};
  SmallVector<Type> types;
  for (Value v : operands)
    types.push_back(v.getType());
  auto call = func::CallOp::create(b, loc, getKernel(types), operands);
  // What was chosen, and why, stays visible in the IR.
  call->setAttr("bitnet.kernel", b.getDictionaryAttr(choice));
  Value y = bufferization::ToTensorOp::create(b, loc, yType, yBuf,
                                              b.getUnitAttr(), b.getUnitAttr());
  op.replaceAllUsesWith(y);
  op.erase();
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

void KernelEmitterBase::prefetchLines(OpBuilder &ob, Value base,
                                      int64_t offset, int64_t bytes,
                                      int64_t locality) {
  for (int64_t line = 0; line < bytes; line += 64)
    LLVM::Prefetch::create(ob, loc, gep(ob, base, cI64(ob, offset + line)),
                           /*rw=*/ob.getI32IntegerAttr(0),
                           ob.getI32IntegerAttr(locality),
                           /*cache_type=*/ob.getI32IntegerAttr(1));
}

Value KernelEmitterBase::pointerTable(OpBuilder &ob, ArrayRef<Value> fields) {
  Value args = LLVM::AllocaOp::create(
      ob, loc, ptr, ptr, cI64(ob, static_cast<int64_t>(fields.size())), 8);
  for (auto [i, v] : llvm::enumerate(fields))
    store(ob, v, gep(ob, args, cI64(ob, 8 * static_cast<int64_t>(i))));
  return args;
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

void KernelEmitterBase::storeClipped(OpBuilder &tb, Value v, Value out,
                                     Value row0, int64_t rows) {
  auto type = cast<VectorType>(v.getType());
  int64_t lanes = type.getNumElements();
  int64_t bytes = type.getElementTypeBitWidth() / 8;
  Value zero = cI64(tb, 0), one = cI64(tb, 1);
  Value full = arith::CmpIOp::create(tb, loc, arith::CmpIPredicate::sle,
                                     add(tb, row0, cI64(tb, lanes)),
                                     cI64(tb, rows));
  auto ifFull = scf::IfOp::create(tb, loc, full, /*else=*/true);
  OpBuilder::InsertionGuard guard(tb);
  tb.setInsertionPointToStart(ifFull.thenBlock());
  store(tb, v, out);
  tb.setInsertionPointToStart(ifFull.elseBlock());
  Value valid = arith::MaxSIOp::create(
      tb, loc, arith::SubIOp::create(tb, loc, cI64(tb, rows), row0), zero);
  scf::ForOp::create(
      tb, loc, zero, arith::MinSIOp::create(tb, loc, valid, cI64(tb, lanes)),
      one, ValueRange{}, [&](OpBuilder &eb, Location, Value r, ValueRange) {
        Value e = LLVM::ExtractElementOp::create(eb, loc, v, r);
        store(eb, e, gep(eb, out, mul(eb, r, bytes)));
        scf::YieldOp::create(eb, loc);
      });
}

std::pair<Value, Value> KernelEmitterBase::quantizeRow(OpBuilder &tb,
                                                       Value xRow, Value qRow,
                                                       int64_t k,
                                                       int64_t kPadded) {
  Value one = cI64(tb, 1), zero = cI64(tb, 0);
  Type i8 = tb.getI8Type(), i32 = tb.getI32Type();
    // 16 values at a time, then the tail one by one. max and the integer
    // sum are exact, so the result is the scalar loop's, bit for bit.
    const int64_t width = 16;
    int64_t kVec = k / width * width;
    auto f32V = VectorType::get({width}, f32);
    auto i32V = VectorType::get({width}, i32);
    auto i8V = VectorType::get({width}, i8);
    auto at4 = [&](OpBuilder &lb, Value i) {
      return gep(lb, xRow, arith::MulIOp::create(lb, loc, i, cI64(lb, 4)));
    };
    auto step = [&](OpBuilder &lb, Value lbnd, int64_t ub, int64_t st,
                    Value init,
                    function_ref<Value(OpBuilder &, Value, Value)> body) {
      return scf::ForOp::create(
                 lb, loc, lbnd, cI64(lb, ub), cI64(lb, st), ValueRange{init},
                 [&](OpBuilder &ib, Location, Value i, ValueRange acc) {
                   scf::YieldOp::create(ib, loc,
                                        ValueRange{body(ib, i, acc[0])});
                 })
          .getResult(0);
    };
    Value amaxV = step(
        tb, zero, kVec, width,
        arith::ConstantOp::create(
            tb, loc, DenseElementsAttr::get(f32V, tb.getF32FloatAttr(0.0f))),
        [&](OpBuilder &lb, Value i, Value acc) -> Value {
          Value v = load(lb, f32V, at4(lb, i));
          return arith::MaximumFOp::create(
              lb, loc, acc, math::AbsFOp::create(lb, loc, v));
        });
    Value amax = vector::ReductionOp::create(
        tb, loc, vector::CombiningKind::MAXIMUMF, amaxV);
    amax = step(tb, cI64(tb, kVec), k, 1, amax,
                [&](OpBuilder &lb, Value i, Value acc) -> Value {
                  Value v = load(lb, f32, at4(lb, i));
                  return arith::MaximumFOp::create(
                      lb, loc, acc, math::AbsFOp::create(lb, loc, v));
                });
    Value floor = arith::ConstantOp::create(tb, loc, tb.getF32FloatAttr(1e-5f));
    Value scale = arith::DivFOp::create(
        tb, loc, arith::ConstantOp::create(tb, loc, tb.getF32FloatAttr(127.0f)),
        arith::MaximumFOp::create(tb, loc, amax, floor));
    // xq = clamp(roundeven(x * s_x), -128, 127), and the sum of xq.
    auto quantize = [&](OpBuilder &lb, Value v, Value scaleAny, Type intType) {
      Type floatType = v.getType();
      auto splat = [&](float c) -> Value {
        if (auto vt = dyn_cast<VectorType>(floatType))
          return arith::ConstantOp::create(
              lb, loc, DenseElementsAttr::get(vt, lb.getF32FloatAttr(c)));
        return arith::ConstantOp::create(lb, loc, lb.getF32FloatAttr(c));
      };
      Value r = math::RoundEvenOp::create(
          lb, loc, arith::MulFOp::create(lb, loc, v, scaleAny));
      r = arith::MinNumFOp::create(
          lb, loc, arith::MaxNumFOp::create(lb, loc, r, splat(-128.0f)),
          splat(127.0f));
      return arith::FPToSIOp::create(lb, loc, intType, r).getResult();
    };
    Value scaleV = vector::BroadcastOp::create(tb, loc, f32V, scale);
    Value sumV = step(
        tb, zero, kVec, width,
        arith::ConstantOp::create(
            tb, loc, DenseElementsAttr::get(i32V, tb.getI32IntegerAttr(0))),
        [&](OpBuilder &lb, Value i, Value acc) -> Value {
          Value q = quantize(lb, load(lb, f32V, at4(lb, i)), scaleV, i8V);
          store(lb, q, gep(lb, qRow, i));
          return arith::AddIOp::create(
              lb, loc, acc, arith::ExtSIOp::create(lb, loc, i32V, q));
        });
    Value sum = vector::ReductionOp::create(
        tb, loc, vector::CombiningKind::ADD, sumV);
    sum = step(tb, cI64(tb, kVec), k, 1, sum,
               [&](OpBuilder &lb, Value i, Value acc) -> Value {
                 Value q = quantize(lb, load(lb, f32, at4(lb, i)), scale, i8);
                 store(lb, q, gep(lb, qRow, i));
                 return arith::AddIOp::create(
                     lb, loc, acc, arith::ExtSIOp::create(lb, loc, i32, q));
               });
    // Zero the padding up to a whole column block.
    Value zeroB = arith::ConstantOp::create(tb, loc, tb.getI8IntegerAttr(0));
    scf::ForOp::create(tb, loc, cI64(tb, k), cI64(tb, kPadded), one, ValueRange{},
                       [&](OpBuilder &lb, Location, Value i, ValueRange) {
                         store(lb, zeroB, gep(lb, qRow, i));
                         scf::YieldOp::create(lb, loc);
                       });
  return {sum, scale};
}
