//===- TernaryEncoding.cpp - Byte-level ternary formats ---------*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#include "bitnet/Dialect/BitNet/IR/TernaryEncoding.h"

#include "llvm/Support/MathExtras.h"

using namespace mlir;
using namespace mlir::bitnet;

int64_t mlir::bitnet::getValuesPerByte(TernaryFormat format) {
  switch (format) {
  case TernaryFormat::Int8:
    return 1;
  case TernaryFormat::I2:
    return 4;
  case TernaryFormat::Base3:
    return 5;
  }
  llvm_unreachable("unknown ternary format");
}

static uint8_t encodeGroup(ArrayRef<int8_t> group, TernaryFormat format) {
  unsigned byte = 0;
  unsigned weight = 1;
  for (auto [t, v] : llvm::enumerate(group)) {
    unsigned code = static_cast<unsigned>(std::clamp<int>(v, -1, 1) + 1);
    if (format == TernaryFormat::I2) {
      byte |= code << (2 * t);
    } else {
      byte += code * weight;
      weight *= 3;
    }
  }
  // A short last group is padded with zero weights (code 1).
  for (size_t t = group.size(), e = getValuesPerByte(format); t < e; ++t) {
    if (format == TernaryFormat::I2) {
      byte |= 1u << (2 * t);
    } else {
      byte += weight;
      weight *= 3;
    }
  }
  return static_cast<uint8_t>(byte);
}

SmallVector<int8_t> mlir::bitnet::packTernary(ArrayRef<int8_t> values,
                                              int64_t rows, int64_t cols,
                                              TernaryFormat format) {
  assert(static_cast<int64_t>(values.size()) == rows * cols);
  if (format == TernaryFormat::Int8)
    return llvm::map_to_vector(
        values, [](int8_t v) { return static_cast<int8_t>(std::clamp<int>(v, -1, 1)); });
  int64_t perByte = getValuesPerByte(format);
  int64_t bytesPerRow = llvm::divideCeil(cols, perByte);
  SmallVector<int8_t> bytes;
  bytes.reserve(rows * bytesPerRow);
  for (int64_t r = 0; r < rows; ++r) {
    ArrayRef<int8_t> row = values.slice(r * cols, cols);
    for (int64_t b = 0; b < bytesPerRow; ++b) {
      int64_t begin = b * perByte;
      int64_t count = std::min(perByte, cols - begin);
      bytes.push_back(static_cast<int8_t>(
          encodeGroup(row.slice(begin, count), format)));
    }
  }
  return bytes;
}

std::optional<SmallVector<int8_t>>
mlir::bitnet::unpackTernary(ArrayRef<int8_t> bytes, int64_t rows, int64_t cols,
                            TernaryFormat format) {
  int64_t perByte = getValuesPerByte(format);
  int64_t bytesPerRow = llvm::divideCeil(cols, perByte);
  assert(static_cast<int64_t>(bytes.size()) == rows * bytesPerRow);
  SmallVector<int8_t> values;
  values.reserve(rows * cols);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      auto byte = static_cast<uint8_t>(bytes[r * bytesPerRow + c / perByte]);
      int64_t t = c % perByte;
      int code;
      switch (format) {
      case TernaryFormat::Int8:
        code = static_cast<int8_t>(byte) + 1;
        break;
      case TernaryFormat::I2:
        code = (byte >> (2 * t)) & 3;
        break;
      case TernaryFormat::Base3: {
        if (byte > 242)
          return std::nullopt;
        static constexpr int kPow3[] = {1, 3, 9, 27, 81};
        code = (byte / kPow3[t]) % 3;
        break;
      }
      }
      if (code < 0 || code > 2)
        return std::nullopt;
      values.push_back(static_cast<int8_t>(code - 1));
    }
  }
  return values;
}
