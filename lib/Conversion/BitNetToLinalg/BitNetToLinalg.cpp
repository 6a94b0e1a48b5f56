//===- BitNetToLinalg.cpp - Reference lowering of bitnet ops ----*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// Lowers every bitnet op to linalg.generic ops on tensors that spell out the
// numerics contract of the dialect. Clarity beats speed here: this is the
// oracle the optimised kernels are compared with.
//
//===----------------------------------------------------------------------===//

#include "bitnet/Conversion/Passes.h"
#include "bitnet/Dialect/BitNet/IR/BitNet.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Func/Transforms/FuncConversions.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Utils/StructuredOpsUtils.h"
#include "mlir/IR/AffineMap.h"
#include "mlir/Transforms/DialectConversion.h"

#include <cmath>

namespace mlir::bitnet {
#define GEN_PASS_DEF_BITNETLOWERTOLINALG
#include "bitnet/Conversion/Passes.h.inc"
} // namespace mlir::bitnet

using namespace mlir;
using namespace mlir::bitnet;

using utils::IteratorType;

//===----------------------------------------------------------------------===//
// Building blocks
//===----------------------------------------------------------------------===//

namespace {
/// The body of a linalg.generic: block arguments in, yielded value out.
using BodyFn = function_ref<Value(OpBuilder &, Location, ValueRange)>;

/// A small helper that keeps the lowerings below readable.
struct Emitter {
  OpBuilder &b;
  Location loc;

  Value f32(float v) { return arith::ConstantOp::create(b, loc, b.getF32FloatAttr(v)); }
  Value f64(double v) { return arith::ConstantOp::create(b, loc, b.getF64FloatAttr(v)); }
  Value i32(int32_t v) { return arith::ConstantOp::create(b, loc, b.getI32IntegerAttr(v)); }
  Value i8(int8_t v) {
    return arith::ConstantOp::create(b, loc, b.getIntegerAttr(b.getI8Type(), v));
  }
  Value index(int64_t v) { return arith::ConstantIndexOp::create(b, loc, v); }

  /// The extents of `v`, static or read with tensor.dim.
  SmallVector<OpFoldResult> sizes(Value v) {
    return tensor::getMixedSizes(b, loc, v);
  }

  Value empty(ArrayRef<OpFoldResult> sizes, Type elementType) {
    return tensor::EmptyOp::create(b, loc, sizes, elementType);
  }

  Value filled(ArrayRef<OpFoldResult> sizes, Value value) {
    Value init = empty(sizes, value.getType());
    return linalg::FillOp::create(b, loc, ValueRange{value}, ValueRange{init})
        .getResult(0);
  }

  /// A linalg.generic with one result written into `init`.
  Value generic(ValueRange inputs, Value init, ArrayRef<AffineMap> maps,
                ArrayRef<IteratorType> iterators, BodyFn body) {
    auto op = linalg::GenericOp::create(
        b, loc, TypeRange{init.getType()}, inputs, ValueRange{init}, maps,
        iterators, [&](OpBuilder &nb, Location nl, ValueRange args) {
          linalg::YieldOp::create(nb, nl, body(nb, nl, args));
        });
    return op.getResult(0);
  }

  /// Identity map over `rank` loops.
  AffineMap identity(unsigned rank) {
    return AffineMap::getMultiDimIdentityMap(rank, b.getContext());
  }

  /// Map over `rank` loops that keeps the listed loop dimensions.
  AffineMap project(unsigned rank, ArrayRef<unsigned> dims) {
    SmallVector<AffineExpr> exprs;
    for (unsigned d : dims)
      exprs.push_back(b.getAffineDimExpr(d));
    return AffineMap::get(rank, 0, exprs, b.getContext());
  }

  /// Map over `rank` loops that drops the last loop dimension.
  AffineMap dropLast(unsigned rank) {
    return project(rank, llvm::to_vector(llvm::seq<unsigned>(0, rank - 1)));
  }

  /// Map over `rank` loops to a rank-0 tensor.
  AffineMap scalar(unsigned rank) {
    return AffineMap::get(rank, 0, {}, b.getContext());
  }

  SmallVector<IteratorType> parallel(unsigned rank) {
    return SmallVector<IteratorType>(rank, IteratorType::parallel);
  }

  /// `rank - 1` parallel loops and a trailing reduction.
  SmallVector<IteratorType> reduceLast(unsigned rank) {
    SmallVector<IteratorType> it = parallel(rank);
    it.back() = IteratorType::reduction;
    return it;
  }

  /// clamp(roundeven(v), lo, hi) converted to an integer of `type`.
  Value roundClamp(OpBuilder &nb, Location nl, Value v, float lo, float hi,
                   Type type) {
    Value r = math::RoundEvenOp::create(nb, nl, v);
    Value loV = arith::ConstantOp::create(nb, nl, nb.getF32FloatAttr(lo));
    Value hiV = arith::ConstantOp::create(nb, nl, nb.getF32FloatAttr(hi));
    // maxnumf/minnumf send NaN to a bound instead of to an undefined cast.
    r = arith::MaxNumFOp::create(nb, nl, r, loV);
    r = arith::MinNumFOp::create(nb, nl, r, hiV);
    return arith::FPToSIOp::create(nb, nl, type, r);
  }
};
} // namespace

static SmallVector<OpFoldResult> dropLastSize(ArrayRef<OpFoldResult> sizes) {
  return SmallVector<OpFoldResult>(sizes.drop_back());
}

//===----------------------------------------------------------------------===//
// Ternary storage
//===----------------------------------------------------------------------===//

/// Extracts the 2-bit or base-3 code of value `col` of row `row` from the
/// storage bytes of `type` and returns the ternary value as i8.
static Value loadTernary(OpBuilder &b, Location loc, Value storage,
                         TernaryType type, Value row, Value col) {
  Emitter h{b, loc};
  if (type.getFormat() == TernaryFormat::Int8)
    return tensor::ExtractOp::create(b, loc, storage, ValueRange{row, col});
  int64_t perByte = type.getValuesPerByte();
  Value perByteV = h.index(perByte);
  Value byteIdx = arith::DivUIOp::create(b, loc, col, perByteV);
  Value slot = arith::RemUIOp::create(b, loc, col, perByteV);
  Value byte = tensor::ExtractOp::create(b, loc, storage,
                                         ValueRange{row, byteIdx});
  Value byte32 = arith::ExtUIOp::create(b, loc, b.getI32Type(), byte);
  Value slot32 = arith::IndexCastOp::create(b, loc, b.getI32Type(), slot);
  Value code;
  if (type.getFormat() == TernaryFormat::I2) {
    Value shift = arith::MulIOp::create(b, loc, slot32, h.i32(2));
    Value shifted = arith::ShRUIOp::create(b, loc, byte32, shift);
    code = arith::AndIOp::create(b, loc, shifted, h.i32(3));
  } else {
    // 3^slot by a select chain; slot < 5.
    Value pow = h.i32(1);
    for (int t = 1; t < 5; ++t) {
      Value isT = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq,
                                        slot32, h.i32(t));
      pow = arith::SelectOp::create(b, loc, isT,
                                    h.i32(static_cast<int32_t>(std::pow(3, t))),
                                    pow);
    }
    Value digit = arith::DivUIOp::create(b, loc, byte32, pow);
    code = arith::RemUIOp::create(b, loc, digit, h.i32(3));
  }
  Value value = arith::SubIOp::create(b, loc, code, h.i32(1));
  return arith::TruncIOp::create(b, loc, b.getI8Type(), value);
}

