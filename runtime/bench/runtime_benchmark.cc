//===- runtime_benchmark.cc - Overheads of the runtime ---------------------===//
//
// Part of bitnet-mlir.
//
// Runs a tiny model (y = 2x + 1 on 12 floats, one reported kernel) so that
// the figures are the runtime's own cost per run:
//   BM_RunDirect          the model's entry point called with ctx = NULL
//   BM_RunContext         bitnet_context_run, profiling off
//   BM_RunContextChecked  bitnet_context_run_checked, profiling off
//   BM_RunContextProfiled bitnet_context_run with the built-in collector
// and the cost of one parallel_for over trivial chunks, per thread count.
//
//===----------------------------------------------------------------------===//

#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <dlfcn.h>

#include "bitnet_rt/bitnet_rt.h"
#include "bitnet_rt_test_paths.h"

namespace {

void Check(bitnet_status status) {
  if (status != BITNET_OK) {
    std::fprintf(stderr, "%s\n", bitnet_status_message(status));
    std::abort();
  }
}

struct Affine {
  float x[12] = {}, y[12] = {};
  const void *inputs[1] = {x};
  void *outputs[1] = {y};
  bitnet_model *model = nullptr;
  Affine() { Check(bitnet_model_load(BITNET_TEST_MODEL_AFFINE, &model)); }
  ~Affine() { bitnet_model_release(model); }
};

void BM_RunDirect(benchmark::State &state) {
  void *handle = dlopen(BITNET_TEST_MODEL_AFFINE, RTLD_NOW | RTLD_LOCAL);
  auto run = reinterpret_cast<bitnet_model_run_fn>(
      dlsym(handle, BITNET_MODEL_RUN_SYMBOL));
  float x[12] = {}, y[12];
  void *buffers[2] = {x, y};
  for (auto _ : state) {
    benchmark::DoNotOptimize(run(buffers, nullptr, nullptr));
    benchmark::ClobberMemory();
  }
  dlclose(handle);
}
BENCHMARK(BM_RunDirect);

void BM_RunContext(benchmark::State &state) {
  Affine a;
  bitnet_context *ctx;
  Check(bitnet_context_create(a.model, nullptr, &ctx));
  for (auto _ : state) {
    Check(bitnet_context_run(ctx, a.inputs, 1, a.outputs, 1));
    benchmark::ClobberMemory();
  }
  bitnet_context_free(ctx);
}
BENCHMARK(BM_RunContext);

void BM_RunContextChecked(benchmark::State &state) {
  Affine a;
  bitnet_context *ctx;
  Check(bitnet_context_create(a.model, nullptr, &ctx));
  const int64_t shape[2] = {4, 3};
  bitnet_tensor in = {a.x, BITNET_DTYPE_F32, 2, shape, sizeof(a.x)};
  bitnet_tensor out = {a.y, BITNET_DTYPE_F32, 2, shape, sizeof(a.y)};
  for (auto _ : state) {
    Check(bitnet_context_run_checked(ctx, &in, 1, &out, 1));
    benchmark::ClobberMemory();
  }
  bitnet_context_free(ctx);
}
BENCHMARK(BM_RunContextChecked);

void BM_RunContextProfiled(benchmark::State &state) {
  Affine a;
  bitnet_profile_collector *collector;
  Check(bitnet_profile_collector_create(0, &collector));
  bitnet_profiler profiler = bitnet_profile_collector_profiler(collector);
  bitnet_context_options options = {};
  options.profiler = &profiler;
  bitnet_context *ctx;
  Check(bitnet_context_create(a.model, &options, &ctx));
  int64_t iterations = 0;
  for (auto _ : state) {
    Check(bitnet_context_run(ctx, a.inputs, 1, a.outputs, 1));
    benchmark::ClobberMemory();
    // Keeps the event list from reaching its limit, outside the timing.
    if (++iterations % 200000 == 0) {
      state.PauseTiming();
      bitnet_profile_collector_reset(collector);
      state.ResumeTiming();
    }
  }
  bitnet_context_free(ctx);
  bitnet_profile_collector_free(collector);
}
BENCHMARK(BM_RunContextProfiled);

void Touch(void *arg, int64_t begin, int64_t end) {
  static_cast<std::atomic<int64_t> *>(arg)->fetch_add(end - begin,
                                                      std::memory_order_relaxed);
}

// One parallel_for over n = 1024 with a trivial body; arg = thread count
// (0 = no thread pool: the body runs once on the caller).
void BM_ParallelFor(benchmark::State &state) {
  bitnet_thread_pool *pool = nullptr;
  if (state.range(0) > 0)
    Check(bitnet_thread_pool_create(static_cast<int32_t>(state.range(0)), &pool));
  std::atomic<int64_t> counter{0};
  for (auto _ : state)
    bitnet_thread_pool_parallel_for(pool, 1024, Touch, &counter);
  if (counter.load() != 1024 * static_cast<int64_t>(state.iterations()))
    state.SkipWithError("wrong coverage");
  bitnet_thread_pool_release(pool);
}
BENCHMARK(BM_ParallelFor)->Arg(0)->Arg(1)->Arg(2)->Arg(4)->UseRealTime();

} // namespace

BENCHMARK_MAIN();
