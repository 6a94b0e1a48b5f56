//===- GPUAttentionKernels.cpp - Rope, KV cache and attention ---*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// The kernels of a self-attention: the rotary embedding, the update of the
// key and value caches (alone or fused with the ropes) and the causal
// grouped-query attention over the caches.
//
//===----------------------------------------------------------------------===//

#include "GPUKernelSupport.h"

#include "mlir/Dialect/Math/IR/Math.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/MathExtras.h"

#include <limits>

using namespace mlir;
using namespace mlir::bitnet;
using llvm::formatv;

namespace {
/// One rotated pair of a rope: the flat indices of its two features in the
/// rows, and their rotated values.
struct RotatedPair {
  Value a, c, ya, yb;
};

/// Rotates pair `i` (< tokens * heads * dim / 2) of the rows in `x` by the
/// position of its token in `pos` and the frequencies in `freq`, with the
/// reference's operations in its order: a cos - b sin, b cos + a sin.
RotatedPair rotatePair(GPUKernelBuilder &b, Value i, const RopeSpec &r, Value x,
                       Value pos, Value freq) {
  int64_t half = r.dim / 2;
  // Pair `pair` of row `row` (token t, head h): features a and c.
  Value pair = b.remui(i, b.idx(half));
  Value row = b.divui(i, b.idx(half));
  Value t = b.divui(row, b.idx(r.heads));
  Value base = b.muli(row, b.idx(r.dim));
  RotatedPair out;
  if (r.interleaved) {
    out.a = b.addi(base, b.muli(pair, b.idx(2)));
    out.c = b.addi(out.a, b.idx(1));
  } else {
    out.a = b.addi(base, pair);
    out.c = b.addi(out.a, b.idx(half));
  }
  Value posF = arith::SIToFPOp::create(b, b.getF32Type(), b.load(pos, t));
  Value angle = b.mulf(posF, b.load(freq, pair));
  Value cs = math::CosOp::create(b, angle);
  Value sn = math::SinOp::create(b, angle);
  Value xa = b.load(x, out.a);
  Value xb = b.load(x, out.c);
  Value acs = b.mulf(xa, cs);
  out.ya = b.subf(acs, b.mulf(xb, sn));
  Value bcs = b.mulf(xb, cs);
  out.yb = b.addf(bcs, b.mulf(xa, sn));
  return out;
}

/// Stores a rotated pair into the f32 rows `y`.
void storePair(GPUKernelBuilder &b, const RotatedPair &p, Value y) {
  b.store(p.ya, y, p.a);
  b.store(p.yb, y, p.c);
}

std::string ropeName(const RopeSpec &r) {
  return formatv("{0}x{1}x{2}_{3}_{4}", r.tokens, r.heads, r.dim,
                 r.interleaved ? "interleaved" : "half", r.positionType)
      .str();
}

/// A cache element loaded from `cache` at `at`, widened to f32.
Value loadCached(GPUKernelBuilder &b, Value cache, Value at) {
  return b.widenToF32(b.load(cache, at));
}

/// Stores f32 `value` into `cache` at `at`, rounded to the cache type.
void storeCached(GPUKernelBuilder &b, Value cache, Value at, Value value) {
  Type element = cast<MemRefType>(cache.getType()).getElementType();
  if (!element.isF32())
    value = arith::TruncFOp::create(b, element, value);
  b.store(value, cache, at);
}

/// The cache index of element `i` of the new rows: rows start at p =
/// clamp(position `pos[0]`, 0, capacity - tokens), so p * rowElems + i.
Value cacheIndex(GPUKernelBuilder &b, Value i, Value pos,
                 const GPUAttentionShape &s) {
  Value p = b.clampedPosition(pos, 0, s.capacity - s.tokens);
  return b.addi(b.muli(p, b.idx(s.kvHeads * s.dim)), i);
}

/// Blocks of kElementwiseThreads threads for `count` threads.
int64_t elementwiseBlocks(int64_t count) {
  return std::max<int64_t>(1, llvm::divideCeil(count, kElementwiseThreads));
}

/// Name suffix of an attention shape.
std::string attentionSuffix(const GPUAttentionShape &s) {
  return formatv("{0}x{1}x{2}x{3}_c{4}_{5}_{6}", s.tokens, s.heads, s.kvHeads,
                 s.dim, s.capacity, s.cacheType, s.positionType)
      .str();
}

/// The memref type of one cache of `s`.
MemRefType cacheMemRef(MLIRContext *ctx, const GPUAttentionShape &s) {
  return flatMemRef(s.capacity * s.kvHeads * s.dim,
                    elementType(ctx, s.cacheType));
}
} // namespace

