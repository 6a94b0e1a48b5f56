//===- AttentionKernels.cpp - Attention over a KV cache for CPUs -*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// Lowers `bitnet.attention` to a kernel specialised for its shape. The cache
// update stays in tensor IR (an insert_slice, which bufferization does in
// place, so the caches remain state the run updates); the kernel reads the
// updated caches. One unit of work is one token and up to four query heads
// that share a KV head (grouped-query attention), so that each key and
// value row is read and widened once for all of them:
//
//  * the query rows are held in D / lanes vector registers each;
//  * scores of the visible cache rows j <= p + s are vector dot products,
//    scaled, kept in a stack buffer of C floats a head;
//  * softmax as the reference computes it (max, exp(x - max), sum, divide),
//    a vector of scores at a time: exp by range reduction (x = n ln 2 + r)
//    and a polynomial in r (Cephes' expf coefficients, within 2 ulp of
//    libm's), 2^n built in the exponent bits; the probabilities are divided
//    by the sum once, before the weighted sum reads them;
//  * the output row is the weighted sum of value rows, in D / lanes vector
//    accumulators, taken in passes over the row's vectors that keep the
//    heads' accumulators within the registers.
//
// A head's sums are formed in the same order whatever heads share its unit.
//
// Units are spread over the runtime's thread pool. Only rows the query can
// see are read (the reference scores every row of the cache and masks).
//
// `bitnet.batched_attention` takes the same kernel with caches of B slots:
// a unit's token t reads its slot's rows up to its own position (the
// arithmetic of a unit is the same as above, so a sequence's numbers do not
// depend on the step it shares), and a padding token's row is zero. The
// cache update is one insert per token, in tensor IR, skipped for padding.
//
//===----------------------------------------------------------------------===//

#include "KernelLowerings.h"
#include "KernelSupport.h"

#include "bitnet/Conversion/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "llvm/Support/FormatVariadic.h"

#include <limits>

using namespace mlir;
using namespace mlir::bitnet;

/// The most query heads (of one KV head) a unit of work takes together.
static constexpr int64_t kMaxUnitHeads = 4;
/// Units a call keeps at least, for the threads of a many-core machine.
static constexpr int64_t kMinUnits = 16;

/// Query heads a unit takes: 4, 2 or 1 of a KV head's group, as many as
/// leave the call kMinUnits units (a decode step's few heads stay one a
/// unit). On the Zen 4, the 2B model's 128-token prefill step (20 heads, 5
/// KV heads), bitnet-run --profile, two rounds: 3.03 against 2.02 ms a
/// layer on one thread, 1.76 against 1.17 on two, one head a unit against
/// four.
static int64_t headsPerUnit(int64_t tokens, int64_t heads, int64_t kvHeads) {
  int64_t group = heads / std::max<int64_t>(kvHeads, 1);
  for (int64_t u = kMaxUnitHeads; u > 1; u /= 2)
    if (group % u == 0 && tokens * heads / u >= kMinUnits)
      return u;
  return 1;
}

namespace {
class AttentionKernelEmitter : KernelEmitterBase {
public:
  /// `slots` is B for `bitnet.batched_attention`, 0 for `bitnet.attention`.
  AttentionKernelEmitter(ModuleOp module, int64_t tokens, int64_t heads,
                         int64_t kvHeads, int64_t dim, int64_t capacity,
                         float scale, int64_t lanes, Type cacheElem,
                         int64_t slots = 0)
      : KernelEmitterBase(module), tokens(tokens), heads(heads), kvHeads(kvHeads), dim(dim),
        capacity(capacity), slots(slots), scale(scale), lanes(lanes),
        chunks(dim / lanes),
        unitHeads(headsPerUnit(tokens, heads, kvHeads)),
        passChunks(std::max<int64_t>(1, (lanes >= 16 ? 16 : 8) / unitHeads)),
        cacheElem(cacheElem),
        cacheBytes(cacheElem.getIntOrFloatBitWidth() / 8) {
    i32 = b.getI32Type();
    floatsV = VectorType::get({lanes}, f32);
    intsV = VectorType::get({lanes}, i32);
  }