/// The ternary matrix as an N x K tensor of i8 values in {-1, 0, 1}.
static Value unpackToInt8(OpBuilder &b, Location loc, Value storage,
                          TernaryType type) {
  if (type.getFormat() == TernaryFormat::Int8)
    return storage;
  Emitter h{b, loc};
  Value init = h.empty({b.getIndexAttr(type.getRows()),
                        b.getIndexAttr(type.getCols())},
                       b.getI8Type());
  return h.generic({}, init, {h.identity(2)}, h.parallel(2),
                   [&](OpBuilder &nb, Location nl, ValueRange) {
                     Value n = linalg::IndexOp::create(nb, nl, 0);
                     Value k = linalg::IndexOp::create(nb, nl, 1);
                     return loadTernary(nb, nl, storage, type, n, k);
                   });
}

/// Packs an N x K i8 tensor (values clamped to [-1, 1]) into the storage of
/// `type`.
static Value packFromInt8(OpBuilder &b, Location loc, Value values,
                          TernaryType type) {
  Emitter h{b, loc};
  // The verifier lets the matrix have dynamic extents; the storage is static.
  auto matrixType = RankedTensorType::get({type.getRows(), type.getCols()},
                                          b.getI8Type());
  if (values.getType() != matrixType)
    values = tensor::CastOp::create(b, loc, matrixType, values);
  auto clampCode = [&](OpBuilder &nb, Location nl, Value v) {
    // v clamped to [-1, 1]; as a code in {0, 1, 2} when `asCode`.
    Value lo = arith::ConstantOp::create(nb, nl, nb.getIntegerAttr(nb.getI8Type(), -1));
    Value hi = arith::ConstantOp::create(nb, nl, nb.getIntegerAttr(nb.getI8Type(), 1));
    v = arith::MaxSIOp::create(nb, nl, v, lo);
    return arith::MinSIOp::create(nb, nl, v, hi);
  };
  if (type.getFormat() == TernaryFormat::Int8) {
    Value init = h.empty(h.sizes(values), b.getI8Type());
    return h.generic(values, init, {h.identity(2), h.identity(2)},
                     h.parallel(2),
                     [&](OpBuilder &nb, Location nl, ValueRange args) {
                       return clampCode(nb, nl, args[0]);
                     });
  }
  // Loops (n, byte, slot); the slot loop is a reduction that accumulates
  // code * 4^slot (i2) or code * 3^slot (base3). Both stay below 256, so i8
  // arithmetic modulo 256 gives the exact unsigned byte.
  int64_t perByte = type.getValuesPerByte();
  int64_t cols = type.getCols();
  Value init = h.filled({b.getIndexAttr(type.getRows()),
                         b.getIndexAttr(type.getBytesPerRow())},
                        h.i8(0));
  // The slot loop needs an extent: a zero-sized dummy input carries it.
  Value slots = h.empty({b.getIndexAttr(perByte)}, b.getI8Type());
  bool isI2 = type.getFormat() == TernaryFormat::I2;
  return h.generic(
      slots, init, {h.project(3, {2}), h.project(3, {0, 1})},
      {IteratorType::parallel, IteratorType::parallel, IteratorType::reduction},
      [&](OpBuilder &nb, Location nl, ValueRange args) {
        Emitter hb{nb, nl};
        Value n = linalg::IndexOp::create(nb, nl, 0);
        Value byteIdx = linalg::IndexOp::create(nb, nl, 1);
        Value slot = linalg::IndexOp::create(nb, nl, 2);
        Value col = arith::AddIOp::create(
            nb, nl, arith::MulIOp::create(nb, nl, byteIdx, hb.index(perByte)),
            slot);
        Value inRange = arith::CmpIOp::create(nb, nl, arith::CmpIPredicate::ult,
                                              col, hb.index(cols));
        Value safeCol = arith::MinUIOp::create(nb, nl, col, hb.index(cols - 1));
        Value v = tensor::ExtractOp::create(nb, nl, values,
                                            ValueRange{n, safeCol});
        // Columns past the end are padded with zero weights.
        v = arith::SelectOp::create(nb, nl, inRange, clampCode(nb, nl, v),
                                    hb.i8(0));
        Value code = arith::AddIOp::create(nb, nl, v, hb.i8(1));
        Value slot8 = arith::IndexCastOp::create(nb, nl, nb.getI8Type(), slot);
        Value weight;
        if (isI2) {
          Value shift = arith::MulIOp::create(nb, nl, slot8, hb.i8(2));
          weight = arith::ShLIOp::create(nb, nl, hb.i8(1), shift);
        } else {
          weight = hb.i8(1);
          for (int t = 1; t < 5; ++t) {
            Value isT = arith::CmpIOp::create(nb, nl, arith::CmpIPredicate::eq,
                                              slot8, hb.i8(t));
            weight = arith::SelectOp::create(
                nb, nl, isT, hb.i8(static_cast<int8_t>(std::pow(3, t))),
                weight);
          }
        }
        Value term = arith::MulIOp::create(nb, nl, code, weight);
        return arith::AddIOp::create(nb, nl, args[1], term);
      });
}

//===----------------------------------------------------------------------===//
// Quantisation and linear layers
//===----------------------------------------------------------------------===//

/// Per-token absmax quantisation: returns (xq : i8, s_x : f32 per token).
static std::pair<Value, Value> quantizeActivations(OpBuilder &b, Location loc,
                                                   Value x) {
  Emitter h{b, loc};
  auto type = cast<RankedTensorType>(x.getType());
  unsigned rank = type.getRank();
  SmallVector<OpFoldResult> sizes = h.sizes(x);
  SmallVector<OpFoldResult> tokenSizes = dropLastSize(sizes);

  // max |x| over the token.
  Value amax = h.generic(
      x, h.filled(tokenSizes, h.f32(0.0f)), {h.identity(rank), h.dropLast(rank)},
      h.reduceLast(rank), [](OpBuilder &nb, Location nl, ValueRange args) {
        Value a = math::AbsFOp::create(nb, nl, args[0]);
        return arith::MaximumFOp::create(nb, nl, args[1], a);
      });
  // s_x = 127 / max(amax, 1e-5).
  Value scale = h.generic(
      amax, h.empty(tokenSizes, b.getF32Type()),
      {h.identity(rank - 1), h.identity(rank - 1)}, h.parallel(rank - 1),
      [](OpBuilder &nb, Location nl, ValueRange args) {
        Emitter hb{nb, nl};
        Value m = arith::MaximumFOp::create(nb, nl, args[0], hb.f32(1e-5f));
        return arith::DivFOp::create(nb, nl, hb.f32(127.0f), m);
      });
  // xq = clamp(roundeven(x * s_x), -128, 127).
  Value q = h.generic(
      ValueRange{x, scale}, h.empty(sizes, b.getI8Type()),
      {h.identity(rank), h.dropLast(rank), h.identity(rank)}, h.parallel(rank),
      [&](OpBuilder &nb, Location nl, ValueRange args) {
        Value v = arith::MulFOp::create(nb, nl, args[0], args[1]);
        return h.roundClamp(nb, nl, v, -128.0f, 127.0f, nb.getI8Type());
      });
  return {q, scale};
}

