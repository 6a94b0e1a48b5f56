//===- LUTKernels.cpp - Ternary table-lookup kernels for CPUs ---*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// Lowers `bitnet.bitlinear` with a constant weight to a table-lookup (LUT)
// kernel for AVX-512 with VBMI and VNNI, at 5 bits per 3 weights (1.67 bits
// a weight, against the MAD layout's 2):
//
//  * Three ternary weights (w0, w1, w2) read as the balanced-ternary number
//    v = 9 w0 + 3 w1 + w2 in [-13, 13]. They are stored as the index |v|
//    (a nibble, 0..13) and a sign bit (v < 0): the dot product with three
//    activations is sign(v) * T[|v|], where T[i] is the dot product of the
//    activations with the digits of i.
//  * At run time each token is quantised (the numerics contract's int8
//    codes), then, for every 12 columns (four groups of three), the tables
//    of the four groups are written once: 64 entries of T + 512 (in
//    [128, 896], so both bytes are unsigned), split into a 64-byte table of
//    low bytes and one of high bytes. For one token (decode), each thread
//    writes its own copy on its stack and does one share of the rows: reading
//    tables another core wrote costs more than writing them again.
//  * For 16 rows x 4 groups, one `vpermb` looks up the 64 low bytes and one
//    the high bytes (index = nibble | group << 4), and `vpdpbusd` sums each
//    row's four low bytes and four high bytes (unsigned), each times its
//    group's sign (+1 or -1, signed), into int32: 256 * high + low is
//    sum(s * T) + 512 * sum(s), and the second term, fixed by the weights,
//    is a per-row constant of the layout that starts the sum.
//
// Prefill-sized steps (12 tokens or more) do not look tables up: per call,
// the codes of two tiles (32 rows) over all of K are decoded once into a
// stack buffer (three `vpermb`, one per digit, then the sign), and passes
// of 12 tokens take int8 dot products with them (`vpdpbusd`, the MAD
// kernel's prefill loop). Digit d of the four groups of a 16-row tile's
// chunk lands in one vector: lane r holds row r's columns 12c + 3g + d,
// g = 0..3, as codes w + 1; each token's quantised activations are copied
// once in that order (per chunk, the 4 bytes of digit 0, then 1, then 2),
// so that one 32-bit broadcast meets them, and sum(x) is taken off at the
// end. The weights then cost what the MAD layout's do in prefill, at 1.67
// bits a weight for the one-token step beside it.
//
// Layout, for B = ceil(N / 64) row blocks and C = ceil(K / 12) column
// chunks: per block, 64 int16 row constants sum(s) (128 bytes), then
// bytes[C][160]. In each 160 bytes, bytes [64p, 64p + 64) hold the nibbles
// of tiles 2p (low nibble) and 2p + 1 (high nibble), p = 0, 1, and bytes
// [128 + 8t, 136 + 8t) the 64 sign bits of tile t. Tile t covers rows
// 64b + 16t .. + 15; position q of a tile is row q / 4 and group q % 4, that
// is columns 12c + 3 (q % 4) .. + 2. Weights past the matrix's edges are
// zero. That is 5 bits per three weights plus 16 bits per row.
//
//===----------------------------------------------------------------------===//

#include "KernelLowerings.h"
#include "KernelSupport.h"

#include "bitnet/Dialect/BitNet/IR/BitNet.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "llvm/Support/FormatVariadic.h"

using namespace mlir;
using namespace mlir::bitnet;

static constexpr int64_t kTileRows = 16;
static constexpr int64_t kTilesPerBlock = 4;
static constexpr int64_t kBlockRows = kTileRows * kTilesPerBlock;
static constexpr int64_t kGroupsPerChunk = 4;
static constexpr int64_t kChunkCols = 3 * kGroupsPerChunk;
static constexpr int64_t kChunkBytes = 2 * 64 + kTilesPerBlock * 8;
static constexpr int64_t kTableBytes = 2 * 64;
static constexpr int64_t kRowConstantBytes = 2 * kBlockRows;
/// Added to every table entry: T + 512 is in [128, 896].
static constexpr int kTableOffset = 512;
/// Prefill-sized steps: tokens a pass, tiles a pass, and the largest stack
/// buffer of decoded codes (bytes: three digit vectors of 64 bytes per
/// tile and chunk), as the MAD kernel's prefill loop.
static constexpr int64_t kUnpackTokensPerPass = 12;
static constexpr int64_t kUnpackTilesPerPass = 2;
static constexpr int64_t kUnpackedChunkBytes = 3 * kUnpackTilesPerPass * 64;
static constexpr int64_t kMaxUnpackedBytes = 256 * 1024;

