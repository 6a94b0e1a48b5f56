//===- EndToEndTest.cpp - Compiled models against the reference -*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// Each test writes a small model in the bitnet dialect, compiles it with
// `bitnet-compile --emit=so`, loads it with dlopen, runs it on random and edge
// inputs and compares with the scalar reference. The quantised paths are
// compared bit for bit (float outputs included: the contract fixes the order
// of every float operation there); the others within a stated tolerance.
//
//===----------------------------------------------------------------------===//

#include "ModelHarness.h"

#include "bitnet/Reference/Numerics.h"
#include "bitnet_rt/bitnet_rt.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <sstream>

using namespace bitnet;
using bitnet::test::bitEqual;
using bitnet::test::CompiledModel;
using bitnet::test::denseF32;
using bitnet::test::denseHex;
using bitnet::test::denseInt;
using bitnet::test::near;
using bitnet::test::normalVector;
using bitnet::test::randomTernary;
using bitnet::test::shapeStr;

namespace {

std::unique_ptr<CompiledModel> compileOrFail(const std::string &mlir,
                                             std::vector<std::string> flags = {}) {
  std::string error;
  auto model = CompiledModel::compile(mlir, flags, error);
  EXPECT_TRUE(model) << "compilation failed:\n" << error << "\n" << mlir;
  return model;
}

/// The kernel families bitnet-compile can use on this machine, as flags.
std::vector<std::string> kernelFlags() {
  std::vector<std::string> flags = {"--kernels=reference"};
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vnni")) {
    flags.push_back("--kernels=avx512vnni");
    if (__builtin_cpu_supports("avx512vbmi"))
      flags.push_back("--kernels=avx512-lut");
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("avxvnni"))
    flags.push_back("--kernels=avxvnni");
  if (__builtin_cpu_supports("avx2"))
    flags.push_back("--kernels=avx2");
  return flags;
}

/// "MxNxK", as a tuned entry names a layer's shape.
std::string mnk(int64_t m, int64_t n, int64_t k) {
  return std::to_string(m) + "x" + std::to_string(n) + "x" + std::to_string(k);
}

enum class Activations { Random, ZeroRow, Saturating, Ties };
enum class Weights { Random, AllZero, AllPlusOne, AllMinusOne };

std::vector<float> makeActivations(Activations kind, int64_t m, int64_t k,
                                   std::mt19937 &rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(m * k);
  for (float &v : x)
    v = normal(rng);
  switch (kind) {
  case Activations::Random:
    break;
  case Activations::ZeroRow:
    std::fill(x.begin(), x.begin() + k, 0.0f);
    break;
  case Activations::Saturating:
    // One huge value per row: everything else quantises to 0 or +-1, and the
    // maximum to exactly +-127.
    for (int64_t r = 0; r < m; ++r)
      x[r * k + (r % k)] = (r % 2 ? -3.0e30f : 3.0e30f);
    break;
  case Activations::Ties:
    // max|x| = 127 gives s_x = 1: x * s_x lands exactly on .5 ties.
    for (int64_t r = 0; r < m; ++r)
      for (int64_t i = 0; i < k; ++i)
        x[r * k + i] = i == 0 ? 127.0f
                              : static_cast<float>((i * 7 + r) % 19) - 9.5f;
    break;
  }
  return x;
}

std::vector<float> makeWeights(Weights kind, int64_t n, int64_t k,
                               std::mt19937 &rng) {
  std::normal_distribution<float> normal(0.0f, 0.05f);
  std::vector<float> w(n * k);
  for (float &v : w) {
    switch (kind) {
    case Weights::Random:
      v = normal(rng);
      break;
    case Weights::AllZero:
      v = 0.0f;
      break;
    case Weights::AllPlusOne:
      v = 0.7f;
      break;
    case Weights::AllMinusOne:
      v = -1.3f;
      break;
    }
  }
  return w;
}

/// A model of one bitlinear layer: input `leading x k` activations, latent
/// float weights `w` (n x k) ternarised and packed as `format` at compile
/// time.
std::string linearModel(const std::vector<int64_t> &leading, int64_t n,
                        int64_t k, const std::vector<float> &w,
                        const std::string &format = "i2") {
  std::vector<int64_t> xShape = leading, yShape = leading;
  xShape.push_back(k);
  yShape.push_back(n);
  std::string xT = "tensor<" + shapeStr(xShape) + "f32>";
  std::string yT = "tensor<" + shapeStr(yShape) + "f32>";
  std::string wT = "tensor<" + shapeStr({n, k});
  std::string tT = "!bitnet.ternary<" + std::to_string(n) + "x" +
                   std::to_string(k) + ", " + format + ">";
  std::ostringstream mlir;
  mlir << "func.func @linear(%x: " << xT << ") -> " << yT << " {\n"
       << "  %w = arith.constant " << denseF32(w, {n, k}) << " : " << wT
       << "f32>\n"
       << "  %wq, %ws = bitnet.ternarize %w : " << wT << "f32> -> " << wT
       << "i8>, tensor<f32>\n"
       << "  %p = bitnet.pack %wq : " << wT << "i8> -> " << tT << "\n"
       << "  %y = bitnet.bitlinear %x, %p scale %ws : " << xT << ", " << tT
       << ", tensor<f32> -> " << yT << "\n"
       << "  return %y : " << yT << "\n}\n";
  return mlir.str();
}

struct LinearCase {
  int64_t m, n, k;
  const char *format;
  Activations activations;
  Weights weights;
};

std::string describe(const LinearCase &c) {
  static const char *acts[] = {"Random", "ZeroRow", "Saturating", "Ties"};
  static const char *ws[] = {"Random", "Zero", "Plus", "Minus"};
  std::ostringstream os;
  os << c.m << "x" << c.n << "x" << c.k << "_" << c.format << "_"
     << acts[static_cast<int>(c.activations)] << "_"
     << ws[static_cast<int>(c.weights)];
  return os.str();
}

// Readable parameters in test listings (M x N x K, format, inputs).
void PrintTo(const LinearCase &c, std::ostream *os) { *os << describe(c); }

std::string caseName(const ::testing::TestParamInfo<LinearCase> &info) {
  return describe(info.param);
}
} // namespace

//===----------------------------------------------------------------------===//
// bitlinear with constant latent weights, ternarised and packed at compile time
//===----------------------------------------------------------------------===//

class BitLinearEndToEnd : public ::testing::TestWithParam<LinearCase> {};

