//===- ModelABI.h - The compiler's side of the model ABI --------*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// Constants of runtime/include/bitnet_rt/model_abi.h that generated code
// depends on. The compiler does not include runtime headers; the end-to-end
// tests check that both sides agree.
//
//===----------------------------------------------------------------------===//

#ifndef BITNET_TRANSFORMS_MODELABI_H
#define BITNET_TRANSFORMS_MODELABI_H

#include "llvm/ADT/StringRef.h"

#include <cstdint>

namespace mlir::bitnet::abi {

/// bitnet_model_info.magic ("BTNM") and abi_version.
inline constexpr uint32_t kModelMagic = 0x4d4e5442u;
inline constexpr uint32_t kModelAbiVersion = 7u;

/// bitnet_tensor_info.flags: an input the run updates in place.
inline constexpr int32_t kTensorState = 1;
/// bitnet_tensor_info.flags: an integer input whose values must lie in
/// [min_value, max_value].
inline constexpr int32_t kTensorRange = 2;

/// The trailer that ends a linked model file: this magic, then the byte
/// count before the trailer and their XXH64 checksum (little-endian uint64).
inline constexpr llvm::StringLiteral kTrailerMagic = "BTNMSUM1";
static_assert(kTrailerMagic.size() == 8);

/// Module attribute listing a model's other entries, compiled apart and
/// linked into the same shared object: an array of dictionaries
/// {name, info, run, stack_bytes} (bitnet-emit-entry-point).
inline constexpr llvm::StringLiteral kEntriesAttrName = "bitnet.entries";

/// The thread-local through which generated kernels find the caller's
/// bitnet_exec_ctx during a run (set by bitnet_model_run).
inline constexpr llvm::StringLiteral kExecCtxGlobal = "__bitnet_exec_ctx";

/// Byte offsets of bitnet_exec_ctx fields on 64-bit targets.
inline constexpr int64_t kCtxNumThreadsOffset = 4;
inline constexpr int64_t kCtxUserOffset = 8;
inline constexpr int64_t kCtxParallelForOffset = 16;
inline constexpr int64_t kCtxKernelBeginOffset = 24;
inline constexpr int64_t kCtxKernelEndOffset = 32;

} // namespace mlir::bitnet::abi

#endif // BITNET_TRANSFORMS_MODELABI_H
