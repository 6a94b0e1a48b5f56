//===- GPUKernels.h - gpu.func kernels specialised per shape ----*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// The NVIDIA kernels of bitnet-lower-to-gpu, each built as a gpu.func in a
// gpu.module with the shapes baked in, and the compile-time weight layout of
// the W2A8 GEMV/GEMM kernel. The definitions are split by kernel family
// under lib/Conversion/BitNetToGPU: GPUQuantKernels.cpp (quantisation,
// RMSNorm), GPUGemvKernels.cpp (the layout, GEMV/GEMM),
// GPUAttentionKernels.cpp (rope, KV cache, attention) and
// GPUElementwiseKernels.cpp (embedding, dense head, positions, elementwise).
//
// GEMV layout. K is cut into chunks of 64 values (16 bytes of 2-bit codes
// c = w + 1). A warp owns RG consecutive rows ("rows per warp", chosen per
// shape so that K needs little padding); lane l works on row l mod RG and on
// chunk l / RG of each step, so every step is one 512-byte contiguous,
// coalesced load per warp (four 128-byte lines):
//
//   bytes[N / RG groups][KCp chunks][RG rows][16]
//
// Within a chunk, bits [2j, 2j+2) of byte 4 wi + q hold the code of column
// 16 wi + 4 j + q, so `(word >> 2j) & 0x03030303` gives the four unsigned
// codes that line up with one 32-bit word of int8 activations: one
// dp4a.u32.s32 each. With x quantised per token into a zero-padded row, its
// integer sum s gives sum(w * x) = sum(c * x) - s.
//
//===----------------------------------------------------------------------===//

#ifndef BITNET_CONVERSION_GPUKERNELS_H
#define BITNET_CONVERSION_GPUKERNELS_H

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Support/LLVM.h"

#include <array>
#include <string>
#include <vector>

namespace mlir::bitnet {

/// Values of K per 16-byte chunk of the GEMV layout.
inline constexpr int64_t kGPUChunkValues = 64;
/// Tokens one GEMV block handles; more tokens make a GEMM of token blocks.
inline constexpr int64_t kGPUMaxGemvTokens = 8;
/// Warps per GEMV block.
inline constexpr int64_t kGPUGemvWarps = 4;
/// Weight loads a GEMV lane issues before it uses the first of them: the
/// steps of the K loop go in batches of this many, each batch's 16-byte
/// loads first, so that a lane keeps up to 128 bytes of weights in flight
/// instead of waiting for each load in turn.
inline constexpr int64_t kGPUGemvLoadsInFlight = 8;

/// The GEMV layout chosen for one (M, N, K).
struct GPUGemvLayout {
  int64_t rowsPerWarp = 1;    ///< RG: 1, 2, 4, ..., 32
  int64_t chunks = 0;         ///< ceil(K / 64)
  int64_t paddedChunks = 0;   ///< KCp: chunks padded to a multiple of 32 / RG
  int64_t groups = 0;         ///< ceil(N / RG)
  int64_t tokensPerBlock = 1; ///< tokens per block (grid y)
  int64_t tokenBlocks = 1;    ///< ceil(M / tokensPerBlock)

  int64_t weightBytes() const { return groups * paddedChunks * rowsPerWarp * 16; }
  /// Chunks of one quantised token row (K zero-padded): KCp, or more when
  /// layers of other layouts share the quantised input (the largest KCp).
  int64_t xRowChunks = 0;

