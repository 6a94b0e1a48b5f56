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

#include <algorithm>
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

/// Compiles `mlir` for the GPU, or fails the test.
std::unique_ptr<CompiledModel> compileForGPU(const std::string &mlir,
                                             std::vector<std::string> flags = {}) {
  flags.push_back("--target=nvptx");
  flags.push_back("--gpu-arch=" + gpuArch());
  std::string error;
  auto compiled = CompiledModel::compile(mlir, flags, error);
  EXPECT_TRUE(compiled) << error << "\n" << mlir;
  return compiled;
}

/// Runs `loaded` once with `inputs` and `outputs`.
#define RUN_OR_FAIL(loaded, inputs, outputs)                                   \
  do {                                                                         \
    bitnet_status st = bitnet_context_run(                                     \
        (loaded).context, (inputs).data(), int32_t((inputs).size()),           \
        (outputs).data(), int32_t((outputs).size()));                          \
    ASSERT_EQ(st, BITNET_OK) << bitnet_status_message(st);                     \
  } while (0)

TEST(GPUModel, RopeBothStyles) {
  const int64_t s = 3, h = 2, d = 8;
  std::mt19937 rng(17);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x = normalVector(rng, normal, s * h * d);
  std::vector<int32_t> pos = {0, 5, 1000};
  std::vector<int64_t> pos64(pos.begin(), pos.end());
  for (std::string style : {"half", "interleaved"}) {
    SCOPED_TRACE(style);
    std::string mlir =
        "func.func @rope(%x: tensor<3x2x8xf32>, %p: tensor<3xi32>) -> "
        "tensor<3x2x8xf32> {\n"
        "  %y = bitnet.rope %x, %p {theta = 500000.0 : f32, style = "
        "#bitnet.rope_style<" + style + ">} : tensor<3x2x8xf32>, "
        "tensor<3xi32> -> tensor<3x2x8xf32>\n"
        "  return %y : tensor<3x2x8xf32>\n}\n";
    auto compiled = compileForGPU(mlir);
    ASSERT_TRUE(compiled);
    Loaded loaded;
    LOAD_OR_SKIP(*compiled, loaded);
    std::vector<float> y(x.size());
    std::vector<const void *> inputs = {x.data(), pos.data()};
    std::vector<void *> outputs = {y.data()};
    RUN_OR_FAIL(loaded, inputs, outputs);
    EXPECT_TRUE(near(bitnet::ref::rope(x.data(), pos64.data(), s, h, d,
                                       500000.0f, style == "interleaved"),
                     y.data(), 1e-5f));
  }
}

struct AttentionCase {
  int64_t s, hq, hkv, d, cap;
};

/// The model of one bitnet.attention of `c` (ModelHarness.h).
std::string attentionModel(const AttentionCase &c) {
  return bitnet::test::attentionModel(c.s, c.hq, c.hkv, c.d, c.cap);
}

void PrintTo(const AttentionCase &c, std::ostream *os) {
  *os << "S=" << c.s << " Hq=" << c.hq << " Hkv=" << c.hkv << " D=" << c.d
      << " C=" << c.cap;
}

class GPUAttention : public ::testing::TestWithParam<AttentionCase> {};

// f32 caches through bitnet_context_run: the caches are state inputs, copied
// to the device and back, updated bit for bit as the reference does.
TEST_P(GPUAttention, F32CachesMatchReference) {
  AttentionCase c = GetParam();
  std::mt19937 rng(static_cast<unsigned>(c.s * 131 + c.d));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  auto random = [&](int64_t n) { return normalVector(rng, normal, n); };
  std::vector<float> q = random(c.s * c.hq * c.d), k = random(c.s * c.hkv * c.d),
                     v = random(c.s * c.hkv * c.d),
                     kc = random(c.cap * c.hkv * c.d),
                     vc = random(c.cap * c.hkv * c.d);
  auto compiled = compileForGPU(attentionModel(c), {"--kv-cache=f32"});
  ASSERT_TRUE(compiled);
  // The descriptor (no GPU needed): the caches are state inputs and the
  // updated caches no outputs of their own.
  const bitnet_model_info &info = compiled->info();
  ASSERT_EQ(info.num_inputs, 6);
  ASSERT_EQ(info.num_outputs, 1);
  for (int i = 0; i < 6; ++i)
    EXPECT_EQ(info.inputs[i].flags, (i == 3 || i == 4) ? BITNET_TENSOR_STATE : 0)
        << "input " << i;

  Loaded loaded;
  LOAD_OR_SKIP(*compiled, loaded);
  for (int32_t position : {0, 1, 1000 /* clamped to cap - s */}) {
    SCOPED_TRACE("position " + std::to_string(position));
    std::vector<float> o(q.size()), kState = kc, vState = vc;
    std::vector<const void *> inputs = {q.data(),      k.data(),
                                        v.data(),      kState.data(),
                                        vState.data(), &position};
    std::vector<void *> outputs = {o.data()};
    RUN_OR_FAIL(loaded, inputs, outputs);
    std::vector<float> kRef = kc, vRef = vc;
    std::vector<float> expected = bitnet::ref::attention(
        q.data(), k.data(), v.data(), kRef.data(), vRef.data(), position, c.s,
        c.hq, c.hkv, c.d, c.cap, 1.0f / std::sqrt(float(c.d)));
    EXPECT_TRUE(near(expected, o.data(), 1e-5f));
    EXPECT_TRUE(bitEqual(kRef, kState.data()));
    EXPECT_TRUE(bitEqual(vRef, vState.data()));
  }
}

