//===- concurrency_test.cc - Concurrent runs on one model -----------------===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#include "test_util.h"

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

using namespace bitnet_test;

namespace {

constexpr int kThreads = 4;
constexpr int kRuns = 200;

// Runs the parallel model kRuns times per thread, each thread with its own
// context and its own inputs, and counts wrong results.
void RunFromThreads(bitnet_model *model, bitnet_pool *pool,
                    bitnet_thread_pool *threads,
                    bitnet_profile_collector *collector) {
  std::atomic<int> wrong{0}, errors{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < kThreads; ++t) {
    workers.emplace_back([=, &wrong, &errors] {
      bitnet_profiler profiler = bitnet_profile_collector_profiler(collector);
      bitnet_context_options options = {pool, threads,
                                        collector ? &profiler : nullptr};
      bitnet_context *ctx = nullptr;
      if (bitnet_status s = bitnet_context_create(model, &options, &ctx)) {
        bitnet_status_free(s);
        errors.fetch_add(1);
        return;
      }
      std::vector<float> x(1000), y(1000), z(1000);
      int32_t seen[4];
      const void *inputs[] = {x.data()};
      void *outputs[] = {y.data(), z.data(), seen};
      for (int r = 0; r < kRuns; ++r) {
        float base = static_cast<float>(t * 1000 + r);
        for (size_t i = 0; i < x.size(); ++i)
          x[i] = base + static_cast<float>(i);
        if (bitnet_status s = bitnet_context_run(ctx, inputs, 1, outputs, 3)) {
          bitnet_status_free(s);
          errors.fetch_add(1);
          continue;
        }
        for (size_t i = 0; i < x.size(); ++i) {
          if (y[i] != 3 * x[i] || z[i] != 3 * x[i] + 1) {
            wrong.fetch_add(1);
            break;
          }
        }
      }
      bitnet_context_free(ctx);
    });
  }
  for (std::thread &w : workers)
    w.join();
  EXPECT_EQ(errors, 0);
  EXPECT_EQ(wrong, 0);
}

// Tests 4 threads, each with its own context, sharing one model, one memory
// pool and one thread pool.
TEST(ConcurrencyTest, SharedModelPoolAndThreads) {
  ModelPtr model = LoadModel(BITNET_TEST_MODEL_PARALLEL);
  bitnet_pool *pool = nullptr;
  bitnet_thread_pool *threads = nullptr;
  ASSERT_TRUE(IsOk(bitnet_pool_create(&pool)));
  ASSERT_TRUE(IsOk(bitnet_thread_pool_create(4, &threads)));
  RunFromThreads(model.get(), pool, threads, nullptr);
  bitnet_thread_pool_release(threads);
  bitnet_pool_release(pool);
}

// Tests 4 threads with private pools and no thread pool.
TEST(ConcurrencyTest, PrivateEverything) {
  ModelPtr model = LoadModel(BITNET_TEST_MODEL_PARALLEL);
  RunFromThreads(model.get(), nullptr, nullptr, nullptr);
}

// Tests 4 threads reporting to one profile collector: every call is counted.
TEST(ConcurrencyTest, SharedCollector) {
  ModelPtr model = LoadModel(BITNET_TEST_MODEL_PARALLEL);
  bitnet_thread_pool *threads = nullptr;
  ASSERT_TRUE(IsOk(bitnet_thread_pool_create(2, &threads)));
  bitnet_profile_collector *collector = nullptr;
  ASSERT_TRUE(IsOk(bitnet_profile_collector_create(0, &collector)));
  RunFromThreads(model.get(), nullptr, threads, collector);
  bitnet_kernel_stats st;
  ASSERT_TRUE(IsOk(bitnet_profile_collector_kernel(collector, 0, &st)));
  EXPECT_EQ(st.calls, kThreads * kRuns);
  int64_t runs = 0;
  ASSERT_TRUE(IsOk(bitnet_profile_collector_runs(collector, &runs, nullptr)));
  EXPECT_EQ(runs, kThreads * kRuns);
  bitnet_profile_collector_free(collector);
  bitnet_thread_pool_release(threads);
}

// Tests loading and releasing one model from several threads at once.
TEST(ConcurrencyTest, ConcurrentLoads) {
  std::atomic<int> failures{0};
  std::vector<std::thread> loaders;
  for (int t = 0; t < kThreads; ++t) {
    loaders.emplace_back([&failures] {
      for (int r = 0; r < 20; ++r) {
        bitnet_model *m = nullptr;
        bitnet_status s = bitnet_model_load(BITNET_TEST_MODEL_AFFINE, &m);
        if (s != BITNET_OK)
          failures.fetch_add(1);
        bitnet_status_free(s);
        bitnet_model_release(m);
      }
    });
  }
  for (std::thread &l : loaders)
    l.join();
  EXPECT_EQ(failures, 0);
}

} // namespace
