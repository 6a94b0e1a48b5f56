//===- TensorData.h - Tensors read from checkpoint files --------*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// What the checkpoint readers (GGUF, safetensors) hand to the architecture
// mapping: float tensors widened to f32 or kept as f16 bits, and ternary
// matrices as int8 codes with one scale per tensor.
//
//===----------------------------------------------------------------------===//

#ifndef BITNET_IMPORT_CHECKPOINT_TENSORDATA_H
#define BITNET_IMPORT_CHECKPOINT_TENSORDATA_H

#include "bitnet/Reference/Numerics.h"

#include "llvm/ADT/SmallVector.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/MemoryBuffer.h"

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace mlir::bitnet {

using ::bitnet::ref::bf16ToFloat;
using ::bitnet::ref::halfToFloat;

/// `value` with the digits that tell it apart from its neighbours ("%.9g"),
/// for messages.
inline std::string printFloat(float value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.9g", static_cast<double>(value));
  return text;
}

/// Maps the file at `path` read-only (memory-mapped where the system allows:
/// a model file is large and mostly tensor data, visited once); an error
/// "cannot read '<path>': <reason>".
llvm::Expected<std::unique_ptr<llvm::MemoryBuffer>>
mapCheckpointFile(llvm::StringRef path);

/// Tells the kernel that the mapped file pages of [data, data + size) are
/// not needed any more: a checkpoint's tensors are read once, and dropping
/// their clean pages keeps the importer's resident memory near the size of
/// what it built, not that plus the file. Pages that only partly belong to
/// the range are kept. Does nothing where the system has no madvise.
void releaseMappedPages(const void *data, size_t size);

/// The bytes of a checkpoint file, mapped from disk or borrowed from a
/// buffer; the file formats (GGUF, safetensors) derive from it, declare it a
/// friend, and check their bytes in `parseAll()`.
class CheckpointBytes {
public:
  /// An error "<file>: <message>".
  llvm::Error error(const llvm::Twine &message) const {
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   path + ": " + message);
  }

protected:
  /// Maps `path` and checks it as a `FileT`.
  template <typename FileT>
  static llvm::Expected<std::unique_ptr<FileT>> openAs(llvm::StringRef path) {
    llvm::Expected<std::unique_ptr<llvm::MemoryBuffer>> buffer =
        mapCheckpointFile(path);
    if (!buffer)
      return buffer.takeError();
    llvm::Expected<std::unique_ptr<FileT>> file =
        parseAs<FileT>((*buffer)->getMemBufferRef());
    if (file)
      (*file)->owned = std::move(*buffer);
    return file;
  }

  /// Checks the bytes of `buffer` (which must outlive the result) as a
  /// `FileT`; its identifier labels errors.
  template <typename FileT>
  static llvm::Expected<std::unique_ptr<FileT>>
  parseAs(llvm::MemoryBufferRef buffer) {
    std::unique_ptr<FileT> file(new FileT());
    file->path = buffer.getBufferIdentifier().str();
    file->bytes = llvm::ArrayRef<uint8_t>(
        reinterpret_cast<const uint8_t *>(buffer.getBufferStart()),
        buffer.getBufferSize());
    if (llvm::Error err = file->parseAll())
      return std::move(err);
    return std::move(file);
  }

  std::string path;
  std::unique_ptr<llvm::MemoryBuffer> owned;
  llvm::ArrayRef<uint8_t> bytes;
};

/// A float tensor: values widened to f32, or the 16-bit floats as stored,
/// f16 or bf16 (an embedding stays as it is stored, at no cost in
/// precision).
struct FloatTensor {
  /// The tensor's name in its file, for errors.
  std::string name;
  llvm::SmallVector<int64_t, 4> shape;
  std::vector<float> f32;
  /// The bits of f16 values, or of bf16 ones where `brain` is set.
  std::vector<uint16_t> half;
  bool brain = false;
  bool isHalf() const { return !half.empty(); }
  /// `half` as f32 (exactly).
  std::vector<float> widenHalf() const;
  /// Whether every value is finite.
  bool allFinite() const;
};

/// A ternary matrix `rows x cols` (outputs x inputs): codes in {-1, 0, 1},
/// row-major, and the scale s_w that multiplies them.
struct TernaryMatrix {
  /// The tensor's name in its file, for errors.
  std::string name;
  int64_t rows = 0, cols = 0;
  std::vector<int8_t> values;
  float scale = 1.0f;
};

} // namespace mlir::bitnet

#endif // BITNET_IMPORT_CHECKPOINT_TENSORDATA_H
