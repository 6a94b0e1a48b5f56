//===- TernaryEncodingTest.cpp - Byte formats of ternary weights -*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// The compiler's packing (used to fold constants at compile time) must give
// the bytes of the reference packing, and unpacking must invert it.
//
//===----------------------------------------------------------------------===//

#include "ModelText.h"

#include "bitnet/Dialect/BitNet/IR/TernaryEncoding.h"
#include "bitnet/Reference/Numerics.h"

#include <gtest/gtest.h>

#include <random>

using namespace mlir::bitnet;

using ::bitnet::test::randomTernary;

namespace {

struct Shape {
  int64_t rows, cols;
};
} // namespace

class TernaryEncodingTest : public ::testing::TestWithParam<Shape> {};

TEST_P(TernaryEncodingTest, MatchesReferenceAndRoundTrips) {
  auto [rows, cols] = GetParam();
  std::vector<int8_t> values = randomTernary(rows * cols, rows * 131 + cols);
  struct Case {
    TernaryFormat format;
    std::vector<uint8_t> reference;
  } cases[] = {
      {TernaryFormat::I2, bitnet::ref::packI2(values.data(), rows, cols)},
      {TernaryFormat::Base3, bitnet::ref::packBase3(values.data(), rows, cols)},
  };
  for (const Case &c : cases) {
    llvm::SmallVector<int8_t> packed = packTernary(values, rows, cols, c.format);
    ASSERT_EQ(packed.size(), c.reference.size());
    for (size_t i = 0; i < packed.size(); ++i)
      ASSERT_EQ(static_cast<uint8_t>(packed[i]), c.reference[i])
          << "byte " << i << " of " << stringifyTernaryFormat(c.format).str();
    auto unpacked = unpackTernary(packed, rows, cols, c.format);
    ASSERT_TRUE(unpacked.has_value());
    EXPECT_EQ(std::vector<int8_t>(unpacked->begin(), unpacked->end()), values);
  }
  llvm::SmallVector<int8_t> int8 =
      packTernary(values, rows, cols, TernaryFormat::Int8);
  EXPECT_EQ(std::vector<int8_t>(int8.begin(), int8.end()), values);
}

INSTANTIATE_TEST_SUITE_P(Shapes, TernaryEncodingTest,
                         ::testing::Values(Shape{1, 1}, Shape{1, 4},
                                           Shape{3, 5}, Shape{7, 13},
                                           Shape{4, 64}, Shape{2, 127},
                                           Shape{16, 2560}));

TEST(TernaryEncoding, PackClampsOutOfRangeValues) {
  const int8_t values[] = {5, -7, 0, 1};
  llvm::SmallVector<int8_t> packed =
      packTernary(values, 1, 4, TernaryFormat::I2);
  auto unpacked = unpackTernary(packed, 1, 4, TernaryFormat::I2);
  ASSERT_TRUE(unpacked.has_value());
  EXPECT_EQ((*unpacked)[0], 1);
  EXPECT_EQ((*unpacked)[1], -1);
}

TEST(TernaryEncoding, RejectsInvalidBytes) {
  // An i2 code of 3, a base-3 byte above 3^5 - 1 = 242, an int8 of 2.
  const int8_t i2[] = {static_cast<int8_t>(0x03)};
  EXPECT_FALSE(unpackTernary(i2, 1, 4, TernaryFormat::I2).has_value());
  const int8_t b3[] = {static_cast<int8_t>(243)};
  EXPECT_FALSE(unpackTernary(b3, 1, 5, TernaryFormat::Base3).has_value());
  const int8_t i8[] = {2};
  EXPECT_FALSE(unpackTernary(i8, 1, 1, TernaryFormat::Int8).has_value());
  const int8_t ok[] = {static_cast<int8_t>(242)};
  EXPECT_TRUE(unpackTernary(ok, 1, 5, TernaryFormat::Base3).has_value());
}

TEST(TernaryEncoding, ValuesPerByte) {
  EXPECT_EQ(getValuesPerByte(TernaryFormat::Int8), 1);
  EXPECT_EQ(getValuesPerByte(TernaryFormat::I2), 4);
  EXPECT_EQ(getValuesPerByte(TernaryFormat::Base3), 5);
}
