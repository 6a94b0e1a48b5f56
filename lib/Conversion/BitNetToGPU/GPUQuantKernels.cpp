//===- GPUQuantKernels.cpp - Quantisation and RMSNorm kernels ---*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// The kernels that reduce one row per block: the per-token int8
// quantisation of the activations, RMSNorm, and the two fused.
//
//===----------------------------------------------------------------------===//

#include "GPUKernelSupport.h"

#include "mlir/Dialect/Math/IR/Math.h"
#include "llvm/Support/FormatVariadic.h"

#include <functional>
#include <optional>

using namespace mlir;
using namespace mlir::bitnet;
using llvm::formatv;

namespace {
/// One block per row reducing over its elements: the thread and row ids,
/// lane and warp.
struct RowBlock {
  Value tid, row, lane, warp, step;
  static constexpr int64_t warps = kReduceThreads / 32;
  explicit RowBlock(GPUKernelBuilder &b) {
    tid = b.threadId();
    row = b.blockId();
    Value c32 = b.idx(32);
    step = b.idx(kReduceThreads);
    lane = b.remui(tid, c32);
    warp = b.divui(tid, c32);
  }
};

/// Element `i` of a row (f32), and its index in the rows.
struct RowElement {
  Value at, value;
};

/// Builds, inside a loop body over `i`, element `i` of this row.
using RowValue = std::function<RowElement(Value i)>;

/// Element `i` of row `base` of `x`.
RowValue rowElement(GPUKernelBuilder &b, Value x, Value base) {
  return [=, &b](Value i) {
    Value at = b.addi(base, i);
    return RowElement{at, b.load(x, at)};
  };
}

/// Element `i` of row `base` of relu(gate)^2 * up, with the f32 operations
/// of the squared-ReLU and multiply kernels.
RowValue gatedElement(GPUKernelBuilder &b, Value gate, Value up, Value base) {
  return [=, &b](Value i) {
    Value at = b.addi(base, i);
    Value av = b.load(gate, at), bv = b.load(up, at);
    Value ar = b.maxnumf(av, b.f32(0.0f));
    return RowElement{at, b.mulf(b.mulf(ar, ar), bv)};
  };
}

/// 1 / sqrt(mean(x^2) + eps) over elements [0, ub) of the row that `x`
/// gives (block-wide, in workgroup memory `red`).
Value rmsInverse(GPUKernelBuilder &b, const RowBlock &rb, const RowValue &x,
                 Value ub, Value red, int64_t d, float eps) {
  Value sumsq = b.fold(rb.tid, ub, rb.step, b.f32(0.0f), [&](Value i, Value s) {
    Value v = x(i).value;
    return b.addf(s, b.mulf(v, v));
  });
  Value all = b.blockReduce(sumsq, Combine::AddF, red, RowBlock::warps, rb.lane,
                            rb.warp);
  // Exact constants: epsilon and d as their f32 bits.
  Value mean = b.divf(all, b.f32(float(d)));
  Value den = math::SqrtOp::create(b, b.addf(mean, b.f32(eps)));
  return b.divf(b.f32(1.0f), den);
}

/// RMSNorm's output element `i` of the row that `x` gives: gamma * (x *
/// inv).
RowValue normalized(GPUKernelBuilder &b, RowValue x, Value gamma, Value inv) {
  return [=, &b](Value i) {
    RowElement e = x(i);
    Value g = b.load(gamma, i);
    return RowElement{e.at, b.mulf(g, b.mulf(e.value, inv))};
  };
}

/// Quantises this block's row, whose elements [0, ub) `value` gives, into
/// row `row` of `xq` (`rowStride` bytes, zero past ub), its integer sum into
/// `xs` and its scale into `sx` (block-wide reductions in `redf` and
/// `redi`).
void quantizeRow(GPUKernelBuilder &b, const RowBlock &rb, const RowValue &value,
                 Value ub, int64_t rowStride, Value xq, Value xs, Value sx,
                 Value redf, Value redi) {
  Value fz = b.f32(0.0f);
  Value amax = b.fold(rb.tid, ub, rb.step, fz, [&](Value i, Value a) {
    Value ax = math::AbsFOp::create(b, value(i).value);
    return Value(arith::MaximumFOp::create(b, a, ax));
  });
  Value all = b.blockReduce(amax, Combine::MaximumF, redf, RowBlock::warps,
                            rb.lane, rb.warp);
  Value floor = b.f32(1e-5f), c127 = b.f32(127.0f);
  Value scale = b.divf(c127, arith::MaximumFOp::create(b, all, floor));
  Value lo = b.f32(-128.0f);
  Value qRow = b.muli(rb.row, b.idx(rowStride));
  Value zi = b.i32(0), strideEnd = b.idx(rowStride);
  Value sum = b.fold(rb.tid, strideEnd, rb.step, zi, [&](Value i, Value s) {
    Value v = b.ifValue(
        b.getF32Type(), b.ult(i, ub), [&] { return value(i).value; },
        [&] { return fz; });
    Value r = math::RoundEvenOp::create(b, b.mulf(v, scale));
    r = arith::MinNumFOp::create(b, b.maxnumf(r, lo), c127);
    Value q = arith::FPToSIOp::create(b, b.getI8Type(), r);
    b.store(q, xq, b.addi(qRow, i));
    return b.addi(s, arith::ExtSIOp::create(b, b.getI32Type(), q));
  });
  Value total = b.blockReduce(sum, Combine::AddI, redi, RowBlock::warps,
                              rb.lane, rb.warp);
  b.ifThen(b.eq(rb.tid, b.idx(0)), [&] {
    b.store(total, xs, rb.row);
    b.store(scale, sx, rb.row);
  });
}
} // namespace

