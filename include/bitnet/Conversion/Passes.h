//===- Passes.h - Conversion passes of bitnet -------------------*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#ifndef BITNET_CONVERSION_PASSES_H
#define BITNET_CONVERSION_PASSES_H

#include "bitnet/Dialect/BitNet/IR/BitNet.h"
#include "bitnet/Dialect/BitNet/IR/EnumOptions.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

namespace mlir {
class RewritePatternSet;
class TypeConverter;
} // namespace mlir

namespace mlir::bitnet {

#define GEN_PASS_DECL
#include "bitnet/Conversion/Passes.h.inc"

/// Bytes ahead of its weight stream a bitlinear kernel of `family` (MAD or
/// LUT) prefetches on the CPU `chip` (#bitnet.target's, such as "znver4")
/// where bitnet-lower-to-cpu-kernels' prefetch-distance is not given: none
/// for the MAD kernels on an AMD Zen 4, whose own prefetchers keep up with
/// that stream, 4096 bytes otherwise.
int64_t defaultPrefetchDistance(StringRef chip, KernelFamily family);

/// Converts `!bitnet.ternary` to its storage tensor, everything else to itself.
void populateBitNetToLinalgTypeConversion(TypeConverter &converter);

/// The KV-cache update of `bitnet.attention` in tensor IR, shared by the
/// reference lowering and the CPU kernels: `position` clamped into
/// [0, C - S] (as an index), and the caches with the S new rows of `key` and
/// `value` written there (rounded to the caches' element type). Bufferization
/// does the inserts in place.
struct AttentionCacheUpdate {
  Value position;
  Value kCache, vCache;
};
AttentionCacheUpdate buildAttentionCacheUpdate(OpBuilder &b, Location loc,
                                               Value key, Value value,
                                               Value kCache, Value vCache,
                                               Value position);

/// The KV-cache update of `bitnet.batched_attention` in tensor IR: each
/// token's key and value rows written at (its slot, its position clamped
/// into [0, C - 1]) in order, rounded to the caches' element type; padding
/// tokens (a slot outside [0, B)) write nothing. Returns the updated caches.
std::pair<Value, Value> buildBatchedAttentionCacheUpdate(
    OpBuilder &b, Location loc, Value key, Value value, Value kCache,
    Value vCache, Value positions, Value slots);

/// Replaces `op` by its reference form: a loop over its tokens, each a
/// one-token `bitnet.attention` on its slot of the caches (a zero row for a
/// padding token).
void decomposeBatchedAttention(BatchedAttentionOp op);

/// The inverse frequencies of `bitnet.rope`, theta^(-2i / D) for the D / 2
/// pairs, computed once at compile time in single precision; the reference
/// lowering and the GPU kernel use the same table.
SmallVector<float> ropeInverseFrequencies(float theta, int64_t headDim);

/// Adds the patterns that lower every bitnet op to linalg/arith/math/tensor.
void populateBitNetToLinalgPatterns(const TypeConverter &converter,
                                    RewritePatternSet &patterns);

#define GEN_PASS_REGISTRATION
#include "bitnet/Conversion/Passes.h.inc"

} // namespace mlir::bitnet

#endif // BITNET_CONVERSION_PASSES_H
