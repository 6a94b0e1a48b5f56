/*===- broken.c - Test models with one defect each ------------------*- C -*-===*
 *
 * Part of bitnet-mlir.
 *
 *===----------------------------------------------------------------------===*
 *
 * Built once per defect, each selected by a macro:
 *   BAD_MAGIC, BAD_VERSION, NO_RUN, NO_INFO, NEG_COUNT, BIG_RANK, NEG_DIM,
 *   UNKNOWN_FEATURE, FOREIGN_CPU,
 *   BAD_DTYPE, BAD_ALIGN, NULL_NAME, NEG_WORKSPACE, NEG_STACK,
 *   NO_OUTPUTS, WILD_NAME, WILD_SHAPE, FLOAT_RANGE, OUTPUT_STATE,
 *   EMPTY_STATE (the last six: what damage to a descriptor looks like).
 * Without a macro it is a valid model with y = x on f32[2].
 *
 *===----------------------------------------------------------------------===*/

#include "test_model.h"

#ifdef BIG_RANK
static const int64_t shape[9] = {1, 1, 1, 1, 1, 1, 1, 1, 2};
#define RANK 9
#elif defined(NEG_DIM)
static const int64_t shape[1] = {-2};
#define RANK 1
#elif defined(EMPTY_STATE)
/* A state (a KV cache) of no rows. */
static const int64_t shape[1] = {0};
#define RANK 1
#else
static const int64_t shape[1] = {2};
#define RANK 1
#endif

#ifdef NULL_NAME
#define INPUT_NAME 0
#elif defined(WILD_NAME)
/* An address no object is loaded at. */
#define INPUT_NAME ((const char *)(uintptr_t)64)
#else
#define INPUT_NAME "x"
#endif

#ifdef BAD_DTYPE
#define INPUT_DTYPE 42
#else
#define INPUT_DTYPE BITNET_DTYPE_F32
#endif

#ifdef WILD_SHAPE
#define INPUT_SHAPE ((const int64_t *)(uintptr_t)4096)
#else
#define INPUT_SHAPE shape
#endif

#ifdef FLOAT_RANGE
#define INPUT_FLAGS BITNET_TENSOR_RANGE
#elif defined(EMPTY_STATE)
#define INPUT_FLAGS BITNET_TENSOR_STATE
#else
#define INPUT_FLAGS 0
#endif

#ifdef OUTPUT_STATE
#define OUTPUT_FLAGS BITNET_TENSOR_STATE
#else
#define OUTPUT_FLAGS 0
#endif

static const bitnet_tensor_info inputs[1] = {
    {INPUT_NAME, INPUT_DTYPE, RANK, INPUT_SHAPE, INPUT_FLAGS, 0, 1}};
static const bitnet_tensor_info outputs[1] = {
    {"y", BITNET_DTYPE_F32, RANK, shape, OUTPUT_FLAGS, 0, 0}};

#ifndef NO_INFO
TEST_MODEL_INFO = {
#ifdef BAD_MAGIC
    .magic = 0x464c457fu, /* "\x7f" "ELF" */
#else
    .magic = BITNET_MODEL_MAGIC,
#endif
#ifdef BAD_VERSION
    .abi_version = BITNET_MODEL_ABI_VERSION + 1,
#else
    .abi_version = BITNET_MODEL_ABI_VERSION,
#endif
    .name = "broken",
    .producer = "bitnet_rt tests",
    .target = "host",
#ifdef NEG_COUNT
    .num_inputs = -1,
#else
    .num_inputs = 1,
#endif
#ifdef NO_OUTPUTS
    .num_outputs = 0,
#else
    .num_outputs = 1,
#endif
    .inputs = inputs,
    .outputs = outputs,
#ifdef NEG_WORKSPACE
    .workspace_bytes = -64,
#else
    .workspace_bytes = 64,
#endif
#ifdef BAD_ALIGN
    .workspace_alignment = 48,
#else
    .workspace_alignment = 16,
#endif
#ifdef NEG_STACK
    .stack_bytes = -4096,
#endif
#if defined(UNKNOWN_FEATURE)
    .cpu_features = "avx2,frobnicate",
#elif defined(FOREIGN_CPU)
    /* What no x86 machine has all of: AMX and no AVX-512 at once is
     * impossible, so at least one is missing wherever the test runs. */
    .cpu_features = "sse4.2,amx-int8,avx512fp16,avxvnni,avx512vbmi2,amx-bf16",
#else
    .cpu_features = "",
#endif
};
#else
/* Something exported, so that the object is otherwise ordinary. */
TEST_EXPORT const struct bitnet_tensor_info *broken_inputs = inputs;
#endif

#ifndef NO_RUN
TEST_MODEL_RUN {
  (void)workspace;
  (void)ctx;
  const float *x = buffers[0];
  float *y = buffers[1];
  y[0] = x[0];
  y[1] = x[1];
  return 0;
}
#else
TEST_EXPORT int32_t bitnet_model_walk(void) { return (int32_t)outputs[0].rank; }
#endif
