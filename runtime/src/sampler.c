/*===- sampler.c - Picking the next token from logits --------------*- C -*-===*
 *
 * Part of bitnet-mlir.
 *
 *===----------------------------------------------------------------------===*/

#include "bitnet_rt/sampler.h"

#include <math.h>
#include <stdlib.h>

#include "internal.h"

typedef struct candidate {
  float logit;
  int32_t id;
} candidate;

struct bitnet_sampler {
  bitnet_sampler_params params;
  uint64_t state; /* xorshift64*, never 0 */
  candidate *cand;
  double *prob;
  int64_t capacity;
};

bitnet_sampler_params bitnet_sampler_default_params(void) {
  bitnet_sampler_params p = {0.8, 40, 0.95, 0};
  return p;
}

bitnet_status bitnet_sampler_create(const bitnet_sampler_params *params,
                                    bitnet_sampler **out_sampler) {
  BITNET_CHECK_ARG(out_sampler, "bitnet_sampler_create");
  *out_sampler = NULL;
  BITNET_CHECK_ARG(params, "bitnet_sampler_create");
  /* Written so that NaN, which compares false with everything, is refused. */
  if (!(params->temperature >= 0 && params->temperature <= 1e30))
    return bitnet_status_make(BITNET_STATUS_INVALID_ARGUMENT,
                              "sampler: temperature must be a finite number "
                              ">= 0 (0: greedy), got %g",
                              params->temperature);
  if (params->top_k < 0)
    return bitnet_status_make(BITNET_STATUS_INVALID_ARGUMENT,
                              "sampler: top_k must be >= 0 (0: all tokens), "
                              "got %lld",
                              (long long)params->top_k);
  if (!(params->top_p > 0 && params->top_p <= 1))
    return bitnet_status_make(BITNET_STATUS_INVALID_ARGUMENT,
                              "sampler: top_p must be in (0, 1], got %g",
                              params->top_p);
  bitnet_sampler *s = calloc(1, sizeof(*s));
  if (s == NULL)
    return bitnet_status_make(BITNET_STATUS_OUT_OF_MEMORY,
                              "sampler: out of memory");
  s->params = *params;
  s->state = params->seed * 0x9E3779B97F4A7C15ULL + 1;
  if (s->state == 0)
    s->state = 1;
  *out_sampler = s;
  return BITNET_OK;
}

void bitnet_sampler_free(bitnet_sampler *sampler) {
  if (sampler == NULL)
    return;
  free(sampler->cand);
  free(sampler->prob);
  free(sampler);
}

/* A uniform number in [0, 1). */
static double uniform(bitnet_sampler *s) {
  s->state ^= s->state >> 12;
  s->state ^= s->state << 25;
  s->state ^= s->state >> 27;
  return (double)((s->state * 0x2545F4914F6CDD1DULL) >> 11) * 0x1.0p-53;
}

static int by_logit_desc(const void *a, const void *b) {
  float x = ((const candidate *)a)->logit, y = ((const candidate *)b)->logit;
  return x < y ? 1 : x > y ? -1 : 0;
}

/* Moves the k largest of c[0 .. n) to the front (in no order): a partial
 * selection around a pivot, as quickselect does. */
static void select_largest(candidate *c, int64_t n, int64_t k) {
  int64_t lo = 0, hi = n - 1;
  while (lo < hi) {
    float pivot = c[(lo + hi) / 2].logit;
    int64_t i = lo, j = hi;
    while (i <= j) {
      while (c[i].logit > pivot)
        ++i;
      while (c[j].logit < pivot)
        --j;
      if (i <= j) {
        candidate t = c[i];
        c[i++] = c[j];
        c[j--] = t;
      }
    }
    if (k - 1 <= j)
      hi = j;
    else if (k - 1 >= i)
      lo = i;
    else
      break;
  }
}

bitnet_status bitnet_sampler_sample(bitnet_sampler *sampler,
                                    const float *logits, int64_t vocab_size,
                                    int32_t *out_id) {
  BITNET_CHECK_ARG(sampler, "bitnet_sampler_sample");
  BITNET_CHECK_ARG(logits, "bitnet_sampler_sample");
  BITNET_CHECK_ARG(out_id, "bitnet_sampler_sample");
  if (vocab_size < 1 || vocab_size > INT32_MAX)
    return bitnet_status_make(BITNET_STATUS_INVALID_ARGUMENT,
                              "bitnet_sampler_sample: vocab_size must be in "
                              "[1, 2^31), got %lld",
                              (long long)vocab_size);
  const bitnet_sampler_params *p = &sampler->params;
  int64_t V = vocab_size;
  if (p->temperature <= 0) {
    int32_t best = 0;
    for (int64_t i = 1; i < V; ++i)
      if (logits[i] > logits[best])
        best = (int32_t)i;
    *out_id = best;
    return BITNET_OK;
  }
  if (V > sampler->capacity) {
    candidate *c = realloc(sampler->cand, sizeof(candidate) * (size_t)V);
    if (c)
      sampler->cand = c;
    double *pr = realloc(sampler->prob, sizeof(double) * (size_t)V);
    if (pr)
      sampler->prob = pr;
    if (!c || !pr)
      return bitnet_status_make(BITNET_STATUS_OUT_OF_MEMORY,
                                "sampler: out of memory for %lld candidates",
                                (long long)V);
    sampler->capacity = V;
  }
  candidate *c = sampler->cand;
  double *prob = sampler->prob;
  int64_t n = V;
  for (int64_t i = 0; i < V; ++i)
    c[i] = (candidate){logits[i], (int32_t)i};
  if (p->top_k > 0 && p->top_k < V) {
    select_largest(c, V, p->top_k);
    n = p->top_k;
  }
  qsort(c, (size_t)n, sizeof(candidate), by_logit_desc);
  double total = 0, max = c[0].logit;
  for (int64_t i = 0; i < n; ++i)
    total += prob[i] = exp((c[i].logit - max) / p->temperature);
  double cum = 0;
  int64_t keep = n;
  for (int64_t i = 0; i < n; ++i) {
    cum += prob[i] / total;
    if (cum >= p->top_p) {
      keep = i + 1;
      break;
    }
  }
  double kept = 0;
  for (int64_t i = 0; i < keep; ++i)
    kept += prob[i];
  double r = uniform(sampler) * kept;
  int32_t id = c[keep - 1].id;
  for (int64_t i = 0; i < keep; ++i) {
    r -= prob[i];
    if (r < 0) {
      id = c[i].id;
      break;
    }
  }
  *out_id = id;
  return BITNET_OK;
}