/// Absmean ternarisation of a float tensor: returns (Wq : i8, s_w : f32).
static std::pair<Value, Value> ternarize(OpBuilder &b, Location loc, Value w) {
  Emitter h{b, loc};
  auto type = cast<RankedTensorType>(w.getType());
  unsigned rank = type.getRank();
  SmallVector<OpFoldResult> sizes = h.sizes(w);

  // sum |W| in double, then count, then one rounding to f32.
  Value sum = h.generic(
      w, h.filled({}, h.f64(0.0)), {h.identity(rank), h.scalar(rank)},
      SmallVector<IteratorType>(rank, IteratorType::reduction),
      [](OpBuilder &nb, Location nl, ValueRange args) {
        Value a = math::AbsFOp::create(nb, nl, args[0]);
        Value d = arith::ExtFOp::create(nb, nl, nb.getF64Type(), a);
        return arith::AddFOp::create(nb, nl, args[1], d);
      });
  Value count = h.index(1);
  for (unsigned d = 0; d < rank; ++d)
    count = arith::MulIOp::create(
        b, loc, count, getValueOrCreateConstantIndexOp(b, loc, sizes[d]));
  Value countF = arith::UIToFPOp::create(
      b, loc, b.getF64Type(),
      arith::IndexCastUIOp::create(b, loc, b.getI64Type(), count));
  Value scale = h.generic(
      sum, h.empty({}, b.getF32Type()), {h.scalar(0), h.scalar(0)}, {},
      [&](OpBuilder &nb, Location nl, ValueRange args) {
        Emitter hb{nb, nl};
        Value mean = arith::DivFOp::create(nb, nl, args[0], countF);
        Value m32 = arith::TruncFOp::create(nb, nl, nb.getF32Type(), mean);
        return arith::MaximumFOp::create(nb, nl, m32, hb.f32(1e-5f));
      });
  Value q = h.generic(
      ValueRange{w, scale}, h.empty(sizes, b.getI8Type()),
      {h.identity(rank), h.scalar(rank), h.identity(rank)}, h.parallel(rank),
      [&](OpBuilder &nb, Location nl, ValueRange args) {
        Value v = arith::DivFOp::create(nb, nl, args[0], args[1]);
        return h.roundClamp(nb, nl, v, -1.0f, 1.0f, nb.getI8Type());
      });
  return {q, scale};
}

/// acc[..., n] = sum_k xq[..., k] * wq[n, k] of int8 tensors, exact in i32.
static Value int8Matmul(OpBuilder &b, Location loc, Value xq, Value wq) {
  Emitter h{b, loc};
  auto xType = cast<RankedTensorType>(xq.getType());
  unsigned rank = xType.getRank(); // loops: leading..., n, k
  unsigned loops = rank + 1;
  SmallVector<OpFoldResult> outSizes = dropLastSize(h.sizes(xq));
  outSizes.push_back(tensor::getMixedSize(b, loc, wq, 0));
  SmallVector<unsigned> xDims, outDims;
  for (unsigned d = 0; d + 1 < rank; ++d) {
    xDims.push_back(d);
    outDims.push_back(d);
  }
  unsigned n = rank - 1, k = rank;
  xDims.push_back(k);
  outDims.push_back(n);
  return h.generic(
      ValueRange{xq, wq}, h.filled(outSizes, h.i32(0)),
      {h.project(loops, xDims), h.project(loops, {n, k}),
       h.project(loops, outDims)},
      h.reduceLast(loops), [](OpBuilder &nb, Location nl, ValueRange args) {
        Value a = arith::ExtSIOp::create(nb, nl, nb.getI32Type(), args[0]);
        Value w = arith::ExtSIOp::create(nb, nl, nb.getI32Type(), args[1]);
        Value p = arith::MulIOp::create(nb, nl, a, w);
        return arith::AddIOp::create(nb, nl, args[2], p);
      });
}

/// acc[..., n] = sum_k xq[..., k] * W[n, k] of a ternary weight, exact in
/// i32.
static Value ternaryMatmul(OpBuilder &b, Location loc, Value xq, Value storage,
                           TernaryType type) {
  return int8Matmul(b, loc, xq, unpackToInt8(b, loc, storage, type));
}

/// y = (float(acc) * s_w) / s_x.
static Value rescale(OpBuilder &b, Location loc, Value acc, Value sx,
                     Value sw) {
  Emitter h{b, loc};
  unsigned rank = cast<RankedTensorType>(acc.getType()).getRank();
  return h.generic(
      ValueRange{acc, sx, sw}, h.empty(h.sizes(acc), b.getF32Type()),
      {h.identity(rank), h.dropLast(rank), h.scalar(rank), h.identity(rank)},
      h.parallel(rank), [](OpBuilder &nb, Location nl, ValueRange args) {
        Value a = arith::SIToFPOp::create(nb, nl, nb.getF32Type(), args[0]);
        Value scaled = arith::MulFOp::create(nb, nl, a, args[2]);
        return arith::DivFOp::create(nb, nl, scaled, args[1]);
      });
}

//===----------------------------------------------------------------------===//
// Transformer blocks
//===----------------------------------------------------------------------===//

/// x * rsqrt(mean(x^2) + eps) * gamma over the last dimension.
/// y = gamma * (x * inv), inv = 1 / sqrt(sum(x^2) / D + eps) per row. The
/// sum runs along the row in order, in a loop-carried register (a reduction
/// into a tensor element becomes a load and a store per element once
/// bufferized, which nothing can then keep in a register), and inv is
/// computed once per row, so that the elementwise pass is two multiplies
/// (it was a division, a square root and a reciprocal per element).
/// Rows whose sums of squares RMSNorm forms together (each in its own
/// register, in the same order as alone): independent additions in flight
/// instead of one chain. 8 x 2560 rows, the 2B decoder's batched step: ...
static constexpr int64_t kNormRowsTogether = 8;

/// 1 / sqrt(mean(x^2) + eps) of each row of a static `[rows, D]` tensor,
/// `kNormRowsTogether` rows at a time.
static Value inverseRms(OpBuilder &b, Location loc, Value x, Value dimF,
                        float eps) {
  Emitter h{b, loc};
  auto type = cast<RankedTensorType>(x.getType());
  int64_t rows = type.getDimSize(0), dim = type.getDimSize(1);
  // Rows [r0, r0 + count) into `inv`.
  auto group = [&](OpBuilder &gb, Location gl, Value r0, int64_t count,
                   Value inv) -> Value {
    Emitter hg{gb, gl};
    SmallVector<Value> zeros(count, hg.f32(0.0f));
    SmallVector<Value> at;
    for (int64_t j = 0; j < count; ++j)
      at.push_back(arith::AddIOp::create(gb, gl, r0, hg.index(j)));
    auto sums = scf::ForOp::create(
        gb, gl, hg.index(0), hg.index(dim), hg.index(1), zeros,
        [&](OpBuilder &lb, Location ll, Value k, ValueRange acc) {
          SmallVector<Value> next;
          for (int64_t j = 0; j < count; ++j) {
            Value v = tensor::ExtractOp::create(lb, ll, x, ValueRange{at[j], k});
            Value sq = arith::MulFOp::create(lb, ll, v, v);
            next.push_back(arith::AddFOp::create(lb, ll, acc[j], sq));
          }
          scf::YieldOp::create(lb, ll, next);
        });
    for (int64_t j = 0; j < count; ++j) {
      Value mean = arith::DivFOp::create(gb, gl, sums.getResult(j), dimF);
      Value r = math::RsqrtOp::create(
          gb, gl, arith::AddFOp::create(gb, gl, mean, hg.f32(eps)));
      inv = tensor::InsertOp::create(gb, gl, r, inv, ValueRange{at[j]});
    }
    return inv;
  };
  Value inv = h.empty({b.getIndexAttr(rows)}, b.getF32Type());
  int64_t whole = rows / kNormRowsTogether * kNormRowsTogether;
  if (whole > 0)
    inv = scf::ForOp::create(
              b, loc, h.index(0), h.index(whole), h.index(kNormRowsTogether),
              ValueRange{inv},
              [&](OpBuilder &lb, Location ll, Value r0, ValueRange carried) {
                scf::YieldOp::create(
                    lb, ll,
                    group(lb, ll, r0, kNormRowsTogether, carried[0]));
              })
              .getResult(0);
  if (whole < rows)
    inv = group(b, loc, h.index(whole), rows - whole, inv);
  return inv;
}

