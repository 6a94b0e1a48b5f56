/*===- tool_step.h - A compiled decoder step, as the tools run it --*- C -*-===*
 *
 * Part of bitnet-mlir.
 *
 *===----------------------------------------------------------------------===*
 *
 * What bitnet-generate, bitnet-perplexity and bitnet-serve share of a
 * decoder compiled by bitnet-compile, one step of the model, in either of
 * its two builds:
 *
 * - classic: inputs `tokens` [S] int32, `position` int32 and KV caches
 *   flagged BITNET_TENSOR_STATE; output `logits` [S, V], or [1, V] for a
 *   --last-token-logits build. One sequence; the step's tokens sit at
 *   position, position + 1, ...
 * - batched (bitnet-compile --max-sequences=B): inputs `tokens`,
 *   `positions` and `slots`, each int32 [T], and KV caches [B, C, ...]
 *   flagged BITNET_TENSOR_STATE; output `logits` [T, V]. Token t belongs to
 *   sequence slot slots[t] at position positions[t]; a slot outside
 *   [0, B) is padding, which writes nothing.
 *
 * Here: loading a step with its buffers, the caches held between runs,
 * emptying them, and filling the inputs for one sequence (step_fill_one).
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
  /* position_index: classic; positions_index, slots_index: batched; the
   * others -1. */
  int32_t tokens_index, position_index, positions_index, slots_index,
      logits_index;
  /* S: tokens a step (T of a batched build); capacity: positions a
   * sequence's KV cache holds (C); slots: sequences the caches hold (B; 1
   * for a classic build). */
  int64_t S, V, capacity, slots;
  /* KV cache rows a run of one token writes from its position: S for a
   * classic build (its padding is written too), 1 for a batched one. A
   * sequence of p tokens can take one more while p + run_rows <=
   * capacity. */
  int64_t run_rows;
  int batched;   /* inputs positions and slots, not position */
  int last_only; /* logits [1, V]: the step's last token only */
  int32_t *tokens;
  int32_t *position;  /* classic: a scalar */
  int32_t *positions; /* batched: [S] */
  int32_t *slot_ids;  /* batched: [S] */
  float *logits;
} step_model;

static inline int32_t step_find(bitnet_model *m, const char *name, int input) {
  int32_t index = -1;
  tool_check(input ? bitnet_model_find_input(m, name, &index)
                   : bitnet_model_find_output(m, name, &index));
  return index;
}

/* The index of input `name`, or -1 when the model has none. */
static inline int32_t step_find_optional(bitnet_model *m, const char *name) {
  int32_t index = -1;
  bitnet_status status = bitnet_model_find_input(m, name, &index);
  if (status != BITNET_OK) {
    bitnet_status_free(status);
    return -1;
  }
  return index;
}

/* Whether input `i` is one of the step's int32 [S] or scalar inputs, not a
 * cache. */
static inline int step_is_control(const step_model *s, int32_t i) {
  return i == s->tokens_index || i == s->position_index ||
         i == s->positions_index || i == s->slots_index;
}

/* Checks that input `index` is int32 [S]. */
static inline void step_check_vector(const step_model *s, int32_t index,
                                     const char *path) {
  bitnet_tensor_desc d;
  tool_check(bitnet_model_input(s->model, index, &d));
  if (d.dtype != BITNET_DTYPE_I32 || d.rank != 1 || d.shape[0] != s->S)
    tool_fail("%s: inputs 'positions' and 'slots' of a batched build must "
              "be int32 [T], as 'tokens'",
              path);
}

/* Sets up a decoder step on `model` (its reference is the step's now);
 * its state inputs share `shared`'s buffers when given (the same caches for
 * the prompt and the decode steps). `path` names it in messages. */
