//===- GPUTest.cpp - GPU models against the scalar reference ----*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// Compiles models with `--target=nvptx`, runs them through libbitnet_rt on the
// GPU and compares with the scalar reference: bit for bit where the contract
// says so (the int32 dot products, hence bitlinear outputs computed with the
// same float operations), within a few ulp for RMSNorm. Skipped, with the
// reason, where there is no CUDA driver or GPU. The checks that need no GPU
// (loading reports UNAVAILABLE, the descriptor) run everywhere.
//
//===----------------------------------------------------------------------===//

#include "ModelHarness.h"

#include "bitnet/Reference/Numerics.h"
#include "bitnet_rt/bitnet_rt.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <random>

using namespace bitnet::test;

namespace {

std::string gpuArch() {
  const char *env = std::getenv("BITNET_TEST_GPU_ARCH");
  return env && *env ? env : "sm_80";
}

/// Random ternary weights with every value present.
std::vector<int8_t> randomTernary(int64_t count, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> dist(-1, 1);
  std::vector<int8_t> w(count);
  for (auto &v : w)
    v = static_cast<int8_t>(dist(rng));
  return w;
}

std::vector<float> randomFloats(int64_t count, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> x(count);
  for (auto &v : x)
    v = dist(rng);
  return x;
}

/// A bitlinear model with int8 ternary constant weights.
std::string bitlinearModel(int64_t m, int64_t n, int64_t k,
                           const std::vector<int8_t> &w, float scale) {
  std::vector<int64_t> values(w.begin(), w.end());
  std::string s = denseF32({scale}, {});
  return "func.func @f(%x: tensor<" + std::to_string(m) + "x" +
         std::to_string(k) + "xf32> {bitnet.name = \"x\"}) -> tensor<" +
         std::to_string(m) + "x" + std::to_string(n) +
         "xf32> attributes {bitnet.output_names = [\"y\"]} {\n"
         "  %w = bitnet.constant " + denseInt(values, {n, k}) +
         " : tensor<" + std::to_string(n) + "x" + std::to_string(k) +
         "xi8> -> !bitnet.ternary<" + std::to_string(n) + "x" +
         std::to_string(k) + ", int8>\n"
         "  %s = arith.constant " + s + " : tensor<f32>\n"
         "  %y = bitnet.bitlinear %x, %w scale %s : tensor<" +
         std::to_string(m) + "x" + std::to_string(k) + "xf32>, !bitnet.ternary<" +
         std::to_string(n) + "x" + std::to_string(k) + ", int8>, tensor<f32> -> tensor<" +
         std::to_string(m) + "x" + std::to_string(n) + "xf32>\n"
         "  return %y : tensor<" + std::to_string(m) + "x" + std::to_string(n) +
         "xf32>\n}\n";
}

struct Loaded {
  bitnet_model *model = nullptr;
  bitnet_context *context = nullptr;
  ~Loaded() {
    bitnet_context_free(context);
    bitnet_model_release(model);
  }
};

/// Whether a missing GPU fails the tests instead of skipping them
/// ($BITNET_TEST_REQUIRE_GPU, set by bench/gpu/check.sh).
bool gpuRequired() {
  const char *env = std::getenv("BITNET_TEST_REQUIRE_GPU");
  return env && *env && std::string(env) != "0";
}

/// Compiles for the GPU; loads it, or skips the test with the reason.
#define LOAD_OR_SKIP(compiled, loaded)                                         \
  do {                                                                         \
    bitnet_status avail = bitnet_gpu_available();                              \
    if (avail != BITNET_OK) {                                                  \
      std::string why = bitnet_status_message(avail);                          \
      bitnet_status_free(avail);                                               \
      if (gpuRequired())                                                       \
        FAIL() << "no GPU, and BITNET_TEST_REQUIRE_GPU is set: " << why;       \
      GTEST_SKIP() << "no GPU: " << why;                                       \
    }                                                                          \
    bitnet_status st = bitnet_model_load((compiled).path().c_str(),            \
                                         &(loaded).model);                     \
    ASSERT_EQ(st, BITNET_OK) << bitnet_status_message(st);                     \
    st = bitnet_context_create((loaded).model, nullptr, &(loaded).context);    \
    ASSERT_EQ(st, BITNET_OK) << bitnet_status_message(st);                     \
  } while (0)

class GPUBitLinear
    : public ::testing::TestWithParam<std::tuple<int64_t, int64_t, int64_t>> {};

TEST_P(GPUBitLinear, MatchesReferenceBitForBit) {
  auto [m, n, k] = GetParam();
  std::vector<int8_t> w = randomTernary(n * k, 7);
  float scale = 0.73f;
  std::string error;
  auto compiled = CompiledModel::compile(
      bitlinearModel(m, n, k, w, scale),
      {"--target=nvptx", "--gpu-arch=" + gpuArch()}, error);
  ASSERT_TRUE(compiled) << error;
  ASSERT_NE(compiled->info().gpu, nullptr);
  // Without the loader, a GPU model's entry point refuses to run.
  std::vector<float> x = randomFloats(m * k, 11), y(m * n, -1.0f);
  EXPECT_EQ(compiled->run({x.data(), y.data()}),
            BITNET_MODEL_RUN_NEEDS_GPU_LOADER);

  Loaded loaded;
  LOAD_OR_SKIP(*compiled, loaded);
  const void *inputs[] = {x.data()};
  void *outputs[] = {y.data()};
  bitnet_status st = bitnet_context_run(loaded.context, inputs, 1, outputs, 1);
  ASSERT_EQ(st, BITNET_OK) << bitnet_status_message(st);
  std::vector<float> expected = bitnet::ref::bitlinear(x.data(), w.data(),
                                                       scale, m, n, k);
  for (int64_t i = 0; i < m * n; ++i)
    ASSERT_EQ(y[i], expected[i]) << "at token " << i / n << ", row " << i % n;
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, GPUBitLinear,
    ::testing::Values(std::make_tuple(1, 64, 64), std::make_tuple(1, 100, 200),
                      std::make_tuple(3, 256, 640), std::make_tuple(8, 96, 2560),
                      std::make_tuple(13, 70, 320),
                      std::make_tuple(1, 2560, 2560)));

TEST(GPUModel, RMSNormReluAddWithinTolerance) {
  int64_t rows = 3, d = 300;
  std::vector<float> gamma = randomFloats(d, 5);
  std::string mlir =
      "func.func @f(%x: tensor<3x300xf32>) -> tensor<3x300xf32> {\n"
      "  %g = arith.constant " + denseF32(gamma, {d}) + " : tensor<300xf32>\n"
      "  %n = bitnet.rmsnorm %x, %g : tensor<3x300xf32>, tensor<300xf32> -> tensor<3x300xf32>\n"
      "  %r = bitnet.squared_relu %n : tensor<3x300xf32>\n"
      "  %y = arith.addf %r, %x : tensor<3x300xf32>\n"
      "  return %y : tensor<3x300xf32>\n}\n";
  std::string error;
  auto compiled = CompiledModel::compile(
      mlir, {"--target=nvptx", "--gpu-arch=" + gpuArch()}, error);
  ASSERT_TRUE(compiled) << error;
  Loaded loaded;
  LOAD_OR_SKIP(*compiled, loaded);
  std::vector<float> x = randomFloats(rows * d, 3), y(rows * d);
  const void *inputs[] = {x.data()};
  void *outputs[] = {y.data()};
  bitnet_status st = bitnet_context_run(loaded.context, inputs, 1, outputs, 1);
  ASSERT_EQ(st, BITNET_OK) << bitnet_status_message(st);
  std::vector<float> n = bitnet::ref::rmsnorm(x.data(), gamma.data(), rows, d,
                                              1e-5f);
  std::vector<float> r = bitnet::ref::squaredRelu(n.data(), rows * d);
  for (int64_t i = 0; i < rows * d; ++i) {
    float expected = r[i] + x[i];
    ASSERT_NEAR(y[i], expected, 1e-5f * std::max(1.0f, std::fabs(expected)))
        << "at " << i;
  }
}

TEST(GPUModel, LoadWithoutGPUIsUnavailable) {
  bitnet_status avail = bitnet_gpu_available();
  if (avail == BITNET_OK)
    GTEST_SKIP() << "this machine has a GPU";
  bitnet_status_free(avail);
  std::string error;
  auto compiled = CompiledModel::compile(
      bitlinearModel(1, 4, 8, randomTernary(32, 1), 1.0f),
      {"--target=nvptx", "--gpu-arch=sm_90"}, error);
  ASSERT_TRUE(compiled) << error;
  bitnet_model *model = nullptr;
  bitnet_status st = bitnet_model_load(compiled->path().c_str(), &model);
  EXPECT_EQ(bitnet_status_get_code(st), BITNET_STATUS_UNAVAILABLE);
  EXPECT_NE(std::string(bitnet_status_message(st)).find("GPU model"),
            std::string::npos)
      << bitnet_status_message(st);
  bitnet_status_free(st);
  EXPECT_EQ(model, nullptr);
}

} // namespace
