//===- GGUFFile.h - Reads GGUF model files ----------------------*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// A memory-mapped GGUF file (versions 2 and 3, little-endian): its metadata
// and its tensor table, every offset and size checked against the file before
// anything is read, so that a malformed file gives an error naming the key
// or tensor, never a read outside the mapping. Tensor data is decoded on
// demand (GGUFTensors.h).
//
//===----------------------------------------------------------------------===//

#ifndef BITNET_IMPORT_GGUF_GGUFFILE_H
#define BITNET_IMPORT_GGUF_GGUFFILE_H

#include "bitnet/Import/Checkpoint/TensorData.h"

#include "mlir/Support/LLVM.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/MemoryBuffer.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mlir::bitnet::gguf {

/// Value types of GGUF metadata.
enum class ValueType : uint32_t {
  U8 = 0,
  I8 = 1,
  U16 = 2,
  I16 = 3,
  U32 = 4,
  I32 = 5,
  F32 = 6,
  Bool = 7,
  String = 8,
  Array = 9,
  U64 = 10,
  I64 = 11,
  F64 = 12,
};

/// The name of a value type ("u32", "array", ...).
StringRef valueTypeName(ValueType type);

/// One metadata value. Scalars are held widened; strings point into the
/// mapped file; arrays hold their elements (arrays of arrays are kept as
/// nested values).
struct Value {
  ValueType type = ValueType::U8;
  /// Integer and bool values (unsigned ones in `u`, signed in `i`; both set
  /// when the value fits).
  uint64_t u = 0;
  int64_t i = 0;
  bool hasUnsigned = false, hasSigned = false;
  double f = 0;
  StringRef str;
  /// For arrays: the element type and the elements.
  ValueType elementType = ValueType::U8;
  std::vector<Value> elements;

  bool isInteger() const;
  bool isFloat() const { return type == ValueType::F32 || type == ValueType::F64; }
};

/// Tensor element types of GGUF (ggml's numbering) that this reader knows.
enum class TensorType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
  /// bitnet.cpp's 2-bit ternary format: 128-value blocks of 32 bytes over
  /// the whole tensor, then one f32 scale.
  I2_S = 36,
  /// bitnet.cpp's lookup-table layouts for its own kernels (not supported).
  TL1 = 38,
  TL2 = 39,
};

/// The name of a tensor type ("F16", "I2_S", "type 77" when unknown).
std::string tensorTypeName(uint32_t type);

/// A tensor of the file: its name, its dimensions in GGUF order (`dims[0]`
/// varies fastest: for a weight matrix, dims = {K, N}), its type and its
/// bytes inside the mapping.
struct Tensor {
  StringRef name;
  SmallVector<int64_t, 4> dims;
  uint32_t type = 0;
  /// Offset in the file of the first byte, and the number of bytes.
  uint64_t fileOffset = 0;
  uint64_t size = 0;
  ArrayRef<uint8_t> data;

  int64_t numElements() const;
  /// Dimensions outermost first ({N, K} for a weight matrix).
  SmallVector<int64_t, 4> shape() const;
};

/// A GGUF file, mapped and checked.
class File : public CheckpointBytes {
public:
  /// Maps and checks the file at `path`. Errors name the file and the key
  /// or tensor at fault.
  static llvm::Expected<std::unique_ptr<File>> open(StringRef path);
  /// Checks a file held in memory (`name` labels errors); the buffer must
  /// outlive the result.
  static llvm::Expected<std::unique_ptr<File>> parse(llvm::MemoryBufferRef buffer);

  StringRef getPath() const { return path; }
  uint32_t getVersion() const { return version; }
  uint64_t getAlignment() const { return alignment; }
  uint64_t getFileSize() const { return bytes.size(); }

  /// Metadata keys in file order.
  ArrayRef<std::string> getKeys() const { return keys; }
  const Value *lookup(StringRef key) const;

  /// Typed accessors: an error naming the key when it is missing (the
  /// `Optional` forms give nothing instead) or has another type. Integers of
  /// any width are accepted where they fit.
  llvm::Expected<StringRef> getString(StringRef key) const;
  llvm::Expected<int64_t> getInteger(StringRef key) const;
  llvm::Expected<double> getFloat(StringRef key) const;
  llvm::Expected<std::optional<int64_t>> getOptionalInteger(StringRef key) const;
  llvm::Expected<std::optional<double>> getOptionalFloat(StringRef key) const;
  llvm::Expected<std::optional<bool>> getOptionalBool(StringRef key) const;
  llvm::Expected<std::optional<StringRef>> getOptionalString(StringRef key) const;
  /// An array of strings, integers or floats.
  llvm::Expected<std::vector<StringRef>> getStringArray(StringRef key) const;
  llvm::Expected<std::vector<int64_t>> getIntegerArray(StringRef key) const;
  llvm::Expected<std::vector<double>> getFloatArray(StringRef key) const;

  ArrayRef<Tensor> getTensors() const { return tensors; }
  const Tensor *findTensor(StringRef name) const;


private:
  friend class CheckpointBytes;
  File() = default;
  llvm::Error parseAll();

  uint32_t version = 0;
  uint64_t alignment = 32;
  std::vector<std::string> keys;
  llvm::StringMap<Value> values;
  std::vector<Tensor> tensors;
  llvm::StringMap<size_t> tensorIndex;
};

} // namespace mlir::bitnet::gguf

#endif // BITNET_IMPORT_GGUF_GGUFFILE_H
