/*===- weights.c - Test model with 8 MiB of read-only weights -------*- C -*-===*
 *
 * Part of bitnet-mlir.
 *
 *===----------------------------------------------------------------------===*
 *
 * Stands in for a model whose weights live in the shared object's read-only
 * data. The 8 MiB of ones are emitted by the assembler (no huge initialiser in
 * the source). A run reads one byte of every 4 KiB page, so that every page
 * is mapped: y = x + number of pages.
 *
 *===----------------------------------------------------------------------===*/

#include "test_model.h"

#define WEIGHT_BYTES (8 * 1024 * 1024)
#define PAGE 4096

__asm__(".section .rodata.bitnet_test_weights,\"a\",@progbits\n"
        ".balign 4096\n"
        ".globl bitnet_test_weights\n"
        ".hidden bitnet_test_weights\n"
        ".type bitnet_test_weights, @object\n"
        ".size bitnet_test_weights, 8388608\n"
        "bitnet_test_weights:\n"
        ".fill 8388608, 1, 1\n"
        ".previous\n");
extern const unsigned char bitnet_test_weights[WEIGHT_BYTES]
    __attribute__((visibility("hidden")));

static const int64_t shape[1] = {1};
static const bitnet_tensor_info inputs[1] = {{"x", BITNET_DTYPE_F32, 1, shape}};
static const bitnet_tensor_info outputs[1] = {{"y", BITNET_DTYPE_F32, 1, shape}};

TEST_MODEL_INFO = {
    TEST_MODEL_HOST("weights"),
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
  test_kernel_begin(ctx, "touch_weights", WEIGHT_BYTES / PAGE, 0);
  int64_t sum = 0;
  for (int64_t i = 0; i < WEIGHT_BYTES; i += PAGE)
    sum += bitnet_test_weights[i];
  test_kernel_end(ctx, "touch_weights");
  y[0] = x[0] + (float)sum;
  return 0;
}
