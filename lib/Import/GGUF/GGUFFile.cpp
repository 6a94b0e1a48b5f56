//===- GGUFFile.cpp - Reads GGUF model files ------------------------------===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// The layout (GGUF v2/v3, little-endian): magic "GGUF", u32 version, u64
// tensor count, u64 metadata count; the metadata (key string, u32 value type,
// value); the tensor table (name string, u32 rank, u64 dims, u32 type, u64
// offset); padding to `general.alignment` (32 by default); the tensor data.
// Strings are a u64 length and bytes. Every read below goes through `Cursor`,
// which checks that the bytes are there first.
//
//===----------------------------------------------------------------------===//

#include "bitnet/Import/GGUF/GGUFFile.h"

#include "bitnet/Import/Checkpoint/TensorData.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MathExtras.h"

#include <cstring>

using namespace mlir;
using namespace mlir::bitnet::gguf;

StringRef mlir::bitnet::gguf::valueTypeName(ValueType type) {
  switch (type) {
  case ValueType::U8: return "u8";
  case ValueType::I8: return "i8";
  case ValueType::U16: return "u16";
  case ValueType::I16: return "i16";
  case ValueType::U32: return "u32";
  case ValueType::I32: return "i32";
  case ValueType::F32: return "f32";
  case ValueType::Bool: return "bool";
  case ValueType::String: return "string";
  case ValueType::Array: return "array";
  case ValueType::U64: return "u64";
  case ValueType::I64: return "i64";
  case ValueType::F64: return "f64";
  }
  return "unknown";
}

bool Value::isInteger() const {
  switch (type) {
  case ValueType::U8: case ValueType::I8: case ValueType::U16:
  case ValueType::I16: case ValueType::U32: case ValueType::I32:
  case ValueType::U64: case ValueType::I64:
    return true;
  default:
    return false;
  }
}

namespace {
/// Block size (values) and bytes per block of a tensor type; nothing for a
/// type this reader does not know. I2_S is special (see tensorBytes).
struct TypeInfo {
  const char *name;
  int64_t blockValues;
  int64_t blockBytes;
};
} // namespace

static std::optional<TypeInfo> typeInfo(uint32_t type) {
  switch (static_cast<TensorType>(type)) {
  case TensorType::F32: return TypeInfo{"F32", 1, 4};
  case TensorType::F16: return TypeInfo{"F16", 1, 2};
  case TensorType::Q4_0: return TypeInfo{"Q4_0", 32, 18};
  case TensorType::Q4_1: return TypeInfo{"Q4_1", 32, 20};
  case TensorType::Q5_0: return TypeInfo{"Q5_0", 32, 22};
  case TensorType::Q5_1: return TypeInfo{"Q5_1", 32, 24};
  case TensorType::Q8_0: return TypeInfo{"Q8_0", 32, 34};
  case TensorType::Q8_1: return TypeInfo{"Q8_1", 32, 36};
  case TensorType::Q2_K: return TypeInfo{"Q2_K", 256, 84};
  case TensorType::Q3_K: return TypeInfo{"Q3_K", 256, 110};
  case TensorType::Q4_K: return TypeInfo{"Q4_K", 256, 144};
  case TensorType::Q5_K: return TypeInfo{"Q5_K", 256, 176};
  case TensorType::Q6_K: return TypeInfo{"Q6_K", 256, 210};
  case TensorType::Q8_K: return TypeInfo{"Q8_K", 256, 292};
  case TensorType::I8: return TypeInfo{"I8", 1, 1};
  case TensorType::I16: return TypeInfo{"I16", 1, 2};
  case TensorType::I32: return TypeInfo{"I32", 1, 4};
  case TensorType::I64: return TypeInfo{"I64", 1, 8};
  case TensorType::F64: return TypeInfo{"F64", 1, 8};
  case TensorType::BF16: return TypeInfo{"BF16", 1, 2};
  case TensorType::TQ1_0: return TypeInfo{"TQ1_0", 256, 54};
  case TensorType::TQ2_0: return TypeInfo{"TQ2_0", 256, 66};
  case TensorType::I2_S: return TypeInfo{"I2_S", 128, 32};
  case TensorType::TL1: return TypeInfo{"TL1", 0, 0};
  case TensorType::TL2: return TypeInfo{"TL2", 0, 0};
  }
  return std::nullopt;
}

