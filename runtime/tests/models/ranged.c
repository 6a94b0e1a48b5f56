/*===- ranged.c - A test model whose integer inputs have ranges -----*- C -*-===*
 *
 * Part of bitnet-mlir.
 *
 *===----------------------------------------------------------------------===*
 *
 * y[i] = ids[i] + position, with ids (i32 [3]) declared to hold [-4, 3], as
 * the token ids of a 4-row table, and position (i64, a scalar) [0, 7], as
 * the position of a cache of 8 rows.
 *
 *===----------------------------------------------------------------------===*/

#include "test_model.h"

static const int64_t shape[1] = {3};

static const bitnet_tensor_info inputs[2] = {
    {"ids", BITNET_DTYPE_I32, 1, shape, BITNET_TENSOR_RANGE, -4, 3},
    {"position", BITNET_DTYPE_I64, 0, 0, BITNET_TENSOR_RANGE, 0, 7}};
static const bitnet_tensor_info outputs[1] = {
    {"y", BITNET_DTYPE_I64, 1, shape, 0, 0, 0}};

TEST_MODEL_INFO = {
    TEST_MODEL_HOST("ranged"),
    .num_inputs = 2,
    .num_outputs = 1,
    .inputs = inputs,
    .outputs = outputs,
};

TEST_MODEL_RUN {
  (void)workspace;
  (void)ctx;
  const int32_t *ids = buffers[0];
  const int64_t *position = buffers[1];
  int64_t *y = buffers[2];
  for (int i = 0; i < 3; ++i)
    y[i] = ids[i] + *position;
  return 0;
}
