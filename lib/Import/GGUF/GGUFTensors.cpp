//===- GGUFTensors.cpp - Decodes the tensors of a GGUF file ---------------===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// The block layouts, as the GGUF writers store them:
//   - Q8_0: blocks of 32 values, an f16 scale d then 32 int8 q; x = d * q.
//   - TQ2_0: blocks of 256 values, 64 bytes of 2-bit codes then an f16 d.
//     Each half (128 values) is 32 bytes; value 32*l + m of a half is bits
//     2l..2l+1 of byte m; x = (code - 1) * d.
//   - TQ1_0: blocks of 256 values, 48 bytes qs, 4 bytes qh, an f16 d; each
//     byte holds 5 (qh: 4) base-3 digits as a fixed-point fraction: digit n
//     of byte b is ((uint8_t)(b * 3^n) * 3) >> 8. Values: the first 32 bytes
//     of qs give 5 x 32 values (digit-major), the last 16 give 5 x 16, qh
//     gives 4 x 4. x = (digit - 1) * d.
//   - I2_S (bitnet.cpp): the whole tensor, row-major, in 128-value blocks of
//     32 bytes: value j of a block is bits 6-2(j/32) .. 7-2(j/32) of byte
//     j % 32, code 0, 1, 2 for -1, 0, +1; one f32 scale follows the codes.
//
//===----------------------------------------------------------------------===//

#include "bitnet/Import/GGUF/GGUFTensors.h"

#include "bitnet/Reference/Numerics.h"


#include <algorithm>
#include <cmath>
#include <cstring>

using namespace mlir;
using namespace mlir::bitnet;
using namespace mlir::bitnet::gguf;

