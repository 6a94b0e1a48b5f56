/*===- workspace.c - Test model: a run that needs scratch memory ----*- C -*-===*
 *
 * Part of bitnet-mlir.
 *
 *===----------------------------------------------------------------------===*
 *
 * x: i32[16]. y = running sums of x, computed through the workspace (64 KiB,
 * aligned to 4096), which is filled completely so that a short workspace
 * shows up under AddressSanitizer. `ok` is 1 when the workspace is non-NULL
 * and aligned.
 *
 *===----------------------------------------------------------------------===*/

#include <stdint.h>
#include <string.h>

#include "test_model.h"

#define WORKSPACE_BYTES 65536
#define WORKSPACE_ALIGNMENT 4096

static const int64_t vec_shape[1] = {16};
static const int64_t ok_shape[1] = {1};
static const bitnet_tensor_info inputs[1] = {
    {"x", BITNET_DTYPE_I32, 1, vec_shape}};
static const bitnet_tensor_info outputs[2] = {
    {"y", BITNET_DTYPE_I32, 1, vec_shape},
    {"ok", BITNET_DTYPE_I32, 1, ok_shape}};

TEST_MODEL_INFO = {
    TEST_MODEL_HOST("workspace"),
    .num_inputs = 1,
    .num_outputs = 2,
    .inputs = inputs,
    .outputs = outputs,
    .workspace_bytes = WORKSPACE_BYTES,
    .workspace_alignment = WORKSPACE_ALIGNMENT,
};

TEST_MODEL_RUN {
  (void)ctx;
  const int32_t *x = buffers[0];
  int32_t *y = buffers[1], *ok = buffers[2];
  ok[0] = workspace != NULL &&
          ((uintptr_t)workspace & (WORKSPACE_ALIGNMENT - 1)) == 0;
  if (!ok[0])
    return 3;
  memset(workspace, 0x5a, WORKSPACE_BYTES);
  int32_t *acc = (int32_t *)((char *)workspace + WORKSPACE_BYTES) - 16;
  int32_t sum = 0;
  for (int i = 0; i < 16; ++i)
    acc[i] = sum += x[i];
  memcpy(y, acc, 16 * sizeof(int32_t));
  return 0;
}
