//===- Numerics.cpp - Scalar reference of the numerics contract -*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#include "bitnet/Reference/Numerics.h"

#include <algorithm>
#include <cfenv>
#include <cmath>
#include <cstring>
#include <limits>

namespace bitnet::ref {

float roundHalfEven(float x) {
  // nearbyint rounds in the current mode, which is to-nearest-even unless a
  // caller changed it; say so rather than assume.
  int mode = std::fegetround();
  if (mode != FE_TONEAREST)
    std::fesetround(FE_TONEAREST);
  float r = std::nearbyint(x);
  if (mode != FE_TONEAREST)
    std::fesetround(mode);
  return r;
}

float halfToFloat(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000) << 16;
  uint32_t exponent = (h >> 10) & 0x1f;
  uint32_t mantissa = h & 0x3ff;
  uint32_t bits;
  if (exponent == 0x1f) {
    bits = sign | 0x7f800000u | (mantissa << 13);
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    bits = sign;
  } else {
    // A subnormal half is a normal float: shift the mantissa up.
    int shift = 0;
    while (!(mantissa & 0x400)) {
      mantissa <<= 1;
      ++shift;
    }
    mantissa &= 0x3ff;
    bits = sign | (uint32_t(113 - shift) << 23) | (mantissa << 13);
  }
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

float bf16ToFloat(uint16_t b) {
  uint32_t bits = uint32_t(b) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

static float clampf(float v, float lo, float hi) {
  // NaN goes to `lo`, as the compiled code's maxnum/minnum does.
  if (!(v >= lo))
    return lo;
  return v > hi ? hi : v;
}

QuantizedActivations quantizeActivations(const float *x, int64_t tokens,
                                         int64_t k) {
  QuantizedActivations out;
  out.values.resize(tokens * k);
  out.scale.resize(tokens);
  for (int64_t t = 0; t < tokens; ++t) {
    float amax = 0.0f;
    for (int64_t i = 0; i < k; ++i)
      amax = std::max(amax, std::fabs(x[t * k + i]));
    float scale = 127.0f / std::max(amax, 1e-5f);
    out.scale[t] = scale;
    for (int64_t i = 0; i < k; ++i)
      out.values[t * k + i] = static_cast<int8_t>(
          clampf(roundHalfEven(x[t * k + i] * scale), -128.0f, 127.0f));
  }
  return out;
}

TernaryWeights ternarize(const float *w, int64_t count) {
  double sum = 0.0;
  for (int64_t i = 0; i < count; ++i)
    sum += std::fabs(static_cast<double>(w[i]));
  float mean = count == 0 ? 0.0f : static_cast<float>(sum / count);
  TernaryWeights out;
  out.scale = std::max(mean, 1e-5f);
  out.values.resize(count);
  for (int64_t i = 0; i < count; ++i)
    out.values[i] =
        static_cast<int8_t>(clampf(roundHalfEven(w[i] / out.scale), -1, 1));
  return out;
}

std::vector<int32_t> ternaryMatmul(const int8_t *xq, const int8_t *w,
                                   int64_t m, int64_t n, int64_t k) {
  std::vector<int32_t> acc(m * n, 0);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      int32_t sum = 0;
      for (int64_t l = 0; l < k; ++l)
        sum += static_cast<int32_t>(xq[i * k + l]) * w[j * k + l];
      acc[i * n + j] = sum;
    }
  return acc;
}

/// The input quantised per token, its exact int32 products with the int8
/// weight `w` [n][k], rescaled: (float(acc) * scaleOf(n)) / s_x.
template <typename ScaleOf>
static std::vector<float> quantizedLinear(const float *x, const int8_t *w,
                                          int64_t m, int64_t n, int64_t k,
                                          ScaleOf scaleOf) {
  QuantizedActivations q = quantizeActivations(x, m, k);
  std::vector<int32_t> acc = ternaryMatmul(q.values.data(), w, m, n, k);
  std::vector<float> y(m * n);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j)
      y[i * n + j] =
          (static_cast<float>(acc[i * n + j]) * scaleOf(j)) / q.scale[i];
  return y;
}

std::vector<float> bitlinear(const float *x, const int8_t *w,
                             float weightScale, int64_t m, int64_t n,
                             int64_t k) {
  return quantizedLinear(x, w, m, n, k,
                         [&](int64_t) { return weightScale; });
}

std::vector<float> denseW8A8(const float *x, const int8_t *w,
                             const float *rowScales, int64_t m, int64_t n,
                             int64_t k) {
  return quantizedLinear(x, w, m, n, k,
                         [&](int64_t row) { return rowScales[row]; });
}

std::vector<float> rmsnorm(const float *x, const float *gamma, int64_t rows,
                           int64_t d, float eps) {
  std::vector<float> y(rows * d);
  for (int64_t r = 0; r < rows; ++r) {
    float sumsq = 0.0f;
    for (int64_t i = 0; i < d; ++i)
      sumsq += x[r * d + i] * x[r * d + i];
    float inv = 1.0f / std::sqrt(sumsq / static_cast<float>(d) + eps);
    for (int64_t i = 0; i < d; ++i)
      y[r * d + i] = gamma[i] * (x[r * d + i] * inv);
  }
  return y;
}

std::vector<float> squaredRelu(const float *x, int64_t count) {
  std::vector<float> y(count);
  for (int64_t i = 0; i < count; ++i) {
    float r = std::max(x[i], 0.0f);
    y[i] = r * r;
  }
  return y;
}

