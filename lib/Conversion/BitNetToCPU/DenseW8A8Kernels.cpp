//===- DenseW8A8Kernels.cpp - Int8 dense kernels for CPUs -------*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// Lowers `bitnet.dense_matmul` with `quantize_input` (an i8 weight, one scale
// per row: W8A8) to a kernel for AVX-512 VNNI specialised for its shape:
//
//  * each token's row is quantised as the numerics contract quantises
//    activations (s_x and int8 codes), into the kernel's scratch, stored as
//    unsigned bytes xq + 128, so that one `vpdpbusd` takes 64 of them
//    against 64 weights of a row (signed) into 16 int32 lanes;
//    sum((xq + 128) * w) - 128 * sum(w) is the exact int32 sum, sum(w) a
//    constant of each row computed at compile time;
//  * the weight is the op's own int8 constant (which a tied embedding
//    shares) when K is a multiple of 64; otherwise a copy with rows padded
//    to one with zeros;
//  * rows go in blocks of as many rows as the float kernel's block holds
//    vectors (16 with AVX-512), one accumulator each, each row's stream
//    prefetched as far ahead as the float kernel's on the target CPU; the
//    blocks are spread over the thread pool;
//  * y = (float(acc) * scales[n]) / s_x, as the reference: bit for bit.
//
// A weight byte is read once per token, so the kernel streams at the memory's
// pace where the f32 widening of the plain int8 kernel set it.
//
//===----------------------------------------------------------------------===//

#include "KernelLowerings.h"
#include "KernelSupport.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/Matchers.h"
#include "llvm/Support/FormatVariadic.h"

using namespace mlir;
using namespace mlir::bitnet;

/// Weight bytes a `vpdpbusd` takes for one row (16 int32 lanes x 4).
static constexpr int64_t kStepBytes = 64;
/// The largest K whose sums of (xq + 128) * w stay in int32:
/// 65536 * 255 * 128 < 2^31.
static constexpr int64_t kMaxColumns = 65536;

namespace {
class DenseW8A8KernelEmitter : KernelEmitterBase {
public:
  DenseW8A8KernelEmitter(ModuleOp module, int64_t m, int64_t n, int64_t k,
                         int64_t blockRows, int64_t prefetch, bool blocked)
      : KernelEmitterBase(module), m(m), n(n), k(k),
        kPad(llvm::alignTo(k, kStepBytes)), blockRows(blockRows),
        prefetch(prefetch), blocks(llvm::divideCeil(n, blockRows)),
        blocked(blocked) {
    i8 = b.getI8Type();
    i32 = b.getI32Type();
    bytesV = VectorType::get({kStepBytes}, i8);
    wordsV = VectorType::get({kStepBytes / 4}, i32);
  }

  int64_t paddedColumns() const { return kPad; }
  /// Codes of every token (kPad bytes each), then their scales (f32).
  int64_t scratchBytes() const { return m * kPad + 4 * m; }

  /// The memref wrapper (operands x, w, row sums, scales, y, scratch).
  func::FuncOp getOrCreate(ArrayRef<Type> memrefTypes) {
    std::string wrapperName = baseName() + "_memref";
    if (auto existing = module.lookupSymbol<func::FuncOp>(wrapperName))
      return existing;
    ensureExecCtxGlobal(module);
    LLVM::LLVMFuncOp quantize = createQuantize();
    LLVM::LLVMFuncOp chunk = createChunk();
    LLVM::LLVMFuncOp kernel = createMain(quantize, chunk);
    return createMemRefWrapper(module, wrapperName, memrefTypes, kernel);
  }

private:
  std::string baseName() const {
    return llvm::formatv("__bitnet_dense_w8a8_{0}x{1}x{2}{3}", m, n, k,
                         blocked ? llvm::formatv("_blocked{0}x{1}", blockRows,
                                                 kStepBytes)
                                       .str()
                                 : "")
        .str();
  }
  int64_t scalesOffset() const { return m * kPad; }

  LLVM::LLVMFuncOp createQuantize();
  LLVM::LLVMFuncOp createChunk();
  LLVM::LLVMFuncOp createMain(LLVM::LLVMFuncOp quantize,
                              LLVM::LLVMFuncOp chunk);

  int64_t m, n, k, kPad, blockRows, prefetch, blocks;
  /// The weight is stored in blocks of blockRows rows by 64 columns
  /// (blockDenseWeight), which divide N and K.
  bool blocked;
  Type i8, i32;
  VectorType bytesV, wordsV;
};
} // namespace

