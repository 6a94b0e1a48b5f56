//===- BitNetOps.cpp - Operations of the bitnet dialect ---------*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#include "bitnet/Dialect/BitNet/IR/BitNet.h"
#include "bitnet/Dialect/BitNet/IR/TernaryEncoding.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/DialectImplementation.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/OpImplementation.h"

#include <cmath>

using namespace mlir;
using namespace mlir::bitnet;

#define GET_OP_CLASSES
#include "bitnet/Dialect/BitNet/IR/BitNetOps.cpp.inc"

//===----------------------------------------------------------------------===//
// Shape helpers
//===----------------------------------------------------------------------===//

/// Prints a shape the way MLIR types do: 4x?x8.
static std::string shapeStr(ArrayRef<int64_t> shape) {
  std::string s;
  llvm::raw_string_ostream os(s);
  llvm::interleave(
      shape, os,
      [&](int64_t d) {
        if (ShapedType::isDynamic(d))
          os << "?";
        else
          os << d;
      },
      "x");
  return s;
}

/// Two extents are compatible unless both are static and differ.
static bool compatibleDim(int64_t a, int64_t b) {
  return ShapedType::isDynamic(a) || ShapedType::isDynamic(b) || a == b;
}

static bool compatibleShape(ArrayRef<int64_t> a, ArrayRef<int64_t> b) {
  if (a.size() != b.size())
    return false;
  for (auto [x, y] : llvm::zip(a, b))
    if (!compatibleDim(x, y))
      return false;
  return true;
}

/// Checks that `result` has the leading dimensions of `input` followed by
/// `lastDim` (a linear layer maps [..., K] to [..., N]).
static LogicalResult verifyLinearShapes(Operation *op, RankedTensorType input,
                                        TernaryType weight,
                                        RankedTensorType result) {
  if (input.getRank() < 1)
    return op->emitOpError("input must have rank >= 1, got a scalar");
  int64_t k = input.getShape().back();
  if (!compatibleDim(k, weight.getCols()))
    return op->emitOpError("input has ")
           << k << " features but the weight " << weight << " expects "
           << weight.getCols();
  SmallVector<int64_t> expected(input.getShape().drop_back());
  expected.push_back(weight.getRows());
  if (!compatibleShape(result.getShape(), expected))
    return op->emitOpError("result shape ")
           << shapeStr(result.getShape()) << " does not match expected "
           << shapeStr(expected);
  return success();
}

//===----------------------------------------------------------------------===//
// QuantizeActivationsOp
//===----------------------------------------------------------------------===//

LogicalResult QuantizeActivationsOp::verify() {
  RankedTensorType input = getInput().getType();
  if (input.getRank() < 1)
    return emitOpError("input must have rank >= 1, got a scalar");
  if (!compatibleShape(getQuantized().getType().getShape(), input.getShape()))
    return emitOpError("quantized shape ")
           << shapeStr(getQuantized().getType().getShape())
           << " must equal the input shape " << shapeStr(input.getShape());
  ArrayRef<int64_t> tokens = input.getShape().drop_back();
  if (!compatibleShape(getScale().getType().getShape(), tokens))
    return emitOpError("scale shape ")
           << shapeStr(getScale().getType().getShape())
           << " must be the input shape without its last dimension ("
           << shapeStr(tokens) << ")";
  return success();
}

//===----------------------------------------------------------------------===//
// TernarizeOp
//===----------------------------------------------------------------------===//

LogicalResult TernarizeOp::verify() {
  if (!compatibleShape(getTernary().getType().getShape(),
                       getInput().getType().getShape()))
    return emitOpError("ternary shape ")
           << shapeStr(getTernary().getType().getShape())
           << " must equal the input shape "
           << shapeStr(getInput().getType().getShape());
  return success();
}

