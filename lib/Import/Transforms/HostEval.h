//===- HostEval.h - Compile-time evaluation of ONNX operations --*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// Evaluates ONNX operations on constant tensors while compiling: shape
// computations (Shape -> Gather -> Concat -> Reshape), ConstantOfShape,
// Range, and the weight chains BitLinear recognition folds. Values are held
// as int64 (integers, bool) or double rounded to the element type after every
// operation, so float results are the correctly rounded IEEE results of each
// ONNX operation. Every function here is total: inconsistent inputs give
// std::nullopt or an error message, never a crash.
//
//===----------------------------------------------------------------------===//

#ifndef BITNET_LIB_IMPORT_TRANSFORMS_HOSTEVAL_H
#define BITNET_LIB_IMPORT_TRANSFORMS_HOSTEVAL_H

#include "bitnet/Import/ONNXTypes.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/Support/LLVM.h"

#include <optional>
#include <string>
#include <vector>

namespace mlir::bitnet::onnx {

/// A constant tensor on the host. `elem` is the ONNX element type as an MLIR
/// type (with signedness: ui8 for UINT8, i1 for BOOL).
struct HostTensor {
  Type elem;
  SmallVector<int64_t> shape;
  std::vector<double> f;  ///< values of float tensors
  std::vector<int64_t> i; ///< values of integer and bool tensors

  bool isFloat() const { return isa<FloatType>(elem); }
  int64_t size() const {
    return isFloat() ? int64_t(f.size()) : int64_t(i.size());
  }
  double asDouble(int64_t k) const { return isFloat() ? f[k] : double(i[k]); }
};

/// Wraps an integer to `type` (two's complement, zero extended when
/// unsigned, 0/1 for i1); rounds a double to `type`'s precision.
int64_t wrapInt(int64_t v, Type type);
double roundFloat(double v, Type type);
/// `v` as Cast to BFLOAT16 makes it: rounded to f32, then the low 16 bits
/// dropped (ONNX's reference truncates); NaN stays NaN.
double truncateToBF16(double v);

/// Reads a constant (elements of `attr`, interpreted as `elem`).
std::optional<HostTensor> fromAttr(ElementsAttr attr, Type elem);
/// Builds the constant of `t` with signless integer element types.
DenseElementsAttr toAttr(const HostTensor &t);
/// The signless storage type of an ONNX element type (ui8 -> i8).
Type signlessType(Type elem);

/// Numpy broadcasting of two shapes; nullopt when incompatible.
std::optional<SmallVector<int64_t>> broadcastShapes(ArrayRef<int64_t> a,
                                                    ArrayRef<int64_t> b);

/// Axis in [-rank, rank) to [0, rank); nullopt when out of range.
std::optional<int64_t> normalizeAxis(int64_t axis, int64_t rank);

/// Result shape of Reshape; on failure `error` says why.
std::optional<SmallVector<int64_t>> reshapeShape(ArrayRef<int64_t> input,
                                                 ArrayRef<int64_t> target,
                                                 bool allowZero,
                                                 std::string &error);

/// Normalised parameters of Slice on one axis: start, step and count.
struct SliceDim {
  int64_t start, step, count;
};
/// Per-axis slice parameters of Slice-13 for `shape` (every axis, default
/// full range); on failure `error` says why.
std::optional<SmallVector<SliceDim>>
sliceParams(ArrayRef<int64_t> shape, ArrayRef<int64_t> starts,
            ArrayRef<int64_t> ends, ArrayRef<int64_t> axes,
            ArrayRef<int64_t> steps, std::string &error);

/// The float weight [K, N] of com.microsoft MatMulNBits: packed codes `b`
/// [N, blocks, block * bits / 8] (low bits first), `scales` [N * blocks],
/// `zeroPoints` packed like the codes (default 2^(bits - 1)); the value is
/// (code - zero point) * scale. On failure `error` says why.
std::optional<HostTensor> dequantizeNBits(const HostTensor &b,
                                          const HostTensor &scales,
                                          const HostTensor *zeroPoints,
                                          int64_t K, int64_t N, int64_t bits,
                                          int64_t block, std::string &error);

/// Result of evaluating one ONNX operation on constant inputs: `std::nullopt`
/// when the operation (or that use of it) is not evaluated on the host.
/// `inputs` holds null for omitted optional inputs. `attrs` are the
/// operation's ONNX attributes as the importer stores them.
std::optional<SmallVector<HostTensor>>
evaluate(StringRef opType, int64_t version, DictionaryAttr attrs,
         ArrayRef<const HostTensor *> inputs);

} // namespace mlir::bitnet::onnx

#endif // BITNET_LIB_IMPORT_TRANSFORMS_HOSTEVAL_H