TEST_P(BitLinearEndToEnd, MatchesReferenceBitForBit) {
  const LinearCase &c = GetParam();
  std::mt19937 rng(static_cast<unsigned>(c.m * 1000003 + c.n * 1009 + c.k));
  std::vector<float> w = makeWeights(c.weights, c.n, c.k, rng);
  std::vector<float> x = makeActivations(c.activations, c.m, c.k, rng);

  std::string mlir = linearModel({c.m}, c.n, c.k, w, c.format);
  ref::TernaryWeights t = ref::ternarize(w.data(), c.n * c.k);
  std::vector<float> expected =
      ref::bitlinear(x.data(), t.values.data(), t.scale, c.m, c.n, c.k);
  // Every kernel family this machine runs, each bit for bit.
  for (const std::string &kernels : kernelFlags()) {
    SCOPED_TRACE(kernels);
    auto model = compileOrFail(mlir, {kernels});
    ASSERT_TRUE(model);
    ASSERT_EQ(model->info().num_inputs, 1);
    ASSERT_EQ(model->info().num_outputs, 1);
    std::vector<float> y(c.m * c.n, std::nanf(""));
    ASSERT_EQ(model->run({x.data(), y.data()}), 0);
    EXPECT_TRUE(bitEqual(expected, y.data()));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, BitLinearEndToEnd,
    ::testing::Values(
        // Odd sizes and sizes that are no multiple of 4 (i2) or 5 (base3).
        LinearCase{1, 1, 1, "i2", Activations::Random, Weights::Random},
        LinearCase{1, 4, 3, "i2", Activations::Random, Weights::Random},
        LinearCase{2, 5, 13, "base3", Activations::Random, Weights::Random},
        LinearCase{3, 7, 17, "int8", Activations::Random, Weights::Random},
        LinearCase{4, 16, 64, "i2", Activations::Random, Weights::Random},
        LinearCase{5, 33, 130, "base3", Activations::Random, Weights::Random},
        LinearCase{2, 9, 255, "i2", Activations::Random, Weights::Random},
        LinearCase{1, 3, 2560, "i2", Activations::Random, Weights::Random},
        // Edge inputs.
        LinearCase{3, 8, 24, "i2", Activations::ZeroRow, Weights::Random},
        LinearCase{3, 8, 24, "base3", Activations::Saturating, Weights::Random},
        LinearCase{4, 6, 21, "i2", Activations::Ties, Weights::Random},
        LinearCase{2, 6, 21, "int8", Activations::Ties, Weights::AllPlusOne},
        LinearCase{2, 6, 22, "i2", Activations::Random, Weights::AllZero},
        LinearCase{2, 6, 23, "base3", Activations::Saturating,
                   Weights::AllMinusOne},
        LinearCase{3, 5, 7, "i2", Activations::Saturating, Weights::AllPlusOne},
        // More rows than one kernel row group, prefill-sized batches.
        LinearCase{1, 130, 48, "i2", Activations::Random, Weights::Random},
        LinearCase{17, 70, 33, "i2", Activations::Random, Weights::Random},
        // Prefill loops: whole passes of 12 tokens and a rest, groups cut by
        // N (rows 32.. of a group past the matrix), edge weights.
        LinearCase{24, 100, 200, "i2", Activations::Saturating, Weights::Random},
        LinearCase{12, 64, 16, "base3", Activations::ZeroRow,
                   Weights::AllMinusOne},
        LinearCase{40, 33, 129, "i2", Activations::Ties, Weights::AllPlusOne},
        LinearCase{31, 20, 50, "int8", Activations::Random, Weights::AllZero},
        LinearCase{128, 40, 2560, "i2", Activations::Random, Weights::Random},
        LinearCase{1, 64, 640, "base3", Activations::Saturating, Weights::Random}),
    caseName);

//===----------------------------------------------------------------------===//
// The layer shapes of bitnet-b1.58-2B-4T, every kernel family
//===----------------------------------------------------------------------===//

struct ModelShape {
  const char *name;
  int64_t m, n, k;
};

void PrintTo(const ModelShape &s, std::ostream *os) {
  *os << s.name << " " << s.m << "x" << s.n << "x" << s.k;
}

class ModelShapes : public ::testing::TestWithParam<ModelShape> {};

TEST_P(ModelShapes, EveryFamilyMatchesReferenceBitForBit) {
  const ModelShape &s = GetParam();
  std::mt19937 rng(static_cast<unsigned>(s.n * 7 + s.k));
  std::vector<int8_t> wq = randomTernary(s.n * s.k, rng());
  // A row of zero weights, one of +1 and one of -1.
  std::fill_n(wq.begin(), s.k, 0);
  std::fill_n(wq.begin() + s.k, s.k, 1);
  std::fill_n(wq.begin() + 2 * s.k, s.k, -1);
  // Batches carry an all-zero token (ZeroRow); one token is random.
  std::vector<float> x = makeActivations(
      s.m > 1 ? Activations::ZeroRow : Activations::Random, s.m, s.k, rng);
  const float scale = 0.0125f;

  // The weight as int8 codes in hex: decimal text of 17 M weights would be
  // slow to write and to parse.
  std::string xT = "tensor<" + shapeStr({s.m, s.k}) + "f32>";
  std::string yT = "tensor<" + shapeStr({s.m, s.n}) + "f32>";
  std::string tT = "!bitnet.ternary<" + std::to_string(s.n) + "x" +
                   std::to_string(s.k) + ", int8>";
  std::ostringstream mlir;
  mlir << "func.func @linear(%x: " << xT << ") -> " << yT << " {\n"
       << "  %w = bitnet.constant " << denseHex(wq.data(), wq.size())
       << " : tensor<"
       << shapeStr({s.n, s.k}) << "i8> -> " << tT << "\n"
       << "  %s = arith.constant dense<" << scale << "> : tensor<f32>\n"
       << "  %y = bitnet.bitlinear %x, %w scale %s : " << xT << ", " << tT
       << ", tensor<f32> -> " << yT << "\n"
       << "  return %y : " << yT << "\n}\n";

  std::vector<float> expected =
      ref::bitlinear(x.data(), wq.data(), scale, s.m, s.n, s.k);
  for (const std::string &kernels : kernelFlags()) {
    SCOPED_TRACE(kernels);
    auto model = compileOrFail(mlir.str(), {kernels});
    ASSERT_TRUE(model);
    std::vector<float> y(s.m * s.n, std::nanf(""));
    ASSERT_EQ(model->run({x.data(), y.data()}), 0);
    EXPECT_TRUE(bitEqual(expected, y.data()));
  }
}

INSTANTIATE_TEST_SUITE_P(
    BitNet2B, ModelShapes,
    ::testing::Values(ModelShape{"qo", 1, 2560, 2560},
                      ModelShape{"kv", 1, 640, 2560},
                      ModelShape{"gate_up", 1, 6912, 2560},
                      ModelShape{"down", 1, 2560, 6912},
                      ModelShape{"qo_prefill", 128, 2560, 2560}),
    [](const ::testing::TestParamInfo<ModelShape> &info) {
      return std::string(info.param.name);
    });

//===----------------------------------------------------------------------===//
// Weights handed over at run time
//===----------------------------------------------------------------------===//

TEST(EndToEnd, PackedWeightsAsInputs) {
  // The storage of !bitnet.ternary arguments is an input of the model: the
  // unpacking runs in the compiled code, not in the folder.
  const int64_t m = 3, n = 6, k = 19;
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> tern(-1, 1);
  std::vector<int8_t> wq(n * k);
  for (int8_t &v : wq)
    v = static_cast<int8_t>(tern(rng));
  std::vector<float> x = makeActivations(Activations::Random, m, k, rng);
  float scale = 0.0421875f;
  std::vector<float> expected =
      ref::bitlinear(x.data(), wq.data(), scale, m, n, k);

  struct Format {
    const char *name;
    std::vector<uint8_t> bytes;
    int64_t bytesPerRow;
  } formats[] = {
      {"i2", ref::packI2(wq.data(), n, k), (k + 3) / 4},
      {"base3", ref::packBase3(wq.data(), n, k), (k + 4) / 5},
  };
  for (Format &f : formats) {
    std::ostringstream mlir;
    std::string tT = "!bitnet.ternary<6x19, " + std::string(f.name) + ">";
    mlir << "func.func @linear(%x: tensor<3x19xf32>, %w: " << tT
         << ", %s: tensor<f32>) -> tensor<3x6xf32> {\n"
         << "  %y = bitnet.bitlinear %x, %w scale %s : tensor<3x19xf32>, "
         << tT << ", tensor<f32> -> tensor<3x6xf32>\n"
         << "  return %y : tensor<3x6xf32>\n}\n";
    auto model = compileOrFail(mlir.str());
    ASSERT_TRUE(model);
    const bitnet_model_info &info = model->info();
    ASSERT_EQ(info.num_inputs, 3);
    EXPECT_EQ(info.inputs[1].dtype, BITNET_DTYPE_I8);
    EXPECT_EQ(info.inputs[1].shape[1], f.bytesPerRow) << f.name;
    std::vector<float> y(m * n);
    ASSERT_EQ(model->run({x.data(), f.bytes.data(), &scale, y.data()}), 0);
    EXPECT_TRUE(bitEqual(expected, y.data())) << f.name;
  }
}

TEST(EndToEnd, TernarizeAndPackAtRunTime) {
  // Latent float weights as an input: absmean, rounding and packing all run
  // in the compiled code.
  const int64_t m = 2, n = 5, k = 11;
  std::mt19937 rng(11);
  std::vector<float> w = makeWeights(Weights::Random, n, k, rng);
  w[3] = 0.0f;
  std::vector<float> x = makeActivations(Activations::Random, m, k, rng);
  const char *mlir = R"(
func.func @latent(%x: tensor<2x11xf32>, %w: tensor<5x11xf32>)
    -> (tensor<2x5xf32>, tensor<5x11xi8>, tensor<f32>) {
  %wq, %ws = bitnet.ternarize %w : tensor<5x11xf32> -> tensor<5x11xi8>, tensor<f32>
  %p = bitnet.pack %wq : tensor<5x11xi8> -> !bitnet.ternary<5x11, i2>
  %y = bitnet.bitlinear %x, %p scale %ws : tensor<2x11xf32>, !bitnet.ternary<5x11, i2>, tensor<f32> -> tensor<2x5xf32>
  return %y, %wq, %ws : tensor<2x5xf32>, tensor<5x11xi8>, tensor<f32>
}
)";
  auto model = compileOrFail(mlir);
  ASSERT_TRUE(model);
  std::vector<float> y(m * n);
  std::vector<int8_t> wq(n * k);
  float ws = 0.0f;
  ASSERT_EQ(model->run({x.data(), w.data(), y.data(), wq.data(), &ws}), 0);
  ref::TernaryWeights t = ref::ternarize(w.data(), n * k);
  EXPECT_EQ(ws, t.scale);
  EXPECT_EQ(wq, t.values);
  EXPECT_TRUE(bitEqual(
      ref::bitlinear(x.data(), t.values.data(), t.scale, m, n, k), y.data()));
}

//===----------------------------------------------------------------------===//
// The other ops
//===----------------------------------------------------------------------===//

