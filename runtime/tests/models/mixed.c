/*===- mixed.c - Test model with several dtypes and a scalar --------*- C -*-===*
 *
 * Part of bitnet-mlir.
 *
 *===----------------------------------------------------------------------===*
 *
 * tokens: i32[5], scale: f32 (rank 0), mask: bool[5].
 * out: f32[5] = mask ? tokens * scale : 0; total: i64 (rank 0) = sum of the
 * unmasked tokens; half: f16[2,2] = {1, -2.5, 0.5, 2}.
 *
 *===----------------------------------------------------------------------===*/

#include "test_model.h"

static const int64_t vec_shape[1] = {5};
static const int64_t half_shape[2] = {2, 2};
static const bitnet_tensor_info inputs[3] = {
    {"tokens", BITNET_DTYPE_I32, 1, vec_shape},
    {"scale", BITNET_DTYPE_F32, 0, 0},
    {"mask", BITNET_DTYPE_BOOL, 1, vec_shape}};
static const bitnet_tensor_info outputs[3] = {
    {"out", BITNET_DTYPE_F32, 1, vec_shape},
    {"total", BITNET_DTYPE_I64, 0, 0},
    {"half", BITNET_DTYPE_F16, 2, half_shape}};

TEST_MODEL_INFO = {
    TEST_MODEL_HOST("mixed"),
    .num_inputs = 3,
    .num_outputs = 3,
    .inputs = inputs,
    .outputs = outputs,
    .workspace_bytes = 0,
    .workspace_alignment = 16,
};

TEST_MODEL_RUN {
  (void)workspace;
  (void)ctx;
  const int32_t *tokens = buffers[0];
  const float *scale = buffers[1];
  const uint8_t *mask = buffers[2];
  float *out = buffers[3];
  int64_t *total = buffers[4];
  uint16_t *half = buffers[5];
  *total = 0;
  for (int i = 0; i < 5; ++i) {
    out[i] = mask[i] ? (float)tokens[i] * *scale : 0.0f;
    if (mask[i])
      *total += tokens[i];
  }
  static const uint16_t halves[4] = {0x3c00, 0xc100, 0x3800, 0x4000};
  for (int i = 0; i < 4; ++i)
    half[i] = halves[i];
  return 0;
}
