/*===- bitnet_rt/sampler.h - Picking the next token from logits ----*- C -*-===*
 *
 * Part of bitnet-mlir.
 *
 *===----------------------------------------------------------------------===*
 *
 * The sampling of bitnet-generate, for any program that generates text with
 * a compiled decoder: temperature, top-k, then top-p (nucleus) over the
 * logits of the next token, drawn with a seeded xorshift64* generator, so
 * that the same seed gives the same tokens in every program that uses it
 * (the tool, the Python bindings, an application).
 *
 *   bitnet_sampler_params p = bitnet_sampler_default_params();
 *   p.temperature = 0.7; p.seed = 42;
 *   bitnet_sampler *s;  bitnet_sampler_create(&p, &s)
 *   int32_t id;         bitnet_sampler_sample(s, logits, vocab_size, &id)
 *
 * A temperature of 0 is greedy: the most likely token (the lowest id among
 * equal logits), and no random number is drawn. A sampler serves one thread.
 *
 *===----------------------------------------------------------------------===*/

#ifndef BITNET_RT_SAMPLER_H
#define BITNET_RT_SAMPLER_H

#include <stdint.h>

#include "bitnet_rt/bitnet_rt.h"

#ifdef __cplusplus
extern "C" {
#endif

/** How a sampler picks tokens. */
typedef struct bitnet_sampler_params {
  double temperature; /**< >= 0 and finite; 0: greedy */
  int64_t top_k;      /**< >= 0: the k most likely tokens; 0: all */
  double top_p;       /**< in (0, 1]: the fewest most likely tokens whose
                           probabilities add up to at least top_p */
  uint64_t seed;      /**< seed of the random numbers */
} bitnet_sampler_params;

/** Picks tokens from logits. */
typedef struct bitnet_sampler bitnet_sampler;

/** bitnet-generate's defaults: temperature 0.8, top-k 40, top-p 0.95,
 *  seed 0. */
BITNET_RT_API bitnet_sampler_params bitnet_sampler_default_params(void);

/** Makes a sampler. A temperature that is negative, NaN or infinite, a
 *  negative top_k, a top_p outside (0, 1] or NaN: INVALID_ARGUMENT naming
 *  the parameter and its value. */
BITNET_RT_API bitnet_status bitnet_sampler_create(
    const bitnet_sampler_params *params, bitnet_sampler **out_sampler);

/** Frees a sampler. NULL is fine. */
BITNET_RT_API void bitnet_sampler_free(bitnet_sampler *sampler);

/** Picks one of the `vocab_size` tokens whose logits are at `logits`
 *  (vocab_size >= 1 and below 2^31; INVALID_ARGUMENT otherwise). */
BITNET_RT_API bitnet_status bitnet_sampler_sample(bitnet_sampler *sampler,
                                                  const float *logits,
                                                  int64_t vocab_size,
                                                  int32_t *out_id);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* BITNET_RT_SAMPLER_H */