static uint16_t load16(const uint8_t *p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

static float load32f(const uint8_t *p) {
  float v;
  std::memcpy(&v, p, 4);
  return v;
}

static llvm::Error tensorError(const File &file, const Tensor &tensor,
                               const Twine &message) {
  return file.error("tensor '" + tensor.name + "' (" +
                    tensorTypeName(tensor.type) + "): " + message);
}

llvm::Expected<FloatTensor> mlir::bitnet::gguf::decodeFloat(
    const File &file, const Tensor &tensor, bool keepHalf) {
  FloatTensor result;
  result.name = tensor.name.str();
  result.shape = tensor.shape();
  int64_t n = tensor.numElements();
  const uint8_t *data = tensor.data.data();
  switch (static_cast<TensorType>(tensor.type)) {
  case TensorType::F32:
    result.f32.resize(n);
    std::memcpy(result.f32.data(), data, n * sizeof(float));
    break;
  case TensorType::F16:
  case TensorType::BF16:
    if (keepHalf) {
      result.half.resize(n);
      result.brain = static_cast<TensorType>(tensor.type) == TensorType::BF16;
      std::memcpy(result.half.data(), data, n * sizeof(uint16_t));
      break;
    }
    result.f32.resize(n);
    if (static_cast<TensorType>(tensor.type) == TensorType::F16) {
      for (int64_t i = 0; i < n; ++i)
        result.f32[i] = halfToFloat(load16(data + 2 * i));
      break;
    }
    for (int64_t i = 0; i < n; ++i)
      result.f32[i] = bf16ToFloat(load16(data + 2 * i));
    break;
  case TensorType::Q8_0:
    result.f32.resize(n);
    for (int64_t b = 0; b < n / 32; ++b) {
      const uint8_t *block = data + b * 34;
      float d = halfToFloat(load16(block));
      for (int j = 0; j < 32; ++j)
        result.f32[b * 32 + j] = d * static_cast<int8_t>(block[2 + j]);
    }
    break;
  default:
    return tensorError(file, tensor,
                       "expected a float tensor (F32, F16, BF16 or Q8_0)");
  }
  if (!result.allFinite())
    return tensorError(file, tensor, "holds a value that is not finite");
  return result;
}

/// Per-tensor scale of blocked ternary codes: every block with a nonzero
/// code must have the same |d|; a block with a negative d has its codes
/// negated.
namespace {
struct BlockScales {
  std::optional<float> scale;
  bool conflict = false;
  float other = 0;
  /// Records block scale `d` and returns the sign to apply to its codes.
  int8_t add(float d, bool anyNonzero) {
    if (!anyNonzero || d == 0)
      return 0;
    float magnitude = std::fabs(d);
    if (!scale)
      scale = magnitude;
    else if (*scale != magnitude && !conflict) {
      conflict = true;
      other = magnitude;
    }
    return d < 0 ? -1 : 1;
  }
};
} // namespace

static const uint8_t kPow3[6] = {1, 3, 9, 27, 81, 243};

static int tq1Digit(uint8_t byte, int n) {
  uint8_t q = static_cast<uint8_t>(byte * kPow3[n]);
  return (static_cast<uint16_t>(q) * 3) >> 8;
}

llvm::Expected<TernaryMatrix>
mlir::bitnet::gguf::decodeTernary(const File &file, const Tensor &tensor) {
  if (tensor.dims.size() != 2)
    return tensorError(file, tensor,
                       "a linear layer's weight must have 2 dimensions, not " +
                           Twine(tensor.dims.size()));
  TernaryMatrix m;
  m.name = tensor.name.str();
  m.cols = tensor.dims[0];
  m.rows = tensor.dims[1];
  int64_t n = m.rows * m.cols;
  const uint8_t *data = tensor.data.data();
  switch (static_cast<TensorType>(tensor.type)) {
  case TensorType::I2_S: {
    m.values.resize(n);
    for (int64_t block = 0; block < n / 128; ++block) {
      const uint8_t *bytes = data + block * 32;
      int8_t *out = m.values.data() + block * 128;
      for (int group = 0; group < 4; ++group) {
        int shift = 6 - 2 * group;
        for (int j = 0; j < 32; ++j) {
          int code = (bytes[j] >> shift) & 3;
          if (code == 3)
            return tensorError(file, tensor,
                               "value " + Twine(block * 128 + group * 32 + j) +
                                   " has the code 3, which I2_S does not use");
          out[group * 32 + j] = static_cast<int8_t>(code - 1);
        }
      }
    }
    m.scale = load32f(data + n / 4);
    // bitnet.cpp's quantizer writes max|w|: 0 for an all-zero tensor. Zero
    // weights then, whatever the codes say.
    if (m.scale == 0) {
      std::fill(m.values.begin(), m.values.end(), 0);
      m.scale = 1.0f;
      return m;
    }
    if (!std::isfinite(m.scale) || m.scale < 0)
      return tensorError(file, tensor,
                         "its scale " + Twine(printFloat(m.scale)) +
                             " is not a finite number of at least 0");
    return m;
  }
  case TensorType::TQ2_0:
  case TensorType::TQ1_0: {
    bool tq2 = static_cast<TensorType>(tensor.type) == TensorType::TQ2_0;
    int64_t blockBytes = tq2 ? 66 : 54;
    m.values.resize(n);
    BlockScales scales;
    int8_t digits[256];
    for (int64_t b = 0; b < n / 256; ++b) {
      const uint8_t *block = data + b * blockBytes;
      int k = 0;
      if (tq2) {
        for (int half = 0; half < 64; half += 32)
          for (int l = 0; l < 4; ++l)
            for (int mm = 0; mm < 32; ++mm)
              digits[k++] = static_cast<int8_t>(
                  ((block[half + mm] >> (2 * l)) & 3) - 1);
      } else {
        for (int d = 0; d < 5; ++d)
          for (int mm = 0; mm < 32; ++mm)
            digits[k++] = static_cast<int8_t>(tq1Digit(block[mm], d) - 1);
        for (int d = 0; d < 5; ++d)
          for (int mm = 0; mm < 16; ++mm)
            digits[k++] = static_cast<int8_t>(tq1Digit(block[32 + mm], d) - 1);
        for (int d = 0; d < 4; ++d)
          for (int mm = 0; mm < 4; ++mm)
            digits[k++] = static_cast<int8_t>(tq1Digit(block[48 + mm], d) - 1);
      }
      float d = halfToFloat(load16(block + blockBytes - 2));
      if (!std::isfinite(d))
        return tensorError(file, tensor,
                           "block " + Twine(b) + " has a scale that is not finite");
      bool anyNonzero = false;
      for (int i = 0; i < 256; ++i) {
        if (digits[i] > 1)
          return tensorError(file, tensor,
                             "block " + Twine(b) + " holds a code outside "
                             "{-1, 0, 1}");
        anyNonzero |= digits[i] != 0;
      }
      int8_t sign = scales.add(d, anyNonzero);
      for (int i = 0; i < 256; ++i)
        m.values[b * 256 + i] = static_cast<int8_t>(digits[i] * sign);
    }
    if (scales.conflict)
      return tensorError(file, tensor,
                         "its blocks have different scales (" +
                             Twine(printFloat(*scales.scale)) + " and " +
                             Twine(printFloat(scales.other)) +
                             "); a ternary layer has one scale per tensor");
    m.scale = scales.scale.value_or(1.0f);
    return m;
  }
  case TensorType::F32:
  case TensorType::F16:
  case TensorType::BF16: {
    llvm::Expected<FloatTensor> weights = decodeFloat(file, tensor);
    if (!weights)
      return weights.takeError();
    ::bitnet::ref::TernaryWeights t =
        ::bitnet::ref::ternarize(weights->f32.data(), n);
    m.values = std::move(t.values);
    m.scale = t.scale;
    return m;
  }
  default:
    return tensorError(file, tensor,
                       "a ternary weight must be I2_S, TQ1_0 or TQ2_0 (or "
                       "F32, F16 or BF16 latent weights, ternarised here)");
  }
}