LogicalResult TernarizeOp::fold(FoldAdaptor adaptor,
                                SmallVectorImpl<OpFoldResult> &results) {
  auto input = dyn_cast_if_present<DenseFPElementsAttr>(adaptor.getInput());
  if (!input || !getTernary().getType().hasStaticShape())
    return failure();
  // The mean is accumulated in double and rounded once, so it is independent
  // of summation order (see the dialect's numerics contract).
  double sum = 0.0;
  int64_t count = 0;
  for (const APFloat &v : input.getValues<APFloat>()) {
    sum += std::fabs(v.convertToFloat());
    ++count;
  }
  float scale = count == 0 ? 0.0f : static_cast<float>(sum / count);
  scale = std::max(scale, 1e-5f);
  SmallVector<int8_t> ternary;
  ternary.reserve(count);
  for (const APFloat &v : input.getValues<APFloat>()) {
    float q = std::nearbyint(v.convertToFloat() / scale);
    // fmax/fmin send NaN to a bound, as the lowering's maxnumf/minnumf do.
    ternary.push_back(
        static_cast<int8_t>(std::fmin(std::fmax(q, -1.0f), 1.0f)));
  }
  results.push_back(
      DenseElementsAttr::get(getTernary().getType(), ArrayRef(ternary)));
  results.push_back(DenseElementsAttr::get(getScale().getType(), scale));
  return success();
}

//===----------------------------------------------------------------------===//
// PackOp / UnpackOp / ConstantOp
//===----------------------------------------------------------------------===//

static LogicalResult verifyMatrixOf(Operation *op, RankedTensorType matrix,
                                    TernaryType ternary, StringRef what) {
  if (matrix.getRank() != 2)
    return op->emitOpError() << what << " must be a 2-D matrix, got rank "
                             << matrix.getRank();
  if (!compatibleShape(matrix.getShape(),
                       {ternary.getRows(), ternary.getCols()}))
    return op->emitOpError()
           << what << " shape " << shapeStr(matrix.getShape())
           << " does not match the ternary matrix " << ternary.getRows() << "x"
           << ternary.getCols();
  return success();
}

LogicalResult PackOp::verify() {
  if (failed(verifyMatrixOf(*this, getInput().getType(), getType(), "input")))
    return failure();
  // A constant input must be ternary already: clamping 5 to 1 would hide
  // weights that were never ternarised (int8 codes, a wrong scale).
  DenseIntElementsAttr values;
  if (!matchPattern(getInput(), m_Constant(&values)))
    return success();
  int64_t cols = getInput().getType().getDimSize(1);
  auto refuse = [&](int64_t index, int64_t value) {
    return emitOpError("input holds ")
           << value << " at [" << index / cols << ", " << index % cols
           << "]; a ternary matrix holds only -1, 0 and 1 (ternarise the "
              "weights first: bitnet.ternarize)";
  };
  if (values.isSplat()) {
    int64_t v = values.getSplatValue<APInt>().getSExtValue();
    return v < -1 || v > 1 ? refuse(0, v) : success();
  }
  for (auto [i, v] : llvm::enumerate(values.getValues<int8_t>()))
    if (v < -1 || v > 1)
      return refuse(static_cast<int64_t>(i), v);
  return success();
}

OpFoldResult PackOp::fold(FoldAdaptor adaptor) {
  // pack(unpack(x)) == x: unpack yields values pack stores exactly.
  if (auto unpack = getInput().getDefiningOp<UnpackOp>())
    if (unpack.getInput().getType() == getType())
      return unpack.getInput();
  auto input = dyn_cast_if_present<DenseIntElementsAttr>(adaptor.getInput());
  if (!input || !getInput().getType().hasStaticShape())
    return {};
  TernaryType type = getType();
  if (input.isSplat()) {
    // One row packed, then repeated: the int8 values are never spelled out.
    SmallVector<int8_t> row(type.getCols(), input.getSplatValue<int8_t>());
    SmallVector<int8_t> packedRow =
        packTernary(row, 1, type.getCols(), type.getFormat());
    SmallVector<int8_t> bytes;
    bytes.reserve(type.getRows() * packedRow.size());
    for (int64_t r = 0; r < type.getRows(); ++r)
      bytes.append(packedRow);
    return DenseElementsAttr::get(type.getStorageType(), ArrayRef(bytes));
  }
  SmallVector<int8_t> values(input.getValues<int8_t>());
  SmallVector<int8_t> bytes =
      packTernary(values, type.getRows(), type.getCols(), type.getFormat());
  return DenseElementsAttr::get(type.getStorageType(), ArrayRef(bytes));
}

