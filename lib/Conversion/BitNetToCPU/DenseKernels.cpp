//===- DenseKernels.cpp - Float GEMV/GEMM kernels for dense layers -*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// Lowers `bitnet.dense_matmul` with a constant weight (a decoder's head) to a
// kernel specialised for its shape and weight type:
//
//  * the weight is f32, f16, bf16 or i8; rows are taken a block at a time
//    (eight with 16-lane vectors and 32 registers, four otherwise), so that
//    one pass over K streams the block's rows and every token of the call
//    reuses them from the cache (decode: one token; prefill and batched
//    decode: many);
//  * where whole blocks cover the weight and nothing but dense kernels of
//    one block shape and embeddings read it, it is stored blocked
//    (blockDenseWeight): a block's rows interleaved one step's columns at a
//    time, so that the block is one run of memory, read in order, not as
//    many streams as it has rows. On an AMD EPYC Zen 4 the 2B model's
//    128256 x 2560 f16 head streamed 21.7 GB/s against 17.1 [N, K], one
//    thread, in the same minute (bitnet-run --profile); a tied embedding
//    reads the same copy (`bitnet.embedding`'s `blocked`). Otherwise the
//    weight stays [N, K];
//  * with several tokens, a block is taken in tiles of two tokens and half
//    its rows (the same number of accumulators), so that each weight vector
//    is loaded and widened once for both tokens (kTileTokens), and the next
//    block is prefetched into L2 while this one is read again from L1;
//  * along K, two vectors of `lanes` activations meet two vectors of each
//    row (f16 widened to f32, i8 converted), in two accumulators a row, so
//    that enough independent loads, conversions and FMAs are in flight to
//    keep up with memory; the accumulators are reduced at the end; a K that
//    is not a multiple of two vectors takes one vector at a time, then
//    element by element; an i8 row's sum is then scaled by the row's scale;
//  * one token: each row is prefetched a little ahead (1 KiB; 256 bytes on a
//    Zen 4), once per 64-byte line. On an AMD EPYC (Zen 5), a 65536 x 2560
//    f16 head streamed 24 and 44 GB/s (1 and 2 threads) with blocks of four
//    rows, one vector a step and a prefetch per vector, 28 and 51 GB/s so
//    (three alternating rounds of bitnet-run --profile; the read probe gives
//    about 30 and 55); the block's shape is the CPU's (blockShape);
//  * a bf16 weight is widened to f32 (its bits moved to the top half), as an
//    f16 one is converted. `vdpbf16ps` (AVX512-BF16) was tried and left out:
//    it rounds x to bf16, so x must be split into three bf16 parts (one dot
//    product each) for the products to stay exact. On an AMD EPYC (Zen 4),
//    bitnet-run, three alternating rounds: 8 x 4096 x 2560 (in cache) took
//    1.2x the time of the widened kernel, which took that of f16; a
//    65536 x 2560 head streamed at the same pace all three ways (1 and 2
//    threads). Two parts (each product within 2^-17) were 1.07-1.13x faster
//    than f16 for 8 tokens, and equal for one;
//  * blocks of rows are spread over the runtime's thread pool.
//
// The sum is in another order than the reference's (the float tolerance of
// the numerics contract).
//
//===----------------------------------------------------------------------===//

#include "KernelLowerings.h"
#include "KernelSupport.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "llvm/Support/FormatVariadic.h"

#include <cstring>

using namespace mlir;
using namespace mlir::bitnet;