static int64_t blockBytes(int64_t k) {
  return kRowConstantBytes + llvm::divideCeil(k, kChunkCols) * kChunkBytes;
}

int64_t mlir::bitnet::lutWeightBytes(int64_t n, int64_t k) {
  return llvm::divideCeil(n, kBlockRows) * blockBytes(k);
}

bool mlir::bitnet::lutUsesUnpackLoop(int64_t m, int64_t k) {
  return m >= kUnpackTokensPerPass &&
         llvm::divideCeil(k, kChunkCols) * kUnpackedChunkBytes <=
             kMaxUnpackedBytes;
}

/// The balanced-ternary digits (w0, w1, w2) of 0 <= i <= 13.
static std::array<int, 3> digitsOf(int i) {
  std::array<int, 3> d{};
  for (int place = 2; place >= 0; --place) {
    int r = ((i % 3) + 3) % 3;
    d[place] = r == 2 ? -1 : r;
    i = (i - d[place]) / 3;
  }
  return d;
}

/// Lays out `n x k` ternary values (row-major int8) in the LUT layout.
static SmallVector<int8_t> layoutLUT(ArrayRef<int8_t> w, int64_t n,
                                     int64_t k) {
  int64_t blocks = llvm::divideCeil(n, kBlockRows);
  int64_t chunks = llvm::divideCeil(k, kChunkCols);
  SmallVector<int8_t> bytes(blocks * blockBytes(k), 0);
  auto weight = [&](int64_t row, int64_t col) -> int {
    if (row >= n || col >= k)
      return 0;
    return std::clamp<int>(w[row * k + col], -1, 1);
  };
  for (int64_t blk = 0; blk < blocks; ++blk) {
    int8_t *block = &bytes[blk * blockBytes(k)];
    // sum(s) per row: +1 for each group of three with v >= 0, -1 below.
    SmallVector<int64_t> signSums(kBlockRows, 4 * chunks);
    for (int64_t c = 0; c < chunks; ++c) {
      int8_t *chunk = block + kRowConstantBytes + c * kChunkBytes;
      for (int64_t t = 0; t < kTilesPerBlock; ++t) {
        uint64_t signs = 0;
        for (int64_t q = 0; q < 64; ++q) {
          int64_t row = blk * kBlockRows + t * kTileRows + q / 4;
          int64_t col = c * kChunkCols + 3 * (q % 4);
          int v = 9 * weight(row, col) + 3 * weight(row, col + 1) +
                  weight(row, col + 2);
          unsigned nibble = static_cast<unsigned>(std::abs(v));
          if (v < 0) {
            signs |= uint64_t(1) << q;
            signSums[t * kTileRows + q / 4] -= 2;
          }
          auto &byte = reinterpret_cast<uint8_t &>(chunk[64 * (t / 2) + q]);
          byte |= nibble << (4 * (t % 2));
        }
        for (int64_t i = 0; i < 8; ++i)
          chunk[128 + 8 * t + i] = static_cast<int8_t>(signs >> (8 * i));
      }
    }
    for (int64_t r = 0; r < kBlockRows; ++r) {
      auto sum = static_cast<uint16_t>(static_cast<int16_t>(signSums[r]));
      block[2 * r] = static_cast<int8_t>(sum & 0xFF);
      block[2 * r + 1] = static_cast<int8_t>(sum >> 8);
    }
  }
  return bytes;
}

namespace {
/// Emits the LLVM-dialect functions of the LUT kernel of one (M, N, K).
class LUTKernelEmitter : KernelEmitterBase {
public:
  LUTKernelEmitter(ModuleOp module, int64_t m, int64_t n, int64_t k,
                   int64_t prefetchDistance)
      : KernelEmitterBase(module), m(m), n(n), k(k),
        prefetchDistance(prefetchDistance),
        blocks(llvm::divideCeil(n, kBlockRows)),
        chunks(llvm::divideCeil(k, kChunkCols)),
        // 16 bytes readable from every chunk's start.
        rowStride(llvm::alignTo(chunks * kChunkCols + 4, 64)),
        unpacks(lutUsesUnpackLoop(m, k)),
        // Decoding once per call: the quantised tokens, then the same in the
        // decoded codes' order, in place of the tables.
        tablesBytes(unpacks ? m * rowStride : m * chunks * kTableBytes),
        xqOffset(tablesBytes), sxOffset(tablesBytes + m * rowStride),
        xsumOffset(sxOffset + 4 * m) {
    i8 = b.getI8Type();
    i16 = b.getI16Type();
    i32 = b.getI32Type();
    bytesV = VectorType::get({64}, i8);
    wordsV = VectorType::get({16}, i32);
  }