GPUKernel mlir::bitnet::ropeKernel(gpu::GPUModuleOp module, int64_t tokens,
                                   int64_t heads, int64_t dim, bool interleaved,
                                   StringRef positionType) {
  GPUKernel kernel;
  RopeSpec r{tokens, heads, dim, interleaved, positionType.str()};
  int64_t half = dim / 2, pairs = tokens * heads * half;
  int64_t count = tokens * heads * dim;
  kernel.name = "bitnet_rope_" + ropeName(r);
  kernel.grid = {elementwiseBlocks(pairs), 1, 1};
  kernel.block = {kElementwiseThreads, 1, 1};
  kernel.bytes = 8 * count + 4 * half + 8 * tokens;
  kernel.flops = 6 * pairs;
  MLIRContext *ctx = module.getContext();
  Type f32 = Float32Type::get(ctx);
  Type xType = flatMemRef(count, f32);
  if (!createKernel(module, kernel,
                    {xType, flatMemRef(tokens, elementType(ctx, positionType)),
                     flatMemRef(half, f32), xType}))
    return kernel;
  GPUKernelBuilder b(kernel.func);
  Value i = b.globalIndex(kElementwiseThreads);
  b.ifThen(b.ult(i, b.idx(pairs)), [&] {
    storePair(b, rotatePair(b, i, r, b.arg(0), b.arg(1), b.arg(2)), b.arg(3));
  });
  return kernel;
}

GPUKernel mlir::bitnet::cacheUpdateKernel(gpu::GPUModuleOp module,
                                          const GPUAttentionShape &s) {
  GPUKernel kernel;
  kernel.name = "bitnet_kv_update_" + attentionSuffix(s);
  int64_t rowElems = s.kvHeads * s.dim, count = s.tokens * rowElems;
  kernel.grid = {elementwiseBlocks(count), 1, 1};
  kernel.block = {kElementwiseThreads, 1, 1};
  int64_t cacheBytes = s.cacheType == "f32" ? 4 : 2;
  kernel.bytes = 2 * count * (4 + cacheBytes);
  kernel.flops = 0;
  MLIRContext *ctx = module.getContext();
  Type rowsType = flatMemRef(count, Float32Type::get(ctx));
  Type cacheType = cacheMemRef(ctx, s);
  if (!createKernel(module, kernel,
                    {rowsType, rowsType, cacheType, cacheType,
                     flatMemRef(1, elementType(ctx, s.positionType))}))
    return kernel;
  GPUKernelBuilder b(kernel.func);
  Value i = b.globalIndex(kElementwiseThreads);
  b.ifThen(b.ult(i, b.idx(count)), [&] {
    Value at = cacheIndex(b, i, b.arg(4), s);
    for (unsigned which : {0, 1})
      storeCached(b, b.arg(which + 2), at, b.load(b.arg(which), i));
  });
  return kernel;
}