/// The quantisation of `m x k` rows, of the input or (with `eps`) of its
/// RMSNorm, whose input is relu(gate)^2 * up when `gated`: quantizeKernel and
/// rmsnormQuantizeKernel.
static GPUKernel quantizeRowsKernel(gpu::GPUModuleOp module, std::string name,
                                    int64_t m, int64_t k, int64_t rowStride,
                                    int64_t paddedTokens,
                                    std::optional<float> eps, bool gated) {
  GPUKernel kernel;
  kernel.name = std::move(name);
  kernel.grid = {paddedTokens, 1, 1};
  kernel.block = {kReduceThreads, 1, 1};
  // With a norm, the input is read three times (sum of squares, maximum,
  // quantisation).
  int64_t inputBytes = (gated ? 8 : 4) * m * k;
  kernel.bytes = (eps ? 3 * inputBytes + 4 * k : inputBytes) +
                 paddedTokens * (rowStride + 8);
  kernel.flops = eps ? (gated ? 19 : 10) * m * k : 3 * m * k;
  OpBuilder ob(module.getContext());
  Type f32 = ob.getF32Type(), i32 = ob.getI32Type();
  SmallVector<Type> args(gated ? 2 : 1, flatMemRef(m * k, f32));
  if (eps)
    args.push_back(flatMemRef(k, f32));
  args.append({flatMemRef(paddedTokens * rowStride, ob.getI8Type()),
               flatMemRef(paddedTokens, i32), flatMemRef(paddedTokens, f32)});
  SmallVector<Type> workgroup;
  if (eps)
    workgroup.push_back(workgroupMemRef(RowBlock::warps, f32));
  workgroup.append({workgroupMemRef(RowBlock::warps, f32),
                    workgroupMemRef(RowBlock::warps, i32)});
  if (!createKernel(module, kernel, args, workgroup))
    return kernel;
  GPUKernelBuilder b(kernel.func);
  unsigned n = args.size();
  RowBlock rb(b);
  // Tokens past m (padding for the matmul's token blocks) read nothing.
  Value real = b.ult(rb.row, b.idx(m));
  Value ck = b.idx(k), c0 = b.idx(0);
  Value ub = b.select(real, ck, c0);
  Value base = b.muli(rb.row, b.idx(k));
  RowValue x = gated ? gatedElement(b, b.arg(0), b.arg(1), base)
                     : rowElement(b, b.arg(0), base);
  if (eps)
    x = normalized(b, x, b.arg(n - 4),
                   rmsInverse(b, rb, x, ub, b.workgroup(0), k, *eps));
  quantizeRow(b, rb, x, ub, rowStride, b.arg(n - 3), b.arg(n - 2), b.arg(n - 1),
              b.workgroup(eps ? 1 : 0), b.workgroup(eps ? 2 : 1));
  return kernel;
}

GPUKernel mlir::bitnet::quantizeKernel(gpu::GPUModuleOp module, int64_t m,
                                       int64_t k, int64_t rowStride,
                                       int64_t paddedTokens) {
  return quantizeRowsKernel(
      module,
      formatv("bitnet_quantize_{0}x{1}_{2}x{3}", m, k, paddedTokens, rowStride),
      m, k, rowStride, paddedTokens, std::nullopt,
      /*gated=*/false);
}

GPUKernel mlir::bitnet::rmsnormQuantizeKernel(gpu::GPUModuleOp module,
                                              int64_t m, int64_t k, float eps,
                                              int64_t rowStride,
                                              int64_t paddedTokens,
                                              bool gated) {
  return quantizeRowsKernel(
      module,
      formatv("bitnet_{0}rmsnorm_quantize_{1}x{2}_{3:x}_{4}x{5}",
              gated ? "gated_" : "", m, k, llvm::bit_cast<uint32_t>(eps),
              paddedTokens, rowStride),
      m, k, rowStride, paddedTokens, eps, gated);
}

GPUKernel mlir::bitnet::rmsnormKernel(gpu::GPUModuleOp module, int64_t rows,
                                      int64_t d, float eps) {
  GPUKernel kernel;
  kernel.name = formatv("bitnet_rmsnorm_{0}x{1}_{2:x}", rows, d,
                        llvm::bit_cast<uint32_t>(eps))
                    .str();
  kernel.grid = {rows, 1, 1};
  kernel.block = {kReduceThreads, 1, 1};
  kernel.bytes = 8 * rows * d + 4 * d;
  kernel.flops = 4 * rows * d;
  Type f32 = Float32Type::get(module.getContext());
  Type xType = flatMemRef(rows * d, f32);
  if (!createKernel(module, kernel, {xType, flatMemRef(d, f32), xType},
                    {workgroupMemRef(RowBlock::warps, f32)}))
    return kernel;
  GPUKernelBuilder b(kernel.func);
  RowBlock rb(b);
  Value base = b.muli(rb.row, b.idx(d));
  Value cd = b.idx(d);
  RowValue x = rowElement(b, b.arg(0), base);
  Value inv = rmsInverse(b, rb, x, cd, b.workgroup(0), d, eps);
  RowValue y = normalized(b, x, b.arg(1), inv);
  b.forEach(rb.tid, cd, rb.step, [&](Value i) {
    RowElement e = y(i);
    b.store(e.value, b.arg(2), e.at);
  });
  return kernel;
}
