/*===- affine.c - Test model: y = 2 * x + 1 on f32[4,3] -------------*- C -*-===*
 *
 * Part of bitnet-mlir.
 *
 *===----------------------------------------------------------------------===*/

#include "test_model.h"

static const int64_t shape[2] = {4, 3};
static const bitnet_tensor_info inputs[1] = {{"x", BITNET_DTYPE_F32, 2, shape}};
static const bitnet_tensor_info outputs[1] = {{"y", BITNET_DTYPE_F32, 2, shape}};

TEST_MODEL_INFO = {
    TEST_MODEL_HOST("affine"),
    .num_inputs = 1,
    .num_outputs = 1,
    .inputs = inputs,
    .outputs = outputs,
    .workspace_bytes = 0,
    .workspace_alignment = 1,
};

TEST_MODEL_RUN {
  (void)workspace;
  const float *x = buffers[0];
  float *y = buffers[1];
  test_kernel_begin(ctx, "affine", 2 * 12 * sizeof(float), 2 * 12);
  for (int i = 0; i < 12; ++i)
    y[i] = 2.0f * x[i] + 1.0f;
  test_kernel_end(ctx, "affine");
  return 0;
}