LogicalResult UnpackOp::verify() {
  return verifyMatrixOf(*this, getType(), getInput().getType(), "result");
}

OpFoldResult UnpackOp::fold(FoldAdaptor adaptor) {
  auto storage = dyn_cast_if_present<DenseIntElementsAttr>(adaptor.getInput());
  if (!storage || !getType().hasStaticShape())
    return {};
  TernaryType type = getInput().getType();
  SmallVector<int8_t> bytes(storage.getValues<int8_t>());
  std::optional<SmallVector<int8_t>> values =
      unpackTernary(bytes, type.getRows(), type.getCols(), type.getFormat());
  if (!values)
    return {};
  return DenseElementsAttr::get(getType(), ArrayRef(*values));
}

LogicalResult ConstantOp::verify() {
  TernaryType type = getType();
  if (getStorage().getType() != type.getStorageType())
    return emitOpError("storage type ")
           << getStorage().getType() << " does not match " << type
           << ", whose storage is " << type.getStorageType();
  if (auto dense = dyn_cast<DenseIntElementsAttr>(getStorage())) {
    // Verified after every pass: read the raw bytes, unpack nothing.
    SmallVector<int8_t> splat;
    ArrayRef<int8_t> bytes;
    if (dense.isSplat()) {
      splat.assign(dense.getNumElements(), *dense.getValues<int8_t>().begin());
      bytes = splat;
    } else {
      ArrayRef<char> raw = dense.getRawData();
      bytes = ArrayRef<int8_t>(reinterpret_cast<const int8_t *>(raw.data()),
                               raw.size());
    }
    if (!isValidTernaryStorage(bytes, type.getRows(), type.getCols(),
                               type.getFormat()))
      return emitOpError("storage holds a byte that is not a valid ")
             << stringifyTernaryFormat(type.getFormat()) << " encoding";
  }
  return success();
}

OpFoldResult ConstantOp::fold(FoldAdaptor) { return getStorage(); }

std::optional<SmallVector<int8_t>> ConstantOp::getTernaryValues() {
  auto dense = dyn_cast<DenseIntElementsAttr>(getStorage());
  if (!dense)
    return std::nullopt;
  TernaryType type = getType();
  if (dense.isSplat()) {
    SmallVector<int8_t> bytes(dense.getValues<int8_t>());
    return unpackTernary(bytes, type.getRows(), type.getCols(),
                         type.getFormat());
  }
  ArrayRef<char> raw = dense.getRawData();
  return unpackTernary(
      ArrayRef<int8_t>(reinterpret_cast<const int8_t *>(raw.data()), raw.size()),
      type.getRows(), type.getCols(), type.getFormat());
}

//===----------------------------------------------------------------------===//
// TernaryMatmulOp / BitLinearOp
//===----------------------------------------------------------------------===//

LogicalResult TernaryMatmulOp::verify() {
  return verifyLinearShapes(*this, getInput().getType(), getWeight().getType(),
                            getType());
}

LogicalResult BitLinearOp::verify() {
  return verifyLinearShapes(*this, getInput().getType(), getWeight().getType(),
                            getType());
}

//===----------------------------------------------------------------------===//
// RMSNormOp
//===----------------------------------------------------------------------===//

LogicalResult RMSNormOp::verify() {
  RankedTensorType input = getInput().getType();
  if (input.getRank() < 1)
    return emitOpError("input must have rank >= 1, got a scalar");
  RankedTensorType gamma = getGamma().getType();
  if (gamma.getRank() != 1 ||
      !compatibleDim(gamma.getDimSize(0), input.getShape().back()))
    return emitOpError("gamma must have shape [")
           << shapeStr(input.getShape().back()) << "], got ["
           << shapeStr(gamma.getShape()) << "]";
  if (!compatibleShape(getType().getShape(), input.getShape()))
    return emitOpError("result shape ")
           << shapeStr(getType().getShape()) << " must equal the input shape "
           << shapeStr(input.getShape());
  float eps = getEpsilon().convertToFloat();
  if (!(eps >= 0.0f) || std::isinf(eps))
    return emitOpError("epsilon must be a finite value >= 0, got ") << eps;
  return success();
}

