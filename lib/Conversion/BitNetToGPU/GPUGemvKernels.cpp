//===- GPUGemvKernels.cpp - The W2A8 GEMV/GEMM and its layout ---*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// The ternary matrix product on the GPU: the choice of the weight layout per
// shape, the layout of the weights at compile time, and the GEMV (GEMM for
// more tokens) kernel, dp4a dot products of 2-bit weight codes and int8
// activations (see GPUKernels.h).
//
//===----------------------------------------------------------------------===//

#include "GPUKernelSupport.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/MathExtras.h"

#include <algorithm>
#include <limits>
#include <tuple>

using namespace mlir;
using namespace mlir::bitnet;
using llvm::formatv;

//===----------------------------------------------------------------------===//
// GEMV layout
//===----------------------------------------------------------------------===//

GPUGemvLayout mlir::bitnet::chooseGemvLayout(int64_t m, int64_t n, int64_t k,
                                             int64_t rows) {
  GPUGemvLayout layout;
  layout.chunks = llvm::divideCeil(k, kGPUChunkValues);
  layout.tokensPerBlock = std::min<int64_t>(m, kGPUMaxGemvTokens);
  layout.tokenBlocks = llvm::divideCeil(m, layout.tokensPerBlock);
  auto withRows = [&](int64_t rg) {
    GPUGemvLayout l = layout;
    l.rowsPerWarp = rg;
    l.paddedChunks = llvm::alignTo(l.chunks, 32 / rg);
    l.xRowChunks = l.paddedChunks;
    l.groups = llvm::divideCeil(n, rg);
    return l;
  };
  if (rows)
    return withRows(rows);
  // Every warp-wide load is 512 contiguous bytes: 32 / RG lanes per row, so
  // few rows per warp pad K more, and many rows per warp make fewer warps,
  // each with at most kGPUGemvLoadsInFlight loads of 16 bytes per lane in
  // flight at a time.
  GPUGemvLayout best = withRows(32);
  double bestCost = std::numeric_limits<double>::infinity();
  for (int64_t rg : {1, 2, 4, 8, 16, 32}) {
    GPUGemvLayout l = withRows(rg);
    double bytes = double(l.weightBytes()) * double(l.tokenBlocks);
    int64_t steps = l.paddedChunks / (32 / rg);
    double inFlight = double(l.groups * l.tokenBlocks) * 512.0 *
                      double(std::min(steps, kGPUGemvLoadsInFlight));
    double busy = std::min(
        1.0, inFlight / std::min(double(kGPUGemvBytesInFlight), bytes));
    double cost = bytes / busy;
    if (cost < bestCost * 0.98) {
      best = l;
      bestCost = cost;
    }
  }
  return best;
}

std::vector<int8_t> mlir::bitnet::layoutGemvWeights(ArrayRef<int8_t> w,
                                                    int64_t n, int64_t k,
                                                    const GPUGemvLayout &l) {
  int64_t rg = l.rowsPerWarp;
  std::vector<int8_t> bytes(l.weightBytes(), 0);
  for (int64_t g = 0; g < l.groups; ++g)
    for (int64_t c = 0; c < l.paddedChunks; ++c)
      for (int64_t r = 0; r < rg; ++r)
        for (int64_t b = 0; b < 16; ++b) {
          int64_t row = g * rg + r, word = b / 4, q = b % 4;
          unsigned byte = 0;
          for (int64_t j = 0; j < 4; ++j) {
            int64_t col = c * kGPUChunkValues + 16 * word + 4 * j + q;
            int code = 1; // a zero weight past the edges
            if (row < n && col < k)
              code = std::clamp<int>(w[row * k + col], -1, 1) + 1;
            byte |= static_cast<unsigned>(code) << (2 * j);
          }
          bytes[((g * l.paddedChunks + c) * rg + r) * 16 + b] =
              static_cast<int8_t>(byte);
        }
  return bytes;
}

//===----------------------------------------------------------------------===//
// GEMV kernel
//===----------------------------------------------------------------------===//

namespace {
/// The body of one W2A8 GEMV/GEMM kernel.
class GemvBuilder {
public:
  GemvBuilder(GPUKernelBuilder &b, const GPUGemvLayout &l, Value wBase,
              ArrayRef<Value> xBase)
      : b(b), perStep(32 / l.rowsPerWarp), wBase(wBase), xBase(xBase) {
    mask = b.splatI32x4(0x03030303);
    shifts.push_back(Value());
    for (int64_t j = 1; j < 4; ++j)
      shifts.push_back(b.splatI32x4(2 * j));
  }