std::string mlir::bitnet::gguf::tensorTypeName(uint32_t type) {
  if (std::optional<TypeInfo> info = typeInfo(type))
    return info->name;
  return "type " + std::to_string(type);
}

int64_t Tensor::numElements() const {
  int64_t n = 1;
  for (int64_t d : dims)
    n *= d;
  return n;
}

SmallVector<int64_t, 4> Tensor::shape() const {
  return SmallVector<int64_t, 4>(llvm::reverse(dims));
}

namespace {
/// Reads little-endian values from the mapped bytes, never past the end.
class Cursor {
public:
  Cursor(ArrayRef<uint8_t> bytes) : bytes(bytes) {}

  uint64_t offset() const { return pos; }
  uint64_t remaining() const { return bytes.size() - pos; }

  template <typename T>
  bool read(T &value) {
    if (remaining() < sizeof(T))
      return false;
    std::memcpy(&value, bytes.data() + pos, sizeof(T));
    pos += sizeof(T);
    return true;
  }

  bool readString(StringRef &str) {
    uint64_t length;
    if (!read(length) || length > remaining())
      return false;
    str = StringRef(reinterpret_cast<const char *>(bytes.data() + pos), length);
    pos += length;
    return true;
  }

private:
  ArrayRef<uint8_t> bytes;
  uint64_t pos = 0;
};
} // namespace

/// Bytes one element of a scalar value type takes (0 for strings/arrays).
static uint64_t scalarBytes(ValueType type) {
  switch (type) {
  case ValueType::U8: case ValueType::I8: case ValueType::Bool: return 1;
  case ValueType::U16: case ValueType::I16: return 2;
  case ValueType::U32: case ValueType::I32: case ValueType::F32: return 4;
  case ValueType::U64: case ValueType::I64: case ValueType::F64: return 8;
  default: return 0;
  }
}

static bool isKnownValueType(uint32_t type) { return type <= 12; }

/// Arrays of arrays are legal GGUF; nothing the importer reads nests them,
/// so a small depth is plenty and bounds the recursion.
static constexpr int kMaxArrayDepth = 4;

namespace {
class ValueParser {
public:
  ValueParser(Cursor &cursor) : cursor(cursor) {}

  /// Parses one value of `type`; on failure sets `problem`.
  bool parse(ValueType type, Value &value, int depth) {
    value.type = type;
    switch (type) {
    case ValueType::U8: return scalar<uint8_t>(value);
    case ValueType::I8: return scalar<int8_t>(value);
    case ValueType::U16: return scalar<uint16_t>(value);
    case ValueType::I16: return scalar<int16_t>(value);
    case ValueType::U32: return scalar<uint32_t>(value);
    case ValueType::I32: return scalar<int32_t>(value);
    case ValueType::U64: return scalar<uint64_t>(value);
    case ValueType::I64: return scalar<int64_t>(value);
    case ValueType::F32: {
      float f;
      if (!cursor.read(f))
        return truncated();
      value.f = f;
      return true;
    }
    case ValueType::F64:
      if (!cursor.read(value.f))
        return truncated();
      return true;
    case ValueType::Bool: {
      uint8_t b;
      if (!cursor.read(b))
        return truncated();
      if (b > 1) {
        problem = "a bool value of " + std::to_string(b) + " (expected 0 or 1)";
        return false;
      }
      value.u = b;
      value.i = b;
      value.hasUnsigned = value.hasSigned = true;
      return true;
    }
    case ValueType::String:
      if (!cursor.readString(value.str))
        return truncated();
      return true;
    case ValueType::Array: {
      uint32_t elementType;
      uint64_t count;
      if (!cursor.read(elementType) || !cursor.read(count))
        return truncated();
      if (!isKnownValueType(elementType)) {
        problem = "an array of unknown value type " + std::to_string(elementType);
        return false;
      }
      value.elementType = static_cast<ValueType>(elementType);
      if (value.elementType == ValueType::Array && depth >= kMaxArrayDepth) {
        problem = "arrays nested deeper than " + std::to_string(kMaxArrayDepth);
        return false;
      }
      // Every element takes at least one byte (a string 8), so a count the
      // rest of the file cannot hold is rejected before anything is
      // allocated.
      uint64_t minBytes = scalarBytes(value.elementType);
      if (minBytes == 0)
        minBytes = value.elementType == ValueType::String ? 8 : 12;
      if (count > cursor.remaining() / minBytes) {
        problem = "an array of " + std::to_string(count) + " " +
                  valueTypeName(value.elementType).str() +
                  " elements, more than the rest of the file holds";
        return false;
      }
      value.elements.resize(count);
      for (Value &element : value.elements)
        if (!parse(value.elementType, element, depth + 1))
          return false;
      return true;
    }
    }
    problem = "an unknown value type";
    return false;
  }