TEST(EndToEnd, QuantizeActivationsAndTernaryMatmul) {
  const int64_t m = 4, n = 3, k = 9;
  std::mt19937 rng(3);
  std::vector<float> x = makeActivations(Activations::Ties, m, k, rng);
  std::fill(x.begin() + k, x.begin() + 2 * k, 0.0f); // an all-zero row
  std::uniform_int_distribution<int> tern(-1, 1);
  std::vector<int64_t> wq(n * k);
  std::vector<int8_t> wq8(n * k);
  for (size_t i = 0; i < wq.size(); ++i)
    wq8[i] = static_cast<int8_t>(wq[i] = tern(rng));
  std::ostringstream mlir;
  mlir << "func.func @q(%x: tensor<4x9xf32>) -> (tensor<4x9xi8>, "
          "tensor<4xf32>, tensor<4x3xi32>) {\n"
       << "  %q, %s = bitnet.quantize_activations %x : tensor<4x9xf32> -> "
          "tensor<4x9xi8>, tensor<4xf32>\n"
       << "  %w = bitnet.constant " << denseInt(wq, {n, k})
       << " : tensor<3x9xi8> -> !bitnet.ternary<3x9, int8>\n"
       << "  %acc = bitnet.ternary_matmul %q, %w : tensor<4x9xi8>, "
          "!bitnet.ternary<3x9, int8> -> tensor<4x3xi32>\n"
       << "  return %q, %s, %acc : tensor<4x9xi8>, tensor<4xf32>, "
          "tensor<4x3xi32>\n}\n";
  // Re-encoded as base3 at compile time: the matmul then unpacks base-3.
  auto model = compileOrFail(mlir.str(), {"--weight-format=base3"});
  ASSERT_TRUE(model);
  std::vector<int8_t> q(m * k);
  std::vector<float> s(m);
  std::vector<int32_t> acc(m * n);
  ASSERT_EQ(model->run({x.data(), q.data(), s.data(), acc.data()}), 0);
  ref::QuantizedActivations expected = ref::quantizeActivations(x.data(), m, k);
  EXPECT_EQ(q, expected.values);
  EXPECT_TRUE(bitEqual(expected.scale, s.data()));
  EXPECT_EQ(acc, ref::ternaryMatmul(expected.values.data(), wq8.data(), m, n, k));
}

TEST(EndToEnd, BatchedInputKeepsLeadingDimensions) {
  // [2, 3, K] activations: every token is quantised on its own.
  const int64_t b = 2, t = 3, n = 4, k = 10;
  std::mt19937 rng(5);
  std::vector<float> w = makeWeights(Weights::Random, n, k, rng);
  std::vector<float> x = makeActivations(Activations::Random, b * t, k, rng);
  std::string mlir = linearModel({b, t}, n, k, w);
  auto model = compileOrFail(mlir);
  ASSERT_TRUE(model);
  std::vector<float> y(b * t * n);
  ASSERT_EQ(model->run({x.data(), y.data()}), 0);
  ref::TernaryWeights tw = ref::ternarize(w.data(), n * k);
  EXPECT_TRUE(bitEqual(
      ref::bitlinear(x.data(), tw.values.data(), tw.scale, b * t, n, k),
      y.data()));
}

TEST(EndToEnd, RMSNormAndSquaredRelu) {
  const int64_t rows = 3, d = 37;
  std::mt19937 rng(13);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<float> x(rows * d), gamma(d);
  for (float &v : x)
    v = normal(rng);
  for (float &v : gamma)
    v = normal(rng);
  std::fill(x.begin(), x.begin() + d, 0.0f); // all-zero row: eps only
  std::ostringstream mlir;
  mlir << "func.func @norm(%x: tensor<3x37xf32>, %g: tensor<37xf32>) -> "
          "(tensor<3x37xf32>, tensor<3x37xf32>) {\n"
       << "  %y = bitnet.rmsnorm %x, %g {epsilon = 1.0e-05 : f32} : "
          "tensor<3x37xf32>, tensor<37xf32> -> tensor<3x37xf32>\n"
       << "  %r = bitnet.squared_relu %x : tensor<3x37xf32>\n"
       << "  return %y, %r : tensor<3x37xf32>, tensor<3x37xf32>\n}\n";
  auto model = compileOrFail(mlir.str());
  ASSERT_TRUE(model);
  std::vector<float> y(rows * d), r(rows * d);
  ASSERT_EQ(model->run({x.data(), gamma.data(), y.data(), r.data()}), 0);
  EXPECT_TRUE(near(ref::rmsnorm(x.data(), gamma.data(), rows, d, 1e-5f),
                   y.data(), 2e-6f));
  EXPECT_TRUE(bitEqual(ref::squaredRelu(x.data(), rows * d), r.data()));
}

/// A model of two RMSNorms over [rows, d]: of `x`, and of relu(g)^2 * u (the
/// gated form the CPU kernel fuses; the product as the importers write it).
std::string normModel(int64_t rows, int64_t d) {
  std::string t = "tensor<" + std::to_string(rows) + "x" + std::to_string(d) +
                  "xf32>";
  std::string gamma = "tensor<" + std::to_string(d) + "xf32>";
  std::ostringstream mlir;
  mlir << "#id = affine_map<(i, j) -> (i, j)>\n"
       << "func.func @norms(%x: " << t << ", %g: " << t << ", %u: " << t
       << ", %gamma: " << gamma << ") -> (" << t << ", " << t << ") {\n"
       << "  %y = bitnet.rmsnorm %x, %gamma {epsilon = 1.0e-05 : f32} : " << t
       << ", " << gamma << " -> " << t << "\n"
       << "  %r = bitnet.squared_relu %g : " << t << "\n"
       << "  %e = tensor.empty() : " << t << "\n"
       << "  %h = linalg.generic {indexing_maps = [#id, #id, #id], "
          "iterator_types = [\"parallel\", \"parallel\"]} ins(%r, %u : "
       << t << ", " << t << ") outs(%e : " << t << ") {\n"
       << "  ^bb0(%a: f32, %b: f32, %o: f32):\n"
       << "    %p = arith.mulf %a, %b : f32\n"
       << "    linalg.yield %p : f32\n"
       << "  } -> " << t << "\n"
       << "  %z = bitnet.rmsnorm %h, %gamma {epsilon = 1.0e-05 : f32} : " << t
       << ", " << gamma << " -> " << t << "\n"
       << "  return %y, %z : " << t << ", " << t << "\n}\n";
  return mlir.str();
}

/// Runs the compiled model `so` once with `inputs` into `outputs`, on
/// `threads` threads of a libbitnet_rt pool (1: on the calling thread).
void runOnThreads(const std::string &so, int threads,
                  const std::vector<const void *> &inputs,
                  const std::vector<void *> &outputs) {
  bitnet_model *model = nullptr;
  bitnet_thread_pool *pool = nullptr;
  bitnet_context *context = nullptr;
  ASSERT_EQ(bitnet_model_load(so.c_str(), &model), nullptr);
  if (threads > 1) {
    ASSERT_EQ(bitnet_thread_pool_create(threads, &pool), nullptr);
  }
  bitnet_context_options options = {};
  options.thread_pool = pool;
  ASSERT_EQ(bitnet_context_create(model, &options, &context), nullptr);
  EXPECT_EQ(bitnet_context_run(context, inputs.data(),
                               static_cast<int32_t>(inputs.size()),
                               outputs.data(),
                               static_cast<int32_t>(outputs.size())),
            nullptr);
  bitnet_context_free(context);
  bitnet_thread_pool_release(pool);
  bitnet_model_release(model);
}

TEST(EndToEnd, NormKernelsMatchReference) {
  // Widths below, at and past a vector, with tails of every kind, and the
  // 2B decoder's; rows on one thread and spread over three. Row 0 is zero
  // (eps alone), row 1 large (squares near 1e30), the rest random; g is
  // negative on half of its elements (ReLU's zeros).
  const std::pair<int64_t, int64_t> shapes[] = {
      {1, 7}, {3, 16}, {2, 37}, {5, 64}, {4, 131}, {40, 100}, {2, 2560}};
  std::mt19937 rng(29);
  std::normal_distribution<float> normal(0.0f, 1.5f);
  for (auto [rows, d] : shapes) {
    SCOPED_TRACE(shapeStr({rows, d}));
    std::vector<float> x(rows * d), g(rows * d), u(rows * d), gamma(d);
    for (std::vector<float> *v : {&x, &g, &u, &gamma})
      for (float &e : *v)
        e = normal(rng);
    std::fill(x.begin(), x.begin() + d, 0.0f);
    std::fill(g.begin(), g.begin() + d, -1.0f);
    if (rows > 1)
      for (int64_t i = d; i < 2 * d; ++i) {
        x[i] *= 1e14f;
        g[i] = std::abs(g[i]) * 1e5f;
      }
    std::vector<float> h(rows * d);
    std::vector<float> relu = ref::squaredRelu(g.data(), rows * d);
    for (int64_t i = 0; i < rows * d; ++i)
      h[i] = relu[i] * u[i];
    std::vector<float> wantY = ref::rmsnorm(x.data(), gamma.data(), rows, d, 1e-5f);
    std::vector<float> wantZ = ref::rmsnorm(h.data(), gamma.data(), rows, d, 1e-5f);
    std::string mlir = normModel(rows, d);
    // One row alone, the same kernel arithmetic: a row's result does not
    // depend on the rows beside it.
    std::string single = normModel(1, d);
    for (const std::string &kernels : kernelFlags()) {
      SCOPED_TRACE(kernels);
      std::string error;
      auto compiled = CompiledModel::compile(mlir, {kernels}, error);
      ASSERT_TRUE(compiled) << error;
      std::vector<const void *> in = {x.data(), g.data(), u.data(),
                                      gamma.data()};
      std::vector<float> y(rows * d, std::nanf("")), z(rows * d, std::nanf(""));
      runOnThreads(compiled->path(), 1, in, {y.data(), z.data()});
      EXPECT_TRUE(near(wantY, y.data(), 4e-6f));
      EXPECT_TRUE(near(wantZ, z.data(), 4e-6f));
      std::vector<float> y3(rows * d), z3(rows * d);
      runOnThreads(compiled->path(), 3, in, {y3.data(), z3.data()});
      EXPECT_TRUE(bitEqual(y, y3.data()));
      EXPECT_TRUE(bitEqual(z, z3.data()));
      auto alone = CompiledModel::compile(single, {kernels}, error);
      ASSERT_TRUE(alone) << error;
      int64_t r = rows - 1;
      std::vector<const void *> rowIn = {x.data() + r * d, g.data() + r * d,
                                         u.data() + r * d, gamma.data()};
      std::vector<float> y1(d), z1(d);
      runOnThreads(alone->path(), 1, rowIn, {y1.data(), z1.data()});
      EXPECT_TRUE(bitEqual(std::vector<float>(y.begin() + r * d, y.end()),
                           y1.data()));
      EXPECT_TRUE(bitEqual(std::vector<float>(z.begin() + r * d, z.end()),
                           z1.data()));
    }
  }
}

