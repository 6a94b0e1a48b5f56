//===- status_test.cc - Status objects and dtype helpers ------------------===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#include "test_util.h"

#include <cstring>

using namespace bitnet_test;

namespace {

bitnet_status FailsWhen(bool fail) {
  if (fail)
    return bitnet_status_make(BITNET_STATUS_NOT_FOUND, "thing %d missing", 7);
  return BITNET_OK;
}

int reached_after = 0;

bitnet_status Propagates(bool fail) {
  BITNET_RETURN_IF_ERROR(FailsWhen(fail));
  ++reached_after;
  return BITNET_OK;
}

// Tests that a status carries its code and formatted message.
TEST(StatusTest, MakeCarriesCodeAndMessage) {
  bitnet_status s = bitnet_status_make(BITNET_STATUS_INVALID_ARGUMENT,
                                       "bad %s at %d", "value", 3);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(bitnet_status_get_code(s), BITNET_STATUS_INVALID_ARGUMENT);
  EXPECT_STREQ(bitnet_status_message(s), "bad value at 3");
  bitnet_status_free(s);
}

// Tests that NULL reads as OK everywhere.
TEST(StatusTest, NullIsOk) {
  EXPECT_EQ(bitnet_status_get_code(BITNET_OK), BITNET_STATUS_OK);
  EXPECT_STREQ(bitnet_status_message(BITNET_OK), "OK");
  bitnet_status_free(BITNET_OK);
}

// Tests that an OK code cannot make a non-NULL (and so failing) status look
// like success.
TEST(StatusTest, MakeWithOkCodeIsInternal) {
  bitnet_status s = bitnet_status_make(BITNET_STATUS_OK, "oops");
  EXPECT_EQ(bitnet_status_get_code(s), BITNET_STATUS_INTERNAL);
  bitnet_status_free(s);
}

// Tests that BITNET_RETURN_IF_ERROR returns errors and goes on after OK.
TEST(StatusTest, ReturnIfError) {
  reached_after = 0;
  EXPECT_TRUE(IsOk(Propagates(false)));
  EXPECT_EQ(reached_after, 1);
  EXPECT_TRUE(IsError(Propagates(true), BITNET_STATUS_NOT_FOUND,
                      {"thing 7 missing"}));
  EXPECT_EQ(reached_after, 1);
}

// Tests the names of the codes.
TEST(StatusTest, CodeNames) {
  EXPECT_STREQ(bitnet_status_code_name(BITNET_STATUS_OK), "OK");
  EXPECT_STREQ(bitnet_status_code_name(BITNET_STATUS_INCOMPATIBLE),
               "INCOMPATIBLE");
  EXPECT_STREQ(bitnet_status_code_name(BITNET_STATUS_INTERNAL), "INTERNAL");
  EXPECT_STREQ(bitnet_status_code_name(BITNET_STATUS_OUT_OF_RANGE),
               "OUT_OF_RANGE");
  EXPECT_STREQ(bitnet_status_code_name(static_cast<bitnet_status_code>(99)),
               "UNKNOWN");
}

// Tests the dtype names and sizes, including invalid values.
TEST(DtypeTest, NamesAndSizes) {
  struct Case {
    int32_t dtype;
    const char *name;
    int64_t size;
  } cases[] = {
      {BITNET_DTYPE_F32, "f32", 4},  {BITNET_DTYPE_F16, "f16", 2},
      {BITNET_DTYPE_BF16, "bf16", 2}, {BITNET_DTYPE_F64, "f64", 8},
      {BITNET_DTYPE_I8, "i8", 1},    {BITNET_DTYPE_I16, "i16", 2},
      {BITNET_DTYPE_I32, "i32", 4},  {BITNET_DTYPE_I64, "i64", 8},
      {BITNET_DTYPE_U8, "u8", 1},    {BITNET_DTYPE_BOOL, "bool", 1},
      {BITNET_DTYPE_U16, "u16", 2},  {BITNET_DTYPE_U32, "u32", 4},
      {BITNET_DTYPE_U64, "u64", 8},
  };
  for (const Case &c : cases) {
    EXPECT_STREQ(bitnet_dtype_name(c.dtype), c.name);
    EXPECT_EQ(bitnet_dtype_size(c.dtype), c.size) << c.name;
    EXPECT_TRUE(bitnet_dtype_is_valid(c.dtype)) << c.name;
  }
  for (int32_t bad : {int32_t{BITNET_DTYPE_INVALID}, 14, -1, 1000}) {
    EXPECT_STREQ(bitnet_dtype_name(bad), "invalid");
    EXPECT_EQ(bitnet_dtype_size(bad), 0);
    EXPECT_FALSE(bitnet_dtype_is_valid(bad));
  }
}

TEST(VersionTest, IsSet) { EXPECT_GT(std::strlen(bitnet_rt_version()), 0u); }

} // namespace
