//===- ONNXTypes.cpp - ONNX element types and size limits -----------------===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#include "bitnet/Import/ONNXTypes.h"

using namespace mlir;
using namespace mlir::bitnet::onnx;

Type mlir::bitnet::onnx::elementTypeOf(MLIRContext *ctx, int64_t dtype) {
  switch (dtype) {
  case kFloat:
    return Float32Type::get(ctx);
  case kDouble:
    return Float64Type::get(ctx);
  case kFloat16:
    return Float16Type::get(ctx);
  case kBFloat16:
    return BFloat16Type::get(ctx);
  case kUInt8:
    return IntegerType::get(ctx, 8, IntegerType::Unsigned);
  case kInt8:
    return IntegerType::get(ctx, 8);
  case kUInt16:
    return IntegerType::get(ctx, 16, IntegerType::Unsigned);
  case kInt16:
    return IntegerType::get(ctx, 16);
  case kInt32:
    return IntegerType::get(ctx, 32);
  case kUInt32:
    return IntegerType::get(ctx, 32, IntegerType::Unsigned);
  case kInt64:
    return IntegerType::get(ctx, 64);
  case kUInt64:
    return IntegerType::get(ctx, 64, IntegerType::Unsigned);
  case kBool:
    return IntegerType::get(ctx, 1);
  default:
    return {};
  }
}

bool mlir::bitnet::onnx::isSupportedDataType(int64_t dtype) {
  switch (dtype) {
  case kFloat:
  case kDouble:
  case kFloat16:
  case kBFloat16:
  case kUInt8:
  case kInt8:
  case kUInt16:
  case kInt16:
  case kUInt32:
  case kInt32:
  case kUInt64:
  case kInt64:
  case kBool:
    return true;
  default:
    return false;
  }
}

int64_t mlir::bitnet::onnx::numElements(ArrayRef<int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0 || d > kMaxDim)
      return -1;
    if (__builtin_mul_overflow(n, d, &n) || n > kMaxTensorElements)
      return -1;
  }
  return n;
}