static inline void open_step(step_model *s, bitnet_model *model,
                             const char *path, bitnet_thread_pool *tp,
                             const step_model *shared) {
  memset(s, 0, sizeof(*s));
  s->model = model;
  bitnet_context_options options = {NULL, tp, NULL};
  tool_check(bitnet_context_create(s->model, &options, &s->context));
  s->num_inputs = bitnet_model_num_inputs(s->model);
  s->num_outputs = bitnet_model_num_outputs(s->model);
  s->inputs = (void **)tool_xmalloc(sizeof(void *) * (size_t)s->num_inputs);
  s->outputs = (void **)tool_xmalloc(sizeof(void *) * (size_t)s->num_outputs);
  s->tokens_index = step_find(s->model, "tokens", 1);
  s->slots_index = step_find_optional(s->model, "slots");
  s->batched = s->slots_index >= 0;
  s->position_index = s->positions_index = -1;
  if (s->batched)
    s->positions_index = step_find(s->model, "positions", 1);
  else
    s->position_index = step_find(s->model, "position", 1);
  s->logits_index = step_find(s->model, "logits", 0);
  bitnet_tensor_desc d;
  tool_check(bitnet_model_input(s->model, s->tokens_index, &d));
  if (d.dtype != BITNET_DTYPE_I32 || d.rank != 1)
    tool_fail("%s: input 'tokens' must be int32 [S]", path);
  s->S = d.shape[0];
  if (s->batched) {
    step_check_vector(s, s->positions_index, path);
    step_check_vector(s, s->slots_index, path);
    if (shared && !shared->batched)
      tool_fail("%s: a batched build (input 'slots') cannot share caches "
                "with a one-sequence build",
                path);
  } else {
    tool_check(bitnet_model_input(s->model, s->position_index, &d));
    if (d.dtype != BITNET_DTYPE_I32 || d.num_elements != 1)
      tool_fail("%s: input 'position' must be an int32 scalar", path);
  }
  tool_check(bitnet_model_output(s->model, s->logits_index, &d));
  if (d.dtype != BITNET_DTYPE_F32 || d.rank != 2 ||
      (d.shape[0] != s->S && (d.shape[0] != 1 || s->batched)))
    tool_fail(s->batched ? "%s: output 'logits' of a batched build must be "
                           "float32 [T, V]"
                         : "%s: output 'logits' must be float32 [S, V] (or "
                           "[1, V], the last token's)",
              path);
  s->last_only = d.shape[0] == 1 && s->S > 1;
  s->V = d.shape[1];
  s->capacity = -1;
  s->slots = -1;
  for (int32_t i = 0; i < s->num_inputs; ++i) {
    tool_check(bitnet_model_input(s->model, i, &d));
    if (step_is_control(s, i))
      continue;
    if (!(d.flags & BITNET_TENSOR_STATE))
      tool_fail(s->batched
                    ? "%s: an input other than tokens, positions and slots "
                      "is not a KV cache (state) input; this model is not a "
                      "decoder step"
                    : "%s: an input other than tokens and position is not a "
                      "KV cache (state) input; this model is not a decoder "
                      "step",
                path);
    if (s->batched) {
      /* [B, C, Hkv, D]: the same B for every cache. */
      if (d.rank < 2)
        tool_fail("%s: a KV cache input of a batched build has rank < 2",
                  path);
      if (s->slots >= 0 && d.shape[0] != s->slots)
        tool_fail("%s: the KV cache inputs differ in their sequences (dim 0)",
                  path);
      s->slots = d.shape[0];
      if (s->capacity < 0 || d.shape[1] < s->capacity)
        s->capacity = d.shape[1];
    } else {
      if (d.rank < 1)
        tool_fail("%s: a KV cache input has rank 0", path);
      if (s->capacity < 0 || d.shape[0] < s->capacity)
        s->capacity = d.shape[0];
    }
    if (shared) {
      int32_t j = -1;
      tool_check(bitnet_model_find_input(shared->model, d.name, &j));
      bitnet_tensor_desc e;
      tool_check(bitnet_model_input(shared->model, j, &e));
      if (e.byte_size != d.byte_size || e.rank != d.rank) {
        fprintf(stderr, "%s: %s: cache '%s' differs from the one-token "
                        "step's\n",
                program_invocation_short_name, path, d.name);
        exit(1);
      }
      s->inputs[i] = shared->inputs[j];
    } else {
      s->inputs[i] = aligned_alloc(64, ((size_t)d.byte_size + 63) / 64 * 64);
      if (s->inputs[i] == NULL)
        tool_fail("out of memory (%s)", "KV cache");
      memset(s->inputs[i], 0, (size_t)d.byte_size);
    }
  }
  if (s->capacity < 0)
    tool_fail("%s: the model has no KV cache (state) input", path);
  if (s->batched) {
    if (s->slots < 1)
      tool_fail("%s: the KV caches hold no sequence (dim 0 is 0)", path);
    s->run_rows = 1;
    s->positions = (int32_t *)tool_xmalloc(sizeof(int32_t) * (size_t)s->S);
    s->slot_ids = (int32_t *)tool_xmalloc(sizeof(int32_t) * (size_t)s->S);
    s->inputs[s->positions_index] = s->positions;
    s->inputs[s->slots_index] = s->slot_ids;
  } else {
    s->slots = 1;
    s->run_rows = s->S;
    if (s->capacity < s->S)
      tool_fail("%s: the KV cache holds fewer tokens than one step", path);
    s->position = (int32_t *)tool_xmalloc(sizeof(int32_t));
    s->inputs[s->position_index] = s->position;
  }
  s->tokens = (int32_t *)tool_xmalloc(sizeof(int32_t) * (size_t)s->S);
  s->inputs[s->tokens_index] = s->tokens;
  for (int32_t o = 0; o < s->num_outputs; ++o) {
    tool_check(bitnet_model_output(s->model, o, &d));
    s->outputs[o] = tool_xmalloc((size_t)d.byte_size);
  }
  s->logits = (float *)s->outputs[s->logits_index];
}

