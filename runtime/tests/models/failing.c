/*===- failing.c - Test model whose run always fails ----------------*- C -*-===*
 *
 * Part of bitnet-mlir.
 *
 *===----------------------------------------------------------------------===*/

#include "test_model.h"

static const int64_t shape[1] = {1};
static const bitnet_tensor_info inputs[1] = {{"x", BITNET_DTYPE_F32, 1, shape}};
static const bitnet_tensor_info outputs[1] = {{"y", BITNET_DTYPE_F32, 1, shape}};

TEST_MODEL_INFO = {
    TEST_MODEL_HOST("failing"),
    .num_inputs = 1,
    .num_outputs = 1,
    .inputs = inputs,
    .outputs = outputs,
    .workspace_bytes = 0,
    .workspace_alignment = 1,
};

TEST_MODEL_RUN {
  (void)buffers;
  (void)workspace;
  (void)ctx;
  return 7;
}
