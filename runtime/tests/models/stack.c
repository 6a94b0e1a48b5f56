/*===- stack.c - Test model: a kernel with 1 MiB of buffers on its stack ---===*
 *
 * Part of bitnet-mlir.
 *
 *===----------------------------------------------------------------------===*
 *
 * y = x + 1 on f32[4], through a 1 MiB (HUGE: 16 MiB) stack buffer that the run fills from
 * end to end, as compiled kernels keep their buffers (bitnet_model_info.
 * stack_bytes says how much). On a thread with less stack it would crash;
 * the runtime refuses to run it there instead.
 *
 *===----------------------------------------------------------------------===*/

#include "test_model.h"

#ifdef HUGE
#define BUFFER_BYTES (16 << 20) /* more than the thread pool's workers get */
#else
#define BUFFER_BYTES (1 << 20)
#endif

static const int64_t shape[1] = {4};
static const bitnet_tensor_info inputs[1] = {{"x", BITNET_DTYPE_F32, 1, shape}};
static const bitnet_tensor_info outputs[1] = {{"y", BITNET_DTYPE_F32, 1, shape}};

TEST_MODEL_INFO = {
    TEST_MODEL_HOST("stack"),
    .num_inputs = 1,
    .num_outputs = 1,
    .inputs = inputs,
    .outputs = outputs,
    .workspace_bytes = 0,
    .workspace_alignment = 1,
    .stack_bytes = BUFFER_BYTES,
};

TEST_MODEL_RUN {
  (void)workspace;
  (void)ctx;
  volatile float buffer[BUFFER_BYTES / sizeof(float)];
  const float *x = buffers[0];
  float *y = buffers[1];
  for (int i = BUFFER_BYTES / (int)sizeof(float) - 1; i >= 0; --i)
    buffer[i] = x[i % 4] + 1.0f;
  for (int i = 0; i < 4; ++i)
    y[i] = buffer[i];
  return 0;
}
