//===- HostEval.cpp - Compile-time evaluation of ONNX operations ----------===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#include "HostEval.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringSwitch.h"

#include <cmath>
#include <cstring>
#include <limits>

using namespace mlir;
using namespace mlir::bitnet::onnx;

int64_t mlir::bitnet::onnx::wrapInt(int64_t v, Type type) {
  auto it = dyn_cast<IntegerType>(type);
  if (!it)
    return v;
  unsigned width = it.getWidth();
  if (width == 1)
    return v != 0;
  if (width >= 64)
    return v;
  uint64_t mask = (uint64_t(1) << width) - 1;
  uint64_t u = uint64_t(v) & mask;
  if (it.isUnsigned())
    return int64_t(u);
  if (u & (uint64_t(1) << (width - 1)))
    u |= ~mask;
  return int64_t(u);
}

double mlir::bitnet::onnx::roundFloat(double v, Type type) {
  if (type.isF32())
    return double(float(v));
  if (type.isF16() || type.isBF16()) {
    APFloat a(v);
    bool lost;
    a.convert(cast<FloatType>(type).getFloatSemantics(),
              APFloat::rmNearestTiesToEven, &lost);
    return a.convertToDouble();
  }
  return v;
}

double mlir::bitnet::onnx::truncateToBF16(double v) {
  if (std::isnan(v))
    return v;
  uint32_t bits;
  float f = float(v);
  std::memcpy(&bits, &f, 4);
  bits &= 0xffff0000u;
  std::memcpy(&f, &bits, 4);
  return f;
}

Type mlir::bitnet::onnx::signlessType(Type elem) {
  if (auto it = dyn_cast<IntegerType>(elem))
    if (!it.isSignless())
      return IntegerType::get(elem.getContext(), it.getWidth());
  return elem;
}

std::optional<HostTensor> mlir::bitnet::onnx::fromAttr(ElementsAttr attr,
                                                       Type elem) {
  auto type = dyn_cast<ShapedType>(attr.getType());
  if (!type || !type.hasStaticShape())
    return std::nullopt;
  HostTensor t;
  t.elem = elem;
  t.shape.assign(type.getShape().begin(), type.getShape().end());
  int64_t n = numElements(t.shape);
  if (n < 0 || n > kMaxFoldElements)
    return std::nullopt;
  Type stored = type.getElementType();
  if (auto ft = dyn_cast<FloatType>(stored)) {
    if (!isa<FloatType>(elem))
      return std::nullopt;
    t.f.reserve(n);
    if (ft.isF32()) {
      for (float v : attr.getValues<float>())
        t.f.push_back(v);
    } else if (ft.isF64()) {
      for (double v : attr.getValues<double>())
        t.f.push_back(v);
    } else {
      for (APFloat v : attr.getValues<APFloat>())
        t.f.push_back(v.convertToDouble());
    }
  } else if (auto it = dyn_cast<IntegerType>(stored)) {
    auto et = dyn_cast<IntegerType>(elem);
    if (!et || et.getWidth() != it.getWidth())
      return std::nullopt;
    t.i.reserve(n);
    for (APInt v : attr.getValues<APInt>())
      t.i.push_back(et.isUnsigned() || it.getWidth() == 1
                        ? int64_t(v.getZExtValue())
                        : v.getSExtValue());
  } else {
    return std::nullopt;
  }
  if (t.size() != n)
    return std::nullopt;
  return t;
}

DenseElementsAttr mlir::bitnet::onnx::toAttr(const HostTensor &t) {
  Type elem = signlessType(t.elem);
  auto type = RankedTensorType::get(t.shape, elem);
  if (elem.isF32()) {
    std::vector<float> v(t.f.begin(), t.f.end());
    return DenseElementsAttr::get(type, ArrayRef<float>(v));
  }
  if (elem.isF64())
    return DenseElementsAttr::get(type, ArrayRef<double>(t.f));
  if (isa<FloatType>(elem)) {
    SmallVector<APFloat> v;
    const llvm::fltSemantics &sem = cast<FloatType>(elem).getFloatSemantics();
    for (double d : t.f) {
      APFloat a(d);
      bool lost;
      a.convert(sem, APFloat::rmNearestTiesToEven, &lost);
      v.push_back(a);
    }
    return DenseElementsAttr::get(type, v);
  }
  unsigned width = cast<IntegerType>(elem).getWidth();
  switch (width) {
  case 1: {
    std::vector<bool> v(t.i.size());
    for (size_t k = 0; k < t.i.size(); ++k)
      v[k] = t.i[k] != 0;
    SmallVector<bool> b(v.begin(), v.end());
    return DenseElementsAttr::get(type, ArrayRef<bool>(b));
  }
  case 8: {
    std::vector<int8_t> v(t.i.begin(), t.i.end());
    return DenseElementsAttr::get(type, ArrayRef<int8_t>(v));
  }
  case 16: {
    std::vector<int16_t> v(t.i.begin(), t.i.end());
    return DenseElementsAttr::get(type, ArrayRef<int16_t>(v));
  }
  case 32: {
    std::vector<int32_t> v(t.i.begin(), t.i.end());
    return DenseElementsAttr::get(type, ArrayRef<int32_t>(v));
  }
  default:
    return DenseElementsAttr::get(type, ArrayRef<int64_t>(t.i));
  }
}