// void quantize(args, begin, end): tokens [begin, end). args = {x, scratch}.
LLVM::LLVMFuncOp DenseW8A8KernelEmitter::createQuantize() {
  OpBuilder::InsertionGuard guard(b);
  LLVM::LLVMFuncOp func = beginChunk(baseName() + "_quantize");
  Block *entry = &func.getBody().front();
  Value args = entry->getArgument(0);
  Value begin = entry->getArgument(1), end = entry->getArgument(2);
  Value x = field(b, args, 0), scratch = field(b, args, 1);
  loop(b, begin, end, 1, {}, [&](OpBuilder &tb, Value tok, ValueRange) {
    Value codes = gep(tb, scratch, mul(tb, tok, kPad));
    Value scale =
        quantizeRow(tb, gep(tb, x, mul(tb, tok, 4 * k)), codes, k, kPad)
            .second;
    // xq + 128 as unsigned bytes (the top bit flipped); past K, 128 against
    // zero weights.
    Value top = arith::ConstantOp::create(
        tb, loc, DenseElementsAttr::get(bytesV, tb.getI8IntegerAttr(-128)));
    for (int64_t c = 0; c < kPad; c += kStepBytes) {
      Value at = gep(tb, codes, cI64(tb, c));
      store(tb, arith::XOrIOp::create(tb, loc, load(tb, bytesV, at), top), at);
    }
    store(tb, scale,
          gep(tb, scratch, add(tb, cI64(tb, scalesOffset()), mul(tb, tok, 4))));
    return SmallVector<Value>{};
  });
  LLVM::ReturnOp::create(b, loc, ValueRange{});
  return func;
}

// void chunk(args, begin, end): blocks of rows [begin, end) for every token.
// args = {scratch, w, row sums, scales, y}.
LLVM::LLVMFuncOp DenseW8A8KernelEmitter::createChunk() {
  OpBuilder::InsertionGuard guard(b);
  LLVM::LLVMFuncOp func = beginChunk(baseName() + "_chunk");
  Block *entry = &func.getBody().front();
  Value args = entry->getArgument(0);
  Value begin = entry->getArgument(1), end = entry->getArgument(2);
  Value scratch = field(b, args, 0), w = field(b, args, 1),
        sums = field(b, args, 2), scales = field(b, args, 3),
        y = field(b, args, 4);
  Value c128 = arith::ConstantOp::create(b, loc, b.getI32IntegerAttr(128));
  Value zeroV = arith::ConstantOp::create(
      b, loc, DenseElementsAttr::get(wordsV, b.getI32IntegerAttr(0)));
  Value lastRow = cI64(b, n - 1);

  loop(b, begin, end, 1, {}, [&](OpBuilder &bb, Value blk, ValueRange) {
    // The block's rows, clamped to the last row past N (their sums are
    // computed and dropped).
    SmallVector<Value> rows, rowBase, rowScale, rowOffset;
    for (int64_t r = 0; r < blockRows; ++r) {
      Value row = add(bb, mul(bb, blk, blockRows), cI64(bb, r));
      rows.push_back(row);
      Value clamped = arith::MinSIOp::create(bb, loc, row, lastRow);
      // Blocked, a block is one run of memory, 64 columns of each of its
      // rows at a time.
      rowBase.push_back(
          blocked ? gep(bb, w,
                        add(bb, mul(bb, blk, blockRows * kPad),
                            cI64(bb, r * kStepBytes)))
                  : gep(bb, w, mul(bb, clamped, kPad)));
      rowScale.push_back(load(bb, f32, gep(bb, scales, mul(bb, clamped, 4))));
      // 128 * sum(w): what the codes' offset added.
      rowOffset.push_back(arith::MulIOp::create(
          bb, loc, load(bb, i32, gep(bb, sums, mul(bb, clamped, 4))), c128));
    }
    loop(bb, cI64(bb, 0), cI64(bb, m), 1, {},
         [&](OpBuilder &tb, Value tok, ValueRange) {
           Value codes = gep(tb, scratch, mul(tb, tok, kPad));
           SmallVector<Value> zeros(blockRows, zeroV);
           scf::ForOp kLoop = loop(
               tb, cI64(tb, 0), cI64(tb, kPad), kStepBytes, zeros,
               [&](OpBuilder &kb, Value kk, ValueRange carried) {
                 Value xv = load(kb, bytesV, gep(kb, codes, kk));
                 SmallVector<Value> next;
                 Value kkBytes = blocked ? mul(kb, kk, blockRows) : kk;
                 // Blocked, the block is one stream: its lines `prefetch`
                 // bytes ahead, if any.
                 if (blocked && prefetch > 0)
                   prefetchLines(kb, gep(kb, rowBase[0], kkBytes), prefetch,
                                 blockRows * kStepBytes);
                 for (int64_t r = 0; r < blockRows; ++r) {
                   Value at = gep(kb, rowBase[r], kkBytes);
                   if (!blocked)
                     prefetchLines(kb, at, prefetch, kStepBytes);
                   Value wv = load(kb, bytesV, at);
                   // Codes unsigned (xq + 128), weights signed.
                   next.push_back(
                       LLVM::CallIntrinsicOp::create(
                           kb, loc, wordsV,
                           kb.getStringAttr("llvm.x86.avx512.vpdpbusd.512"),
                           ValueRange{carried[r], xv, wv})
                           .getResult(0));
                 }
                 return next;
               });
           Value sx = load(
               tb, f32,
               gep(tb, scratch,
                   add(tb, cI64(tb, scalesOffset()), mul(tb, tok, 4))));
           for (int64_t r = 0; r < blockRows; ++r) {
             Value acc = vector::ReductionOp::create(
                 tb, loc, vector::CombiningKind::ADD, kLoop.getResult(r));
             acc = arith::SubIOp::create(tb, loc, acc, rowOffset[r]);
             // The contract's rescaling: (float(acc) * s_w) / s_x.
             Value v = arith::SIToFPOp::create(tb, loc, f32, acc);
             v = arith::MulFOp::create(tb, loc, v, rowScale[r]);
             v = arith::DivFOp::create(tb, loc, v, sx);
             Value inside = arith::CmpIOp::create(
                 tb, loc, arith::CmpIPredicate::slt, rows[r], cI64(tb, n));
             auto ifInside = scf::IfOp::create(tb, loc, inside, false);
             OpBuilder::InsertionGuard g(tb);
             tb.setInsertionPointToStart(ifInside.thenBlock());
             store(tb, v,
                   gep(tb, y, mul(tb, add(tb, mul(tb, tok, n), rows[r]), 4)));
           }
           return SmallVector<Value>{};
         });
    return SmallVector<Value>{};
  });
  LLVM::ReturnOp::create(b, loc, ValueRange{});
  return func;
}

