//===- ReferenceTest.cpp - The scalar reference itself ----------*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// The reference is the oracle of every kernel, so it is checked against
// values worked out by hand from the numerics contract.
//
//===----------------------------------------------------------------------===//

#include "bitnet/Reference/Numerics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

using namespace bitnet::ref;

TEST(Reference, RoundHalfEvenTies) {
  EXPECT_EQ(roundHalfEven(0.5f), 0.0f);
  EXPECT_EQ(roundHalfEven(1.5f), 2.0f);
  EXPECT_EQ(roundHalfEven(2.5f), 2.0f);
  EXPECT_EQ(roundHalfEven(-0.5f), -0.0f);
  EXPECT_EQ(roundHalfEven(-1.5f), -2.0f);
  EXPECT_EQ(roundHalfEven(-2.5f), -2.0f);
  EXPECT_EQ(roundHalfEven(2.5000002f), 3.0f);
  EXPECT_EQ(roundHalfEven(126.5f), 126.0f);
  EXPECT_EQ(roundHalfEven(127.5f), 128.0f);
}

TEST(Reference, QuantizeActivationsTiesAndScale) {
  // max|x| = 127, so s_x = 1 and x * s_x = x: the ties show directly.
  const float x[] = {127.0f, 0.5f, 1.5f, 2.5f, -2.5f, -0.5f, -127.0f};
  QuantizedActivations q = quantizeActivations(x, 1, 7);
  EXPECT_EQ(q.scale[0], 1.0f);
  const int8_t expected[] = {127, 0, 2, 2, -2, 0, -127};
  for (int i = 0; i < 7; ++i)
    EXPECT_EQ(q.values[i], expected[i]) << "at " << i;
}

TEST(Reference, QuantizeActivationsAllZeroRow) {
  // max|x| is clamped to 1e-5: the scale stays finite, every value is 0.
  const float x[] = {0.0f, 0.0f, 0.0f, 1.0f, -2.0f, 0.5f};
  QuantizedActivations q = quantizeActivations(x, 2, 3);
  EXPECT_EQ(q.scale[0], 127.0f / 1e-5f);
  EXPECT_EQ(q.values[0], 0);
  EXPECT_EQ(q.values[1], 0);
  EXPECT_EQ(q.values[2], 0);
  EXPECT_EQ(q.scale[1], 63.5f);
  EXPECT_EQ(q.values[3], 64);  // 63.5 rounds to even
  EXPECT_EQ(q.values[4], -127);
  EXPECT_EQ(q.values[5], 32);  // 31.75
}

TEST(Reference, QuantizeActivationsSaturates) {
  // Tiny values next to the maximum vanish; the extremes stay within int8.
  const float x[] = {1e30f, -1e30f, 1e20f, 3.0f};
  QuantizedActivations q = quantizeActivations(x, 1, 4);
  EXPECT_EQ(q.values[0], 127);
  EXPECT_EQ(q.values[1], -127);
  EXPECT_EQ(q.values[2], 0);
  EXPECT_EQ(q.values[3], 0);
}

TEST(Reference, TernarizeAbsmean) {
  // mean|w| = (0.5 + 1 + 0 + 2.5) / 4 = 1: w / s = w.
  const float w[] = {0.5f, -1.0f, 0.0f, 2.5f};
  TernaryWeights t = ternarize(w, 4);
  EXPECT_EQ(t.scale, 1.0f);
  EXPECT_EQ(t.values[0], 0); // 0.5 rounds to even: 0
  EXPECT_EQ(t.values[1], -1);
  EXPECT_EQ(t.values[2], 0);
  EXPECT_EQ(t.values[3], 1); // clamped from 2
}

TEST(Reference, TernarizeAllZero) {
  const float w[] = {0.0f, 0.0f, -0.0f};
  TernaryWeights t = ternarize(w, 3);
  EXPECT_EQ(t.scale, 1e-5f);
  for (int8_t v : t.values)
    EXPECT_EQ(v, 0);
}

TEST(Reference, TernaryMatmulOddSizes) {
  // 2 x 3 activations, 1 x 3 weights.
  const int8_t x[] = {127, -128, 5, 0, 1, -1};
  const int8_t w[] = {1, 1, -1};
  std::vector<int32_t> acc = ternaryMatmul(x, w, 2, 1, 3);
  EXPECT_EQ(acc[0], 127 - 128 - 5);
  EXPECT_EQ(acc[1], 0 + 1 + 1);
}

TEST(Reference, TernaryMatmulExtremesDoNotOverflow) {
  // -128 * -1 over a long row: 128 * K, well inside int32.
  const int64_t k = 100003;
  std::vector<int8_t> x(k, -128), w(k, -1);
  EXPECT_EQ(ternaryMatmul(x.data(), w.data(), 1, 1, k)[0], 128 * k);
}