/// The block shape where none was measured for the layer (bitnet-compile
/// --tune times candidates on the machine), for a weight stored [N, K] or
/// blocked (blockDenseWeight). With 16-lane vectors (AVX-512, 32
/// registers) 8 rows x 2 and 1 KiB, otherwise 4 x 2 (16 registers). For i8
/// rows 4 x 4 (a whole line of each row a step) was slower than 8 x 2: 16.7
/// against 19.9 GB/s, one thread, where widening i8 to f32, not memory, sets
/// the pace.
///
/// The best shape depends on the core's memory system, so it is chosen by
/// the CPU the code is for (the target's chip), where it was measured: on an
/// AMD EPYC Zen 4 (znver4, 2 cores), a 65536 x 2560 f16 head stored [N, K]
/// streamed 12.8 and 23 GB/s (1 and 2 threads, medians of three alternating
/// rounds of bitnet-run, read probe 23.5 and 30.6) with 8 x 2 and 1 KiB
/// ahead, 15.6 and 23 with 8 x 2 and 256 bytes, 19.1 and 27 with 16 rows x 1
/// vector and 256 bytes: more rows in flight, fetched just ahead, keep its
/// memory busy. --tune's seven candidates of then on the Zen 4 (nine
/// tunings of the 2B model's head) kept 16 x 1 and 256 bytes each time, the
/// next best 3-19% slower.
///
/// Blocked, a block is one stream, which the core's own prefetchers follow.
/// On the Zen 4, the 2B model's 128256 x 2560 head blocked 16 x 2 (a line of
/// each row a step) and nothing fetched ahead made decode 1.16x and 1.09x
/// as fast (1 and 2 threads) as [N, K] rows 16 x 1 and 256 bytes ahead, and
/// 1.07x and 1.01x as fast as blocked 16 x 1 with 256 bytes ahead (five and
/// six alternating rounds of bitnet-run). On a Zen 5, 8 x 2 and 1 KiB
/// measured best of the shapes tried there, [N, K] (above); other CPUs keep
/// it, blocked too, until measured.
///
/// An i8 weight (widened to f32) takes one more instruction a vector, and
/// with 16 x 2 its 32 accumulators left the widened vectors no registers:
/// the loop spilled. On the Zen 4 the 2B model's blocked i8 head streamed
/// 24.2-25.3 GB/s with 16 x 1 against 20.0-22.3 with 16 x 2 (three
/// alternating profiled steps, one thread), and decode ran 1.06x and 1.02x
/// as fast on one thread, 1.04x on two (five alternating rounds each).
///
/// A W8A8 kernel takes rows x vectors rows a block, one vector each. On the
/// Zen 4 its int8 head blocked 16 rows, nothing ahead, made decode 1.22x
/// and 1.09x as fast as [N, K] 16 rows and 256 bytes ahead; blocked 32 rows
/// only 1.03x and 1.07x (five alternating rounds).
static DenseBlockShape blockShape(int64_t lanes, StringRef chip, bool blocked,
                                  bool w8a8, bool int8) {
  if (lanes < 16)
    return {4, 2, 1024};
  if (chip == "znver4")
    return !blocked       ? DenseBlockShape{16, 1, 256}
           : w8a8 || int8 ? DenseBlockShape{16, 1, 0}
                          : DenseBlockShape{16, 2, 0};
  return {8, 2, 1024};
}

StringRef mlir::bitnet::targetChip(ModuleOp module) {
  auto target = module->getAttrOfType<TargetAttr>(kTargetAttrName);
  return target ? target.getChip() : StringRef();
}

/// Tokens a tile takes at once. An 8 x 4096 x 2560 f16 product, one thread,
/// AMD EPYC (Zen 5), two rounds of bitnet-run --profile: 3.66 and 3.89 ms a
/// token at a time, 2.80 and 2.94 ms two at a time, 3.21 and 3.02 four, 3.88
/// and 3.68 eight; with the next block fetched into L2 meanwhile (below),
/// 1.93 and 1.97 ms two at a time, 3.07 and 3.24 four (whose activations
/// crowd the block out of L1).
static constexpr int64_t kTileTokens = 2;
/// With several tokens, the next block is fetched into L2 (locality 2), not
/// L1, where the block being read again and its tokens' activations stay.
static constexpr int64_t kNextBlockLocality = 2;

