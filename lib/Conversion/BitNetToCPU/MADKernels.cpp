//===- MADKernels.cpp - Ternary multiply-add kernels for CPUs ---*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// Lowers `bitnet.bitlinear` with a constant weight to a kernel specialised for
// its shape:
//
//  * at compile time the ternary weight is laid out for the kernel: 2-bit
//    codes (w + 1) in groups of 4L rows x 16 columns, where L is the number
//    of 32-bit lanes of a vector (16 for AVX-512, 8 for AVX2, 4 for NEON),
//    so that one vector load gives, after an AND with one of four masks, the
//    unsigned operand of `vpdpbusd` (or `vpmaddubsw`) for L rows x 4 columns
//    (the "MAD" layout below); on AArch64 the same layout with L = 4 feeds
//    `sdot` (see below);
//  * at run time each token is quantised once (absmax, round half to even,
//    int8) into the workspace, and its sum is kept: with unsigned codes
//    c = w + 1, sum(c * x) - sum(x) = sum(w * x);
//  * row groups are spread over the runtime's thread pool.
//
// MAD layout, for G = ceil(N / 4L) row groups and KB = ceil(K / 16) column
// blocks: bytes[G][KB][4 tiles][4L]. Byte 4r + q of tile i of block (g, kb)
// holds in bits [2j, 2j+2) the code of W[4Lg + Li + r][16kb + 4j + q]
// (code 1, a zero weight, past the matrix's edge). Masking with 3 << 2j keeps
// code * 4^j, so four accumulators per tile collect 4^j * sum(c * x) exactly
// and are scaled back with arithmetic shifts.
//
// NEON: `sdot` multiplies signed bytes by signed bytes, so a masked code
// must stay below 128: the largest, 2 * 4^j, are 2, 8 and 32 for j < 3, and
// the fourth code is taken with a byte shift right by 6 instead (unscaled).
// The four activation words of a block come from one 16-byte load, each used
// through sdot's by-element form.
// One 16-byte tile holds 4 rows x 16 columns, a group 16 rows: 64 bytes, a
// cache line, per 16 columns.
//
//===----------------------------------------------------------------------===//

#include "CostModel.h"
#include "KernelLowerings.h"
#include "KernelSupport.h"

#include "bitnet/Conversion/Passes.h"
#include "bitnet/Dialect/BitNet/IR/BitNet.h"
#include "bitnet/Dialect/BitNet/IR/TernaryEncoding.h"
#include "bitnet/Transforms/ModelABI.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/PatternMatch.h"
#include "llvm/ADT/MapVector.h"
#include "llvm/ADT/StringSwitch.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/FormatVariadic.h"

namespace mlir::bitnet {
#define GEN_PASS_DEF_BITNETLOWERTOCPUKERNELS
#include "bitnet/Conversion/Passes.h.inc"
} // namespace mlir::bitnet

using namespace mlir;
using namespace mlir::bitnet;

using namespace mlir::bitnet::abi;

static constexpr int64_t kTilesPerGroup = 4;
static constexpr int64_t kColsPerBlock = 16;
/// Tokens that share one unpacking of a weight tile (small batches).
static constexpr int64_t kTokensPerPass = 6;
/// Prefill-sized batches (AVX-512): the codes of two tiles (32 rows) are
/// unpacked once per call into a stack buffer, then read by passes of this
/// many tokens (2 x 12 accumulators: 2 code loads per 24 vpdpbusd).
static constexpr int64_t kPrefillTokensPerPass = 12;
static constexpr int64_t kPrefillTilesPerPass = 2;
/// The largest stack buffer of unpacked codes (bytes); K past it (8192
/// columns) keeps the small-batch loop.
static constexpr int64_t kMaxUnpackedBytes = 256 * 1024;
/// The one-token loop adds, per lane and 16 columns, four products of a code
/// scaled by up to 64 (at most 128) and an int8 activation (|x| <= 127):
/// int32 sums stay exact up to 2^15 blocks, K = 524288.
static constexpr int64_t kMaxMADColumns = 32768 * kColsPerBlock;

//===----------------------------------------------------------------------===//
// Compile-time weight layout
//===----------------------------------------------------------------------===//

/// Lays out `n x k` ternary values (row-major int8) in the MAD layout.
static SmallVector<int8_t> layoutMAD(ArrayRef<int8_t> w, int64_t n, int64_t k,
                                     int64_t lanes) {
  int64_t groupRows = kTilesPerGroup * lanes, tileBytes = 4 * lanes;
  int64_t groups = llvm::divideCeil(n, groupRows);
  int64_t blocks = llvm::divideCeil(k, kColsPerBlock);
  SmallVector<int8_t> bytes(groups * blocks * kTilesPerGroup * tileBytes);
  for (int64_t g = 0; g < groups; ++g)
    for (int64_t kb = 0; kb < blocks; ++kb)
      for (int64_t i = 0; i < kTilesPerGroup; ++i)
        for (int64_t r = 0; r < lanes; ++r)
          for (int64_t q = 0; q < 4; ++q) {
            unsigned byte = 0;
            for (int64_t j = 0; j < 4; ++j) {
              int64_t row = g * groupRows + i * lanes + r;
              int64_t col = kb * kColsPerBlock + 4 * j + q;
              int code = 1;
              if (row < n && col < k)
                code = std::clamp<int>(w[row * k + col], -1, 1) + 1;
              byte |= static_cast<unsigned>(code) << (2 * j);
            }
            int64_t at =
                ((g * blocks + kb) * kTilesPerGroup + i) * tileBytes + 4 * r + q;
            bytes[at] = static_cast<int8_t>(byte);
          }
  return bytes;
}

bool mlir::bitnet::madUsesPrefillLoop(int64_t m, int64_t k) {
  // 16 lanes x 4 bytes a tile (AVX-512).
  int64_t unpacked = llvm::divideCeil(k, kColsPerBlock) * 4 *
                     kPrefillTilesPerPass * 64;
  return m >= kPrefillTokensPerPass && unpacked <= kMaxUnpackedBytes;
}