static Value rmsnorm(OpBuilder &b, Location loc, Value x, Value gamma,
                     float eps) {
  Emitter h{b, loc};
  auto xType = cast<RankedTensorType>(x.getType());
  unsigned rank = xType.getRank();
  SmallVector<OpFoldResult> sizes = h.sizes(x);
  Value dim = getValueOrCreateConstantIndexOp(b, loc, sizes.back());
  Value dimF = arith::UIToFPOp::create(
      b, loc, b.getF32Type(),
      arith::IndexCastUIOp::create(b, loc, b.getI64Type(), dim));
  int64_t rows = rank >= 2 && xType.hasStaticShape()
                     ? xType.getNumElements() / xType.getShape().back()
                     : 0;
  Value inv;
  if (rows >= 2) {
    // Several rows of a static shape: their sums side by side.
    Value flat = x;
    if (rank > 2) {
      SmallVector<ReassociationIndices> merge(1);
      for (unsigned d = 0; d + 1 < rank; ++d)
        merge[0].push_back(d);
      merge.push_back({rank - 1});
      flat = tensor::CollapseShapeOp::create(b, loc, x, merge);
    }
    inv = inverseRms(b, loc, flat, dimF, eps);
    if (rank > 2) {
      SmallVector<ReassociationIndices> split(1);
      for (unsigned d = 0; d + 1 < rank; ++d)
        split[0].push_back(d);
      inv = tensor::ExpandShapeOp::create(
          b, loc,
          RankedTensorType::get(xType.getShape().drop_back(), b.getF32Type()),
          inv, split);
    }
  } else
    inv = h.generic(
      ValueRange{}, h.empty(dropLastSize(sizes), b.getF32Type()),
      {h.identity(rank - 1)}, h.parallel(rank - 1),
      [&](OpBuilder &nb, Location nl, ValueRange) {
        Emitter hb{nb, nl};
        SmallVector<Value> at;
        for (unsigned d = 0; d + 1 < rank; ++d)
          at.push_back(linalg::IndexOp::create(nb, nl, d));
        auto sum = scf::ForOp::create(
            nb, nl, hb.index(0), dim, hb.index(1), ValueRange{hb.f32(0.0f)},
            [&](OpBuilder &lb, Location ll, Value k, ValueRange acc) {
              SmallVector<Value> idx(at);
              idx.push_back(k);
              Value v = tensor::ExtractOp::create(lb, ll, x, idx);
              Value sq = arith::MulFOp::create(lb, ll, v, v);
              scf::YieldOp::create(
                  lb, ll, ValueRange{arith::AddFOp::create(lb, ll, acc[0], sq)});
            });
        Value mean = arith::DivFOp::create(nb, nl, sum.getResult(0), dimF);
        return math::RsqrtOp::create(
            nb, nl, arith::AddFOp::create(nb, nl, mean, hb.f32(eps)));
      });
  return h.generic(
      ValueRange{x, inv, gamma}, h.empty(sizes, b.getF32Type()),
      {h.identity(rank), h.dropLast(rank), h.project(rank, {rank - 1}),
       h.identity(rank)},
      h.parallel(rank), [&](OpBuilder &nb, Location nl, ValueRange args) {
        Value normed = arith::MulFOp::create(nb, nl, args[0], args[1]);
        return arith::MulFOp::create(nb, nl, args[2], normed);
      });
}

SmallVector<float> mlir::bitnet::ropeInverseFrequencies(float theta,
                                                       int64_t headDim) {
  // inv_freq[i] = 1 / theta^(2i / D).
  SmallVector<float> invFreq;
  for (int64_t i = 0; i < headDim / 2; ++i)
    invFreq.push_back(1.0f / std::pow(theta, static_cast<float>(2 * i) /
                                                 static_cast<float>(headDim)));
  return invFreq;
}

static Value rope(OpBuilder &b, Location loc, Value x, Value positions,
                  float theta, RopeStyle style) {
  Emitter h{b, loc};
  auto type = cast<RankedTensorType>(x.getType());
  int64_t headDim = type.getDimSize(2);
  int64_t half = headDim / 2;
  SmallVector<float> invFreq = ropeInverseFrequencies(theta, headDim);
  auto freqType = RankedTensorType::get({half}, b.getF32Type());
  Value freqs = arith::ConstantOp::create(
      b, loc, DenseElementsAttr::get(freqType, ArrayRef(invFreq)));
  bool interleaved = style == RopeStyle::Interleaved;
  // cos and sin of each token's angles, once per token and pair rather than
  // once per element of every head.
  SmallVector<OpFoldResult> tableSizes{h.sizes(x)[0], b.getIndexAttr(half)};
  auto table = [&](bool cosine) {
    return h.generic(
        ValueRange{positions, freqs}, h.empty(tableSizes, b.getF32Type()),
        {h.project(2, {0}), h.project(2, {1}), h.identity(2)}, h.parallel(2),
        [&](OpBuilder &nb, Location nl, ValueRange args) -> Value {
          Value pos = arith::SIToFPOp::create(nb, nl, nb.getF32Type(), args[0]);
          Value angle = arith::MulFOp::create(nb, nl, pos, args[1]);
          if (cosine)
            return math::CosOp::create(nb, nl, angle);
          return math::SinOp::create(nb, nl, angle);
        });
  };
  Value cosines = table(true), sines = table(false);
  return h.generic(
      ValueRange{x}, h.empty(h.sizes(x), b.getF32Type()),
      {h.identity(3), h.identity(3)}, h.parallel(3),
      [&](OpBuilder &nb, Location nl, ValueRange args) {
        Emitter hb{nb, nl};
        Value s = linalg::IndexOp::create(nb, nl, 0);
        Value hd = linalg::IndexOp::create(nb, nl, 1);
        Value d = linalg::IndexOp::create(nb, nl, 2);
        // pair index i, whether d is the first of its pair, and the partner.
        Value pair, first, partner;
        if (interleaved) {
          pair = arith::DivUIOp::create(nb, nl, d, hb.index(2));
          Value odd = arith::RemUIOp::create(nb, nl, d, hb.index(2));
          first = arith::CmpIOp::create(nb, nl, arith::CmpIPredicate::eq, odd,
                                        hb.index(0));
          partner = arith::SelectOp::create(
              nb, nl, first, arith::AddIOp::create(nb, nl, d, hb.index(1)),
              arith::SubIOp::create(nb, nl, d, hb.index(1)));
        } else {
          first = arith::CmpIOp::create(nb, nl, arith::CmpIPredicate::ult, d,
                                        hb.index(half));
          pair = arith::SelectOp::create(
              nb, nl, first, d, arith::SubIOp::create(nb, nl, d, hb.index(half)));
          partner = arith::SelectOp::create(
              nb, nl, first, arith::AddIOp::create(nb, nl, d, hb.index(half)),
              pair);
        }
        Value c = tensor::ExtractOp::create(nb, nl, cosines, ValueRange{s, pair});
        Value sn = tensor::ExtractOp::create(nb, nl, sines, ValueRange{s, pair});
        Value other =
            tensor::ExtractOp::create(nb, nl, x, ValueRange{s, hd, partner});
        // first: a cos - b sin; second: b cos + a sin.
        Value xc = arith::MulFOp::create(nb, nl, args[0], c);
        Value os = arith::MulFOp::create(nb, nl, other, sn);
        Value minus = arith::SubFOp::create(nb, nl, xc, os);
        Value plus = arith::AddFOp::create(nb, nl, xc, os);
        return arith::SelectOp::create(nb, nl, first, minus, plus);
      });
}