  std::string problem;

private:
  template <typename T>
  bool scalar(Value &value) {
    T v;
    if (!cursor.read(v))
      return truncated();
    if constexpr (std::is_signed_v<T>) {
      value.i = v;
      value.hasSigned = true;
      if (v >= 0) {
        value.u = static_cast<uint64_t>(v);
        value.hasUnsigned = true;
      }
    } else {
      value.u = v;
      value.hasUnsigned = true;
      if (v <= static_cast<uint64_t>(INT64_MAX)) {
        value.i = static_cast<int64_t>(v);
        value.hasSigned = true;
      }
    }
    return true;
  }

  bool truncated() {
    problem = "the file ends inside it";
    return false;
  }

  Cursor &cursor;
};
} // namespace

llvm::Expected<std::unique_ptr<File>> File::open(StringRef path) {
  return openAs<File>(path);
}

llvm::Expected<std::unique_ptr<File>> File::parse(llvm::MemoryBufferRef buffer) {
  return parseAs<File>(buffer);
}

/// The number of bytes of a tensor of `type` with `count` values whose rows
/// have `rowValues` values; an error message when the shape does not fit the
/// type's blocks.
static std::optional<uint64_t> tensorBytes(uint32_t type, uint64_t count,
                                           uint64_t rowValues,
                                           std::string &problem) {
  std::optional<TypeInfo> info = typeInfo(type);
  if (!info) {
    problem = "has an unknown tensor type " + std::to_string(type);
    return std::nullopt;
  }
  if (info->blockValues == 0) {
    problem = std::string("is stored as ") + info->name +
              ", a layout of bitnet.cpp's own lookup-table kernels that "
              "this compiler does not read; convert the model to I2_S, TQ1_0 "
              "or TQ2_0 (or use the Hugging Face checkpoint) instead";
    return std::nullopt;
  }
  if (static_cast<TensorType>(type) == TensorType::I2_S) {
    // 2 bits a value over the whole tensor in 128-value blocks, then the
    // f32 scale in 32 bytes of its own.
    if (count % 128 != 0) {
      problem = "is I2_S with " + std::to_string(count) +
                " values, not a multiple of its 128-value blocks";
      return std::nullopt;
    }
    return count / 4 + 32;
  }
  if (rowValues % info->blockValues != 0) {
    problem = "has rows of " + std::to_string(rowValues) + " values, not a multiple of " +
              info->name + "'s " + std::to_string(info->blockValues) +
              "-value blocks";
    return std::nullopt;
  }
  return count / info->blockValues * info->blockBytes;
}

