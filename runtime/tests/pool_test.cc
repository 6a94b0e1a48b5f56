//===- pool_test.cc - Pooled allocation and its statistics ----------------===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#include "test_util.h"

#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

using namespace bitnet_test;

namespace {

PoolPtr MakePool() {
  bitnet_pool *pool = nullptr;
  EXPECT_TRUE(IsOk(bitnet_pool_create(&pool)));
  return PoolPtr(pool);
}

bitnet_pool_stats Stats(bitnet_pool *pool) {
  bitnet_pool_stats stats;
  EXPECT_TRUE(IsOk(bitnet_pool_get_stats(pool, &stats)));
  return stats;
}

// Tests that a freed block serves the next request that fits, and that the
// counters say so.
TEST(PoolTest, ReusesFreedBlocks) {
  PoolPtr pool = MakePool();
  void *a = nullptr;
  ASSERT_TRUE(IsOk(bitnet_pool_allocate(pool.get(), 1000, 0, &a)));
  ASSERT_NE(a, nullptr);
  std::memset(a, 1, 1000);
  bitnet_pool_stats s = Stats(pool.get());
  EXPECT_EQ(s.allocations, 1);
  EXPECT_EQ(s.allocations_fresh, 1);
  EXPECT_EQ(s.allocations_from_pool, 0);
  EXPECT_GE(s.bytes_in_use, 1000);
  EXPECT_EQ(s.bytes_in_use, s.bytes_reserved);

  ASSERT_TRUE(IsOk(bitnet_pool_deallocate(pool.get(), a)));
  s = Stats(pool.get());
  EXPECT_EQ(s.bytes_in_use, 0);
  EXPECT_GE(s.bytes_reserved, 1000);
  EXPECT_GE(s.peak_bytes_in_use, 1000);
  EXPECT_EQ(s.deallocations, 1);

  void *b = nullptr;
  ASSERT_TRUE(IsOk(bitnet_pool_allocate(pool.get(), 800, 0, &b)));
  EXPECT_EQ(b, a);
  s = Stats(pool.get());
  EXPECT_EQ(s.allocations, 2);
  EXPECT_EQ(s.allocations_fresh, 1);
  EXPECT_EQ(s.allocations_from_pool, 1);
  ASSERT_TRUE(IsOk(bitnet_pool_deallocate(pool.get(), b)));
}

// Tests that a request larger than every cached block takes a fresh one,
// and that the smallest fitting block is picked.
TEST(PoolTest, BestFit) {
  PoolPtr pool = MakePool();
  void *small = nullptr, *large = nullptr, *larger = nullptr;
  ASSERT_TRUE(IsOk(bitnet_pool_allocate(pool.get(), 256, 0, &small)));
  ASSERT_TRUE(IsOk(bitnet_pool_allocate(pool.get(), 4096, 0, &large)));
  ASSERT_TRUE(IsOk(bitnet_pool_deallocate(pool.get(), large)));
  ASSERT_TRUE(IsOk(bitnet_pool_deallocate(pool.get(), small)));
  void *p = nullptr;
  ASSERT_TRUE(IsOk(bitnet_pool_allocate(pool.get(), 200, 0, &p)));
  EXPECT_EQ(p, small);
  ASSERT_TRUE(IsOk(bitnet_pool_allocate(pool.get(), 8192, 0, &larger)));
  EXPECT_NE(larger, large);
  EXPECT_EQ(Stats(pool.get()).allocations_fresh, 3);
  ASSERT_TRUE(IsOk(bitnet_pool_deallocate(pool.get(), p)));
  ASSERT_TRUE(IsOk(bitnet_pool_deallocate(pool.get(), larger)));
}

// Tests that every alignment up to 1 MiB is honoured, and that a cached
// block aligned too loosely is not handed out for a stricter request.
TEST(PoolTest, Alignment) {
  PoolPtr pool = MakePool();
  for (int64_t align = 1; align <= (int64_t{1} << 20); align *= 2) {
    void *p = nullptr;
    ASSERT_TRUE(IsOk(bitnet_pool_allocate(pool.get(), 100, align, &p)));
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % static_cast<uintptr_t>(align), 0u)
        << align;
    std::memset(p, 0, 100);
    ASSERT_TRUE(IsOk(bitnet_pool_deallocate(pool.get(), p)));
  }
  void *p = nullptr;
  ASSERT_TRUE(IsOk(bitnet_pool_allocate(pool.get(), 10, 0, &p)));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 64, 0u);
  ASSERT_TRUE(IsOk(bitnet_pool_deallocate(pool.get(), p)));
}

