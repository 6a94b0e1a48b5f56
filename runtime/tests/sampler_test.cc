//===- sampler_test.cc - Temperature, top-k and top-p sampling ------------===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#include "bitnet_rt/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

namespace {

struct Sampler {
  explicit Sampler(bitnet_sampler_params p) {
    bitnet_status s = bitnet_sampler_create(&p, &sampler);
    EXPECT_EQ(s, BITNET_OK) << bitnet_status_message(s);
    bitnet_status_free(s);
  }
  ~Sampler() { bitnet_sampler_free(sampler); }
  int32_t sample(const std::vector<float> &logits) {
    int32_t id = -1;
    bitnet_status s = bitnet_sampler_sample(
        sampler, logits.data(), static_cast<int64_t>(logits.size()), &id);
    EXPECT_EQ(s, BITNET_OK) << bitnet_status_message(s);
    bitnet_status_free(s);
    return id;
  }
  bitnet_sampler *sampler = nullptr;
};

bitnet_sampler_params params(double temperature, int64_t top_k, double top_p,
                             uint64_t seed) {
  return bitnet_sampler_params{temperature, top_k, top_p, seed};
}

// Tests that bad parameters are refused, naming the parameter and value.
TEST(SamplerTest, RefusesBadParameters) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  struct Case {
    bitnet_sampler_params p;
    const char *message;
  } cases[] = {
      {params(nan, 40, 0.9, 0), "temperature"},
      {params(-1, 40, 0.9, 0), "temperature"},
      {params(inf, 40, 0.9, 0), "temperature"},
      {params(0.8, -1, 0.9, 0), "top_k"},
      {params(0.8, 40, 0, 0), "top_p"},
      {params(0.8, 40, 1.5, 0), "top_p"},
      {params(0.8, 40, nan, 0), "top_p"},
  };
  for (const Case &c : cases) {
    bitnet_sampler *s = reinterpret_cast<bitnet_sampler *>(1);
    bitnet_status status = bitnet_sampler_create(&c.p, &s);
    ASSERT_NE(status, BITNET_OK) << c.message;
    EXPECT_EQ(bitnet_status_get_code(status), BITNET_STATUS_INVALID_ARGUMENT);
    EXPECT_NE(std::string(bitnet_status_message(status)).find(c.message),
              std::string::npos)
        << bitnet_status_message(status);
    EXPECT_EQ(s, nullptr);
    bitnet_status_free(status);
  }
  Sampler ok(bitnet_sampler_default_params());
  int32_t id;
  float logit = 0;
  bitnet_status status = bitnet_sampler_sample(ok.sampler, &logit, 0, &id);
  EXPECT_EQ(bitnet_status_get_code(status), BITNET_STATUS_INVALID_ARGUMENT);
  bitnet_status_free(status);
}

// Tests bitnet-generate's defaults.
TEST(SamplerTest, Defaults) {
  bitnet_sampler_params p = bitnet_sampler_default_params();
  EXPECT_EQ(p.temperature, 0.8);
  EXPECT_EQ(p.top_k, 40);
  EXPECT_EQ(p.top_p, 0.95);
}

// Tests that temperature 0 picks the largest logit, the lowest id on a tie.
TEST(SamplerTest, GreedyPicksTheMostLikely) {
  Sampler s(params(0, 40, 0.95, 1));
  EXPECT_EQ(s.sample({0.f, 3.f, -1.f, 2.f}), 1);
  EXPECT_EQ(s.sample({5.f, 1.f, 5.f}), 0);
  EXPECT_EQ(s.sample({-2.f}), 0);
}

// Tests that top_k = 1 and a tiny top_p leave only the most likely token.
TEST(SamplerTest, TopKOneAndTinyTopPAreGreedy) {
  std::vector<float> logits = {0.5f, 1.f, 0.9f, 0.2f, 0.95f};
  Sampler k1(params(1, 1, 1, 3)), p0(params(1, 0, 1e-6, 3));
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(k1.sample(logits), 1);
    EXPECT_EQ(p0.sample(logits), 1);
  }
}

// Tests that top-k keeps exactly the k most likely tokens.
TEST(SamplerTest, TopKKeepsTheKMostLikely) {
  std::vector<float> logits = {0.f, 4.f, 1.f, 3.f, 2.f, 3.5f};
  Sampler s(params(100, 3, 1, 5)); // nearly uniform over the kept ones
  std::vector<int> seen(logits.size());
  for (int i = 0; i < 3000; ++i)
    ++seen[s.sample(logits)];
  EXPECT_EQ(seen[0] + seen[2] + seen[4], 0);
  for (int id : {1, 3, 5})
    EXPECT_GT(seen[id], 800) << id;
}

// Tests that the draws follow softmax(logits / temperature).
TEST(SamplerTest, FollowsTheDistribution) {
  std::vector<float> logits = {std::log(0.5f), std::log(0.3f), std::log(0.2f)};
  Sampler s(params(1, 0, 1, 9));
  const int n = 20000;
  std::vector<int> seen(3);
  for (int i = 0; i < n; ++i)
    ++seen[s.sample(logits)];
  EXPECT_NEAR(seen[0] / double(n), 0.5, 0.02);
  EXPECT_NEAR(seen[1] / double(n), 0.3, 0.02);
  EXPECT_NEAR(seen[2] / double(n), 0.2, 0.02);
}

// Tests that a seed fixes the sequence, and that seeds differ.
TEST(SamplerTest, SeedIsReproducible) {
  std::vector<float> logits(50);
  for (size_t i = 0; i < logits.size(); ++i)
    logits[i] = static_cast<float>(i % 7) * 0.3f;
  auto draw = [&](uint64_t seed) {
    Sampler s(params(1, 0, 1, seed));
    std::vector<int32_t> ids;
    for (int i = 0; i < 64; ++i)
      ids.push_back(s.sample(logits));
    return ids;
  };
  EXPECT_EQ(draw(42), draw(42));
  EXPECT_NE(draw(42), draw(43));
}

} // namespace