TEST(Reference, BitLinearRescales) {
  // s_x = 127 / 2; xq = {127, -64 (from -63.5), 0}; W = {1, -1, 1}.
  const float x[] = {2.0f, -1.0f, 0.0f};
  const int8_t w[] = {1, -1, 1};
  std::vector<float> y = bitlinear(x, w, 0.25f, 1, 1, 3);
  EXPECT_EQ(y[0], (191.0f * 0.25f) / 63.5f);
}

TEST(Reference, RMSNorm) {
  const float x[] = {3.0f, 4.0f};
  const float gamma[] = {1.0f, 2.0f};
  std::vector<float> y = rmsnorm(x, gamma, 1, 2, 0.0f);
  float inv = 1.0f / std::sqrt(12.5f);
  EXPECT_FLOAT_EQ(y[0], 3.0f * inv);
  EXPECT_FLOAT_EQ(y[1], 2.0f * 4.0f * inv);
}

TEST(Reference, SquaredRelu) {
  const float x[] = {-2.0f, 0.0f, 3.0f};
  std::vector<float> y = squaredRelu(x, 3);
  EXPECT_EQ(y[0], 0.0f);
  EXPECT_EQ(y[1], 0.0f);
  EXPECT_EQ(y[2], 9.0f);
}

TEST(Reference, RopeRotatesPairs) {
  // D = 4, theta = 1: every inv_freq is 1, so the angle is the position.
  const float x[] = {1.0f, 2.0f, 3.0f, 4.0f};
  const int64_t pos[] = {1};
  std::vector<float> half = rope(x, pos, 1, 1, 4, 1.0f, false);
  float c = std::cos(1.0f), s = std::sin(1.0f);
  EXPECT_FLOAT_EQ(half[0], 1 * c - 3 * s);
  EXPECT_FLOAT_EQ(half[2], 3 * c + 1 * s);
  std::vector<float> inter = rope(x, pos, 1, 1, 4, 1.0f, true);
  EXPECT_FLOAT_EQ(inter[0], 1 * c - 2 * s);
  EXPECT_FLOAT_EQ(inter[1], 2 * c + 1 * s);
  // Position 0 is the identity.
  const int64_t zero[] = {0};
  std::vector<float> id = rope(x, zero, 1, 1, 4, 10000.0f, false);
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(id[i], x[i]);
}

TEST(Reference, AttentionSingleKeyReturnsItsValue) {
  // At position 0 the first token sees only itself: out = v.
  const float q[] = {1.0f, 0.0f}, k[] = {0.5f, 0.5f}, v[] = {3.0f, -1.0f};
  float kc[4] = {9, 9, 9, 9}, vc[4] = {9, 9, 9, 9};
  std::vector<float> o =
      attention(q, k, v, kc, vc, 0, 1, 1, 1, 2, 2, 1.0f);
  EXPECT_FLOAT_EQ(o[0], 3.0f);
  EXPECT_FLOAT_EQ(o[1], -1.0f);
  EXPECT_EQ(kc[0], 0.5f);
  EXPECT_EQ(vc[1], -1.0f);
  EXPECT_EQ(kc[2], 9.0f); // the next row is untouched
}

TEST(Reference, AttentionIsCausalAndGrouped) {
  // Two tokens, two query heads sharing one kv head; equal scores give the
  // mean of the visible values.
  const float q[] = {0, 0, 0, 0}, k[] = {1, 1}, v[] = {2, 4};
  float kc[3] = {}, vc[3] = {};
  std::vector<float> o = attention(q, k, v, kc, vc, 1, 2, 2, 1, 1, 3, 1.0f);
  // Token 0 (position 1) sees rows 0 and 1: (0 + 2) / 2.
  EXPECT_FLOAT_EQ(o[0], 1.0f);
  EXPECT_FLOAT_EQ(o[1], 1.0f);
  // Token 1 (position 2) sees rows 0..2: (0 + 2 + 4) / 3.
  EXPECT_FLOAT_EQ(o[2], 2.0f);
  EXPECT_FLOAT_EQ(o[3], 2.0f);
}

TEST(Reference, PackI2AndBase3) {
  // Codes w + 1: {2, 0, 1, 2} -> 2 + 0*4 + 1*16 + 2*64 = 146.
  const int8_t w[] = {1, -1, 0, 1, -1};
  std::vector<uint8_t> i2 = packI2(w, 1, 5);
  ASSERT_EQ(i2.size(), 2u);
  EXPECT_EQ(i2[0], 146);
  EXPECT_EQ(i2[1], 0 + 1 * 4 + 1 * 16 + 1 * 64); // padded with zero weights
  // Base 3: 2 + 0*3 + 1*9 + 2*27 + 0*81 = 65.
  std::vector<uint8_t> b3 = packBase3(w, 1, 5);
  ASSERT_EQ(b3.size(), 1u);
  EXPECT_EQ(b3[0], 65);
}