AttentionCacheUpdate mlir::bitnet::buildAttentionCacheUpdate(
    OpBuilder &b, Location loc, Value key, Value value, Value kCache,
    Value vCache, Value position) {
  Emitter h{b, loc};
  auto cacheType = cast<RankedTensorType>(kCache.getType());
  auto rowsType = cast<RankedTensorType>(key.getType());
  int64_t tokens = rowsType.getDimSize(0), kvHeads = rowsType.getDimSize(1),
          dim = rowsType.getDimSize(2), capacity = cacheType.getDimSize(0);
  Type cacheElem = cacheType.getElementType();

  // p = clamp(position, 0, C - S), as an index.
  Value p = tensor::ExtractOp::create(b, loc, position, ValueRange{});
  p = arith::IndexCastOp::create(b, loc, b.getIndexType(), p);
  p = arith::MaxSIOp::create(b, loc, p, h.index(0));
  p = arith::MinSIOp::create(b, loc, p, h.index(capacity - tokens));

  auto insertRows = [&](Value rows, Value cache) -> Value {
    // f16 caches hold the new rows rounded to f16.
    if (!cacheElem.isF32())
      rows = h.generic(rows, h.empty(h.sizes(rows), cacheElem),
                       {h.identity(3), h.identity(3)}, h.parallel(3),
                       [&](OpBuilder &nb, Location nl, ValueRange args) {
                         return arith::TruncFOp::create(nb, nl, cacheElem,
                                                        args[0]);
                       });
    SmallVector<OpFoldResult> offsets{p, b.getIndexAttr(0), b.getIndexAttr(0)};
    SmallVector<OpFoldResult> sizes{b.getIndexAttr(tokens),
                                    b.getIndexAttr(kvHeads),
                                    b.getIndexAttr(dim)};
    SmallVector<OpFoldResult> strides(3, b.getIndexAttr(1));
    return tensor::InsertSliceOp::create(b, loc, rows, cache, offsets, sizes,
                                         strides);
  };
  return {p, insertRows(key, kCache), insertRows(value, vCache)};
}

/// Token `t`'s slot of a `[B, ...]` batch as an index, and whether it is one
/// (in [0, B)).
static std::pair<Value, Value> slotOf(OpBuilder &b, Location loc, Value slots,
                                      Value t, int64_t count) {
  Emitter h{b, loc};
  Value s = tensor::ExtractOp::create(b, loc, slots, ValueRange{t});
  s = arith::IndexCastOp::create(b, loc, b.getIndexType(), s);
  Value valid = arith::AndIOp::create(
      b, loc,
      arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sge, s, h.index(0)),
      arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt, s,
                            h.index(count)));
  return {s, valid};
}

std::pair<Value, Value> mlir::bitnet::buildBatchedAttentionCacheUpdate(
    OpBuilder &b, Location loc, Value key, Value value, Value kCache,
    Value vCache, Value positions, Value slots) {
  Emitter h{b, loc};
  auto cacheType = cast<RankedTensorType>(kCache.getType());
  auto rowsType = cast<RankedTensorType>(key.getType());
  int64_t tokens = rowsType.getDimSize(0), kvHeads = rowsType.getDimSize(1),
          dim = rowsType.getDimSize(2);
  int64_t count = cacheType.getDimSize(0), capacity = cacheType.getDimSize(1);
  Type cacheElem = cacheType.getElementType();
  // f16 caches hold the new rows rounded to f16.
  auto rounded = [&](Value rows) -> Value {
    if (cacheElem.isF32())
      return rows;
    return h.generic(rows, h.empty(h.sizes(rows), cacheElem),
                     {h.identity(3), h.identity(3)}, h.parallel(3),
                     [&](OpBuilder &nb, Location nl, ValueRange args) {
                       return arith::TruncFOp::create(nb, nl, cacheElem,
                                                      args[0]);
                     });
  };
  Value keys = rounded(key), values = rounded(value);
  auto idx = [&](int64_t v) -> OpFoldResult { return b.getIndexAttr(v); };
  auto loop = scf::ForOp::create(
      b, loc, h.index(0), h.index(tokens), h.index(1),
      ValueRange{kCache, vCache},
      [&](OpBuilder &lb, Location ll, Value t, ValueRange caches) {
        auto [s, valid] = slotOf(lb, ll, slots, t, count);
        Value p = tensor::ExtractOp::create(lb, ll, positions, ValueRange{t});
        p = arith::IndexCastOp::create(lb, ll, lb.getIndexType(), p);
        p = arith::MaxSIOp::create(lb, ll, p,
                                   arith::ConstantIndexOp::create(lb, ll, 0));
        p = arith::MinSIOp::create(
            lb, ll, p, arith::ConstantIndexOp::create(lb, ll, capacity - 1));
        auto ifValid = scf::IfOp::create(
            lb, ll, valid,
            [&](OpBuilder &tb, Location tl) {
              SmallVector<Value> updated;
              for (auto [rows, cache] :
                   {std::pair<Value, Value>{keys, caches[0]},
                    {values, caches[1]}}) {
                auto rowType = RankedTensorType::get({kvHeads, dim}, cacheElem);
                Value row = tensor::ExtractSliceOp::create(
                    tb, tl, rowType, rows, ArrayRef<OpFoldResult>{t, idx(0), idx(0)},
                    ArrayRef<OpFoldResult>{idx(1), idx(kvHeads), idx(dim)},
                    ArrayRef<OpFoldResult>{idx(1), idx(1), idx(1)});
                updated.push_back(tensor::InsertSliceOp::create(
                    tb, tl, row, cache,
                    ArrayRef<OpFoldResult>{s, p, idx(0), idx(0)},
                    ArrayRef<OpFoldResult>{idx(1), idx(1), idx(kvHeads),
                                           idx(dim)},
                    ArrayRef<OpFoldResult>{idx(1), idx(1), idx(1), idx(1)}));
              }
              scf::YieldOp::create(tb, tl, updated);
            },
            [&](OpBuilder &eb, Location el) {
              scf::YieldOp::create(eb, el, caches);
            });
        scf::YieldOp::create(lb, ll, ifValid.getResults());
      });
  return {loop.getResult(0), loop.getResult(1)};
}

