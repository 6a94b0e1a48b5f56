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
  if (format == TernaryFormat::I2 && cols % 4 == 0) {
    // Whole bytes only: four codes a byte, no padding.
    SmallVector<int8_t> bytes(rows * bytesPerRow);
    for (int64_t i = 0, e = bytes.size(); i < e; ++i) {
      const int8_t *v = values.data() + 4 * i;
      unsigned byte = 0;
      for (int t = 0; t < 4; ++t)
        byte |= static_cast<unsigned>(std::clamp<int>(v[t], -1, 1) + 1)
                << (2 * t);
      bytes[i] = static_cast<int8_t>(byte);
    }
    return bytes;
  }
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

namespace {
/// The values of every storage byte of one format: `values[byte][t]` is the
/// value t of the byte, or 2 when that field is not a valid code.
struct ByteTable {
  int8_t values[256][5];
  /// Bytes all of whose fields are valid.
  bool valid[256];
  explicit ByteTable(TernaryFormat format) {
    static constexpr int kPow3[] = {1, 3, 9, 27, 81};
    int64_t perByte = getValuesPerByte(format);
    for (int byte = 0; byte < 256; ++byte) {
      valid[byte] = true;
      for (int64_t t = 0; t < 5; ++t) {
        int code = 3;
        if (t < perByte) {
          if (format == TernaryFormat::Int8)
            code = static_cast<int8_t>(byte) + 1;
          else if (format == TernaryFormat::I2)
            code = (byte >> (2 * t)) & 3;
          else if (byte <= 242)
            code = (byte / kPow3[t]) % 3;
        }
        bool ok = code >= 0 && code <= 2;
        values[byte][t] = static_cast<int8_t>(ok ? code - 1 : 2);
        if (t < perByte && !ok)
          valid[byte] = false;
      }
    }
  }
};
} // namespace

static const ByteTable &byteTable(TernaryFormat format) {
  static const ByteTable int8(TernaryFormat::Int8), i2(TernaryFormat::I2),
      base3(TernaryFormat::Base3);
  switch (format) {
  case TernaryFormat::Int8:
    return int8;
  case TernaryFormat::I2:
    return i2;
  case TernaryFormat::Base3:
    return base3;
  }
  llvm_unreachable("unknown ternary format");
}

std::optional<SmallVector<int8_t>>
mlir::bitnet::unpackTernary(ArrayRef<int8_t> bytes, int64_t rows, int64_t cols,
                            TernaryFormat format) {
  int64_t perByte = getValuesPerByte(format);
  int64_t bytesPerRow = llvm::divideCeil(cols, perByte);
  assert(static_cast<int64_t>(bytes.size()) == rows * bytesPerRow);
  const ByteTable &table = byteTable(format);
  SmallVector<int8_t> values(rows * cols);
  int8_t *out = values.data();
  for (int64_t r = 0; r < rows; ++r) {
    const int8_t *row = bytes.data() + r * bytesPerRow;
    for (int64_t b = 0; b < bytesPerRow; ++b) {
      const int8_t *decoded = table.values[static_cast<uint8_t>(row[b])];
      int64_t count = std::min(perByte, cols - b * perByte);
      for (int64_t t = 0; t < count; ++t) {
        if (decoded[t] == 2)
          return std::nullopt;
        *out++ = decoded[t];
      }
    }
  }
  return values;
}

bool mlir::bitnet::isValidTernaryStorage(ArrayRef<int8_t> bytes, int64_t rows,
                                         int64_t cols, TernaryFormat format) {
  int64_t perByte = getValuesPerByte(format);
  int64_t bytesPerRow = llvm::divideCeil(cols, perByte);
  if (static_cast<int64_t>(bytes.size()) != rows * bytesPerRow)
    return false;
  const ByteTable &table = byteTable(format);
  // Every byte but a row's last holds perByte values; the last may be
  // padded, and only its real fields must be valid.
  int64_t lastCount = cols - (bytesPerRow - 1) * perByte;
  for (int64_t r = 0; r < rows; ++r) {
    const int8_t *row = bytes.data() + r * bytesPerRow;
    for (int64_t b = 0; b + 1 < bytesPerRow; ++b)
      if (!table.valid[static_cast<uint8_t>(row[b])])
        return false;
    const int8_t *last =
        table.values[static_cast<uint8_t>(row[bytesPerRow - 1])];
    for (int64_t t = 0; t < lastCount; ++t)
      if (last[t] == 2)
        return false;
  }
  return true;
}
