//===- GPUElementwiseKernels.cpp - Embedding, dense, elementwise -*- C++
//-*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// The kernels outside the ternary layers: the embedding lookup, the float or
// int8 dense head, the positions of a step's tokens and the elementwise
// operations between layers.
//
//===----------------------------------------------------------------------===//

#include "GPUKernelSupport.h"

#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/MathExtras.h"

using namespace mlir;
using namespace mlir::bitnet;
using llvm::formatv;

/// Blocks of `threads` threads for one thread per element of `count`.
static int64_t blocksFor(int64_t count, int64_t threads) {
  return std::max<int64_t>(1, llvm::divideCeil(count, threads));
}

GPUKernel mlir::bitnet::embeddingKernel(gpu::GPUModuleOp module, int64_t tokens,
                                        int64_t vocab, int64_t dim,
                                        StringRef tableType, StringRef idType,
                                        bool scaled) {
  GPUKernel kernel;
  int64_t count = tokens * dim;
  kernel.name = formatv("bitnet_embedding_{0}x{1}x{2}_{3}_{4}", tokens, vocab,
                        dim, tableType, idType)
                    .str();
  kernel.grid = {blocksFor(count, kElementwiseThreads), 1, 1};
  kernel.block = {kElementwiseThreads, 1, 1};
  kernel.bytes = 8 * count + 8 * tokens;
  kernel.flops = 0;
  MLIRContext *ctx = module.getContext();
  Type f32 = Float32Type::get(ctx);
  SmallVector<Type> args{flatMemRef(vocab * dim, elementType(ctx, tableType)),
                         flatMemRef(tokens, elementType(ctx, idType))};
  if (scaled)
    args.push_back(flatMemRef(vocab, f32));
  args.push_back(flatMemRef(count, f32));
  if (!createKernel(module, kernel, args))
    return kernel;
  GPUKernelBuilder b(kernel.func);
  Value table = b.arg(0), ids = b.arg(1), y = b.arg(args.size() - 1);
  Value i = b.globalIndex(kElementwiseThreads);
  b.ifThen(b.ult(i, b.idx(count)), [&] {
    Value t = b.divui(i, b.idx(dim));
    Value d = b.remui(i, b.idx(dim));
    Value raw = b.load(ids, t);
    // Negative ids count from the end; then clamped into [0, vocab - 1].
    Value id = arith::IndexCastOp::create(b, b.getIndexType(), raw);
    Value neg =
        arith::CmpIOp::create(b, arith::CmpIPredicate::slt, id, b.idx(0));
    id = b.select(neg, b.addi(id, b.idx(vocab)), id);
    id = arith::MaxSIOp::create(b, id, b.idx(0));
    id = arith::MinSIOp::create(b, id, b.idx(vocab - 1));
    Value at = b.addi(b.muli(id, b.idx(dim)), d);
    Value v = b.widenToF32(b.load(table, at));
    if (scaled)
      v = b.mulf(v, b.load(b.arg(2), id));
    b.store(v, y, i);
  });
  return kernel;
}

static constexpr int64_t kDenseWarps = 4;

