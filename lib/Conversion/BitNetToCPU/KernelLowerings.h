//===- KernelLowerings.h - Lowerings to generated kernels -----*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#ifndef BITNET_CONVERSION_BITNETTOCPU_KERNELLOWERINGS_H
#define BITNET_CONVERSION_BITNETTOCPU_KERNELLOWERINGS_H

#include "bitnet/Dialect/BitNet/IR/BitNet.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/IR/BuiltinOps.h"

namespace mlir::bitnet {

/// How the dense kernels take a block of rows along K: `rows` rows at once,
/// `vectors` vectors of each row a step (accumulators a row), and how far
/// ahead of each row a token alone prefetches (`prefetch` bytes).
struct DenseBlockShape {
  int64_t rows, vectors, prefetch;
};

/// The CPU `module` is compiled for (#bitnet.target's chip, such as
/// "znver4"), or "" where it names none.
StringRef targetChip(ModuleOp module);

/// The block shape the dense kernel of `op` (the float kernel or the W8A8
/// one, by its weight's type) takes for the CPU `module` is compiled for
/// (vectors of `lanes` floats), where no measured one is given, for a
/// weight stored blocked (blockDenseWeight) or [N, K].
DenseBlockShape defaultDenseBlockShape(ModuleOp module, DenseMatmulOp op,
                                       int64_t lanes, bool blocked);

/// Whether `op`'s shapes are static and whole blocks of `rows` x `columns`
/// cover its weight.
bool denseBlocksCover(DenseMatmulOp op, int64_t rows, int64_t columns);

/// Whether the float kernel taking blocks of `shape` can read `op`'s weight
/// blocked: whole blocks of `shape.rows` rows by one step's columns
/// (`shape.vectors` vectors of `lanes`) cover it.
bool denseWeightBlocks(DenseMatmulOp op, int64_t lanes, DenseBlockShape shape);

/// A constant beside `weight` (an [N, K] constant whose blocks of `rows` x
/// `columns` cover it) holding it blocked, [N / rows, K / columns, rows,
/// columns], as `bitnet.embedding`'s `blocked` describes: one block of rows
/// is one run of memory, which a token's GEMV streams in order. Null if the
/// value is not dense elements (or a splat).
Value blockDenseWeight(arith::ConstantOp weight, int64_t rows, int64_t columns);

/// Replaces `op` (static shapes, constant weight) by a call to a kernel
/// generated for its shape with vectors of `lanes` floats, taking blocks of
/// `shape`; `extra` is added to the `bitnet.kernel` attribute of the call.
/// With `blockedWeight` (blockDenseWeight of the weight for `shape`), the
/// kernel reads that. Returns false and leaves `op` to the reference
/// lowering otherwise.
bool lowerDenseMatmulToKernel(ModuleOp module, DenseMatmulOp op, int64_t lanes,
                              DenseBlockShape shape,
                              ArrayRef<NamedAttribute> extra = {},
                              Value blockedWeight = {});

/// Replaces `op` (`quantize_input`: W8A8; static shapes, constant weight and
/// scales, K <= 65536) by a call to the AVX-512 VNNI kernel generated for
/// its shape, `blockRows` rows a block, each row's stream prefetched
/// `prefetch` bytes ahead (blocked: the block's stream that far ahead);
/// `extra` is added to the `bitnet.kernel` attribute of the call. With
/// `blockedWeight` (blockDenseWeight of the weight, `blockRows` x
/// denseW8A8BlockColumns()), the kernel reads that. Returns false and leaves
/// `op` to the reference lowering otherwise.
bool lowerDenseW8A8ToKernel(ModuleOp module, DenseMatmulOp op,
                            int64_t blockRows, int64_t prefetch,
                            ArrayRef<NamedAttribute> extra = {},
                            Value blockedWeight = {});

/// The columns of a W8A8 kernel's block (one `vpdpbusd` of each row), and
/// whether it can read `op`'s weight blocked, `blockRows` rows by those
/// columns: static shapes, whole blocks cover it.
int64_t denseW8A8BlockColumns();
bool denseW8A8WeightBlocks(DenseMatmulOp op, int64_t blockRows);

/// Replaces `op` (static shapes, head dim a multiple of `lanes`) by the cache
/// update in tensor IR and a call to an attention kernel generated for its
/// shape. Returns false and leaves `op` to the reference lowering otherwise.
bool lowerAttentionToKernel(ModuleOp module, AttentionOp op, int64_t lanes);

/// Lowers `bitnet.batched_attention` to the same kernel over B cache slots
/// (false: the reference lowering handles it).
bool lowerBatchedAttentionToKernel(ModuleOp module, BatchedAttentionOp op,
                                   int64_t lanes);

/// Replaces `op` (static f32 shape) by a call to an RMSNorm kernel generated
/// for its shape, which also forms relu(g)^2 * u when that is its input (the
/// product and the squared ReLU are erased). Returns false and leaves `op`
/// to the reference lowering otherwise.
bool lowerRMSNormToKernel(ModuleOp module, RMSNormOp op);

/// Whether the AVX-512 MAD kernel of `m` tokens and `k` columns runs its
/// prefill loop (codes unpacked once per call, passes of 12 tokens).
bool madUsesPrefillLoop(int64_t m, int64_t k);

/// Bytes of the LUT layout of an `n x k` ternary weight (5 bits per three
/// weights, padded to 64 rows x 12 columns).
int64_t lutWeightBytes(int64_t n, int64_t k);

/// Whether the LUT kernel of `m` tokens and `k` columns decodes its weights
/// once per call into int8 dot products (prefill-sized steps), instead of
/// looking up tables token by token.
bool lutUsesUnpackLoop(int64_t m, int64_t k);

/// Replaces `op` (static shapes; `weights` its constant ternary weight,
/// row-major) by a call to the AVX-512 VBMI/VNNI table-lookup kernel
/// generated for its shape; `choice` is recorded on the call as
/// `bitnet.kernel`.
void lowerBitLinearToLUTKernel(ModuleOp module, BitLinearOp op,
                               ArrayRef<int8_t> weights,
                               int64_t prefetchDistance,
                               ArrayRef<NamedAttribute> choice);

} // namespace mlir::bitnet

#endif // BITNET_CONVERSION_BITNETTOCPU_KERNELLOWERINGS_H