namespace {
class DenseKernelEmitter : KernelEmitterBase {
public:
  DenseKernelEmitter(ModuleOp module, int64_t m, int64_t n, int64_t k,
                     Type weightElem, int64_t lanes, DenseBlockShape shape,
                     bool blocked)
      : KernelEmitterBase(module), m(m), n(n), k(k), lanes(lanes), weightElem(weightElem),
        blocked(blocked), weightBytes(weightElem.getIntOrFloatBitWidth() / 8),
        blockRows(shape.rows), vectorsPerStep(shape.vectors),
        prefetchBytes(shape.prefetch),
        tileTokens(std::min<int64_t>(m, kTileTokens)),
        blocks(llvm::divideCeil(n, blockRows)),
        kStep(k / (vectorsPerStep * lanes) * vectorsPerStep * lanes),
        kVec(k / lanes * lanes) {
    floatsV = VectorType::get({lanes}, f32);
    weightsV = VectorType::get({lanes}, weightElem);
    // As many accumulators as one token's block (rows x vectors): fewer rows
    // a tile with more tokens.
    tileRows = 1;
    while (tileRows * 2 <= blockRows &&
           tileRows * 2 * tileTokens * vectorsPerStep <=
               blockRows * vectorsPerStep)
      tileRows *= 2;
  }

  /// `scalesType` is null unless the weight is i8.
  func::FuncOp getOrCreate(MemRefType xType, MemRefType wType,
                           MemRefType yType, MemRefType scalesType) {
    std::string wrapperName = baseName() + "_memref";
    if (auto existing = module.lookupSymbol<func::FuncOp>(wrapperName))
      return existing;
    ensureExecCtxGlobal(module);
    LLVM::LLVMFuncOp kernel = createMain(createChunk());
    SmallVector<Type> types{xType, wType, yType};
    if (quantized())
      types.push_back(scalesType);
    return createMemRefWrapper(module, wrapperName, types, kernel);
  }

private:
  bool quantized() const { return weightElem.isInteger(8); }
  int64_t numArgs() const { return quantized() ? 4 : 3; }
  std::string typeName() const {
    if (quantized())
      return "i8";
    if (weightElem.isBF16())
      return "bf16";
    return weightBytes == 2 ? "f16" : "f32";
  }
  std::string baseName() const {
    return llvm::formatv("__bitnet_dense_{0}_{1}x{2}x{3}{4}", typeName(), m, n,
                         k,
                         blocked ? llvm::formatv("_blocked{0}x{1}", blockRows,
                                                 vectorsPerStep * lanes)
                                       .str()
                                 : "")
        .str();
  }
  Value widen(OpBuilder &ob, Value v, Type to) {
    if (quantized())
      return arith::SIToFPOp::create(ob, loc, to, v);
    // bf16: its bits are the top half of the f32. Not arith.extf: LLVM 22's
    // x86 backend turns a vector bf16 extension on AVX-512 without
    // AVX512-BF16 into calls to a library's conversion the model lacks.
    if (weightElem.isBF16()) {
      auto like = [&](Type element) -> Type {
        if (auto vec = dyn_cast<VectorType>(v.getType()))
          return vec.clone(element);
        return element;
      };
      Value bits = arith::BitcastOp::create(ob, loc, like(ob.getI16Type()), v);
      Value wide = arith::ExtUIOp::create(ob, loc, like(ob.getI32Type()), bits);
      TypedAttr shift = ob.getI32IntegerAttr(16);
      if (auto vec = dyn_cast<VectorType>(wide.getType()))
        shift = DenseElementsAttr::get(vec, shift);
      Value sixteen = arith::ConstantOp::create(ob, loc, shift);
      return arith::BitcastOp::create(
          ob, loc, to, arith::ShLIOp::create(ob, loc, wide, sixteen));
    }
    return weightBytes == 4 ? v : arith::ExtFOp::create(ob, loc, to, v);
  }

  LLVM::LLVMFuncOp createChunk();
  LLVM::LLVMFuncOp createMain(LLVM::LLVMFuncOp chunk);

  int64_t m, n, k, lanes;
  Type weightElem;
  /// The weight is stored in blocks of blockRows rows by one step's columns
  /// (blockDenseWeight), which divide N and K.
  bool blocked;
  int64_t weightBytes, blockRows, vectorsPerStep, prefetchBytes;
  /// Tokens and rows of a tile (one token and the whole block alone; with
  /// more tokens, kTileTokens of them and fewer rows).
  int64_t tileTokens, tileRows = 1;
  int64_t blocks;
  /// K covered by whole steps of vectorsPerStep vectors, by whole vectors.
  int64_t kStep, kVec;
  VectorType floatsV, weightsV;
};
} // namespace