  func::FuncOp getOrCreate(ArrayRef<Type> memrefTypes) {
    std::string wrapperName = baseName() + "_memref";
    if (auto existing = module.lookupSymbol<func::FuncOp>(wrapperName))
      return existing;
    ensureExecCtxGlobal(module);
    LLVM::LLVMFuncOp kernel = createMain(createChunk());
    return createMemRefWrapper(module, wrapperName, memrefTypes, kernel);
  }

private:
  std::string baseName() const {
    if (slots > 0)
      return llvm::formatv("__bitnet_batched_attention_{0}x{1}x{2}x{3}x{4}x{5}_"
                           "{6}",
                           tokens, heads, kvHeads, dim, slots, capacity,
                           cacheBytes == 2 ? "f16" : "f32")
          .str();
    return llvm::formatv("__bitnet_attention_{0}x{1}x{2}x{3}x{4}_{5}", tokens,
                         heads, kvHeads, dim, capacity,
                         cacheBytes == 2 ? "f16" : "f32")
        .str();
  }
  /// {q, kCache, vCache, position, out}, or {q, kCache, vCache, positions,
  /// slots, out} with slots.
  int64_t numArgs() const { return slots > 0 ? 6 : 5; }
  Value cF32(OpBuilder &ob, float v) {
    return arith::ConstantOp::create(ob, loc, ob.getF32FloatAttr(v));
  }
  /// for (i = lo; i < hi; ++i).
  scf::ForOp loop(OpBuilder &ob, Value lo, Value hi, ValueRange init,
                  function_ref<SmallVector<Value>(OpBuilder &, Value,
                                                  ValueRange)>
                      body) {
    return KernelEmitterBase::loop(ob, lo, hi, 1, init, body);
  }

  Value splat(OpBuilder &ob, float v) {
    return arith::ConstantOp::create(
        ob, loc, DenseElementsAttr::get(floatsV, ob.getF32FloatAttr(v)));
  }
  Value splatI32(OpBuilder &ob, int32_t v) {
    return arith::ConstantOp::create(
        ob, loc, DenseElementsAttr::get(intsV, ob.getI32IntegerAttr(v)));
  }
  /// exp(x) of a vector of x <= 0, 0 below kExpUnderflow (where expf
  /// rounds to 0 too).
  Value expVector(OpBuilder &ob, Value x);

  /// Vector `c` of a cache row, as f32.
  Value loadCached(OpBuilder &ob, Value row, int64_t c) {
    Value at = gep(ob, row, cI64(ob, cacheBytes * lanes * c));
    if (cacheBytes == 4)
      return load(ob, floatsV, at);
    Value half = load(ob, VectorType::get({lanes}, cacheElem), at);
    return arith::ExtFOp::create(ob, loc, floatsV, half);
  }

  LLVM::LLVMFuncOp createChunk();
  LLVM::LLVMFuncOp createMain(LLVM::LLVMFuncOp chunk);

  int64_t tokens, heads, kvHeads, dim, capacity, slots;
  float scale;
  int64_t lanes, chunks;
  /// Query heads of one KV head a unit takes; vectors of a value row a pass
  /// of the weighted sum takes.
  int64_t unitHeads, passChunks;
  Type cacheElem;
  int64_t cacheBytes;
  Type i32;
  VectorType floatsV, intsV;
};
} // namespace

/// Below this, exp(x) rounds to 0 in f32.
static constexpr float kExpUnderflow = -0x1.9fe368p6f; // -103.97...