// void main(x, w, row sums, scales, y, scratch).
LLVM::LLVMFuncOp DenseW8A8KernelEmitter::createMain(LLVM::LLVMFuncOp quantize,
                                                    LLVM::LLVMFuncOp chunk) {
  OpBuilder::InsertionGuard guard(b);
  LLVM::LLVMFuncOp func = beginKernel(baseName(), 6);
  Block *entry = &func.getBody().front();
  Value x = entry->getArgument(0), w = entry->getArgument(1),
        sums = entry->getArgument(2), scales = entry->getArgument(3),
        y = entry->getArgument(4), scratch = entry->getArgument(5);
  ExecCtxCalls calls(b, loc);
  Value name = LLVM::AddressOfOp::create(
      b, loc,
      getOrCreateKernelName(
          module, baseName() + "_name",
          llvm::formatv("dense_matmul w8a8 {0}x{1}x{2}", m, n, k).str()));
  calls.kernelBegin(name, n * kPad + 8 * n + 4 * m * k + 4 * m * n,
                    2 * m * n * k);
  calls.dispatch(quantize, pointerTable(b, {x, scratch}), m,
                 /*spread=*/m > 1);
  calls.dispatch(chunk, pointerTable(b, {scratch, w, sums, scales, y}), blocks,
                 /*spread=*/m * n * k >= (1 << 16));
  calls.kernelEnd(name);
  LLVM::ReturnOp::create(b, loc, ValueRange{});
  return func;
}

bool mlir::bitnet::denseW8A8WeightBlocks(DenseMatmulOp op, int64_t blockRows) {
  return op.getQuantizeInput() &&
         denseBlocksCover(op, blockRows, kStepBytes) &&
         op.getWeight().getType().getDimSize(1) <= kMaxColumns;
}

int64_t mlir::bitnet::denseW8A8BlockColumns() { return kStepBytes; }