  /// Tables (or reordered codes), quantised tokens, scales, and with the
  /// codes decoded once per call the tokens' sums.
  int64_t scratchBytes() const { return xsumOffset + (unpacks ? 4 * m : 0); }

  /// The memref wrapper of the kernel (operand types x, w, s_w, y,
  /// scratch), created on first use.
  func::FuncOp getOrCreate(ArrayRef<Type> memrefTypes);

private:
  std::string baseName() const {
    return llvm::formatv("__bitnet_lut_avx512{0}_{1}x{2}x{3}",
                         unpacks ? "_unpack" : "", m, n, k)
        .str();
  }
  Value splat(OpBuilder &ob, VectorType type, int64_t v) {
    return arith::ConstantOp::create(
        ob, loc,
        DenseElementsAttr::get(type, IntegerAttr::get(type.getElementType(), v)));
  }
  Value intrinsic(OpBuilder &ob, Type type, StringRef name, ValueRange args) {
    return LLVM::CallIntrinsicOp::create(ob, loc, type, ob.getStringAttr(name),
                                         args)
        .getResult(0);
  }
  /// A chunk function over row blocks [begin, end), args = {scratch, w, y,
  /// ws}, with the builder in its entry block.
  struct BlockChunk {
    LLVM::LLVMFuncOp func;
    Value begin, end, scratch, w, y, ws;
  };
  BlockChunk beginBlockChunk();
  /// Stores (float(acc) * ws) / s_x of token `tok` (the contract's
  /// rescaling) at rows `row0` .. of y.
  void storeRescaled(OpBuilder &tb, const BlockChunk &c, Value acc,
                     Value tok, Value row0);
  LLVM::LLVMFuncOp createPrepare();
  LLVM::LLVMFuncOp createChunk();
  LLVM::LLVMFuncOp createUnpackedChunk();
  LLVM::LLVMFuncOp createOneToken(LLVM::LLVMFuncOp prepare,
                                  LLVM::LLVMFuncOp chunk);
  LLVM::LLVMFuncOp createMain(LLVM::LLVMFuncOp prepare,
                              LLVM::LLVMFuncOp chunk,
                              LLVM::LLVMFuncOp oneToken);

  int64_t m, n, k, prefetchDistance, blocks, chunks, rowStride;
  bool unpacks;
  int64_t tablesBytes, xqOffset, sxOffset, xsumOffset;
  Type i8, i16, i32;
  VectorType bytesV, wordsV;
};
} // namespace