Value AttentionKernelEmitter::expVector(OpBuilder &ob, Value x) {
  auto fma = [&](Value a, Value b, Value c) {
    return vector::FMAOp::create(ob, loc, a, b, c).getResult();
  };
  auto addf = [&](Value a, Value b) {
    return arith::AddFOp::create(ob, loc, a, b).getResult();
  };
  auto mulf = [&](Value a, Value b) {
    return arith::MulFOp::create(ob, loc, a, b).getResult();
  };
  Value low = splat(ob, kExpUnderflow);
  Value xc = arith::MaximumFOp::create(ob, loc, x, low);
  // n = x / ln 2 rounded to nearest even (adding and taking away 1.5 * 2^23
  // rounds a float of magnitude below 2^22); r = x - n ln 2 in two parts.
  Value magic = splat(ob, 0x1.8p23f);
  Value n = arith::SubFOp::create(
      ob, loc, addf(mulf(xc, splat(ob, 0x1.715476p0f)), magic), magic);
  Value r = fma(n, splat(ob, -0.693359375f), xc);
  r = fma(n, splat(ob, 2.12194440e-4f), r);
  // e^r on |r| <= ln 2 / 2: 1 + r + r^2 (c0 + c1 r + ... + c5 r^5).
  Value y = splat(ob, 1.9875691500e-4f);
  for (float c : {1.3981999507e-3f, 8.3334519073e-3f, 4.1665795894e-2f,
                  1.6666665459e-1f, 5.0000001201e-1f})
    y = fma(y, r, splat(ob, c));
  y = addf(fma(y, mulf(r, r), r), splat(ob, 1.0f));
  // times 2^n as 2^(n >> 1) * 2^(n - (n >> 1)): both factors normal for the
  // n down to -150 that x >= kExpUnderflow gives.
  Value ni = arith::FPToSIOp::create(ob, loc, intsV, n);
  Value n1 = arith::ShRSIOp::create(ob, loc, ni, splatI32(ob, 1));
  Value n2 = arith::SubIOp::create(ob, loc, ni, n1);
  auto pow2 = [&](Value k) {
    Value bits = arith::ShLIOp::create(
        ob, loc, arith::AddIOp::create(ob, loc, k, splatI32(ob, 127)),
        splatI32(ob, 23));
    return arith::BitcastOp::create(ob, loc, floatsV, bits).getResult();
  };
  Value e = mulf(mulf(y, pow2(n1)), pow2(n2));
  Value under = arith::CmpFOp::create(ob, loc, arith::CmpFPredicate::OLT, x, low);
  return arith::SelectOp::create(ob, loc, under, splat(ob, 0.0f), e);
}

