//===- TernaryEncoding.h - Byte-level ternary formats -----------*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// Packs and unpacks rows of ternary values in the formats of
// `bitnet::TernaryFormat`. Used by folders, verifiers and weight passes, so
// that the byte layout is written down exactly once in the compiler.
//
//===----------------------------------------------------------------------===//

#ifndef BITNET_DIALECT_BITNET_IR_TERNARYENCODING_H
#define BITNET_DIALECT_BITNET_IR_TERNARYENCODING_H

#include "bitnet/Dialect/BitNet/IR/BitNet.h"
#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/SmallVector.h"

#include <cstdint>

namespace mlir::bitnet {

/// Values per storage byte of `format` (1, 4 or 5).
int64_t getValuesPerByte(TernaryFormat format);

/// Packs `rows x cols` int8 values (row-major, each clamped to [-1, 1]) into
/// `rows x ceildiv(cols, valuesPerByte)` bytes of `format`, row-major layout.
llvm::SmallVector<int8_t> packTernary(llvm::ArrayRef<int8_t> values,
                                      int64_t rows, int64_t cols,
                                      TernaryFormat format);

/// The inverse of packTernary. Returns std::nullopt when a byte is not a valid
/// encoding (an i2 code of 3, a base-3 byte above 242, an int8 outside
/// [-1, 1]).
std::optional<llvm::SmallVector<int8_t>>
unpackTernary(llvm::ArrayRef<int8_t> bytes, int64_t rows, int64_t cols,
              TernaryFormat format);

/// Whether `bytes` are a valid `rows x cols` matrix of `format` (what
/// unpackTernary accepts), checked without unpacking.
bool isValidTernaryStorage(llvm::ArrayRef<int8_t> bytes, int64_t rows,
                           int64_t cols, TernaryFormat format);

} // namespace mlir::bitnet

#endif // BITNET_DIALECT_BITNET_IR_TERNARYENCODING_H