/// A model of one W8A8 dense layer (`quantize_input`): constant int8
/// weights `w` [n][k] and row scales, input [m][k].
std::string w8a8Model(int64_t m, int64_t n, int64_t k,
                      const std::vector<int8_t> &w,
                      const std::vector<float> &scales) {
  std::string x = "tensor<" + shapeStr({m, k}) + "f32>",
              y = "tensor<" + shapeStr({m, n}) + "f32>",
              wt = "tensor<" + shapeStr({n, k}) + "i8>",
              st = "tensor<" + std::to_string(n) + "xf32>";
  std::ostringstream mlir;
  mlir << "func.func @dense(%x: " << x << ") -> " << y << " {\n"
       << "  %w = arith.constant " << denseHex(w.data(), w.size()) << " : "
       << wt << "\n"
       << "  %s = arith.constant " << denseF32(scales, {n}) << " : " << st
       << "\n"
       << "  %y = bitnet.dense_matmul %x, %w scales %s {quantize_input} : " << x
       << ", " << wt << ", " << st << " -> " << y << "\n"
       << "  return %y : " << y << "\n}\n";
  return mlir.str();
}

TEST(EndToEnd, W8A8DenseMatchesReferenceBitForBit) {
  // K a multiple of 64 (the weight used in place) and not (a padded copy),
  // below one step, and the head's; N past a block's edge; a row of -127,
  // one of 127, one of zeros; activations random, with a zero row,
  // saturating and on rounding ties; on one thread and on three.
  struct Shape {
    int64_t m, n, k;
  };
  // 64 x 128: read blocked in every block shape below.
  const Shape shapes[] = {{1, 37, 64}, {3, 100, 70}, {2, 16, 2560},
                          {5, 33, 7},  {4, 20, 130}, {3, 64, 128}};
  std::mt19937 rng(31);
  std::uniform_int_distribution<int> code(-127, 127);
  std::uniform_real_distribution<float> scale(1e-3f, 1e-1f);
  for (Shape sh : shapes) {
    SCOPED_TRACE(shapeStr({sh.m, sh.n, sh.k}));
    std::vector<int8_t> w(sh.n * sh.k);
    for (int8_t &v : w)
      v = static_cast<int8_t>(code(rng));
    std::fill(w.begin(), w.begin() + sh.k, -127);
    std::fill(w.begin() + sh.k, w.begin() + 2 * sh.k, 127);
    std::fill(w.begin() + 2 * sh.k, w.begin() + 3 * sh.k, 0);
    std::vector<float> scales(sh.n);
    for (float &v : scales)
      v = scale(rng);
    std::string mlir = w8a8Model(sh.m, sh.n, sh.k, w, scales);
    // The kernels' own block, and blocks of 4 and 32 rows (what
    // bitnet-compile --tune may choose) with their own prefetch distances.
    std::vector<std::vector<std::string>> flagSets;
    for (const std::string &kernels : kernelFlags()) {
      flagSets.push_back({kernels});
      if (kernels == "--kernels=avx512vnni")
        for (const char *block : {"4:1:0", "32:1:2048"})
          flagSets.push_back(
              {kernels, "--tuned-kernels=dense:" + mnk(sh.m, sh.n, sh.k) +
                            ":" + block + ":1:1"});
    }
    for (const std::vector<std::string> &flags : flagSets) {
      SCOPED_TRACE(flags.back());
      auto model = compileOrFail(mlir, flags);
      ASSERT_TRUE(model);
      for (Activations kind : {Activations::Random, Activations::ZeroRow,
                               Activations::Saturating, Activations::Ties}) {
        SCOPED_TRACE("activations " + std::to_string(static_cast<int>(kind)));
        std::vector<float> x = makeActivations(kind, sh.m, sh.k, rng);
        std::vector<float> want = ref::denseW8A8(x.data(), w.data(),
                                                 scales.data(), sh.m, sh.n,
                                                 sh.k);
        std::vector<float> y(sh.m * sh.n, std::nanf(""));
        ASSERT_EQ(model->run({x.data(), y.data()}), 0);
        EXPECT_TRUE(bitEqual(want, y.data()));
        std::vector<float> y3(sh.m * sh.n, std::nanf(""));
        runOnThreads(model->path(), 3, {x.data()}, {y3.data()});
        EXPECT_TRUE(bitEqual(want, y3.data()));
      }
    }
  }
}

TEST(EndToEnd, RopeBothStyles) {
  const int64_t s = 3, h = 2, d = 8;
  std::mt19937 rng(17);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(s * h * d);
  for (float &v : x)
    v = normal(rng);
  std::vector<int32_t> pos = {0, 5, 1000};
  std::vector<int64_t> pos64(pos.begin(), pos.end());
  for (const char *style : {"half", "interleaved"}) {
    std::ostringstream mlir;
    mlir << "func.func @rope(%x: tensor<3x2x8xf32>, %p: tensor<3xi32>) -> "
            "tensor<3x2x8xf32> {\n"
         << "  %y = bitnet.rope %x, %p {theta = 500000.0 : f32, style = "
            "#bitnet.rope_style<"
         << style
         << ">} : tensor<3x2x8xf32>, tensor<3xi32> -> tensor<3x2x8xf32>\n"
         << "  return %y : tensor<3x2x8xf32>\n}\n";
    auto model = compileOrFail(mlir.str());
    ASSERT_TRUE(model);
    std::vector<float> y(s * h * d);
    ASSERT_EQ(model->run({x.data(), pos.data(), y.data()}), 0);
    bool interleaved = std::string(style) == "interleaved";
    EXPECT_TRUE(near(ref::rope(x.data(), pos64.data(), s, h, d, 500000.0f,
                               interleaved),
                     y.data(), 1e-5f))
        << style;
  }
}

TEST(EndToEnd, AttentionWithKVCache) {
  // Prefill 3 tokens at position 2 of a 6-token cache, GQA 4 heads : 2.
  const int64_t s = 3, hq = 4, hkv = 2, d = 4, cap = 6;
  std::mt19937 rng(19);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  auto randomVec = [&](int64_t n) { return normalVector(rng, normal, n); };
  std::vector<float> q = randomVec(s * hq * d), k = randomVec(s * hkv * d),
                     v = randomVec(s * hkv * d), kc = randomVec(cap * hkv * d),
                     vc = randomVec(cap * hkv * d);
  for (int32_t position : {2, 0, 99 /* clamped to cap - s */}) {
    const char *mlir = R"(
func.func @attn(%q: tensor<3x4x4xf32>, %k: tensor<3x2x4xf32>, %v: tensor<3x2x4xf32>,
                %kc: tensor<6x2x4xf32>, %vc: tensor<6x2x4xf32>, %pos: tensor<i32>)
    -> (tensor<3x4x4xf32>, tensor<6x2x4xf32>, tensor<6x2x4xf32>) {
  %o, %kc1, %vc1 = bitnet.attention %q, %k, %v, %kc, %vc, %pos
      : tensor<3x4x4xf32>, tensor<3x2x4xf32>, tensor<3x2x4xf32>,
        tensor<6x2x4xf32>, tensor<6x2x4xf32>, tensor<i32>
      -> tensor<3x4x4xf32>, tensor<6x2x4xf32>, tensor<6x2x4xf32>
  return %o, %kc1, %vc1 : tensor<3x4x4xf32>, tensor<6x2x4xf32>, tensor<6x2x4xf32>
}
)";
    auto model = compileOrFail(mlir, {"--kv-cache=f32"});
    ASSERT_TRUE(model);
    // The caches are updated in place: state inputs, and no outputs of their
    // own.
    const bitnet_model_info &info = model->info();
    ASSERT_EQ(info.num_inputs, 6);
    ASSERT_EQ(info.num_outputs, 1);
    for (int i = 0; i < 5; ++i)
      EXPECT_EQ(info.inputs[i].flags, (i == 3 || i == 4) ? BITNET_TENSOR_STATE : 0)
          << "input " << i;
    // The position may hold [0, C - S]: the runtime refuses any other.
    EXPECT_EQ(info.inputs[5].flags, BITNET_TENSOR_RANGE);
    EXPECT_EQ(info.inputs[5].min_value, 0);
    EXPECT_EQ(info.inputs[5].max_value, cap - s);
    std::vector<float> o(s * hq * d), kOut = kc, vOut = vc;
    ASSERT_EQ(model->run({q.data(), k.data(), v.data(), kOut.data(),
                          vOut.data(), &position, o.data()}),
              0);
    std::vector<float> kRef = kc, vRef = vc;
    std::vector<float> expected =
        ref::attention(q.data(), k.data(), v.data(), kRef.data(), vRef.data(),
                       position, s, hq, hkv, d, cap, 0.5f);
    EXPECT_TRUE(near(expected, o.data(), 1e-5f)) << "position " << position;
    EXPECT_TRUE(bitEqual(kRef, kOut.data())) << "position " << position;
    EXPECT_TRUE(bitEqual(vRef, vOut.data())) << "position " << position;
  }
}

