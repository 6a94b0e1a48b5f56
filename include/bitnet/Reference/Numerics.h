//===- Numerics.h - Scalar reference of the numerics contract ---*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// One plain, scalar implementation of every bitnet op, written straight from
// the numerics contract (dialects/.../BitNetDialect.td, DESIGN.md). Every
// kernel on every target is tested against these functions: integer results
// must match bit for bit, float results within the tolerance each test states.
// No dependency on MLIR or LLVM; all tensors are dense and row-major.
//
//===----------------------------------------------------------------------===//

#ifndef BITNET_REFERENCE_NUMERICS_H
#define BITNET_REFERENCE_NUMERICS_H

#include <cstdint>
#include <vector>

namespace bitnet::ref {

/// Round half to even (0.5 -> 0, 1.5 -> 2, 2.5 -> 2, -2.5 -> -2).
float roundHalfEven(float x);

/// IEEE half (binary16) bits to float, exactly.
float halfToFloat(uint16_t bits);

/// bfloat16 bits to float, exactly.
float bf16ToFloat(uint16_t bits);

/// Per-token absmax quantisation of `tokens x k` activations.
struct QuantizedActivations {
  std::vector<int8_t> values; ///< tokens x k, clamp(round(x * scale), -128, 127)
  std::vector<float> scale;   ///< tokens, 127 / max(max|x|, 1e-5)
};
QuantizedActivations quantizeActivations(const float *x, int64_t tokens,
                                         int64_t k);

/// Absmean ternarisation of a whole tensor of `count` values.
struct TernaryWeights {
  std::vector<int8_t> values; ///< clamp(round(w / scale), -1, 1)
  float scale;                ///< max(mean|w|, 1e-5), mean summed in double
};
TernaryWeights ternarize(const float *w, int64_t count);

/// acc[m][n] = sum_k xq[m][k] * w[n][k], exact in int32.
std::vector<int32_t> ternaryMatmul(const int8_t *xq, const int8_t *w,
                                   int64_t m, int64_t n, int64_t k);

/// A BitLinear layer: y = (float(acc) * weightScale) / s_x per token.
std::vector<float> bitlinear(const float *x, const int8_t *w,
                             float weightScale, int64_t m, int64_t n,
                             int64_t k);

/// A W8A8 dense layer (bitnet.dense_matmul with quantize_input): int8
/// weights `w` [n][k] with one scale per row, the input quantised per token
/// as activations; y = (float(acc) * rowScales[n]) / s_x.
std::vector<float> denseW8A8(const float *x, const int8_t *w,
                             const float *rowScales, int64_t m, int64_t n,
                             int64_t k);

/// x * rsqrt(mean(x^2) + eps) * gamma over rows of length d.
std::vector<float> rmsnorm(const float *x, const float *gamma, int64_t rows,
                           int64_t d, float eps);

/// max(x, 0)^2.
std::vector<float> squaredRelu(const float *x, int64_t count);

/// Rotary embedding of `tokens x heads x d` with one position per token.
std::vector<float> rope(const float *x, const int64_t *positions,
                        int64_t tokens, int64_t heads, int64_t d, float theta,
                        bool interleaved);

/// Causal grouped-query attention that first writes `key`/`value` into the
/// caches at rows [position, position + tokens). Shapes as bitnet.attention:
/// q [tokens, heads, d], k/v [tokens, kvHeads, d], caches [capacity, kvHeads, d].
/// The caches are updated in place; the output is returned.
std::vector<float> attention(const float *q, const float *k, const float *v,
                             float *kCache, float *vCache, int64_t position,
                             int64_t tokens, int64_t heads, int64_t kvHeads,
                             int64_t d, int64_t capacity, float scale);

/// bitnet.embedding: rows of `table` [vocab, d] for `tokens` ids (negative
/// ids count from the end, then clamped into [0, vocab - 1]).
std::vector<float> embedding(const float *table, int64_t vocab, int64_t d,
                             const int32_t *tokens, int64_t count);

/// bitnet.dense_matmul: y[m, n] = sum_k x[m, k] * w[n, k], summed in double
/// and rounded once (kernels sum floats in another order: compare within a
/// tolerance).
std::vector<float> denseMatmul(const float *x, const float *w, int64_t m,
                               int64_t n, int64_t k);

/// What `--float-weights=int8` stores: each row quantised to int8 with scale
/// absmax / 127 (1 for an all-zero row), round half to even. Returns the
/// dequantised rows, float(q) * scale.
std::vector<float> int8Rows(const float *w, int64_t rows, int64_t cols);

/// Packs `rows x cols` ternary values 4 per byte (code w + 1 at bits 2t).
std::vector<uint8_t> packI2(const int8_t *w, int64_t rows, int64_t cols);
/// Packs `rows x cols` ternary values 5 per byte (sum (w_t + 1) 3^t).
std::vector<uint8_t> packBase3(const int8_t *w, int64_t rows, int64_t cols);

} // namespace bitnet::ref

#endif // BITNET_REFERENCE_NUMERICS_H