// void prepare(args, begin, end): tokens [begin, end) of x are quantised
// into the scratch, then their tables are written. args = {x, scratch}.
LLVM::LLVMFuncOp LUTKernelEmitter::createPrepare() {
  OpBuilder::InsertionGuard guard(b);
  LLVM::LLVMFuncOp func = beginChunk(baseName() + "_prepare");
  Block *entry = &func.getBody().front();
  Value args = entry->getArgument(0);
  Value begin = entry->getArgument(1), end = entry->getArgument(2);
  Value x = field(b, args, 0), scratch = field(b, args, 1);

  // Lane 16 j + i of the tables of one chunk: group j, entry i (0 past 13).
  // T = sum over d of digit_d(i) * x[12 c + 3 j + d].
  auto wideV = VectorType::get({64}, i16);
  auto in16 = VectorType::get({16}, i8);
  SmallVector<Value> digitVectors;
  SmallVector<SmallVector<int64_t>> pickMasks(3);
  for (int d = 0; d < 3; ++d) {
    SmallVector<int16_t> digits;
    for (int64_t lane = 0; lane < 64; ++lane) {
      int64_t j = lane / 16, i = lane % 16;
      digits.push_back(i <= 13 ? digitsOf(static_cast<int>(i))[d] : 0);
      pickMasks[d].push_back(3 * j + d);
    }
    digitVectors.push_back(arith::ConstantOp::create(
        b, loc, DenseElementsAttr::get(wideV, ArrayRef(digits))));
  }
  SmallVector<int64_t> lowBytes, highBytes;
  for (int64_t e = 0; e < 64; ++e) {
    lowBytes.push_back(2 * e);
    highBytes.push_back(2 * e + 1);
  }
  Value offsetWide = splat(b, wideV, kTableOffset);
  auto tableBytesV = VectorType::get({128}, i8);

  scf::ForOp::create(
      b, loc, begin, end, cI64(b, 1), ValueRange{},
      [&](OpBuilder &tb, Location, Value tok, ValueRange) {
        Value xRow = gep(tb, x, mul(tb, tok, 4 * k));
        Value qRow = gep(tb, scratch, add(tb, cI64(tb, xqOffset),
                                          mul(tb, tok, rowStride)));
        auto [sum, scale] = quantizeRow(tb, xRow, qRow, k, rowStride);
        store(tb, scale, gep(tb, scratch, add(tb, cI64(tb, sxOffset),
                                              mul(tb, tok, 4))));
        if (unpacks) {
          // sum(x), and the codes in the decoded weights' order: per chunk,
          // x[12 c + 3 g + d] at 12 c + 4 d + g. Each chunk's 16-byte store
          // spills 4 bytes the next one overwrites (the last into the row's
          // padding).
          store(tb, sum, gep(tb, scratch, add(tb, cI64(tb, xsumOffset),
                                              mul(tb, tok, 4))));
          Value out = gep(tb, scratch, mul(tb, tok, rowStride));
          SmallVector<int64_t> order;
          for (int64_t d = 0; d < 3; ++d)
            for (int64_t g = 0; g < 4; ++g)
              order.push_back(3 * g + d);
          for (int64_t i = 12; i < 16; ++i)
            order.push_back(i);
          loop(tb, cI64(tb, 0), cI64(tb, chunks), 1, {},
               [&](OpBuilder &lb, Value c, ValueRange) -> SmallVector<Value> {
                 Value at = mul(lb, c, kChunkCols);
                 Value xs = load(lb, in16, gep(lb, qRow, at));
                 store(lb, vector::ShuffleOp::create(lb, loc, xs, xs, order),
                       gep(lb, out, at));
                 return {};
               });
          scf::YieldOp::create(tb, loc);
          return;
        }
        Value tables =
            gep(tb, scratch, mul(tb, tok, chunks * kTableBytes));
        loop(tb, cI64(tb, 0), cI64(tb, chunks), 1, {},
             [&](OpBuilder &lb, Value c, ValueRange) -> SmallVector<Value> {
               Value xs = load(lb, in16, gep(lb, qRow, mul(lb, c, kChunkCols)));
               Value t = offsetWide;
               for (int d = 0; d < 3; ++d) {
                 Value picked =
                     vector::ShuffleOp::create(lb, loc, xs, xs, pickMasks[d]);
                 Value wide = arith::ExtSIOp::create(lb, loc, wideV, picked);
                 t = arith::AddIOp::create(
                     lb, loc, t,
                     arith::MulIOp::create(lb, loc, wide, digitVectors[d]));
               }
               Value out = gep(lb, tables, mul(lb, c, kTableBytes));
               Value bytes = vector::BitCastOp::create(lb, loc, tableBytesV, t);
               Value parts[] = {
                   vector::ShuffleOp::create(lb, loc, bytes, bytes, lowBytes),
                   vector::ShuffleOp::create(lb, loc, bytes, bytes,
                                             highBytes)};
               for (auto [i, part] : llvm::enumerate(parts))
                 store(lb, part,
                       gep(lb, out, cI64(lb, 64 * static_cast<int64_t>(i))));
               return {};
             });
        scf::YieldOp::create(tb, loc);
      });
  LLVM::ReturnOp::create(b, loc, ValueRange{});
  return func;
}

LUTKernelEmitter::BlockChunk LUTKernelEmitter::beginBlockChunk() {
  BlockChunk c;
  c.func = beginChunk(baseName() + "_chunk");
  Block *entry = &c.func.getBody().front();
  Value args = entry->getArgument(0);
  c.begin = entry->getArgument(1);
  c.end = entry->getArgument(2);
  c.scratch = field(b, args, 0);
  c.w = field(b, args, 1);
  c.y = field(b, args, 2);
  c.ws = load(b, f32, field(b, args, 3));
  return c;
}

void LUTKernelEmitter::storeRescaled(OpBuilder &tb, const BlockChunk &c,
                                     Value acc, Value tok, Value row0) {
  auto floatsV = VectorType::get({16}, f32);
  Value scaleX = load(tb, f32, gep(tb, c.scratch, add(tb, cI64(tb, sxOffset),
                                                      mul(tb, tok, 4))));
  Value yv = arith::SIToFPOp::create(tb, loc, floatsV, acc);
  yv = arith::MulFOp::create(
      tb, loc, yv, vector::BroadcastOp::create(tb, loc, floatsV, c.ws));
  yv = arith::DivFOp::create(
      tb, loc, yv, vector::BroadcastOp::create(tb, loc, floatsV, scaleX));
  Value out = gep(tb, c.y, mul(tb, add(tb, mul(tb, tok, n), row0), 4));
  storeClipped(tb, yv, out, row0, n);
}

