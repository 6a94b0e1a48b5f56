//===- GPUKernels.cpp - gpu.func kernels specialised per shape --*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// Every kernel is written as gpu-dialect MLIR with the shapes baked in as
// constants, so that LLVM's NVPTX backend sees fixed trip counts. Parameters
// are flat, statically shaped memrefs (one pointer each under the bare-pointer
// calling convention).
//
//===----------------------------------------------------------------------===//

#include "bitnet/Conversion/GPUKernels.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/MathExtras.h"

#include <cassert>
#include <functional>
#include <limits>
#include <optional>

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
    double busy =
        std::min(1.0, inFlight / std::min(double(kGPUGemvBytesInFlight), bytes));
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
// Text helpers
//===----------------------------------------------------------------------===//

namespace {
/// Builds the body of one gpu.func with fresh SSA names.
class Body {
public:
  std::string text;
  std::string fresh(StringRef hint = "v") {
    return (Twine("%") + hint + Twine(counter++)).str();
  }
  void line(const Twine &l) { text += "    " + l.str() + "\n"; }
  std::string idx(int64_t v) {
    std::string n = fresh("c");
    line(n + " = arith.constant " + Twine(v) + " : index");
    return n;
  }
  std::string i32(int64_t v) {
    std::string n = fresh("i");
    line(n + " = arith.constant " + Twine(v) + " : i32");
    return n;
  }
  std::string f32(StringRef literal) {
    std::string n = fresh("f");
    line(n + " = arith.constant " + literal + " : f32");
    return n;
  }
  /// An f32 constant exactly (its bits in hex).
  std::string f32(float value) {
    return f32("0x" + llvm::utohexstr(llvm::bit_cast<uint32_t>(value),
                                      /*LowerCase=*/false, /*Width=*/8));
  }
  /// The global index of this thread in a 1-D grid of `threads`-wide blocks.
  std::string globalIndex(int64_t threads) {
    std::string tid = fresh("tid"), bx = fresh("bx");
    line(tid + " = gpu.thread_id x");
    line(bx + " = gpu.block_id x");
    return op("arith.addi", {op("arith.muli", {bx, idx(threads)}, "index"), tid},
              "index");
  }
  /// A position read from `pos[0]` (i32 or i64), clamped into [lo, hi], as
  /// an index.
  std::string clampedPosition(StringRef pos, StringRef type, int64_t lo,
                              int64_t hi) {
    std::string v = fresh("pos");
    line(v + " = memref.load " + pos + "[" + idx(0) + "] : memref<1x" + type +
         ">");
    std::string p = op("arith.index_cast", {v}, (type + " to index").str());
    p = op("arith.maxsi", {p, idx(lo)}, "index");
    return op("arith.minsi", {p, idx(hi)}, "index");
  }
  std::string op(StringRef name, ArrayRef<std::string> args, StringRef type) {
    std::string n = fresh();
    line(n + " = " + name + " " + llvm::join(args, ", ") + " : " + type);
    return n;
  }
  /// Warp reduction with butterfly shuffles; `combine` is an arith op name.
  std::string warpReduce(std::string v, StringRef combine, StringRef type,
                         int64_t from = 16, int64_t to = 1) {
    std::string width = i32(32);
    for (int64_t off = from; off >= to; off /= 2) {
      std::string o = i32(off), s = fresh("s"), ok = fresh("ok");
      line(s + ", " + ok + " = gpu.shuffle xor " + v + ", " + o + ", " +
           width + " : " + type);
      v = op(combine, {v, s}, type);
    }
    return v;
  }
  /// Block reduction over `warps` warps through workgroup memory `smem`;
  /// every thread gets the result.
  std::string blockReduce(std::string v, StringRef combine, StringRef type,
                          StringRef smem, int64_t warps, StringRef lane,
                          StringRef warp) {
    v = warpReduce(v, combine, type);
    std::string zero = idx(0);
    std::string first = op("arith.cmpi eq,", {std::string(lane), zero}, "index");
    line("scf.if " + first + " {");
    line("  memref.store " + v + ", " + smem + "[" + warp + "] : memref<" +
         Twine(warps) + "x" + type + ", #gpu.address_space<workgroup>>");
    line("}");
    line("gpu.barrier");
    std::string r;
    for (int64_t i = 0; i < warps; ++i) {
      std::string at = idx(i), x = fresh();
      line(x + " = memref.load " + smem + "[" + at + "] : memref<" +
           Twine(warps) + "x" + type + ", #gpu.address_space<workgroup>>");
      r = r.empty() ? x : op(combine, {r, x}, type);
    }
    line("gpu.barrier");
    return r;
  }

private:
  unsigned counter = 0;
};

std::string memref(int64_t n, StringRef type) {
  return (Twine("memref<") + Twine(n) + "x" + type + ">").str();
}
} // namespace

//===----------------------------------------------------------------------===//
// Kernels
//===----------------------------------------------------------------------===//

static constexpr int64_t kReduceThreads = 256;

