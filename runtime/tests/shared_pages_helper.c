/*===- shared_pages_helper.c - Holds a model loaded for a test ------*- C -*-===*
 *
 * Part of bitnet-mlir.
 *
 *===----------------------------------------------------------------------===*
 *
 * usage: shared_pages_helper MODEL.so
 * Loads the model, runs it once with zero inputs (touching its weights),
 * prints "ready" and waits until its standard input is closed, so that a
 * test can look at its mappings meanwhile.
 *
 *===----------------------------------------------------------------------===*/

#include <stdio.h>
#include <stdlib.h>

#include "bitnet_rt/bitnet_rt.h"

static int fail(bitnet_status status) {
  fprintf(stderr, "shared_pages_helper: %s\n", bitnet_status_message(status));
  bitnet_status_free(status);
  return 1;
}

int main(int argc, char **argv) {
  if (argc != 2)
    return 2;
  bitnet_model *model = NULL;
  bitnet_context *ctx = NULL;
  bitnet_status st = bitnet_model_load(argv[1], &model);
  if (st == BITNET_OK)
    st = bitnet_context_create(model, NULL, &ctx);
  if (st != BITNET_OK)
    return fail(st);
  int32_t ni = bitnet_model_num_inputs(model);
  int32_t no = bitnet_model_num_outputs(model);
  void **buffers = calloc((size_t)(ni + no) + 1, sizeof(void *));
  for (int32_t i = 0; i < ni + no; ++i) {
    bitnet_tensor_desc d;
    st = i < ni ? bitnet_model_input(model, i, &d)
                : bitnet_model_output(model, i - ni, &d);
    if (st != BITNET_OK)
      return fail(st);
    buffers[i] = calloc((size_t)d.byte_size + 1, 1);
  }
  st = bitnet_context_run(ctx, (const void *const *)buffers, ni, buffers + ni, no);
  if (st != BITNET_OK)
    return fail(st);
  printf("ready\n");
  fflush(stdout);
  while (getchar() != EOF) {
  }
  for (int32_t i = 0; i < ni + no; ++i)
    free(buffers[i]);
  free(buffers);
  bitnet_context_free(ctx);
  bitnet_model_release(model);
  return 0;
}
