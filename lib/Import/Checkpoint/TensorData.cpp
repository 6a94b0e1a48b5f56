//===- TensorData.cpp - Tensors read from checkpoint files ----------------===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#include "bitnet/Import/Checkpoint/TensorData.h"

#include <cmath>

#if defined(__unix__) || defined(__APPLE__)
#include <sys/mman.h>
#include <unistd.h>
#endif

llvm::Expected<std::unique_ptr<llvm::MemoryBuffer>>
mlir::bitnet::mapCheckpointFile(llvm::StringRef path) {
  llvm::ErrorOr<std::unique_ptr<llvm::MemoryBuffer>> buffer =
      llvm::MemoryBuffer::getFile(path, /*IsText=*/false,
                                  /*RequiresNullTerminator=*/false);
  if (!buffer)
    return llvm::createStringError(buffer.getError(),
                                   "cannot read '" + path + "': " +
                                       buffer.getError().message());
  return std::move(*buffer);
}

void mlir::bitnet::releaseMappedPages(const void *data, size_t size) {
#if defined(__unix__) || defined(__APPLE__)
  static const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  uintptr_t begin = reinterpret_cast<uintptr_t>(data);
  uintptr_t end = begin + size;
  begin = (begin + page - 1) / page * page;
  end = end / page * page;
  if (end > begin)
    (void)madvise(reinterpret_cast<void *>(begin), end - begin, MADV_DONTNEED);
#else
  (void)data;
  (void)size;
#endif
}

std::vector<float> mlir::bitnet::FloatTensor::widenHalf() const {
  std::vector<float> values(half.size());
  for (size_t i = 0; i < half.size(); ++i)
    values[i] = brain ? bf16ToFloat(half[i]) : halfToFloat(half[i]);
  return values;
}

bool mlir::bitnet::FloatTensor::allFinite() const {
  for (float v : f32)
    if (!std::isfinite(v))
      return false;
  // An exponent of all ones is an infinity or a NaN.
  uint16_t exponent = brain ? 0x7f80 : 0x7c00;
  for (uint16_t h : half)
    if ((h & exponent) == exponent)
      return false;
  return true;
}