// f16 caches (the default) kept on the device over several decode steps:
// uploaded once, then only the new rows, the query and the position move
// (bitnet_context_gpu_upload / _launch / _download). Against the reference
// on f16-rounded rows.
TEST_P(GPUAttention, F16CachesStayOnTheDevice) {
  AttentionCase c = GetParam();
  std::mt19937 rng(static_cast<unsigned>(c.s * 7 + c.d));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  auto random = [&](int64_t n) { return normalVector(rng, normal, n); };
  auto roundF16 = [](std::vector<float> v) {
    for (float &e : v)
      e = static_cast<float>(static_cast<_Float16>(e));
    return v;
  };
  auto compiled = compileForGPU(attentionModel(c));
  ASSERT_TRUE(compiled);
  ASSERT_EQ(compiled->info().inputs[3].dtype, BITNET_DTYPE_F16);
  Loaded loaded;
  LOAD_OR_SKIP(*compiled, loaded);
  bitnet_context *ctx = loaded.context;
  auto check = [](bitnet_status st) {
    std::string message = st ? bitnet_status_message(st) : "";
    bitnet_status_free(st);
    return message;
  };
  std::vector<_Float16> zeros(c.cap * c.hkv * c.d, _Float16(0.0f));
  ASSERT_EQ(check(bitnet_context_gpu_upload(ctx, 3, zeros.data())), "");
  ASSERT_EQ(check(bitnet_context_gpu_upload(ctx, 4, zeros.data())), "");
  std::vector<float> kRef(zeros.size(), 0.0f), vRef(zeros.size(), 0.0f);
  for (int32_t position = 0; position + c.s <= c.cap && position < 3 * c.s;
       position += static_cast<int32_t>(c.s)) {
    SCOPED_TRACE("position " + std::to_string(position));
    std::vector<float> q = random(c.s * c.hq * c.d),
                       k = random(c.s * c.hkv * c.d),
                       v = random(c.s * c.hkv * c.d), o(q.size());
    ASSERT_EQ(check(bitnet_context_gpu_upload(ctx, 0, q.data())), "");
    ASSERT_EQ(check(bitnet_context_gpu_upload(ctx, 1, k.data())), "");
    ASSERT_EQ(check(bitnet_context_gpu_upload(ctx, 2, v.data())), "");
    ASSERT_EQ(check(bitnet_context_gpu_upload(ctx, 5, &position)), "");
    ASSERT_EQ(check(bitnet_context_gpu_launch(ctx, 0, -1)), "");
    ASSERT_EQ(check(bitnet_context_gpu_download(ctx, 6, o.data())), "");
    std::vector<float> kR = roundF16(k), vR = roundF16(v);
    std::vector<float> expected = bitnet::ref::attention(
        q.data(), kR.data(), vR.data(), kRef.data(), vRef.data(), position,
        c.s, c.hq, c.hkv, c.d, c.cap, 1.0f / std::sqrt(float(c.d)));
    EXPECT_TRUE(near(expected, o.data(), 1e-5f));
  }
  std::vector<_Float16> kState(zeros.size()), vState(zeros.size());
  ASSERT_EQ(check(bitnet_context_gpu_download(ctx, 3, kState.data())), "");
  ASSERT_EQ(check(bitnet_context_gpu_download(ctx, 4, vState.data())), "");
  for (size_t i = 0; i < kRef.size(); ++i) {
    ASSERT_EQ(static_cast<float>(kState[i]), kRef[i]) << "k element " << i;
    ASSERT_EQ(static_cast<float>(vState[i]), vRef[i]) << "v element " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, GPUAttention,
    ::testing::Values(AttentionCase{1, 4, 1, 32, 9}, AttentionCase{5, 6, 3, 16, 12},
                      AttentionCase{2, 8, 2, 64, 7},
                      // The 2B model's heads at decode, a long cache.
                      AttentionCase{1, 20, 5, 128, 600}),
    [](const ::testing::TestParamInfo<AttentionCase> &info) {
      const AttentionCase &c = info.param;
      return "s" + std::to_string(c.s) + "_h" + std::to_string(c.hq) + "_kv" +
             std::to_string(c.hkv) + "_d" + std::to_string(c.d) + "_c" +
             std::to_string(c.cap);
    });

// The bundled decoder, a whole step on the GPU, against its CPU build over
// a few decode steps: the KV caches stay on the device (uploaded zeroed
// once), the logits agree within a tolerance (float parts in another order
// can move an activation across a quantisation step) and pick the same
// next token.
TEST(GPUModel, FortunesDecoderAgreesWithTheCPUBuild) {
  std::string error;
  auto gpu = CompiledModel::compileFile(
      BITNET_FORTUNES_MODEL,
      {"--input-shape=tokens:1", "--target=nvptx", "--gpu-arch=" + gpuArch()},
      error);
  ASSERT_TRUE(gpu) << error;
  auto cpu = CompiledModel::compileFile(BITNET_FORTUNES_MODEL,
                                        {"--input-shape=tokens:1"}, error);
  ASSERT_TRUE(cpu) << error;
  const bitnet_model_info &info = gpu->info();
  ASSERT_EQ(info.num_inputs, cpu->info().num_inputs);
  ASSERT_EQ(info.num_outputs, 1);
  for (int32_t i = 2; i < info.num_inputs; ++i)
    EXPECT_EQ(info.inputs[i].flags, BITNET_TENSOR_STATE) << "input " << i;

  Loaded loaded;
  LOAD_OR_SKIP(*gpu, loaded);
  // CPU state buffers, zeroed; the GPU's are uploaded zeroed once.
  std::vector<std::vector<char>> cpuState;
  for (int32_t i = 2; i < info.num_inputs; ++i) {
    int64_t bytes = bitnet_dtype_size(info.inputs[i].dtype);
    for (int32_t d = 0; d < info.inputs[i].rank; ++d)
      bytes *= info.inputs[i].shape[d];
    cpuState.emplace_back(bytes, 0);
    bitnet_status st = bitnet_context_gpu_upload(loaded.context, i,
                                                 cpuState.back().data());
    ASSERT_EQ(st, BITNET_OK) << bitnet_status_message(st);
  }
  int64_t vocab = info.outputs[0].shape[info.outputs[0].rank - 1];
  for (int32_t position = 0; position < 6; ++position) {
    SCOPED_TRACE("position " + std::to_string(position));
    int32_t token = (7 * position + 3) % static_cast<int32_t>(vocab);
    std::vector<float> cpuLogits(vocab), gpuLogits(vocab);
    std::vector<void *> buffers = {&token, &position};
    for (auto &state : cpuState)
      buffers.push_back(state.data());
    buffers.push_back(cpuLogits.data());
    ASSERT_EQ(cpu->run(buffers), 0);
    auto ok = [](bitnet_status st) {
      std::string message = st ? bitnet_status_message(st) : "";
      bitnet_status_free(st);
      return message;
    };
    ASSERT_EQ(ok(bitnet_context_gpu_upload(loaded.context, 0, &token)), "");
    ASSERT_EQ(ok(bitnet_context_gpu_upload(loaded.context, 1, &position)), "");
    ASSERT_EQ(ok(bitnet_context_gpu_launch(loaded.context, 0, -1)), "");
    ASSERT_EQ(ok(bitnet_context_gpu_download(loaded.context, info.num_inputs,
                                             gpuLogits.data())),
              "");
    float scale = 1.0f;
    for (float v : cpuLogits)
      scale = std::max(scale, std::fabs(v));
    for (int64_t i = 0; i < vocab; ++i)
      ASSERT_NEAR(gpuLogits[i], cpuLogits[i], 0.05f * scale) << "logit " << i;
    EXPECT_EQ(std::max_element(gpuLogits.begin(), gpuLogits.end()) -
                  gpuLogits.begin(),
              std::max_element(cpuLogits.begin(), cpuLogits.end()) -
                  cpuLogits.begin());
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