  /// `count` steps of the K loop from `first`: every weight load, then every
  /// step's sums into `accs` (one per token).
  SmallVector<Value> batch(Value first, int64_t count,
                           SmallVector<Value> accs) {
    SmallVector<Value> steps{first}, weights;
    for (int64_t i = 1; i < count; ++i)
      steps.push_back(b.addi(first, b.idx(i)));
    for (Value step : steps)
      weights.push_back(loadWeights(step));
    for (int64_t i = 0; i < count; ++i)
      accumulate(steps[i], weights[i], accs);
    return accs;
  }

private:
  /// The 16 bytes at `at` of `memref`, 16-byte aligned.
  Value load16(Value memref, Value at) {
    return vector::LoadOp::create(b, VectorType::get({16}, b.getI8Type()),
                                  memref, at, BoolAttr(),
                                  b.getI64IntegerAttr(16));
  }

  /// This lane's 16 weight bytes (64 values of its row) of step `step`.
  Value loadWeights(Value step) {
    return load16(b.arg(0), b.addi(wBase, b.muli(step, b.idx(512))));
  }

  Value asWords(Value bytes) {
    return vector::BitCastOp::create(b, VectorType::get({4}, b.getI32Type()),
                                     bytes);
  }

  /// Word `i` of `words` as four bytes.
  Value wordBytes(Value words, int64_t i) {
    Value word = vector::ExtractOp::create(b, words, i);
    return LLVM::BitcastOp::create(b, VectorType::get({4}, b.getI8Type()),
                                   word);
  }

  /// One step: the weights `wv8` against 64 activations of each token.
  void accumulate(Value step, Value wv8, SmallVector<Value> &accs) {
    Value wv = asWords(wv8);
    Value codes[4];
    for (int64_t j = 0; j < 4; ++j) {
      Value shifted = j == 0 ? wv : arith::ShRUIOp::create(b, wv, shifts[j]);
      codes[j] = b.andi(shifted, mask);
    }
    // Unsigned codes of word `wi`, bit pair j: columns 16 wi + 4 j + (0..3).
    Value codeBytes[4][4];
    for (int64_t wi = 0; wi < 4; ++wi)
      for (int64_t j = 0; j < 4; ++j)
        codeBytes[wi][j] = wordBytes(codes[j], wi);
    Value xStep = b.muli(step, b.idx(perStep * kGPUChunkValues));
    for (size_t u = 0; u < accs.size(); ++u) {
      Value &acc = accs[u];
      Value xOff = b.addi(xBase[u], xStep);
      for (int64_t wi = 0; wi < 4; ++wi) {
        Value at = wi == 0 ? xOff : b.addi(xOff, b.idx(16 * wi));
        Value xv = asWords(load16(b.arg(1), at));
        for (int64_t j = 0; j < 4; ++j) {
          Value xb = wordBytes(xv, j);
          acc = NVVM::DotAccumulate4WayOp::create(
              b, b.getI32Type(), codeBytes[wi][j],
              NVVM::DotAccumulateType::UNSIGNED, xb,
              NVVM::DotAccumulateType::SIGNED, acc);
        }
      }
    }
  }

  GPUKernelBuilder &b;
  int64_t perStep;
  Value wBase;
  ArrayRef<Value> xBase;
  Value mask;
  SmallVector<Value> shifts;
};
} // namespace