// void chunk(args, begin, end): row blocks [begin, end) of every token.
// args = {scratch, w, y, ws}.
LLVM::LLVMFuncOp LUTKernelEmitter::createChunk() {
  OpBuilder::InsertionGuard guard(b);
  BlockChunk chunkArgs = beginBlockChunk();
  Value scratch = chunkArgs.scratch, w = chunkArgs.w;
  auto maskV = VectorType::get({64}, b.getI1Type());
  auto halfsV = VectorType::get({32}, i16);

  Value lowNibbles = splat(b, bytesV, 0x0F);
  Value plusOne = splat(b, bytesV, 1), minusOne = splat(b, bytesV, -1);
  Value four = splat(b, halfsV, 4);
  auto rowConstantsV = VectorType::get({16}, i16);
  SmallVector<int8_t> groupBits;
  for (int64_t q = 0; q < 64; ++q)
    groupBits.push_back(static_cast<int8_t>((q % 4) << 4));
  Value groupSelect = arith::ConstantOp::create(
      b, loc, DenseElementsAttr::get(bytesV, ArrayRef(groupBits)));

  loop(b, chunkArgs.begin, chunkArgs.end, 1, {}, [&](OpBuilder &gb, Value blk, ValueRange) -> SmallVector<Value> {
    Value blockStart = gep(gb, w, mul(gb, blk, blockBytes(k)));
    Value blockBase = gep(gb, blockStart, cI64(gb, kRowConstantBytes));
    // Each tile's sum starts at -512 * sum(s), the tables' offset.
    SmallVector<Value> init;
    for (int64_t t = 0; t < kTilesPerBlock; ++t) {
      Value sums = arith::ExtSIOp::create(
          gb, loc, wordsV,
          load(gb, rowConstantsV, gep(gb, blockStart, cI64(gb, 32 * t))));
      init.push_back(arith::MulIOp::create(gb, loc, sums,
                                           splat(gb, wordsV, -kTableOffset)));
      init.push_back(splat(gb, wordsV, 0));
    }
    loop(gb, cI64(gb, 0), cI64(gb, m), 1, {},
         [&](OpBuilder &tb, Value tok, ValueRange) -> SmallVector<Value> {
           Value tables = gep(tb, scratch, mul(tb, tok, chunks * kTableBytes));
           scf::ForOp kLoop = loop(
               tb, cI64(tb, 0), cI64(tb, chunks), 1, init,
               [&](OpBuilder &kb, Value c, ValueRange accs) {
                 Value table = gep(kb, tables, mul(kb, c, kTableBytes));
                 Value lowTable = load(kb, bytesV, table);
                 Value highTable = load(kb, bytesV, gep(kb, table, cI64(kb, 64)));
                 Value base = gep(kb, blockBase, mul(kb, c, kChunkBytes));
                 if (prefetchDistance > 0)
                   prefetchLines(kb, base, prefetchDistance, kChunkBytes);
                 SmallVector<Value> next(accs.begin(), accs.end());
                 for (int64_t pair = 0; pair < 2; ++pair) {
                   Value nibbles = load(kb, bytesV, gep(kb, base, cI64(kb, 64 * pair)));
                   Value high = vector::BitCastOp::create(
                       kb, loc, bytesV,
                       arith::ShRUIOp::create(
                           kb, loc,
                           vector::BitCastOp::create(kb, loc, halfsV, nibbles),
                           four));
                   Value halves[] = {nibbles, high};
                   for (int64_t h = 0; h < 2; ++h) {
                     int64_t t = 2 * pair + h;
                     Value index = arith::OrIOp::create(
                         kb, loc,
                         arith::AndIOp::create(kb, loc, halves[h], lowNibbles),
                         groupSelect);
                     Value signs = LLVM::BitcastOp::create(
                         kb, loc, maskV,
                         load(kb, i64, gep(kb, base, cI64(kb, 128 + 8 * t))));
                     Value sign = arith::SelectOp::create(kb, loc, signs,
                                                          minusOne, plusOne);
                     Value low = intrinsic(kb, bytesV,
                                           "llvm.x86.avx512.permvar.qi.512",
                                           {lowTable, index});
                     Value high = intrinsic(kb, bytesV,
                                            "llvm.x86.avx512.permvar.qi.512",
                                            {highTable, index});
                     // Table bytes (unsigned) times the groups' signs.
                     next[2 * t] = intrinsic(kb, wordsV,
                                             "llvm.x86.avx512.vpdpbusd.512",
                                             {next[2 * t], low, sign});
                     next[2 * t + 1] =
                         intrinsic(kb, wordsV, "llvm.x86.avx512.vpdpbusd.512",
                                   {next[2 * t + 1], high, sign});
                   }
                 }
                 return next;
               });
           Value eight = splat(tb, wordsV, 8);
           for (int64_t t = 0; t < kTilesPerBlock; ++t) {
             Value acc = arith::AddIOp::create(
                 tb, loc,
                 arith::ShLIOp::create(tb, loc, kLoop.getResult(2 * t + 1),
                                       eight),
                 kLoop.getResult(2 * t));
             storeRescaled(tb, chunkArgs, acc, tok,
                           add(tb, mul(tb, blk, kBlockRows),
                               cI64(tb, kTileRows * t)));
           }
           return {};
         });
    return {};
  });
  LLVM::ReturnOp::create(b, loc, ValueRange{});
  return chunkArgs.func;
}