// Dense float layers (a decoder's head): every kernel family and the
// reference, f32, f16 and bf16 weights (values chosen exact in both, so that
// all compare with one reference), shapes with N not a multiple of the four
// rows of a block and K not a multiple of the vector width.
struct DenseCase {
  int64_t m, n, k;
};

class DenseEndToEnd : public ::testing::TestWithParam<DenseCase> {};

/// The block shapes (rows, vectors, bytes ahead) bitnet-compile --tune
/// times for 16- and 8-float vectors, beside the defaults.
constexpr const char *kTunedBlocks16[] = {"8:2:256",  "16:1:1024", "16:1:0",
                                          "32:1:256", "16:2:512",  "16:2:0",
                                          "4:4:1024"};
constexpr const char *kTunedBlocks8[] = {"4:2:256", "8:1:256", "8:1:1024",
                                         "2:4:1024"};

/// The flags the dense kernels are checked with beside this machine's
/// defaults: each CPU the kernels take their own block shape for
/// (DenseKernels.cpp), where this machine runs its code, so that every
/// shape is checked on any machine that can; and, with `tuned`, each block
/// shape --tune may choose, for the case's shape and its one-token shape.
std::vector<std::vector<std::string>>
denseCPUFlags(const std::string &kernels, const DenseCase &c, bool tuned) {
  std::vector<std::vector<std::string>> cpus = {{}};
  auto addTuned = [&](const char *block) {
    std::string entry = "dense:" + mnk(c.m, c.n, c.k) + ":" + block + ":1:1";
    if (c.m > 1)
      entry += ",dense:" + mnk(1, c.n, c.k) + ":" + block + ":1:1";
    cpus.push_back({"--tuned-kernels=" + entry});
  };
  if (tuned && kernels == "--kernels=avx2")
    for (const char *block : kTunedBlocks8)
      addTuned(block);
  if (kernels != "--kernels=avx512vnni")
    return cpus;
  if (tuned)
    for (const char *block : kTunedBlocks16)
      addTuned(block);
  cpus.push_back({"--cpu=cascadelake"});
  if (__builtin_cpu_supports("avx512vbmi2") &&
      __builtin_cpu_supports("avx512bitalg") &&
      __builtin_cpu_supports("avx512vpopcntdq") &&
      __builtin_cpu_supports("avx512ifma") &&
      __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("gfni") &&
      __builtin_cpu_supports("vaes") && __builtin_cpu_supports("vpclmulqdq"))
    cpus.push_back({"--cpu=znver4"});
  return cpus;
}