GPUKernel mlir::bitnet::gemvKernel(gpu::GPUModuleOp module, int64_t m,
                                   int64_t n, int64_t k, const GPUGemvLayout &l,
                                   bool residual) {
  GPUKernel kernel;
  int64_t rg = l.rowsPerWarp, mt = l.tokensPerBlock;
  int64_t steps = l.paddedChunks / (32 / rg);
  int64_t rowBytes = l.xRowBytes();
  int64_t paddedTokens = l.paddedTokens();
  kernel.name = formatv("bitnet_{0}_w2a8_{1}x{2}x{3}_r{4}",
                        m <= kGPUMaxGemvTokens ? "gemv" : "gemm", m, n, k, rg)
                    .str();
  // Activation rows wider than this layout's own (shared with other layouts).
  if (l.xRowChunks != l.paddedChunks)
    kernel.name += formatv("_x{0}", l.xRowBytes()).str();
  if (residual)
    kernel.name += "_res";
  kernel.grid = {
      static_cast<int64_t>(llvm::divideCeil(l.groups, kGPUGemvWarps)),
      l.tokenBlocks, 1};
  kernel.block = {32 * kGPUGemvWarps, 1, 1};
  kernel.bytes = l.weightBytes() * l.tokenBlocks + paddedTokens * rowBytes +
                 4 * m * n * (residual ? 2 : 1);
  kernel.flops = 2 * m * n * k;
  OpBuilder ob(module.getContext());
  Type f32 = ob.getF32Type(), i8 = ob.getI8Type();
  Type yType = flatMemRef(m * n, f32);
  SmallVector<Type> args{flatMemRef(l.weightBytes(), i8),
                         flatMemRef(paddedTokens * rowBytes, i8),
                         flatMemRef(paddedTokens, ob.getI32Type()),
                         flatMemRef(paddedTokens, f32), flatMemRef(1, f32)};
  if (residual)
    args.push_back(yType);
  args.push_back(yType);
  if (!createKernel(module, kernel, args))
    return kernel;

  GPUKernelBuilder b(kernel.func);
  Value tid = b.threadId();
  Value bx = b.blockId(gpu::Dimension::x), by = b.blockId(gpu::Dimension::y);
  Value lane, warp;
  std::tie(lane, warp) = b.laneAndWarp(tid);
  Value grp = b.addi(b.muli(bx, b.idx(kGPUGemvWarps)), warp);
  b.ifThen(b.ult(grp, b.idx(l.groups)), [&] {
    Value t0 = b.muli(by, b.idx(mt));
    Value cRG = b.idx(rg);
    Value q = b.divui(lane, cRG);
    // This lane's first weight byte: ((grp * KCp + q) * RG + r) * 16.
    Value groupByte = b.muli(grp, b.idx(l.paddedChunks * rg * 16));
    Value wBase = b.addi(groupByte, b.muli(lane, b.idx(16)));
    Value q64 = b.muli(q, b.idx(kGPUChunkValues));
    SmallVector<Value> xBase;
    for (int64_t u = 0; u < mt; ++u) {
      Value tok = b.addi(t0, b.idx(u));
      xBase.push_back(b.addi(b.muli(tok, b.idx(rowBytes)), q64));
    }
    GemvBuilder gemv(b, l, wBase, xBase);
    int64_t perBatch = std::min(steps, kGPUGemvLoadsInFlight);
    int64_t batches = steps / perBatch, rest = steps % perBatch;
    SmallVector<Value> totals(mt, b.i32(0));
    if (batches == 1) {
      totals = gemv.batch(b.idx(0), perBatch, std::move(totals));
    } else {
      Value lb = b.idx(0), ub = b.idx(batches), one = b.idx(1);
      totals = llvm::to_vector(
          b.loop(lb, ub, one, totals, [&](Value sb, ValueRange accs) {
            return gemv.batch(b.muli(sb, b.idx(perBatch)), perBatch,
                              SmallVector<Value>(accs));
          }));
    }
    if (rest)
      totals = gemv.batch(b.idx(batches * perBatch), rest, std::move(totals));
    // Lanes with the same row (lane mod RG) hold parts of one dot product.
    if (rg < 32)
      for (Value &total : totals)
        total = b.warpReduce(total, Combine::AddI, 16, rg);
    Value row = b.addi(b.muli(grp, cRG), lane);
    Value firstLanes = b.ult(lane, cRG);
    Value writer = b.andi(firstLanes, b.ult(row, b.idx(n)));
    b.ifThen(writer, [&] {
      Value ws = b.load(b.arg(4), b.idx(0));
      for (int64_t u = 0; u < mt; ++u) {
        Value tok = b.addi(t0, b.idx(u));
        auto store = [&] {
          Value xs = b.load(b.arg(2), tok);
          Value sx = b.load(b.arg(3), tok);
          // sum(c * x) - sum(x) = sum(w * x); then (float(acc) * s_w) / s_x.
          Value acc = b.subi(totals[u], xs);
          Value f = arith::SIToFPOp::create(b, f32, acc);
          Value y = b.divf(b.mulf(f, ws), sx);
          Value at = b.addi(b.muli(tok, b.idx(n)), row);
          if (residual)
            y = b.addf(y, b.load(b.arg(5), at));
          b.store(y, b.arg(args.size() - 1), at);
        };
        if (l.tokenBlocks * mt > m)
          b.ifThen(b.ult(tok, b.idx(m)), store);
        else
          store();
      }
    });
  });
  return kernel;
}