// void unpackedChunk(args, begin, end): row blocks [begin, end) of every
// token, for prefill-sized steps. Per two tiles, the codes of all chunks are
// decoded into a stack buffer: bytes [c][d][tile][64], lane r of digit d
// holding the codes of columns 12 c + 3 g + d of row r (g = 0..3, bytes
// 4 r + g). Then passes of up to 12 tokens take their dot products with
// each token's reordered codes (args = {scratch, w, y, ws}).
LLVM::LLVMFuncOp LUTKernelEmitter::createUnpackedChunk() {
  OpBuilder::InsertionGuard guard(b);
  BlockChunk chunkArgs = beginBlockChunk();
  Value scratch = chunkArgs.scratch;
  auto maskV = VectorType::get({64}, b.getI1Type());
  auto halfsV = VectorType::get({32}, i16);
  constexpr int64_t r = kUnpackTilesPerPass;
  Value unpacked = LLVM::AllocaOp::create(
      b, loc, ptr, i8, cI64(b, chunks * kUnpackedChunkBytes), 64);
  Value lowNibbles = splat(b, bytesV, 0x0F), two = splat(b, bytesV, 2);
  Value four = splat(b, halfsV, 4);
  Value zeroAcc = splat(b, wordsV, 0);
  // Entry i of digit d's table: digit d of i (balanced ternary) + 1.
  SmallVector<Value> digitTables;
  for (int d = 0; d < 3; ++d) {
    SmallVector<int8_t> codes;
    for (int64_t i = 0; i < 64; ++i)
      codes.push_back(static_cast<int8_t>(
          i <= 13 ? digitsOf(static_cast<int>(i))[d] + 1 : 1));
    digitTables.push_back(arith::ConstantOp::create(
        b, loc, DenseElementsAttr::get(bytesV, ArrayRef(codes))));
  }
  auto codesAt = [&](OpBuilder &ob, Value c, int64_t d, int64_t tile) {
    return gep(ob, unpacked, add(ob, mul(ob, c, kUnpackedChunkBytes),
                                 cI64(ob, (d * r + tile) * 64)));
  };

  loop(b, chunkArgs.begin, chunkArgs.end, 1, {},
       [&](OpBuilder &gb, Value blk, ValueRange) -> SmallVector<Value> {
    Value blockBase = gep(gb, chunkArgs.w, add(gb, mul(gb, blk, blockBytes(k)),
                                     cI64(gb, kRowConstantBytes)));
    // Tiles 2 pair and 2 pair + 1 share the nibble bytes [64 pair, + 64).
    for (int64_t pair = 0; pair < kTilesPerBlock / r; ++pair) {
      loop(gb, cI64(gb, 0), cI64(gb, chunks), 1, {},
           [&](OpBuilder &kb, Value c, ValueRange) -> SmallVector<Value> {
             Value base = gep(kb, blockBase, mul(kb, c, kChunkBytes));
             Value nibbles =
                 load(kb, bytesV, gep(kb, base, cI64(kb, 64 * pair)));
             Value halves[] = {
                 nibbles, vector::BitCastOp::create(
                              kb, loc, bytesV,
                              arith::ShRUIOp::create(
                                  kb, loc,
                                  vector::BitCastOp::create(kb, loc, halfsV,
                                                            nibbles),
                                  four))};
             for (int64_t tile = 0; tile < r; ++tile) {
               int64_t t = r * pair + tile;
               Value index =
                   arith::AndIOp::create(kb, loc, halves[tile], lowNibbles);
               Value negative = LLVM::BitcastOp::create(
                   kb, loc, maskV,
                   load(kb, i64, gep(kb, base, cI64(kb, 128 + 8 * t))));
               for (int64_t d = 0; d < 3; ++d) {
                 Value code = intrinsic(kb, bytesV,
                                        "llvm.x86.avx512.permvar.qi.512",
                                        {digitTables[d], index});
                 // A negative group's digits change sign: w + 1 -> 1 - w.
                 code = arith::SelectOp::create(
                     kb, loc, negative,
                     arith::SubIOp::create(kb, loc, two, code), code);
                 store(kb, code, codesAt(kb, c, d, tile));
               }
             }
             return {};
           });
      auto pass = [&](OpBuilder &tb, Value tok0, int64_t tokens) {
        SmallVector<Value> toks;
        for (int64_t u = 0; u < tokens; ++u)
          toks.push_back(add(tb, tok0, cI64(tb, u)));
        scf::ForOp kLoop = loop(
            tb, cI64(tb, 0), cI64(tb, chunks), 1,
            SmallVector<Value>(r * tokens, zeroAcc),
            [&](OpBuilder &kb, Value c, ValueRange accs) {
              SmallVector<Value> next(accs.begin(), accs.end());
              for (int64_t d = 0; d < 3; ++d) {
                SmallVector<Value> codes;
                for (int64_t tile = 0; tile < r; ++tile)
                  codes.push_back(load(kb, bytesV, codesAt(kb, c, d, tile)));
                Value column = add(kb, mul(kb, c, kChunkCols), cI64(kb, 4 * d));
                for (int64_t u = 0; u < tokens; ++u) {
                  Value word = load(
                      kb, i32,
                      gep(kb, scratch,
                          add(kb, mul(kb, toks[u], rowStride), column)));
                  Value xs = LLVM::BitcastOp::create(
                      kb, loc, bytesV,
                      vector::BroadcastOp::create(kb, loc, wordsV, word));
                  for (int64_t tile = 0; tile < r; ++tile)
                    next[tile * tokens + u] = intrinsic(
                        kb, wordsV, "llvm.x86.avx512.vpdpbusd.512",
                        {next[tile * tokens + u], codes[tile], xs});
                }
              }
              return next;
            });
        for (int64_t u = 0; u < tokens; ++u) {
          Value sum = load(tb, i32, gep(tb, scratch,
                                        add(tb, cI64(tb, xsumOffset),
                                            mul(tb, toks[u], 4))));
          for (int64_t tile = 0; tile < r; ++tile) {
            // sum((w + 1) x) - sum(x).
            Value acc = arith::SubIOp::create(
                tb, loc, kLoop.getResult(tile * tokens + u),
                vector::BroadcastOp::create(tb, loc, wordsV, sum));
            storeRescaled(tb, chunkArgs, acc, toks[u],
                          add(tb, mul(tb, blk, kBlockRows),
                              cI64(tb, kTileRows * (r * pair + tile))));
          }
        }
      };
      int64_t full = m / kUnpackTokensPerPass, rest = m % kUnpackTokensPerPass;
      loop(gb, cI64(gb, 0), cI64(gb, full), 1, {},
           [&](OpBuilder &tb, Value p, ValueRange) -> SmallVector<Value> {
             pass(tb, mul(tb, p, kUnpackTokensPerPass), kUnpackTokensPerPass);
             return {};
           });
      if (rest > 0)
        pass(gb, cI64(gb, full * kUnpackTokensPerPass), rest);
    }
    return {};
  });
  LLVM::ReturnOp::create(b, loc, ValueRange{});
  return chunkArgs.func;
}