// Tests the argument checks.
TEST(PoolTest, BadArguments) {
  PoolPtr pool = MakePool();
  void *p = reinterpret_cast<void *>(1);
  EXPECT_TRUE(IsError(bitnet_pool_create(nullptr),
                      BITNET_STATUS_INVALID_ARGUMENT, {"out_pool"}));
  EXPECT_TRUE(IsError(bitnet_pool_allocate(nullptr, 8, 0, &p),
                      BITNET_STATUS_INVALID_ARGUMENT, {"pool"}));
  EXPECT_EQ(p, nullptr);
  EXPECT_TRUE(IsError(bitnet_pool_allocate(pool.get(), 8, 0, nullptr),
                      BITNET_STATUS_INVALID_ARGUMENT, {"out_ptr"}));
  EXPECT_TRUE(IsError(bitnet_pool_allocate(pool.get(), -1, 0, &p),
                      BITNET_STATUS_INVALID_ARGUMENT, {"negative"}));
  EXPECT_TRUE(IsError(bitnet_pool_allocate(pool.get(), 8, 48, &p),
                      BITNET_STATUS_INVALID_ARGUMENT, {"power of two"}));
  EXPECT_TRUE(IsError(bitnet_pool_allocate(pool.get(), 8, int64_t{1} << 21, &p),
                      BITNET_STATUS_INVALID_ARGUMENT, {"alignment"}));
  EXPECT_TRUE(IsError(bitnet_pool_allocate(pool.get(), INT64_MAX, 0, &p),
                      BITNET_STATUS_OUT_OF_MEMORY));
  EXPECT_TRUE(IsError(bitnet_pool_get_stats(pool.get(), nullptr),
                      BITNET_STATUS_INVALID_ARGUMENT));
  EXPECT_TRUE(IsError(bitnet_pool_deallocate(nullptr, p),
                      BITNET_STATUS_INVALID_ARGUMENT));
  EXPECT_TRUE(IsOk(bitnet_pool_deallocate(pool.get(), nullptr)));
  bitnet_pool_retain(nullptr);
  bitnet_pool_release(nullptr);
  bitnet_pool_trim(nullptr);
  bitnet_pool_reset_peaks(nullptr);
}

// Tests that giving a block back twice, or a pointer the pool never handed
// out, is reported and changes nothing.
TEST(PoolTest, DoubleAndForeignDeallocate) {
  PoolPtr pool = MakePool();
  void *p = nullptr;
  ASSERT_TRUE(IsOk(bitnet_pool_allocate(pool.get(), 64, 0, &p)));
  ASSERT_TRUE(IsOk(bitnet_pool_deallocate(pool.get(), p)));
  EXPECT_TRUE(IsError(bitnet_pool_deallocate(pool.get(), p),
                      BITNET_STATUS_INVALID_ARGUMENT, {"given back twice"}));
  int on_stack = 0;
  EXPECT_TRUE(IsError(bitnet_pool_deallocate(pool.get(), &on_stack),
                      BITNET_STATUS_INVALID_ARGUMENT, {"not a block"}));
  bitnet_pool_stats s = Stats(pool.get());
  EXPECT_EQ(s.deallocations, 1);
  EXPECT_EQ(s.bytes_in_use, 0);
}

