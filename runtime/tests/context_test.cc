//===- context_test.cc - Execution contexts and runs ---------------------===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#include "test_util.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <pthread.h>
#include <string>
#include <thread>
#include <vector>

using namespace bitnet_test;

namespace {

ContextPtr MakeContext(bitnet_model *model,
                       const bitnet_context_options *options = nullptr) {
  bitnet_context *context = nullptr;
  EXPECT_TRUE(IsOk(bitnet_context_create(model, options, &context)));
  return ContextPtr(context);
}

// Tests y = 2x + 1 through a context without options.
TEST(ContextTest, RunAffine) {
  ModelPtr model = LoadModel(BITNET_TEST_MODEL_AFFINE);
  ContextPtr ctx = MakeContext(model.get());
  EXPECT_EQ(bitnet_context_model(ctx.get()), model.get());
  EXPECT_EQ(bitnet_context_workspace_bytes(ctx.get()), 0);
  float x[12], y[12];
  for (int i = 0; i < 12; ++i)
    x[i] = static_cast<float>(i) - 4.5f;
  const void *inputs[] = {x};
  void *outputs[] = {y};
  ASSERT_TRUE(IsOk(bitnet_context_run(ctx.get(), inputs, 1, outputs, 1)));
  for (int i = 0; i < 12; ++i)
    EXPECT_FLOAT_EQ(y[i], 2 * x[i] + 1) << i;
}

// Tests that inputs outside their declared ranges (token ids, positions) are
// refused with OUT_OF_RANGE naming the input, the value and the range, on
// both run calls, and that values at the ends of the ranges run.
TEST(ContextTest, InputRanges) {
  ModelPtr model = LoadModel(BITNET_TEST_MODEL_RANGED);
  bitnet_tensor_desc ids, position;
  ASSERT_TRUE(IsOk(bitnet_model_input(model.get(), 0, &ids)));
  ASSERT_TRUE(IsOk(bitnet_model_input(model.get(), 1, &position)));
  EXPECT_EQ(ids.flags, BITNET_TENSOR_RANGE);
  EXPECT_EQ(ids.min_value, -4);
  EXPECT_EQ(ids.max_value, 3);
  EXPECT_EQ(position.min_value, 0);
  EXPECT_EQ(position.max_value, 7);
  ContextPtr ctx = MakeContext(model.get());
  int32_t x[3] = {-4, 0, 3};
  int64_t p = 7, y[3] = {0, 0, 0};
  const void *inputs[] = {x, &p};
  void *outputs[] = {y};
  ASSERT_TRUE(IsOk(bitnet_context_run(ctx.get(), inputs, 2, outputs, 1)));
  EXPECT_EQ(y[0], 3);
  EXPECT_EQ(y[2], 10);

  struct Case {
    int32_t id1;
    int64_t position;
    std::string expected;
  } cases[] = {
      {4, 0, "input 0 ('ids') holds 4 at element 1; the model accepts values "
             "in [-4, 3]"},
      {-5, 0, "input 0 ('ids') holds -5 at element 1"},
      {0, 8, "input 1 ('position') holds 8; the model accepts values in [0, "
             "7]"},
      {0, -1, "input 1 ('position') holds -1;"},
  };
  for (const Case &c : cases) {
    x[1] = c.id1;
    p = c.position;
    y[0] = y[1] = y[2] = -99;
    bitnet_status status = bitnet_context_run(ctx.get(), inputs, 2, outputs, 1);
    std::string message = bitnet_status_message(status);
    EXPECT_EQ(bitnet_status_get_code(status), BITNET_STATUS_OUT_OF_RANGE)
        << message;
    EXPECT_NE(message.find(c.expected), std::string::npos) << message;
    bitnet_status_free(status);
    EXPECT_EQ(y[0], -99) << "the model ran";

    int64_t shape[1] = {3};
    bitnet_tensor checked_inputs[] = {
        {x, BITNET_DTYPE_I32, 1, shape, sizeof(x)},
        {&p, BITNET_DTYPE_I64, 0, nullptr, sizeof(p)}};
    bitnet_tensor checked_outputs[] = {{y, BITNET_DTYPE_I64, 1, shape, sizeof(y)}};
    status = bitnet_context_run_checked(ctx.get(), checked_inputs, 2,
                                        checked_outputs, 1);
    EXPECT_EQ(bitnet_status_get_code(status), BITNET_STATUS_OUT_OF_RANGE);
    bitnet_status_free(status);
  }
}

/// Runs `fn` on a new thread with `stack` bytes of stack and waits for it.
void OnThreadWithStack(size_t stack, void (*fn)(void *), void *arg) {
  struct Call {
    void (*fn)(void *);
    void *arg;
  } call{fn, arg};
  pthread_attr_t attr;
  ASSERT_EQ(pthread_attr_init(&attr), 0);
  ASSERT_EQ(pthread_attr_setstacksize(&attr, stack), 0);
  pthread_t thread;
  ASSERT_EQ(pthread_create(
                &thread, &attr,
                [](void *p) -> void * {
                  auto *c = static_cast<Call *>(p);
                  c->fn(c->arg);
                  return nullptr;
                },
                &call),
            0);
  pthread_join(thread, nullptr);
  pthread_attr_destroy(&attr);
}

struct StackRun {
  bitnet_context *context;
  bitnet_status_code code = BITNET_STATUS_INTERNAL;
  std::string message;
  float y[4] = {0, 0, 0, 0};
};

void RunOnce(void *arg) {
  auto *r = static_cast<StackRun *>(arg);
  const float x[4] = {1, 2, 3, 4};
  const void *inputs[] = {x};
  void *outputs[] = {r->y};
  bitnet_status st = bitnet_context_run(r->context, inputs, 1, outputs, 1);
  r->code = bitnet_status_get_code(st);
  r->message = st ? bitnet_status_message(st) : "";
  bitnet_status_free(st);
}

// Tests that a model whose kernels keep 1 MiB of buffers on the stack runs
// on a thread with enough stack, and on one with too little is refused with
// a status that says so instead of overflowing the stack.
TEST(ContextTest, StackOfTheCallingThread) {
  ModelPtr model = LoadModel(BITNET_TEST_MODEL_STACK);
  EXPECT_EQ(bitnet_model_get_info(model.get())->stack_bytes, 1 << 20);
  ContextPtr ctx = MakeContext(model.get());
  StackRun small{ctx.get()};
  OnThreadWithStack(512 << 10, RunOnce, &small);
  EXPECT_EQ(small.code, BITNET_STATUS_FAILED_PRECONDITION) << small.message;
  EXPECT_NE(small.message.find("1024 KiB of kernel buffers on the stack"),
            std::string::npos)
      << small.message;
  EXPECT_NE(small.message.find("larger stack"), std::string::npos)
      << small.message;
  StackRun large{ctx.get()};
  OnThreadWithStack(4 << 20, RunOnce, &large);
  EXPECT_EQ(large.code, BITNET_STATUS_OK) << large.message;
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(large.y[i], i + 2.0f);
}

// Tests that the thread pool's workers get enough stack for such a model
// whatever the system's default, and that a model needing more than they
// have (16 MiB) is refused when it would run on them, not on its own.
TEST(ContextTest, StackOfThePoolsWorkers) {
  bitnet_thread_pool *threads_raw = nullptr;
  ASSERT_TRUE(IsOk(bitnet_thread_pool_create(2, &threads_raw)));
  ThreadPoolPtr threads(threads_raw);
  bitnet_context_options options = {};
  options.thread_pool = threads.get();

  ModelPtr model = LoadModel(BITNET_TEST_MODEL_STACK);
  ContextPtr ctx = MakeContext(model.get(), &options);
  StackRun run{ctx.get()};
  RunOnce(&run);
  EXPECT_EQ(run.code, BITNET_STATUS_OK) << run.message;

  ModelPtr huge = LoadModel(BITNET_TEST_MODEL_HUGE_STACK);
  ContextPtr pooled = MakeContext(huge.get(), &options);
  StackRun refused{pooled.get()};
  OnThreadWithStack(64 << 20, RunOnce, &refused);
  EXPECT_EQ(refused.code, BITNET_STATUS_FAILED_PRECONDITION)
      << refused.message;
  EXPECT_NE(refused.message.find("thread pool's workers have"),
            std::string::npos)
      << refused.message;
  ContextPtr serial = MakeContext(huge.get());
  StackRun alone{serial.get()};
  OnThreadWithStack(64 << 20, RunOnce, &alone);
  EXPECT_EQ(alone.code, BITNET_STATUS_OK) << alone.message;
}

// Tests a model with a workspace: it gets one of the declared size and
// alignment, from the pool given, and the pool gets it back afterwards.
TEST(ContextTest, Workspace) {
  ModelPtr model = LoadModel(BITNET_TEST_MODEL_WORKSPACE);
  bitnet_pool *pool_raw = nullptr;
  ASSERT_TRUE(IsOk(bitnet_pool_create(&pool_raw)));
  PoolPtr pool(pool_raw);
  bitnet_context_options options = {};
  options.pool = pool.get();
  ContextPtr ctx = MakeContext(model.get(), &options);
  EXPECT_EQ(bitnet_context_workspace_bytes(ctx.get()), 65536);
  bitnet_pool_stats stats;
  ASSERT_TRUE(IsOk(bitnet_pool_get_stats(pool.get(), &stats)));
  EXPECT_GE(stats.bytes_in_use, 65536);

  int32_t x[16], y[16], ok[1] = {0};
  for (int i = 0; i < 16; ++i)
    x[i] = i + 1;
  const void *inputs[] = {x};
  void *outputs[] = {y, ok};
  ASSERT_TRUE(IsOk(bitnet_context_run(ctx.get(), inputs, 1, outputs, 2)));
  EXPECT_EQ(ok[0], 1);
  for (int i = 0; i < 16; ++i)
    EXPECT_EQ(y[i], (i + 1) * (i + 2) / 2);

  ctx.reset();
  ASSERT_TRUE(IsOk(bitnet_pool_get_stats(pool.get(), &stats)));
  EXPECT_EQ(stats.bytes_in_use, 0);
  // A second context reuses the cached workspace.
  ContextPtr again = MakeContext(model.get(), &options);
  ASSERT_TRUE(IsOk(bitnet_pool_get_stats(pool.get(), &stats)));
  EXPECT_EQ(stats.allocations_fresh, 1);
  EXPECT_EQ(stats.allocations_from_pool, 1);
}

// Tests that steady-state runs allocate nothing: over 100 runs the pool
// serves no fresh allocation after the first one.
TEST(ContextTest, NoFreshAllocationsInSteadyState) {
  ModelPtr model = LoadModel(BITNET_TEST_MODEL_WORKSPACE);
  bitnet_pool *pool_raw = nullptr;
  ASSERT_TRUE(IsOk(bitnet_pool_create(&pool_raw)));
  PoolPtr pool(pool_raw);
  bitnet_thread_pool *threads_raw = nullptr;
  ASSERT_TRUE(IsOk(bitnet_thread_pool_create(2, &threads_raw)));
  ThreadPoolPtr threads(threads_raw);
  bitnet_context_options options = {pool.get(), threads.get(), nullptr};
  ContextPtr ctx = MakeContext(model.get(), &options);
  // Inputs and outputs from the pool, as bitnet-run does.
  void *x = nullptr, *y = nullptr, *ok = nullptr;
  ASSERT_TRUE(IsOk(bitnet_pool_allocate(pool.get(), 64, 0, &x)));
  ASSERT_TRUE(IsOk(bitnet_pool_allocate(pool.get(), 64, 0, &y)));
  ASSERT_TRUE(IsOk(bitnet_pool_allocate(pool.get(), 4, 0, &ok)));
  std::memset(x, 0, 64);
  const void *inputs[] = {x};
  void *outputs[] = {y, ok};
  ASSERT_TRUE(IsOk(bitnet_context_run(ctx.get(), inputs, 1, outputs, 2)));
  bitnet_pool_stats first;
  ASSERT_TRUE(IsOk(bitnet_pool_get_stats(pool.get(), &first)));
  for (int r = 0; r < 100; ++r)
    ASSERT_TRUE(IsOk(bitnet_context_run(ctx.get(), inputs, 1, outputs, 2)));
  bitnet_pool_stats after;
  ASSERT_TRUE(IsOk(bitnet_pool_get_stats(pool.get(), &after)));
  EXPECT_EQ(after.allocations_fresh, first.allocations_fresh);
  EXPECT_EQ(after.allocations, first.allocations);
  EXPECT_EQ(after.peak_bytes_in_use, first.peak_bytes_in_use);
  for (void *p : {x, y, ok})
    ASSERT_TRUE(IsOk(bitnet_pool_deallocate(pool.get(), p)));
}

// Tests what the exec_ctx offers: with a thread pool, parallel_for and the
// thread count; without, neither; kernel hooks stay NULL with profiling off.
TEST(ContextTest, ExecCtxContents) {
  ModelPtr model = LoadModel(BITNET_TEST_MODEL_PARALLEL);
  std::vector<float> x(1000), y(1000), z(1000);
  for (int i = 0; i < 1000; ++i)
    x[static_cast<size_t>(i)] = static_cast<float>(i);
  int32_t seen[4];
  const void *inputs[] = {x.data()};
  void *outputs[] = {y.data(), z.data(), seen};

  ContextPtr serial = MakeContext(model.get());
  ASSERT_TRUE(IsOk(bitnet_context_run(serial.get(), inputs, 1, outputs, 3)));
  EXPECT_EQ(seen[0], 0);
  EXPECT_EQ(seen[1], 0);
  EXPECT_EQ(seen[2], 0);
  EXPECT_EQ(seen[3], 1);

  bitnet_thread_pool *threads_raw = nullptr;
  ASSERT_TRUE(IsOk(bitnet_thread_pool_create(3, &threads_raw)));
  ThreadPoolPtr threads(threads_raw);
  bitnet_context_options options = {};
  options.thread_pool = threads.get();
  ContextPtr parallel = MakeContext(model.get(), &options);
  ASSERT_TRUE(IsOk(bitnet_context_run(parallel.get(), inputs, 1, outputs, 3)));
  EXPECT_EQ(seen[0], 0);
  EXPECT_EQ(seen[1], 0);
  EXPECT_EQ(seen[2], 1);
  EXPECT_EQ(seen[3], 3);
  for (int i = 0; i < 1000; ++i) {
    ASSERT_FLOAT_EQ(y[static_cast<size_t>(i)], 3.0f * i);
    ASSERT_FLOAT_EQ(z[static_cast<size_t>(i)], 3.0f * i + 1);
  }
}

// Tests the argument checks of create and run: NULLs, wrong counts, NULL
// buffers; none of them reaches the model.
TEST(ContextTest, BadArguments) {
  ModelPtr model = LoadModel(BITNET_TEST_MODEL_AFFINE);
  bitnet_context *raw = reinterpret_cast<bitnet_context *>(1);
  EXPECT_TRUE(IsError(bitnet_context_create(nullptr, nullptr, &raw),
                      BITNET_STATUS_INVALID_ARGUMENT, {"'model'"}));
  EXPECT_EQ(raw, nullptr);
  EXPECT_TRUE(IsError(bitnet_context_create(model.get(), nullptr, nullptr),
                      BITNET_STATUS_INVALID_ARGUMENT, {"out_context"}));

  ContextPtr ctx = MakeContext(model.get());
  float x[12] = {}, y[12] = {};
  const void *inputs[] = {x};
  void *outputs[] = {y};
  const void *null_inputs[] = {nullptr};
  void *null_outputs[] = {nullptr};
  EXPECT_TRUE(IsError(bitnet_context_run(nullptr, inputs, 1, outputs, 1),
                      BITNET_STATUS_INVALID_ARGUMENT, {"'context'"}));
  EXPECT_TRUE(IsError(bitnet_context_run(ctx.get(), inputs, 2, outputs, 1),
                      BITNET_STATUS_INVALID_ARGUMENT,
                      {"2 inputs and 1 outputs given", "takes 1 inputs"}));
  EXPECT_TRUE(IsError(bitnet_context_run(ctx.get(), inputs, 1, outputs, 0),
                      BITNET_STATUS_INVALID_ARGUMENT, {"has 1 outputs"}));
  EXPECT_TRUE(IsError(bitnet_context_run(ctx.get(), inputs, -1, outputs, 1),
                      BITNET_STATUS_INVALID_ARGUMENT));
  EXPECT_TRUE(IsError(bitnet_context_run(ctx.get(), nullptr, 1, outputs, 1),
                      BITNET_STATUS_INVALID_ARGUMENT, {"'inputs'"}));
  EXPECT_TRUE(IsError(bitnet_context_run(ctx.get(), inputs, 1, nullptr, 1),
                      BITNET_STATUS_INVALID_ARGUMENT, {"'outputs'"}));
  EXPECT_TRUE(IsError(bitnet_context_run(ctx.get(), null_inputs, 1, outputs, 1),
                      BITNET_STATUS_INVALID_ARGUMENT, {"input 0 ('x') is NULL"}));
  EXPECT_TRUE(IsError(bitnet_context_run(ctx.get(), inputs, 1, null_outputs, 1),
                      BITNET_STATUS_INVALID_ARGUMENT,
                      {"output 0 ('y') is NULL"}));
  for (float v : y)
    EXPECT_EQ(v, 0.0f); // the model never ran

  EXPECT_TRUE(IsError(bitnet_context_set_profiler(nullptr, nullptr),
                      BITNET_STATUS_INVALID_ARGUMENT));
  EXPECT_EQ(bitnet_context_model(nullptr), nullptr);
  EXPECT_EQ(bitnet_context_workspace_bytes(nullptr), 0);
  bitnet_context_free(nullptr);
}

// Tests that the device-side calls refuse a CPU model, and check their
// arguments first.
TEST(ContextTest, GPUCallsOnACPUModel) {
  ModelPtr model = LoadModel(BITNET_TEST_MODEL_AFFINE);
  ContextPtr ctx = MakeContext(model.get());
  float x[12] = {};
  EXPECT_EQ(bitnet_context_gpu_stream(ctx.get()), nullptr);
  EXPECT_EQ(bitnet_context_gpu_stream(nullptr), nullptr);
  EXPECT_TRUE(IsError(bitnet_context_gpu_upload(ctx.get(), 0, x),
                      BITNET_STATUS_FAILED_PRECONDITION,
                      {"bitnet_context_gpu_upload", "does not run on a GPU"}));
  EXPECT_TRUE(IsError(bitnet_context_gpu_download(ctx.get(), 1, x),
                      BITNET_STATUS_FAILED_PRECONDITION,
                      {"does not run on a GPU"}));
  EXPECT_TRUE(IsError(bitnet_context_gpu_launch(ctx.get(), 0, -1),
                      BITNET_STATUS_FAILED_PRECONDITION,
                      {"bitnet_context_gpu_launch"}));
  EXPECT_TRUE(IsError(bitnet_context_gpu_synchronize(ctx.get()),
                      BITNET_STATUS_FAILED_PRECONDITION));
  EXPECT_TRUE(IsError(bitnet_context_gpu_upload(ctx.get(), 2, x),
                      BITNET_STATUS_INVALID_ARGUMENT,
                      {"buffer 2 is out of range", "2 inputs and outputs"}));
  EXPECT_TRUE(IsError(bitnet_context_gpu_download(ctx.get(), 0, nullptr),
                      BITNET_STATUS_INVALID_ARGUMENT, {"is NULL"}));
  EXPECT_TRUE(IsError(bitnet_context_gpu_launch(nullptr, 0, -1),
                      BITNET_STATUS_INVALID_ARGUMENT, {"'context'"}));
  // The context is not left busy.
  float y[12];
  const void *inputs[] = {x};
  void *outputs[] = {y};
  EXPECT_TRUE(IsOk(bitnet_context_run(ctx.get(), inputs, 1, outputs, 1)));
}

// Tests the checked run: dtype, rank, shape, size and overlap mismatches
// each give their message; a matching call runs.
TEST(ContextTest, RunChecked) {
  ModelPtr model = LoadModel(BITNET_TEST_MODEL_AFFINE);
  ContextPtr ctx = MakeContext(model.get());
  float x[12], y[12];
  for (int i = 0; i < 12; ++i)
    x[i] = static_cast<float>(i);
  const int64_t shape[2] = {4, 3}, wrong[2] = {3, 4};
  bitnet_tensor in = {x, BITNET_DTYPE_F32, 2, shape, sizeof(x)};
  bitnet_tensor out = {y, BITNET_DTYPE_F32, 2, shape, sizeof(y)};
  ASSERT_TRUE(IsOk(bitnet_context_run_checked(ctx.get(), &in, 1, &out, 1)));
  EXPECT_FLOAT_EQ(y[11], 23.0f);

  bitnet_tensor bad = in;
  bad.dtype = BITNET_DTYPE_F16;
  EXPECT_TRUE(IsError(bitnet_context_run_checked(ctx.get(), &bad, 1, &out, 1),
                      BITNET_STATUS_INVALID_ARGUMENT,
                      {"input 0 ('x') has dtype f16", "expects f32"}));
  bad = in;
  bad.shape = wrong;
  EXPECT_TRUE(IsError(bitnet_context_run_checked(ctx.get(), &bad, 1, &out, 1),
                      BITNET_STATUS_INVALID_ARGUMENT,
                      {"has shape [3,4]", "expects [4,3]"}));
  bad = in;
  bad.rank = 1;
  EXPECT_TRUE(IsError(bitnet_context_run_checked(ctx.get(), &bad, 1, &out, 1),
                      BITNET_STATUS_INVALID_ARGUMENT, {"has shape [4]"}));
  bad = in;
  bad.rank = 20;
  EXPECT_TRUE(IsError(bitnet_context_run_checked(ctx.get(), &bad, 1, &out, 1),
                      BITNET_STATUS_INVALID_ARGUMENT, {"of rank 20"}));
  bad = in;
  bad.shape = nullptr;
  EXPECT_TRUE(IsError(bitnet_context_run_checked(ctx.get(), &bad, 1, &out, 1),
                      BITNET_STATUS_INVALID_ARGUMENT, {"of rank 2"}));
  bad = out;
  bad.byte_size = 40;
  EXPECT_TRUE(IsError(bitnet_context_run_checked(ctx.get(), &in, 1, &bad, 1),
                      BITNET_STATUS_INVALID_ARGUMENT,
                      {"output 0 ('y') holds 40 bytes", "needs 48"}));
  bad = out;
  bad.data = x + 2; // overlaps the input
  EXPECT_TRUE(IsError(bitnet_context_run_checked(ctx.get(), &in, 1, &bad, 1),
                      BITNET_STATUS_INVALID_ARGUMENT,
                      {"output 0 ('y') overlaps input 0 ('x')"}));
  EXPECT_TRUE(IsError(bitnet_context_run_checked(ctx.get(), &in, 1, &out, 2),
                      BITNET_STATUS_INVALID_ARGUMENT, {"takes 1 inputs"}));
  EXPECT_TRUE(IsError(bitnet_context_run_checked(ctx.get(), nullptr, 1, &out, 1),
                      BITNET_STATUS_INVALID_ARGUMENT));
}

// Tests that a failing model run is reported with its return code.
TEST(ContextTest, RunFailure) {
  ModelPtr model = LoadModel(BITNET_TEST_MODEL_FAILING);
  ContextPtr ctx = MakeContext(model.get());
  float x = 1, y = 0;
  const void *inputs[] = {&x};
  void *outputs[] = {&y};
  EXPECT_TRUE(IsError(bitnet_context_run(ctx.get(), inputs, 1, outputs, 1),
                      BITNET_STATUS_RUN_FAILED,
                      {"bitnet_model_run returned 7", "failing"}));
  // The context is usable again after a failure.
  EXPECT_TRUE(IsError(bitnet_context_run(ctx.get(), inputs, 1, outputs, 1),
                      BITNET_STATUS_RUN_FAILED));
}

// Tests that a context refuses a second run (and a profiler change) while a
// run is in progress.
TEST(ContextTest, BusyWhileRunning) {
  ModelPtr model = LoadModel(BITNET_TEST_MODEL_GATED);
  std::atomic<bool> started{false};
  bitnet_profiler profiler = {};
  profiler.user = &started;
  profiler.kernel_begin = [](void *user, const char *, int64_t, int64_t) {
    static_cast<std::atomic<bool> *>(user)->store(true);
  };
  bitnet_context_options options = {};
  options.profiler = &profiler;
  ContextPtr ctx = MakeContext(model.get(), &options);
  int32_t gate = 0, y = 0, y2 = 0;
  const void *inputs[] = {&gate};
  void *outputs[] = {&y};
  std::thread runner([&] {
    EXPECT_TRUE(IsOk(bitnet_context_run(ctx.get(), inputs, 1, outputs, 1)));
  });
  while (!started.load())
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  void *outputs2[] = {&y2};
  EXPECT_TRUE(IsError(bitnet_context_run(ctx.get(), inputs, 1, outputs2, 1),
                      BITNET_STATUS_FAILED_PRECONDITION,
                      {"already running", "one context each"}));
  EXPECT_TRUE(IsError(bitnet_context_set_profiler(ctx.get(), nullptr),
                      BITNET_STATUS_FAILED_PRECONDITION));
  __atomic_store_n(&gate, 5, __ATOMIC_RELEASE);
  runner.join();
  EXPECT_EQ(y, 5);
  EXPECT_EQ(y2, 0);
  // Free again: a run goes through.
  EXPECT_TRUE(IsOk(bitnet_context_run(ctx.get(), inputs, 1, outputs2, 1)));
  EXPECT_EQ(y2, 5);
}

// Tests that the context keeps its model, pool and thread pool alive: the
// caller may release them first.
TEST(ContextTest, KeepsItsDependenciesAlive) {
  bitnet_model *model = nullptr;
  bitnet_pool *pool = nullptr;
  bitnet_thread_pool *threads = nullptr;
  ASSERT_TRUE(IsOk(bitnet_model_load(BITNET_TEST_MODEL_PARALLEL, &model)));
  ASSERT_TRUE(IsOk(bitnet_pool_create(&pool)));
  ASSERT_TRUE(IsOk(bitnet_thread_pool_create(2, &threads)));
  bitnet_context_options options = {pool, threads, nullptr};
  bitnet_context *ctx = nullptr;
  ASSERT_TRUE(IsOk(bitnet_context_create(model, &options, &ctx)));
  bitnet_model_release(model);
  bitnet_pool_release(pool);
  bitnet_thread_pool_release(threads);
  std::vector<float> x(1000, 1.0f), y(1000), z(1000);
  int32_t seen[4];
  const void *inputs[] = {x.data()};
  void *outputs[] = {y.data(), z.data(), seen};
  EXPECT_TRUE(IsOk(bitnet_context_run(ctx, inputs, 1, outputs, 3)));
  EXPECT_FLOAT_EQ(z[999], 4.0f);
  EXPECT_EQ(seen[3], 2);
  bitnet_context_free(ctx);
}

} // namespace
