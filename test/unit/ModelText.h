//===- ModelText.h - MLIR text of models for tests --------------*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// Pieces of MLIR text the tests build models from. No GoogleTest, so that the
// GPU cases (GPUCases.h) can be written out by a plain program as well.
//
//===----------------------------------------------------------------------===//

#ifndef BITNET_TEST_UNIT_MODELTEXT_H
#define BITNET_TEST_UNIT_MODELTEXT_H

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace bitnet::test {

/// `dense<...>` text of float values with the given shape (exact round trip).
std::string denseF32(const std::vector<float> &values,
                     const std::vector<int64_t> &shape);
/// `dense<...>` text of integer values with the given shape.
std::string denseInt(const std::vector<int64_t> &values,
                     const std::vector<int64_t> &shape);
/// `dense<"0x...">` text of raw bytes (an i8 tensor's storage): quick to
/// write and to parse for millions of values.
std::string denseHex(const void *bytes, size_t size);
/// "2x3x" style shape prefix of a tensor type.
std::string shapeStr(const std::vector<int64_t> &shape);

/// A function @attn of one bitnet.attention (f32 caches, i32 position) that
/// returns the output and the updated caches: queries [s, hq, d], keys and
/// values [s, hkv, d], caches [cap, hkv, d].
std::string attentionModel(int64_t s, int64_t hq, int64_t hkv, int64_t d,
                           int64_t cap);

/// `count` random ternary values (-1, 0, 1), from a generator seeded `seed`.
std::vector<int8_t> randomTernary(int64_t count, unsigned seed);

/// `count` draws of N(0, 1), from a generator seeded `seed`.
std::vector<float> randomFloats(int64_t count, unsigned seed);

/// `n` draws of `normal`.
std::vector<float> normalVector(std::mt19937 &rng,
                                std::normal_distribution<float> &normal,
                                int64_t n);

} // namespace bitnet::test

#endif // BITNET_TEST_UNIT_MODELTEXT_H