namespace {
/// One block per row reducing over its elements: the thread and row ids,
/// lane and warp.
struct RowBlock {
  std::string tid, row, lane, warp, step;
  static constexpr int64_t warps = kReduceThreads / 32;
  explicit RowBlock(Body &b) {
    tid = b.fresh("tid");
    row = b.fresh("row");
    b.line(tid + " = gpu.thread_id x");
    b.line(row + " = gpu.block_id x");
    std::string c32 = b.idx(32);
    step = b.idx(kReduceThreads);
    lane = b.op("arith.remui", {tid, c32}, "index");
    warp = b.op("arith.divui", {tid, c32}, "index");
  }
};

/// Emits, inside a loop body over `%i`, the value of element `%i` of this
/// row (f32) and returns its name.
using RowValue = std::function<std::string(Body &)>;

/// Element `%i` of row `base` of `%x`; defines %at (its index).
RowValue rowElement(std::string xType, std::string base) {
  return [=](Body &b) {
    b.line("  %at = arith.addi " + base + ", %i : index");
    b.line("  %xv = memref.load %x[%at] : " + xType);
    return std::string("%xv");
  };
}

/// Element `%i` of row `base` of relu(%gate)^2 * %up, with the f32
/// operations of the squared-ReLU and multiply kernels; defines %at.
RowValue gatedElement(std::string type, std::string base) {
  return [=](Body &b) {
    b.line("  %at = arith.addi " + base + ", %i : index");
    b.line("  %av = memref.load %gate[%at] : " + type);
    b.line("  %bv = memref.load %up[%at] : " + type);
    std::string zero = b.f32("0.0");
    b.line("  %ar = arith.maxnumf %av, " + zero + " : f32");
    b.line("  %a2 = arith.mulf %ar, %ar : f32");
    b.line("  %xv = arith.mulf %a2, %bv : f32");
    return std::string("%xv");
  };
}

/// 1 / sqrt(mean(x^2) + eps) over elements [0, ub) of the row that `x`
/// gives (block-wide, in %red).
std::string rmsInverse(Body &b, const RowBlock &rb, const RowValue &x,
                       const std::string &ub, int64_t d, float eps) {
  std::string sumsq = b.fresh("ss");
  b.line(sumsq + " = scf.for %i = " + rb.tid + " to " + ub + " step " +
         rb.step + " iter_args(%s = " + b.f32("0.0") + ") -> (f32) {");
  std::string v = x(b);
  b.line("  %sq = arith.mulf " + v + ", " + v + " : f32");
  b.line("  %a1 = arith.addf %s, %sq : f32");
  b.line("  scf.yield %a1 : f32");
  b.line("}");
  std::string all = b.blockReduce(sumsq, "arith.addf", "f32", "%red",
                                  RowBlock::warps, rb.lane, rb.warp);
  // Exact constants: epsilon and d as their f32 bits.
  std::string mean = b.op("arith.divf", {all, b.f32(float(d))}, "f32");
  std::string den = b.op(
      "math.sqrt", {b.op("arith.addf", {mean, b.f32(eps)}, "f32")}, "f32");
  return b.op("arith.divf", {b.f32("1.0"), den}, "f32");
}

/// RMSNorm's output element `%i` of the row that `x` gives: gamma * (x *
/// inv).
RowValue normalized(RowValue x, std::string gType, std::string inv) {
  return [=](Body &b) {
    std::string v = x(b);
    b.line("  %g = memref.load %gamma[%i] : " + gType);
    b.line("  %xi = arith.mulf " + v + ", " + inv + " : f32");
    b.line("  %yv = arith.mulf %g, %xi : f32");
    return std::string("%yv");
  };
}

/// Quantises this block's row, whose elements [0, ub) `value` gives, into
/// row `row` of %xq (`rowStride` bytes, zero past ub), its integer sum into
/// %xs and its scale into %sx (block-wide reductions in %redf and %redi).
void quantizeRow(Body &b, const RowBlock &rb, const RowValue &value,
                 const std::string &ub, int64_t rowStride,
                 int64_t paddedTokens) {
  std::string fz = b.f32("0.0");
  std::string amax = b.fresh("amax");
  b.line(amax + " = scf.for %i = " + rb.tid + " to " + ub + " step " +
         rb.step + " iter_args(%a = " + fz + ") -> (f32) {");
  std::string v = value(b);
  b.line("  %ax = math.absf " + v + " : f32");
  b.line("  %mx = arith.maximumf %a, %ax : f32");
  b.line("  scf.yield %mx : f32");
  b.line("}");
  std::string all = b.blockReduce(amax, "arith.maximumf", "f32", "%redf",
                                  RowBlock::warps, rb.lane, rb.warp);
  std::string floor = b.f32("1.000000e-05"), c127 = b.f32("1.270000e+02");
  std::string scale = b.op(
      "arith.divf", {c127, b.op("arith.maximumf", {all, floor}, "f32")}, "f32");
  std::string lo = b.f32("-1.280000e+02");
  std::string qRow = b.op("arith.muli", {rb.row, b.idx(rowStride)}, "index");
  std::string sum = b.fresh("sum");
  b.line(sum + " = scf.for %i = " + rb.tid + " to " + b.idx(rowStride) +
         " step " + rb.step + " iter_args(%s = " + b.i32(0) +
         ") -> (i32) {");
  b.line("  %in = arith.cmpi ult, %i, " + ub + " : index");
  b.line("  %v = scf.if %in -> (f32) {");
  b.line("    scf.yield " + value(b) + " : f32");
  b.line("  } else {");
  b.line("    scf.yield " + fz + " : f32");
  b.line("  }");
  b.line("  %p = arith.mulf %v, " + scale + " : f32");
  b.line("  %r = math.roundeven %p : f32");
  b.line("  %r1 = arith.maxnumf %r, " + lo + " : f32");
  b.line("  %r2 = arith.minnumf %r1, " + c127 + " : f32");
  b.line("  %q = arith.fptosi %r2 : f32 to i8");
  b.line("  %qa = arith.addi " + qRow + ", %i : index");
  b.line("  memref.store %q, %xq[%qa] : " +
         memref(paddedTokens * rowStride, "i8"));
  b.line("  %qw = arith.extsi %q : i8 to i32");
  b.line("  %s1 = arith.addi %s, %qw : i32");
  b.line("  scf.yield %s1 : i32");
  b.line("}");
  std::string total = b.blockReduce(sum, "arith.addi", "i32", "%redi",
                                    RowBlock::warps, rb.lane, rb.warp);
  std::string first = b.op("arith.cmpi eq,", {rb.tid, b.idx(0)}, "index");
  b.line("scf.if " + first + " {");
  b.line("  memref.store " + total + ", %xs[" + rb.row + "] : " +
         memref(paddedTokens, "i32"));
  b.line("  memref.store " + scale + ", %sx[" + rb.row + "] : " +
         memref(paddedTokens, "f32"));
  b.line("}");
}

/// The elements of this block's row: `k` for rows below `m`, none for the
/// padding tokens past it.
std::string rowLength(Body &b, const RowBlock &rb, int64_t m, int64_t k) {
  std::string real = b.op("arith.cmpi ult,", {rb.row, b.idx(m)}, "index");
  return b.op("arith.select", {real, b.idx(k), b.idx(0)}, "index");
}
} // namespace

