/*===- gated.c - Test model that waits for its input to open --------*- C -*-===*
 *
 * Part of bitnet-mlir.
 *
 *===----------------------------------------------------------------------===*
 *
 * gate: i32[1]. Reports kernel "wait" as begun, then polls `gate` (atomically)
 * until it is non-zero, so that a test can hold a run in progress. y = gate.
 *
 *===----------------------------------------------------------------------===*/

#define _POSIX_C_SOURCE 199309L
#include <time.h>

#include "test_model.h"

static const int64_t shape[1] = {1};
static const bitnet_tensor_info inputs[1] = {
    {"gate", BITNET_DTYPE_I32, 1, shape}};
static const bitnet_tensor_info outputs[1] = {{"y", BITNET_DTYPE_I32, 1, shape}};

TEST_MODEL_INFO = {
    TEST_MODEL_HOST("gated"),
    .num_inputs = 1,
    .num_outputs = 1,
    .inputs = inputs,
    .outputs = outputs,
    .workspace_bytes = 0,
    .workspace_alignment = 1,
};

TEST_MODEL_RUN {
  (void)workspace;
  const int32_t *gate = buffers[0];
  int32_t *y = buffers[1];
  test_kernel_begin(ctx, "wait", 0, 0);
  const struct timespec pause = {0, 100000};
  int32_t value;
  while ((value = __atomic_load_n(gate, __ATOMIC_ACQUIRE)) == 0)
    nanosleep(&pause, NULL);
  test_kernel_end(ctx, "wait");
  y[0] = value;
  return 0;
}