std::vector<float> rope(const float *x, const int64_t *positions,
                        int64_t tokens, int64_t heads, int64_t d, float theta,
                        bool interleaved) {
  std::vector<float> y(tokens * heads * d);
  int64_t half = d / 2;
  for (int64_t s = 0; s < tokens; ++s)
    for (int64_t h = 0; h < heads; ++h) {
      const float *in = x + (s * heads + h) * d;
      float *out = y.data() + (s * heads + h) * d;
      for (int64_t i = 0; i < half; ++i) {
        float invFreq = 1.0f / std::pow(theta, static_cast<float>(2 * i) /
                                                   static_cast<float>(d));
        float angle = static_cast<float>(positions[s]) * invFreq;
        float c = std::cos(angle), sn = std::sin(angle);
        int64_t a = interleaved ? 2 * i : i;
        int64_t b = interleaved ? 2 * i + 1 : i + half;
        out[a] = in[a] * c - in[b] * sn;
        out[b] = in[b] * c + in[a] * sn;
      }
    }
  return y;
}

std::vector<float> attention(const float *q, const float *k, const float *v,
                             float *kCache, float *vCache, int64_t position,
                             int64_t tokens, int64_t heads, int64_t kvHeads,
                             int64_t d, int64_t capacity, float scale) {
  position = std::clamp<int64_t>(position, 0, capacity - tokens);
  for (int64_t s = 0; s < tokens; ++s)
    for (int64_t i = 0; i < kvHeads * d; ++i) {
      kCache[(position + s) * kvHeads * d + i] = k[s * kvHeads * d + i];
      vCache[(position + s) * kvHeads * d + i] = v[s * kvHeads * d + i];
    }
  int64_t group = heads / kvHeads;
  std::vector<float> out(tokens * heads * d, 0.0f);
  std::vector<float> scores(capacity);
  for (int64_t s = 0; s < tokens; ++s)
    for (int64_t h = 0; h < heads; ++h) {
      int64_t g = h / group;
      const float *qv = q + (s * heads + h) * d;
      int64_t visible = position + s + 1;
      float max = -std::numeric_limits<float>::infinity();
      for (int64_t j = 0; j < visible; ++j) {
        float dot = 0.0f;
        for (int64_t i = 0; i < d; ++i)
          dot += qv[i] * kCache[(j * kvHeads + g) * d + i];
        scores[j] = dot * scale;
        max = std::max(max, scores[j]);
      }
      float sum = 0.0f;
      for (int64_t j = 0; j < visible; ++j) {
        scores[j] = std::exp(scores[j] - max);
        sum += scores[j];
      }
      float *o = out.data() + (s * heads + h) * d;
      for (int64_t i = 0; i < d; ++i) {
        float acc = 0.0f;
        for (int64_t j = 0; j < visible; ++j)
          acc += scores[j] * vCache[(j * kvHeads + g) * d + i];
        o[i] = acc / sum;
      }
    }
  return out;
}

static std::vector<uint8_t> packRows(const int8_t *w, int64_t rows,
                                     int64_t cols, int64_t perByte,
                                     unsigned base) {
  int64_t bytesPerRow = (cols + perByte - 1) / perByte;
  std::vector<uint8_t> out(rows * bytesPerRow);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t b = 0; b < bytesPerRow; ++b) {
      unsigned byte = 0, weight = 1;
      for (int64_t t = 0; t < perByte; ++t, weight *= base) {
        int64_t c = b * perByte + t;
        int code = c < cols ? std::clamp<int>(w[r * cols + c], -1, 1) + 1 : 1;
        byte += static_cast<unsigned>(code) * weight;
      }
      out[r * bytesPerRow + b] = static_cast<uint8_t>(byte);
    }
  return out;
}

std::vector<uint8_t> packI2(const int8_t *w, int64_t rows, int64_t cols) {
  return packRows(w, rows, cols, 4, 4);
}

std::vector<uint8_t> packBase3(const int8_t *w, int64_t rows, int64_t cols) {
  return packRows(w, rows, cols, 5, 3);
}

std::vector<float> embedding(const float *table, int64_t vocab, int64_t d,
                             const int32_t *tokens, int64_t count) {
  std::vector<float> out(count * d);
  for (int64_t t = 0; t < count; ++t) {
    int64_t id = tokens[t] < 0 ? tokens[t] + vocab : tokens[t];
    id = std::clamp<int64_t>(id, 0, vocab - 1);
    std::copy(table + id * d, table + (id + 1) * d, out.begin() + t * d);
  }
  return out;
}

std::vector<float> int8Rows(const float *w, int64_t rows, int64_t cols) {
  std::vector<float> out(rows * cols);
  for (int64_t r = 0; r < rows; ++r) {
    float max = 0;
    for (int64_t c = 0; c < cols; ++c)
      max = std::max(max, std::fabs(w[r * cols + c]));
    float scale = max > 0 ? max / 127.0f : 1.0f;
    for (int64_t c = 0; c < cols; ++c) {
      float q = std::clamp(roundHalfEven(w[r * cols + c] / scale), -127.0f,
                           127.0f);
      out[r * cols + c] = q * scale;
    }
  }
  return out;
}

std::vector<float> denseMatmul(const float *x, const float *w, int64_t m,
                               int64_t n, int64_t k) {
  std::vector<float> y(m * n);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double acc = 0;
      for (int64_t l = 0; l < k; ++l)
        acc += double(x[i * k + l]) * double(w[j * k + l]);
      y[i * n + j] = float(acc);
    }
  return y;
}

} // namespace bitnet::ref
