/*===- test_model.h - Helpers for the hand-written test models ------*- C -*-===*
 *
 * Part of bitnet-mlir.
 *
 *===----------------------------------------------------------------------===*
 *
 * The test models stand in for what bitnet-compile emits: shared objects that
 * export `bitnet_model_info` and `bitnet_model_run` exactly as model_abi.h
 * says. In C the descriptor object cannot share its name with the typedef in
 * the same scope, so it is defined under another name and given the exported
 * symbol name with an asm label.
 *
 *===----------------------------------------------------------------------===*/

#ifndef BITNET_RT_TESTS_MODELS_TEST_MODEL_H
#define BITNET_RT_TESTS_MODELS_TEST_MODEL_H

#include "bitnet_rt/model_abi.h"

#define TEST_EXPORT __attribute__((visibility("default"), used))

/** Defines the exported descriptor. */
#define TEST_MODEL_INFO                                                        \
  TEST_EXPORT const struct bitnet_model_info test_model_info __asm__(          \
      BITNET_MODEL_INFO_SYMBOL)

/** The fields every well-formed test model's descriptor starts with: the
 * magic and ABI version this runtime expects, `model_name`, and a host
 * target. */
#define TEST_MODEL_HOST(model_name)                                            \
  .magic = BITNET_MODEL_MAGIC, .abi_version = BITNET_MODEL_ABI_VERSION,        \
  .name = (model_name), .producer = "bitnet_rt tests", .target = "host"

/** Defines the exported run function. */
#define TEST_MODEL_RUN                                                         \
  TEST_EXPORT int32_t bitnet_model_run(void *const *buffers, void *workspace,  \
                                       bitnet_exec_ctx *ctx)

int32_t bitnet_model_run(void *const *buffers, void *workspace,
                         bitnet_exec_ctx *ctx);

/** Runs fn over [0, n) through the context when it offers parallel_for. */
static inline void test_parallel_for(bitnet_exec_ctx *ctx, int64_t n,
                                     void (*fn)(void *, int64_t, int64_t),
                                     void *arg) {
  if (ctx && ctx->parallel_for)
    ctx->parallel_for(ctx->user, n, fn, arg);
  else
    fn(arg, 0, n);
}

static inline void test_kernel_begin(bitnet_exec_ctx *ctx, const char *name,
                                     int64_t bytes, int64_t flops) {
  if (ctx && ctx->kernel_begin)
    ctx->kernel_begin(ctx->user, name, bytes, flops);
}

static inline void test_kernel_end(bitnet_exec_ctx *ctx, const char *name) {
  if (ctx && ctx->kernel_end)
    ctx->kernel_end(ctx->user, name);
}

#endif /* BITNET_RT_TESTS_MODELS_TEST_MODEL_H */