//===----------------------------------------------------------------------===//
// SquaredReluOp
//===----------------------------------------------------------------------===//

OpFoldResult SquaredReluOp::fold(FoldAdaptor adaptor) {
  auto input = dyn_cast_if_present<DenseFPElementsAttr>(adaptor.getInput());
  if (!input)
    return {};
  return input.mapValues(input.getElementType(), [](const APFloat &v) {
    float x = std::max(v.convertToFloat(), 0.0f);
    return APFloat(x * x).bitcastToAPInt();
  });
}

//===----------------------------------------------------------------------===//
// RopeOp
//===----------------------------------------------------------------------===//

LogicalResult RopeOp::verify() {
  RankedTensorType input = getInput().getType();
  if (input.getRank() != 3)
    return emitOpError("input must be [tokens, heads, head_dim], got rank ")
           << input.getRank();
  int64_t headDim = input.getDimSize(2);
  if (ShapedType::isDynamic(headDim) || headDim % 2 != 0)
    return emitOpError("head_dim must be static and even, got ")
           << shapeStr(headDim);
  RankedTensorType positions = getPositions().getType();
  if (positions.getRank() != 1 ||
      !compatibleDim(positions.getDimSize(0), input.getDimSize(0)))
    return emitOpError("positions must have shape [")
           << shapeStr(input.getDimSize(0)) << "], got ["
           << shapeStr(positions.getShape()) << "]";
  if (!compatibleShape(getType().getShape(), input.getShape()))
    return emitOpError("result shape ")
           << shapeStr(getType().getShape()) << " must equal the input shape "
           << shapeStr(input.getShape());
  float theta = getTheta().convertToFloat();
  if (!(theta > 0.0f) || std::isinf(theta))
    return emitOpError("theta must be finite and > 0, got ") << theta;
  return success();
}

//===----------------------------------------------------------------------===//
// AttentionOp and BatchedAttentionOp
//===----------------------------------------------------------------------===//

/// The softmax scale: `scale` if present, else 1/sqrt(D) of `query`.
static float effectiveScale(Value query, std::optional<APFloat> scale) {
  if (scale)
    return scale->convertToFloat();
  return 1.0f / std::sqrt(static_cast<float>(
                    cast<RankedTensorType>(query.getType()).getDimSize(2)));
}

/// What both attention ops require once their operands have the ranks they
/// take (static shapes): query [T, Hq, D], key and value [T, Hkv, D], caches
/// [..., Hkv, D] of one type, results of the query's and the caches' types,
/// a positive finite scale.
static LogicalResult verifyAttention(Operation *op, Value query, Value key,
                                     Value value, Value kCache, Value vCache,
                                     std::optional<APFloat> scale) {
  auto type = [](Value v) { return cast<RankedTensorType>(v.getType()); };
  auto fail = [&]() { return op->emitOpError(); };
  Type cacheElem = type(kCache).getElementType();
  if (type(vCache).getElementType() != cacheElem)
    return fail() << "k_cache and v_cache must have one element type, got "
                  << cacheElem << " and " << type(vCache).getElementType();
  ArrayRef<int64_t> q = type(query).getShape();
  ArrayRef<int64_t> k = type(key).getShape();
  ArrayRef<int64_t> cache = type(kCache).getShape();
  int64_t cacheHeads = cache[cache.size() - 2], cacheDim = cache.back();
  if (type(value).getShape() != k)
    return fail() << "value shape " << shapeStr(type(value).getShape())
                  << " must equal the key shape " << shapeStr(k);
  if (type(vCache).getShape() != cache)
    return fail() << "v_cache shape " << shapeStr(type(vCache).getShape())
                  << " must equal the k_cache shape " << shapeStr(cache);
  if (k[0] != q[0])
    return fail() << "key has " << k[0] << " tokens but query has " << q[0];
  if (k[2] != q[2] || cacheDim != q[2])
    return fail() << "head_dim differs: query " << q[2] << ", key " << k[2]
                  << ", cache " << cacheDim;
  if (cacheHeads != k[1])
    return fail() << "cache has " << cacheHeads << " kv heads but key has "
                  << k[1];
  if (k[1] == 0 || q[1] % k[1] != 0)
    return fail() << "query heads (" << q[1]
                  << ") must be a multiple of kv heads (" << k[1] << ")";
  if (op->getResult(0).getType() != query.getType())
    return fail() << "result type " << op->getResult(0).getType()
                  << " must equal the query type " << query.getType();
  if (op->getResult(1).getType() != kCache.getType() ||
      op->getResult(2).getType() != vCache.getType())
    return fail() << "updated caches must have the types of the caches";
  if (scale) {
    float s = scale->convertToFloat();
    if (!(s > 0.0f) || std::isinf(s))
      return fail() << "scale must be finite and > 0, got " << s;
  }
  return success();
}

