//===- SafeTensors.h - Reads safetensors checkpoints ------------*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// Memory-mapped safetensors files (an 8-byte little-endian header length, a
// JSON header naming each tensor's dtype, shape and byte range, then the
// data), alone or as the shards of a Hugging Face checkpoint listed in
// `model.safetensors.index.json`. Every header entry is checked against the
// file (dtype known, shape and byte range consistent, range inside the data)
// before a byte of data is read; errors name the file and the tensor.
//
//===----------------------------------------------------------------------===//

#ifndef BITNET_IMPORT_HF_SAFETENSORS_H
#define BITNET_IMPORT_HF_SAFETENSORS_H

#include "bitnet/Import/Checkpoint/TensorData.h"

#include "mlir/Support/LLVM.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/MemoryBuffer.h"

#include <memory>
#include <string>
#include <vector>

namespace mlir::bitnet::safetensors {

/// Element types of safetensors that the importer reads.
enum class DType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, Bool };

/// The dtype's name as safetensors writes it ("BF16").
StringRef dtypeName(DType type);
/// Bytes per element.
int64_t dtypeBytes(DType type);

/// One tensor: shape outermost first, bytes inside the mapping.
struct Tensor {
  std::string name;
  DType dtype = DType::F32;
  SmallVector<int64_t, 4> shape;
  ArrayRef<uint8_t> data;
  /// The file holding it, for errors.
  StringRef path;

  int64_t numElements() const;
};

/// One mapped safetensors file.
class File : public CheckpointBytes {
public:
  static llvm::Expected<std::unique_ptr<File>> open(StringRef path);
  /// Checks a file held in memory; the buffer must outlive the result.
  static llvm::Expected<std::unique_ptr<File>> parse(llvm::MemoryBufferRef buffer);

  StringRef getPath() const { return path; }
  ArrayRef<Tensor> getTensors() const { return tensors; }
  const Tensor *find(StringRef name) const;
  /// The header's `__metadata__` (string to string).
  const llvm::StringMap<std::string> &getMetadata() const { return metadata; }

private:
  friend class CheckpointBytes;
  File() = default;
  llvm::Error parseAll();

  std::vector<Tensor> tensors;
  llvm::StringMap<size_t> index;
  llvm::StringMap<std::string> metadata;
};

/// The weights of a checkpoint directory: `model.safetensors`, or the shards
/// named by `model.safetensors.index.json` (each file opened once; a tensor
/// must be in the shard the index names; shards may not leave the folder).
class Checkpoint {
public:
  static llvm::Expected<std::unique_ptr<Checkpoint>> openDirectory(StringRef dir);

  /// The tensor `name`, or nothing.
  const Tensor *find(StringRef name) const;
  /// All tensor names, sorted.
  std::vector<std::string> names() const;
  /// Total bytes of the mapped files.
  uint64_t totalBytes() const;

private:
  std::vector<std::unique_ptr<File>> files;
  llvm::StringMap<const Tensor *> tensors;
};

/// A float tensor (F32, F16, BF16, F64) widened to f32; F16 and BF16 kept as
/// stored when `keepHalf`. Values that are not finite are an error.
llvm::Expected<FloatTensor> decodeFloat(const Tensor &tensor,
                                        bool keepHalf = false);

} // namespace mlir::bitnet::safetensors

#endif // BITNET_IMPORT_HF_SAFETENSORS_H
