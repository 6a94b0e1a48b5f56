/*===- entries.c - Test model: a step with another entry --------------*- C -*-===*
 *
 * Part of bitnet-mlir.
 *
 * The main step takes x f32[1] and gives y = x + 1; its entry "twice" takes
 * x f32[2] and gives y = x[0] + x[1] in y f32[1], with a workspace of its
 * own. The main descriptor carries the metadata ("test.key"), the entry's
 * none. Built once per defect of the entry table, each selected by a macro:
 *   NO_TABLE (entries counted, no table), NULL_ENTRY_NAME (an entry without
 *   a name), WILD_ENTRY (an entry's descriptor outside the model),
 *   NESTED_ENTRY (an entry that lists entries of its own: it loads, and the
 *   entry is refused when opened).
 *
 *===----------------------------------------------------------------------===*/

#include <stddef.h>
#include <stdint.h>

#include "test_model.h"

static const int64_t one[1] = {1};
static const int64_t two[1] = {2};
static const bitnet_tensor_info inputs[1] = {{"x", BITNET_DTYPE_F32, 1, one}};
static const bitnet_tensor_info outputs[1] = {{"y", BITNET_DTYPE_F32, 1, one}};
static const bitnet_tensor_info twice_inputs[1] = {
    {"x", BITNET_DTYPE_F32, 1, two}};
static const char *const metadata[2] = {"test.key", "test value"};

static int32_t run_twice(void *const *buffers, void *workspace,
                         bitnet_exec_ctx *ctx) {
  (void)ctx;
  if (workspace == NULL)
    return 7; /* its own workspace, not the main step's */
  const float *x = buffers[0];
  ((float *)buffers[1])[0] = x[0] + x[1];
  return 0;
}

static const struct bitnet_model_entry entries[1];

static const bitnet_model_info twice_info = {
    TEST_MODEL_HOST("twice"),
    .num_inputs = 1,
    .num_outputs = 1,
    .inputs = twice_inputs,
    .outputs = outputs,
    .workspace_bytes = 256,
    .workspace_alignment = 64,
    .cpu_features = "",
#ifdef NESTED_ENTRY
    .num_entries = 1,
    .entries = entries,
#endif
};

static const struct bitnet_model_entry entries[1] = {{
#ifdef NULL_ENTRY_NAME
    NULL,
#else
    "twice",
#endif
#ifdef WILD_ENTRY
    (const bitnet_model_info *)(uintptr_t)4096,
#else
    &twice_info,
#endif
    run_twice}};

TEST_MODEL_INFO = {
    TEST_MODEL_HOST("entries"),
    .num_inputs = 1,
    .num_outputs = 1,
    .inputs = inputs,
    .outputs = outputs,
    .workspace_bytes = 0,
    .workspace_alignment = 1,
    .cpu_features = "",
    .num_metadata = 1,
    .metadata = metadata,
    .num_entries = 1,
#ifndef NO_TABLE
    .entries = entries,
#endif
};

TEST_MODEL_RUN {
  (void)workspace;
  (void)ctx;
  ((float *)buffers[1])[0] = ((const float *)buffers[0])[0] + 1.0f;
  return 0;
}