/// Operands of the given ranks, with static shapes.
static LogicalResult verifyRanks(Operation *op, ArrayRef<Value> operands,
                                 ArrayRef<StringRef> names,
                                 ArrayRef<int64_t> ranks) {
  for (auto [v, name, rank] : llvm::zip(operands, names, ranks)) {
    auto type = cast<RankedTensorType>(v.getType());
    if (type.getRank() != rank)
      return op->emitOpError() << name << " must have rank " << rank
                               << ", got " << type.getRank();
    if (!type.hasStaticShape())
      return op->emitOpError()
             << name << " must have a static shape, got " << type;
  }
  return success();
}

float AttentionOp::getEffectiveScale() {
  return effectiveScale(getQuery(), getScale());
}

LogicalResult AttentionOp::verify() {
  if (failed(verifyRanks(
          *this,
          {getQuery(), getKey(), getValue(), getKCache(), getVCache()},
          {"query", "key", "value", "k_cache", "v_cache"}, {3, 3, 3, 3, 3})) ||
      failed(verifyAttention(*this, getQuery(), getKey(), getValue(),
                             getKCache(), getVCache(), getScale())))
    return failure();
  int64_t tokens = getQuery().getType().getDimSize(0);
  int64_t capacity = getKCache().getType().getDimSize(0);
  if (tokens > capacity)
    return emitOpError("cannot append ")
           << tokens << " tokens to a cache of capacity " << capacity;
  return success();
}

float BatchedAttentionOp::getEffectiveScale() {
  return effectiveScale(getQuery(), getScale());
}

LogicalResult BatchedAttentionOp::verify() {
  if (failed(verifyRanks(*this,
                         {getQuery(), getKey(), getValue(), getKCache(),
                          getVCache(), getPositions(), getSlots()},
                         {"query", "key", "value", "k_cache", "v_cache",
                          "positions", "slots"},
                         {3, 3, 3, 4, 4, 1, 1})))
    return failure();
  int64_t tokens = getQuery().getType().getDimSize(0);
  for (auto [v, name] :
       {std::pair<Value, StringRef>{getPositions(), "positions"},
        {getSlots(), "slots"}}) {
    int64_t entries = cast<RankedTensorType>(v.getType()).getDimSize(0);
    if (entries != tokens)
      return emitOpError() << name << " has " << entries
                           << " entries but query has " << tokens << " tokens";
  }
  ArrayRef<int64_t> cache = getKCache().getType().getShape();
  if (cache[0] == 0 || cache[1] == 0)
    return emitOpError("the caches need at least one slot of one row, got ")
           << shapeStr(cache);
  return verifyAttention(*this, getQuery(), getKey(), getValue(), getKCache(),
                         getVCache(), getScale());
}

//===----------------------------------------------------------------------===//
// EmbeddingOp
//===----------------------------------------------------------------------===//

