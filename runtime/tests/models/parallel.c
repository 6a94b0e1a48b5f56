/*===- parallel.c - Test model: two parallel kernels ----------------*- C -*-===*
 *
 * Part of bitnet-mlir.
 *
 *===----------------------------------------------------------------------===*
 *
 * x: f32[1000]. y = 3 * x (kernel "scale"), z = y + 1 (kernel "shift"), both
 * through parallel_for. `seen` (i32[4]) reports what the exec_ctx offered:
 * kernel_begin set, kernel_end set, parallel_for set, num_threads.
 *
 *===----------------------------------------------------------------------===*/

#include "test_model.h"

#define N 1000

static const int64_t vec_shape[1] = {N};
static const int64_t seen_shape[1] = {4};
static const bitnet_tensor_info inputs[1] = {
    {"x", BITNET_DTYPE_F32, 1, vec_shape}};
static const bitnet_tensor_info outputs[3] = {
    {"y", BITNET_DTYPE_F32, 1, vec_shape},
    {"z", BITNET_DTYPE_F32, 1, vec_shape},
    {"seen", BITNET_DTYPE_I32, 1, seen_shape}};

TEST_MODEL_INFO = {
    TEST_MODEL_HOST("parallel"),
    .num_inputs = 1,
    .num_outputs = 3,
    .inputs = inputs,
    .outputs = outputs,
    .workspace_bytes = 0,
    .workspace_alignment = 64,
};

typedef struct args {
  const float *in;
  float *out;
  float mul, add;
} args;

static void body(void *opaque, int64_t begin, int64_t end) {
  const args *a = opaque;
  for (int64_t i = begin; i < end; ++i)
    a->out[i] = a->in[i] * a->mul + a->add;
}

TEST_MODEL_RUN {
  (void)workspace;
  const float *x = buffers[0];
  float *y = buffers[1], *z = buffers[2];
  int32_t *seen = buffers[3];
  seen[0] = ctx && ctx->kernel_begin;
  seen[1] = ctx && ctx->kernel_end;
  seen[2] = ctx && ctx->parallel_for;
  seen[3] = ctx ? ctx->num_threads : 0;

  args scale = {x, y, 3.0f, 0.0f};
  test_kernel_begin(ctx, "scale", 2 * N * sizeof(float), N);
  test_parallel_for(ctx, N, body, &scale);
  test_kernel_end(ctx, "scale");

  args shift = {y, z, 1.0f, 1.0f};
  test_kernel_begin(ctx, "shift", 2 * N * sizeof(float), N);
  test_parallel_for(ctx, N, body, &shift);
  test_kernel_end(ctx, "shift");
  return 0;
}