TEST_P(DenseEndToEnd, MatchesReference) {
  const DenseCase &c = GetParam();
  std::mt19937 rng(static_cast<unsigned>(c.m * 7919 + c.n * 31 + c.k));
  std::uniform_int_distribution<int> steps(-128, 128);
  std::vector<float> w(c.n * c.k), x(c.m * c.k);
  for (float &v : w)
    v = steps(rng) / 64.0f; // exact in f16
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (float &v : x)
    v = normal(rng);
  auto source = [&](int64_t m) {
    std::ostringstream mlir;
    std::string xt = "tensor<" + shapeStr({m, c.k}) + "f32>";
    std::string wt = "tensor<" + shapeStr({c.n, c.k}) + "f32>";
    std::string yt = "tensor<" + shapeStr({m, c.n}) + "f32>";
    mlir << "func.func @dense(%x: " << xt << ") -> " << yt << " {\n"
         << "  %w = arith.constant " << denseF32(w, {c.n, c.k}) << " : " << wt
         << "\n  %y = bitnet.dense_matmul %x, %w : " << xt << ", " << wt
         << " -> " << yt << "\n  return %y : " << yt << "\n}\n";
    return mlir.str();
  };
  std::vector<float> w8 = ref::int8Rows(w.data(), c.n, c.k);
  // The block shapes --tune may choose, on some of the shapes.
  bool tuned = (c.m == 1 && c.n == 97) || (c.m == 7 && c.n == 33) ||
               (c.m == 2 && c.n == 1030) || c.m == 11 || c.n == 64;
  for (const std::string &kernels : kernelFlags())
    for (const std::vector<std::string> &cpu :
         denseCPUFlags(kernels, c, tuned))
    for (std::string precision : {"f32", "f16", "bf16", "int8"}) {
      bool blockShape = !cpu.empty() && cpu[0].rfind("--tuned-kernels", 0) == 0;
      if (blockShape && precision == "f32")
        continue;
      const std::vector<float> &wp = precision == "int8" ? w8 : w;
      std::vector<float> expected =
          ref::denseMatmul(x.data(), wp.data(), c.m, c.n, c.k);
      std::vector<std::string> flags = cpu;
      flags.push_back(kernels);
      flags.push_back("--float-weights=" + precision);
      SCOPED_TRACE(kernels + " " + precision + " " +
                   (cpu.empty() ? "this CPU" : cpu[0]));
      auto model = compileOrFail(source(c.m), flags);
      ASSERT_TRUE(model);
      std::vector<float> y(c.m * c.n, std::nanf(""));
      ASSERT_EQ(model->run({x.data(), y.data()}), 0);
      // A token's row is the same, bit for bit, as when it is alone (a
      // batched decoder's sequences do not change each other's logits).
      if (c.m > 1) {
        auto single = compileOrFail(source(1), flags);
        ASSERT_TRUE(single);
        for (int64_t i = 0; i < c.m; ++i) {
          std::vector<float> row(c.n, std::nanf(""));
          ASSERT_EQ(single->run({x.data() + i * c.k, row.data()}), 0);
          EXPECT_TRUE(bitEqual(row, y.data() + i * c.n)) << "token " << i;
        }
      }
      // Float sums in another order: relative to the sum of |terms| (bf16
      // weights on vdpbf16ps too: x split into three bf16 parts, every
      // product exact).
      for (int64_t i = 0; i < c.m; ++i)
        for (int64_t j = 0; j < c.n; ++j) {
          double scale = 0;
          for (int64_t l = 0; l < c.k; ++l)
            scale += std::fabs(x[i * c.k + l] * wp[j * c.k + l]);
          EXPECT_NEAR(y[i * c.n + j], expected[i * c.n + j],
                      1e-6 * scale + 1e-30)
              << "y[" << i << ", " << j << "]";
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Shapes, DenseEndToEnd,
                         ::testing::Values(DenseCase{1, 1, 1},
                                           DenseCase{1, 5, 16},
                                           DenseCase{1, 97, 128},
                                           DenseCase{3, 10, 37},
                                           DenseCase{7, 33, 260},
                                           DenseCase{2, 19, 53},
                                           DenseCase{2, 1030, 64},
                                           // Tiles of several tokens, and
                                           // a last tile of fewer.
                                           DenseCase{4, 24, 64},
                                           DenseCase{8, 45, 70},
                                           DenseCase{11, 9, 33},
                                           // Blocked weights: whole blocks
                                           // of every default shape.
                                           DenseCase{1, 64, 96},
                                           DenseCase{3, 64, 96}));

// A bf16 head's products are exact (its weights widened to f32, x as it is):
// a row holding one weight of 1 gives back x's value bit for bit, on this
// CPU, on one without AVX512-BF16 (--cpu=cascadelake) and with AVX2.
TEST(EndToEnd, BF16HeadProductsAreExact) {
  const int64_t m = 2, n = 40, k = 96;
  std::mt19937 rng(23);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(m * k), w(n * k, 0.0f);
  for (float &v : x)
    v = normal(rng);
  for (int64_t r = 0; r < n; ++r)
    w[r * k + (r * 7) % k] = 1.0f;
  std::vector<float> want(m * n);
  for (int64_t t = 0; t < m; ++t)
    for (int64_t r = 0; r < n; ++r)
      want[t * n + r] = x[t * k + (r * 7) % k];
  std::ostringstream mlir;
  mlir << "func.func @dense(%x: tensor<2x96xf32>) -> tensor<2x40xf32> {\n"
       << "  %w = arith.constant " << denseF32(w, {n, k})
       << " : tensor<40x96xf32>\n"
       << "  %y = bitnet.dense_matmul %x, %w : tensor<2x96xf32>, "
          "tensor<40x96xf32> -> tensor<2x40xf32>\n"
       << "  return %y : tensor<2x40xf32>\n}\n";
  for (const std::vector<std::string> &flags :
       std::vector<std::vector<std::string>>{
           {}, {"--cpu=cascadelake"}, {"--kernels=avx2"}}) {
    std::vector<std::string> all = flags;
    all.push_back("--float-weights=bf16");
    SCOPED_TRACE(flags.empty() ? "this CPU" : flags[0]);
    auto model = compileOrFail(mlir.str(), all);
    ASSERT_TRUE(model);
    std::vector<float> y(m * n, std::nanf(""));
    ASSERT_EQ(model->run({x.data(), y.data()}), 0);
    EXPECT_TRUE(bitEqual(want, y.data()));
  }
}

TEST(EndToEnd, EmbeddingClampsAndWrapsIds) {
  const int64_t vocab = 11, d = 19;
  std::vector<float> table(vocab * d);
  for (int64_t i = 0; i < vocab * d; ++i)
    table[i] = float(i % 97 - 48) / 16.0f; // exact in f16
  std::vector<int32_t> ids = {0, 3, 10, -1, -11, 11, 1000, -1000};
  int64_t count = static_cast<int64_t>(ids.size());
  std::string tt = "tensor<" + shapeStr({vocab, d}) + "f32>";
  std::string it = "tensor<" + shapeStr({count}) + "i32>";
  std::string yt = "tensor<" + shapeStr({count, d}) + "f32>";
  std::ostringstream mlir;
  mlir << "func.func @embed(%ids: " << it << ") -> " << yt << " {\n"
       << "  %t = arith.constant " << denseF32(table, {vocab, d}) << " : " << tt
       << "\n  %y = bitnet.embedding %t, %ids : " << tt << ", " << it << " -> "
       << yt << "\n  return %y : " << yt << "\n}\n";
  std::vector<float> expected =
      ref::embedding(table.data(), vocab, d, ids.data(), count);
  std::vector<float> table8 = ref::int8Rows(table.data(), vocab, d);
  std::vector<float> expected8 =
      ref::embedding(table8.data(), vocab, d, ids.data(), count);
  for (std::string precision : {"f32", "f16", "int8"}) {
    SCOPED_TRACE(precision);
    auto model = compileOrFail(mlir.str(), {"--float-weights=" + precision});
    ASSERT_TRUE(model);
    std::vector<float> y(count * d, std::nanf(""));
    ASSERT_EQ(model->run({ids.data(), y.data()}), 0);
    EXPECT_TRUE(bitEqual(precision == "int8" ? expected8 : expected, y.data()));
  }
}

// A tied head: the embedding and the dense layer read one table, which the
// dense kernels store blocked where whole blocks cover it (64 x 128: on
// every CPU's default shape). The embedding's rows come back bit for bit,
// ids clamped and wrapped as ever; the logits within the float tolerance.
TEST(EndToEnd, TiedEmbeddingReadsTheBlockedTable) {
  const int64_t vocab = 64, d = 128;
  std::vector<float> table(vocab * d);
  for (int64_t i = 0; i < vocab * d; ++i)
    table[i] = float((i * 37) % 257 - 128) / 64.0f; // exact in f16, bf16
  std::vector<int32_t> ids = {0, 17, 63, -1, -64, 64, 1000, 31};
  int64_t count = static_cast<int64_t>(ids.size());
  std::mt19937 rng(41);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(d);
  for (float &v : x)
    v = normal(rng);
  std::string tt = "tensor<" + shapeStr({vocab, d}) + "f32>";
  std::string it = "tensor<" + shapeStr({count}) + "i32>";
  std::string et = "tensor<" + shapeStr({count, d}) + "f32>";
  std::string xt = "tensor<" + shapeStr({1, d}) + "f32>";
  std::string yt = "tensor<" + shapeStr({1, vocab}) + "f32>";
  std::ostringstream mlir;
  mlir << "func.func @tied(%ids: " << it << ", %x: " << xt << ") -> (" << et
       << ", " << yt << ") {\n"
       << "  %t = arith.constant " << denseF32(table, {vocab, d}) << " : "
       << tt << "\n  %e = bitnet.embedding %t, %ids : " << tt << ", " << it
       << " -> " << et << "\n  %y = bitnet.dense_matmul %x, %t : " << xt
       << ", " << tt << " -> " << yt << "\n  return %e, %y : " << et << ", "
       << yt << "\n}\n";
  std::vector<float> table8 = ref::int8Rows(table.data(), vocab, d);
  std::vector<std::vector<std::string>> cpus = {{}, {"--kernels=avx2"}};
  if (__builtin_cpu_supports("avx512vnni"))
    cpus.push_back({"--cpu=cascadelake"});
  for (const std::vector<std::string> &cpu : cpus)
    for (std::string precision : {"f32", "f16", "bf16", "int8"}) {
      SCOPED_TRACE((cpu.empty() ? "this CPU" : cpu[0]) + " " + precision);
      const std::vector<float> &tp = precision == "int8" ? table8 : table;
      std::vector<float> rows =
          ref::embedding(tp.data(), vocab, d, ids.data(), count);
      std::vector<float> logits =
          ref::denseMatmul(x.data(), tp.data(), 1, vocab, d);
      std::vector<std::string> flags = cpu;
      flags.push_back("--float-weights=" + precision);
      auto model = compileOrFail(mlir.str(), flags);
      ASSERT_TRUE(model);
      std::vector<float> e(count * d, std::nanf("")), y(vocab, std::nanf(""));
      ASSERT_EQ(model->run({ids.data(), x.data(), e.data(), y.data()}), 0);
      EXPECT_TRUE(bitEqual(rows, e.data()));
      for (int64_t j = 0; j < vocab; ++j) {
        double scale = 0;
        for (int64_t l = 0; l < d; ++l)
          scale += std::fabs(x[l] * tp[j * d + l]);
        EXPECT_NEAR(y[j], logits[j], 1e-6 * scale + 1e-30) << "y[" << j << "]";
      }
    }

  // W8A8: an int8 table with row scales, the head quantising its input; the
  // rows and the logits bit for bit.
  std::vector<int8_t> w8(vocab * d);
  std::vector<float> scales(vocab);
  for (int64_t i = 0; i < vocab * d; ++i)
    w8[i] = static_cast<int8_t>((i * 53) % 255 - 127);
  for (int64_t r = 0; r < vocab; ++r)
    scales[r] = 0.01f * float(r + 1);
  std::string t8 = "tensor<" + shapeStr({vocab, d}) + "i8>";
  std::string st = "tensor<" + std::to_string(vocab) + "xf32>";
  std::ostringstream w8a8;
  w8a8 << "func.func @tied(%ids: " << it << ", %x: " << xt << ") -> (" << et
       << ", " << yt << ") {\n"
       << "  %t = arith.constant " << denseHex(w8.data(), w8.size()) << " : "
       << t8 << "\n  %s = arith.constant " << denseF32(scales, {vocab})
       << " : " << st << "\n  %e = bitnet.embedding %t, %ids scales %s : "
       << t8 << ", " << it << ", " << st << " -> " << et
       << "\n  %y = bitnet.dense_matmul %x, %t scales %s {quantize_input} : "
       << xt << ", " << t8 << ", " << st << " -> " << yt
       << "\n  return %e, %y : " << et << ", " << yt << "\n}\n";
  std::vector<float> rows8(count * d);
  for (int64_t i = 0; i < count; ++i) {
    int64_t id = ids[i] < 0 ? ids[i] + vocab : ids[i];
    id = std::clamp<int64_t>(id, 0, vocab - 1);
    for (int64_t l = 0; l < d; ++l)
      rows8[i * d + l] = float(w8[id * d + l]) * scales[id];
  }
  std::vector<float> logits8 =
      ref::denseW8A8(x.data(), w8.data(), scales.data(), 1, vocab, d);
  for (const std::vector<std::string> &cpu : cpus) {
    SCOPED_TRACE((cpu.empty() ? "this CPU" : cpu[0]) + " w8a8");
    auto model = compileOrFail(w8a8.str(), cpu);
    ASSERT_TRUE(model);
    std::vector<float> e(count * d, std::nanf("")), y(vocab, std::nanf(""));
    ASSERT_EQ(model->run({ids.data(), x.data(), e.data(), y.data()}), 0);
    EXPECT_TRUE(bitEqual(rows8, e.data()));
    EXPECT_TRUE(bitEqual(logits8, y.data()));
  }
}

// The attention kernels (head dims a multiple of the vector width) and the
// reference, on several shapes and positions, each kernel family (and units
// of one, two and four query heads): the output
// within float tolerance of the scalar reference (another summation order),
// the caches bit for bit.
TEST(EndToEnd, AttentionKernelsMatchReference) {
  struct Shape {
    int64_t s, hq, hkv, d, cap;
    float qScale = 1.0f;
  };
  // Shapes 4 and 5 take four and two query heads of a KV head a unit of work
  // (enough units for that), the others one. The last one's queries, 40
  // times larger, spread the scores over hundreds: exp(score - max) of the
  // kernels' softmax spans normal results, subnormal ones (x in [-103.97,
  // -87.3]) and those that round to 0, which it gives directly.
  for (Shape sh : {Shape{1, 4, 1, 32, 9}, Shape{5, 6, 3, 16, 12},
                   Shape{2, 8, 2, 64, 7}, Shape{8, 8, 2, 32, 21},
                   Shape{16, 6, 3, 48, 19}, Shape{3, 4, 2, 64, 37, 40.0f}}) {
    std::mt19937 rng(static_cast<unsigned>(sh.s * 131 + sh.d));
    std::normal_distribution<float> normal(0.0f, 1.0f);
    auto randomVec = [&](int64_t n) { return normalVector(rng, normal, n); };
    std::vector<float> q = randomVec(sh.s * sh.hq * sh.d),
                       k = randomVec(sh.s * sh.hkv * sh.d),
                       v = randomVec(sh.s * sh.hkv * sh.d),
                       kc = randomVec(sh.cap * sh.hkv * sh.d),
                       vc = randomVec(sh.cap * sh.hkv * sh.d);
    for (float &e : q)
      e *= sh.qScale;
    // A score's rounding (another summation order than the reference's)
    // grows with its size, and exp turns it into a relative error.
    float tolerance = 1e-5f * sh.qScale;
    std::string mlir = bitnet::test::attentionModel(sh.s, sh.hq, sh.hkv, sh.d,
                                                    sh.cap);
    for (const std::string &kernels : kernelFlags()) {
      auto model = compileOrFail(mlir, {kernels, "--kv-cache=f32"});
      ASSERT_TRUE(model);
      for (int32_t position : {0, 1, 1000 /* clamped to cap - s */}) {
        SCOPED_TRACE(kernels + " d=" + std::to_string(sh.d) + " position " +
                     std::to_string(position));
        std::vector<float> o(q.size()), kState = kc, vState = vc;
        ASSERT_EQ(model->run({q.data(), k.data(), v.data(), kState.data(),
                              vState.data(), &position, o.data()}),
                  0);
        std::vector<float> kRef = kc, vRef = vc;
        std::vector<float> expected = ref::attention(
            q.data(), k.data(), v.data(), kRef.data(), vRef.data(), position,
            sh.s, sh.hq, sh.hkv, sh.d, sh.cap, 1.0f / std::sqrt(float(sh.d)));
        EXPECT_TRUE(near(expected, o.data(), tolerance));
        EXPECT_TRUE(bitEqual(kRef, kState.data()));
        EXPECT_TRUE(bitEqual(vRef, vState.data()));
      }
      // f16 caches (the default): the reference on f16-rounded rows, the
      // caches holding exactly those rows.
      auto half = compileOrFail(mlir, {kernels});
      ASSERT_TRUE(half);
      ASSERT_EQ(half->info().inputs[3].dtype, BITNET_DTYPE_F16);
      auto roundF16 = [](std::vector<float> v) {
        for (float &e : v)
          e = static_cast<float>(static_cast<_Float16>(e));
        return v;
      };
      auto toF16 = [](const std::vector<float> &v) {
        std::vector<_Float16> h(v.size());
        for (size_t i = 0; i < v.size(); ++i)
          h[i] = static_cast<_Float16>(v[i]);
        return h;
      };
      int32_t position = 2;
      SCOPED_TRACE(kernels + " f16 caches d=" + std::to_string(sh.d));
      std::vector<_Float16> kState = toF16(kc), vState = toF16(vc);
      std::vector<float> o(q.size());
      ASSERT_EQ(half->run({q.data(), k.data(), v.data(), kState.data(),
                           vState.data(), &position, o.data()}),
                0);
      std::vector<float> kRef = roundF16(kc), vRef = roundF16(vc);
      std::vector<float> kR = roundF16(k), vR = roundF16(v);
      std::vector<float> expected = ref::attention(
          q.data(), kR.data(), vR.data(), kRef.data(), vRef.data(), position,
          sh.s, sh.hq, sh.hkv, sh.d, sh.cap, 1.0f / std::sqrt(float(sh.d)));
      EXPECT_TRUE(near(expected, o.data(), tolerance));
      for (size_t i = 0; i < kRef.size(); ++i) {
        ASSERT_EQ(static_cast<float>(kState[i]), kRef[i]) << "k element " << i;
        ASSERT_EQ(static_cast<float>(vState[i]), vRef[i]) << "v element " << i;
      }
    }
  }
}

TEST(EndToEnd, PortableBuildNeedsNoCPUFeatures) {
  // Code for the baseline x86-64 CPU loads anywhere: no features recorded.
  const char *mlir = R"(
func.func @relu(%x: tensor<4xf32>) -> tensor<4xf32> {
  %y = bitnet.squared_relu %x : tensor<4xf32>
  return %y : tensor<4xf32>
}
)";
  auto model = compileOrFail(mlir, {"--cpu=x86-64"});
  ASSERT_TRUE(model);
  EXPECT_STREQ(model->info().cpu_features, "");
  EXPECT_NE(std::string(model->info().target).find("x86-64"), std::string::npos);
}

TEST(EndToEnd, VariantBuildsAgreeAndTheLoaderPicksOne) {
  // One shared object with a portable baseline and builds for x86-64-v3 and
  // this machine: every build gives the reference's bits, and the runtime
  // runs the best one this machine supports.
  const int64_t m = 2, n = 70, k = 40;
  std::mt19937 rng(29);
  std::vector<float> w = makeWeights(Weights::Random, n, k, rng);
  std::vector<float> x = makeActivations(Activations::Random, m, k, rng);
  std::string mlir = linearModel({m}, n, k, w);
  auto compiled =
      compileOrFail(mlir, {"--cpu=x86-64", "--variants=native,x86-64-v3"});
  ASSERT_TRUE(compiled);
  ref::TernaryWeights t = ref::ternarize(w.data(), n * k);
  std::vector<float> expected =
      ref::bitlinear(x.data(), t.values.data(), t.scale, m, n, k);

  const bitnet_model_info &info = compiled->info();
  ASSERT_EQ(info.num_variants, 2);
  EXPECT_STREQ(info.cpu_features, "");
  EXPECT_STREQ(info.variants[1].name, "x86-64-v3");
  EXPECT_NE(std::string(info.variants[1].cpu_features).find("avx2"),
            std::string::npos);
  // The baseline through the exported symbol, every variant through the
  // table (those this machine can run).
  std::vector<float> y(m * n, std::nanf(""));
  ASSERT_EQ(compiled->run({x.data(), y.data()}), 0);
  EXPECT_TRUE(bitEqual(expected, y.data())) << "baseline";
  for (int32_t i = 0; i < info.num_variants; ++i) {
    const bitnet_model_variant &v = info.variants[i];
    std::vector<float> yv(m * n, std::nanf(""));
    std::vector<uint8_t> ws(v.workspace_bytes + v.workspace_alignment);
    void *aligned = ws.data() + (v.workspace_alignment -
                                 reinterpret_cast<uintptr_t>(ws.data()) %
                                     v.workspace_alignment);
    void *buffers[] = {x.data(), yv.data()};
    std::string features = v.cpu_features;
    bool runnable = true;
    if (features.find("avx512vnni") != std::string::npos)
      runnable = __builtin_cpu_supports("avx512vnni");
    if (features.find("avx2") != std::string::npos)
      runnable = runnable && __builtin_cpu_supports("avx2");
    if (!runnable)
      continue;
    ASSERT_EQ(v.run(buffers, aligned, nullptr), 0) << v.name;
    EXPECT_TRUE(bitEqual(expected, yv.data())) << v.name;
  }
  // The runtime picks the first variant that fits: this machine's own.
  bitnet_model *model = nullptr;
  ASSERT_EQ(bitnet_model_load(compiled->path().c_str(), &model), nullptr);
  ASSERT_NE(bitnet_model_variant_name(model), nullptr);
  EXPECT_STREQ(bitnet_model_variant_name(model), info.variants[0].name);
  bitnet_context *context = nullptr;
  ASSERT_EQ(bitnet_context_create(model, nullptr, &context), nullptr);
  std::vector<float> yr(m * n, std::nanf(""));
  const void *in[] = {x.data()};
  void *out[] = {yr.data()};
  ASSERT_EQ(bitnet_context_run(context, in, 1, out, 1), nullptr);
  EXPECT_TRUE(bitEqual(expected, yr.data())) << "through the runtime";
  bitnet_context_free(context);
  bitnet_model_release(model);
}

TEST(EndToEnd, ATensorReturnedTwiceFillsBothOutputs) {
  const char *mlir = R"(
func.func @twice(%x: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>) {
  %y = bitnet.squared_relu %x : tensor<4xf32>
  return %y, %y : tensor<4xf32>, tensor<4xf32>
}
)";
  auto model = compileOrFail(mlir);
  ASSERT_TRUE(model);
  std::vector<float> x = {-1, 2, 3, -4}, a(4, -7), b(4, -7);
  ASSERT_EQ(model->run({x.data(), a.data(), b.data()}), 0);
  EXPECT_TRUE(bitEqual({0, 4, 9, 0}, a.data()));
  EXPECT_TRUE(bitEqual({0, 4, 9, 0}, b.data()));
}

