//===- thread_pool_test.cc - Parallel loops ------------------------------===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#include "test_util.h"

#include <atomic>
#include <cstdint>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

using namespace bitnet_test;

namespace {

ThreadPoolPtr MakeThreadPool(int32_t n) {
  bitnet_thread_pool *pool = nullptr;
  EXPECT_TRUE(IsOk(bitnet_thread_pool_create(n, &pool)));
  return ThreadPoolPtr(pool);
}

struct Coverage {
  std::vector<std::atomic<int>> hits;
  std::atomic<int64_t> chunks{0};
  std::atomic<bool> bad_range{false};
  int64_t n;
  explicit Coverage(int64_t size) : hits(static_cast<size_t>(size)), n(size) {}

  static void Body(void *arg, int64_t begin, int64_t end) {
    auto *self = static_cast<Coverage *>(arg);
    self->chunks.fetch_add(1);
    if (begin < 0 || end > self->n || begin >= end) {
      self->bad_range = true;
      return;
    }
    for (int64_t i = begin; i < end; ++i)
      self->hits[static_cast<size_t>(i)].fetch_add(1);
  }

  // Every index exactly once.
  ::testing::AssertionResult Exact() const {
    if (bad_range)
      return ::testing::AssertionFailure() << "a chunk was empty or outside";
    for (int64_t i = 0; i < n; ++i)
      if (hits[static_cast<size_t>(i)] != 1)
        return ::testing::AssertionFailure()
               << "index " << i << " of " << n << " ran "
               << hits[static_cast<size_t>(i)] << " times";
    return ::testing::AssertionSuccess();
  }
};

// Tests that [0, n) is covered exactly once for many sizes and thread
// counts, including n = 0 (no call) and n = 1.
TEST(ThreadPoolTest, CoversRangeExactlyOnce) {
  for (int32_t threads : {1, 2, 3, 4, 8}) {
    ThreadPoolPtr pool = MakeThreadPool(threads);
    ASSERT_EQ(bitnet_thread_pool_size(pool.get()), threads);
    for (int64_t n : {0, 1, 2, 3, 5, 7, 8, 9, 31, 32, 33, 64, 100, 1000, 4097,
                      100003}) {
      Coverage cov(n);
      bitnet_thread_pool_parallel_for(pool.get(), n, Coverage::Body, &cov);
      EXPECT_TRUE(cov.Exact()) << "threads " << threads << ", n " << n;
      if (n == 0)
        EXPECT_EQ(cov.chunks, 0);
      if (n > 0)
        EXPECT_LE(cov.chunks, n);
    }
  }
}

// Tests that a negative n calls nothing and that a NULL pool runs the whole
// range as one call on the calling thread.
TEST(ThreadPoolTest, NegativeAndNullPool) {
  ThreadPoolPtr pool = MakeThreadPool(4);
  Coverage none(0);
  bitnet_thread_pool_parallel_for(pool.get(), -5, Coverage::Body, &none);
  EXPECT_EQ(none.chunks, 0);
  bitnet_thread_pool_parallel_for(pool.get(), 10, nullptr, nullptr);

  Coverage serial(50);
  bitnet_thread_pool_parallel_for(nullptr, 50, Coverage::Body, &serial);
  EXPECT_TRUE(serial.Exact());
  EXPECT_EQ(serial.chunks, 1);
  EXPECT_EQ(bitnet_thread_pool_size(nullptr), 1);
}

// Tests that a zero, negative or huge thread count is refused with a status.
TEST(ThreadPoolTest, BadThreadCounts) {
  bitnet_thread_pool *pool = reinterpret_cast<bitnet_thread_pool *>(1);
  EXPECT_TRUE(IsError(bitnet_thread_pool_create(0, &pool),
                      BITNET_STATUS_INVALID_ARGUMENT,
                      {"thread count 0", "[1, 1024]"}));
  EXPECT_EQ(pool, nullptr);
  EXPECT_TRUE(IsError(bitnet_thread_pool_create(-3, &pool),
                      BITNET_STATUS_INVALID_ARGUMENT, {"thread count -3"}));
  EXPECT_TRUE(IsError(bitnet_thread_pool_create(5000, &pool),
                      BITNET_STATUS_INVALID_ARGUMENT, {"5000"}));
  EXPECT_TRUE(IsError(bitnet_thread_pool_create(2, nullptr),
                      BITNET_STATUS_INVALID_ARGUMENT, {"out_pool"}));
  bitnet_thread_pool_retain(nullptr);
  bitnet_thread_pool_release(nullptr);
}

TEST(ThreadPoolTest, DefaultThreadCount) {
  EXPECT_GE(bitnet_default_num_threads(), 1);
  EXPECT_EQ(bitnet_default_num_threads(),
            static_cast<int32_t>(sysconf(_SC_NPROCESSORS_ONLN)));
}

// Tests that the workers really take part: with 4 threads and chunks that
// wait for each other, more than one thread runs chunks.
TEST(ThreadPoolTest, UsesSeveralThreads) {
  ThreadPoolPtr pool = MakeThreadPool(4);
  struct State {
    std::mutex mutex;
    std::set<std::thread::id> ids;
  } state;
  // Many loops: at least one of them must be shared between threads.
  for (int round = 0; round < 200 && state.ids.size() < 2; ++round) {
    bitnet_thread_pool_parallel_for(
        pool.get(), 64,
        [](void *arg, int64_t, int64_t) {
          auto *s = static_cast<State *>(arg);
          std::this_thread::sleep_for(std::chrono::microseconds(50));
          std::lock_guard<std::mutex> lock(s->mutex);
          s->ids.insert(std::this_thread::get_id());
        },
        &state);
  }
  EXPECT_GE(state.ids.size(), 2u);
}

// Tests that a loop started inside a loop runs (serially) instead of
// deadlocking, and still covers its range.
TEST(ThreadPoolTest, NestedLoops) {
  ThreadPoolPtr pool = MakeThreadPool(3);
  struct Outer {
    bitnet_thread_pool *pool;
    std::vector<Coverage *> inner;
  };
  std::vector<std::unique_ptr<Coverage>> inner;
  Outer outer{pool.get(), {}};
  for (int i = 0; i < 12; ++i) {
    inner.push_back(std::make_unique<Coverage>(37));
    outer.inner.push_back(inner.back().get());
  }
  bitnet_thread_pool_parallel_for(
      pool.get(), 12,
      [](void *arg, int64_t begin, int64_t end) {
        auto *o = static_cast<Outer *>(arg);
        for (int64_t i = begin; i < end; ++i)
          bitnet_thread_pool_parallel_for(o->pool, 37, Coverage::Body,
                                          o->inner[static_cast<size_t>(i)]);
      },
      &outer);
  for (auto &c : inner)
    EXPECT_TRUE(c->Exact());
}

// Tests that several threads may start loops on one pool at once: each loop
// still covers its range exactly once.
TEST(ThreadPoolTest, ConcurrentCallers) {
  ThreadPoolPtr pool = MakeThreadPool(4);
  std::vector<std::thread> callers;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&pool, &failures, t] {
      for (int r = 0; r < 200; ++r) {
        Coverage cov(100 + t * 17 + r);
        bitnet_thread_pool_parallel_for(pool.get(), cov.n, Coverage::Body, &cov);
        if (!cov.Exact())
          failures.fetch_add(1);
      }
    });
  }
  for (std::thread &t : callers)
    t.join();
  EXPECT_EQ(failures, 0);
}

// Tests many quick loops in a row (the generation hand-over) and a pool
// created and destroyed repeatedly (worker start and join).
TEST(ThreadPoolTest, ManyLoopsAndRestarts) {
  ThreadPoolPtr pool = MakeThreadPool(4);
  for (int r = 0; r < 3000; ++r) {
    Coverage cov(r % 50);
    bitnet_thread_pool_parallel_for(pool.get(), cov.n, Coverage::Body, &cov);
    ASSERT_TRUE(cov.Exact()) << "round " << r;
  }
  for (int r = 0; r < 20; ++r) {
    ThreadPoolPtr p = MakeThreadPool(1 + r % 5);
    Coverage cov(10);
    bitnet_thread_pool_parallel_for(p.get(), 10, Coverage::Body, &cov);
    EXPECT_TRUE(cov.Exact());
  }
}

} // namespace