// void chunk(args, begin, end): blocks of four rows [begin, end) for every
// token. args = {x, w, y} and, for i8 weights, the row scales.
LLVM::LLVMFuncOp DenseKernelEmitter::createChunk() {
  OpBuilder::InsertionGuard guard(b);
  LLVM::LLVMFuncOp func = beginChunk(baseName() + "_chunk");
  Block *entry = &func.getBody().front();
  Value args = entry->getArgument(0);
  Value begin = entry->getArgument(1), end = entry->getArgument(2);
  Value x = field(b, args, 0), w = field(b, args, 1), y = field(b, args, 2);
  Value scales = quantized() ? field(b, args, 3) : Value();
  Value zeroV = arith::ConstantOp::create(
      b, loc, DenseElementsAttr::get(floatsV, b.getF32FloatAttr(0.0f)));
  Value lastRow = cI64(b, n - 1);

  loop(b, begin, end, 1, {}, [&](OpBuilder &bb, Value blk, ValueRange) {
    // The block's rows, clamped to the last row past N (their sums are
    // computed and dropped).
    SmallVector<Value> rows, rowBase, rowScale, nextBase;
    // Blocked, a block is one run of memory, its rows interleaved a step's
    // columns at a time: a row starts a step's bytes after the one before.
    int64_t blockBytes = blockRows * k * weightBytes;
    int64_t stepBytes = vectorsPerStep * lanes * weightBytes;
    Value nextBlk =
        blocked && m > 1
            ? arith::MinSIOp::create(bb, loc, add(bb, blk, cI64(bb, 1)),
                                     cI64(bb, blocks - 1))
                  .getResult()
            : Value();
    for (int64_t r = 0; r < blockRows; ++r) {
      Value row = add(bb, mul(bb, blk, blockRows), cI64(bb, r));
      rows.push_back(row);
      Value clamped = arith::MinSIOp::create(bb, loc, row, lastRow);
      rowBase.push_back(
          blocked ? gep(bb, w,
                        add(bb, mul(bb, blk, blockBytes), cI64(bb, r * stepBytes)))
                  : gep(bb, w, mul(bb, clamped, k * weightBytes)));
      // Several tokens: the block is read in several passes, the first from
      // memory; the next block's same row is fetched meanwhile.
      if (m > 1)
        nextBase.push_back(
            blocked
                ? gep(bb, w,
                      add(bb, mul(bb, nextBlk, blockBytes),
                          cI64(bb, r * stepBytes)))
                : gep(bb, w,
                      mul(bb,
                          arith::MinSIOp::create(
                              bb, loc, add(bb, row, cI64(bb, blockRows)),
                              lastRow),
                          k * weightBytes)));
      if (quantized())
        rowScale.push_back(load(bb, f32, gep(bb, scales, mul(bb, clamped, 4))));
    }
    // Tiles of `tileRows` rows of the block by `tileTokens` tokens: each
    // weight vector is loaded and widened once for the tile's tokens. A
    // token's sum is formed in the same order whatever the tile (the same
    // accumulators, steps and reduction as one token alone), so the logits
    // of a token do not depend on the others of the call.
    auto tile = [&](OpBuilder &tb, Value tok0, int64_t count, int64_t row0) {
      SmallVector<Value> xRow;
      for (int64_t t = 0; t < count; ++t)
        xRow.push_back(
            gep(tb, x, mul(tb, add(tb, tok0, cI64(tb, t)), 4 * k)));
      auto slotOf = [&](int64_t r, int64_t t, int64_t v) {
        return (r * count + t) * vectorsPerStep + v;
      };
      SmallVector<Value> zeros(tileRows * count * vectorsPerStep, zeroV);
      // `vectors` vectors of every row from column `kk` on, into each
      // (row, token)'s first `vectors` accumulators.
      auto step = [&](OpBuilder &kb, Value kk, int64_t vectors,
                      ValueRange carried) {
        SmallVector<Value> next(carried.begin(), carried.end());
        SmallVector<SmallVector<Value>> xv(count);
        for (int64_t t = 0; t < count; ++t)
          for (int64_t v = 0; v < vectors; ++v)
            xv[t].push_back(load(
                kb, floatsV,
                gep(kb, xRow[t], mul(kb, add(kb, kk, cI64(kb, v * lanes)), 4))));
        // Column kk of a row: blocked, a step's columns of every row of the
        // block come before the next step's.
        Value kkBytes = mul(kb, kk, blocked ? blockRows * weightBytes
                                            : weightBytes);
        // Blocked, a token alone reads the block in one stream: its lines
        // `prefetchBytes` ahead, if any.
        if (blocked && m == 1 && prefetchBytes > 0)
          prefetchLines(kb, gep(kb, rowBase[0], kkBytes), prefetchBytes,
                        blockRows * vectors * lanes * weightBytes);
        for (int64_t r = 0; r < tileRows; ++r) {
          Value at = gep(kb, rowBase[row0 + r], kkBytes);
          // The rows stream from memory: ask for each line once, early (with
          // several tokens, the next block's row at the same column).
          if (m > 1)
            prefetchLines(kb, gep(kb, nextBase[row0 + r], kkBytes), 0,
                          vectors * lanes * weightBytes, kNextBlockLocality);
          else if (!blocked)
            prefetchLines(kb, at, prefetchBytes, vectors * lanes * weightBytes);
          for (int64_t v = 0; v < vectors; ++v) {
            Value wv = widen(
                kb, load(kb, weightsV,
                         gep(kb, at, cI64(kb, v * lanes * weightBytes))),
                floatsV);
            for (int64_t t = 0; t < count; ++t) {
              int64_t slot = slotOf(r, t, v);
              next[slot] =
                  vector::FMAOp::create(kb, loc, xv[t][v], wv, next[slot]);
            }
          }
        }
        return next;
      };
      SmallVector<Value> acc = llvm::to_vector_of<Value>(
          loop(tb, cI64(tb, 0), cI64(tb, kStep), vectorsPerStep * lanes, zeros,
               [&](OpBuilder &kb, Value kk, ValueRange carried) {
                 return step(kb, kk, vectorsPerStep, carried);
               })
              .getResults());
      // Whole vectors past the last step.
      if (kStep < kVec)
        acc = llvm::to_vector_of<Value>(
            loop(tb, cI64(tb, kStep), cI64(tb, kVec), lanes, acc,
                 [&](OpBuilder &kb, Value kk, ValueRange carried) {
                   return step(kb, kk, 1, carried);
                 })
                .getResults());
      for (int64_t r = 0; r < tileRows; ++r) {
        for (int64_t t = 0; t < count; ++t) {
          Value rowAcc = acc[slotOf(r, t, 0)];
          for (int64_t v = 1; v < vectorsPerStep; ++v)
            rowAcc = arith::AddFOp::create(tb, loc, rowAcc, acc[slotOf(r, t, v)]);
          Value sum = vector::ReductionOp::create(
              tb, loc, vector::CombiningKind::ADD, rowAcc, Value(),
              arith::FastMathFlags::reassoc);
          // The K tail, element by element.
          if (kVec < k)
            sum = loop(tb, cI64(tb, kVec), cI64(tb, k), 1, {sum},
                       [&](OpBuilder &kb, Value kk, ValueRange carried) {
                         Value xe =
                             load(kb, f32, gep(kb, xRow[t], mul(kb, kk, 4)));
                         Value we = widen(
                             kb,
                             load(kb, weightElem,
                                  gep(kb, rowBase[row0 + r],
                                      mul(kb, kk, weightBytes))),
                             f32);
                         Value p = arith::MulFOp::create(kb, loc, xe, we);
                         return SmallVector<Value>{
                             arith::AddFOp::create(kb, loc, carried[0], p)};
                       })
                      .getResult(0);
          if (quantized())
            sum = arith::MulFOp::create(tb, loc, sum, rowScale[row0 + r]);
          Value inside =
              arith::CmpIOp::create(tb, loc, arith::CmpIPredicate::slt,
                                    rows[row0 + r], cI64(tb, n));
          auto ifInside = scf::IfOp::create(tb, loc, inside, false);
          OpBuilder::InsertionGuard g(tb);
          tb.setInsertionPointToStart(ifInside.thenBlock());
          Value tok = add(tb, tok0, cI64(tb, t));
          Value out =
              gep(tb, y, mul(tb, add(tb, mul(tb, tok, n), rows[row0 + r]), 4));
          store(tb, sum, out);
        }
      }
    };
    int64_t whole = m / tileTokens * tileTokens;
    for (int64_t row0 = 0; row0 < blockRows; row0 += tileRows) {
      if (whole > 0)
        loop(bb, cI64(bb, 0), cI64(bb, whole), tileTokens, {},
             [&](OpBuilder &tb, Value tok0, ValueRange) {
               tile(tb, tok0, tileTokens, row0);
               return SmallVector<Value>{};
             });
      if (whole < m)
        tile(bb, cI64(bb, whole), m - whole, row0);
    }
    return SmallVector<Value>{};
  });
  LLVM::ReturnOp::create(b, loc, ValueRange{});
  return func;
}