std::optional<SmallVector<int64_t>>
mlir::bitnet::onnx::broadcastShapes(ArrayRef<int64_t> a, ArrayRef<int64_t> b) {
  size_t rank = std::max(a.size(), b.size());
  SmallVector<int64_t> out(rank);
  for (size_t k = 0; k < rank; ++k) {
    int64_t da = k < rank - a.size() ? 1 : a[k - (rank - a.size())];
    int64_t db = k < rank - b.size() ? 1 : b[k - (rank - b.size())];
    if (da == db || db == 1)
      out[k] = da;
    else if (da == 1)
      out[k] = db;
    else
      return std::nullopt;
  }
  return out;
}

std::optional<int64_t> mlir::bitnet::onnx::normalizeAxis(int64_t axis,
                                                         int64_t rank) {
  if (axis < -rank || axis >= rank)
    return std::nullopt;
  return axis < 0 ? axis + rank : axis;
}

std::optional<SmallVector<int64_t>>
mlir::bitnet::onnx::reshapeShape(ArrayRef<int64_t> input,
                                 ArrayRef<int64_t> target, bool allowZero,
                                 std::string &error) {
  int64_t total = numElements(input);
  SmallVector<int64_t> out;
  int64_t inferred = -1, known = 1;
  for (size_t k = 0; k < target.size(); ++k) {
    int64_t d = target[k];
    if (d == 0 && !allowZero) {
      if (k >= input.size()) {
        error = "shape entry " + std::to_string(k) +
                " is 0 (copy the input's dimension) but the input has rank " +
                std::to_string(input.size());
        return std::nullopt;
      }
      d = input[k];
    }
    if (d == -1) {
      if (inferred >= 0) {
        error = "shape has more than one -1";
        return std::nullopt;
      }
      inferred = k;
      out.push_back(1);
      continue;
    }
    if (d < 0 || d > kMaxDim) {
      error = "shape entry " + std::to_string(k) + " is " + std::to_string(d);
      return std::nullopt;
    }
    if (__builtin_mul_overflow(known, d, &known) ||
        known > kMaxTensorElements) {
      error = "shape has too many elements";
      return std::nullopt;
    }
    out.push_back(d);
  }
  if (inferred >= 0) {
    if (known == 0 || total % known != 0) {
      error = "cannot infer the -1 entry: " + std::to_string(total) +
              " elements do not divide by " + std::to_string(known);
      return std::nullopt;
    }
    out[inferred] = total / known;
  } else if (known != total) {
    error = "the new shape has " + std::to_string(known) +
            " elements, the input " + std::to_string(total);
    return std::nullopt;
  }
  return out;
}

std::optional<SmallVector<SliceDim>> mlir::bitnet::onnx::sliceParams(
    ArrayRef<int64_t> shape, ArrayRef<int64_t> starts, ArrayRef<int64_t> ends,
    ArrayRef<int64_t> axes, ArrayRef<int64_t> steps, std::string &error) {
  int64_t rank = shape.size();
  SmallVector<SliceDim> dims;
  for (int64_t d : shape)
    dims.push_back({0, 1, d});
  if (starts.size() != ends.size() ||
      (!axes.empty() && axes.size() != starts.size()) ||
      (!steps.empty() && steps.size() != starts.size())) {
    error = "starts, ends, axes and steps must have the same length";
    return std::nullopt;
  }
  SmallVector<bool> seen(rank, false);
  for (size_t k = 0; k < starts.size(); ++k) {
    int64_t axis = axes.empty() ? int64_t(k) : axes[k];
    std::optional<int64_t> a = normalizeAxis(axis, rank);
    if (!a) {
      error = "axis " + std::to_string(axis) + " is out of range for rank " +
              std::to_string(rank);
      return std::nullopt;
    }
    if (seen[*a]) {
      error = "axis " + std::to_string(axis) + " is repeated";
      return std::nullopt;
    }
    seen[*a] = true;
    int64_t dim = shape[*a];
    int64_t step = steps.empty() ? 1 : steps[k];
    if (step == 0) {
      error = "step is 0";
      return std::nullopt;
    }
    auto clampIdx = [](int64_t v, int64_t lo, int64_t hi) {
      return std::min(std::max(v, lo), hi);
    };
    if (step == std::numeric_limits<int64_t>::min())
      step = -std::numeric_limits<int64_t>::max();
    int64_t s = starts[k], e = ends[k];
    if (s < 0)
      s += dim;
    if (e < 0)
      e += dim;
    int64_t count;
    if (step > 0) {
      s = clampIdx(s, 0, dim);
      e = clampIdx(e, 0, dim);
      count = e > s ? (e - s - 1) / step + 1 : 0;
    } else {
      s = clampIdx(s, 0, dim - 1);
      e = clampIdx(e, -1, dim - 1);
      count = s > e ? (s - e - 1) / (-step) + 1 : 0;
    }
    dims[*a] = {s, step, count};
  }
  return dims;
}