bool mlir::bitnet::lowerDenseW8A8ToKernel(ModuleOp module, DenseMatmulOp op,
                                          int64_t blockRows, int64_t prefetch,
                                          ArrayRef<NamedAttribute> extra,
                                          Value blockedWeight) {
  RankedTensorType xType = op.getInput().getType();
  RankedTensorType wType = op.getWeight().getType();
  RankedTensorType yType = op.getType();
  DenseElementsAttr weights, rowScales;
  if (!op.getQuantizeInput() || !xType.hasStaticShape() ||
      !wType.hasStaticShape() || !yType.hasStaticShape() ||
      !wType.getElementType().isInteger(8) || !op.getScales() ||
      !matchPattern(op.getWeight(), m_Constant(&weights)) ||
      !matchPattern(op.getScales(), m_Constant(&rowScales)))
    return false;
  int64_t n = wType.getDimSize(0), k = wType.getDimSize(1);
  if (n == 0 || k == 0 || k > kMaxColumns)
    return false; // the reference lowering handles these
  int64_t m = xType.getNumElements() / k;
  // blockDenseWeight made it (whole blocks, not a splat), for this op.
  bool blocked = static_cast<bool>(blockedWeight);
  assert((!blocked || (k % kStepBytes == 0 && !weights.isSplat())) &&
         "a blocked weight covers K in whole steps");
  DenseW8A8KernelEmitter emitter(module, m, n, k, blockRows, prefetch, blocked);

  // Each row's sum of weights, and the weight itself when K is a multiple of
  // 64 (else a copy, rows padded with zeros).
  int64_t kPad = emitter.paddedColumns();
  bool splat = weights.isSplat();
  ArrayRef<char> raw = weights.getRawData();
  auto weight = [&](int64_t r, int64_t c) -> int8_t {
    return static_cast<int8_t>(raw[splat ? 0 : r * k + c]);
  };
  SmallVector<int32_t> rowSums(n, 0);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 0; c < k; ++c)
      rowSums[r] += weight(r, c);
  OpBuilder b(op);
  Location loc = op.getLoc();
  Value wTensor = blocked ? blockedWeight : op.getWeight();
  if (!blocked && (kPad != k || splat)) {
    SmallVector<int8_t> padded(n * kPad, 0);
    for (int64_t r = 0; r < n; ++r)
      for (int64_t c = 0; c < k; ++c)
        padded[r * kPad + c] = weight(r, c);
    wTensor = arith::ConstantOp::create(
        b, loc,
        DenseElementsAttr::get(RankedTensorType::get({n, kPad}, b.getI8Type()),
                               ArrayRef(padded)));
  }
  Value sumsTensor = arith::ConstantOp::create(
      b, loc,
      DenseElementsAttr::get(RankedTensorType::get({n}, b.getI32Type()),
                             ArrayRef(rowSums)));
  auto alloc = [&](MemRefType type) -> Value {
    return memref::AllocOp::create(b, loc, type, b.getI64IntegerAttr(64));
  };
  Value operands[] = {
      toReadOnlyBuffer(b, loc, op.getInput()),
      toReadOnlyBuffer(b, loc, wTensor),
      toReadOnlyBuffer(b, loc, sumsTensor),
      toReadOnlyBuffer(b, loc, op.getScales()),
      alloc(MemRefType::get(yType.getShape(), yType.getElementType())),
      alloc(MemRefType::get({emitter.scratchBytes()}, b.getI8Type()))};
  SmallVector<Type> types;
  for (Value v : operands)
    types.push_back(v.getType());
  auto call = func::CallOp::create(b, loc, emitter.getOrCreate(types), operands);
  SmallVector<NamedAttribute> choice = {
      b.getNamedAttr("family", b.getStringAttr("dense_w8a8")),
      b.getNamedAttr("isa", b.getStringAttr("avx512vnni")),
      b.getNamedAttr("layout", b.getStringAttr(blocked ? "blocked" : "rows")),
      b.getNamedAttr("rows_per_block",
                     b.getI64IntegerAttr(blockRows)),
      b.getNamedAttr("prefetch_bytes",
                     b.getI64IntegerAttr(prefetch)),
      b.getNamedAttr("weight_bytes",
                     b.getI64IntegerAttr(n * kPad))};
  llvm::append_range(choice, extra);
  call->setAttr("bitnet.kernel", b.getDictionaryAttr(choice));
  Value y = bufferization::ToTensorOp::create(b, loc, yType, operands[4],
                                              b.getUnitAttr(), b.getUnitAttr());
  op.replaceAllUsesWith(y);
  op.erase();
  return true;
}
