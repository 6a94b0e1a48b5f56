//===- test_util.h - Helpers shared by the runtime tests --------*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#ifndef BITNET_RT_TESTS_TEST_UTIL_H
#define BITNET_RT_TESTS_TEST_UTIL_H

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <string>
#include <unistd.h>

#include "bitnet_rt/bitnet_rt.h"
#include "bitnet_rt_test_paths.h"

namespace bitnet_test {

/// Success, or the status's code and message; frees the status.
inline ::testing::AssertionResult IsOk(bitnet_status status) {
  if (status == BITNET_OK)
    return ::testing::AssertionSuccess();
  auto result = ::testing::AssertionFailure()
                << bitnet_status_code_name(bitnet_status_get_code(status))
                << ": " << bitnet_status_message(status);
  bitnet_status_free(status);
  return result;
}

/// Success when `status` has `code` and its message contains every one of
/// `parts`; frees the status.
inline ::testing::AssertionResult
IsError(bitnet_status status, bitnet_status_code code,
        std::initializer_list<std::string> parts = {}) {
  if (status == BITNET_OK)
    return ::testing::AssertionFailure() << "expected an error, got OK";
  std::string message = bitnet_status_message(status);
  bitnet_status_code got = bitnet_status_get_code(status);
  bitnet_status_free(status);
  if (got != code)
    return ::testing::AssertionFailure()
           << "expected " << bitnet_status_code_name(code) << ", got "
           << bitnet_status_code_name(got) << ": " << message;
  for (const std::string &part : parts)
    if (message.find(part) == std::string::npos)
      return ::testing::AssertionFailure()
             << "message '" << message << "' lacks '" << part << "'";
  return ::testing::AssertionSuccess() << message;
}

struct ModelDeleter {
  void operator()(bitnet_model *m) const { bitnet_model_release(m); }
};
struct ContextDeleter {
  void operator()(bitnet_context *c) const { bitnet_context_free(c); }
};
struct PoolDeleter {
  void operator()(bitnet_pool *p) const { bitnet_pool_release(p); }
};
struct ThreadPoolDeleter {
  void operator()(bitnet_thread_pool *p) const {
    bitnet_thread_pool_release(p);
  }
};
struct CollectorDeleter {
  void operator()(bitnet_profile_collector *c) const {
    bitnet_profile_collector_free(c);
  }
};
using ModelPtr = std::unique_ptr<bitnet_model, ModelDeleter>;
using ContextPtr = std::unique_ptr<bitnet_context, ContextDeleter>;
using PoolPtr = std::unique_ptr<bitnet_pool, PoolDeleter>;
using ThreadPoolPtr = std::unique_ptr<bitnet_thread_pool, ThreadPoolDeleter>;
using CollectorPtr =
    std::unique_ptr<bitnet_profile_collector, CollectorDeleter>;

/// Loads a model that must load.
inline ModelPtr LoadModel(const char *path) {
  bitnet_model *model = nullptr;
  bitnet_status status = bitnet_model_load(path, &model);
  EXPECT_TRUE(IsOk(status)) << path;
  return ModelPtr(model);
}

/// A fresh empty directory under the test's temporary directory.
inline std::string MakeTempDir() {
  const char *base = getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") +
                     "/bitnet_rt_test_XXXXXX";
  char *dir = mkdtemp(tmpl.data());
  EXPECT_NE(dir, nullptr);
  return tmpl;
}

inline std::string ReadFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline void WriteFile(const std::string &path, const std::string &bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

} // namespace bitnet_test

#endif // BITNET_RT_TESTS_TEST_UTIL_H