void mlir::bitnet::decomposeBatchedAttention(BatchedAttentionOp op) {
  OpBuilder b(op);
  Location loc = op.getLoc();
  Emitter h{b, loc};
  RankedTensorType qType = op.getQuery().getType();
  RankedTensorType kType = op.getKey().getType();
  RankedTensorType cType = op.getKCache().getType();
  int64_t tokens = qType.getDimSize(0), heads = qType.getDimSize(1),
          dim = qType.getDimSize(2), kvHeads = kType.getDimSize(1);
  int64_t count = cType.getDimSize(0), capacity = cType.getDimSize(1);
  auto idx = [&](int64_t v) -> OpFoldResult { return b.getIndexAttr(v); };
  auto qRowType = RankedTensorType::get({1, heads, dim}, b.getF32Type());
  auto kRowType = RankedTensorType::get({1, kvHeads, dim}, b.getF32Type());
  auto slotType =
      RankedTensorType::get({capacity, kvHeads, dim}, cType.getElementType());
  Value out =
      h.filled({idx(tokens), idx(heads), idx(dim)}, h.f32(0.0f));
  auto loop = scf::ForOp::create(
      b, loc, h.index(0), h.index(tokens), h.index(1),
      ValueRange{out, op.getKCache(), op.getVCache()},
      [&](OpBuilder &lb, Location ll, Value t, ValueRange carried) {
        auto [s, valid] = slotOf(lb, ll, op.getSlots(), t, count);
        auto ifValid = scf::IfOp::create(
            lb, ll, valid,
            [&](OpBuilder &tb, Location tl) {
              auto rows = [&](Value v, RankedTensorType type) -> Value {
                return tensor::ExtractSliceOp::create(
                    tb, tl, type, v, ArrayRef<OpFoldResult>{t, idx(0), idx(0)},
                    ArrayRef<OpFoldResult>{idx(1), type.getShape()[1] == heads
                                                       ? idx(heads)
                                                       : idx(kvHeads),
                                           idx(dim)},
                    ArrayRef<OpFoldResult>{idx(1), idx(1), idx(1)});
              };
              SmallVector<OpFoldResult> slotOffsets{s, idx(0), idx(0), idx(0)};
              SmallVector<OpFoldResult> slotSizes{idx(1), idx(capacity),
                                                  idx(kvHeads), idx(dim)};
              SmallVector<OpFoldResult> ones(4, idx(1));
              auto slice = [&](Value cache) -> Value {
                return tensor::ExtractSliceOp::create(tb, tl, slotType, cache,
                                                      slotOffsets, slotSizes,
                                                      ones);
              };
              Value p = tensor::ExtractOp::create(tb, tl, op.getPositions(),
                                                  ValueRange{t});
              Value position = tensor::FromElementsOp::create(
                  tb, tl, RankedTensorType::get({}, tb.getI32Type()), p);
              auto one = AttentionOp::create(
                  tb, tl, TypeRange{qRowType, slotType, slotType},
                  rows(op.getQuery(), qRowType), rows(op.getKey(), kRowType),
                  rows(op.getValue(), kRowType), slice(carried[1]),
                  slice(carried[2]), position, op.getScaleAttr());
              auto insert = [&](Value slot, Value cache) -> Value {
                return tensor::InsertSliceOp::create(tb, tl, slot, cache,
                                                     slotOffsets, slotSizes,
                                                     ones);
              };
              scf::YieldOp::create(
                  tb, tl,
                  ValueRange{one.getResult(),
                             insert(one.getNewKCache(), carried[1]),
                             insert(one.getNewVCache(), carried[2])});
            },
            [&](OpBuilder &eb, Location el) {
              Emitter he{eb, el};
              Value zero =
                  he.filled({idx(1), idx(heads), idx(dim)}, he.f32(0.0f));
              scf::YieldOp::create(eb, el,
                                   ValueRange{zero, carried[1], carried[2]});
            });
        Value next = tensor::InsertSliceOp::create(
            lb, ll, ifValid.getResult(0), carried[0],
            ArrayRef<OpFoldResult>{t, idx(0), idx(0)},
            ArrayRef<OpFoldResult>{idx(1), idx(heads), idx(dim)},
            ArrayRef<OpFoldResult>{idx(1), idx(1), idx(1)});
        scf::YieldOp::create(
            lb, ll, ValueRange{next, ifValid.getResult(1), ifValid.getResult(2)});
      });
  op.replaceAllUsesWith(loop.getResults());
  op.erase();
}

/// Returns (out, k_cache', v_cache').
static SmallVector<Value> attention(OpBuilder &b, Location loc, AttentionOp op,
                                    Value q, Value k, Value v, Value kCache,
                                    Value vCache, Value position) {
  Emitter h{b, loc};
  ArrayRef<int64_t> qShape = op.getQuery().getType().getShape();
  ArrayRef<int64_t> cShape = op.getKCache().getType().getShape();
  int64_t tokens = qShape[0], heads = qShape[1], dim = qShape[2];
  int64_t capacity = cShape[0], kvHeads = cShape[1];
  int64_t group = heads / kvHeads;
  Type f32 = b.getF32Type();

  AttentionCacheUpdate update =
      buildAttentionCacheUpdate(b, loc, k, v, kCache, vCache, position);
  Value p = update.position, kNew = update.kCache, vNew = update.vCache;
  // f16 caches: cached rows read back widened.
  auto widenCached = [](OpBuilder &nb, Location nl, Value v) -> Value {
    if (v.getType().isF32())
      return v;
    return arith::ExtFOp::create(nb, nl, nb.getF32Type(), v);
  };

  // Split the query heads into (kv head, member of its group).
  auto grouped = RankedTensorType::get({tokens, kvHeads, group, dim}, f32);
  SmallVector<ReassociationIndices> split{{0}, {1, 2}, {3}};
  Value qg = tensor::ExpandShapeOp::create(b, loc, grouped, q, split);

  auto idx = [&](int64_t v) { return b.getIndexAttr(v); };
  // Loops (s, kv, g, j, d): scores[s, kv, g, j] = scale * q . k.
  Value scores = h.generic(
      ValueRange{qg, kNew},
      h.filled({idx(tokens), idx(kvHeads), idx(group), idx(capacity)},
               h.f32(0.0f)),
      {h.project(5, {0, 1, 2, 4}), h.project(5, {3, 1, 4}),
       h.project(5, {0, 1, 2, 3})},
      h.reduceLast(5), [&](OpBuilder &nb, Location nl, ValueRange args) {
        Value m = arith::MulFOp::create(nb, nl, args[0],
                                        widenCached(nb, nl, args[1]));
        return arith::AddFOp::create(nb, nl, args[2], m);
      });
  // Scale, and mask keys after the query's own position with -inf.
  float scale = op.getEffectiveScale();
  float negInf = -std::numeric_limits<float>::infinity();
  Value masked = h.generic(
      scores, h.empty({idx(tokens), idx(kvHeads), idx(group), idx(capacity)}, f32),
      {h.identity(4), h.identity(4)}, h.parallel(4),
      [&](OpBuilder &nb, Location nl, ValueRange args) {
        Emitter hb{nb, nl};
        Value s = linalg::IndexOp::create(nb, nl, 0);
        Value j = linalg::IndexOp::create(nb, nl, 3);
        Value limit = arith::AddIOp::create(nb, nl, p, s);
        Value visible = arith::CmpIOp::create(nb, nl, arith::CmpIPredicate::ule,
                                              j, limit);
        Value scaled = arith::MulFOp::create(nb, nl, args[0], hb.f32(scale));
        return arith::SelectOp::create(nb, nl, visible, scaled,
                                       hb.f32(negInf));
      });
  // Softmax over j: max, exp(x - max), sum, divide.
  SmallVector<OpFoldResult> rowSizes{idx(tokens), idx(kvHeads), idx(group)};
  Value rowMax = h.generic(
      masked, h.filled(rowSizes, h.f32(negInf)),
      {h.identity(4), h.dropLast(4)}, h.reduceLast(4),
      [](OpBuilder &nb, Location nl, ValueRange args) {
        return arith::MaximumFOp::create(nb, nl, args[1], args[0]);
      });
  Value exps = h.generic(
      ValueRange{masked, rowMax},
      h.empty({idx(tokens), idx(kvHeads), idx(group), idx(capacity)}, f32),
      {h.identity(4), h.dropLast(4), h.identity(4)}, h.parallel(4),
      [](OpBuilder &nb, Location nl, ValueRange args) {
        Value d = arith::SubFOp::create(nb, nl, args[0], args[1]);
        return math::ExpOp::create(nb, nl, d);
      });
  Value rowSum = h.generic(
      exps, h.filled(rowSizes, h.f32(0.0f)), {h.identity(4), h.dropLast(4)},
      h.reduceLast(4), [](OpBuilder &nb, Location nl, ValueRange args) {
        return arith::AddFOp::create(nb, nl, args[1], args[0]);
      });
  // Loops (s, kv, g, d, j): out[s, kv, g, d] = sum_j e[s,kv,g,j] v[j,kv,d] / sum.
  Value weighted = h.generic(
      ValueRange{exps, vNew},
      h.filled({idx(tokens), idx(kvHeads), idx(group), idx(dim)}, h.f32(0.0f)),
      {h.project(5, {0, 1, 2, 4}), h.project(5, {4, 1, 3}),
       h.project(5, {0, 1, 2, 3})},
      h.reduceLast(5), [&](OpBuilder &nb, Location nl, ValueRange args) {
        Value m = arith::MulFOp::create(nb, nl, args[0],
                                        widenCached(nb, nl, args[1]));
        return arith::AddFOp::create(nb, nl, args[2], m);
      });
  Value normalised = h.generic(
      ValueRange{weighted, rowSum},
      h.empty({idx(tokens), idx(kvHeads), idx(group), idx(dim)}, f32),
      {h.identity(4), h.dropLast(4), h.identity(4)}, h.parallel(4),
      [](OpBuilder &nb, Location nl, ValueRange args) {
        return arith::DivFOp::create(nb, nl, args[0], args[1]);
      });
  Value out = tensor::CollapseShapeOp::create(
      b, loc, RankedTensorType::get({tokens, heads, dim}, f32), normalised,
      split);
  return {out, kNew, vNew};
}