// void oneToken(args, begin, end): one token (m = 1), the rows split into
// `parts` equal ranges of blocks; this call does parts [begin, end) with
// tables of its own, on its stack. args = {x, w, y, ws, &parts}.
// A thread that reads tables another core wrote waits for them line by line;
// building them again (a few microseconds) is cheaper.
LLVM::LLVMFuncOp LUTKernelEmitter::createOneToken(LLVM::LLVMFuncOp prepare,
                                                  LLVM::LLVMFuncOp chunk) {
  OpBuilder::InsertionGuard guard(b);
  LLVM::LLVMFuncOp func = beginChunk(baseName() + "_one_token");
  Block *entry = &func.getBody().front();
  Value args = entry->getArgument(0);
  Value begin = entry->getArgument(1), end = entry->getArgument(2);
  Value x = field(b, args, 0), w = field(b, args, 1), y = field(b, args, 2),
        wsPtr = field(b, args, 3);
  Value parts = load(b, i64, field(b, args, 4));
  Value local = LLVM::AllocaOp::create(b, loc, ptr, i8,
                                       cI64(b, scratchBytes()), 64);
  auto firstBlock = [&](Value part) {
    return arith::DivSIOp::create(b, loc, mul(b, part, blocks), parts)
        .getResult();
  };
  Value lo = firstBlock(begin), hi = firstBlock(end);
  Value any = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt, lo, hi);
  auto ifAny = scf::IfOp::create(b, loc, any, /*else=*/false);
  b.setInsertionPointToStart(ifAny.thenBlock());
  LLVM::CallOp::create(b, loc, prepare,
                       ValueRange{pointerTable(b, {x, local}), cI64(b, 0),
                                  cI64(b, 1)});
  LLVM::CallOp::create(b, loc, chunk,
                       ValueRange{pointerTable(b, {local, w, y, wsPtr}), lo, hi});
  b.setInsertionPointAfter(ifAny);
  LLVM::ReturnOp::create(b, loc, ValueRange{});
  return func;
}