  /// Bytes of one quantised token row.
  int64_t xRowBytes() const { return xRowChunks * kGPUChunkValues; }
  /// Tokens of the quantised activations, padded to whole token blocks.
  int64_t paddedTokens() const { return tokenBlocks * tokensPerBlock; }
};

/// Weight bytes a W2A8 launch should keep in flight to fill the memory
/// pipe of the GPUs it targets (bandwidth x latency: about 3.35 TB/s x
/// 0.8 us on an H100, 4.8 TB/s on an H200, 2 TB/s on an A100).
inline constexpr int64_t kGPUGemvBytesInFlight = 4 << 20;

/// Whether `rows` is a weight-rows-per-warp count the W2A8 kernels take (1,
/// 2, 4, 8, 16 or 32), or 0 (chosen per shape).
inline bool isValidGemvRows(int64_t rows) {
  return rows == 0 || (rows >= 1 && rows <= 32 && (rows & (rows - 1)) == 0);
}

/// Picks the layout of an M x K by N x K ternary product: the rows per
/// warp whose estimated time is least, where the time is the weight bytes
/// read (padding of K and N included) over the share of
/// kGPUGemvBytesInFlight that the launch's warps keep in flight (capped at
/// 1, and at the whole matrix for a small one). Fewer rows win ties within
/// 2%. `rows` (1, 2, 4, 8, 16 or 32) forces the rows per warp instead.
GPUGemvLayout chooseGemvLayout(int64_t m, int64_t n, int64_t k,
                               int64_t rows = 0);

/// Lays out `n x k` ternary values (row-major int8 in {-1, 0, 1}).
std::vector<int8_t> layoutGemvWeights(ArrayRef<int8_t> w, int64_t n,
                                      int64_t k, const GPUGemvLayout &layout);

/// One kernel: its gpu.func and how it is launched.
///
/// Every function below that returns a GPUKernel builds the kernel at the
/// end of `module`, unless the module already has a kernel of its name
/// (the same kernel launched again), and returns it in `func`.
struct GPUKernel {
  std::string name;
  gpu::GPUFuncOp func; ///< the kernel, in the module given
  std::array<int64_t, 3> grid{1, 1, 1};
  std::array<int64_t, 3> block{1, 1, 1};
  int64_t bytes = 0; ///< memory traffic, for profiling
  int64_t flops = 0;
};

/// Per-token quantisation of `m x k` f32 to int8 rows of `rowStride` bytes
/// (zero-padded), the rows' integer sums and scales, for `paddedTokens`
/// tokens (tokens past m are zero).
/// (%x: f32[m*k], %xq: i8[paddedTokens*rowStride], %xs: i32[paddedTokens],
///  %sx: f32[paddedTokens])
GPUKernel quantizeKernel(gpu::GPUModuleOp module, int64_t m, int64_t k,
                         int64_t rowStride, int64_t paddedTokens);

/// The W2A8 GEMV (m <= 8) or GEMM (token blocks of 8) in `layout`; with
/// `residual`, y = the product + %r, added after the product is rounded to
/// f32 as an add kernel would.
/// (%w: i8[weightBytes], %xq, %xs, %sx as quantizeKernel, %ws: f32[1],
///  [%r: f32[m*n],] %y: f32[m*n])
GPUKernel gemvKernel(gpu::GPUModuleOp module, int64_t m, int64_t n, int64_t k,
                     const GPUGemvLayout &layout, bool residual = false);

/// RMSNorm of `rows x d`. (%x: f32[rows*d], %gamma: f32[d], %y: f32[rows*d])
GPUKernel rmsnormKernel(gpu::GPUModuleOp module, int64_t rows, int64_t d,
                        float eps);

/// RMSNorm of `m x k` then quantizeKernel of its output, in one kernel: the
/// normalised rows are recomputed (the same f32 operations as
/// rmsnormKernel) instead of stored and read back. `gated`: the RMSNorm's
/// input is relu(gate)^2 * up, also computed in the kernel (the FFN's
/// sub-norm before down), with the operations of the squared-ReLU and
/// multiply kernels.
/// (%x: f32[m*k] or %gate, %up: f32[m*k], %gamma: f32[k], then %xq, %xs,
///  %sx as quantizeKernel)
GPUKernel rmsnormQuantizeKernel(gpu::GPUModuleOp module, int64_t m, int64_t k,
                                float eps, int64_t rowStride,
                                int64_t paddedTokens, bool gated = false);

/// Rotary embedding of `tokens x heads x dim` f32 rows by one position per
/// token (`positionType` i32 or i64), pairs (i, i + D/2) or, `interleaved`,
/// (2i, 2i + 1); one thread per pair.
/// (%x: f32[t*h*d], %pos: positionType[t], %freq: f32[d/2], %y: f32[t*h*d])
GPUKernel ropeKernel(gpu::GPUModuleOp module, int64_t tokens, int64_t heads,
                     int64_t dim, bool interleaved, StringRef positionType);

/// The shape of one bitnet.attention on the GPU.
struct GPUAttentionShape {
  int64_t tokens, heads, kvHeads, dim, capacity;
  float scale;
  std::string cacheType;    ///< f32 or f16
  std::string positionType; ///< i32 or i64
};

/// One rotary embedding: rows of `tokens x heads x dim`, pairs (i, i + D/2)
/// or, `interleaved`, (2i, 2i + 1), positions of `positionType` per token.
struct RopeSpec {
  int64_t tokens, heads, dim;
  bool interleaved;
  std::string positionType;
};

/// ropeKernel of the query into %qr and of the key, then cacheUpdateKernel
/// of the rotated key and the value, in one kernel: the rotated key rows go
/// straight into the key cache. The same operations as the three kernels.
/// (%q: f32[t*h*d], %k, %v: f32[t*hkv*d], %qpos, %kpos: positions[t],
///  %qfreq, %kfreq: f32[d/2], %qr: f32[t*h*d], %kc, %vc, %pos as
///  cacheUpdateKernel)
GPUKernel ropeCacheUpdateKernel(gpu::GPUModuleOp module,
                                const GPUAttentionShape &shape,
                                const RopeSpec &q, const RopeSpec &k);

/// Writes the `tokens` new key and value rows into both caches, in place, at
/// rows [p, p + tokens) with p = clamp(position, 0, capacity - tokens),
/// rounded to the cache type; one thread per element.
/// (%k: f32[t*hkv*d], %v: f32[t*hkv*d], %kc: cache[c*hkv*d], %vc: cache[...],
///  %pos: positionType[1])
GPUKernel cacheUpdateKernel(gpu::GPUModuleOp module,
                            const GPUAttentionShape &shape);

/// Causal grouped-query attention over the updated caches: one block per
/// (token, query head) scores the visible rows j <= p + token, a warp per
/// key row with its lanes over consecutive features (coalesced reads; the
/// scores kept in `%scores`, tokens*heads*capacity floats of scratch),
/// takes the softmax and the weighted sum of value rows, a thread per
/// feature.
/// (%q: f32[t*h*d], %kc, %vc, %pos as cacheUpdateKernel,
///  %scores: f32[t*h*c], %out: f32[t*h*d])
GPUKernel attentionKernel(gpu::GPUModuleOp module,
                          const GPUAttentionShape &shape);

/// Rows of a `vocab x dim` table (`tableType` f32, f16 or i8, the last with
/// one f32 scale per row) for `tokens` ids (`idType` i32 or i64; negative
/// ids count from the end, then clamped into the table); one thread per
/// output element.
/// (%table: tableType[v*d], %ids: idType[t][, %scales: f32[v]], %y: f32[t*d])
GPUKernel embeddingKernel(gpu::GPUModuleOp module, int64_t tokens,
                          int64_t vocab, int64_t dim, StringRef tableType,
                          StringRef idType, bool scaled);

/// y[m, n] = sum_k x[m, k] * float(w[n, k]) (times scales[n] for an i8
/// weight): one warp per row of the weight, read once with coalesced loads
/// for all `m` tokens.
/// (%x: f32[m*k], %w: weightType[n*k][, %scales: f32[n]], %y: f32[m*n])
GPUKernel denseKernel(gpu::GPUModuleOp module, int64_t m, int64_t n, int64_t k,
                      StringRef weightType, bool scaled);

/// The positions of a step's tokens: y[i] = start[0] + i (`type` i32 or
/// i64). (%start: type[1], %y: type[count])
GPUKernel positionRangeKernel(gpu::GPUModuleOp module, int64_t count,
                              StringRef type);

enum class ElementwiseKind { SquaredRelu, Add, Mul, Copy };
/// (%a[, %b], %y), all f32[count].
GPUKernel elementwiseKernel(gpu::GPUModuleOp module, ElementwiseKind kind,
                            int64_t count);

} // namespace mlir::bitnet

#endif // BITNET_CONVERSION_GPUKERNELS_H