llvm::Error File::parseAll() {
  Cursor cursor(bytes);
  uint32_t magic;
  if (!cursor.read(magic) || std::memcmp(&magic, "GGUF", 4) != 0)
    return error("not a GGUF file (it does not start with \"GGUF\")");
  if (!cursor.read(version))
    return error("the file ends inside the header");
  if (version == 0x02000000 || version == 0x03000000)
    return error("a big-endian GGUF file; only little-endian files are read");
  if (version == 1)
    return error("GGUF version 1 is not supported (expected version 2 or 3; "
                 "rewrite the file with a current converter)");
  if (version != 2 && version != 3)
    return error("unknown GGUF version " + Twine(version) +
                 " (expected 2 or 3)");
  uint64_t tensorCount, kvCount;
  if (!cursor.read(tensorCount) || !cursor.read(kvCount))
    return error("the file ends inside the header");
  // A metadata entry takes at least 8 + 4 + 1 bytes, a tensor entry
  // 8 + 4 + 4 + 8: counts the file cannot hold are rejected up front.
  if (kvCount > cursor.remaining() / 13)
    return error("the header declares " + Twine(kvCount) +
                 " metadata entries, more than the file can hold");
  if (tensorCount > cursor.remaining() / 24)
    return error("the header declares " + Twine(tensorCount) +
                 " tensors, more than the file can hold");

  for (uint64_t k = 0; k < kvCount; ++k) {
    StringRef key;
    uint64_t at = cursor.offset();
    if (!cursor.readString(key))
      return error("metadata entry " + Twine(k) + " at offset " + Twine(at) +
                   ": the file ends inside its key");
    if (key.empty() || !llvm::json::isUTF8(key))
      return error("metadata entry " + Twine(k) + " at offset " + Twine(at) +
                   ": its key is " + (key.empty() ? "empty" : "not valid UTF-8"));
    uint32_t type;
    if (!cursor.read(type))
      return error("metadata key '" + key + "': the file ends inside it");
    if (!isKnownValueType(type))
      return error("metadata key '" + key + "' has an unknown value type " +
                   Twine(type));
    Value value;
    ValueParser parser(cursor);
    if (!parser.parse(static_cast<ValueType>(type), value, 0))
      return error("metadata key '" + key + "' (" +
                   valueTypeName(static_cast<ValueType>(type)) +
                   "): " + parser.problem);
    if (!values.try_emplace(key, std::move(value)).second)
      return error("metadata key '" + key + "' appears twice");
    keys.push_back(key.str());
  }

  if (const Value *align = lookup("general.alignment")) {
    if (!align->isInteger() || !align->hasUnsigned || align->u == 0 ||
        !llvm::isPowerOf2_64(align->u) || align->u > (1u << 20))
      return error("general.alignment must be a power of two up to 1 MiB");
    alignment = align->u;
  }

  // Data offsets as the table gives them: the data starts after the table.
  std::vector<uint64_t> dataOffsets;
  tensors.reserve(tensorCount);
  for (uint64_t t = 0; t < tensorCount; ++t) {
    Tensor tensor;
    uint64_t at = cursor.offset();
    if (!cursor.readString(tensor.name))
      return error("tensor " + Twine(t) + " at offset " + Twine(at) +
                   ": the file ends inside its name");
    if (tensor.name.empty() || !llvm::json::isUTF8(tensor.name))
      return error("tensor " + Twine(t) + " at offset " + Twine(at) +
                   ": its name is " +
                   (tensor.name.empty() ? "empty" : "not valid UTF-8"));
    auto fail = [&](const Twine &what) {
      return error("tensor '" + tensor.name + "' " + what);
    };
    uint32_t rank;
    if (!cursor.read(rank))
      return fail("is cut off by the end of the file");
    if (rank == 0 || rank > 4)
      return fail("has " + Twine(rank) + " dimensions (expected 1 to 4)");
    uint64_t count = 1;
    for (uint32_t d = 0; d < rank; ++d) {
      uint64_t dim;
      if (!cursor.read(dim))
        return fail("is cut off by the end of the file");
      if (dim == 0 || dim > (uint64_t(1) << 40) ||
          count > (uint64_t(1) << 48) / dim)
        return fail("has a dimension of " + Twine(dim) +
                    (dim == 0 ? "" : ", too large") );
      count *= dim;
      tensor.dims.push_back(static_cast<int64_t>(dim));
    }
    uint64_t offset;
    if (!cursor.read(tensor.type) || !cursor.read(offset))
      return fail("is cut off by the end of the file");
    std::string problem;
    std::optional<uint64_t> size =
        tensorBytes(tensor.type, count, tensor.dims[0], problem);
    if (!size)
      return fail(problem);
    if (offset % alignment != 0)
      return fail("has offset " + Twine(offset) + ", not a multiple of the " +
                  Twine(alignment) + "-byte alignment");
    tensor.size = *size;
    dataOffsets.push_back(offset);
    if (!tensorIndex.try_emplace(tensor.name, tensors.size()).second)
      return fail("appears twice");
    tensors.push_back(std::move(tensor));
  }

  uint64_t dataStart = llvm::alignTo(cursor.offset(), alignment);
  for (auto [tensor, offset] : llvm::zip(tensors, dataOffsets)) {
    if (dataStart > bytes.size() || offset > bytes.size() - dataStart ||
        tensor.size > bytes.size() - dataStart - offset)
      return error("tensor '" + tensor.name + "' (" +
                   tensorTypeName(tensor.type) + ", " + Twine(tensor.size) +
                   " bytes at data offset " + Twine(offset) +
                   ") lies outside the file (" + Twine(bytes.size()) +
                   " bytes; tensor data starts at " + Twine(dataStart) + ")");
    tensor.fileOffset = dataStart + offset;
    tensor.data = bytes.slice(tensor.fileOffset, tensor.size);
  }
  return llvm::Error::success();
}

const Value *File::lookup(StringRef key) const {
  auto it = values.find(key);
  return it == values.end() ? nullptr : &it->second;
}