// void chunk(args, begin, end): units (token, block of unitHeads query heads)
// [begin, end).
// args = {q, kCache, vCache, position, out}, or {q, kCache, vCache,
// positions, slots, out} with slots.
LLVM::LLVMFuncOp AttentionKernelEmitter::createChunk() {
  OpBuilder::InsertionGuard guard(b);
  LLVM::LLVMFuncOp func = beginChunk(baseName() + "_chunk");
  Block *entry = &func.getBody().front();
  Value args = entry->getArgument(0);
  Value begin = entry->getArgument(1), end = entry->getArgument(2);
  Value q = field(b, args, 0), kc = field(b, args, 1), vc = field(b, args, 2),
        posPtr = field(b, args, 3), out = field(b, args, numArgs() - 1);
  Value slotPtr = slots > 0 ? field(b, args, 4) : Value();
  // p = clamp(position, 0, C - S), as the op defines it (per token, into
  // [0, C - 1], with slots).
  auto clamped = [&](OpBuilder &ob, Value at, int64_t hi) {
    Value v = arith::ExtSIOp::create(ob, loc, i64, load(ob, i32, at));
    v = arith::MaxSIOp::create(ob, loc, v, cI64(ob, 0));
    return arith::MinSIOp::create(ob, loc, v, cI64(ob, hi)).getResult();
  };
  Value p = slots > 0 ? Value() : clamped(b, posPtr, capacity - tokens);
  // Room for whole vectors of scores past the last visible row, for each
  // head of a unit.
  int64_t scoreRows = llvm::alignTo(capacity, lanes);
  Value scores = LLVM::AllocaOp::create(
      b, loc, ptr, f32, cI64(b, unitHeads * scoreRows), 64);
  Value zeroV = splat(b, 0.0f);
  int64_t group = heads / kvHeads;
  int64_t rowBytes = cacheBytes * kvHeads * dim; // one cache row
  int64_t headBlocks = heads / unitHeads;

  loop(b, begin, end, {}, [&](OpBuilder &ub, Value unit, ValueRange) {
    // Token s, query heads h0 .. h0 + unitHeads - 1 of KV head g.
    Value s = arith::DivSIOp::create(ub, loc, unit, cI64(ub, headBlocks));
    Value h0 = mul(ub, arith::RemSIOp::create(ub, loc, unit,
                                              cI64(ub, headBlocks)),
                   unitHeads);
    Value g = arith::DivSIOp::create(ub, loc, h0, cI64(ub, group));
    SmallVector<SmallVector<Value>> qv(unitHeads);
    SmallVector<Value> outRow, scoreRow;
    for (int64_t i = 0; i < unitHeads; ++i) {
      Value row = add(ub, add(ub, mul(ub, s, heads), h0), cI64(ub, i));
      Value qRow = gep(ub, q, mul(ub, row, 4 * dim));
      for (int64_t c = 0; c < chunks; ++c)
        qv[i].push_back(
            load(ub, floatsV, gep(ub, qRow, cI64(ub, 4 * lanes * c))));
      outRow.push_back(gep(ub, out, mul(ub, row, 4 * dim)));
      scoreRow.push_back(gep(ub, scores, cI64(ub, 4 * i * scoreRows)));
    }
    Value kBase = gep(ub, kc, mul(ub, g, cacheBytes * dim));
    Value vBase = gep(ub, vc, mul(ub, g, cacheBytes * dim));
    // Visible rows: j in [0, p + s].
    Value visible;
    scf::IfOp ifValid;
    if (slots > 0) {
      // Token s of slot slots[s] sees rows [0, positions[s]] of its slot; a
      // padding token (slot outside [0, B)) gets zero rows.
      Value slot = arith::ExtSIOp::create(
          ub, loc, i64, load(ub, i32, gep(ub, slotPtr, mul(ub, s, 4))));
      Value valid = arith::AndIOp::create(
          ub, loc,
          arith::CmpIOp::create(ub, loc, arith::CmpIPredicate::sge, slot,
                                cI64(ub, 0)),
          arith::CmpIOp::create(ub, loc, arith::CmpIPredicate::slt, slot,
                                cI64(ub, slots)));
      ifValid = scf::IfOp::create(ub, loc, valid, /*else=*/true);
      {
        OpBuilder::InsertionGuard g2(ub);
        ub.setInsertionPointToStart(ifValid.elseBlock());
        for (int64_t i = 0; i < unitHeads; ++i)
          for (int64_t c = 0; c < chunks; ++c)
            store(ub, zeroV, gep(ub, outRow[i], cI64(ub, 4 * lanes * c)));
      }
      ub.setInsertionPointToStart(ifValid.thenBlock());
      Value slotBytes = mul(ub, slot, capacity * rowBytes);
      kBase = gep(ub, kBase, slotBytes);
      vBase = gep(ub, vBase, slotBytes);
      visible = add(ub, clamped(ub, gep(ub, posPtr, mul(ub, s, 4)),
                                capacity - 1),
                    cI64(ub, 1));
    } else {
      visible = add(ub, add(ub, p, s), cI64(ub, 1));
    }
    // Scores: each key row is read (and widened) once for the unit's heads.
    float negInf = -std::numeric_limits<float>::infinity();
    SmallVector<Value> maxInit(unitHeads, cF32(ub, negInf));
    SmallVector<Value> max = llvm::to_vector_of<Value>(
        loop(ub, cI64(ub, 0), visible, maxInit,
             [&](OpBuilder &jb, Value j, ValueRange carried) {
               Value kRow = gep(jb, kBase, mul(jb, j, rowBytes));
               SmallVector<Value> kv;
               for (int64_t c = 0; c < chunks; ++c)
                 kv.push_back(loadCached(jb, kRow, c));
               SmallVector<Value> next;
               for (int64_t i = 0; i < unitHeads; ++i) {
                 Value acc = zeroV;
                 for (int64_t c = 0; c < chunks; ++c)
                   acc = vector::FMAOp::create(jb, loc, qv[i][c], kv[c], acc);
                 Value dot = vector::ReductionOp::create(
                     jb, loc, vector::CombiningKind::ADD, acc, Value(),
                     arith::FastMathFlags::reassoc);
                 Value sc =
                     arith::MulFOp::create(jb, loc, dot, cF32(jb, scale));
                 store(jb, sc, gep(jb, scoreRow[i], mul(jb, j, 4)));
                 next.push_back(
                     arith::MaximumFOp::create(jb, loc, carried[i], sc));
               }
               return next;
             })
            .getResults());
    // exp(score - max) a vector of rows at a time; lanes past the visible
    // rows (stale or unset scores) become 0 and add nothing. Then the
    // probabilities, exp / sum (a division each, as the reference).
    Value wholeRows = mul(ub, arith::DivSIOp::create(
                                  ub, loc, add(ub, visible, cI64(ub, lanes - 1)),
                                  cI64(ub, lanes)),
                          lanes);
    SmallVector<int32_t> laneIds(lanes);
    for (int64_t l = 0; l < lanes; ++l)
      laneIds[l] = static_cast<int32_t>(l);
    Value iota = arith::ConstantOp::create(
        ub, loc, DenseElementsAttr::get(intsV, ArrayRef(laneIds)));
    Value visibleV = vector::BroadcastOp::create(
        ub, loc, intsV, arith::TruncIOp::create(ub, loc, i32, visible));
    for (int64_t i = 0; i < unitHeads; ++i) {
      Value maxV = vector::BroadcastOp::create(ub, loc, floatsV, max[i]);
      Value sumV =
          KernelEmitterBase::loop(
              ub, cI64(ub, 0), wholeRows, lanes, {zeroV},
              [&](OpBuilder &jb, Value j, ValueRange carried) {
                Value at = gep(jb, scoreRow[i], mul(jb, j, 4));
                Value x = arith::SubFOp::create(
                    jb, loc, load(jb, floatsV, at), maxV);
                Value row = arith::AddIOp::create(
                    jb, loc, iota,
                    vector::BroadcastOp::create(
                        jb, loc, intsV,
                        arith::TruncIOp::create(jb, loc, i32, j)));
                Value inside = arith::CmpIOp::create(
                    jb, loc, arith::CmpIPredicate::slt, row, visibleV);
                Value e = arith::SelectOp::create(jb, loc, inside,
                                                  expVector(jb, x), zeroV);
                store(jb, e, at);
                return SmallVector<Value>{
                    arith::AddFOp::create(jb, loc, carried[0], e)};
              })
              .getResult(0);
      Value sum = vector::ReductionOp::create(
          ub, loc, vector::CombiningKind::ADD, sumV, Value(),
          arith::FastMathFlags::reassoc);
      Value sumSplat = vector::BroadcastOp::create(ub, loc, floatsV, sum);
      KernelEmitterBase::loop(
          ub, cI64(ub, 0), wholeRows, lanes, {},
          [&](OpBuilder &jb, Value j, ValueRange) {
            Value at = gep(jb, scoreRow[i], mul(jb, j, 4));
            store(jb,
                  arith::DivFOp::create(jb, loc, load(jb, floatsV, at),
                                        sumSplat),
                  at);
            return SmallVector<Value>{};
          });
    }
    // The weighted sum of value rows, each row read (and widened) once for
    // the unit's heads, in passes over the vectors of a row that keep the
    // accumulators (heads x vectors of a pass) within the registers.
    for (int64_t c0 = 0; c0 < chunks; c0 += passChunks) {
      int64_t count = std::min(passChunks, chunks - c0);
      SmallVector<Value> zeros(unitHeads * count, zeroV);
      scf::ForOp acc = loop(
          ub, cI64(ub, 0), visible, zeros,
          [&](OpBuilder &jb, Value j, ValueRange carried) {
            SmallVector<Value> wv;
            for (int64_t i = 0; i < unitHeads; ++i)
              wv.push_back(vector::BroadcastOp::create(
                  jb, loc, floatsV,
                  load(jb, f32, gep(jb, scoreRow[i], mul(jb, j, 4)))));
            Value vRow = gep(jb, vBase, mul(jb, j, rowBytes));
            SmallVector<Value> next(carried.begin(), carried.end());
            for (int64_t c = 0; c < count; ++c) {
              Value vv = loadCached(jb, vRow, c0 + c);
              for (int64_t i = 0; i < unitHeads; ++i)
                next[i * count + c] = vector::FMAOp::create(
                    jb, loc, wv[i], vv, next[i * count + c]);
            }
            return next;
          });
      for (int64_t i = 0; i < unitHeads; ++i)
        for (int64_t c = 0; c < count; ++c)
          store(ub, acc.getResult(i * count + c),
                gep(ub, outRow[i], cI64(ub, 4 * lanes * (c0 + c))));
    }
    if (ifValid) // the loop's yield goes after the if
      ub.setInsertionPointAfter(ifValid);
    return SmallVector<Value>{};
  });
  LLVM::ReturnOp::create(b, loc, ValueRange{});
  return func;
}