std::optional<HostTensor> mlir::bitnet::onnx::dequantizeNBits(
    const HostTensor &b, const HostTensor &scales, const HostTensor *zps,
    int64_t K, int64_t N, int64_t bits, int64_t block, std::string &error) {
  if (bits != 2 && bits != 4 && bits != 8) {
    error = "bits = " + std::to_string(bits) + " (expected 2, 4 or 8)";
    return std::nullopt;
  }
  if (K <= 0 || N <= 0 || block < 16 || (block & (block - 1)) || K > kMaxDim ||
      N > kMaxDim) {
    error = "K, N or block_size out of range";
    return std::nullopt;
  }
  if (b.isFloat() || !scales.isFloat() || (zps && zps->isFloat())) {
    error = "wrong element types";
    return std::nullopt;
  }
  int64_t blocks = (K + block - 1) / block;
  int64_t blob = block * bits / 8;
  int64_t zpBytes = (blocks * bits + 7) / 8;
  if (numElements({N, blocks, blob}) != b.size() ||
      scales.size() != N * blocks || (zps && zps->size() != N * zpBytes)) {
    error = "B, scales or zero_points do not match N = " + std::to_string(N) +
            ", K = " + std::to_string(K) +
            ", block_size = " + std::to_string(block);
    return std::nullopt;
  }
  int64_t n = numElements({K, N});
  if (n < 0 || n > kMaxFoldElements) {
    error = "the weight is too large";
    return std::nullopt;
  }
  HostTensor w;
  w.elem = scales.elem;
  w.shape = {K, N};
  w.f.assign(n, 0.0);
  int64_t mask = (int64_t(1) << bits) - 1, perByte = 8 / bits;
  for (int64_t r = 0; r < N; ++r)
    for (int64_t k = 0; k < K; ++k) {
      int64_t blk = k / block, j = k % block;
      int64_t byte = b.i[(r * blocks + blk) * blob + j / perByte];
      int64_t q = (byte >> ((j % perByte) * bits)) & mask;
      int64_t zp = int64_t(1) << (bits - 1);
      if (zps) {
        int64_t zbyte = zps->i[r * zpBytes + blk / perByte];
        zp = (zbyte >> ((blk % perByte) * bits)) & mask;
      }
      w.f[k * N + r] =
          roundFloat(double(q - zp) * scales.f[r * blocks + blk], w.elem);
    }
  return w;
}

//===----------------------------------------------------------------------===//
// Evaluation
//===----------------------------------------------------------------------===//