TEST(EndToEnd, StridedCopiesNeedNoRunnerLibrary) {
  // Returning a non-contiguous slice copies from a strided view; the model
  // must load on its own (no memrefCopy from MLIR's runner utilities).
  const char *mlir = R"(
func.func @slice(%x: tensor<2x4x16xf32>) -> tensor<2x2x16xf32> {
  %s = tensor.extract_slice %x[0, 1, 0] [2, 2, 16] [1, 1, 1] : tensor<2x4x16xf32> to tensor<2x2x16xf32>
  return %s : tensor<2x2x16xf32>
}
)";
  auto model = compileOrFail(mlir);
  ASSERT_TRUE(model);
  std::vector<float> x(2 * 4 * 16), y(2 * 2 * 16);
  for (size_t i = 0; i < x.size(); ++i)
    x[i] = static_cast<float>(i);
  ASSERT_EQ(model->run({x.data(), y.data()}), 0);
  for (int a = 0; a < 2; ++a)
    for (int b = 0; b < 2; ++b)
      for (int c = 0; c < 16; ++c)
        ASSERT_EQ(y[(a * 2 + b) * 16 + c], x[(a * 4 + b + 1) * 16 + c]);
}

TEST(EndToEnd, DescriptorCountsTheKernelsStackBuffers) {
  // The AVX-512 MAD prefill loop unpacks the codes of 32 rows x K into a
  // stack buffer; one token needs no such buffer. Compiled only (for a CPU
  // that has the kernels), not run.
  const int64_t n = 64, k = 2560;
  std::mt19937 rng(5);
  std::vector<float> w = makeWeights(Weights::Random, n, k, rng);
  auto stackOf = [&](int64_t m) -> int64_t {
    auto model = compileOrFail(linearModel({m}, n, k, w),
                               {"--cpu=sapphirerapids", "--kernels=avx512vnni"});
    return model ? model->info().stack_bytes : -1;
  };
  int64_t prefill = stackOf(24), decode = stackOf(1);
  EXPECT_GE(prefill, 32 * k);
  EXPECT_LE(prefill, 256 * 1024 + 4096);
  EXPECT_GE(decode, 0);
  EXPECT_LT(decode, 32 * k);
}