const Tensor *File::findTensor(StringRef name) const {
  auto it = tensorIndex.find(name);
  return it == tensorIndex.end() ? nullptr : &tensors[it->second];
}

llvm::Expected<std::optional<int64_t>>
File::getOptionalInteger(StringRef key) const {
  const Value *v = lookup(key);
  if (!v)
    return std::nullopt;
  if (!v->isInteger() || !v->hasSigned)
    return error("metadata key '" + key + "' is " +
                 valueTypeName(v->type) + ", expected an integer");
  return v->i;
}

/// The value of an optional accessor, or an error naming `key` when the key
/// is missing.
template <typename T>
static llvm::Expected<T> required(const File &file, StringRef key,
                                  llvm::Expected<std::optional<T>> value) {
  if (!value)
    return value.takeError();
  if (!*value)
    return file.error("metadata key '" + key + "' is missing");
  return **value;
}

llvm::Expected<int64_t> File::getInteger(StringRef key) const {
  return required(*this, key, getOptionalInteger(key));
}

llvm::Expected<std::optional<double>> File::getOptionalFloat(StringRef key) const {
  const Value *v = lookup(key);
  if (!v)
    return std::nullopt;
  if (v->isFloat())
    return v->f;
  if (v->isInteger() && v->hasSigned)
    return static_cast<double>(v->i);
  return error("metadata key '" + key + "' is " + valueTypeName(v->type) +
               ", expected a number");
}

llvm::Expected<double> File::getFloat(StringRef key) const {
  return required(*this, key, getOptionalFloat(key));
}

llvm::Expected<std::optional<bool>> File::getOptionalBool(StringRef key) const {
  const Value *v = lookup(key);
  if (!v)
    return std::nullopt;
  if (v->type != ValueType::Bool)
    return error("metadata key '" + key + "' is " + valueTypeName(v->type) +
                 ", expected a bool");
  return v->u != 0;
}

llvm::Expected<std::optional<StringRef>>
File::getOptionalString(StringRef key) const {
  const Value *v = lookup(key);
  if (!v)
    return std::nullopt;
  if (v->type != ValueType::String)
    return error("metadata key '" + key + "' is " + valueTypeName(v->type) +
                 ", expected a string");
  return v->str;
}

llvm::Expected<StringRef> File::getString(StringRef key) const {
  return required(*this, key, getOptionalString(key));
}

llvm::Expected<std::vector<StringRef>>
File::getStringArray(StringRef key) const {
  const Value *v = lookup(key);
  if (!v)
    return error("metadata key '" + key + "' is missing");
  if (v->type != ValueType::Array || v->elementType != ValueType::String)
    return error("metadata key '" + key + "' is " + valueTypeName(v->type) +
                 (v->type == ValueType::Array
                      ? " of " + valueTypeName(v->elementType).str()
                      : std::string()) +
                 ", expected an array of strings");
  std::vector<StringRef> result;
  result.reserve(v->elements.size());
  for (const Value &e : v->elements)
    result.push_back(e.str);
  return result;
}

llvm::Expected<std::vector<int64_t>>
File::getIntegerArray(StringRef key) const {
  const Value *v = lookup(key);
  if (!v)
    return error("metadata key '" + key + "' is missing");
  if (v->type != ValueType::Array)
    return error("metadata key '" + key + "' is " + valueTypeName(v->type) +
                 ", expected an array of integers");
  std::vector<int64_t> result;
  result.reserve(v->elements.size());
  for (const Value &e : v->elements) {
    if (!e.isInteger() || !e.hasSigned)
      return error("metadata key '" + key +
                   "' holds a value that is not an integer in range");
    result.push_back(e.i);
  }
  return result;
}

llvm::Expected<std::vector<double>> File::getFloatArray(StringRef key) const {
  const Value *v = lookup(key);
  if (!v)
    return error("metadata key '" + key + "' is missing");
  if (v->type != ValueType::Array)
    return error("metadata key '" + key + "' is " + valueTypeName(v->type) +
                 ", expected an array of numbers");
  std::vector<double> result;
  result.reserve(v->elements.size());
  for (const Value &e : v->elements) {
    if (e.isFloat())
      result.push_back(e.f);
    else if (e.isInteger() && e.hasSigned)
      result.push_back(static_cast<double>(e.i));
    else
      return error("metadata key '" + key + "' holds a " +
                   valueTypeName(e.type) + ", expected numbers");
  }
  return result;
}