/// The int8 values of a constant ternary weight, or nothing.
static std::optional<SmallVector<int8_t>> constantTernary(Value weight) {
  if (auto constant = weight.getDefiningOp<bitnet::ConstantOp>())
    return constant.getTernaryValues();
  return std::nullopt;
}

//===----------------------------------------------------------------------===//
// Kernel generation
//===----------------------------------------------------------------------===//

namespace {
/// The instruction sets the MAD kernel is generated for.
/// 32-bit lanes of a vector register: the rows of one tile.
int64_t lanesOf(KernelISA isa) {
  switch (isa) {
  case KernelISA::AVX512VNNI:
    return 16;
  case KernelISA::AVXVNNI:
  case KernelISA::AVX2:
    return 8;
  case KernelISA::NEON:
    return 4;
  }
  llvm_unreachable("unknown MAD instruction set");
}

/// The single-token loop takes code j of a weight byte as code * 2^s, with s
/// this shift: 2j when a mask keeps the code in place. Signed products (NEON
/// sdot) cannot take 2 * 64 = 128, so there the top code is shifted down to
/// bits [0, 2) instead (s = 0).
int64_t scaleShiftOf(KernelISA isa, int64_t j) {
  return isa == KernelISA::NEON && j == 3 ? 0 : 2 * j;
}

/// Emits the LLVM-dialect kernel functions of one (M, N, K) shape.
class MADKernelEmitter : KernelEmitterBase {
public:
  MADKernelEmitter(ModuleOp module, KernelISA isa, StringRef isaName, int64_t m,
                   int64_t n, int64_t k, int64_t prefetchDistance)
      : KernelEmitterBase(module), isa(isa), isaName(isaName.str()),
        prefetchDistance(prefetchDistance), m(m), n(n),
        k(k), lanes(lanesOf(isa)), tileBytes(4 * lanes),
        groupRows(kTilesPerGroup * lanes),
        blockBytes(kTilesPerGroup * tileBytes),
        groups(llvm::divideCeil(n, groupRows)),
        blocks(llvm::divideCeil(k, kColsPerBlock)),
        kPadded(blocks * kColsPerBlock) {
    i8 = b.getI8Type();
    i32 = b.getI32Type();
    bytesV = VectorType::get({tileBytes}, i8);
    wordsV = VectorType::get({lanes}, i32);
    floatsV = VectorType::get({lanes}, f32);
  }

  /// Scratch bytes one call needs: quantised tokens, their sums and scales.
  int64_t scratchBytes() const { return m * kPadded + 8 * m; }

  /// Bytes of plain codes of kPrefillTilesPerPass tiles over all of K.
  int64_t unpackedBytes() const {
    return blocks * 4 * kPrefillTilesPerPass * tileBytes;
  }
  /// Whether the prefill loop (codes unpacked once per call) is used.
  bool unpacksOnce() const {
    return isa == KernelISA::AVX512VNNI && madUsesPrefillLoop(m, k);
  }

  /// Returns the wrapper `func.func` taking memrefs (x, w, s_w, y,
  /// scratch), creating the kernel functions on first use.
  func::FuncOp getOrCreate(ArrayRef<Type> memrefTypes);

private:
  std::string baseName() const {
    return llvm::formatv("__bitnet_mad_{0}_{1}x{2}x{3}", isaName, m, n, k)
        .str();
  }

  /// The kernel's name as reported to profilers, a NUL-terminated constant.
  LLVM::GlobalOp getOrCreateName();
  LLVM::LLVMFuncOp createChunk();
  LLVM::LLVMFuncOp createQuantize();
  LLVM::LLVMFuncOp createMain(LLVM::LLVMFuncOp quantize,
                              LLVM::LLVMFuncOp chunk);

  KernelISA isa;
  std::string isaName;
  int64_t prefetchDistance;
  int64_t m, n, k, lanes, tileBytes, groupRows, blockBytes, groups, blocks,
      kPadded;
  Type i8, i32;
  VectorType bytesV, wordsV, floatsV;
};
} // namespace

LLVM::GlobalOp MADKernelEmitter::getOrCreateName() {
  return getOrCreateKernelName(
      module, baseName() + "_name",
      llvm::formatv("bitlinear mad_{0} {1}x{2}x{3}", isaName, m, n, k).str());
}