// void main(x, w, ws, y, scratch): every token's quantisation and tables,
// then the row blocks through the caller's parallel_for (or on this thread).
// One token: each thread builds its own tables (oneToken).
LLVM::LLVMFuncOp LUTKernelEmitter::createMain(LLVM::LLVMFuncOp prepare,
                                              LLVM::LLVMFuncOp chunk,
                                              LLVM::LLVMFuncOp oneToken) {
  OpBuilder::InsertionGuard guard(b);
  LLVM::LLVMFuncOp func = beginKernel(baseName(), 5);
  Block *entry = &func.getBody().front();
  Value x = entry->getArgument(0), w = entry->getArgument(1),
        wsPtr = entry->getArgument(2), y = entry->getArgument(3),
        scratch = entry->getArgument(4);

  ExecCtxCalls calls(b, loc);
  Value name = LLVM::AddressOfOp::create(
      b, loc,
      getOrCreateKernelName(
          module, baseName() + "_name",
          llvm::formatv("bitlinear lut_avx512{0} {1}x{2}x{3}",
                        unpacks ? "_unpack" : "", m, n, k)
              .str()));
  calls.kernelBegin(name, lutWeightBytes(n, k) + 4 * m * k + 4 * m * n,
                    2 * m * n * k);
  if (oneToken) {
    // As many parts as threads (no more than blocks).
    Value parts = arith::MinSIOp::create(b, loc, calls.numThreads(),
                                         cI64(b, blocks));
    Value partsPtr = LLVM::AllocaOp::create(b, loc, ptr, i64, cI64(b, 1), 8);
    store(b, parts, partsPtr);
    calls.dispatch(oneToken, pointerTable(b, {x, w, y, wsPtr, partsPtr}),
                   parts);
  } else {
    calls.dispatch(prepare, pointerTable(b, {x, scratch}), m,
                   /*spread=*/m > 1);
    calls.dispatch(chunk, pointerTable(b, {scratch, w, y, wsPtr}), blocks,
                   /*spread=*/true);
  }
  calls.kernelEnd(name);
  LLVM::ReturnOp::create(b, loc, ValueRange{});
  return func;
}

func::FuncOp LUTKernelEmitter::getOrCreate(ArrayRef<Type> memrefTypes) {
  std::string wrapperName = baseName() + "_memref";
  if (auto existing = module.lookupSymbol<func::FuncOp>(wrapperName))
    return existing;
  ensureExecCtxGlobal(module);
  LLVM::LLVMFuncOp prepare = createPrepare();
  LLVM::LLVMFuncOp chunk = unpacks ? createUnpackedChunk() : createChunk();
  LLVM::LLVMFuncOp oneToken = m == 1 ? createOneToken(prepare, chunk) : nullptr;
  LLVM::LLVMFuncOp kernel = createMain(prepare, chunk, oneToken);
  return createMemRefWrapper(module, wrapperName, memrefTypes, kernel);
}

void mlir::bitnet::lowerBitLinearToLUTKernel(
    ModuleOp module, BitLinearOp op, ArrayRef<int8_t> weights,
    int64_t prefetchDistance, ArrayRef<NamedAttribute> choice) {
  TernaryType wType = op.getWeight().getType();
  int64_t n = wType.getRows(), k = wType.getCols();
  int64_t m = op.getInput().getType().getNumElements() / k;
  LUTKernelEmitter emitter(module, m, n, k, prefetchDistance);
  // One token builds its tables on each thread's stack (oneToken), so its
  // workspace scratch is a token 64 bytes.
  int64_t scratchBytes = m == 1 ? 64 : emitter.scratchBytes();
  replaceByBitLinearKernel(
      op, layoutLUT(weights, n, k), scratchBytes,
      [&](ArrayRef<Type> types) { return emitter.getOrCreate(types); },
      choice);
}