/// An i8 weight (of `rows` rows) needs one f32 scale per row; a float weight
/// none.
static LogicalResult verifyRowScales(Operation *op, RankedTensorType weight,
                                     int64_t rows, Value scales) {
  bool quantized = weight.getElementType().isInteger(8);
  if (quantized && !scales)
    return op->emitOpError("an i8 weight needs scales, one per row");
  if (!quantized && scales)
    return op->emitOpError("scales apply only to an i8 weight");
  if (scales) {
    auto type = cast<RankedTensorType>(scales.getType());
    if (type.getRank() != 1 ||
        !compatibleDim(type.getDimSize(0), rows))
      return op->emitOpError("scales must have shape [")
             << shapeStr(rows) << "], got ["
             << shapeStr(type.getShape()) << "]";
  }
  return success();
}

/// A blocked dimension (`blocks` blocks of `size`) is dynamic if `blocks` is.
static int64_t blockedDim(int64_t blocks, int64_t size) {
  return ShapedType::isDynamic(blocks) ? ShapedType::kDynamic : blocks * size;
}

int64_t EmbeddingOp::getVocabulary() {
  RankedTensorType table = getTable().getType();
  if (std::optional<ArrayRef<int64_t>> blocked = getBlocked())
    return blockedDim(table.getDimSize(0), (*blocked)[0]);
  return table.getDimSize(0);
}

int64_t EmbeddingOp::getRowLength() {
  RankedTensorType table = getTable().getType();
  if (std::optional<ArrayRef<int64_t>> blocked = getBlocked())
    return blockedDim(table.getDimSize(1), (*blocked)[1]);
  return table.getDimSize(1);
}

LogicalResult EmbeddingOp::verify() {
  RankedTensorType table = getTable().getType();
  if (std::optional<ArrayRef<int64_t>> blocked = getBlocked()) {
    if (blocked->size() != 2 || (*blocked)[0] < 1 || (*blocked)[1] < 1)
      return emitOpError("blocked must be [rows, columns] of a block, both "
                         "positive");
    if (table.getRank() != 4 ||
        !compatibleDim(table.getDimSize(2), (*blocked)[0]) ||
        !compatibleDim(table.getDimSize(3), (*blocked)[1]))
      return emitOpError("a blocked table must be [V / ")
             << (*blocked)[0] << ", D / " << (*blocked)[1] << ", "
             << (*blocked)[0] << ", " << (*blocked)[1] << "], got "
             << shapeStr(table.getShape());
  } else if (table.getRank() != 2) {
    return emitOpError("table must be [vocabulary, dim], got rank ")
           << table.getRank();
  }
  if (failed(verifyRowScales(*this, table, getVocabulary(), getScales())))
    return failure();
  RankedTensorType tokens = getTokens().getType();
  SmallVector<int64_t> expected(tokens.getShape());
  expected.push_back(getRowLength());
  if (!compatibleShape(getType().getShape(), expected))
    return emitOpError("result shape ")
           << shapeStr(getType().getShape()) << " must be the token shape "
           << "followed by the table's row length, "
           << shapeStr(ArrayRef<int64_t>(expected));
  return success();
}

//===----------------------------------------------------------------------===//
// DenseMatmulOp
//===----------------------------------------------------------------------===//

LogicalResult DenseMatmulOp::verify() {
  RankedTensorType input = getInput().getType();
  RankedTensorType weight = getWeight().getType();
  if (input.getRank() < 1)
    return emitOpError("input must have rank >= 1, got a scalar");
  if (weight.getRank() != 2)
    return emitOpError("weight must be [N, K], got rank ") << weight.getRank();
  if (failed(verifyRowScales(*this, weight, weight.getDimSize(0), getScales())))
    return failure();
  if (getQuantizeInput() && !weight.getElementType().isInteger(8))
    return emitOpError("quantize_input needs an i8 weight (with its row "
                       "scales), got ")
           << weight.getElementType();
  if (!compatibleDim(input.getShape().back(), weight.getDimSize(1)))
    return emitOpError("input ends in K = ")
           << shapeStr(input.getShape().back()) << ", the weight has K = "
           << shapeStr(weight.getDimSize(1));
  SmallVector<int64_t> expected(input.getShape().drop_back());
  expected.push_back(weight.getDimSize(0));
  if (!compatibleShape(getType().getShape(), expected))
    return emitOpError("result shape ")
           << shapeStr(getType().getShape()) << " must be "
           << shapeStr(ArrayRef<int64_t>(expected));
  return success();
}