// void chunk(args, begin, end): row groups [begin, end) of every token.
// args = {xq, xsum, sx, w, y, ws} (pointers).
LLVM::LLVMFuncOp MADKernelEmitter::createChunk() {
  OpBuilder::InsertionGuard guard(b);
  LLVM::LLVMFuncOp func = beginChunk(baseName() + "_chunk");
  Block *entry = &func.getBody().front();
  Value args = entry->getArgument(0);
  Value begin = entry->getArgument(1), end = entry->getArgument(2);
  Value xq = field(b, args, 0), xsum = field(b, args, 1),
        sx = field(b, args, 2), w = field(b, args, 3), y = field(b, args, 4),
        wsPtr = field(b, args, 5);
  Value ws = load(b, f32, wsPtr);
  Value one = cI64(b, 1), zero = cI64(b, 0);

  // Code j of every byte, times 2^scaleShiftOf(j): a mask, or (the top code
  // when products are signed) a byte shift right by 6.
  SmallVector<Value> masks;
  for (int j = 0; j < 4; ++j) {
    int64_t scale = scaleShiftOf(isa, j);
    int8_t bits = static_cast<int8_t>(scale == 2 * j ? 3 << scale : 2 * j);
    masks.push_back(arith::ConstantOp::create(
        b, loc, DenseElementsAttr::get(bytesV, b.getI8IntegerAttr(bits))));
  }
  auto scaledCode = [&](OpBuilder &kb, Value tile, int64_t j) -> Value {
    if (scaleShiftOf(isa, j) == 2 * j)
      return arith::AndIOp::create(kb, loc, tile, masks[j]);
    return arith::ShRUIOp::create(kb, loc, tile, masks[j]);
  };
  Value zeroAcc = arith::ConstantOp::create(
      b, loc, DenseElementsAttr::get(wordsV, b.getI32IntegerAttr(0)));

  // y[tok, groupRows g + lanes i + r] for the lanes r of `total`
  // (sum(c * x) - sum(x)),
  // rescaled as the contract says: (float(acc) * s_w) / s_x.
  auto storeTile = [&](OpBuilder &tb, Value g, Value tok, int64_t i,
                       Value total) {
    Value tok4 = arith::MulIOp::create(tb, loc, tok, cI64(tb, 4));
    Value sum = load(tb, i32, gep(tb, xsum, tok4));
    total = arith::SubIOp::create(
        tb, loc, total, vector::BroadcastOp::create(tb, loc, wordsV, sum));
    Value scaleX = load(tb, f32, gep(tb, sx, tok4));
    Value yv = arith::SIToFPOp::create(tb, loc, floatsV, total);
    yv = arith::MulFOp::create(
        tb, loc, yv, vector::BroadcastOp::create(tb, loc, floatsV, ws));
    yv = arith::DivFOp::create(
        tb, loc, yv, vector::BroadcastOp::create(tb, loc, floatsV, scaleX));
    // Rows row0 .. row0 + 15; the last tiles may pass N.
    Value row0 = arith::AddIOp::create(
        tb, loc, arith::MulIOp::create(tb, loc, g, cI64(tb, groupRows)),
        cI64(tb, lanes * i));
    Value outIndex = arith::AddIOp::create(
        tb, loc, arith::MulIOp::create(tb, loc, tok, cI64(tb, n)), row0);
    Value out =
        gep(tb, y, arith::MulIOp::create(tb, loc, outIndex, cI64(tb, 4)));
    storeClipped(tb, yv, out, row0, n);
  };
  // The four bytes x[tok][16 blk + 4j .. + 3] in every 32-bit lane.
  auto broadcastX = [&](OpBuilder &kb, Value tok, Value blk, int64_t j) {
    Value block = arith::AddIOp::create(
        kb, loc, arith::MulIOp::create(kb, loc, tok, cI64(kb, kPadded)),
        arith::MulIOp::create(kb, loc, blk, cI64(kb, 16)));
    Value splat;
    if (isa == KernelISA::NEON) {
      // The block's 16 bytes (one load for the four j), lane j repeated:
      // what sdot's by-element form takes.
      Value words = load(kb, wordsV, gep(kb, xq, block));
      splat = vector::ShuffleOp::create(kb, loc, words, words,
                                        SmallVector<int64_t>(lanes, j));
    } else {
      Value at = arith::AddIOp::create(kb, loc, block, cI64(kb, 4 * j));
      Value word = load(kb, i32, gep(kb, xq, at));
      splat = vector::BroadcastOp::create(kb, loc, wordsV, word);
    }
    return LLVM::BitcastOp::create(kb, loc, bytesV, splat).getResult();
  };
  auto weightTile = [&](OpBuilder &kb, Value groupBase, Value blk, int64_t i) {
    Value at = arith::AddIOp::create(
        kb, loc, arith::MulIOp::create(kb, loc, blk, cI64(kb, blockBytes)),
        cI64(kb, tileBytes * i));
    Value address = gep(kb, groupBase, at);
    // The weights stream from memory once per call: ask for them early,
    // one cache line per 64 bytes of tiles.
    if (prefetchDistance > 0 && (tileBytes * i) % 64 == 0)
      prefetchLines(kb, address, prefetchDistance, 64);
    return load(kb, bytesV, address);
  };
  // acc + sum of four u8 codes times four s8 activations, per 32-bit lane.
  auto halfsV = VectorType::get({2 * lanes}, b.getI16Type());
  Value onesV = arith::ConstantOp::create(
      b, loc, DenseElementsAttr::get(halfsV, b.getI16IntegerAttr(1)));
  auto dot = [&](OpBuilder &kb, Value acc, Value codes, Value x) -> Value {
    auto call = [&](Type type, StringRef name, ValueRange args) {
      return LLVM::CallIntrinsicOp::create(kb, loc, type,
                                           kb.getStringAttr(name), args)
          .getResult(0);
    };
    switch (isa) {
    case KernelISA::AVX512VNNI:
      return call(wordsV, "llvm.x86.avx512.vpdpbusd.512", {acc, codes, x});
    case KernelISA::AVXVNNI:
      return call(wordsV, "llvm.x86.avx512.vpdpbusd.256", {acc, codes, x});
    case KernelISA::NEON:
      // Codes (at most 32 here) and activations both as signed bytes.
      return call(wordsV, "llvm.aarch64.neon.sdot", {acc, codes, x});
    case KernelISA::AVX2: {
      // Pairs of products in i16 (codes * 4^j <= 128 and |x| <= 128 keep each
      // pair within [-32768, 32512]: no saturation), then pairs of pairs.
      Value pairs = call(halfsV, "llvm.x86.avx2.pmadd.ub.sw", {codes, x});
      Value quads = call(wordsV, "llvm.x86.avx2.pmadd.wd", {pairs, onesV});
      return arith::AddIOp::create(kb, loc, acc, quads);
    }
    }
    llvm_unreachable("unknown MAD instruction set");
  };

  // One token: the codes are masked in place (code * 4^j), four accumulators
  // per tile, scaled back with shifts at the end. No shifts in the loop
  // (but the one of the top code on NEON).
  auto oneToken = [&](OpBuilder &tb, Value g, Value groupBase, Value tok) {
    SmallVector<Value> init(16, zeroAcc);
    auto kLoop = scf::ForOp::create(
        tb, loc, zero, cI64(tb, blocks), one, init,
        [&](OpBuilder &kb, Location, Value blk, ValueRange accs) {
          SmallVector<Value> xs;
          for (int64_t j = 0; j < 4; ++j)
            xs.push_back(broadcastX(kb, tok, blk, j));
          SmallVector<Value> next(accs.begin(), accs.end());
          for (int64_t i = 0; i < 4; ++i) {
            Value wv = weightTile(kb, groupBase, blk, i);
            for (int64_t j = 0; j < 4; ++j)
              next[4 * i + j] =
                  dot(kb, next[4 * i + j], scaledCode(kb, wv, j), xs[j]);
          }
          scf::YieldOp::create(kb, loc, next);
        });
    for (int64_t i = 0; i < 4; ++i) {
      Value total = kLoop.getResult(4 * i);
      for (int64_t j = 1; j < 4; ++j) {
        Value part = kLoop.getResult(4 * i + j);
        if (int64_t scale = scaleShiftOf(isa, j)) {
          Value shift = arith::ConstantOp::create(
              tb, loc, DenseElementsAttr::get(wordsV, tb.getI32IntegerAttr(scale)));
          part = arith::ShRSIOp::create(tb, loc, part, shift);
        }
        total = arith::AddIOp::create(tb, loc, total, part);
      }
      storeTile(tb, g, tok, i, total);
    }
  };

  // The plain codes (0, 1, 2) of a tile, one vector per j: a shift and a mask.
  auto vec16 = halfsV;
  Value lowCodes = arith::ConstantOp::create(
      b, loc, DenseElementsAttr::get(bytesV, b.getI8IntegerAttr(3)));
  auto plainCodes = [&](OpBuilder &kb, Value wv) {
    Value wide = LLVM::BitcastOp::create(kb, loc, vec16, wv);
    SmallVector<Value> codes;
    for (int64_t j = 0; j < 4; ++j) {
      Value shifted = wv;
      if (j > 0) {
        Value amount = arith::ConstantOp::create(
            kb, loc,
            DenseElementsAttr::get(
                vec16, kb.getI16IntegerAttr(static_cast<int16_t>(2 * j))));
        shifted = LLVM::BitcastOp::create(
            kb, loc, bytesV, arith::ShRUIOp::create(kb, loc, wide, amount));
      }
      codes.push_back(arith::AndIOp::create(kb, loc, shifted, lowCodes));
    }
    return codes;
  };

  // Several tokens: each weight tile is unpacked once to plain codes (shift
  // and mask) and used by every token; one accumulator per tile and token.
  auto manyTokens = [&](OpBuilder &tb, Value g, Value groupBase, Value tok0) {
    int64_t t = kTokensPerPass;
    SmallVector<Value> init(4 * t, zeroAcc);
    SmallVector<Value> toks;
    for (int64_t u = 0; u < t; ++u)
      toks.push_back(arith::AddIOp::create(tb, loc, tok0, cI64(tb, u)));
    auto kLoop = scf::ForOp::create(
        tb, loc, zero, cI64(tb, blocks), one, init,
        [&](OpBuilder &kb, Location, Value blk, ValueRange accs) {
          SmallVector<Value> next(accs.begin(), accs.end());
          for (int64_t i = 0; i < 4; ++i) {
            Value wv = weightTile(kb, groupBase, blk, i);
            SmallVector<Value> codes = plainCodes(kb, wv);
            for (int64_t u = 0; u < t; ++u)
              for (int64_t j = 0; j < 4; ++j)
                next[i * t + u] = dot(kb, next[i * t + u], codes[j],
                                      broadcastX(kb, toks[u], blk, j));
          }
          scf::YieldOp::create(kb, loc, next);
        });
    for (int64_t i = 0; i < 4; ++i)
      for (int64_t u = 0; u < t; ++u)
        storeTile(tb, g, toks[u], i, kLoop.getResult(i * t + u));
  };

  // Prefill: the plain codes of tiles `part` * R .. + R - 1 (R =
  // kPrefillTilesPerPass) of a group, for every column, go once into
  // `unpacked` (R tiles per 4 columns, in the order the passes read them);
  // then passes of up to kPrefillTokensPerPass tokens read them back, with
  // one accumulator per tile and token and the activations broadcast from
  // memory (vpdpbusd's embedded broadcast).
  constexpr int64_t r = kPrefillTilesPerPass;
  Value unpacked;
  if (unpacksOnce())
    unpacked = LLVM::AllocaOp::create(b, loc, ptr, i8,
                                      cI64(b, unpackedBytes()), 64);
  auto codesAt = [&](OpBuilder &kb, Value blk, int64_t j, int64_t tile) {
    return gep(kb, unpacked,
               add(kb, mul(kb, blk, 4 * r * tileBytes),
                   cI64(kb, (j * r + tile) * tileBytes)));
  };
  auto unpackTiles = [&](OpBuilder &tb, Value groupBase, int64_t part) {
    scf::ForOp::create(
        tb, loc, zero, cI64(tb, blocks), one, ValueRange{},
        [&](OpBuilder &kb, Location, Value blk, ValueRange) {
          for (int64_t tile = 0; tile < r; ++tile) {
            SmallVector<Value> codes = plainCodes(
                kb, weightTile(kb, groupBase, blk, part * r + tile));
            for (int64_t j = 0; j < 4; ++j)
              store(kb, codes[j], codesAt(kb, blk, j, tile));
          }
          scf::YieldOp::create(kb, loc);
        });
  };
  auto unpackedPass = [&](OpBuilder &tb, Value g, int64_t part, Value tok0,
                          int64_t t) {
    SmallVector<Value> toks;
    for (int64_t u = 0; u < t; ++u)
      toks.push_back(add(tb, tok0, cI64(tb, u)));
    auto kLoop = scf::ForOp::create(
        tb, loc, zero, cI64(tb, blocks), one,
        SmallVector<Value>(r * t, zeroAcc),
        [&](OpBuilder &kb, Location, Value blk, ValueRange accs) {
          SmallVector<Value> next(accs.begin(), accs.end());
          for (int64_t j = 0; j < 4; ++j) {
            SmallVector<Value> codes;
            for (int64_t tile = 0; tile < r; ++tile)
              codes.push_back(load(kb, bytesV, codesAt(kb, blk, j, tile)));
            for (int64_t u = 0; u < t; ++u) {
              Value x = broadcastX(kb, toks[u], blk, j);
              for (int64_t tile = 0; tile < r; ++tile)
                next[tile * t + u] = dot(kb, next[tile * t + u], codes[tile], x);
            }
          }
          scf::YieldOp::create(kb, loc, next);
        });
    for (int64_t tile = 0; tile < r; ++tile)
      for (int64_t u = 0; u < t; ++u)
        storeTile(tb, g, toks[u], part * r + tile,
                  kLoop.getResult(tile * t + u));
  };
  auto prefill = [&](OpBuilder &gb, Value g, Value groupBase) {
    int64_t full = m / kPrefillTokensPerPass, rest = m % kPrefillTokensPerPass;
    for (int64_t part = 0; part < kTilesPerGroup / r; ++part) {
      unpackTiles(gb, groupBase, part);
      scf::ForOp::create(
          gb, loc, zero, cI64(gb, full), one, ValueRange{},
          [&](OpBuilder &tb, Location, Value pass, ValueRange) {
            unpackedPass(tb, g, part, mul(tb, pass, kPrefillTokensPerPass),
                         kPrefillTokensPerPass);
            scf::YieldOp::create(tb, loc);
          });
      if (rest > 0)
        unpackedPass(gb, g, part, cI64(gb, full * kPrefillTokensPerPass), rest);
    }
  };

  int64_t passes = m / kTokensPerPass;
  scf::ForOp::create(
      b, loc, begin, end, one, ValueRange{},
      [&](OpBuilder &gb, Location, Value g, ValueRange) {
        // Bytes of group g start at g * KB * blockBytes.
        Value groupBase =
            gep(gb, w, arith::MulIOp::create(gb, loc, g,
                                              cI64(gb, blocks * blockBytes)));
        if (unpacksOnce()) {
          prefill(gb, g, groupBase);
          scf::YieldOp::create(gb, loc);
          return;
        }
        if (passes > 0)
          scf::ForOp::create(
              gb, loc, zero, cI64(gb, passes), one, ValueRange{},
              [&](OpBuilder &tb, Location, Value pass, ValueRange) {
                manyTokens(tb, g, groupBase,
                           arith::MulIOp::create(tb, loc, pass,
                                                 cI64(tb, kTokensPerPass)));
                scf::YieldOp::create(tb, loc);
              });
        scf::ForOp::create(
            gb, loc, cI64(gb, passes * kTokensPerPass), cI64(gb, m), one,
            ValueRange{}, [&](OpBuilder &tb, Location, Value tok, ValueRange) {
              oneToken(tb, g, groupBase, tok);
              scf::YieldOp::create(tb, loc);
            });
        scf::YieldOp::create(gb, loc);
      });
  LLVM::ReturnOp::create(b, loc, ValueRange{});
  return func;
}