LLVM::LLVMFuncOp DenseKernelEmitter::createMain(LLVM::LLVMFuncOp chunk) {
  OpBuilder::InsertionGuard guard(b);
  LLVM::LLVMFuncOp func = beginKernel(baseName(), numArgs());
  Block *entry = &func.getBody().front();
  Value args = LLVM::AllocaOp::create(b, loc, ptr, ptr, cI64(b, numArgs()), 8);
  for (int64_t i = 0; i < numArgs(); ++i)
    store(b, entry->getArgument(i), gep(b, args, cI64(b, 8 * i)));
  ExecCtxCalls calls(b, loc);
  Value name = LLVM::AddressOfOp::create(
      b, loc,
      getOrCreateKernelName(
          module, baseName() + "_name",
          llvm::formatv("dense_matmul {0} {1}x{2}x{3}", typeName(), m, n, k)
              .str()));
  calls.kernelBegin(name,
                    n * k * weightBytes + 4 * m * k + 4 * m * n +
                        (quantized() ? 4 * n : 0),
                    2 * m * n * k);
  // Spread over threads unless the whole product is small.
  calls.dispatch(chunk, args, blocks, /*spread=*/m * n * k >= (1 << 16));
  calls.kernelEnd(name);
  LLVM::ReturnOp::create(b, loc, ValueRange{});
  return func;
}

