/* run_model MODEL.so: loads a compiled model with libbitnet_rt, fills each
 * f32 input with 0, 1, 2, ..., runs it and prints the runtime's version and
 * every f32 output value. */

#include <stdio.h>
#include <stdlib.h>

#include <bitnet_rt/bitnet_rt.h>

static int fail(bitnet_status status) {
  fprintf(stderr, "run_model: %s\n", bitnet_status_message(status));
  bitnet_status_free(status);
  return 1;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: run_model MODEL.so\n");
    return 2;
  }
  printf("runtime %s\n", bitnet_rt_version());
  bitnet_model *model;
  bitnet_context *ctx;
  bitnet_status st = bitnet_model_load(argv[1], &model);
  if (st)
    return fail(st);
  bitnet_context_options options = {0};
  if ((st = bitnet_context_create(model, &options, &ctx)))
    return fail(st);

  int32_t ni = bitnet_model_num_inputs(model);
  int32_t no = bitnet_model_num_outputs(model);
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
    printf("%s:", d.name);
    for (int64_t k = 0; d.dtype == BITNET_DTYPE_F32 && k < d.num_elements; ++k)
      printf(" %.6g", ((float *)bufs[ni + o])[k]);
    printf("\n");
  }
  for (int32_t i = 0; i < ni + no; ++i)
    free(bufs[i]);
  free(bufs);
  bitnet_context_free(ctx);
  bitnet_model_release(model);
  return 0;
}