GPUKernel mlir::bitnet::ropeCacheUpdateKernel(gpu::GPUModuleOp module,
                                              const GPUAttentionShape &s,
                                              const RopeSpec &q,
                                              const RopeSpec &k) {
  GPUKernel kernel;
  kernel.name = "bitnet_rope_kv_update_" + attentionSuffix(s) + "_q" +
                ropeName(q) + "_k" + ropeName(k);
  int64_t qPairs = q.tokens * q.heads * (q.dim / 2);
  int64_t kPairs = k.tokens * k.heads * (k.dim / 2);
  int64_t rowElems = s.kvHeads * s.dim, vCount = s.tokens * rowElems;
  int64_t total = qPairs + kPairs + vCount;
  kernel.grid = {elementwiseBlocks(total), 1, 1};
  kernel.block = {kElementwiseThreads, 1, 1};
  int64_t cacheBytes = s.cacheType == "f32" ? 4 : 2;
  kernel.bytes = 8 * 2 * qPairs + 2 * vCount * (4 + cacheBytes);
  kernel.flops = 6 * (qPairs + kPairs);
  MLIRContext *ctx = module.getContext();
  Type f32 = Float32Type::get(ctx);
  Type qType = flatMemRef(q.tokens * q.heads * q.dim, f32);
  Type rowsType = flatMemRef(vCount, f32);
  Type cacheType = cacheMemRef(ctx, s);
  if (!createKernel(module, kernel,
                    {qType, rowsType, rowsType,
                     flatMemRef(q.tokens, elementType(ctx, q.positionType)),
                     flatMemRef(k.tokens, elementType(ctx, k.positionType)),
                     flatMemRef(q.dim / 2, f32), flatMemRef(k.dim / 2, f32),
                     qType, cacheType, cacheType,
                     flatMemRef(1, elementType(ctx, s.positionType))}))
    return kernel;
  GPUKernelBuilder b(kernel.func);
  Value qr = b.arg(7), kc = b.arg(8), vc = b.arg(9), pos = b.arg(10);
  // Threads [0, qPairs) rotate q into %qr, the next kPairs rotate k into the
  // key cache, the next vCount copy v into the value cache.
  Value i = b.globalIndex(kElementwiseThreads);
  b.ifThenElse(
      b.ult(i, b.idx(qPairs)),
      [&] {
        storePair(b, rotatePair(b, i, q, b.arg(0), b.arg(3), b.arg(5)), qr);
      },
      [&] {
        Value j = b.subi(i, b.idx(qPairs));
        b.ifThenElse(
            b.ult(j, b.idx(kPairs)),
            [&] {
              RotatedPair rk =
                  rotatePair(b, j, k, b.arg(1), b.arg(4), b.arg(6));
              storeCached(b, kc, cacheIndex(b, rk.a, pos, s), rk.ya);
              storeCached(b, kc, cacheIndex(b, rk.c, pos, s), rk.yb);
            },
            [&] {
              Value l = b.subi(j, b.idx(kPairs));
              b.ifThen(b.ult(l, b.idx(vCount)), [&] {
                Value v = b.load(b.arg(2), l);
                storeCached(b, vc, cacheIndex(b, l, pos, s), v);
              });
            });
      });
  return kernel;
}

static constexpr int64_t kAttentionThreads = 128;

