//===- ONNXTypes.h - ONNX element types and size limits ---------*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// The one map from ONNX TensorProto data types to MLIR element types, the
// subset of them a compiled model computes with, and the limits on tensor
// sizes. The ONNX importer, the host evaluator and the legaliser all use
// these, so a type or a shape is accepted or refused the same way at every
// stage.
//
//===----------------------------------------------------------------------===//

#ifndef BITNET_IMPORT_ONNXTYPES_H
#define BITNET_IMPORT_ONNXTYPES_H

#include "mlir/IR/BuiltinTypes.h"
#include "mlir/Support/LLVM.h"

namespace mlir::bitnet::onnx {

/// Most elements a compile-time evaluation may produce.
constexpr int64_t kMaxFoldElements = int64_t(1) << 26;
/// Most elements any tensor of an imported model may have.
constexpr int64_t kMaxTensorElements = int64_t(1) << 36;
/// Largest single dimension accepted.
constexpr int64_t kMaxDim = int64_t(1) << 32;

/// ONNX TensorProto data types (the numbers of onnx.proto's DataType).
enum DataType : int64_t {
  kFloat = 1,
  kUInt8 = 2,
  kInt8 = 3,
  kUInt16 = 4,
  kInt16 = 5,
  kInt32 = 6,
  kInt64 = 7,
  kBool = 9,
  kFloat16 = 10,
  kDouble = 11,
  kUInt32 = 12,
  kUInt64 = 13,
  kBFloat16 = 16,
};

/// The MLIR element type of ONNX data type `dtype`, signedness kept (ui8 for
/// UINT8, i1 for BOOL); null for a data type without one (strings, complex
/// numbers, unknown numbers). Shape inference hints may use any of these.
Type elementTypeOf(MLIRContext *ctx, int64_t dtype);

/// Whether a compiled model computes with data type `dtype`: FLOAT, DOUBLE,
/// FLOAT16, BFLOAT16, the signed and unsigned integers of 8 to 64 bits and
/// BOOL (not strings nor complex numbers). Graph inputs, outputs,
/// initialisers and Cast targets must have one of these.
bool isSupportedDataType(int64_t dtype);

/// Number of elements of `shape`, or -1 on overflow, a negative dimension,
/// a dimension over kMaxDim or more than kMaxTensorElements.
int64_t numElements(ArrayRef<int64_t> shape);

} // namespace mlir::bitnet::onnx

#endif // BITNET_IMPORT_ONNXTYPES_H