//===----------------------------------------------------------------------===//
// Patterns
//===----------------------------------------------------------------------===//

namespace {
template <typename Op>
struct Lowering : OpConversionPattern<Op> {
  using OpConversionPattern<Op>::OpConversionPattern;
  using Adaptor = typename OpConversionPattern<Op>::OpAdaptor;
};

struct ConstantLowering : Lowering<ConstantOp> {
  using Lowering::Lowering;
  LogicalResult
  matchAndRewrite(ConstantOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    rewriter.replaceOpWithNewOp<arith::ConstantOp>(
        op, cast<TypedAttr>(op.getStorage()));
    return success();
  }
};

struct PackLowering : Lowering<PackOp> {
  using Lowering::Lowering;
  LogicalResult
  matchAndRewrite(PackOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    rewriter.replaceOp(op, packFromInt8(rewriter, op.getLoc(),
                                        adaptor.getInput(), op.getType()));
    return success();
  }
};

struct UnpackLowering : Lowering<UnpackOp> {
  using Lowering::Lowering;
  LogicalResult
  matchAndRewrite(UnpackOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Value result = unpackToInt8(rewriter, op.getLoc(), adaptor.getInput(),
                                op.getInput().getType());
    if (result.getType() != op.getType())
      result = tensor::CastOp::create(rewriter, op.getLoc(), op.getType(),
                                      result);
    rewriter.replaceOp(op, result);
    return success();
  }
};

struct QuantizeActivationsLowering : Lowering<QuantizeActivationsOp> {
  using Lowering::Lowering;
  LogicalResult
  matchAndRewrite(QuantizeActivationsOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    auto [q, s] = quantizeActivations(rewriter, op.getLoc(), adaptor.getInput());
    rewriter.replaceOp(op, {q, s});
    return success();
  }
};

struct TernarizeLowering : Lowering<TernarizeOp> {
  using Lowering::Lowering;
  LogicalResult
  matchAndRewrite(TernarizeOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    auto [q, s] = ternarize(rewriter, op.getLoc(), adaptor.getInput());
    rewriter.replaceOp(op, {q, s});
    return success();
  }
};

struct TernaryMatmulLowering : Lowering<TernaryMatmulOp> {
  using Lowering::Lowering;
  LogicalResult
  matchAndRewrite(TernaryMatmulOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    rewriter.replaceOp(op, ternaryMatmul(rewriter, op.getLoc(),
                                         adaptor.getInput(), adaptor.getWeight(),
                                         op.getWeight().getType()));
    return success();
  }
};

struct BitLinearLowering : Lowering<BitLinearOp> {
  using Lowering::Lowering;
  LogicalResult
  matchAndRewrite(BitLinearOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    auto [q, sx] = quantizeActivations(rewriter, loc, adaptor.getInput());
    Value acc = ternaryMatmul(rewriter, loc, q, adaptor.getWeight(),
                              op.getWeight().getType());
    rewriter.replaceOp(op, rescale(rewriter, loc, acc, sx,
                                   adaptor.getWeightScale()));
    return success();
  }
};

struct RMSNormLowering : Lowering<RMSNormOp> {
  using Lowering::Lowering;
  LogicalResult
  matchAndRewrite(RMSNormOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    rewriter.replaceOp(op, rmsnorm(rewriter, op.getLoc(), adaptor.getInput(),
                                   adaptor.getGamma(),
                                   op.getEpsilon().convertToFloat()));
    return success();
  }
};

struct SquaredReluLowering : Lowering<SquaredReluOp> {
  using Lowering::Lowering;
  LogicalResult
  matchAndRewrite(SquaredReluOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Emitter h{rewriter, loc};
    Value x = adaptor.getInput();
    unsigned rank = op.getType().getRank();
    rewriter.replaceOp(
        op, h.generic(x, h.empty(h.sizes(x), rewriter.getF32Type()),
                      {h.identity(rank), h.identity(rank)}, h.parallel(rank),
                      [](OpBuilder &nb, Location nl, ValueRange args) {
                        Emitter hb{nb, nl};
                        Value r = arith::MaximumFOp::create(nb, nl, args[0],
                                                            hb.f32(0.0f));
                        return arith::MulFOp::create(nb, nl, r, r);
                      }));
    return success();
  }
};

struct RopeLowering : Lowering<RopeOp> {
  using Lowering::Lowering;
  LogicalResult
  matchAndRewrite(RopeOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    rewriter.replaceOp(op, rope(rewriter, op.getLoc(), adaptor.getInput(),
                                adaptor.getPositions(),
                                op.getTheta().convertToFloat(), op.getStyle()));
    return success();
  }
};

struct AttentionLowering : Lowering<AttentionOp> {
  using Lowering::Lowering;
  LogicalResult
  matchAndRewrite(AttentionOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    rewriter.replaceOp(
        op, attention(rewriter, op.getLoc(), op, adaptor.getQuery(),
                      adaptor.getKey(), adaptor.getValue(), adaptor.getKCache(),
                      adaptor.getVCache(), adaptor.getPosition()));
    return success();
  }
};

/// A weight element as f32: f16 widened exactly, i8 converted and times its
/// row's scale.
static Value widen(OpBuilder &b, Location loc, Value v, Value scale = {}) {
  if (v.getType().isF32())
    return v;
  if (v.getType().isInteger(8))
    return arith::MulFOp::create(
        b, loc, arith::SIToFPOp::create(b, loc, b.getF32Type(), v), scale);
  return arith::ExtFOp::create(b, loc, b.getF32Type(), v);
}

struct EmbeddingLowering : Lowering<EmbeddingOp> {
  using Lowering::Lowering;
  LogicalResult
  matchAndRewrite(EmbeddingOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Emitter h{rewriter, loc};
    Value table = adaptor.getTable(), tokens = adaptor.getTokens();
    int64_t vocab = op.getVocabulary();
    std::optional<ArrayRef<int64_t>> blocked = op.getBlocked();
    if (blocked && (ShapedType::isDynamic(vocab) ||
                    ShapedType::isDynamic(op.getRowLength())))
      return rewriter.notifyMatchFailure(op, "a blocked table of dynamic shape");
    unsigned rank = op.getType().getRank();
    SmallVector<OpFoldResult> sizes = h.sizes(tokens);
    sizes.push_back(blocked
                        ? OpFoldResult(rewriter.getIndexAttr(op.getRowLength()))
                        : tensor::getMixedSize(rewriter, loc, table, 1));
    Value init = h.empty(sizes, rewriter.getF32Type());
    rewriter.replaceOp(
        op, h.generic(tokens, init, {h.dropLast(rank), h.identity(rank)},
                      h.parallel(rank),
                      [&](OpBuilder &nb, Location nl, ValueRange args) {
                        Emitter hb{nb, nl};
                        Value id = arith::IndexCastOp::create(
                            nb, nl, nb.getIndexType(), args[0]);
                        Value negative = arith::CmpIOp::create(
                            nb, nl, arith::CmpIPredicate::slt, id, hb.index(0));
                        id = arith::SelectOp::create(
                            nb, nl, negative,
                            arith::AddIOp::create(nb, nl, id, hb.index(vocab)),
                            id);
                        id = arith::MaxSIOp::create(nb, nl, id, hb.index(0));
                        id = arith::MinSIOp::create(
                            nb, nl, id, hb.index(std::max<int64_t>(vocab - 1, 0)));
                        Value d = linalg::IndexOp::create(nb, nl, rank - 1);
                        SmallVector<Value> at{id, d};
                        if (blocked) {
                          Value rows = hb.index((*blocked)[0]);
                          Value cols = hb.index((*blocked)[1]);
                          at = {arith::DivUIOp::create(nb, nl, id, rows),
                                arith::DivUIOp::create(nb, nl, d, cols),
                                arith::RemUIOp::create(nb, nl, id, rows),
                                arith::RemUIOp::create(nb, nl, d, cols)};
                        }
                        Value v = tensor::ExtractOp::create(nb, nl, table, at);
                        Value scale;
                        if (Value scales = adaptor.getScales())
                          scale = tensor::ExtractOp::create(nb, nl, scales,
                                                            ValueRange{id});
                        return widen(nb, nl, v, scale);
                      }));
    return success();
  }
};

struct DenseMatmulLowering : Lowering<DenseMatmulOp> {
  using Lowering::Lowering;
  LogicalResult
  matchAndRewrite(DenseMatmulOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Emitter h{rewriter, loc};
    Value x = adaptor.getInput(), w = adaptor.getWeight();
    unsigned outRank = op.getType().getRank();
    unsigned loops = outRank + 1; // batch dims..., n, k
    SmallVector<unsigned> xDims, outDims;
    for (unsigned d = 0; d + 1 < outRank; ++d) {
      xDims.push_back(d);
      outDims.push_back(d);
    }
    xDims.push_back(loops - 1);
    outDims.push_back(outRank - 1);
    SmallVector<OpFoldResult> sizes = h.sizes(x);
    sizes.back() = tensor::getMixedSize(rewriter, loc, w, 0);
    if (op.getQuantizeInput()) {
      // W8A8: the input rows quantised as activations, the int32 sums
      // exact, then (float(acc) * scales[n]) / s_x.
      auto [xq, sx] = quantizeActivations(rewriter, loc, x);
      Value acc = int8Matmul(rewriter, loc, xq, w);
      rewriter.replaceOp(
          op, h.generic(ValueRange{acc, sx, adaptor.getScales()},
                        h.empty(sizes, rewriter.getF32Type()),
                        {h.identity(outRank), h.dropLast(outRank),
                         h.project(outRank, {outRank - 1}),
                         h.identity(outRank)},
                        h.parallel(outRank),
                        [](OpBuilder &nb, Location nl, ValueRange args) {
                          Value a = arith::SIToFPOp::create(
                              nb, nl, nb.getF32Type(), args[0]);
                          Value scaled =
                              arith::MulFOp::create(nb, nl, a, args[2]);
                          return arith::DivFOp::create(nb, nl, scaled,
                                                       args[1]);
                        }));
      return success();
    }
    Value init = h.filled(sizes, h.f32(0.0f));
    SmallVector<Value> inputs{x, w};
    SmallVector<AffineMap> maps{h.project(loops, xDims),
                                h.project(loops, {outRank - 1, loops - 1})};
    Value scales = adaptor.getScales();
    if (scales) {
      inputs.push_back(scales);
      maps.push_back(h.project(loops, {outRank - 1}));
    }
    maps.push_back(h.project(loops, outDims));
    rewriter.replaceOp(
        op, h.generic(inputs, init, maps, h.reduceLast(loops),
                      [&](OpBuilder &nb, Location nl, ValueRange args) {
                        Value wf = widen(nb, nl, args[1],
                                         scales ? args[2] : Value());
                        Value p = arith::MulFOp::create(nb, nl, args[0], wf);
                        return arith::AddFOp::create(nb, nl, args.back(), p);
                      }));
    return success();
  }
};
} // namespace