namespace {

int64_t getInt(DictionaryAttr attrs, StringRef name, int64_t dflt) {
  if (auto a = attrs.getAs<IntegerAttr>(name))
    return a.getInt();
  return dflt;
}

std::optional<SmallVector<int64_t>> getInts(DictionaryAttr attrs,
                                            StringRef name) {
  if (auto a = attrs.getAs<DenseI64ArrayAttr>(name))
    return SmallVector<int64_t>(a.asArrayRef());
  return std::nullopt;
}

/// Row-major strides.
SmallVector<int64_t> stridesOf(ArrayRef<int64_t> shape) {
  SmallVector<int64_t> s(shape.size(), 1);
  for (int64_t k = int64_t(shape.size()) - 2; k >= 0; --k)
    s[k] = s[k + 1] * shape[k + 1];
  return s;
}

/// Index into `in` (broadcast to `out`) of the element at flat `idx` of `out`.
int64_t broadcastIndex(int64_t idx, ArrayRef<int64_t> out,
                       ArrayRef<int64_t> outStrides, ArrayRef<int64_t> in,
                       ArrayRef<int64_t> inStrides) {
  int64_t r = 0;
  size_t off = out.size() - in.size();
  for (size_t k = 0; k < out.size(); ++k) {
    int64_t c = (idx / outStrides[k]) % out[k];
    if (k >= off && in[k - off] != 1)
      r += c * inStrides[k - off];
  }
  return r;
}

HostTensor make(Type elem, ArrayRef<int64_t> shape) {
  HostTensor t;
  t.elem = elem;
  t.shape.assign(shape.begin(), shape.end());
  int64_t n = numElements(shape);
  if (t.isFloat())
    t.f.assign(n, 0.0);
  else
    t.i.assign(n, 0);
  return t;
}

void set(HostTensor &t, int64_t k, double fv, int64_t iv, bool fromFloat) {
  if (t.isFloat())
    t.f[k] = roundFloat(fromFloat ? fv : double(iv), t.elem);
  else
    t.i[k] = wrapInt(iv, t.elem);
}

/// Copies element `src` of `from` into element `dst` of `to` (same type).
void copyElem(HostTensor &to, int64_t dst, const HostTensor &from,
              int64_t src) {
  if (to.isFloat())
    to.f[dst] = from.f[src];
  else
    to.i[dst] = from.i[src];
}

std::optional<std::vector<int64_t>> intValues(const HostTensor *t) {
  if (!t || t->isFloat())
    return std::nullopt;
  return t->i;
}

bool okSize(ArrayRef<int64_t> shape) {
  int64_t n = numElements(shape);
  return n >= 0 && n <= kMaxFoldElements;
}

/// A binary operation on float values of type `elem`.
using FloatBinaryFn = double (*)(double x, double y, Type elem);
/// A binary operation on integer values (unsigned ones zero extended);
/// false where the result is undefined (integer division by zero).
using IntBinaryFn = bool (*)(int64_t x, int64_t y, bool isUnsigned,
                             int64_t &v);

/// The per-element functions of a binary ONNX operation; null where the
/// operation has no host evaluation for that kind of element.
struct BinaryFns {
  FloatBinaryFn onFloat = nullptr;
  IntBinaryFn onInt = nullptr;
  /// The result is a bool (Equal, Less, Greater).
  bool compare = false;
};

BinaryFns binaryFns(StringRef op) {
  return llvm::StringSwitch<BinaryFns>(op)
      .Case("Add", {[](double x, double y, Type) { return x + y; },
                    [](int64_t x, int64_t y, bool, int64_t &v) {
                      v = int64_t(uint64_t(x) + uint64_t(y));
                      return true;
                    }})
      .Case("Sub", {[](double x, double y, Type) { return x - y; },
                    [](int64_t x, int64_t y, bool, int64_t &v) {
                      v = int64_t(uint64_t(x) - uint64_t(y));
                      return true;
                    }})
      .Case("Mul", {[](double x, double y, Type) { return x * y; },
                    [](int64_t x, int64_t y, bool, int64_t &v) {
                      v = int64_t(uint64_t(x) * uint64_t(y));
                      return true;
                    }})
      .Case("Div", {[](double x, double y, Type) { return x / y; },
                    [](int64_t x, int64_t y, bool isUnsigned, int64_t &v) {
                      if (y == 0 ||
                          (x == std::numeric_limits<int64_t>::min() && y == -1))
                        return false;
                      v = isUnsigned ? int64_t(uint64_t(x) / uint64_t(y))
                                     : x / y;
                      return true;
                    }})
      .Case("Pow", {[](double x, double y, Type elem) {
                      return std::pow(roundFloat(x, elem), y);
                    },
                    nullptr})
      .Case("Max", {[](double x, double y, Type) {
                      return std::isnan(x) || std::isnan(y) ? NAN
                                                            : std::max(x, y);
                    },
                    [](int64_t x, int64_t y, bool isUnsigned, int64_t &v) {
                      // UINT64 values past INT64_MAX are held wrapped.
                      v = isUnsigned ? int64_t(std::max(uint64_t(x),
                                                        uint64_t(y)))
                                     : std::max(x, y);
                      return true;
                    }})
      .Case("Min", {[](double x, double y, Type) {
                      return std::isnan(x) || std::isnan(y) ? NAN
                                                            : std::min(x, y);
                    },
                    [](int64_t x, int64_t y, bool isUnsigned, int64_t &v) {
                      v = isUnsigned ? int64_t(std::min(uint64_t(x),
                                                        uint64_t(y)))
                                     : std::min(x, y);
                      return true;
                    }})
      .Case("Equal", {[](double x, double y, Type) { return double(x == y); },
                      [](int64_t x, int64_t y, bool, int64_t &v) {
                        v = x == y;
                        return true;
                      },
                      /*compare=*/true})
      .Case("Less", {[](double x, double y, Type) { return double(x < y); },
                     [](int64_t x, int64_t y, bool isUnsigned, int64_t &v) {
                       v = isUnsigned ? uint64_t(x) < uint64_t(y) : x < y;
                       return true;
                     },
                     /*compare=*/true})
      .Case("Greater", {[](double x, double y, Type) { return double(x > y); },
                        [](int64_t x, int64_t y, bool isUnsigned, int64_t &v) {
                          v = isUnsigned ? uint64_t(x) > uint64_t(y) : x > y;
                          return true;
                        },
                        /*compare=*/true})
      .Default({});
}

std::optional<HostTensor> binary(StringRef op, const HostTensor &a,
                                 const HostTensor &b) {
  if (a.elem != b.elem && op != "Pow")
    return std::nullopt;
  auto shape = broadcastShapes(a.shape, b.shape);
  if (!shape || !okSize(*shape))
    return std::nullopt;
  BinaryFns fns = binaryFns(op);
  Type outElem =
      fns.compare ? IntegerType::get(a.elem.getContext(), 1) : a.elem;
  HostTensor r = make(outElem, *shape);
  // Nothing to compute for an empty result.
  if (r.size() == 0)
    return r;
  if (a.isFloat() ? !fns.onFloat : (!fns.onInt || b.isFloat()))
    return std::nullopt;
  SmallVector<int64_t> os = stridesOf(*shape), as = stridesOf(a.shape),
                       bs = stridesOf(b.shape);
  bool isUnsigned = a.elem.isUnsignedInteger();
  for (int64_t k = 0, n = r.size(); k < n; ++k) {
    int64_t ia = broadcastIndex(k, *shape, os, a.shape, as);
    int64_t ib = broadcastIndex(k, *shape, os, b.shape, bs);
    if (a.isFloat()) {
      double v = fns.onFloat(a.f[ia], b.asDouble(ib), a.elem);
      set(r, k, v, int64_t(v), !fns.compare);
      if (fns.compare)
        r.i[k] = v != 0;
    } else {
      int64_t v;
      if (!fns.onInt(a.i[ia], b.i[ib], isUnsigned, v))
        return std::nullopt;
      r.i[k] = fns.compare ? v : wrapInt(v, outElem);
    }
  }
  return r;
}

/// A unary operation on a float value.
using FloatUnaryFn = double (*)(double);
/// A unary operation on an integer or bool value of type `elem`.
using IntUnaryFn = int64_t (*)(int64_t, Type elem);

FloatUnaryFn floatUnaryFn(StringRef op) {
  return llvm::StringSwitch<FloatUnaryFn>(op)
      .Case("Neg", [](double x) { return -x; })
      .Case("Abs", [](double x) { return std::fabs(x); })
      .Case("Sqrt", [](double x) { return std::sqrt(x); })
      .Case("Reciprocal", [](double x) { return 1.0 / x; })
      .Case("Round", [](double x) { return std::nearbyint(x); })
      .Case("Relu", [](double x) { return x > 0 ? x : (x == 0 ? x : 0.0); })
      .Case("Floor", [](double x) { return std::floor(x); })
      .Case("Ceil", [](double x) { return std::ceil(x); })
      .Case("Identity", [](double x) { return x; })
      .Case("Sign",
            [](double x) {
              return std::isnan(x) ? x : double((x > 0) - (x < 0));
            })
      .Default(nullptr);
}

IntUnaryFn intUnaryFn(StringRef op, bool isBool) {
  if (op == "Identity")
    return [](int64_t v, Type) { return v; };
  if (isBool) {
    if (op != "Not")
      return nullptr;
    return [](int64_t v, Type) -> int64_t { return !v; };
  }
  return llvm::StringSwitch<IntUnaryFn>(op)
      .Case("Neg",
            [](int64_t v, Type elem) {
              return wrapInt(int64_t(0 - uint64_t(v)), elem);
            })
      .Case("Abs",
            [](int64_t v, Type elem) {
              return wrapInt(v < 0 ? int64_t(0 - uint64_t(v)) : v, elem);
            })
      .Case("Relu",
            [](int64_t v, Type) { return std::max<int64_t>(v, 0); })
      .Case("Sign",
            [](int64_t v, Type elem) -> int64_t {
              if (elem.isUnsignedInteger())
                return v != 0;
              return (v > 0) - (v < 0);
            })
      .Default(nullptr);
}

std::optional<HostTensor> unary(StringRef op, const HostTensor &a) {
  HostTensor r = a;
  // Nothing to compute for an empty tensor.
  if (a.size() == 0)
    return r;
  if (a.isFloat()) {
    FloatUnaryFn fn = floatUnaryFn(op);
    if (!fn)
      return std::nullopt;
    for (double &v : r.f)
      v = roundFloat(fn(v), a.elem);
    return r;
  }
  IntUnaryFn fn = intUnaryFn(op, a.elem.isInteger(1));
  if (!fn)
    return std::nullopt;
  for (int64_t &v : r.i)
    v = fn(v, a.elem);
  return r;
}

std::optional<HostTensor> castTensor(const HostTensor &a, Type to) {
  HostTensor r = make(to, a.shape);
  for (int64_t k = 0, n = a.size(); k < n; ++k) {
    if (a.isFloat()) {
      double v = a.f[k];
      if (r.isFloat()) {
        r.f[k] = to.isBF16() ? truncateToBF16(v) : roundFloat(v, to);
      } else if (to.isInteger(1)) {
        r.i[k] = v != 0;
      } else {
        // Out-of-range conversions are undefined in ONNX; leave them to the
        // compiled code rather than guess.
        if (!std::isfinite(v) || std::fabs(v) >= 9.2e18)
          return std::nullopt;
        r.i[k] = wrapInt(int64_t(std::trunc(v)), to);
      }
    } else {
      int64_t v = a.i[k];
      // UINT64 values past INT64_MAX are held wrapped.
      double d = a.elem.isUnsignedInteger(64) ? double(uint64_t(v)) : double(v);
      if (r.isFloat())
        r.f[k] = to.isBF16() ? truncateToBF16(d) : roundFloat(d, to);
      else
        r.i[k] = wrapInt(v, to);
    }
  }
  return r;
}

} // namespace