LLVM::LLVMFuncOp AttentionKernelEmitter::createMain(LLVM::LLVMFuncOp chunk) {
  OpBuilder::InsertionGuard guard(b);
  LLVM::LLVMFuncOp func = beginKernel(baseName(), numArgs());
  Block *entry = &func.getBody().front();
  Value args = LLVM::AllocaOp::create(b, loc, ptr, ptr, cI64(b, numArgs()), 8);
  for (int64_t i = 0; i < numArgs(); ++i)
    store(b, entry->getArgument(i), gep(b, args, cI64(b, 8 * i)));
  ExecCtxCalls calls(b, loc);
  Value name = LLVM::AddressOfOp::create(
      b, loc,
      getOrCreateKernelName(module, baseName() + "_name",
                            slots > 0
                                ? llvm::formatv("batched attention "
                                                "{0}x{1}x{2}x{3} B={4} C={5}",
                                                tokens, heads, kvHeads, dim,
                                                slots, capacity)
                                      .str()
                                : llvm::formatv("attention {0}x{1}x{2}x{3} "
                                                "C={4}",
                                                tokens, heads, kvHeads, dim,
                                                capacity)
                                      .str()));
  // Bytes and flops of a full cache (an upper bound: only visible rows are
  // read).
  int64_t units = tokens * heads;
  int64_t cacheRows = capacity * std::max<int64_t>(slots, 1);
  calls.kernelBegin(name,
                    2 * cacheBytes * cacheRows * kvHeads * dim + 8 * units * dim,
                    4 * units * capacity * dim);
  calls.dispatch(chunk, args, units / unitHeads,
                 /*spread=*/units * capacity * dim >= (1 << 15));
  calls.kernelEnd(name);
  LLVM::ReturnOp::create(b, loc, ValueRange{});
  return func;
}

