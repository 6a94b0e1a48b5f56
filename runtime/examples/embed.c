/*===- embed.c - Running a compiled model from a C program ----------*- C -*-===*
 *
 * Part of bitnet-mlir.
 *
 *===----------------------------------------------------------------------===*
 *
 * usage: embed MODEL.so
 * Loads the model, fills every input with 0, 1, 2, ... (as the input's
 * dtype), runs it on all cores and prints the first values of each output.
 * Float inputs and outputs are assumed to be f32 here; see bitnet-run for
 * every dtype.
 *
 *===----------------------------------------------------------------------===*/

#include <stdio.h>
#include <stdlib.h>

#include "bitnet_rt/bitnet_rt.h"

static int fail(bitnet_status status) {
  fprintf(stderr, "embed: %s\n", bitnet_status_message(status));
  bitnet_status_free(status);
  return 1;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: embed MODEL.so\n");
    return 2;
  }
  bitnet_model *model;
  bitnet_thread_pool *threads;
  bitnet_context *ctx;
  bitnet_status st = bitnet_model_load(argv[1], &model);
  if (st) return fail(st);
  st = bitnet_thread_pool_create(bitnet_default_num_threads(), &threads);
  if (st) return fail(st);
  bitnet_context_options options = {.thread_pool = threads};
  st = bitnet_context_create(model, &options, &ctx);
  if (st) return fail(st);

  int32_t ni = bitnet_model_num_inputs(model), no = bitnet_model_num_outputs(model);
  void **bufs = calloc((size_t)(ni + no) + 1, sizeof(void *));
  bitnet_tensor_desc d;
  for (int32_t i = 0; i < ni + no; ++i) {
    if ((st = i < ni ? bitnet_model_input(model, i, &d)
                     : bitnet_model_output(model, i - ni, &d)))
      return fail(st);
    bufs[i] = calloc((size_t)d.byte_size + 1, 1);
    for (int64_t k = 0; i < ni && d.dtype == BITNET_DTYPE_F32 && k < d.num_elements; ++k)
      ((float *)bufs[i])[k] = (float)k;
  }
  if ((st = bitnet_context_run(ctx, (const void *const *)bufs, ni, bufs + ni, no)))
    return fail(st);

  for (int32_t o = 0; o < no; ++o) {
    bitnet_model_output(model, o, &d);
    printf("%s (%s, %lld elements):", d.name, bitnet_dtype_name(d.dtype),
           (long long)d.num_elements);
    for (int64_t k = 0; d.dtype == BITNET_DTYPE_F32 && k < d.num_elements && k < 8; ++k)
      printf(" %g", ((float *)bufs[ni + o])[k]);
    printf("\n");
  }
  for (int32_t i = 0; i < ni + no; ++i)
    free(bufs[i]);
  free(bufs);
  bitnet_context_free(ctx);
  bitnet_thread_pool_release(threads);
  bitnet_model_release(model);
  return 0;
}