GPUKernel mlir::bitnet::denseKernel(gpu::GPUModuleOp module, int64_t m,
                                    int64_t n, int64_t k, StringRef weightType,
                                    bool scaled) {
  GPUKernel kernel;
  kernel.name =
      formatv("bitnet_dense_{0}x{1}x{2}_{3}", m, n, k, weightType).str();
  kernel.grid = {blocksFor(n, kDenseWarps), 1, 1};
  kernel.block = {32 * kDenseWarps, 1, 1};
  int64_t wBytes = weightType == "f32"                           ? 4
                   : weightType == "f16" || weightType == "bf16" ? 2
                                                                 : 1;
  kernel.bytes = wBytes * n * k + 4 * m * k + 4 * m * n;
  kernel.flops = 2 * m * n * k;
  MLIRContext *ctx = module.getContext();
  Type f32 = Float32Type::get(ctx);
  SmallVector<Type> args{flatMemRef(m * k, f32),
                         flatMemRef(n * k, elementType(ctx, weightType))};
  if (scaled)
    args.push_back(flatMemRef(n, f32));
  args.push_back(flatMemRef(m * n, f32));
  if (!createKernel(module, kernel, args))
    return kernel;
  GPUKernelBuilder b(kernel.func);
  Value x = b.arg(0), w = b.arg(1), y = b.arg(args.size() - 1);
  Value tid = b.threadId(), bx = b.blockId();
  Value c32 = b.idx(32), c0 = b.idx(0), c1 = b.idx(1), cK = b.idx(k);
  Value lane = b.remui(tid, c32);
  Value warp = b.divui(tid, c32);
  Value row = b.addi(b.muli(bx, b.idx(kDenseWarps)), warp);
  b.ifThen(b.ult(row, b.idx(n)), [&] {
    Value wRow = b.muli(row, cK);
    Value fz = b.f32(0.0f);
    Value scale = scaled ? b.load(b.arg(2), row) : Value();
    b.forEach(c0, b.idx(m), c1, [&](Value t) {
      Value xRow = b.muli(t, cK);
      Value acc = b.fold(lane, cK, c32, fz, [&](Value kk, Value a) {
        Value xv = b.load(x, b.addi(xRow, kk));
        Value wv = b.load(w, b.addi(wRow, kk));
        return b.addf(a, b.mulf(xv, b.widenToF32(wv)));
      });
      Value total = b.warpReduce(acc, Combine::AddF);
      if (scaled)
        total = b.mulf(total, scale);
      b.ifThen(b.eq(lane, c0),
               [&] { b.store(total, y, b.addi(b.muli(t, b.idx(n)), row)); });
    });
  });
  return kernel;
}

GPUKernel mlir::bitnet::positionRangeKernel(gpu::GPUModuleOp module,
                                            int64_t count, StringRef type) {
  GPUKernel kernel;
  kernel.name = formatv("bitnet_position_range_{0}_{1}", count, type).str();
  kernel.grid = {blocksFor(count, kElementwiseThreads), 1, 1};
  kernel.block = {kElementwiseThreads, 1, 1};
  kernel.bytes = 8 * count;
  kernel.flops = count;
  Type element = elementType(module.getContext(), type);
  if (!createKernel(module, kernel,
                    {flatMemRef(1, element), flatMemRef(count, element)}))
    return kernel;
  GPUKernelBuilder b(kernel.func);
  Value i = b.globalIndex(kElementwiseThreads);
  b.ifThen(b.ult(i, b.idx(count)), [&] {
    Value start = b.load(b.arg(0), b.idx(0));
    Value off = arith::IndexCastOp::create(b, element, i);
    b.store(b.addi(start, off), b.arg(1), i);
  });
  return kernel;
}

GPUKernel mlir::bitnet::elementwiseKernel(gpu::GPUModuleOp module,
                                          ElementwiseKind kind, int64_t count) {
  GPUKernel kernel;
  StringRef names[] = {"squared_relu", "add", "mul", "copy"};
  kernel.name =
      formatv("bitnet_{0}_{1}", names[static_cast<int>(kind)], count).str();
  kernel.grid = {blocksFor(count, kElementwiseThreads), 1, 1};
  kernel.block = {kElementwiseThreads, 1, 1};
  bool binary = kind == ElementwiseKind::Add || kind == ElementwiseKind::Mul;
  kernel.bytes = (binary ? 12 : 8) * count;
  kernel.flops = count;
  Type type = flatMemRef(count, Float32Type::get(module.getContext()));
  SmallVector<Type> args(binary ? 3 : 2, type);
  if (!createKernel(module, kernel, args))
    return kernel;
  GPUKernelBuilder b(kernel.func);
  Value i = b.globalIndex(kElementwiseThreads);
  b.ifThen(b.ult(i, b.idx(count)), [&] {
    Value a = b.load(b.arg(0), i);
    Value y;
    switch (kind) {
    case ElementwiseKind::SquaredRelu: {
      Value r = b.maxnumf(a, b.f32(0.0f));
      y = b.mulf(r, r);
      break;
    }
    case ElementwiseKind::Add:
      y = b.addf(a, b.load(b.arg(1), i));
      break;
    case ElementwiseKind::Mul:
      y = b.mulf(a, b.load(b.arg(1), i));
      break;
    case ElementwiseKind::Copy:
      y = a;
      break;
    }
    b.store(y, b.arg(args.size() - 1), i);
  });
  return kernel;
}