// void main(x, w, ws, y, scratch): quantise every token, then run the row
// groups through the caller's parallel_for (or on this thread).
// void quantize(args, begin, end): tokens [begin, end) of x into the scratch.
// args = {x, scratch} (pointers).
LLVM::LLVMFuncOp MADKernelEmitter::createQuantize() {
  OpBuilder::InsertionGuard guard(b);
  LLVM::LLVMFuncOp func = beginChunk(baseName() + "_quantize");
  Block *entry = &func.getBody().front();
  Value args = entry->getArgument(0);
  Value begin = entry->getArgument(1), end = entry->getArgument(2);
  Value x = field(b, args, 0), scratch = field(b, args, 1);
  Value xq = scratch;
  Value xsum = gep(b, scratch, cI64(b, m * kPadded));
  Value sx = gep(b, scratch, cI64(b, m * kPadded + 4 * m));
  Value one = cI64(b, 1);

  // Per token: s_x = 127 / max(max|x|, 1e-5); xq = clamp(round(x * s_x)).
  scf::ForOp::create(
      b, loc, begin, end, one, ValueRange{},
      [&](OpBuilder &tb, Location, Value tok, ValueRange) {
        Value xRow = gep(tb, x, arith::MulIOp::create(tb, loc, tok, cI64(tb, 4 * k)));
        Value qRow = gep(tb, xq, arith::MulIOp::create(tb, loc, tok, cI64(tb, kPadded)));
        auto [sum, scale] = quantizeRow(tb, xRow, qRow, k, kPadded);
        Value tok4 = arith::MulIOp::create(tb, loc, tok, cI64(tb, 4));
        store(tb, sum, gep(tb, xsum, tok4));
        store(tb, scale, gep(tb, sx, tok4));
        scf::YieldOp::create(tb, loc);
      });

  LLVM::ReturnOp::create(b, loc, ValueRange{});
  return func;
}