GPUKernel mlir::bitnet::attentionKernel(gpu::GPUModuleOp module,
                                        const GPUAttentionShape &s) {
  GPUKernel kernel;
  kernel.name = "bitnet_attention_" + attentionSuffix(s);
  int64_t units = s.tokens * s.heads, group = s.heads / s.kvHeads;
  int64_t rowElems = s.kvHeads * s.dim;
  int64_t warps = kAttentionThreads / 32;
  kernel.grid = {units, 1, 1};
  kernel.block = {kAttentionThreads, 1, 1};
  // A full cache read per query head (an upper bound: only visible rows are).
  int64_t cacheBytes = s.cacheType == "f32" ? 4 : 2;
  kernel.bytes = units * (2 * cacheBytes * s.capacity * s.dim + 8 * s.dim);
  kernel.flops = 4 * units * s.capacity * s.dim;
  MLIRContext *ctx = module.getContext();
  Type f32 = Float32Type::get(ctx);
  Type qType = flatMemRef(units * s.dim, f32);
  Type cacheType = cacheMemRef(ctx, s);
  if (!createKernel(module, kernel,
                    {qType, cacheType, cacheType,
                     flatMemRef(1, elementType(ctx, s.positionType)),
                     flatMemRef(units * s.capacity, f32), qType},
                    {workgroupMemRef(s.dim, f32), workgroupMemRef(warps, f32)}))
    return kernel;
  GPUKernelBuilder b(kernel.func);
  Value q = b.arg(0), kc = b.arg(1), vc = b.arg(2), scores = b.arg(4);
  Value qs = b.workgroup(0), red = b.workgroup(1);
  Value tid = b.threadId(), unit = b.blockId();
  Value c32 = b.idx(32), cStep = b.idx(kAttentionThreads);
  Value c0 = b.idx(0), c1 = b.idx(1), cD = b.idx(s.dim);
  Value lane = b.remui(tid, c32);
  Value warp = b.divui(tid, c32);
  Value tok = b.divui(unit, b.idx(s.heads));
  Value head = b.remui(unit, b.idx(s.heads));
  Value kvOff = b.muli(b.divui(head, b.idx(group)), cD);
  Value p = b.clampedPosition(b.arg(3), 0, s.capacity - s.tokens);
  // Rows [0, p + token] are visible.
  Value visible = b.addi(b.addi(p, tok), c1);
  Value qBase = b.muli(unit, cD);
  Value sBase = b.muli(unit, b.idx(s.capacity));
  // The query row, in workgroup memory.
  b.forEach(tid, cD, cStep,
            [&](Value d) { b.store(b.load(q, b.addi(qBase, d)), qs, d); });
  gpu::BarrierOp::create(b);
  // Scores of the visible rows, and their maximum: a warp per row, its
  // lanes over the features (consecutive lanes read consecutive elements of
  // the key row), summed with butterfly shuffles; lane 0 stores the score.
  Value negInf = b.f32(-std::numeric_limits<float>::infinity());
  Value fz = b.f32(0.0f), scale = b.f32(s.scale);
  Value warpStep = b.idx(warps);
  Value localMax =
      b.fold(warp, visible, warpStep, negInf, [&](Value j, Value m) {
        Value row = b.addi(b.muli(j, b.idx(rowElems)), kvOff);
        Value part = b.fold(lane, cD, c32, fz, [&](Value d, Value a) {
          Value qd = b.load(qs, d);
          Value kv = loadCached(b, kc, b.addi(row, d));
          return b.addf(a, b.mulf(qd, kv));
        });
        Value score = b.mulf(b.warpReduce(part, Combine::AddF), scale);
        Value sAt = b.addi(sBase, j);
        b.ifThen(b.eq(lane, c0), [&] { b.store(score, scores, sAt); });
        return b.combine(Combine::MaximumF, m, score);
      });
  Value max =
      b.blockReduce(localMax, Combine::MaximumF, red, warps, lane, warp);
  // exp(score - max) in place, and its sum.
  Value localSum = b.fold(tid, visible, cStep, fz, [&](Value j, Value a) {
    Value sa = b.addi(sBase, j);
    Value e = math::ExpOp::create(b, b.subf(b.load(scores, sa), max));
    b.store(e, scores, sa);
    return b.addf(a, e);
  });
  Value sum = b.blockReduce(localSum, Combine::AddF, red, warps, lane, warp);
  // out[d] = sum_j e_j v[j, d] / sum, one feature per thread.
  b.forEach(tid, cD, cStep, [&](Value d) {
    Value vOff = b.addi(kvOff, d);
    Value acc = b.fold(c0, visible, c1, fz, [&](Value j, Value a) {
      Value e = b.load(scores, b.addi(sBase, j));
      Value vv = loadCached(b, vc, b.addi(b.muli(j, b.idx(rowElems)), vOff));
      return b.addf(a, b.mulf(e, vv));
    });
    Value o = b.divf(acc, sum);
    b.store(o, b.arg(5), b.addi(qBase, d));
  });
  return kernel;
}