// Tests that a size of 0 still gives distinct pointers.
TEST(PoolTest, ZeroSize) {
  PoolPtr pool = MakePool();
  void *a = nullptr, *b = nullptr;
  ASSERT_TRUE(IsOk(bitnet_pool_allocate(pool.get(), 0, 0, &a)));
  ASSERT_TRUE(IsOk(bitnet_pool_allocate(pool.get(), 0, 0, &b)));
  EXPECT_NE(a, nullptr);
  EXPECT_NE(a, b);
  ASSERT_TRUE(IsOk(bitnet_pool_deallocate(pool.get(), a)));
  ASSERT_TRUE(IsOk(bitnet_pool_deallocate(pool.get(), b)));
}

// Tests that reserve plans a block that later requests use, that trim gives
// cached blocks back, and that peaks can be reset.
TEST(PoolTest, ReserveTrimAndPeaks) {
  PoolPtr pool = MakePool();
  ASSERT_TRUE(IsOk(bitnet_pool_reserve(pool.get(), 1 << 16, 4096)));
  bitnet_pool_stats s = Stats(pool.get());
  EXPECT_EQ(s.allocations_fresh, 1);
  EXPECT_EQ(s.bytes_in_use, 0);
  EXPECT_GE(s.bytes_reserved, 1 << 16);

  void *p = nullptr;
  ASSERT_TRUE(IsOk(bitnet_pool_allocate(pool.get(), 1 << 15, 4096, &p)));
  s = Stats(pool.get());
  EXPECT_EQ(s.allocations_fresh, 1);
  EXPECT_EQ(s.allocations_from_pool, 1);
  ASSERT_TRUE(IsOk(bitnet_pool_deallocate(pool.get(), p)));

  bitnet_pool_reset_peaks(pool.get());
  s = Stats(pool.get());
  EXPECT_EQ(s.peak_bytes_in_use, 0);
  bitnet_pool_trim(pool.get());
  s = Stats(pool.get());
  EXPECT_EQ(s.bytes_reserved, 0);
  EXPECT_GE(s.peak_bytes_reserved, 1 << 16);
}

// Tests that releasing a pool with blocks still handed out frees them (the
// leak checker of the sanitizer build would say otherwise).
TEST(PoolTest, ReleaseFreesLiveBlocks) {
  bitnet_pool *pool = nullptr;
  ASSERT_TRUE(IsOk(bitnet_pool_create(&pool)));
  for (int i = 0; i < 40; ++i) {
    void *p = nullptr;
    ASSERT_TRUE(IsOk(bitnet_pool_allocate(pool, 100 + i, 0, &p)));
  }
  bitnet_pool_release(pool);
}

// Tests that several threads can allocate from one pool at once and that the
// counters add up afterwards.
TEST(PoolTest, ThreadSafe) {
  PoolPtr pool = MakePool();
  constexpr int kThreads = 4, kRounds = 500;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&pool, t] {
      for (int r = 0; r < kRounds; ++r) {
        void *p = nullptr;
        ASSERT_TRUE(IsOk(bitnet_pool_allocate(pool.get(), 64 * (t + 1), 0, &p)));
        std::memset(p, t, static_cast<size_t>(64 * (t + 1)));
        ASSERT_TRUE(IsOk(bitnet_pool_deallocate(pool.get(), p)));
      }
    });
  }
  for (std::thread &t : threads)
    t.join();
  bitnet_pool_stats s = Stats(pool.get());
  EXPECT_EQ(s.allocations, kThreads * kRounds);
  EXPECT_EQ(s.deallocations, kThreads * kRounds);
  EXPECT_EQ(s.allocations_fresh + s.allocations_from_pool, s.allocations);
  EXPECT_LE(s.allocations_fresh, kThreads * kThreads);
  EXPECT_EQ(s.bytes_in_use, 0);
}

} // namespace