LLVM::LLVMFuncOp MADKernelEmitter::createMain(LLVM::LLVMFuncOp quantize,
                                              LLVM::LLVMFuncOp chunk) {
  OpBuilder::InsertionGuard guard(b);
  LLVM::LLVMFuncOp func = beginKernel(baseName(), 5);
  Block *entry = &func.getBody().front();
  Value x = entry->getArgument(0), w = entry->getArgument(1),
        wsPtr = entry->getArgument(2), y = entry->getArgument(3),
        scratch = entry->getArgument(4);
  Value xq = scratch;
  Value xsum = gep(b, scratch, cI64(b, m * kPadded));
  Value sx = gep(b, scratch, cI64(b, m * kPadded + 4 * m));

  Value args = pointerTable(b, {xq, xsum, sx, w, y, wsPtr});

  ExecCtxCalls calls(b, loc);
  // Profiling: kernel_begin(user, name, bytes, flops) ... kernel_end(user, name).
  Value name = LLVM::AddressOfOp::create(b, loc, getOrCreateName());
  int64_t bytes = groups * blocks * blockBytes + 4 * m * k + 4 * m * n;
  int64_t flops = 2 * m * n * k;
  calls.kernelBegin(name, bytes, flops);
  // Quantise every token once (spread over threads for prefill-sized
  // batches), then the row groups.
  Value quantArgs = pointerTable(b, {x, scratch});
  calls.dispatch(quantize, quantArgs, m, /*spread=*/m >= kTokensPerPass);
  calls.dispatch(chunk, args, groups, /*spread=*/true);
  calls.kernelEnd(name);
  LLVM::ReturnOp::create(b, loc, ValueRange{});
  return func;
}

