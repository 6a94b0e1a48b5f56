/*===- variants.c - Test model: builds for several CPUs ---------------*- C -*-===*
 *
 * Part of bitnet-mlir.
 *
 * y[0] tells which build ran: 1 for the variant no machine runs, 2 for the
 * variant any machine runs, 0 for the baseline. The runnable variant also
 * needs a larger workspace than the baseline, which the context must give it.
 *
 *===----------------------------------------------------------------------===*/

#include <string.h>

#include "test_model.h"

static const int64_t shape[1] = {1};
static const bitnet_tensor_info inputs[1] = {{"x", BITNET_DTYPE_F32, 1, shape}};
static const bitnet_tensor_info outputs[1] = {{"y", BITNET_DTYPE_F32, 1, shape}};

static int32_t run_foreign(void *const *buffers, void *workspace,
                           bitnet_exec_ctx *ctx) {
  (void)workspace;
  (void)ctx;
  ((float *)buffers[1])[0] = 1.0f;
  return 0;
}

static int32_t run_plain(void *const *buffers, void *workspace,
                         bitnet_exec_ctx *ctx) {
  (void)ctx;
  if (workspace == NULL)
    return 7;
  memset(workspace, 0xab, 4096); /* all of the variant's workspace */
  ((float *)buffers[1])[0] = 2.0f;
  return 0;
}

static const bitnet_model_variant variants[2] = {
    /* Best first: AMX without AVX-512 FP16 or the other way round, so no x86
     * machine has all of these. */
    {"foreign", "amx-int8,avx512fp16,avxvnni,avx512vbmi2,amx-bf16", run_foreign,
     64, 64},
    {"plain", "", run_plain, 4096, 64},
};

TEST_MODEL_INFO = {
    TEST_MODEL_HOST("variants"),
    .num_inputs = 1,
    .num_outputs = 1,
    .inputs = inputs,
    .outputs = outputs,
    .workspace_bytes = 0,
    .workspace_alignment = 1,
    .cpu_features = "",
    .num_variants = 2,
    .variants = variants,
};

TEST_MODEL_RUN {
  (void)workspace;
  (void)ctx;
  ((float *)buffers[1])[0] = 0.0f;
  return 0;
}