/// Replaces `op` (`bitnet.attention` or `bitnet.batched_attention`: the
/// query first; results out, k cache, v cache) by a call to the emitter's
/// kernel on the query, the updated caches `kNew` and `vNew`, then
/// `positions` (and slots), and a new output buffer.
static void callAttentionKernel(OpBuilder &b, Location loc,
                                AttentionKernelEmitter &emitter, Operation *op,
                                Value kNew, Value vNew, ValueRange positions,
                                int64_t lanes) {
  Value query = op->getOperand(0);
  auto qType = cast<RankedTensorType>(query.getType());
  auto toBuffer = [&](Value tensor) { return toReadOnlyBuffer(b, loc, tensor); };
  SmallVector<Value> operands{toBuffer(query), toBuffer(kNew), toBuffer(vNew)};
  for (Value v : positions)
    operands.push_back(toBuffer(v));
  operands.push_back(memref::AllocOp::create(
      b, loc, MemRefType::get(qType.getShape(), b.getF32Type()),
      b.getI64IntegerAttr(64)));
  SmallVector<Type> types;
  for (Value v : operands)
    types.push_back(v.getType());
  auto call = func::CallOp::create(b, loc, emitter.getOrCreate(types), operands);
  call->setAttr("bitnet.kernel",
                b.getDictionaryAttr(
                    {b.getNamedAttr("family", b.getStringAttr("attention")),
                     b.getNamedAttr("lanes", b.getI64IntegerAttr(lanes))}));
  Value out = bufferization::ToTensorOp::create(b, loc, qType, operands.back(),
                                                b.getUnitAttr(), b.getUnitAttr());
  op->getResult(0).replaceAllUsesWith(out);
  op->getResult(1).replaceAllUsesWith(kNew);
  op->getResult(2).replaceAllUsesWith(vNew);
  op->erase();
}