func::FuncOp MADKernelEmitter::getOrCreate(ArrayRef<Type> memrefTypes) {
  std::string wrapperName = baseName() + "_memref";
  if (auto existing = module.lookupSymbol<func::FuncOp>(wrapperName))
    return existing;
  ensureExecCtxGlobal(module);
  LLVM::LLVMFuncOp quantize = createQuantize();
  LLVM::LLVMFuncOp chunk = createChunk();
  LLVM::LLVMFuncOp kernel = createMain(quantize, chunk);
  return createMemRefWrapper(module, wrapperName, memrefTypes, kernel);
}

//===----------------------------------------------------------------------===//
// The pass
//===----------------------------------------------------------------------===//

namespace {
struct BitNetLowerToCPUKernelsPass
    : bitnet::impl::BitNetLowerToCPUKernelsBase<BitNetLowerToCPUKernelsPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (prefetchDistance < -1) {
      module.emitError("bitnet-lower-to-cpu-kernels: prefetch-distance must "
                       "be >= 0 (or -1, the target's default), got ")
          << static_cast<int64_t>(prefetchDistance);
      return signalPassFailure();
    }
    if (layoutTokens < 0) {
      module.emitError("bitnet-lower-to-cpu-kernels: layout-tokens must be "
                       ">= 0, got ")
          << static_cast<int64_t>(layoutTokens);
      return signalPassFailure();
    }
    if (isa == KernelISA::None)
      return;
    if (family != KernelFamily::MAD && isa != KernelISA::AVX512VNNI) {
      module.emitError("bitnet-lower-to-cpu-kernels: family=")
          << stringifyKernelFamily(family)
          << " needs isa=avx512vnni (and AVX-512 VBMI), got "
          << stringifyKernelISA(isa);
      return signalPassFailure();
    }
    // A bad entry is one line, without the module after it.
    auto badEntry = [&](StringRef entry, StringRef form) {
      emitError(module.getLoc(), "bitnet-lower-to-cpu-kernels: tuned entry '")
          << entry << "' is not " << form;
      signalPassFailure();
    };
    for (const std::string &entry : tuned) {
      if (StringRef(entry).starts_with("dense:")) {
        FailureOr<std::pair<std::string, TunedDense>> parsed =
            parseTunedDense(entry);
        if (failed(parsed))
          return badEntry(entry,
                          "dense:MxNxK:rows:vectors:prefetch:ns:default_ns "
                          "(rows 1-64, vectors 1-8, prefetch 0-65536 bytes)");
        tunedDense[parsed->first] = parsed->second;
        continue;
      }
      FailureOr<std::pair<std::string, TunedChoice>> parsed = parseTuned(entry);
      if (failed(parsed))
        return badEntry(entry, "MxNxK:mad|lut|auto:mad_ns:lut_ns[:prefetch] "
                               "(prefetch 0-65536 bytes)");
      tunedChoices[parsed->first] = parsed->second;
    }
    SmallVector<BitLinearOp> ops;
    module.walk([&](BitLinearOp op) { ops.push_back(op); });
    // Weights that outgrow the cache stream from memory at every call.
    int64_t weightBytes = 0;
    for (BitLinearOp op : ops) {
      TernaryType t = op.getWeight().getType();
      weightBytes += llvm::divideCeil(t.getRows() * t.getCols(), 4);
    }
    WeightResidency residency = weightBytes <= l2Bytes
                                    ? WeightResidency::L2
                                : weightBytes <= cacheBytes
                                    ? WeightResidency::LastLevelCache
                                    : WeightResidency::Memory;
    for (BitLinearOp op : ops)
      lower(module, op, residency);
    // Dense float layers (a decoder's head) on the same vector width.
    SmallVector<DenseMatmulOp> dense;
    module.walk([&](DenseMatmulOp op) { dense.push_back(op); });
    SmallVector<DenseChoice> choices;
    for (DenseMatmulOp op : dense) {
      // The block shape measured on the machine for this shape, if any.
      DenseBlockShape shape =
          defaultDenseBlockShape(module, op, lanesOf(isa), /*blocked=*/true);
      SmallVector<NamedAttribute> measured;
      RankedTensorType xType = op.getInput().getType();
      RankedTensorType wType = op.getWeight().getType();
      if (xType.hasStaticShape() && wType.hasStaticShape() &&
          wType.getDimSize(1) > 0) {
        auto found = tunedDense.find(
            llvm::formatv("{0}x{1}x{2}",
                          xType.getNumElements() / wType.getDimSize(1),
                          wType.getDimSize(0), wType.getDimSize(1))
                .str());
        if (found != tunedDense.end()) {
          shape = found->second.shape;
          Builder b(op);
          measured = {
              b.getNamedAttr("tuned", b.getUnitAttr()),
              b.getNamedAttr("tuned_ns", b.getI64IntegerAttr(found->second.ns)),
              b.getNamedAttr("default_ns",
                             b.getI64IntegerAttr(found->second.defaultNs))};
        }
      }
      choices.push_back({op, shape, std::move(measured)});
    }
    llvm::DenseMap<Value, Value> blocked = blockDenseWeights(choices);
    // A weight left [N, K] takes that layout's default where none was
    // measured.
    for (DenseChoice &choice : choices)
      if (!blocked.count(choice.op.getWeight()) && choice.measured.empty())
        choice.shape = defaultDenseBlockShape(module, choice.op, lanesOf(isa),
                                              /*blocked=*/false);
    for (DenseChoice &choice : choices) {
      DenseMatmulOp op = choice.op;
      if (!op.getQuantizeInput()) {
        lowerDenseMatmulToKernel(module, op, lanesOf(isa), choice.shape,
                                 choice.measured,
                                 blocked.lookup(op.getWeight()));
        continue;
      }
      // W8A8 on vpdpbusd (elsewhere the reference lowering), one row of 64
      // bytes a step: as many rows a block as the float kernel's vectors.
      if (isa != KernelISA::AVX512VNNI)
        continue;
      lowerDenseW8A8ToKernel(module, op, choice.shape.rows * choice.shape.vectors,
                             choice.shape.prefetch, choice.measured,
                             blocked.lookup(op.getWeight()));
    }
    SmallVector<AttentionOp> attention;
    module.walk([&](AttentionOp op) { attention.push_back(op); });
    for (AttentionOp op : attention)
      lowerAttentionToKernel(module, op, lanesOf(isa));
    SmallVector<BatchedAttentionOp> batched;
    module.walk([&](BatchedAttentionOp op) { batched.push_back(op); });
    for (BatchedAttentionOp op : batched)
      lowerBatchedAttentionToKernel(module, op, lanesOf(isa));
    // RMSNorm (and the gated product before a down projection).
    SmallVector<RMSNormOp> norms;
    module.walk([&](RMSNormOp op) { norms.push_back(op); });
    for (RMSNormOp op : norms)
      lowerRMSNormToKernel(module, op);
  }

  /// A dense layer and the block shape its kernel takes.
  struct DenseChoice {
    DenseMatmulOp op;
    DenseBlockShape shape;
    SmallVector<NamedAttribute> measured;
  };

  /// The rows and columns of the blocks `choice`'s kernel reads its weight
  /// in, if it can read it blocked.
  std::optional<std::pair<int64_t, int64_t>>
  denseBlocks(DenseChoice &choice) {
    const DenseBlockShape &shape = choice.shape;
    if (!choice.op.getQuantizeInput()) {
      if (!denseWeightBlocks(choice.op, lanesOf(isa), shape))
        return std::nullopt;
      return std::make_pair(shape.rows, shape.vectors * lanesOf(isa));
    }
    int64_t rows = shape.rows * shape.vectors;
    if (isa != KernelISA::AVX512VNNI || !denseW8A8WeightBlocks(choice.op, rows))
      return std::nullopt;
    return std::make_pair(rows, denseW8A8BlockColumns());
  }

  /// The weights to store blocked (blockDenseWeight), each with its blocked
  /// constant: a constant that only dense kernels reading it in blocks of
  /// one shape, which cover it, and embeddings read. The embeddings then
  /// read the blocked constant (`blocked`), so that a tied head and
  /// embedding still share one copy. Elsewhere the weight stays [N, K].
  llvm::DenseMap<Value, Value>
  blockDenseWeights(MutableArrayRef<DenseChoice> choices) {
    llvm::MapVector<Value, SmallVector<DenseChoice *>> byWeight;
    for (DenseChoice &choice : choices)
      byWeight[choice.op.getWeight()].push_back(&choice);
    llvm::DenseMap<Value, Value> blocked;
    for (auto &[weight, readers] : byWeight) {
      auto constant = weight.getDefiningOp<arith::ConstantOp>();
      std::optional<std::pair<int64_t, int64_t>> blocks =
          denseBlocks(*readers.front());
      if (!constant || !blocks || !llvm::all_of(readers, [&](DenseChoice *c) {
            return denseBlocks(*c) == blocks;
          }))
        continue;
      // Every other reader is an embedding (the dense layers are all in
      // `readers`).
      auto readsBlocked = [](OpOperand &use) {
        if (auto op = dyn_cast<DenseMatmulOp>(use.getOwner()))
          return use.get() == op.getWeight();
        if (auto op = dyn_cast<EmbeddingOp>(use.getOwner()))
          return use.get() == op.getTable() && !op.getBlocked();
        return false;
      };
      if (!llvm::all_of(constant->getUses(), readsBlocked))
        continue;
      auto [rows, columns] = *blocks;
      Value copy = blockDenseWeight(constant, rows, columns);
      if (!copy)
        continue;
      for (OpOperand &use : llvm::make_early_inc_range(constant->getUses()))
        if (auto op = dyn_cast<EmbeddingOp>(use.getOwner())) {
          use.set(copy);
          op.setBlocked(ArrayRef<int64_t>{rows, columns});
        }
      blocked[weight] = copy;
    }
    return blocked;
  }

  /// What `bitnet-compile --tune` measured for one bitlinear shape: the
  /// family (none: the cost model's), both families' times, and the
  /// prefetch distance (-1: the pass's).
  struct TunedChoice {
    std::optional<bool> lut;
    int64_t madNs, lutNs, prefetch = -1;
  };
  llvm::StringMap<TunedChoice> tunedChoices;
  /// ... and for one dense shape: its block shape, and the times of that
  /// shape and of the default one.
  struct TunedDense {
    DenseBlockShape shape;
    int64_t ns, defaultNs;
  };
  llvm::StringMap<TunedDense> tunedDense;

  static constexpr int64_t kMaxTunedPrefetch = 65536;

  /// Whether `text` is MxNxK.
  static bool isShape(StringRef text) {
    SmallVector<StringRef> dims;
    text.split(dims, 'x');
    int64_t dim;
    return dims.size() == 3 && llvm::all_of(dims, [&](StringRef d) {
             return !d.getAsInteger(10, dim) && dim > 0;
           });
  }

  static FailureOr<std::pair<std::string, TunedChoice>>
  parseTuned(StringRef entry) {
    SmallVector<StringRef> parts;
    entry.split(parts, ':');
    TunedChoice choice;
    if ((parts.size() != 4 && parts.size() != 5) ||
        (parts[1] != "mad" && parts[1] != "lut" && parts[1] != "auto") ||
        parts[2].getAsInteger(10, choice.madNs) ||
        parts[3].getAsInteger(10, choice.lutNs) || !isShape(parts[0]))
      return failure();
    if (parts.size() == 5 &&
        (parts[4].getAsInteger(10, choice.prefetch) || choice.prefetch < 0 ||
         choice.prefetch > kMaxTunedPrefetch))
      return failure();
    if (parts[1] != "auto")
      choice.lut = parts[1] == "lut";
    return std::make_pair(parts[0].str(), choice);
  }

  static FailureOr<std::pair<std::string, TunedDense>>
  parseTunedDense(StringRef entry) {
    SmallVector<StringRef> parts;
    entry.split(parts, ':');
    TunedDense choice;
    if (parts.size() != 7 || !isShape(parts[1]) ||
        parts[2].getAsInteger(10, choice.shape.rows) ||
        parts[3].getAsInteger(10, choice.shape.vectors) ||
        parts[4].getAsInteger(10, choice.shape.prefetch) ||
        parts[5].getAsInteger(10, choice.ns) ||
        parts[6].getAsInteger(10, choice.defaultNs))
      return failure();
    const DenseBlockShape &s = choice.shape;
    if (s.rows < 1 || s.rows > 64 || s.vectors < 1 || s.vectors > 8 ||
        s.prefetch < 0 || s.prefetch > kMaxTunedPrefetch)
      return failure();
    return std::make_pair(parts[1].str(), choice);
  }

  void lower(ModuleOp module, BitLinearOp op, WeightResidency residency) {
    RankedTensorType xType = op.getInput().getType();
    RankedTensorType yType = op.getType();
    if (!xType.hasStaticShape() || !yType.hasStaticShape())
      return; // the reference lowering handles dynamic shapes
    std::optional<SmallVector<int8_t>> weights = constantTernary(op.getWeight());
    if (!weights)
      return; // weights known only at run time: reference lowering
    TernaryType wType = op.getWeight().getType();
    int64_t n = wType.getRows(), k = wType.getCols();
    int64_t m = xType.getNumElements() / k;

    OpBuilder b(op);
    SmallVector<NamedAttribute> estimates;
    bool useLUT = family == KernelFamily::LUT;
    // The step size the weights' layout is chosen for (layout-tokens).
    int64_t layoutM = std::max<int64_t>(m, layoutTokens);
    auto tunedChoice = tunedChoices.find(
        llvm::formatv("{0}x{1}x{2}", layoutM, n, k).str());
    const TunedChoice *measured = family == KernelFamily::Auto &&
                                          tunedChoice != tunedChoices.end()
                                      ? &tunedChoice->second
                                      : nullptr;
    if (measured && measured->lut) {
      // Measured on the machine: no estimate to make.
      useLUT = *measured->lut;
      estimates = {b.getNamedAttr("tuned", b.getUnitAttr()),
                   b.getNamedAttr("mad_ns", b.getI64IntegerAttr(measured->madNs)),
                   b.getNamedAttr("lut_ns", b.getI64IntegerAttr(measured->lutNs))};
    } else if (family == KernelFamily::Auto) {
      // Weights laid out for a prefill-sized step beside the one-token step:
      // each family takes the prefill-sized step in int8 dot products over
      // codes it decodes once per call, at about the same pace, so the
      // one-token step, which streams the weights every token, chooses.
      int64_t estimateM = layoutM;
      if (layoutTokens > 1 && madUsesPrefillLoop(layoutM, k) &&
          lutUsesUnpackLoop(layoutM, k))
        estimateM = 1;
      KernelCostEstimate e =
          estimateBitLinear(estimateM, n, k, residency, targetChip(module));
      useLUT = e.preferLUT();
      if (estimateM != layoutM)
        estimates.push_back(
            b.getNamedAttr("estimated_tokens", b.getI64IntegerAttr(estimateM)));
      StringRef where = residency == WeightResidency::L2 ? "l2"
                        : residency == WeightResidency::LastLevelCache
                            ? "llc"
                            : "memory";
      estimates.append({
          b.getNamedAttr("weights_in", b.getStringAttr(where)),
          b.getNamedAttr("mad_cycles",
                         b.getI64IntegerAttr(std::llround(e.madCycles))),
          b.getNamedAttr("lut_cycles",
                         b.getI64IntegerAttr(std::llround(e.lutCycles)))});
    }
    int64_t prefetch =
        prefetchDistance >= 0
            ? static_cast<int64_t>(prefetchDistance)
            : defaultPrefetchDistance(targetChip(module),
                                      useLUT ? KernelFamily::LUT
                                             : KernelFamily::MAD);
    if (measured && measured->prefetch >= 0) {
      prefetch = measured->prefetch;
      estimates.push_back(
          b.getNamedAttr("prefetch_bytes", b.getI64IntegerAttr(prefetch)));
    }
    if (useLUT) {
      SmallVector<NamedAttribute> choice = {
          b.getNamedAttr("family", b.getStringAttr("lut")),
          b.getNamedAttr("isa", b.getStringAttr("avx512vbmi")),
          b.getNamedAttr("rows_per_block", b.getI64IntegerAttr(64)),
          b.getNamedAttr("cols_per_chunk", b.getI64IntegerAttr(12)),
          b.getNamedAttr("weight_bytes",
                         b.getI64IntegerAttr(lutWeightBytes(n, k)))};
      llvm::append_range(choice, estimates);
      lowerBitLinearToLUTKernel(module, op, *weights, prefetch, choice);
      return;
    }

    if (k > kMaxMADColumns) {
      op.emitWarning() << "K = " << k << " is past the " << kMaxMADColumns
                       << " columns whose int32 sums the MAD kernel keeps "
                          "exact; this layer keeps the reference lowering";
      return;
    }
    KernelISA kind = isa;
    MADKernelEmitter emitter(module, kind, stringifyKernelISA(isa), m, n, k,
                             prefetch);
    SmallVector<int8_t> layout = layoutMAD(*weights, n, k, lanesOf(kind));

    SmallVector<NamedAttribute> choice = {
        b.getNamedAttr("family", b.getStringAttr("mad")),
        b.getNamedAttr("isa", b.getStringAttr(stringifyKernelISA(isa))),
        b.getNamedAttr("rows_per_group",
                       b.getI64IntegerAttr(kTilesPerGroup * lanesOf(kind))),
        b.getNamedAttr("cols_per_block", b.getI64IntegerAttr(kColsPerBlock)),
        b.getNamedAttr("weight_bytes", b.getI64IntegerAttr(layout.size()))};
    llvm::append_range(choice, estimates);
    replaceByBitLinearKernel(
        op, layout, emitter.scratchBytes(),
        [&](ArrayRef<Type> types) { return emitter.getOrCreate(types); },
        choice);
  }
};
} // namespace