std::optional<SmallVector<HostTensor>>
mlir::bitnet::onnx::evaluate(StringRef op, int64_t version,
                             DictionaryAttr attrs,
                             ArrayRef<const HostTensor *> in) {
  auto input = [&](size_t k) -> const HostTensor * {
    return k < in.size() ? in[k] : nullptr;
  };
  auto one = [](std::optional<HostTensor> t)
      -> std::optional<SmallVector<HostTensor>> {
    if (!t)
      return std::nullopt;
    SmallVector<HostTensor> r;
    r.push_back(std::move(*t));
    return r;
  };
  const HostTensor *x = input(0);
  MLIRContext *ctx = attrs.getContext();

  if (op == "Add" || op == "Sub" || op == "Mul" || op == "Div" ||
      op == "Equal" || op == "Less" || op == "Greater" || op == "Pow") {
    if (!x || !input(1) || in.size() != 2)
      return std::nullopt;
    if (op == "Pow" && (!x->isFloat()))
      return std::nullopt;
    return one(binary(op, *x, *input(1)));
  }
  if (op == "Max" || op == "Min") {
    if (in.empty() || !x)
      return std::nullopt;
    HostTensor acc = *x;
    for (size_t k = 1; k < in.size(); ++k) {
      if (!in[k])
        return std::nullopt;
      auto r = binary(op, acc, *in[k]);
      if (!r)
        return std::nullopt;
      acc = std::move(*r);
    }
    return one(acc);
  }
  if (op == "Neg" || op == "Abs" || op == "Sqrt" || op == "Reciprocal" ||
      op == "Round" || op == "Relu" || op == "Floor" || op == "Ceil" ||
      op == "Not" || op == "Identity" || op == "Sign") {
    if (!x || in.size() != 1)
      return std::nullopt;
    return one(unary(op, *x));
  }
  if (op == "Cast") {
    // Only to the types a compiled model computes with, as legalisation
    // lowers Cast: a folded constant of another type could feed nothing.
    int64_t dtype = getInt(attrs, "to", 0);
    Type to = isSupportedDataType(dtype) ? elementTypeOf(ctx, dtype) : Type();
    if (!x || !to)
      return std::nullopt;
    return one(castTensor(*x, to));
  }
  if (op == "Clip") {
    if (!x)
      return std::nullopt;
    HostTensor r = *x;
    const HostTensor *lo = input(1), *hi = input(2);
    if ((lo && (lo->size() != 1 || lo->elem != x->elem)) ||
        (hi && (hi->size() != 1 || hi->elem != x->elem)))
      return std::nullopt;
    for (int64_t k = 0, n = r.size(); k < n; ++k) {
      if (r.isFloat()) {
        double v = r.f[k];
        if (lo && v < lo->f[0])
          v = lo->f[0];
        if (hi && v > hi->f[0])
          v = hi->f[0];
        r.f[k] = v;
      } else {
        int64_t v = r.i[k];
        if (lo && v < lo->i[0])
          v = lo->i[0];
        if (hi && v > hi->i[0])
          v = hi->i[0];
        r.i[k] = v;
      }
    }
    return one(r);
  }
  if (op == "Where") {
    const HostTensor *c = x, *a = input(1), *b = input(2);
    if (!c || !a || !b || !c->elem.isInteger(1) || a->elem != b->elem)
      return std::nullopt;
    auto s1 = broadcastShapes(c->shape, a->shape);
    auto shape = s1 ? broadcastShapes(*s1, b->shape) : std::nullopt;
    if (!shape || !okSize(*shape))
      return std::nullopt;
    HostTensor r = make(a->elem, *shape);
    SmallVector<int64_t> os = stridesOf(*shape), cs = stridesOf(c->shape),
                         as = stridesOf(a->shape), bs = stridesOf(b->shape);
    for (int64_t k = 0, n = r.size(); k < n; ++k) {
      bool cond = c->i[broadcastIndex(k, *shape, os, c->shape, cs)];
      if (cond)
        copyElem(r, k, *a, broadcastIndex(k, *shape, os, a->shape, as));
      else
        copyElem(r, k, *b, broadcastIndex(k, *shape, os, b->shape, bs));
    }
    return one(r);
  }
  if (op == "Shape") {
    if (!x)
      return std::nullopt;
    int64_t rank = x->shape.size();
    int64_t start = getInt(attrs, "start", 0), end = getInt(attrs, "end", rank);
    if (start < 0)
      start += rank;
    if (end < 0)
      end += rank;
    start = std::clamp<int64_t>(start, 0, rank);
    end = std::clamp<int64_t>(end, 0, rank);
    HostTensor r = make(IntegerType::get(ctx, 64),
                        {std::max<int64_t>(end - start, 0)});
    for (int64_t k = start; k < end; ++k)
      r.i[k - start] = x->shape[k];
    return one(r);
  }
  if (op == "Gather") {
    const HostTensor *idx = input(1);
    if (!x || !idx || idx->isFloat() || x->shape.empty())
      return std::nullopt;
    int64_t rank = x->shape.size();
    auto axis = normalizeAxis(getInt(attrs, "axis", 0), rank);
    if (!axis)
      return std::nullopt;
    SmallVector<int64_t> shape(x->shape.begin(), x->shape.begin() + *axis);
    shape.append(idx->shape.begin(), idx->shape.end());
    shape.append(x->shape.begin() + *axis + 1, x->shape.end());
    if (!okSize(shape))
      return std::nullopt;
    HostTensor r = make(x->elem, shape);
    int64_t outer = numElements(ArrayRef<int64_t>(x->shape).take_front(*axis));
    int64_t inner =
        numElements(ArrayRef<int64_t>(x->shape).drop_front(*axis + 1));
    int64_t dim = x->shape[*axis], ni = idx->size();
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t j = 0; j < ni; ++j) {
        int64_t g = idx->i[j];
        if (g < 0)
          g += dim;
        if (g < 0 || g >= dim)
          return std::nullopt;
        for (int64_t q = 0; q < inner; ++q)
          copyElem(r, (o * ni + j) * inner + q, *x, (o * dim + g) * inner + q);
      }
    return one(r);
  }
  if (op == "Concat") {
    if (in.empty() || !x)
      return std::nullopt;
    int64_t rank = x->shape.size();
    auto axis = normalizeAxis(getInt(attrs, "axis", 0), rank);
    if (!axis)
      return std::nullopt;
    SmallVector<int64_t> shape(x->shape);
    shape[*axis] = 0;
    for (const HostTensor *t : in) {
      if (!t || t->elem != x->elem || int64_t(t->shape.size()) != rank)
        return std::nullopt;
      for (int64_t k = 0; k < rank; ++k)
        if (k != *axis && t->shape[k] != x->shape[k])
          return std::nullopt;
      shape[*axis] += t->shape[*axis];
    }
    if (!okSize(shape))
      return std::nullopt;
    HostTensor r = make(x->elem, shape);
    int64_t outer = numElements(ArrayRef<int64_t>(shape).take_front(*axis));
    int64_t inner = numElements(ArrayRef<int64_t>(shape).drop_front(*axis + 1));
    int64_t offset = 0;
    for (const HostTensor *t : in) {
      int64_t d = t->shape[*axis];
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t j = 0; j < d * inner; ++j)
          copyElem(r, (o * shape[*axis] + offset) * inner + j, *t,
                   o * d * inner + j);
      offset += d;
    }
    return one(r);
  }
  if (op == "Unsqueeze" || op == "Squeeze") {
    if (!x)
      return std::nullopt;
    std::optional<SmallVector<int64_t>> axes;
    if (version >= 13) {
      if (input(1)) {
        auto v = intValues(input(1));
        if (!v)
          return std::nullopt;
        axes = SmallVector<int64_t>(v->begin(), v->end());
      }
    } else {
      axes = getInts(attrs, "axes");
    }
    SmallVector<int64_t> shape;
    if (op == "Unsqueeze") {
      if (!axes)
        return std::nullopt;
      int64_t rank = x->shape.size() + axes->size();
      SmallVector<bool> mark(rank, false);
      for (int64_t a : *axes) {
        auto n = normalizeAxis(a, rank);
        if (!n || mark[*n])
          return std::nullopt;
        mark[*n] = true;
      }
      size_t j = 0;
      for (int64_t k = 0; k < rank; ++k)
        shape.push_back(mark[k] ? 1 : x->shape[j++]);
    } else {
      int64_t rank = x->shape.size();
      SmallVector<bool> mark(rank, false);
      if (axes) {
        for (int64_t a : *axes) {
          auto n = normalizeAxis(a, rank);
          if (!n || x->shape[*n] != 1)
            return std::nullopt;
          mark[*n] = true;
        }
      } else {
        for (int64_t k = 0; k < rank; ++k)
          mark[k] = x->shape[k] == 1;
      }
      for (int64_t k = 0; k < rank; ++k)
        if (!mark[k])
          shape.push_back(x->shape[k]);
    }
    HostTensor r = *x;
    r.shape = shape;
    return one(r);
  }
  if (op == "Reshape") {
    auto target = intValues(input(1));
    if (!x || !target)
      return std::nullopt;
    std::string error;
    auto shape =
        reshapeShape(x->shape, *target, getInt(attrs, "allowzero", 0), error);
    if (!shape)
      return std::nullopt;
    HostTensor r = *x;
    r.shape = *shape;
    return one(r);
  }
  if (op == "Expand") {
    auto target = intValues(input(1));
    if (!x || !target)
      return std::nullopt;
    auto shape = broadcastShapes(x->shape, *target);
    if (!shape || !okSize(*shape))
      return std::nullopt;
    HostTensor r = make(x->elem, *shape);
    SmallVector<int64_t> os = stridesOf(*shape), xs = stridesOf(x->shape);
    for (int64_t k = 0, n = r.size(); k < n; ++k)
      copyElem(r, k, *x, broadcastIndex(k, *shape, os, x->shape, xs));
    return one(r);
  }
  if (op == "Transpose") {
    if (!x)
      return std::nullopt;
    int64_t rank = x->shape.size();
    SmallVector<int64_t> perm;
    if (auto p = getInts(attrs, "perm"))
      perm = *p;
    else
      for (int64_t k = rank - 1; k >= 0; --k)
        perm.push_back(k);
    if (int64_t(perm.size()) != rank)
      return std::nullopt;
    SmallVector<bool> seen(rank, false);
    SmallVector<int64_t> shape;
    for (int64_t p : perm) {
      if (p < 0 || p >= rank || seen[p])
        return std::nullopt;
      seen[p] = true;
      shape.push_back(x->shape[p]);
    }
    HostTensor r = make(x->elem, shape);
    SmallVector<int64_t> os = stridesOf(shape), xs = stridesOf(x->shape);
    for (int64_t k = 0, n = r.size(); k < n; ++k) {
      int64_t src = 0;
      for (int64_t d = 0; d < rank; ++d)
        src += ((k / os[d]) % shape[d]) * xs[perm[d]];
      copyElem(r, k, *x, src);
    }
    return one(r);
  }
  if (op == "Slice") {
    auto starts = intValues(input(1)), ends = intValues(input(2));
    if (!x || !starts || !ends || version < 10)
      return std::nullopt;
    std::vector<int64_t> axes, steps;
    if (input(3)) {
      auto a = intValues(input(3));
      if (!a)
        return std::nullopt;
      axes = *a;
    }
    if (input(4)) {
      auto s = intValues(input(4));
      if (!s)
        return std::nullopt;
      steps = *s;
    }
    std::string error;
    auto dims = sliceParams(x->shape, *starts, *ends, axes, steps, error);
    if (!dims)
      return std::nullopt;
    SmallVector<int64_t> shape;
    for (const SliceDim &d : *dims)
      shape.push_back(d.count);
    HostTensor r = make(x->elem, shape);
    SmallVector<int64_t> os = stridesOf(shape), xs = stridesOf(x->shape);
    for (int64_t k = 0, n = r.size(); k < n; ++k) {
      int64_t src = 0;
      for (size_t d = 0; d < shape.size(); ++d)
        src += ((*dims)[d].start + ((k / os[d]) % shape[d]) * (*dims)[d].step) *
               xs[d];
      copyElem(r, k, *x, src);
    }
    return one(r);
  }
  if (op == "ConstantOfShape") {
    auto target = intValues(x);
    if (!target || x->shape.size() != 1)
      return std::nullopt;
    Type elem = Float32Type::get(ctx);
    double fv = 0;
    int64_t iv = 0;
    if (auto value = attrs.getAs<DenseElementsAttr>("value")) {
      if (value.getNumElements() != 1)
        return std::nullopt;
      elem = value.getElementType();
      auto v = fromAttr(value, elem);
      if (!v)
        return std::nullopt;
      fv = v->isFloat() ? v->f[0] : 0;
      iv = v->isFloat() ? 0 : v->i[0];
    }
    SmallVector<int64_t> shape(target->begin(), target->end());
    if (!okSize(shape))
      return std::nullopt;
    HostTensor r = make(elem, shape);
    for (int64_t k = 0, n = r.size(); k < n; ++k)
      set(r, k, fv, iv, true);
    return one(r);
  }
  if (op == "Range") {
    const HostTensor *s = x, *l = input(1), *d = input(2);
    if (!s || !l || !d || s->size() != 1 || l->size() != 1 ||
        d->size() != 1 || s->elem != l->elem || s->elem != d->elem ||
        !s->shape.empty() || !l->shape.empty() || !d->shape.empty())
      return std::nullopt;
    double start = s->asDouble(0), limit = l->asDouble(0),
           delta = d->asDouble(0);
    if (delta == 0 || !std::isfinite(start) || !std::isfinite(limit) ||
        !std::isfinite(delta))
      return std::nullopt;
    double count = std::ceil((limit - start) / delta);
    if (!(count <= double(kMaxFoldElements)))
      return std::nullopt;
    int64_t n = std::max<int64_t>(int64_t(count), 0);
    HostTensor r = make(s->elem, {n});
    for (int64_t k = 0; k < n; ++k) {
      if (r.isFloat())
        r.f[k] = roundFloat(s->f[0] + double(k) * d->f[0], r.elem);
      else
        r.i[k] = wrapInt(s->i[0] + k * d->i[0], r.elem);
    }
    return one(r);
  }
  if (op == "ReduceMean" || op == "ReduceMax") {
    if (!x || !x->isFloat() || version >= 18)
      return std::nullopt;
    int64_t rank = x->shape.size();
    SmallVector<bool> reduce(rank, false);
    // An empty `axes` reduces every dimension, as no `axes` does.
    auto axes = getInts(attrs, "axes");
    if (axes && !axes->empty()) {
      for (int64_t a : *axes) {
        auto n = normalizeAxis(a, rank);
        if (!n)
          return std::nullopt;
        reduce[*n] = true;
      }
    } else {
      reduce.assign(rank, true);
    }
    bool keep = getInt(attrs, "keepdims", 1);
    SmallVector<int64_t> shape, keptShape;
    for (int64_t k = 0; k < rank; ++k) {
      keptShape.push_back(reduce[k] ? 1 : x->shape[k]);
      if (!reduce[k] || keep)
        shape.push_back(reduce[k] ? 1 : x->shape[k]);
    }
    HostTensor r = make(x->elem, shape);
    if (x->size() == 0)
      return std::nullopt;
    int64_t count = x->size() / std::max<int64_t>(r.size(), 1);
    bool mean = op == "ReduceMean";
    std::vector<double> acc(r.size(), mean ? 0.0 : -INFINITY);
    SmallVector<int64_t> xs = stridesOf(x->shape), ks = stridesOf(keptShape);
    for (int64_t k = 0, n = x->size(); k < n; ++k) {
      int64_t o = 0;
      for (int64_t d = 0; d < rank; ++d)
        if (!reduce[d])
          o += ((k / xs[d]) % x->shape[d]) * ks[d];
      double v = x->f[k];
      if (mean)
        acc[o] += v;
      else
        acc[o] = std::isnan(v) || std::isnan(acc[o]) ? NAN
                                                     : std::max(acc[o], v);
    }
    for (int64_t k = 0, n = r.size(); k < n; ++k)
      r.f[k] = roundFloat(mean ? acc[k] / double(count) : acc[k], x->elem);
    return one(r);
  }
  if (op == "DequantizeLinear") {
    const HostTensor *scale = input(1), *zp = input(2);
    if (!x || x->isFloat() || !scale || !scale->isFloat() ||
        (zp && zp->elem != x->elem))
      return std::nullopt;
    int64_t rank = x->shape.size();
    std::optional<int64_t> axis;
    if (scale->size() != 1 || !scale->shape.empty()) {
      if (scale->shape.size() != 1)
        return std::nullopt;
      axis = normalizeAxis(getInt(attrs, "axis", 1), rank);
      if (!axis || x->shape[*axis] != scale->shape[0])
        return std::nullopt;
    }
    if (zp && zp->size() != scale->size())
      return std::nullopt;
    HostTensor r = make(scale->elem, x->shape);
    SmallVector<int64_t> xs = stridesOf(x->shape);
    for (int64_t k = 0, n = x->size(); k < n; ++k) {
      int64_t c = axis ? (k / xs[*axis]) % x->shape[*axis] : 0;
      double v = double(x->i[k] - (zp ? zp->i[c] : 0));
      r.f[k] = roundFloat(roundFloat(v, r.elem) * scale->f[c], r.elem);
    }
    return one(r);
  }
  return std::nullopt;
}