bool mlir::bitnet::lowerAttentionToKernel(ModuleOp module, AttentionOp op,
                                          int64_t lanes) {
  RankedTensorType qType = op.getQuery().getType();
  RankedTensorType cType = op.getKCache().getType();
  if (!qType.hasStaticShape() || !cType.hasStaticShape() ||
      !op.getKey().getType().hasStaticShape() ||
      !op.getPosition().getType().getElementType().isInteger(32))
    return false;
  int64_t tokens = qType.getDimSize(0), heads = qType.getDimSize(1),
          dim = qType.getDimSize(2);
  int64_t capacity = cType.getDimSize(0), kvHeads = cType.getDimSize(1);
  if (dim % lanes != 0 || tokens == 0 || tokens > capacity)
    return false; // the reference lowering handles these
  Type cacheElem = cType.getElementType();
  AttentionKernelEmitter emitter(module, tokens, heads, kvHeads, dim, capacity,
                                 op.getEffectiveScale(), lanes, cacheElem);

  OpBuilder b(op);
  Location loc = op.getLoc();
  // The cache update stays in tensor IR; the kernel reads the result.
  AttentionCacheUpdate update = buildAttentionCacheUpdate(
      b, loc, op.getKey(), op.getValue(), op.getKCache(), op.getVCache(),
      op.getPosition());
  Value kNew = update.kCache, vNew = update.vCache;

  callAttentionKernel(b, loc, emitter, op, kNew, vNew, {op.getPosition()},
                      lanes);
  return true;
}

bool mlir::bitnet::lowerBatchedAttentionToKernel(ModuleOp module,
                                                 BatchedAttentionOp op,
                                                 int64_t lanes) {
  RankedTensorType qType = op.getQuery().getType();
  RankedTensorType cType = op.getKCache().getType();
  int64_t tokens = qType.getDimSize(0), heads = qType.getDimSize(1),
          dim = qType.getDimSize(2);
  int64_t slots = cType.getDimSize(0), capacity = cType.getDimSize(1),
          kvHeads = cType.getDimSize(2);
  if (dim % lanes != 0 || tokens == 0)
    return false; // the reference lowering handles these
  AttentionKernelEmitter emitter(module, tokens, heads, kvHeads, dim, capacity,
                                 op.getEffectiveScale(), lanes,
                                 cType.getElementType(), slots);
  OpBuilder b(op);
  Location loc = op.getLoc();
  auto [kNew, vNew] = buildBatchedAttentionCacheUpdate(
      b, loc, op.getKey(), op.getValue(), op.getKCache(), op.getVCache(),
      op.getPositions(), op.getSlots());
  callAttentionKernel(b, loc, emitter, op, kNew, vNew,
                      {op.getPositions(), op.getSlots()}, lanes);
  return true;
}