void mlir::bitnet::populateBitNetToLinalgTypeConversion(
    TypeConverter &converter) {
  converter.addConversion([](Type type) { return type; });
  converter.addConversion(
      [](TernaryType type) -> Type { return type.getStorageType(); });
}

void mlir::bitnet::populateBitNetToLinalgPatterns(
    const TypeConverter &converter, RewritePatternSet &patterns) {
  patterns.add<ConstantLowering, PackLowering, UnpackLowering,
               QuantizeActivationsLowering, TernarizeLowering,
               TernaryMatmulLowering, BitLinearLowering, RMSNormLowering,
               SquaredReluLowering, RopeLowering, AttentionLowering,
               EmbeddingLowering, DenseMatmulLowering>(
      converter, patterns.getContext());
}

namespace {
struct BitNetLowerToLinalgPass
    : bitnet::impl::BitNetLowerToLinalgBase<BitNetLowerToLinalgPass> {
  void runOnOperation() override {
    MLIRContext *ctx = &getContext();
    TypeConverter converter;
    populateBitNetToLinalgTypeConversion(converter);

    ConversionTarget target(*ctx);
    target.addIllegalDialect<BitNetDialect>();
    target.addLegalDialect<arith::ArithDialect, linalg::LinalgDialect,
                           math::MathDialect, scf::SCFDialect,
                           tensor::TensorDialect>();
    // Functions, calls and returns are legal once no ternary type is left.
    target.addDynamicallyLegalOp<func::FuncOp>([&](func::FuncOp op) {
      return converter.isSignatureLegal(op.getFunctionType()) &&
             converter.isLegal(&op.getBody());
    });
    target.markUnknownOpDynamicallyLegal(
        [&](Operation *op) { return converter.isLegal(op); });

    // Batched attention, a loop of one-token attentions, each then lowered
    // by the patterns.
    SmallVector<BatchedAttentionOp> batched;
    getOperation()->walk([&](BatchedAttentionOp op) { batched.push_back(op); });
    for (BatchedAttentionOp op : batched)
      decomposeBatchedAttention(op);

    RewritePatternSet patterns(ctx);
    populateBitNetToLinalgPatterns(converter, patterns);
    populateFunctionOpInterfaceTypeConversionPattern<func::FuncOp>(patterns,
                                                                   converter);
    populateCallOpTypeConversionPattern(patterns, converter);
    populateReturnOpTypeConversionPattern(patterns, converter);
    if (failed(applyPartialConversion(getOperation(), target,
                                      std::move(patterns))))
      signalPassFailure();
  }
};
} // namespace