/* Loads the decoder step at `path` (see open_step). */
static inline void load_step(step_model *s, const char *path,
                             bitnet_thread_pool *tp, const step_model *shared) {
  bitnet_model *model = NULL;
  tool_check(bitnet_model_load(path, &model));
  open_step(s, model, path, tp, shared);
}

/* --huge-pages: moves the model's weights onto huge pages
 * (bitnet_model_use_huge_pages) and returns the bytes moved. Where the
 * system offers none, says so and returns -1: the weights stay on the
 * file's pages. */
static inline int64_t step_use_huge_pages(bitnet_model *model) {
  int64_t bytes = 0;
  bitnet_status status = bitnet_model_use_huge_pages(model, &bytes);
  if (status != BITNET_OK &&
      bitnet_status_get_code(status) == BITNET_STATUS_UNAVAILABLE) {
    fprintf(stderr, "%s: --huge-pages: %s; the weights stay on the file's "
            "pages\n", program_invocation_short_name,
            bitnet_status_message(status));
    bitnet_status_free(status);
    return -1;
  }
  tool_check(status);
  return bytes;
}

/* Sets up the entry `name` of `model` (bitnet-compile's 'prefill' or 'one')
 * as a step whose caches are `shared`'s (see open_step); `path` names the
 * model in messages. Returns 0, setting up nothing, when the model has no
 * such entry. */
static inline int open_entry_step(step_model *s, bitnet_model *model,
                                  const char *name, const char *path,
                                  bitnet_thread_pool *tp,
                                  const step_model *shared) {
  for (int32_t i = 0; i < bitnet_model_num_entries(model); ++i)
    if (!strcmp(bitnet_model_entry_name(model, i), name)) {
      bitnet_model *entry = NULL;
      tool_check(bitnet_model_open_entry(model, name, &entry));
      char label[4096];
      snprintf(label, sizeof(label), "%s (entry '%s')", path, name);
      open_step(s, entry, label, tp, shared);
      return 1;
    }
  return 0;
}

/* Fills the inputs of a run of `n` <= S tokens of one sequence at
 * `position`: slot 0 of a batched build, the rest of the step padding
 * (slot -1); a classic build's padding tokens are 0, at later rows, which
 * are never read before they are written again. Their logits are rows
 * 0 .. n-1 (row 0 only, the last token's, for a last-token build). */
static inline void step_fill_one(step_model *s, const int32_t *ids, int64_t n,
                                 int64_t position) {
  for (int64_t k = 0; k < s->S; ++k)
    s->tokens[k] = k < n ? ids[k] : 0;
  if (s->batched) {
    for (int64_t k = 0; k < s->S; ++k) {
      s->positions[k] = k < n ? (int32_t)(position + k) : 0;
      s->slot_ids[k] = k < n ? 0 : -1;
    }
  } else {
    *s->position = (int32_t)position;
  }
}

/* Frees what load_step made; the caches only when they are not `shared`'s. */
static inline void free_step(step_model *s, const step_model *shared) {
  for (int32_t i = 0; i < s->num_inputs; ++i)
    if (!step_is_control(s, i) && !shared)
      free(s->inputs[i]);
  for (int32_t o = 0; o < s->num_outputs; ++o)
    free(s->outputs[o]);
  free(s->tokens);
  free(s->position);
  free(s->positions);
  free(s->slot_ids);
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