DenseBlockShape mlir::bitnet::defaultDenseBlockShape(ModuleOp module,
                                                     DenseMatmulOp op,
                                                     int64_t lanes,
                                                     bool blocked) {
  return blockShape(
      lanes, targetChip(module), blocked, op.getQuantizeInput(),
      op.getWeight().getType().getElementType().isInteger(8));
}

bool mlir::bitnet::denseBlocksCover(DenseMatmulOp op, int64_t rows,
                                    int64_t columns) {
  RankedTensorType wType = op.getWeight().getType();
  return wType.hasStaticShape() && op.getInput().getType().hasStaticShape() &&
         op.getType().hasStaticShape() && wType.getDimSize(0) > 0 &&
         wType.getDimSize(0) % rows == 0 && wType.getDimSize(1) > 0 &&
         wType.getDimSize(1) % columns == 0;
}

bool mlir::bitnet::denseWeightBlocks(DenseMatmulOp op, int64_t lanes,
                                     DenseBlockShape shape) {
  return !op.getQuantizeInput() &&
         denseBlocksCover(op, shape.rows, shape.vectors * lanes);
}

Value mlir::bitnet::blockDenseWeight(arith::ConstantOp weight, int64_t rows,
                                     int64_t columns) {
  auto attr = dyn_cast<DenseElementsAttr>(weight.getValue());
  auto type = cast<RankedTensorType>(weight.getType());
  if (!attr || attr.isSplat())
    return {};
  int64_t n = type.getDimSize(0), k = type.getDimSize(1);
  int64_t elemBytes = type.getElementType().getIntOrFloatBitWidth() / 8;
  int64_t runBytes = columns * elemBytes, chunks = k / columns;
  ArrayRef<char> raw = attr.getRawData();
  std::vector<char> out(raw.size());
  // [b, c, r, j] = [b * rows + r, c * columns + j]: a row's run of one
  // chunk at a time, the block's rows one after another.
  char *dst = out.data();
  for (int64_t blk = 0; blk < n / rows; ++blk)
    for (int64_t c = 0; c < chunks; ++c)
      for (int64_t r = 0; r < rows; ++r, dst += runBytes)
        std::memcpy(dst,
                    raw.data() + ((blk * rows + r) * k + c * columns) * elemBytes,
                    runBytes);
  auto blockedType = RankedTensorType::get({n / rows, chunks, rows, columns},
                                           type.getElementType());
  OpBuilder b(weight);
  return arith::ConstantOp::create(
      b, weight.getLoc(),
      DenseElementsAttr::getFromRawBuffer(blockedType, out));
}

