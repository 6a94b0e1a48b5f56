/*===- tool_step.h - A compiled decoder step, as the tools run it --*- C -*-===*
 *
 * Part of bitnet-mlir.
 *
 *===----------------------------------------------------------------------===*
 *
 * What bitnet-generate and bitnet-perplexity share of a decoder compiled by
 * bitnet-compile (one step of the model: inputs `tokens` [S] int32,
 * `position` int32 and KV caches flagged BITNET_TENSOR_STATE; output
 * `logits` [S, V], or [1, V] for a --last-token-logits build): loading it
 * with its buffers, the caches held here between runs, and emptying them.
 * Errors end the program with a message (tool_check, tool_fail). The casts
 * let bitnet-serve, in C++, include it too.
 *
 *===----------------------------------------------------------------------===*/

#ifndef BITNET_RT_TOOLS_TOOL_STEP_H
#define BITNET_RT_TOOLS_TOOL_STEP_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitnet_rt/bitnet_rt.h"

#include "tool_text.h"

/* Ends the program with the message of an error status. */
static inline void tool_check(bitnet_status status) {
  if (status != BITNET_OK) {
    fprintf(stderr, "%s: %s\n", program_invocation_short_name,
            bitnet_status_message(status));
    bitnet_status_free(status);
    exit(1);
  }
}

typedef struct step_model {
  bitnet_model *model;
  bitnet_context *context;
  int32_t num_inputs, num_outputs;
  void **inputs, **outputs;
  int32_t tokens_index, position_index, logits_index;
  int64_t S, V, capacity;
  int last_only; /* logits [1, V]: the step's last token only */
  int32_t *tokens;
  int32_t *position;
  float *logits;
} step_model;

static inline int32_t step_find(bitnet_model *m, const char *name, int input) {
  int32_t index = -1;
  tool_check(input ? bitnet_model_find_input(m, name, &index)
                   : bitnet_model_find_output(m, name, &index));
  return index;
}

/* Loads a decoder step; its state inputs share `shared`'s buffers when given
 * (the same caches for the prompt and the decode builds). */
static inline void load_step(step_model *s, const char *path,
                             bitnet_thread_pool *tp, const step_model *shared) {
  memset(s, 0, sizeof(*s));
  tool_check(bitnet_model_load(path, &s->model));
  bitnet_context_options options = {NULL, tp, NULL};
  tool_check(bitnet_context_create(s->model, &options, &s->context));
  s->num_inputs = bitnet_model_num_inputs(s->model);
  s->num_outputs = bitnet_model_num_outputs(s->model);
  s->inputs = (void **)tool_xmalloc(sizeof(void *) * (size_t)s->num_inputs);
  s->outputs = (void **)tool_xmalloc(sizeof(void *) * (size_t)s->num_outputs);
  s->tokens_index = step_find(s->model, "tokens", 1);
  s->position_index = step_find(s->model, "position", 1);
  s->logits_index = step_find(s->model, "logits", 0);
  bitnet_tensor_desc d;
  tool_check(bitnet_model_input(s->model, s->tokens_index, &d));
  if (d.dtype != BITNET_DTYPE_I32 || d.rank != 1)
    tool_fail("%s: input 'tokens' must be int32 [S]", path);
  s->S = d.shape[0];
  tool_check(bitnet_model_input(s->model, s->position_index, &d));
  if (d.dtype != BITNET_DTYPE_I32 || d.num_elements != 1)
    tool_fail("%s: input 'position' must be an int32 scalar", path);
  tool_check(bitnet_model_output(s->model, s->logits_index, &d));
  if (d.dtype != BITNET_DTYPE_F32 || d.rank != 2 ||
      (d.shape[0] != s->S && d.shape[0] != 1))
    tool_fail("%s: output 'logits' must be float32 [S, V] (or [1, V], the last "
              "token's)",
              path);
  s->last_only = d.shape[0] == 1 && s->S > 1;
  s->V = d.shape[1];
  s->capacity = -1;
  for (int32_t i = 0; i < s->num_inputs; ++i) {
    tool_check(bitnet_model_input(s->model, i, &d));
    if (i == s->tokens_index || i == s->position_index)
      continue;
    if (!(d.flags & BITNET_TENSOR_STATE))
      tool_fail("%s: an input other than tokens and position is not a KV cache "
                "(state) input; this model is not a decoder step",
                path);
    if (d.rank < 1)
      tool_fail("%s: a KV cache input has rank 0", path);
    if (s->capacity < 0 || d.shape[0] < s->capacity)
      s->capacity = d.shape[0];
    if (shared) {
      int32_t j = -1;
      tool_check(bitnet_model_find_input(shared->model, d.name, &j));
      bitnet_tensor_desc e;
      tool_check(bitnet_model_input(shared->model, j, &e));
      if (e.byte_size != d.byte_size || e.rank != d.rank)
        tool_fail("--prefill: cache '%s' differs between the two models",
                  d.name);
      s->inputs[i] = shared->inputs[j];
    } else {
      s->inputs[i] = aligned_alloc(64, ((size_t)d.byte_size + 63) / 64 * 64);
      if (s->inputs[i] == NULL)
        tool_fail("out of memory (%s)", "KV cache");
      memset(s->inputs[i], 0, (size_t)d.byte_size);
    }
  }
  if (s->capacity < s->S)
    tool_fail("%s: the KV cache holds fewer tokens than one step", path);
  s->tokens = (int32_t *)tool_xmalloc(sizeof(int32_t) * (size_t)s->S);
  s->position = (int32_t *)tool_xmalloc(sizeof(int32_t));
  s->inputs[s->tokens_index] = s->tokens;
  s->inputs[s->position_index] = s->position;
  for (int32_t o = 0; o < s->num_outputs; ++o) {
    tool_check(bitnet_model_output(s->model, o, &d));
    s->outputs[o] = tool_xmalloc((size_t)d.byte_size);
  }
  s->logits = (float *)s->outputs[s->logits_index];
}

/* Frees what load_step made; the caches only when they are not `shared`'s. */
static inline void free_step(step_model *s, const step_model *shared) {
  for (int32_t i = 0; i < s->num_inputs; ++i)
    if (i != s->tokens_index && i != s->position_index && !shared)
      free(s->inputs[i]);
  for (int32_t o = 0; o < s->num_outputs; ++o)
    free(s->outputs[o]);
  free(s->tokens);
  free(s->position);
  free(s->inputs);
  free(s->outputs);
  bitnet_context_free(s->context);
  bitnet_model_release(s->model);
}

static inline int64_t kv_bytes(const step_model *s) {
  int64_t total = 0;
  bitnet_tensor_desc d;
  for (int32_t i = 0; i < s->num_inputs; ++i) {
    tool_check(bitnet_model_input(s->model, i, &d));
    if (d.flags & BITNET_TENSOR_STATE)
      total += d.byte_size;
  }
  return total;
}

/* Empties the KV caches (shared with another build, when they are). */
static inline void reset_caches(step_model *s) {
  bitnet_tensor_desc d;
  for (int32_t i = 0; i < s->num_inputs; ++i) {
    tool_check(bitnet_model_input(s->model, i, &d));
    if (d.flags & BITNET_TENSOR_STATE)
      memset(s->inputs[i], 0, (size_t)d.byte_size);
  }
}

#endif /* BITNET_RT_TOOLS_TOOL_STEP_H */