/// The quantisation of `m x k` rows, of the input or (with `eps`) of its
/// RMSNorm, whose input is relu(gate)^2 * up when `gated`: quantizeKernel and
/// rmsnormQuantizeKernel.
static GPUKernel quantizeRowsKernel(std::string name, int64_t m, int64_t k,
                                   int64_t rowStride, int64_t paddedTokens,
                                   std::optional<float> eps, bool gated) {
  GPUKernel kernel;
  kernel.name = std::move(name);
  kernel.grid = {paddedTokens, 1, 1};
  kernel.block = {kReduceThreads, 1, 1};
  Body b;
  RowBlock rb(b);
  // Tokens past m (padding for the matmul's token blocks) read nothing.
  std::string ub = rowLength(b, rb, m, k);
  std::string base = b.op("arith.muli", {rb.row, b.idx(k)}, "index");
  std::string xType = memref(m * k, "f32"), gType = memref(k, "f32");
  RowValue x = gated ? gatedElement(xType, base) : rowElement(xType, base);
  if (eps)
    x = normalized(x, gType, rmsInverse(b, rb, x, ub, k, *eps));
  quantizeRow(b, rb, x, ub, rowStride, paddedTokens);
  std::string params = gated ? "%gate: " + xType + ", %up: " + xType
                             : "%x: " + xType;
  if (eps)
    params += ", %gamma: " + gType;
  std::string workgroup =
      (eps ? formatv("%red: memref<{0}xf32, #gpu.address_space<workgroup>>, ",
                     RowBlock::warps)
                 .str()
           : "");
  kernel.text = formatv(R"(  gpu.func @{0}({1}, %xq: {2}, %xs: {3}, %sx: {4})
      workgroup({5}%redf: memref<{6}xf32, #gpu.address_space<workgroup>>,
                %redi: memref<{6}xi32, #gpu.address_space<workgroup>>)
      kernel attributes {{known_block_size = array<i32: {7}, 1, 1>} {
{8}    gpu.return
  }
)",
                        kernel.name, params,
                        memref(paddedTokens * rowStride, "i8"),
                        memref(paddedTokens, "i32"),
                        memref(paddedTokens, "f32"), workgroup,
                        RowBlock::warps, kReduceThreads, b.text)
                    .str();
  // With a norm, the input is read three times (sum of squares, maximum,
  // quantisation).
  int64_t inputBytes = (gated ? 8 : 4) * m * k;
  kernel.bytes = (eps ? 3 * inputBytes + 4 * k : inputBytes) +
                 paddedTokens * (rowStride + 8);
  kernel.flops = eps ? (gated ? 19 : 10) * m * k : 3 * m * k;
  return kernel;
}

GPUKernel mlir::bitnet::quantizeKernel(int64_t m, int64_t k, int64_t rowStride,
                                       int64_t paddedTokens) {
  return quantizeRowsKernel(formatv("bitnet_quantize_{0}x{1}_{2}x{3}", m, k,
                                    paddedTokens, rowStride),
                            m, k, rowStride, paddedTokens, std::nullopt,
                            /*gated=*/false);
}

GPUKernel mlir::bitnet::rmsnormQuantizeKernel(int64_t m, int64_t k, float eps,
                                              int64_t rowStride,
                                              int64_t paddedTokens,
                                              bool gated) {
  return quantizeRowsKernel(
      formatv("bitnet_{0}rmsnorm_quantize_{1}x{2}_{3:x}_{4}x{5}",
              gated ? "gated_" : "", m, k, llvm::bit_cast<uint32_t>(eps),
              paddedTokens, rowStride),
      m, k, rowStride, paddedTokens, eps, gated);
}

GPUKernel mlir::bitnet::gemvKernel(int64_t m, int64_t n, int64_t k,
                                   const GPUGemvLayout &l, bool residual) {
  GPUKernel kernel;
  int64_t rg = l.rowsPerWarp, mt = l.tokensPerBlock;
  int64_t perStep = 32 / rg;
  int64_t steps = l.paddedChunks / perStep;
  int64_t rowBytes = l.xRowBytes();
  int64_t paddedTokens = l.paddedTokens();
  kernel.name =
      formatv("bitnet_{0}_w2a8_{1}x{2}x{3}_r{4}", m <= kGPUMaxGemvTokens
                                                      ? "gemv" : "gemm",
              m, n, k, rg)
          .str();
  // Activation rows wider than this layout's own (shared with other layouts).
  if (l.xRowChunks != l.paddedChunks)
    kernel.name += formatv("_x{0}", l.xRowBytes()).str();
  if (residual)
    kernel.name += "_res";
  kernel.grid = {static_cast<int64_t>(llvm::divideCeil(l.groups, kGPUGemvWarps)),
                 l.tokenBlocks, 1};
  kernel.block = {32 * kGPUGemvWarps, 1, 1};
  std::string wType = memref(l.weightBytes(), "i8");
  std::string xType = memref(paddedTokens * rowBytes, "i8");

  Body b;
  std::string tid = b.fresh("tid"), bx = b.fresh("bx"), by = b.fresh("by");
  b.line(tid + " = gpu.thread_id x");
  b.line(bx + " = gpu.block_id x");
  b.line(by + " = gpu.block_id y");
  std::string c32 = b.idx(32);
  std::string lane = b.op("arith.remui", {tid, c32}, "index");
  std::string warp = b.op("arith.divui", {tid, c32}, "index");
  std::string grp = b.op(
      "arith.addi",
      {b.op("arith.muli", {bx, b.idx(kGPUGemvWarps)}, "index"), warp},
      "index");
  std::string inGroup = b.op("arith.cmpi ult,", {grp, b.idx(l.groups)}, "index");
  b.line("scf.if " + inGroup + " {");
  std::string t0 = b.op("arith.muli", {by, b.idx(mt)}, "index");
  std::string cRG = b.idx(rg);
  std::string q = b.op("arith.divui", {lane, cRG}, "index");
  // This lane's first weight byte: ((grp * KCp + q) * RG + r) * 16.
  std::string wBase = b.op(
      "arith.addi",
      {b.op("arith.muli", {grp, b.idx(l.paddedChunks * rg * 16)}, "index"),
       b.op("arith.muli", {lane, b.idx(16)}, "index")},
      "index");
  std::string q64 = b.op("arith.muli", {q, b.idx(kGPUChunkValues)}, "index");
  std::vector<std::string> xBase;
  for (int64_t u = 0; u < mt; ++u) {
    std::string tok = b.op("arith.addi", {t0, b.idx(u)}, "index");
    xBase.push_back(b.op(
        "arith.addi", {b.op("arith.muli", {tok, b.idx(rowBytes)}, "index"), q64},
        "index"));
  }
  std::string mask = b.fresh("mask");
  b.line(mask + " = arith.constant dense<50529027> : vector<4xi32>");
  std::vector<std::string> shifts{""};
  for (int64_t j = 1; j < 4; ++j) {
    std::string s = b.fresh("sh");
    b.line(s + " = arith.constant dense<" + Twine(2 * j) + "> : vector<4xi32>");
    shifts.push_back(s);
  }
  // One step of the K loop: this lane's 16 weight bytes (64 values of its
  // row), against 64 activations of each token.
  auto loadWeights = [&](const std::string &step) {
    std::string wOff = b.op(
        "arith.addi", {wBase, b.op("arith.muli", {step, b.idx(512)}, "index")},
        "index");
    std::string wv8 = b.fresh("wv");
    b.line(wv8 + " = vector.load %w[" + wOff + "] {alignment = 16} : " + wType +
           ", vector<16xi8>");
    return wv8;
  };
  auto accumulate = [&](const std::string &step, const std::string &wv8,
                        std::vector<std::string> accs) {
    std::string wv = b.op("vector.bitcast", {wv8}, "vector<16xi8> to vector<4xi32>");
    std::vector<std::string> codes;
    for (int64_t j = 0; j < 4; ++j) {
      std::string shifted =
          j == 0 ? wv : b.op("arith.shrui", {wv, shifts[j]}, "vector<4xi32>");
      codes.push_back(b.op("arith.andi", {shifted, mask}, "vector<4xi32>"));
    }
    // Unsigned codes of word `wi`, bit pair j: columns 16 wi + 4 j + (0..3).
    std::vector<std::vector<std::string>> codeBytes(4, std::vector<std::string>(4));
    for (int64_t wi = 0; wi < 4; ++wi)
      for (int64_t j = 0; j < 4; ++j) {
        std::string word = b.fresh("cw");
        b.line(word + " = vector.extract " + codes[j] + "[" + Twine(wi) +
               "] : i32 from vector<4xi32>");
        codeBytes[wi][j] = b.fresh("cb");
        b.line(codeBytes[wi][j] + " = llvm.bitcast " + word +
               " : i32 to vector<4xi8>");
      }
    std::string xStep = b.op("arith.muli", {step, b.idx(perStep * kGPUChunkValues)},
                             "index");
    for (int64_t u = 0; u < mt; ++u) {
      std::string xOff = b.op("arith.addi", {xBase[u], xStep}, "index");
      for (int64_t wi = 0; wi < 4; ++wi) {
        std::string at =
            wi == 0 ? xOff : b.op("arith.addi", {xOff, b.idx(16 * wi)}, "index");
        std::string xv8 = b.fresh("xv");
        b.line(xv8 + " = vector.load %xq[" + at + "] {alignment = 16} : " +
               xType + ", vector<16xi8>");
        std::string xv =
            b.op("vector.bitcast", {xv8}, "vector<16xi8> to vector<4xi32>");
        for (int64_t j = 0; j < 4; ++j) {
          std::string xw = b.fresh("xw");
          b.line(xw + " = vector.extract " + xv + "[" + Twine(j) +
                 "] : i32 from vector<4xi32>");
          std::string xb = b.fresh("xb");
          b.line(xb + " = llvm.bitcast " + xw + " : i32 to vector<4xi8>");
          std::string d = b.fresh("d");
          b.line(d + " = nvvm.dot.accumulate.4way " + codeBytes[wi][j] +
                 " <unsigned>, " + xb + " <signed>, " + accs[u] +
                 " : vector<4xi8>, vector<4xi8>");
          accs[u] = d;
        }
      }
    }
    return accs;
  };
  // `count` steps from `first`: every weight load, then every step's sums.
  auto batch = [&](const std::string &first, int64_t count,
                   std::vector<std::string> accs) {
    std::vector<std::string> steps{first}, weights;
    for (int64_t i = 1; i < count; ++i)
      steps.push_back(b.op("arith.addi", {first, b.idx(i)}, "index"));
    for (const std::string &step : steps)
      weights.push_back(loadWeights(step));
    for (int64_t i = 0; i < count; ++i)
      accs = accumulate(steps[i], weights[i], std::move(accs));
    return accs;
  };
  int64_t perBatch = std::min(steps, kGPUGemvLoadsInFlight);
  int64_t batches = steps / perBatch, rest = steps % perBatch;
  std::string zi = b.i32(0);
  std::vector<std::string> totals(mt, zi);
  if (batches == 1) {
    totals = batch(b.idx(0), perBatch, std::move(totals));
  } else {
    std::vector<std::string> accNames, init, types;
    for (int64_t u = 0; u < mt; ++u) {
      accNames.push_back("%acc" + std::to_string(u));
      init.push_back(accNames.back() + " = " + zi);
      types.push_back("i32");
    }
    std::string loop = b.fresh("loop");
    b.line(loop + ":" + Twine(mt) + " = scf.for %sb = " + b.idx(0) + " to " +
           b.idx(batches) + " step " + b.idx(1) + " iter_args(" +
           llvm::join(init, ", ") + ") -> (" + llvm::join(types, ", ") + ") {");
    std::vector<std::string> next = batch(
        b.op("arith.muli", {"%sb", b.idx(perBatch)}, "index"), perBatch, accNames);
    b.line("scf.yield " + llvm::join(next, ", ") + " : " +
           llvm::join(types, ", "));
    b.line("}");
    for (int64_t u = 0; u < mt; ++u)
      totals[u] = loop + "#" + std::to_string(u);
  }
  if (rest)
    totals = batch(b.idx(batches * perBatch), rest, std::move(totals));
  // Lanes with the same row (lane mod RG) hold parts of one dot product.
  if (rg < 32)
    for (std::string &total : totals)
      total = b.warpReduce(total, "arith.addi", "i32", 16, rg);
  std::string row = b.op(
      "arith.addi", {b.op("arith.muli", {grp, cRG}, "index"), lane}, "index");
  std::string writer = b.op(
      "arith.andi",
      {b.op("arith.cmpi ult,", {lane, cRG}, "index"),
       b.op("arith.cmpi ult,", {row, b.idx(n)}, "index")},
      "i1");
  b.line("scf.if " + writer + " {");
  std::string ws = b.fresh("ws");
  b.line(ws + " = memref.load %ws[" + b.idx(0) + "] : memref<1xf32>");
  for (int64_t u = 0; u < mt; ++u) {
    std::string tok = b.op("arith.addi", {t0, b.idx(u)}, "index");
    bool guard = l.tokenBlocks * mt > m;
    if (guard)
      b.line("scf.if " + b.op("arith.cmpi ult,", {tok, b.idx(m)}, "index") +
             " {");
    std::string xs = b.fresh("xs"), sx = b.fresh("sx");
    b.line(xs + " = memref.load %xs[" + tok + "] : " +
           memref(paddedTokens, "i32"));
    b.line(sx + " = memref.load %sx[" + tok + "] : " +
           memref(paddedTokens, "f32"));
    // sum(c * x) - sum(x) = sum(w * x); then (float(acc) * s_w) / s_x.
    std::string acc = b.op("arith.subi", {totals[u], xs}, "i32");
    std::string f = b.op("arith.sitofp", {acc}, "i32 to f32");
    std::string y = b.op("arith.divf", {b.op("arith.mulf", {f, ws}, "f32"), sx},
                         "f32");
    std::string at = b.op(
        "arith.addi", {b.op("arith.muli", {tok, b.idx(n)}, "index"), row},
        "index");
    if (residual) {
      std::string r = b.fresh("res");
      b.line(r + " = memref.load %r[" + at + "] : " + memref(m * n, "f32"));
      y = b.op("arith.addf", {y, r}, "f32");
    }
    b.line("memref.store " + y + ", %y[" + at + "] : " + memref(m * n, "f32"));
    if (guard)
      b.line("}");
  }
  b.line("}");
  b.line("}");
  kernel.text =
      formatv(R"(  gpu.func @{0}(%w: {1}, %xq: {2}, %xs: {3}, %sx: {4}, %ws: memref<1xf32>, {5}%y: {6})
      kernel attributes {{known_block_size = array<i32: {7}, 1, 1>} {
{8}    gpu.return
  }
)",
              kernel.name, wType, xType, memref(paddedTokens, "i32"),
              memref(paddedTokens, "f32"),
              residual ? "%r: " + memref(m * n, "f32") + ", " : "",
              memref(m * n, "f32"), 32 * kGPUGemvWarps, b.text)
          .str();
  kernel.bytes = l.weightBytes() * l.tokenBlocks + paddedTokens * rowBytes +
                 4 * m * n * (residual ? 2 : 1);
  kernel.flops = 2 * m * n * k;
  return kernel;
}

GPUKernel mlir::bitnet::rmsnormKernel(int64_t rows, int64_t d, float eps) {
  GPUKernel kernel;
  kernel.name = formatv("bitnet_rmsnorm_{0}x{1}_{2:x}", rows, d,
                        llvm::bit_cast<uint32_t>(eps))
                    .str();
  kernel.grid = {rows, 1, 1};
  kernel.block = {kReduceThreads, 1, 1};
  Body b;
  RowBlock rb(b);
  std::string base = b.op("arith.muli", {rb.row, b.idx(d)}, "index");
  std::string cd = b.idx(d);
  std::string xType = memref(rows * d, "f32"), gType = memref(d, "f32");
  RowValue x = rowElement(xType, base);
  std::string inv = rmsInverse(b, rb, x, cd, d, eps);
  b.line("scf.for %i = " + rb.tid + " to " + cd + " step " + rb.step + " {");
  std::string y = normalized(x, gType, inv)(b);
  b.line("  memref.store " + y + ", %y[%at] : " + xType);
  b.line("}");
  kernel.text = formatv(R"(  gpu.func @{0}(%x: {1}, %gamma: {2}, %y: {1})
      workgroup(%red: memref<{3}xf32, #gpu.address_space<workgroup>>)
      kernel attributes {{known_block_size = array<i32: {4}, 1, 1>} {
{5}    gpu.return
  }
)",
                        kernel.name, xType, gType, RowBlock::warps,
                        kReduceThreads, b.text)
                    .str();
  kernel.bytes = 8 * rows * d + 4 * d;
  kernel.flops = 4 * rows * d;
  return kernel;
}

static constexpr int64_t kElementwiseThreads = 256;

namespace {
/// One rotated pair of a rope: the flat indices of its two features in the
/// rows, and their rotated values.
struct RotatedPair {
  std::string a, c, ya, yb;
};

/// Rotates pair `i` (< tokens * heads * dim / 2) of the rows in `x` by the
/// position of its token in `pos` and the frequencies in `freq`, with the
/// reference's operations in its order: a cos - b sin, b cos + a sin.
RotatedPair rotatePair(Body &b, const std::string &i, const RopeSpec &r,
                       StringRef x, StringRef pos, StringRef freq) {
  int64_t half = r.dim / 2, count = r.tokens * r.heads * r.dim;
  std::string xType = memref(count, "f32");
  // Pair `pair` of row `row` (token t, head h): features a and c.
  std::string pair = b.op("arith.remui", {i, b.idx(half)}, "index");
  std::string row = b.op("arith.divui", {i, b.idx(half)}, "index");
  std::string t = b.op("arith.divui", {row, b.idx(r.heads)}, "index");
  std::string base = b.op("arith.muli", {row, b.idx(r.dim)}, "index");
  RotatedPair out;
  if (r.interleaved) {
    out.a = b.op("arith.addi",
                 {base, b.op("arith.muli", {pair, b.idx(2)}, "index")}, "index");
    out.c = b.op("arith.addi", {out.a, b.idx(1)}, "index");
  } else {
    out.a = b.op("arith.addi", {base, pair}, "index");
    out.c = b.op("arith.addi", {out.a, b.idx(half)}, "index");
  }
  std::string p = b.fresh("pos");
  b.line(p + " = memref.load " + pos + "[" + t + "] : " +
         memref(r.tokens, r.positionType));
  std::string posF =
      b.op("arith.sitofp", {p}, r.positionType + " to f32");
  std::string f = b.fresh("freq");
  b.line(f + " = memref.load " + freq + "[" + pair + "] : " +
         memref(half, "f32"));
  std::string angle = b.op("arith.mulf", {posF, f}, "f32");
  std::string cs = b.op("math.cos", {angle}, "f32");
  std::string sn = b.op("math.sin", {angle}, "f32");
  std::string xa = b.fresh("xa"), xb = b.fresh("xb");
  b.line(xa + " = memref.load " + x + "[" + out.a + "] : " + xType);
  b.line(xb + " = memref.load " + x + "[" + out.c + "] : " + xType);
  out.ya = b.op("arith.subf",
                {b.op("arith.mulf", {xa, cs}, "f32"),
                 b.op("arith.mulf", {xb, sn}, "f32")},
                "f32");
  out.yb = b.op("arith.addf",
                {b.op("arith.mulf", {xb, cs}, "f32"),
                 b.op("arith.mulf", {xa, sn}, "f32")},
                "f32");
  return out;
}

/// Stores a rotated pair into the f32 rows `y` of `type`.
void storePair(Body &b, const RotatedPair &p, StringRef y, StringRef type) {
  b.line("memref.store " + p.ya + ", " + y + "[" + p.a + "] : " + type);
  b.line("memref.store " + p.yb + ", " + y + "[" + p.c + "] : " + type);
}

std::string ropeName(const RopeSpec &r) {
  return formatv("{0}x{1}x{2}_{3}_{4}", r.tokens, r.heads, r.dim,
                 r.interleaved ? "interleaved" : "half", r.positionType)
      .str();
}
} // namespace

GPUKernel mlir::bitnet::ropeKernel(int64_t tokens, int64_t heads, int64_t dim,
                                   bool interleaved, StringRef positionType) {
  GPUKernel kernel;
  RopeSpec r{tokens, heads, dim, interleaved, positionType.str()};
  int64_t half = dim / 2, pairs = tokens * heads * half;
  int64_t count = tokens * heads * dim;
  kernel.name = "bitnet_rope_" + ropeName(r);
  kernel.grid = {std::max<int64_t>(1, llvm::divideCeil(pairs, kElementwiseThreads)),
                 1, 1};
  kernel.block = {kElementwiseThreads, 1, 1};
  std::string xType = memref(count, "f32");
  Body b;
  std::string i = b.globalIndex(kElementwiseThreads);
  b.line("scf.if " + b.op("arith.cmpi ult,", {i, b.idx(pairs)}, "index") + " {");
  storePair(b, rotatePair(b, i, r, "%x", "%pos", "%freq"), "%y", xType);
  b.line("}");
  kernel.text = formatv(R"(  gpu.func @{0}(%x: {1}, %pos: {2}, %freq: {3}, %y: {1})
      kernel attributes {{known_block_size = array<i32: {4}, 1, 1>} {
{5}    gpu.return
  }
)",
                        kernel.name, xType, memref(tokens, positionType),
                        memref(half, "f32"), kElementwiseThreads, b.text)
                    .str();
  kernel.bytes = 8 * count + 4 * half + 8 * tokens;
  kernel.flops = 6 * pairs;
  return kernel;
}

/// Name suffix of an attention shape.
static std::string attentionSuffix(const GPUAttentionShape &s) {
  return formatv("{0}x{1}x{2}x{3}_c{4}_{5}_{6}", s.tokens, s.heads, s.kvHeads,
                 s.dim, s.capacity, s.cacheType, s.positionType)
      .str();
}

/// A cache element loaded from `cache` at `at`, widened to f32.
static std::string loadCached(Body &b, StringRef cache, StringRef at,
                              const GPUAttentionShape &s) {
  int64_t count = s.capacity * s.kvHeads * s.dim;
  std::string v = b.fresh("cv");
  b.line(v + " = memref.load " + cache + "[" + at + "] : " +
         memref(count, s.cacheType));
  if (s.cacheType == "f32")
    return v;
  return b.op("arith.extf", {v}, s.cacheType + " to f32");
}

/// Stores f32 `value` into cache `cache` at `at`, rounded to the cache type.
static void storeCached(Body &b, StringRef cache, StringRef at,
                        std::string value, const GPUAttentionShape &s) {
  if (s.cacheType != "f32")
    value = b.op("arith.truncf", {value}, "f32 to " + s.cacheType);
  b.line("memref.store " + value + ", " + cache + "[" + at + "] : " +
         memref(s.capacity * s.kvHeads * s.dim, s.cacheType));
}

/// The cache index of element `i` of the new rows: rows start at p =
/// clamp(position, 0, capacity - tokens), so p * rowElems + i.
static std::string cacheIndex(Body &b, const std::string &i,
                              const GPUAttentionShape &s) {
  std::string p =
      b.clampedPosition("%pos", s.positionType, 0, s.capacity - s.tokens);
  return b.op("arith.addi",
              {b.op("arith.muli", {p, b.idx(s.kvHeads * s.dim)}, "index"), i},
              "index");
}

GPUKernel mlir::bitnet::cacheUpdateKernel(const GPUAttentionShape &s) {
  GPUKernel kernel;
  kernel.name = "bitnet_kv_update_" + attentionSuffix(s);
  int64_t rowElems = s.kvHeads * s.dim, count = s.tokens * rowElems;
  kernel.grid = {std::max<int64_t>(1, llvm::divideCeil(count, kElementwiseThreads)),
                 1, 1};
  kernel.block = {kElementwiseThreads, 1, 1};
  std::string rowsType = memref(count, "f32");
  std::string cacheType = memref(s.capacity * rowElems, s.cacheType);
  Body b;
  std::string i = b.globalIndex(kElementwiseThreads);
  b.line("scf.if " + b.op("arith.cmpi ult,", {i, b.idx(count)}, "index") + " {");
  std::string at = cacheIndex(b, i, s);
  for (StringRef which : {"k", "v"}) {
    std::string v = b.fresh("new");
    b.line(v + " = memref.load %" + which + "[" + i + "] : " + rowsType);
    storeCached(b, ("%" + which + "c").str(), at, v, s);
  }
  b.line("}");
  kernel.text = formatv(R"(  gpu.func @{0}(%k: {1}, %v: {1}, %kc: {2}, %vc: {2}, %pos: {3})
      kernel attributes {{known_block_size = array<i32: {4}, 1, 1>} {
{5}    gpu.return
  }
)",
                        kernel.name, rowsType, cacheType,
                        memref(1, s.positionType), kElementwiseThreads, b.text)
                    .str();
  int64_t cacheBytes = s.cacheType == "f32" ? 4 : 2;
  kernel.bytes = 2 * count * (4 + cacheBytes);
  kernel.flops = 0;
  return kernel;
}

GPUKernel mlir::bitnet::ropeCacheUpdateKernel(const GPUAttentionShape &s,
                                              const RopeSpec &q,
                                              const RopeSpec &k) {
  GPUKernel kernel;
  kernel.name = "bitnet_rope_kv_update_" + attentionSuffix(s) + "_q" +
                ropeName(q) + "_k" + ropeName(k);
  int64_t qPairs = q.tokens * q.heads * (q.dim / 2);
  int64_t kPairs = k.tokens * k.heads * (k.dim / 2);
  int64_t rowElems = s.kvHeads * s.dim, vCount = s.tokens * rowElems;
  int64_t total = qPairs + kPairs + vCount;
  kernel.grid = {std::max<int64_t>(1, llvm::divideCeil(total, kElementwiseThreads)),
                 1, 1};
  kernel.block = {kElementwiseThreads, 1, 1};
  std::string qType = memref(q.tokens * q.heads * q.dim, "f32");
  std::string rowsType = memref(vCount, "f32");
  std::string cacheType = memref(s.capacity * rowElems, s.cacheType);
  Body b;
  // Threads [0, qPairs) rotate q into %qr, the next kPairs rotate k into the
  // key cache, the next vCount copy v into the value cache.
  std::string i = b.globalIndex(kElementwiseThreads);
  b.line("scf.if " + b.op("arith.cmpi ult,", {i, b.idx(qPairs)}, "index") + " {");
  storePair(b, rotatePair(b, i, q, "%q", "%qpos", "%qfreq"), "%qr", qType);
  b.line("} else {");
  std::string j = b.op("arith.subi", {i, b.idx(qPairs)}, "index");
  b.line("scf.if " + b.op("arith.cmpi ult,", {j, b.idx(kPairs)}, "index") + " {");
  RotatedPair rk = rotatePair(b, j, k, "%k", "%kpos", "%kfreq");
  storeCached(b, "%kc", cacheIndex(b, rk.a, s), rk.ya, s);
  storeCached(b, "%kc", cacheIndex(b, rk.c, s), rk.yb, s);
  b.line("} else {");
  std::string l = b.op("arith.subi", {j, b.idx(kPairs)}, "index");
  b.line("scf.if " + b.op("arith.cmpi ult,", {l, b.idx(vCount)}, "index") + " {");
  std::string v = b.fresh("new");
  b.line(v + " = memref.load %v[" + l + "] : " + rowsType);
  storeCached(b, "%vc", cacheIndex(b, l, s), v, s);
  b.line("}");
  b.line("}");
  b.line("}");
  kernel.text = formatv(
      R"(  gpu.func @{0}(%q: {1}, %k: {2}, %v: {2}, %qpos: {3}, %kpos: {4}, %qfreq: {5}, %kfreq: {6}, %qr: {1}, %kc: {7}, %vc: {7}, %pos: {8})
      kernel attributes {{known_block_size = array<i32: {9}, 1, 1>} {
{10}    gpu.return
  }
)",
      kernel.name, qType, rowsType, memref(q.tokens, q.positionType),
      memref(k.tokens, k.positionType), memref(q.dim / 2, "f32"),
      memref(k.dim / 2, "f32"), cacheType, memref(1, s.positionType),
      kElementwiseThreads, b.text)
                    .str();
  int64_t cacheBytes = s.cacheType == "f32" ? 4 : 2;
  kernel.bytes = 8 * 2 * qPairs + 2 * vCount * (4 + cacheBytes);
  kernel.flops = 6 * (qPairs + kPairs);
  return kernel;
}

static constexpr int64_t kAttentionThreads = 128;

GPUKernel mlir::bitnet::attentionKernel(const GPUAttentionShape &s) {
  GPUKernel kernel;
  kernel.name = "bitnet_attention_" + attentionSuffix(s);
  int64_t units = s.tokens * s.heads, group = s.heads / s.kvHeads;
  int64_t rowElems = s.kvHeads * s.dim;
  int64_t warps = kAttentionThreads / 32;
  kernel.grid = {units, 1, 1};
  kernel.block = {kAttentionThreads, 1, 1};
  std::string qType = memref(units * s.dim, "f32");
  std::string cacheType = memref(s.capacity * rowElems, s.cacheType);
  std::string scoresType = memref(units * s.capacity, "f32");
  std::string qsType = (Twine("memref<") + Twine(s.dim) +
                        "xf32, #gpu.address_space<workgroup>>")
                           .str();
  Body b;
  std::string tid = b.fresh("tid"), unit = b.fresh("unit");
  b.line(tid + " = gpu.thread_id x");
  b.line(unit + " = gpu.block_id x");
  std::string c32 = b.idx(32), cStep = b.idx(kAttentionThreads);
  std::string c0 = b.idx(0), c1 = b.idx(1), cD = b.idx(s.dim);
  std::string lane = b.op("arith.remui", {tid, c32}, "index");
  std::string warp = b.op("arith.divui", {tid, c32}, "index");
  std::string tok = b.op("arith.divui", {unit, b.idx(s.heads)}, "index");
  std::string head = b.op("arith.remui", {unit, b.idx(s.heads)}, "index");
  std::string kvOff = b.op(
      "arith.muli", {b.op("arith.divui", {head, b.idx(group)}, "index"), cD},
      "index");
  std::string p =
      b.clampedPosition("%pos", s.positionType, 0, s.capacity - s.tokens);
  // Rows [0, p + token] are visible.
  std::string visible = b.op(
      "arith.addi", {b.op("arith.addi", {p, tok}, "index"), c1}, "index");
  std::string qBase = b.op("arith.muli", {unit, cD}, "index");
  std::string sBase = b.op("arith.muli", {unit, b.idx(s.capacity)}, "index");
  // The query row, in workgroup memory.
  b.line("scf.for %d = " + tid + " to " + cD + " step " + cStep + " {");
  b.line("  %qa = arith.addi " + qBase + ", %d : index");
  b.line("  %qv = memref.load %q[%qa] : " + qType);
  b.line("  memref.store %qv, %qs[%d] : " + qsType);
  b.line("}");
  b.line("gpu.barrier");
  // Scores of the visible rows, and their maximum: a warp per row, its
  // lanes over the features (consecutive lanes read consecutive elements of
  // the key row), summed with butterfly shuffles; lane 0 stores the score.
  std::string negInf = b.f32(-std::numeric_limits<float>::infinity());
  std::string fz = b.f32(0.0f), scale = b.f32(s.scale);
  std::string localMax = b.fresh("lmax");
  b.line(localMax + " = scf.for %j = " + warp + " to " + visible + " step " +
         b.idx(warps) + " iter_args(%m = " + negInf + ") -> (f32) {");
  std::string row = b.op(
      "arith.addi", {b.op("arith.muli", {"%j", b.idx(rowElems)}, "index"), kvOff},
      "index");
  std::string part = b.fresh("part");
  b.line(part + " = scf.for %d = " + lane + " to " + cD + " step " + c32 +
         " iter_args(%a = " + fz + ") -> (f32) {");
  b.line("  %qd = memref.load %qs[%d] : " + qsType);
  std::string at = b.op("arith.addi", {row, "%d"}, "index");
  std::string kv = loadCached(b, "%kc", at, s);
  b.line("  %qk = arith.mulf %qd, " + kv + " : f32");
  b.line("  %a1 = arith.addf %a, %qk : f32");
  b.line("  scf.yield %a1 : f32");
  b.line("}");
  std::string dot = b.warpReduce(part, "arith.addf", "f32");
  std::string score = b.op("arith.mulf", {dot, scale}, "f32");
  std::string sAt = b.op("arith.addi", {sBase, "%j"}, "index");
  b.line("scf.if " + b.op("arith.cmpi eq,", {lane, c0}, "index") + " {");
  b.line("  memref.store " + score + ", %scores[" + sAt + "] : " + scoresType);
  b.line("}");
  b.line("%m1 = arith.maximumf %m, " + score + " : f32");
  b.line("scf.yield %m1 : f32");
  b.line("}");
  std::string max =
      b.blockReduce(localMax, "arith.maximumf", "f32", "%red", warps, lane, warp);
  // exp(score - max) in place, and its sum.
  std::string localSum = b.fresh("lsum");
  b.line(localSum + " = scf.for %j = " + tid + " to " + visible + " step " +
         cStep + " iter_args(%a = " + fz + ") -> (f32) {");
  b.line("  %sa = arith.addi " + sBase + ", %j : index");
  b.line("  %sv = memref.load %scores[%sa] : " + scoresType);
  b.line("  %sd = arith.subf %sv, " + max + " : f32");
  b.line("  %e = math.exp %sd : f32");
  b.line("  memref.store %e, %scores[%sa] : " + scoresType);
  b.line("  %a1 = arith.addf %a, %e : f32");
  b.line("  scf.yield %a1 : f32");
  b.line("}");
  std::string sum =
      b.blockReduce(localSum, "arith.addf", "f32", "%red", warps, lane, warp);
  // out[d] = sum_j e_j v[j, d] / sum, one feature per thread.
  b.line("scf.for %d = " + tid + " to " + cD + " step " + cStep + " {");
  std::string vOff = b.op("arith.addi", {kvOff, "%d"}, "index");
  std::string acc = b.fresh("acc");
  b.line(acc + " = scf.for %j = " + c0 + " to " + visible + " step " + c1 +
         " iter_args(%a = " + fz + ") -> (f32) {");
  b.line("  %ea = arith.addi " + sBase + ", %j : index");
  b.line("  %e = memref.load %scores[%ea] : " + scoresType);
  std::string vAt = b.op(
      "arith.addi", {b.op("arith.muli", {"%j", b.idx(rowElems)}, "index"), vOff},
      "index");
  std::string vv = loadCached(b, "%vc", vAt, s);
  b.line("  %ev = arith.mulf %e, " + vv + " : f32");
  b.line("  %a1 = arith.addf %a, %ev : f32");
  b.line("  scf.yield %a1 : f32");
  b.line("}");
  std::string o = b.op("arith.divf", {acc, sum}, "f32");
  std::string oAt = b.op("arith.addi", {qBase, "%d"}, "index");
  b.line("memref.store " + o + ", %out[" + oAt + "] : " + qType);
  b.line("}");
  kernel.text = formatv(R"(  gpu.func @{0}(%q: {1}, %kc: {2}, %vc: {2}, %pos: {3}, %scores: {4}, %out: {1})
      workgroup(%qs: {5}, %red: memref<{6}xf32, #gpu.address_space<workgroup>>)
      kernel attributes {{known_block_size = array<i32: {7}, 1, 1>} {
{8}    gpu.return
  }
)",
                        kernel.name, qType, cacheType, memref(1, s.positionType),
                        scoresType, qsType, warps, kAttentionThreads, b.text)
                    .str();
  // A full cache read per query head (an upper bound: only visible rows are).
  int64_t cacheBytes = s.cacheType == "f32" ? 4 : 2;
  kernel.bytes = units * (2 * cacheBytes * s.capacity * s.dim + 8 * s.dim);
  kernel.flops = 4 * units * s.capacity * s.dim;
  return kernel;
}

/// `v` of element type `type` (f32, f16 or an integer) as f32.
static std::string widenToF32(Body &b, const std::string &v, StringRef type) {
  if (type == "f32")
    return v;
  if (type.starts_with("f"))
    return b.op("arith.extf", {v}, (type + " to f32").str());
  return b.op("arith.sitofp", {v}, (type + " to f32").str());
}

GPUKernel mlir::bitnet::embeddingKernel(int64_t tokens, int64_t vocab,
                                        int64_t dim, StringRef tableType,
                                        StringRef idType, bool scaled) {
  GPUKernel kernel;
  int64_t count = tokens * dim;
  kernel.name = formatv("bitnet_embedding_{0}x{1}x{2}_{3}_{4}", tokens, vocab,
                        dim, tableType, idType)
                    .str();
  kernel.grid = {std::max<int64_t>(1, llvm::divideCeil(count, kElementwiseThreads)),
                 1, 1};
  kernel.block = {kElementwiseThreads, 1, 1};
  std::string tType = memref(vocab * dim, tableType);
  Body b;
  std::string i = b.globalIndex(kElementwiseThreads);
  b.line("scf.if " + b.op("arith.cmpi ult,", {i, b.idx(count)}, "index") + " {");
  std::string t = b.op("arith.divui", {i, b.idx(dim)}, "index");
  std::string d = b.op("arith.remui", {i, b.idx(dim)}, "index");
  std::string raw = b.fresh("id");
  b.line(raw + " = memref.load %ids[" + t + "] : " + memref(tokens, idType));
  // Negative ids count from the end; then clamped into [0, vocab - 1].
  std::string id = b.op("arith.index_cast", {raw}, (idType + " to index").str());
  std::string neg = b.op("arith.cmpi slt,", {id, b.idx(0)}, "index");
  id = b.op("arith.select",
            {neg, b.op("arith.addi", {id, b.idx(vocab)}, "index"), id}, "index");
  id = b.op("arith.maxsi", {id, b.idx(0)}, "index");
  id = b.op("arith.minsi", {id, b.idx(vocab - 1)}, "index");
  std::string at = b.op(
      "arith.addi", {b.op("arith.muli", {id, b.idx(dim)}, "index"), d}, "index");
  std::string v = b.fresh("tv");
  b.line(v + " = memref.load %table[" + at + "] : " + tType);
  std::string y = widenToF32(b, v, tableType);
  if (scaled) {
    std::string sc = b.fresh("sc");
    b.line(sc + " = memref.load %scales[" + id + "] : " + memref(vocab, "f32"));
    y = b.op("arith.mulf", {y, sc}, "f32");
  }
  b.line("memref.store " + y + ", %y[" + i + "] : " + memref(count, "f32"));
  b.line("}");
  kernel.text = formatv(R"(  gpu.func @{0}(%table: {1}, %ids: {2}, {3}%y: {4})
      kernel attributes {{known_block_size = array<i32: {5}, 1, 1>} {
{6}    gpu.return
  }
)",
                        kernel.name, tType, memref(tokens, idType),
                        scaled ? "%scales: " + memref(vocab, "f32") + ", " : "",
                        memref(count, "f32"), kElementwiseThreads, b.text)
                    .str();
  kernel.bytes = 8 * count + 8 * tokens;
  kernel.flops = 0;
  return kernel;
}

static constexpr int64_t kDenseWarps = 4;

GPUKernel mlir::bitnet::denseKernel(int64_t m, int64_t n, int64_t k,
                                    StringRef weightType, bool scaled) {
  GPUKernel kernel;
  kernel.name =
      formatv("bitnet_dense_{0}x{1}x{2}_{3}", m, n, k, weightType).str();
  kernel.grid = {std::max<int64_t>(1, llvm::divideCeil(n, kDenseWarps)), 1, 1};
  kernel.block = {32 * kDenseWarps, 1, 1};
  std::string xType = memref(m * k, "f32"), wType = memref(n * k, weightType);
  std::string yType = memref(m * n, "f32");
  Body b;
  std::string tid = b.fresh("tid"), bx = b.fresh("bx");
  b.line(tid + " = gpu.thread_id x");
  b.line(bx + " = gpu.block_id x");
  std::string c32 = b.idx(32), c0 = b.idx(0), c1 = b.idx(1), cK = b.idx(k);
  std::string lane = b.op("arith.remui", {tid, c32}, "index");
  std::string warp = b.op("arith.divui", {tid, c32}, "index");
  std::string row = b.op(
      "arith.addi", {b.op("arith.muli", {bx, b.idx(kDenseWarps)}, "index"), warp},
      "index");
  b.line("scf.if " + b.op("arith.cmpi ult,", {row, b.idx(n)}, "index") + " {");
  std::string wRow = b.op("arith.muli", {row, cK}, "index");
  std::string fz = b.f32(0.0f);
  std::string scale;
  if (scaled) {
    scale = b.fresh("sc");
    b.line(scale + " = memref.load %scales[" + row + "] : " + memref(n, "f32"));
  }
  b.line("scf.for %t = " + c0 + " to " + b.idx(m) + " step " + c1 + " {");
  std::string xRow = b.op("arith.muli", {"%t", cK}, "index");
  std::string acc = b.fresh("acc");
  b.line(acc + " = scf.for %kk = " + lane + " to " + cK + " step " + c32 +
         " iter_args(%a = " + fz + ") -> (f32) {");
  std::string xv = b.fresh("xv"), wv = b.fresh("wv");
  b.line(xv + " = memref.load %x[" + b.op("arith.addi", {xRow, "%kk"}, "index") +
         "] : " + xType);
  b.line(wv + " = memref.load %w[" + b.op("arith.addi", {wRow, "%kk"}, "index") +
         "] : " + wType);
  std::string prod =
      b.op("arith.mulf", {xv, widenToF32(b, wv, weightType)}, "f32");
  b.line("%a1 = arith.addf %a, " + prod + " : f32");
  b.line("scf.yield %a1 : f32");
  b.line("}");
  std::string total = b.warpReduce(acc, "arith.addf", "f32");
  if (scaled)
    total = b.op("arith.mulf", {total, scale}, "f32");
  b.line("scf.if " + b.op("arith.cmpi eq,", {lane, c0}, "index") + " {");
  std::string at = b.op(
      "arith.addi", {b.op("arith.muli", {"%t", b.idx(n)}, "index"), row},
      "index");
  b.line("memref.store " + total + ", %y[" + at + "] : " + yType);
  b.line("}");
  b.line("}");
  b.line("}");
  kernel.text = formatv(R"(  gpu.func @{0}(%x: {1}, %w: {2}, {3}%y: {4})
      kernel attributes {{known_block_size = array<i32: {5}, 1, 1>} {
{6}    gpu.return
  }
)",
                        kernel.name, xType, wType,
                        scaled ? "%scales: " + memref(n, "f32") + ", " : "",
                        yType, 32 * kDenseWarps, b.text)
                    .str();
  int64_t wBytes = weightType == "f32" ? 4 : weightType == "f16" ? 2 : 1;
  kernel.bytes = wBytes * n * k + 4 * m * k + 4 * m * n;
  kernel.flops = 2 * m * n * k;
  return kernel;
}

GPUKernel mlir::bitnet::positionRangeKernel(int64_t count, StringRef type) {
  GPUKernel kernel;
  kernel.name = formatv("bitnet_position_range_{0}_{1}", count, type).str();
  kernel.grid = {std::max<int64_t>(1, llvm::divideCeil(count, kElementwiseThreads)),
                 1, 1};
  kernel.block = {kElementwiseThreads, 1, 1};
  Body b;
  std::string i = b.globalIndex(kElementwiseThreads);
  b.line("scf.if " + b.op("arith.cmpi ult,", {i, b.idx(count)}, "index") + " {");
  std::string start = b.fresh("start");
  b.line(start + " = memref.load %start[" + b.idx(0) + "] : " +
         memref(1, type));
  std::string off = b.op("arith.index_cast", {i}, ("index to " + type).str());
  std::string y = b.op("arith.addi", {start, off}, type);
  b.line("memref.store " + y + ", %y[" + i + "] : " + memref(count, type));
  b.line("}");
  kernel.text = formatv(R"(  gpu.func @{0}(%start: {1}, %y: {2})
      kernel attributes {{known_block_size = array<i32: {3}, 1, 1>} {
{4}    gpu.return
  }
)",
                        kernel.name, memref(1, type), memref(count, type),
                        kElementwiseThreads, b.text)
                    .str();
  kernel.bytes = 8 * count;
  kernel.flops = count;
  return kernel;
}

GPUKernel mlir::bitnet::elementwiseKernel(ElementwiseKind kind,
                                          int64_t count) {
  static constexpr int64_t kThreads = 256;
  GPUKernel kernel;
  StringRef names[] = {"squared_relu", "add", "mul", "copy"};
  kernel.name =
      formatv("bitnet_{0}_{1}", names[static_cast<int>(kind)], count).str();
  kernel.grid = {std::max<int64_t>(1, llvm::divideCeil(count, kThreads)), 1, 1};
  kernel.block = {kThreads, 1, 1};
  bool binary = kind == ElementwiseKind::Add || kind == ElementwiseKind::Mul;
  std::string type = memref(count, "f32");
  Body b;
  std::string tid = b.fresh("tid"), bx = b.fresh("bx");
  b.line(tid + " = gpu.thread_id x");
  b.line(bx + " = gpu.block_id x");
  std::string i = b.op(
      "arith.addi", {b.op("arith.muli", {bx, b.idx(kThreads)}, "index"), tid},
      "index");
  b.line("scf.if " + b.op("arith.cmpi ult,", {i, b.idx(count)}, "index") +
         " {");
  std::string a = b.fresh("a");
  b.line(a + " = memref.load %a[" + i + "] : " + type);
  std::string y;
  switch (kind) {
  case ElementwiseKind::SquaredRelu: {
    std::string r = b.op("arith.maxnumf", {a, b.f32("0.0")}, "f32");
    y = b.op("arith.mulf", {r, r}, "f32");
    break;
  }
  case ElementwiseKind::Add:
  case ElementwiseKind::Mul: {
    std::string c = b.fresh("b");
    b.line(c + " = memref.load %b[" + i + "] : " + type);
    y = b.op(kind == ElementwiseKind::Add ? "arith.addf" : "arith.mulf", {a, c},
             "f32");
    break;
  }
  case ElementwiseKind::Copy:
    y = a;
    break;
  }
  b.line("memref.store " + y + ", %y[" + i + "] : " + type);
  b.line("}");
  kernel.text = formatv(R"(  gpu.func @{0}(%a: {1}, {2}%y: {1})
      kernel attributes {{known_block_size = array<i32: {3}, 1, 1>} {
{4}    gpu.return
  }
)",
                        kernel.name, type, binary ? "%b: " + type + ", " : "",
                        kThreads, b.text)
                    .str();
  kernel.bytes = (binary ? 12 : 8) * count;
  kernel.flops = count;
  return kernel;
}