TEST(EndToEnd, DescriptorDescribesTheEntryFunction) {
  const char *mlir = R"(
func.func @named(%x: tensor<2x3xf32> {bitnet.name = "hidden"}, %i: tensor<4xi32>)
    -> (tensor<2x3xf32>, tensor<4xi32>) attributes {bitnet.output_names = ["out"]} {
  %y = bitnet.squared_relu %x : tensor<2x3xf32>
  return %y, %i : tensor<2x3xf32>, tensor<4xi32>
}
)";
  auto model = compileOrFail(mlir);
  ASSERT_TRUE(model);
  const bitnet_model_info &info = model->info();
  EXPECT_EQ(info.magic, BITNET_MODEL_MAGIC);
  EXPECT_EQ(info.abi_version, BITNET_MODEL_ABI_VERSION);
  EXPECT_STREQ(info.name, "named");
  EXPECT_EQ(std::string(info.producer).rfind("bitnet-compile ", 0), 0u);
  ASSERT_EQ(info.num_inputs, 2);
  ASSERT_EQ(info.num_outputs, 2);
  EXPECT_STREQ(info.inputs[0].name, "hidden");
  EXPECT_STREQ(info.inputs[1].name, "input1");
  EXPECT_STREQ(info.outputs[0].name, "out");
  EXPECT_STREQ(info.outputs[1].name, "output1");
  EXPECT_EQ(info.inputs[0].dtype, BITNET_DTYPE_F32);
  EXPECT_EQ(info.inputs[1].dtype, BITNET_DTYPE_I32);
  EXPECT_EQ(info.inputs[0].rank, 2);
  EXPECT_EQ(info.inputs[0].shape[0], 2);
  EXPECT_EQ(info.inputs[0].shape[1], 3);
  EXPECT_EQ(info.outputs[1].shape[0], 4);
  ASSERT_NE(info.cpu_features, nullptr);
  if (__builtin_cpu_supports("avx2")) {
    EXPECT_NE(std::string(info.cpu_features).find("avx2"), std::string::npos)
        << info.cpu_features;
  }
  EXPECT_GE(info.workspace_alignment, 1);
  EXPECT_EQ(info.workspace_alignment & (info.workspace_alignment - 1), 0);

  std::vector<float> x = {-1, 2, -3, 4, 0, 0.5f}, y(6);
  std::vector<int32_t> in = {1, -2, 3, 7}, out(4);
  ASSERT_EQ(model->run({x.data(), in.data(), y.data(), out.data()}), 0);
  EXPECT_EQ(out, in);
  EXPECT_TRUE(bitEqual({0, 4, 0, 16, 0, 0.25f}, y.data()));
}

//===----------------------------------------------------------------------===//
// Threads: the kernels' row groups through the runtime's thread pool
//===----------------------------------------------------------------------===//

class ThreadPoolRun : public ::testing::TestWithParam<int64_t> {};

TEST_P(ThreadPoolRun, MatchesReference) {
  // Many row groups run on 3 threads by libbitnet_rt: one token (the LUT
  // kernel splits the rows in one part per thread, each with its own
  // tables), 8 (the quantisation spread too) and 24 (the MAD prefill loop,
  // and the LUT kernel's codes decoded once per call);
  // the profiler must see the kernel.
  const int64_t m = GetParam(), n = 300, k = 200;
  std::mt19937 rng(23);
  std::vector<float> w = makeWeights(Weights::Random, n, k, rng);
  std::vector<float> x = makeActivations(Activations::Random, m, k, rng);
  std::string mlir = linearModel({m}, n, k, w);
  ref::TernaryWeights t = ref::ternarize(w.data(), n * k);
  std::vector<float> expected =
      ref::bitlinear(x.data(), t.values.data(), t.scale, m, n, k);
  for (const std::string &kernels : kernelFlags()) {
    SCOPED_TRACE(kernels);
    std::string error;
    auto compiled = CompiledModel::compile(mlir, {kernels}, error);
    ASSERT_TRUE(compiled) << error;
    bitnet_model *model = nullptr;
    bitnet_thread_pool *threads = nullptr;
    bitnet_profile_collector *collector = nullptr;
    bitnet_context *context = nullptr;
    ASSERT_EQ(bitnet_model_load(compiled->path().c_str(), &model), nullptr);
    ASSERT_EQ(bitnet_thread_pool_create(3, &threads), nullptr);
    ASSERT_EQ(bitnet_profile_collector_create(0, &collector), nullptr);
    bitnet_context_options options = {};
    options.thread_pool = threads;
    bitnet_profiler profiler = bitnet_profile_collector_profiler(collector);
    options.profiler = &profiler;
    ASSERT_EQ(bitnet_context_create(model, &options, &context), nullptr);
    for (int run = 0; run < 20; ++run) {
      std::vector<float> y(m * n, std::nanf(""));
      const void *inputs[] = {x.data()};
      void *outputs[] = {y.data()};
      ASSERT_EQ(bitnet_context_run(context, inputs, 1, outputs, 1), nullptr);
      ASSERT_TRUE(bitEqual(expected, y.data())) << "run " << run;
    }
    if (kernels != "--kernels=reference") {
      ASSERT_EQ(bitnet_profile_collector_num_kernels(collector), 1);
      bitnet_kernel_stats stats;
      ASSERT_EQ(bitnet_profile_collector_kernel(collector, 0, &stats), nullptr);
      EXPECT_EQ(stats.calls, 20);
      std::string family = kernels.substr(std::strlen("--kernels="));
      EXPECT_EQ(std::string(stats.name),
                (family != "avx512-lut" ? "bitlinear mad_" + family
                 : m >= 12              ? std::string("bitlinear lut_avx512_unpack")
                                        : std::string("bitlinear lut_avx512")) +
                    " " + std::to_string(m) + "x300x200");
      EXPECT_EQ(stats.flops, 2 * m * n * k * 20);
    }
    bitnet_context_free(context);
    bitnet_profile_collector_free(collector);
    bitnet_thread_pool_release(threads);
    bitnet_model_release(model);
  }
}

INSTANTIATE_TEST_SUITE_P(Tokens, ThreadPoolRun, ::testing::Values(1, 8, 24));