bool mlir::bitnet::lowerDenseMatmulToKernel(ModuleOp module, DenseMatmulOp op,
                                            int64_t lanes,
                                            DenseBlockShape shape,
                                            ArrayRef<NamedAttribute> extra,
                                            Value blockedWeight) {
  RankedTensorType xType = op.getInput().getType();
  RankedTensorType wType = op.getWeight().getType();
  RankedTensorType yType = op.getType();
  if (!xType.hasStaticShape() || !wType.hasStaticShape() ||
      !yType.hasStaticShape() || !matchPattern(op.getWeight(), m_Constant()) ||
      (op.getScales() && !matchPattern(op.getScales(), m_Constant())))
    return false;
  int64_t n = wType.getDimSize(0), k = wType.getDimSize(1);
  if (n == 0 || k == 0 || op.getQuantizeInput())
    return false;
  int64_t m = xType.getNumElements() / k;
  bool blocked = static_cast<bool>(blockedWeight);
  DenseKernelEmitter emitter(module, m, n, k, wType.getElementType(), lanes,
                             shape, blocked);

  OpBuilder b(op);
  Location loc = op.getLoc();
  auto toBuffer = [&](Value tensor) { return toReadOnlyBuffer(b, loc, tensor); };
  Value xBuf = toBuffer(op.getInput());
  Value wBuf = toBuffer(blocked ? blockedWeight : op.getWeight());
  auto yMemType = MemRefType::get(yType.getShape(), yType.getElementType());
  Value yBuf =
      memref::AllocOp::create(b, loc, yMemType, b.getI64IntegerAttr(64));
  SmallVector<Value> operands{xBuf, wBuf, yBuf};
  MemRefType scalesType;
  if (Value scales = op.getScales()) {
    operands.push_back(toBuffer(scales));
    scalesType = cast<MemRefType>(operands.back().getType());
  }
  func::FuncOp kernel = emitter.getOrCreate(
      cast<MemRefType>(xBuf.getType()), cast<MemRefType>(wBuf.getType()),
      yMemType, scalesType);
  auto call = func::CallOp::create(b, loc, kernel, operands);
  SmallVector<NamedAttribute> choice = {
      b.getNamedAttr("family", b.getStringAttr("dense")),
      b.getNamedAttr("lanes", b.getI64IntegerAttr(lanes)),
      b.getNamedAttr("rows_per_block",
                     b.getI64IntegerAttr(shape.rows)),
      b.getNamedAttr("vectors_per_step",
                     b.getI64IntegerAttr(shape.vectors)),
      b.getNamedAttr("prefetch_bytes",
                     b.getI64IntegerAttr(shape.prefetch)),
      b.getNamedAttr("weight_type",
                     TypeAttr::get(wType.getElementType())),
      b.getNamedAttr("layout",
                     b.getStringAttr(blocked ? "blocked" : "rows"))};
  llvm::append_range(choice, extra);
  call->setAttr("bitnet.kernel", b.getDictionaryAttr(choice));
  Value y = bufferization::ToTensorOp::create(b, loc, yType, yBuf,
                                              b.getUnitAttr(), b.getUnitAttr());
  op.replaceAllUsesWith(y);
  op.erase();
  return true;
}
